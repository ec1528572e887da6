//! Text and JSON for `clc list` and `clc info` (the summaries of pack, extract and verify: [`crate::summary`]).

use crate::archive::Archive;
use crate::diag::escape;
use crate::format::index::{Entry, EntryId, EntryKind, ValidIndex};
use crate::summary::{param_value, FrameCounts};
use serde_json::json;
use std::os::unix::ffi::OsStrExt;

/// `drwxr-xr-x`-style mode string.
pub fn mode_string(kind: EntryKind, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(kind.letter());
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o40, 'r'),
        (0o20, 'w'),
        (0o10, 'x'),
        (0o4, 'r'),
        (0o2, 'w'),
        (0o1, 'x'),
    ];
    for (i, (b, c)) in bits.iter().enumerate() {
        let set = mode & b != 0;
        let special = match i {
            2 => mode & 0o4000 != 0,
            5 => mode & 0o2000 != 0,
            8 => mode & 0o1000 != 0,
            _ => false,
        };
        s.push(match (set, special) {
            (true, false) => *c,
            (false, false) => '-',
            (true, true) => {
                if i == 8 {
                    't'
                } else {
                    's'
                }
            }
            (false, true) => {
                if i == 8 {
                    'T'
                } else {
                    'S'
                }
            }
        });
    }
    s
}

