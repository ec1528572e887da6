//! The GPU as a helper of the frame cache's batch decoder (extract and mount). It gets frames as the
//! cache hands them over ([`StoredFrame`]: metadata and stored bytes) and never sees an archive.
//!
//! * The device is opened on a thread of its own, started by the first batch (so a mount opens it in the
//!   serving process, after its fork): until it is ready every frame decodes on the CPU, so opening
//!   OpenCL never delays a read.
//! * Each batch is split: a share of its LZ_EXT3_SB frames (codec 3) goes to the GPU while the CPU
//!   decodes the rest at the same time. The share is GPU rate / (GPU + CPU rate), each rate a running
//!   average of what its side did (decoded bytes per second of its part of a batch), so the GPU only
//!   ever adds throughput, and a GPU slower than the CPU ends up with a small share (never zero, so it
//!   keeps being measured). Batches of a few frames (a mount's reads) take their GPU frames from a
//!   running credit of the share, so one in 1/share frames goes to the GPU. Other codecs (plain
//!   LZ_EXT3 of version-1 archives included) decode on the CPU.
//! * Every GPU result is checked against the frame's length and checksum; a frame that fails, or a
//!   batch whose launch fails, is decoded on the CPU instead and counted.

use super::Gpu;
use crate::cache::{self, BatchDecoder, CpuDecoder, StoredFrame};
use crate::codec::Codec;
use crate::config::Config;
use crate::diag::{
    self,
    trace::{self, Stage},
};
use crate::error::{Error, Result};
use crate::format::index::Frame;
use parking_lot::Mutex;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Least LZ_EXT3_SB bytes (decoded) an archive must hold for extract and mount to use the GPU: below
/// that, loading OpenCL costs more than the GPU can save. `CLC_GPU_DECODE_MIN` overrides it and drops
/// the rate rule (tests, benchmarks).
pub const GPU_MIN_BYTES: u64 = 64 << 20;

/// Decode rates measured on the lent H200 machine (Rust-doc tar, 4 MiB frames, docs/GPU.md): the
/// LZ_EXT3_SB kernel 2.08 GB/s on one H200 (132 compute units) with 72 frames in a batch (run 12), the
/// CPU decoder 51 GB/s on its 16 threads (40 in runs 11-12).
const GPU_DECODE_GBS_PER_CU: f64 = 2.08 / 132.0;
const CPU_DECODE_GBS_PER_THREAD: f64 = 51.0 / 16.0;

/// GPU_DEVICE = auto: whether the GPUs the driver probe lists (without loading OpenCL) would decode
/// faster than the CPU threads, from the rates above; decided from the machine and config only.
fn gpus_outpace_cpus(cfg: &Config) -> bool {
    let cus = super::gpu_compute_units().unwrap_or(0);
    cus as f64 * GPU_DECODE_GBS_PER_CU > cfg.threads() as f64 * CPU_DECODE_GBS_PER_THREAD
}

/// Whether decoding an archive whose frame table is `frames` should use the GPU at all.
/// The one line said when the device asked for cannot be used: it names the flag and the key.
fn no_gpu_line(e: &dyn std::fmt::Display, cfg: &Config) -> String {
    format!(
        "no GPU used for decoding ({e}); decoding on the CPU (device chosen by --gpu-device or \
         GPU_DEVICE = {:?}; `clc info --devices` lists them)",
        cfg.gpu_device
    )
}

fn worth_it(cfg: &Config, frames: &[Frame]) -> bool {
    if cfg.force_cpu {
        return false;
    }
    if cfg.gpu_device != "auto" {
        return true;
    }
    // Never slower by default: the GPU only where it is expected to add throughput (CLC_GPU_DECODE_MIN
    // set: the size rule alone, for benchmarks and tests).
    let min = diag::knob_bytes("CLC_GPU_DECODE_MIN");
    if min.is_none() && !gpus_outpace_cpus(cfg) {
        return false;
    }
    let sb: u64 = frames
        .iter()
        .filter(|f| f.codec == Codec::LzExt3Sb)
        .map(|f| u64::from(f.raw_len))
        .sum();
    sb > 0 && sb >= min.unwrap_or(GPU_MIN_BYTES)
}

