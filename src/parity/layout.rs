//! Parity volume header: the first bytes of every `NAME.pNNN`, then the parity stripes.
//!
//! ```text
//! off  size   field
//! 0    8      magic "CLCPAR\0\x01"  (43 4c 43 50 41 52 00 01)
//! 8    2      parity_version u16 = 1
//! 10   2      flags u16 = 0 (reserved)
//! 12   4      parity_index u32, 1-based: NAME.p001 has 1
//! 16   4      parity_count P u32, 1 ..= 32768
//! 20   4      data_count N u32, number of data volumes, 1 ..= 32768
//! 24   16     archive_id, as in the data volumes' headers
//! 40   4      stripe_size B u32, a multiple of 64
//! 44   4      stripe_count S u32 = ceil(data_len / B)
//! 48   8      data_len L u64, length of the largest data volume
//! 56   8      fixed_check = xxh3(bytes 0..56)
//! 64   8N     data_lens: exact length of data volume 1 ..= N
//! ..   8NS    data_sums: for volume 1 ..= N, for stripe 0 .. S: xxh3 of that volume's stripe slice
//! ..   8PS    parity_sums: for parity volume 1 ..= P, for stripe 0 .. S: xxh3 of its stripe slice
//! ..   8      header_check = xxh3(every byte before it)
//! H    ...    stripe 0 .. S of this parity volume, back to back (stripe s at H + s × B)
//! ```
//!
//! Stripe `s` covers bytes `[s × B, min((s + 1) × B, L))` of every data volume; its slices are that range
//! zero-padded to `shard_len(s)` (the range's length rounded up to a multiple of 64; B for every stripe but
//! the last). All parity volumes of a set carry the same header but for `parity_index` and the two checks.

use crate::error::{Error, IoContext, Result};
use crate::format::bytes::{Cursor, PutLe};
use crate::format::checksum;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub const MAGIC: [u8; 8] = *b"CLCPAR\0\x01";
pub const VERSION: u16 = 1;
/// The most original or recovery shards used (reed-solomon-simd supports any mix up to 32768 each).
pub const MAX_SHARDS: u32 = 32768;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParityHeader {
    pub index: u32,
    pub parity_count: u32,
    pub data_count: u32,
    pub archive_id: [u8; 16],
    pub stripe_size: u32,
    pub stripe_count: u32,
    pub data_len: u64,
    /// `data_count` exact lengths.
    pub data_lens: Vec<u64>,
    /// `data_count × stripe_count` checksums, volume-major.
    pub data_sums: Vec<u64>,
    /// `parity_count × stripe_count` checksums, volume-major.
    pub parity_sums: Vec<u64>,
}

impl ParityHeader {
    /// Length of the fixed part (up to and including `fixed_check`).
    pub const FIXED: usize = 64;

    /// Total header length: fixed part, table and `header_check`.
    pub fn header_len(&self) -> u64 {
        table_len(self.data_count, self.parity_count, self.stripe_count) + Self::FIXED as u64 + 8
    }

    /// Byte length of stripe `s`'s slices (the data range rounded up to a multiple of 64).
    pub fn shard_len(&self, s: u32) -> usize {
        let b = u64::from(self.stripe_size);
        let start = u64::from(s) * b;
        let end = (start + b).min(self.data_len);
        (end.saturating_sub(start)).next_multiple_of(64) as usize
    }

    /// Offset of stripe `s` in a data volume (and, plus [`ParityHeader::len`], in a parity volume).
    pub fn stripe_start(&self, s: u32) -> u64 {
        u64::from(s) * u64::from(self.stripe_size)
    }

    /// Exact length of every parity volume.
    pub fn parity_file_len(&self) -> u64 {
        let last = self.stripe_count.saturating_sub(1);
        self.header_len() + self.stripe_start(last) + self.shard_len(last) as u64
    }