/// `YYYY-MM-DD HH:MM` in UTC.
pub fn time_string(sec: i64) -> String {
    // UTC, civil-from-days (Howard Hinnant's algorithm).
    let days = sec.div_euclid(86400);
    let rem = sec.rem_euclid(86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// The size `list` shows: a file's, a hardlink's file's, a symlink's target length (what the mount
/// shows), 0 for anything else. The index's stored size of non-files is never shown: an archive could
/// make it say anything.
fn entry_size(idx: &ValidIndex, id: EntryId, e: &Entry) -> u64 {
    match e.kind {
        EntryKind::File | EntryKind::Hardlink => idx.data_size(id),
        EntryKind::Symlink => e.target.len() as u64,
        _ => 0,
    }
}

/// The path of the file hardlink `id` names.
fn link_path(idx: &ValidIndex, id: EntryId) -> Option<&[u8]> {
    Some(&idx.entry(idx.hardlink_target(id)?)?.path)
}

/// One `ls -l`-like line for entry `id` (empty for no such entry).
pub fn list_line(idx: &ValidIndex, id: EntryId) -> String {
    let Some(e) = idx.entry(id) else {
        return String::new();
    };
    let mut s = format!(
        "{} {}/{} {:>12} {} {}",
        mode_string(e.kind, e.mode),
        e.uid,
        e.gid,
        entry_size(idx, id, e),
        time_string(e.mtime_sec),
        escape(&e.path)
    );
    match e.kind {
        EntryKind::Symlink => s.push_str(&format!(" -> {}", escape(&e.target))),
        EntryKind::Hardlink => {
            let t = link_path(idx, id).unwrap_or_default();
            s.push_str(&format!(" link to {}", escape(t)));
        }
        EntryKind::CharDev | EntryKind::BlockDev => s.push_str(&format!(
            " [{}:{}]",
            libc::major(e.rdev as libc::dev_t),
            libc::minor(e.rdev as libc::dev_t)
        )),
        _ => {}
    }
    s
}

/// Entry `id` as a JSON object (null for no such entry).
pub fn list_json(idx: &ValidIndex, id: EntryId) -> serde_json::Value {
    let Some(e) = idx.entry(id) else {
        return serde_json::Value::Null;
    };
    let kind = match e.kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Hardlink => "hardlink",
        EntryKind::Fifo => "fifo",
        EntryKind::CharDev => "chardev",
        EntryKind::BlockDev => "blockdev",
        EntryKind::Socket => "socket",
    };
    let mut v = json!({
        "path": json_name(&e.path),
        "type": kind,
        "mode": format!("{:04o}", e.mode),
        "uid": e.uid,
        "gid": e.gid,
        "size": entry_size(idx, id, e),
        "mtime": e.mtime_sec,
        "mtime_nsec": e.mtime_nsec,
    });
    if e.kind == EntryKind::Symlink {
        v["target"] = json!(json_name(&e.target));
    }
    if e.kind == EntryKind::Hardlink {
        v["link"] = json!(link_path(idx, id).map(json_name));
    }
    if !e.xattrs.is_empty() {
        v["xattrs"] = json!(e
            .xattrs
            .iter()
            .map(|(n, _)| json_name(n))
            .collect::<Vec<_>>());
    }
    let names = [Some(&e.path[..]), Some(&e.target[..]), link_path(idx, id)];
    if names
        .iter()
        .flatten()
        .any(|n| std::str::from_utf8(n).is_err())
    {
        v["escaped"] = json!(true);
    }
    v
}

/// A name for JSON: as it is when it is UTF-8 (serde escapes its control characters the JSON way), else
/// [`escape`]'s form (`\xHH` for each invalid byte), which the entry flags with `"escaped": true`. Escaping
/// a UTF-8 name too would escape it twice: `\n` in a name would reach the reader as `\\n`.
fn json_name(b: &[u8]) -> String {
    std::str::from_utf8(b).map_or_else(|_| escape(b), str::to_owned)
}

/// The frame layout: how many LZ_EXT3_SB frames have each sub-block size (read from each frame's first
/// byte), and how many of them could not be read.
fn subblock_sizes(ar: &Archive) -> (std::collections::BTreeMap<u64, u64>, u64) {
    let mut sizes = std::collections::BTreeMap::<u64, u64>::new();
    let mut unreadable = 0u64;
    for id in ar.index().frame_ids() {
        match ar.subblock_size(id) {
            Ok(Some(s)) => *sizes.entry(s).or_default() += 1,
            Ok(None) => {}
            Err(_) => unreadable += 1,
        }
    }
    (sizes, unreadable)
}

/// The facts `clc info` prints: counts and sizes as numbers, params as numbers, booleans or strings,
/// the frames counted as `pack` counts them, and the creation time (`created`, Unix seconds, and
/// `created_utc`; null for archives that do not record it).
pub fn info_json(ar: &Archive) -> serde_json::Value {
    let idx = ar.index();
    let count = |k: EntryKind| idx.entries().iter().filter(|e| e.kind == k).count();
    let bytes_in: u64 = idx
        .entries()
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .map(|e| e.size)
        .sum();
    let unique = idx.unique_bytes();
    let chunk_bytes = idx.chunk_bytes();
    let mut per_codec = serde_json::Map::new();
    for f in idx.frames() {
        let name = if f.flags & crate::format::frame::FLAG_GPU != 0 {
            format!("{}_GPU", f.codec.name())
        } else {
            f.codec.name().to_string()
        };
        let c = per_codec.entry(name).or_insert(json!(0));
        *c = json!(c.as_u64().unwrap_or(0) + 1);
    }
    let frames = FrameCounts::of_index(idx);
    let (sizes, unreadable) = subblock_sizes(ar);
    let subblock_frames: u64 = sizes.values().sum();
    let subblock_size = sizes.iter().max_by_key(|(_, n)| **n).map(|(s, _)| *s);
    let volumes: Vec<serde_json::Value> = ar
        .volume_paths()
        .iter()
        .map(|p| json!({"path": json_name(p.as_os_str().as_bytes()), "bytes": crate::volumes::size(p).ok()}))
        .collect();
    let param = |k: &str| {
        idx.params()
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let created = param("created").and_then(|t| t.parse::<i64>().ok());
    let mut v = json!({
        "format": ar.kind().describe(),
        "created": created,
        "created_utc": created.map(time_string),
        "files": count(EntryKind::File),
        "hardlinks": count(EntryKind::Hardlink),
        "dirs": count(EntryKind::Dir),
        "symlinks": count(EntryKind::Symlink),
        "other": count(EntryKind::Fifo) + count(EntryKind::CharDev) + count(EntryKind::BlockDev) + count(EntryKind::Socket),
        "bytes_in": bytes_in,
        "unique_file_bytes": unique,
        "unique_chunk_bytes": chunk_bytes,
        "bytes_stored": frames.stored_bytes,
        "frames_per_codec": per_codec,
        "subblock_size": subblock_size,
        "subblock_frames": subblock_frames,
        "subblock_sizes": sizes.iter().map(|(s, n)| (s.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "subblock_unreadable": unreadable,
        "volumes": volumes,
        "params": idx.params().iter().map(|(k, v)| (k.clone(), param_value(v))).collect::<serde_json::Map<_, _>>(),
        "damaged_files": ar.damaged().len(),
        "snapshot": ar.selected().map(|s| s.record.name.clone()),
        "snapshots": snapshots_json(ar),
        "bytes_total": volumes_bytes(ar),
    });
    frames.add_json(bytes_in, &mut v);
    v
}

/// The bytes of all data volumes.
fn volumes_bytes(ar: &Archive) -> u64 {
    ar.volume_paths()
        .iter()
        .map(|p| crate::volumes::size(p).unwrap_or(0))
        .sum()
}

/// Every snapshot of a versioned archive, oldest first: name, time (seconds since 1970 and UTC text),
/// source, entries, files, their bytes, and the bytes its generation added to the archive.
pub fn snapshots_json(ar: &Archive) -> Vec<serde_json::Value> {
    ar.snapshots()
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let r = &s.record;
            json!({
                "name": r.name,
                "time": r.time,
                "utc": utc_string(r.time),
                "source": json_name(&r.source),
                "entries": r.entries,
                "files": r.files,
                "bytes_in": r.bytes_in,
                "generation": s.generation,
                "bytes_added": ar.added_bytes(k),
            })
        })
        .collect()
}

/// `2026-11-30 05:28:00 UTC`.
pub fn utc_string(sec: i64) -> String {
    format!("{}:{:02} UTC", time_string(sec), sec.rem_euclid(60))
}

/// How an entry differs between two trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Only in the second tree.
    Added,
    /// Only in the first tree.
    Removed,
    /// In both, with other bytes, another type or another link target.
    Modified,
    /// In both with the same bytes, but other metadata (mode, owner, mtime, xattrs).
    Metadata,
}

impl Change {
    /// The mark `clc diff` prints: `+`, `-`, `M`, `m`.
    pub fn mark(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Modified => 'M',
            Change::Metadata => 'm',
        }
    }
}

