//! Checking an archive's data and parity volumes against its parity header, stripe by stripe: which
//! volumes are missing, of the wrong length or carry damaged stripes, and whether the parity can rebuild
//! them. Used by `verify` and as the first step of `repair`.

use super::layout::ParityHeader;
use super::{read_padded, real_bytes};
use crate::diag::{escape_path, Progress};
use crate::error::{Error, Result};
use crate::format::checksum;
use crate::format::volume::VolumeHeader;
use crate::ids::VolumeNo;
use crate::volumes::{self, parity_path};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The state of one data or parity volume.
#[derive(Debug, Clone)]
pub struct VolHealth {
    pub path: PathBuf,
    /// Missing, wrong length, damaged header: the file must be rewritten even if no stripe is bad.
    pub problem: Option<String>,
    /// Stripes whose slice fails its checksum (or cannot be read), ascending.
    pub bad: Vec<u32>,
}

impl VolHealth {
    pub fn needs_rewrite(&self) -> bool {
        self.problem.is_some() || !self.bad.is_empty()
    }

    /// One line naming what is wrong.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.problem.iter().cloned().collect();
        let whole = self.problem.as_deref() == Some("missing");
        if !self.bad.is_empty() && !whole {
            parts.push(format!(
                "{} damaged stripe{} (stripe {})",
                self.bad.len(),
                if self.bad.len() == 1 { "" } else { "s" },
                ranges(&self.bad)
            ));
        }
        format!("{}: {}", escape_path(&self.path), parts.join("; "))
    }
}

/// One parity set's data and parity volumes checked against the parity header chosen for it.
#[derive(Debug, Clone)]
pub struct Health {
    pub header: ParityHeader,
    /// The set's data volumes, in order.
    pub data: Vec<VolHealth>,
    /// The set's parity volumes, in number order (shard-major: shard `j`'s volumes are
    /// `j × R .. (j + 1) × R`).
    pub parity: Vec<VolHealth>,
    /// Parity files not used (another set, or past P), for the report.
    pub notes: Vec<String>,
}

impl Health {
    fn bad_in(v: &VolHealth, s: u32) -> bool {
        v.bad.binary_search(&s).is_ok()
    }

    /// Data slices of stripe `s` that are lost.
    pub fn erased(&self, s: u32) -> Vec<usize> {
        (0..self.data.len())
            .filter(|&i| Self::bad_in(&self.data[i], s))
            .collect()
    }

    /// The parity volume (a position in `parity`) holding shard `j`'s slice of stripe `s`.
    pub fn parity_at(&self, j: usize, s: u32) -> usize {
        (self.header.file_of(j as u32, s) - self.header.first_parity) as usize
    }

    /// Shards whose slice of stripe `s` is intact.
    pub fn good_parity(&self, s: u32) -> Vec<usize> {
        (0..self.header.parity_count as usize)
            .filter(|&j| !Self::bad_in(&self.parity[self.parity_at(j, s)], s))
            .collect()
    }

    pub fn recoverable(&self, s: u32) -> bool {
        self.erased(s).len() <= self.good_parity(s).len()
    }

    /// Stripes with more damaged data slices than intact parity slices.
    pub fn unrecoverable(&self) -> Vec<u32> {
        (0..self.header.stripe_count)
            .filter(|&s| !self.recoverable(s))
            .collect()
    }

    /// Whether `v` (data or parity) can be rewritten whole: each of its bad stripes is recoverable.
    pub fn rebuildable(&self, v: &VolHealth) -> bool {
        v.bad.iter().all(|&s| self.recoverable(s))
    }

    pub fn is_clean(&self) -> bool {
        !self
            .data
            .iter()
            .chain(&self.parity)
            .any(VolHealth::needs_rewrite)
    }

    pub fn data_damaged(&self) -> bool {
        self.data.iter().any(VolHealth::needs_rewrite)
    }

