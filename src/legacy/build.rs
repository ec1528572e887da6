//! Maps a [`RawIndex`] onto clc's [`Index`] (FORMAT.md section 8.3).
//!
//! * Frames: frame `k` covers bytes `[k * frame_size, k * frame_size + raw_len)` of the solid stream, the
//!   concatenation of every non-duplicate file in archive order; every frame but the last is full.
//! * Each non-duplicate file with bytes gets one content whose refs cut its stream range at frame
//!   boundaries (one chunk per piece). Duplicates share their original's content.
//! * Paths become relative (IDX3 strips `source_root`), parents become `Dir` entries, and the entries are
//!   sorted by path bytes.
//! * When the index promises more stream bytes than the frames hold (the truncated-stream writer bug), the
//!   first affected file keeps only the bytes that are known good, every later stream file keeps none, and
//!   all of them (and their duplicates) are reported as damaged.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::raw::{Ctx, RawFile, RawIndex};
use super::volumes::{VolumeSet, FOOTER_SIZE};
use crate::error::{Error, Result};
use crate::format::codec::Codec;
use crate::format::frame::MAX_FRAME;
use crate::format::index::{
    check_path, Chunk, ChunkId, ChunkRef, Content, Entry, EntryId, EntryKind, Frame, FrameId,
    Index, VolumeNo, NONE,
};

/// The mapped index and what could not be trusted.
pub struct Built {
    pub index: Index,
    /// In archive order: the first is the first affected file.
    pub damaged: Vec<(EntryId, String)>,
    pub source_root: String,
}

/// Where a file's data ended up.
#[derive(Clone, Default)]
struct Placed {
    size: u64,
    link: u64,
    damage: Option<String>,
}

pub fn build(raw: &RawIndex, kind: &'static str, vols: &VolumeSet, ctx: &Ctx) -> Result<Built> {
    let fs = raw
        .params
        .get("frame_size")
        .and_then(Value::as_u64)
        .filter(|f| (1..=MAX_FRAME as u64).contains(f))
        .ok_or_else(|| ctx.err("params.frame_size is missing or not in 1 ..= 16 MiB"))?;
    let source_root = match raw.params.get("source_root") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) if kind != "GPU_IDX3" => String::new(),
        _ => return Err(ctx.err("params.source_root is not a string")),
    };
    let rules = PathRules::new(kind, &source_root);
    let paths = raw
        .files
        .iter()
        .enumerate()
        .map(|(n, f)| {
            rules
                .stored(&f.path)
                .ok_or_else(|| bad_path(ctx, n, &f.path))
        })
        .collect::<Result<Vec<_>>>()?;

    let mut index = Index {
        params: params(raw, kind),
        frames: frames(raw, fs, vols, ctx)?,
        ..Index::default()
    };
    let placed = place(raw, &paths, &rules, fs, &mut index, ctx)?;
    let (entries, entry_of) = entries(raw, &paths, &placed, ctx)?;
    index.entries = entries;
    let damaged = placed
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.damage.clone().map(|r| (entry_of[i], r)))
        .collect();
    Ok(Built {
        index,
        damaged,
        source_root,
    })
}

fn bad_path(ctx: &Ctx, n: usize, p: &str) -> Error {
    ctx.err(format!(
        "file {n}: path {p:?} is not a relative path under source_root without empty, '.' or '..' components"
    ))
}

/// `legacy.<key>` for every old param (strings as is, the rest as JSON), plus `format`; sorted by key.
fn params(raw: &RawIndex, kind: &str) -> Vec<(String, String)> {
    let mut p: BTreeMap<String, String> = raw
        .params
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (format!("legacy.{k}"), v)
        })
        .collect();
    p.insert("format".into(), kind.into());
    p.into_iter().collect()
}

