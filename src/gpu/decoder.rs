//! The GPU as a helper of the frame cache's batch decoder (extract and mount). It gets frames as the
//! cache hands them over ([`StoredFrame`]: metadata and stored bytes) and never sees an archive.
//!
//! * The device is opened on a thread of its own, started by the first batch (so a mount opens it in the
//!   serving process, after its fork): until it is ready every frame decodes on the CPU, so opening
//!   OpenCL never delays a read.
//! * Each batch is split: some of its LZ_EXT3_SB frames (codec 3) go to the GPU, on a thread of their own,
//!   while the CPU threads decode the rest. The GPU gets only what it is expected to finish before the
//!   CPU threads finish theirs: its time is modelled as latency + bytes / rate, fitted to every job it
//!   ran, the CPU's as bytes / (per-thread rate × threads used), and the GPU's part is the largest whose
//!   expected time is at most [`DEADLINE`] × the CPU's. Until both are measured the GPU gets one frame
//!   (a probe). Batches of a frame or two (a mount's reads) thus stay on the CPU once the GPU's latency
//!   is known. Other codecs (plain LZ_EXT3 of version-1 archives included) decode on the CPU.
//! * **The CPU never waits for the GPU.** When the CPU threads are done with their part they take the
//!   GPU's frames back one by one, from the end, and decode them too; the GPU's results are used for the
//!   frames not taken yet when they arrive, and the rest of its work is thrown away. A GPU still busy
//!   with an earlier batch gets no frames. So a batch ends no later than on the CPU alone, plus the host's
//!   share of the GPU's work (staging copies and checks).
//! * Every GPU result is checked against the frame's length and checksum; a frame that fails, or a
//!   job whose launch fails, is decoded on the CPU instead and counted.

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
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Least LZ_EXT3_SB bytes (decoded) an archive must hold for extract and mount to use the GPU: below
/// that, loading OpenCL costs more than the GPU can save. `CLC_GPU_DECODE_MIN` overrides it and drops
/// the rate rule (tests, benchmarks).
pub const GPU_MIN_BYTES: u64 = 64 << 20;

/// Decode rates measured on the lent H200 machine (Rust-doc tar, 4 MiB frames, docs/GPU.md run 26): a
/// GPU job end to end (upload, kernel, download, each frame copied out) 9.65 GB/s on one H200 (132
/// compute units) with 72 frames in a batch — the kernel alone does 60.6, but the host's part is what a
/// batch pays —, the CPU decoder 42 GB/s on its 16 threads.
const GPU_DECODE_GBS_PER_CU: f64 = 9.65 / 132.0;
const CPU_DECODE_GBS_PER_THREAD: f64 = 42.0 / 16.0;

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

/// Seconds that opening a device costs before it decodes anything: NVIDIA's driver and contexts on the
/// lent two-H200 machine, 0.50-0.56 s (docs/GPU.md runs 31-32; one H200: 0.21-0.30 s).
const OPEN_SECS: f64 = 0.5;

/// Seconds the CPU threads are expected to spend decoding the LZ_EXT3_SB frames of `frames` (the only
/// frames the GPU can take), at the measured per-thread rate.
fn cpu_decode_secs(cfg: &Config, frames: &[Frame]) -> f64 {
    let sb: u64 = frames
        .iter()
        .filter(|f| f.codec == Codec::LzExt3Sb)
        .map(|f| u64::from(f.raw_len))
        .sum();
    sb as f64 / (cfg.threads().max(1) as f64 * CPU_DECODE_GBS_PER_THREAD * 1e9)
}

/// Whether opening a named device for an extract of `frames` can pay: the GPU decodes only once it is
/// open, so it can take nothing off the CPU threads unless they are still decoding by then. Otherwise
/// opening it costs the extract the open's CPU time and, at the end, the wait to say a failure or the
/// process's end with a half-opened driver (0.13 s in run 32). `CLC_GPU_DECODE_MIN` set or
/// `CLC_GPU_DECODE_ALL=1`: always (tests, benchmarks of the device path).
fn open_can_pay(cfg: &Config, frames: &[Frame]) -> bool {
    diag::knob_bytes("CLC_GPU_DECODE_MIN").is_some()
        || diag::knob("CLC_GPU_DECODE_ALL", 0..=1, 0) == 1
        || cpu_decode_secs(cfg, frames) > OPEN_SECS
}

