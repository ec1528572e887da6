//! Codec 5, ZSTD (FORMAT.md 2.5): a frame's stored bytes are one Zstandard frame of its raw bytes,
//! written and read by libzstd (the `zstd` crate). One sequential stream: no GPU or in-frame threads.
//!
//! The reader checks what FORMAT.md 2.5 lists before decoding (exactly one frame, its content size
//! present and equal to `raw_len`, no dictionary) and decodes in one shot into a `raw_len`-byte
//! buffer, so a hostile frame can neither make it allocate by its own say nor return partial bytes.

use crate::error::{Error, Result};
use std::cell::RefCell;
use zstd::zstd_safe::{self, CParameter};

/// The compression levels a config may ask for (ZSTD_LEVEL).
pub const LEVELS: std::ops::RangeInclusive<i32> = 1..=19;

/// ZSTD_LEVEL's default: zstd's own (`zstd -3`).
pub const DEFAULT_LEVEL: i32 = 3;

/// A compression context per thread and level: a fresh one per frame allocated and zeroed zstd's
/// tables for every frame (as `codec::encode`'s kept LZ_EXT3 encoders avoid). The frame parameters are
/// set once; zstd resets its state at every frame, so the bytes do not depend on earlier frames.
struct Kept {
    level: i32,
    cx: zstd::bulk::Compressor<'static>,
}

thread_local! {
    static KEPT: RefCell<Option<Kept>> = const { RefCell::new(None) };
    /// See [`decompress`]. One-shot decompression resets the context at every frame.
    static DCTX: RefCell<zstd_safe::DCtx<'static>> = RefCell::new(zstd_safe::DCtx::create());
}

fn compressor(level: i32) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    let mut cx = zstd::bulk::Compressor::new(level)?;
    cx.set_parameter(CParameter::ContentSizeFlag(true))?;
    cx.set_parameter(CParameter::ChecksumFlag(false))?;
    cx.set_parameter(CParameter::DictIdFlag(false))?;
    cx.set_parameter(CParameter::EnableLongDistanceMatching(false))?;
    Ok(cx)
}

/// Encodes `src` as one Zstandard frame at `level` (clamped to [`LEVELS`]). The caller stores the
/// frame RAW when this is not smaller than `src`; a libzstd failure (out of memory) gives a copy of
/// `src`, which that size check then stores RAW. (Not an empty result: the check would take an empty
/// encoding for a good one, and the frame would be written with no bytes to decode.)
pub fn compress(src: &[u8], level: i32) -> Vec<u8> {
    let level = level.clamp(*LEVELS.start(), *LEVELS.end());
    KEPT.with_borrow_mut(|kept| {
        if kept.as_ref().is_none_or(|k| k.level != level) {
            *kept = compressor(level).ok().map(|cx| Kept { level, cx });
        }
        let Some(k) = kept.as_mut() else {
            return src.to_vec();
        };
        let mut out = Vec::with_capacity(zstd_safe::compress_bound(src.len()));
        match k.cx.compress_to_buffer(src, &mut out) {
            Ok(_) => out,
            Err(_) => src.to_vec(),
        }
    })
}

/// Decodes one ZSTD frame's stored bytes into exactly `raw_len` bytes, after FORMAT.md 2.5's checks.
pub fn decompress(src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    decompress_reusing(src, raw_len, Vec::new())
}

