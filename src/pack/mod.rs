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
use crate::trace::{self, Stage};
use crate::warn::Warnings;
use compress::{Compressor, Counters, Encoded};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
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
    pack_with(cfg, opts, gpu.map_or(GpuUse::Off, GpuUse::Given), warn)
}

/// [`pack`], with the GPU given, left out or chosen by size ([`GpuUse`]).
pub fn pack_with(
    cfg: &Config,
    opts: &PackOptions,
    gpu: GpuUse<'_>,
    warn: &Warnings,
) -> Result<PackStats> {
    let t0 = Instant::now();
    trace::start();
    prepare_output(&opts.out, opts.force)?;
    let phase = trace::note;
    let scanned = scan::scan(&opts.src, cfg.scan_workers(), warn)?;
    trace::add(Stage::Scan, t0, Instant::now(), 0);
    phase("scan done");
    let mut st = PackStats::default();
    // Whole-file dedup hashes on the GPU only when it was given (auto opens it later, if at all).
    let fnv_gpu = match &gpu {
        GpuUse::Given(g) => Some(*g),
        _ => None,
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
    let fnv = |paths: &[&Path]| fnv_files(paths, fnv_gpu);
    let t_dedup = Instant::now();
    let (groups, dstats) = dedup::find(&cands, &fnv, warn);
    trace::add(Stage::Dedup, t_dedup, Instant::now(), 0);
    st.dedup = dstats;
    phase(&format!("whole-file dedup done {:?}", st.dedup));
    let jobs = make_jobs(cfg.order_similar, &scanned, &owners, groups);
    let archive_id = archive_id(cfg, &opts.src, &scanned);

    // The stream: reader → sequencer → compressors → writer.
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    let progress = progress_bar(opts.progress, total);
    let counters = Counters::default();
    let mut vw = writer::VolumeWriter::new(&opts.out, cfg.volume_size, archive_id);
    // Idle frame buffers kept for reuse: as many as can be in flight.
    let pool = stream::FramePool::new(cfg.threads() * 2 + cfg.compressor_batch_size * 2 + 4);
    // The GPU, when this pack uses one: given, or (GPU_DEVICE = auto) opened once the scan has shown
    // enough bytes for it to pay, on a thread of its own while the stream starts reading.
    let opened: OnceLock<Option<Gpu>> = OnceLock::new();
    let use_gpu = match &gpu {
        GpuUse::Off => false,
        GpuUse::Given(_) => true,
        GpuUse::Auto(_) => {
            let (want, why) = auto_wants_gpu(total, cfg.threads());
            trace::note(&format!("GPU_DEVICE = auto: {why}"));
            want
        }
    };
    let result = std::thread::scope(|s| -> Result<(stream::Tables, Vec<Frame>)> {
        let depth = cfg.read_buffer_batches.max(1);
        let (read_tx, read_rx) = crossbeam_channel::bounded(depth);
        // Frames waiting for a compressor: two GPU batches, or one per CPU thread.
        let queued = if use_gpu {
            cfg.compressor_batch_size.max(1) * 2
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
            let (progress, pool) = (&progress, &pool);
            move || stream::sequencer(read_rx, cfg, frame_tx, pool, progress)
        });
        let (counters, pool, opened, gpu) = (&counters, &pool, &opened, &gpu);
        s.spawn(move || {
            let dev: Option<&Gpu> = match gpu {
                GpuUse::Given(g) => Some(*g),
                GpuUse::Auto(open) if use_gpu => {
                    let t = Instant::now();
                    let g = opened.get_or_init(open).as_ref();
                    trace::span("GPU opened (stream running meanwhile)", t, 0);
                    g
                }
                _ => None,
            };
            let comp = Compressor {
                codec: cfg.codec,
                params: cfg.encode_params(),
                gpu: dev,
                counters,
                warn,
            };
            compress_stage(cfg, comp, frame_rx, enc_tx, tok_tx, pool);
        });
        let frames = write_in_order(&mut vw, enc_rx, Some(&tok_rx));
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

    let t_fin = Instant::now();
    let index = build_index(
        cfg, &opts.src, &scanned, &link_of, tables, frames, &mut st, warn,
    );
    let raw_index = index.encode();
    phase(&format!("index built ({} bytes)", raw_index.len()));
    let paths = vw.paths().to_vec();
    let vols = vw.finish(&raw_index).inspect_err(|_| remove_all(&paths))?;
    phase("index written, volumes closed");
    trace::add(Stage::Finish, t_fin, Instant::now(), raw_index.len() as u64);
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
    st.gpu = match gpu {
        GpuUse::Given(g) => Some(g.describe()),
        _ => opened.get().and_then(|g| g.as_ref()).map(Gpu::describe),
    };
    st.gpu_frames = counters.gpu_frames.load(Ordering::Relaxed);
    st.cpu_frames = counters.cpu_frames.load(Ordering::Relaxed);
    st.raw_frames = counters.raw_frames.load(Ordering::Relaxed);
    st.gpu_redone = counters.gpu_redone.load(Ordering::Relaxed);
    st.seconds = t0.elapsed().as_secs_f64();
    st.warnings = warn.count();
    trace::report();
    Ok(st)
}

/// Bytes a GPU batch gathers before it is launched (or COMPRESSOR_BATCH_SIZE frames, if fewer):
/// small enough that several GPUs, each with two feeders, share a few hundred MB evenly.
const GPU_BATCH_BYTES: usize = 64 << 20;

/// The compressors: on the GPU, two feeders per device, each taking the next batch of frames from
/// the queue (whichever device is free gets it: frames encode alone, so the bytes do not depend on
/// which); on the CPU, one task per frame on the worker pool. Returns when the frame queue is done.
fn compress_stage<'e>(
    cfg: &'e Config,
    comp: Compressor<'e>,
    frame_rx: crossbeam_channel::Receiver<stream::RawFrame>,
    enc_tx: crossbeam_channel::Sender<Vec<Encoded>>,
    tok_tx: crossbeam_channel::Sender<()>,
    pool: &'e stream::FramePool,
) {
    let batch = cfg.compressor_batch_size.max(1);
    if let Some(gpu) = comp.gpu {
        let comp = &comp;
        std::thread::scope(|fs| {
            for dev in 0..gpu.device_count() * 2 {
                let (frame_rx, enc_tx) = (frame_rx.clone(), enc_tx.clone());
                fs.spawn(move || {
                    while let Ok(first) = frame_rx.recv() {
                        let mut bytes = first.data.len();
                        let mut b = vec![first];
                        while b.len() < batch && bytes < GPU_BATCH_BYTES {
                            match frame_rx.recv() {
                                Ok(f) => {
                                    bytes += f.data.len();
                                    b.push(f)
                                }
                                Err(_) => break,
                            }
                        }
                        if enc_tx.send(comp.batch_on(dev / 2, b, pool)).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        return;
    }
    // Every frame is its own task on the worker pool.
    let comp = &comp;
    rayon::in_place_scope(|rs| {
        for f in frame_rx {
            if tok_tx.send(()).is_err() {
                return;
            }
            let enc_tx = enc_tx.clone();
            rs.spawn(move |_| {
                let e = comp.one(&f);
                pool.give(f.data);
                let _ = enc_tx.send(vec![e]);
            });
        }
    });
}

/// The default GPU_DEVICE = auto opens the GPU only for a stream of at least this many bytes:
/// below it, starting the device (0.5 s on the H200 machine) costs more than it could save.
pub const GPU_AUTO_MIN_BYTES: u64 = 256 << 20;

/// Compression rates measured on the lent 2 x H200 machine, 32 threads, on the same 4 MiB frames of
/// the Rust-doc tree (docs/GPU.md): the GPU encoder 2.81 GB/s on one H200 (132 compute units), the
/// CPU encoder 11-17.7 GB/s on 32 threads.
const GPU_GBS_PER_CU: f64 = 2.81 / 132.0;
const CPU_GBS_PER_THREAD: f64 = 0.5;

/// Whether GPU_DEVICE = auto uses the GPU for `total` bytes with `threads` CPU threads, and why. It
/// does when the stream is large enough and the GPUs (compute units from the cached driver probe,
/// `gpu::gpu_compute_units`) would compress faster than the CPU threads: a choice made from the
/// device set and the config, never from timings, so the archive is the same on every run.
/// `CLC_GPU_AUTO_MIN` (bytes) replaces both rules by the size alone, for benchmarks and tests.
fn auto_wants_gpu(total: u64, threads: usize) -> (bool, String) {
    if let Some(min) = std::env::var("CLC_GPU_AUTO_MIN")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        let want = total >= min;
        let verdict = if want { "is opened" } else { "is left out" };
        return (
            want,
            format!("{total} bytes, CLC_GPU_AUTO_MIN = {min}: the GPU {verdict}"),
        );
    }
    if total < GPU_AUTO_MIN_BYTES {
        return (
            false,
            format!("{total} bytes (< {GPU_AUTO_MIN_BYTES}): the GPU is left out"),
        );
    }
    let Some(cus) = crate::gpu::gpu_compute_units() else {
        return (
            false,
            format!("{total} bytes; no driver probe (GPUs unknown): the GPU is left out"),
        );
    };
    let gpu = cus as f64 * GPU_GBS_PER_CU;
    let cpu = threads as f64 * CPU_GBS_PER_THREAD;
    let want = gpu > cpu;
    let verdict = if want { "is opened" } else { "is left out" };
    (
        want,
        format!(
            "{total} bytes; GPUs ({cus} compute units) ~{gpu:.1} GB/s vs {threads} CPU threads ~{cpu:.1} GB/s: the GPU {verdict}"
        ),
    )
}

/// Which GPU a pack uses.
pub enum GpuUse<'a> {
    /// None: the CPU encodes every frame.
    Off,
    /// This one, opened already.
    Given(&'a Gpu),
    /// GPU_DEVICE = auto: opened by this function (on a thread, while the stream starts) when the
    /// scan finds at least [`GPU_AUTO_MIN_BYTES`] to pack and the GPUs would outpace the CPU threads;
    /// `None` from it means no GPU (the CPU works).
    Auto(&'a (dyn Fn() -> Option<Gpu> + Sync)),
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
            let (volume, offset) = trace::timed(Stage::Write, h.stored_len as u64, || {
                vw.write_frame(&h, &e.stored)
            })?;
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
