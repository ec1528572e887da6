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

/// GPU_IDX1: one JSON document.
pub fn parse_idx1(json: &[u8], ctx: &Ctx) -> Result<RawIndex> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| ctx.err(format!("JSON: {e}")))?;
    let list = |key: &str| -> Result<&Vec<Value>> {
        doc.get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| ctx.err(format!("no \"{key}\" array")))
    };
    let files = list("files")?
        .iter()
        .enumerate()
        .map(|(n, v)| file_from(v, n, ctx))
        .collect::<Result<_>>()?;
    let frames = list("frames")?
        .iter()
        .enumerate()
        .map(|(n, v)| frame_from(v, n, ctx))
        .collect::<Result<_>>()?;
    Ok(RawIndex {
        params: params_from(doc.get("params"), ctx)?,
        files,
        frames,
    })
}

/// GPU_IDX2: a header line, `count_files` file lines, `count_frames` frame lines, then nothing but
/// blank lines. The lines are taken one at a time, never collected (200 MiB of newlines made a table of
/// 200 million line slices), and records are kept only as they parse.
pub fn parse_idx2(text: &[u8], ctx: &Ctx) -> Result<RawIndex> {
    let json = |n: usize, line: &[u8]| -> Result<Value> {
        serde_json::from_slice(line).map_err(|e| ctx.err(format!("line {}: JSON: {e}", n + 1)))
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
