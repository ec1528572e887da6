//! Where the pack's cutter spends its time, one core: FastCDC cut points, BLAKE3 of every chunk, the
//! entropy test, and the whole per-segment step as the pack runs it (`chunk::cut_segment`).
//!
//! ```text
//! cargo run --release --example cut_speed -- FILE [SEGMENT_KIB]
//! ```
//!
//! The file is split into segments of SEGMENT_KIB (default 8192: a large file's read segment; 1024 is
//! what a batch of small files comes to at most), each cut on its own with the default chunk sizes
//! (16K / 64K / 256K). Times are the best of three samples of at least 150 ms, in thread CPU time where
//! Linux gives it. Prints MB/s (10^6 bytes of input per second).

use clc::chunk;
use std::time::Duration;

#[path = "common/timing.rs"]
mod timing;

/// One call's time: the best of three samples of at least 150 ms, in thread CPU time where available.
fn best_time(f: impl FnMut()) -> Duration {
    timing::best_time(Duration::from_millis(150), true, f)
}

const MIN: u32 = 16 << 10;
const AVG: u32 = 64 << 10;
const MAX: u32 = 256 << 10;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: cut_speed FILE [SEGMENT_KIB]");
        std::process::exit(2);
    };
    let data = std::fs::read(path).expect("read input");
    let seg: usize = args
        .get(2)
        .map_or(8192, |s| s.parse().expect("SEGMENT_KIB"))
        << 10;
    let segs: Vec<&[u8]> = data.chunks(seg).collect();
    let cuts: Vec<Vec<(usize, usize)>> =
        segs.iter().map(|s| chunk::cut(s, MIN, AVG, MAX)).collect();
    let n_chunks: usize = cuts.iter().map(Vec::len).sum();
    println!(
        "{path}: {} bytes, segments of {} KiB, {n_chunks} chunks (mean {} bytes)",
        data.len(),
        seg >> 10,
        data.len() / n_chunks.max(1)
    );
    let mb = |t: Duration| data.len() as f64 / t.as_secs_f64() / 1e6;
    let mut sink = 0u64;
    let rows: Vec<(&str, Duration)> = vec![
        (
            "chunk::cut (FastCDC v2020 cut points)",
            best_time(|| {
                for s in &segs {
                    sink += chunk::cut(s, MIN, AVG, MAX).len() as u64;
                }
            }),
        ),
        (
            "blake3::hash per chunk",
            best_time(|| {
                for (s, c) in segs.iter().zip(&cuts) {
                    for &(o, l) in c {
                        sink += u64::from(blake3::hash(&s[o..o + l]).as_bytes()[0]);
                    }
                }
            }),
        ),
        (
            "blake3::hash whole segment",
            best_time(|| {
                for s in &segs {
                    sink += u64::from(blake3::hash(s).as_bytes()[0]);
                }
            }),
        ),
        (
            "entropy test per chunk",
            best_time(|| {
                for (s, c) in segs.iter().zip(&cuts) {
                    for &(o, l) in c {
                        sink += u64::from(chunk::incompressible(&s[o..o + l]));
                    }
                }
            }),
        ),
        (
            "cut_segment (cut + BLAKE3 + entropy)",
            best_time(|| {
                for s in &segs {
                    sink += chunk::cut_segment(s, MIN, AVG, MAX, true).len() as u64;
                }
            }),
        ),
        (
            "cut_segment without the entropy test",
            best_time(|| {
                for s in &segs {
                    sink += chunk::cut_segment(s, MIN, AVG, MAX, false).len() as u64;
                }
            }),
        ),
    ];
    println!("| step, one core | MB/s | ns per chunk |");
    println!("|---|---|---|");
    for (name, t) in rows {
        println!(
            "| {name} | {:.0} | {:.0} |",
            mb(t),
            t.as_nanos() as f64 / n_chunks.max(1) as f64
        );
    }
    std::hint::black_box(sink);
}
