//! The snapshot a versioned pack writes (FORMAT.md 10.4 and 10.5): its name, and its entry table as
//! runs — records the previous snapshot stored already are pointed at, only new or changed ones are
//! written into this generation's entry area.

use crate::archive::generations::History;
use crate::error::{Error, Result};
use crate::format::generation::{self, encode_entry, Run, SnapshotRecord};
use crate::format::index::{record_len, Entry};

/// A snapshot's entry table as runs, and the records this generation writes for it.
#[derive(Debug, Default)]
pub struct Placed {
    pub runs: Vec<Run>,
    /// Records to append to this generation's entry area (their runs start at `area_start`).
    pub area: Vec<u8>,
}

/// Where a record lies: generation, offset in its entry area, length.
type Loc = (u32, u64, u64);

/// Adds `loc` (one record) to `runs`, extending the last run when it continues it.
fn push(runs: &mut Vec<Run>, (g, off, len): Loc) {
    if let Some(r) = runs.last_mut() {
        if r.generation == g && r.offset + r.len == off {
            r.len += len;
            r.count += 1;
            return;
        }
    }
    runs.push(Run {
        generation: g,
        offset: off,
        len,
        count: 1,
    });
}

/// Whether generation `g`'s entry area holds version 3 records (`false` for a version 1 generation).
pub fn v3_area(h: &History) -> impl Fn(u32) -> bool + '_ {
    |g| {
        h.generations
            .get(g as usize - 1)
            .is_some_and(|g| g.v1_entries.is_none())
    }
}

/// The runs of `entries` for generation `this` whose entry area already holds `area_start` bytes:
/// an entry equal to the previous snapshot's entry of the same path (`prev`: its entries and runs)
/// points at that record when it is a version 3 record (`v3` says which generations' are); the others
/// are encoded anew. Both entry lists are sorted by path: one merge, no hashing.
pub fn place(
    entries: &[Entry],
    prev: Option<(&[Entry], &[Run])>,
    v3: &dyn Fn(u32) -> bool,
    this: u32,
    area_start: u64,
) -> Placed {
    // Where each previous record lies (None: not a version 3 record).
    let mut locs: Vec<Option<Loc>> = Vec::new();
    let pe: &[Entry] = prev.map_or(&[], |p| p.0);
    if let Some((pe, pruns)) = prev {
        locs.reserve(pe.len());
        let mut k = 0usize;
        for r in pruns {
            let stamped = v3(r.generation);
            let mut off = r.offset;
            for e in pe.iter().skip(k).take(r.count as usize) {
                let len = record_len(e, true);
                locs.push(stamped.then_some((r.generation, off, len)));
                off += len;
            }
            k += r.count as usize;
        }
    }
    let mut out = Placed::default();
    let mut j = 0usize;
    for e in entries {
        while j < pe.len() && pe[j].path < e.path {
            j += 1;
        }
        let reuse = match (pe.get(j), locs.get(j)) {
            (Some(old), Some(Some(loc))) if old == e => Some(*loc),
            _ => None,
        };
        match reuse {
            Some(loc) => push(&mut out.runs, loc),
            None => {
                let off = area_start + out.area.len() as u64;
                encode_entry(&mut out.area, e);
                let len = area_start + out.area.len() as u64 - off;
                push(&mut out.runs, (this, off, len));
            }
        }
    }
    out
}

/// The name for a snapshot started at `time`: `wanted` if given (refused when taken), else the UTC
/// time `2026-11-30T05-28-00Z`, with `-2`, `-3`, … when taken.
pub fn name(wanted: Option<&str>, time: i64, taken: &[&str]) -> Result<String> {
    if let Some(w) = wanted {
        generation::check_name(w).map_err(Error::Usage)?;
        if taken.contains(&w) {
            return Err(Error::Usage(format!(
                "a snapshot named {w} exists already; choose another --name"
            )));
        }
        return Ok(w.to_string());
    }
    let base = utc_name(time);
    let mut n = base.clone();
    let mut k = 2;
    while taken.contains(&n.as_str()) {
        n = format!("{base}-{k}");
        k += 1;
    }
    Ok(n)
}

