//! Simulation (design aid, not a benchmark): critical path of decoding LZ_EXT3_SB frames with one
//! walker per sub-block, (a) in order, waiting at each match until its source is final; (b) dataflow,
//! each match copied as soon as its source is final and the walker has parsed it; (c) a model of the
//! out-of-order kernel of run 4 (`lz_ext3_sb_decompress_ooo.cl`, since removed) in iterations of its loop: windows of 32
//! sequences, rounds, set-aside matches retried 32 at a time cycling over the queue, against the same
//! with every queued match retried at every iteration (no latency to notice that a source is final).
use clc::codec::{lz_ext3_sb, EncodeParams};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = std::fs::read(&args[1]).unwrap();
    let frame = args.get(2).map_or(4, |s| s.parse::<usize>().unwrap()) << 20;
    let sb_log: u32 = args.get(3).map_or(16, |s| s.parse().unwrap());
    let p = EncodeParams {
        sb_log,
        ..EncodeParams::default()
    };
    let (mut tot_work, mut tot_a, mut tot_b, mut maxsub_total) = (0f64, 0f64, 0f64, 0f64);
    for f in data
        .chunks(frame)
        .take(args.get(4).map_or(1000, |s| s.parse().unwrap()))
    {
        let enc = lz_ext3_sb::compress(f, &p);
        let lay = lz_ext3_sb::Layout::parse(&enc, f.len()).unwrap();
        let n = f.len();
        let mut ta = vec![0f32; n];
        let mut tb = vec![0f32; n];
        let mut tc = vec![0f32; n];
        let mut pc = vec![0f32; n];
        let mut work = 0f64;
        let mut maxsub = 0f64;
        for k in 0..lay.count() {
            let inp = &enc[lay.input(k)];
            let mut op = lay.output(k).start;
            let (mut ca, mut cb) = (0f32, 0f32);
            let mut cc = 0f32;
            let b0 = op;
            let mut ip = 0;
            let mut sub_work = 0f64;
            while ip < inp.len() {
                let t = inp[ip];
                ip += 1;
                let mut lit = (t >> 4) as usize;
                if lit == 15 {
                    loop {
                        let b = inp[ip];
                        ip += 1;
                        lit += b as usize;
                        if b != 255 {
                            break;
                        }
                    }
                }
                let cost_l = 1.0 + lit as f32 / 32.0;
                ca += cost_l;
                cb += cost_l;
                cc += cost_l;
                for x in op..op + lit {
                    ta[x] = ca;
                    tb[x] = cb;
                    tc[x] = cc;
                }
                op += lit;
                ip += lit;
                sub_work += cost_l as f64;
                if ip >= inp.len() {
                    break;
                }
                let off =
                    inp[ip] as usize | (inp[ip + 1] as usize) << 8 | (inp[ip + 2] as usize) << 16;
                ip += 3;
                let mut ml = (t & 15) as usize;
                if ml == 15 {
                    loop {
                        let b = inp[ip];
                        ip += 1;
                        ml += b as usize;
                        if b != 255 {
                            break;
                        }
                    }
                }
                ml += 4;
                let s = op - off;
                let span = off.min(ml);
                let ra = ta[s..s + span].iter().cloned().fold(0f32, f32::max);
                let rb = tb[s..s + span].iter().cloned().fold(0f32, f32::max);
                let rc = (s..s + span)
                    .map(|x| if x >= b0 { tc[x] } else { pc[x] })
                    .fold(0f32, f32::max);
                let cost = 1.0 + ml as f32 / 32.0;
                let done_c = cc.max(rc) + cost;
                cc += 1.0;
                ca = ca.max(ra) + cost;
                let done_b = cb.max(rb) + cost;
                cb += 1.0; // the walker only parses past it
                for x in op..op + ml {
                    ta[x] = ca;
                    tb[x] = done_b;
                    tc[x] = done_c;
                }
                op += ml;
                sub_work += cost as f64;
            }
            let mut m = 0f32;
            for x in b0..op {
                m = m.max(tc[x]);
                pc[x] = m;
            }
            work += sub_work;
            maxsub = maxsub.max(sub_work);
        }
        let a = ta.iter().cloned().fold(0f32, f32::max) as f64;
        let b = tb.iter().cloned().fold(0f32, f32::max) as f64;
        let c = tc.iter().cloned().fold(0f32, f32::max) as f64;
        println!("   hwm-dataflow path {:.0} (x{:.1})", c, work / c);
        let (cyc, walk) = kernel_model(&enc, &lay, n, false);
        let (all, _) = kernel_model(&enc, &lay, n, true);
        let front = kernel_model_front(&enc, &lay, n);
        println!(
            "   kernel model, iterations: frame {cyc:.0} (queue cycled 32 at a time) | {all:.0} (all retried each iteration) | {front:.0} (the 32 lowest) | longest walk {walk:.0}"
        );
        tot_work += work;
        tot_a += a;
        tot_b += b;
        maxsub_total += maxsub;
        println!("frame: subs {} work {:.0} maxsub {:.0} | in-order path {:.0} (x{:.1}) | dataflow path {:.0} (x{:.1})",
            lay.count(), work, maxsub, a, work / a, b, work / b);
    }
    println!(
        "TOTAL work {:.0} sum-maxsub {:.0} in-order {:.0} dataflow {:.0}",
        tot_work, maxsub_total, tot_a, tot_b
    );
}

