//! LZ_EXT3_SB (codec 3, format version 2): LZ_EXT3 sequences in sub-blocks of S = 2^`sb_log` output
//! bytes, with a table of where each sub-block's sequences begin. See docs/FORMAT.md section 2.2.
//!
//! ```text
//! off      size  field
//! 0        1     sb_log        12 ..= 24
//! 1        1     flags         bit 0: mid-points (format 6)
//! 2        2     reserved      0
//! 4        4     count         n = ceil(raw_len / S)
//! 8        4n    start[k]      u32, sub-block k's first sequence byte, from the start of the sequence area
//! (with flag bit 0: n bytes mids[k], then 8 bytes per point: u32 in, u32 out, within the sub-block)
//! H        4     table_check   low 32 bits of xxh3 of bytes 0 .. H
//! H+4      ...   sequences     sub-block k's are [start[k], start[k+1]) (the last one: to the end)
//! ```
//!
//! A mid-point is the start of a sequence inside a sub-block (its token's offset and its first output
//! byte's, both within the sub-block): the GPU parses one sub-block from each point at once. The
//! encoder puts one at every [`MID_EVERY`]th sequence; the decoders check that each is where the serial
//! parse starts a sequence ([`Points`]).
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

pub use decode::{decompress, decompress_reusing, decompress_serial, Sequence, Sequences};
pub use encode::{compress, Encoder};
pub use parallel::decompress_parallel;

use crate::error::{Error, Result};

/// Smallest and largest `sb_log`.
pub const MIN_SB_LOG: u32 = 12;
pub const MAX_SB_LOG: u32 = 24;
/// The sub-block size clc writes by default: 64 KiB.
pub const DEFAULT_SB_LOG: u32 = 16;
/// Bytes before the start table (sb_log, flags, reserved, count).
const HEAD: usize = 8;
/// Flag bit 0 of the header: the table has mid-points.
const F_MIDS: u8 = 1;
/// The encoder's mid-point spacing, in sequences (docs/GPU.md run 46: 512 and 256 gave the same walk).
pub const MID_EVERY: usize = 512;
/// Most mid-points of one sub-block (its count is one byte).
const MAX_MIDS: usize = 255;

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
    // Mid-points: a count per sub-block, and at most one point per 512 sequences, each but a sub-block's
    // last of at least 4 output bytes.
    let mids = subs + 8 * (n / (4 * MID_EVERY) + subs);
    HEAD + 4 * subs + 4 + mids + n + n / 255 + 16 * subs.max(1)
}

/// Writes the header and start table (`starts` relative to the sequence area) and, when `mids` has a
/// point, the mid-points: `mids[k]` points of sub-block k, taken in order from `points`.
pub(crate) fn write_table(
    out: &mut Vec<u8>,
    sb_log: u32,
    starts: &[u32],
    mids: &[u8],
    points: &[(u32, u32)],
) {
    let at = out.len();
    out.push(sb_log as u8);
    out.push(if points.is_empty() { 0 } else { F_MIDS });
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(starts.len() as u32).to_le_bytes());
    for s in starts {
        out.extend_from_slice(&s.to_le_bytes());
    }
    if !points.is_empty() {
        out.extend_from_slice(mids);
        for (i, o) in points {
            out.extend_from_slice(&i.to_le_bytes());
            out.extend_from_slice(&o.to_le_bytes());
        }
    }
    let check = table_check(&out[at..]) as u32;
    out.extend_from_slice(&check.to_le_bytes());
}

/// The mid-points the encoder writes for one sub-block's sequences `input`: the start (input offset,
/// output offset) of every `every`th sequence (more apart if it would have more than 255), none for a
/// sub-block of at most `every` sequences. Empty if `input` does not parse as sequences.
pub(crate) fn find_points(input: &[u8], every: usize) -> Vec<(u32, u32)> {
    let mut starts = Vec::new();
    let (mut ip, mut op) = (0usize, 0usize);
    let ext = |ip: &mut usize| -> Option<usize> {
        let mut v = 0usize;
        loop {
            let b = *input.get(*ip)?;
            *ip += 1;
            v += b as usize;
            if b != 255 {
                return Some(v);
            }
        }
    };
    while ip < input.len() {
        starts.push((ip as u32, op as u32));
        let t = input[ip];
        ip += 1;
        let mut lit = (t >> 4) as usize;
        if lit == 15 {
            let Some(e) = ext(&mut ip) else {
                return Vec::new();
            };
            lit += e;
        }
        ip += lit;
        op += lit;
        if ip < input.len() {
            ip += 3;
            let mut ml = (t & 15) as usize;
            if ml == 15 {
                let Some(e) = ext(&mut ip) else {
                    return Vec::new();
                };
                ml += e;
            }
            op += ml + 4;
        }
    }
    if ip != input.len() {
        return Vec::new();
    }
    let mut points = Vec::new();
    select_points(&starts, every, &mut points);
    points
}

/// Appends to `points` the mid-points of a sub-block whose sequences start at `starts` (input offset,
/// output offset): every `every`th start but the first (more apart if there would be more than 255).
/// Returns how many it appended.
pub(crate) fn select_points(
    starts: &[(u32, u32)],
    every: usize,
    points: &mut Vec<(u32, u32)>,
) -> u8 {
    let step = every.max(1).max(starts.len().div_ceil(MAX_MIDS + 1));
    let before = points.len();
    points.extend(starts.iter().skip(step).step_by(step).take(MAX_MIDS));
    (points.len() - before) as u8
}

