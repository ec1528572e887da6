//! `clc pack`, as a sequence of stages: prepare the output → scan the tree → plan (hardlinks, whole-file
//! dedup, stream order; [`plan`]) → stream (read, chunk, chunk dedup, frames; [`stream`]) → compress on
//! the CPU or the GPU ([`compress`]) → write volumes in order → index ([`index`]) and footer → parity
//! volumes. The stream's stages run at once, joined by bounded channels.

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
use crate::diag::{self, Trace, Warnings};
use crate::error::{Error, Result};
use crate::format::frame::FrameHeader;
use crate::format::generation::{GenIndex, SnapshotRecord};
use crate::format::index::{Dict, Entry, Frame, VolumeNo};
use crate::gpu::Gpu;
use crate::scan;
use append::Previous;
use compress::{Compressor, Counters, Encoded};
use crossbeam_channel::{Receiver, Sender};
use index::{EntryBuilder, GenParts};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use stream::{Job, RawFrame, Seed, Tables};

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
    let trace = Trace::start();
    let started = now();
    let claim = output::claim(&opts.out, opts.force, opts.append)?;
    let prev = claim.previous.as_ref().map(Previous::new).transpose()?;
    let cfg = &fit(cfg, prev.as_ref());
    trace.stage("output claimed");
    // An append reads extended attributes after the scan, only for what the files cache does not know.
    let mut scanned = scan::scan_with(&opts.src, cfg.scan_workers(), prev.is_none(), warn)?;
    check_interrupt()?;
    trace.stage("scan done");
    let cache = match &prev {
        Some(p) => p.files_cache(&mut scanned, opts.rescan, warn),
        None => plan::Cache::default(),
    };
    let known = &cache.known;
    trace.stage(&format!("files cache: {} unchanged", known.len()));
    let plan = plan::plan(&scanned, &cache, cfg.order_similar, gpu, warn);
    check_interrupt()?;
    trace.stage(&format!("whole-file dedup done {:?}", plan.dedup));
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
    trace.stage("seeded");

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
    let comp = Compressor {
        codec: cfg.codec,
        params: cfg.encode_params(),
        gpu,
        counters: &counters,
        warn,
        dicts: prev.is_some().then_some(&dict_bytes as compress::DictBytes),
    };
    let plan_dicts = prev.as_ref().map(|p| p as &dyn stream::DictPlan);
    let progress = diag::progress_bar(opts.progress, plan.jobs.iter().map(|j| j.size).sum());
    let first = VolumeNo(claim.first_volume);
    let mut vw = VolumeWriter::starting_at(&opts.out, cfg.volume_size, archive_id, first);
    let streamed = stream_all(cfg, &comp, plan.jobs, seed, plan_dicts, &progress, &mut vw);
    progress.finish_and_clear();
    trace.stage("stream done");
    let (tables, frames, dicts) = streamed?;
    check_interrupt()?;

    let (unique_bytes, frame_count) = (tables.unique_bytes, frames.len() as u64);
    let versioned = opts.append;
    let eb = EntryBuilder {
        src: &opts.src,
        scanned: &scanned,
        link_of: &plan.link_of,
        known: &known,
        stamp_before: versioned.then_some((started.0 - 1, started.1)),
    };
    let (entries, counts) = eb.entries(&tables, warn);
    let parts = GenParts {
        cfg,
        src: &opts.src,
        generation: prev.as_ref().map_or(1, Previous::generation),
        versioned,
        first_volume: first.0,
        earlier: prev.as_ref().map_or_else(Vec::new, Previous::earlier),
        bases,
        old_hashes,
    };
    let mut gen = parts.build(tables, &counts, frames, dicts);
    let snapshot = attach_tree(&mut gen, &entries, prev.as_ref(), opts, started.0)?;
    let raw_index = gen.encode();
    trace.stage(&format!("index built ({} bytes)", raw_index.len()));
    check_interrupt()?;
    let vols = vw.finish(&raw_index)?;
    trace.stage("index written, volumes in place");
    // Each generation's own parity set over its new volumes, numbered on from the archive's last.
    let place = crate::parity::SetPlace {
        volumes: &vols,
        first_data: first.0,
        first_parity: crate::volumes::list_parity(&opts.out)
            .last()
            .map_or(1, |(n, _)| n + 1),
        volume_size: cfg.volume_size,
    };
    let parity = match cfg.parity {
        0 => None,
        pct => Some(
            check_interrupt()
                .and_then(|()| crate::parity::create(&opts.out, &place, pct, archive_id))
                .inspect_err(|_| remove_all(&vols))?,
        ),
    };
    if let Err(e) = check_interrupt() {
        remove_all(&vols);
        if let Some(p) = &parity {
            remove_all(&p.paths);
        }
        return Err(e);
    }
    let c = counts;
    Ok(PackStats {
        files: c.files,
        dirs: c.dirs,
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
        stored_bytes: vols
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum(),
        volumes: vols,
        seconds: trace.seconds(),
        warnings: warn.count(),
        gpu: gpu.map(Gpu::describe),
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
/// is a hard limit), and, for an append, the archive's chunk sizes, so that unchanged data cuts into the
/// same chunks.
fn fit(cfg: &Config, prev: Option<&Previous>) -> Config {
    let mut c = cfg.clone();
    if let Some(p) = prev {
        let get = |k: &str| p.param(k).and_then(|v| v.parse::<u32>().ok());
        if let (Some(min), Some(avg), Some(max)) =
            (get("chunk_min"), get("chunk_avg"), get("chunk_max"))
        {
            (c.chunk_min, c.chunk_avg, c.chunk_max) = (min, avg, max);
        }
    }
    c.fit_volume(crate::archive::writer::max_frame(c.volume_size));
    c
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

/// The stream: reader → sequencer → compressors → writer, each on its own thread(s), joined by bounded
/// channels. Returns the stream's tables and the frames as written.
fn stream_all(
    cfg: &Config,
    comp: &Compressor,
    jobs: Vec<Job>,
    seed: Seed,
    dicts: Option<&dyn stream::DictPlan>,
    progress: &indicatif::ProgressBar,
    vw: &mut VolumeWriter,
) -> Result<(Tables, Vec<Frame>, Vec<Dict>)> {
    let first_frame = seed.bases.frames as u32;
    let warn = comp.warn;
    let on_gpu = comp.gpu.is_some();
    std::thread::scope(|s| {
        let depth = cfg.read_buffer_batches.max(1);
        let (read_tx, read_rx) = crossbeam_channel::bounded(depth);
        let batch = cfg.compressor_batch_size.max(1);
        // Frames waiting for a compressor: two GPU batches, or one per CPU thread.
        let queued = if on_gpu { batch * 2 } else { cfg.threads() };
        let (frame_tx, frame_rx) = crossbeam_channel::bounded::<RawFrame>(queued);
        let (enc_tx, enc_rx) =
            crossbeam_channel::bounded::<Vec<Encoded>>(cfg.write_buffer_batches.max(1));
        // CPU path: a token per frame from compression until it is written, so that at most two frames
        // per thread are held between the sequencer and the volumes, however long one frame takes.
        let (tok_tx, tok_rx) = crossbeam_channel::bounded::<()>(cfg.threads() * 2);
        s.spawn(move || stream::reader(jobs, cfg, read_tx, warn));
        let seq = s.spawn(move || stream::sequencer(read_rx, cfg, seed, dicts, frame_tx, progress));
        if on_gpu {
            // Two feeders, so one batch uploads or downloads while the other computes.
            for _ in 0..2 {
                let (frame_rx, enc_tx) = (frame_rx.clone(), enc_tx.clone());
                s.spawn(move || gpu_feed(comp, batch, frame_rx, enc_tx));
            }
        } else {
            let (frame_rx, enc_tx) = (frame_rx.clone(), enc_tx.clone());
            s.spawn(move || cpu_dispatch(comp, frame_rx, enc_tx, tok_tx));
        }
        drop((frame_rx, enc_tx));
        let tokens = (!on_gpu).then_some(&tok_rx);
        let written = write_in_order(vw, first_frame, enc_rx, tokens);
        drop(tok_rx); // a dispatcher waiting for a token after an error gives up
        let (frames, dicts) = written?;
        let tables = seq
            .join()
            .map_err(|_| Error::Internal("pack: sequencer panicked".into()))?;
        Ok((tables, frames, dicts))
    })
}

/// A GPU feeder: gathers frames into batches of `batch` and compresses each batch in one call.
fn gpu_feed(
    comp: &Compressor,
    batch: usize,
    frames: Receiver<RawFrame>,
    out: Sender<Vec<Encoded>>,
) {
    while let Ok(first) = frames.recv() {
        let mut b = vec![first];
        while b.len() < batch {
            match frames.recv() {
                Ok(f) => b.push(f),
                Err(_) => break,
            }
        }
        if out.send(comp.batch(b)).is_err() {
            return;
        }
    }
}

/// The CPU path: every frame is its own task on the worker pool, started once a token is free.
fn cpu_dispatch(
    comp: &Compressor,
    frames: Receiver<RawFrame>,
    out: Sender<Vec<Encoded>>,
    tokens: Sender<()>,
) {
    rayon::in_place_scope(|rs| {
        for f in frames {
            if tokens.send(()).is_err() {
                return;
            }
            let out = out.clone();
            rs.spawn(move |_| {
                let _ = out.send(vec![comp.one(&f)]);
            });
        }
    });
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
            let (volume, offset) = vw.write_frame(&h, &e.stored)?;
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
        let _ = std::fs::remove_file(p);
    }
}
