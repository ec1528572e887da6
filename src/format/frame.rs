//! Frame header: 32 bytes in front of every frame's stored bytes.
//!
//! ```text
//! off size field
//! 0   4    magic "CLCF"
//! 4   1    codec (0 RAW, 1 LZ_EXT3, 2 LZ4)
//! 5   1    flags (bit 0: encoded on the GPU; bit 1: has a dictionary)
//! 6   2    reserved (0)
//! 8   4    raw_len u32
//! 12  4    stored_len u32
//! 16  8    checksum = xxh3(decoded bytes)
//! 24  4    frame_id u32
//! 28  4    header_check = low 32 bits of xxh3(bytes 0..28)
//! ```

use super::bytes::{Cursor, PutLe};
use super::codec::Codec;
use crate::error::{Error, Result};

pub const MAGIC: [u8; 4] = *b"CLCF";
/// The largest frame a reader accepts (and the largest FRAME_SIZE).
pub const MAX_FRAME: u32 = 16 << 20;
/// The largest stored length a reader accepts: LZ_EXT3 and LZ4 expand a 16 MiB frame by far less than
/// an eighth (and a frame that does not shrink is stored RAW). Nothing is allocated by a larger length.
pub const MAX_STORED: u32 = MAX_FRAME + MAX_FRAME / 8;
/// Frame flag: encoded by the GPU.
pub const FLAG_GPU: u8 = 1;
/// Frame flag: decoded after a dictionary (format version 3; FORMAT.md 2.3).
pub const FLAG_DICT: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub codec: Codec,
    pub flags: u8,
    pub raw_len: u32,
    pub stored_len: u32,
    pub checksum: u64,
    pub frame_id: u32,
}

impl FrameHeader {
    pub const SIZE: usize = 32;

    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut v = Vec::with_capacity(Self::SIZE);
        v.extend_from_slice(&MAGIC);
        v.put_u8(self.codec as u8);
        v.put_u8(self.flags);
        v.put_u16(0);
        v.put_u32(self.raw_len);
        v.put_u32(self.stored_len);
        v.put_u64(self.checksum);
        v.put_u32(self.frame_id);
        let c = super::checksum(&v) as u32;
        v.put_u32(c);
        let mut out = [0u8; Self::SIZE];
        out.copy_from_slice(&v);
        out
    }

    /// Parses a header; `what` names the volume and `offset` its position there, for errors.
    pub fn decode(buf: &[u8], what: &str, offset: u64) -> Result<Self> {
        let bad = |msg: &str| Error::corrupt(what, offset, format!("frame header: {msg}"));
        if buf.len() < Self::SIZE {
            return Err(bad("truncated"));
        }
        let mut c = Cursor::new(buf, what);
        if c.array::<4>()? != MAGIC {
            return Err(bad("bad magic"));
        }
        let codec = c.u8()?;
        let flags = c.u8()?;
        let reserved = c.u16()?;
        let raw_len = c.u32()?;
        let stored_len = c.u32()?;
        let checksum = c.u64()?;
        let frame_id = c.u32()?;
        let check = c.u32()?;
        if check != super::checksum(&buf[..28]) as u32 {
            return Err(bad("header checksum mismatch"));
        }
        let codec = Codec::from_u8(codec).ok_or_else(|| bad("unknown codec"))?;
        if raw_len > MAX_FRAME || stored_len > MAX_STORED {
            return Err(bad("length out of range"));
        }
        if flags & !(FLAG_GPU | FLAG_DICT) != 0 || reserved != 0 {
            return Err(bad("unknown flags or non-zero reserved bytes"));
        }
        Ok(FrameHeader {
            codec,
            flags,
            raw_len,
            stored_len,
            checksum,
            frame_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Caught by the `headers` fuzz target's round-trip check (decode then encode gives the same bytes): a
    /// header with a valid check but unknown flag bits or non-zero reserved bytes was accepted, though
    /// FORMAT.md says they are 0.
    #[test]
    fn regression_headers_frame_reserved_bits() {
        let h = FrameHeader {
            codec: Codec::Raw,
            flags: 0,
            raw_len: 1,
            stored_len: 1,
            checksum: 0,
            frame_id: 0,
        };
        for (at, v) in [(5, 4u8), (5, 0x80), (6, 1), (7, 0x40)] {
            let mut b = h.encode();
            b[at] = v;
            let c = crate::format::checksum(&b[..28]) as u32;
            b[28..].copy_from_slice(&c.to_le_bytes());
            assert!(
                FrameHeader::decode(&b, "v", 0).is_err(),
                "byte {at} = {v:#x}"
            );
        }
    }

    #[test]
    fn size_and_roundtrip() {
        let h = FrameHeader {
            codec: Codec::LzExt3,
            flags: FLAG_GPU,
            raw_len: 100,
            stored_len: 50,
            checksum: 0x1234,
            frame_id: 3,
        };
        let b = h.encode();
        assert_eq!(b.len(), FrameHeader::SIZE);
        assert_eq!(FrameHeader::decode(&b, "v", 0).unwrap(), h);
        for i in 0..FrameHeader::SIZE {
            let mut bad = b;
            bad[i] ^= 0x10;
            assert!(
                FrameHeader::decode(&bad, "v", 0).is_err(),
                "flip at {i} accepted"
            );
        }
    }
}
