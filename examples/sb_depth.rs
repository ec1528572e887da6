//! Dependency depth of LZ_EXT3_SB frames (design aid for the bulk-synchronous GPU decoder, not a
//! benchmark): how many launches ("rounds") a frame needs when launch 1 walks every sub-block at once and
//! each later launch copies the matches whose source bytes became final in an earlier launch.
//!
//! ```text
//! cargo run --release --example sb_depth -- FILE [FRAME_MIB] [SB_LOG] [MAX_FRAMES] [DEPTH_BOUND]
//! ```
//!
//! A byte's round: literals 1; a match's bytes max(1, r(b) for each byte b it reads in its own sub-block
//! (resolved in walk order inside a launch), r(b) + 1 for each byte of another sub-block). A frame needs
//! as many launches as its largest round. With DEPTH_BOUND (the encoder's `max_depth`, 0 = none) the
//! frames are encoded with that bound. Prints, per frame size, the distribution of frames' rounds, the
//! share of matches (and of output bytes) final after each round, and the ratio.
use clc::codec::{lz_ext3_sb, EncodeParams};
use rayon::prelude::*;

/// Per-frame result: max round, matches per round, bytes per round.
struct Depth {
    rounds: u32,
    matches: Vec<u64>,
    bytes: Vec<u64>,
}

fn depth(enc: &[u8], n: usize) -> Depth {
    let lay = lz_ext3_sb::Layout::parse(enc, n).expect("own frame");
    let mut r = vec![0u16; n];
    let mut d = Depth {
        rounds: 1,
        matches: vec![0; 2],
        bytes: vec![0; 2],
    };
    let bump = |d: &mut Depth, k: u32, len: usize, m: bool| {
        let k = k as usize;
        if d.matches.len() <= k {
            d.matches.resize(k + 1, 0);
            d.bytes.resize(k + 1, 0);
        }
        d.matches[k] += m as u64;
        d.bytes[k] += len as u64;
    };
    for k in 0..lay.count() {
        let b0 = lay.output(k).start;
        for q in lz_ext3_sb::Sequences::new(enc, &lay, k) {
            let q = q.expect("own frame");
            r[q.lit_at..q.at].fill(1);
            bump(&mut d, 1, q.lit, false);
            if q.len == 0 {
                continue;
            }
            let s = q.at - q.off;
            let mut rd = 1u16;
            for (x, &v) in r.iter().enumerate().skip(s).take(q.off.min(q.len)) {
                rd = rd.max(if x >= b0 { v } else { v + 1 });
            }
            r[q.at..q.at + q.len].fill(rd);
            bump(&mut d, rd as u32, q.len, true);
            d.rounds = d.rounds.max(rd as u32);
        }
    }
    d
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = std::fs::read(&args[1]).unwrap();
    let frame = args.get(2).map_or(4, |s| s.parse::<usize>().unwrap()) << 20;
    let sb_log: u32 = args.get(3).map_or(16, |s| s.parse().unwrap());
    let take: usize = args.get(4).map_or(usize::MAX, |s| s.parse().unwrap());
    let max_depth: u32 = args.get(5).map_or(0, |s| s.parse().unwrap());
    let p = EncodeParams {
        sb_log,
        ..EncodeParams::default()
    };
    let frames: Vec<&[u8]> = data.chunks(frame).take(take).collect();
    let res: Vec<(usize, Depth)> = frames
        .par_iter()
        .map(|f| {
            let mut enc = Vec::new();
            lz_ext3_sb::Encoder::new(&p)
                .with_max_depth(max_depth)
                .compress(f, &mut enc);
            (enc.len(), depth(&enc, f.len()))
        })
        .collect();
    let raw: usize = frames.iter().map(|f| f.len()).sum();
    let stored: usize = res.iter().map(|(s, _)| s).sum();
    let mut rounds: Vec<u32> = res.iter().map(|(_, d)| d.rounds).collect();
    rounds.sort_unstable();
    let q = |f: f64| rounds[((rounds.len() - 1) as f64 * f) as usize];
    println!(
        "frames {} of {} MiB, sub-blocks 2^{sb_log}, depth bound {max_depth}: ratio {:.4}; rounds per frame min {} median {} p90 {} max {}",
        rounds.len(),
        frame >> 20,
        stored as f64 / raw as f64,
        q(0.0),
        q(0.5),
        q(0.9),
        q(1.0)
    );
    let mut m = vec![0u64; 1];
    let mut b = vec![0u64; 1];
    for (_, d) in &res {
        if m.len() < d.matches.len() {
            m.resize(d.matches.len(), 0);
            b.resize(d.matches.len(), 0);
        }
        for k in 0..d.matches.len() {
            m[k] += d.matches[k];
            b[k] += d.bytes[k];
        }
    }
    let (tm, tb) = (m.iter().sum::<u64>(), b.iter().sum::<u64>());
    let (mut cm, mut cb) = (0u64, 0u64);
    print!("final after round r (matches %, bytes %):");
    for k in 1..m.len() {
        cm += m[k];
        cb += b[k];
        if k <= 8 || k.is_power_of_two() || k + 1 == m.len() {
            print!(
                " r{k} {:.1}/{:.1}",
                100.0 * cm as f64 / tm as f64,
                100.0 * cb as f64 / tb as f64
            );
        }
    }
    println!();
}