/// The frame table, in id order, checked against the volumes: ids 0..n, full frames but the last,
/// extents inside their volume, a known mode.
fn frames(raw: &RawIndex, fs: u64, vols: &VolumeSet, ctx: &Ctx) -> Result<Vec<Frame>> {
    let mut order: Vec<_> = raw.frames.iter().collect();
    order.sort_by_key(|f| f.id);
    if order.len() > u32::MAX as usize {
        return Err(ctx.err("too many frames"));
    }
    let modes = match raw.params.get("frame_modes") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(ctx.err("params.frame_modes is not an object")),
    };
    let n = order.len();
    let mut out = Vec::with_capacity(n);
    for (k, f) in order.into_iter().enumerate() {
        let bad = |m: String| ctx.err(format!("frame {k}: {m}"));
        if f.id != k as u64 {
            return Err(bad(format!(
                "frame ids are not 0 .. {n} (found id {})",
                f.id
            )));
        }
        let codec = match modes.and_then(|m| m.get(&k.to_string())) {
            None => Codec::LzExt3,
            Some(v) => match v.as_str() {
                Some("lz_ext3_gpu") => Codec::LzExt3,
                Some("raw") => Codec::Raw,
                Some("lz4") | Some("lz4_gpu") => Codec::Lz4,
                _ => return Err(bad(format!("unknown mode {v}"))),
            },
        };
        let volume = vols
            .number_of(&f.volume_name)
            .ok_or_else(|| bad(format!("names unknown volume {:?}", f.volume_name)))?;
        let slot = volume as usize - 1;
        let len = vols.lens[slot].ok_or_else(|| Error::MissingVolume(vols.paths[slot].clone()))?;
        let limit = if volume == vols.count() {
            len.saturating_sub(FOOTER_SIZE)
        } else {
            len
        };
        let (raw_len, stored) = (f.uncompressed_size, f.compressed_size);
        if raw_len == 0 || raw_len > fs {
            return Err(bad(format!(
                "holds {raw_len} bytes; the frame size is {fs}"
            )));
        }
        if k + 1 < n && raw_len != fs {
            return Err(bad(format!(
                "holds {raw_len} bytes, but every frame except the last holds {fs}"
            )));
        }
        if stored == 0 || stored > u32::MAX as u64 || (codec == Codec::Raw && stored != raw_len) {
            return Err(bad(format!(
                "stored size {stored} for {raw_len} bytes ({})",
                codec.name()
            )));
        }
        if f.offset.checked_add(stored).is_none_or(|end| end > limit) {
            return Err(bad(format!(
                "{}+{stored} runs past the end of {} ({len} bytes)",
                f.offset, f.volume_name
            )));
        }
        out.push(Frame {
            volume: VolumeNo(volume),
            offset: f.offset,
            stored_len: stored as u32,
            raw_len: raw_len as u32,
            codec,
            flags: 0,
            checksum: None,
        });
    }
    Ok(out)
}

/// Lays out the stream, finds the truncation damage, creates contents, resolves duplicates.
fn place(
    raw: &RawIndex,
    paths: &[String],
    rules: &PathRules,
    fs: u64,
    index: &mut Index,
    ctx: &Ctx,
) -> Result<Vec<Placed>> {
    let files = &raw.files;
    let mut offset = vec![0u64; files.len()];
    let mut promised = 0u64;
    for (i, f) in files.iter().enumerate().filter(|(_, f)| !f.is_duplicate) {
        offset[i] = promised;
        promised = promised
            .checked_add(f.size)
            .ok_or_else(|| ctx.err("file sizes overflow"))?;
    }
    let held: u64 = index.frames.iter().map(|f| f.raw_len as u64).sum();
    if promised < held {
        return Err(ctx.err(format!(
            "the files add up to {promised} stream bytes but the frames hold {held}"
        )));
    }
    let cut = (promised > held)
        .then(|| first_affected(files, &offset, fs, held))
        .flatten();
    let mut placed = vec![Placed::default(); files.len()];
    for (i, f) in files.iter().enumerate().filter(|(_, f)| !f.is_duplicate) {
        let (kept, damage) = match cut {
            Some((c, kept)) if i >= c && f.size > 0 => {
                let base = format!(
                    "CL_Compressor truncated-stream bug: index promises {promised} bytes, frames hold {held}; first affected file: {}",
                    crate::diag::escape(paths[c].as_bytes())
                );
                if i == c {
                    (
                        kept,
                        format!("{base}; kept the first {kept} of {} bytes", f.size),
                    )
                } else {
                    (
                        0,
                        format!("{base}; all {} bytes of this file are lost", f.size),
                    )
                }
            }
            _ => (f.size, String::new()),
        };
        placed[i] = Placed {
            size: kept,
            link: if kept > 0 {
                add_content(index, offset[i], kept, fs, ctx)?
            } else {
                NONE
            },
            damage: (!damage.is_empty()).then_some(damage),
        };
    }
    let by_path: HashMap<&str, usize> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    for (i, f) in files.iter().enumerate().filter(|(_, f)| f.is_duplicate) {
        placed[i] = duplicate(f, &paths[i], rules, &by_path, files, &placed);
    }
    Ok(placed)
}

/// The first stream file hit by the truncation, and how many of its bytes are still good: the first file
/// that starts inside a partly filled frame and runs past that frame's end (FORMAT-NOTES 8.1), or, if one
/// comes earlier, the first file that runs past the end of the stream.
fn first_affected(files: &[RawFile], offset: &[u64], fs: u64, held: u64) -> Option<(usize, u64)> {
    files.iter().enumerate().find_map(|(i, f)| {
        if f.is_duplicate || f.size == 0 {
            return None;
        }
        let (off, at) = (offset[i], offset[i] % fs);
        let trigger = at != 0 && f.size > fs - at;
        let past_end = off + f.size > held;
        let limit = if trigger {
            (off - at).saturating_add(fs)
        } else {
            u64::MAX
        };
        (trigger || past_end).then(|| (i, limit.min(held).saturating_sub(off)))
    })
}

