//! Compression stage: frames in, encoded frames out, on the CPU (rayon, `MAX_WORKER_THREADS`) or on the GPU
//! in batches of `COMPRESSOR_BATCH_SIZE` (at most [`GPU_BATCH_BYTES`]), two feeders per device. A GPU frame
//! is decoded again on the CPU and compared with its checksum; one that fails (or a failed launch) is redone
//! on the CPU and counted. Which GPU, if any, is [`PackGpu`]'s business: given, left out, or
//! (`GPU_DEVICE = auto`) opened here for a large stream whose first frames the CPU encodes slowly
//! ([`auto_plan`], [`auto_verdict`]).

use crate::codec::{self, Codec, EncodeParams};
use crate::diag::trace::{self, Stage};
use crate::diag::Warnings;
use crate::format::checksum;
use crate::format::frame::{FLAG_DICT, FLAG_GPU};
use crate::format::index::Dict;
use crate::gpu::Gpu;
use crate::pack::stream::{FrameParts, FramePool, RawFrame};
use crossbeam_channel::{Receiver, Sender};
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// A frame ready to be written.
pub struct Encoded {
    pub id: u32,
    pub codec: Codec,
    pub flags: u8,
    pub raw_len: u32,
    pub checksum: u64,
    pub stored: Vec<u8>,
    /// The dictionary it was encoded with (FORMAT.md 2.3), if any.
    pub dict: Option<Dict>,
}

/// The decoded bytes of a dictionary (its frames, concatenated): an append reads earlier frames.
pub type DictBytes<'a> = &'a (dyn Fn(&Dict) -> crate::error::Result<Vec<u8>> + Sync);

/// Counters for the summary.
#[derive(Default)]
pub struct Counters {
    pub gpu_frames: AtomicU64,
    pub cpu_frames: AtomicU64,
    pub raw_frames: AtomicU64,
    pub gpu_redone: AtomicU64,
    /// Frames encoded after a dictionary (counted in `cpu_frames` too).
    pub dict_frames: AtomicU64,
}

pub struct Compressor<'a> {
    pub codec: Codec,
    pub params: EncodeParams,
    pub gpu: Option<&'a Gpu>,
    pub counters: &'a Counters,
    pub warn: &'a Warnings,
    /// Where the dictionaries of frames that have one come from (appends only).
    pub dicts: Option<DictBytes<'a>>,
    /// The encoders of frames with a dictionary, kept for the next such frame.
    pub dict_encoders: &'a codec::DictEncoders,
}

