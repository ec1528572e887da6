//! LZ_EXT3_SB (codec 3, format version 2): LZ_EXT3 sequences in sub-blocks of S = 2^`sb_log` output
//! bytes, with a table of where each sub-block's sequences begin. See docs/FORMAT.md section 2.2.
//!
//! ```text
//! off      size  field
//! 0        1     sb_log        12 ..= 24
//! 1        3     reserved      0
//! 4        4     count         n = ceil(raw_len / S)
//! 8        4n    start[k]      u32, sub-block k's first sequence byte, from the start of the sequence area
//! 8+4n     4     table_check   low 32 bits of xxh3 of bytes 0 .. 8+4n
//! 12+4n    ...   sequences     sub-block k's are [start[k], start[k+1]) (the last one: to the end)
//! ```
//!
//! No sequence crosses a sub-block's end; a match's offset counts back from its position in the frame, so
//! it may read earlier sub-blocks (the 16 MiB window stays). Nothing else constrains the encoder. The
//! bytes are those of decoding the sub-blocks in order ([`decompress_serial`]); [`decompress_parallel`]
//! decodes them all at once on several threads, setting aside matches whose source is not final yet
//! (the GPU kernel does the same with one warp per sub-block; docs/GPU.md).

mod decode;
mod encode;
// The one hot loop allowed unsafe code (threads share the output through a raw pointer; the module docs
// give the protocol that keeps it race-free, and every block a SAFETY comment); its safe twin is
// `decompress_serial`, which the tests and the fuzz target hold it to.
#[allow(unsafe_code)]
mod parallel;

pub use decode::{decompress, decompress_serial, Sequence, Sequences};
pub use encode::{compress, Encoder};
pub use parallel::decompress_parallel;

use crate::error::{Error, Result};

/// Smallest and largest `sb_log`.
pub const MIN_SB_LOG: u32 = 12;
pub const MAX_SB_LOG: u32 = 24;
/// The sub-block size clc writes by default: 64 KiB.
pub const DEFAULT_SB_LOG: u32 = 16;
/// Bytes before the start table (sb_log, reserved, count).
const HEAD: usize = 8;

/// xxh3 (seed 0) of the header and table, as FORMAT.md's checksums; its low 32 bits are `table_check`.
fn table_check(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

pub(crate) fn err(msg: impl std::fmt::Display) -> Error {
    Error::Decode(format!("lz_ext3_sb: {msg}"))
}

/// Upper bound on the encoded size of `n` input bytes with sub-blocks of `2^sb_log` bytes.
pub fn max_compressed_len(n: usize, sb_log: u32) -> usize {
    let subs = n.div_ceil(1 << sb_log);
    HEAD + 4 * subs + 4 + n + n / 255 + 16 * subs.max(1)
}

/// Writes the header and start table (`starts` relative to the sequence area).
pub(crate) fn write_table(out: &mut Vec<u8>, sb_log: u32, starts: &[u32]) {
    let at = out.len();
    out.push(sb_log as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(starts.len() as u32).to_le_bytes());
    for s in starts {
        out.extend_from_slice(&s.to_le_bytes());
    }
    let check = table_check(&out[at..]) as u32;
    out.extend_from_slice(&check.to_le_bytes());
}

/// A frame's sub-block table, checked against every reader rule of FORMAT.md 2.2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// log2 of the sub-block size.
    pub sb_log: u32,
    /// Where each sub-block's sequences begin, as offsets into the stored bytes; one more entry at the end
    /// (the stored length), so sub-block k's input is `bounds[k]..bounds[k + 1]`.
    pub bounds: Vec<usize>,
    pub raw_len: usize,
}

impl Layout {
    /// Reads and checks the table of a stored frame of `raw_len` decoded bytes.
    pub fn parse(src: &[u8], raw_len: usize) -> Result<Layout> {
        let head = src
            .get(..HEAD)
            .ok_or_else(|| err("shorter than its sub-block header"))?;
        let sb_log = u32::from(head[0]);
        if !(MIN_SB_LOG..=MAX_SB_LOG).contains(&sb_log) {
            return Err(err(format!(
                "sub-block size 2^{sb_log} outside 2^{MIN_SB_LOG} ..= 2^{MAX_SB_LOG}"
            )));
        }
        if head[1..4] != [0, 0, 0] {
            return Err(err("non-zero reserved bytes in the sub-block header"));
        }
        let count = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
        let want = raw_len.div_ceil(1 << sb_log);
        if count != want {
            return Err(err(format!(
                "table has {count} sub-blocks, {raw_len} bytes in sub-blocks of {} need {want}",
                1u64 << sb_log
            )));
        }
        let seq_at = HEAD + 4 * count + 4;
        if seq_at > src.len() {
            return Err(err("sub-block table runs past the stored bytes"));
        }
        let check = u32::from_le_bytes(src[seq_at - 4..seq_at].try_into().expect("4 bytes"));
        if check != table_check(&src[..seq_at - 4]) as u32 {
            return Err(err("sub-block table checksum mismatch"));
        }
        let seq_len = src.len() - seq_at;
        let mut bounds = Vec::with_capacity(count + 1);
        for k in 0..count {
            let at = HEAD + 4 * k;
            let s = u32::from_le_bytes(src[at..at + 4].try_into().expect("4 bytes")) as usize;
            let ok = if k == 0 {
                s == 0
            } else {
                s > bounds[k - 1] - seq_at
            };
            if !ok || s >= seq_len {
                return Err(err(format!(
                    "sub-block {k} starts at {s}: starts must begin at 0, rise strictly and stay below \
                     the {seq_len} bytes of sequences"
                )));
            }
            bounds.push(seq_at + s);
        }
        if count == 0 && seq_len != 0 {
            return Err(err("bytes after the table of an empty frame"));
        }
        bounds.push(src.len());
        Ok(Layout {
            sb_log,
            bounds,
            raw_len,
        })
    }

    /// Number of sub-blocks.
    pub fn count(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Sub-block size in bytes.
    pub fn size(&self) -> usize {
        1 << self.sb_log
    }

    /// The stored bytes holding sub-block `k`'s sequences.
    pub fn input(&self, k: usize) -> std::ops::Range<usize> {
        self.bounds[k]..self.bounds[k + 1]
    }

    /// The output bytes of sub-block `k`.
    pub fn output(&self, k: usize) -> std::ops::Range<usize> {
        let s = self.size();
        k * s..((k + 1) * s).min(self.raw_len)
    }
}

#[cfg(test)]
mod tests;
