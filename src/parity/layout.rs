//! Parity volume header: the first bytes of every `NAME.pNNN`, then parity stripes (FORMAT.md 9.2).
//!
//! ```text
//! off  size   field
//! 0    8      magic "CLCPAR\0\x01"  (43 4c 43 50 41 52 00 01)
//! 8    2      parity_version u16 = 2 (1: the layout of format version 1, below)
//! 10   2      flags u16 = 0 (reserved)
//! 12   4      parity_index u32: the volume's number (NAME.p001 has 1)
//! 16   4      parity_count P u32 (recovery shards), 1 ..= 32768
//! 20   4      data_count N u32, number of data volumes of the set, 1 ..= 32768
//! 24   16     archive_id, as in the data volumes' headers
//! 40   4      stripe_size B u32, a multiple of 64
//! 44   4      stripe_count S u32 = ceil(data_len / B)
//! 48   8      data_len L u64, length of the largest data volume of the set
//! 56   4      first_data u32: the set's first data volume
//! 60   4      first_parity u32: the set's first parity volume
//! 64   4      stripes_per_file K u32, 1 ..= S
//! 68   4      reserved u32 = 0
//! 72   8      fixed_check = xxh3(bytes 0..72)
//! 80   8N     data_lens: exact length of each data volume of the set
//! ..   8NS    data_sums: for each data volume, for stripe 0 .. S: xxh3 of that volume's stripe slice
//! ..   8PS    parity_sums: for shard 0 .. P, for stripe 0 .. S: xxh3 of its stripe slice
//! ..   8      header_check = xxh3(every byte before it)
//! H    ...    the slices of one shard for K stripes (the last file of a shard: fewer), back to back
//! ```
//!
//! Version 1 has no bytes 56..72 (its fixed_check is at 56, the table at 64) and means first_data =
//! first_parity = 1, K = S. Stripe `s` covers bytes `[s × B, min((s + 1) × B, L))` of every data volume;
//! its slices are that range zero-padded to `shard_len(s)` (the range's length rounded up to a multiple of
//! 64; B for every stripe but the last). Shard `j`'s slices of stripes `r × K …` are in parity volume
//! `first_parity + j × R + r` (R = ceil(S / K)). All parity volumes of a set carry the same header but
//! for `parity_index` and the two checks.

use crate::diag::escape_path;
use crate::error::{Error, IoContext, Result};
use crate::format::bytes::{Cursor, PutLe};
use crate::format::checksum;
use std::path::Path;

pub const MAGIC: [u8; 8] = *b"CLCPAR\0\x01";
/// The version written; version 1 is read too.
pub const VERSION: u16 = 2;
/// The most original or recovery shards used (reed-solomon-simd supports any mix up to 32768 each).
pub const MAX_SHARDS: u32 = 32768;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParityHeader {
    /// 1 or 2.
    pub version: u16,
    /// The volume's number (`NAME.p<index>`).
    pub index: u32,
    pub parity_count: u32,
    pub data_count: u32,
    pub archive_id: [u8; 16],
    pub stripe_size: u32,
    pub stripe_count: u32,
    pub data_len: u64,
    /// The set's first data volume and first parity volume.
    pub first_data: u32,
    pub first_parity: u32,
    /// Stripes per parity volume (K).
    pub stripes_per_file: u32,
    /// `data_count` exact lengths.
    pub data_lens: Vec<u64>,
    /// `data_count × stripe_count` checksums, volume-major.
    pub data_sums: Vec<u64>,
    /// `parity_count × stripe_count` checksums, volume-major.
    pub parity_sums: Vec<u64>,
}

impl ParityHeader {
    /// Length of the fixed part (up to and including `fixed_check`) of a version 2 header; a version 1
    /// header's is [`ParityHeader::FIXED_V1`].
    pub const FIXED: usize = 80;
    pub const FIXED_V1: usize = 64;

    fn fixed_len(&self) -> u64 {
        if self.version == 1 {
            Self::FIXED_V1 as u64
        } else {
            Self::FIXED as u64
        }
    }

