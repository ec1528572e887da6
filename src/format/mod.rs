//! On-disk structures, one file each, with their byte layouts. `docs/FORMAT.md` is the whole picture.
//! Writers and readers share these types; parsing never panics on hostile bytes.

pub mod bytes;
pub mod codec;
pub mod footer;
pub mod frame;
pub mod index;
pub mod volume;

/// The format version this build writes, unless the archive holds LZ_EXT3E frames.
pub const FORMAT_VERSION: u32 = 2;

/// The format version of an archive written with LZ_EXT3E frames (codec 4, FORMAT.md §2.3).
pub const FORMAT_VERSION_EXT3E: u32 = 4;

/// The format versions this build reads: 1, 2 and 4. Version 3 (issue 18's snapshots, FORMAT.md §7) is
/// not known to this build and refused, like any version above 4.
pub fn version_known(version: u32) -> bool {
    matches!(version, 1 | 2 | FORMAT_VERSION_EXT3E)
}

/// The format version a pack whose frames are written with `codec` records: the lowest that allows
/// that codec, and never below [`FORMAT_VERSION`], so archives without LZ_EXT3E keep their version.
pub fn version_for(codec: codec::Codec) -> u32 {
    codec.min_version().max(FORMAT_VERSION)
}

/// Checksum used for frames, headers and the index: XXH3-64, seed 0.
pub fn checksum(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}
