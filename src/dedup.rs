//! Whole-file dedup through a staged filter: size → first 2 bytes → last 2 bytes → 3 bytes around the middle
//! → FNV-1a 64 of the whole file (a candidate filter only) → BLAKE3 of the whole file (identity). Only files
//! whose BLAKE3 is equal are merged; FNV-1a never decides alone. Without a GPU the candidate key is the
//! first 8 bytes of the BLAKE3 itself ([`blake3_cpu`]), read once for both stages.
//!
//! `clc pack` gives this filter the files that the stream cuts into chunks (CHUNK_FILES_FROM and larger)
//! and that are larger than [`STREAM_DEDUP_MAX`]: there a duplicate found here is never read, cut or hashed
//! by the stream. Smaller files are read once, by the data stream, and two of them are merged there when
//! their chunk lists are equal (every chunk identified by its BLAKE3), which costs no extra open and no
//! extra pass: for a file of one chunk that is the same BLAKE3 of the whole file this filter would take,
//! and this filter would read the kept copy twice (docs/BENCHMARKS.md 11.16).

use crate::diag::escape_path;
use crate::diag::Warnings;
use crate::hash;
use rayon::prelude::*;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A dedup candidate: an id chosen by the caller, the path to read, the size seen by the scan.
pub struct Candidate<'a> {
    pub id: usize,
    pub path: &'a Path,
    pub size: u64,
}

/// A confirmed group of identical files: ids in the order given, and their BLAKE3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub ids: Vec<usize>,
    pub hash: [u8; 32],
}

/// How many candidates survived each stage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub same_size: usize,
    pub same_bytes: usize,
    pub same_fnv: usize,
    pub confirmed: usize,
}

/// Files up to this size are deduplicated by the data stream (by chunk list), not by [`find`], whatever
/// CHUNK_FILES_FROM is.
pub const STREAM_DEDUP_MAX: u64 = 64 << 10;

/// What the FNV-1a stage learns of a file: its FNV-1a 64 (or another 64-bit candidate key:
/// [`blake3_cpu`]), and its BLAKE3 when the same read gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHashes {
    pub fnv: u64,
    pub strong: Option<[u8; 32]>,
}

/// Hashes whole files for the FNV-1a stage: the CPU reference, or a GPU batch.
pub type FnvFn<'f> = dyn Fn(&[&Path]) -> Vec<Option<FileHashes>> + Sync + 'f;

/// FNV-1a 64 and BLAKE3 of each file on the CPU, from one read (None when it cannot be read). The BLAKE3
/// is kept for the last stage, so a file that passes the FNV-1a filter is not read a second time.
pub fn fnv_cpu(paths: &[&Path]) -> Vec<Option<FileHashes>> {
    paths
        .par_iter()
        .map(|p| {
            let mut strong = blake3::Hasher::new();
            let fnv = stream(p, hash::FNV_OFFSET, |h, b| {
                strong.update(b);
                hash::fnv1a64_update(h, b)
            })?;
            Some(FileHashes {
                fnv,
                strong: Some(*strong.finalize().as_bytes()),
            })
        })
        .collect()
}

/// BLAKE3 of each file on the CPU, with its first 8 bytes as the candidate key where [`fnv_cpu`] gives
/// FNV-1a 64 (None when it cannot be read). When every file is hashed on the CPU the FNV-1a stage spares
/// no read (the same read gives the BLAKE3 that the last stage checks), so its loop, a multiply per byte,
/// is left out: 4 % of a pack's CPU on a tree with 59 MB of same-size candidates (BENCHMARKS.md §12.4).
/// Equal files get equal keys, so [`find`] makes the same groups; the keys of one `find` must all come
/// from this function (or all from [`fnv_cpu`] and a GPU's FNV-1a).
pub fn blake3_cpu(paths: &[&Path]) -> Vec<Option<FileHashes>> {
    paths
        .par_iter()
        .map(|p| {
            let strong = blake3_file(p)?;
            let key = u64::from_le_bytes(strong[..8].try_into().expect("8 of 32 bytes"));
            Some(FileHashes {
                fnv: key,
                strong: Some(strong),
            })
        })
        .collect()
}

/// Opens a source file for hashing: never through a symlink swapped in since the scan, never blocking on
/// a FIFO (what is stored is read again, and checked, by the pack's reader: `scan::Source::open`). Gives
/// its length as the check that it is a regular file saw it.
fn open(p: &Path) -> Option<(File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(p)
        .ok()?;
    let m = f.metadata().ok().filter(|m| m.is_file())?;
    Some((f, m.len()))
}

/// A whole source file (for hashing on the GPU), opened as [`open`] does.
pub fn read_whole(p: &Path) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    open(p)?.0.read_to_end(&mut v).ok()?;
    Some(v)
}

fn stream<T>(p: &Path, init: T, mut f: impl FnMut(T, &[u8]) -> T) -> Option<T> {
    let (mut file, len) = open(p)?;
    // As large as the file (one more byte to see its end), at most 1 MiB: a zeroed 1 MiB buffer for each
    // small file was fresh pages each time (docs/BENCHMARKS.md 11.15).
    let mut buf = vec![0u8; len.saturating_add(1).min(1 << 20) as usize];
    let mut acc = init;
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            return Some(acc);
        }
        acc = f(acc, &buf[..n]);
    }
}

