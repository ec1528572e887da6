//! LZ_EXT3: LZ4 block sequences with a 3-byte offset (16 MiB window). See docs/FORMAT.md section 2.1.
//!
//! ```text
//! token        1 byte: high nibble L = literal count, low nibble M = match length - 4
//! [lit ext]    if L == 15: bytes added to L, each 255 continues, the first byte < 255 ends
//! literals     L bytes
//! --- if the input ends here, the block is complete (the last sequence has no match part) ---
//! offset       3 bytes, u24 LE, 1 ..= 16_777_215 (0 is invalid)
//! [match ext]  if M == 15: bytes added to M as for literals
//! match        copy M + 4 bytes from output[pos - offset] forward, byte by byte (overlap allowed)
//! ```
//!
//! Choices made here:
//! - **Empty input** encodes to an empty block (zero bytes). For `raw_len == 0` the decoder accepts both the
//!   empty block and a lone `0x00` token (what other LZ4-family encoders write).
//! - The encoder never starts or ends a match in the last [`LAST_LITERALS`] bytes: they (or the whole input,
//!   if shorter) are always literals. The decoder does not rely on this; it also accepts a block whose last
//!   sequence ends with a match, as long as the input is consumed exactly when the output is full.
//! - The match finder is a hash table of `2^hash_log` buckets, each holding the newest `candidates`
//!   positions (newest first). Every position that is looked up is inserted; on a miss the encoder skips
//!   ahead faster and faster (LZ4's acceleration) so incompressible data costs little. For each position all
//!   candidates of its bucket are tried; the longest match wins, ties go to the nearest, and the search stops
//!   at the first match of `good_enough` bytes. Only matches of at least [`HASH_BYTES`] bytes are taken
//!   (with a 3-byte offset, a 4-byte match saves nothing). A match shorter than `good_enough` is
//!   compared with the best match one byte later (one step of lazy matching), and the chosen match is
//!   extended backwards into pending literals.
//! - A table slot is a u32: the position mod 2^24 (the window) and an 8-bit tag from the hash, so most
//!   false candidates are rejected without touching the input. Inputs over 16 MiB work (older positions
//!   alias into the window and fail the byte comparison), though frames are at most 16 MiB.
//! - Table memory is `4 * candidates * 2^hash_log` bytes (1 GiB at 24 and 16!), but never more buckets
//!   than the next power of two of the input length (small inputs get a small table; the output depends
//!   only on the input and params).
//! - Out-of-range params are clamped: `hash_log` to 10..=24, `candidates` to 1..=16, `good_enough` to >= 4.
//! - Output is deterministic: the same input and params give the same bytes, whatever the [`Encoder`]
//!   compressed before.
//!
//! No `unsafe`: the hot loops read with `from_le_bytes` on slices whose bounds checks the optimizer removes
//! or that cost little next to the work done.

#![forbid(unsafe_code)]

use super::lz_match;
use super::EncodeParams;
use crate::error::{Error, Result};

/// Minimum match length.
pub const MIN_MATCH: usize = 4;
/// The last bytes of every block that are always literals.
pub const LAST_LITERALS: usize = 12;
/// Largest offset a match may use (the format stores it in 3 bytes).
pub const MAX_OFFSET: usize = (1 << 24) - 1;

/// Bytes hashed, and the shortest match the encoder takes. With 3-byte offsets a 4-byte match saves
/// nothing (token + offset = 4 bytes). Measured on a tar of docs and Python sources (output size relative
/// to LZ4, candidates 1): hashing 4 bytes 1.03, 5 bytes 0.976, 6 bytes 0.960, 7 bytes 0.959, 8 bytes 0.965.
pub const HASH_BYTES: u32 = 6;
/// Inputs shorter than this are stored as one literal run (the match finder reads 8 bytes at a time and
/// must leave `LAST_LITERALS`).
pub(super) const MIN_INPUT: usize = LAST_LITERALS + 8;
/// LZ4's skip strength: after `2^SKIP_STRENGTH` misses in a row the step grows by one byte.
pub(super) const SKIP_STRENGTH: u32 = 6;

