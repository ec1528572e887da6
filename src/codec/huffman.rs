//! Canonical, length-limited Huffman coding of byte streams: the entropy stage of LZ_EXT3E
//! (docs/FORMAT.md section 2.2).
//!
//! ```text
//! table        u8 last = the highest symbol with a code; then last / 2 + 1 bytes of 4-bit code lengths,
//!              symbol 2k in the low nibble and 2k + 1 in the high nibble of byte k; 0 = no code,
//!              1 ..= MAX_BITS otherwise. The code must be complete: sum of 2^(MAX_BITS - len) = 2^MAX_BITS.
//! codes        canonical: ordered by (length, symbol), consecutive integers, as in DEFLATE (RFC 1951 3.2.2)
//! bitstream    codes written least significant bit first, each code's bits reversed (its first bit lowest,
//!              as DEFLATE packs Huffman codes), the last byte padded with zero bits. A stream of n symbols
//!              must be exactly ceil(bits / 8) bytes long.
//! 4 streams    a run of n >= FOUR_STREAMS_MIN symbols is cut into 4 segments of q = ceil(n / 4) symbols
//!              (the last n - 3q), each its own bitstream, so that a decoder runs 4 at once (CPU ILP, or 4
//!              GPU lanes).
//! ```
//!
//! Why hand-written: no kept crate exposes a stable Huffman API with a specified bitstream (ruzstd keeps its
//! huff0 module behind `fuzz_exports` and needs Rust 1.87; the others are bit-vector based, ~20 x slower). The
//! format here is DEFLATE's canonical code with zstd's 4-stream split: small enough to specify byte by byte
//! and to port to an OpenCL kernel (a 2^11-entry table lookup per symbol).
//!
//! Lengths are limited to [`MAX_BITS`] by halving the frequencies (keeping every symbol at least 1) and
//! rebuilding until the tree fits: a little above optimal for very skewed inputs, never invalid.
//!
//! The decoder never panics: every table index is filled (the code is complete), reads past a stream's
//! bytes see zero bytes or the next stream's bytes, and a stream that used more bits than it holds, or
//! holds bytes it did not use, is an error.

#![forbid(unsafe_code)]

use crate::error::{Error, Result};

/// Longest code, in bits. 11 as in zstd: a 2048-entry decode table (4 KiB) stays in L1.
pub const MAX_BITS: u32 = 11;
const TABLE_LEN: usize = 1 << MAX_BITS;
const MASK: u64 = TABLE_LEN as u64 - 1;
/// Runs of at least this many symbols are coded as 4 interleaved streams.
pub const FOUR_STREAMS_MIN: usize = 256;

fn err(msg: &str) -> Error {
    Error::Decode(format!("huffman: {msg}"))
}

/// A symbol histogram.
pub fn histogram(data: &[u8]) -> [u32; 256] {
    // Four interleaved counters, so that runs of one byte do not serialize on one counter.
    let mut h = [[0u32; 256]; 4];
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        h[0][c[0] as usize] += 1;
        h[1][c[1] as usize] += 1;
        h[2][c[2] as usize] += 1;
        h[3][c[3] as usize] += 1;
    }
    for &b in chunks.remainder() {
        h[0][b as usize] += 1;
    }
    let mut out = [0u32; 256];
    for (i, o) in out.iter_mut().enumerate() {
        *o = h[0][i] + h[1][i] + h[2][i] + h[3][i];
    }
    out
}

/// Code lengths of a Huffman code for `freq`, each at most [`MAX_BITS`]; `None` when fewer than two
/// symbols occur (such a run is stored raw or as a repeated byte).
pub fn build_lengths(freq: &[u32; 256]) -> Option<[u8; 256]> {
    // Sorted as one u64 per symbol (weight << 8 | symbol): cheaper to sort than pairs.
    let mut f = [0u64; 256];
    let mut n = 0;
    for (s, &c) in freq.iter().enumerate() {
        if c > 0 {
            f[n] = (c as u64) << 8 | s as u64;
            n += 1;
        }
    }
    let f = &mut f[..n];
    if n < 2 {
        return None;
    }
    loop {
        f.sort_unstable();
        let depths = tree_depths(f);
        if depths[..n].iter().all(|&d| d <= MAX_BITS as u8) {
            let mut lens = [0u8; 256];
            for (&e, &d) in f.iter().zip(&depths[..n]) {
                lens[(e & 255) as usize] = d;
            }
            return Some(lens);
        }
        for e in f.iter_mut() {
            let w = (*e >> 8).div_ceil(2);
            *e = w << 8 | (*e & 255);
        }
    }
}