/// The GPU's part of a batch is expected to end by this fraction of the CPU's part's time.
const DEADLINE: f64 = 0.8;
/// Weight kept by the earlier GPU jobs at each new one (the fit follows the device as it warms up).
const DECAY: f64 = 0.8;
/// Weight of the newest measurement in the CPU's running rate.
const ALPHA: f64 = 0.5;

/// What the split is learnt from.
#[derive(Default)]
struct Split {
    /// Decayed sums over the GPU's jobs (bytes b, seconds t): weight, Σb, Σt, Σb², Σbt.
    w: f64,
    sb: f64,
    st: f64,
    sbb: f64,
    sbt: f64,
    /// The CPU decoder's running rate per thread, decoded bytes per second (0: not measured yet).
    cpu: f64,
    /// Batches since the GPU last got a frame.
    idle: u32,
}

/// A GPU that the plan leaves idle gets one frame (a probe, which the CPU takes back if it is late) every
/// this many batches, so that its fit follows it (its first job pays for allocations and warm-up).
const PROBE_EVERY: u32 = 8;

impl Split {
    /// Adds a GPU job of `bytes` decoded bytes that took `secs`.
    fn learn_gpu(&mut self, bytes: u64, secs: f64) {
        if bytes == 0 || secs.is_nan() || secs <= 0.0 {
            return;
        }
        let (b, t) = (bytes as f64, secs);
        self.w = self.w * DECAY + 1.0;
        self.sb = self.sb * DECAY + b;
        self.st = self.st * DECAY + t;
        self.sbb = self.sbb * DECAY + b * b;
        self.sbt = self.sbt * DECAY + b * t;
    }

    /// The CPU's part of `bytes` in `frames` frames took `secs` on `threads` threads.
    fn learn_cpu(&mut self, bytes: u64, frames: usize, threads: usize, secs: f64) {
        if bytes == 0 || frames == 0 || secs.is_nan() || secs <= 0.0 {
            return;
        }
        let r = bytes as f64 / secs / frames.min(threads.max(1)) as f64;
        self.cpu = if self.cpu == 0.0 {
            r
        } else {
            (1.0 - ALPHA) * self.cpu + ALPHA * r
        };
    }

    /// Expected seconds of a GPU job of `bytes` (None: never measured): latency + bytes / rate fitted
    /// to the jobs seen; while their sizes hardly differ, the mean job's time, scaled up for larger jobs
    /// and never down (a job's time is mostly latency until its size says otherwise).
    fn gpu_secs(&self, bytes: u64) -> Option<f64> {
        if self.w == 0.0 {
            return None;
        }
        let (mb, mt) = (self.sb / self.w, self.st / self.w);
        let var = self.sbb / self.w - mb * mb;
        let b = bytes as f64;
        if var > 0.01 * mb * mb {
            let slope = (self.sbt / self.w - mb * mt) / var;
            let lat = mt - slope * mb;
            if slope > 0.0 && lat >= 0.0 {
                return Some(lat + slope * b);
            }
        }
        Some(mt * (b / mb.max(1.0)).max(1.0))
    }

    /// Expected seconds of the CPU decoding `bytes` in `frames` frames (the largest `largest` bytes) on
    /// `threads` threads (None: not measured).
    fn cpu_secs(&self, bytes: u64, frames: usize, largest: u64, threads: usize) -> Option<f64> {
        if self.cpu == 0.0 {
            return None;
        }
        if frames == 0 {
            return Some(0.0);
        }
        let par = frames.min(threads.max(1)) as f64;
        Some((bytes as f64 / par).max(largest as f64) / self.cpu)
    }

