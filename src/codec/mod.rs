//! Block codecs. Every frame is encoded on its own by one of these; decoders check every length and offset
//! against their buffers and return an error on malformed input, never panic.

pub mod huffman;
pub mod lz_dfast;
pub mod lz_ext3;
pub mod lz_ext3_sb;
pub mod lz_ext3e;
pub mod lz_match;
pub mod lz_parse;
pub mod zstd;

pub use crate::format::codec::Codec;

use crate::error::{Error, Result};

/// Match-finder tuning for the LZ_EXT3 encoders (config keys HASH_LOG, HASH_CANDIDATES, GOOD_ENOUGH_MATCH)
/// and the LZ_EXT3_SB / LZ_EXT3E sub-block size (SUBBLOCK_SIZE, as a log2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeParams {
    pub hash_log: u32,
    pub candidates: u32,
    pub good_enough: u32,
    /// log2 of the LZ_EXT3_SB sub-block size (12..=24).
    pub sb_log: u32,
    /// ZSTD frames' compression level (ZSTD_LEVEL, 1..=19).
    pub zstd_level: i32,
}

impl Default for EncodeParams {
    fn default() -> Self {
        EncodeParams {
            hash_log: 16,
            candidates: 2,
            good_enough: 64,
            sb_log: lz_ext3_sb::DEFAULT_SB_LOG,
            zstd_level: zstd::DEFAULT_LEVEL,
        }
    }
}

/// Encodes `src` with `codec`. The caller stores the frame RAW when the result is not smaller than `src`.
///
/// LZ_EXT3_SB and LZ_EXT3E frames are encoded by an encoder this thread keeps ([`KEPT`]): a fresh one
/// per frame allocated its match table and its frame-sized sequence buffers anew, and their page faults
/// and zeroing were a measurable part of a pack's CPU (BENCHMARKS 11.5). Encoders clear what they use,
/// so the bytes do not depend on what the encoder encoded before (tested).
pub fn encode(codec: Codec, src: &[u8], p: &EncodeParams) -> Vec<u8> {
    match codec {
        Codec::Raw => src.to_vec(),
        Codec::LzExt3 => lz_ext3::compress(src, p),
        Codec::Lz4 => lz4_flex::block::compress(src),
        Codec::Zstd => zstd::compress(src, p.zstd_level),
        Codec::LzExt3Sb | Codec::LzExt3E => KEPT.with_borrow_mut(|k| k.encode(codec, src, p)),
    }
}

/// This thread's LZ_EXT3_SB and LZ_EXT3E encoders, each with the params it was made for.
#[derive(Default)]
struct Kept {
    sb: Option<(EncodeParams, lz_ext3_sb::Encoder)>,
    e: Option<(EncodeParams, lz_ext3e::Encoder)>,
}

impl Kept {
    fn encode(&mut self, codec: Codec, src: &[u8], p: &EncodeParams) -> Vec<u8> {
        let mut out = Vec::new();
        if codec == Codec::LzExt3Sb {
            if self.sb.as_ref().is_none_or(|(q, _)| q != p) {
                self.sb = Some((*p, lz_ext3_sb::Encoder::new(p)));
            }
            if let Some((_, e)) = self.sb.as_mut() {
                e.compress(src, &mut out);
            }
        } else {
            if self.e.as_ref().is_none_or(|(q, _)| q != p) {
                self.e = Some((*p, lz_ext3e::Encoder::for_params(p)));
            }
            if let Some((_, e)) = self.e.as_mut() {
                e.compress(src, &mut out);
            }
        }
        out
    }
}

thread_local! {
    /// See [`encode`].
    static KEPT: std::cell::RefCell<Kept> = std::cell::RefCell::default();
}

/// Encodes `src` with LZ_EXT3 after `dict` (FORMAT.md 2.3: a frame with a dictionary).
pub fn encode_with_dict(dict: &[u8], src: &[u8], p: &EncodeParams) -> Vec<u8> {
    let mut out = Vec::new();
    lz_ext3::Encoder::new(p).compress_with_prefix(dict, src, &mut out);
    out
}

/// LZ_EXT3 encoders kept for frames with a dictionary. An append encodes them with a large match table
/// (8 × 2^22 slots, 128 MiB); allocating it for every frame made page faults, zeroing and unmapping
/// most of a dictionary frame's time. Here each table is allocated once per frame encoded at the same
/// time (at most one per worker thread) and reused; the encoder clears the slots it uses, so the bytes
/// do not depend on which encoder a frame gets.
#[derive(Default)]
pub struct DictEncoders(parking_lot::Mutex<Vec<(EncodeParams, lz_ext3::Encoder)>>);

impl DictEncoders {
    /// [`encode_with_dict`] with a kept encoder.
    pub fn encode(&self, dict: &[u8], src: &[u8], p: &EncodeParams) -> Vec<u8> {
        let kept = {
            let mut v = self.0.lock();
            let at = v.iter().position(|(q, _)| q == p);
            at.map(|i| v.swap_remove(i).1)
        };
        let mut enc = kept.unwrap_or_else(|| lz_ext3::Encoder::new(p));
        let mut out = Vec::new();
        enc.compress_with_prefix(dict, src, &mut out);
        self.0.lock().push((*p, enc));
        out
    }
}

