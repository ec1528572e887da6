//! One frame at a time, as a mount's random read decodes it: LZ_EXT3E's serial decoder and its parallel
//! one (every sub-block's entropy stage on the rayon pool, then the sequences) against LZ_EXT3_SB's serial
//! and parallel decoders, on the same frames.
//!
//! ```text
//! cargo run --release --example ext3e_decode -- FILE [FRAME_MIB] [THREADS] [ONLY]
//! ```
//!
//! The file is cut into frames of FRAME_MIB (default 4), each encoded with the default parameters. Times
//! are the best of three samples of at least 200 ms, over all frames decoded one after the other, in
//! thread CPU time with one thread (wall time with more); MB/s of raw bytes. THREADS (default: all cores) sizes the rayon pool. ONLY (a word of a decoder's
//! name, e.g. `E serial`) runs just the decoders whose names contain it (for `perf record`).

use clc::codec::{lz_ext3_sb, lz_ext3e, EncodeParams};
use std::time::Duration;

#[path = "common/timing.rs"]
mod timing;

/// The best of three samples of at least 200 ms of wall time each: this thread's CPU time with one thread
/// (else wall time, as with several threads the work runs on others).
fn best_time(threads: usize, f: impl FnMut()) -> Duration {
    timing::best_time(Duration::from_millis(200), threads == 1, f)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: ext3e_decode FILE [FRAME_MIB] [THREADS]");
        std::process::exit(2);
    };
    let data = std::fs::read(path).expect("read input");
    let mib: usize = args.get(2).map_or(4, |s| s.parse().expect("FRAME_MIB"));
    let threads: usize = args
        .get(3)
        .map_or_else(rayon::current_num_threads, |s| s.parse().expect("THREADS"));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("rayon pool");
    let p = EncodeParams::default();
    let frames: Vec<&[u8]> = data.chunks(mib << 20).collect();
    let e: Vec<Vec<u8>> = frames.iter().map(|f| lz_ext3e::compress(f, &p)).collect();
    let s: Vec<Vec<u8>> = frames.iter().map(|f| lz_ext3_sb::compress(f, &p)).collect();
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(lz_ext3e::decompress_parallel(&e[k], f.len()).unwrap(), *f);
        assert_eq!(
            lz_ext3_sb::decompress_parallel(&s[k], f.len(), threads).unwrap(),
            *f
        );
    }
    let total = data.len();
    let mbps = |t: Duration| total as f64 / t.as_secs_f64() / 1e6;
    println!(
        "{path}: {total} bytes, {} frames of {mib} MiB, {threads} threads",
        frames.len()
    );
    println!("| decoder | stored bytes | stored / raw | MB/s (one frame at a time) |");
    println!("|---|---|---|---|");
    let size = |v: &[Vec<u8>]| v.iter().map(Vec::len).sum::<usize>();
    let only = args.get(4).cloned().unwrap_or_default();
    let run = |name: &str, stored: usize, f: &dyn Fn(usize) -> Vec<u8>| {
        if !name.contains(&only) {
            return;
        }
        let t = best_time(threads, || {
            for (k, fr) in frames.iter().enumerate() {
                assert_eq!(f(k).len(), fr.len());
            }
        });
        let ratio = stored as f64 / total as f64;
        println!("| {name} | {stored} | {ratio:.4} | {:.0} |", mbps(t));
    };
    let n = |k: usize| frames[k].len();
    run("LZ_EXT3_SB serial", size(&s), &|k| {
        lz_ext3_sb::decompress_serial(&s[k], n(k)).unwrap()
    });
    run("LZ_EXT3_SB parallel", size(&s), &|k| {
        lz_ext3_sb::decompress_parallel(&s[k], n(k), threads).unwrap()
    });
    run("LZ_EXT3E serial", size(&e), &|k| {
        lz_ext3e::decompress(&e[k], n(k)).unwrap()
    });
    run("LZ_EXT3E parallel", size(&e), &|k| {
        lz_ext3e::decompress_parallel(&e[k], n(k)).unwrap()
    });
}