    /// One line per damaged or missing volume, data first.
    pub fn problems(&self) -> Vec<String> {
        let d = self.data.iter().filter(|v| v.needs_rewrite());
        let p = self.parity.iter().filter(|v| v.needs_rewrite());
        d.map(|v| format!("data volume {}", v.describe()))
            .chain(p.map(|v| format!("parity volume {}", v.describe())))
            .collect()
    }

    /// The verdict: repairable (and how much), or not (and what is lost).
    pub fn summary(&self) -> String {
        let p = self.header.parity_count;
        let bad_stripes: usize = self
            .data
            .iter()
            .chain(&self.parity)
            .map(|v| v.bad.len())
            .sum();
        let vols =
            |it: &mut dyn Iterator<Item = &VolHealth>| it.filter(|v| v.needs_rewrite()).count();
        let (dv, pv) = (vols(&mut self.data.iter()), vols(&mut self.parity.iter()));
        let h = &self.header;
        let set = format!(
            "data volumes {}-{}",
            h.first_data,
            h.first_data + h.data_count - 1
        );
        if self.is_clean() {
            let s = if p == 1 { "" } else { "s" };
            let v = self.parity.len();
            return format!(
                "parity ok ({set}): {v} parity volume{} over {} data volumes, can rebuild up to {p} \
                 damaged volume{s} per stripe",
                if v == 1 { "" } else { "s" },
                self.data.len()
            );
        }
        let lost = self.unrecoverable();
        if lost.is_empty() {
            return format!(
                "repairable with clc repair ({set}): {bad_stripes} damaged stripes / {} volumes ({dv} \
                 data, {pv} parity), parity can rebuild up to {p} per stripe",
                dv + pv
            );
        }
        let gone: Vec<String> = self
            .data
            .iter()
            .filter(|v| !self.rebuildable(v))
            .map(|v| escape_path(&v.path))
            .collect();
        let worst = lost
            .iter()
            .map(|&s| (self.erased(s).len(), self.good_parity(s).len(), s))
            .max()
            .unwrap_or_default();
        format!(
            "NOT repairable: {} of {} stripes have more damage than parity (stripe {} has {} damaged data \
             slices, {} intact parity slices); cannot rebuild: {}",
            lost.len(),
            self.header.stripe_count,
            worst.2,
            worst.0,
            worst.1,
            gone.join(", ")
        )
    }
}

/// Checks the archive `path` names against its parity sets (one per generation that wrote one). An
/// empty list: no parity volumes.
pub fn check(path: &Path) -> Result<Vec<Health>> {
    check_with(path, false)
}

/// [`check`], showing the bytes and volumes checked on stderr when `show` (see [`Progress`]).
pub fn check_with(path: &Path, show: bool) -> Result<Vec<Health>> {
    let base = volumes::base_of(path);
    // Files named like parity volumes that do not begin like one (a user's NAME.p2024) are not ours: a
    // parity volume of the set that lost its magic is still checked below, by its slot.
    let found: Vec<(u32, PathBuf)> = volumes::list_parity(&base)
        .into_iter()
        .filter(|(_, p)| begins_like_parity(p))
        .collect();
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let (sets, unread) = choose_headers(&base, &found)?;
    let progress = Progress::new(
        show,
        "parity check",
        sets.iter()
            .map(|h| h.data_lens.iter().sum::<u64>() + h.parity_bytes())
            .sum(),
        sets.iter()
            .map(|h| u64::from(h.data_count + h.file_count()))
            .sum(),
        "volumes",
    );
    let pr = &progress;
    let mut out = Vec::new();
    for h in &sets {
        let range = h.first_parity..h.first_parity + h.file_count();
        // Unreadable headers of volumes of the set are reported with those volumes.
        let notes: Vec<String> = Vec::new();
        let data: Vec<VolHealth> = (0..h.data_count as usize)
            .into_par_iter()
            .map(|i| {
                let n = VolumeNo(h.first_data + i as u32);
                check_data(h, i, &volumes::data_path(&base, n), pr)
            })
            .collect();
        let parity: Vec<VolHealth> = range
            .clone()
            .into_par_iter()
            .map(|k| check_parity(h, k, &parity_path(&base, k), pr))
            .collect();
        out.push(Health {
            header: h.clone(),
            data,
            parity,
            notes,
        });
    }
    progress.finish();
    let in_a_set = |n: u32| {
        sets.iter()
            .any(|h| (h.first_parity..h.first_parity + h.file_count()).contains(&n))
    };
    let mut notes: Vec<String> = unread
        .into_iter()
        .filter(|(n, _)| !in_a_set(*n))
        .map(|(_, m)| m)
        .collect();
    for (n, p) in &found {
        if !in_a_set(*n) {
            notes.push(format!(
                "{}: not part of any parity set; ignored",
                escape_path(p)
            ));
        }
    }
    if let Some(first) = out.first_mut() {
        first.notes = notes;
    }
    Ok(out)
}

