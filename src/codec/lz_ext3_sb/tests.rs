use super::*;
use crate::codec::EncodeParams;

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Text-like data with repeats near and far (across sub-blocks), runs and some noise.
fn sample(n: usize, seed: u64) -> Vec<u8> {
    let mut r = rng(seed);
    let words: Vec<Vec<u8>> = (0..300)
        .map(|_| (0..3 + r() % 9).map(|_| b'a' + (r() % 26) as u8).collect())
        .collect();
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        match r() % 20 {
            0 if v.len() > 1000 => {
                // A far repeat of an earlier stretch.
                let len = 50 + (r() % 3000) as usize;
                let from = (r() % (v.len() as u64 - 10)) as usize;
                let end = (from + len).min(v.len());
                let s = v[from..end].to_vec();
                v.extend_from_slice(&s);
            }
            1 => v.extend(std::iter::repeat_n((r() % 256) as u8, (r() % 40) as usize)),
            2 => v.extend((0..r() % 30).map(|_| r() as u8)),
            _ => {
                v.extend_from_slice(&words[(r() % 300) as usize]);
                v.push(b' ');
            }
        }
    }
    v.truncate(n);
    v
}

fn params(sb_log: u32) -> EncodeParams {
    EncodeParams {
        sb_log,
        ..EncodeParams::default()
    }
}

fn both(src: &[u8], raw: usize) -> (Result<Vec<u8>>, Result<Vec<u8>>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    (
        decompress_serial(src, raw),
        pool.install(|| decompress_parallel(src, raw, 3)),
    )
}

#[test]
fn roundtrip_sizes_and_sub_block_sizes() {
    for &n in &[
        0usize, 1, 17, 18, 19, 100, 4095, 4096, 4097, 70_000, 300_000,
    ] {
        let data = sample(n, n as u64 + 5);
        for sb_log in [12, 13, 16, 24] {
            let enc = compress(&data, &params(sb_log));
            let lay = Layout::parse(&enc, n).unwrap();
            assert_eq!(lay.count(), n.div_ceil(1 << sb_log));
            let (a, b) = both(&enc, n);
            assert_eq!(a.unwrap(), data, "serial n={n} sb_log={sb_log}");
            assert_eq!(b.unwrap(), data, "parallel n={n} sb_log={sb_log}");
            assert_eq!(decompress(&enc, n).unwrap(), data);
        }
    }
}

#[test]
fn far_matches_are_used() {
    // A 64 KiB block of noise repeated four times: each copy is a far match of the first.
    let mut r = rng(3);
    let block: Vec<u8> = (0..65536).map(|_| r() as u8).collect();
    let data: Vec<u8> = block.iter().cycle().take(4 * 65536).copied().collect();
    let enc = compress(&data, &params(16));
    assert!(enc.len() < 70_000, "far repeats found: {}", enc.len());
    let (a, b) = both(&enc, data.len());
    assert_eq!(a.unwrap(), data);
    assert_eq!(b.unwrap(), data);
}

/// Sequences for hand-made frames: (literals, offset, match length); offset 0 = no match part (last).
fn frame(sb_log: u32, subs: &[&[(&[u8], usize, usize)]]) -> Vec<u8> {
    let mut seqs = Vec::new();
    let mut starts = Vec::new();
    for sub in subs {
        starts.push(seqs.len() as u32);
        for &(lits, off, ml) in sub.iter() {
            let m = ml.saturating_sub(4);
            seqs.push(
                ((lits.len().min(15) as u8) << 4) | if off > 0 { m.min(15) as u8 } else { 0 },
            );
            if lits.len() >= 15 {
                crate::codec::lz_ext3::write_ext(&mut seqs, lits.len() - 15);
            }
            seqs.extend_from_slice(lits);
            if off > 0 {
                seqs.extend_from_slice(&(off as u32).to_le_bytes()[..3]);
                if m >= 15 {
                    crate::codec::lz_ext3::write_ext(&mut seqs, m - 15);
                }
            }
        }
    }
    let mut out = Vec::new();
    write_table(&mut out, sb_log, &starts, &[], &[]);
    out.extend_from_slice(&seqs);
    out
}

