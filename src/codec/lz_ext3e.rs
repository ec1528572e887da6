//! LZ_EXT3E: LZ_EXT3's sequences (16 MiB window, 3-byte offsets, LZ4 tokens) cut into sub-blocks of S bytes
//! of output, each sub-block's fields stored as six byte streams that are Huffman-coded (src/codec/huffman.rs)
//! when that is smaller. See docs/FORMAT.md section 2.4.
//!
//! ```text
//! frame        u8 table_mask: bit i set = a frame table for stream i follows (bits 6, 7 are 0)
//!              tables, one per set bit in stream order (huffman.rs's table description)
//!              FORMAT.md 2.2's sub-block table, read by `lz_ext3_sb::Layout`: u8 sb_log (12 ..= 24,
//!              S = 2^sb_log), 3 reserved bytes, u32 count = ceil(raw_len / S), u32 start[k] from the
//!              end of the table (start[0] = 0, strictly rising), u32 table_check
//!              sub-blocks   (an empty frame, raw_len 0, is zero bytes)
//! sub-block    varint n_tok, n_lit, n_ext, n_off (LEB128 u32)
//!              then for each stream with n > 0, in order lit, tok, ext, off0, off1, off2:
//!                u8 mode: 0 raw (n bytes) | 1 one byte repeated n times (1 byte) |
//!                         2 Huffman with the frame table of this stream | 3 Huffman, its table follows
//!                [table if mode 3] [1 or 4 varint stream sizes, as huffman::segments cuts n] [the streams]
//! streams      lit   the literal bytes
//!              tok   one LZ4 token per sequence: high nibble literal count L, low nibble match length - 4
//!              ext   the 255-continued extensions of L == 15 then M == 15, in sequence order
//!              off0, off1, off2: the low, middle and high byte of each match's offset code (24 bits):
//!                    1 ..= 3 = the 1st, 2nd, 3rd repeat offset, c >= 4 = offset c - 3 (see below)
//! repeats      three offsets R, [1, 4, 8] at the start of every sub-block: code 1 uses R0; code 2 uses R1
//!              and swaps R0, R1; code 3 uses R2 and rotates it to the front; c >= 4 pushes c - 3 in
//!              front (R2 drops out). Code 0 is invalid.
//! sequences    tokens 0 .. n_off have a match; if n_tok == n_off + 1 the last token has literals only
//!              (its low nibble is 0). A sub-block's sequences produce exactly its S bytes (the last
//!              sub-block: the rest of raw_len); a match may reach back into earlier sub-blocks of the
//!              frame, never past the end of its own sub-block. Every stream is consumed exactly.
//! ```
//!
//! Sub-blocks are independent for the entropy stage (frame tables are read once, then any sub-block can
//! be decoded to its streams on its own: a GPU work-group or a CPU thread each), and depend on earlier
//! output only through match copies, as v2's LZ_EXT3 sub-blocks do.
//!
//! The decoder never panics on hostile bytes: counts are checked against the sub-block size before any
//! buffer is sized by them, every stream and copy is bounds-checked, and every stream must be used up.

#![forbid(unsafe_code)]

use super::huffman::{self, DecTable, EncTable};
use super::lz_dfast::Dfast;
use super::lz_ext3_sb::Layout;
use super::lz_parse::{Parser, Seq, MIN_MATCH};
use super::EncodeParams;
use crate::error::{Error, Result};

/// Default sub-block size: 64 KiB of output.
pub const SUBBLOCK_LOG: u32 = 16;
/// Streams of a sub-block, in stored order.
pub const STREAMS: usize = 6;
/// Names of the streams, for reports.
pub const STREAM_NAMES: [&str; STREAMS] = ["lit", "tok", "ext", "off0", "off1", "off2"];
const LIT: usize = 0;
const TOK: usize = 1;
const EXT: usize = 2;

const MODE_RAW: u8 = 0;
const MODE_RLE: u8 = 1;
const MODE_FRAME_TABLE: u8 = 2;
const MODE_OWN_TABLE: u8 = 3;

/// Entropy-stage choices (the levers measured by examples/codec_levers.rs; the defaults are the format's
/// writer defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// log2 of the sub-block size, 12 ..= 24.
    pub subblock_log: u32,
    /// Bit i set: stream i may be Huffman-coded.
    pub huffman: u8,
    /// Frame-wide tables may be written.
    pub frame_tables: bool,
    /// Sub-blocks may carry their own table where that is smaller.
    pub own_tables: bool,
    /// Repeat offsets: the match finder tries the previous offset first, and the writer codes the last
    /// three offsets as 1 ..= 3 (off: every offset is written as offset + 3).
    pub repeat: bool,
    /// Bytes the match finder hashes: the shortest match it takes from its table (4 ..= 6; the double-fast
    /// finder takes 5 or 6 for its short table).
    pub hash_bytes: u32,
    /// Match finder: zstd-style double fast (src/codec/lz_dfast.rs) instead of LZ_EXT3's buckets.
    pub dfast: bool,
    /// A stream is Huffman-coded only when that saves more than 1 / 2^min_gain_log of its raw size (0:
    /// any saving; 6 by default, zstd's rule for its literals): a stream that codes to nearly its raw size
    /// (the offsets' low bytes, the literals of binaries) costs the decoder a table look-up per byte for
    /// almost nothing.
    pub min_gain_log: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            subblock_log: SUBBLOCK_LOG,
            huffman: 0x3f,
            frame_tables: true,
            own_tables: true,
            repeat: true,
            hash_bytes: super::lz_parse::HASH_BYTES,
            dfast: false,
            min_gain_log: 6,
        }
    }
}