    /// How many of a batch's LZ_EXT3_SB frames (`sb`: their decoded sizes, in the order the GPU takes
    /// them from the end) go to the GPU, beside `other` bytes in `other_frames` frames the CPU decodes
    /// anyway: the most whose expected GPU time is within DEADLINE of the CPU's time for the rest.
    fn plan(&self, sb: &[u64], other: u64, other_frames: usize, threads: usize) -> usize {
        if sb.is_empty() {
            return 0;
        }
        let (Some(_), Some(_)) = (self.gpu_secs(1), self.cpu_secs(1, 1, 1, 1)) else {
            // A probe: one frame, if the CPU has something else to do meanwhile.
            return usize::from(sb.len() + other_frames >= 2);
        };
        let mut best = 0;
        for n in 1..=sb.len() {
            let (cpu_part, gpu_part) = sb.split_at(sb.len() - n);
            let gb: u64 = gpu_part.iter().sum();
            let cb: u64 = cpu_part.iter().sum::<u64>() + other;
            let largest = cpu_part.iter().copied().max().unwrap_or(0);
            let cf = cpu_part.len() + other_frames;
            let g = self.gpu_secs(gb).unwrap_or(f64::INFINITY);
            let c = self.cpu_secs(cb, cf, largest, threads).unwrap_or(0.0);
            if g <= DEADLINE * c {
                best = n;
            }
        }
        best
    }
}

/// Decoded bytes of the frames `ids` of `batch`.
fn raw_bytes(batch: &[StoredFrame], ids: impl Iterator<Item = usize>) -> u64 {
    ids.map(|i| u64::from(batch[i].meta.raw_len)).sum()
}

/// The device call a GPU job makes: stored bytes and decoded length in, one result per frame out.
type DeviceCall = Arc<dyn Fn(&[(&[u8], usize)]) -> Result<Vec<Result<Vec<u8>>>> + Send + Sync>;

/// Claims on a GPU job's frames.
const FREE: u8 = 0;
const TAKEN_BY_CPU: u8 = 1;
const TAKEN_BY_GPU: u8 = 2;
const STORED: u8 = 3;

/// A GPU job: its frames (owned: the job may outlive the batch), each frame's claim, and what the GPU
/// gave for the frames it claimed (None: its result failed the check; to redo).
struct Job {
    frames: Vec<(Vec<u8>, Frame)>,
    claim: Vec<AtomicU8>,
    result: Mutex<Vec<Option<Option<Vec<u8>>>>>,
}

impl Job {
    /// Runs on the GPU's thread: the call, then each frame not taken by the CPU meanwhile is claimed,
    /// checked and stored. Learns the job's time; clears `busy` at the end.
    fn run(&self, call: &DeviceCall, split: &Mutex<Split>, busy: &AtomicBool) {
        let t0 = Instant::now();
        let input: Vec<(&[u8], usize)> = self
            .frames
            .iter()
            .map(|(b, m)| (&b[..], m.raw_len as usize))
            .collect();
        let r = call(&input);
        let secs = t0.elapsed().as_secs_f64();
        let bytes: u64 = self.frames.iter().map(|(_, m)| u64::from(m.raw_len)).sum();
        trace::add(Stage::GpuDecode, t0, Instant::now(), bytes);
        // A failed job is rated as if it had taken ten times as long.
        let failed = r.as_ref().map_or(true, |v| v.iter().any(|x| x.is_err()));
        split
            .lock()
            .learn_gpu(bytes, if failed { 10.0 * secs.max(1e-3) } else { secs });
        let mut res: Vec<Option<Result<Vec<u8>>>> = match r {
            Ok(v) if v.len() == self.frames.len() => v.into_iter().map(Some).collect(),
            _ => self.frames.iter().map(|_| None).collect(),
        };
        let checked: Vec<(usize, Option<Vec<u8>>)> = res
            .par_iter_mut()
            .enumerate()
            .filter_map(|(i, r)| {
                let claimed = self.claim[i]
                    .compare_exchange(FREE, TAKEN_BY_GPU, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                claimed.then(|| {
                    let ok = r
                        .take()
                        .and_then(|x| x.ok())
                        .filter(|d| self.frames[i].1.check(d).is_ok());
                    (i, ok)
                })
            })
            .collect();
        {
            let mut out = self.result.lock();
            for (i, d) in checked {
                out[i] = Some(d);
                self.claim[i].store(STORED, Ordering::Release);
            }
        }
        busy.store(false, Ordering::Release);
    }
}

/// The split and the race of one decoder: what it learnt, whether a GPU job is in flight.
struct Race {
    split: Arc<Mutex<Split>>,
    busy: Arc<AtomicBool>,
    /// Every LZ_EXT3_SB frame to the GPU and the CPU waits for it, and for the device to open
    /// (`CLC_GPU_DECODE_ALL=1`: tests, benchmarks of the device path).
    all: bool,
}

/// What a batch gave: results, and how its frames went.
struct Outcome {
    out: Vec<Result<Vec<u8>>>,
    /// Frames sent to the GPU: accepted from it, taken back by the CPU (the GPU late), redone on the
    /// CPU (failed on the GPU).
    gpu: u64,
    taken: u64,
    redone: u64,
    /// Frames the CPU decoded as its own part.
    cpu: u64,
    gpu_bytes: u64,
}

impl Race {
    fn new(all: bool) -> Self {
        Race {
            split: Arc::new(Mutex::new(Split::default())),
            busy: Arc::new(AtomicBool::new(false)),
            all,
        }
    }

