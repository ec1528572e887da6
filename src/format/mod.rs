//! On-disk structures, one file each, with their byte layouts. `docs/FORMAT.md` is the whole picture.
//! Writers and readers share these types; parsing never panics on hostile bytes.

pub mod bytes;
pub mod codec;
pub mod footer;
pub mod frame;
pub mod generation;
pub mod index;
pub mod volume;

/// The format version this build writes.
pub const FORMAT_VERSION: u32 = 3;

/// Whether this build reads archives (footers, volume headers) of format version `v`: 1, 2 (LZ_EXT3_SB
/// frames) and 3 (generations; FORMAT.md section 7).
pub fn known_version(v: u32) -> bool {
    matches!(v, 1..=3)
}

/// Checksum used for frames, headers and the index: XXH3-64, seed 0.
pub fn checksum(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}
