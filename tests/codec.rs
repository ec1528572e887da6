//! LZ_EXT3 codec: roundtrips over sizes, data kinds and params; the format invariants the encoder promises
//! (16 MiB offsets used, last 12 bytes literals); hostile input to the decoder; comparison with LZ4.

use clc::codec::lz_ext3::{self, Encoder, LAST_LITERALS, MAX_OFFSET};
use clc::codec::{self, Codec, EncodeParams};
use proptest::prelude::*;

/// A small deterministic generator (xorshift64*), so the tests need no seed files.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn random(n: usize, seed: u64) -> Vec<u8> {
    Rng(seed | 1).bytes(n)
}

/// Words from a small vocabulary with punctuation and numbers, like source code or prose.
fn text(n: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the", "archive", "volume", "frame", "index", "of", "and", "fn", "let", "mut", "return",
        "self", "match", "offset", "length", "=", "{", "}", "(", ")", ";", "\n", "    ",
        "compress", "data",
    ];
    let mut r = Rng(seed | 1);
    let mut v = Vec::with_capacity(n + 16);
    while v.len() < n {
        if r.below(10) == 0 {
            v.extend_from_slice(r.below(100_000).to_string().as_bytes());
        } else {
            v.extend_from_slice(WORDS[r.below(WORDS.len())].as_bytes());
        }
        v.push(b' ');
    }
    v.truncate(n);
    v
}

/// A short pattern repeated with the odd changed byte.
fn repetitive(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let pat = r.bytes(37);
    let mut v: Vec<u8> = pat.iter().copied().cycle().take(n).collect();
    for _ in 0..n / 500 {
        let i = r.below(n);
        v[i] = r.next() as u8;
    }
    v
}

/// Long runs of single bytes.
fn runs(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let b = r.next() as u8;
        let len = 1 + r.below(5000);
        v.extend(std::iter::repeat_n(b, len.min(n - v.len())));
    }
    v
}

/// One parsed sequence: literal count, then (offset, match length) unless it is the last one.
#[derive(Debug)]
struct Seq {
    lits: usize,
    matched: Option<(usize, usize)>,
}

/// Parses a well-formed block (test helper: panics on malformed input).
fn parse(block: &[u8]) -> Vec<Seq> {
    fn ext(b: &[u8], i: &mut usize) -> usize {
        let mut n = 0;
        loop {
            let x = b[*i];
            *i += 1;
            n += x as usize;
            if x != 255 {
                return n;
            }
        }
    }
    let mut seqs = Vec::new();
    let mut i = 0;
    while i < block.len() {
        let t = block[i];
        i += 1;
        let mut lits = (t >> 4) as usize;
        if lits == 15 {
            lits += ext(block, &mut i);
        }
        i += lits;
        if i == block.len() {
            seqs.push(Seq {
                lits,
                matched: None,
            });
            break;
        }
        let off = block[i] as usize | (block[i + 1] as usize) << 8 | (block[i + 2] as usize) << 16;
        i += 3;
        let mut m = (t & 15) as usize;
        if m == 15 {
            m += ext(block, &mut i);
        }
        seqs.push(Seq {
            lits,
            matched: Some((off, m + 4)),
        });
    }
    seqs
}

/// Compresses, checks the roundtrip and the encoder's promises, returns the block.
fn check(data: &[u8], p: &EncodeParams) -> Vec<u8> {
    let block = lz_ext3::compress(data, p);
    let back = lz_ext3::decompress(&block, data.len()).expect("decodes");
    assert!(
        back == data,
        "roundtrip differs (len {}, {p:?})",
        data.len()
    );
    let seqs = parse(&block);
    if data.is_empty() {
        assert!(block.is_empty());
        return block;
    }
    let last = seqs.last().expect("a non-empty block has a sequence");
    assert!(last.matched.is_none(), "last sequence has a match");
    assert!(
        last.lits >= LAST_LITERALS.min(data.len()),
        "only {} final literals of {}",
        last.lits,
        data.len()
    );
    for s in &seqs {
        if let Some((off, _)) = s.matched {
            assert!((1..=MAX_OFFSET).contains(&off));
        }
    }
    assert!(block.len() <= lz_ext3::max_compressed_len(data.len()));
    block
}