/// Depths of the leaves of a Huffman tree over `f` (`weight << 8 | symbol`, sorted, at least two), by the
/// two-queue method: leaves in order, internal nodes in the order they are made. Entry i of the result is
/// the depth of leaf i.
fn tree_depths(f: &[u64]) -> [u8; 512] {
    let n = f.len();
    let mut weight = [0u64; 512];
    for (w, &e) in weight.iter_mut().zip(f) {
        *w = e >> 8;
    }
    let mut parent = [0u16; 512];
    let (mut leaf, mut inner) = (0usize, n);
    for k in n..2 * n - 1 {
        let mut pick = || {
            if leaf < n && (inner >= k || weight[leaf] <= weight[inner]) {
                leaf += 1;
                leaf - 1
            } else {
                inner += 1;
                inner - 1
            }
        };
        let (a, b) = (pick(), pick());
        weight[k] = weight[a] + weight[b];
        parent[a] = k as u16;
        parent[b] = k as u16;
    }
    let mut depth = [0u8; 512];
    for k in (0..2 * n - 2).rev() {
        depth[k] = depth[parent[k] as usize].saturating_add(1);
    }
    depth
}

/// Checks that `lens` is a complete code of lengths 1 ..= MAX_BITS.
fn check_complete(lens: &[u8; 256]) -> Result<()> {
    let mut kraft = 0u32;
    for &l in lens.iter() {
        if l as u32 > MAX_BITS {
            return Err(err("code length over 11"));
        }
        if l > 0 {
            kraft += 1 << (MAX_BITS - l as u32);
        }
    }
    if kraft != TABLE_LEN as u32 {
        return Err(err("code lengths do not form a complete code"));
    }
    Ok(())
}

/// Canonical codes for `lens`, bit-reversed for LSB-first writing.
fn canonical_codes(lens: &[u8; 256]) -> [u16; 256] {
    let mut count = [0u16; MAX_BITS as usize + 1];
    for &l in lens.iter() {
        count[l as usize] += 1;
    }
    count[0] = 0;
    let mut next = [0u16; MAX_BITS as usize + 2];
    let mut code = 0u16;
    for len in 1..=MAX_BITS as usize {
        code = (code + count[len - 1]) << 1;
        next[len] = code;
    }
    let mut codes = [0u16; 256];
    for s in 0..256 {
        let l = lens[s] as u32;
        if l > 0 {
            let c = next[l as usize];
            next[l as usize] += 1;
            codes[s] = c.reverse_bits() >> (16 - l);
        }
    }
    codes
}

/// Bits needed to code a run with histogram `freq` with code lengths `lens`, or `None` if a symbol that
/// occurs has no code.
pub fn cost_bits(lens: &[u8; 256], freq: &[u32; 256]) -> Option<u64> {
    let mut bits = 0u64;
    let mut missing = false;
    for (&l, &f) in lens.iter().zip(freq.iter()) {
        bits += f as u64 * l as u64;
        missing |= f > 0 && l == 0;
    }
    (!missing).then_some(bits)
}

/// Size in bytes of the table description of `lens`.
pub fn table_len(lens: &[u8; 256]) -> usize {
    let last = lens.iter().rposition(|&l| l > 0).unwrap_or(0);
    1 + last / 2 + 1
}

/// An encoding table: code lengths (0 = none) and bit-reversed codes.
#[derive(Clone, Debug)]
pub struct EncTable {
    pub lens: [u8; 256],
    codes: [u16; 256],
}

impl EncTable {
    /// The table for `lens`, which must come from [`build_lengths`] (a complete code).
    pub fn new(lens: [u8; 256]) -> Self {
        EncTable {
            codes: canonical_codes(&lens),
            lens,
        }
    }

    /// Bits needed to code a run with histogram `freq`, or `None` if a symbol has no code.
    pub fn cost_bits(&self, freq: &[u32; 256]) -> Option<u64> {
        cost_bits(&self.lens, freq)
    }

    /// Appends the table description (see the module docs).
    pub fn write(&self, out: &mut Vec<u8>) {
        let last = self.lens.iter().rposition(|&l| l > 0).unwrap_or(0);
        out.push(last as u8);
        for k in 0..=last / 2 {
            let hi = self.lens.get(2 * k + 1).copied().unwrap_or(0);
            out.push(self.lens[2 * k] | hi << 4);
        }
    }

