//! The plan of a pack, made from the scanned tree before any data is streamed: which paths are
//! hardlinks of which, which files are whole-file duplicates of which (FNV-1a on the GPU or the CPU,
//! confirmed by BLAKE3), and the jobs (one per content to store) in stream order.

use super::stream::Job;
use crate::dedup;
use crate::diag::trace::{self, Stage};
use crate::diag::Warnings;
use crate::format::index::EntryKind;
use crate::gpu::Gpu;
use crate::scan::ScanEntry;
use std::collections::HashMap;
use std::path::Path;

/// What the stream needs from the scan.
pub struct Plan {
    /// Scan position of a hardlink → scan position of the file it links to (the first path of its inode).
    pub link_of: HashMap<usize, usize>,
    /// The contents to store, in stream order.
    pub jobs: Vec<Job>,
    pub dedup: dedup::Stats,
}

/// What an append knows of the files of the previous snapshot.
#[derive(Default)]
pub struct Cache {
    /// Files whose content is known without reading them: scan position → (content, size).
    pub known: HashMap<usize, (u64, u64)>,
    /// Files to read whose path held content `c` in the previous snapshot: scan position → c.
    pub prev: HashMap<usize, u64>,
}

/// Finds hardlinks and whole-file duplicates and orders the jobs (`order_similar`: see
/// [`similarity_key`]). Files the files cache knows get no job. Files under `whole_below` bytes (one
/// chunk each in the stream) and those of at most [`dedup::STREAM_DEDUP_MAX`] are left to the stream's
/// dedup, the others go through [`dedup::find`].
pub fn plan(
    scanned: &[ScanEntry],
    cache: &Cache,
    order_similar: bool,
    whole_below: u64,
    gpu: Option<&Gpu>,
    warn: &Warnings,
) -> Plan {
    let link_of = hardlinks(scanned);
    // Whole-file dedup over the files that own data and must be read.
    let owners: Vec<usize> = (0..scanned.len())
        .filter(|&i| {
            scanned[i].kind == EntryKind::File
                && !link_of.contains_key(&i)
                && !cache.known.contains_key(&i)
        })
        .collect();
    let cands: Vec<dedup::Candidate> = owners
        .iter()
        .filter(|&&i| scanned[i].size > dedup::STREAM_DEDUP_MAX && scanned[i].size >= whole_below)
        .map(|&i| dedup::Candidate {
            id: i,
            path: &scanned[i].abs,
            size: scanned[i].size,
        })
        .collect();
    trace::note(&format!(
        "plan: {} files to read, {} for whole-file dedup",
        owners.len(),
        cands.len()
    ));
    let fnv = |paths: &[&Path]| fnv_files(paths, gpu);
    let (groups, dedup) = trace::timed(Stage::Dedup, 0, || dedup::find(&cands, &fnv, warn));
    let jobs = make_jobs(order_similar, scanned, &owners, groups, &cache.prev);
    trace::note(&format!("plan: {} jobs in stream order", jobs.len()));
    Plan {
        link_of,
        jobs,
        dedup,
    }
}

/// Hardlinks: the first path (in sorted order) of an inode is the file, the others link to it.
fn hardlinks(scanned: &[ScanEntry]) -> HashMap<usize, usize> {
    let mut first_of_inode: HashMap<(u64, u64), usize> = HashMap::new();
    let mut link_of: HashMap<usize, usize> = HashMap::new();
    for (i, e) in scanned.iter().enumerate() {
        if e.kind == EntryKind::File && e.nlink > 1 {
            match first_of_inode.get(&(e.dev, e.ino)) {
                Some(&p) => {
                    link_of.insert(i, p);
                }
                None => {
                    first_of_inode.insert((e.dev, e.ino), i);
                }
            }
        }
    }
    link_of
}

/// FNV-1a 64 of whole files: on the GPU in batches of at most 256 MiB read in parallel (files over 64 MiB,
/// unreadable ones and failed batches go to the CPU, which also gives each file's BLAKE3 from the same
/// read). Without a GPU every file's BLAKE3, its first 8 bytes as the candidate key
/// ([`dedup::blake3_cpu`]: the same groups without a byte-serial FNV-1a pass).
fn fnv_files(paths: &[&Path], gpu: Option<&Gpu>) -> Vec<Option<dedup::FileHashes>> {
    use rayon::prelude::*;
    let Some(g) = gpu else {
        return dedup::blake3_cpu(paths);
    };
    let sizes: Vec<u64> = paths
        .iter()
        .map(|p| std::fs::metadata(p).map_or(u64::MAX, |m| m.len()))
        .collect();
    let mut out: Vec<Option<dedup::FileHashes>> = vec![None; paths.len()];
    let mut start = 0;
    while start < paths.len() {
        let (mut end, mut bytes) = (start, 0u64);
        while end < paths.len() && (end == start || bytes < 256 << 20) {
            bytes = bytes.saturating_add(sizes[end]);
            end += 1;
        }
        let bufs: Vec<Option<Vec<u8>>> = (start..end)
            .into_par_iter()
            .map(|i| {
                (sizes[i] <= 64 << 20)
                    .then(|| dedup::read_whole(paths[i]))
                    .flatten()
            })
            .collect();
        let on_gpu: Vec<usize> = (0..bufs.len()).filter(|&k| bufs[k].is_some()).collect();
        let refs: Vec<&[u8]> = on_gpu.iter().filter_map(|&k| bufs[k].as_deref()).collect();
        if let Ok(h) = g.fnv1a64_batch(&refs) {
            for (&k, v) in on_gpu.iter().zip(h) {
                out[start + k] = Some(dedup::FileHashes {
                    fnv: v,
                    strong: None,
                });
            }
        }
        let rest: Vec<usize> = (start..end).filter(|&i| out[i].is_none()).collect();
        let cpu = dedup::fnv_cpu(&rest.iter().map(|&i| paths[i]).collect::<Vec<_>>());
        for (i, v) in rest.into_iter().zip(cpu) {
            out[i] = v;
        }
        start = end;
    }
    out
}

