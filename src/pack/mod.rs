//! `clc pack`, as a sequence of stages: prepare the output → scan the tree → plan (hardlinks, whole-file
//! dedup, stream order; [`plan`]) → stream (read, chunk, chunk dedup, frames; [`stream`]) → compress on
//! the CPU or the GPU ([`compress`]) → write volumes in order → index ([`index`]) and footer → parity
//! volumes. The stream's stages run at once, joined by bounded channels. `CLC_TRACE=1` times each stage
//! ([`diag::trace`]).

pub mod append;
pub mod compress;
pub mod index;
pub mod output;
pub mod plan;
pub mod snapshot;
pub mod stream;

use crate::archive::VolumeWriter;
use crate::config::Config;
use crate::dedup;
use crate::diag::trace::{self, Stage};
use crate::diag::{self, Warnings};
use crate::error::{Error, Result};
use crate::format::frame::FrameHeader;
use crate::format::generation::{GenIndex, SnapshotRecord};
use crate::format::index::{Dict, Entry, Frame, VolumeNo};
use crate::gpu::Gpu;
use crate::scan;
use crate::volumes;
use append::Previous;
use compress::{Compressor, Counters, Encoded, Lanes, PackGpu};
use index::{EntryBuilder, GenParts};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;
use stream::{FrameParts, FramePool, Job, Seed, Tables};

pub use compress::{GpuUse, OpenAhead, Split};

#[derive(Clone, Debug, Default)]
pub struct PackOptions {
    pub src: PathBuf,
    /// Archive base path: volumes are `<out>.001`, ….
    pub out: PathBuf,
    pub force: bool,
    pub progress: bool,
    /// Add a snapshot to the archive at `out` (creating a versioned archive when there is none).
    pub append: bool,
    /// The new snapshot's name (default: the UTC start time).
    pub name: Option<String>,
    /// Read every file, even those the files cache says are unchanged.
    pub rescan: bool,
}

/// What a pack did, for the summary.
#[derive(Debug, Default, Clone)]
pub struct PackStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// FIFOs, sockets and device nodes.
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
    /// Bytes of the data volumes (frames, headers, index, footer).
    pub stored_bytes: u64,
    /// Bytes of the frames' stored data: what the data became.
    pub frame_bytes: u64,
    /// The frame codec asked for (frames it does not shrink are RAW).
    pub codec: &'static str,
    pub volumes: Vec<PathBuf>,
    pub seconds: f64,
    pub warnings: usize,
    pub gpu: Option<String>,
    pub dedup: dedup::Stats,
    /// The parity volumes written (PARITY > 0).
    pub parity: Option<crate::parity::create::Created>,
    /// The snapshot written (versioned archives), and its generation.
    pub snapshot: Option<String>,
    pub generation: u32,
    /// Files the files cache knew unchanged (not read), and their bytes.
    pub unchanged_files: u64,
    pub unchanged_bytes: u64,
    /// Frames stored after a dictionary of earlier frames (an append).
    pub dict_frames: u64,
}

/// Decoded earlier frames an append keeps for dictionaries.
const DICT_CACHE: u64 = 96 << 20;

/// Fails with [`Error::Interrupted`] once SIGINT or SIGTERM has arrived (see `sys::catch_interrupts`).
fn check_interrupt() -> Result<()> {
    match crate::sys::interrupted() {
        Some(sig) => Err(Error::Interrupted(sig)),
        None => Ok(()),
    }
}

/// A scan on a thread of its own, with its own warnings sink (a fork of the pack's).
type ScanThread = std::thread::JoinHandle<(Result<Vec<scan::ScanEntry>>, Warnings)>;

/// Starts scanning `src` (extended attributes included: a new archive) on a thread of its own.
fn spawn_scan(src: &std::path::Path, workers: usize, warn: &Warnings) -> ScanThread {
    let (src, w) = (src.to_path_buf(), warn.fork());
    std::thread::spawn(move || (scan::scan_with(&src, workers, true, &w), w))
}

