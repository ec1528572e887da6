//! GPU throughput on one file: `cargo run --release --example gpu_bench -- FILE [--device SEL]
//! [--frame-size BYTES] [--batch N] [--repeat N]`.
//!
//! Cuts FILE into frames (default FRAME_SIZE = 4 MiB), then for LZ_EXT3 compress, decompress and
//! FNV-1a 64 prints: kernel-only throughput (data already on the device; OpenCL profiling events from
//! the first kernel command to the last), end-to-end throughput (host → device → host, wall clock
//! of the batch calls) and the compression ratio. Batches hold COMPRESSOR_BATCH_SIZE /
//! DECOMPRESSOR_BATCH_SIZE frames. Every GPU block is checked against the CPU decoder once.
//! Also clc's CPU encoder (every core) and lz4_flex on the same frames, for the ratio. With
//! `--compress-only` the decompression and FNV rows are left out. The codec is the config's
//! (LZ_EXT3_SB in sub-blocks of SUBBLOCK_SIZE, `--subblock-size BYTES`, 0 for plain LZ_EXT3), for the
//! GPU and the CPU encoder alike; decompression uses the kernel of that codec. `--dump FILE` writes the
//! GPU's blocks, one after the other, so that two kernel versions can be compared with `cmp`. The
//! compression stages' times are printed in ms and shares (exact with `CLC_GPU_QUEUES=1`), and the
//! compression kernels' wall (`Timings::kernel_wall_ns`: with two queues their launches overlap).

use clc::codec::{self, Codec};
use clc::gpu::{Gpu, Timings};
use clc::Config;
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

struct Row {
    name: &'static str,
    raw: u64,
    kernel_ns: u64,
    wall: Duration,
    ratio: Option<f64>,
}

