//! The serial LZ_EXT3_SB decoder: sub-blocks in order, each walked like an LZ_EXT3 block whose offsets
//! count from the frame's start. It defines the bytes (the parallel decoder and the GPU kernel must give
//! the same) and is the safe twin the parallel decoder is tested against.

use super::super::lz_ext3::{copy_match, read_ext, MIN_MATCH};
use super::{err, Layout, Points};
use crate::error::{Error, Result};

/// Decodes a frame into exactly `raw_len` bytes, serially (see [`super::decompress_parallel`] for
/// several threads).
pub fn decompress(src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    decompress_serial(src, raw_len)
}

/// Decodes sub-block after sub-block on the calling thread.
pub fn decompress_serial(src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    decompress_reusing(src, raw_len, Vec::new())
}

/// [`decompress_serial`] into `out`'s memory (a buffer that held something else: its bytes are all
/// overwritten, its length set to `raw_len`), so that a caller that keeps buffers spares the page faults
/// of fresh ones. The raw length is checked before `out` grows.
pub fn decompress_reusing(src: &[u8], raw_len: usize, out: Vec<u8>) -> Result<Vec<u8>> {
    let lay = check(src, raw_len)?;
    let mut out = crate::codec::sized(out, lay.raw_len);
    for k in 0..lay.count() {
        let r = lay.output(k);
        walk(&src[lay.input(k)], &mut out, r.start, r.end, lay.points(k))
            .map_err(|e| in_sub_block(k, e))?;
    }
    Ok(out)
}

/// Checks the raw length against the stored length (before anything is allocated for it) and the table.
pub(super) fn check(src: &[u8], raw_len: usize) -> Result<Layout> {
    // A sequence yields fewer than 255 output bytes per input byte: refuse a larger raw length.
    if raw_len > src.len().saturating_mul(255).saturating_add(16) {
        return Err(err("raw length impossible for the stored length"));
    }
    Layout::parse(src, raw_len)
}

/// Names the sub-block in a decode error.
pub(super) fn in_sub_block(k: usize, e: Error) -> Error {
    match e {
        Error::Decode(m) => {
            let m = m.strip_prefix("lz_ext3_sb: ").unwrap_or(&m);
            err(format!(
                "{} (sub-block {k})",
                m.strip_prefix("lz_ext3: ").unwrap_or(m)
            ))
        }
        e => e,
    }
}

/// Decodes one sub-block whose output is `out[start..end]`; matches may read all of `out[..op]`.
/// Fails unless the input is consumed exactly when the output is full, and unless every mid-point
/// `pts` is a sequence start.
///
/// The hot loop (as `lz_ext3::decompress_into`: short literal runs and short matches are copied as 16
/// bytes when there is room before the frame's end; the bytes past them are written later, by this
/// sub-block or the next ones).
fn walk(
    input: &[u8],
    out: &mut [u8],
    start: usize,
    end: usize,
    pts: &[(usize, usize)],
) -> Result<()> {
    let n = out.len();
    let mut ip = 0usize;
    let mut op = start;
    let mut pts = Points::new(pts);
    while ip < input.len() {
        pts.at(ip, op - start)?;
        let token = input[ip];
        ip += 1;
        let mut lit = (token >> 4) as usize;
        if lit == 15 {
            lit += read_ext(input, &mut ip)?;
        }
        if lit <= 16 && ip + 16 <= input.len() && op + 16 <= n && lit <= end - op {
            out[op..op + 16].copy_from_slice(&input[ip..ip + 16]);
        } else {
            let s = input
                .get(ip..ip.wrapping_add(lit))
                .ok_or_else(|| err("literals past the input"))?;
            if lit > end - op {
                return Err(err("literals past the sub-block's end"));
            }
            out[op..op + lit].copy_from_slice(s);
        }
        ip += lit;
        op += lit;
        if ip == input.len() {
            break;
        }
        let (off, ml) = match_part(input, &mut ip, token)?;
        if off > op {
            return Err(err("match offset before the frame start"));
        }
        if ml > end - op {
            return Err(err("match past the sub-block's end"));
        }
        copy_match(out, op, off, ml);
        op += ml;
    }
    if op != end {
        return Err(err("sub-block ends before its output is full"));
    }
    pts.end()
}

