//! `clc pack`: scan → whole-file dedup → stream (chunk, chunk dedup, frames) → compress (CPU or GPU) →
//! volumes → index + footer. Stages run at once, joined by bounded channels.

pub mod compress;
pub mod stream;
pub mod writer;

use crate::config::Config;
use crate::dedup;
use crate::error::{Error, Result};
use crate::format::index::{Entry, EntryKind, Frame, Index, NONE};
use crate::format::{frame::FrameHeader, FORMAT_VERSION};
use crate::gpu::Gpu;
use crate::scan::{self, ScanEntry};
use crate::warn::Warnings;
use compress::{Compressor, Counters, Encoded};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

pub struct PackOptions {
    pub src: PathBuf,
    /// Archive base path: volumes are `<out>.001`, ….
    pub out: PathBuf,
    pub force: bool,
    pub progress: bool,
}

/// What a pack did, for the summary.
#[derive(Debug, Default, Clone)]
pub struct PackStats {
    pub files: u64,
    pub dirs: u64,
    pub other: u64,
    pub bytes_in: u64,
    pub unique_bytes: u64,
    pub dup_files: u64,
    pub dup_bytes: u64,
    pub hardlinks: u64,
    pub frames: u64,
    pub gpu_frames: u64,
    pub cpu_frames: u64,
    pub raw_frames: u64,
    pub gpu_redone: u64,
    pub stored_bytes: u64,
    pub volumes: Vec<PathBuf>,
    pub seconds: f64,
    pub warnings: usize,
    pub gpu: Option<String>,
    pub dedup: dedup::Stats,
    /// The parity volumes written (PARITY > 0).
    pub parity: Option<crate::parity::create::Created>,
}