/// The scan's entries, its warnings added to `warn`.
fn join_scan(h: ScanThread, warn: &Warnings) -> Result<Vec<scan::ScanEntry>> {
    let (r, w) = h
        .join()
        .map_err(|_| Error::Internal("the scan panicked".into()))?;
    warn.absorb(w);
    r
}

/// Seconds and nanoseconds since 1970 now.
fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// Packs `opts.src` into a new archive, or (`opts.append`) adds a snapshot of it to the archive there.
/// `gpu` compresses (and hashes) when given. Stages: claim the output → scan → files cache → plan →
/// stream → entries and snapshot → volumes → parity. On any error, and on SIGINT/SIGTERM once
/// `sys::catch_interrupts` is on, every file written is removed.
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
    let created = diag::creation_time();
    let started = now();
    // A new archive in a bucket: the tree is scanned while the store's client starts and the output is
    // claimed (its one `LIST`); a failed claim is reported at once, without waiting for the scan.
    let early = (volumes::remote::is_remote(&opts.out) && !opts.append)
        .then(|| spawn_scan(&opts.src, cfg.scan_workers(), warn));
    let mut claim = output::claim(&opts.out, opts.force, opts.append)?;
    let pending = std::mem::take(&mut claim.pending);
    let prev = claim.previous.as_ref().map(Previous::new).transpose()?;
    let cfg = &fit(cfg, prev.as_ref(), &opts.out)?;
    trace::note("output claimed");
    let root_mtime = std::fs::metadata(&opts.src).ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        (m.mtime(), m.mtime_nsec() as u32)
    });
    // An append reads extended attributes after the scan, only for what the files cache does not know.
    let mut scanned = match early {
        Some(h) => join_scan(h, warn)?,
        None => scan::scan_with(&opts.src, cfg.scan_workers(), prev.is_none(), warn)?,
    };
    check_interrupt()?;
    // A new archive in a bucket takes its lock while the tree is scanned and the first frames are
    // compressed: the volume writer waits for it before it creates the first volume. Held until the pack
    // returns (parity included).
    let bucket_lock = std::sync::Arc::new(parking_lot::Mutex::new(None));
    let slot = bucket_lock.clone();
    let gate = move || -> Result<()> {
        *slot.lock() = pending.wait()?;
        trace::note("output locked");
        Ok(())
    };
    trace::add(Stage::Scan, t0, Instant::now(), 0);
    trace::note("scan done");
    let cache = match &prev {
        Some(p) => p.files_cache(&mut scanned, opts.rescan, warn),
        None => plan::Cache::default(),
    };
    let known = &cache.known;
    trace::note(&format!("files cache: {} unchanged", known.len()));
    // Whole-file dedup hashes on the GPU only when it was given (auto opens it later, if at all).
    let given = match gpu {
        GpuUse::Given(g) => Some(g),
        _ => None,
    };
    let plan = plan::plan(
        &scanned,
        &cache,
        cfg.order_similar,
        cfg.whole_below(),
        given,
        warn,
    );
    check_interrupt()?;
    trace::note(&format!("whole-file dedup done {:?}", plan.dedup));
    let archive_id = match &prev {
        Some(p) => p.ar.archive_id(),
        None => index::archive_id(cfg, &opts.src, &scanned),
    };
    let (seed, old_hashes) = match &prev {
        Some(p) if !plan.jobs.is_empty() => p.seed()?,
        Some(p) => (
            Seed {
                bases: p.bases(),
                ..Seed::default()
            },
            Vec::new(),
        ),
        None => Default::default(),
    };
    let bases = seed.bases;
    trace::note("seeded");

    let total: u64 = plan.jobs.iter().map(|j| j.size).sum();
    let cfg = &{
        let mut c = cfg.clone();
        c.fit_input(total);
        c
    };
    let gpu = PackGpu::new(gpu, total);
    let counters = Counters::default();
    // An append reads earlier frames for dictionaries through a cache of its own.
    let dict_cache = prev
        .as_ref()
        .map(|p| crate::cache::FrameCache::new(p.ar, DICT_CACHE));
    let dict_bytes = |d: &Dict| -> Result<Vec<u8>> {
        use crate::cache::FrameSource;
        let (Some(cache), Some(p)) = (dict_cache.as_ref(), prev.as_ref()) else {
            return Err(Error::Internal("a dictionary without an archive".into()));
        };
        let spans =
            p.ar.index()
                .spans(&d.runs)
                .ok_or_else(|| Error::Internal("a dictionary of unknown chunks".into()))?;
        crate::cache::dict_bytes(&spans, &mut |f| cache.frame(f))
    };
    let dict_encoders = crate::codec::DictEncoders::default();
    let comp = Compressor {
        codec: cfg.frame_codec(),
        params: cfg.encode_params(),
        gpu: None, // the compress stage adds `gpu`'s device
        counters: &counters,
        warn,
        dicts: prev.is_some().then_some(&dict_bytes as compress::DictBytes),
        dict_encoders: &dict_encoders,
    };
    let plan_dicts = prev.as_ref().map(|p| p as &dyn stream::DictPlan);
    let progress = diag::Progress::new(
        opts.progress,
        "pack",
        total,
        plan.jobs.iter().map(|j| j.entries.len() as u64).sum(),
        "files",
    );
    let first = VolumeNo(claim.first_volume);
    let mut vw = VolumeWriter::starting_at(
        &opts.out,
        cfg.volume_size,
        archive_id,
        first,
        crate::format::version_for(cfg.frame_codec()),
    );
    vw.gate(Box::new(gate));
    let streamed = stream_all(
        cfg,
        &comp,
        &gpu,
        plan.jobs,
        (seed, plan_dicts),
        &progress,
        &mut vw,
    );
    progress.finish();
    trace::note("stream done");
    let (tables, frames, dicts) = streamed?;
    vw.kick_writeback()?;
    check_interrupt()?;

    let (unique_bytes, frame_count) = (tables.unique_bytes, frames.len() as u64);
    let versioned = opts.append;
    let frame_bytes: u64 = frames.iter().map(|f| u64::from(f.stored_len)).sum();
    let t_fin = Instant::now();
    let eb = EntryBuilder {
        src: &opts.src,
        scanned: &scanned,
        link_of: &plan.link_of,
        known,
        stamp_before: versioned.then_some((started.0 - 1, started.1)),
    };
    let (entries, counts) = eb.entries(&tables, warn);
    trace::note("entries built");
    let parts = GenParts {
        cfg,
        src: &opts.src,
        generation: prev.as_ref().map_or(1, Previous::generation),
        versioned,
        first_volume: first.0,
        earlier: prev.as_ref().map_or_else(Vec::new, Previous::earlier),
        bases,
        old_hashes,
        root_mtime,
        created,
    };
    // Format version 5: this run's tree (the new snapshot's, or the plain archive's) paged in directory
    // order after the index, for the mount (FORMAT.md 12); built on a thread of its own while the
    // generation index is built and encoded (each took 6-8 ms of a 0.3 s pack on 16 cores, run 69).
    let (generation, flags) = (parts.generation, parts.flags());
    let (tree, built) = std::thread::scope(|s| {
        let tree = s.spawn(|| {
            let pages = crate::format::tree::PageCodec::for_version(crate::format::version_for(
                cfg.frame_codec(),
            ));
            let tree = crate::format::tree::build(&entries, generation, flags, unique_bytes, pages);
            trace::note(&format!("paged tree built ({} records)", tree.records()));
            tree
        });
        let built = (|| {
            let mut gen = parts.build(tables, &counts, frames, dicts);
            trace::note("generation tables built");
            let snapshot = attach_tree(&mut gen, &entries, prev.as_ref(), opts, started.0)?;
            trace::note("snapshot placed");
            let raw_index = gen.encode();
            trace::note(&format!("index built ({} bytes)", raw_index.len()));
            Ok::<_, Error>((gen, snapshot, raw_index))
        })();
        (tree.join(), built)
    });
    let (gen, snapshot, raw_index) = built?;
    let tree =
        tree.map_err(|_| Error::Internal("pack: the paged tree's thread panicked".into()))?;
    check_interrupt()?;
    let sized = vw.finish_sized(&raw_index, Some(&tree))?;
    trace::note("index written, volumes in place");
    trace::add(Stage::Finish, t_fin, Instant::now(), raw_index.len() as u64);
    // The sizes as written: no `stat` (or `HEAD` in a bucket) of each volume after.
    let stored_bytes = sized.iter().map(|(_, n)| n).sum();
    let vols: Vec<PathBuf> = sized.into_iter().map(|(p, _)| p).collect();
    // Each generation's own parity set over its new volumes, numbered on from the archive's last.
    let parity = match cfg.parity {
        0 => None,
        pct => {
            let place = crate::parity::SetPlace {
                volumes: &vols,
                first_data: first.0,
                first_parity: crate::volumes::list_parity(&opts.out)
                    .last()
                    .map_or(1, |(n, _)| n + 1),
                volume_size: cfg.volume_size,
            };
            Some(
                check_interrupt()
                    .and_then(|()| crate::parity::create(&opts.out, &place, pct, archive_id))
                    .inspect_err(|_| remove_all(&vols))?,
            )
        }
    };
    if let Err(e) = check_interrupt() {
        remove_all(&vols);
        if let Some(p) = &parity {
            remove_all(&p.paths);
        }
        return Err(e);
    }
    let c = counts;
    trace::report();
    Ok(PackStats {
        files: c.files,
        dirs: c.dirs,
        symlinks: c.symlinks,
        other: c.other,
        bytes_in: c.bytes_in,
        unique_bytes,
        dup_files: c.dup_files,
        dup_bytes: c.dup_bytes,
        hardlinks: c.hardlinks,
        frames: frame_count,
        gpu_frames: counters.gpu_frames.load(Ordering::Relaxed),
        cpu_frames: counters.cpu_frames.load(Ordering::Relaxed),
        raw_frames: counters.raw_frames.load(Ordering::Relaxed),
        gpu_redone: counters.gpu_redone.load(Ordering::Relaxed),
        stored_bytes,
        frame_bytes,
        // What the frames are written in (LZ_EXT3_SB for lz_ext3 with sub-blocks), on the CPU and the
        // GPU alike (`Gpu::compress_codec` follows the same SUBBLOCK_SIZE).
        codec: cfg.frame_codec().name(),
        volumes: vols,
        seconds: t0.elapsed().as_secs_f64(),
        warnings: warn.count(),
        gpu: gpu.describe(),
        dedup: plan.dedup,
        parity,
        snapshot,
        generation: gen.generation,
        unchanged_files: known.len() as u64,
        unchanged_bytes: known.values().map(|&(_, n)| n).sum(),
        dict_frames: counters.dict_frames.load(Ordering::Relaxed),
    })
}