    /// Total header length: fixed part, table and `header_check`.
    pub fn header_len(&self) -> u64 {
        table_len(self.data_count, self.parity_count, self.stripe_count) + self.fixed_len() + 8
    }

    /// Parity volumes per shard (R).
    pub fn files_per_shard(&self) -> u32 {
        self.stripe_count.div_ceil(self.stripes_per_file.max(1))
    }

    /// Parity volumes in the set (P × R).
    pub fn file_count(&self) -> u32 {
        self.parity_count * self.files_per_shard()
    }

    /// The number of the parity volume holding shard `j`'s slice of stripe `s`.
    pub fn file_of(&self, j: u32, s: u32) -> u32 {
        self.first_parity + j * self.files_per_shard() + s / self.stripes_per_file.max(1)
    }

    /// The shard and stripe range of parity volume `index` (a number of this set).
    pub fn slot_of(&self, index: u32) -> (u32, std::ops::Range<u32>) {
        let k = index - self.first_parity;
        let (r, per) = (self.files_per_shard(), self.stripes_per_file.max(1));
        let first = (k % r) * per;
        (k / r, first..(first + per).min(self.stripe_count))
    }

    /// Where stripe `s`'s slice lies in its parity volume.
    pub fn slice_offset(&self, s: u32) -> u64 {
        let per = self.stripes_per_file.max(1);
        self.header_len() + u64::from(s % per) * u64::from(self.stripe_size)
    }