/// Packs `opts.src` into a new archive. `gpu` compresses (and hashes) when given.
pub fn pack(
    cfg: &Config,
    opts: &PackOptions,
    gpu: Option<&Gpu>,
    warn: &Warnings,
) -> Result<PackStats> {
    let t0 = Instant::now();
    prepare_output(&opts.out, opts.force)?;
    let trace = std::env::var_os("CLC_TRACE").is_some();
    let phase = |what: &str| {
        if trace {
            eprintln!("clc: trace: {what} at {:.3} s", t0.elapsed().as_secs_f64());
        }
    };
    let scanned = scan::scan(&opts.src, cfg.scan_workers(), warn)?;
    phase("scan done");
    let mut st = PackStats {
        gpu: gpu.map(Gpu::describe),
        ..PackStats::default()
    };

    // Hardlinks: the first path (in sorted order) of an inode is the file, the others link to it.
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

    // Whole-file dedup over the files that own data.
    let owners: Vec<usize> = (0..scanned.len())
        .filter(|&i| scanned[i].kind == EntryKind::File && !link_of.contains_key(&i))
        .collect();
    let cands: Vec<dedup::Candidate> = owners
        .iter()
        .filter(|&&i| scanned[i].size > dedup::STREAM_DEDUP_MAX)
        .map(|&i| dedup::Candidate {
            id: i,
            path: &scanned[i].abs,
            size: scanned[i].size,
        })
        .collect();
    let fnv = |paths: &[&Path]| fnv_files(paths, gpu);
    let (groups, dstats) = dedup::find(&cands, &fnv, warn);
    st.dedup = dstats;
    phase(&format!("whole-file dedup done {:?}", st.dedup));
    let jobs = make_jobs(cfg.order_similar, &scanned, &owners, groups);
    let archive_id = archive_id(cfg, &opts.src, &scanned);

    // The stream: reader → sequencer → compressors → writer.
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let progress = progress_bar(opts.progress, total);
    let counters = Counters::default();
    let comp = Compressor {
        codec: cfg.frame_codec(),
        params: cfg.encode_params(),
        gpu,
        counters: &counters,
        warn,
    };
    let mut vw = writer::VolumeWriter::new(&opts.out, cfg.volume_size, archive_id);
    let result = std::thread::scope(|s| -> Result<(stream::Tables, Vec<Frame>)> {
        let depth = cfg.read_buffer_batches.max(1);
        let (read_tx, read_rx) = crossbeam_channel::bounded(depth);
        let batch = cfg.compressor_batch_size.max(1);
        // Frames waiting for a compressor: two GPU batches, or one per CPU thread.
        let queued = if gpu.is_some() {
            batch * 2
        } else {
            cfg.threads()
        };
        let (frame_tx, frame_rx) = crossbeam_channel::bounded::<stream::RawFrame>(queued);
        let (enc_tx, enc_rx) =
            crossbeam_channel::bounded::<Vec<Encoded>>(cfg.write_buffer_batches.max(1));
        // CPU path: a token per frame from compression until it is written, so that at most two frames
        // per thread are held between the sequencer and the volumes, however long one frame takes.
        let (tok_tx, tok_rx) = crossbeam_channel::bounded::<()>(cfg.threads() * 2);
        s.spawn(move || stream::reader(jobs, cfg, read_tx, warn));
        let seq = s.spawn({
            let progress = &progress;
            move || stream::sequencer(read_rx, cfg, frame_tx, progress)
        });
        if gpu.is_some() {
            // Two feeders, so one batch uploads or downloads while the other computes.
            for _ in 0..2 {
                let (frame_rx, enc_tx, comp) = (frame_rx.clone(), enc_tx.clone(), &comp);
                s.spawn(move || {
                    while let Ok(first) = frame_rx.recv() {
                        let mut b = vec![first];
                        while b.len() < batch {
                            match frame_rx.recv() {
                                Ok(f) => b.push(f),
                                Err(_) => break,
                            }
                        }
                        if enc_tx.send(comp.batch(b)).is_err() {
                            return;
                        }
                    }
                });
            }
        } else {
            // Every frame is its own task on the worker pool.
            let (frame_rx, enc_tx, comp) = (frame_rx.clone(), enc_tx.clone(), &comp);
            s.spawn(move || {
                rayon::in_place_scope(|rs| {
                    for f in frame_rx {
                        if tok_tx.send(()).is_err() {
                            return;
                        }
                        let enc_tx = enc_tx.clone();
                        rs.spawn(move |_| {
                            let _ = enc_tx.send(vec![comp.one(&f)]);
                        });
                    }
                });
            });
        }
        drop((frame_rx, enc_tx));
        let tokens = gpu.is_none().then_some(&tok_rx);
        let frames = write_in_order(&mut vw, enc_rx, tokens);
        drop(tok_rx); // a dispatcher waiting for a token after an error gives up
        let frames = frames?;
        let tables = seq
            .join()
            .map_err(|_| Error::Other("pack: sequencer panicked".into()))?;
        Ok((tables, frames))
    });
    progress.finish_and_clear();
    phase("stream done");
    let (tables, frames) = match result {
        Ok(r) => r,
        Err(e) => {
            remove_all(vw.paths());
            return Err(e);
        }
    };

    let index = build_index(
        cfg, &opts.src, &scanned, &link_of, tables, frames, &mut st, warn,
    );
    let raw_index = index.encode();
    phase(&format!("index built ({} bytes)", raw_index.len()));
    let paths = vw.paths().to_vec();
    let vols = vw.finish(&raw_index).inspect_err(|_| remove_all(&paths))?;
    phase("index written, volumes closed");
    st.stored_bytes = vols
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    if cfg.parity > 0 {
        let c = crate::parity::create(&opts.out, &vols, cfg.parity, archive_id)
            .inspect_err(|_| remove_all(&vols))?;
        st.parity = Some(c);
    }
    st.volumes = vols;
    st.gpu_frames = counters.gpu_frames.load(Ordering::Relaxed);
    st.cpu_frames = counters.cpu_frames.load(Ordering::Relaxed);
    st.raw_frames = counters.raw_frames.load(Ordering::Relaxed);
    st.gpu_redone = counters.gpu_redone.load(Ordering::Relaxed);
    st.seconds = t0.elapsed().as_secs_f64();
    st.warnings = warn.count();
    Ok(st)
}