/// Whether `p` begins with the parity volumes' magic.
fn begins_like_parity(p: &Path) -> bool {
    let mut b = [0u8; 8];
    volumes::open_vol(p)
        .is_ok_and(|f| f.read_exact_at(&mut b, 0).is_ok() && b == super::layout::MAGIC)
}

/// Parity volumes whose header does not decode: (number, why).
type Notes = Vec<(u32, String)>;

/// Picks the parity header to trust for each set (grouped by their first parity volume): among those
/// that decode, the one whose archive id is the data volumes' (when one can be read) held by the most
/// parity volumes. Also returns the parity volumes whose header does not decode, with the error.
fn choose_headers(base: &Path, found: &[(u32, PathBuf)]) -> Result<(Vec<ParityHeader>, Notes)> {
    let mut notes = Vec::new();
    let mut good: Vec<ParityHeader> = Vec::new();
    for (n, p) in found {
        let r = volumes::open_vol(p)
            .map_err(|e| Error::io(p, e))
            .and_then(|f| {
                let len = f.size().map_err(|e| Error::io(p, e))?;
                ParityHeader::read(&f, len, p)
            });
        match r {
            Ok(h) if h.index == *n => good.push(h),
            Ok(h) => notes.push((
                *n,
                format!(
                    "{}: header of parity volume {}, not {n}",
                    p.display(),
                    h.index
                ),
            )),
            Err(e) => notes.push((*n, e.to_string())),
        }
    }
    let data_id = data_archive_id(base);
    let mut groups: Vec<(ParityHeader, usize)> = Vec::new();
    for h in good {
        match groups.iter_mut().find(|(g, _)| g.same_set(&h)) {
            Some(g) => g.1 += 1,
            None => groups.push((h, 1)),
        }
    }
    groups.sort_by_key(|(h, n)| {
        (
            h.first_parity,
            Some(h.archive_id) != data_id,
            usize::MAX - n,
        )
    });
    let mut sets: Vec<ParityHeader> = Vec::new();
    for (h, _) in groups {
        if sets
            .last()
            .is_some_and(|l| l.first_parity == h.first_parity)
        {
            continue; // a less trusted header of the same set
        }
        if data_id.is_some_and(|id| id != h.archive_id) {
            notes.push((
                0,
                format!(
                    "the parity set from {} belongs to another archive than the data volumes",
                    parity_path(base, h.first_parity).display()
                ),
            ));
        }
        sets.push(h);
    }
    if sets.is_empty() {
        return Err(Error::Parity {
            what: escape_path(&parity_path(base, 1)),
            msg: format!(
                "parity volumes exist but none has a valid header ({})",
                notes
                    .iter()
                    .map(|(_, m)| m.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
    }
    Ok((sets, notes))
}

/// The archive id most data volumes' headers carry (volumes 1 … 8 are enough to decide).
fn data_archive_id(base: &Path) -> Option<[u8; 16]> {
    let mut count: HashMap<[u8; 16], usize> = HashMap::new();
    for n in 1..=8 {
        let p = volumes::data_path(base, VolumeNo(n));
        let Ok(f) = volumes::open_vol(&p) else {
            continue;
        };
        let mut b = [0u8; VolumeHeader::SIZE];
        if f.read_exact_at(&mut b, 0).is_ok() {
            if let Ok(h) = VolumeHeader::decode(&b, "") {
                *count.entry(h.archive_id).or_default() += 1;
            }
        }
    }
    count.into_iter().max_by_key(|&(_, n)| n).map(|(id, _)| id)
}

fn check_data(h: &ParityHeader, i: usize, path: &Path, progress: &Progress) -> VolHealth {
    let want = h.data_lens[i];
    // Stripes wholly past the volume's end are known zeros: never damaged.
    let real: Vec<u32> = (0..h.stripe_count)
        .filter(|&s| h.stripe_start(s) < want)
        .collect();
    let (problem, bad) = match volumes::open_vol(path) {
        Err(e) => (Some(missing(e)), real),
        Ok(f) => {
            let len = f.size().unwrap_or(0);
            let problem = length_problem(len, want);
            let at = |s| (h.stripe_start(s), real_bytes(h, want, s), h.shard_len(s));
            (
                problem,
                bad_stripes(&f, &real, at, |s| h.data_sum(i, s), progress),
            )
        }
    };
    progress.items(1);
    VolHealth {
        path: path.to_path_buf(),
        problem,
        bad,
    }
}

/// Parity volume number `k` of the set `h`.
fn check_parity(h: &ParityHeader, k: u32, path: &Path, progress: &Progress) -> VolHealth {
    let (j, stripes) = h.slot_of(k);
    let j = j as usize;
    let all: Vec<u32> = stripes.collect();
    let (problem, bad) = match volumes::open_vol(path) {
        Err(e) => (Some(missing(e)), all),
        Ok(f) => {
            let len = f.size().unwrap_or(0);
            let want_hdr = ParityHeader {
                index: k,
                ..h.clone()
            };
            let header = match ParityHeader::read(&f, len, path) {
                Ok(o) if o == want_hdr => None,
                Ok(_) => Some("header of another parity set or slot".to_string()),
                Err(_) if len < h.header_len() => None, // said by the length
                Err(e) => Some(format!("damaged header ({e})")),
            };
            let problem = [length_problem(len, h.file_len(k)), header]
                .into_iter()
                .flatten()
                .reduce(|a, b| format!("{a}; {b}"));
            let at = |s| (h.slice_offset(s), h.shard_len(s), h.shard_len(s));
            (
                problem,
                bad_stripes(&f, &all, at, |s| h.parity_sum(j, s), progress),
            )
        }
    };
    progress.items(1);
    VolHealth {
        path: path.to_path_buf(),
        problem,
        bad,
    }
}

/// Stripes of `stripes` whose slice does not hash to `want(s)`. `at(s)` gives the slice's offset, how many
/// bytes of it to read from the file and its length; the rest is zeros.
fn bad_stripes(
    f: &volumes::Vol,
    stripes: &[u32],
    at: impl Fn(u32) -> (u64, usize, usize),
    want: impl Fn(u32) -> u64,
    progress: &Progress,
) -> Vec<u32> {
    let mut buf = Vec::new();
    stripes
        .iter()
        .copied()
        .filter(|&s| {
            let (off, real, len) = at(s);
            buf.clear();
            buf.resize(len, 0);
            progress.bytes(real as u64);
            read_padded(f, off, &mut buf[..real]).is_err() || checksum(&buf) != want(s)
        })
        .collect()
}

fn missing(e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        "missing".into()
    } else {
        format!("cannot be read ({e})")
    }
}

fn length_problem(len: u64, want: u64) -> Option<String> {
    match len.cmp(&want) {
        std::cmp::Ordering::Less => Some(format!("truncated: {len} of {want} bytes")),
        std::cmp::Ordering::Greater => Some(format!("too long: {len} bytes, should be {want}")),
        std::cmp::Ordering::Equal => None,
    }
}

/// "0-3, 7, 9-10" for sorted numbers (at most 8 runs shown).
pub fn ranges(v: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    let shown = out.len().min(8);
    let more = if out.len() > shown { ", …" } else { "" };
    format!("{}{more}", out[..shown].join(", "))
}