/// Decodes an LZ_EXT3 frame with dictionary `dict` into exactly `raw_len` bytes.
pub fn decode_with_dict(codec: Codec, dict: &[u8], src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    if codec != Codec::LzExt3 {
        return Err(Error::Decode(format!(
            "{}: a dictionary on a frame of this codec",
            codec.name()
        )));
    }
    lz_ext3::decompress_with_prefix(dict, src, raw_len)
}

/// Decodes `src` into exactly `raw_len` bytes.
pub fn decode(codec: Codec, src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    decode_with(codec, src, raw_len, false)
}

/// [`decode`], with the parts of one frame that can run at once on the current rayon pool's threads
/// (LZ_EXT3E's sub-blocks' entropy stage; the other codecs decode as [`decode`] does): for a batch of
/// fewer frames than threads, as one large file's frames at the end of an extract.
pub fn decode_parallel(codec: Codec, src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    decode_with(codec, src, raw_len, true)
}

/// [`decode`] (or [`decode_parallel`]) into `out`'s memory: a buffer that held other bytes (a dropped
/// frame's, say), whose contents are all replaced, so that a caller that keeps buffers spares the page
/// faults of fresh ones. Same bytes and same refusals as [`decode`]; a codec without such a path
/// decodes into a fresh buffer (and `out` is dropped).
pub fn decode_reusing(
    codec: Codec,
    src: &[u8],
    raw_len: usize,
    mut out: Vec<u8>,
    parallel: bool,
) -> Result<Vec<u8>> {
    let fill = |out| sized(out, raw_len);
    let out = match codec {
        Codec::Raw => {
            out.clear();
            out.extend_from_slice(src);
            out
        }
        Codec::LzExt3Sb => lz_ext3_sb::decompress_reusing(src, raw_len, out)?,
        Codec::Zstd => zstd::decompress_reusing(src, raw_len, out)?,
        // The bounds `decompress` checks before it allocates, checked before `out` grows.
        Codec::LzExt3 if raw_len <= src.len().saturating_mul(255).saturating_add(16) => {
            let mut out = fill(out);
            lz_ext3::decompress_into(src, &mut out)?;
            out
        }
        Codec::LzExt3E if !parallel && raw_len <= 1 << 24 => {
            let mut out = fill(out);
            lz_ext3e::decompress_into(src, &mut out)?;
            out
        }
        _ => return decode_with(codec, src, raw_len, parallel),
    };
    exactly(codec, out, raw_len)
}

/// `out`, if it holds `raw_len` bytes; else the error that says how many it holds.
fn exactly(codec: Codec, out: Vec<u8>, raw_len: usize) -> Result<Vec<u8>> {
    if out.len() != raw_len {
        return Err(Error::Decode(format!(
            "{}: decoded {} bytes, expected {raw_len}",
            codec.name(),
            out.len()
        )));
    }
    Ok(out)
}

/// `buf` made `len` bytes long for a decoder or a read to overwrite: without room for them, a new
/// zeroed buffer (`calloc`: a large one is mapped zero pages, not written twice); else `buf` itself,
/// only what was never part of it written.
pub fn sized(mut buf: Vec<u8>, len: usize) -> Vec<u8> {
    if buf.capacity() < len {
        return vec![0u8; len];
    }
    buf.truncate(len);
    buf.resize(len, 0);
    buf
}

/// Empties `v` and gives it room for `need` elements without copying what it held. Growing a kept buffer
/// with `reserve` reallocates, and `realloc` copies the old block's whole capacity, not its length: the
/// pack's kept encoders copied their previous frames' sequences into fresh pages each time a larger frame
/// came (under mimalloc, which does not remap large blocks as glibc does, a quarter of a 16-thread pack's
/// first-touched pages; docs/BENCHMARKS.md 11.15).
pub(crate) fn room<T>(v: &mut Vec<T>, need: usize) {
    v.clear();
    if v.capacity() < need {
        *v = Vec::with_capacity(need.max(2 * v.capacity()));
    }
}

