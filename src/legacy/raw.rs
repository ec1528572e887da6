//! The index as CL_Compressor wrote it, before any mapping: the common model of GPU_IDX1/2/3, the bounded
//! inflater and the two JSON readers (GPU_IDX3's SQLite reader is in `sqlite.rs`).
//!
//! GPU_IDX1: zlib of one JSON object `{"files": [...], "frames": [...], "dictionary": null, "params": {...}}`.
//! GPU_IDX2: gzip of JSON lines: a header `{"version": 2, "type": "GPU_IDX2", "params": {...},
//! "count_files": N, "count_frames": M}`, then N file objects, then M frame objects.
//! File object: `{"path_rel": str, "size": int, "is_duplicate": bool, "original": str|null}`.
//! Frame object: `{"frame_id", "volume_name", "offset", "compressed_size", "uncompressed_size"}`.

use std::io::Read;

use serde_json::{Map, Value};

pub use super::json::{json_value, value_budget, Budgeted};

use crate::error::{Error, Result};

/// The inflated index may not exceed this (zlib/gzip bomb guard).
pub const MAX_INDEX_RAW: u64 = 1 << 30;

/// Where the index lives, for error messages: every error names the last volume and the index offset.
pub struct Ctx {
    pub what: String,
    pub offset: u64,
    pub kind: &'static str,
}

impl Ctx {
    pub fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::corrupt(
            &self.what,
            self.offset,
            format!("{} index: {msg}", self.kind),
        )
    }
}

/// One `files` record, in archive order.
#[derive(Clone, Debug, PartialEq)]
pub struct RawFile {
    /// `path_rel` as stored: relative (IDX1/2) or absolute (IDX3).
    pub path: String,
    pub size: u64,
    pub is_duplicate: bool,
    /// The original's path relative to source_root (duplicates only).
    pub original: Option<String>,
    /// Seconds since the epoch (IDX3 only, usually NULL).
    pub mtime: Option<f64>,
}

/// One `frames` record.
#[derive(Clone, Debug, PartialEq)]
pub struct RawFrame {
    pub id: u64,
    pub volume_name: String,
    pub offset: u64,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
}

#[derive(Clone, Debug, Default)]
pub struct RawIndex {
    pub params: Map<String, Value>,
    pub files: Vec<RawFile>,
    pub frames: Vec<RawFrame>,
}

/// Inflates a zlib (`gzip == false`) or gzip blob, refusing output above `cap` bytes.
pub fn inflate(blob: &[u8], gzip: bool, cap: u64, ctx: &Ctx) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let res = if gzip {
        flate2::read::GzDecoder::new(blob)
            .take(cap + 1)
            .read_to_end(&mut out)
    } else {
        flate2::read::ZlibDecoder::new(blob)
            .take(cap + 1)
            .read_to_end(&mut out)
    };
    let name = if gzip { "gzip" } else { "zlib" };
    res.map_err(|e| ctx.err(format!("{name} stream: {e}")))?;
    if out.len() as u64 > cap {
        return Err(ctx.err(format!("{name} stream inflates past {cap} bytes")));
    }
    Ok(out)
}

/// GPU_IDX1: one JSON document. Read as it is parsed: `files` and `frames` one record at a time (each
/// record a small `Value`, turned into a [`RawFile`] / [`RawFrame`] at once), other keys skipped without
/// being kept, so the heap holds the records and one record's `Value`, not a `Value` of the whole
/// document (up to 21 bytes of heap per byte of `[],[],…`). Only `params` is kept as a `Value`.
pub fn parse_idx1(json: &[u8], ctx: &Ctx) -> Result<RawIndex> {
    let failed = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(json);
    let left = std::cell::Cell::new(0);
    let res = serde::Deserializer::deserialize_map(
        &mut de,
        idx1::Doc {
            ctx,
            failed: &failed,
            left: &left,
            budget: value_budget(json.len()),
        },
    )
    .and_then(|idx| de.end().map(|()| idx));
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    let (files, frames, params) = res.map_err(|e| ctx.err(format!("JSON: {e}")))?;
    Ok(RawIndex {
        params: params_from(params.as_ref(), ctx)?,
        files: files.ok_or_else(|| ctx.err("no \"files\" array"))?,
        frames: frames.ok_or_else(|| ctx.err("no \"frames\" array"))?,
    })
}

/// The visitors of [`parse_idx1`]. A record that does not map is kept in `failed` (with its own message)
/// and stops the parse.
mod idx1 {
    use super::{file_from, frame_from, Budgeted, Ctx, RawFile, RawFrame};
    use crate::error::Error;
    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::Value;
    use std::cell::RefCell;

    pub type Parts = (Option<Vec<RawFile>>, Option<Vec<RawFrame>>, Option<Value>);