    /// Decodes `batch`: a part on the device through `call` (None: no device), the rest on the CPU.
    fn decode(&self, batch: &[StoredFrame], call: Option<DeviceCall>) -> Outcome {
        let threads = rayon::current_num_threads();
        let sb: Vec<usize> = (0..batch.len())
            .filter(|&i| batch[i].meta.codec == Codec::LzExt3Sb)
            .collect();
        let free = call.is_some() && !self.busy.load(Ordering::Acquire);
        let n = match call.as_ref() {
            Some(_) if self.all => sb.len(),
            Some(_) if free => {
                let sizes: Vec<u64> = sb
                    .iter()
                    .map(|&i| u64::from(batch[i].meta.raw_len))
                    .collect();
                let other = raw_bytes(batch, 0..batch.len()) - sizes.iter().sum::<u64>();
                let mut sp = self.split.lock();
                let mut n = sp.plan(&sizes, other, batch.len() - sb.len(), threads);
                sp.idle = if n > 0 { 0 } else { sp.idle + 1 };
                if n == 0 && sp.idle >= PROBE_EVERY && !sb.is_empty() && batch.len() >= 2 {
                    sp.idle = 0;
                    n = 1;
                }
                n
            }
            _ => 0,
        };
        let (Some(call), true) = (call, n > 0) else {
            let t0 = Instant::now();
            let out = CpuDecoder.decode_batch(batch);
            let bytes = raw_bytes(batch, 0..batch.len());
            self.split
                .lock()
                .learn_cpu(bytes, batch.len(), threads, t0.elapsed().as_secs_f64());
            return Outcome {
                out,
                gpu: 0,
                taken: 0,
                redone: 0,
                cpu: batch.len() as u64,
                gpu_bytes: 0,
            };
        };
        // The GPU's part: the last n LZ_EXT3_SB frames; the CPU takes them back from the end.
        let mine = &sb[sb.len() - n..];
        let mut on_gpu = vec![false; batch.len()];
        for &i in mine {
            on_gpu[i] = true;
        }
        let job = Arc::new(Job {
            frames: mine
                .iter()
                .map(|&i| (batch[i].bytes.clone(), batch[i].meta))
                .collect(),
            claim: mine.iter().map(|_| AtomicU8::new(FREE)).collect(),
            result: Mutex::new(vec![None; mine.len()]),
        });
        self.busy.store(true, Ordering::Release);
        {
            let (job, split, busy) = (job.clone(), self.split.clone(), self.busy.clone());
            std::thread::spawn(move || job.run(&call, &split, &busy));
        }
        let t0 = Instant::now();
        let mut out: Vec<Option<Result<Vec<u8>>>> = batch.iter().map(|_| None).collect();
        let cpu: Vec<(usize, Result<Vec<u8>>)> = (0..batch.len())
            .into_par_iter()
            .filter(|&i| !on_gpu[i])
            .map(|i| (i, cache::decode_traced(&batch[i])))
            .collect();
        let cpu_bytes = raw_bytes(batch, cpu.iter().map(|(i, _)| *i));
        self.split
            .lock()
            .learn_cpu(cpu_bytes, cpu.len(), threads, t0.elapsed().as_secs_f64());
        let n_cpu = cpu.len() as u64;
        for (i, r) in cpu {
            out[i] = Some(r);
        }
        // The CPU's part is done: take the GPU's frames not yet claimed, from the end.
        let taken: Vec<(usize, Result<Vec<u8>>)> = if self.all {
            Vec::new()
        } else {
            (0..mine.len())
                .into_par_iter()
                .rev()
                .filter(|&j| {
                    job.claim[j]
                        .compare_exchange(FREE, TAKEN_BY_CPU, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                })
                .map(|j| (j, cache::decode_traced(&batch[mine[j]])))
                .collect()
        };
        // What the GPU claimed is being checked and stored (or, with `all`, still decoding): wait.
        while job
            .claim
            .iter()
            .any(|c| matches!(c.load(Ordering::Acquire), FREE | TAKEN_BY_GPU))
        {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        let n_taken = taken.len() as u64;
        for (j, r) in taken {
            out[mine[j]] = Some(r);
        }
        let mut redo = Vec::new();
        let mut gpu = 0u64;
        let mut gpu_bytes = 0u64;
        {
            let mut res = job.result.lock();
            for (j, &i) in mine.iter().enumerate() {
                if out[i].is_some() {
                    continue;
                }
                match res[j].take() {
                    Some(Some(d)) => {
                        gpu += 1;
                        gpu_bytes += d.len() as u64;
                        out[i] = Some(Ok(d));
                    }
                    _ => redo.push(i),
                }
            }
        }
        let n_redo = redo.len() as u64;
        let redone: Vec<(usize, Result<Vec<u8>>)> = redo
            .into_par_iter()
            .map(|i| (i, cache::decode(&batch[i])))
            .collect();
        for (i, r) in redone {
            out[i] = Some(r);
        }
        Outcome {
            out: out
                .into_iter()
                .map(|o| o.unwrap_or_else(|| Err(Error::Internal("frame not decoded".into()))))
                .collect(),
            gpu,
            taken: n_taken,
            redone: n_redo,
            cpu: n_cpu,
            gpu_bytes,
        }
    }
}

pub struct GpuDecoder {
    cfg: Config,
    quiet: bool,
    gpu: Arc<OnceLock<Option<Gpu>>>,
    opening: Mutex<bool>,
    /// Whether [`GpuDecoder::finish`] waits for an opening still under way: only where the device asked
    /// for is not known to exist (so that a failure to open it is still said).
    wait_at_end: bool,
    /// Why the device is never opened (it cannot pay); None: it opens at the first batch.
    not_opened: Option<String>,
    race: Race,
    /// Frames decoded on the GPU and accepted.
    pub gpu_frames: AtomicU64,
    /// Frames sent to the GPU but decoded on the CPU (failed check or failed launch).
    pub cpu_frames: AtomicU64,
    /// Frames sent to the GPU and taken back by the CPU, done with its own part before the GPU.
    pub taken_frames: AtomicU64,
    /// Frames decoded on the CPU as its own part of a batch.
    pub cpu_share_frames: AtomicU64,
    /// Decoded bytes: all, and those the GPU gave.
    bytes: AtomicU64,
    gpu_bytes: AtomicU64,
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
            wait_at_end: true,
            not_opened: None,
            race: Race::new(diag::knob("CLC_GPU_DECODE_ALL", 0..=1, 0) == 1),
            gpu_frames: AtomicU64::new(0),
            cpu_frames: AtomicU64::new(0),
            taken_frames: AtomicU64::new(0),
            cpu_share_frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            gpu_bytes: AtomicU64::new(0),
        }
    }

