//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`), as plain functions so that the same checks
//! also run on stable in `cargo test` (`tests/fuzz_regress.rs`, over the committed seeds, the regressions
//! and generated inputs). Each takes arbitrary bytes and panics only when clc breaks a promise: a parser
//! or decoder panicking, a round trip that loses bytes, a reader that returns more or fewer bytes than the
//! index promises. Errors on hostile input are the expected outcome, not a failure.
//!
//! Lengths are capped so that one input costs bounded time and memory: raw lengths at 1 MiB, and at most
//! [`READ_BUDGET`] bytes read through an opened archive.
//!
//! [`index_grow`] is structure-aware the other way: instead of changing bytes it grows counts (xattrs,
//! files sharing a content, contents sharing refs, refs per content, hardlinks, depth), keeping the
//! archive valid, so that what costs memory or time by a count rather than by bytes is reached; its
//! fuzz target checks the memory used against the archive's size (docs/RELIABILITY.md).

use crate::archive::Archive;
use crate::codec::{lz_ext3, lz_ext3_sb, EncodeParams};
use crate::format::footer::Footer;
use crate::format::frame::FrameHeader;
use crate::format::index::{EntryKind, Index};
use crate::format::volume::VolumeHeader;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Largest raw length the decode target asks for.
pub const MAX_RAW: usize = 1 << 20;
/// Bytes read through `Archive::read_at` per input, at most.
pub const READ_BUDGET: u64 = 32 << 20;

/// `lz_ext3_decode`: a raw length from the first 3 bytes (capped at [`MAX_RAW`]), the rest as a block.
pub fn lz_ext3_decode(data: &[u8]) {
    let Some((head, block)) = data.split_first_chunk::<3>() else {
        return;
    };
    let raw_len = (u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize) % (MAX_RAW + 1);
    if let Ok(out) = lz_ext3::decompress(block, raw_len) {
        assert_eq!(out.len(), raw_len, "decoded length differs from raw_len");
        // The generic entry point agrees with the codec's own.
        let again = crate::codec::decode(crate::codec::Codec::LzExt3, block, raw_len);
        assert_eq!(again.ok().as_ref(), Some(&out), "codec::decode disagrees");
    }
}

/// `lz_ext3_sb_decode`: a raw length from the first 3 bytes (capped at [`MAX_RAW`]), the rest as an
/// LZ_EXT3_SB frame (table and sequences). The serial decoder, the parallel one (3 threads) and
/// `codec::decode` must agree: all refuse, or all give the same `raw_len` bytes.
pub fn lz_ext3_sb_decode(data: &[u8]) {
    let Some((head, frame)) = data.split_first_chunk::<3>() else {
        return;
    };
    let raw_len = (u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize) % (MAX_RAW + 1);
    let serial = lz_ext3_sb::decompress_serial(frame, raw_len);
    let parallel = lz_ext3_sb::decompress_parallel(frame, raw_len, 3);
    let generic = crate::codec::decode(crate::codec::Codec::LzExt3Sb, frame, raw_len);
    match (&serial, &parallel, &generic) {
        (Ok(a), Ok(b), Ok(c)) => {
            assert_eq!(a.len(), raw_len, "decoded length differs from raw_len");
            assert!(a == b && a == c, "decoders disagree on the bytes");
        }
        (Err(_), Err(_), Err(_)) => {}
        _ => panic!(
            "decoders disagree: serial {}, parallel {}, codec::decode {}",
            serial.is_ok(),
            parallel.is_ok(),
            generic.is_ok()
        ),
    }
}

/// `lz_ext3_roundtrip`: encoder params from the first 3 bytes, the rest compressed and decompressed.
pub fn lz_ext3_roundtrip(data: &[u8]) {
    let Some((head, src)) = data.split_first_chunk::<3>() else {
        return;
    };
    let p = EncodeParams {
        // 10..=18 keeps the table small; the clamp to 10..=24 is tested by passing 0 and 255 too.
        hash_log: match head[0] {
            0 | 255 => head[0] as u32,
            b => 10 + b as u32 % 9,
        },
        candidates: head[1] as u32 % 18,
        good_enough: head[2] as u32 * 3,
        ..EncodeParams::default()
    };
    let packed = lz_ext3::compress(src, &p);
    assert!(
        packed.len() <= lz_ext3::max_compressed_len(src.len()),
        "encoded {} bytes past the bound for {}",
        packed.len(),
        src.len()
    );
    let back = lz_ext3::decompress(&packed, src.len()).expect("own encoding must decode");
    assert!(back == src, "round trip changed the bytes");
    // The documented guarantees: deterministic whatever the encoder did before, and the last
    // LAST_LITERALS bytes are literals (a decoder that stops early would still see them).
    let mut enc = lz_ext3::Encoder::new(&p);
    let mut scratch = Vec::new();
    enc.compress(&src[src.len() / 2..], &mut scratch);
    let mut again = Vec::new();
    enc.compress(src, &mut again);
    assert!(again == packed, "encoder output depends on its history");
    // The same bytes as LZ_EXT3_SB, sub-blocks of 4 KiB to 64 KiB: both decoders give them back.
    let q = EncodeParams {
        sb_log: 12 + head[0] as u32 % 5,
        ..p
    };
    let sb = lz_ext3_sb::compress(src, &q);
    assert!(
        sb.len() <= lz_ext3_sb::max_compressed_len(src.len(), q.sb_log),
        "LZ_EXT3_SB: encoded {} bytes past the bound for {}",
        sb.len(),
        src.len()
    );
    let back = lz_ext3_sb::decompress_serial(&sb, src.len()).expect("own LZ_EXT3_SB must decode");
    assert!(back == src, "LZ_EXT3_SB round trip changed the bytes");
    let par = lz_ext3_sb::decompress_parallel(&sb, src.len(), 3).expect("parallel decode");
    assert!(par == src, "LZ_EXT3_SB parallel decode changed the bytes");
}

