//! Where an archive's bytes go and what each lever of the entropy stage moves, on the very frames clc packed.
//!
//! ```text
//! cargo run --release --example codec_levers -- ARCHIVE.001 [LEVERS]
//! ```
//!
//! Decodes every frame of the archive (so the frames are exactly what `clc pack` fed its codec: its stream
//! order, chunk dedup and adaptive frame sizes), then encodes them again, one core, with:
//! LZ_EXT3 as today, lz4_flex, zstd level 3 (each frame on its own, as clc would store it), and LZ_EXT3E
//! with one lever changed at a time. A frame whose encoding is not smaller than its raw bytes counts raw,
//! as the packer stores it. Times are thread CPU time of one pass (so other processes on a busy machine
//! count less), MB/s of raw input (DEC_REPS=N decodes N times and takes the mean). LEVERS is a comma-separated subset of the variant names (default: all).
//!
//! Prints Markdown: the variant table; where LZ_EXT3E's bytes go per stream; the encoder's time split; and
//! two estimates for levers not built (zstd-style offset codes, repeat offsets).

use clc::archive::Archive;
use clc::codec::lz_ext3e::{self, Breakdown, Options, STREAM_NAMES};
use clc::codec::lz_parse::{Parser, Seq};
use clc::codec::{lz_ext3, EncodeParams};
use clc::format::index::FrameId;
use std::path::Path;
use std::time::Duration;

fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = s
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

struct Variant {
    name: &'static str,
    what: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    LzExt3(u32),
    Lz4,
    Zstd(i32),
    /// Candidates, options.
    Ext3e(u32, Options),
    /// Candidates, good-enough match length (the finder's early exit), options.
    Ext3eGe(u32, u32, Options),
    /// HASH_LOG (log2 of the finder's buckets), options.
    Ext3eHl(u32, Options),
    /// LZ_EXT3 (c2) with this HASH_LOG.
    LzExt3Hl(u32),
}

struct Result {
    stored: u64,
    comp: Duration,
    dec: Duration,
    bd: Breakdown,
    times: lz_ext3e::StageTimes,
}

fn params(c: u32) -> EncodeParams {
    EncodeParams {
        candidates: c,
        ..Default::default()
    }
}

fn run(frames: &[Vec<u8>], kind: Kind) -> Result {
    let d = EncodeParams::default();
    let (kind, good_enough, hash_log) = match kind {
        Kind::Ext3eGe(c, ge, o) => (Kind::Ext3e(c, o), ge, d.hash_log),
        Kind::Ext3eHl(hl, o) => (Kind::Ext3e(d.candidates, o), d.good_enough, hl),
        Kind::LzExt3Hl(hl) => (Kind::LzExt3(d.candidates), d.good_enough, hl),
        k => (k, d.good_enough, d.hash_log),
    };
    let mut stored = 0u64;
    let mut enc_out: Vec<Vec<u8>> = Vec::with_capacity(frames.len());
    let mut bd = Breakdown::default();
    let t = thread_cpu();
    let mut e3 = match kind {
        Kind::LzExt3(c) => Some(lz_ext3::Encoder::new(&EncodeParams {
            hash_log,
            ..params(c)
        })),
        _ => None,
    };
    let mut ee = match kind {
        Kind::Ext3e(c, o) => {
            let p = EncodeParams {
                good_enough,
                hash_log,
                ..params(c)
            };
            let mut e = lz_ext3e::Encoder::new(&p, &o);
            e.timed = true;
            Some(e)
        }
        _ => None,
    };
    let mut zc = match kind {
        Kind::Zstd(l) => Some(zstd::bulk::Compressor::new(l).expect("zstd")),
        _ => None,
    };
    for f in frames {
        let mut out = Vec::new();
        match kind {
            Kind::LzExt3(_) => e3.as_mut().unwrap().compress(f, &mut out),
            Kind::Lz4 => out = lz4_flex::block::compress(f),
            Kind::Zstd(_) => out = zc.as_mut().unwrap().compress(f).expect("zstd"),
            Kind::Ext3e(..) | Kind::Ext3eGe(..) | Kind::Ext3eHl(..) | Kind::LzExt3Hl(..) => {
                bd.add(&ee.as_mut().unwrap().compress(f, &mut out))
            }
        }
        stored += out.len().min(f.len()) as u64;
        enc_out.push(out);
    }
    let comp = thread_cpu() - t;
    let t = thread_cpu();
    let mut zd = zstd::bulk::Decompressor::new().expect("zstd");
    let reps: u32 = std::env::var("DEC_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for (f, e) in std::iter::repeat_n(frames.iter().zip(&enc_out), reps as usize).flatten() {
        if e.len() >= f.len() {
            continue;
        }
        let d = match kind {
            Kind::LzExt3(_) => lz_ext3::decompress(e, f.len()).expect("lz_ext3 decode"),
            Kind::Lz4 => lz4_flex::block::decompress(e, f.len()).expect("lz4 decode"),
            Kind::Zstd(_) => zd.decompress(e, f.len()).expect("zstd decode"),
            Kind::Ext3e(..) | Kind::Ext3eGe(..) | Kind::Ext3eHl(..) | Kind::LzExt3Hl(..) => {
                lz_ext3e::decompress(e, f.len()).expect("lz_ext3e decode")
            }
        };
        assert!(d == *f, "roundtrip failed");
    }
    let dec = (thread_cpu() - t) / reps.max(1);
    Result {
        stored,
        comp,
        dec,
        bd,
        times: ee.map(|e| e.times).unwrap_or_default(),
    }
}

