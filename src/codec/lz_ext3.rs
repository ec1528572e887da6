//! LZ_EXT3: LZ4 sequences with a 3-byte offset (16 MiB window). See docs/FORMAT.md section 2.1.
//! PLACEHOLDER: being written (encoder stores all literals; decoder complete enough for tests).

use super::EncodeParams;
use crate::error::{Error, Result};

/// Encodes `src`; the output is a valid LZ_EXT3 block.
pub fn compress(src: &[u8], _p: &EncodeParams) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() + src.len() / 255 + 16);
    let l = src.len();
    if l >= 15 {
        out.push(0xf0);
        let mut r = l - 15;
        while r >= 255 {
            out.push(255);
            r -= 255;
        }
        out.push(r as u8);
    } else {
        out.push((l as u8) << 4);
    }
    out.extend_from_slice(src);
    out
}

/// Decodes a block into exactly `raw_len` bytes.
pub fn decompress(src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(raw_len);
    let mut i = 0usize;
    let err = |m: &str| Error::Decode(format!("lz_ext3: {m}"));
    let ext = |i: &mut usize, mut n: usize| -> Result<usize> {
        loop {
            let b = *src.get(*i).ok_or_else(|| err("truncated length"))?;
            *i += 1;
            n += b as usize;
            if b != 255 {
                return Ok(n);
            }
        }
    };
    while i < src.len() {
        let t = src[i];
        i += 1;
        let mut lit = (t >> 4) as usize;
        if lit == 15 {
            lit = ext(&mut i, lit)?;
        }
        let s = src
            .get(i..i + lit)
            .ok_or_else(|| err("literals past input"))?;
        if out.len() + lit > raw_len {
            return Err(err("output overrun"));
        }
        out.extend_from_slice(s);
        i += lit;
        if i == src.len() {
            break;
        }
        let o = src.get(i..i + 3).ok_or_else(|| err("truncated offset"))?;
        i += 3;
        let off = o[0] as usize | (o[1] as usize) << 8 | (o[2] as usize) << 16;
        let mut ml = (t & 15) as usize;
        if ml == 15 {
            ml = ext(&mut i, ml)?;
        }
        ml += 4;
        if off == 0 || off > out.len() || out.len() + ml > raw_len {
            return Err(err("bad match"));
        }
        let start = out.len() - off;
        for k in 0..ml {
            let b = out[start + k];
            out.push(b);
        }
    }
    if out.len() != raw_len {
        return Err(err("short output"));
    }
    Ok(out)
}
