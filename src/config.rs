//! config.txt + command-line overrides → one validated [`Config`].
//!
//! [`Config::load`] reads a file (`config/file.rs` has its syntax), [`Config::set`] applies one `KEY = VALUE`
//! (the parser and command-line overrides both use it), [`Config::validate`] checks ranges and the rules that
//! tie keys together. Ranges live in one table, `keys::NUMBERS`; the shipped `config.txt` documents
//! every key and must equal [`Config::default()`] (a test parses it).

mod file;
mod keys;
#[cfg(test)]
mod tests;
mod value;

use std::io::Read;
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::format::codec::Codec;
use value::{fmt_size, parse_bool, parse_count, shown};

pub use keys::KEYS;
pub use value::parse_size;

/// Largest config file read; a config file is a few KiB, anything bigger is a wrong path.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// Longest GPU_DEVICE value, in characters.
const MAX_DEVICE_CHARS: usize = 256;

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
    /// ADAPTIVE_FRAMES: frame size per region of data (see [`Config::frame_limits`]).
    pub adaptive_frames: bool,
    /// SMALL_FRAME_SIZE: frames of data that looks incompressible.
    pub small_frame_size: u64,
    /// LARGE_FRAME_SIZE: frames filled by runs of same-named files.
    pub large_frame_size: u64,
    /// VOLUME_SIZE: largest volume file.
    pub volume_size: u64,
    /// CHUNK_MIN_SIZE / CHUNK_AVG_SIZE / CHUNK_MAX_SIZE: content-defined chunking.
    pub chunk_min: u32,
    pub chunk_avg: u32,
    pub chunk_max: u32,
    /// CHUNK_FILES_FROM: files smaller than this (see [`Config::whole_below`]) are one chunk each.
    pub chunk_files_from: u64,
    /// CACHE_SIZE: decoded-frame cache budget for mount and extract.
    pub cache_size: u64,
    /// Whether CACHE_SIZE was set to a size (even the default's 256M) rather than `auto` or left out:
    /// when it was not, a mount sizes its cache from the archive (`mount::default_cache`).
    pub cache_size_given: bool,
    /// CODEC: lz_ext3, lz_ext3e, zstd, lz4 or raw.
    pub codec: Codec,
    /// ZSTD_LEVEL: the compression level of ZSTD frames (CODEC = zstd), 1..=19.
    pub zstd_level: u32,
    /// SUBBLOCK_SIZE: LZ_EXT3 frames are written in sub-blocks of this many bytes (LZ_EXT3_SB, a power
    /// of two, 4 KiB ..= 16 MiB); 0 writes plain LZ_EXT3 frames (codec 1, decoded serially).
    pub subblock_size: u64,
    /// STREAM_ORDER: true = "similar" (extension, then file name, then path), false = "path".
    pub order_similar: bool,
    /// GPU_DEVICE: "auto", "all", an index or a name substring.
    pub gpu_device: String,
    /// PARITY: percent of parity volumes (0 = none).
    pub parity: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            force_cpu: false,
            compressor_batch_size: 32,
            gpu_fallback: true,
            decompressor_batch_size: 64,
            max_worker_threads: 0,
            read_buffer_batches: 4,
            write_buffer_batches: 4,
            num_scan_workers: 0,
            num_io_workers: 0,
            num_readers: 0,
            buffer_size: 16 << 20,
            hash_log: 16,
            hash_candidates: 2,
            good_enough_match: 64,
            frame_size: 4 << 20,
            adaptive_frames: true,
            small_frame_size: 1 << 20,
            large_frame_size: 16 << 20,
            volume_size: 2 << 30,
            chunk_min: 16 << 10,
            chunk_avg: 64 << 10,
            chunk_max: 256 << 10,
            chunk_files_from: 1 << 20,
            cache_size: 256 << 20,
            cache_size_given: false,
            codec: Codec::LzExt3,
            zstd_level: crate::codec::zstd::DEFAULT_LEVEL as u32,
            subblock_size: 64 << 10,
            order_similar: true,
            gpu_device: "auto".into(),
            parity: 0,
        }
    }
}