/// Chains of matches across sub-blocks, overlapping copies, sources spanning two sub-blocks and the
/// own sub-block: the parallel decoder sets them aside and still gives the serial bytes.
#[test]
fn dependency_chains_across_sub_blocks() {
    let s = 4096;
    let lits: Vec<u8> = (0..s - 8).map(|i| (i * 7 % 251) as u8).collect();
    let f = frame(
        12,
        &[
            &[(&lits, 100, 8)],
            // a far match (chain step 1), a near match reading it, an overlapping run
            &[
                (b"", 200, 100),
                (b"", 100, 50),
                (b"ab", 1, 40),
                (&[1u8; 3904], 0, 0),
            ],
            // reads sub-block 1's near match and far match, then spans sub-blocks 1 and 2
            &[(b"", 3992, 20), (b"x", 4100, 300), (&[2u8; 3775], 0, 0)],
            // a source spanning sub-blocks 2 and 3 and the start of 3
            &[(b"q", 5000, 4000), (&[3u8; 95], 0, 0)],
        ],
    );
    let (a, b) = both(&f, 4 * s);
    let a = a.unwrap();
    assert_eq!(a, b.unwrap());
    assert_eq!(a[4096..4196], a[3896..3996]);
    // A match reading before the frame start fails in both decoders, naming the sub-block.
    let bad = frame(
        12,
        &[
            &[(&lits, 100, 8)],
            &[(b"", 9000, 100), (&[1u8; 3996], 0, 0)],
        ],
    );
    for r in [both(&bad, 2 * s).0, both(&bad, 2 * s).1] {
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("before the frame start") && e.contains("sub-block 1"),
            "{e}"
        );
    }
}

/// Many threads, small sub-blocks, data made of repeats of repeats: every ordering of the threads gives
/// the serial bytes.
#[test]
fn parallel_decoder_under_many_threads() {
    let data = sample(1 << 20, 11);
    let enc = compress(&data, &params(12));
    for threads in [2, 3, 8, 16] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for _ in 0..10 {
            let got = pool.install(|| decompress_parallel(&enc, data.len(), threads));
            assert!(got.unwrap() == data, "{threads} threads");
        }
    }
}

#[test]
fn malformed_tables_are_clear_errors() {
    let data = sample(20_000, 9);
    let enc = compress(&data, &params(12));
    let n = 20_000usize.div_ceil(4096);
    let fix = |b: &mut Vec<u8>| {
        let end = 8 + 4 * n;
        let c = table_check(&b[..end]) as u32;
        b[end..end + 4].copy_from_slice(&c.to_le_bytes());
    };
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|b| b[0] = 11), "sub-block size"),
        (Box::new(|b| b[0] = 25), "sub-block size"),
        (Box::new(|b| b[1] = 2), "reserved"),
        (Box::new(|b| b[3] = 1), "reserved"),
        (Box::new(|b| b[4] = 4), "table has 4 sub-blocks"),
        (Box::new(|b| b[8] = 1), "sub-block 0 starts at 1"),
        (
            Box::new(|b| b[12..16].copy_from_slice(&0u32.to_le_bytes())),
            "rise strictly",
        ),
        (
            Box::new(|b| b[16..20].copy_from_slice(&u32::MAX.to_le_bytes())),
            "stay below",
        ),
    ];
    for (f, want) in &cases {
        let mut b = enc.clone();
        f(&mut b);
        fix(&mut b);
        let e = Layout::parse(&b, data.len()).unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
        let (a, p) = both(&b, data.len());
        assert!(a.is_err() && p.is_err());
    }
    // Any flipped table byte without fixing the check.
    for i in 0..8 + 4 * n + 4 {
        let mut b = enc.clone();
        b[i] ^= 0x40;
        assert!(Layout::parse(&b, data.len()).is_err(), "byte {i}");
    }
    assert!(Layout::parse(&enc[..10], data.len()).is_err());
    assert!(Layout::parse(&enc, data.len() + 4096).is_err());
}