/// A content covering stream bytes `[off, off + len)`, one chunk per frame it touches.
fn add_content(index: &mut Index, off: u64, len: u64, fs: u64, ctx: &Ctx) -> Result<u64> {
    let first_ref = index.refs.len() as u64;
    let end = off + len;
    let mut pos = off;
    while pos < end {
        let (k, at) = (pos / fs, pos % fs);
        let take = (fs - at).min(end - pos);
        index
            .frames
            .get(k as usize)
            .filter(|f| at + take <= f.raw_len as u64)
            .ok_or_else(|| ctx.err(format!("stream byte {pos} lies outside frame {k}")))?;
        index.chunks.push(Chunk {
            frame: FrameId(k as u32),
            offset: at as u32,
            len: take as u32,
        });
        index.refs.push(ChunkRef {
            file_offset: pos - off,
            chunk: ChunkId(index.chunks.len() as u64 - 1),
        });
        pos += take;
    }
    index.contents.push(Content {
        size: len,
        first_ref,
        ref_count: index.refs.len() as u64 - first_ref,
    });
    Ok(index.contents.len() as u64 - 1)
}

/// A duplicate shares its original's content. One whose original is missing, is itself a duplicate or
/// differs in size is kept as an empty, damaged entry instead of failing the whole archive.
fn duplicate(
    f: &RawFile,
    path: &str,
    rules: &PathRules,
    by_path: &HashMap<&str, usize>,
    files: &[RawFile],
    placed: &[Placed],
) -> Placed {
    let orig = f.original.as_deref().map(|o| rules.original(o));
    let found = orig.as_deref().and_then(|o| by_path.get(o).copied());
    let damaged = |why: String| Placed {
        size: 0,
        link: NONE,
        damage: Some(format!(
            "duplicate {path:?} of {f_size} bytes: {why}",
            f_size = f.size
        )),
    };
    let Some(j) = found else {
        return damaged(format!(
            "its original {:?} is not in the archive",
            f.original.as_deref().unwrap_or("")
        ));
    };
    let o = orig.unwrap_or_default();
    if files[j].is_duplicate {
        return damaged(format!("its original {o:?} is itself a duplicate"));
    }
    if files[j].size != f.size {
        return damaged(format!("its original {o:?} has {} bytes", files[j].size));
    }
    let p = &placed[j];
    Placed {
        size: p.size,
        link: p.link,
        damage: p
            .damage
            .as_ref()
            .map(|r| format!("duplicate of {o:?}, which is damaged: {r}")),
    }
}

/// File entries plus a `Dir` for every parent, sorted by path bytes; and each file's entry id.
fn entries(
    raw: &RawIndex,
    paths: &[String],
    placed: &[Placed],
    ctx: &Ctx,
) -> Result<(Vec<Entry>, Vec<EntryId>)> {
    let mut dirs = BTreeSet::new();
    for p in paths {
        dirs.extend(p.match_indices('/').map(|(i, _)| &p[..i]));
    }
    let mut seen = HashMap::with_capacity(paths.len());
    let mut all: Vec<(Entry, Option<usize>)> = Vec::with_capacity(paths.len() + dirs.len());
    for (i, (p, f)) in paths.iter().zip(&raw.files).enumerate() {
        if let Some(first) = seen.insert(p.as_str(), i) {
            return Err(ctx.err(format!("files {first} and {i} have the same path {p:?}")));
        }
        if dirs.contains(p.as_str()) {
            return Err(ctx.err(format!("file {i}: {p:?} is also a parent directory")));
        }
        let mut e = Entry::new(p.as_bytes().to_vec(), EntryKind::File, 0o644);
        e.size = placed[i].size;
        e.link = placed[i].link;
        (e.mtime_sec, e.mtime_nsec) = f.mtime.map(split_mtime).unwrap_or((0, 0));
        all.push((e, Some(i)));
    }
    for d in dirs {
        all.push((
            Entry::new(d.as_bytes().to_vec(), EntryKind::Dir, 0o755),
            None,
        ));
    }
    all.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    let mut entry_of = vec![EntryId(0); paths.len()];
    let entries = all
        .into_iter()
        .enumerate()
        .map(|(pos, (e, file))| {
            if let Some(i) = file {
                entry_of[i] = EntryId(pos as u64);
            }
            e
        })
        .collect();
    Ok((entries, entry_of))
}