/// Where the stored bytes of a frame went, by stream (for the lever tables).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Breakdown {
    /// Raw bytes of each stream (before entropy coding).
    pub raw: [u64; STREAMS],
    /// Stored bytes of each stream (after), tables and stream sizes included.
    pub stored: [u64; STREAMS],
    /// Frame header, frame tables and the sub-block offset list.
    pub header: u64,
    /// Sub-block count headers.
    pub counts: u64,
    pub sequences: u64,
    pub subblocks: u64,
}

impl Breakdown {
    pub fn add(&mut self, o: &Breakdown) {
        for i in 0..STREAMS {
            self.raw[i] += o.raw[i];
            self.stored[i] += o.stored[i];
        }
        self.header += o.header;
        self.counts += o.counts;
        self.sequences += o.sequences;
        self.subblocks += o.subblocks;
    }

    pub fn total(&self) -> u64 {
        self.stored.iter().sum::<u64>() + self.header + self.counts
    }
}

/// The six streams of every sub-block of a frame, end to end, and where each sub-block's part ends.
#[derive(Default, Debug)]
struct Streams {
    s: [Vec<u8>; STREAMS],
    /// For each sub-block, the end index in each stream.
    ends: Vec<[u32; STREAMS]>,
}

/// Cuts a frame's sequences at sub-block boundaries into the six streams.
struct Emitter<'a> {
    src: &'a [u8],
    sb: usize,
    cur_end: usize,
    lit_from: usize,
    /// The last three offsets of this sub-block, newest first (None: repeat codes not written).
    reps: Option<[u32; 3]>,
    out: &'a mut Streams,
}

/// The repeat offsets at the start of every sub-block (as zstd's).
pub const INITIAL_REPS: [u32; 3] = [1, 4, 8];

/// The stored offset code for `offset` given the repeat offsets `reps`, which it updates: 1 ..= 3 for
/// `reps[0 ..= 2]` (moved to the front), `offset + 3` for any other (pushed to the front).
fn offset_code(reps: &mut [u32; 3], offset: u32) -> u32 {
    if offset == reps[0] {
        1
    } else if offset == reps[1] {
        reps.swap(0, 1);
        2
    } else if offset == reps[2] {
        *reps = [reps[2], reps[0], reps[1]];
        3
    } else {
        *reps = [offset, reps[0], reps[1]];
        offset + 3
    }
}

/// The offset a stored code stands for, updating the repeat offsets `r` as [`offset_code`] does
/// (0: invalid code). Three locals rather than an array, so they stay in registers in the hot loop, and
/// selects rather than branches: whether a match repeats an offset is data, which a branch predictor
/// guesses badly.
#[inline(always)]
fn code_offset(r: &mut (u32, u32, u32), code: u32) -> u32 {
    let (r0, r1, r2) = *r;
    // All-ones masks for the four cases (code 0 falls in with 1 and is refused below).
    let mask = |c: bool| 0u32.wrapping_sub(c as u32);
    let (new, two, three) = (mask(code > 3), mask(code == 2), mask(code == 3));
    let one = !(new | two | three);
    let o = (code.wrapping_sub(3) & new) | (r1 & two) | (r2 & three) | (r0 & one);
    // Code 1 keeps R; 2 swaps R0 and R1; 3 and new offsets push in front and move R0, R1 back.
    let n1 = (r1 & one) | (r0 & !one);
    let back = new | three;
    let n2 = (r1 & back) | (r2 & !back);
    *r = (o, n1, n2);
    o & mask(code != 0)
}

impl Emitter<'_> {
    fn ext(&mut self, mut n: usize) {
        while n >= 255 {
            self.out.s[EXT].push(255);
            n -= 255;
        }
        self.out.s[EXT].push(n as u8);
    }

    /// One token: the pending literals up to `lit_end`, then a match (`mlen` 0: none).
    fn token(&mut self, lit_end: usize, offset: usize, mlen: usize) {
        let l = lit_end - self.lit_from;
        let m = mlen.saturating_sub(MIN_MATCH);
        self.out.s[TOK].push(((l.min(15) as u8) << 4) | m.min(15) as u8);
        if l >= 15 {
            self.ext(l - 15);
        }
        let lits = &mut self.out.s[LIT];
        let at = lits.len();
        if l <= 16 && self.lit_from + 16 <= self.src.len() {
            // A fixed 16-byte copy (inlined) and a cut, instead of a memcpy call for a few bytes.
            let w: &[u8; 16] = self.src[self.lit_from..self.lit_from + 16]
                .try_into()
                .unwrap();
            lits.extend_from_slice(w);
            lits.truncate(at + l);
        } else {
            lits.extend_from_slice(&self.src[self.lit_from..lit_end]);
        }
        if mlen > 0 {
            if m >= 15 {
                self.ext(m - 15);
            }
            let code = match self.reps.as_mut() {
                Some(r) => offset_code(r, offset as u32),
                None => offset as u32 + 3,
            };
            let o = code.to_le_bytes();
            for (k, &b) in o[..3].iter().enumerate() {
                self.out.s[3 + k].push(b);
            }
        }
        self.lit_from = lit_end + mlen;
    }

    fn close(&mut self) {
        self.out
            .ends
            .push(std::array::from_fn(|i| self.out.s[i].len() as u32));
        self.cur_end = (self.cur_end + self.sb).min(self.src.len());
        if let Some(r) = self.reps.as_mut() {
            *r = INITIAL_REPS;
        }
    }

    /// Makes the literals pending up to `to`, closing every sub-block they complete (not the last).
    fn lits_to(&mut self, to: usize) {
        while to >= self.cur_end && self.cur_end < self.src.len() {
            self.token(self.cur_end, 0, 0);
            self.close();
        }
    }

    /// A match of `len` bytes at `m`, `offset` back; parts that cross a boundary are cut, and a part
    /// shorter than MIN_MATCH becomes literals.
    fn matched(&mut self, mut m: usize, offset: usize, mut len: usize) {
        self.lits_to(m);
        loop {
            let room = self.cur_end - m;
            if len <= room {
                self.token(m, offset, len);
                if self.lit_from == self.cur_end && self.cur_end < self.src.len() {
                    self.close();
                }
                return;
            }
            if room >= MIN_MATCH {
                self.token(m, offset, room);
            } else {
                self.token(self.cur_end, 0, 0);
            }
            self.close();
            m += room;
            len -= room;
            self.lit_from = m;
            if len < MIN_MATCH {
                return;
            }
        }
    }

    fn finish(&mut self) {
        let n = self.src.len();
        self.lits_to(n);
        if self.lit_from < n {
            self.token(n, 0, 0);
        }
        self.close();
    }
}