    /// Size of the table description in bytes.
    pub fn written_len(&self) -> usize {
        table_len(&self.lens)
    }

    /// Appends one bitstream coding `syms` (every symbol must have a code).
    pub fn encode(&self, syms: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        // Every code is at most 11 bits: 4 codes plus 7 pending bits fit in 64.
        out.resize(start + syms.len() * MAX_BITS as usize / 8 + 16, 0);
        let mut pos = start;
        let mut bits = 0u64;
        let mut count = 0u32;
        let put = |s: u8, bits: &mut u64, count: &mut u32| {
            *bits |= (self.codes[s as usize] as u64) << *count;
            *count += self.lens[s as usize] as u32;
        };
        let mut chunks = syms.chunks_exact(4);
        for c in &mut chunks {
            for &s in c {
                put(s, &mut bits, &mut count);
            }
            out[pos..pos + 8].copy_from_slice(&bits.to_le_bytes());
            pos += (count >> 3) as usize;
            bits = if count >= 64 { 0 } else { bits >> (count & !7) };
            count &= 7;
        }
        for &s in chunks.remainder() {
            put(s, &mut bits, &mut count);
        }
        out[pos..pos + 8].copy_from_slice(&bits.to_le_bytes());
        pos += count.div_ceil(8) as usize;
        out.truncate(pos);
    }

    /// Appends `syms` as 1 stream (fewer than [`FOUR_STREAMS_MIN`] symbols) or 4, returning the byte
    /// length of each stream written (1 or 4 entries) for the caller to record.
    pub fn encode_streams(&self, syms: &[u8], out: &mut Vec<u8>) -> Vec<usize> {
        let mut sizes = Vec::with_capacity(4);
        for seg in segments(syms.len()) {
            let before = out.len();
            self.encode(&syms[seg], out);
            sizes.push(out.len() - before);
        }
        sizes
    }
}

/// The symbol ranges of the streams of a run of `n` symbols: one, or four of q = ceil(n / 4).
pub fn segments(n: usize) -> Vec<std::ops::Range<usize>> {
    if n < FOUR_STREAMS_MIN {
        return std::iter::once(0..n).collect();
    }
    let q = n.div_ceil(4);
    vec![0..q, q..2 * q, 2 * q..3 * q, 3 * q..n]
}

/// How many streams [`segments`] cuts a run of `n` symbols into (1 or 4), without its allocation.
pub fn stream_count(n: usize) -> usize {
    if n < FOUR_STREAMS_MIN {
        1
    } else {
        4
    }
}

/// A decoding table: 2^MAX_BITS entries of `symbol | length << 8`, indexed by the next MAX_BITS bits (a code
/// shorter than MAX_BITS fills every entry whose low bits are its bit-reversed code).
#[derive(Clone)]
pub struct DecTable {
    entries: Box<[u16; TABLE_LEN]>,
}

impl std::fmt::Debug for DecTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecTable")
    }
}

impl Default for DecTable {
    fn default() -> Self {
        DecTable {
            entries: Box::new([0u16; TABLE_LEN]),
        }
    }
}

impl DecTable {
    /// Builds the table for code lengths `lens`, which must form a complete code.
    pub fn new(lens: &[u8; 256]) -> Result<Self> {
        let mut t = DecTable::default();
        t.set(lens)?;
        Ok(t)
    }

    /// Rebuilds this table (keeping its memory) for `lens`, which must form a complete code.
    ///
    /// By doubling, as libdeflate builds its tables: the entries of the codes of length l are written into
    /// a table of 2^l entries (one each, at the code's bit-reversed value), then the table is copied onto
    /// its own end to make the 2^(l + 1) table, in which every shorter code holds its entries already. So
    /// the table costs 2^MAX_BITS entries of block copies plus one store per symbol, rather than one
    /// scattered store per entry (a table is rebuilt for every sub-block that carries its own).
    pub fn set(&mut self, lens: &[u8; 256]) -> Result<()> {
        check_complete(lens)?;
        // Symbols in canonical order: by length, then symbol.
        let mut count = [0u16; MAX_BITS as usize + 1];
        for &l in lens.iter() {
            count[l as usize] += 1;
        }
        let mut first = [0u16; MAX_BITS as usize + 2];
        for l in 1..=MAX_BITS as usize {
            first[l + 1] = first[l] + count[l];
        }
        let mut order = [0u8; 256];
        let mut at = first;
        for (s, &l) in lens.iter().enumerate() {
            if l > 0 {
                order[at[l as usize] as usize] = s as u8;
                at[l as usize] += 1;
            }
        }
        let t = &mut self.entries[..];
        let mut code = 0u32; // canonical code of the next symbol, MSB first
        let mut size = 1usize; // entries built so far
        for l in 1..=MAX_BITS as usize {
            // Double: every code of length < l now fills the 2^l table.
            t.copy_within(0..size, size);
            size *= 2;
            code <<= 1;
            for &s in &order[first[l] as usize..first[l + 1] as usize] {
                let rev = (code.reverse_bits() >> (32 - l)) as usize;
                t[rev] = s as u16 | (l as u16) << 8;
                code += 1;
            }
        }
        Ok(())
    }

