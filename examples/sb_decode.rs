//! Decode speed of one frame: plain LZ_EXT3 (v1, serial) against LZ_EXT3_SB (v2) serial and on 1, 2, 4, 8
//! threads (rayon pools of that size), and lz4_flex on the same bytes.
//!
//! ```text
//! cargo run --release --example sb_decode -- FILE [FRAME_MIB] [OFFSET_MIB] [REPS] [THREADS]
//! ```
//!
//! One frame of FRAME_MIB (default 16) from OFFSET_MIB into FILE. Each figure is the median of REPS
//! (default 15) wall-clock decodes, in MB/s of decoded bytes (10^6 bytes per second). THREADS is a
//! comma list (default 1,2,4,8). On a shared machine compare within one run.

use clc::codec::{lz_ext3, lz_ext3_sb, EncodeParams};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: sb_decode FILE [FRAME_MIB] [OFFSET_MIB] [REPS] [THREADS]");
        std::process::exit(2);
    };
    let mib = |i: usize, d: usize| {
        args.get(i)
            .map_or(d, |s| s.parse::<usize>().expect("number"))
    };
    let (frame, at, reps) = (mib(2, 16) << 20, mib(3, 0) << 20, mib(4, 15));
    let threads: Vec<usize> = args
        .get(5)
        .map_or("1,2,4,8", |s| s.as_str())
        .split(',')
        .map(|s| s.parse().expect("THREADS"))
        .collect();
    let data = std::fs::read(path).expect("read input");
    let f = &data[at.min(data.len())..(at + frame).min(data.len())];
    let p = EncodeParams::default();
    let v1 = lz_ext3::compress(f, &p);
    let v2 = lz_ext3_sb::compress(f, &p);
    let l4 = lz4_flex::block::compress(f);
    let time = |g: &dyn Fn() -> Vec<u8>| -> f64 {
        let ts: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                let out = g();
                let s = t.elapsed().as_secs_f64();
                assert!(out == f, "decoded bytes differ");
                f.len() as f64 / s / 1e6
            })
            .collect();
        median(ts)
    };
    println!(
        "{path} @ {} MiB: one frame of {} bytes; v1 {} bytes, v2 {} bytes ({} sub-blocks), lz4 {} bytes; median of {reps}",
        at >> 20,
        f.len(),
        v1.len(),
        v2.len(),
        lz_ext3_sb::Layout::parse(&v2, f.len()).unwrap().count(),
        l4.len()
    );
    println!("decoder                         MB/s");
    println!(
        "lz4_flex (1 thread)       {:>10.0}",
        time(&|| lz4_flex::block::decompress(&l4, f.len()).unwrap())
    );
    println!(
        "v1 LZ_EXT3 (1 thread)     {:>10.0}",
        time(&|| lz_ext3::decompress(&v1, f.len()).unwrap())
    );
    println!(
        "v2 serial (1 thread)      {:>10.0}",
        time(&|| lz_ext3_sb::decompress_serial(&v2, f.len()).unwrap())
    );
    // The same into one buffer kept from decode to decode (as extract, verify and the mount's large files
    // do): without the first touch of a fresh output's pages.
    let mut kept = Vec::new();
    let ts: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            kept = lz_ext3_sb::decompress_reusing(&v2, f.len(), std::mem::take(&mut kept)).unwrap();
            let s = t.elapsed().as_secs_f64();
            assert!(kept == f, "decoded bytes differ");
            f.len() as f64 / s / 1e6
        })
        .collect();
    println!("v2 serial, kept output      {:>8.0}", median(ts));
    for &t in &threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap();
        let r =
            time(&|| pool.install(|| lz_ext3_sb::decompress_parallel(&v2, f.len(), t).unwrap()));
        println!("v2 parallel, {t:>2} threads   {r:>10.0}");
    }
}