/// One sequence: literals at `lit_at` (`lit` bytes), then a match at `at` (`off`, `len`; len 0: none).
struct Sq {
    lit_at: usize,
    lit: usize,
    at: usize,
    off: usize,
    len: usize,
}

fn sequences(enc: &[u8], lay: &lz_ext3_sb::Layout, k: usize) -> Vec<Sq> {
    lz_ext3_sb::Sequences::new(enc, lay, k)
        .map(|q| {
            let q = q.expect("own frame");
            Sq {
                lit_at: q.lit_at,
                lit: q.lit,
                at: q.at,
                off: q.off,
                len: q.len,
            }
        })
        .collect()
}

/// The out-of-order kernel's loop, one iteration = 1, every sub-block's group started at 0 (all
/// resident). A match is copied in an iteration that starts when every byte it reads is final.
/// `all`: the retry iteration looks at every queued match, not 32 of them. Returns the frame's end and
/// the longest walk (iterations until a sub-block's last window is done).
fn kernel_model(enc: &[u8], lay: &lz_ext3_sb::Layout, n: usize, all: bool) -> (f64, f64) {
    kernel_model_with(enc, lay, n, if all { 1 } else { 0 })
}

/// As [`kernel_model`], retrying the 32 lowest queued matches at every iteration.
fn kernel_model_front(enc: &[u8], lay: &lz_ext3_sb::Layout, n: usize) -> f64 {
    kernel_model_with(enc, lay, n, 2).0
}

/// `how`: 0 cycle 32 at a time, 1 all, 2 the 32 lowest.
fn kernel_model_with(enc: &[u8], lay: &lz_ext3_sb::Layout, n: usize, how: u32) -> (f64, f64) {
    let all = how == 1;
    const W: usize = 32;
    let mut fin = vec![f64::INFINITY; n];
    // Copies match `s` in the iteration [st, end) if its source is final by `st`.
    fn try_copy(fin: &mut [f64], s: &Sq, st: f64, end: f64) -> bool {
        let a = s.at - s.off;
        let r = fin[a..a + s.off.min(s.len)]
            .iter()
            .cloned()
            .fold(0f64, f64::max);
        if r <= st {
            fin[s.at..s.at + s.len].iter_mut().for_each(|x| *x = end);
            true
        } else {
            false
        }
    }
    let (mut end, mut longest_walk) = (0f64, 0f64);
    for k in 0..lay.count() {
        let seqs = sequences(enc, lay, k);
        let mut t = 0f64;
        let mut queue: Vec<usize> = Vec::new(); // matches set aside, not yet copied (in order)
        let mut rp = 0usize;
        let mut retry = |t: &mut f64, fin: &mut Vec<f64>, queue: &mut Vec<usize>| {
            let st = *t;
            *t += 1.0;
            let (a, b) = if all {
                (0, queue.len())
            } else {
                (rp, (rp + W).min(queue.len()))
            };
            let mut kept = Vec::with_capacity(queue.len());
            let mut removed = 0;
            for (i, &q) in queue.iter().enumerate() {
                if i >= a && i < b && try_copy(fin, &seqs[q], st, *t) {
                    removed += 1;
                } else {
                    kept.push(q);
                }
            }
            *queue = kept;
            rp = if how != 0 { 0 } else { b - removed };
            if rp >= queue.len() {
                rp = 0;
            }
        };
        for (w, c) in seqs.chunks(W).enumerate() {
            // Parse, literals and a first try; then rounds while some match got copied.
            let st = t;
            t += 1.0;
            for s in c {
                fin[s.lit_at..s.lit_at + s.lit]
                    .iter_mut()
                    .for_each(|x| *x = t);
            }
            let mut left: Vec<usize> = (0..c.len()).filter(|&i| c[i].len > 0).collect();
            left.retain(|&i| !try_copy(&mut fin, &c[i], st, t));
            while !left.is_empty() {
                let st = t;
                t += 1.0;
                let before = left.len();
                left.retain(|&i| !try_copy(&mut fin, &c[i], st, t));
                if left.len() == before {
                    break;
                }
            }
            queue.extend(left.iter().map(|&i| w * W + i));
            if !queue.is_empty() {
                retry(&mut t, &mut fin, &mut queue);
            }
        }
        longest_walk = longest_walk.max(t);
        let mut guard = 0;
        while !queue.is_empty() && guard < 10_000_000 {
            retry(&mut t, &mut fin, &mut queue);
            guard += 1;
        }
        end = end.max(t);
    }
    (end, longest_walk)
}
