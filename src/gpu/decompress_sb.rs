//! Host side of the LZ_EXT3_SB decoder kernel (`kernels/lz_ext3_sb_decompress.cl`): every sub-block of
//! every frame of a launch is one work-group's job; the host reads each frame's table (refusing a bad one
//! before anything reaches the device), writes one descriptor per sub-block, and a frame is `Ok` only when
//! all its sub-blocks are.

use super::cl::{event_span, DevBuf};
use super::device::{Device, Kernels};
use super::Timings;
use crate::codec::lz_ext3_sb::Layout;
use crate::error::{Error, Result};

/// uints per sub-block descriptor.
const DESC: usize = 8;

fn status_text(code: u32) -> &'static str {
    match code {
        1 => "truncated length",
        2 => "literals past input",
        3 => "output overrun",
        4 => "truncated offset",
        5 => "bad match",
        6 => "short output",
        _ => "unknown kernel status",
    }
}

fn decode_err(msg: impl std::fmt::Display) -> Error {
    Error::Decode(format!("lz_ext3_sb (gpu): {msg}"))
}

/// One frame's place in a launch.
struct Placed {
    in_off: usize,
    out_off: usize,
    raw: usize,
    first_sub: usize,
    subs: usize,
}

/// Decodes one launch worth of frames (tables already checked); adds its times to `t`.
fn launch(
    dev: &Device,
    k: &Kernels,
    frames: &[(&[u8], usize)],
    lays: &[Layout],
    t: &mut Timings,
) -> Result<Vec<Result<Vec<u8>>>> {
    let q = &k.queue;
    let ctx = &dev.ctx;
    let (mut ib, mut ob, mut nsub) = (0usize, 0usize, 0usize);
    let mut placed = Vec::with_capacity(frames.len());
    let mut desc: Vec<u32> = Vec::with_capacity(DESC * 64);
    for ((enc, raw), lay) in frames.iter().zip(lays) {
        let p = Placed {
            in_off: ib,
            out_off: ob,
            raw: *raw,
            first_sub: nsub,
            subs: lay.count(),
        };
        for s in 0..lay.count() {
            let (i, o) = (lay.input(s), lay.output(s));
            desc.extend_from_slice(&[
                (p.in_off + i.start) as u32,
                i.len() as u32,
                (p.out_off + o.start) as u32,
                o.start as u32,
                o.len() as u32,
                p.first_sub as u32,
                lay.sb_log,
                0,
            ]);
        }
        nsub += lay.count();
        ib += enc.len().next_multiple_of(8);
        ob += raw.next_multiple_of(8);
        placed.push(p);
    }
    let mut input = DevBuf::<u8>::new(ctx, ib, "allocating the input")?;
    let mut d_desc = DevBuf::<u32>::new(ctx, desc.len(), "allocating tables")?;
    let output = DevBuf::<u8>::new(ctx, ob, "allocating the output")?;
    let mut progress = DevBuf::<u32>::new(ctx, nsub, "allocating tables")?;
    let status = DevBuf::<u32>::new(ctx, nsub, "allocating tables")?;
    let mut ticket = DevBuf::<u32>::new(ctx, 1, "allocating tables")?;

    let mut up = Vec::with_capacity(frames.len() + 3);
    up.push(q.write_now(&mut d_desc, 0, &desc)?);
    up.push(q.fill(&mut progress, 0u32)?);
    up.push(q.fill(&mut ticket, 0u32)?);
    for ((enc, _), p) in frames.iter().zip(&placed) {
        if !enc.is_empty() {
            up.push(q.write(&mut input, p.in_off, enc)?);
        }
    }
    let w = dev.sb_w;
    let groups = nsub
        .min((dev.info.compute_units.max(1) as usize) * 32)
        .max(1);
    let kev = q.launch(
        &k.decompress_sb,
        &[
            &input,
            &d_desc,
            &output,
            &progress,
            &status,
            &ticket,
            &(nsub as u32),
        ],
        groups * w,
        Some(w),
    )?;
    let mut st = vec![u32::MAX; nsub];
    let ev_st = q.read_now(&status, 0, &mut st)?;
    let ok: Vec<Option<u32>> = placed
        .iter()
        .map(|p| {
            st[p.first_sub..p.first_sub + p.subs]
                .iter()
                .copied()
                .find(|&c| c != 0)
        })
        .collect();
    let mut outs: Vec<Vec<u8>> = placed
        .iter()
        .zip(&ok)
        .map(|(p, bad)| {
            if bad.is_none() {
                vec![0u8; p.raw]
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut down = vec![ev_st];
    let mut reads = || -> Result<()> {
        for (p, o) in placed.iter().zip(outs.iter_mut()) {
            if !o.is_empty() {
                down.push(q.read(&output, p.out_off, o)?);
            }
        }
        Ok(())
    };
    let r = reads();
    let fin = q.finish(); // before `outs` can be dropped, even on error
    r.and(fin)?;
    t.upload_ns += up
        .first()
        .zip(up.last())
        .map_or(0, |(a, b)| event_span(a, b));
    t.kernel_ns += event_span(&kev, &kev);
    t.download_ns += down
        .first()
        .zip(down.last())
        .map_or(0, |(a, b)| event_span(a, b));
    t.bytes_in += frames.iter().map(|(e, _)| e.len() as u64).sum::<u64>();
    t.bytes_out += frames.iter().map(|(_, r)| *r as u64).sum::<u64>();
    Ok(outs
        .into_iter()
        .zip(ok)
        .map(|(o, bad)| match bad {
            None => Ok(o),
            Some(code) => Err(decode_err(status_text(code))),
        })
        .collect())
}

/// Decodes LZ_EXT3_SB `frames` on one device in launches of at most `batch` frames.
pub(crate) fn run(
    dev: &Device,
    frames: &[(&[u8], usize)],
    batch: usize,
    t: &mut Timings,
) -> Result<Vec<Result<Vec<u8>>>> {
    let k = dev.k.lock();
    let mut out: Vec<Option<Result<Vec<u8>>>> = (0..frames.len()).map(|_| None).collect();
    // Frames whose table is refused never reach the device.
    let mut ok = Vec::new();
    let mut lays = Vec::new();
    for (i, (enc, raw)) in frames.iter().enumerate() {
        let lay = if *raw > crate::format::frame::MAX_FRAME as usize {
            Err(decode_err("frame over the 16 MiB limit"))
        } else {
            Layout::parse(enc, *raw)
        };
        match lay {
            Ok(l) => {
                ok.push(i);
                lays.push(l);
            }
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    let budget = (dev.max_alloc as usize).clamp(16 << 20, 1 << 30);
    let parts = super::launches(ok.len(), batch, budget, |j| {
        frames[ok[j]].0.len() + frames[ok[j]].1
    });
    for r in parts {
        let part: Vec<(&[u8], usize)> = ok[r.clone()].iter().map(|&x| frames[x]).collect();
        let res = super::decompress::finished(&k, launch(dev, &k, &part, &lays[r.clone()], t))?;
        for (x, v) in ok[r].iter().zip(res) {
            out[*x] = Some(v);
        }
    }
    Ok(out
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(decode_err("not decoded"))))
        .collect())
}