/// The least share the GPU keeps and the most it gets.
const SHARE_MIN: f64 = 0.005;
const SHARE_MAX: f64 = 0.97;
/// Weight of the newest measurement in a running rate.
const ALPHA: f64 = 0.5;

/// What the split is learnt from.
#[derive(Default)]
struct Split {
    /// Running rates, decoded bytes per second (0: not measured yet).
    gpu: f64,
    cpu: f64,
    /// GPU frames owed to the share by earlier batches.
    credit: f64,
}

impl Split {
    fn share(&self) -> f64 {
        if self.gpu == 0.0 || self.cpu == 0.0 {
            return 0.125; // until both sides are measured: a probe, not half the batch
        }
        (self.gpu / (self.gpu + self.cpu)).clamp(SHARE_MIN, SHARE_MAX)
    }

    /// How many of a batch's `sb` LZ_EXT3_SB frames go to the GPU, from the share and the credit.
    fn take(&mut self, sb: usize) -> usize {
        let c = self.credit + self.share() * sb as f64;
        // Until the GPU has been measured, one frame of the first batch is its probe.
        let probe = usize::from(self.gpu == 0.0 && sb > 0);
        let n = (c.floor() as usize).max(probe).min(sb);
        self.credit = (c - n as f64).min(1.0);
        n
    }

    fn learn(rate: &mut f64, bytes: u64, secs: f64) {
        if bytes == 0 || secs <= 0.0 {
            return;
        }
        let r = bytes as f64 / secs;
        *rate = if *rate == 0.0 {
            r
        } else {
            (1.0 - ALPHA) * *rate + ALPHA * r
        };
    }
}

/// Decoded bytes of the frames `ids` of `batch`.
fn raw_bytes(batch: &[StoredFrame], ids: impl Iterator<Item = usize>) -> u64 {
    ids.map(|i| u64::from(batch[i].meta.raw_len)).sum()
}

/// What the two sides of a split batch gave: the CPU's results in place (None for the GPU's frames);
/// the GPU's checked bytes per frame of its part (None: to redo), or why the whole part failed.
struct Halves {
    out: Vec<Option<Result<Vec<u8>>>>,
    cpu_secs: f64,
    gpu: Result<Vec<Option<Vec<u8>>>>,
    gpu_secs: f64,
}

/// Decodes `batch`'s frames `mine` on the GPU and the others on the CPU, at the same time.
fn decode_split(gpu: &Gpu, batch: &[StoredFrame], mine: &[usize], on_gpu: &[bool]) -> Halves {
    std::thread::scope(|s| {
        let h = s.spawn(|| decode_on_gpu(gpu, batch, mine));
        let t0 = Instant::now();
        let mut out: Vec<Option<Result<Vec<u8>>>> = batch.iter().map(|_| None).collect();
        let cpu: Vec<(usize, Result<Vec<u8>>)> = (0..batch.len())
            .into_par_iter()
            .filter(|&i| !on_gpu[i])
            .map(|i| (i, cache::decode_traced(&batch[i])))
            .collect();
        let cpu_secs = t0.elapsed().as_secs_f64();
        for (i, r) in cpu {
            out[i] = Some(r);
        }
        let (gpu, gpu_secs) = h
            .join()
            .unwrap_or_else(|_| (Err(Error::Gpu("GPU thread panicked".into())), 0.0));
        Halves {
            out,
            cpu_secs,
            gpu,
            gpu_secs,
        }
    })
}