    /// Reads a table description at `src[*pos..]`, advancing `*pos`, and returns its code lengths
    /// (checked by [`DecTable::set`], not here).
    pub fn read_lens(src: &[u8], pos: &mut usize) -> Result<[u8; 256]> {
        let last = *src.get(*pos).ok_or_else(|| err("truncated table"))? as usize;
        let body = src
            .get(*pos + 1..*pos + 2 + last / 2)
            .ok_or_else(|| err("truncated table"))?;
        let mut lens = [0u8; 256];
        for (k, &b) in body.iter().enumerate() {
            lens[2 * k] = b & 15;
            if 2 * k < last {
                lens[2 * k + 1] = b >> 4;
            } else if b >> 4 != 0 {
                return Err(err("table has a length past its last symbol"));
            }
        }
        *pos += 2 + last / 2;
        Ok(lens)
    }

    /// Reads a table description at `src[*pos..]`, advancing `*pos`.
    pub fn read(src: &[u8], pos: &mut usize) -> Result<(Self, [u8; 256])> {
        let lens = Self::read_lens(src, pos)?;
        Ok((DecTable::new(&lens)?, lens))
    }

    /// Decodes `out.len()` symbols from the bitstream `src[start..end]`, which must be exactly as long as
    /// they need. Bytes of `src` past `end` may be read (and ignored) to keep the loop branch-free.
    pub fn decode(&self, src: &[u8], start: usize, end: usize, out: &mut [u8]) -> Result<()> {
        let mut r = BitReader::new(src, start, end)?;
        let t = &self.entries;
        let mut chunks = out.chunks_exact_mut(5);
        for c in &mut chunks {
            r.refill();
            for o in c.iter_mut() {
                *o = r.symbol(t);
            }
        }
        for o in chunks.into_remainder() {
            r.refill();
            *o = r.symbol(t);
        }
        r.finish()
    }