fn write_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(src: &[u8], pos: &mut usize) -> Result<u32> {
    let mut v = 0u64;
    for k in 0..5 {
        let b = *src.get(*pos).ok_or_else(|| err("truncated count"))?;
        *pos += 1;
        v |= ((b & 0x7f) as u64) << (7 * k);
        if b < 0x80 {
            return u32::try_from(v).map_err(|_| err("count over 32 bits"));
        }
    }
    Err(err("count over 5 bytes"))
}

fn err(msg: &str) -> Error {
    Error::Decode(format!("lz_ext3e: {msg}"))
}

/// Time spent in each encoder stage, for the lever tables (nanoseconds, summed over calls).
#[derive(Clone, Copy, Debug, Default)]
pub struct StageTimes {
    pub parse_ns: u64,
    pub split_ns: u64,
    pub entropy_ns: u64,
}

/// An LZ_EXT3E encoder that keeps its match-finder table and buffers between frames.
#[derive(Debug)]
pub struct Encoder {
    parser: Parser,
    dfast: Dfast,
    hash_log: u32,
    opt: Options,
    seqs: Vec<Seq>,
    streams: Streams,
    pub times: StageTimes,
    /// Measure stage times (two clock reads per stage and frame).
    pub timed: bool,
}

impl Encoder {
    pub fn new(p: &EncodeParams, opt: &Options) -> Self {
        let mut opt = *opt;
        opt.subblock_log = opt.subblock_log.clamp(12, 24);
        opt.huffman &= 0x3f;
        opt.hash_bytes = opt.hash_bytes.clamp(4, 6);
        Encoder {
            dfast: Dfast::default(),
            hash_log: p.hash_log,
            parser: Parser::new(p)
                .with_hash_bytes(opt.hash_bytes)
                .with_rep_check(opt.repeat),
            opt,
            seqs: Vec::new(),
            streams: Streams::default(),
            times: StageTimes::default(),
            timed: false,
        }
    }

    /// Appends the LZ_EXT3E encoding of `src` (empty input: empty output) and returns where its bytes went.
    pub fn compress(&mut self, src: &[u8], out: &mut Vec<u8>) -> Breakdown {
        let mut bd = Breakdown::default();
        if src.is_empty() {
            return bd;
        }
        // Raw-mode streams and headers can make incompressible input a little larger, never by much.
        out.reserve(src.len() + src.len() / 16 + 1024);
        let t0 = self.timed.then(std::time::Instant::now);
        if self.opt.dfast {
            let l = self.hash_log;
            let hb = self.opt.hash_bytes;
            self.dfast.parse(src, &mut self.seqs, l + 1, l, hb);
        } else {
            self.parser.parse(src, &mut self.seqs);
        }
        let t1 = self.timed.then(std::time::Instant::now);
        // Upper bounds, so the emitter's pushes never reallocate.
        let seqs = self.seqs.len() + src.len() / (1 << self.opt.subblock_log) + 2;
        for (i, s) in self.streams.s.iter_mut().enumerate() {
            crate::codec::room(
                s,
                match i {
                    LIT => src.len(),
                    EXT => src.len() / 255 + 2 * seqs,
                    _ => seqs,
                },
            );
        }
        self.streams.ends.clear();
        let sb = 1usize << self.opt.subblock_log;
        let mut e = Emitter {
            src,
            sb,
            cur_end: sb.min(src.len()),
            lit_from: 0,
            reps: self.opt.repeat.then_some(INITIAL_REPS),
            out: &mut self.streams,
        };
        for s in &self.seqs {
            e.matched(
                (s.lit_start + s.lit_len) as usize,
                s.offset as usize,
                s.mlen as usize,
            );
        }
        e.finish();
        let t2 = self.timed.then(std::time::Instant::now);
        write_frame(&self.streams, &self.opt, out, &mut bd);
        bd.sequences = self.streams.s[TOK].len() as u64;
        if let (Some(t0), Some(t1), Some(t2)) = (t0, t1, t2) {
            self.times.parse_ns += (t1 - t0).as_nanos() as u64;
            self.times.split_ns += (t2 - t1).as_nanos() as u64;
            self.times.entropy_ns += t2.elapsed().as_nanos() as u64;
        }
        bd
    }
}

/// Encodes `src` with the default options and `p`'s sub-block size (the default where `p.sb_log` is
/// outside 12 ..= 24, as for SUBBLOCK_SIZE = 0).
pub fn compress(src: &[u8], p: &EncodeParams) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::for_params(p).compress(src, &mut out);
    out
}

impl Encoder {
    /// The encoder [`compress`] uses: default options, `p`'s sub-block size (the default where `p.sb_log`
    /// is outside 12 ..= 24).
    pub fn for_params(p: &EncodeParams) -> Self {
        let sb_log = if (12..=24).contains(&p.sb_log) {
            p.sb_log
        } else {
            SUBBLOCK_LOG
        };
        let opt = Options {
            subblock_log: sb_log,
            ..Options::default()
        };
        Encoder::new(p, &opt)
    }
}