/// The GPU's part: `batch`'s frames `mine`, each result checked (in parallel) against its frame's
/// length and checksum; a wrong one comes back as None. With the seconds it took.
fn decode_on_gpu(
    gpu: &Gpu,
    batch: &[StoredFrame],
    mine: &[usize],
) -> (Result<Vec<Option<Vec<u8>>>>, f64) {
    let t0 = Instant::now();
    let input: Vec<(&[u8], usize)> = mine
        .iter()
        .map(|&i| (&batch[i].bytes[..], batch[i].meta.raw_len as usize))
        .collect();
    let r = gpu.decompress_sb_batch(&input).map(|res| {
        res.into_par_iter()
            .zip(mine.par_iter())
            .map(|(r, &i)| r.ok().filter(|d| batch[i].meta.check(d).is_ok()))
            .collect::<Vec<_>>()
    });
    let bytes = raw_bytes(batch, mine.iter().copied());
    trace::add(Stage::GpuDecode, t0, Instant::now(), bytes);
    (r, t0.elapsed().as_secs_f64())
}

pub struct GpuDecoder {
    cfg: Config,
    quiet: bool,
    gpu: Arc<OnceLock<Option<Gpu>>>,
    opening: Mutex<bool>,
    split: Mutex<Split>,
    /// Frames decoded on the GPU and accepted.
    pub gpu_frames: AtomicU64,
    /// Frames sent to the GPU but decoded on the CPU (failed check or failed launch).
    pub cpu_frames: AtomicU64,
    /// Frames decoded on the CPU while the GPU had its share.
    pub cpu_share_frames: AtomicU64,
}

impl GpuDecoder {
    /// A decoder that opens the device chosen by `cfg` in the background at its first batch; `gpu` may
    /// be one opened already.
    pub fn new(cfg: &Config, gpu: Option<Gpu>, quiet: bool) -> Self {
        let cell = OnceLock::new();
        let given = gpu.is_some();
        if let Some(g) = gpu {
            let _ = cell.set(Some(g));
        }
        GpuDecoder {
            cfg: cfg.clone(),
            quiet,
            gpu: Arc::new(cell),
            opening: Mutex::new(given),
            split: Mutex::new(Split::default()),
            gpu_frames: AtomicU64::new(0),
            cpu_frames: AtomicU64::new(0),
            cpu_share_frames: AtomicU64::new(0),
        }
    }