/// Frames a pack's input is cut into at least, where frames of the configured sizes would be fewer
/// ([`Config::fit_input`]).
pub const MIN_FRAMES_PER_INPUT: u64 = 32;

impl Config {
    /// Worker threads to use (MAX_WORKER_THREADS, 0 meaning every core).
    pub fn threads(&self) -> usize {
        per_core(self.max_worker_threads)
    }

    /// The frame sizes the packer uses, (small, normal, large): SMALL_FRAME_SIZE between CHUNK_MAX_SIZE (a
    /// chunk never spans frames) and FRAME_SIZE; FRAME_SIZE; LARGE_FRAME_SIZE, at least FRAME_SIZE. Without
    /// ADAPTIVE_FRAMES only FRAME_SIZE is used.
    pub fn frame_limits(&self) -> (u64, u64, u64) {
        let small = self
            .small_frame_size
            .max(u64::from(self.chunk_max))
            .min(self.frame_size);
        (
            small,
            self.frame_size,
            self.large_frame_size.max(self.frame_size),
        )
    }

    /// Files smaller than this many bytes are one chunk each, not cut by FastCDC: CHUNK_FILES_FROM, but
    /// no more than the smallest frame ([`Config::frame_limits`]), since a chunk lies in one frame.
    pub fn whole_below(&self) -> u64 {
        self.chunk_files_from.min(self.frame_limits().0)
    }

    /// Caps FRAME_SIZE and LARGE_FRAME_SIZE at a 32nd of the `input` bytes a pack streams, but not below
    /// the small frame size: the frames of a small tree then keep sixteen threads busy twice over, where a
    /// few 4-16 MiB frames, the last of them encoded alone, made most of its pack (BENCHMARKS.md 11.8), and
    /// with a sixteenth the last frames' encoding still outlasted the reading by a third of the pack on 16
    /// cores (docs/GPU.md run 72). It depends on the input alone, not on the machine, so the same tree and
    /// config still give the same bytes; trees of 512 MiB and more keep the configured sizes.
    pub fn fit_input(&mut self, input: u64) {
        let (small, _, _) = self.frame_limits();
        let cap = (input / MIN_FRAMES_PER_INPUT).max(small);
        self.frame_size = self.frame_size.min(cap);
        self.large_frame_size = self.large_frame_size.min(cap);
    }

    /// Caps the frame sizes at `max_frame` bytes (the largest frame a volume of VOLUME_SIZE holds:
    /// volumes are a hard limit), and the chunk sizes with them as `--frame-size` does, since a chunk
    /// lies in one frame.
    pub fn fit_volume(&mut self, max_frame: u64) {
        let m = max_frame.max(1);
        self.frame_size = self.frame_size.min(m);
        self.small_frame_size = self.small_frame_size.min(m);
        self.large_frame_size = self.large_frame_size.min(m);
        if u64::from(self.chunk_max) > self.frame_size {
            self.chunk_max = self.frame_size as u32;
            self.chunk_avg = self.chunk_avg.min(self.chunk_max / 4);
            self.chunk_min = self.chunk_min.min(self.chunk_avg / 4);
        }
    }

    /// Threads writing files when extracting (NUM_IO_WORKERS, 0 meaning one per core).
    pub fn io_workers(&self) -> usize {
        per_core(self.num_io_workers)
    }

    /// Threads walking the source tree (NUM_SCAN_WORKERS, 0 meaning one per core and at least 4: the walk
    /// waits on system calls, and on 2 cores 4 walkers beat 2).
    pub fn scan_workers(&self) -> usize {
        match self.num_scan_workers {
            0 => per_core(0).max(4),
            n => n,
        }
    }

    /// Threads reading source files when packing (NUM_READERS, 0 meaning one per core).
    pub fn readers(&self) -> usize {
        per_core(self.num_readers)
    }

