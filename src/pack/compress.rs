//! Compression stage: frames in, encoded frames out, on the CPU (rayon, `MAX_WORKER_THREADS`) or on the GPU
//! in batches of `COMPRESSOR_BATCH_SIZE`. A GPU frame is decoded again on the CPU and compared with its
//! checksum; one that fails (or a failed launch) is redone on the CPU and counted.

use crate::codec::{self, Codec, EncodeParams};
use crate::format::checksum;
use crate::format::frame::FLAG_GPU;
use crate::gpu::Gpu;
use crate::pack::stream::{FramePool, RawFrame};
use crate::trace::{self, Stage};
use crate::warn::Warnings;
use rayon::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// A frame ready to be written.
pub struct Encoded {
    pub id: u32,
    pub codec: Codec,
    pub flags: u8,
    pub raw_len: u32,
    pub checksum: u64,
    pub stored: Vec<u8>,
}

/// Counters for the summary.
#[derive(Default)]
pub struct Counters {
    pub gpu_frames: AtomicU64,
    pub cpu_frames: AtomicU64,
    pub raw_frames: AtomicU64,
    pub gpu_redone: AtomicU64,
}

pub struct Compressor<'a> {
    pub codec: Codec,
    pub params: EncodeParams,
    pub gpu: Option<&'a Gpu>,
    pub counters: &'a Counters,
    pub warn: &'a Warnings,
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

    /// Encodes one frame on the CPU.
    pub fn one(&self, f: &RawFrame) -> Encoded {
        let sum = trace::timed(Stage::Checksum, f.data.len() as u64, || checksum(&f.data));
        self.cpu(f.id, &f.data, sum)
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

    fn batch_inner(&self, dev: usize, frames: &[RawFrame]) -> Vec<Encoded> {
        let sums: Vec<u64> = frames
            .par_iter()
            .map(|f| trace::timed(Stage::Checksum, f.data.len() as u64, || checksum(&f.data)))
            .collect();
        // The GPU encoder writes plain LZ_EXT3 blocks (codec 1) until it is ported to LZ_EXT3_SB (issue 17).
        if let (Some(gpu), Codec::LzExt3 | Codec::LzExt3Sb) = (self.gpu, self.codec) {
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
                                codec::decode(Codec::LzExt3, &enc, f.data.len())
                                    .is_ok_and(|d| checksum(&d) == sum)
                            });
                            if ok {
                                self.finish_as(Codec::LzExt3, f.id, &f.data, enc, FLAG_GPU, sum)
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