/// How one stream of one sub-block is stored.
enum Choice {
    Raw,
    Rle,
    Frame,
    Own(Box<EncTable>),
}

/// Bytes of the 1 or 4 varint stream sizes for a run of `n` symbols costing `bits` in total (estimate).
fn sizes_len(n: usize, bits: u64) -> u64 {
    let streams = huffman::stream_count(n) as u64;
    let per = bits / 8 / streams + 1;
    streams * (1 + (per >= 128) as u64 + (per >= 16384) as u64)
}

fn write_frame(st: &Streams, opt: &Options, out: &mut Vec<u8>, bd: &mut Breakdown) {
    let start = out.len();
    // Histograms of every sub-block's Huffman-codable streams; a frame's is their sum.
    let mut hists = vec![[0u32; 256]; st.ends.len() * STREAMS];
    let mut from = [0u32; STREAMS];
    for (b, ends) in st.ends.iter().enumerate() {
        for i in (0..STREAMS).filter(|i| opt.huffman >> i & 1 != 0) {
            hists[b * STREAMS + i] =
                huffman::histogram(&st.s[i][from[i] as usize..ends[i] as usize]);
        }
        from = *ends;
    }
    // Frame tables: for every stream that may be Huffman-coded and has at least two symbols.
    let mut tables: [Option<EncTable>; STREAMS] = Default::default();
    if opt.frame_tables {
        for (i, t) in tables.iter_mut().enumerate() {
            if opt.huffman >> i & 1 != 0 {
                let mut f = [0u32; 256];
                for h in hists.iter().skip(i).step_by(STREAMS) {
                    for (a, &c) in f.iter_mut().zip(h.iter()) {
                        *a += c;
                    }
                }
                *t = huffman::build_lengths(&f).map(EncTable::new);
            }
        }
    }
    let mask_at = out.len();
    out.push(0);
    let mut mask = 0u8;
    for (i, t) in tables.iter().enumerate() {
        if let Some(t) = t {
            mask |= 1 << i;
            t.write(out);
        }
    }
    out[mask_at] = mask;
    // FORMAT.md 2.2's sub-block table (sb_log, reserved, count, start[k], table_check): the starts and the
    // check are filled in once the sub-blocks are written.
    let n_sb = st.ends.len();
    let table_at = out.len();
    out.push(opt.subblock_log as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(n_sb as u32).to_le_bytes());
    out.resize(out.len() + 4 * n_sb + 4, 0);
    let seq_at = out.len();
    bd.header += (out.len() - start) as u64;
    bd.subblocks += n_sb as u64;

    let mut from = [0u32; STREAMS];
    let mut body = Vec::new();
    for (b, ends) in st.ends.iter().enumerate() {
        let off = (out.len() - seq_at) as u32;
        let at = table_at + 8 + 4 * b;
        out[at..at + 4].copy_from_slice(&off.to_le_bytes());
        let c0 = out.len();
        let n = |i: usize| (ends[i] - from[i]) as usize;
        for i in [TOK, LIT, EXT, 3] {
            write_varint(out, n(i) as u32);
        }
        bd.counts += (out.len() - c0) as u64;
        for i in 0..STREAMS {
            let data = &st.s[i][from[i] as usize..ends[i] as usize];
            bd.raw[i] += data.len() as u64;
            if data.is_empty() {
                continue;
            }
            let before = out.len();
            let h = &hists[b * STREAMS + i];
            write_stream(data, h, i, tables[i].as_ref(), opt, out, &mut body);
            bd.stored[i] += (out.len() - before) as u64;
        }
        from = *ends;
    }
    let check = xxhash_rust::xxh3::xxh3_64(&out[table_at..seq_at - 4]) as u32;
    out[seq_at - 4..seq_at].copy_from_slice(&check.to_le_bytes());
}

/// Writes one stream of one sub-block in its cheapest mode.
/// `h` is the histogram of `data` when stream `i` may be Huffman-coded (else unused).
fn write_stream(
    data: &[u8],
    h: &[u32; 256],
    i: usize,
    frame_table: Option<&EncTable>,
    opt: &Options,
    out: &mut Vec<u8>,
    body: &mut Vec<u8>,
) {
    let mut choice = Choice::Raw;
    let raw = data.len() as u64;
    let mut best = match opt.min_gain_log {
        0 => raw,
        g => raw - (raw >> g),
    };
    let huff = opt.huffman >> i & 1 != 0;
    if (huff && h[data[0] as usize] as usize == data.len())
        || (!huff && data.iter().all(|&b| b == data[0]))
    {
        choice = Choice::Rle;
    } else if huff && data.len() > 8 {
        let h = *h;
        if let Some(bits) = frame_table.and_then(|t| t.cost_bits(&h)) {
            let c = bits.div_ceil(8) + sizes_len(data.len(), bits);
            if c < best {
                best = c;
                choice = Choice::Frame;
            }
        }
        // Lengths and cost first; the codes only if this table is chosen. And the lengths only if the
        // entropy bound (no table codes below it) says an own table could beat the best so far.
        if opt.own_tables && own_table_floor(&h, data.len()) < best {
            if let Some(lens) = huffman::build_lengths(&h) {
                let bits = huffman::cost_bits(&lens, &h).unwrap_or(u64::MAX / 2);
                let c = bits.div_ceil(8)
                    + sizes_len(data.len(), bits)
                    + huffman::table_len(&lens) as u64;
                if c < best {
                    choice = Choice::Own(Box::new(EncTable::new(lens)));
                }
            }
        }
    }
    match choice {
        Choice::Raw => {
            out.push(MODE_RAW);
            out.extend_from_slice(data);
        }
        Choice::Rle => {
            out.push(MODE_RLE);
            out.push(data[0]);
        }
        Choice::Frame => {
            out.push(MODE_FRAME_TABLE);
            write_huffman(
                data,
                frame_table.expect("chosen only with a table"),
                out,
                body,
            );
        }
        Choice::Own(t) => {
            out.push(MODE_OWN_TABLE);
            t.write(out);
            write_huffman(data, &t, out, body);
        }
    }
}