    /// The decoder extract uses for an archive whose frame table is `frames`, or None for the CPU
    /// alone. GPU_DEVICE = auto (the default) uses the GPU only where it is expected to outpace the CPU
    /// threads and for archives with at least [`GPU_MIN_BYTES`] of LZ_EXT3_SB frames (otherwise OpenCL
    /// is not even loaded). A device asked for by name is first looked up in the driver probe table
    /// (`icd::known_match`, no driver loaded):
    /// - no driver offers it: said now in one line, and the CPU decodes;
    /// - it exists but opening it cannot pay ([`open_can_pay`]): never opened (the summary says why);
    /// - otherwise it opens in the background (0.2-0.5 s that the CPU spends decoding), and
    ///   [`GpuDecoder::finish`] waits for an opening still under way only where the table could not
    ///   tell that the device exists (an index, no table), so that a failure to open it is said.
    ///
    /// With GPU_FALLBACK_ENABLED = false the device is opened now and a failure is an error.
    pub fn for_frames(cfg: &Config, frames: &[Frame], quiet: bool) -> Result<Option<Self>> {
        if !worth_it(cfg, frames) {
            return Ok(None);
        }
        if cfg.gpu_fallback {
            let named = cfg.gpu_device.trim() != "auto";
            let known = if named {
                super::icd::known_match(&cfg.gpu_device)
            } else {
                None
            };
            if known == Some(false) {
                if !quiet {
                    let e = format!(
                        "no OpenCL driver has a device for GPU_DEVICE = {:?}",
                        cfg.gpu_device
                    );
                    diag::note(&no_gpu_line(&e, cfg));
                }
                return Ok(None);
            }
            let mut d = Self::new(cfg, None, quiet);
            d.wait_at_end = named && known != Some(true);
            if known == Some(true) && !open_can_pay(cfg, frames) {
                d.not_opened = Some(format!(
                    "GPU not opened: the CPU decodes this archive in about {} ms, less than opening \
                     the device takes (about {} ms)",
                    (cpu_decode_secs(cfg, frames) * 1e3).ceil(),
                    OPEN_SECS * 1e3
                ));
            }
            return Ok(Some(d));
        }
        match Gpu::open(cfg) {
            Ok(g) => Ok(Some(Self::new(cfg, Some(g), quiet))),
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
        if self.not_opened.is_some() {
            return None;
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

    /// Called when the work is done. Waits for an opening still under way only where the device asked
    /// for is not known to exist (so that a failure to open it is said before the process ends); never
    /// for a GPU job still in flight (the CPU threads took its frames back and decoded them): `clc` ends
    /// with `_exit` (`sys::exit_now`), which no driver call in flight delays or disturbs. Returns what
    /// the summary says of the device, if anything: why it was not opened, or that it was still opening
    /// when the work ended (a device known to exist that then fails to open says nothing more).
    pub fn finish(&self) -> Option<String> {
        if let Some(why) = &self.not_opened {
            return Some(why.clone());
        }
        let opening = *self.opening.lock() && self.gpu.get().is_none();
        if opening && self.wait_at_end {
            let _ = self.wait_ready();
            return None;
        }
        opening.then(|| "the GPU was still opening when the work ended".to_string())
    }

    /// Whether the device is never opened (it cannot pay), for the summary.
    pub fn not_opened(&self) -> bool {
        self.not_opened.is_some()
    }

    /// Per mille of the decoded bytes the GPU gave so far.
    pub fn share(&self) -> u64 {
        let all = self.bytes.load(Ordering::Relaxed).max(1);
        self.gpu_bytes.load(Ordering::Relaxed) * 1000 / all
    }
}

impl BatchDecoder for GpuDecoder {
    fn decode_batch(&self, batch: &[StoredFrame]) -> Vec<Result<Vec<u8>>> {
        if self.race.all {
            // Every frame on the device: wait for it to open.
            self.wait_ready();
        }
        let call: Option<DeviceCall> = self.device().map(|_| {
            let cell = self.gpu.clone();
            let call: DeviceCall = Arc::new(move |frames: &[(&[u8], usize)]| {
                match cell.get().and_then(|g| g.as_ref()) {
                    Some(g) => g.decompress_sb_batch(frames),
                    None => Err(Error::Gpu("no device".into())),
                }
            });
            call
        });
        let o = self.race.decode(batch, call);
        if o.redone > 0 && !self.quiet {
            diag::note(&format!(
                "GPU decode failed for {}, redone on the CPU",
                if o.redone == 1 {
                    "1 frame".to_string()
                } else {
                    format!("{} frames", o.redone)
                }
            ));
        }
        self.gpu_frames.fetch_add(o.gpu, Ordering::Relaxed);
        self.cpu_frames.fetch_add(o.redone, Ordering::Relaxed);
        self.taken_frames.fetch_add(o.taken, Ordering::Relaxed);
        self.cpu_share_frames.fetch_add(o.cpu, Ordering::Relaxed);
        self.bytes
            .fetch_add(raw_bytes(batch, 0..batch.len()), Ordering::Relaxed);
        self.gpu_bytes.fetch_add(o.gpu_bytes, Ordering::Relaxed);
        o.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{lz_ext3_sb, EncodeParams};
    use crate::ids::{FrameId, VolumeNo};
    use std::sync::mpsc;
    use std::time::Duration;

    /// `n` LZ_EXT3_SB frames of text, each with its metadata (length, xxh3), and their bytes.
    fn frames(n: usize) -> (Vec<StoredFrame>, Vec<Vec<u8>>) {
        let p = EncodeParams {
            sb_log: 12,
            ..EncodeParams::default()
        };
        let raw: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                (0..20_000u32)
                    .flat_map(|j| format!("line {} of frame {i}\n", j % 700).into_bytes())
                    .take(50_000 + 1000 * i)
                    .collect()
            })
            .collect();
        let stored = raw
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let bytes = lz_ext3_sb::compress(d, &p);
                StoredFrame {
                    id: FrameId(i as u32),
                    meta: Frame {
                        volume: VolumeNo(1),
                        offset: 0,
                        stored_len: bytes.len() as u32,
                        raw_len: d.len() as u32,
                        codec: Codec::LzExt3Sb,
                        flags: 0,
                        checksum: Some(crate::format::checksum(d)),
                    },
                    bytes,
                }
            })
            .collect();
        (stored, raw)
    }