impl Compressor<'_> {
    /// A frame stored as it is.
    fn stored_raw(&self, id: u32, raw: &[u8], sum: u64) -> Encoded {
        self.counters.raw_frames.fetch_add(1, Ordering::Relaxed);
        Encoded {
            id,
            codec: Codec::Raw,
            flags: 0,
            raw_len: raw.len() as u32,
            checksum: sum,
            stored: raw.to_vec(),
            dict: None,
        }
    }

    fn finish(&self, id: u32, raw: &[u8], enc: Vec<u8>, flags: u8, sum: u64) -> Encoded {
        self.finish_as(self.codec, id, raw, enc, flags, sum)
    }

    fn finish_as(
        &self,
        codec: Codec,
        id: u32,
        raw: &[u8],
        enc: Vec<u8>,
        flags: u8,
        sum: u64,
    ) -> Encoded {
        if enc.len() >= raw.len() || self.codec == Codec::Raw {
            return self.stored_raw(id, raw, sum);
        }
        let c = if flags & FLAG_GPU != 0 {
            &self.counters.gpu_frames
        } else {
            &self.counters.cpu_frames
        };
        c.fetch_add(1, Ordering::Relaxed);
        Encoded {
            id,
            codec,
            flags,
            raw_len: raw.len() as u32,
            checksum: sum,
            stored: enc,
            dict: None,
        }
    }

    fn cpu(&self, id: u32, raw: &[u8], sum: u64) -> Encoded {
        if self.codec == Codec::Raw {
            return self.stored_raw(id, raw, sum);
        }
        let enc = trace::timed(Stage::CpuEncode, raw.len() as u64, || {
            codec::encode(self.codec, raw, &self.params)
        });
        self.finish(id, raw, enc, 0, sum)
    }

    /// Encodes one frame on the CPU (after its dictionary, when it has one and that pays).
    pub fn one(&self, f: &RawFrame) -> Encoded {
        let sum = trace::timed(Stage::Checksum, f.data.len() as u64, || checksum(&f.data));
        if let Some(e) = self.with_dict(f, sum) {
            return e;
        }
        self.cpu(f.id, &f.data, sum)
    }

    /// LZ_EXT3 after the frame's dictionary, when it has one that can be read and the result is smaller
    /// than the frame.
    fn with_dict(&self, f: &RawFrame, sum: u64) -> Option<Encoded> {
        let (d, get) = (f.dict.as_ref()?, self.dicts?);
        // Frames with a dictionary are plain LZ_EXT3 (codec 1) whatever the pack's codec: they decode
        // after their dictionary, on the CPU, one by one (FORMAT.md 2.3).
        if !matches!(self.codec, Codec::LzExt3 | Codec::LzExt3Sb) {
            return None;
        }
        let dict = match get(d) {
            Ok(b) => b,
            Err(e) => {
                self.warn.warn(format!(
                    "frame {}: its dictionary could not be read ({e}); stored without one",
                    f.id
                ));
                return None;
            }
        };
        // The dictionary holds earlier versions of the frame's files, and the match finder must keep
        // their positions: a larger table, more candidates, longer searches. Measured on two Rust-doc
        // versions (docs/BENCHMARKS.md): the second snapshot took 14.5 MB with the pack's defaults
        // (hash_log 16, 2 candidates, good enough 64), 11.6 MB with 22/4/256, 10.5 MB with 22/8/256
        // (3× the encoding time of the defaults, on the changed files only).
        let p = EncodeParams {
            hash_log: self.params.hash_log.max(22),
            candidates: self.params.candidates.max(8),
            good_enough: self.params.good_enough.max(256),
            ..self.params
        };
        let enc = trace::timed(Stage::CpuEncode, f.data.len() as u64, || {
            self.dict_encoders.encode(&dict, &f.data, &p)
        });
        if enc.len() >= f.data.len() {
            return None;
        }
        self.counters.cpu_frames.fetch_add(1, Ordering::Relaxed);
        self.counters.dict_frames.fetch_add(1, Ordering::Relaxed);
        Some(Encoded {
            id: f.id,
            codec: Codec::LzExt3,
            flags: FLAG_DICT,
            raw_len: f.data.len() as u32,
            checksum: sum,
            stored: enc,
            dict: Some(d.clone()),
        })
    }

    /// Encodes a batch of frames, results in the same order; their buffers go back to `pool`.
    pub fn batch(&self, frames: Vec<RawFrame>, pool: &FramePool) -> Vec<Encoded> {
        self.batch_on(usize::MAX, frames, pool)
    }

    /// [`Compressor::batch`] on device `dev` of the GPU only (`usize::MAX`: spread over all).
    pub fn batch_on(&self, dev: usize, frames: Vec<RawFrame>, pool: &FramePool) -> Vec<Encoded> {
        let t_batch = std::time::Instant::now();
        let bytes: u64 = frames.iter().map(|f| f.data.len() as u64).sum();
        let out = self.batch_inner(dev, &frames);
        for f in frames {
            pool.give(f.data);
        }
        trace::add(Stage::GpuBatch, t_batch, std::time::Instant::now(), bytes);
        out
    }

    /// Frames with a dictionary are encoded on the CPU.
    fn batch_inner(&self, dev: usize, frames: &[RawFrame]) -> Vec<Encoded> {
        if frames.iter().any(|f| f.dict.is_some()) {
            return frames.par_iter().map(|f| self.one(f)).collect();
        }
        let sums: Vec<u64> = frames
            .par_iter()
            .map(|f| trace::timed(Stage::Checksum, f.data.len() as u64, || checksum(&f.data)))
            .collect();
        // The GPU encoder writes the codec the config asks for (LZ_EXT3_SB, or LZ_EXT3 with
        // SUBBLOCK_SIZE = 0): the same codec as the CPU encoder, not the same bytes.
        if let (Some(gpu), Codec::LzExt3 | Codec::LzExt3Sb) = (self.gpu, self.codec) {
            let gcodec = gpu.compress_codec();
            let refs: Vec<&[u8]> = frames.iter().map(|f| f.data.as_slice()).collect();
            let r = if dev == usize::MAX {
                gpu.compress_batch_timed(&refs)
            } else {
                gpu.compress_batch_on(dev, &refs)
            };
            match r {
                Ok((encs, t)) => {
                    trace::add_device(Stage::GpuKernel, t.kernel_ns, t.bytes_in);
                    trace::add_device(Stage::GpuCopy, t.upload_ns + t.download_ns, t.bytes_in);
                    return frames
                        .par_iter()
                        .zip(encs)
                        .zip(&sums)
                        .map(|((f, enc), &sum)| {
                            let ok = trace::timed(Stage::Verify, f.data.len() as u64, || {
                                check_decode(gcodec, &enc, f.data.len(), sum)
                            });
                            if ok {
                                self.finish_as(gcodec, f.id, &f.data, enc, FLAG_GPU, sum)
                            } else {
                                self.counters.gpu_redone.fetch_add(1, Ordering::Relaxed);
                                self.cpu(f.id, &f.data, sum)
                            }
                        })
                        .collect();
                }
                Err(e) => {
                    self.warn.warn(format!(
                        "GPU compression failed, batch redone on the CPU: {e}"
                    ));
                    self.counters
                        .gpu_redone
                        .fetch_add(frames.len() as u64, Ordering::Relaxed);
                }
            }
        }
        frames
            .par_iter()
            .zip(&sums)
            .map(|(f, &sum)| self.cpu(f.id, &f.data, sum))
            .collect()
    }
}

