//! The serial LZ_EXT3_SB decoder: sub-blocks in order, each walked like an LZ_EXT3 block whose offsets
//! count from the frame's start. It defines the bytes (the parallel decoder and the GPU kernel must give
//! the same) and is the safe twin the parallel decoder is tested against.

use super::super::lz_ext3::{copy_match, read_ext, MIN_MATCH};
use super::{err, Layout};
use crate::error::{Error, Result};

/// Decodes a frame into exactly `raw_len` bytes, serially (see [`super::decompress_parallel`] for
/// several threads).
pub fn decompress(src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    decompress_serial(src, raw_len)
}

/// Decodes sub-block after sub-block on the calling thread.
pub fn decompress_serial(src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    let lay = check(src, raw_len)?;
    let mut out = vec![0u8; lay.raw_len];
    for k in 0..lay.count() {
        let r = lay.output(k);
        walk(&src[lay.input(k)], &mut out, r.start, r.end).map_err(|e| in_sub_block(k, e))?;
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
/// Fails unless the input is consumed exactly when the output is full.
///
/// The hot loop (as `lz_ext3::decompress_into`: short literal runs and short matches are copied as 16
/// bytes when there is room before the frame's end; the bytes past them are written later, by this
/// sub-block or the next ones).
fn walk(input: &[u8], out: &mut [u8], start: usize, end: usize) -> Result<()> {
    let n = out.len();
    let mut ip = 0usize;
    let mut op = start;
    while ip < input.len() {
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
    Ok(())
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
