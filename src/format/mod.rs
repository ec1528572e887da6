//! On-disk structures, one file each, with their byte layouts. `docs/FORMAT.md` is the whole picture.
//! Writers and readers share these types; parsing never panics on hostile bytes.

pub mod bytes;
pub mod codec;
pub mod footer;
pub mod frame;
pub mod generation;
pub mod index;
pub mod tree;
pub mod volume;

/// The format version this build writes: 8, the paged tree's pages as LZ4 blocks (FORMAT.md 12.1), on
/// version 7's layout: LZ_EXT3_SB frames with mid-points (FORMAT.md 2.2), LZ_EXT3E (codec 4) and ZSTD
/// (codec 5) frames allowed. Every pack and append writes it, whatever its codec.
pub const FORMAT_VERSION: u32 = 8;

/// The first format version whose tree pages are LZ4 blocks (FORMAT.md 12.1).
pub const LZ4_PAGES_VERSION: u32 = 8;

/// The first format version whose index blobs end in a paged tree (FORMAT.md 12).
pub const TREE_VERSION: u32 = 5;

/// The format version of an archive written with LZ_EXT3E frames (codec 4, FORMAT.md §2.4): version 3's
/// layout (generations) with codec 4 allowed (what clc wrote for LZ_EXT3E before version 5).
pub const FORMAT_VERSION_EXT3E: u32 = 4;

/// The format version of an archive written with ZSTD frames (codec 5, FORMAT.md §2.5): version 6's
/// layout with codec 5 allowed. Only a pack whose codec was ZSTD wrote it (before version 8).
pub const FORMAT_VERSION_ZSTD: u32 = 7;

/// The newest format version this build reads.
pub const NEWEST_VERSION: u32 = if FORMAT_VERSION_ZSTD > FORMAT_VERSION {
    FORMAT_VERSION_ZSTD
} else {
    FORMAT_VERSION
};

/// Whether this build reads archives (footers, volume headers) of format version `v`: 1, 2 (LZ_EXT3_SB
/// frames), 3 (generations; FORMAT.md section 7), 4 (LZ_EXT3E frames), 5 (the paged tree), 6
/// (mid-points in LZ_EXT3_SB frames), 7 (ZSTD frames) and 8 (LZ4 tree pages).
pub fn known_version(v: u32) -> bool {
    (1..=NEWEST_VERSION).contains(&v)
}

/// The format version a pack whose frames are written with `codec` records: the lowest that allows
/// that codec, and never below [`FORMAT_VERSION`] (so every pack writes 8 now).
pub fn version_for(codec: codec::Codec) -> u32 {
    codec.min_version().max(FORMAT_VERSION)
}

/// Checksum used for frames, headers and the index: XXH3-64, seed 0.
pub fn checksum(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}