fn gbs(bytes: u64, ns: u64) -> String {
    if ns == 0 {
        "n/a".into()
    } else {
        format!("{:.3}", bytes as f64 / ns as f64)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first().filter(|a| !a.starts_with("--")) else {
        eprintln!(
            "usage: gpu_bench FILE [--device SEL] [--frame-size BYTES] [--batch N] [--repeat N]"
        );
        std::process::exit(2);
    };
    let mut cfg = Config::default();
    if let Some(d) = arg(&args, "--device") {
        cfg.gpu_device = d;
    }
    if let Some(b) = arg(&args, "--batch").and_then(|v| v.parse().ok()) {
        cfg.compressor_batch_size = b;
        cfg.decompressor_batch_size = b;
    }
    if let Some(s) = arg(&args, "--subblock-size").and_then(|v| v.parse().ok()) {
        cfg.subblock_size = s;
    }
    let frame = arg(&args, "--frame-size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(cfg.frame_size as usize);
    let repeat: usize = arg(&args, "--repeat")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let data = std::fs::read(path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1)
    });
    let t0 = Instant::now();
    let gpu = Gpu::open(&cfg).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let open = t0.elapsed();
    let frames: Vec<&[u8]> = data.chunks(frame.max(1)).collect();
    let codec = gpu.compress_codec();
    assert_eq!(
        codec,
        cfg.frame_codec(),
        "the GPU writes the config's codec"
    );
    println!("device   {}", gpu.describe());
    println!("codec    {codec:?} (SUBBLOCK_SIZE {})", cfg.subblock_size);
    println!(
        "input    {path}: {} bytes, {} frames of {} bytes, batch {}/{}, open+build {:.2} s, best of {repeat}",
        data.len(),
        frames.len(),
        frame,
        cfg.compressor_batch_size,
        cfg.decompressor_batch_size,
        open.as_secs_f64()
    );

    // Warm-up (first launches allocate and may finish compiling), then the best of `repeat` runs.
    let best = |f: &dyn Fn() -> (Timings, Duration)| {
        f();
        (0..repeat)
            .map(|_| f())
            .min_by_key(|(t, w)| (t.kernel_wall_ns, t.kernel_ns, *w))
            .unwrap()
    };
    let run_batches = |batch: usize, one: &dyn Fn(usize, usize) -> Timings| {
        let start = Instant::now();
        let mut t = Timings::default();
        let mut i = 0;
        while i < frames.len() {
            let j = (i + batch.max(1)).min(frames.len());
            let b = one(i, j);
            t.kernel_ns += b.kernel_ns;
            t.kernel_wall_ns += b.kernel_wall_ns;
            for (a, x) in t.stages_ns.iter_mut().zip(b.stages_ns) {
                *a += x;
            }
            t.bytes_out += b.bytes_out;
            i = j;
        }
        (t, start.elapsed())
    };

    let enc: Vec<Vec<u8>> = frames
        .chunks(cfg.compressor_batch_size.max(1))
        .flat_map(|b| gpu.compress_batch(b).unwrap())
        .collect();
    for (e, f) in enc.iter().zip(&frames) {
        assert!(
            codec::decode(codec, e, f.len()).is_ok_and(|d| d == *f),
            "GPU block fails the CPU decoder"
        );
    }
    let packed: u64 = enc.iter().map(|e| e.len() as u64).sum();
    if let Some(path) = arg(&args, "--dump") {
        std::fs::write(&path, enc.concat()).unwrap_or_else(|e| {
            eprintln!("{path}: {e}");
            std::process::exit(1)
        });
    }
    let jobs: Vec<(&[u8], usize)> = enc
        .iter()
        .zip(&frames)
        .map(|(e, f)| (e.as_slice(), f.len()))
        .collect();

    let (ct, cw) = best(&|| {
        run_batches(cfg.compressor_batch_size, &|i, j| {
            gpu.compress_batch_timed(&frames[i..j]).unwrap().1
        })
    });
    let only_c = args.iter().any(|a| a == "--compress-only");
    let skip = || (Timings::default(), Duration::ZERO);
    let (dt, dw) = if only_c {
        skip()
    } else {
        best(&|| {
            run_batches(cfg.decompressor_batch_size, &|i, j| {
                let (out, t) = if codec == Codec::LzExt3Sb {
                    gpu.decompress_sb_batch_timed(&jobs[i..j]).unwrap()
                } else {
                    gpu.decompress_batch_timed(&jobs[i..j]).unwrap()
                };
                assert!(out.iter().all(|o| o.is_ok()));
                t
            })
        })
    };
    let (ht, hw) = if only_c {
        skip()
    } else {
        best(&|| {
            run_batches(cfg.compressor_batch_size, &|i, j| {
                gpu.fnv1a64_batch_timed(&frames[i..j]).unwrap().1
            })
        })
    };
    let cpu_enc_start = Instant::now();
    let params = cfg.encode_params();
    let cpu_packed: u64 = {
        use rayon::prelude::*;
        frames
            .par_iter()
            .map(|f| codec::encode(codec, f, &params).len().min(f.len()) as u64)
            .sum()
    };
    let cpu_enc = cpu_enc_start.elapsed();
    let cpu_start = Instant::now();
    for (e, f) in enc.iter().zip(&frames) {
        std::hint::black_box(codec::decode(codec, e, f.len()).unwrap());
    }
    let cpu_dec = cpu_start.elapsed();

    let lz4_start = Instant::now();
    let lz4: u64 = frames
        .iter()
        .map(|f| lz4_flex::block::compress(f).len() as u64)
        .sum();
    let lz4_wall = lz4_start.elapsed();
    let raw = data.len() as u64;
    let rows = [
        Row {
            name: "compress",
            raw,
            kernel_ns: ct.kernel_ns,
            wall: cw,
            ratio: Some(packed as f64 / raw.max(1) as f64),
        },
        Row {
            name: "decompress",
            raw,
            kernel_ns: dt.kernel_ns,
            wall: dw,
            ratio: None,
        },
        Row {
            name: "fnv1a64",
            raw,
            kernel_ns: ht.kernel_ns,
            wall: hw,
            ratio: None,
        },
        Row {
            name: "cpu decode (1 thread)",
            raw,
            kernel_ns: 0,
            wall: cpu_dec,
            ratio: None,
        },
        Row {
            name: "clc cpu encoder (all)",
            raw,
            kernel_ns: 0,
            wall: cpu_enc,
            ratio: Some(cpu_packed as f64 / raw.max(1) as f64),
        },
        Row {
            name: "lz4_flex (1 thread)",
            raw,
            kernel_ns: 0,
            wall: lz4_wall,
            ratio: Some(lz4 as f64 / raw.max(1) as f64),
        },
    ];
    println!(
        "{:<22} {:>12} {:>12} {:>8}",
        "op", "kernel GB/s", "e2e GB/s", "ratio"
    );
    for r in rows {
        let ratio = r.ratio.map_or(String::new(), |x| format!("{x:.4}"));
        let e2e = gbs(r.raw, r.wall.as_nanos() as u64);
        println!(
            "{:<22} {:>12} {:>12} {:>8}",
            r.name,
            gbs(r.raw, r.kernel_ns),
            e2e,
            ratio
        );
    }
    println!(
        "gpu / cpu encoder size: {:.4}",
        packed as f64 / cpu_packed.max(1) as f64
    );
    let total: u64 = ct.stages_ns.iter().sum::<u64>().max(1);
    let parts: Vec<String> = clc::gpu::COMPRESS_STAGES
        .iter()
        .zip(ct.stages_ns)
        .map(|(n, v)| {
            format!(
                "{n} {:.2} ms {:.0}%",
                v as f64 / 1e6,
                100.0 * v as f64 / total as f64
            )
        })
        .collect();
    println!("compress kernel time: {}", parts.join(", "));
    println!(
        "compress kernel wall GB/s: {} (first kernel to last of each batch call, overlapping launches counted once)",
        gbs(raw, ct.kernel_wall_ns)
    );
}