    /// A device call that decodes on the CPU, after `gate` (if any) opens, and sets `done` when it
    /// returns; `garbage`: it returns wrong bytes of the right length.
    fn fake(gate: Option<mpsc::Receiver<()>>, done: Arc<AtomicBool>, garbage: bool) -> DeviceCall {
        let gate = Mutex::new(gate);
        Arc::new(move |fr: &[(&[u8], usize)]| {
            if let Some(g) = gate.lock().take() {
                let _ = g.recv_timeout(Duration::from_secs(60));
            }
            let r = fr
                .iter()
                .map(|(e, n)| {
                    let d = lz_ext3_sb::decompress(e, *n)?;
                    Ok(if garbage { vec![7u8; d.len()] } else { d })
                })
                .collect();
            done.store(true, Ordering::Release);
            Ok(r)
        })
    }

    /// A race whose fit says the GPU is far faster than the CPU: the plan gives it every frame but one.
    fn eager() -> Race {
        let r = Race::new(false);
        {
            let mut s = r.split.lock();
            s.learn_gpu(1 << 20, 1e-6);
            s.learn_gpu(1 << 24, 2e-6);
            s.learn_cpu(1 << 20, 1, 1, 1.0);
        }
        r
    }

    #[test]
    fn the_cpu_takes_back_the_frames_of_a_late_gpu_and_never_waits_for_it() {
        let (batch, raw) = frames(6);
        let r = eager();
        let (tx, rx) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        // The device call is held until after the batch is decoded: a decoder that waited for it would
        // wait 60 s and then report the GPU's frames as the GPU's.
        let o = r.decode(&batch, Some(fake(Some(rx), done.clone(), false)));
        assert!(
            !done.load(Ordering::Acquire),
            "the batch waited for the GPU"
        );
        assert!(
            o.taken >= 1 && o.gpu == 0 && o.redone == 0,
            "taken {}",
            o.taken
        );
        assert_eq!(o.taken + o.cpu, 6);
        for (d, w) in o.out.iter().zip(&raw) {
            assert!(d.as_ref().is_ok_and(|d| d == w));
        }
        // While that job is in flight the GPU gets nothing; once it is over, frames again.
        let o = r.decode(&batch, Some(fake(None, Arc::default(), false)));
        assert_eq!((o.gpu, o.taken, o.cpu), (0, 0, 6));
        tx.send(()).unwrap();
        while r.busy.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(done.load(Ordering::Acquire));
    }