/// `index_decode`: `Index::decode` + `validate`; a valid index also re-encodes to an equal index and
/// every cross-reference the readers index without checks is in range.
pub fn index_decode(data: &[u8]) {
    let Ok(idx) = Index::decode(data, "fuzz") else {
        return;
    };
    let back = Index::decode(&idx.encode(), "fuzz").expect("re-encoded index must decode");
    assert!(back == idx, "index changed through encode/decode");
    let vols = idx.frames.iter().map(|f| f.volume.0).max().unwrap_or(1);
    let Ok(idx) = idx.validate("fuzz", vols) else {
        return;
    };
    // What the readers rely on: a file's pieces cover its size in order, each within its frame.
    for (id, _) in idx.entries_with_ids() {
        let Some(c) = idx.content_of(id) else {
            continue;
        };
        let mut pos = 0u64;
        for p in idx.pieces(c, 0) {
            assert_eq!(p.file_offset, pos, "pieces out of order");
            let f = idx.frame(p.frame).expect("a validated piece names a frame");
            assert!(u64::from(p.at) + u64::from(p.len) <= u64::from(f.raw_len));
            pos += u64::from(p.len);
        }
        assert_eq!(pos, idx.data_size(id), "pieces do not cover the file");
    }
}

/// `headers`: the three fixed structures. The first byte picks the structure and whether the input's
/// check field is recomputed first (so the fuzzer gets past the checksum to the fields behind it); what
/// decodes must re-encode to the same bytes.
pub fn headers(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut b = rest.to_vec();
    let reseal = sel & 1 == 1;
    match sel / 2 % 3 {
        0 => {
            b.resize(b.len().max(VolumeHeader::SIZE), 0);
            if reseal {
                let c = crate::format::checksum(&b[..32]);
                b[32..40].copy_from_slice(&c.to_le_bytes());
            }
            if let Ok(h) = VolumeHeader::decode(&b, "fuzz") {
                assert!(h.encode()[..] == b[..VolumeHeader::SIZE], "volume header");
            }
        }
        1 => {
            b.resize(b.len().max(FrameHeader::SIZE), 0);
            if reseal {
                let c = crate::format::checksum(&b[..28]) as u32;
                b[28..32].copy_from_slice(&c.to_le_bytes());
            }
            if let Ok(h) = FrameHeader::decode(&b, "fuzz", 0) {
                assert!(h.encode()[..] == b[..FrameHeader::SIZE], "frame header");
            }
        }
        _ => {
            b.resize(Footer::SIZE, 0);
            if reseal {
                b[..8].copy_from_slice(&crate::format::footer::MAGIC2);
                b[72..].copy_from_slice(&crate::format::footer::MAGIC);
                let c = crate::format::checksum(&b[..64]);
                b[64..72].copy_from_slice(&c.to_le_bytes());
            }
            // The file length: where the index would end, or anything.
            let off = u64::from_le_bytes(b[32..40].try_into().expect("8 bytes"));
            let len = u64::from_le_bytes(b[40..48].try_into().expect("8 bytes"));
            for file_len in [off.wrapping_add(len).wrapping_add(80), rest.len() as u64] {
                if let Ok(f) = Footer::decode(&b, "fuzz", file_len) {
                    assert!(f.encode()[..] == b[..], "footer");
                }
            }
        }
    }
}

/// `open_archive`: the bytes as `NAME.001` (or, when the first byte is odd, split into `.001` and `.002`
/// at a point taken from the next two bytes), then [`exercise`].
pub fn open_archive(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let vols: Vec<&[u8]> = if sel & 1 == 1 && rest.len() >= 2 {
        let at = u16::from_le_bytes([rest[0], rest[1]]) as usize % (rest.len() - 1);
        let body = &rest[2..];
        let at = at.min(body.len());
        vec![&body[..at], &body[at..]]
    } else {
        vec![rest]
    };
    let dir = TempDir::new();
    let first = write_volumes(&dir.0, &vols);
    exercise(&first);
}