thread_local! {
    /// The buffer each pool thread decodes GPU frames into to check them, kept from frame to frame: a
    /// fresh one per frame touched 137-175 k fresh pages for the 5.7 GB checked on the lent H200 machine,
    /// 74 k with this one (docs/GPU.md runs 118, 121). At most one frame (16 MiB) per thread; freed when
    /// the thread ends.
    static CHECK_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Whether `enc`, a `codec` frame, decodes to `raw_len` bytes whose checksum is `sum`; decoded into
/// this thread's kept buffer.
fn check_decode(codec: Codec, enc: &[u8], raw_len: usize, sum: u64) -> bool {
    let buf = CHECK_BUF.take();
    match codec::decode_reusing(codec, enc, raw_len, buf, false) {
        Ok(d) => {
            let ok = checksum(&d) == sum;
            CHECK_BUF.set(d);
            ok
        }
        Err(_) => false,
    }
}

/// Bytes a GPU batch gathers before it is launched (or COMPRESSOR_BATCH_SIZE frames, if fewer):
/// small enough that several GPUs, each with two feeders, share a few hundred MB evenly.
pub const GPU_BATCH_BYTES: usize = 64 << 20;

/// The channels of the compress stage: frames in, encoded batches out, and the CPU path's tokens (one
/// per frame from compression until it is written).
pub struct Lanes {
    pub frames: Receiver<FrameParts>,
    pub out: Sender<Vec<Encoded>>,
    pub tokens: Sender<()>,
}

/// The compressors. Without a GPU planned, one task per frame on the CPU worker pool. With one, the
/// frames are shared by [`Split`]: the CPU threads take every frame before the split's lead (the GPU opens
/// meanwhile) and the frames the split leaves them after it; two feeders per device take the GPU's frames
/// in batches. Which frame goes where depends on the split alone (the config and the device set), never on
/// which device or thread is free, so the bytes are the same on every run. `base` is the compressor
/// without its GPU, which `gpu` gives (opened, waited for, or opening now). Returns when the frame queue
/// is done and every frame was handed on.
pub fn stage(base: &Compressor, gpu: &PackGpu, batch: usize, lanes: Lanes, pool: &FramePool) {
    if !gpu.planned() {
        return cpu_dispatch(base, lanes, pool);
    }
    let Lanes {
        frames,
        out,
        tokens,
    } = lanes;
    let threads = rayon::current_num_threads();
    // GPU_DEVICE = auto decides from the stream's first frames ([`auto_verdict`]), which the CPU encodes;
    // the GPU opens only if they say so, during the (shorter) lead.
    let sampled = gpu.sampled();
    let lead = match sampled {
        true => crate::diag::knob_bytes("CLC_GPU_LEAD").unwrap_or(AUTO_LEAD),
        false => Split::lead(threads),
    };
    // CLC_GPU_AUTO_SAMPLE (bytes) replaces the sample's size, for tests.
    let sample_end = crate::diag::knob_bytes("CLC_GPU_AUTO_SAMPLE")
        .unwrap_or(AUTO_SAMPLE_BYTES)
        .min(lead);
    let sample = Sample::default();
    let mut sampling = sampled;
    let mut n_sample = 0u64;
    let mut wanted = !sampled;
    // Decided at the first frame past the lead, once the device set is known (the GPU opened).
    let mut split: Option<Split> = None;
    let with_gpu: OnceLock<Compressor> = OnceLock::new();
    let (gtx, grx) = crossbeam_channel::bounded::<FrameParts>(batch.max(1) * 2);
    let mut offset = 0u64;
    std::thread::scope(|fs| {
        // Opens the GPU (or waits for the one opening) while the CPU takes the frames of the lead; the
        // stage ends only once it is open, so that a failure to open it is always reported, except
        // for a vouched-for device that no frame needed (OpenAhead).
        if !gpu.vouched() && !sampled {
            fs.spawn(|| gpu.device());
        }
        rayon::in_place_scope(|rs| {
            for f in frames {
                if tokens.send(()).is_err() {
                    return;
                }
                if sampling && offset >= sample_end {
                    sampling = false;
                    let t = Instant::now();
                    let (raw, stored) = sample.wait(n_sample);
                    let (yes, why) = auto_verdict(base.codec, raw, stored);
                    trace::span(&format!("GPU_DEVICE = auto: {why}"), t, 0);
                    if yes {
                        fs.spawn(|| gpu.device());
                    }
                    wanted = yes;
                }
                let past = offset >= lead;
                offset += f.len as u64;
                let sp = match (past, split) {
                    (false, _) => None,
                    (true, Some(sp)) => Some(sp),
                    (true, None) => {
                        let t = Instant::now();
                        let g = if wanted { gpu.device() } else { None };
                        let sp = match sampled {
                            true => Split::decide_all(lead, g),
                            false => Split::decide(lead, g, threads),
                        };
                        trace::span("GPU waited for at the lead", t, 0);
                        trace::note(&format!("frames shared: {}", sp.describe()));
                        if let (Some(g), true) = (g, sp.k > 0) {
                            let comp = with_gpu.get_or_init(|| Compressor {
                                gpu: Some(g),
                                ..*base
                            });
                            // CLC_GPU_FEEDERS: feeders per device (experiments; the bytes do not
                            // depend on it).
                            let per = crate::diag::knob("CLC_GPU_FEEDERS", 1..=8, 2) as usize;
                            for feeder in 0..g.device_count() * per {
                                let (grx, out) = (grx.clone(), out.clone());
                                fs.spawn(move || {
                                    gpu_feed(comp, feeder / per, batch, grx, out, pool)
                                });
                            }
                        }
                        split = Some(sp);
                        split
                    }
                };
                let on_gpu = with_gpu.get().is_some()
                    && f.dict.is_none()
                    && sp.is_some_and(|s| s.gpu_takes(f.id));
                if on_gpu {
                    if gtx.send(f).is_err() {
                        return;
                    }
                    continue;
                }
                let out = out.clone();
                let counted = sampling.then_some(&sample);
                n_sample += u64::from(sampling);
                rs.spawn(move |_| cpu_task(base, f, pool, &out, counted));
            }
        });
        drop(gtx);
    });
}

/// GPU_DEVICE = auto: the bytes of the stream's first frames (at most [`AUTO_SAMPLE_BYTES`], all encoded
/// on the CPU) and their encoded size, as their encoding ends.
#[derive(Default)]
struct Sample {
    /// Raw bytes, stored bytes, frames done.
    m: parking_lot::Mutex<(u64, u64, u64)>,
    cv: parking_lot::Condvar,
}

impl Sample {
    /// Waits until `n` frames are done; their raw and stored bytes.
    fn wait(&self, n: u64) -> (u64, u64) {
        let mut g = self.m.lock();
        while g.2 < n {
            self.cv.wait(&mut g);
        }
        (g.0, g.1)
    }
}

/// Counts one frame of a [`Sample`] when dropped, also if its encoding unwinds (as stored whole).
struct SampleGuard<'a> {
    s: &'a Sample,
    raw: u64,
    stored: Option<u64>,
}

