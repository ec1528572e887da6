//! config.txt + command-line overrides → one validated [`Config`].
//! PLACEHOLDER: the parser is being written; `Config::default()` holds the shipped defaults.

use crate::codec::Codec;

/// Every tunable of clc. Defaults equal the shipped `config.txt`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// FORCE_CPU_MODE: never use OpenCL.
    pub force_cpu: bool,
    /// COMPRESSOR_BATCH_SIZE: frames per compression batch (one GPU launch).
    pub compressor_batch_size: usize,
    /// GPU_FALLBACK_ENABLED: on an OpenCL failure, finish on the CPU (else fail).
    pub gpu_fallback: bool,
    /// DECOMPRESSOR_BATCH_SIZE: frames per decode batch (one GPU launch; mount and extract).
    pub decompressor_batch_size: usize,
    /// MAX_WORKER_THREADS: compute threads; 0 = one per core.
    pub max_worker_threads: usize,
    /// READ_BUFFER_BATCHES: read-ahead depth, in batches of BUFFER_SIZE.
    pub read_buffer_batches: usize,
    /// WRITE_BUFFER_BATCHES: write-behind depth, in batches of frames.
    pub write_buffer_batches: usize,
    /// NUM_SCAN_WORKERS: threads walking the source tree.
    pub num_scan_workers: usize,
    /// NUM_IO_WORKERS: threads writing extracted files.
    pub num_io_workers: usize,
    /// NUM_READERS: threads reading source files.
    pub num_readers: usize,
    /// BUFFER_SIZE: bytes per read batch.
    pub buffer_size: u64,
    /// HASH_LOG: log2 of the LZ_EXT3 match-finder buckets.
    pub hash_log: u32,
    /// HASH_CANDIDATES: positions kept per bucket (Top-K).
    pub hash_candidates: u32,
    /// GOOD_ENOUGH_MATCH: stop searching at a match this long.
    pub good_enough_match: u32,
    /// FRAME_SIZE: bytes of unique data per frame.
    pub frame_size: u64,
    /// VOLUME_SIZE: largest volume file.
    pub volume_size: u64,
    /// CHUNK_MIN_SIZE / CHUNK_AVG_SIZE / CHUNK_MAX_SIZE: content-defined chunking.
    pub chunk_min: u32,
    pub chunk_avg: u32,
    pub chunk_max: u32,
    /// CACHE_SIZE: decoded-frame cache budget for mount and extract.
    pub cache_size: u64,
    /// CODEC: lz_ext3, lz4 or raw.
    pub codec: Codec,
    /// GPU_DEVICE: "auto", "all", an index or a name substring.
    pub gpu_device: String,
    /// PARITY: percent of parity volumes (0 = none).
    pub parity: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            force_cpu: false,
            compressor_batch_size: 16,
            gpu_fallback: true,
            decompressor_batch_size: 16,
            max_worker_threads: 0,
            read_buffer_batches: 4,
            write_buffer_batches: 4,
            num_scan_workers: 4,
            num_io_workers: 2,
            num_readers: 2,
            buffer_size: 16 << 20,
            hash_log: 16,
            hash_candidates: 2,
            good_enough_match: 64,
            frame_size: 4 << 20,
            volume_size: 2 << 30,
            chunk_min: 16 << 10,
            chunk_avg: 64 << 10,
            chunk_max: 256 << 10,
            cache_size: 256 << 20,
            codec: Codec::LzExt3,
            gpu_device: "auto".into(),
            parity: 0,
        }
    }
}

impl Config {
    /// Worker threads to use (MAX_WORKER_THREADS, 0 meaning every core).
    pub fn threads(&self) -> usize {
        if self.max_worker_threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.max_worker_threads
        }
    }

    /// The encoder tuning taken from this config.
    pub fn encode_params(&self) -> crate::codec::EncodeParams {
        crate::codec::EncodeParams {
            hash_log: self.hash_log,
            candidates: self.hash_candidates,
            good_enough: self.good_enough_match,
        }
    }
}