/// `frame` (an LZ_EXT3_SB frame of `raw_len` bytes without mid-points, e.g. the GPU encoder's) with the
/// mid-points this crate's encoder would write for its sequences; `frame` itself when its table does not
/// parse, it has points already, or none is due.
pub fn with_mid_points(frame: Vec<u8>, raw_len: usize) -> Vec<u8> {
    let Ok(lay) = Layout::parse(&frame, raw_len) else {
        return frame;
    };
    if !lay.mid_at.is_empty() {
        return frame;
    }
    let (mids, points) = mid_points((0..lay.count()).map(|k| &frame[lay.input(k)]));
    if points.is_empty() {
        return frame;
    }
    let seq_at = lay.bounds[0];
    let starts: Vec<u32> = lay.bounds[..lay.count()]
        .iter()
        .map(|&b| (b - seq_at) as u32)
        .collect();
    let mut out = Vec::with_capacity(frame.len() + mids.len() + 8 * points.len());
    write_table(&mut out, lay.sb_log, &starts, &mids, &points);
    out.extend_from_slice(&frame[seq_at..]);
    out
}

/// The mid-points of sub-blocks whose sequences are `inputs`: how many each has, and the points.
pub(crate) fn mid_points<'a>(inputs: impl Iterator<Item = &'a [u8]>) -> (Vec<u8>, Vec<(u32, u32)>) {
    let (mut mids, mut points) = (Vec::new(), Vec::new());
    for input in inputs {
        let p = find_points(input, MID_EVERY);
        mids.push(p.len() as u8);
        points.extend(p);
    }
    (mids, points)
}

/// A sub-block's mid-points met by a serial parse: [`Points::at`] at every sequence start, [`Points::end`]
/// when the sub-block's input is consumed; either fails for a point that is not a sequence start.
pub(crate) struct Points<'a> {
    pts: &'a [(usize, usize)],
}

impl<'a> Points<'a> {
    pub(crate) fn new(pts: &'a [(usize, usize)]) -> Self {
        Points { pts }
    }

    /// A sequence starts at input offset `ip` with output offset `op` (both within the sub-block).
    #[inline(always)]
    pub(crate) fn at(&mut self, ip: usize, op: usize) -> Result<()> {
        match self.pts.first() {
            Some(&(i, o)) if i <= ip => {
                if i != ip || o != op {
                    return Err(err("mid-point not at a sequence start"));
                }
                self.pts = &self.pts[1..];
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The sub-block's input is consumed: every point must have been met.
    pub(crate) fn end(&self) -> Result<()> {
        if self.pts.is_empty() {
            Ok(())
        } else {
            Err(err("mid-point not at a sequence start"))
        }
    }
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
    /// Mid-points (input offset, output offset, within their sub-block), sub-block after sub-block;
    /// sub-block k's are `points[mid_at[k]..mid_at[k + 1]]` (`mid_at` empty: the frame has none).
    pub points: Vec<(usize, usize)>,
    pub mid_at: Vec<usize>,
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
        if head[1] & !F_MIDS != 0 || head[2..4] != [0, 0] {
            return Err(err(
                "unknown flags or non-zero reserved bytes in the sub-block header",
            ));
        }
        let has_mids = head[1] & F_MIDS != 0;
        let count = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")) as usize;
        let want = raw_len.div_ceil(1 << sb_log);
        if count != want {
            return Err(err(format!(
                "table has {count} sub-blocks, {raw_len} bytes in sub-blocks of {} need {want}",
                1u64 << sb_log
            )));
        }
        let past = || err("sub-block table runs past the stored bytes");
        let mut seq_at = HEAD + 4 * count + 4;
        let mut mids: &[u8] = &[];
        if has_mids {
            let t = HEAD + 4 * count;
            mids = src.get(t..t + count).ok_or_else(past)?;
            let m: usize = mids.iter().map(|&c| c as usize).sum();
            seq_at = t + count + 8 * m + 4;
        }
        if seq_at > src.len() {
            return Err(past());
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
        let (mut points, mut mid_at) = (Vec::new(), Vec::new());
        if has_mids {
            let u32_at = |at: usize| {
                u32::from_le_bytes(src[at..at + 4].try_into().expect("4 bytes")) as usize
            };
            let mut at = HEAD + 5 * count;
            mid_at.push(0);
            for (k, &c) in mids.iter().enumerate() {
                let (inl, outl) = (
                    bounds[k + 1] - bounds[k],
                    Layout::sub_len(sb_log, raw_len, k),
                );
                let (mut pi, mut po) = (0usize, 0usize);
                for _ in 0..c {
                    let (i, o) = (u32_at(at), u32_at(at + 4));
                    at += 8;
                    if i <= pi || i >= inl || o <= po || o > outl {
                        return Err(err(format!(
                            "sub-block {k}: mid-point ({i}, {o}) not inside the sub-block's {inl} \
                             input and {outl} output bytes above the one before it"
                        )));
                    }
                    points.push((i, o));
                    (pi, po) = (i, o);
                }
                mid_at.push(points.len());
            }
        }
        Ok(Layout {
            sb_log,
            bounds,
            raw_len,
            points,
            mid_at,
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

    fn sub_len(sb_log: u32, raw_len: usize, k: usize) -> usize {
        (raw_len - (k << sb_log)).min(1 << sb_log)
    }

    /// Sub-block `k`'s mid-points (input offset, output offset, within the sub-block).
    pub fn points(&self, k: usize) -> &[(usize, usize)] {
        match self.mid_at.get(k..k + 2) {
            Some(r) => &self.points[r[0]..r[1]],
            None => &[],
        }
    }
}

#[cfg(test)]
mod tests;