/// REAL seconds → (sec, nsec); absurd or non-finite values become 0 (metadata only).
fn split_mtime(t: f64) -> (i64, u32) {
    if !t.is_finite() || t.abs() > 1e15 {
        return (0, 0);
    }
    let s = t.floor();
    let ns = ((t - s) * 1e9).round() as u32;
    if ns >= 1_000_000_000 {
        (s as i64 + 1, ns - 1_000_000_000)
    } else {
        (s as i64, ns)
    }
}

/// How stored paths become relative ones.
struct PathRules {
    /// IDX3: `path_rel` is absolute and `root` is stripped from it.
    absolute: bool,
    /// Replace '\' by '/': IDX3 (the tool did it to `path_rel` already) or a Windows `source_root`.
    backslash: bool,
    /// `source_root` with '/' separators and no trailing '/'.
    root: String,
    /// Windows roots compare ASCII-case-insensitively.
    fold_case: bool,
}

impl PathRules {
    fn new(kind: &str, source_root: &str) -> Self {
        let b = source_root.as_bytes();
        let windows = source_root.contains('\\')
            || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':');
        PathRules {
            absolute: kind == "GPU_IDX3",
            backslash: kind == "GPU_IDX3" || windows,
            root: source_root
                .replace('\\', "/")
                .trim_end_matches('/')
                .to_owned(),
            fold_case: windows,
        }
    }

    fn slashes(&self, p: &str) -> String {
        if self.backslash {
            p.replace('\\', "/")
        } else {
            p.to_owned()
        }
    }

    /// `path_rel` → a checked relative path, or `None`.
    fn stored(&self, p: &str) -> Option<String> {
        let p = self.slashes(p);
        let rel = if self.absolute {
            self.strip_root(&p)?
        } else {
            p.as_str()
        };
        check_path(rel.as_bytes()).ok()?;
        Some(rel.to_owned())
    }

    /// `original` (relative; tolerated absolute under the root) → the key to look up.
    fn original(&self, p: &str) -> String {
        let p = self.slashes(p);
        self.strip_root(&p).map(str::to_owned).unwrap_or(p)
    }

    fn strip_root<'a>(&self, p: &'a str) -> Option<&'a str> {
        let n = self.root.len();
        let head = p.get(..n)?;
        let same = if self.fold_case {
            head.eq_ignore_ascii_case(&self.root)
        } else {
            head == self.root
        };
        (same && p.as_bytes().get(n) == Some(&b'/')).then(|| &p[n + 1..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_relative() {
        let r = PathRules::new("GPU_IDX3", "/tmp/w/tree/");
        assert_eq!(r.stored("/tmp/w/tree/a/b.txt").as_deref(), Some("a/b.txt"));
        assert_eq!(r.stored("/tmp/w/treex/a"), None);
        assert_eq!(r.stored("/tmp/w/tree/"), None);
        assert_eq!(r.stored("/tmp/w/tree/a/../b"), None);
        assert_eq!(r.stored("/tmp/w/tree//b"), None);
        assert_eq!(r.stored("relative"), None);
        let w = PathRules::new("GPU_IDX3", "C:\\Radio");
        assert_eq!(w.stored("c:/radio/sub/x.txt").as_deref(), Some("sub/x.txt"));
        assert_eq!(w.original("sub\\x.txt"), "sub/x.txt");
        let d = PathRules::new("GPU_IDX3", "C:\\");
        assert_eq!(d.stored("C:/x").as_deref(), Some("x"));
        let s = PathRules::new("GPU_IDX3", "/");
        assert_eq!(s.stored("/x/y").as_deref(), Some("x/y"));
        let j = PathRules::new("GPU_IDX1", "/tmp/tree");
        assert_eq!(j.stored("a\\b").as_deref(), Some("a\\b"));
        assert_eq!(j.stored("/etc/passwd"), None);
        assert_eq!(j.stored("../x"), None);
        assert_eq!(j.stored(""), None);
    }

    #[test]
    fn mtime_split() {
        assert_eq!(split_mtime(1.5), (1, 500_000_000));
        assert_eq!(split_mtime(-0.25), (-1, 750_000_000));
        assert_eq!(split_mtime(f64::NAN), (0, 0));
        assert_eq!(split_mtime(2.9999999999), (3, 0));
    }

    fn file(size: u64) -> RawFile {
        RawFile {
            path: String::new(),
            size,
            is_duplicate: false,
            original: None,
            mtime: None,
        }
    }

    #[test]
    fn first_affected_follows_the_writer_bug() {
        // a [0,100) fits; b starts at 100 in a 256-byte frame and crosses it: 156 bytes kept.
        let files = [file(100), file(400), file(10)];
        assert_eq!(
            first_affected(&files, &[0, 100, 500], 256, 266),
            Some((1, 156))
        );
        // No partly filled crossing: the first file past the end, clamped.
        let files = [file(256), file(300)];
        assert_eq!(first_affected(&files, &[0, 256], 256, 300), Some((1, 44)));
    }
}