/// [`decompress`] into `out`'s memory (a buffer that held something else; its bytes are replaced),
/// so that a caller that keeps buffers spares the page faults of fresh ones.
pub fn decompress_reusing(src: &[u8], raw_len: usize, mut out: Vec<u8>) -> Result<Vec<u8>> {
    let bad = |what: String| Error::Decode(format!("ZSTD: {what}"));
    let framed = zstd_safe::find_frame_compressed_size(src).map_err(|c| {
        bad(format!(
            "not a Zstandard frame ({})",
            zstd_safe::get_error_name(c)
        ))
    })?;
    if framed != src.len() {
        return Err(bad(format!(
            "the frame is {framed} of the {} stored bytes (one frame, nothing after it)",
            src.len()
        )));
    }
    match zstd_safe::get_frame_content_size(src) {
        Ok(Some(n)) if n == raw_len as u64 => {}
        Ok(Some(n)) => {
            return Err(bad(format!(
                "the frame says {n} bytes, the frame header {raw_len}"
            )))
        }
        Ok(None) => return Err(bad("the frame does not say its content size".into())),
        Err(_) => return Err(bad("the frame header is malformed".into())),
    }
    if zstd_safe::get_dict_id_from_frame(src).is_some() {
        return Err(bad("the frame needs a dictionary".into()));
    }
    out.clear();
    out.reserve(raw_len);
    // A decompression context per thread, as for compression: creating one per frame cost a
    // context's allocation and set-up for every frame decoded.
    let n = DCTX
        .with_borrow_mut(|dx| dx.decompress(&mut out, src))
        .map_err(|c| bad(zstd_safe::get_error_name(c).to_string()))?;
    if n != raw_len || out.len() != raw_len {
        return Err(bad(format!("decoded {n} bytes, expected {raw_len}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        crate::codec::tests::text(7, n)
    }

    #[test]
    fn frames_roundtrip_at_every_level_and_do_not_depend_on_earlier_frames() {
        let a = text(300_000);
        let b = text(5000);
        for level in [1, 3, 9, 19] {
            let first = compress(&a, level);
            let _ = compress(&b, level);
            assert_eq!(
                compress(&a, level),
                first,
                "level {level}: the kept context changed bytes"
            );
            assert!(first.len() < a.len() / 2, "level {level}");
            assert_eq!(decompress(&first, a.len()).unwrap(), a);
        }
        // Levels outside 1..=19 are clamped, not passed on.
        assert_eq!(compress(&a, 40), compress(&a, 19));
        assert_eq!(compress(&a, -5), compress(&a, 1));
    }

    #[test]
    fn hostile_frames_are_refused_with_a_reason() {
        let src = text(100_000);
        let f = compress(&src, 3);
        let err = |r: Result<Vec<u8>>| r.unwrap_err().to_string();
        // Wrong length asked for, by one either way.
        assert!(err(decompress(&f, src.len() + 1)).contains("says 100000"));
        assert!(err(decompress(&f, src.len() - 1)).contains("says 100000"));
        // Bytes after the frame, a second frame, a cut frame, no frame at all.
        let mut tail = f.clone();
        tail.push(0);
        assert!(err(decompress(&tail, src.len())).contains("nothing after it"));
        let mut two = f.clone();
        two.extend_from_slice(&f);
        assert!(err(decompress(&two, src.len())).contains("nothing after it"));
        assert!(err(decompress(&f[..f.len() - 3], src.len())).contains("not a Zstandard frame"));
        assert!(err(decompress(b"CLCF0000", 8)).contains("not a Zstandard frame"));
        // No content size in the header.
        let mut cx = zstd::bulk::Compressor::new(3).unwrap();
        cx.set_parameter(CParameter::ContentSizeFlag(false))
            .unwrap();
        let unsized_ = cx.compress(&src).unwrap();
        assert!(err(decompress(&unsized_, src.len())).contains("content size"));
        // A damaged block inside the frame: an error, never bytes.
        let mut bad = f.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x5a;
        bad[mid + 1] ^= 0xa5;
        if let Ok(d) = decompress(&bad, src.len()) {
            // zstd without its checksum can decode damaged literals to other bytes of the right length;
            // the frame header's xxh3 is what catches those (format::frame). Never a panic, never short.
            assert_eq!(d.len(), src.len());
        }
    }

    #[test]
    fn an_empty_input_is_a_frame_of_zero_bytes() {
        let f = compress(&[], 3);
        assert!(!f.is_empty());
        assert!(decompress(&f, 0).unwrap().is_empty());
    }
}