/// A lower bound on what a stream of `n` symbols with histogram `h` costs with its own table: the
/// entropy bound (no prefix code spends fewer bits than Σ f · log2(n / f)), one size byte per bitstream,
/// and the table description (it describes every symbol up to the last that occurs). Cheaper than
/// building the table (a sort and a tree), and exact: a stream whose floor is no better than its best
/// choice so far would never have chosen its own table, so skipping the build changes no byte.
fn own_table_floor(h: &[u32; 256], n: usize) -> u64 {
    let nf = n as f64;
    let mut bits = 0f64;
    let mut last = 0;
    for (s, &f) in h.iter().enumerate() {
        if f > 0 {
            let f = f as f64;
            bits += f * (nf / f).log2();
            last = s;
        }
    }
    // A little under the bound, so rounding can never put it above a real table's cost.
    let bits = (bits * (1.0 - 1e-9)) as u64;
    bits / 8 + huffman::stream_count(n) as u64 + (1 + last / 2 + 1) as u64
}

/// The varint sizes of the 1 or 4 streams, then the streams.
/// `body` is scratch, kept by the caller so that no stream allocates.
fn write_huffman(data: &[u8], t: &EncTable, out: &mut Vec<u8>, body: &mut Vec<u8>) {
    body.clear();
    let sizes = t.encode_streams(data, body);
    for s in sizes {
        write_varint(out, s as u32);
    }
    out.extend_from_slice(body);
}

/// Decodes a frame into exactly `raw_len` bytes.
pub fn decompress(src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    // Every sub-block needs at least a count header and one stream mode byte, and yields at most 2^24 bytes
    // with at most 6 + 4 * 5 bytes of... a cap on raw_len is not derivable cheaply from stored_len (RLE), so
    // the caller's bound (16 MiB frames) is relied on here, as it is for every codec.
    if raw_len > 1 << 24 {
        return Err(err("raw length over 16 MiB"));
    }
    let mut out = vec![0u8; raw_len];
    decompress_into(src, &mut out)?;
    Ok(out)
}

/// Per-decoder scratch: one sub-block's streams.
#[derive(Default)]
struct Scratch {
    s: [Vec<u8>; STREAMS],
    /// The table of a stream that carries its own.
    own: DecTable,
    /// Each match's offset code (the three offset streams put together).
    codes: Vec<u32>,
}

/// Decodes a frame into `dst` (its raw length). On error the contents of `dst` are unspecified.
pub fn decompress_into(src: &[u8], dst: &mut [u8]) -> Result<()> {
    let Some((tables, layout, pos)) = frame_head(src, dst.len())? else {
        return Ok(());
    };
    let mut scratch = Scratch::default();
    for b in 0..layout.count() {
        let (input, out) = sub_block_at(&layout, pos, b, dst.len());
        read_streams(
            &src[..input.end],
            input.start,
            &tables,
            &mut scratch,
            out.len(),
        )
        .and_then(|c| run_sequences(&scratch, c, dst, out.start, out.end))
        .map_err(|e| in_sub_block(b, e))?;
    }
    Ok(())
}

/// Decodes a frame into exactly `raw_len` bytes, its sub-blocks' entropy stage on the threads of the
/// current rayon pool (each sub-block's six streams are independent once the frame tables are read), then
/// the sequences serially (a match may reach into earlier sub-blocks). Same result and same refusals as
/// [`decompress`] (its safe twin, tested against it); holds the streams of a few sub-blocks per thread.
/// On a pool of one thread it is [`decompress`].
pub fn decompress_parallel(src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    use rayon::prelude::*;
    if raw_len > 1 << 24 {
        return Err(err("raw length over 16 MiB"));
    }
    let mut dst = vec![0u8; raw_len];
    let Some((tables, layout, pos)) = frame_head(src, raw_len)? else {
        return Ok(dst);
    };
    let count = layout.count();
    let threads = rayon::current_num_threads();
    if threads <= 1 || count <= 1 {
        decompress_into(src, &mut dst)?;
        return Ok(dst);
    }
    // Sub-blocks in groups of a few per thread: the streams of one group are held at once (a sub-block's
    // can be several times its size on hostile input), never the whole frame's, and each group reuses the
    // buffers of the last (fresh buffers per sub-block cost more in page faults than the decode saved).
    let group = (4 * threads).max(8).min(count);
    let mut scratch: Vec<(Scratch, [usize; 4], Result<()>)> = (0..group)
        .map(|_| (Scratch::default(), [0; 4], Ok(())))
        .collect();
    for first in (0..count).step_by(group) {
        let n = group.min(count - first);
        scratch[..n]
            .par_iter_mut()
            .enumerate()
            .for_each(|(k, (sc, c, r))| {
                let b = first + k;
                let (input, out) = sub_block_at(&layout, pos, b, raw_len);
                *r = read_streams(&src[..input.end], input.start, &tables, sc, out.len())
                    .map(|got| *c = got)
                    .map_err(|e| in_sub_block(b, e));
            });
        for (k, (sc, c, r)) in scratch[..n].iter_mut().enumerate() {
            let b = first + k;
            std::mem::replace(r, Ok(()))?;
            let out = sub_block_at(&layout, pos, b, raw_len).1;
            run_sequences(sc, *c, &mut dst, out.start, out.end).map_err(|e| in_sub_block(b, e))?;
        }
    }
    Ok(dst)
}

