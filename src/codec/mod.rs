//! Block codecs. Every frame is encoded on its own by one of these; decoders check every length and offset
//! against their buffers and return an error on malformed input, never panic.

pub mod lz_ext3;
pub mod lz_ext3_sb;

use crate::error::{Error, Result};

/// The codec of a frame, as stored in the frame header and frame table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Codec {
    Raw = 0,
    LzExt3 = 1,
    Lz4 = 2,
    /// LZ_EXT3 in sub-blocks with a start table (format version 2).
    LzExt3Sb = 3,
}

impl Codec {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Codec::Raw),
            1 => Some(Codec::LzExt3),
            2 => Some(Codec::Lz4),
            3 => Some(Codec::LzExt3Sb),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Raw => "RAW",
            Codec::LzExt3 => "LZ_EXT3",
            Codec::Lz4 => "LZ4",
            Codec::LzExt3Sb => "LZ_EXT3_SB",
        }
    }

    /// Parses a `--codec` / config value.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "lz_ext3" | "lzext3" | "ext3" => Some(Codec::LzExt3),
            "lz_ext3_sb" => Some(Codec::LzExt3Sb),
            "lz4" => Some(Codec::Lz4),
            "raw" | "none" => Some(Codec::Raw),
            _ => None,
        }
    }
}

/// Match-finder tuning for the LZ_EXT3 encoders (config keys HASH_LOG, HASH_CANDIDATES, GOOD_ENOUGH_MATCH)
/// and the LZ_EXT3_SB sub-block size (SUBBLOCK_SIZE, as a log2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeParams {
    pub hash_log: u32,
    pub candidates: u32,
    pub good_enough: u32,
    /// log2 of the LZ_EXT3_SB sub-block size (12..=24).
    pub sb_log: u32,
}

impl Default for EncodeParams {
    fn default() -> Self {
        EncodeParams {
            hash_log: 16,
            candidates: 2,
            good_enough: 64,
            sb_log: lz_ext3_sb::DEFAULT_SB_LOG,
        }
    }
}

/// Encodes `src` with `codec`. The caller stores the frame RAW when the result is not smaller than `src`.
pub fn encode(codec: Codec, src: &[u8], p: &EncodeParams) -> Vec<u8> {
    match codec {
        Codec::Raw => src.to_vec(),
        Codec::LzExt3 => lz_ext3::compress(src, p),
        Codec::Lz4 => lz4_flex::block::compress(src),
        Codec::LzExt3Sb => lz_ext3_sb::compress(src, p),
    }
}

/// Decodes `src` into exactly `raw_len` bytes.
pub fn decode(codec: Codec, src: &[u8], raw_len: usize) -> Result<Vec<u8>> {
    let out = match codec {
        Codec::Raw => src.to_vec(),
        Codec::LzExt3 => lz_ext3::decompress(src, raw_len)?,
        Codec::LzExt3Sb => lz_ext3_sb::decompress(src, raw_len)?,
        Codec::Lz4 => lz4_flex::block::decompress(src, raw_len)
            .map_err(|e| Error::Decode(format!("lz4: {e}")))?,
    };
    if out.len() != raw_len {
        return Err(Error::Decode(format!(
            "{}: decoded {} bytes, expected {raw_len}",
            codec.name(),
            out.len()
        )));
    }
    Ok(out)
}
