//! Footer: the last 80 bytes of the last volume.
//!
//! ```text
//! off size field
//! 0   8    magic2 "CLCFOOT1"
//! 8   4    format_version u32
//! 12  4    volume_count u32
//! 16  16   archive_id
//! 32  8    index_offset u64 (in the volume where the blob starts: this one, or an earlier one in version 3)
//! 40  8    index_stored_len u64
//! 48  8    index_raw_len u64
//! 56  8    index_checksum = xxh3(raw index)
//! 64  8    footer_check = xxh3(bytes 0..64)
//! 72  8    magic "GPU_IDX1"
//! ```

use super::bytes::{Cursor, PutLe};
use crate::error::{Error, Result};

pub const MAGIC2: [u8; 8] = *b"CLCFOOT1";
pub const MAGIC: [u8; 8] = *b"GPU_IDX1";
/// Readers refuse indexes that claim more than this once inflated.
pub const MAX_INDEX_RAW: u64 = 4 << 30;
/// Below [`MAX_INDEX_RAW`], an index may inflate to at most `INDEX_RATIO` × its stored (zlib) length plus
/// [`INDEX_SLACK`]. clc's indexes compress about 28:1 at best (a million empty files with numbered
/// names), so no archive clc writes comes near it; a bomb (320 MB of one repeated entry in 311 KB) is
/// refused before it is inflated, and nothing sized by an index's counts can then outgrow the archive.
pub const INDEX_RATIO: u64 = 64;
/// See [`INDEX_RATIO`].
pub const INDEX_SLACK: u64 = 16 << 20;

/// The largest raw index a reader accepts from `stored` bytes of zlib (clc's and CL_Compressor's).
pub fn max_index_raw(stored: u64) -> u64 {
    stored
        .saturating_mul(INDEX_RATIO)
        .saturating_add(INDEX_SLACK)
        .min(MAX_INDEX_RAW)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    pub version: u32,
    pub volume_count: u32,
    pub archive_id: [u8; 16],
    pub index_offset: u64,
    pub index_stored_len: u64,
    pub index_raw_len: u64,
    pub index_checksum: u64,
}

impl Footer {
    pub const SIZE: usize = 80;

    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut v = Vec::with_capacity(Self::SIZE);
        v.extend_from_slice(&MAGIC2);
        v.put_u32(self.version);
        v.put_u32(self.volume_count);
        v.extend_from_slice(&self.archive_id);
        v.put_u64(self.index_offset);
        v.put_u64(self.index_stored_len);
        v.put_u64(self.index_raw_len);
        v.put_u64(self.index_checksum);
        let c = super::checksum(&v);
        v.put_u64(c);
        v.extend_from_slice(&MAGIC);
        let mut out = [0u8; Self::SIZE];
        out.copy_from_slice(&v);
        out
    }

    /// True when `tail` (the last `SIZE` bytes of a file) starts like a clc footer.
    pub fn looks_like(tail: &[u8]) -> bool {
        tail.len() == Self::SIZE && tail[..8] == MAGIC2 && tail[72..] == MAGIC
    }

    /// Parses the footer from the last `SIZE` bytes of `what`, whose length is `file_len`.
    pub fn decode(tail: &[u8], what: &str, file_len: u64) -> Result<Self> {
        let at = file_len.saturating_sub(Self::SIZE as u64);
        let bad = |off: u64, msg: String| Error::corrupt(what, at + off, format!("footer: {msg}"));
        if tail.len() != Self::SIZE {
            return Err(bad(0, "truncated".into()));
        }
        if !Self::looks_like(tail) {
            return Err(bad(0, "bad magic".into()));
        }
        let mut c = Cursor::new(tail, what);
        c.take(8)?;
        let version = c.u32()?;
        let volume_count = c.u32()?;
        let archive_id = c.array::<16>()?;
        let index_offset = c.u64()?;
        let index_stored_len = c.u64()?;
        let index_raw_len = c.u64()?;
        let index_checksum = c.u64()?;
        let check = c.u64()?;
        if check != super::checksum(&tail[..64]) {
            return Err(bad(64, "checksum mismatch".into()));
        }
        if !super::known_version(version) {
            return Err(bad(8, format!("unknown format version {version}")));
        }
        if volume_count == 0 {
            return Err(bad(12, "zero volumes".into()));
        }
        // Versions 1 and 2: the blob lies in this volume and ends at the footer. Version 3: it may start in an
        // earlier volume (FORMAT.md 3.2); the reader places it with the volumes' lengths.
        let end = index_offset.checked_add(index_stored_len);
        let fits = match version {
            1 | 2 => end == Some(at),
            _ => end.is_some() && index_offset >= super::volume::VolumeHeader::SIZE as u64,
        };
        if !fits {
            return Err(bad(
                32,
                format!("index at {index_offset}+{index_stored_len} does not end at the footer"),
            ));
        }
        if index_raw_len > max_index_raw(index_stored_len) {
            return Err(bad(
                48,
                format!(
                    "index claims {index_raw_len} bytes from {index_stored_len} stored (at most \
                     {INDEX_RATIO} × stored + {} MiB, and 4 GiB, are accepted)",
                    INDEX_SLACK >> 20
                ),
            ));
        }
        Ok(Footer {
            version,
            volume_count,
            archive_id,
            index_offset,
            index_stored_len,
            index_raw_len,
            index_checksum,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_roundtrip() {
        let f = Footer {
            version: 1,
            volume_count: 2,
            archive_id: [1; 16],
            index_offset: 100,
            index_stored_len: 20,
            index_raw_len: 40,
            index_checksum: 5,
        };
        let b = f.encode();
        assert_eq!(b.len(), Footer::SIZE);
        assert!(Footer::looks_like(&b));
        assert_eq!(Footer::decode(&b, "v", 200).unwrap(), f);
        assert!(Footer::decode(&b, "v", 201).is_err());
        let mut bad = b;
        bad[20] ^= 1;
        assert!(Footer::decode(&bad, "v", 200).is_err());
    }

    /// Issue 14: a 311 KB archive whose index inflated to 320 MB made `list` allocate gigabytes; the raw
    /// length is now bounded by the stored length before anything is inflated.
    #[test]
    fn regression_index_raw_bounded_by_stored() {
        let f = |raw: u64, stored: u64| Footer {
            version: 1,
            volume_count: 1,
            archive_id: [1; 16],
            index_offset: 100,
            index_stored_len: stored,
            index_raw_len: raw,
            index_checksum: 5,
        };
        let ok = f(64 * 300_000 + INDEX_SLACK, 300_000);
        assert!(Footer::decode(&ok.encode(), "v", 300_180).is_ok());
        let bomb = f(320 << 20, 300_000);
        let e = Footer::decode(&bomb.encode(), "v", 300_180).unwrap_err();
        assert!(
            e.to_string().contains("index claims 335544320 bytes"),
            "{e}"
        );
        assert_eq!(max_index_raw(u64::MAX), MAX_INDEX_RAW);
    }
}
