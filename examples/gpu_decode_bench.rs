//! LZ_EXT3_SB decoding on an OpenCL device against the CPU, on one file:
//!
//! ```text
//! cargo run --release --example gpu_decode_bench -- FILE [--device SEL] [--frame-size BYTES]
//!     [--batch N] [--repeat N] [--sb-log L] [--max-depth D] [--v1]
//! ```
//!
//! FILE is cut into frames (default 4 MiB, FRAME_SIZE), each encoded by the CPU encoder as LZ_EXT3_SB
//! (sub-blocks of 2^L bytes, default 16) and as plain LZ_EXT3 (v1, for the ratio). Then, best of
//! `--repeat` (default 5) after a warm-up, in launches of `--batch` frames (default: all frames):
//! the kernel's own time (OpenCL profiling events, data already on the device) and the end-to-end time of
//! the batch calls (upload, kernel, download into fresh host buffers); every frame is compared with the
//! input; the v2 row also gives the pointer-jumping passes the batches took and the time of the walk
//! within the kernel time. `--max-depth D` encodes the v2 frames with the encoder's depth bound
//! (docs/GPU.md). `--v1` adds the old one-work-group-per-frame kernel on the v1 frames. The CPU rows decode the
//! same frames on every thread of the machine (rayon, one frame per task).