fn max_offset(block: &[u8]) -> usize {
    parse(block)
        .iter()
        .filter_map(|s| s.matched.map(|m| m.0))
        .max()
        .unwrap_or(0)
}

const SIZES: &[usize] = &[
    0,
    1,
    2,
    4,
    11,
    12,
    13,
    15,
    16,
    17,
    19,
    20,
    21,
    24,
    31,
    32,
    33,
    63,
    64,
    65,
    100,
    255,
    256,
    270,
    1000,
    4096,
    65535,
    65536,
    65537,
    1 << 20,
    3 << 20,
];

#[test]
fn roundtrip_sizes_and_kinds() {
    let p = EncodeParams::default();
    for &n in SIZES {
        for (seed, gen) in [random, text, repetitive, runs].into_iter().enumerate() {
            check(&gen(n, seed as u64 + n as u64), &p);
        }
        check(&vec![0u8; n], &p);
    }
}

#[test]
fn roundtrip_through_codec_api() {
    let data = text(300_000, 7);
    let p = EncodeParams::default();
    let enc = codec::encode(Codec::LzExt3, &data, &p);
    assert_eq!(
        codec::decode(Codec::LzExt3, &enc, data.len()).unwrap(),
        data
    );
    assert!(codec::decode(Codec::LzExt3, &enc, data.len() + 1).is_err());
}

#[test]
fn uses_offsets_beyond_64k_and_up_to_the_window() {
    let p = EncodeParams::default();
    // 16 MiB whose second half repeats the first half: every match is 8 MiB back.
    let half = random(8 << 20, 1);
    let mut data = half.clone();
    data.extend_from_slice(&half);
    let block = check(&data, &p);
    assert!(max_offset(&block) > 65535);
    assert!(block.len() < data.len() / 2 + data.len() / 50);

    // A repeat exactly MAX_OFFSET back.
    let mut data = random((1 << 24) + 100_000, 2);
    let (head, tail) = data.split_at_mut(MAX_OFFSET);
    tail[1000..51_000].copy_from_slice(&head[1000..51_000]);
    let block = check(&data, &p);
    assert_eq!(max_offset(&block), MAX_OFFSET);
}

#[test]
fn param_corners() {
    let mut data = text(600_000, 3);
    data.extend_from_slice(&random(100_000, 4));
    data.extend_from_slice(&runs(100_000, 5));
    let again = data[..300_000].to_vec();
    data.extend_from_slice(&again);
    for hash_log in [10, 24] {
        for candidates in [1, 16] {
            for good_enough in [4, 65536] {
                let p = EncodeParams {
                    hash_log,
                    candidates,
                    good_enough,
                    ..EncodeParams::default()
                };
                let block = check(&data, &p);
                assert!(block.len() < data.len() * 3 / 4, "{p:?}: {}", block.len());
            }
        }
    }
    // Out-of-range values are clamped, not rejected.
    for (hash_log, candidates, good_enough) in [(0, 0, 0), (40, 100, u32::MAX)] {
        check(
            &data[..100_000],
            &EncodeParams {
                hash_log,
                candidates,
                good_enough,
                ..EncodeParams::default()
            },
        );
    }
}

#[test]
fn more_candidates_compress_better() {
    let data = text(1 << 20, 9);
    let size = |candidates| {
        let p = EncodeParams {
            candidates,
            ..EncodeParams::default()
        };
        check(&data, &p).len()
    };
    assert!(size(8) < size(1));
}

#[test]
fn deterministic_and_independent_of_encoder_history() {
    let p = EncodeParams::default();
    let a = text(500_000, 11);
    let b = repetitive(200_000, 12);
    let mut enc = Encoder::new(&p);
    let mut out = Vec::new();
    enc.compress(&a, &mut out);
    let first = out.clone();
    out.clear();
    enc.compress(&b, &mut out);
    assert_eq!(out, lz_ext3::compress(&b, &p));
    out.clear();
    enc.compress(&a, &mut out);
    assert_eq!(out, first);
    assert_eq!(first, lz_ext3::compress(&a, &p));
}

