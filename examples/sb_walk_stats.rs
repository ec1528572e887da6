//! Design aid for the GPU walk (docs/GPU.md run 46), CPU only: how many sequences each sub-block of a
//! file's LZ_EXT3_SB frames holds (the walk's serial chain is one sub-block's, or one segment's between
//! mid-points), and what the walk leaves to the pointer-jumping passes: the bytes still pending after it
//! (a match byte is final in the walk only when its source chain, followed up to COLLAPSE hops through
//! earlier windows of 32 sequences of its own sub-block, reaches a literal) and the 2 KiB tiles all final.
//!
//! ```text
//! cargo run --release --example sb_walk_stats -- FILE [FRAME_MIB] [COLLAPSE]
//! ```
use clc::codec::{lz_ext3_sb, EncodeParams};
use rayon::prelude::*;

const FIN: u32 = 0x8000_0000;

/// One frame's counts.
#[derive(Default)]
struct Stats {
    seqs: Vec<usize>,
    input: Vec<usize>,
    literals: u64,
    pending: u64,
    pending_elsewhere: u64,
    tiles: u64,
    final_tiles: u64,
}

fn frame(f: &[u8], collapse: u32) -> Stats {
    let enc = lz_ext3_sb::compress(f, &EncodeParams::default());
    let lay = lz_ext3_sb::Layout::parse(&enc, f.len()).expect("own frame");
    let mut src = vec![0u32; f.len()];
    let mut st = Stats::default();
    for k in 0..lay.count() {
        let sb = lay.output(k).start as u32;
        st.input.push(lay.input(k).len());
        let all: Vec<_> = lz_ext3_sb::Sequences::new(&enc, &lay, k)
            .map(|s| s.expect("own frame"))
            .collect();
        st.seqs.push(all.len());
        for w in all.chunks(32) {
            let lo = w[0].lit_at as u32;
            for s in w {
                for (i, e) in src.iter_mut().enumerate().skip(s.lit_at).take(s.lit) {
                    *e = i as u32 | FIN;
                }
                st.literals += s.lit as u64;
                for i in s.at..s.at + s.len {
                    let mut v = (i - s.off) as u32;
                    for _ in 0..collapse {
                        if v < sb || v >= lo {
                            break;
                        }
                        v = src[v as usize];
                        if v & FIN != 0 {
                            break;
                        }
                    }
                    src[i] = v;
                    if v & FIN == 0 {
                        st.pending += 1;
                        st.pending_elsewhere += u64::from(v < sb);
                    }
                }
            }
        }
    }
    st.tiles = f.len().div_ceil(2048) as u64;
    st.final_tiles = src
        .chunks(2048)
        .filter(|c| c.iter().all(|&v| v & FIN != 0))
        .count() as u64;
    st
}

fn quantiles(v: &mut [usize]) -> String {
    v.sort_unstable();
    let q = |x: f64| v[((v.len() - 1) as f64 * x) as usize];
    format!(
        "mean {:.0} p50 {} p90 {} p99 {} max {}",
        v.iter().sum::<usize>() as f64 / v.len() as f64,
        q(0.5),
        q(0.9),
        q(0.99),
        v[v.len() - 1]
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: sb_walk_stats FILE [FRAME_MIB] [COLLAPSE]");
        std::process::exit(2);
    };
    let data = std::fs::read(path).expect("read input");
    let mib = args
        .get(2)
        .map_or(4, |s| s.parse::<usize>().expect("FRAME_MIB"));
    let collapse: u32 = args.get(3).map_or(8, |s| s.parse().expect("COLLAPSE"));
    let all: Vec<Stats> = data
        .par_chunks(mib << 20)
        .map(|f| frame(f, collapse))
        .collect();
    let mut seqs: Vec<usize> = all.iter().flat_map(|s| s.seqs.iter().copied()).collect();
    let mut input: Vec<usize> = all.iter().flat_map(|s| s.input.iter().copied()).collect();
    let sum = |f: fn(&Stats) -> u64| all.iter().map(f).sum::<u64>();
    let n = data.len() as f64;
    println!(
        "{path}: {} sub-blocks, {} sequences",
        seqs.len(),
        seqs.iter().sum::<usize>()
    );
    println!("sequences per sub-block: {}", quantiles(&mut seqs));
    println!("stored bytes per sub-block: {}", quantiles(&mut input));
    println!(
        "literal bytes {:.3}; pending after the walk {:.3} (source in another sub-block {:.3}); \
         tiles all final {:.3} of {}",
        sum(|s| s.literals) as f64 / n,
        sum(|s| s.pending) as f64 / n,
        sum(|s| s.pending_elsewhere) as f64 / n,
        sum(|s| s.final_tiles) as f64 / sum(|s| s.tiles) as f64,
        sum(|s| s.tiles)
    );
}
