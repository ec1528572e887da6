//! The keys of config.txt: their order, and the range and unit of every numeric key. This table is the
//! one place where a range is written; `Config::set` and `Config::validate` both read it, and
//! `config.txt` states the same ranges in words.

use super::value::{fmt_size, parse_count, parse_size, shown};
use super::Config;
use crate::format::frame::MAX_FRAME;
// fastcdc asserts its chunk-size bounds in `FastCDC::new`; the CHUNK_* ranges are exactly those bounds,
// so a bad config is an error message here instead of a panic in the chunker.
use fastcdc::v2020 as cdc;

/// Every key, in the order of the shipped `config.txt`.
pub const KEYS: &[&str] = &[
    "FORCE_CPU_MODE",
    "GPU_FALLBACK_ENABLED",
    "GPU_DEVICE",
    "COMPRESSOR_BATCH_SIZE",
    "DECOMPRESSOR_BATCH_SIZE",
    "MAX_WORKER_THREADS",
    "NUM_SCAN_WORKERS",
    "NUM_READERS",
    "NUM_IO_WORKERS",
    "BUFFER_SIZE",
    "READ_BUFFER_BATCHES",
    "WRITE_BUFFER_BATCHES",
    "CODEC",
    "ZSTD_LEVEL",
    "SUBBLOCK_SIZE",
    "STREAM_ORDER",
    "HASH_LOG",
    "HASH_CANDIDATES",
    "GOOD_ENOUGH_MATCH",
    "CHUNK_MIN_SIZE",
    "CHUNK_AVG_SIZE",
    "CHUNK_MAX_SIZE",
    "CHUNK_FILES_FROM",
    "FRAME_SIZE",
    "ADAPTIVE_FRAMES",
    "SMALL_FRAME_SIZE",
    "LARGE_FRAME_SIZE",
    "VOLUME_SIZE",
    "PARITY",
    "CACHE_SIZE",
];

/// How a numeric value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A plain whole number.
    Count,
    /// Bytes, with an optional K/M/G/T unit (see [`parse_size`]).
    Bytes,
    /// A whole number with an optional trailing `%`.
    Percent,
}

/// One numeric key: its inclusive range, its unit, and how to read and write its field.
/// `put` is only called with a value inside `min..=max`, and every `max` fits the field's type
/// (a test sets every key to its maximum and reads it back).
pub struct Number {
    pub key: &'static str,
    pub min: u64,
    pub max: u64,
    pub unit: Unit,
    pub get: fn(&Config) -> u64,
    pub put: fn(&mut Config, u64),
}

const fn count(
    key: &'static str,
    min: u64,
    max: u64,
    get: fn(&Config) -> u64,
    put: fn(&mut Config, u64),
) -> Number {
    Number {
        key,
        min,
        max,
        unit: Unit::Count,
        get,
        put,
    }
}

const fn bytes(
    key: &'static str,
    min: u64,
    max: u64,
    get: fn(&Config) -> u64,
    put: fn(&mut Config, u64),
) -> Number {
    Number {
        key,
        min,
        max,
        unit: Unit::Bytes,
        get,
        put,
    }
}