/// Reads a sequence's offset and match length (after its literals); checks the offset is not 0.
#[inline(always)]
pub(super) fn match_part(input: &[u8], ip: &mut usize, token: u8) -> Result<(usize, usize)> {
    let o = input
        .get(*ip..*ip + 3)
        .ok_or_else(|| err("truncated offset"))?;
    let off = o[0] as usize | (o[1] as usize) << 8 | (o[2] as usize) << 16;
    *ip += 3;
    let mut ml = (token & 15) as usize;
    if ml == 15 {
        ml += read_ext(input, ip)?;
    }
    if off == 0 {
        return Err(err("match offset 0"));
    }
    Ok((off, ml + MIN_MATCH))
}

/// One sequence of a sub-block: `lit` literals at output position `lit_at`, taken from input bytes
/// `lit_src..lit_src + lit`, then (`len` > 0) a match of `len` bytes at output position `at = lit_at + lit`
/// that copies from `off` bytes back (`len` 0: the sub-block's last sequence, literals only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequence {
    pub lit_at: usize,
    pub lit_src: usize,
    pub lit: usize,
    pub at: usize,
    pub off: usize,
    pub len: usize,
}

/// The sequences of one sub-block, checked as the decoder checks them (literals inside the input and
/// the sub-block, offsets 1 ..= their position in the frame, matches inside the sub-block, the output
/// full exactly when the input ends): each problem is one `Err` item, after which the walk stops. For
/// tools and tests that look at a frame's sequences (examples/sb_depth.rs, examples/sb_sim.rs, the
/// depth bound's test) without decoding it; the decoders keep their own loops (hot).
#[derive(Clone, Debug)]
pub struct Sequences<'a> {
    input: &'a [u8],
    ip: usize,
    op: usize,
    end: usize,
    done: bool,
}

impl<'a> Sequences<'a> {
    /// The sequences of `layout`'s sub-block `k` of the stored frame `src`.
    pub fn new(src: &'a [u8], layout: &Layout, k: usize) -> Self {
        let out = layout.output(k);
        Sequences {
            input: &src[layout.input(k)],
            ip: 0,
            op: out.start,
            end: out.end,
            done: false,
        }
    }

    fn step(&mut self) -> Result<Sequence> {
        let input = self.input;
        let token = input[self.ip];
        self.ip += 1;
        let mut lit = (token >> 4) as usize;
        if lit == 15 {
            lit += read_ext(input, &mut self.ip)?;
        }
        if input.len() - self.ip < lit {
            return Err(err("literals past the input"));
        }
        if lit > self.end - self.op {
            return Err(err("literals past the sub-block's end"));
        }
        let mut s = Sequence {
            lit_at: self.op,
            lit_src: self.ip,
            lit,
            at: self.op + lit,
            off: 0,
            len: 0,
        };
        self.ip += lit;
        self.op += lit;
        if self.ip < input.len() {
            let (off, len) = match_part(input, &mut self.ip, token)?;
            if off > self.op {
                return Err(err("match offset before the frame start"));
            }
            if len > self.end - self.op {
                return Err(err("match past the sub-block's end"));
            }
            (s.off, s.len) = (off, len);
            self.op += len;
        }
        Ok(s)
    }
}

impl Iterator for Sequences<'_> {
    type Item = Result<Sequence>;

    fn next(&mut self) -> Option<Result<Sequence>> {
        if self.done {
            return None;
        }
        if self.ip == self.input.len() {
            self.done = true;
            return (self.op != self.end)
                .then(|| Err(err("sub-block ends before its output is full")));
        }
        let r = self.step();
        self.done = r.is_err();
        Some(r)
    }
}