#[test]
fn legacy_frame_vector() {
    let mut block = vec![
        0xd1, 0x3d, 0x3d, 0x3d, 0x20, 0x53, 0x65, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x20, 0x30, 0x01,
        0x00, 0x00,
    ];
    let tail = b"\n\nSome text after the section header.\n";
    block.push(0xf0);
    block.push((tail.len() - 15) as u8);
    block.extend_from_slice(tail);
    let mut want = b"=== Section 000000".to_vec();
    want.extend_from_slice(tail);
    assert_eq!(lz_ext3::decompress(&block, want.len()).unwrap(), want);
}

#[test]
fn truncated_blocks_fail() {
    let p = EncodeParams::default();
    for data in [
        text(3000, 21),
        runs(3000, 22),
        random(500, 23),
        repetitive(2000, 24),
    ] {
        let block = check(&data, &p);
        for cut in 0..block.len() {
            assert!(
                lz_ext3::decompress(&block[..cut], data.len()).is_err(),
                "prefix {cut} of {} decoded",
                block.len()
            );
        }
        // Wrong raw lengths fail too, and so does a trailing byte.
        assert!(lz_ext3::decompress(&block, data.len() - 1).is_err());
        assert!(lz_ext3::decompress(&block, data.len() + 1).is_err());
        let mut longer = block.clone();
        longer.push(0);
        assert!(lz_ext3::decompress(&longer, data.len()).is_err());
    }
}

#[test]
fn mutated_blocks_never_panic() {
    let p = EncodeParams::default();
    let mut r = Rng(99);
    for data in [text(5000, 31), runs(5000, 32), repetitive(5000, 33)] {
        let block = check(&data, &p);
        for _ in 0..3000 {
            let mut m = block.clone();
            for _ in 0..1 + r.below(4) {
                let i = r.below(m.len());
                m[i] = r.next() as u8;
            }
            let raw_len = if r.below(4) == 0 {
                r.below(20_000)
            } else {
                data.len()
            };
            if let Ok(out) = lz_ext3::decompress(&m, raw_len) {
                assert_eq!(out.len(), raw_len);
            }
        }
    }
}

#[test]
fn beats_lz4_on_long_distance_repeats() {
    // A 200 KiB text block repeated with small edits: the repeats are out of LZ4's 64 KiB reach.
    let base = text(200 << 10, 41);
    let mut r = Rng(42);
    let mut data = Vec::new();
    for _ in 0..10 {
        let mut copy = base.clone();
        for _ in 0..20 {
            let i = r.below(copy.len());
            copy[i] = b'#';
        }
        data.extend_from_slice(&copy);
    }
    let ours = check(&data, &EncodeParams::default()).len();
    let lz4 = lz4_flex::block::compress(&data).len();
    assert!(ours * 3 < lz4, "lz_ext3 {ours} vs lz4 {lz4}");
}

/// Random bytes mixed with copies of earlier bytes (near and far) and runs.
fn mixed() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((0u8..3, any::<u64>(), 1usize..3000), 0..40).prop_map(|parts| {
        let mut v: Vec<u8> = Vec::new();
        for (kind, seed, len) in parts {
            match kind {
                0 => v.extend_from_slice(&random(len % 200, seed)),
                1 if !v.is_empty() => {
                    let start = (seed as usize) % v.len();
                    for k in 0..len {
                        v.push(v[start + k]);
                    }
                }
                _ => v.extend(std::iter::repeat_n(seed as u8, len)),
            }
        }
        v
    })
}

proptest! {
    #[test]
    fn proptest_roundtrip(data in mixed(), hash_log in 10u32..=14, candidates in 1u32..=16,
                          good_enough in 4u32..100) {
        check(&data, &EncodeParams { hash_log, candidates, good_enough, ..EncodeParams::default() });
    }

    #[test]
    fn proptest_decoder_never_panics(block in prop::collection::vec(any::<u8>(), 0..200),
                                     raw_len in 0usize..2000) {
        if let Ok(out) = lz_ext3::decompress(&block, raw_len) {
            prop_assert_eq!(out.len(), raw_len);
        }
    }
}