/// BLAKE3 of a whole file.
pub fn blake3_file(p: &Path) -> Option<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    stream(p, (), |(), b| {
        h.update(b);
    })?;
    Some(*h.finalize().as_bytes())
}

/// Where the byte samples come from: (position in the key, file offset, length) for the first 2, the last 2
/// and the 3 around the middle.
fn sample_spots(size: u64) -> [(usize, u64, usize); 3] {
    let n = size.min(2) as usize;
    let m = size.min(3) as usize;
    let mid = (size / 2).saturating_sub(1).min(size - m as u64);
    [(0, 0, n), (2, size - n as u64, n), (4, mid, m)]
}

fn sample(p: &Path, size: u64) -> Option<[u8; 7]> {
    let (f, _) = open(p)?;
    let mut s = [0u8; 7];
    for (at, off, len) in sample_spots(size) {
        f.read_exact_at(&mut s[at..at + len], off).ok()?;
    }
    Some(s)
}

/// Splits `groups` by `key`, keeping groups of two or more; items whose key is None are dropped.
fn refine<K: Eq + std::hash::Hash + Send>(
    groups: Vec<Vec<usize>>,
    mut key: impl FnMut(&[usize]) -> Vec<Option<K>>,
) -> Vec<Vec<usize>> {
    // One call for the members of every group, so the work (file reads, hashing, a GPU batch) runs in
    // parallel across groups, not one small group at a time.
    let all: Vec<usize> = groups.iter().flatten().copied().collect();
    let mut keys = key(&all).into_iter();
    let mut out = Vec::new();
    for g in groups {
        let mut by: HashMap<K, Vec<usize>> = HashMap::new();
        for i in g {
            if let Some(k) = keys.next().flatten() {
                by.entry(k).or_default().push(i);
            }
        }
        // Keep a deterministic order: groups by their first member.
        let mut gs: Vec<Vec<usize>> = by.into_values().filter(|v| v.len() > 1).collect();
        gs.sort();
        out.extend(gs);
    }
    out
}