    #[test]
    fn gpu_results_are_checked_and_wrong_ones_redone_on_the_cpu() {
        let (batch, raw) = frames(5);
        for garbage in [false, true] {
            let r = Race::new(true);
            let o = r.decode(&batch, Some(fake(None, Arc::default(), garbage)));
            if garbage {
                assert_eq!((o.gpu, o.redone), (0, 5));
            } else {
                assert_eq!((o.gpu, o.redone, o.taken), (5, 0, 0));
            }
            for (d, w) in o.out.iter().zip(&raw) {
                assert!(d.as_ref().is_ok_and(|d| d == w), "garbage {garbage}");
            }
        }
    }

    #[test]
    fn a_named_device_is_opened_only_for_decoding_that_outlasts_an_open() {
        let frame = |codec, raw_len| Frame {
            volume: VolumeNo(1),
            offset: 0,
            stored_len: 1,
            raw_len,
            codec,
            flags: 0,
            checksum: None,
        };
        let cfg = Config {
            max_worker_threads: 16,
            ..Config::default()
        };
        // 298 MB of LZ_EXT3_SB frames (the Rust-doc archive): ~7 ms on 16 threads, never worth an open.
        let small = vec![frame(Codec::LzExt3Sb, 4 << 20); 72];
        let s = cpu_decode_secs(&cfg, &small);
        assert!(s > 0.005 && s < 0.01, "{s}");
        // 32 GiB: ~0.8 s on 16 threads, past an open; only LZ_EXT3_SB frames count (the GPU takes no
        // others), and fewer threads take longer.
        let large = vec![frame(Codec::LzExt3Sb, 16 << 20); 2048];
        assert!(cpu_decode_secs(&cfg, &large) > OPEN_SECS);
        let plain = vec![frame(Codec::LzExt3, 16 << 20); 2048];
        assert_eq!(cpu_decode_secs(&cfg, &plain), 0.0);
        let two = Config {
            max_worker_threads: 2,
            ..Config::default()
        };
        assert!((cpu_decode_secs(&two, &small) / s - 8.0).abs() < 1e-9);
    }