fn variants() -> Vec<Variant> {
    let d = Options::default();
    let lit = 1u8;
    let v = |name, what, kind| Variant { name, what, kind };
    vec![
        v("lz_ext3", "LZ_EXT3 today (c2)", Kind::LzExt3(2)),
        v("lz4", "lz4_flex block", Kind::Lz4),
        v("zstd3", "zstd -3, each frame", Kind::Zstd(3)),
        v(
            "e_none",
            "LZ_EXT3E, no Huffman (64 KiB sub-blocks only)",
            Kind::Ext3e(2, Options { huffman: 0, ..d }),
        ),
        v(
            "e_lit_sb",
            "+ literals, per-sub-block tables",
            Kind::Ext3e(
                2,
                Options {
                    huffman: lit,
                    frame_tables: false,
                    ..d
                },
            ),
        ),
        v(
            "e_lit_fr",
            "+ literals, frame tables",
            Kind::Ext3e(
                2,
                Options {
                    huffman: lit,
                    own_tables: false,
                    ..d
                },
            ),
        ),
        v(
            "e_lit",
            "+ literals, frame or own table",
            Kind::Ext3e(2, Options { huffman: lit, ..d }),
        ),
        v(
            "e_lit_tok",
            "+ literals, tokens",
            Kind::Ext3e(2, Options { huffman: 3, ..d }),
        ),
        v(
            "e_all_norep",
            "+ literals, tokens, ext, offsets; no repeat offsets",
            Kind::Ext3e(2, Options { repeat: false, ..d }),
        ),
        v("e_all", "+ repeat offsets (default)", Kind::Ext3e(2, d)),
        v(
            "e_all_fr",
            "all streams, frame tables only",
            Kind::Ext3e(
                2,
                Options {
                    own_tables: false,
                    ..d
                },
            ),
        ),
        v(
            "e_sb16k",
            "all streams, 16 KiB sub-blocks",
            Kind::Ext3e(
                2,
                Options {
                    subblock_log: 14,
                    ..d
                },
            ),
        ),
        v(
            "e_sb256k",
            "all streams, 256 KiB sub-blocks",
            Kind::Ext3e(
                2,
                Options {
                    subblock_log: 18,
                    ..d
                },
            ),
        ),
        v(
            "e_h5",
            "default, 5-byte hash (shortest table match 5)",
            Kind::Ext3e(2, Options { hash_bytes: 5, ..d }),
        ),
        v(
            "e_h4",
            "default, 4-byte hash",
            Kind::Ext3e(2, Options { hash_bytes: 4, ..d }),
        ),
        v(
            "e_dfast5",
            "double-fast finder, short prefix 5",
            Kind::Ext3e(
                2,
                Options {
                    dfast: true,
                    hash_bytes: 5,
                    ..d
                },
            ),
        ),
        v(
            "e_dfast6",
            "double-fast finder, short prefix 6",
            Kind::Ext3e(
                2,
                Options {
                    dfast: true,
                    hash_bytes: 6,
                    ..d
                },
            ),
        ),
        v("e_c1", "default, HASH_CANDIDATES 1", Kind::Ext3e(1, d)),
        v("e_c4", "default, HASH_CANDIDATES 4", Kind::Ext3e(4, d)),
        v("e_c8", "default, HASH_CANDIDATES 8", Kind::Ext3e(8, d)),
        v(
            "e_ge16",
            "default, GOOD_ENOUGH_MATCH 16 (earlier exit)",
            Kind::Ext3eGe(2, 16, d),
        ),
        v(
            "e_c4_ge16",
            "HASH_CANDIDATES 4, GOOD_ENOUGH_MATCH 16",
            Kind::Ext3eGe(4, 16, d),
        ),
        v(
            "e_ge256",
            "default, GOOD_ENOUGH_MATCH 256 (later exit)",
            Kind::Ext3eGe(2, 256, d),
        ),
        v("e_hl15", "default, HASH_LOG 15", Kind::Ext3eHl(15, d)),
        v("e_hl14", "default, HASH_LOG 14", Kind::Ext3eHl(14, d)),
        v("lz_ext3_hl15", "LZ_EXT3, HASH_LOG 15", Kind::LzExt3Hl(15)),
        v("lz_ext3_hl14", "LZ_EXT3, HASH_LOG 14", Kind::LzExt3Hl(14)),
        v(
            "e_gain0",
            "default, Huffman for any saving (min_gain_log 0, the last stop's writer)",
            Kind::Ext3e(
                2,
                Options {
                    min_gain_log: 0,
                    ..d
                },
            ),
        ),
    ]
}