#[test]
fn corruptions_agree_between_decoders() {
    let data = sample(60_000, 21);
    let enc = compress(&data, &params(12));
    let seq_at = 12 + 4 * 60_000usize.div_ceil(4096);
    let mut r = rng(77);
    for _ in 0..400 {
        let mut b = enc.clone();
        for _ in 0..1 + r() % 3 {
            let i = seq_at + (r() % (b.len() - seq_at) as u64) as usize;
            b[i] = r() as u8;
        }
        let (a, p) = both(&b, data.len());
        // The checked sequence walk refuses exactly the frames the decoders refuse, with the same error.
        let lay = Layout::parse(&b, data.len()).unwrap();
        let walk = (0..lay.count()).try_for_each(|k| {
            Sequences::new(&b, &lay, k)
                .try_for_each(|q| q.map(drop))
                .map_err(|e| decode::in_sub_block(k, e))
        });
        assert_eq!(
            walk.as_ref().err().map(|e| e.to_string()),
            a.as_ref().err().map(|e| e.to_string())
        );
        match (a, p) {
            (Ok(x), Ok(y)) => assert_eq!(x, y),
            (Err(_), Err(_)) => {}
            (a, p) => panic!("serial {:?} vs parallel {:?}", a.is_ok(), p.is_ok()),
        }
    }
}

#[test]
fn ratio_close_to_plain_lz_ext3() {
    let data = sample(4 << 20, 5);
    let v1 = crate::codec::lz_ext3::compress(&data, &EncodeParams::default()).len();
    let v2 = compress(&data, &params(16)).len();
    assert!((v2 as f64) < v1 as f64 * 1.02, "v1 {v1} v2 {v2}");
}

/// The largest round a frame needs (FORMAT.md 2.2 frames; the rule of `Encoder::with_max_depth`):
/// literals 1; a match's bytes max(1, r(b) over the bytes b it reads in its own sub-block, r(b) + 1 over
/// those of earlier sub-blocks).
fn depth(enc: &[u8], raw: usize) -> u32 {
    let lay = Layout::parse(enc, raw).unwrap();
    let mut r = vec![0u32; raw];
    let mut deepest = 1;
    for k in 0..lay.count() {
        let b0 = lay.output(k).start;
        for q in Sequences::new(enc, &lay, k) {
            let q = q.unwrap();
            r[q.lit_at..q.at].fill(1);
            let s = q.at - q.off;
            let d = (s..s + q.off.min(q.len))
                .map(|x| if x >= b0 { r[x] } else { r[x] + 1 })
                .fold(1, u32::max);
            r[q.at..q.at + q.len].fill(d);
            deepest = deepest.max(d);
        }
    }
    deepest
}

#[test]
fn depth_bound_holds_and_frames_still_decode() {
    let src = sample(400_000, 9);
    let p = params(12);
    let free = compress(&src, &p);
    let free_depth = depth(&free, src.len());
    assert!(
        free_depth > 8,
        "unbounded frames chain through sub-blocks ({free_depth})"
    );
    for d in [1u32, 2, 8] {
        let mut enc = Vec::new();
        Encoder::new(&p).with_max_depth(d).compress(&src, &mut enc);
        assert!(depth(&enc, src.len()) <= d, "bound {d}");
        let (a, b) = both(&enc, src.len());
        assert!(a.unwrap() == src && b.unwrap() == src, "bound {d}: decodes");
        assert!(
            enc.len() >= free.len(),
            "bound {d}: no smaller than unbounded"
        );
    }
    // The bound off (0) is the plain encoder.
    let mut enc = Vec::new();
    Encoder::new(&p).with_max_depth(0).compress(&src, &mut enc);
    assert!(enc == free);
}

