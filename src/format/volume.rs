//! Volume header: the first 40 bytes of every volume.
//!
//! ```text
//! off size field
//! 0   8    magic "CLCVOL\0\x01"
//! 8   2    format_version u16
//! 10  2    flags u16 (0)
//! 12  4    volume_number u32 (1-based)
//! 16  16   archive_id
//! 32  8    header_check = xxh3(bytes 0..32)
//! ```

use super::bytes::{Cursor, PutLe};
use crate::error::{Error, Result};

pub const MAGIC: [u8; 8] = *b"CLCVOL\0\x01";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeHeader {
    pub version: u16,
    pub number: u32,
    pub archive_id: [u8; 16],
}

impl VolumeHeader {
    pub const SIZE: usize = 40;

    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut v = Vec::with_capacity(Self::SIZE);
        v.extend_from_slice(&MAGIC);
        v.put_u16(self.version);
        v.put_u16(0);
        v.put_u32(self.number);
        v.extend_from_slice(&self.archive_id);
        let c = super::checksum(&v);
        v.put_u64(c);
        let mut out = [0u8; Self::SIZE];
        out.copy_from_slice(&v);
        out
    }

    /// Parses a header; `what` names the volume in errors.
    pub fn decode(buf: &[u8], what: &str) -> Result<Self> {
        if buf.len() < Self::SIZE {
            return Err(Error::corrupt(what, 0, "too short for a volume header"));
        }
        let mut c = Cursor::new(buf, what);
        if c.array::<8>()? != MAGIC {
            return Err(Error::corrupt(what, 0, "not a clc volume (bad magic)"));
        }
        let version = c.u16()?;
        let flags = c.u16()?;
        let number = c.u32()?;
        let archive_id = c.array::<16>()?;
        let check = c.u64()?;
        if check != super::checksum(&buf[..32]) {
            return Err(Error::corrupt(what, 32, "volume header checksum mismatch"));
        }
        if !super::known_version(u32::from(version)) {
            return Err(Error::corrupt(
                what,
                8,
                format!("unknown format version {version}"),
            ));
        }
        if flags != 0 {
            return Err(Error::corrupt(
                what,
                10,
                format!("unknown volume flags {flags:#x}"),
            ));
        }
        Ok(VolumeHeader {
            version,
            number,
            archive_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_roundtrip() {
        let h = VolumeHeader {
            version: 1,
            number: 7,
            archive_id: [9; 16],
        };
        let b = h.encode();
        assert_eq!(b.len(), VolumeHeader::SIZE);
        assert_eq!(VolumeHeader::decode(&b, "v").unwrap(), h);
        let mut bad = b;
        bad[13] ^= 1;
        assert!(VolumeHeader::decode(&bad, "v").is_err());
    }
}