    /// The encoder tuning taken from this config.
    pub fn encode_params(&self) -> crate::codec::EncodeParams {
        crate::codec::EncodeParams {
            hash_log: self.hash_log,
            candidates: self.hash_candidates,
            good_enough: self.good_enough_match,
            sb_log: self.subblock_size.max(1).trailing_zeros(),
            zstd_level: self.zstd_level as i32,
        }
    }

    /// The codec new frames are written with: CODEC, with `lz_ext3` meaning LZ_EXT3_SB unless
    /// SUBBLOCK_SIZE is 0.
    pub fn frame_codec(&self) -> Codec {
        match self.codec {
            Codec::LzExt3 if self.subblock_size > 0 => Codec::LzExt3Sb,
            c => c,
        }
    }

    /// Reads and validates a config file: `Config::default()` with each of the file's keys applied.
    /// It must be a regular file: a FIFO (with no writer, `--config` hung) or a device is refused
    /// without reading, and the file is opened with `O_NONBLOCK` so nothing swapped in can block.
    pub fn load(path: &Path) -> Result<Config> {
        use std::os::unix::fs::OpenOptionsExt;
        let regular = |m: std::fs::Metadata| {
            m.is_file()
                .then_some(())
                .ok_or_else(|| std::io::Error::other("not a regular file"))
        };
        let mut bytes = Vec::new();
        std::fs::metadata(path)
            .and_then(regular)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(path)
            })
            .and_then(|f| {
                regular(f.metadata()?)?;
                f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)
            })
            .ctx(path)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            let path = path.display();
            return Err(Error::Usage(format!(
                "{path}: larger than 1 MiB, not a config file"
            )));
        }
        file::parse(&bytes, &path.display().to_string())
    }

    /// Parses and validates config text; `file_name` is used in error messages.
    pub fn parse_str(text: &str, file_name: &str) -> Result<Config> {
        file::parse(text.as_bytes(), file_name)
    }

    /// Applies one key (exactly as written in config.txt) with its value, checking the value and its
    /// range but not the rules between keys (call [`Config::validate`] after the last `set`).
    /// The error is an [`Error::Setting`] naming the key, its message one line without the key, e.g.
    /// `30 is out of range 10..=24`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        self.set_value(key, value).map_err(|msg| Error::Setting {
            key: key.to_string(),
            msg,
        })
    }

    /// [`Config::set`] with the message alone (the file parser adds the file and line).
    fn set_value(&mut self, key: &str, value: &str) -> std::result::Result<(), String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("missing value".into());
        }
        match key {
            // `auto`: the default budget (a mount sizes it from the archive, `mount::default_cache`).
            "CACHE_SIZE" if value.eq_ignore_ascii_case("auto") => {
                self.cache_size = Config::default().cache_size;
                self.cache_size_given = false;
            }
            "FORCE_CPU_MODE" => self.force_cpu = parse_bool(value)?,
            "GPU_FALLBACK_ENABLED" => self.gpu_fallback = parse_bool(value)?,
            "ADAPTIVE_FRAMES" => self.adaptive_frames = parse_bool(value)?,
            "GPU_DEVICE" => self.gpu_device = parse_device(value)?,
            "STREAM_ORDER" => {
                self.order_similar = match value.to_ascii_lowercase().as_str() {
                    "similar" => true,
                    "path" => false,
                    _ => {
                        return Err(format!(
                            "{} is not an order (similar or path)",
                            shown(value)
                        ))
                    }
                }
            }
            "CODEC" => {
                self.codec = Codec::parse(value).ok_or_else(|| {
                    format!(
                        "{} is not a codec (lz_ext3, lz_ext3e, zstd, lz4 or raw)",
                        shown(value)
                    )
                })?
            }
            _ => {
                let number = keys::number(key).ok_or_else(|| file::unknown_key(key))?;
                (number.put)(self, number.parse(value)?);
            }
        }
        Ok(())
    }

    /// Checks every range and the rules between keys; the error is an [`Error::Setting`] naming the key,
    /// e.g. `CHUNK_MAX_SIZE: 512K must not exceed FRAME_SIZE (256K)`.
    pub fn validate(&self) -> Result<()> {
        self.check().map_err(|invalid| {
            let key = match &invalid {
                Invalid::Value { key, .. } => *key,
                Invalid::Order { low, .. } => *low,
            };
            Error::Setting {
                key: key.to_string(),
                msg: invalid.message(key),
            }
        })
    }

    /// [`Config::validate`] with the problem kept structured, so that the file parser can name the line.
    fn check(&self) -> std::result::Result<(), Invalid> {
        for number in keys::NUMBERS {
            let n = (number.get)(self);
            number
                .check(n, &number.show(n))
                .map_err(|msg| Invalid::Value {
                    key: number.key,
                    msg,
                })?;
        }
        parse_device(&self.gpu_device).map_err(|msg| Invalid::Value {
            key: "GPU_DEVICE",
            msg,
        })?;
        let sb = self.subblock_size;
        if sb != 0 && (!sb.is_power_of_two() || sb < 4 << 10) {
            return Err(Invalid::Value {
                key: "SUBBLOCK_SIZE",
                msg: format!("{} is not 0 or a power of two from 4K to 16M", fmt_size(sb)),
            });
        }
        // A chunk never spans frames, so the largest chunk must fit in one; and the cache must hold at
        // least one decoded frame.
        let order = [
            (
                "CHUNK_MIN_SIZE",
                u64::from(self.chunk_min),
                "CHUNK_AVG_SIZE",
                u64::from(self.chunk_avg),
            ),
            (
                "CHUNK_AVG_SIZE",
                u64::from(self.chunk_avg),
                "CHUNK_MAX_SIZE",
                u64::from(self.chunk_max),
            ),
            (
                "CHUNK_MAX_SIZE",
                u64::from(self.chunk_max),
                "FRAME_SIZE",
                self.frame_size,
            ),
            ("FRAME_SIZE", self.frame_size, "CACHE_SIZE", self.cache_size),
        ];
        for (low, low_n, high, high_n) in order {
            if low_n > high_n {
                return Err(Invalid::Order {
                    low,
                    low_n,
                    high,
                    high_n,
                });
            }
        }
        Ok(())
    }
}