/// A frame's tables (one per stream that has one), its sub-block table, and where that table starts.
type FrameHead = ([Option<DecTable>; STREAMS], Layout, usize);

/// The head of a frame of `n` raw bytes (`None`: an empty frame, which is zero bytes).
fn frame_head(src: &[u8], n: usize) -> Result<Option<FrameHead>> {
    if n == 0 {
        return if src.is_empty() {
            Ok(None)
        } else {
            Err(err("bytes stored for an empty frame"))
        };
    }
    let mask = *src.first().ok_or_else(|| err("empty frame"))?;
    if mask >> STREAMS != 0 {
        return Err(err("unknown table bits"));
    }
    let mut pos = 1usize;
    let mut tables: [Option<DecTable>; STREAMS] = Default::default();
    for (i, t) in tables.iter_mut().enumerate() {
        if mask >> i & 1 != 0 {
            *t = Some(DecTable::read(src, &mut pos)?.0);
        }
    }
    // The rest is FORMAT.md 2.2's sub-block table and sub-blocks, checked by the same reader as LZ_EXT3_SB.
    let layout = Layout::parse(src.get(pos..).unwrap_or_default(), n)
        .map_err(|e| Error::Decode(format!("lz_ext3e: frame tables end at byte {pos}: {e}")))?;
    if !layout.mid_at.is_empty() {
        return Err(Error::Decode(format!(
            "lz_ext3e: mid-points in the sub-block table at byte {pos} (LZ_EXT3_SB only)"
        )));
    }
    Ok(Some((tables, layout, pos)))
}

/// Sub-block `b`'s stored bytes (in the frame) and its output range.
fn sub_block_at(
    layout: &Layout,
    pos: usize,
    b: usize,
    n: usize,
) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let input = layout.input(b);
    let sb = layout.size();
    (
        pos + input.start..pos + input.end,
        b * sb..((b + 1) * sb).min(n),
    )
}

fn in_sub_block(b: usize, e: Error) -> Error {
    match e {
        Error::Decode(m) => Error::Decode(format!("{m} (sub-block {b})")),
        e => e,
    }
}

/// The entropy stage of the sub-block at `src[pos..]` (which ends exactly at `src.len()`) of `size`
/// output bytes: its six streams into `sc`. Returns the counts (tokens, literals, extensions, offsets).
fn read_streams(
    src: &[u8],
    mut pos: usize,
    tables: &[Option<DecTable>; STREAMS],
    sc: &mut Scratch,
    size: usize,
) -> Result<[usize; 4]> {
    let n_tok = read_varint(src, &mut pos)? as usize;
    let n_lit = read_varint(src, &mut pos)? as usize;
    let n_ext = read_varint(src, &mut pos)? as usize;
    let n_off = read_varint(src, &mut pos)? as usize;
    // Each token yields at least one byte; extensions are at most one per 255 bytes plus two per token.
    if n_tok == 0 || n_tok > size || n_lit > size || n_off > n_tok || n_tok > n_off + 1 {
        return Err(err("sequence counts impossible for the sub-block size"));
    }
    if n_ext > size / 255 + 2 * n_tok {
        return Err(err("too many length extensions"));
    }
    let counts = [n_lit, n_tok, n_ext, n_off, n_off, n_off];
    for i in 0..STREAMS {
        let buf = &mut sc.s[i];
        // WILD bytes of slack after each stream, so short copies can move a fixed 16 bytes.
        buf.resize(counts[i] + WILD, 0);
        if counts[i] > 0 {
            read_stream(
                src,
                &mut pos,
                tables[i].as_ref(),
                &mut sc.own,
                &mut buf[..counts[i]],
            )?;
        }
    }
    if pos != src.len() {
        return Err(err("bytes left after the streams"));
    }
    // The three offset bytes of each match as one code (a loop the compiler vectorizes), so the sequence
    // loop reads one value per match rather than three streams.
    sc.codes.clear();
    let [.., o0, o1, o2] = &sc.s;
    sc.codes.extend(
        o0[..n_off]
            .iter()
            .zip(&o1[..n_off])
            .zip(&o2[..n_off])
            .map(|((&a, &b), &c)| a as u32 | (b as u32) << 8 | (c as u32) << 16),
    );
    Ok([n_tok, n_lit, n_ext, n_off])
}