impl Drop for SampleGuard<'_> {
    fn drop(&mut self) {
        let mut g = self.s.m.lock();
        g.0 += self.raw;
        g.1 += self.stored.unwrap_or(self.raw);
        g.2 += 1;
        self.s.cv.notify_all();
    }
}

/// A GPU feeder for device `dev`: takes the next frame of the GPU's queue and those queued behind it (at
/// most `batch` frames and [`GPU_BATCH_BYTES`]) and compresses them in one call. It never waits for more
/// frames than are queued: the writer may be waiting for the first of them.
fn gpu_feed(
    comp: &Compressor,
    dev: usize,
    batch: usize,
    frames: Receiver<FrameParts>,
    out: Sender<Vec<Encoded>>,
    pool: &FramePool,
) {
    while let Ok(first) = frames.recv() {
        let mut bytes = first.len;
        let mut b = vec![first];
        while b.len() < batch && bytes < GPU_BATCH_BYTES {
            match frames.try_recv() {
                Ok(f) => {
                    bytes += f.len;
                    b.push(f);
                }
                Err(_) => break,
            }
        }
        let b: Vec<RawFrame> = b.into_par_iter().map(|f| f.gather(pool)).collect();
        if out.send(comp.batch_on(dev, b, pool)).is_err() {
            return;
        }
    }
}

/// How the frames of a pack are shared between the CPU threads and the GPUs (FORMAT.md §6): every frame
/// that starts before `lead` bytes of the stream goes to the CPU (while the GPU opens), then frame `id`
/// goes to the GPU when `id % m < k` and to the CPU otherwise (frames with a dictionary always to the
/// CPU). `lead` comes from the CPU thread count, `k` and `m` from it and the device set's compute units,
/// so the archive is the same for a given tree, config, thread count and device set, on every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub lead: u64,
    pub k: u32,
    pub m: u32,
}

/// The GPU's share of frames is counted in sixteenths.
pub const SHARE_M: u32 = 16;

/// Seconds from the start of a pack until its GPU is open, on a thread of its own beside the scan and the
/// stream: NVIDIA's driver, one context and the cached programs on the H200 machine, 0.21-0.30 s
/// (docs/GPU.md run 20).
const GPU_OPEN_S: f64 = 0.3;

impl Split {
    /// The bytes the CPU threads encode alone while the GPU opens: what `threads` threads encode in
    /// [`GPU_OPEN_S`]. `CLC_GPU_LEAD` (bytes) replaces it, for benchmarks and tests.
    pub fn lead(threads: usize) -> u64 {
        crate::diag::knob_bytes("CLC_GPU_LEAD")
            .unwrap_or((threads as f64 * CPU_GBS_PER_THREAD * 1e9 * GPU_OPEN_S) as u64)
    }

    /// The GPU's share, `(k, m)`: its estimated rate over the GPUs' and the CPU threads' together, in
    /// sixteenths, rounded to the nearest (at least one when `at_least_one`, i.e. the GPU was named).
    /// `CLC_GPU_SHARE=K/M` (1 ≤ M ≤ 1024, K ≤ M) replaces it, for benchmarks and tests.
    pub fn share(compute_units: u64, threads: usize, at_least_one: bool) -> (u32, u32) {
        if let Some(km) = env_share() {
            return km;
        }
        let gpu = compute_units as f64 * GPU_GBS_PER_CU;
        let cpu = threads as f64 * CPU_GBS_PER_THREAD;
        let k = (f64::from(SHARE_M) * gpu / (gpu + cpu).max(f64::MIN_POSITIVE)).round() as u32;
        let k = k.min(SHARE_M);
        (if at_least_one { k.max(1) } else { k }, SHARE_M)
    }

