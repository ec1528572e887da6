//! Little-endian encoding helpers and a bounds-checked cursor over untrusted bytes.

use crate::error::{Error, Result};

/// Appends little-endian values to a buffer.
pub trait PutLe {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_i64(&mut self, v: i64);
    /// u32 length followed by the bytes.
    fn put_bytes(&mut self, b: &[u8]);
    /// LEB128: 7 bits a byte, low first, the top bit set on every byte but the last.
    fn put_var(&mut self, v: u64);
}

impl PutLe for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_bytes(&mut self, b: &[u8]) {
        self.put_u32(b.len() as u32);
        self.extend_from_slice(b);
    }
    fn put_var(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.push(v as u8);
    }
}

/// A cursor over untrusted bytes: every read is bounds-checked and reports `what` and the offset.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'a str,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], what: &'a str) -> Self {
        Cursor { buf, pos: 0, what }
    }

    /// What the bytes are, for errors.
    pub fn what(&self) -> &'a str {
        self.what
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The bytes read since position `from`.
    pub fn since(&self, from: usize) -> &'a [u8] {
        &self.buf[from.min(self.pos)..self.pos]
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// An error at the current offset.
    pub fn err(&self, msg: impl Into<String>) -> Error {
        Error::corrupt(self.what, self.pos as u64, msg)
    }

    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err(format!("needs {n} bytes, {} left", self.remaining())))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    #[inline]
    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.arr::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.arr()
    }
    /// A LEB128 value ([`PutLe::put_var`]): at most 10 bytes, no bits above 64, no needless bytes.
    /// (Read straight from the slice: a paged tree's records are mostly these, docs/BENCHMARKS.md 5.6.)
    #[inline]
    pub fn var(&mut self) -> Result<u64> {
        // Most values of a tree's records are below 128: one byte, no loop.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let mut v = 0u64;
        for (i, &b) in rest.iter().take(10).enumerate() {
            if (i == 9 && b > 1) || (i > 0 && b == 0) {
                self.pos += i;
                return Err(self.err("malformed variable-length number"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.pos += i + 1;
                return Ok(v);
            }
        }
        if rest.len() < 10 {
            self.pos = self.buf.len();
            return Err(self.err("needs 1 bytes, 0 left"));
        }
        self.pos += 10;
        Err(self.err("malformed variable-length number"))
    }

    /// A LEB128 length, then that many bytes.
    pub fn var_bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.var()?;
        self.take(usize::try_from(n).map_err(|_| self.err("length too large"))?)
    }

    /// u32 length, then that many bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// A u64 element count, checked so that `count * min_elem_size` fits in what is left, before any
    /// allocation is sized by it.
    pub fn count(&mut self, min_elem_size: usize) -> Result<usize> {
        let n = self.u64()?;
        let fits = (n as u128) * (min_elem_size.max(1) as u128) <= self.remaining() as u128;
        if !fits {
            return Err(self.err(format!(
                "count {n} exceeds the remaining {} bytes",
                self.remaining()
            )));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_length_numbers_round_trip_and_refuse_malformed_bytes() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            b.put_var(v);
            let mut c = Cursor::new(&b, "t");
            assert_eq!(c.var().unwrap(), v);
            assert_eq!(c.remaining(), 0);
        }
        // Needless trailing zero group, bits above 64, and a run without an end.
        for bad in [&[0x80, 0x00][..], &[0xff; 9][..], &[0xff; 11][..]] {
            assert!(Cursor::new(bad, "t").var().is_err(), "{bad:?}");
        }
        let mut b = vec![0xff; 9];
        b.push(0x02);
        assert!(Cursor::new(&b, "t").var().is_err());
    }

    #[test]
    fn cursor_rejects_reads_past_the_end() {
        let mut c = Cursor::new(&[1, 0, 0], "t");
        assert_eq!(c.u16().unwrap(), 1);
        assert!(c.u16().is_err());
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], "t");
        assert!(c.count(1).is_err());
    }
}
