//! The LZ match finder of LZ_EXT3E: LZ_EXT3's hash-bucket finder (src/codec/lz_ext3.rs, same rules, same
//! params) emitting a list of [`Seq`]s instead of LZ_EXT3 bytes, so that the entropy stage can cut them at
//! sub-block boundaries and code each field as its own stream.
//!
//! The bucket search itself is lz_match.rs's, shared with LZ_EXT3 and LZ_EXT3_SB; this file keeps the
//! parse loop (with its repeat check) and its output as a list of sequences.
//!
//! Rules (as LZ_EXT3): table matches of at least `hash_bytes` bytes (default [`HASH_BYTES`]), offsets
//! 1 ..= [`MAX_PARSE_OFFSET`], no match starts or ends in the last [`LAST_LITERALS`] bytes; `2^hash_log`
//! buckets of `candidates` newest positions; one step of lazy matching; matches extended backwards into
//! pending literals; LZ4's acceleration on misses. Added for the entropy-coded format: the previous
//! match's offset is tried first at every position (a repeat match of at least 4 bytes). The output is a
//! pure function of the input and params.

#![forbid(unsafe_code)]

use super::lz_match::{self, common_len, read_u32};
use super::EncodeParams;

/// Shortest match the format codes.
pub const MIN_MATCH: usize = 4;
/// The last bytes of every frame that are always literals.
pub const LAST_LITERALS: usize = 12;
/// Largest offset (the format stores it in 3 bytes).
pub const MAX_OFFSET: usize = (1 << 24) - 1;
/// Bytes hashed, and the shortest match taken from the hash table, by default (see lz_ext3.rs for the
/// measurements behind 6 there; with entropy-coded offsets shorter matches can pay, so 4 and 5 are offered).
pub const HASH_BYTES: u32 = 6;
/// Largest offset the parser emits: LZ_EXT3E stores offsets + 3 in 24 bits (1 ..= 3 are repeat codes).
pub const MAX_PARSE_OFFSET: usize = MAX_OFFSET - 3;
const MIN_INPUT: usize = LAST_LITERALS + 8;
const SKIP_STRENGTH: u32 = 6;

/// One match and the literals before it: `src[lit_start .. lit_start + lit_len]` are literals, then
/// `mlen` bytes are copied from `offset` back. The trailing literals of a frame are not a `Seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seq {
    pub lit_start: u32,
    pub lit_len: u32,
    pub offset: u32,
    pub mlen: u32,
}

/// A match finder that keeps its hash table between calls.
#[derive(Clone, Debug)]
pub struct Parser {
    hash_log: u32,
    candidates: usize,
    good_enough: usize,
    hash_bytes: u32,
    rep_check: bool,
    table: Vec<u32>,
}

impl Parser {
    /// A new finder for `p` (clamped as LZ_EXT3 clamps it). Allocates nothing until the first call.
    pub fn new(p: &EncodeParams) -> Self {
        Parser {
            hash_log: p.hash_log.clamp(10, 24),
            candidates: p.candidates.clamp(1, 16) as usize,
            good_enough: (p.good_enough as usize).max(MIN_MATCH),
            hash_bytes: HASH_BYTES,
            rep_check: true,
            table: Vec::new(),
        }
    }

    /// The same with `hash_bytes` (4 ..= 6) hashed: the shortest match taken from the table.
    pub fn with_hash_bytes(mut self, hash_bytes: u32) -> Self {
        self.hash_bytes = hash_bytes.clamp(4, 6);
        self
    }

    /// The same with the repeat-offset check on or off (on by default).
    pub fn with_rep_check(mut self, on: bool) -> Self {
        self.rep_check = on;
        self
    }

