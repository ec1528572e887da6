//! Simulation (design aid, not a benchmark): critical path of decoding LZ_EXT3_SB frames with one
//! walker per sub-block, (a) in order, waiting at each match until its source is final; (b) dataflow,
//! each match copied as soon as its source is final and the walker has parsed it.
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