    /// The split of a pack whose GPU opened as `gpu` (None: it did not, and the CPU takes every frame).
    pub fn decide(lead: u64, gpu: Option<&Gpu>, threads: usize) -> Split {
        let (k, m) = match gpu {
            Some(g) => {
                let cus = g.devices().iter().map(|d| u64::from(d.compute_units)).sum();
                Split::share(cus, threads, true)
            }
            None => (0, SHARE_M),
        };
        Split { lead, k, m }
    }

    /// The split of a pack whose GPU `GPU_DEVICE = auto` chose ([`auto_verdict`]): every frame past the
    /// lead to the GPU (docs/GPU.md runs 121-122: on 16 cores every GPU share measured lost to it), or
    /// `CLC_GPU_SHARE`; none without a GPU.
    pub fn decide_all(lead: u64, gpu: Option<&Gpu>) -> Split {
        let (k, m) = match gpu {
            Some(_) => env_share().unwrap_or((1, 1)),
            None => (0, SHARE_M),
        };
        Split { lead, k, m }
    }

    /// Whether frame `id` (past the lead) is the GPU's.
    pub fn gpu_takes(&self, id: u32) -> bool {
        id % self.m < self.k
    }

    /// For the trace and the docs.
    pub fn describe(&self) -> String {
        format!(
            "the CPU alone for the first {} bytes, then the GPU {} of every {} frames",
            self.lead, self.k, self.m
        )
    }
}

/// The share `CLC_GPU_SHARE` asks for, if it is set and valid ([`parse_share`]).
fn env_share() -> Option<(u32, u32)> {
    std::env::var("CLC_GPU_SHARE")
        .ok()
        .and_then(|v| parse_share(&v))
}

/// `K/M` with 1 ≤ M ≤ 1024 and K ≤ M.
fn parse_share(v: &str) -> Option<(u32, u32)> {
    let (k, m) = v.trim().split_once('/')?;
    let (k, m): (u32, u32) = (k.trim().parse().ok()?, m.trim().parse().ok()?);
    (1..=1024).contains(&m).then_some(())?;
    (k <= m).then_some((k, m))
}

/// The CPU path: every frame is its own task on the worker pool, started once a token is free; its
/// buffer goes back to `pool`.
fn cpu_dispatch(comp: &Compressor, lanes: Lanes, pool: &FramePool) {
    let Lanes {
        frames,
        out,
        tokens,
    } = lanes;
    rayon::in_place_scope(|rs| {
        for f in frames {
            let t = Instant::now();
            if tokens.send(()).is_err() {
                return;
            }
            trace::add(Stage::Blocked, t, Instant::now(), 0);
            let out = out.clone();
            rs.spawn(move |_| cpu_task(comp, f, pool, &out, None));
        }
    });
}

/// One frame on the CPU: gathered into a buffer of `pool`, encoded, handed on; the buffer goes back.
/// Counted in `sample` when given.
fn cpu_task(
    comp: &Compressor,
    f: FrameParts,
    pool: &FramePool,
    out: &Sender<Vec<Encoded>>,
    sample: Option<&Sample>,
) {
    let f = f.gather(pool);
    let mut guard = sample.map(|s| SampleGuard {
        s,
        raw: f.data.len() as u64,
        stored: None,
    });
    let e = comp.one(&f);
    if let Some(g) = &mut guard {
        g.stored = Some(e.stored.len() as u64);
    }
    drop(guard);
    pool.give(f.data);
    let _ = out.send(vec![e]);
}