/// `open_archive_mutate`: a valid small archive (made once by `pack`), changed by the input read as
/// 4-byte mutations, then [`exercise`]. Mutations of the raw index and of frame headers are resealed
/// (checksums, zlib, footer) so that they reach the code behind the checksums.
///
/// Each mutation `[op, a, b, x]`, with `at = a | b << 8 | (op >> 3) << 16`:
/// * `op % 8 == 0`: xor `x` into the volumes' bytes (all of them, end to end) at `at`;
/// * `1`: xor `x` into the raw index at `at` (resealed);
/// * `2`: xor `x` into byte `b % 28` of frame header `a` (its check resealed);
/// * `3`: write the little-endian value `VALUES[x]` (4 or 8 bytes, by `b`) into the raw index at `a`-ish;
/// * `4`: cut volume `a` to `b / 256` of its length;
/// * `5`: swap volumes `a` and `b`;
/// * `6`, `7`: like `1` (the index is where most cross-references live).
pub fn open_archive_mutate(data: &[u8]) {
    let vols = mutate_base(data);
    let dir = TempDir::new();
    let refs: Vec<&[u8]> = vols.iter().map(Vec::as_slice).collect();
    let first = write_volumes(&dir.0, &refs);
    exercise(&first);
}

/// The volumes [`open_archive_mutate`] makes of `data` (for tests that look at one case closely).
pub fn mutate_base(data: &[u8]) -> Vec<Vec<u8>> {
    let base = base_archive();
    let mut vols = base.volumes.clone();
    let mut raw = base.raw_index.clone();
    let mut index_changed = false;
    for m in data.chunks_exact(4) {
        let (op, a, b, x) = (m[0], m[1] as usize, m[2] as usize, m[3]);
        let at = a | b << 8 | ((op >> 3) as usize) << 16;
        match op % 8 {
            0 => {
                let total: usize = vols.iter().map(Vec::len).sum();
                let mut at = at % total.max(1);
                for v in vols.iter_mut() {
                    if at < v.len() {
                        v[at] ^= x;
                        break;
                    }
                    at -= v.len();
                }
            }
            2 => {
                let Some(&(vol, off)) = base.frame_headers.get(a % base.frame_headers.len().max(1))
                else {
                    continue;
                };
                let Some(h) = vols[vol].get_mut(off..off + FrameHeader::SIZE) else {
                    continue;
                };
                h[b % 28] ^= x;
                let c = crate::format::checksum(&h[..28]) as u32;
                h[28..32].copy_from_slice(&c.to_le_bytes());
            }
            3 => {
                const VALUES: [u64; 12] = [
                    0,
                    1,
                    2,
                    0xff,
                    0xffff,
                    0xffff_ffff,
                    u64::MAX,
                    1 << 40,
                    (16 << 20) + 1,
                    1 << 31,
                    u64::MAX - 31,
                    0x8000_0000_0000_0000,
                ];
                let v = VALUES[x as usize % VALUES.len()].to_le_bytes();
                let n = if b & 1 == 0 { 4 } else { 8 };
                let at = (at >> 1) % raw.len().max(1);
                let end = (at + n).min(raw.len());
                raw[at..end].copy_from_slice(&v[..end - at]);
                index_changed = true;
            }
            4 => {
                let i = a % vols.len();
                let keep = vols[i].len() * b / 256;
                vols[i].truncate(keep);
            }
            5 => {
                let (i, j) = (a % vols.len(), b % vols.len());
                vols.swap(i, j);
            }
            _ => {
                if !raw.is_empty() {
                    let i = at % raw.len();
                    raw[i] ^= x;
                    index_changed = true;
                }
            }
        }
    }
    if index_changed {
        reseal_index(&mut vols, &raw);
    }
    vols
}

/// `index_grow`: the base archive's index grown by the input read as 4-byte operations, resealed and
/// written, then [`exercise`]. See [`grow_base`].
pub fn index_grow(data: &[u8]) {
    exercise_volumes(&grow_base(data));
}

/// Heap that opening, listing, reading (within [`READ_BUDGET`]) and verifying an archive of
/// `archive_bytes` may use, at most: the bound docs/RELIABILITY.md states, which the `index_grow` target
/// and tests/bounds.rs check. An index inflates to at most 64 × its stored bytes + 16 MiB
/// (`footer::max_index_raw`), and its tables take at most [`MEMORY_PER_INDEX_BYTE`] bytes per raw
/// byte; the rest is the decoding budget (frames in flight, read buffers).
pub fn memory_bound(archive_bytes: u64) -> u64 {
    let raw = crate::format::footer::max_index_raw(archive_bytes);
    MEMORY_PER_INDEX_BYTE * raw + MEMORY_BUDGET
}

/// See [`memory_bound`].
pub const MEMORY_PER_INDEX_BYTE: u64 = 12;
/// See [`memory_bound`].
pub const MEMORY_BUDGET: u64 = 64 << 20;