fn make_jobs(
    order_similar: bool,
    scanned: &[ScanEntry],
    owners: &[usize],
    groups: Vec<dedup::Group>,
    prev: &HashMap<usize, u64>,
) -> Vec<Job> {
    let mut group_of: HashMap<usize, usize> = HashMap::new();
    for (g, grp) in groups.iter().enumerate() {
        for &id in &grp.ids {
            group_of.insert(id, g);
        }
    }
    let mut jobs = Vec::with_capacity(owners.len());
    for &i in owners {
        let (entries, expect) = match group_of.get(&i) {
            Some(&g) if groups[g].ids[0] == i => (groups[g].ids.clone(), Some(groups[g].hash)),
            Some(_) => continue,
            None => (vec![i], None),
        };
        jobs.push(Job {
            sources: entries.iter().map(|&e| scanned[e].source()).collect(),
            prev: prev.get(&i).copied(),
            entries,
            expect,
            size: scanned[i].size,
            run: false,
        });
    }
    if order_similar {
        let name = |j: &Job| file_name(&scanned[j.entries[0]].path);
        let mut count: HashMap<&[u8], usize> = HashMap::new();
        for j in &jobs {
            *count.entry(name(j)).or_default() += 1;
        }
        // On every core: on 16 cores 30-40 ms passed serially between the dedup stage's end and the
        // plan's on a tree of 24k files (docs/GPU.md run 38), part of it this sort. Measured since: the
        // jobs built, counted, keyed, sorted and marked take 12-13 ms there (19-21 ms on two cores; runs
        // 113-114); taking names and keys once in scan order and sorting (key, index) pairs was no
        // faster (run 114), so the cost is the keys' memory, not the order of the reads. Keys are unique
        // (they end in the path), so the order is the serial sort's.
        use rayon::slice::ParallelSliceMut;
        jobs.par_sort_by_cached_key(|j| {
            similarity_key(&scanned[j.entries[0]].path, count[name(j)] > 1)
        });
        for k in 1..jobs.len() {
            jobs[k].run = name(&jobs[k]) == name(&jobs[k - 1]);
        }
    }
    jobs
}

fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// Stream order that puts likely-similar files within the window of each other. Files whose name occurs
/// more than once in the tree (`repeated`) come after the others and are grouped: same extension, then
/// same name, then the parent directories read from the nearest one up, then the path. Reading parents
/// upwards puts `a-1.0/src/x/f.c` next to `a-2.0/src/x/f.c` (the same file in two versions of a tree,
/// wherever the version directory sits) rather than after every other `f.c` of `a-1.0`. Files with a
/// name of their own keep path order, which keeps a directory's related files together.
fn similarity_key(path: &[u8], repeated: bool) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 * path.len() + 5);
    if !repeated {
        key.push(0);
        key.extend_from_slice(path);
        return key;
    }
    let mut parts = path.split(|&b| b == b'/');
    let name = parts.next_back().unwrap_or(path);
    let ext = match name.iter().rposition(|&b| b == b'.') {
        Some(d) if d > 0 => &name[d + 1..],
        _ => &[],
    };
    // Fields end in 0 bytes (never in a path), so a shorter field sorts first.
    key.push(1);
    key.extend_from_slice(ext);
    key.push(0);
    key.extend_from_slice(name);
    key.push(0);
    for dir in parts.rev() {
        key.extend_from_slice(dir);
        key.push(1);
    }
    key.push(0);
    key.extend_from_slice(path);
    key
}

#[cfg(test)]
mod tests {
    use super::similarity_key;

    #[test]
    fn similar_order_puts_versions_of_a_file_side_by_side() {
        let mut paths: Vec<&[u8]> = vec![
            b"a-2.0/src/x/f.c",
            b"a-1.0/src/y/f.c",
            b"a-1.0/src/x/f.c",
            b"a-1.0/src/x/g.c",
            b"a-1.0/README",
            b"a-2.0/src/y/f.c",
            b"a-1.0/src/x/f.h",
            b"a-2.0/src/x/f.h",
        ];
        let repeated = |p: &[u8]| p.ends_with(b"f.c") || p.ends_with(b"f.h");
        paths.sort_by_key(|p| similarity_key(p, repeated(p)));
        let want: Vec<&[u8]> = vec![
            b"a-1.0/README",
            b"a-1.0/src/x/g.c",
            b"a-1.0/src/x/f.c",
            b"a-2.0/src/x/f.c",
            b"a-1.0/src/y/f.c",
            b"a-2.0/src/y/f.c",
            b"a-1.0/src/x/f.h",
            b"a-2.0/src/x/f.h",
        ];
        assert_eq!(paths, want);
    }
}
