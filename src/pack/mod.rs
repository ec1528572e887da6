//! `clc pack`, as a sequence of stages: prepare the output → scan the tree → plan (hardlinks, whole-file
//! dedup, stream order; [`plan`]) → stream (read, chunk, chunk dedup, frames; [`stream`]) → compress on
//! the CPU or the GPU ([`compress`]) → write volumes in order → index ([`index`]) and footer → parity
//! volumes. The stream's stages run at once, joined by bounded channels. `CLC_TRACE=1` times each stage
//! ([`diag::trace`]).

pub mod compress;
pub mod index;
pub mod plan;
pub mod stream;

use crate::archive::VolumeWriter;
use crate::config::Config;
use crate::dedup;
use crate::diag::trace::{self, Stage};
use crate::diag::{self, Warnings};
use crate::error::{Error, Result};
use crate::format::frame::FrameHeader;
use crate::format::index::{Frame, VolumeNo};
use crate::format::volume::VolumeHeader;
use crate::gpu::Gpu;
use crate::scan;
use crate::volumes;
use compress::{Compressor, Counters, Encoded, Lanes, PackGpu};
use index::IndexBuilder;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;
use stream::{FramePool, Job, RawFrame, Tables};

pub use compress::{GpuUse, GPU_AUTO_MIN_BYTES};

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
    let created = diag::creation_time();
    prepare_output(&opts.out, opts.force, cfg.parity > 0)?;
    let root_mtime = std::fs::metadata(&opts.src).ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        (m.mtime(), m.mtime_nsec() as u32)
    });
    let scanned = scan::scan(&opts.src, cfg.scan_workers(), warn)?;
    trace::add(Stage::Scan, t0, Instant::now(), 0);
    trace::note("scan done");
    // Whole-file dedup hashes on the GPU only when it was given (auto opens it later, if at all).
    let given = match gpu {
        GpuUse::Given(g) => Some(g),
        _ => None,
    };
    let plan = plan::plan(&scanned, cfg.order_similar, given, warn);
    trace::note(&format!("whole-file dedup done {:?}", plan.dedup));
    let archive_id = index::archive_id(cfg, &opts.src, &scanned);

    let total: u64 = plan.jobs.iter().map(|j| j.size).sum();
    let gpu = PackGpu::new(gpu, total, cfg.threads());
    let counters = Counters::default();
    let comp = Compressor {
        codec: cfg.frame_codec(),
        params: cfg.encode_params(),
        gpu: None, // the compress stage adds `gpu`'s device
        counters: &counters,
        warn,
    };
    let progress = diag::Progress::new(
        opts.progress,
        "pack",
        total,
        plan.jobs.iter().map(|j| j.entries.len() as u64).sum(),
        "files",
    );
    let mut vw = VolumeWriter::new(&opts.out, cfg.volume_size, archive_id);
    let streamed = stream_all(cfg, &comp, &gpu, plan.jobs, &progress, &mut vw);
    progress.finish();
    trace::note("stream done");
    let (tables, frames) = match streamed {
        Ok(r) => r,
        Err(e) => {
            remove_all(vw.paths());
            return Err(e);
        }
    };

    let (bytes_in, unique_bytes, frame_count) =
        (tables.bytes_in, tables.unique_bytes, frames.len() as u64);
    let frame_bytes = frames.iter().map(|f| u64::from(f.stored_len)).sum();
    let t_fin = Instant::now();
    let builder = IndexBuilder {
        cfg,
        src: &opts.src,
        scanned: &scanned,
        link_of: &plan.link_of,
        root_mtime,
        created,
    };
    let (index, counts) = builder.build(tables, frames, warn);
    let raw_index = index.encode();
    trace::note(&format!("index built ({} bytes)", raw_index.len()));
    let paths = vw.paths().to_vec();
    let vols = vw.finish(&raw_index).inspect_err(|_| remove_all(&paths))?;
    trace::note("index written, volumes closed");
    trace::add(Stage::Finish, t_fin, Instant::now(), raw_index.len() as u64);
    let parity = match cfg.parity {
        0 => None,
        pct => Some(
            crate::parity::create(&opts.out, &vols, pct, archive_id)
                .inspect_err(|_| remove_all(&vols))?,
        ),
    };
    let c = counts;
    trace::report();
    Ok(PackStats {
        files: c.files,
        dirs: c.dirs,
        symlinks: c.symlinks,
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
        stored_bytes: vols.iter().map(|p| volumes::size(p).unwrap_or(0)).sum(),
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
    })
}