/// The heap check that the `index_grow` fuzz target and tests/bounds.rs share: a counting allocator
/// (each binary installs [`heap::Counting`] as its `#[global_allocator]`) and [`heap::check_volumes`],
/// which exercises an archive and asserts its heap against [`memory_bound`].
#[allow(unsafe_code)]
pub mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// The system allocator, counting the bytes live now and the most live since the last reset.
    pub struct Counting;

    static NOW: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    /// One measurement at a time (the test harness runs tests on threads).
    static ONE: Mutex<()> = Mutex::new(());

    // SAFETY: every call is passed to the system allocator unchanged; only counters are added.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(l) };
            if !p.is_null() {
                CALLS.fetch_add(1, Relaxed);
                PEAK.fetch_max(NOW.fetch_add(l.size(), Relaxed) + l.size(), Relaxed);
            }
            p
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            unsafe { System.dealloc(p, l) };
            NOW.fetch_sub(l.size(), Relaxed);
        }
    }

    /// What one check measured.
    #[derive(Clone, Copy, Debug)]
    pub struct Used {
        /// The archive's bytes, all volumes.
        pub size: u64,
        /// The most heap live above what was live before, while exercising it.
        pub heap: u64,
        /// [`super::memory_bound`] of `size`.
        pub bound: u64,
        pub took: Duration,
    }

    /// Writes `vols`, runs [`super::exercise`] on them, and panics, naming `what`, when the heap it
    /// used exceeds [`super::memory_bound`] of the archive's size. Panics too when [`Counting`] is not
    /// the global allocator (nothing counted), so that a binary that forgot it cannot pass.
    pub fn check_volumes(what: &str, vols: &[Vec<u8>]) -> Used {
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        let size: u64 = vols.iter().map(|v| v.len() as u64).sum();
        let calls = CALLS.load(Relaxed);
        let before = NOW.load(Relaxed);
        PEAK.store(before, Relaxed);
        let t = Instant::now();
        super::exercise_volumes(vols);
        let took = t.elapsed();
        assert!(
            CALLS.load(Relaxed) > calls,
            "{what}: no allocation counted: install clc::fuzzing::heap::Counting as #[global_allocator]"
        );
        let heap = PEAK.load(Relaxed).saturating_sub(before) as u64;
        let bound = super::memory_bound(size);
        assert!(
            heap <= bound,
            "{what}: {heap} bytes of heap for an archive of {size} bytes (bound {bound})"
        );
        Used {
            size,
            heap,
            bound,
            took,
        }
    }

    /// [`check_volumes`] on the archive [`super::grow_base`] makes of `data`: the `index_grow` check.
    pub fn check_grown(what: &str, data: &[u8]) -> Used {
        check_volumes(what, &super::grow_base(data))
    }
}

/// Writes `vols` as `NAME.001`, … in a fresh directory and runs [`exercise`] on them.
pub fn exercise_volumes(vols: &[Vec<u8>]) {
    let dir = TempDir::new();
    let refs: Vec<&[u8]> = vols.iter().map(Vec::as_slice).collect();
    let first = write_volumes(&dir.0, &refs);
    exercise(&first);
}

/// Most operations one `index_grow` input applies, and most items they add in all.
pub const GROW_OPS: usize = 8;
pub const GROW_ITEMS: usize = 1 << 20;

