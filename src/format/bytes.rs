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

    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

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
    fn cursor_rejects_reads_past_the_end() {
        let mut c = Cursor::new(&[1, 0, 0], "t");
        assert_eq!(c.u16().unwrap(), 1);
        assert!(c.u16().is_err());
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], "t");
        assert!(c.count(1).is_err());
    }
}
