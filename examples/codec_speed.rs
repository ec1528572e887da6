//! LZ_EXT3 speed and ratio on one file, against lz4_flex (block mode), one core.
//!
//! ```text
//! cargo run --release --example codec_speed -- FILE [FRAME_MIB] [GOOD_ENOUGH] [HASH_LOGS] [CANDIDATES]
//! ```
//!
//! The file is cut into frames of FRAME_MIB (default 4, the default FRAME_SIZE), each compressed on its
//! own, as the packer does. Times are the best of three samples of at least 150 ms each, in thread CPU
//! time where Linux gives it (so a busy machine skews them less). Prints MB/s (10^6 bytes of input per second) for compress and decompress and
//! the compressed size relative to the input and to lz4_flex, for candidates 1, 2, 4, 8 and hash_log 14,
//! 16, 18 (or the comma-separated lists given).

use clc::codec::lz_ext3::{self, Encoder};
use clc::codec::EncodeParams;
use std::time::Duration;

#[path = "common/timing.rs"]
mod timing;

/// One call's time: the best of three samples of at least 150 ms, in thread CPU time where available.
fn best_time(f: impl FnMut()) -> Duration {
    timing::best_time(Duration::from_millis(150), true, f)
}

fn mbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: codec_speed FILE [FRAME_MIB] [GOOD_ENOUGH] [HASH_LOGS] [CANDIDATES]");
        std::process::exit(2);
    };
    let data = std::fs::read(path).expect("read input");
    let frame_mib: usize = args.get(2).map_or(4, |s| s.parse().expect("FRAME_MIB"));
    let good_enough: u32 = args.get(3).map_or(64, |s| s.parse().expect("GOOD_ENOUGH"));
    let list = |i: usize, default: &[u32]| -> Vec<u32> {
        args.get(i).map_or(default.to_vec(), |s| {
            s.split(',')
                .map(|v| v.parse().expect("list of numbers"))
                .collect()
        })
    };
    let hash_logs = list(4, &[14, 16, 18]);
    let candidate_counts = list(5, &[1, 2, 4, 8]);
    let frames: Vec<&[u8]> = data.chunks(frame_mib << 20).collect();
    let total = data.len();
    println!(
        "{path}: {total} bytes, {} frames of {frame_mib} MiB",
        frames.len()
    );

    let lz4: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| lz4_flex::block::compress(f))
        .collect();
    let lz4_len: usize = lz4.iter().map(Vec::len).sum();
    let tc = best_time(|| {
        for f in &frames {
            std::hint::black_box(lz4_flex::block::compress(f));
        }
    });
    let td = best_time(|| {
        for (c, f) in lz4.iter().zip(&frames) {
            std::hint::black_box(lz4_flex::block::decompress(c, f.len()).unwrap());
        }
    });
    println!(
        "{:<28} {:>9} {:>9} {:>8} {:>8}",
        "codec", "comp MB/s", "dec MB/s", "ratio", "vs lz4"
    );
    println!(
        "{:<28} {:>9.0} {:>9.0} {:>8.4} {:>8.4}",
        "lz4_flex block",
        mbps(total, tc),
        mbps(total, td),
        lz4_len as f64 / total as f64,
        1.0
    );

    for &hash_log in &hash_logs {
        for &candidates in &candidate_counts {
            let p = EncodeParams {
                hash_log,
                candidates,
                good_enough,
                ..EncodeParams::default()
            };
            let mut enc = Encoder::new(&p);
            let mut outs: Vec<Vec<u8>> = vec![Vec::new(); frames.len()];
            let tc = best_time(|| {
                for (f, o) in frames.iter().zip(outs.iter_mut()) {
                    o.clear();
                    enc.compress(f, o);
                }
            });
            let len: usize = outs.iter().map(Vec::len).sum();
            let mut buf = vec![0u8; frame_mib << 20];
            let td = best_time(|| {
                for (c, f) in outs.iter().zip(&frames) {
                    lz_ext3::decompress_into(c, &mut buf[..f.len()]).unwrap();
                }
            });
            for (c, f) in outs.iter().zip(&frames) {
                assert_eq!(&lz_ext3::decompress(c, f.len()).unwrap()[..], *f);
            }
            println!(
                "{:<28} {:>9.0} {:>9.0} {:>8.4} {:>8.4}",
                format!("lz_ext3 h{hash_log} c{candidates} g{good_enough}"),
                mbps(total, tc),
                mbps(total, td),
                len as f64 / total as f64,
                len as f64 / lz4_len as f64
            );
        }
    }
}
