//! LZ_EXT3E (issue 21's codec, docs/FORMAT.md §2.3): one roundtrip helper over every mode (sub-block sizes,
//! which streams are Huffman-coded, frame and own tables, repeat offsets, both match finders and their
//! settings) and every kind of data; a frame written by hand from the spec; hostile input; a proptest.

use clc::codec::lz_ext3e::{self, Encoder, Options};
use clc::codec::EncodeParams;
use proptest::prelude::*;

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
}

/// Data kinds: text-like words, random bytes, zeros, a short pattern with changes, and a block repeated
/// far apart (matches that cross many sub-blocks and reach megabytes back).
fn data(kind: usize, n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    let mut v = Vec::with_capacity(n + 64);
    match kind {
        0 => {
            const W: &[&str] = &[
                "def ", "self", ".", "return ", "(", ")", ":\n", "    ", "import ", "x",
            ];
            while v.len() < n {
                v.extend_from_slice(W[r.below(W.len())].as_bytes());
                if r.below(8) == 0 {
                    v.extend_from_slice(r.below(1000).to_string().as_bytes());
                }
            }
        }
        1 => v.extend((0..n).map(|_| r.next() as u8)),
        2 => v.resize(n, 0),
        3 => {
            let pat: Vec<u8> = (0..29).map(|_| r.next() as u8).collect();
            v.extend(pat.iter().cycle().take(n));
            for _ in 0..n / 300 {
                let i = r.below(n);
                v[i] = r.next() as u8;
            }
        }
        _ => {
            let block: Vec<u8> = (0..n.min(50_000)).map(|_| r.next() as u8 % 64).collect();
            while v.len() < n {
                v.extend_from_slice(&block);
                v.extend((0..r.below(5000)).map(|_| r.next() as u8));
            }
        }
    }
    v.truncate(n);
    v
}

/// The modes: the writer's default, then each lever changed on its own, then a few combinations.
fn modes() -> Vec<(EncodeParams, Options)> {
    let d = Options::default();
    let p = EncodeParams::default();
    let c = |k| EncodeParams { candidates: k, ..p };
    vec![
        (p, d),
        (
            p,
            Options {
                subblock_log: 12,
                ..d
            },
        ),
        (
            p,
            Options {
                subblock_log: 24,
                ..d
            },
        ),
        (p, Options { huffman: 0, ..d }),
        (p, Options { huffman: 1, ..d }),
        (
            p,
            Options {
                huffman: 0b101010,
                ..d
            },
        ),
        (
            p,
            Options {
                frame_tables: false,
                ..d
            },
        ),
        (
            p,
            Options {
                own_tables: false,
                ..d
            },
        ),
        (
            p,
            Options {
                frame_tables: false,
                own_tables: false,
                ..d
            },
        ),
        (p, Options { repeat: false, ..d }),
        (p, Options { hash_bytes: 4, ..d }),
        (p, Options { hash_bytes: 5, ..d }),
        (c(1), d),
        (c(8), d),
        (
            p,
            Options {
                dfast: true,
                hash_bytes: 5,
                ..d
            },
        ),
        (
            p,
            Options {
                dfast: true,
                hash_bytes: 6,
                subblock_log: 12,
                repeat: false,
                ..d
            },
        ),
        (
            EncodeParams {
                hash_log: 10,
                good_enough: 4,
                ..c(3)
            },
            Options {
                subblock_log: 13,
                ..d
            },
        ),
    ]
}

/// Encodes `src` in `mode`, checks the breakdown adds up, that it decodes to `src`, and that the encoder's
/// history does not change its output.
fn roundtrip(src: &[u8], (p, o): &(EncodeParams, Options)) -> Vec<u8> {
    let mut enc = Encoder::new(p, o);
    let mut out = Vec::new();
    let bd = enc.compress(src, &mut out);
    assert_eq!(bd.total(), out.len() as u64, "breakdown of {o:?}");
    let back = lz_ext3e::decompress(&out, src.len())
        .unwrap_or_else(|e| panic!("{o:?} {p:?}, {} bytes: {e}", src.len()));
    assert!(
        back == src,
        "{o:?} {p:?}: round trip changed {} bytes",
        src.len()
    );
    let mut again = Vec::new();
    enc.compress(src, &mut again);
    assert!(
        again == out,
        "{o:?}: output depends on the encoder's history"
    );
    out
}

#[test]
fn every_mode_every_kind() {
    for (i, m) in modes().iter().enumerate() {
        for kind in 0..5 {
            for n in [
                0, 1, 19, 20, 28, 29, 4095, 4096, 4097, 65_536, 65_537, 200_003,
            ] {
                roundtrip(&data(kind, n, (i * 31 + kind * 7 + n) as u64), m);
            }
        }
    }
}

#[test]
fn long_reach_over_many_subblocks() {
    // 3 MiB: the block of kind 4 repeats every ~50 KB; with 4 KiB sub-blocks every match crosses some.
    let src = data(4, 3 << 20, 77);
    for m in modes() {
        let out = roundtrip(&src, &m);
        assert!(out.len() < src.len() / 8, "{:?}: {} bytes", m.1, out.len());
    }
}