/// The volumes [`index_grow`] makes of `data`: the base archive (see [`base_archive`]) whose index gets,
/// for each operation `[op, a, b, e]` with `n = 2^(e % 18)` (the total held to [`GROW_ITEMS`]), new
/// entries under `zz/oK/` (K the operation's position, so the index stays sorted):
/// * `op % 8 == 0`: `n` xattrs, on as many empty files as Linux's limits need (`b` odd: the first
///   name empty, which no index may hold);
/// * `1`: `n` files sharing content `a`;
/// * `2`: `n` new contents, each a copy of content `a`'s ref range (shared refs), a file each (contents
///   made by earlier operations count: content `a % count` of those there now);
/// * `3`: one content of `n` refs alternating between chunks `a` and `b`, shared by `n` files;
/// * `4`: `n` refs alternating between chunks `a` and `b`, and `n` contents covering their prefixes;
/// * `5`: one file and `n` hardlinks to it;
/// * `6`: a directory `n` levels deep (at most 4 096);
/// * `7`: `n` symlinks whose targets are `b × 16` bytes long.
///
/// Everything stays valid (refs, chunks and frames are the base's), so the archive opens unless a
/// bound refuses it; the frames are untouched.
pub fn grow_base(data: &[u8]) -> Vec<Vec<u8>> {
    use crate::format::index::{
        check_xattrs, ChunkId, ChunkRef, Content, Entry, EntryKind, MAX_XATTRS, NONE,
    };
    let base = base_archive();
    let mut vols = base.volumes.clone();
    let Ok(mut idx) = Index::decode(&base.raw_index, "fuzz base") else {
        return vols;
    };
    let chunks = idx.chunks.len().max(1);
    let mut budget = GROW_ITEMS;
    let dir = |idx: &mut Index, p: String| {
        idx.entries
            .push(Entry::new(p.into_bytes(), EntryKind::Dir, 0o755))
    };
    let file = |idx: &mut Index, p: String, link: u64| {
        let mut e = Entry::new(p.into_bytes(), EntryKind::File, 0o644);
        if link != NONE {
            e.size = idx.contents[link as usize].size;
            e.link = link;
        }
        idx.entries.push(e);
    };
    // `n` refs alternating between two chunks, appended; returns (first ref, total length).
    let run = |idx: &mut Index, n: usize, a: usize, b: usize| {
        let first = idx.refs.len() as u64;
        let mut pos = 0u64;
        for i in 0..n {
            let c = if i % 2 == 0 { a % chunks } else { b % chunks };
            idx.refs.push(ChunkRef {
                file_offset: pos,
                chunk: ChunkId(c as u64),
            });
            pos += u64::from(idx.chunks.get(c).map_or(0, |c| c.len));
        }
        (first, pos)
    };
    dir(&mut idx, "zz".into());
    for (k, m) in data.chunks_exact(4).take(GROW_OPS).enumerate() {
        let (op, a, b, e) = (m[0], m[1] as usize, m[2] as usize, m[3]);
        let n = (1usize << (e % 18)).min(budget);
        // Contents made by earlier operations count: `2` can share the refs of a content `3` made.
        let contents = idx.contents.len().max(1);
        budget -= n;
        let at = format!("zz/o{k:02}");
        dir(&mut idx, at.clone());
        let name = |i: usize| format!("{at}/{i:08}");
        match op % 8 {
            0 => {
                // As many files as it takes, each with as many as Linux allows of names `u.NNNN`.
                let per = MAX_XATTRS.min(crate::format::index::XATTR_LIST_MAX / 7);
                for f in 0..n.div_ceil(per) {
                    file(&mut idx, name(f), NONE);
                    let x: Vec<(Vec<u8>, Vec<u8>)> = (0..per.min(n - f * per))
                        .map(|i| {
                            let name = match (b % 2, f, i) {
                                (1, 0, 0) => Vec::new(),
                                _ => format!("u.{i:04}").into_bytes(),
                            };
                            (name, vec![b'v'; a % 8])
                        })
                        .collect();
                    debug_assert!(b % 2 == 1 || check_xattrs(&x).is_ok());
                    idx.entries.last_mut().expect("just pushed").xattrs = x;
                }
            }
            1 => {
                let c = (a % contents) as u64;
                for i in 0..n {
                    file(&mut idx, name(i), c);
                }
            }
            2 => {
                let ct = idx.contents[a % contents];
                for i in 0..n {
                    idx.contents.push(ct);
                    let c = idx.contents.len() as u64 - 1;
                    file(&mut idx, name(i), c);
                }
            }
            3 => {
                let (first, size) = run(&mut idx, n, a, b);
                idx.contents.push(Content {
                    size,
                    first_ref: first,
                    ref_count: n as u64,
                });
                let c = idx.contents.len() as u64 - 1;
                for i in 0..n {
                    file(&mut idx, name(i), c);
                }
            }
            4 => {
                let (first, _) = run(&mut idx, n, a, b);
                for i in 0..n {
                    let r = idx.refs[first as usize + i];
                    let len = idx.chunks.get(r.chunk.at()).map_or(0, |c| u64::from(c.len));
                    idx.contents.push(Content {
                        size: r.file_offset + len,
                        first_ref: first,
                        ref_count: i as u64 + 1,
                    });
                    let c = idx.contents.len() as u64 - 1;
                    file(&mut idx, name(i), c);
                }
            }
            5 => {
                file(&mut idx, name(0), (a % contents) as u64);
                let to = idx.entries.len() as u64 - 1;
                let size = idx.entries[to as usize].size;
                for i in 1..=n {
                    let mut h = Entry::new(name(i).into_bytes(), EntryKind::Hardlink, 0o644);
                    (h.link, h.size) = (to, size);
                    idx.entries.push(h);
                }
            }
            6 => {
                let mut p = at.clone();
                for _ in 0..n.min(4096) {
                    p.push_str("/d");
                    dir(&mut idx, p.clone());
                }
            }
            _ => {
                for i in 0..n {
                    let mut l = Entry::new(name(i).into_bytes(), EntryKind::Symlink, 0o777);
                    l.target = vec![b't'; b * 16];
                    l.size = l.target.len() as u64;
                    idx.entries.push(l);
                }
            }
        }
    }
    reseal_index(&mut vols, &idx.encode());
    vols
}

/// What every archive target does once the volumes are on disk: open, list every entry, read every file
/// fully through `read_at` with the archive as the frame source (within [`READ_BUDGET`]), and verify.
/// Errors are fine; a reader that returns bytes past the end, or too few without an error, is not.
pub fn exercise(first: &Path) {
    let Ok(ar) = Archive::open(first) else {
        return;
    };
    let _ = crate::report::info_json(&ar);
    // What `clc mount` builds before serving.
    let _ = crate::mount::inodes::Inodes::build(ar.index());
    let mut budget = READ_BUDGET;
    let mut buf = vec![0u8; 256 << 10];
    for (id, e) in ar.index().entries_with_ids() {
        let _ = crate::report::list_line(ar.index(), id);
        let _ = crate::report::list_json(ar.index(), id);
        if ar.index().content_of(id).is_none() {
            continue;
        }
        let size = ar.index().data_size(id);
        let mut off = 0u64;
        while off < size && budget > 0 {
            match ar.read_at(id, off, &mut buf, &ar) {
                Ok(0) => panic!("read_at returned 0 at {off} of {size} without an error"),
                Ok(n) => {
                    assert!(
                        n <= buf.len() && off + n as u64 <= size,
                        "read past the end"
                    );
                    off += n as u64;
                    budget = budget.saturating_sub(n as u64);
                }
                Err(_) => break,
            }
        }
        if e.kind == EntryKind::Dir {
            assert_eq!(ar.read_at(id, 0, &mut buf, &ar).ok(), Some(0));
        }
    }
    let _ = crate::verify::verify(&ar);
}