/// The LZ stage of one sub-block: its sequences (streams in `sc`, counts from [`read_streams`]) into
/// `dst[op..out_end]`; matches may read all of `dst[..op]`.
fn run_sequences(
    sc: &Scratch,
    [n_tok, n_lit, n_ext, n_off]: [usize; 4],
    dst: &mut [u8],
    mut op: usize,
    out_end: usize,
) -> Result<()> {
    let [lit, tok, ext, ..] = &sc.s;
    let ext = &ext[..n_ext];
    let (mut lp, mut xp) = (0usize, 0usize);
    let [a, b, c] = INITIAL_REPS;
    let mut reps = (a, b, c);
    // The hot loop: one iteration per sequence with a match (tokens and offset bytes zipped, so no index
    // is checked). Short literal runs and short non-overlapping matches are copied as fixed 16-byte blocks
    // when that stays inside this sub-block's output (so sub-blocks can be decoded by several threads at
    // once); later bytes overwrite the excess.
    let seqs = tok[..n_off].iter().zip(&sc.codes[..n_off]);
    for (&t, &code) in seqs {
        let mut l = (t >> 4) as usize;
        if l == 15 {
            l += read_ext(ext, &mut xp)?;
        }
        copy_literals(dst, op, out_end, lit, lp, n_lit, l)?;
        lp += l;
        op += l;
        let mut m = (t & 15) as usize;
        if m == 15 {
            m += read_ext(ext, &mut xp)?;
        }
        m += MIN_MATCH;
        let off = code_offset(&mut reps, code) as usize;
        if off == 0 || off > op {
            return Err(err("match offset out of range"));
        }
        if op + m > out_end {
            return Err(err("match past the sub-block"));
        }
        copy_match(dst, op, off, m, out_end);
        op += m;
    }
    if n_tok > n_off {
        // The literal-only last token.
        let t = tok[n_off];
        if t & 15 != 0 {
            return Err(err("literal-only token with a match length"));
        }
        let mut l = (t >> 4) as usize;
        if l == 15 {
            l += read_ext(ext, &mut xp)?;
        }
        copy_literals(dst, op, out_end, lit, lp, n_lit, l)?;
        lp += l;
        op += l;
    }
    if op != out_end || lp != n_lit || xp != n_ext {
        return Err(err("sequences do not fill the sub-block exactly"));
    }
    Ok(())
}

/// Reads a 255-continued length extension at `ext[*xp..]`.
#[inline(always)]
fn read_ext(ext: &[u8], xp: &mut usize) -> Result<usize> {
    let mut v = 0usize;
    loop {
        let b = *ext
            .get(*xp)
            .ok_or_else(|| err("length extensions run out"))?;
        *xp += 1;
        v += b as usize;
        if b != 255 {
            return Ok(v);
        }
    }
}

/// Copies `l` literals from `lit[lp..]` (of which `n_lit` are real, followed by WILD bytes of slack) to
/// `dst[op..]`, not past `out_end`.
#[inline(always)]
fn copy_literals(
    dst: &mut [u8],
    op: usize,
    out_end: usize,
    lit: &[u8],
    lp: usize,
    n_lit: usize,
    l: usize,
) -> Result<()> {
    if l <= WILD && lp + l <= n_lit && op + WILD <= out_end {
        dst[op..op + WILD].copy_from_slice(&lit[lp..lp + WILD]);
        return Ok(());
    }
    if lp + l > n_lit {
        return Err(err("literals run out"));
    }
    if op + l > out_end {
        return Err(err("literals past the sub-block"));
    }
    dst[op..op + l].copy_from_slice(&lit[lp..lp + l]);
    Ok(())
}

/// Slack for fixed-size copies.
const WILD: usize = 16;

/// Reads one stream of `out.len()` symbols at `src[*pos..]`.
fn read_stream(
    src: &[u8],
    pos: &mut usize,
    frame_table: Option<&DecTable>,
    own: &mut DecTable,
    out: &mut [u8],
) -> Result<()> {
    let mode = *src.get(*pos).ok_or_else(|| err("truncated stream"))?;
    *pos += 1;
    match mode {
        MODE_RAW => {
            let s = src
                .get(*pos..*pos + out.len())
                .ok_or_else(|| err("truncated raw stream"))?;
            out.copy_from_slice(s);
            *pos += out.len();
        }
        MODE_RLE => {
            let b = *src.get(*pos).ok_or_else(|| err("truncated stream"))?;
            out.fill(b);
            *pos += 1;
        }
        MODE_FRAME_TABLE | MODE_OWN_TABLE => {
            let t = if mode == MODE_OWN_TABLE {
                own.set(&DecTable::read_lens(src, pos)?)?;
                &*own
            } else {
                frame_table.ok_or_else(|| err("stream uses a frame table that is absent"))?
            };
            let streams = huffman::stream_count(out.len());
            let mut ends = [0usize; 4];
            let mut sizes = [0usize; 4];
            for s in sizes.iter_mut().take(streams) {
                *s = read_varint(src, pos)? as usize;
            }
            let mut e = *pos;
            for k in 0..streams {
                e = e
                    .checked_add(sizes[k])
                    .filter(|&e| e <= src.len())
                    .ok_or_else(|| err("Huffman stream past the sub-block"))?;
                ends[k] = e;
            }
            t.decode_streams(src, *pos, &ends[..streams], out)?;
            *pos = e;
        }
        _ => return Err(err("unknown stream mode")),
    }
    Ok(())
}