    /// Replaces `seqs` with the matches of `src`, in order.
    pub fn parse(&mut self, src: &[u8], seqs: &mut Vec<Seq>) {
        seqs.clear();
        if src.len() < MIN_INPUT {
            return;
        }
        let (table, log) =
            lz_match::fresh_table(&mut self.table, self.hash_log, self.candidates, src.len());
        let ge = self.good_enough;
        let rc = self.rep_check;
        macro_rules! dispatch {
            ($($k:literal)*) => {
                match (self.candidates, self.hash_bytes) {
                    $(
                        ($k, 4) => parse_block::<$k, 4>(src, seqs, table, log, ge, rc),
                        ($k, 5) => parse_block::<$k, 5>(src, seqs, table, log, ge, rc),
                        ($k, 6) => parse_block::<$k, 6>(src, seqs, table, log, ge, rc),
                    )*
                    _ => unreachable!("candidates clamped to 1..=16, hash bytes to 4..=6"),
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    }
}

/// As lz_ext3's `find_and_insert`, with `H` bytes hashed and offsets the repeat codes leave.
#[inline(always)]
fn find_and_insert<const K: usize, const H: u32>(
    src: &[u8],
    table: &mut [u32],
    log: u32,
    ip: usize,
    limit: usize,
    good_enough: usize,
) -> (usize, usize) {
    lz_match::find_and_insert::<K, H>(src, table, log, ip, limit, good_enough, MAX_PARSE_OFFSET)
}

/// Length of the match at `ip` with offset `rep` (0 if under 4 bytes or out of reach).
#[inline(always)]
fn rep_len(src: &[u8], ip: usize, rep: usize, limit: usize) -> usize {
    if rep == 0 || rep > ip || ip + 4 > limit || read_u32(src, ip) != read_u32(src, ip - rep) {
        return 0;
    }
    4 + common_len(src, ip - rep + 4, ip + 4, limit)
}

/// A repeat-offset match is taken over a table match unless the table's is this much longer: it codes
/// without an offset (LZ_EXT3E's repeat codes), about two bytes cheaper.
const REP_BONUS: usize = 2;

/// The hot loop (one long function, as lz_ext3's, so positions stay in registers).
///
/// Before each table lookup the offset of the previous match is tried at the same position (zstd's
/// repeat check): source code repeats a structure at a fixed distance, and such a match costs no offset.
fn parse_block<const K: usize, const H: u32>(
    src: &[u8],
    seqs: &mut Vec<Seq>,
    table: &mut [u32],
    log: u32,
    good_enough: usize,
    rep_check: bool,
) {
    let n = src.len();
    let limit = n - LAST_LITERALS;
    let search_end = limit - H as usize;
    let mut anchor = 0usize;
    let mut ip = 0usize;
    let mut rep = 0usize;
    'outer: loop {
        let mut attempts = 1u32 << SKIP_STRENGTH;
        let (mut mpos, mut mlen) = loop {
            if ip > search_end {
                break 'outer;
            }
            let (pos, len) = find_and_insert::<K, H>(src, table, log, ip, limit, good_enough);
            let rl = rep_len(src, ip, rep, limit);
            if rl != 0 && rl + REP_BONUS >= len {
                break (ip - rep, rl);
            }
            if len != 0 {
                break (pos, len);
            }
            ip += (attempts >> SKIP_STRENGTH) as usize;
            attempts += 1;
        };
        if mlen < good_enough && ip < search_end {
            let (pos, len) = find_and_insert::<K, H>(src, table, log, ip + 1, limit, good_enough);
            let bonus = if ip - mpos == rep { REP_BONUS } else { 0 };
            if len > mlen + bonus {
                ip += 1;
                mpos = pos;
                mlen = len;
            }
        }
        let back = lz_match::back_len(src, anchor, ip, mpos);
        (ip, mpos, mlen) = (ip - back, mpos - back, mlen + back);
        seqs.push(Seq {
            lit_start: anchor as u32,
            lit_len: (ip - anchor) as u32,
            offset: (ip - mpos) as u32,
            mlen: mlen as u32,
        });
        if rep_check {
            rep = ip - mpos;
        }
        ip += mlen;
        anchor = ip;
        if ip - 2 <= search_end {
            let p = ip - 2;
            lz_match::enter::<K, H>(src, table, log, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parse covers the input: literals and matches in order, every match a real repeat.
    #[test]
    fn parse_is_a_valid_cover() {
        let mut x = 7u32;
        let mut data = Vec::new();
        for i in 0..50_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if x % 5 == 0 && data.len() > 100 {
                let back = (x as usize / 7) % data.len().min(5000) + 1;
                let s = data.len() - back;
                for k in 0..(x % 40) as usize {
                    data.push(data[s + k]);
                }
            } else {
                data.push((i % 37) as u8 ^ (x >> 29) as u8);
            }
        }
        for (c, h) in [(1, 6), (2, 6), (4, 6), (2, 5), (2, 4)] {
            let mut p = Parser::new(&EncodeParams {
                candidates: c,
                ..Default::default()
            })
            .with_hash_bytes(h);
            let mut seqs = Vec::new();
            p.parse(&data, &mut seqs);
            assert!(seqs.len() > 1000);
            let mut pos = 0usize;
            for s in &seqs {
                assert_eq!(s.lit_start as usize, pos);
                pos += s.lit_len as usize;
                let (o, m) = (s.offset as usize, s.mlen as usize);
                assert!(o >= 1 && o <= pos && m >= MIN_MATCH);
                for k in 0..m {
                    assert_eq!(data[pos + k], data[pos + k - o]);
                }
                pos += m;
            }
            assert!(pos <= data.len() - LAST_LITERALS);
        }
    }
}