/// How many contents the base archive's index has (the first content an `index_grow` operation makes has
/// this number).
pub fn base_archive_contents() -> usize {
    Index::decode(&base_archive().raw_index, "fuzz base").map_or(0, |i| i.contents.len())
}

/// The base archive of [`open_archive_mutate`], its raw index, and where its frame headers are.
pub struct BaseArchive {
    pub volumes: Vec<Vec<u8>>,
    pub raw_index: Vec<u8>,
    /// (volume position, offset of the header) of every frame.
    pub frame_headers: Vec<(usize, usize)>,
}

/// Packs a small tree once per process (two volumes: a directory, text and noise files, a duplicate, an
/// empty file, a symlink and a hardlink; 16K frames, 1K–16K chunks) and keeps its bytes.
pub fn base_archive() -> &'static BaseArchive {
    static BASE: OnceLock<BaseArchive> = OnceLock::new();
    BASE.get_or_init(|| make_base().expect("packing the fuzz base archive"))
}

fn make_base() -> crate::Result<BaseArchive> {
    let dir = TempDir::new();
    let src = dir.0.join("src");
    make_base_tree(&src)?;
    let cfg = crate::Config {
        force_cpu: true,
        frame_size: 16 << 10,
        volume_size: 64 << 10,
        chunk_min: 1 << 10,
        chunk_avg: 4 << 10,
        chunk_max: 16 << 10,
        max_worker_threads: 1,
        adaptive_frames: false,
        // Four LZ_EXT3_SB sub-blocks per frame: mutations reach the start table and its check.
        subblock_size: 4 << 10,
        ..crate::Config::default()
    };
    let out = dir.0.join("base");
    let opts = crate::pack::PackOptions {
        src: src.clone(),
        out: out.clone(),
        force: true,
        progress: false,
        ..Default::default()
    };
    let st = crate::pack::pack(&cfg, &opts, None, &crate::diag::Warnings::new(true))?;
    seal_base(&st.volumes)
}

/// The base tree: a directory, text and noise files, a duplicate, an empty file, a symlink and a
/// hardlink, with fixed mtimes.
fn make_base_tree(src: &Path) -> crate::Result<()> {
    std::fs::create_dir_all(src.join("d/e")).map_err(|e| crate::Error::io(src, e))?;
    let text: Vec<u8> = (0..30_000u32)
        .flat_map(|i| format!("line {} of {}\n", i % 97, i % 13).into_bytes())
        .take(40_000)
        .collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..70_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let files: [(&str, &[u8]); 5] = [
        ("d/text.txt", &text),
        ("d/e/copy.txt", &text),
        ("noise.bin", &noise),
        ("empty", b""),
        ("small", b"hello, fuzz\n"),
    ];
    for (p, b) in files {
        let p = src.join(p);
        std::fs::write(&p, b).map_err(|e| crate::Error::io(&p, e))?;
    }
    let link = src.join("d/link");
    std::os::unix::fs::symlink("../small", &link).map_err(|e| crate::Error::io(&link, e))?;
    let hard = src.join("hard");
    std::fs::hard_link(src.join("small"), &hard).map_err(|e| crate::Error::io(&hard, e))?;
    // Fixed mtimes (and below, a fixed source_root and archive id): the base bytes, and so every saved
    // fuzz input, do not depend on when or where the tree was made.
    for p in [
        "d/text.txt",
        "d/e/copy.txt",
        "noise.bin",
        "empty",
        "small",
        "d/link",
        "d/e",
        "d",
    ] {
        let p = src.join(p);
        crate::sys::set_mtime(&p, 1_600_000_000, 0).map_err(|e| crate::Error::io(&p, e))?;
    }
    Ok(())
}

/// The volumes as saved fuzz inputs expect them: fixed params, source root and archive id.
fn seal_base(paths: &[PathBuf]) -> crate::Result<BaseArchive> {
    let mut volumes = paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| crate::Error::io(p, e)))
        .collect::<crate::Result<Vec<_>>>()?;
    let ar = Archive::open(&paths[0])?;
    let mut index = ar.index().clone().into_raw();
    // The params of the clc that made the saved inputs: later keys would move every byte after them
    // (`created` and `root_mtime*` would also make the bytes depend on when and where the base was made).
    index.params.retain(|(k, _)| {
        ![
            "adaptive_frames",
            "small_frame_size",
            "large_frame_size",
            "created",
            "root_mtime",
            "root_mtime_nsec",
        ]
        .contains(&k.as_str())
    });
    for (k, v) in index.params.iter_mut() {
        if k == "source_root" {
            *v = "fuzz-base".into();
        }
    }
    let raw_index = index.encode();
    const ID: [u8; 16] = *b"clc-fuzz-base-id";
    for (i, v) in volumes.iter_mut().enumerate() {
        // Version 3: the base's index is resealed without a paged tree (a version 5 blob ends in one).
        let h = VolumeHeader {
            version: 3,
            number: i as u32 + 1,
            archive_id: ID,
        };
        v[..VolumeHeader::SIZE].copy_from_slice(&h.encode());
    }
    reseal_index(&mut volumes, &raw_index);
    let last = volumes.last_mut().expect("at least one volume");
    let at = last.len() - Footer::SIZE;
    let mut f = Footer::decode(&last[at..], "fuzz base", last.len() as u64)?;
    f.archive_id = ID;
    f.version = 3;
    last[at..].copy_from_slice(&f.encode());
    let frame_headers = ar
        .index()
        .frames()
        .iter()
        .map(|f| (f.volume.at(), f.offset as usize - FrameHeader::SIZE))
        .collect();
    Ok(BaseArchive {
        volumes,
        raw_index,
        frame_headers,
    })
}

