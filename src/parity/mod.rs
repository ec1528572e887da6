//! Parity volumes: `NAME.p001`, `NAME.p002`, … hold Reed–Solomon recovery data over the data volumes so
//! that up to P lost, truncated or corrupted data volumes (the last one, with the index, included) are
//! rebuilt bit-exact by `clc repair`. See `docs/FORMAT.md` section 9 and [`layout`].
//!
//! The data volumes are the original shards, zero-padded to the largest one's length and cut into stripes of
//! B bytes; each stripe is encoded on its own, so memory stays at (N + P) × B. Every slice of every volume
//! has an xxh3 in the header, so damage is located per stripe: a stripe is recoverable when its damaged data
//! slices are no more than its intact parity slices.
//!
//! * [`create`] writes the parity set after a pack;
//! * [`health`] checks data and parity volumes against a parity header (verify, and repair's first step);
//! * [`repair`] rebuilds what the parity allows, never overwriting a good volume;
//! * [`salvage`] reports intact frames of an archive that has no parity.

pub mod create;
pub mod health;
pub mod layout;
pub mod repair;
pub mod salvage;

pub use create::{create, SetPlace};
pub use health::{check, check_with, Health};
pub use repair::{repair, repair_with};

use crate::error::{Error, Result};
use crate::volumes::Vol;

/// A parity volume of `base` whose set covers data volumes after `last` (so a newer generation's last
/// data volume is missing), if there is one.
pub fn covers_past(base: &std::path::Path, last: u32) -> Option<std::path::PathBuf> {
    for (_, p) in crate::volumes::list_parity(base) {
        let Ok(f) = crate::volumes::open_vol(&p) else {
            continue;
        };
        let mut b = [0u8; layout::ParityHeader::FIXED];
        let n = f.size().map_or(0, |s| s.min(b.len() as u64) as usize);
        if f.read_exact_at(&mut b[..n], 0).is_err() {
            continue;
        }
        let Ok(h) = layout::ParityHeader::decode_fixed(&b[..n], "") else {
            continue;
        };
        if u64::from(h.first_data) + u64::from(h.data_count) - 1 > u64::from(last) {
            return Some(p);
        }
    }
    None
}

/// Stripe size when memory allows: large enough for sequential I/O, small enough to bound memory.
pub const STRIPE_MAX: u32 = 1 << 20;
/// The smallest stripe size chosen for many volumes.
pub const STRIPE_MIN: u32 = 64 << 10;
/// Memory budget for one stripe of every volume, (N + P) × B.
pub const STRIPE_BUDGET: u64 = 256 << 20;

/// P = ceil(percent × N / 100), at least 1; refused when reed-solomon-simd cannot code N + P shards.
pub fn parity_count(percent: u32, data_count: usize) -> Result<u32> {
    let p = (u64::from(percent) * data_count as u64)
        .div_ceil(100)
        .max(1);
    let ok = data_count >= 1
        && data_count as u64 <= u64::from(layout::MAX_SHARDS)
        && p <= u64::from(layout::MAX_SHARDS)
        && reed_solomon_simd::ReedSolomonEncoder::supports(data_count, p as usize);
    if !ok {
        return Err(Error::Usage(format!(
            "parity: {p} parity volumes over {data_count} data volumes is more than Reed–Solomon \
             (at most 32768 + 32768 shards) allows; use a larger --volume-size"
        )));
    }
    Ok(p as u32)
}

/// Stripe size for N data and P parity volumes whose largest is `data_len` bytes: at most 1 MiB, lower so
/// that (N + P) × B stays within 256 MiB (but not below 64 KiB), and never past the data rounded up to 64.
pub fn stripe_size(n: u32, p: u32, data_len: u64) -> u32 {
    let fit = STRIPE_BUDGET / u64::from(n + p).max(1);
    let b = fit
        .clamp(u64::from(STRIPE_MIN), u64::from(STRIPE_MAX))
        .min(data_len.next_multiple_of(64).max(64));
    (b / 64 * 64) as u32
}

/// Reads what exists of `buf.len()` bytes at `off` (stopping at the end of the file) and zeroes the rest.
/// Returns how many bytes came from the file.
pub(crate) fn read_padded(f: &Vol, off: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf[n..].fill(0);
    Ok(n)
}

/// The data bytes of stripe `s` of a data volume `len` bytes long: how many of the slice's bytes are real.
pub(crate) fn real_bytes(h: &layout::ParityHeader, len: u64, s: u32) -> usize {
    let start = h.stripe_start(s);
    (len.saturating_sub(start)).min(h.shard_len(s) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_counts() {
        assert_eq!(parity_count(10, 7).unwrap(), 1);
        assert_eq!(parity_count(10, 11).unwrap(), 2);
        assert_eq!(parity_count(30, 10).unwrap(), 3);
        assert_eq!(parity_count(100, 1).unwrap(), 1);
        assert_eq!(parity_count(1, 1).unwrap(), 1);
        assert!(parity_count(100, 40000).is_err());
    }

    #[test]
    fn stripe_sizes_are_bounded_multiples_of_64() {
        assert_eq!(stripe_size(7, 1, 16 << 20), 1 << 20);
        assert_eq!(stripe_size(2, 1, 1000), 1024);
        assert_eq!(stripe_size(2, 1, 1), 64);
        let b = stripe_size(1000, 100, 2 << 30);
        assert!(b % 64 == 0 && u64::from(b) * 1100 <= STRIPE_BUDGET && b >= STRIPE_MIN);
    }
}