    pub fn data_sum(&self, vol: usize, s: u32) -> u64 {
        self.data_sums[vol * self.stripe_count as usize + s as usize]
    }

    pub fn parity_sum(&self, vol: usize, s: u32) -> u64 {
        self.parity_sums[vol * self.stripe_count as usize + s as usize]
    }

    /// The header bytes, with `parity_index` set to `index`.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.header_len().min(1 << 20) as usize);
        v.extend_from_slice(&MAGIC);
        v.put_u16(VERSION);
        v.put_u16(0);
        v.put_u32(self.index);
        v.put_u32(self.parity_count);
        v.put_u32(self.data_count);
        v.extend_from_slice(&self.archive_id);
        v.put_u32(self.stripe_size);
        v.put_u32(self.stripe_count);
        v.put_u64(self.data_len);
        let c = checksum(&v);
        v.put_u64(c);
        for x in self
            .data_lens
            .iter()
            .chain(&self.data_sums)
            .chain(&self.parity_sums)
        {
            v.put_u64(*x);
        }
        let c = checksum(&v);
        v.put_u64(c);
        v
    }

    /// Whether `other` describes the same parity set (everything equal but the index).
    pub fn same_set(&self, other: &ParityHeader) -> bool {
        ParityHeader {
            index: other.index,
            ..self.clone()
        } == *other
    }

    /// Reads and checks the header of the parity volume `f` (`file_len` bytes long); `what` names it.
    pub fn read(f: &File, file_len: u64, what: &Path) -> Result<ParityHeader> {
        let name = what.display().to_string();
        let mut fixed = [0u8; Self::FIXED];
        f.read_exact_at(&mut fixed, 0)
            .map_err(|_| Error::corrupt(&name, 0, "too short for a parity header"))?;
        let h = Self::decode_fixed(&fixed, &name)?;
        let table = table_len(h.data_count, h.parity_count, h.stripe_count);
        if table + 8 > file_len - Self::FIXED as u64 {
            return Err(Error::corrupt(
                &name,
                0,
                "parity header table runs past the end",
            ));
        }
        let mut rest = vec![0u8; table as usize + 8];
        f.read_exact_at(&mut rest, Self::FIXED as u64).ctx(what)?;
        let mut all = fixed.to_vec();
        all.extend_from_slice(&rest);
        Self::decode(&all, &name)
    }

    /// Parses a whole header (fixed part, table, check).
    pub fn decode(buf: &[u8], what: &str) -> Result<ParityHeader> {
        let fixed = buf
            .get(..Self::FIXED)
            .ok_or_else(|| Error::corrupt(what, 0, "too short for a parity header"))?;
        let mut h = Self::decode_fixed(fixed, what)?;
        let end = h.header_len() as usize - 8;
        let body = buf
            .get(..end + 8)
            .ok_or_else(|| Error::corrupt(what, 0, "parity header truncated"))?;
        let mut c = Cursor::new(&body[Self::FIXED..], what);
        let mut take = |n: usize| -> Result<Vec<u64>> { (0..n).map(|_| c.u64()).collect() };
        let (n, s, p) = (
            h.data_count as usize,
            h.stripe_count as usize,
            h.parity_count as usize,
        );
        h.data_lens = take(n)?;
        h.data_sums = take(n * s)?;
        h.parity_sums = take(p * s)?;
        let check = take(1)?[0];
        if check != checksum(&body[..end]) {
            return Err(Error::corrupt(
                what,
                end as u64,
                "parity header checksum mismatch",
            ));
        }
        if h.data_lens.iter().max() != Some(&h.data_len) {
            return Err(Error::corrupt(
                what,
                64,
                "data volume lengths disagree with data_len",
            ));
        }
        Ok(h)
    }

    /// Parses and checks the fixed 64 bytes; the table is left empty.
    pub(crate) fn decode_fixed(buf: &[u8], what: &str) -> Result<ParityHeader> {
        let bad = |off: u64, msg: &str| Error::corrupt(what, off, format!("parity header: {msg}"));
        let mut c = Cursor::new(buf, what);
        if c.array::<8>()? != MAGIC {
            return Err(bad(0, "not a clc parity volume (bad magic)"));
        }
        let version = c.u16()?;
        let flags = c.u16()?;
        let index = c.u32()?;
        let parity_count = c.u32()?;
        let data_count = c.u32()?;
        let archive_id = c.array::<16>()?;
        let stripe_size = c.u32()?;
        let stripe_count = c.u32()?;
        let data_len = c.u64()?;
        if c.u64()? != checksum(&buf[..56]) {
            return Err(bad(56, "checksum mismatch"));
        }
        if version != VERSION {
            return Err(bad(8, &format!("unknown parity version {version}")));
        }
        if flags != 0 {
            return Err(bad(10, &format!("unknown flags {flags:#x}")));
        }
        let counts_ok = (1..=MAX_SHARDS).contains(&parity_count)
            && (1..=MAX_SHARDS).contains(&data_count)
            && (1..=parity_count).contains(&index);
        if !counts_ok {
            return Err(bad(12, "volume counts out of range"));
        }
        if stripe_size == 0 || stripe_size % 64 != 0 || data_len == 0 {
            return Err(bad(40, "bad stripe size or data length"));
        }
        if u64::from(stripe_count) != data_len.div_ceil(u64::from(stripe_size)) {
            return Err(bad(44, "stripe count disagrees with the data length"));
        }
        Ok(ParityHeader {
            index,
            parity_count,
            data_count,
            archive_id,
            stripe_size,
            stripe_count,
            data_len,
            data_lens: Vec::new(),
            data_sums: Vec::new(),
            parity_sums: Vec::new(),
        })
    }
}

