//! The hash-bucket match finder shared by the LZ encoders: LZ_EXT3 (lz_ext3.rs), LZ_EXT3_SB
//! (lz_ext3_sb/encode.rs) and LZ_EXT3E's parsers (lz_parse.rs, lz_dfast.rs). One copy of the table
//! layout, the hash, the candidate search and the byte comparisons; each encoder keeps its own loop
//! (acceleration, lazy step, what it writes), and LZ_EXT3's rules are documented in lz_ext3.rs.
//!
//! A table slot is a u32: `tag << 24 | position mod 2^24`, 0 an empty slot; a bucket holds the newest `K`
//! positions, newest first. `H` (4 ..= 8) is the bytes hashed and the shortest match taken from the
//! table. Everything here is `#[inline(always)]`: it is the inside of the encoders' hot loops, and the
//! constants `K` and `H` let the compiler unroll the bucket and fold the shifts.

#![forbid(unsafe_code)]

/// The position bits of a slot (the 16 MiB window).
pub const POS_MASK: u32 = (1 << 24) - 1;
/// How far a match found at `ip`, reading from `mpos`, extends backwards: while the bytes before both
/// agree, never below `anchor` (the first literal not yet emitted) nor the input's start.
#[inline]
pub fn back_len(src: &[u8], anchor: usize, ip: usize, mpos: usize) -> usize {
    let mut n = 0;
    while ip - n > anchor && mpos - n > 0 && src[ip - n - 1] == src[mpos - n - 1] {
        n += 1;
    }
    n
}

/// The bucket table for an input of `len` bytes: 2^`hash_log` buckets of `candidates` slots, but no
/// more buckets than the next power of two of `len` (at least 2^10), cleared; grows `table` when it is
/// too small and keeps it for the next input. Returns the table and its log2 bucket count.
pub fn fresh_table(
    table: &mut Vec<u32>,
    hash_log: u32,
    candidates: usize,
    len: usize,
) -> (&mut [u32], u32) {
    let need_log = usize::BITS - len.saturating_sub(1).leading_zeros();
    let log = hash_log.min(need_log.max(10));
    let slots = candidates << log;
    if table.len() < slots {
        // Zeroed below: nothing to copy.
        *table = vec![0; slots];
    }
    let table = &mut table[..slots];
    table.fill(0);
    (table, log)
}

#[inline(always)]
pub fn read_u64(s: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(s[i..i + 8].try_into().unwrap())
}

#[inline(always)]
pub fn read_u32(s: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(s[i..i + 4].try_into().unwrap())
}

/// Multiplicative hash of the `H` low bytes of `v`: the bucket (`log` bits) and an 8-bit tag (the next
/// bits, shifted to the slot's top byte), stored beside each position so most false candidates are
/// rejected without reading the input at the candidate (a cache miss).
#[inline(always)]
pub fn hash<const H: u32>(v: u64, log: u32) -> (usize, u32) {
    let h = (v << (64 - 8 * H)).wrapping_mul(0x9E37_79B1_85EB_CA87);
    (
        (h >> (64 - log)) as usize,
        ((h >> (56 - log)) as u32 & 0xff) << 24,
    )
}

/// Whether the `H` low bytes of `a` and `b` are equal.
#[inline(always)]
pub fn same_prefix<const H: u32>(a: u64, b: u64) -> bool {
    (a ^ b) << (64 - 8 * H) == 0
}

/// Number of equal bytes at `a` and `b` (`a < b`), stopping at `limit` for `b`.
#[inline(always)]
pub fn common_len(s: &[u8], a: usize, b: usize, limit: usize) -> usize {
    let mut i = 0;
    while b + i + 8 <= limit {
        let x = read_u64(s, a + i) ^ read_u64(s, b + i);
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while b + i < limit && s[a + i] == s[b + i] {
        i += 1;
    }
    i
}

/// The `K` slots of bucket `h`.
#[inline(always)]
pub fn bucket_of<const K: usize>(table: &mut [u32], h: usize) -> &mut [u32; K] {
    (&mut table[h * K..h * K + K]).try_into().unwrap()
}

/// Inserts position `p` at the front of its bucket (shift-insert keeps the bucket newest first).
#[inline(always)]
pub fn insert<const K: usize>(bucket: &mut [u32; K], p: u32) {
    if K > 1 {
        bucket.copy_within(0..K - 1, 1);
    }
    bucket[0] = p;
}

/// Enters position `p` (its first 8 bytes read from `src`) in the table, without a search.
#[inline(always)]
pub fn enter<const K: usize, const H: u32>(src: &[u8], table: &mut [u32], log: u32, p: usize) {
    let (h, tag) = hash::<H>(read_u64(src, p), log);
    insert(bucket_of::<K>(table, h), tag | (p as u32 & POS_MASK));
}

/// Looks up the bucket of position `ip`, returns the best match as `(position, length)` (length 0: none
/// of at least `H` bytes), and inserts `ip` into the bucket. Matches end at or before `limit` and reach
/// back at most `max_off` bytes.
///
/// All candidates are tried newest first; only a strictly longer match replaces the best (ties go to the
/// nearest), and the search stops at a match of `good_enough` bytes.
#[inline(always)]
pub fn find_and_insert<const K: usize, const H: u32>(
    src: &[u8],
    table: &mut [u32],
    log: u32,
    ip: usize,
    limit: usize,
    good_enough: usize,
    max_off: usize,
) -> (usize, usize) {
    let v = read_u64(src, ip);
    let (h, tag) = hash::<H>(v, log);
    let bucket = bucket_of::<K>(table, h);
    let mut best_len = 0usize;
    let mut best_pos = 0usize;
    for &e in bucket.iter() {
        if e & !POS_MASK != tag {
            continue;
        }
        // The slot holds the position mod 2^24: the one within the window. Empty slots and positions
        // older than the window give wrong candidates, which the byte comparison rejects.
        let off = ((ip as u32).wrapping_sub(e) & POS_MASK) as usize;
        if off == 0 || off > ip || off > max_off {
            continue;
        }
        let c = ip - off;
        // A candidate can only win if it also matches the byte just past the best so far.
        if best_len != 0 && (ip + best_len >= limit || src[c + best_len] != src[ip + best_len]) {
            continue;
        }
        if !same_prefix::<H>(read_u64(src, c), v) {
            continue;
        }
        let hb = H as usize;
        let len = hb + common_len(src, c + hb, ip + hb, limit);
        if len > best_len {
            best_len = len;
            best_pos = c;
            if len >= good_enough {
                break;
            }
        }
    }
    insert(bucket, tag | (ip as u32 & POS_MASK));
    (best_pos, best_len)
}
