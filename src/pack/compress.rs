//! Compression stage: frames in, encoded frames out, on the CPU (rayon, `MAX_WORKER_THREADS`) or on the GPU
//! in batches of `COMPRESSOR_BATCH_SIZE` (at most [`GPU_BATCH_BYTES`]), two feeders per device. A GPU frame
//! is decoded again on the CPU and compared with its checksum; one that fails (or a failed launch) is redone
//! on the CPU and counted. Which GPU, if any, is [`PackGpu`]'s business: given, left out, or
//! (`GPU_DEVICE = auto`) opened here once the scan has shown enough bytes for it to pay.

use crate::codec::{self, Codec, EncodeParams};
use crate::diag::trace::{self, Stage};
use crate::diag::Warnings;
use crate::format::checksum;
use crate::format::frame::{FLAG_DICT, FLAG_GPU};
use crate::format::index::Dict;
use crate::gpu::Gpu;
use crate::pack::stream::{FramePool, RawFrame};
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
                                codec::decode(gcodec, &enc, f.data.len())
                                    .is_ok_and(|d| checksum(&d) == sum)
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

/// Bytes a GPU batch gathers before it is launched (or COMPRESSOR_BATCH_SIZE frames, if fewer):
/// small enough that several GPUs, each with two feeders, share a few hundred MB evenly.
pub const GPU_BATCH_BYTES: usize = 64 << 20;

/// The channels of the compress stage: frames in, encoded batches out, and the CPU path's tokens (one
/// per frame from compression until it is written).
pub struct Lanes {
    pub frames: Receiver<RawFrame>,
    pub out: Sender<Vec<Encoded>>,
    pub tokens: Sender<()>,
}

/// The compressors: on the GPU, two feeders per device, each taking the next batch of frames from the
/// queue (whichever device is free gets it: frames encode alone, so the bytes do not depend on which);
/// on the CPU, one task per frame on the worker pool. `base` is the compressor without its GPU, which
/// `gpu` gives (opening it now, for `GPU_DEVICE = auto`, while the stream starts reading). Returns when
/// the frame queue is done.
pub fn stage(base: &Compressor, gpu: &PackGpu, batch: usize, lanes: Lanes, pool: &FramePool) {
    let comp = Compressor {
        gpu: gpu.device(),
        ..*base
    };
    let Some(g) = comp.gpu else {
        return cpu_dispatch(&comp, lanes, pool);
    };
    let comp = &comp;
    std::thread::scope(|fs| {
        for feeder in 0..g.device_count() * 2 {
            let (frames, out) = (lanes.frames.clone(), lanes.out.clone());
            fs.spawn(move || gpu_feed(comp, feeder / 2, batch, frames, out, pool));
        }
    });
}

/// A GPU feeder for device `dev`: gathers frames into batches of at most `batch` frames and
/// [`GPU_BATCH_BYTES`] and compresses each batch in one call.
fn gpu_feed(
    comp: &Compressor,
    dev: usize,
    batch: usize,
    frames: Receiver<RawFrame>,
    out: Sender<Vec<Encoded>>,
    pool: &FramePool,
) {
    while let Ok(first) = frames.recv() {
        let mut bytes = first.data.len();
        let mut b = vec![first];
        while b.len() < batch && bytes < GPU_BATCH_BYTES {
            match frames.recv() {
                Ok(f) => {
                    bytes += f.data.len();
                    b.push(f);
                }
                Err(_) => break,
            }
        }
        if out.send(comp.batch_on(dev, b, pool)).is_err() {
            return;
        }
    }
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
            if tokens.send(()).is_err() {
                return;
            }
            let out = out.clone();
            rs.spawn(move |_| {
                let e = comp.one(&f);
                pool.give(f.data);
                let _ = out.send(vec![e]);
            });
        }
    });
}

/// Which GPU a pack uses.
pub enum GpuUse<'a> {
    /// None: the CPU encodes every frame.
    Off,
    /// This one, opened already.
    Given(&'a Gpu),
    /// GPU_DEVICE = auto: opened by the pack (on the compress stage's thread, while the stream starts)
    /// when the scan finds at least [`GPU_AUTO_MIN_BYTES`] to pack and the GPUs would outpace the CPU
    /// threads ([`auto_wants_gpu`]); `None` from it means no GPU (the CPU works).
    Auto(&'a (dyn Fn() -> Option<Gpu> + Sync)),
}

/// The GPU of one pack: what was asked ([`GpuUse`]), whether frames are meant for it (decided before
/// the stream starts, from the config and the bytes to pack), and the device once opened.
pub struct PackGpu<'a> {
    asked: GpuUse<'a>,
    planned: bool,
    opened: OnceLock<Option<Gpu>>,
}

impl<'a> PackGpu<'a> {
    /// Decides for `total` bytes on `threads` CPU threads (`GPU_DEVICE = auto`: [`auto_wants_gpu`]).
    pub fn new(asked: GpuUse<'a>, total: u64, threads: usize) -> Self {
        let planned = match &asked {
            GpuUse::Off => false,
            GpuUse::Given(_) => true,
            GpuUse::Auto(_) => {
                let (want, why) = auto_wants_gpu(total, threads);
                trace::note(&format!("GPU_DEVICE = auto: {why}"));
                want
            }
        };
        PackGpu {
            asked,
            planned,
            opened: OnceLock::new(),
        }
    }

    /// Whether frames are meant for a GPU (the frame queue holds two batches then).
    pub fn planned(&self) -> bool {
        self.planned
    }

    /// The GPU given by the caller, if any (whole-file dedup hashes on it; auto opens later, if at all).
    pub fn given(&self) -> Option<&Gpu> {
        match self.asked {
            GpuUse::Given(g) => Some(g),
            _ => None,
        }
    }

    /// The GPU to compress on: the given one, or (auto, when planned) opened on the first call.
    pub fn device(&self) -> Option<&Gpu> {
        match self.asked {
            GpuUse::Given(g) => Some(g),
            GpuUse::Auto(open) if self.planned => {
                let t = Instant::now();
                let g = self.opened.get_or_init(open).as_ref();
                trace::span("GPU opened (stream running meanwhile)", t, 0);
                g
            }
            _ => None,
        }
    }

    /// The GPU used, for the summary.
    pub fn describe(&self) -> Option<String> {
        match self.asked {
            GpuUse::Given(g) => Some(g.describe()),
            _ => self
                .opened
                .get()
                .and_then(|g| g.as_ref())
                .map(Gpu::describe),
        }
    }
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
pub fn auto_wants_gpu(total: u64, threads: usize) -> (bool, String) {
    let verdict = |want: bool| if want { "is opened" } else { "is left out" };
    if let Some(min) = crate::diag::knob_bytes("CLC_GPU_AUTO_MIN") {
        let want = total >= min;
        return (
            want,
            format!(
                "{total} bytes, CLC_GPU_AUTO_MIN = {min}: the GPU {}",
                verdict(want)
            ),
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
    (
        want,
        format!(
            "{total} bytes; GPUs ({cus} compute units) ~{gpu:.1} GB/s vs {threads} CPU threads ~{cpu:.1} GB/s: the GPU {}",
            verdict(want)
        ),
    )
}
