//! JSON read within a budget: CL_Compressor's index records and params are parsed as `serde_json::Value`s
//! whose values and keys are counted as they are parsed (one per 16 bytes of the index), so that no JSON
//! makes more heap than a few bytes per byte of the index.

use serde_json::{Map, Value};

/// How many JSON values (and object keys) a document of `len` bytes may hold in one record or in
/// `params`: one per 16 bytes. The index's records take 12 bytes or more per value (`{"path_rel": "a",
/// "size": 0, …}`), `frame_modes` 15; `[],[],…` takes 3, and as `serde_json::Value`s 28 bytes of heap per
/// byte (a 68 KB archive held 450 MB). With the budget, a record or `params` takes at most about 4 bytes
/// of heap per byte of the document.
pub fn value_budget(len: usize) -> usize {
    len / 16 + 64
}

/// Parses one JSON value of at most `budget` values.
pub fn json_value(text: &[u8], budget: usize) -> std::result::Result<Value, serde_json::Error> {
    let left = std::cell::Cell::new(budget);
    let mut de = serde_json::Deserializer::from_slice(text);
    let v = serde::de::DeserializeSeed::deserialize(Budgeted(&left), &mut de)?;
    de.end()?;
    Ok(v)
}

/// A `serde_json::Value` whose values and keys are counted against a budget as they are parsed.
pub struct Budgeted<'b>(pub &'b std::cell::Cell<usize>);

impl Budgeted<'_> {
    fn take<E: serde::de::Error>(&self) -> std::result::Result<(), E> {
        match self.0.get() {
            0 => Err(E::custom(
                "more JSON values than the index's size allows (one per 16 bytes)",
            )),
            n => {
                self.0.set(n - 1);
                Ok(())
            }
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Budgeted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> std::result::Result<Value, E> {
        self.take()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Value, E> {
        self.take()?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Value, E> {
        self.take()?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Value, E> {
        self.take()?;
        Ok(Value::from(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Value, E> {
        self.take()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> std::result::Result<Value, E> {
        self.take()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Value, E> {
        self.take()?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> std::result::Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Value, A::Error> {
        self.take()?;
        let mut v = Vec::new();
        while let Some(x) = seq.next_element_seed(Budgeted(self.0))? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Value, A::Error> {
        self.take()?;
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            self.take()?;
            let v = map.next_value_seed(Budgeted(self.0))?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}