/// Where sub-block `k`'s mid-points lie in the stored frame `enc` (`n` sub-blocks): the offset of its
/// first point (8 bytes each), and the offset of the table check.
fn points_at(enc: &[u8], n: usize, k: usize) -> (usize, usize) {
    let t = 8 + 4 * n;
    let before: usize = enc[t..t + k].iter().map(|&c| c as usize).sum();
    let all: usize = enc[t..t + n].iter().map(|&c| c as usize).sum();
    (t + n + 8 * before, t + n + 8 * all)
}

/// Recomputes the table check of a frame with mid-points after an edit of its table.
fn fix_mids(b: &mut [u8], n: usize) {
    let end = points_at(b, n, 0).1;
    let c = table_check(&b[..end]) as u32;
    b[end..end + 4].copy_from_slice(&c.to_le_bytes());
}

#[test]
fn mid_points_are_every_512th_sequence_start() {
    let data = sample(300_000, 9);
    let enc = compress(&data, &params(16));
    let lay = Layout::parse(&enc, data.len()).unwrap();
    assert_eq!(enc[1], 1, "flag bit 0: the frame has mid-points");
    assert!(!lay.points.is_empty());
    for k in 0..lay.count() {
        let seqs: Vec<Sequence> = Sequences::new(&enc, &lay, k).map(|s| s.unwrap()).collect();
        let b = lay.output(k).start;
        let want: Vec<usize> = seqs
            .iter()
            .skip(MID_EVERY)
            .step_by(MID_EVERY)
            .map(|s| s.lit_at - b)
            .collect();
        let got: Vec<usize> = lay.points(k).iter().map(|p| p.1).collect();
        assert_eq!(got, want, "sub-block {k}: {} sequences", seqs.len());
    }
    let (a, p) = both(&enc, data.len());
    assert!(a.unwrap() == data && p.unwrap() == data);
    // A frame whose sub-blocks have at most 512 sequences has none: the version-5 layout.
    let small = sample(3000, 4);
    let e = compress(&small, &params(16));
    assert_eq!(e[1], 0);
    assert!(Layout::parse(&e, small.len()).unwrap().points.is_empty());
    assert_eq!(decompress(&e, small.len()).unwrap(), small);
}

