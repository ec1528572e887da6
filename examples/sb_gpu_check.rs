//! Quick check of the LZ_EXT3_SB kernel on one file: `sb_gpu_check FILE [MiB] [SB_LOG] [DEVICE]`.
use clc::codec::{lz_ext3_sb, EncodeParams};
use std::time::Instant;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let data = std::fs::read(&a[1]).unwrap();
    let n = a.get(2).map_or(1, |s| s.parse::<usize>().unwrap()) << 20;
    let d = &data[..n.min(data.len())];
    let sb_log = a.get(3).map_or(16, |s| s.parse().unwrap());
    let mut cfg = clc::Config::default();
    cfg.gpu_device = a.get(4).cloned().unwrap_or("pthread".into());
    let t = Instant::now();
    let g = clc::gpu::Gpu::open(&cfg).unwrap();
    eprintln!("open {:?} {}", t.elapsed(), g.describe());
    let p = EncodeParams { sb_log, ..EncodeParams::default() };
    let enc = lz_ext3_sb::compress(d, &p);
    let t = Instant::now();
    let (r, tm) = g.decompress_sb_batch_timed(&[(&enc, d.len())]).unwrap();
    eprintln!("decode {:?} kernel {} ms", t.elapsed(), tm.kernel_ns as f64 / 1e6);
    let out = r.into_iter().next().unwrap().unwrap();
    assert!(out == d, "differs");
    eprintln!("ok");
}