/// Replaces the index blob and footer of the last volume with `raw` (zlib) and a footer that matches it.
fn reseal_index(vols: &mut [Vec<u8>], raw: &[u8]) {
    let Some(last) = vols.last_mut() else {
        return;
    };
    let Some(tail) = last.len().checked_sub(Footer::SIZE).map(|at| &last[at..]) else {
        return;
    };
    let Ok(mut f) = Footer::decode(tail, "fuzz", last.len() as u64) else {
        return;
    };
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(raw).expect("writing to a Vec cannot fail");
    let blob = z.finish().expect("writing to a Vec cannot fail");
    last.truncate(f.index_offset as usize);
    f.index_stored_len = blob.len() as u64;
    f.index_raw_len = raw.len() as u64;
    f.index_checksum = crate::format::checksum(raw);
    last.extend_from_slice(&blob);
    last.extend_from_slice(&f.encode());
}

fn write_volumes(dir: &Path, vols: &[&[u8]]) -> PathBuf {
    let base = dir.join("fz");
    for (i, v) in vols.iter().enumerate() {
        let p = crate::volumes::data_path(&base, crate::ids::VolumeNo(i as u32 + 1));
        std::fs::write(&p, v).expect("writing a fuzz volume");
    }
    crate::volumes::data_path(&base, crate::ids::VolumeNo(1))
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = crate::diag::temp_dir().join(format!("clc-fuzz-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a fuzz temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `lz_ext3e_decode`: a raw length from the first 3 bytes (capped at [`MAX_RAW`]), the rest as an
/// LZ_EXT3E frame (codec 4, docs/FORMAT.md 2.4).
pub fn lz_ext3e_decode(data: &[u8]) {
    let Some((head, block)) = data.split_first_chunk::<3>() else {
        return;
    };
    let raw_len = (u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize) % (MAX_RAW + 1);
    let serial = crate::codec::lz_ext3e::decompress(block, raw_len);
    if let Ok(out) = &serial {
        assert_eq!(out.len(), raw_len, "decoded length differs from raw_len");
    }
    // The parallel decoder accepts exactly the frames the serial one does, with the same bytes.
    let parallel = crate::codec::lz_ext3e::decompress_parallel(block, raw_len);
    match (&serial, &parallel) {
        (Ok(a), Ok(b)) => assert!(a == b, "parallel decode differs from serial"),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "serial and parallel decoders disagree: {:?} vs {:?}",
            serial.as_ref().map(|v| v.len()),
            parallel.as_ref().map(|v| v.len())
        ),
    }
}

/// `zstd_decode`: a raw length from the first 3 bytes (capped at [`MAX_RAW`]), the rest as a ZSTD frame's
/// stored bytes (codec 5, docs/FORMAT.md 2.5), through `codec::decode` as a reader calls it. What decodes
/// is exactly `raw_len` bytes, and encodes again to a frame that decodes to the same bytes.
pub fn zstd_decode(data: &[u8]) {
    use crate::codec::{self, Codec};
    let Some((head, block)) = data.split_first_chunk::<3>() else {
        return;
    };
    let raw_len = (u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize) % (MAX_RAW + 1);
    if let Ok(out) = codec::decode(Codec::Zstd, block, raw_len) {
        assert_eq!(out.len(), raw_len, "decoded length differs from raw_len");
        let again = codec::encode(Codec::Zstd, &out, &codec::EncodeParams::default());
        let back = codec::decode(Codec::Zstd, &again, raw_len).expect("own encoding must decode");
        assert!(back == out, "re-encoded frame decodes to other bytes");
    }
}

/// `lz_ext3e_roundtrip`: encoder options from the first 3 bytes, the rest compressed and decompressed;
/// the encoding is deterministic whatever the encoder compressed before.
pub fn lz_ext3e_roundtrip(data: &[u8]) {
    use crate::codec::lz_ext3e::{self, Encoder, Options};
    let Some((head, src)) = data.split_first_chunk::<3>() else {
        return;
    };
    let p = EncodeParams {
        hash_log: 10 + head[0] as u32 % 9,
        candidates: 1 + (head[0] >> 4) as u32 % 4,
        good_enough: 8 + head[2] as u32,
        ..EncodeParams::default()
    };
    let o = Options {
        // 12..=17: small sub-blocks so short inputs still cross boundaries.
        subblock_log: 12 + head[1] as u32 % 6,
        huffman: [0, 1, 0x3f, head[2] & 0x3f][(head[1] >> 3) as usize % 4],
        frame_tables: head[1] & 0x20 == 0,
        own_tables: head[1] & 0x40 == 0,
        repeat: head[1] & 0x80 == 0,
        hash_bytes: 4 + head[2] as u32 % 3,
        dfast: head[2] & 0x80 != 0,
        min_gain_log: head[0] as u32 >> 6,
    };
    let mut enc = Encoder::new(&p, &o);
    let mut packed = Vec::new();
    let bd = enc.compress(src, &mut packed);
    assert_eq!(bd.total(), packed.len() as u64, "breakdown does not add up");
    let back = lz_ext3e::decompress(&packed, src.len()).expect("own encoding must decode");
    assert!(back == src, "round trip changed the bytes");
    let par = lz_ext3e::decompress_parallel(&packed, src.len()).expect("parallel decode");
    assert!(par == src, "parallel decode changed the bytes");
    let mut again = Vec::new();
    enc.compress(&src[src.len() / 2..], &mut Vec::new());
    enc.compress(src, &mut again);
    assert!(again == packed, "encoder output depends on its history");
}

/// `tree_pages`: the paged tree of format versions 5-8 (FORMAT.md 12). The first byte picks the piece: a
/// trailer (its check recomputed, so the fuzzer reaches the fields; its magic and version from the
/// selector: version 5's zlib pages or 8's LZ4 ones), a directory checked against a trailer that fits it,
/// a page holding the records a second byte gives, or a stored page of either codec decoded and parsed;
/// what parses must hold together (a directory's pages find their records, a page's records all read
/// back, a decoded page has exactly its raw length).
pub fn tree_pages(data: &[u8]) {
    use crate::format::tree::{unpack, Directory, Page, PageCodec, Trailer};
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let version = if sel & 0x80 == 0 { 5 } else { 8 };
    match sel % 4 {
        0 => {
            let mut b = rest.to_vec();
            b.resize(Trailer::SIZE, 0);
            let magic = match sel & 0x40 {
                0 => crate::format::tree::TRAILER_MAGIC,
                _ => crate::format::tree::TRAILER_MAGIC_LZ4,
            };
            b[..8].copy_from_slice(&magic);
            let c = crate::format::checksum(&b[..40]);
            b[40..48].copy_from_slice(&c.to_le_bytes());
            let blob_len = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"))
                .wrapping_add(u64::from(u32::from_le_bytes(
                    b[24..28].try_into().expect("4 bytes"),
                )))
                .wrapping_add(Trailer::SIZE as u64);
            if let Ok(t) = Trailer::decode(&b, blob_len, version, "fuzz") {
                assert!(t.encode()[..] == b[..], "trailer");
                assert!(t.pages == PageCodec::for_version(version), "page codec");
            }
        }
        1 => {
            // A trailer whose directory starts where the pages of `rest` would end.
            let t = Trailer {
                pages: PageCodec::for_version(version),
                index_len: 1,
                dir_offset: u64::from(rest.first().copied().unwrap_or(0)) * 64 + 1,
                dir_stored: 0,
                dir_raw: rest.len() as u32,
                dir_checksum: 0,
            };
            if let Ok(d) = Directory::decode(rest, &t, "fuzz") {
                assert!(d.encode() == rest, "directory");
                for r in [0, d.records / 2, d.records - 1] {
                    let (k, range) = d.page_of(r).expect("a record below `records` has a page");
                    assert!(range.contains(&r) && d.pages[k].first == range.start);
                }
            }
        }
        2 => {
            let Some((&n, raw)) = rest.split_first() else {
                return;
            };
            let (first, records) = (u64::from(n % 4), u64::from(n % 4) + u64::from(n / 4) + 1);
            if let Ok(p) = Page::parse(raw.to_vec(), first..records, records + 3, "fuzz") {
                for r in first..records {
                    assert!(p.record(r).is_some(), "record {r} of a page that parsed");
                }
                assert!(p.record(records).is_none());
            }
        }
        _ => {
            // A stored page of `raw_len` (two bytes) raw bytes: decoding it against any checksum is an
            // error or those bytes; an LZ4 block that decodes is checked against its own checksum, so
            // that the parse behind it is reached.
            let Some((len, stored)) = rest.split_first_chunk::<2>() else {
                return;
            };
            let raw_len = u32::from(u16::from_le_bytes(*len));
            let codec = PageCodec::for_version(version);
            let _ = unpack(codec, stored, raw_len, 0, "fuzz", 0);
            let mut probe = vec![0u8; raw_len as usize];
            let decoded = match codec {
                PageCodec::Lz4 => lz4_flex::block::decompress_into(stored, &mut probe)
                    .ok()
                    .filter(|&n| n == probe.len())
                    .map(|_| probe),
                PageCodec::Zlib => None,
            };
            if let Some(raw) = decoded {
                let sum = crate::format::checksum(&raw);
                let back = unpack(codec, stored, raw_len, sum, "fuzz", 0).expect("it decoded");
                assert!(back == raw, "page decoded twice differs");
                let _ = Page::parse(back, 0..2, 3, "fuzz");
            }
        }
    }
}