/// Copies `len` bytes from `op - off` to `op` as a forward byte-by-byte copy would (as LZ_EXT3's), writing
/// nothing at or past `end`.
///
/// Wild copies where the bytes they write past the match stay before `end` (later sequences overwrite
/// them): matches of up to 32 bytes as one or two 16-byte blocks when the offset is at least 16 (each
/// block reads only bytes already final), up to 16 bytes as two 8-byte blocks when it is 8 ..= 15; longer
/// matches, shorter offsets and the last bytes before `end` copy exactly (memmove for long matches: a
/// 16-byte loop with its bound checks was the hottest spot of the decoder, perf, BENCHMARKS 11.5).
#[inline(always)]
fn copy_match(dst: &mut [u8], op: usize, off: usize, len: usize, end: usize) {
    let s = op - off;
    if len <= 2 * WILD && off >= WILD && op + 2 * WILD <= end {
        // Through a register-sized temporary: `copy_within` is a call that is not inlined.
        let t: [u8; WILD] = dst[s..s + WILD].try_into().unwrap();
        dst[op..op + WILD].copy_from_slice(&t);
        if len > WILD {
            let t: [u8; WILD] = dst[s + WILD..s + 2 * WILD].try_into().unwrap();
            dst[op + WILD..op + 2 * WILD].copy_from_slice(&t);
        }
    } else if off >= 8 && len <= WILD && op + WILD <= end {
        let t: [u8; 8] = dst[s..s + 8].try_into().unwrap();
        dst[op..op + 8].copy_from_slice(&t);
        let t: [u8; 8] = dst[s + 8..s + 16].try_into().unwrap();
        dst[op + 8..op + 16].copy_from_slice(&t);
    } else {
        // Long matches: memmove (wide vector moves) beats a 16-byte loop with its bound checks.
        super::lz_ext3::copy_exact(dst, op, off, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed | 1;
        let mut d = Vec::with_capacity(n);
        let words: [&[u8]; 6] = [
            b"def ",
            b"self.",
            b"return ",
            b"import os\n",
            b"    ",
            b"None",
        ];
        while d.len() < n {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            match x % 8 {
                0..=3 => d.extend_from_slice(words[(x >> 8) as usize % 6]),
                4 if d.len() > 70_000 => {
                    let s = d.len() - 70_000 + (x as usize >> 12) % 1000;
                    for k in 0..(x >> 20) as usize % 300 {
                        d.push(d[s + k]);
                    }
                }
                _ => d.push(b'a' + (x >> 3) as u8 % 26),
            }
        }
        d.truncate(n);
        d
    }

    /// The parallel decoder on a pool of 3 threads (whatever the machine has), so its groups and
    /// threads are exercised.
    fn par(src: &[u8], n: usize) -> Result<Vec<u8>> {
        static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
        let pool = POOL.get_or_init(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap()
        });
        pool.install(|| decompress_parallel(src, n))
    }

    fn roundtrip(data: &[u8], opt: &Options) -> Vec<u8> {
        let mut enc = Encoder::new(&EncodeParams::default(), opt);
        let mut out = Vec::new();
        let bd = enc.compress(data, &mut out);
        assert_eq!(bd.total(), out.len() as u64);
        assert_eq!(decompress(&out, data.len()).unwrap(), data);
        assert_eq!(par(&out, data.len()).unwrap(), data);
        out
    }

    #[test]
    fn roundtrips_every_option() {
        for n in [
            0, 1, 19, 20, 100, 4096, 4097, 65536, 65537, 200_000, 300_001,
        ] {
            let data = sample(n, n as u32 + 3);
            for log in [12, 16] {
                for huffman in [0, 1, 0x3f] {
                    for (ft, ot) in [(true, true), (true, false), (false, true), (false, false)] {
                        let opt = Options {
                            subblock_log: log,
                            huffman,
                            frame_tables: ft,
                            own_tables: ot,
                            repeat: ot,
                            hash_bytes: if ft { 6 } else { 5 },
                            dfast: huffman == 1,
                            min_gain_log: log - 10,
                        };
                        roundtrip(&data, &opt);
                    }
                }
            }
        }
    }

    /// The branch-free decoder of offset codes undoes the encoder's codes, repeat state included, and
    /// refuses code 0 whatever the state.
    #[test]
    fn offset_codes_decode_to_their_offsets() {
        let (mut enc, mut dec) = (INITIAL_REPS, (1, 4, 8));
        let mut x = 77u32;
        for k in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Mostly recent offsets, so every repeat code occurs.
            let off = match x % 5 {
                0 => enc[0],
                1 => enc[1],
                2 => enc[2],
                _ => 1 + (x >> 8) % 5000,
            };
            let code = offset_code(&mut enc, off);
            assert_eq!(code_offset(&mut dec, code), off, "sequence {k}");
            assert_eq!([dec.0, dec.1, dec.2], enc, "sequence {k}");
            let mut tmp = dec;
            assert_eq!(code_offset(&mut tmp, 0), 0);
        }
    }

    #[test]
    fn long_matches_cross_many_subblocks() {
        let mut data = sample(5000, 9);
        let first = data.clone();
        for _ in 0..60 {
            data.extend_from_slice(&first);
        }
        data.extend(std::iter::repeat_n(b'z', 100_000));
        let out = roundtrip(
            &data,
            &Options {
                subblock_log: 12,
                ..Default::default()
            },
        );
        assert!(out.len() < data.len() / 20);
    }

    #[test]
    fn huffman_makes_text_smaller() {
        let data = sample(1 << 20, 5);
        let plain = roundtrip(
            &data,
            &Options {
                huffman: 0,
                ..Default::default()
            },
        );
        let coded = roundtrip(&data, &Options::default());
        assert!(
            coded.len() * 10 < plain.len() * 9,
            "{} vs {}",
            coded.len(),
            plain.len()
        );
    }

    #[test]
    fn rejects_damage_without_panicking() {
        let data = sample(150_000, 11);
        let out = roundtrip(&data, &Options::default());
        let mut bad_seen = 0;
        for i in (0..out.len()).step_by(7) {
            let mut b = out.clone();
            b[i] ^= 0x5a;
            let got = par(&b, data.len());
            match decompress(&b, data.len()) {
                Ok(d) => {
                    assert_eq!(d.len(), data.len());
                    assert_eq!(got.unwrap(), d, "damage at {i}: parallel differs");
                }
                Err(e) => {
                    bad_seen += 1;
                    // The same refusal, naming the same sub-block.
                    assert_eq!(got.unwrap_err().to_string(), e.to_string(), "damage at {i}");
                }
            }
        }
        assert!(bad_seen > 0);
        for cut in [0, 1, 2, 10, out.len() / 2, out.len() - 1] {
            assert!(decompress(&out[..cut], data.len()).is_err());
            assert!(par(&out[..cut], data.len()).is_err());
        }
        assert!(decompress(&out, data.len() + 1).is_err());
        assert!(decompress(&out, data.len() - 1).is_err());
        assert!(decompress(&out, usize::MAX).is_err());
    }
}
