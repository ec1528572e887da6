//! On-disk structures, one file each, with their byte layouts. `docs/FORMAT.md` is the whole picture.
//! Writers and readers share these types; parsing never panics on hostile bytes.

pub mod bytes;
pub mod codec;
pub mod footer;
pub mod frame;
pub mod index;
pub mod volume;

/// The format version this build writes.
pub const FORMAT_VERSION: u32 = 2;

/// Checksum used for frames, headers and the index: XXH3-64, seed 0.
pub fn checksum(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}