#[test]
fn entropy_stage_pays_on_text() {
    let src = data(0, 1 << 20, 5);
    let none = roundtrip(
        &src,
        &(
            EncodeParams::default(),
            Options {
                huffman: 0,
                ..Options::default()
            },
        ),
    );
    let all = roundtrip(&src, &(EncodeParams::default(), Options::default()));
    assert!(
        all.len() * 100 < none.len() * 80,
        "{} vs {}",
        all.len(),
        none.len()
    );
}

/// A frame written by hand from docs/FORMAT.md §2.3, not by the encoder: "abcabcabcd" as 3 literals, a
/// 6-byte match at offset 3 (code 6), then a literal-only token; the tokens Huffman-coded with their own
/// table, the offset's low byte as a repeated byte.
fn hand_frame() -> Vec<u8> {
    let mut f = vec![0]; // no frame tables
                         // §2.2's sub-block table: sb_log 16, reserved, one sub-block starting at 0, table_check.
    let table = [16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    f.extend_from_slice(&table);
    f.extend_from_slice(&(clc::format::checksum(&table) as u32).to_le_bytes());
    f.extend_from_slice(&[2, 4, 0, 1]); // n_tok 2, n_lit 4, n_ext 0, n_off 1
    f.extend_from_slice(&[0, b'a', b'b', b'c', b'd']); // lit: raw
                                                       // tok: own table, symbols 0x10 and 0x32 of length 1 (codes 0 and 1), one stream of 1 byte: 0b01.
    f.extend_from_slice(&[3, 0x32]);
    let mut nibbles = [0u8; 26];
    nibbles[8] = 1; // symbol 16, low nibble of byte 8
    nibbles[25] = 1; // symbol 50, low nibble of byte 25
    f.extend_from_slice(&nibbles);
    f.extend_from_slice(&[1, 0b01]);
    f.extend_from_slice(&[1, 6, 0, 0, 0, 0]); // off0: byte 6 repeated; off1, off2: raw 0
    f
}

#[test]
fn decodes_a_frame_written_from_the_spec() {
    let f = hand_frame();
    assert_eq!(lz_ext3e::decompress(&f, 10).unwrap(), b"abcabcabcd");
    // The same frame, damaged in ways the spec forbids: each is an error, none a panic.
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("unknown table bit", {
            let mut b = f.clone();
            b[0] = 0x40;
            b
        }),
        ("sub-block log 11", {
            let mut b = f.clone();
            b[1] = 11;
            b
        }),
        ("two sub-blocks counted", {
            let mut b = f.clone();
            b[5] = 2;
            b
        }),
        ("table_check wrong", {
            let mut b = f.clone();
            b[13] ^= 1;
            b
        }),
        ("n_off > n_tok", {
            let mut b = f.clone();
            b[20] = 3;
            b
        }),
        ("offset code 0", {
            let mut b = f.clone();
            let n = b.len();
            b[n - 5] = 0;
            b
        }),
        ("offset past the start", {
            let mut b = f.clone();
            let n = b.len();
            b[n - 5] = 7;
            b
        }),
        ("trailing byte", {
            let mut b = f.clone();
            b.push(0);
            b
        }),
        ("bitstream one byte long", {
            let mut b = f.clone();
            let n = b.len();
            b[n - 8] = 2;
            b
        }),
        ("truncated", f[..f.len() - 1].to_vec()),
    ];
    for (what, b) in bad {
        assert!(lz_ext3e::decompress(&b, 10).is_err(), "{what} was accepted");
    }
    assert!(lz_ext3e::decompress(&f, 9).is_err());
    assert!(lz_ext3e::decompress(&f, 11).is_err());
    // Repeat code 1 = R0 = 1 at the start of a sub-block: the match repeats the last literal.
    let mut r = f.clone();
    let n = r.len();
    r[n - 5] = 1;
    assert_eq!(lz_ext3e::decompress(&r, 10).unwrap(), b"abcccccccd");
}

#[test]
fn hostile_bytes_never_panic() {
    let src = data(0, 150_000, 3);
    let mut rng = Rng(99);
    for m in [&modes()[0], &modes()[1], &modes()[9]] {
        let out = roundtrip(&src, m);
        for _ in 0..3000 {
            let mut b = out.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            if rng.below(5) == 0 {
                b.truncate(rng.below(b.len()));
            }
            if let Ok(d) = lz_ext3e::decompress(&b, src.len()) {
                assert_eq!(d.len(), src.len());
            }
        }
    }
    for n in [0usize, 1, 100, 1 << 24, (1 << 24) + 1, usize::MAX] {
        let _ = lz_ext3e::decompress(&[16, 0, 6, 0, 0, 0], n);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_bytes_and_modes_roundtrip(
        src in prop::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..20_000),
        m in 0usize..17,
    ) {
        let modes = modes();
        roundtrip(&src, &modes[m % modes.len()]);
    }
}