fn mbps(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64().max(1e-9) / 1e6
}

/// Entropy in bits of a histogram.
fn entropy_bits(h: &std::collections::HashMap<u32, u64>) -> f64 {
    let n: u64 = h.values().sum();
    h.values()
        .map(|&c| c as f64 * (n as f64 / c as f64).log2())
        .sum()
}

/// Estimates for levers not built: offsets as (bit length code, raw extra bits) against 3 byte planes
/// (order-0 entropy of each, per frame), and how many matches repeat the previous match's offset.
fn estimates(frames: &[Vec<u8>]) {
    let mut p = Parser::new(&EncodeParams::default());
    let mut seqs: Vec<Seq> = Vec::new();
    let (mut planes, mut codes, mut n_match, mut rep0, mut rep012) = (0f64, 0f64, 0u64, 0u64, 0u64);
    for f in frames {
        p.parse(f, &mut seqs);
        let mut hs: [std::collections::HashMap<u32, u64>; 3] = Default::default();
        let mut hc = std::collections::HashMap::new();
        let mut extra = 0u64;
        let mut reps = [0u32; 3];
        for s in &seqs {
            let o = s.offset;
            for (k, h) in hs.iter_mut().enumerate() {
                *h.entry(o >> (8 * k) & 255).or_insert(0) += 1;
            }
            let bl = 32 - o.leading_zeros();
            *hc.entry(bl).or_insert(0) += 1;
            extra += bl.saturating_sub(1) as u64;
            n_match += 1;
            if o == reps[0] {
                rep0 += 1;
            }
            if reps.contains(&o) {
                rep012 += 1;
            }
            if o != reps[0] {
                reps = [o, reps[0], reps[1]];
            }
        }
        planes += hs.iter().map(entropy_bits).sum::<f64>() / 8.0;
        codes += (entropy_bits(&hc) + extra as f64) / 8.0;
    }
    println!();
    println!("Estimates for levers not built (order-0 entropy per frame, tables not counted):");
    println!(
        "- offsets as 3 byte planes: {:.2} MB; as a bit-length code + raw extra bits (zstd's way): {:.2} MB",
        planes / 1e6,
        codes / 1e6
    );
    println!(
        "- of {} matches, {:.1} % repeat the previous offset, {:.1} % one of the last three (zstd's repeat codes)",
        n_match,
        100.0 * rep0 as f64 / n_match.max(1) as f64,
        100.0 * rep012 as f64 / n_match.max(1) as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: codec_levers ARCHIVE.001 [LEVERS]");
        std::process::exit(2);
    };
    let only: Option<Vec<String>> = args
        .get(2)
        .map(|s| s.split(',').map(String::from).collect());
    let a = Archive::open(Path::new(path)).expect("open archive");
    let frames: Vec<Vec<u8>> = (0..a.index().frames().len() as u32)
        .map(|i| a.read_frame(FrameId(i)).expect("read frame"))
        .collect();
    let raw: u64 = frames.iter().map(|f| f.len() as u64).sum();
    // Everything of the archive that is not a frame's stored bytes (volume and frame headers, index,
    // footer) stays as it is: a variant's archive size is that plus its stored bytes.
    let archive: u64 = a
        .volume_paths()
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let stored_now: u64 = a.index().frames().iter().map(|f| f.stored_len as u64).sum();
    let rest = archive - stored_now;
    let tar_zstd: Option<u64> = std::env::var("TAR_ZSTD_BYTES")
        .ok()
        .and_then(|v| v.parse().ok());
    println!(
        "{path}: {} frames, {:.2} MB raw (after dedup); one core, thread CPU time of one pass",
        frames.len(),
        raw as f64 / 1e6
    );
    println!();
    println!(
        "Archive {:.2} MB, of which {:.2} MB outside the frames' stored bytes; \"archive MB\" = that + a variant's frames.",
        archive as f64 / 1e6,
        rest as f64 / 1e6
    );
    println!();
    println!("| variant | what | frames MB | × LZ_EXT3 | × zstd -3 frames | archive MB | × tar\\|zstd -3 | comp MB/s | dec MB/s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut base = None;
    let mut zstd = None;
    let mut default_res = None;
    for v in variants() {
        if let Some(o) = &only {
            if !o.iter().any(|n| n == v.name) && v.name != "lz_ext3" && v.name != "zstd3" {
                continue;
            }
        }
        let r = run(&frames, v.kind);
        match v.name {
            "lz_ext3" => base = Some(r.stored),
            "zstd3" => zstd = Some(r.stored),
            _ => {}
        }
        println!(
            "| {} | {} | {:.2} | {:.3} | {:.3} | {:.2} | {:.3} | {:.0} | {:.0} |",
            v.name,
            v.what,
            r.stored as f64 / 1e6,
            r.stored as f64 / base.unwrap_or(r.stored) as f64,
            zstd.map_or(f64::NAN, |z| r.stored as f64 / z as f64),
            (rest + r.stored) as f64 / 1e6,
            tar_zstd.map_or(f64::NAN, |z| (rest + r.stored) as f64 / z as f64),
            mbps(raw, r.comp),
            mbps(raw, r.dec)
        );
        let t = r.times;
        let all = (t.parse_ns + t.split_ns + t.entropy_ns).max(1) as f64;
        if t.parse_ns > 0 {
            eprintln!(
                "{}: encoder time: match finding {:.0} %, sub-block split {:.0} %, entropy {:.0} %",
                v.name,
                100.0 * t.parse_ns as f64 / all,
                100.0 * t.split_ns as f64 / all,
                100.0 * t.entropy_ns as f64 / all
            );
        }
        if v.name == "e_all" {
            default_res = Some(r);
        }
    }
    if let Some(r) = default_res {
        let bd = &r.bd;
        let tot = bd.total() as f64;
        println!();
        println!(
            "Where LZ_EXT3E's bytes go (default variant; {} sequences, {} sub-blocks; raw = the stream as LZ_EXT3 stores it):",
            bd.sequences, bd.subblocks
        );
        println!();
        println!("| stream | raw MB | stored MB | stored / raw | share of stored |");
        println!("|---|---|---|---|---|");
        for (i, name) in STREAM_NAMES.iter().enumerate() {
            println!(
                "| {} | {:.2} | {:.2} | {:.3} | {:.1} % |",
                name,
                bd.raw[i] as f64 / 1e6,
                bd.stored[i] as f64 / 1e6,
                bd.stored[i] as f64 / bd.raw[i].max(1) as f64,
                100.0 * bd.stored[i] as f64 / tot
            );
        }
        println!(
            "| headers (frame tables, sub-block lists, counts) | — | {:.2} | — | {:.1} % |",
            (bd.header + bd.counts) as f64 / 1e6,
            100.0 * (bd.header + bd.counts) as f64 / tot
        );
        let t = r.times;
        let all = (t.parse_ns + t.split_ns + t.entropy_ns) as f64;
        println!();
        println!(
            "Encoder time split (wall time inside the encoder): match finding {:.0} %, sub-block split {:.0} %, entropy stage (histograms, tables, Huffman) {:.0} %",
            100.0 * t.parse_ns as f64 / all,
            100.0 * t.split_ns as f64 / all,
            100.0 * t.entropy_ns as f64 / all
        );
    }
    if only.is_none() {
        estimates(&frames);
    }
}