    pub struct Doc<'c> {
        pub ctx: &'c Ctx,
        pub failed: &'c RefCell<Option<Error>>,
        /// Values left for the record (or `params`) being read; `budget` for each.
        pub left: &'c std::cell::Cell<usize>,
        pub budget: usize,
    }

    impl<'de> Visitor<'de> for Doc<'_> {
        type Value = Parts;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object with files, frames and params")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts, A::Error> {
            let (mut files, mut frames, mut params) = (None, None, None);
            while let Some(key) = map.next_key::<String>()? {
                match key.as_str() {
                    "files" => files = Some(map.next_value_seed(Records::new(&self, file_from))?),
                    "frames" => {
                        frames = Some(map.next_value_seed(Records::new(&self, frame_from))?)
                    }
                    "params" => {
                        self.left.set(self.budget);
                        params = Some(map.next_value_seed(Budgeted(self.left))?);
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok((files, frames, params))
        }
    }

    /// An array of records, each mapped by `make` as soon as it is parsed.
    pub struct Records<'c, T> {
        doc: Doc<'c>,
        make: fn(&Value, usize, &Ctx) -> crate::error::Result<T>,
    }

    impl<'c, T> Records<'c, T> {
        fn new(doc: &Doc<'c>, make: fn(&Value, usize, &Ctx) -> crate::error::Result<T>) -> Self {
            Records {
                doc: Doc {
                    ctx: doc.ctx,
                    failed: doc.failed,
                    left: doc.left,
                    budget: doc.budget,
                },
                make,
            }
        }
    }

    impl<'de, T> DeserializeSeed<'de> for Records<'_, T> {
        type Value = Vec<T>;

        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de, T> Visitor<'de> for Records<'_, T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of records")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            loop {
                self.doc.left.set(self.doc.budget);
                let Some(v) = seq.next_element_seed(Budgeted(self.doc.left))? else {
                    break;
                };
                match (self.make)(&v, out.len(), self.doc.ctx) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        *self.doc.failed.borrow_mut() = Some(e);
                        return Err(de::Error::custom("bad record"));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// GPU_IDX2: a header line, `count_files` file lines, `count_frames` frame lines, then nothing but
/// blank lines. The lines are taken one at a time, never collected (200 MiB of newlines made a table of
/// 200 million line slices), and records are kept only as they parse.
pub fn parse_idx2(text: &[u8], ctx: &Ctx) -> Result<RawIndex> {
    let budget = value_budget(text.len());
    let json = |n: usize, line: &[u8]| -> Result<Value> {
        json_value(line, budget).map_err(|e| ctx.err(format!("line {}: JSON: {e}", n + 1)))
    };
    let blank = |l: &[u8]| l.iter().all(u8::is_ascii_whitespace);
    // Blank lines at the end are allowed (the file ends with a newline); elsewhere a line is a record.
    let end = text.len()
        - text
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    let mut lines = text[..end].split(|&b| b == b'\n');
    let header = json(0, lines.next().unwrap_or_default())?;
    if let Some(t) = header.get("type") {
        if t.as_str() != Some("GPU_IDX2") {
            return Err(ctx.err(format!("header type {t}, expected \"GPU_IDX2\"")));
        }
    }
    let count = |key: &str| -> Result<u64> {
        header
            .get(key)
            .and_then(Value::as_u64)
            .ok_or_else(|| ctx.err(format!("header lacks an integer \"{key}\"")))
    };
    let (nf, nm) = (count("count_files")?, count("count_frames")?);
    let mut idx = RawIndex {
        params: params_from(header.get("params"), ctx)?,
        ..RawIndex::default()
    };
    let mut body = 0u64;
    for (n, line) in lines.enumerate().map(|(n, l)| (n + 1, l)) {
        body += 1;
        if body > nf.saturating_add(nm) {
            // Count the rest without keeping anything, for the message.
            continue;
        }
        if blank(line) {
            return Err(ctx.err(format!("line {}: empty", n + 1)));
        }
        let v = json(n, line)?;
        if body <= nf {
            idx.files.push(file_from(&v, n - 1, ctx)?);
        } else {
            idx.frames.push(frame_from(&v, idx.frames.len(), ctx)?);
        }
    }
    if nf.checked_add(nm) != Some(body) {
        return Err(ctx.err(format!(
            "header announces {nf} files and {nm} frames, {body} lines follow"
        )));
    }
    Ok(idx)
}

/// The `params` object (required).
pub fn params_from(v: Option<&Value>, ctx: &Ctx) -> Result<Map<String, Value>> {
    v.and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| ctx.err("no \"params\" object"))
}