/// The config a pack runs with: frames (and so chunks) capped to fit a volume (FORMAT.md: VOLUME_SIZE
/// is a hard limit), and, for an append, the archive's chunk sizes and CHUNK_FILES_FROM, so that
/// unchanged data cuts into the same chunks. Those come from the archive's index, so each is checked
/// as its config key's value would be (FastCDC asserts on sizes out of its ranges), and the three sizes
/// must be in order: anything else is an error naming the archive `out` and the param.
fn fit(cfg: &Config, prev: Option<&Previous>, out: &Path) -> Result<Config> {
    let mut c = cfg.clone();
    if let Some(p) = prev {
        let damaged = |why: String| Error::Damaged {
            path: out.display().to_string(),
            why,
        };
        let mut adopt = |param: &str, key: &str| -> Result<bool> {
            let Some(v) = p.param(param) else {
                return Ok(false);
            };
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(damaged(format!(
                    "its index param {param} = {v:?} is not a number"
                )));
            }
            c.set(key, v)
                .map_err(|e| damaged(format!("its index param {param} = {v}: {e}")))?;
            Ok(true)
        };
        let mut all = true;
        for (param, key) in [
            ("chunk_min", "CHUNK_MIN_SIZE"),
            ("chunk_avg", "CHUNK_AVG_SIZE"),
            ("chunk_max", "CHUNK_MAX_SIZE"),
        ] {
            all &= adopt(param, key)?;
        }
        // Archives made before CHUNK_FILES_FROM cut every file (their params lack it).
        if !adopt("chunk_files_from", "CHUNK_FILES_FROM")? {
            c.chunk_files_from = 0;
        }
        if all {
            if !(c.chunk_min <= c.chunk_avg && c.chunk_avg <= c.chunk_max) {
                return Err(damaged(format!(
                    "its index params chunk_min {}, chunk_avg {}, chunk_max {} are not in order",
                    c.chunk_min, c.chunk_avg, c.chunk_max
                )));
            }
        } else {
            // Not all three recorded: this run's sizes.
            (c.chunk_min, c.chunk_avg, c.chunk_max) = (cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max);
        }
    }
    c.fit_volume(crate::archive::writer::max_frame(c.volume_size));
    Ok(c)
}

