//! The LZ_EXT3_SB encoder (the default codec) on one file, one core: MB/s and a digest of the output,
//! so a change to the encoder's code can be timed and shown to write the same bytes.
//!
//! ```text
//! cargo run --release --example sb_speed -- FILE [FRAME_MIB] [SAMPLES]
//! ```
//!
//! The file is cut into frames of FRAME_MIB (default 4), each encoded on its own with the default
//! params, as the packer does. Prints the median and best of SAMPLES (default 7) passes over all frames,
//! in thread CPU time, the compressed size and the xxh3 of every frame's output in order.

use clc::codec::{lz_ext3_sb, EncodeParams};
use std::time::Instant;

#[path = "common/timing.rs"]
#[allow(dead_code)]
mod timing;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: sb_speed FILE [FRAME_MIB] [SAMPLES]");
        std::process::exit(2);
    };
    let data = std::fs::read(path).expect("read input");
    let frame = args
        .get(2)
        .map_or(4, |s| s.parse::<usize>().expect("FRAME_MIB"))
        << 20;
    let samples: usize = args.get(3).map_or(7, |s| s.parse().expect("SAMPLES"));
    let mut enc = lz_ext3_sb::Encoder::new(&EncodeParams::default());
    let mut out = Vec::new();
    let mut digest = xxhash_rust::xxh3::Xxh3::new();
    let mut size = 0;
    for f in data.chunks(frame) {
        out.clear();
        enc.compress(f, &mut out);
        size += out.len();
        digest.update(&out);
    }
    let mut times = Vec::new();
    for _ in 0..samples {
        let (w, c) = (Instant::now(), timing::thread_cpu_time());
        for f in data.chunks(frame) {
            out.clear();
            enc.compress(f, &mut out);
        }
        let t = match (c, timing::thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => w.elapsed(),
        };
        times.push(t.as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let mbps = |t: f64| data.len() as f64 / t / 1e6;
    println!(
        "{path}: {} bytes -> {size} ({:.4}), digest {:016x}, median {:.1} MB/s, best {:.1} MB/s",
        data.len(),
        size as f64 / data.len() as f64,
        digest.digest(),
        mbps(times[times.len() / 2]),
        mbps(times[0]),
    );
}