/// Which GPU a pack uses.
pub enum GpuUse<'a> {
    /// None: the CPU encodes every frame.
    Off,
    /// This one, opened already.
    Given(&'a Gpu),
    /// A named device (`--gpu-device`), being opened on a thread of its own since before the scan.
    Opening(&'a OpenAhead),
    /// GPU_DEVICE = auto: opened by the pack with the function (on a thread of the compress stage's, while
    /// the stream runs) when [`auto_plan`] and [`auto_verdict`] want it, into the cell, which the caller
    /// owns: the command-line tool forgets it at the end, so that the driver is torn down once, by the
    /// process's end (dropping it took 0.13 s on the H200 machine, docs/GPU.md run 123). `None` from the
    /// function means no GPU (the CPU works).
    Auto(
        &'a (dyn Fn() -> Option<Gpu> + Sync),
        &'a OnceLock<Option<Gpu>>,
    ),
}

/// A GPU opened on a thread of its own from before the pack starts (a device named by `--gpu-device` or
/// `GPU_DEVICE`), so that starting the driver (0.3-0.5 s on the H200 machine) overlaps the scan and the
/// CPU's first frames instead of coming before them. The pack waits for its result before it ends
/// (`stage`), so that a failure to open is always reported, unless the device is `vouched` for (the
/// driver probe table says it exists, and a failure to open it would only be a warning). A vouched-for
/// device opens only once the scan has said how much there is to pack ([`PackGpu::new`]), and only when
/// frames may go to it: a stream no longer than the split's lead (which the CPU threads take whole) never
/// loads the driver, whose open and teardown cost 0.1-0.5 s on the H200 machines (docs/GPU.md run 41).
/// The thread itself is never joined.
pub struct OpenAhead {
    rx: Receiver<Option<Gpu>>,
    got: OnceLock<Option<Gpu>>,
    vouched: bool,
    /// A vouched-for device's opening, until [`OpenAhead::begin`] starts it.
    deferred: parking_lot::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl OpenAhead {
    /// Starts `open` on a new thread, now or (`vouched`) at [`OpenAhead::begin`]; see [`OpenAhead`].
    pub fn start(open: impl FnOnce() -> Option<Gpu> + Send + 'static, vouched: bool) -> OpenAhead {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let run = move || {
            // Without a thread, `tx` is dropped here and the first `wait` finds no GPU.
            let _ = std::thread::Builder::new()
                .name("clc-gpu-open".into())
                .spawn(move || {
                    let t = Instant::now();
                    // For tests: a driver that takes this long to open.
                    let delay = crate::diag::knob("CLC_TEST_GPU_OPEN_DELAY_MS", 0..=60_000, 0);
                    std::thread::sleep(std::time::Duration::from_millis(u64::from(delay)));
                    let g = open();
                    trace::span("GPU opened (on its own thread)", t, 0);
                    if let Err(e) = tx.send(g) {
                        // Nobody waits any more (the pack is over): the process ends without tearing
                        // the driver down.
                        std::mem::forget(e.into_inner());
                    }
                });
        };
        let ahead = OpenAhead {
            rx,
            got: OnceLock::new(),
            vouched,
            deferred: parking_lot::Mutex::new(None),
        };
        if vouched {
            *ahead.deferred.lock() = Some(Box::new(run));
        } else {
            run();
        }
        ahead
    }

    /// Starts a deferred opening (nothing when it started already).
    fn begin(&self) {
        let run = self.deferred.lock().take();
        if let Some(run) = run {
            run();
        }
    }

    /// The GPU, waiting for the opening to end (None: it failed).
    pub fn wait(&self) -> Option<&Gpu> {
        self.begin();
        self.got
            .get_or_init(|| self.rx.recv().ok().flatten())
            .as_ref()
    }

    /// The GPU if it was waited for and opened.
    pub fn opened(&self) -> Option<&Gpu> {
        self.got.get().and_then(|g| g.as_ref())
    }
}

/// The GPU of one pack: what was asked ([`GpuUse`]), whether frames are meant for it (decided before
/// the stream starts, from the config, the thread count and the bytes to pack), and the device once
/// opened.
pub struct PackGpu<'a> {
    asked: GpuUse<'a>,
    planned: bool,
    /// GPU_DEVICE = auto, deciding from the stream's first frames ([`auto_verdict`]).
    sampled: bool,
}

impl<'a> PackGpu<'a> {
    /// Decides for a stream of `total` bytes (`GPU_DEVICE = auto`: [`auto_plan`]).
    pub fn new(asked: GpuUse<'a>, total: u64) -> Self {
        let mut sampled = false;
        let planned = match &asked {
            GpuUse::Off => false,
            GpuUse::Given(_) => true,
            // A frame goes to the GPU only when it starts past the lead (`stage`), so a stream of at
            // most `lead` bytes has none for it; `total` (the jobs' bytes) is at least the stream's.
            GpuUse::Opening(a)
                if a.vouched && total <= Split::lead(rayon::current_num_threads()) =>
            {
                trace::note(
                    "GPU not opened: the CPU threads take the whole stream (the split's lead)",
                );
                false
            }
            GpuUse::Opening(a) => {
                a.begin();
                true
            }
            GpuUse::Auto(..) => {
                let (plan, why) = auto_plan(total, rayon::current_num_threads());
                trace::note(&format!("GPU_DEVICE = auto: {why}"));
                sampled = plan == AutoPlan::Sample;
                plan != AutoPlan::No
            }
        };
        PackGpu {
            asked,
            planned,
            sampled,
        }
    }

    /// GPU_DEVICE = auto, deciding from the stream's first frames whether to open the GPU.
    fn sampled(&self) -> bool {
        self.sampled
    }

    /// Whether frames may go to a GPU (the frame queue holds two batches then).
    pub fn planned(&self) -> bool {
        self.planned
    }

    /// A named device opening ahead that the pack need not wait for unless frames go to it.
    fn vouched(&self) -> bool {
        matches!(self.asked, GpuUse::Opening(a) if a.vouched)
    }

    /// The GPU given by the caller, if any (whole-file dedup hashes on it; the others open later).
    pub fn given(&self) -> Option<&Gpu> {
        match self.asked {
            GpuUse::Given(g) => Some(g),
            _ => None,
        }
    }

    /// The GPU to compress on: the given one, the named one once open (waiting for it), or (auto, when
    /// planned) opened on the first call.
    pub fn device(&self) -> Option<&Gpu> {
        match self.asked {
            GpuUse::Given(g) => Some(g),
            GpuUse::Opening(a) => a.wait(),
            GpuUse::Auto(open, cell) if self.planned => {
                let t = Instant::now();
                let mut here = false;
                let g = cell
                    .get_or_init(|| {
                        here = true;
                        open()
                    })
                    .as_ref();
                if here {
                    trace::span("GPU opened (stream running meanwhile)", t, 0);
                }
                g
            }
            _ => None,
        }
    }