    /// Decodes a run written by [`EncTable::encode_streams`]: `ends` are the end offsets in `src` of its
    /// 1 or 4 streams (the first starting at `start`), as [`segments`] cuts `out`.
    pub fn decode_streams(
        &self,
        src: &[u8],
        start: usize,
        ends: &[usize],
        out: &mut [u8],
    ) -> Result<()> {
        if stream_count(out.len()) != ends.len() {
            return Err(err("wrong number of streams"));
        }
        if ends.len() == 1 {
            return self.decode(src, start, ends[0], out);
        }
        // Four streams at once (as `segments` cuts them): independent dependency chains for the CPU to
        // overlap.
        let q = out.len().div_ceil(4);
        let (o0, rest) = out.split_at_mut(q);
        let (o1, rest) = rest.split_at_mut(q);
        let (o2, o3) = rest.split_at_mut(q);
        for (&s, &e) in [start, ends[0], ends[1], ends[2]].iter().zip(ends) {
            if s > e || e > src.len() {
                return Err(err("stream past its input"));
            }
        }
        let t = &self.entries;
        // The hot loop keeps one number per stream, the bits it has used (from `src[0]`): every 5 symbols
        // each stream reads the 8 bytes at its position, keeps the 56 bits from its next bit and sets bit 56
        // above them as a marker, then decodes 5 codes (at most 55 bits, so at least 12 real bits lie below
        // the marker at each look-up) by table look-up and shift alone; where the marker has moved to says
        // how many bits the 5 codes used. Few live values, so the four streams stay in registers.
        let mut c = [start * 8, ends[0] * 8, ends[1] * 8, ends[2] * 8].map(|v| v as u64);
        let last = (src.len().saturating_sub(8) * 8) as u64;
        let common = o3.len() / 5 * 5;
        let mut done = 0;
        let chunks = o0[..common]
            .chunks_exact_mut(5)
            .zip(o1[..common].chunks_exact_mut(5))
            .zip(
                o2[..common]
                    .chunks_exact_mut(5)
                    .zip(o3[..common].chunks_exact_mut(5)),
            );
        const MARK: u64 = 1 << 56;
        for ((d0, d1), (d2, d3)) in chunks {
            if c.iter().any(|&v| v > last) || src.len() < 8 {
                break;
            }
            let word = |v: u64| {
                let i = (v >> 3) as usize;
                let w = u64::from_le_bytes(src[i..i + 8].try_into().unwrap()) >> (v & 7);
                w & (MARK - 1) | MARK
            };
            let (mut w0, mut w1, mut w2, mut w3) = (word(c[0]), word(c[1]), word(c[2]), word(c[3]));
            for j in 0..5 {
                let e0 = t[(w0 & MASK) as usize];
                let e1 = t[(w1 & MASK) as usize];
                let e2 = t[(w2 & MASK) as usize];
                let e3 = t[(w3 & MASK) as usize];
                d0[j] = e0 as u8;
                d1[j] = e1 as u8;
                d2[j] = e2 as u8;
                d3[j] = e3 as u8;
                w0 >>= e0 >> 8;
                w1 >>= e1 >> 8;
                w2 >>= e2 >> 8;
                w3 >>= e3 >> 8;
            }
            // The marker sat at bit 56 and is now at bit 63 - leading_zeros: the bits used are the difference.
            let used = |w: u64| (w.leading_zeros() - 7) as u64;
            c[0] += used(w0);
            c[1] += used(w1);
            c[2] += used(w2);
            c[3] += used(w3);
            done += 5;
        }
        // The rest of each stream (and the whole of it when the fast loop could not start) one by one.
        let starts = [start, ends[0], ends[1], ends[2]];
        for (k, o) in [o0, o1, o2, o3].into_iter().enumerate() {
            let mut r = BitReader::at(src, starts[k], ends[k], c[k]);
            for x in o[done..].iter_mut() {
                r.refill();
                *x = r.symbol(t);
            }
            r.finish()?;
        }
        Ok(())
    }
}

/// LSB-first bit reader over `src[start..end]` that may look past `end` (and past `src`, where it sees
/// zeros); [`BitReader::finish`] checks that exactly the stream's bytes were used.
struct BitReader<'a> {
    src: &'a [u8],
    start: usize,
    end: usize,
    /// Next byte to load.
    pos: usize,
    bits: u64,
    /// Valid bits in `bits`.
    count: u32,
}

impl<'a> BitReader<'a> {
    fn new(src: &'a [u8], start: usize, end: usize) -> Result<Self> {
        if start > end || end > src.len() {
            return Err(err("stream past its input"));
        }
        Ok(BitReader {
            src,
            start,
            end,
            pos: start,
            bits: 0,
            count: 0,
        })
    }

    /// A reader of the stream `src[start..end]` that has used its bits up to bit `used` of `src` (counted
    /// from `src[0]`, at least `start * 8`): the next bit is bit `used % 8` of byte `used / 8`.
    fn at(src: &'a [u8], start: usize, end: usize, used: u64) -> Self {
        let mut r = BitReader {
            src,
            start,
            end,
            pos: (used / 8) as usize,
            bits: 0,
            count: 0,
        };
        r.refill();
        let skip = (used % 8) as u32;
        r.bits >>= skip;
        r.count -= skip;
        r
    }

