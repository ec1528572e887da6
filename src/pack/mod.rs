//! `clc pack`, as a sequence of stages: prepare the output → scan the tree → plan (hardlinks, whole-file
//! dedup, stream order; [`plan`]) → stream (read, chunk, chunk dedup, frames; [`stream`]) → compress on
//! the CPU or the GPU ([`compress`]) → write volumes in order → index ([`index`]) and footer → parity
//! volumes. The stream's stages run at once, joined by bounded channels.

pub mod compress;
pub mod index;
pub mod plan;
pub mod stream;

use crate::archive::VolumeWriter;
use crate::config::Config;
use crate::dedup;
use crate::diag::{self, Trace, Warnings};
use crate::error::{Error, Result};
use crate::format::frame::FrameHeader;
use crate::format::index::{Frame, VolumeNo};
use crate::gpu::Gpu;
use crate::scan;
use crate::volumes;
use compress::{Compressor, Counters, Encoded};
use crossbeam_channel::{Receiver, Sender};
use index::IndexBuilder;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use stream::{Job, RawFrame, Tables};

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
    let trace = Trace::start();
    prepare_output(&opts.out, opts.force)?;
    let scanned = scan::scan(&opts.src, cfg.scan_workers(), warn)?;
    trace.stage("scan done");
    let plan = plan::plan(&scanned, cfg.order_similar, gpu, warn);
    trace.stage(&format!("whole-file dedup done {:?}", plan.dedup));
    let archive_id = index::archive_id(cfg, &opts.src, &scanned);

    let counters = Counters::default();
    let comp = Compressor {
        codec: cfg.codec,
        params: cfg.encode_params(),
        gpu,
        counters: &counters,
        warn,
    };
    let progress = diag::progress_bar(opts.progress, plan.jobs.iter().map(|j| j.size).sum());
    let mut vw = VolumeWriter::new(&opts.out, cfg.volume_size, archive_id);
    let streamed = stream_all(cfg, &comp, plan.jobs, &progress, &mut vw);
    progress.finish_and_clear();
    trace.stage("stream done");
    let (tables, frames) = match streamed {
        Ok(r) => r,
        Err(e) => {
            remove_all(&vw.paths());
            return Err(e);
        }
    };

    let (bytes_in, unique_bytes, frame_count) =
        (tables.bytes_in, tables.unique_bytes, frames.len() as u64);
    let builder = IndexBuilder {
        cfg,
        src: &opts.src,
        scanned: &scanned,
        link_of: &plan.link_of,
    };
    let (index, counts) = builder.build(tables, frames, warn);
    let raw_index = index.encode();
    trace.stage(&format!("index built ({} bytes)", raw_index.len()));
    let paths = vw.paths().to_vec();
    let vols = vw.finish(&raw_index).inspect_err(|_| remove_all(&paths))?;
    trace.stage("index written, volumes closed");
    let parity = match cfg.parity {
        0 => None,
        pct => Some(
            crate::parity::create(&opts.out, &vols, pct, archive_id)
                .inspect_err(|_| remove_all(&vols))?,
        ),
    };
    let c = counts;
    Ok(PackStats {
        files: c.files,
        dirs: c.dirs,
        other: c.other,
        bytes_in,
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
    })
}

/// The stream: reader → sequencer → compressors → writer, each on its own thread(s), joined by bounded
/// channels. Returns the stream's tables and the frames as written.
fn stream_all(
    cfg: &Config,
    comp: &Compressor,
    jobs: Vec<Job>,
    progress: &indicatif::ProgressBar,
    vw: &mut VolumeWriter,
) -> Result<(Tables, Vec<Frame>)> {
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
        let seq = s.spawn(move || stream::sequencer(read_rx, cfg, frame_tx, progress));
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
        let frames = write_in_order(vw, enc_rx, tokens);
        drop(tok_rx); // a dispatcher waiting for a token after an error gives up
        let frames = frames?;
        let tables = seq
            .join()
            .map_err(|_| Error::Internal("pack: sequencer panicked".into()))?;
        Ok((tables, frames))
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

/// Writes frames in id order as they arrive; after each, gives back one token of `tokens`.
fn write_in_order(
    vw: &mut VolumeWriter,
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

/// Refuses to overwrite `NAME.001` (or `NAME.p001`) unless `force`; with `force`, removes every `NAME.NNN`
/// and `NAME.pNNN` so no stale volume of an older archive is taken for part of the new one.
fn prepare_output(out: &Path, force: bool) -> Result<()> {
    let stale_parity = volumes::list_parity(out);
    let first = match stale_parity.first() {
        Some((_, p)) if !volumes::data_path(out, VolumeNo(1)).exists() => p.clone(),
        _ => volumes::data_path(out, VolumeNo(1)),
    };
    if first.symlink_metadata().is_ok() && !force {
        return Err(Error::Usage(format!(
            "{}: already exists (use --force to overwrite)",
            first.display()
        )));
    }
    let dir = volumes::dir_of(out);
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: output directory does not exist",
            dir.display()
        )));
    }
    if force {
        let parity = stale_parity.into_iter().map(|(_, p)| p);
        let data = volumes::list_data(out).into_iter().map(|(_, p)| p);
        for p in data.chain(parity) {
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