    /// The exact length of parity volume `index` of this set.
    pub fn file_len(&self, index: u32) -> u64 {
        let (_, stripes) = self.slot_of(index);
        let n = stripes.len() as u64;
        match stripes.last() {
            Some(last) => {
                self.header_len()
                    + (n - 1) * u64::from(self.stripe_size)
                    + self.shard_len(last) as u64
            }
            None => self.header_len(),
        }
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

    /// Bytes of all the set's parity volumes.
    pub fn parity_bytes(&self) -> u64 {
        (self.first_parity..self.first_parity + self.file_count())
            .map(|n| self.file_len(n))
            .sum()
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
        v.put_u16(self.version);
        v.put_u16(0);
        v.put_u32(self.index);
        v.put_u32(self.parity_count);
        v.put_u32(self.data_count);
        v.extend_from_slice(&self.archive_id);
        v.put_u32(self.stripe_size);
        v.put_u32(self.stripe_count);
        v.put_u64(self.data_len);
        if self.version != 1 {
            v.put_u32(self.first_data);
            v.put_u32(self.first_parity);
            v.put_u32(self.stripes_per_file);
            v.put_u32(0);
        }
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
    pub fn read(f: &crate::volumes::Vol, file_len: u64, what: &Path) -> Result<ParityHeader> {
        let name = escape_path(what);
        let mut fixed = vec![0u8; Self::FIXED.min(file_len as usize)];
        f.read_exact_at(&mut fixed, 0)
            .map_err(|_| Error::corrupt(&name, 0, "too short for a parity header"))?;
        let h = Self::decode_fixed(&fixed, &name)?;
        let fl = h.fixed_len();
        fixed.truncate(fl as usize);
        let table = table_len(h.data_count, h.parity_count, h.stripe_count);
        if table + 8 > file_len.saturating_sub(fl) {
            return Err(Error::corrupt(
                &name,
                0,
                "parity header table runs past the end",
            ));
        }
        let mut rest = vec![0u8; table as usize + 8];
        f.read_exact_at(&mut rest, fl).ctx(what)?;
        let mut all = fixed.to_vec();
        all.extend_from_slice(&rest);
        Self::decode(&all, &name)
    }

    /// Parses a whole header (fixed part, table, check).
    pub fn decode(buf: &[u8], what: &str) -> Result<ParityHeader> {
        let mut h = Self::decode_fixed(buf, what)?;
        let fl = h.fixed_len() as usize;
        let end = h.header_len() as usize - 8;
        let body = buf
            .get(..end + 8)
            .ok_or_else(|| Error::corrupt(what, 0, "parity header truncated"))?;
        let mut c = Cursor::new(&body[fl..], what);
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
                fl as u64,
                "data volume lengths disagree with data_len",
            ));
        }
        Ok(h)
    }

    /// Parses and checks the fixed part (64 bytes of version 1, 80 of version 2) at the start of
    /// `buf`; the table is left empty.
    pub fn decode_fixed(buf: &[u8], what: &str) -> Result<ParityHeader> {
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
        let (first_data, first_parity, per, reserved) = match version {
            1 => (1, 1, stripe_count, 0),
            2 => (c.u32()?, c.u32()?, c.u32()?, c.u32()?),
            v => return Err(bad(8, &format!("unknown parity version {v}"))),
        };
        let at = c.pos();
        if c.u64()? != checksum(&buf[..at]) {
            return Err(bad(at as u64, "checksum mismatch"));
        }
        if flags != 0 || reserved != 0 {
            return Err(bad(10, &format!("unknown flags {flags:#x}")));
        }
        let counts_ok = (1..=MAX_SHARDS).contains(&parity_count)
            && (1..=MAX_SHARDS).contains(&data_count)
            && first_data >= 1
            && first_parity >= 1;
        if !counts_ok {
            return Err(bad(12, "volume counts out of range"));
        }
        if stripe_size == 0 || stripe_size % 64 != 0 || data_len == 0 {
            return Err(bad(40, "bad stripe size or data length"));
        }
        if u64::from(stripe_count) != data_len.div_ceil(u64::from(stripe_size)) {
            return Err(bad(44, "stripe count disagrees with the data length"));
        }
        if per == 0 || per > stripe_count {
            return Err(bad(64, "stripes per file out of range"));
        }
        let files = u64::from(parity_count) * u64::from(stripe_count.div_ceil(per));
        let last = u64::from(first_parity) + files - 1;
        if index < first_parity || u64::from(index) > last || last > u64::from(u32::MAX) {
            return Err(bad(12, "volume number outside its set"));
        }
        if u64::from(first_data) + u64::from(data_count) - 1 > u64::from(u32::MAX) {
            return Err(bad(56, "data volumes out of range"));
        }
        Ok(ParityHeader {
            version,
            index,
            parity_count,
            data_count,
            archive_id,
            stripe_size,
            stripe_count,
            data_len,
            first_data,
            first_parity,
            stripes_per_file: per,
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
            version: 2,
            first_data: 1,
            first_parity: 1,
            stripes_per_file: 3,
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
        assert_eq!(h.header_len(), 80 + 8 * (3 + 9 + 6) + 8);
        assert_eq!(ParityHeader::decode(&b, "p").unwrap(), h);
        assert_eq!((h.shard_len(0), h.shard_len(2)), (128, 64));
        assert_eq!(h.file_len(2), h.header_len() + 256 + 64);
        // Version 1: 64 fixed bytes.
        let v1 = ParityHeader {
            version: 1,
            ..h.clone()
        };
        assert_eq!(v1.header_len(), 64 + 8 * (3 + 9 + 6) + 8);
        assert_eq!(ParityHeader::decode(&v1.encode(), "p").unwrap(), v1);
        // Two stripes per file: shard 1 of 2 sets stripes 0-1 in volume 3, stripe 2 in volume 4.
        let two = ParityHeader {
            stripes_per_file: 2,
            first_parity: 1,
            ..h.clone()
        };
        assert_eq!((two.files_per_shard(), two.file_count()), (2, 4));
        assert_eq!(
            (two.file_of(1, 0), two.file_of(1, 1), two.file_of(1, 2)),
            (3, 3, 4)
        );
        assert_eq!(two.slot_of(4), (1, 2..3));
        assert_eq!(two.slice_offset(1), two.header_len() + 128);
        assert_eq!(two.file_len(4), two.header_len() + 64);
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