    /// The decoder extract uses for an archive whose frame table is `frames`, or None for the CPU
    /// alone. GPU_DEVICE = auto (the default) uses the GPU only for archives with at least
    /// [`GPU_MIN_BYTES`] of LZ_EXT3_SB frames (below that OpenCL is not even loaded) and opens it in the
    /// background; a device named in GPU_DEVICE is opened now, as is any device with
    /// GPU_FALLBACK_ENABLED = false (then a failure is an error).
    pub fn for_frames(cfg: &Config, frames: &[Frame], quiet: bool) -> Result<Option<Self>> {
        if !worth_it(cfg, frames) {
            return Ok(None);
        }
        if cfg.gpu_device == "auto" && cfg.gpu_fallback {
            return Ok(Some(Self::new(cfg, None, quiet)));
        }
        match Gpu::open(cfg) {
            Ok(g) => Ok(Some(Self::new(cfg, Some(g), quiet))),
            Err(e) if cfg.gpu_fallback => {
                if !quiet {
                    diag::note(&no_gpu_line(&e, cfg));
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// As [`GpuDecoder::for_frames`], never opening anything now (the mount opens the device in its
    /// serving process, after the fork, at the first batch).
    pub fn lazy_for_frames(cfg: &Config, frames: &[Frame], quiet: bool) -> Option<Self> {
        worth_it(cfg, frames).then(|| Self::new(cfg, None, quiet))
    }

    /// The device once it is open; starts opening it (once) otherwise.
    fn device(&self) -> Option<&Gpu> {
        if let Some(g) = self.gpu.get() {
            return g.as_ref();
        }
        let mut started = self.opening.lock();
        if !*started {
            *started = true;
            let (cell, cfg, quiet) = (self.gpu.clone(), self.cfg.clone(), self.quiet);
            std::thread::spawn(move || {
                let t0 = Instant::now();
                let g = match Gpu::open(&cfg) {
                    Ok(g) => {
                        trace::span(&format!("decode: GPU open ({})", g.describe()), t0, 0);
                        Some(g)
                    }
                    Err(e) => {
                        // "auto" on a machine without a GPU is the normal case: say nothing then.
                        if !quiet && cfg.gpu_device != "auto" {
                            diag::note(&no_gpu_line(&e, &cfg));
                        }
                        trace::note(&format!("decode: no GPU ({e})"));
                        None
                    }
                };
                let _ = cell.set(g);
            });
        }
        None
    }

    /// Waits until the device is open (or known absent); for benchmarks and tests.
    pub fn wait_ready(&self) -> bool {
        let _ = self.device();
        loop {
            if let Some(g) = self.gpu.get() {
                return g.is_some();
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Per mille of LZ_EXT3_SB frames the GPU takes now.
    pub fn share(&self) -> u64 {
        (self.split.lock().share() * 1000.0) as u64
    }

    /// Takes the GPU's results of a split batch into `h.out`, counts, learns both rates, and redoes on
    /// the CPU what the GPU did not give.
    fn settle(&self, batch: &[StoredFrame], mine: &[usize], mut h: Halves) -> Vec<Result<Vec<u8>>> {
        // Before the GPU's results go in, `h.out` holds exactly the CPU's part.
        let cpu_bytes = raw_bytes(batch, (0..batch.len()).filter(|&i| h.out[i].is_some()));
        let gpu_bytes = raw_bytes(batch, mine.iter().copied());
        let mut redo = Vec::new();
        match h.gpu {
            Ok(res) => {
                for (r, &i) in res.into_iter().zip(mine) {
                    match r {
                        Some(d) => h.out[i] = Some(Ok(d)),
                        None => redo.push(i),
                    }
                }
            }
            Err(e) => {
                if !self.quiet {
                    diag::note(&format!("GPU decode failed, batch redone on the CPU: {e}"));
                }
                redo.extend_from_slice(mine);
            }
        }
        self.gpu_frames
            .fetch_add((mine.len() - redo.len()) as u64, Ordering::Relaxed);
        self.cpu_frames
            .fetch_add(redo.len() as u64, Ordering::Relaxed);
        self.cpu_share_frames
            .fetch_add((batch.len() - mine.len()) as u64, Ordering::Relaxed);
        {
            let mut sp = self.split.lock();
            // A GPU that fails is rated as if it had taken ten times as long.
            let gt = if redo.is_empty() {
                h.gpu_secs
            } else {
                10.0 * h.gpu_secs.max(1e-3)
            };
            Split::learn(&mut sp.gpu, gpu_bytes, gt);
            Split::learn(&mut sp.cpu, cpu_bytes, h.cpu_secs);
        }
        let redone: Vec<(usize, Result<Vec<u8>>)> = redo
            .into_par_iter()
            .map(|i| (i, cache::decode(&batch[i])))
            .collect();
        for (i, r) in redone {
            h.out[i] = Some(r);
        }
        h.out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Error::Internal("frame not decoded".into()))))
            .collect()
    }
}

impl BatchDecoder for GpuDecoder {
    fn decode_batch(&self, batch: &[StoredFrame]) -> Vec<Result<Vec<u8>>> {
        let Some(gpu) = self.device() else {
            return CpuDecoder.decode_batch(batch);
        };
        let sb: Vec<usize> = (0..batch.len())
            .filter(|&i| batch[i].meta.codec == Codec::LzExt3Sb)
            .collect();
        // The GPU's part: the first `n` LZ_EXT3_SB frames, n from the share and the credit.
        let n = self.split.lock().take(sb.len());
        let mine = &sb[..n];
        if mine.is_empty() {
            let t0 = Instant::now();
            let out = CpuDecoder.decode_batch(batch);
            let bytes = raw_bytes(batch, 0..batch.len());
            let secs = t0.elapsed().as_secs_f64();
            Split::learn(&mut self.split.lock().cpu, bytes, secs);
            return out;
        }
        let mut on_gpu = vec![false; batch.len()];
        for &i in mine {
            on_gpu[i] = true;
        }
        let halves = decode_split(gpu, batch, mine, &on_gpu);
        self.settle(batch, mine, halves)
    }
}