    /// The GPU used, for the summary.
    pub fn describe(&self) -> Option<String> {
        match self.asked {
            GpuUse::Given(g) => Some(g.describe()),
            GpuUse::Opening(a) => a.opened().map(Gpu::describe),
            GpuUse::Auto(_, cell) => cell.get().and_then(|g| g.as_ref()).map(Gpu::describe),
            GpuUse::Off => None,
        }
    }
}

/// Compression rates measured on the lent H200 machine on the same 4 MiB frames of the Rust-doc tree
/// (docs/GPU.md run 7): the GPU encoder 2.00 GB/s end to end on one H200 (132 compute units), the CPU
/// encoder 10.8 GB/s on 16 threads.
const GPU_GBS_PER_CU: f64 = 2.0 / 132.0;
const CPU_GBS_PER_THREAD: f64 = 10.8 / 16.0;

/// What GPU_DEVICE = auto does with a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoPlan {
    /// No GPU: the CPU encodes every frame.
    No,
    /// The GPU is opened and takes its share ([`Split::decide`]; `CLC_GPU_AUTO_MIN`).
    Yes,
    /// The CPU encodes the stream's first frames; their ratio decides ([`auto_verdict`]).
    Sample,
}

/// Streams from which GPU_DEVICE = auto considers the GPU: opening NVIDIA's driver and its end at exit
/// cost ~0.4 s of wall on the H200 machine (docs/GPU.md run 121: 0.21-0.31 s to open, 0.14 s more at the
/// end), which the GPU wins back only on a stream of several GB. `CLC_GPU_AUTO_FROM` (bytes) replaces
/// it, for tests.
pub const AUTO_MIN_BYTES: u64 = 2_000_000_000;
/// The most CPU threads beside which auto considers the GPU: one H200 beat 16 threads (run 122), and a
/// CPU with more threads was never measured against it.
pub const AUTO_MAX_THREADS: usize = 16;
/// The stream's first bytes, encoded on the CPU, whose ratio decides.
pub const AUTO_SAMPLE_BYTES: u64 = 64 << 20;
/// Encoded over raw bytes of the sample within which the GPU takes the frames past the lead: the CPU's
/// encoder is slow on such data (binaries, libraries: 0.18 GB/s per thread on the lent machine's
/// site-packages, ratio 0.55) and fast on very compressible text (the Rust docs, ratio 0.07, 3.1 GB/s
/// on 16 cores, where every frame on the GPU took 2.1 × as long; run 122); the upper edge keeps data that
/// hardly compresses, which no run measured, on the CPU.
pub const AUTO_RATIO: (f64, f64) = (0.35, 0.85);
/// The lead when auto chose the GPU: the CPU encodes the first 0.5 GB while the GPU opens (run 121's
/// fastest split).
pub const AUTO_LEAD: u64 = 500_000_000;

/// What GPU_DEVICE = auto does with a stream of `total` bytes on `threads` CPU threads, and why. The choice
/// depends on the sizes, the thread count and (when sampled) the data alone, never on timings, so the
/// archive is the same on every run. `CLC_GPU_AUTO_MIN` (bytes) plans the GPU from that size on without
/// sampling (its share as for a named device), for benchmarks and tests.
pub fn auto_plan(total: u64, threads: usize) -> (AutoPlan, String) {
    if let Some(min) = crate::diag::knob_bytes("CLC_GPU_AUTO_MIN") {
        let (plan, verdict) = match total >= min {
            true => (AutoPlan::Yes, "is opened"),
            false => (AutoPlan::No, "is left out"),
        };
        return (
            plan,
            format!("{total} bytes, CLC_GPU_AUTO_MIN = {min}: the GPU {verdict}"),
        );
    }
    let from = crate::diag::knob_bytes("CLC_GPU_AUTO_FROM").unwrap_or(AUTO_MIN_BYTES);
    if total < from {
        (
            AutoPlan::No,
            format!("{total} bytes, under {from}: the GPU is left out"),
        )
    } else if threads > AUTO_MAX_THREADS {
        (
            AutoPlan::No,
            format!("{threads} CPU threads, over {AUTO_MAX_THREADS}: the GPU is left out"),
        )
    } else {
        (
            AutoPlan::Sample,
            format!("{total} bytes on {threads} threads: the first {AUTO_SAMPLE_BYTES} bytes' ratio decides"),
        )
    }
}