/// FNV-1a 64 of whole files: on the GPU in batches of at most 256 MiB read in parallel (files over 64 MiB,
/// unreadable ones and failed batches go to the CPU), else on the CPU, which also gives each file's BLAKE3
/// from the same read.
fn fnv_files(paths: &[&Path], gpu: Option<&Gpu>) -> Vec<Option<dedup::FileHashes>> {
    use rayon::prelude::*;
    let Some(g) = gpu else {
        return dedup::fnv_cpu(paths);
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
                    .then(|| std::fs::read(paths[i]).ok())
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
) -> Vec<stream::Job> {
    let mut group_of: HashMap<usize, usize> = HashMap::new();
    for (g, grp) in groups.iter().enumerate() {
        for &id in &grp.ids {
            group_of.insert(id, g);
        }
    }
    let mut jobs = Vec::new();
    for &i in owners {
        let (entries, expect) = match group_of.get(&i) {
            Some(&g) if groups[g].ids[0] == i => (groups[g].ids.clone(), Some(groups[g].hash)),
            Some(_) => continue,
            None => (vec![i], None),
        };
        jobs.push(stream::Job {
            paths: entries.iter().map(|&e| scanned[e].abs.clone()).collect(),
            entries,
            expect,
            size: scanned[i].size,
            run: false,
        });
    }
    if order_similar {
        let name = |j: &stream::Job| file_name(&scanned[j.entries[0]].path);
        let mut count: HashMap<&[u8], usize> = HashMap::new();
        for j in &jobs {
            *count.entry(name(j)).or_default() += 1;
        }
        jobs.sort_by_cached_key(|j| {
            similarity_key(&scanned[j.entries[0]].path, count[name(j)] > 1)
        });
        for k in 1..jobs.len() {
            jobs[k].run = name(&jobs[k]) == name(&jobs[k - 1]);
        }
    }
    jobs
}

/// Writes frames in id order as they arrive; after each, gives back one token of `tokens`.
fn write_in_order(
    vw: &mut writer::VolumeWriter,
    rx: crossbeam_channel::Receiver<Vec<Encoded>>,
    tokens: Option<&crossbeam_channel::Receiver<()>>,
) -> Result<Vec<Frame>> {
    let mut next = 0u32;
    let mut waiting: BTreeMap<u32, Encoded> = BTreeMap::new();
    let mut frames = Vec::new();
    for batch in rx {
        for e in batch {
            waiting.insert(e.id, e);
        }
        while let Some(e) = waiting.remove(&next) {
            let h = FrameHeader {
                codec: e.codec,
                flags: e.flags,
                raw_len: e.raw_len,
                stored_len: e.stored.len() as u32,
                checksum: e.checksum,
                frame_id: e.id,
            };
            let (volume, offset) = vw.write_frame(&h, &e.stored)?;
            frames.push(Frame {
                volume,
                offset,
                stored_len: h.stored_len,
                raw_len: h.raw_len,
                codec: h.codec,
                flags: h.flags,
                checksum: Some(h.checksum),
            });
            next += 1;
            if let Some(t) = tokens {
                let _ = t.try_recv();
            }
        }
    }
    Ok(frames)
}

#[allow(clippy::too_many_arguments)]
fn build_index(
    cfg: &Config,
    src: &Path,
    scanned: &[ScanEntry],
    link_of: &HashMap<usize, usize>,
    t: stream::Tables,
    frames: Vec<Frame>,
    st: &mut PackStats,
    warn: &Warnings,
) -> Index {
    let mut new_id: HashMap<usize, u64> = HashMap::new();
    let mut entries = Vec::with_capacity(scanned.len());
    let mut seen_content: HashMap<u64, ()> = HashMap::new();
    for (i, s) in scanned.iter().enumerate() {
        let mut e = Entry::new(s.path.clone(), s.kind, s.mode);
        (e.uid, e.gid, e.mtime_sec, e.mtime_nsec, e.rdev) =
            (s.uid, s.gid, s.mtime_sec, s.mtime_nsec, s.rdev);
        e.xattrs = s.xattrs.clone();
        match s.kind {
            EntryKind::File => {
                if let Some(&p) = link_of.get(&i) {
                    let Some(&pid) = new_id.get(&p) else {
                        warn.warn(format!(
                            "{}: hardlink target was left out, so is it",
                            s.abs.display()
                        ));
                        continue;
                    };
                    e.kind = EntryKind::Hardlink;
                    e.link = pid;
                    e.size = entries.get(pid as usize).map_or(0, |t: &Entry| t.size);
                    st.hardlinks += 1;
                } else {
                    let Some(&c) = t.entry_content.get(&i) else {
                        continue; // unreadable: warned by the reader, left out entirely
                    };
                    e.link = c;
                    e.size = if c == NONE {
                        0
                    } else {
                        t.contents[c as usize].size
                    };
                    if c != NONE && seen_content.insert(c, ()).is_some() {
                        st.dup_files += 1;
                        st.dup_bytes += e.size;
                    }
                    st.files += 1;
                }
            }
            EntryKind::Symlink => {
                e.target = s.target.clone();
                e.size = s.target.len() as u64;
                st.other += 1;
            }
            EntryKind::Dir => st.dirs += 1,
            _ => st.other += 1,
        }
        new_id.insert(i, entries.len() as u64);
        entries.push(e);
    }
    st.frames = frames.len() as u64;
    st.bytes_in = t.bytes_in;
    st.unique_bytes = t.unique_bytes;
    let mut params = base_params(cfg, src);
    params.extend([
        ("bytes_in".into(), t.bytes_in.to_string()),
        ("unique_bytes".into(), t.unique_bytes.to_string()),
        ("entries_files".into(), st.files.to_string()),
        ("entries_dirs".into(), st.dirs.to_string()),
    ]);
    params.sort();
    Index {
        params,
        entries,
        contents: t.contents,
        refs: t.refs,
        chunks: t.chunks,
        frames,
    }
}

fn base_params(cfg: &Config, src: &Path) -> Vec<(String, String)> {
    vec![
        ("format_version".into(), FORMAT_VERSION.to_string()),
        ("codec".into(), cfg.codec.name().into()),
        (
            "stream_order".into(),
            if cfg.order_similar { "similar" } else { "path" }.into(),
        ),
        ("frame_size".into(), cfg.frame_size.to_string()),
        (
            "adaptive_frames".into(),
            if cfg.adaptive_frames { "true" } else { "false" }.into(),
        ),
        ("small_frame_size".into(), cfg.frame_limits().0.to_string()),
        ("large_frame_size".into(), cfg.frame_limits().2.to_string()),
        ("volume_size".into(), cfg.volume_size.to_string()),
        ("chunk_min".into(), cfg.chunk_min.to_string()),
        ("chunk_avg".into(), cfg.chunk_avg.to_string()),
        ("chunk_max".into(), cfg.chunk_max.to_string()),
        ("hash_log".into(), cfg.hash_log.to_string()),
        ("hash_candidates".into(), cfg.hash_candidates.to_string()),
        (
            "good_enough_match".into(),
            cfg.good_enough_match.to_string(),
        ),
        ("subblock_size".into(), cfg.subblock_size.to_string()),
        ("clc_version".into(), env!("CARGO_PKG_VERSION").into()),
        ("source_root".into(), src.to_string_lossy().into_owned()),
    ]
}

/// blake3("clc-archive-id-v1" ‖ params ‖ listing)[0..16]: the same input and config give the same id.
fn archive_id(cfg: &Config, src: &Path, scanned: &[ScanEntry]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(b"clc-archive-id-v1");
    for (k, v) in base_params(cfg, src) {
        h.update(&(k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    for e in scanned {
        h.update(&(e.path.len() as u64).to_le_bytes());
        h.update(&e.path);
        h.update(&[e.kind as u8]);
        h.update(&e.size.to_le_bytes());
        h.update(&e.mtime_sec.to_le_bytes());
        h.update(&e.mtime_nsec.to_le_bytes());
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    id
}

/// Refuses to overwrite `NAME.001` (or `NAME.p001`) unless `force`; with `force`, removes every `NAME.NNN`
/// and `NAME.pNNN` so no stale volume of an older archive is taken for part of the new one.
fn prepare_output(out: &Path, force: bool) -> Result<()> {
    let stale_parity = crate::parity::list(out);
    let first = match stale_parity.first() {
        Some((_, p)) if !writer::volume_path(out, 1).exists() => p.clone(),
        _ => writer::volume_path(out, 1),
    };
    if first.symlink_metadata().is_ok() && !force {
        return Err(Error::Usage(format!(
            "{}: already exists (use --force to overwrite)",
            first.display()
        )));
    }
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: output directory does not exist",
            dir.display()
        )));
    }
    if force {
        let parity = stale_parity.into_iter().map(|(_, p)| p);
        for p in crate::archive::volumes::list(out).into_iter().chain(parity) {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

fn progress_bar(show: bool, total: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb
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
