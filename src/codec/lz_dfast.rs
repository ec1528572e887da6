//! A second match finder for LZ_EXT3E, after zstd's "double fast" strategy (its levels 3–4): two
//! direct-mapped hash tables, one of 8-byte and one of `short`-byte prefixes, one position per slot; the
//! repeat offset is tried first at `ip + 1`; a short match is traded for a long match found one byte later;
//! misses skip ahead by `(ip - anchor) / 256 + 1`. No buckets to shift and no tags: one load per table
//! per position, which is what makes it faster than the bucket finder of lz_parse.rs at a similar ratio.
//!
//! Same contract as [`super::lz_parse::Parser::parse`]: matches of at least 4 bytes (repeat) or `short`
//! bytes (table), offsets 1 ..= MAX_PARSE_OFFSET, nothing starts or ends in the last LAST_LITERALS bytes,
//! output a pure function of the input and params.

#![forbid(unsafe_code)]

use super::lz_match::{common_len, read_u32, read_u64};
use super::lz_parse::{Seq, LAST_LITERALS, MAX_PARSE_OFFSET};

/// Inputs shorter than this are all literals.
const MIN_INPUT: usize = LAST_LITERALS + 16;
/// Misses skip ahead by one more byte every 2^SEARCH_STRENGTH bytes since the last match (zstd's 8).
const SEARCH_STRENGTH: u32 = 8;

#[inline(always)]
fn hash_long(v: u64, log: u32) -> usize {
    (v.wrapping_mul(0xCF1B_BCDC_B7A5_6463) >> (64 - log)) as usize
}

#[inline(always)]
fn hash_short<const S: u32>(v: u64, log: u32) -> usize {
    ((v << (64 - 8 * S)).wrapping_mul(0x9E37_79B1_85EB_CA87) >> (64 - log)) as usize
}

/// The double-fast finder's tables, kept between frames.
#[derive(Clone, Debug, Default)]
pub struct Dfast {
    long: Vec<u32>,
    short: Vec<u32>,
}

impl Dfast {
    /// Replaces `seqs` with the matches of `src`: `long_log` / `short_log` are the table sizes (capped by
    /// the input's size), `short` the short prefix length (5 or 6).
    pub fn parse(
        &mut self,
        src: &[u8],
        seqs: &mut Vec<Seq>,
        long_log: u32,
        short_log: u32,
        short: u32,
    ) {
        seqs.clear();
        if src.len() < MIN_INPUT {
            return;
        }
        let need = usize::BITS - (src.len() - 1).leading_zeros();
        let ll = long_log.clamp(10, 24).min(need.max(10));
        let sl = short_log.clamp(10, 24).min(need.max(10));
        for (t, l) in [(&mut self.long, ll), (&mut self.short, sl)] {
            crate::codec::room(t, 1 << l);
            t.resize(1 << l, 0);
        }
        if short <= 5 {
            parse_block::<5>(src, seqs, &mut self.long, &mut self.short, ll, sl);
        } else {
            parse_block::<6>(src, seqs, &mut self.long, &mut self.short, ll, sl);
        }
    }
}

/// The hot loop, one long function so positions stay in registers (as zstd's `ZSTD_compressBlock_doubleFast`).
fn parse_block<const S: u32>(
    src: &[u8],
    seqs: &mut Vec<Seq>,
    long: &mut [u32],
    short: &mut [u32],
    ll: u32,
    sl: u32,
) {
    let n = src.len();
    let limit = n - LAST_LITERALS;
    // Positions whose 8 bytes can be read and whose match can still be at least 4 bytes long.
    let search_end = limit - 8;
    let mut anchor = 0usize;
    let mut ip = 1usize;
    let mut rep = 0usize;
    let valid = |cand: usize, ip: usize| cand < ip && ip - cand <= MAX_PARSE_OFFSET;
    while ip <= search_end {
        let v = read_u64(src, ip);
        let hl = hash_long(v, ll);
        let hs = hash_short::<S>(v, sl);
        let cl = long[hl] as usize;
        let cs = short[hs] as usize;
        long[hl] = ip as u32;
        short[hs] = ip as u32;

        let (mut start, mut mpos, mut mlen);
        if rep != 0 && ip + 1 > rep && read_u32(src, ip + 1) == read_u32(src, ip + 1 - rep) {
            start = ip + 1;
            mpos = start - rep;
            mlen = 4 + common_len(src, mpos + 4, start + 4, limit);
        } else if valid(cl, ip) && read_u64(src, cl) == v {
            start = ip;
            mpos = cl;
            mlen = 8 + common_len(src, cl + 8, ip + 8, limit);
        } else if valid(cs, ip) && (read_u64(src, cs) ^ v) << (64 - 8 * S) == 0 {
            // A short match: a long one at ip + 1 wins if there is one.
            let v1 = read_u64(src, ip + 1);
            let hl1 = hash_long(v1, ll);
            let cl1 = long[hl1] as usize;
            long[hl1] = (ip + 1) as u32;
            if valid(cl1, ip + 1) && read_u64(src, cl1) == v1 {
                start = ip + 1;
                mpos = cl1;
                mlen = 8 + common_len(src, cl1 + 8, start + 8, limit);
            } else {
                start = ip;
                mpos = cs;
                mlen = S as usize + common_len(src, cs + S as usize, ip + S as usize, limit);
            }
        } else {
            ip += ((ip - anchor) >> SEARCH_STRENGTH) + 1;
            continue;
        }
        // Extend backwards into the pending literals.
        while start > anchor && mpos > 0 && src[start - 1] == src[mpos - 1] {
            start -= 1;
            mpos -= 1;
            mlen += 1;
        }
        seqs.push(Seq {
            lit_start: anchor as u32,
            lit_len: (start - anchor) as u32,
            offset: (start - mpos) as u32,
            mlen: mlen as u32,
        });
        rep = start - mpos;
        ip = start + mlen;
        anchor = ip;
        // Fill the tables at positions inside the match, as zstd does (start + 2 and the end - 2).
        if ip <= search_end {
            for p in [start + 2, ip - 2] {
                let v = read_u64(src, p);
                long[hash_long(v, ll)] = p as u32;
                short[hash_short::<S>(v, sl)] = p as u32;
            }
            short[hash_short::<S>(read_u64(src, ip - 1), sl)] = (ip - 1) as u32;
        }
    }
}
