//! LZ_EXT3_SB (format v2) against plain LZ_EXT3 (v1): compressed size of the same file cut into the same
//! frames, with the same encoder settings, and a decode check of every v2 frame; the v2 size is what
//! this clc writes (format 6: with mid-points), and the bytes of the mid-points are shown apart.
//!
//! ```text
//! cargo run --release --example sb_ratio -- FILE [FRAME_MIB] [SB_LOGS]
//! ```
//!
//! FRAME_MIB defaults to 4, SB_LOGS (comma-separated log2 sub-block sizes) to 16. Frames are encoded in
//! parallel on the rayon pool; sizes are exact, so the machine's load does not matter.

use clc::codec::{lz_ext3, lz_ext3_sb, EncodeParams};
use rayon::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: sb_ratio FILE [FRAME_MIB] [SB_LOGS]");
        std::process::exit(2);
    };
    let data = std::fs::read(path).expect("read input");
    let frame = args
        .get(2)
        .map_or(4, |s| s.parse::<usize>().expect("FRAME_MIB"))
        << 20;
    let logs: Vec<u32> = args
        .get(3)
        .map_or("16", |s| s.as_str())
        .split(',')
        .map(|s| s.parse().expect("SB_LOGS"))
        .collect();
    let frames: Vec<&[u8]> = data.chunks(frame).collect();
    let p = EncodeParams::default();
    let v1: usize = frames
        .par_iter()
        .map(|f| lz_ext3::compress(f, &p).len().min(f.len()))
        .sum();
    println!(
        "{path}: {} bytes, {} frames of {} MiB",
        data.len(),
        frames.len(),
        frame >> 20
    );
    println!(
        "v1 LZ_EXT3            {v1:>12}  ratio {:.4}",
        v1 as f64 / data.len() as f64
    );
    for &log in &logs {
        let q = EncodeParams { sb_log: log, ..p };
        let (v2, mids): (usize, usize) = frames
            .par_iter()
            .map(|f| {
                let enc = lz_ext3_sb::compress(f, &q);
                let back = if std::env::var("NOCHECK").is_ok() {
                    f.to_vec()
                } else {
                    lz_ext3_sb::decompress_serial(&enc, f.len()).expect("v2 decodes")
                };
                assert!(back == *f, "v2 roundtrip");
                let lay = lz_ext3_sb::Layout::parse(&enc, f.len()).expect("v2 table");
                let mids = if lay.points.is_empty() {
                    0
                } else {
                    lay.count() + 8 * lay.points.len()
                };
                if enc.len() < f.len() {
                    (enc.len(), mids)
                } else {
                    (f.len(), 0)
                }
            })
            .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        println!(
            "v2 LZ_EXT3_SB S=2^{log:<2}   {v2:>12}  ratio {:.4}  cost {:+.2} %  (mid-points {mids} bytes: \
             without them {:+.2} %)",
            v2 as f64 / data.len() as f64,
            (v2 as f64 / v1 as f64 - 1.0) * 100.0,
            ((v2 - mids) as f64 / v1 as f64 - 1.0) * 100.0
        );
    }
}