/// The stream: reader → sequencer → compressors → writer, each on its own thread(s), joined by bounded
/// channels; frame buffers go round through a [`FramePool`]. `comp` is the compressor without its GPU,
/// which the compress stage takes from `gpu`. Returns the stream's tables and the frames as written.
fn stream_all(
    cfg: &Config,
    comp: &Compressor,
    gpu: &PackGpu,
    jobs: Vec<Job>,
    progress: &diag::Progress,
    vw: &mut VolumeWriter,
) -> Result<(Tables, Vec<Frame>)> {
    let warn = comp.warn;
    let batch = cfg.compressor_batch_size.max(1);
    // Idle frame buffers kept for reuse: as many as can be in flight.
    let pool = FramePool::new(cfg.threads() * 2 + batch * 2 + 4);
    std::thread::scope(|s| {
        let depth = cfg.read_buffer_batches.max(1);
        let (read_tx, read_rx) = crossbeam_channel::bounded(depth);
        // Frames waiting for a compressor: two GPU batches, or one per CPU thread.
        let queued = if gpu.planned() {
            batch * 2
        } else {
            cfg.threads()
        };
        let (frame_tx, frame_rx) = crossbeam_channel::bounded::<RawFrame>(queued);
        let (enc_tx, enc_rx) =
            crossbeam_channel::bounded::<Vec<Encoded>>(cfg.write_buffer_batches.max(1));
        // CPU path: a token per frame from compression until it is written, so that at most two frames
        // per thread are held between the sequencer and the volumes, however long one frame takes. (The
        // GPU path takes none; whether frames go to the GPU is only known once it is opened.)
        let (tok_tx, tok_rx) = crossbeam_channel::bounded::<()>(cfg.threads() * 2);
        let pool = &pool;
        s.spawn(move || stream::reader(jobs, cfg, read_tx, warn));
        let seq = s.spawn(move || stream::sequencer(read_rx, cfg, frame_tx, pool, progress));
        let lanes = Lanes {
            frames: frame_rx,
            out: enc_tx,
            tokens: tok_tx,
        };
        s.spawn(move || compress::stage(comp, gpu, batch, lanes, pool));
        let frames = write_in_order(vw, enc_rx, Some(&tok_rx));
        drop(tok_rx); // a dispatcher waiting for a token after an error gives up
        let frames = frames?;
        let tables = seq
            .join()
            .map_err(|_| Error::Internal("pack: sequencer panicked".into()))?;
        Ok((tables, frames))
    })
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

/// Refuses to overwrite `NAME.001` (or `NAME.p001`) unless `force`. With `force`, removes the volumes of
/// the archive being replaced, so that no stale one is taken for part of the new archive: only the files
/// whose header says they are that volume (a clc volume header numbered as the name, a parity header of
/// that slot). Nothing else named like a volume is touched: a user's `NAME.2024` or `NAME.p2024`, a
/// directory `NAME.2023`, a CL_Compressor volume. All is decided before anything is removed, and a
/// `NAME.001` or `NAME.p001` that is not ours is an error (the new archive could not be written there),
/// so a refusal leaves the old archive whole. `out` may be an `s3://` URL: then the volumes are objects,
/// listed first (which checks the settings and the bucket before anything is scanned) and removed
/// through the store.
fn prepare_output(out: &Path, force: bool, parity: bool) -> Result<()> {
    let remote = volumes::remote::is_remote(out);
    if remote {
        if parity {
            return Err(Error::Usage(format!(
                "{}: parity volumes in object storage are not supported yet (use PARITY = 0)",
                out.display()
            )));
        }
        volumes::siblings(out).map_err(|e| Error::io(out, e))?;
    }
    let present = |p: &Path| {
        if remote {
            volumes::exists(p)
        } else {
            p.symlink_metadata().is_ok()
        }
    };
    let first_data = volumes::data_path(out, VolumeNo(1));
    let first_parity = volumes::parity_path(out, 1);
    let first = if !present(&first_data) && present(&first_parity) {
        &first_parity
    } else {
        &first_data
    };
    if present(first) && !force {
        return Err(Error::Usage(format!(
            "{}: already exists (use --force to overwrite)",
            diag::escape_path(first)
        )));
    }
    let dir = volumes::dir_of(out);
    if !remote && !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: output directory does not exist",
            diag::escape_path(&dir)
        )));
    }
    if force {
        let head = crate::parity::layout::ParityHeader::FIXED;
        let ours = volumes::stale_volumes(out, head, |name, b| match name {
            volumes::Name::Data(n) => {
                VolumeHeader::decode(&b[..VolumeHeader::SIZE], "").is_ok_and(|h| h.number == n.0)
            }
            volumes::Name::Parity(k) => {
                crate::parity::layout::ParityHeader::decode_fixed(b, "").is_ok_and(|h| h.index == k)
            }
        });
        let occupied = [&first_data, &first_parity]
            .into_iter()
            .find(|p| present(p) && !ours.contains(p));
        if let Some(p) = occupied {
            return Err(Error::Usage(format!(
                "{}: exists and is not a volume of a clc archive; not removed (--force replaces only \
                 an archive's own volumes)",
                diag::escape_path(p)
            )));
        }
        for p in ours {
            volumes::remove(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

fn remove_all(paths: &[PathBuf]) {
    for p in paths {
        let _ = volumes::remove(p);
    }
}