fn file_from(v: &Value, n: usize, ctx: &Ctx) -> Result<RawFile> {
    let bad = |m: &str| ctx.err(format!("file {n}: {m}"));
    let path = v
        .get("path_rel")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no \"path_rel\" string"))?;
    let size = v
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("no non-negative integer \"size\""))?;
    let is_duplicate = match v.get("is_duplicate") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(x) => x
            .as_u64()
            .map(|i| i != 0)
            .ok_or_else(|| bad("bad \"is_duplicate\""))?,
    };
    let original = match v.get("original") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("\"original\" is not a string")),
    };
    Ok(RawFile {
        path: path.to_owned(),
        size,
        is_duplicate,
        original,
        mtime: None,
    })
}

fn frame_from(v: &Value, n: usize, ctx: &Ctx) -> Result<RawFrame> {
    let int = |key: &str| -> Result<u64> {
        v.get(key).and_then(Value::as_u64).ok_or_else(|| {
            ctx.err(format!(
                "frame record {n}: no non-negative integer \"{key}\""
            ))
        })
    };
    let volume_name = v
        .get("volume_name")
        .and_then(Value::as_str)
        .ok_or_else(|| ctx.err(format!("frame record {n}: no \"volume_name\" string")))?;
    Ok(RawFrame {
        id: int("frame_id")?,
        volume_name: volume_name.to_owned(),
        offset: int("offset")?,
        compressed_size: int("compressed_size")?,
        uncompressed_size: int("uncompressed_size")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn ctx() -> Ctx {
        Ctx {
            what: "v.001".into(),
            offset: 7,
            kind: "GPU_IDX1",
        }
    }

    #[test]
    fn inflate_caps_bombs() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 1 << 20]).unwrap();
        let blob = z.finish().unwrap();
        assert_eq!(
            inflate(&blob, false, 1 << 20, &ctx()).unwrap().len(),
            1 << 20
        );
        let e = inflate(&blob, false, (1 << 20) - 1, &ctx()).unwrap_err();
        assert!(e.to_string().contains("inflates past"), "{e}");
        assert!(inflate(&blob, true, 1 << 20, &ctx()).is_err());
        assert!(inflate(&blob[..blob.len() - 3], false, 1 << 20, &ctx()).is_err());
    }

    #[test]
    fn idx2_counts_must_match_the_lines() {
        let head = r#"{"version": 2, "type": "GPU_IDX2", "params": {"frame_size": 4}, "count_files": 1, "count_frames": 1}"#;
        let f = r#"{"path_rel": "a", "size": 3, "is_duplicate": false, "original": null}"#;
        let m = r#"{"frame_id": 0, "volume_name": "x.001", "offset": 0, "compressed_size": 3, "uncompressed_size": 3}"#;
        let ok = format!("{head}\n{f}\n{m}\n");
        let idx = parse_idx2(ok.as_bytes(), &ctx()).unwrap();
        assert_eq!((idx.files.len(), idx.frames.len()), (1, 1));
        assert!(parse_idx2(format!("{head}\n{f}\n").as_bytes(), &ctx()).is_err());
        assert!(parse_idx2(format!("{head}\n{f}\n{m}\n{m}\n").as_bytes(), &ctx()).is_err());
        assert!(parse_idx2(b"", &ctx()).is_err());
        let neg = ok.replace("\"size\": 3", "\"size\": -3");
        assert!(parse_idx2(neg.as_bytes(), &ctx()).is_err());
    }

    /// Issue 14 item 2: `[],[],…` as `serde_json::Value`s took 28 bytes of heap per byte; a record or
    /// `params` may now hold one value per 16 bytes of the document.
    #[test]
    fn regression_json_values_are_budgeted() {
        let arrays = format!("[{}[]]", "[],".repeat(10_000));
        let e = json_value(arrays.as_bytes(), value_budget(arrays.len())).unwrap_err();
        assert!(e.to_string().contains("more JSON values"), "{e}");
        let rec = br#"{"path_rel": "a", "size": 0, "is_duplicate": false, "original": null}"#;
        // The object, four keys and four values.
        assert_eq!(json_value(rec, 9).unwrap()["size"], 0);
        assert!(json_value(rec, 8).is_err());
        let doc = format!(r#"{{"params": {{"x": {arrays}}}, "files": [], "frames": []}}"#);
        let e = parse_idx1(doc.as_bytes(), &ctx()).unwrap_err();
        assert!(e.to_string().contains("more JSON values"), "{e}");
    }

    #[test]
    fn idx1_needs_its_arrays() {
        assert!(parse_idx1(br#"{"files": [], "frames": [], "params": {}}"#, &ctx()).is_ok());
        assert!(parse_idx1(br#"{"files": [], "params": {}}"#, &ctx()).is_err());
        assert!(parse_idx1(br#"{"files": [], "frames": []}"#, &ctx()).is_err());
        assert!(parse_idx1(b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", &ctx()).is_err());
        let deep = "[".repeat(100_000);
        assert!(parse_idx1(deep.as_bytes(), &ctx()).is_err());
    }
}