/// The changes from tree `a` to tree `b` (two snapshots of one archive, so equal content ids are equal
/// bytes and equal chunk lists too), in path order.
pub fn diff(a: &ValidIndex, b: &ValidIndex) -> Vec<(Change, Vec<u8>)> {
    let (ea, eb) = (a.entries(), b.entries());
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < ea.len() || j < eb.len() {
        let ord = match (ea.get(i), eb.get(j)) {
            (Some(x), Some(y)) => x.path.cmp(&y.path),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                out.push((Change::Removed, ea[i].path.clone()));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push((Change::Added, eb[j].path.clone()));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let c = compare(a, EntryId(i as u64), b, EntryId(j as u64));
                if let Some(c) = c {
                    out.push((c, ea[i].path.clone()));
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// How entry `x` of `a` and entry `y` of `b` (same path) differ, if they do.
fn compare(a: &ValidIndex, x: EntryId, b: &ValidIndex, y: EntryId) -> Option<Change> {
    let (ex, ey) = (a.entry(x)?, b.entry(y)?);
    let same_bytes =
        |cx: Option<crate::format::index::ContentId>,
         cy: Option<crate::format::index::ContentId>| match (cx, cy) {
            (None, None) => true,
            (Some(p), Some(q)) => p == q || a.chunks_of(p).eq(b.chunks_of(q)),
            _ => false,
        };
    let kind = |e: &Entry| match e.kind {
        EntryKind::Hardlink => EntryKind::File,
        k => k,
    };
    let data_same = kind(ex) == kind(ey)
        && a.data_size(x) == b.data_size(y)
        && same_bytes(a.content_of(x), b.content_of(y))
        && ex.target == ey.target
        && ex.rdev == ey.rdev;
    if !data_same {
        return Some(Change::Modified);
    }
    let (mx, my) = (
        a.entry(a.data_entry(x)).unwrap_or(ex),
        b.entry(b.data_entry(y)).unwrap_or(ey),
    );
    let meta = |e: &Entry| {
        (
            e.mode,
            e.uid,
            e.gid,
            e.mtime_sec,
            e.mtime_nsec,
            e.xattrs.clone(),
        )
    };
    (meta(mx) != meta(my)).then_some(Change::Metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(mode_string(EntryKind::Dir, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(EntryKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(EntryKind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(time_string(0), "1970-01-01 00:00");
        assert_eq!(time_string(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(escape(b"a\nb\xffc"), "a\\nb\\xffc");
    }
}