use clc::codec::{lz_ext3, lz_ext3_sb, EncodeParams};
use clc::gpu::{Gpu, Timings};
use clc::Config;
use rayon::prelude::*;
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn gbs(bytes: u64, ns: u64) -> String {
    if ns == 0 {
        "n/a".into()
    } else {
        format!("{:.2}", bytes as f64 / ns as f64)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first().filter(|a| !a.starts_with("--")) else {
        eprintln!("usage: gpu_decode_bench FILE [--device SEL] [--frame-size BYTES] [--batch N] [--repeat N] [--sb-log L] [--v1]");
        std::process::exit(2);
    };
    let mut cfg = Config::default();
    if let Some(d) = arg(&args, "--device") {
        cfg.gpu_device = d;
    }
    let data = std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1)
    });
    let frame: usize = arg(&args, "--frame-size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(4 << 20);
    let frames: Vec<&[u8]> = data.chunks(frame.max(1)).collect();
    let batch: usize = arg(&args, "--batch")
        .and_then(|v| v.parse().ok())
        .unwrap_or(frames.len());
    cfg.decompressor_batch_size = batch.max(1);
    let repeat: usize = arg(&args, "--repeat")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let sb_log: u32 = arg(&args, "--sb-log")
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let max_depth: u32 = arg(&args, "--max-depth")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let p = EncodeParams {
        sb_log,
        ..EncodeParams::default()
    };
    let raw = data.len() as u64;

    let v2: Vec<Vec<u8>> = frames
        .par_iter()
        .map(|f| {
            let mut out = Vec::new();
            lz_ext3_sb::Encoder::new(&p)
                .with_max_depth(max_depth)
                .compress(f, &mut out);
            out
        })
        .collect();
    let v1: Vec<Vec<u8>> = frames
        .par_iter()
        .map(|f| lz_ext3::compress(f, &p))
        .collect();
    let size = |v: &[Vec<u8>]| {
        v.iter()
            .zip(&frames)
            .map(|(e, f)| e.len().min(f.len()) as u64)
            .sum::<u64>()
    };
    let (s2, s1) = (size(&v2), size(&v1));
    let l4: u64 = frames
        .par_iter()
        .map(|f| lz4_flex::block::compress(f).len() as u64)
        .sum();

    let t0 = Instant::now();
    let gpu = Gpu::open(&cfg).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let open = t0.elapsed();
    println!("device   {}", gpu.describe());
    println!(
        "input    {path}: {raw} bytes, {} frames of {frame} bytes, sub-blocks of {} bytes, depth bound {max_depth}, batch {batch}, open {:.3} s, best of {repeat}",
        frames.len(),
        1u64 << sb_log,
        open.as_secs_f64()
    );
    println!(
        "ratio    v2 LZ_EXT3_SB {:.4}   v1 LZ_EXT3 {:.4} (v2 {:+.2} %)   lz4_flex {:.4}",
        s2 as f64 / raw as f64,
        s1 as f64 / raw as f64,
        (s2 as f64 / s1 as f64 - 1.0) * 100.0,
        l4 as f64 / raw as f64
    );

    let best = |f: &dyn Fn() -> (Timings, Duration)| {
        f();
        (0..repeat)
            .map(|_| f())
            .min_by_key(|(t, w)| (t.kernel_ns, *w))
            .unwrap()
    };
    let jobs = |enc: &[Vec<u8>]| -> Vec<(Vec<u8>, usize)> {
        enc.iter()
            .zip(&frames)
            .map(|(e, f)| (e.clone(), f.len()))
            .collect()
    };
    let run = |owned: &[(Vec<u8>, usize)], sb: bool| {
        let js: Vec<(&[u8], usize)> = owned.iter().map(|(e, n)| (e.as_slice(), *n)).collect();
        let mut wall = Duration::ZERO;
        let mut t = Timings::default();
        for (c, want) in js.chunks(batch.max(1)).zip(frames.chunks(batch.max(1))) {
            let start = Instant::now();
            let (out, b) = if sb {
                gpu.decompress_sb_batch_timed(c).unwrap()
            } else {
                gpu.decompress_batch_timed(c).unwrap()
            };
            wall += start.elapsed();
            for (o, f) in out.iter().zip(want) {
                assert!(
                    o.as_ref().is_ok_and(|o| o == f),
                    "GPU decode differs from the input"
                );
            }
            t.kernel_ns += b.kernel_ns;
            t.upload_ns += b.upload_ns;
            t.download_ns += b.download_ns;
            t.rounds += b.rounds;
            t.stages_ns[0] += b.stages_ns[0];
            t.stages_ns[1] += b.stages_ns[1];
            t.stages_ns[2] += b.stages_ns[2];
        }
        // The comparisons are not part of the end-to-end time.
        (t, wall)
    };
    // The CPU decoder's bytes equal the input for every frame, so the GPU's (compared with the input
    // below) equal the CPU decoder's too.
    (0..frames.len()).into_par_iter().for_each(|i| {
        let d = lz_ext3_sb::decompress(&v2[i], frames[i].len()).expect("CPU decode");
        assert!(
            d == frames[i],
            "CPU decode of frame {i} differs from the input"
        );
    });
    let j2 = jobs(&v2);
    let (t2, w2) = best(&|| run(&j2, true));
    println!(
        "{:<34} {:>12} {:>10} {:>12} {:>12}",
        "decoder", "kernel GB/s", "e2e GB/s", "upload ms", "download ms"
    );
    let row = |name: &str, t: &Timings, w: Duration| {
        println!(
            "{:<34} {:>12} {:>10} {:>12.2} {:>12.2}",
            name,
            gbs(raw, t.kernel_ns),
            gbs(raw, w.as_nanos() as u64),
            t.upload_ns as f64 / 1e6,
            t.download_ns as f64 / 1e6
        );
    };
    row("gpu LZ_EXT3_SB (v2, this kernel)", &t2, w2);
    println!(
        "  passes {} (summed over batches), walk {:.2} ms, walk + pass 1 {:.2} ms, of {:.2} ms kernel",
        t2.rounds,
        t2.stages_ns[0] as f64 / 1e6,
        t2.stages_ns[1] as f64 / 1e6,
        t2.kernel_ns as f64 / 1e6
    );
    if t2.stages_ns[2] > 0 {
        println!(
            "  pending after pass 1: {} bytes ({:.2} %)",
            t2.stages_ns[2],
            t2.stages_ns[2] as f64 * 100.0 / raw as f64
        );
    }
    if args.iter().any(|a| a == "--v1") {
        let j1 = jobs(&v1);
        let (t1, w1) = best(&|| run(&j1, false));
        row("gpu LZ_EXT3 (v1, one group/frame)", &t1, w1);
    }
    let cpu = |f: &(dyn Fn(usize) -> Vec<u8> + Sync)| {
        let go = || {
            let s = Instant::now();
            let n: usize = (0..frames.len()).into_par_iter().map(|i| f(i).len()).sum();
            assert_eq!(n as u64, raw);
            s.elapsed()
        };
        go();
        (0..repeat).map(|_| go()).min().unwrap()
    };
    let threads = rayon::current_num_threads();
    let c1 = cpu(&|i| lz_ext3::decompress(&v1[i], frames[i].len()).unwrap());
    let c2 = cpu(&|i| lz_ext3_sb::decompress(&v2[i], frames[i].len()).unwrap());
    let z = Timings::default();
    row(&format!("cpu LZ_EXT3_SB, {threads} threads"), &z, c2);
    row(&format!("cpu LZ_EXT3 (v1), {threads} threads"), &z, c1);
}