    #[test]
    fn the_plan_gives_the_gpu_only_what_it_finishes_before_the_cpu() {
        let mut s = Split::default();
        let f = 4u64 << 20;
        // Unmeasured: a probe of one frame, and none for a batch of one frame.
        assert_eq!(s.plan(&[f; 8], 0, 0, 16), 1);
        assert_eq!(s.plan(&[f], 0, 0, 16), 0);
        // GPU: 5 ms latency + 10 GB/s; CPU: 1 GB/s a thread.
        for b in [4u64 << 20, 64 << 20, 256 << 20] {
            s.learn_gpu(b, 5e-3 + b as f64 / 10e9);
        }
        s.learn_cpu(64 << 20, 16, 16, (4 << 20) as f64 / 1e9);
        let lat = s.gpu_secs(0).unwrap();
        assert!((lat - 5e-3).abs() < 1e-4, "latency {lat}");
        // One frame, or a few: the CPU is done (4.2 ms) before the GPU's latency.
        assert_eq!(s.plan(&[f], 0, 0, 16), 0);
        assert_eq!(s.plan(&[f; 4], 0, 0, 16), 0);
        // 256 frames: the GPU takes some, and is expected to end within DEADLINE of the CPU's part.
        let n = s.plan(&[f; 256], 0, 0, 16);
        assert!(n > 0 && n < 256, "{n}");
        let g = s.gpu_secs(n as u64 * f).unwrap();
        let c = s.cpu_secs((256 - n) as u64 * f, 256 - n, f, 16).unwrap();
        assert!(g <= DEADLINE * c, "{g} > {c}");
        let g1 = s.gpu_secs((n + 1) as u64 * f).unwrap();
        let c1 = s.cpu_secs((255 - n) as u64 * f, 255 - n, f, 16).unwrap();
        assert!(g1 > DEADLINE * c1, "one more frame would still fit");
    }
}