/// A thread count from config: `n`, or one per core for 0 (the cores counted once per process: std
/// reads the cgroup's CPU quota on every call, four files, and a mount asked twice before it was ready).
fn per_core(n: usize) -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    match n {
        0 => *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        n => n,
    }
}

/// A GPU_DEVICE value: `auto`, `all` (stored lower-case), a device index, or a name substring;
/// non-empty, at most [`MAX_DEVICE_CHARS`] characters, no control characters.
fn parse_device(s: &str) -> std::result::Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("missing value".into());
    }
    if s.chars().count() > MAX_DEVICE_CHARS {
        return Err(format!(
            "{} is longer than {MAX_DEVICE_CHARS} characters",
            shown(s)
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{} contains control characters", shown(s)));
    }
    let lower = s.to_ascii_lowercase();
    if lower == "auto" || lower == "all" {
        return Ok(lower);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let index = parse_count(s)?;
        if u32::try_from(index).is_err() {
            return Err(format!("device index {} is too large", shown(s)));
        }
    }
    Ok(s.to_string())
}

/// Why a config is invalid, kept structured so that an error can be told from either key's side.
#[derive(Debug)]
enum Invalid {
    /// One key's value is wrong.
    Value { key: &'static str, msg: String },
    /// `low` (a size) must be at most `high` (a size).
    Order {
        low: &'static str,
        low_n: u64,
        high: &'static str,
        high_n: u64,
    },
}

impl Invalid {
    /// The message, worded from the side of `key` (which must be one of the keys concerned).
    fn message(&self, key: &str) -> String {
        match self {
            Invalid::Value { msg, .. } => msg.clone(),
            Invalid::Order {
                low,
                low_n,
                high,
                high_n,
            } => {
                let (low_s, high_s) = (fmt_size(*low_n), fmt_size(*high_n));
                if key == *high {
                    format!("{high_s} must be at least {low} ({low_s})")
                } else {
                    format!("{low_s} must not exceed {high} ({high_s})")
                }
            }
        }
    }
}