/// `YYYY-MM-DDTHH-MM-SSZ` for `sec` seconds since 1970 UTC (no ':', so that it is a portable directory
/// name; these sort in time order for years 0 … 9999).
pub fn utc_name(sec: i64) -> String {
    let days = sec.div_euclid(86400);
    let rem = sec.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A record for a snapshot of `entries`.
pub fn record(
    name: String,
    time: i64,
    source: &[u8],
    entries: &[Entry],
    runs: Vec<Run>,
) -> SnapshotRecord {
    let files = entries
        .iter()
        .filter(|e| e.kind == crate::format::index::EntryKind::File)
        .count() as u64;
    let bytes_in = entries
        .iter()
        .filter(|e| e.kind == crate::format::index::EntryKind::File)
        .map(|e| e.size)
        .sum();
    SnapshotRecord {
        name,
        time,
        source: source.to_vec(),
        entries: entries.len() as u64,
        files,
        bytes_in,
        runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::EntryKind;

    #[test]
    fn names_in_utc_and_collisions() {
        assert_eq!(utc_name(0), "1970-01-01T00-00-00Z");
        assert_eq!(utc_name(1_796_016_480), "2026-11-30T05-28-00Z");
        assert_eq!(utc_name(951_782_400), "2000-02-29T00-00-00Z");
        let t = 1_796_016_480;
        assert_eq!(name(None, t, &[]).unwrap(), "2026-11-30T05-28-00Z");
        let taken = ["2026-11-30T05-28-00Z", "2026-11-30T05-28-00Z-2"];
        assert_eq!(name(None, t, &taken).unwrap(), "2026-11-30T05-28-00Z-3");
        assert!(name(Some("2026-11-30T05-28-00Z"), t, &taken).is_err());
        assert!(name(Some("a/b"), t, &[]).is_err());
        assert!(name(Some("a\u{1}"), t, &[]).is_err());
        assert_eq!(name(Some("nightly"), t, &taken).unwrap(), "nightly");
    }

    fn e(p: &str, size: u64) -> Entry {
        let mut e = Entry::new(p.as_bytes().to_vec(), EntryKind::File, 0o644);
        e.size = size;
        e
    }

    #[test]
    fn unchanged_entries_reuse_runs_and_changed_ones_are_written() {
        let v1 = vec![e("a", 1), e("b", 2), e("c", 3), e("d", 4)];
        let first = place(&v1, None, &|_| true, 1, 0);
        assert_eq!(first.runs.len(), 1);
        assert_eq!(first.runs[0].count, 4);
        // Unchanged: the same single run, nothing written.
        let same = place(&v1, Some((&v1, &first.runs)), &|_| true, 2, 0);
        assert_eq!(same.runs, first.runs);
        assert!(same.area.is_empty());
        // "b" changed, "e" added, "c" removed: runs a | b' | d | e, only b' and e written.
        let v2 = vec![e("a", 1), e("b", 9), e("d", 4), e("e", 5)];
        let next = place(&v2, Some((&v1, &first.runs)), &|_| true, 2, 100);
        let gens: Vec<u32> = next.runs.iter().map(|r| r.generation).collect();
        assert_eq!(gens, [1, 2, 1, 2]);
        assert_eq!(next.runs[1].offset, 100);
        assert_eq!(next.runs.iter().map(|r| r.count).sum::<u64>(), 4);
        let mut b = Vec::new();
        encode_entry(&mut b, &v2[1]);
        encode_entry(&mut b, &v2[3]);
        assert_eq!(next.area, b);
        // Records of a version 1 generation are never pointed at.
        let v1only = place(&v1, Some((&v1, &first.runs)), &|g| g != 1, 2, 0);
        assert_eq!(v1only.runs.len(), 1);
        assert_eq!(v1only.runs[0].generation, 2);
    }
}