/// Finds groups of identical files among `cands`. `fnv` hashes whole files (CPU or GPU).
pub fn find(cands: &[Candidate], fnv: &FnvFn, warn: &Warnings) -> (Vec<Group>, Stats) {
    let mut st = Stats::default();
    let mut by_size: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, c) in cands.iter().enumerate() {
        if c.size > 0 {
            by_size.entry(c.size).or_default().push(i);
        }
    }
    let mut groups: Vec<Vec<usize>> = by_size.into_values().filter(|g| g.len() > 1).collect();
    groups.sort();
    st.same_size = groups.iter().map(Vec::len).sum();
    let groups = refine(groups, |g| {
        g.par_iter()
            .map(|&i| sample(cands[i].path, cands[i].size))
            .collect()
    });
    st.same_bytes = groups.iter().map(Vec::len).sum();
    let mut known: HashMap<usize, [u8; 32]> = HashMap::new();
    let groups = refine(groups, |g| {
        let paths: Vec<&Path> = g.iter().map(|&i| cands[i].path).collect();
        let hs = fnv(&paths);
        for (&i, h) in g.iter().zip(&hs) {
            if let Some(FileHashes {
                strong: Some(b), ..
            }) = h
            {
                known.insert(i, *b);
            }
        }
        hs.into_iter().map(|h| h.map(|h| h.fnv)).collect()
    });
    st.same_fnv = groups.iter().map(Vec::len).sum();
    let mut hashes: HashMap<usize, [u8; 32]> = HashMap::new();
    let groups = refine(groups, |g| {
        let hs: Vec<Option<[u8; 32]>> = g
            .par_iter()
            .map(|&i| match known.get(&i) {
                Some(&h) => Some(h),
                None => blake3_file(cands[i].path),
            })
            .collect();
        for (&i, h) in g.iter().zip(&hs) {
            match h {
                Some(h) => {
                    hashes.insert(i, *h);
                }
                None => warn.warn(format!(
                    "{}: unreadable while hashing for dedup",
                    escape_path(cands[i].path)
                )),
            }
        }
        hs
    });
    st.confirmed = groups.iter().map(Vec::len).sum();
    let out = groups
        .into_iter()
        .map(|g| Group {
            hash: hashes[&g[0]],
            ids: g.iter().map(|&i| cands[i].id).collect(),
        })
        .collect();
    (out, st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_hashes_read_every_byte_whatever_the_size() {
        // Around the buffer's sizes: empty, one byte, just under, at and over 1 MiB, and several MiB.
        let d = tempfile::tempdir().unwrap();
        for len in [
            0usize,
            1,
            (1 << 20) - 1,
            1 << 20,
            (1 << 20) + 1,
            (3 << 20) + 7,
        ] {
            let v: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
            let p = d.path().join(format!("f{len}"));
            std::fs::write(&p, &v).unwrap();
            assert_eq!(
                blake3_file(&p),
                Some(*blake3::hash(&v).as_bytes()),
                "{len} bytes"
            );
            let fnv = stream(&p, hash::FNV_OFFSET, hash::fnv1a64_update);
            assert_eq!(fnv, Some(hash::fnv1a64(&v)), "{len} bytes");
        }
    }

    #[test]
    fn fnv_collisions_never_merge_different_files() {
        let d = tempfile::tempdir().unwrap();
        // Same size, same first 2, last 2 and middle 3 bytes; different elsewhere.
        let mut a = vec![b'x'; 70_000];
        let mut b = a.clone();
        a[100] = 1;
        b[100] = 2;
        let c = a.clone();
        for (n, v) in [("a", &a), ("b", &b), ("c", &c)] {
            std::fs::write(d.path().join(n), v).unwrap();
        }
        let paths: Vec<_> = ["a", "b", "c"].iter().map(|n| d.path().join(n)).collect();
        let cands: Vec<Candidate> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| Candidate {
                id: i * 10,
                path: p,
                size: 70_000,
            })
            .collect();
        // A hash that collides for everything: only BLAKE3 may separate them.
        let colliding = |ps: &[&Path]| {
            ps.iter()
                .map(|_| {
                    Some(FileHashes {
                        fnv: 42,
                        strong: None,
                    })
                })
                .collect()
        };
        let w = Warnings::new(true);
        let (groups, st) = find(&cands, &colliding, &w);
        assert_eq!(st.same_fnv, 3);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].ids, vec![0, 20]);
        assert_eq!(groups[0].hash, hash::strong(&a));
        let (groups, _) = find(&cands, &fnv_cpu, &w);
        assert_eq!(groups[0].ids, vec![0, 20]);
    }

    /// Without a GPU the candidate key is BLAKE3's first 8 bytes: the same groups as with FNV-1a, over
    /// duplicates, files equal in every sampled byte but one elsewhere, and a file that cannot be read.
    #[test]
    fn blake3_keys_make_the_groups_fnv_makes() {
        let d = tempfile::tempdir().unwrap();
        let base: Vec<u8> = (0..9000u32).map(|x| (x * 13 % 251) as u8).collect();
        let mut other = base.clone();
        other[4000] ^= 1;
        let third: Vec<u8> = base.iter().map(|b| b.wrapping_add(1)).collect();
        let files: [(&str, &[u8]); 7] = [
            ("a", &base),
            ("b", &other),
            ("c", &base),
            ("d", &third),
            ("e", &other),
            ("f", &third),
            ("g", &base),
        ];
        for (n, v) in files {
            std::fs::write(d.path().join(n), v).unwrap();
        }
        let mut paths: Vec<_> = files.iter().map(|(n, _)| d.path().join(n)).collect();
        paths.push(d.path().join("missing"));
        let cands: Vec<Candidate> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| Candidate {
                id: i,
                path: p,
                size: 9000,
            })
            .collect();
        let w = Warnings::new(true);
        let (by_fnv, st_fnv) = find(&cands, &fnv_cpu, &w);
        let (by_b3, st_b3) = find(&cands, &blake3_cpu, &w);
        assert_eq!(by_b3, by_fnv);
        assert_eq!(st_b3, st_fnv);
        let ids: Vec<Vec<usize>> = by_b3.iter().map(|g| g.ids.clone()).collect();
        assert_eq!(ids, vec![vec![0, 2, 6], vec![1, 4], vec![3, 5]]);
        assert_eq!(by_b3[0].hash, hash::strong(&base));
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let keys = blake3_cpu(&refs);
        assert!(keys[7].is_none(), "a missing file has no key");
        let k = keys[0].unwrap();
        assert_eq!(k.strong, Some(hash::strong(&base)));
        assert_eq!(k.fnv.to_le_bytes(), hash::strong(&base)[..8]);
    }

    #[test]
    fn files_that_changed_since_the_scan_drop_out() {
        let d = tempfile::tempdir().unwrap();
        let a: Vec<u8> = (0..5000u32).map(|x| (x * 7 % 251) as u8).collect();
        let mut b = a.clone();
        b[1234] ^= 0xff;
        for (n, v) in [("a", &a), ("b", &b), ("c", &a), ("d", &a)] {
            std::fs::write(d.path().join(n), v).unwrap();
        }
        let paths: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| d.path().join(n))
            .collect();
        let mut cands: Vec<Candidate> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| Candidate {
                id: i,
                path: p,
                size: 5000,
            })
            .collect();
        // "d" changed size since the scan: it must not join the group.
        cands[3].size = 4999;
        cands.push(Candidate {
            id: 9,
            path: &paths[3],
            size: 5000,
        });
        std::fs::write(&paths[3], &a[..4999]).unwrap();
        let (groups, st) = find(&cands, &fnv_cpu, &Warnings::new(true));
        assert_eq!(
            st.same_bytes, 3,
            "b differs in no sampled byte, d no longer has the scanned size"
        );
        assert_eq!(
            groups,
            vec![Group {
                ids: vec![0, 2],
                hash: hash::strong(&a)
            }]
        );
    }
}