/// Puts the tree into the generation index: a plain archive's whole entry table, or a versioned
/// archive's snapshot (its runs, sharing the previous snapshot's records, and its record; before it, when
/// the archive was plain, a record for its old tree). Returns the new snapshot's name.
fn attach_tree(
    gen: &mut GenIndex,
    entries: &[Entry],
    prev: Option<&Previous>,
    opts: &PackOptions,
    started: i64,
) -> Result<Option<String>> {
    if !gen.versioned() {
        for e in entries {
            crate::format::generation::encode_entry(&mut gen.entry_area, e);
        }
        return Ok(None);
    }
    let mut records: Vec<SnapshotRecord> = Vec::new();
    let mut taken: Vec<String> = prev.map_or_else(Vec::new, |p| {
        p.names().into_iter().map(String::from).collect()
    });
    if let Some(p) = prev.filter(|p| p.is_plain()) {
        let name = snapshot::utc_name(p.plain_time());
        records.push(snapshot::record(
            name.clone(),
            p.plain_time(),
            p.param("source_root").unwrap_or("").as_bytes(),
            p.entries(),
            vec![p.plain_run()],
        ));
        taken.push(name);
    }
    let prev_runs = prev.map(Previous::runs);
    let placed = match prev {
        Some(p) => snapshot::place(
            entries,
            Some((p.entries(), prev_runs.as_deref().unwrap_or(&[]))),
            &snapshot::v3_area(p.h),
            gen.generation,
            0,
        ),
        None => snapshot::place(entries, None, &|_| false, gen.generation, 0),
    };
    let taken_refs: Vec<&str> = taken.iter().map(String::as_str).collect();
    let name = snapshot::name(opts.name.as_deref(), started, &taken_refs)?;
    use std::os::unix::ffi::OsStrExt;
    records.push(snapshot::record(
        name.clone(),
        started,
        opts.src.as_os_str().as_bytes(),
        entries,
        placed.runs,
    ));
    gen.entry_area = placed.area;
    gen.snapshots = records;
    Ok(Some(name))
}