#[test]
fn hostile_mid_points_are_refused_by_both_decoders() {
    // Words only: short matches, thousands of sequences per sub-block.
    let mut r = rng(3);
    let words: Vec<Vec<u8>> = (0..300)
        .map(|_| (0..3 + r() % 9).map(|_| b'a' + (r() % 26) as u8).collect())
        .collect();
    let mut data = Vec::new();
    while data.len() < 300_000 {
        data.extend_from_slice(&words[(r() % 300) as usize]);
        data.push(b' ');
    }
    data.truncate(300_000);
    let enc = compress(&data, &params(16));
    let n = 300_000usize.div_ceil(1 << 16);
    let lay = Layout::parse(&enc, data.len()).unwrap();
    let k = (0..n)
        .find(|&k| lay.points(k).len() >= 2)
        .expect("a sub-block with 2 points");
    let (at, _) = points_at(&enc, n, k);
    let (inl, outl) = (lay.input(k).len() as u32, lay.output(k).len() as u32);
    let seqs: Vec<Sequence> = Sequences::new(&enc, &lay, k).map(|s| s.unwrap()).collect();
    let put = move |b: &mut Vec<u8>, j: usize, i: u32, o: u32| {
        b[at + 8 * j..at + 8 * j + 4].copy_from_slice(&i.to_le_bytes());
        b[at + 8 * j + 4..at + 8 * j + 8].copy_from_slice(&o.to_le_bytes());
    };
    let p0 = lay.points(k)[0];
    let (i0, o0) = (p0.0 as u32, p0.1 as u32);
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    // Refused by the table's rules, before decoding.
    let table: Vec<(Edit, &str)> = vec![
        (Box::new(move |b| put(b, 0, 0, o0)), "not inside"),
        (Box::new(move |b| put(b, 0, i0, 0)), "not inside"),
        (Box::new(move |b| put(b, 0, inl, o0)), "not inside"),
        (Box::new(move |b| put(b, 0, i0, outl + 1)), "not inside"),
        (Box::new(move |b| put(b, 1, i0, o0 + 100)), "not inside"),
        (Box::new(move |b| put(b, 1, i0 + 100, o0)), "not inside"),
        (Box::new(|b| b[1] = 3), "unknown flags"),
    ];
    for (f, want) in &table {
        let mut b = enc.clone();
        f(&mut b);
        fix_mids(&mut b, n);
        let e = Layout::parse(&b, data.len()).unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
        let (a, p) = both(&b, data.len());
        assert!(a.is_err() && p.is_err());
    }
    // Inside the sub-block but not a sequence start (or the right start with the wrong output offset):
    // refused while decoding, by both decoders, naming the rule.
    let decode: Vec<Edit> = vec![
        Box::new(move |b| put(b, 0, i0 + 1, o0)),
        Box::new(move |b| put(b, 0, i0 - 1, o0)),
        Box::new(move |b| put(b, 0, i0, o0 + 1)),
        Box::new(move |b| put(b, 0, i0, o0 - 1)),
    ];
    for f in &decode {
        let mut b = enc.clone();
        f(&mut b);
        fix_mids(&mut b, n);
        Layout::parse(&b, data.len()).unwrap();
        let (a, p) = both(&b, data.len());
        let (a, p) = (a.unwrap_err().to_string(), p.unwrap_err().to_string());
        assert!(a.contains("mid-point not at a sequence start"), "{a}");
        assert!(p.contains("mid-point not at a sequence start"), "{p}");
    }
    // Any other sequence start is a good mid-point: the same bytes.
    let s = &seqs[3];
    let start = {
        // The token of sequence 3: just before its literals and their length extension.
        let mut b = enc.clone();
        let mut found = None;
        for i in 1..s.lit_src as u32 {
            put(&mut b, 0, i, (s.lit_at - lay.output(k).start) as u32);
            fix_mids(&mut b, n);
            if decompress_serial(&b, data.len()).is_ok() {
                found = Some(b.clone());
                break;
            }
        }
        found.expect("sequence 3's start")
    };
    let (a, p) = both(&start, data.len());
    assert!(a.unwrap() == data && p.unwrap() == data);
}

/// A frame without points (what the GPU encoder writes) given its points on the CPU is the CPU encoder's
/// frame byte for byte; a frame that has points, or whose table does not parse, is left as it is.
#[test]
fn mid_points_added_to_a_frame_are_the_encoders() {
    let data = sample(300_000, 9);
    let enc = compress(&data, &params(16));
    let lay = Layout::parse(&enc, data.len()).unwrap();
    assert!(!lay.points.is_empty());
    let seq_at = lay.bounds[0];
    let starts: Vec<u32> = lay.bounds[..lay.count()]
        .iter()
        .map(|&b| (b - seq_at) as u32)
        .collect();
    let mut bare = Vec::new();
    write_table(&mut bare, 16, &starts, &[], &[]);
    bare.extend_from_slice(&enc[seq_at..]);
    assert_eq!(bare[1], 0);
    assert_eq!(decompress(&bare, data.len()).unwrap(), data);
    assert!(with_mid_points(bare.clone(), data.len()) == enc);
    assert!(with_mid_points(enc.clone(), data.len()) == enc);
    let mut broken = bare.clone();
    broken[8] = 1;
    assert!(with_mid_points(broken.clone(), data.len()) == broken);
}
