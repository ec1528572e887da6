//! The codec tag: which block codec encoded a frame (byte 4 of the frame header, and the frame table;
//! FORMAT.md sections 3 and 4). The codecs themselves live in the top-level `codec` module.

/// The codec of a frame, as stored in the frame header and frame table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Codec {
    Raw = 0,
    LzExt3 = 1,
    Lz4 = 2,
    /// LZ_EXT3 in sub-blocks with a start table (format version 2; FORMAT.md §2.2).
    LzExt3Sb = 3,
    /// LZ_EXT3's sequences as six Huffman/raw/RLE-coded streams per sub-block, in 2.2's sub-blocks
    /// (format version 4; FORMAT.md §2.4).
    LzExt3E = 4,
    /// One Zstandard frame (format version 7; FORMAT.md §2.5).
    Zstd = 5,
}

impl Codec {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Codec::Raw),
            1 => Some(Codec::LzExt3),
            2 => Some(Codec::Lz4),
            3 => Some(Codec::LzExt3Sb),
            4 => Some(Codec::LzExt3E),
            5 => Some(Codec::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Raw => "RAW",
            Codec::LzExt3 => "LZ_EXT3",
            Codec::Lz4 => "LZ4",
            Codec::LzExt3Sb => "LZ_EXT3_SB",
            Codec::LzExt3E => "LZ_EXT3E",
            Codec::Zstd => "ZSTD",
        }
    }

    /// The lowest `format_version` whose archives may hold frames of this codec (FORMAT.md §7); a
    /// reader refuses such a frame in an archive of a lower version.
    pub fn min_version(self) -> u32 {
        match self {
            Codec::Raw | Codec::LzExt3 | Codec::Lz4 => 1,
            Codec::LzExt3Sb => 2,
            Codec::LzExt3E => super::FORMAT_VERSION_EXT3E,
            Codec::Zstd => super::FORMAT_VERSION_ZSTD,
        }
    }

    /// Parses a `--codec` / config value.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "lz_ext3" | "lzext3" | "ext3" => Some(Codec::LzExt3),
            "lz_ext3_sb" => Some(Codec::LzExt3Sb),
            "lz_ext3e" => Some(Codec::LzExt3E),
            "zstd" => Some(Codec::Zstd),
            "lz4" => Some(Codec::Lz4),
            "raw" | "none" => Some(Codec::Raw),
            _ => None,
        }
    }
}