/// The stream: reader → cutter → sequencer → compressors → writer, each on its own thread(s), joined by bounded
/// channels; frame buffers go round through a [`FramePool`]. `comp` is the compressor without its GPU,
/// which the compress stage takes from `gpu`. Returns the stream's tables and the frames as written.
fn stream_all(
    cfg: &Config,
    comp: &Compressor,
    gpu: &PackGpu,
    jobs: Vec<Job>,
    (seed, dicts): (Seed, Option<&dyn stream::DictPlan>),
    progress: &diag::Progress,
    vw: &mut VolumeWriter,
) -> Result<(Tables, Vec<Frame>, Vec<Dict>)> {
    let first_frame = seed.bases.frames as u32;
    let warn = comp.warn;
    let batch = cfg.compressor_batch_size.max(1);
    // Idle frame buffers kept for reuse: as many as can be in flight.
    let (_, normal, large) = cfg.frame_limits();
    let pool = FramePool::new(
        cfg.threads() * 2 + batch * 2 + 4,
        normal.max(large) as usize,
    );
    let bufs = stream::ReadPool::new(cfg);
    std::thread::scope(|s| {
        let (read_tx, read_rx) = crossbeam_channel::bounded(stream::read_depth(cfg));
        let (slot_tx, slot_rx) = stream::read_slots(cfg);
        // One cut batch waiting for the sequencer while the next is cut.
        let (cut_tx, cut_rx) = crossbeam_channel::bounded(1);
        // Frames waiting for the compress stage's dispatcher: one per CPU thread (the GPU's wait in a
        // queue of their own, `compress::stage`).
        let (frame_tx, frame_rx) = crossbeam_channel::bounded::<FrameParts>(cfg.threads());
        let (enc_tx, enc_rx) =
            crossbeam_channel::bounded::<Vec<Encoded>>(cfg.write_buffer_batches.max(1));
        // A token per frame from compression until it is written, so that at most two frames per thread
        // (and, with a GPU, two batches per feeder) are held between the sequencer and the volumes,
        // however long one frame takes.
        let gpu_room = if gpu.planned() { batch * 4 } else { 0 };
        let (tok_tx, tok_rx) = crossbeam_channel::bounded::<()>(cfg.threads() * 2 + gpu_room);
        let pool = &pool;
        let bufs = &bufs;
        s.spawn(move || stream::reader_into(jobs, cfg, (read_tx, slot_tx), warn, bufs));
        s.spawn(move || stream::cutter((read_rx, slot_rx), cfg, cut_tx));
        let seq =
            s.spawn(move || stream::sequencer(cut_rx, cfg, seed, dicts, frame_tx, bufs, progress));
        let lanes = Lanes {
            frames: frame_rx,
            out: enc_tx,
            tokens: tok_tx,
        };
        s.spawn(move || compress::stage(comp, gpu, batch, lanes, pool));
        let written = write_in_order(vw, first_frame, enc_rx, Some(&tok_rx));
        drop(tok_rx); // a dispatcher waiting for a token after an error gives up
        let (frames, dicts) = written?;
        let tables = seq
            .join()
            .map_err(|_| Error::Internal("pack: sequencer panicked".into()))?;
        Ok((tables, frames, dicts))
    })
}

/// Writes frames in id order (from `next`) as they arrive; after each, gives back one token of `tokens`.
/// Returns the frames and their dictionaries. Stops at SIGINT/SIGTERM.
fn write_in_order(
    vw: &mut VolumeWriter,
    mut next: u32,
    rx: crossbeam_channel::Receiver<Vec<Encoded>>,
    tokens: Option<&crossbeam_channel::Receiver<()>>,
) -> Result<(Vec<Frame>, Vec<Dict>)> {
    let mut waiting: BTreeMap<u32, Encoded> = BTreeMap::new();
    let mut frames = Vec::new();
    let mut dicts = Vec::new();
    for batch in rx {
        check_interrupt()?;
        for e in batch {
            waiting.insert(e.id, e);
        }
        while let Some(mut e) = waiting.remove(&next) {
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
            dicts.extend(e.dict.take());
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
    Ok((frames, dicts))
}

fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        let _ = volumes::remove(p);
    }
}