    /// Tops the buffer up to at least 56 bits, so 5 codes of up to 11 bits can be read.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(w) = self.src.get(self.pos..self.pos + 8) {
            let w = u64::from_le_bytes(w.try_into().unwrap());
            self.bits |= w << self.count;
            self.pos += ((63 - self.count) >> 3) as usize;
            self.count |= 56;
        } else {
            while self.count <= 56 {
                let b = self.src.get(self.pos).copied().unwrap_or(0);
                self.bits |= (b as u64) << self.count;
                self.pos += 1;
                self.count += 8;
            }
        }
    }

    #[inline(always)]
    fn symbol(&mut self, t: &[u16; TABLE_LEN]) -> u8 {
        let e = t[(self.bits & MASK) as usize];
        let l = (e >> 8) as u32;
        self.bits >>= l;
        self.count -= l;
        e as u8
    }

    /// Checks that the symbols used exactly the stream's bytes (the last one partly).
    fn finish(&self) -> Result<()> {
        let used = (self.pos - self.start) as u64 * 8 - self.count as u64;
        if used.div_ceil(8) != (self.end - self.start) as u64 {
            return Err(err("stream length does not match its symbols"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(data: &[u8]) {
        let lens = build_lengths(&histogram(data)).unwrap();
        let enc = EncTable::new(lens);
        let mut buf = Vec::new();
        enc.write(&mut buf);
        assert_eq!(buf.len(), enc.written_len());
        let sizes = enc.encode_streams(data, &mut buf);
        let mut pos = 0;
        let (dec, back) = DecTable::read(&buf, &mut pos).unwrap();
        assert_eq!(back, lens);
        let mut ends = Vec::new();
        let mut e = pos;
        for s in &sizes {
            e += s;
            ends.push(e);
        }
        assert_eq!(e, buf.len());
        let mut out = vec![0u8; data.len()];
        dec.decode_streams(&buf, pos, &ends, &mut out).unwrap();
        assert_eq!(out, data);
        // One stream byte too many or too few is refused.
        let last = ends.len() - 1;
        ends[last] -= 1;
        assert!(dec.decode_streams(&buf, pos, &ends, &mut out).is_err());
    }

    #[test]
    fn roundtrips() {
        roundtrip(b"ab");
        roundtrip(b"abracadabra, abracadabra");
        let mut x = 1u32;
        for n in [255, 256, 257, 1000, 4099, 65536] {
            let v: Vec<u8> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 7 + x % 3 * 40) as u8
                })
                .collect();
            roundtrip(&v);
        }
        let all: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        roundtrip(&all);
    }

    /// The table built by doubling holds, at every index, the code whose bit-reversed value are the
    /// index's low bits (filled here one scattered entry at a time, as the definition says).
    #[test]
    fn doubling_builds_the_defined_table() {
        let mut x = 7u32;
        let mut t = DecTable::default();
        for round in 0..40 {
            let mut freq = [0u32; 256];
            let symbols = 2 + round * 6;
            for f in freq.iter_mut().take(symbols) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *f = 1 + (x >> (x % 24));
            }
            let lens = build_lengths(&freq).unwrap();
            t.set(&lens).unwrap();
            let codes = canonical_codes(&lens);
            let mut want = [0u16; TABLE_LEN];
            for s in 0..256 {
                let l = lens[s] as usize;
                if l > 0 {
                    for i in (codes[s] as usize..TABLE_LEN).step_by(1 << l) {
                        want[i] = s as u16 | (l as u16) << 8;
                    }
                }
            }
            assert!(t.entries[..] == want[..], "round {round}");
        }
    }

    #[test]
    fn lengths_are_limited() {
        // Fibonacci frequencies give a depth-40 tree unlimited.
        let mut freq = [0u32; 256];
        let (mut a, mut b) = (1u32, 1u32);
        for f in freq.iter_mut().take(40) {
            *f = a;
            (a, b) = (b, a.saturating_add(b));
        }
        let lens = build_lengths(&freq).unwrap();
        assert!(lens.iter().all(|&l| l as u32 <= MAX_BITS));
        assert!(check_complete(&lens).is_ok());
        assert_eq!(lens.iter().filter(|&&l| l > 0).count(), 40);
    }

    #[test]
    fn single_symbol_has_no_code() {
        assert!(build_lengths(&histogram(b"aaaa")).is_none());
        assert!(build_lengths(&histogram(b"")).is_none());
    }

    #[test]
    fn rejects_bad_tables() {
        // Incomplete: two symbols of length 2.
        assert!(DecTable::read(&[1, 0x22], &mut 0).is_err());
        // Oversubscribed: three of length 1.
        assert!(DecTable::read(&[2, 0x11, 0x01], &mut 0).is_err());
        // Length 12.
        assert!(DecTable::read(&[1, 0x1c], &mut 0).is_err());
        // Truncated.
        assert!(DecTable::read(&[200, 0x11], &mut 0).is_err());
        assert!(DecTable::read(&[1, 0x11], &mut 0).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        let dec = DecTable::new(&build_lengths(&histogram(b"hello world")).unwrap()).unwrap();
        let src = [0xffu8; 7];
        let mut out = [0u8; 100];
        assert!(dec.decode(&src, 0, 7, &mut out).is_err());
        assert!(dec.decode(&src, 3, 2, &mut out).is_err());
        assert!(dec.decode(&src, 0, 9, &mut out).is_err());
    }
}