/// Bytes of the table (lengths and checksums) for these counts; u64 so hostile counts cannot overflow.
fn table_len(n: u32, p: u32, s: u32) -> u64 {
    let (n, p, s) = (u64::from(n), u64::from(p), u64::from(s));
    8 * (n + n * s + p * s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ParityHeader {
        ParityHeader {
            index: 2,
            parity_count: 2,
            data_count: 3,
            archive_id: [7; 16],
            stripe_size: 128,
            stripe_count: 3,
            data_len: 300,
            data_lens: vec![300, 250, 40],
            data_sums: (0..9).collect(),
            parity_sums: (100..106).collect(),
        }
    }

    #[test]
    fn size_roundtrip_and_geometry() {
        let h = sample();
        let b = h.encode();
        assert_eq!(b.len() as u64, h.header_len());
        assert_eq!(h.header_len(), 64 + 8 * (3 + 9 + 6) + 8);
        assert_eq!(ParityHeader::decode(&b, "p").unwrap(), h);
        assert_eq!((h.shard_len(0), h.shard_len(2)), (128, 64));
        assert_eq!(h.parity_file_len(), h.header_len() + 256 + 64);
        assert_eq!(h.data_sum(1, 2), 5);
        assert_eq!(h.parity_sum(1, 0), 103);
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let b = sample().encode();
        for i in 0..b.len() {
            let mut bad = b.clone();
            bad[i] ^= 0x20;
            assert!(
                ParityHeader::decode(&bad, "p").is_err(),
                "flip at {i} accepted"
            );
        }
        assert!(ParityHeader::decode(&b[..b.len() - 1], "p").is_err());
    }

    #[test]
    fn hostile_counts_do_not_allocate() {
        let mut h = sample();
        h.data_count = MAX_SHARDS;
        h.stripe_count = u32::MAX;
        h.data_len = u64::from(u32::MAX) * 128;
        let b = h.encode();
        // Only the fixed part is encoded meaningfully; decode must fail on length, not allocate.
        assert!(ParityHeader::decode(&b[..200], "p").is_err());
    }
}