/// Whether the GPU takes the frames past the lead, from the sample's `raw` and `stored` bytes: only for
/// the codecs it encodes, and a ratio within [`AUTO_RATIO`].
pub fn auto_verdict(codec: Codec, raw: u64, stored: u64) -> (bool, String) {
    if !matches!(codec, Codec::LzExt3 | Codec::LzExt3Sb) {
        return (
            false,
            format!("{} frames: the GPU is left out", codec.name()),
        );
    }
    if raw == 0 {
        return (false, "no sample: the GPU is left out".into());
    }
    let r = stored as f64 / raw as f64;
    let yes = (AUTO_RATIO.0..=AUTO_RATIO.1).contains(&r);
    let verdict = if yes { "is opened" } else { "is left out" };
    (
        yes,
        format!("the first {raw} bytes encoded to {r:.3} of their size: the GPU {verdict}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_follows_the_rates_and_a_named_gpu_gets_one_at_least() {
        if std::env::var_os("CLC_GPU_SHARE").is_some() {
            eprintln!("SKIP: CLC_GPU_SHARE is set");
            return;
        }
        // One H200 (132 compute units) beside 16 threads: 2.0 of 12.8 GB/s, 2.5 sixteenths, rounded up.
        assert_eq!(Split::share(132, 16, false), (3, 16));
        // Two H200s beside 32 threads: the same share.
        assert_eq!(Split::share(264, 32, false), (3, 16));
        // PoCL's 2 compute units beside 2 threads: nothing, unless the device was named.
        assert_eq!(Split::share(2, 2, false), (0, 16));
        assert_eq!(Split::share(2, 2, true), (1, 16));
        // No CPU threads at all: every frame to the GPU.
        assert_eq!(Split::share(132, 0, false), (16, 16));
    }

    #[test]
    fn the_lead_is_what_the_threads_encode_while_the_gpu_opens() {
        if std::env::var_os("CLC_GPU_LEAD").is_some() {
            eprintln!("SKIP: CLC_GPU_LEAD is set");
            return;
        }
        assert!(
            Split::lead(16).abs_diff(3_240_000_000) <= 1,
            "{}",
            Split::lead(16)
        );
        assert_eq!(Split::lead(0), 0);
    }

    #[test]
    fn auto_samples_only_large_streams_beside_few_threads() {
        if std::env::var_os("CLC_GPU_AUTO_MIN").is_some()
            || std::env::var_os("CLC_GPU_AUTO_FROM").is_some()
        {
            eprintln!("SKIP: CLC_GPU_AUTO_MIN or CLC_GPU_AUTO_FROM is set");
            return;
        }
        for total in [0, 1 << 30, AUTO_MIN_BYTES - 1] {
            let (plan, why) = auto_plan(total, 16);
            assert!(
                plan == AutoPlan::No && why.contains("left out"),
                "{total}: {why}"
            );
        }
        for total in [AUTO_MIN_BYTES, 1 << 40, u64::MAX] {
            assert_eq!(auto_plan(total, 16).0, AutoPlan::Sample, "{total}");
            assert_eq!(auto_plan(total, 2).0, AutoPlan::Sample, "{total}");
            assert_eq!(auto_plan(total, 17).0, AutoPlan::No, "{total}");
        }
    }

    #[test]
    fn auto_opens_the_gpu_for_a_middling_ratio_of_its_codecs() {
        let yes = |c, raw, stored| auto_verdict(c, raw, stored).0;
        assert!(yes(Codec::LzExt3Sb, 1000, 550));
        assert!(yes(Codec::LzExt3, 1000, 350));
        assert!(yes(Codec::LzExt3Sb, 1000, 850));
        assert!(!yes(Codec::LzExt3Sb, 1000, 349));
        assert!(!yes(Codec::LzExt3Sb, 1000, 70));
        assert!(!yes(Codec::LzExt3Sb, 1000, 851));
        assert!(!yes(Codec::LzExt3Sb, 0, 0));
        assert!(!yes(Codec::Zstd, 1000, 550));
        assert!(!yes(Codec::Raw, 1000, 550));
    }

    #[test]
    fn a_sample_counts_every_frame_once_even_one_that_unwinds() {
        let s = Sample::default();
        std::thread::scope(|ts| {
            ts.spawn(|| {
                let mut g = SampleGuard {
                    s: &s,
                    raw: 100,
                    stored: None,
                };
                g.stored = Some(40);
            });
            ts.spawn(|| {
                // An encoding that unwinds counts as stored whole.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _g = SampleGuard {
                        s: &s,
                        raw: 50,
                        stored: None,
                    };
                    panic!("encoder");
                }));
                assert!(r.is_err());
            });
            assert_eq!(s.wait(2), (150, 90));
        });
    }

    #[test]
    fn frames_past_the_lead_go_by_their_number() {
        let s = Split {
            lead: 0,
            k: 3,
            m: 16,
        };
        let on: Vec<u32> = (0..40).filter(|&i| s.gpu_takes(i)).collect();
        assert_eq!(on, [0, 1, 2, 16, 17, 18, 32, 33, 34]);
        let none = Split { k: 0, ..s };
        assert!((0..100).all(|i| !none.gpu_takes(i)));
    }

    #[test]
    fn shares_from_the_environment_are_checked() {
        assert_eq!(parse_share("3/16"), Some((3, 16)));
        assert_eq!(parse_share(" 1 / 1 "), Some((1, 1)));
        assert_eq!(parse_share("0/4"), Some((0, 4)));
        for bad in ["17/16", "1/0", "1/1025", "3", "a/b", "-1/2", ""] {
            assert_eq!(parse_share(bad), None, "{bad}");
        }
    }
}