fn decode_with(codec: Codec, src: &[u8], raw_len: usize, parallel: bool) -> Result<Vec<u8>> {
    let out = match codec {
        Codec::LzExt3E if parallel => lz_ext3e::decompress_parallel(src, raw_len)?,
        Codec::Raw => src.to_vec(),
        Codec::LzExt3 => lz_ext3::decompress(src, raw_len)?,
        Codec::LzExt3Sb => lz_ext3_sb::decompress(src, raw_len)?,
        Codec::LzExt3E => lz_ext3e::decompress(src, raw_len)?,
        Codec::Zstd => zstd::decompress(src, raw_len)?,
        Codec::Lz4 => lz4_flex::block::decompress(src, raw_len)
            .map_err(|e| Error::Decode(format!("lz4: {e}")))?,
    };
    exactly(codec, out, raw_len)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn room_empties_and_grows_without_keeping_old_bytes() {
        let mut v: Vec<u32> = (0..100).collect();
        let cap = v.capacity();
        let at = v.as_ptr();
        room(&mut v, 50);
        // Enough room already: the same block, emptied.
        assert!(v.is_empty());
        assert_eq!((v.capacity(), v.as_ptr()), (cap, at));
        room(&mut v, cap + 1);
        assert!(v.is_empty());
        assert!(
            v.capacity() >= 2 * cap,
            "grows at least twofold: {}",
            v.capacity()
        );
        room(&mut v, 10 * cap);
        assert!(v.capacity() >= 10 * cap);
    }

    /// Text whose words repeat, with a seeded twist (so that a dictionary pays and inputs differ).
    pub(crate) fn text(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(format!("word{} ", x % 500).as_bytes());
        }
        out.truncate(n);
        out
    }

    /// A kept encoder gives the bytes a fresh one gives, whatever it encoded before (larger or smaller
    /// dictionaries, so that the table it keeps was sized for another input), and they decode.
    #[test]
    fn kept_dictionary_encoders_give_the_bytes_of_fresh_ones() {
        let p = EncodeParams {
            hash_log: 18,
            candidates: 4,
            good_enough: 256,
            ..EncodeParams::default()
        };
        let pool = DictEncoders::default();
        for (k, (dn, sn)) in [(1 << 20, 300_000), (4096, 70_000), (600_000, 1 << 20)]
            .into_iter()
            .enumerate()
        {
            let dict = text(k as u64 + 1, dn);
            let mut src = dict[dn - dn.min(sn / 2)..].to_vec();
            src.extend(text(k as u64 + 9, sn));
            src.truncate(sn);
            let kept = pool.encode(&dict, &src, &p);
            assert_eq!(kept, encode_with_dict(&dict, &src, &p), "input {k}");
            assert!(kept.len() < src.len(), "input {k}: the dictionary paid");
            let back = decode_with_dict(Codec::LzExt3, &dict, &kept, src.len()).unwrap();
            assert!(back == src, "input {k}");
        }
        assert_eq!(pool.0.lock().len(), 1, "one encoder, reused");
    }

    /// `encode`'s kept LZ_EXT3_SB and LZ_EXT3E encoders give the bytes of fresh ones, whatever they
    /// encoded before (larger and smaller inputs, other params), and the frames decode.
    #[test]
    fn kept_frame_encoders_give_the_bytes_of_fresh_ones() {
        let small = EncodeParams {
            hash_log: 12,
            sb_log: 12,
            ..EncodeParams::default()
        };
        let inputs = [
            (1 << 20, EncodeParams::default()),
            (5000, EncodeParams::default()),
            (300_000, small),
            (200_000, EncodeParams::default()),
            (0, EncodeParams::default()),
        ];
        for codec in [Codec::LzExt3Sb, Codec::LzExt3E] {
            for (k, &(n, p)) in inputs.iter().enumerate() {
                let src = text(k as u64 + 3, n);
                let fresh = match codec {
                    Codec::LzExt3Sb => lz_ext3_sb::compress(&src, &p),
                    _ => lz_ext3e::compress(&src, &p),
                };
                let kept = encode(codec, &src, &p);
                assert!(kept == fresh, "{codec:?} input {k}");
                assert!(
                    decode(codec, &kept, n).unwrap() == src,
                    "{codec:?} input {k}"
                );
            }
        }
    }

    /// `decode_reusing` into a buffer that held other bytes (longer, shorter, none) gives `decode`'s
    /// bytes for every codec, and refuses what `decode` refuses with the same message (a flipped byte,
    /// a wrong raw length), whatever the buffer held.
    #[test]
    fn decoding_into_a_used_buffer_gives_decodes_bytes_and_refusals() {
        let src = text(11, 300_000);
        let codecs = [
            Codec::Raw,
            Codec::LzExt3,
            Codec::LzExt3Sb,
            Codec::LzExt3E,
            Codec::Zstd,
            Codec::Lz4,
        ];
        for codec in codecs {
            let enc = encode(codec, &src, &EncodeParams::default());
            let used = [vec![0xAA; src.len() + 777], vec![0x55; 10], Vec::new()];
            for (k, buf) in used.iter().enumerate() {
                for parallel in [false, true] {
                    let got = decode_reusing(codec, &enc, src.len(), buf.clone(), parallel);
                    assert!(got.unwrap() == src, "{codec:?} buffer {k}");
                }
                let mut bad = enc.clone();
                let mid = bad.len() / 2;
                bad[mid] ^= 0x5A;
                for (input, n) in [(&bad, src.len()), (&enc, src.len() + 1)] {
                    let want = decode(codec, input, n).map_err(|e| e.to_string());
                    let got = decode_reusing(codec, input, n, buf.clone(), false)
                        .map_err(|e| e.to_string());
                    match (want, got) {
                        (Err(w), Err(g)) => assert_eq!(w, g, "{codec:?} buffer {k}"),
                        (Ok(w), Ok(g)) => assert!(w == g, "{codec:?} buffer {k}"),
                        (w, g) => {
                            panic!("{codec:?} buffer {k}: {:?} against {:?}", w.err(), g.err())
                        }
                    }
                }
            }
        }
    }
}