/// The numeric keys, one row each: key, min, max, read, write. The `as` casts in `put` narrow values
/// already checked against `max`.
#[rustfmt::skip]
pub const NUMBERS: &[Number] = &[
    count("COMPRESSOR_BATCH_SIZE", 1, 1024, |c| c.compressor_batch_size as u64, |c, n| c.compressor_batch_size = n as usize),
    count("DECOMPRESSOR_BATCH_SIZE", 1, 1024, |c| c.decompressor_batch_size as u64, |c, n| c.decompressor_batch_size = n as usize),
    count("MAX_WORKER_THREADS", 0, 1024, |c| c.max_worker_threads as u64, |c, n| c.max_worker_threads = n as usize),
    count("NUM_SCAN_WORKERS", 0, 256, |c| c.num_scan_workers as u64, |c, n| c.num_scan_workers = n as usize),
    count("NUM_READERS", 0, 256, |c| c.num_readers as u64, |c, n| c.num_readers = n as usize),
    count("NUM_IO_WORKERS", 0, 256, |c| c.num_io_workers as u64, |c, n| c.num_io_workers = n as usize),
    bytes("BUFFER_SIZE", 64 << 10, 1 << 30, |c| c.buffer_size, |c, n| c.buffer_size = n),
    count("READ_BUFFER_BATCHES", 1, 64, |c| c.read_buffer_batches as u64, |c, n| c.read_buffer_batches = n as usize),
    count("WRITE_BUFFER_BATCHES", 1, 64, |c| c.write_buffer_batches as u64, |c, n| c.write_buffer_batches = n as usize),
    count("HASH_LOG", 10, 24, |c| u64::from(c.hash_log), |c, n| c.hash_log = n as u32),
    count("HASH_CANDIDATES", 1, 16, |c| u64::from(c.hash_candidates), |c, n| c.hash_candidates = n as u32),
    count("GOOD_ENOUGH_MATCH", 4, 65536, |c| u64::from(c.good_enough_match), |c, n| c.good_enough_match = n as u32),
    bytes("CHUNK_MIN_SIZE", cdc::MINIMUM_MIN as u64, cdc::MINIMUM_MAX as u64, |c| u64::from(c.chunk_min), |c, n| c.chunk_min = n as u32),
    bytes("CHUNK_AVG_SIZE", cdc::AVERAGE_MIN as u64, cdc::AVERAGE_MAX as u64, |c| u64::from(c.chunk_avg), |c, n| c.chunk_avg = n as u32),
    bytes("CHUNK_MAX_SIZE", cdc::MAXIMUM_MIN as u64, cdc::MAXIMUM_MAX as u64, |c| u64::from(c.chunk_max), |c, n| c.chunk_max = n as u32),
    bytes("CHUNK_FILES_FROM", 0, 8 << 20, |c| c.chunk_files_from, |c, n| c.chunk_files_from = n),
    bytes("FRAME_SIZE", 64 << 10, MAX_FRAME as u64, |c| c.frame_size, |c, n| c.frame_size = n),
    bytes("SMALL_FRAME_SIZE", 64 << 10, MAX_FRAME as u64, |c| c.small_frame_size, |c, n| c.small_frame_size = n),
    bytes("LARGE_FRAME_SIZE", 64 << 10, MAX_FRAME as u64, |c| c.large_frame_size, |c, n| c.large_frame_size = n),
    count("ZSTD_LEVEL", 1, 19, |c| u64::from(c.zstd_level), |c, n| c.zstd_level = n as u32),
    bytes("SUBBLOCK_SIZE", 0, MAX_FRAME as u64, |c| c.subblock_size, |c, n| c.subblock_size = n),
    bytes("VOLUME_SIZE", 64 << 10, 16 << 40, |c| c.volume_size, |c, n| c.volume_size = n),
    Number { key: "PARITY", min: 0, max: 100, unit: Unit::Percent, get: |c| u64::from(c.parity), put: |c, n| c.parity = n as u32 },
    bytes("CACHE_SIZE", 1 << 20, 1 << 40, |c| c.cache_size, |c, n| { c.cache_size = n; c.cache_size_given = true }),
];

/// The numeric key named `key`, if it is one.
pub fn number(key: &str) -> Option<&'static Number> {
    NUMBERS.iter().find(|n| n.key == key)
}

impl Number {
    /// Parses `value` in this key's unit and checks it against the range.
    pub fn parse(&self, value: &str) -> Result<u64, String> {
        let n = match self.unit {
            Unit::Count => parse_count(value)?,
            Unit::Bytes => parse_size(value)?,
            Unit::Percent => parse_count(value.trim().strip_suffix('%').unwrap_or(value))?,
        };
        self.check(n, &shown(value.trim()))?;
        Ok(n)
    }

    /// Checks `n` (written `as_written` in messages) against the range.
    pub fn check(&self, n: u64, as_written: &str) -> Result<(), String> {
        if (self.min..=self.max).contains(&n) {
            return Ok(());
        }
        let (lo, hi) = (self.show(self.min), self.show(self.max));
        Err(format!("{as_written} is out of range {lo}..={hi}"))
    }

    /// `n` written in this key's unit.
    pub fn show(&self, n: u64) -> String {
        match self.unit {
            Unit::Count | Unit::Percent => n.to_string(),
            Unit::Bytes => fmt_size(n),
        }
    }
}
