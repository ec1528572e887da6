//! Compression stage: frames in, encoded frames out, on the CPU (rayon, `MAX_WORKER_THREADS`) or on the GPU
//! in batches of `COMPRESSOR_BATCH_SIZE`. A GPU frame is decoded again on the CPU and compared with its
//! checksum; one that fails (or a failed launch) is redone on the CPU and counted.

use crate::codec::{self, Codec, EncodeParams};
use crate::diag::Warnings;
use crate::format::checksum;
use crate::format::frame::{FLAG_DICT, FLAG_GPU};
use crate::format::index::Dict;
use crate::gpu::Gpu;
use crate::pack::stream::RawFrame;
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
    /// The dictionary it was encoded with (FORMAT.md 2.2), if any.
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
            codec: self.codec,
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
        let enc = codec::encode(self.codec, raw, &self.params);
        self.finish(id, raw, enc, 0, sum)
    }

    /// Encodes one frame on the CPU (after its dictionary, when it has one and that pays).
    pub fn one(&self, f: &RawFrame) -> Encoded {
        let sum = checksum(&f.data);
        if let Some(e) = self.with_dict(f, sum) {
            return e;
        }
        self.cpu(f.id, &f.data, sum)
    }

    /// LZ_EXT3 after the frame's dictionary, when it has one that can be read and the result is smaller
    /// than the frame.
    fn with_dict(&self, f: &RawFrame, sum: u64) -> Option<Encoded> {
        let (d, get) = (f.dict.as_ref()?, self.dicts?);
        if self.codec != Codec::LzExt3 {
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
        };
        let enc = codec::encode_with_dict(&dict, &f.data, &p);
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

    /// Encodes a batch of frames, results in the same order. Frames with a dictionary are encoded on the
    /// CPU.
    pub fn batch(&self, frames: Vec<RawFrame>) -> Vec<Encoded> {
        if frames.iter().any(|f| f.dict.is_some()) {
            return frames.par_iter().map(|f| self.one(f)).collect();
        }
        let sums: Vec<u64> = frames.par_iter().map(|f| checksum(&f.data)).collect();
        if let (Some(gpu), Codec::LzExt3) = (self.gpu, self.codec) {
            let refs: Vec<&[u8]> = frames.iter().map(|f| f.data.as_slice()).collect();
            match gpu.compress_batch(&refs) {
                Ok(encs) => {
                    return frames
                        .par_iter()
                        .zip(encs)
                        .zip(&sums)
                        .map(|((f, enc), &sum)| {
                            let ok = codec::decode(Codec::LzExt3, &enc, f.data.len())
                                .is_ok_and(|d| checksum(&d) == sum);
                            if ok {
                                self.finish(f.id, &f.data, enc, FLAG_GPU, sum)
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