/// Upper bound on the encoded size of `n` input bytes (all literals: token, length bytes, literals).
pub fn max_compressed_len(n: usize) -> usize {
    n + n / 255 + 16
}

/// An LZ_EXT3 encoder that keeps its hash table between calls, for callers compressing many frames.
#[derive(Clone, Debug)]
pub struct Encoder {
    hash_log: u32,
    candidates: usize,
    good_enough: usize,
    table: Vec<u32>,
}

impl Encoder {
    /// A new encoder for `p` (clamped to the supported ranges). Allocates nothing until the first call.
    pub fn new(p: &EncodeParams) -> Self {
        Encoder {
            hash_log: p.hash_log.clamp(10, 24),
            candidates: p.candidates.clamp(1, 16) as usize,
            good_enough: (p.good_enough as usize).max(MIN_MATCH),
            table: Vec::new(),
        }
    }

    /// Appends the LZ_EXT3 encoding of `src` to `out`.
    pub fn compress(&mut self, src: &[u8], out: &mut Vec<u8>) {
        out.reserve(max_compressed_len(src.len()));
        if src.len() < MIN_INPUT {
            // Too short for any match (and empty input stays empty).
            if !src.is_empty() {
                write_literals_only(out, src);
            }
            return;
        }
        let (table, log) =
            lz_match::fresh_table(&mut self.table, self.hash_log, self.candidates, src.len());
        let ge = self.good_enough;
        macro_rules! dispatch {
            ($($k:literal)*) => {
                match self.candidates {
                    $($k => compress_block::<$k>(src, 0, out, table, log, ge),)*
                    _ => unreachable!("candidates clamped to 1..=16"),
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    }

    /// Appends the LZ_EXT3 encoding of `src` to `out`, with `prefix` as a dictionary: matches may reach
    /// back into it (FORMAT.md 2.3); a decoder must be given the same prefix. Every position of the
    /// prefix is entered in the match finder first.
    pub fn compress_with_prefix(&mut self, prefix: &[u8], src: &[u8], out: &mut Vec<u8>) {
        if prefix.is_empty() {
            return self.compress(src, out);
        }
        out.reserve(max_compressed_len(src.len()));
        let mut buf = Vec::with_capacity(prefix.len() + src.len());
        buf.extend_from_slice(prefix);
        buf.extend_from_slice(src);
        if src.len() < MIN_INPUT || buf.len() < MIN_INPUT + 8 {
            if !src.is_empty() {
                write_literals_only(out, src);
            }
            return;
        }
        let (table, log) =
            lz_match::fresh_table(&mut self.table, self.hash_log, self.candidates, buf.len());
        let ge = self.good_enough;
        let start = prefix.len();
        macro_rules! dispatch {
            ($($k:literal)*) => {
                match self.candidates {
                    $($k => {
                        // The prefix's positions, oldest first, so that the newest win the buckets.
                        for p in 0..start.min(buf.len() - 8) {
                            lz_match::enter::<$k, HASH_BYTES>(&buf, table, log, p);
                        }
                        compress_block::<$k>(&buf, start, out, table, log, ge)
                    })*
                    _ => unreachable!("candidates clamped to 1..=16"),
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    }
}

/// Encodes `src`; the output is a valid LZ_EXT3 block (see the module docs for the empty input).
pub fn compress(src: &[u8], p: &EncodeParams) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(p).compress(src, &mut out);
    out
}

/// Writes a length continuation (`n` already reduced by 15).
#[inline(always)]
pub(super) fn write_ext(out: &mut Vec<u8>, mut n: usize) {
    while n >= 255 {
        out.push(255);
        n -= 255;
    }
    out.push(n as u8);
}

/// Writes one sequence: `lits`, then a match of `mlen` bytes at `offset`.
#[inline(always)]
pub(super) fn write_sequence(out: &mut Vec<u8>, lits: &[u8], offset: usize, mlen: usize) {
    let l = lits.len();
    let m = mlen - MIN_MATCH;
    out.push(((l.min(15) as u8) << 4) | m.min(15) as u8);
    if l >= 15 {
        write_ext(out, l - 15);
    }
    out.extend_from_slice(lits);
    out.extend_from_slice(&(offset as u32).to_le_bytes()[..3]);
    if m >= 15 {
        write_ext(out, m - 15);
    }
}

/// Writes the final, literals-only sequence.
pub(super) fn write_literals_only(out: &mut Vec<u8>, lits: &[u8]) {
    let l = lits.len();
    out.push((l.min(15) as u8) << 4);
    if l >= 15 {
        write_ext(out, l - 15);
    }
    out.extend_from_slice(lits);
}

/// LZ_EXT3's match search: the shared finder with [`HASH_BYTES`] and the whole window.
#[inline(always)]
fn find_and_insert<const K: usize>(
    src: &[u8],
    table: &mut [u32],
    log: u32,
    ip: usize,
    limit: usize,
    good_enough: usize,
) -> (usize, usize) {
    lz_match::find_and_insert::<K, HASH_BYTES>(src, table, log, ip, limit, good_enough, MAX_OFFSET)
}

/// The match finder and sequence writer for `K` candidates per bucket: encodes `src[start..]`, the bytes
/// before `start` being a dictionary already entered in `table` (none for a plain block).
///
/// One long function on purpose: this is the hot loop, and keeping the search, the insertion and the
/// acceleration together lets the compiler keep the positions in registers. `src.len()` is at least
/// `MIN_INPUT`, and `table` holds `K << log` slots, empty (0) but for the dictionary's.
fn compress_block<const K: usize>(
    src: &[u8],
    start: usize,
    out: &mut Vec<u8>,
    table: &mut [u32],
    log: u32,
    good_enough: usize,
) {
    let n = src.len();
    // Matches end at or before `limit`; a match must start at or before `search_end`.
    let limit = n - LAST_LITERALS;
    let search_end = limit - HASH_BYTES as usize;

    let mut anchor = start; // start of pending literals
    let mut ip = start;
    'outer: loop {
        // Find the next match: look up, insert, and on a miss skip ahead (faster after many misses).
        let mut attempts = 1u32 << SKIP_STRENGTH;
        let (mut mpos, mut mlen) = loop {
            if ip > search_end {
                break 'outer;
            }
            let (pos, len) = find_and_insert::<K>(src, table, log, ip, limit, good_enough);
            if len != 0 {
                break (pos, len);
            }
            ip += (attempts >> SKIP_STRENGTH) as usize;
            attempts += 1;
        };
        // One step of lazy matching: a longer match at the next byte wins. Measured on a tar of docs and
        // Python sources: 2% smaller output for about 10% less speed, a better trade than more candidates.
        if mlen < good_enough && ip < search_end {
            let (pos, len) = find_and_insert::<K>(src, table, log, ip + 1, limit, good_enough);
            if len > mlen {
                ip += 1;
                mpos = pos;
                mlen = len;
            }
        }
        // Extend backwards into the pending literals.
        let back = lz_match::back_len(src, anchor, ip, mpos);
        (ip, mpos, mlen) = (ip - back, mpos - back, mlen + back);
        write_sequence(out, &src[anchor..ip], ip - mpos, mlen);
        ip += mlen;
        anchor = ip;
        // Insert a position near the match end (as LZ4 does) so the next repeat of it is found.
        if ip - 2 <= search_end {
            let p = ip - 2;
            lz_match::enter::<K, HASH_BYTES>(src, table, log, p);
        }
    }
    write_literals_only(out, &src[anchor..]);
}

pub(super) fn err(msg: &str) -> Error {
    Error::Decode(format!("lz_ext3: {msg}"))
}

/// Reads a length continuation at `*ip` and returns its sum.
#[inline(always)]
pub(super) fn read_ext(src: &[u8], ip: &mut usize) -> Result<usize> {
    let mut n = 0usize;
    loop {
        let b = *src.get(*ip).ok_or_else(|| err("truncated length"))?;
        *ip += 1;
        n += b as usize;
        if b != 255 {
            return Ok(n);
        }
    }
}

/// Decodes a block into exactly `raw_len` bytes.
pub fn decompress(src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    // A block yields fewer than 255 output bytes per input byte (length continuations of 255s), so a
    // larger `raw_len` cannot be right: refuse it before allocating.
    if raw_len > src.len().saturating_mul(255).saturating_add(16) {
        return Err(err("raw length impossible for the stored length"));
    }
    let mut out = vec![0u8; raw_len];
    decompress_into(src, &mut out)?;
    Ok(out)
}

/// Decodes a block made with `prefix` as its dictionary ([`Encoder::compress_with_prefix`]) into exactly
/// `raw_len` bytes.
pub fn decompress_with_prefix(prefix: &[u8], src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    if raw_len > src.len().saturating_mul(255).saturating_add(16) {
        return Err(err("raw length impossible for the stored length"));
    }
    let mut out = Vec::with_capacity(prefix.len() + raw_len);
    out.extend_from_slice(prefix);
    out.resize(prefix.len() + raw_len, 0);
    decompress_from(src, &mut out, prefix.len())?;
    out.drain(..prefix.len());
    Ok(out)
}

/// Decodes a block into `dst`, which must be filled exactly: its length is the block's raw length.
///
/// On error the contents of `dst` are unspecified.
pub fn decompress_into(src: &[u8], dst: &mut [u8]) -> Result<()> {
    decompress_from(src, dst, 0)
}

/// Decodes a block into `dst[start..]`, which must be filled exactly; `dst[..start]` is its dictionary.
fn decompress_from(src: &[u8], dst: &mut [u8], start: usize) -> Result<()> {
    // The hot loop: one iteration per sequence. Short literal runs and short non-overlapping matches are
    // copied as fixed 16-byte blocks when there is room (the extra bytes are overwritten later), which
    // avoids a variable-length memcpy call per sequence.
    let n = dst.len();
    let mut ip = 0usize;
    let mut op = start;
    while ip < src.len() {
        let token = src[ip];
        ip += 1;
        let mut lit = (token >> 4) as usize;
        if lit == 15 {
            lit += read_ext(src, &mut ip)?;
        }
        if lit <= 16 && ip + 16 <= src.len() && op + 16 <= n {
            dst[op..op + 16].copy_from_slice(&src[ip..ip + 16]);
        } else {
            let s = src
                .get(ip..ip.wrapping_add(lit))
                .ok_or_else(|| err("literals past the input"))?;
            dst.get_mut(op..op.wrapping_add(lit))
                .ok_or_else(|| err("literals past the output"))?
                .copy_from_slice(s);
        }
        ip += lit;
        op += lit;
        if ip == src.len() {
            break;
        }
        let o = src.get(ip..ip + 3).ok_or_else(|| err("truncated offset"))?;
        let off = o[0] as usize | (o[1] as usize) << 8 | (o[2] as usize) << 16;
        ip += 3;
        let mut ml = (token & 15) as usize;
        if ml == 15 {
            ml += read_ext(src, &mut ip)?;
        }
        ml += MIN_MATCH;
        if off == 0 || off > op {
            return Err(err("match offset out of range"));
        }
        let end = op.checked_add(ml).filter(|&e| e <= n);
        let end = end.ok_or_else(|| err("match past the output"))?;
        copy_match(dst, op, off, ml);
        op = end;
    }
    if op != n {
        return Err(err("block ends before the output is full"));
    }
    Ok(())
}

/// Copies `len` bytes from `op - off` to `op` as a forward byte-by-byte copy would (overlap repeats the
/// last `off` bytes). The caller has checked `1 <= off <= op` and `op + len <= dst.len()`.
#[inline(always)]
pub(super) fn copy_match(dst: &mut [u8], op: usize, off: usize, len: usize) {
    let s = op - off;
    if off >= 16 && len <= 16 && op + 16 <= dst.len() {
        dst.copy_within(s..s + 16, op);
    } else {
        copy_exact(dst, op, off, len);
    }
}

/// [`copy_match`] without its wild copy: writes exactly `dst[op..op + len]` (LZ_EXT3E's decoder, whose
/// wild copy has a bound of its own, uses it too).
#[inline(always)]
pub(super) fn copy_exact(dst: &mut [u8], op: usize, off: usize, len: usize) {
    let s = op - off;
    if off >= len {
        dst.copy_within(s..s + len, op);
    } else if off == 1 {
        let b = dst[s];
        dst[op..op + len].fill(b);
    } else {
        // Overlap: the bytes from `s` are periodic with period `off`; copy in doubling chunks, each chunk
        // starting a whole number of periods after `s`, so every source byte is already written.
        let mut done = 0;
        let mut chunk = off;
        while done < len {
            let c = chunk.min(len - done);
            dst.copy_within(s..s + c, op + done);
            done += c;
            chunk = done + off;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sequence of the old tool's real frames: 13 literals, then a 5-byte run at offset 1.
    #[test]
    fn decodes_legacy_vector() {
        let mut block = vec![
            0xd1, 0x3d, 0x3d, 0x3d, 0x20, 0x53, 0x65, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x20, 0x30,
            0x01, 0x00, 0x00,
        ];
        block.push(0x50);
        block.extend_from_slice(b"\nabcd");
        let out = decompress(&block, 23).unwrap();
        assert_eq!(out, b"=== Section 000000\nabcd");
    }

    #[test]
    fn a_prefix_is_a_dictionary() {
        let mut old = Vec::new();
        for i in 0..2000u32 {
            old.extend_from_slice(format!("line {i} of the first version\n").as_bytes());
        }
        let mut new = old.clone();
        new.splice(
            30_000..30_000,
            b"an edit in the second version".iter().copied(),
        );
        let p = EncodeParams::default();
        let plain = compress(&new, &p);
        let mut with = Vec::new();
        Encoder::new(&p).compress_with_prefix(&old, &new, &mut with);
        assert!(
            with.len() * 20 < plain.len(),
            "{} vs {}",
            with.len(),
            plain.len()
        );
        assert_eq!(decompress_with_prefix(&old, &with, new.len()).unwrap(), new);
        // Without the prefix the block does not decode (matches reach before its start).
        assert!(decompress(&with, new.len()).is_err());
        // Tiny inputs and an empty prefix.
        for n in [0, 1, 5, 19, 20, 40] {
            let mut e = Vec::new();
            Encoder::new(&p).compress_with_prefix(&old, &new[..n], &mut e);
            assert_eq!(decompress_with_prefix(&old, &e, n).unwrap(), &new[..n]);
        }
        let mut e = Vec::new();
        Encoder::new(&p).compress_with_prefix(&[], &new, &mut e);
        assert_eq!(e, plain);
    }

    #[test]
    fn empty_input() {
        let p = EncodeParams::default();
        assert!(compress(&[], &p).is_empty());
        assert_eq!(decompress(&[], 0).unwrap(), b"");
        assert_eq!(decompress(&[0x00], 0).unwrap(), b"");
        assert!(decompress(&[0x00, 0x00], 0).is_err());
        assert!(decompress(&[], 1).is_err());
        assert!(decompress(&[0x10], 0).is_err());
    }

    #[test]
    fn overlapping_copies() {
        for off in 1..40 {
            for len in 4..100 {
                let mut dst: Vec<u8> = (0..off as u8).collect();
                dst.resize(off + len, 0);
                copy_match(&mut dst, off, off, len);
                for i in off..off + len {
                    assert_eq!(dst[i], dst[i - off], "off {off} len {len} at {i}");
                }
            }
        }
    }

    #[test]
    fn rejects_bad_offsets_and_lengths() {
        // offset 0
        assert!(decompress(&[0x10, b'a', 0, 0, 0, 0x00], 5).is_err());
        // offset beyond the output
        assert!(decompress(&[0x10, b'a', 2, 0, 0, 0x00], 5).is_err());
        // match past the output
        assert!(decompress(&[0x10, b'a', 1, 0, 0, 0x00], 4).is_err());
        // trailing bytes after a full output
        assert!(decompress(&[0x10, b'a', 1, 0, 0, 0x00], 5).is_ok());
        assert!(decompress(&[0x10, b'a', 1, 0, 0, 0x00, 0x00], 5).is_err());
        // huge raw_len is refused before allocating
        assert!(decompress(&[0x00], usize::MAX).is_err());
    }
}
