//! Host side of the LZ_EXT3_SB decoder kernels (`kernels/lz_ext3_sb_decompress.cl`): the host reads each
//! frame's table (refusing a bad one before anything reaches the device), writes one descriptor per
//! sub-block, launches the walk (one work-group per sub-block: literals placed, every byte's source
//! written) and then pointer-jumping passes until no byte is pending (at most [`MAX_PASSES`]), and a frame
//! is `Ok` only when all its sub-blocks are well-formed and every byte of the launch is final.

use super::cl::{event_span, DevBuf, Pinned, Queue};
use super::device::{Device, Kernels};
use super::Timings;
use crate::codec::lz_ext3_sb::Layout;
use crate::diag::trace::{self, Stage};
use crate::error::{Error, Result};
use opencl3::context::Context;
use opencl3::event::Event;
use rayon::prelude::*;
use std::time::Instant;

/// uints per sub-block descriptor.
const DESC: usize = 8;
/// Pointer-jumping passes a launch may take: every pass at least doubles the hops a pending byte's
/// source pointer spans, and a chain inside a frame of at most 2^24 bytes has fewer than 2^24 hops, so
/// 24 passes finish any frame (one more for margin). A launch with bytes still pending after the last
/// (which the rule says cannot happen) refuses its frames, and the callers redo them on the CPU.
pub(crate) const MAX_PASSES: u32 = 25;
/// Passes launched between two reads of the count of pending bytes (a pass after one that left nothing
/// pending returns at once on the device).
const PASSES_PER_CHECK: u32 = 4;

fn status_text(code: u32) -> &'static str {
    match code {
        1 => "truncated length",
        2 => "literals past input",
        3 => "output overrun",
        4 => "truncated offset",
        5 => "bad match",
        6 => "short output",
        7 => "bytes still unresolved after the last pass",
        8 => "mid-point not at a sequence start",
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
    /// Its descriptors (segments): `first_sub .. first_sub + subs`.
    first_sub: usize,
    subs: usize,
}

/// A device's buffers for this kernel, kept between launches and grown when a launch needs more:
/// no allocation per launch, and transfers through pinned host memory.
pub(crate) struct Buffers {
    input: DevBuf<u8>,
    output: DevBuf<u8>,
    desc: DevBuf<u32>,
    /// Each output byte's source (its position, FIN set, once final).
    src: DevBuf<u32>,
    status: DevBuf<u32>,
    /// One flag per tile of the jump kernel: all its bytes final.
    done: DevBuf<u8>,
    /// Bytes still pending after each pass, summed over the batch.
    left: DevBuf<u32>,
    /// The order the passes take the tiles in.
    order: DevBuf<u32>,
    pin_in: Pinned,
    pin_out: Pinned,
}

/// Replaces `b` with a buffer a quarter larger than `need` unless it holds `need` already.
fn grow<T>(ctx: &Context, b: &mut DevBuf<T>, need: usize, what: &str) -> Result<()> {
    if b.len() < need {
        *b = DevBuf::new(ctx, need + need / 4, what)?;
    }
    Ok(())
}

impl Buffers {
    fn new(ctx: &Context, q: &Queue) -> Result<Buffers> {
        let t = "allocating tables";
        Ok(Buffers {
            input: DevBuf::new(ctx, 1, t)?,
            output: DevBuf::new(ctx, 1, t)?,
            desc: DevBuf::new(ctx, 1, t)?,
            src: DevBuf::new(ctx, 1, t)?,
            status: DevBuf::new(ctx, 1, t)?,
            done: DevBuf::new(ctx, 1, t)?,
            left: DevBuf::new(ctx, MAX_PASSES as usize + 1, t)?,
            order: DevBuf::new(ctx, 1, t)?,
            pin_in: Pinned::new(ctx, q, 1)?,
            pin_out: Pinned::new(ctx, q, 1)?,
        })
    }

    /// Grows what is too small for `ib` input bytes, `ob` output bytes, `nsub` sub-blocks and `tiles`
    /// tiles of the jump kernel.
    fn fit(
        &mut self,
        ctx: &Context,
        q: &Queue,
        ib: usize,
        ob: usize,
        nsub: usize,
        tiles: usize,
    ) -> Result<()> {
        grow(ctx, &mut self.input, ib, "allocating the input")?;
        grow(ctx, &mut self.output, ob, "allocating the output")?;
        grow(ctx, &mut self.desc, nsub * DESC, "allocating tables")?;
        grow(ctx, &mut self.src, ob, "allocating the source pointers")?;
        grow(ctx, &mut self.status, nsub, "allocating tables")?;
        grow(ctx, &mut self.done, tiles, "allocating tables")?;
        grow(ctx, &mut self.order, tiles, "allocating tables")?;
        self.pin_in.fit(ctx, q, ib)?;
        self.pin_out.fit(ctx, q, ob)
    }
}

/// Where a launch's frames and sub-blocks go: each frame's place, one descriptor per sub-block, and the
/// sizes the buffers need (input and output bytes, sub-blocks).
struct Plan {
    placed: Vec<Placed>,
    desc: Vec<u32>,
    ib: usize,
    ob: usize,
    nsub: usize,
}

/// Lays out `frames` (their tables `lays`) for one launch: one descriptor per segment (a sub-block, or
/// its part between two mid-points; the last word flags a segment that ends before its sub-block's
/// input, whose last sequence must have a match part). Outputs follow each other without a gap, so
/// every output byte belongs to a segment (the jump kernel reads every `src` entry below `ob`).
fn plan(frames: &[(&[u8], usize)], lays: &[Layout]) -> Plan {
    // CLC_GPU_SB_MIDS=0: one segment per sub-block, whatever the frame's mid-points (measurements).
    let mids = crate::diag::knob("CLC_GPU_SB_MIDS", 0..=1, 1) == 1;
    let (mut ib, mut ob, mut nsub) = (0usize, 0usize, 0usize);
    let mut placed = Vec::with_capacity(frames.len());
    let mut desc: Vec<u32> = Vec::with_capacity(DESC * 64);
    for ((enc, raw), lay) in frames.iter().zip(lays) {
        let p = Placed {
            in_off: ib,
            out_off: ob,
            raw: *raw,
            first_sub: nsub,
            subs: 0,
        };
        let mut subs = 0;
        for s in 0..lay.count() {
            let (i, o) = (lay.input(s), lay.output(s));
            // Segments: from the sub-block's start to its first mid-point, ..., from its last to its end.
            let mut cuts = vec![(0usize, 0usize)];
            if mids {
                cuts.extend_from_slice(lay.points(s));
            }
            cuts.push((i.len(), o.len()));
            for c in cuts.windows(2) {
                let ((i0, o0), (i1, o1)) = (c[0], c[1]);
                desc.extend_from_slice(&[
                    (p.in_off + i.start + i0) as u32,
                    (i1 - i0) as u32,
                    (p.out_off + o.start + o0) as u32,
                    (o.start + o0) as u32,
                    (o1 - o0) as u32,
                    p.first_sub as u32,
                    lay.sb_log,
                    u32::from(i1 < i.len()),
                ]);
                subs += 1;
            }
        }
        let p = Placed { subs, ..p };
        nsub += subs;
        ib += enc.len().next_multiple_of(8);
        ob += raw;
        placed.push(p);
    }
    Plan {
        placed,
        desc,
        ib,
        ob,
        nsub,
    }
}

/// The order the passes take the `tiles` tiles of `tile` bytes in: with `rows`, by sub-block row (the
/// position of a tile's first byte in its frame, in sub-blocks of the frame's own size) across the
/// frames, so that a pass reaches a tile after the tiles its sources mostly lie in (earlier sub-blocks
/// of its frame); else in their own order.
fn tile_order(
    placed: &[Placed],
    lays: &[Layout],
    tiles: usize,
    tile: usize,
    rows: bool,
) -> Vec<u32> {
    if !rows {
        return (0..tiles as u32).collect();
    }
    let mut keyed: Vec<(u32, u32)> = Vec::with_capacity(tiles);
    let mut f = 0;
    for t in 0..tiles {
        let at = t * tile;
        while f + 1 < placed.len() && placed[f + 1].out_off <= at {
            f += 1;
        }
        let row = placed.get(f).map_or(0, |p| {
            (at.saturating_sub(p.out_off) >> lays[f].sb_log) as u32
        });
        keyed.push((row, t as u32));
    }
    // Stable: within a row, frames and tiles keep their order.
    keyed.sort_by_key(|&(r, _)| r);
    keyed.into_iter().map(|(_, t)| t).collect()
}

/// Each frame's result: its bytes, copied out of the pinned output, when all its sub-blocks' status
/// words `st` are 0, else the first failing sub-block's cause (7: bytes left unresolved).
fn frame_results(placed: &[Placed], st: &[u32], pin: &[u8]) -> Vec<Result<Vec<u8>>> {
    placed
        .par_iter()
        .map(|p| {
            let bad = st[p.first_sub..p.first_sub + p.subs]
                .iter()
                .copied()
                .find(|&c| c != 0);
            match bad {
                None => Ok(pin[p.out_off..p.out_off + p.raw].to_vec()),
                Some(code) => Err(decode_err(status_text(code))),
            }
        })
        .collect()
}

/// A batch's profiling events: uploads, the walk, the last pass, the two downloads.
struct Events {
    up: Vec<Event>,
    first: Event,
    pass1: Option<Event>,
    last: Option<Event>,
    passes: u32,
    status: Event,
    output: Event,
}

/// Adds a finished launch's device times to `t` and the trace.
fn record(t: &mut Timings, frames: &[(&[u8], usize)], ev: &Events, device_done: Instant) {
    let up_ns = ev
        .up
        .first()
        .zip(ev.up.last())
        .map_or(0, |(a, b)| event_span(a, b));
    let end = ev.last.as_ref().or(ev.pass1.as_ref()).unwrap_or(&ev.first);
    let k_ns = event_span(&ev.first, end);
    let down_ns = event_span(&ev.status, &ev.output);
    let out_bytes = frames.iter().map(|(_, r)| *r as u64).sum::<u64>();
    trace::add_device(Stage::GpuKernel, k_ns, out_bytes);
    trace::add_device(Stage::GpuCopy, up_ns + down_ns, out_bytes);
    trace::add(Stage::GpuDecode, device_done, Instant::now(), 0);
    t.upload_ns += up_ns;
    t.kernel_ns += k_ns;
    t.rounds += u64::from(ev.passes);
    t.stages_ns[0] += event_span(&ev.first, &ev.first);
    t.stages_ns[1] += ev.pass1.as_ref().map_or(0, |p| event_span(&ev.first, p));
    t.download_ns += down_ns;
    t.bytes_in += frames.iter().map(|(e, _)| e.len() as u64).sum::<u64>();
    t.bytes_out += out_bytes;
}

/// Decodes one launch worth of frames (tables already checked); adds its times to `t`.
fn launch(
    dev: &Device,
    k: &mut Kernels,
    frames: &[(&[u8], usize)],
    lays: &[Layout],
    t: &mut Timings,
) -> Result<Vec<Result<Vec<u8>>>> {
    let pl = plan(frames, lays);
    let jw = dev.sb_jw;
    let tile = jw * dev.sb_jper;
    let tiles = pl.ob.div_ceil(tile).max(1);
    // CLC_GPU_SB_ORDER=0: the tiles in their own order (run 46: 72.9 GB/s, the row order 86.6).
    let rows = crate::diag::knob("CLC_GPU_SB_ORDER", 0..=1, 1) == 1;
    let order = tile_order(&pl.placed, lays, tiles, tile, rows);
    if k.sb.is_none() {
        k.sb = Some(Buffers::new(&dev.ctx, &k.queue)?);
    }
    let q = &k.queue;
    let b = k.sb.as_mut().expect("set above");
    b.fit(&dev.ctx, q, pl.ib, pl.ob, pl.nsub, tiles)?;
    for ((enc, _), p) in frames.iter().zip(&pl.placed) {
        b.pin_in.as_mut_slice()[p.in_off..p.in_off + enc.len()].copy_from_slice(enc);
    }
    let mut up = Vec::with_capacity(4);
    up.push(q.write(&mut b.desc, 0, &pl.desc)?);
    up.push(q.write(&mut b.order, 0, &order)?);
    up.push(q.fill_n(&mut b.done, 0u8, tiles)?);
    up.push(q.fill(&mut b.left, 0u32)?);
    if pl.ib > 0 {
        up.push(q.write(&mut b.input, 0, &b.pin_in.as_slice()[..pl.ib])?);
    }
    let w = dev.sb_w;
    // The walk: one group per sub-block.
    let first = q.launch(
        &k.decompress_sb,
        &[
            &b.input,
            &b.desc,
            &b.output,
            &b.src,
            &b.status,
            &(pl.nsub as u32),
        ],
        pl.nsub.max(1) * w,
        Some(w),
    )?;
    // The passes, PASSES_PER_CHECK between two reads of the count of pending bytes.
    let n = pl.ob as u32;
    let mut last = None;
    let mut pass1 = None;
    let mut p = 0u32;
    let mut left = [1u32; 1];
    while pl.ob > 0 && left[0] > 0 && p < MAX_PASSES {
        let until = (p + PASSES_PER_CHECK).min(MAX_PASSES);
        for x in p + 1..=until {
            let ev = q.launch(
                &k.jump_sb,
                &[&b.src, &b.output, &b.done, &b.left, &b.order, &n, &x],
                tiles * jw,
                Some(jw),
            )?;
            if x == 1 {
                pass1 = Some(ev);
            } else {
                last = Some(ev);
            }
        }
        p = until;
        q.read_now(&b.left, p as usize, &mut left)?;
    }
    // Measurement: the bytes still pending after pass 1 (CLC_GPU_SB_STATS=1, the bench).
    let mut left1 = [0u32; 1];
    if pl.ob > 0 && crate::diag::knob("CLC_GPU_SB_STATS", 0..=1, 0) == 1 {
        q.read_now(&b.left, 1, &mut left1)?;
    }
    let mut st = vec![u32::MAX; pl.nsub];
    let status = q.read(&b.status, 0, &mut st)?;
    let output = q.read(&b.output, 0, &mut b.pin_out.as_mut_slice()[..pl.ob])?;
    let fin = q.finish(); // before `desc`, `st` or the pinned memory can be touched again
    fin?;
    // Bytes still pending after the bound: every frame of the launch is refused (the rule says this
    // cannot happen; the callers redo them on the CPU).
    if pl.ob > 0 && left[0] > 0 {
        for s in st.iter_mut() {
            if *s == 0 {
                *s = 7;
            }
        }
    }
    let device_done = Instant::now();
    t.stages_ns[2] += u64::from(left1[0]);
    let outs = frame_results(&pl.placed, &st, b.pin_out.as_slice());
    let ev = Events {
        up,
        first,
        pass1,
        last,
        passes: p,
        status,
        output,
    };
    record(t, frames, &ev, device_done);
    Ok(outs)
}

/// Decodes LZ_EXT3_SB `frames` on one device in launches of at most `batch` frames.
pub(crate) fn run(
    dev: &Device,
    frames: &[(&[u8], usize)],
    batch: usize,
    t: &mut Timings,
) -> Result<Vec<Result<Vec<u8>>>> {
    let mut k = dev.k.lock();
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
    // The source pointers take 4 bytes per output byte, in one buffer grown with a quarter to spare.
    let budget = (dev.max_alloc as usize / 5).clamp(16 << 20, 1 << 30);
    // Launches of at most `batch` frames and `budget` bytes; not cut in two as compression's are: a
    // launch's parallelism is its number of sub-blocks.
    let mut parts = Vec::new();
    let mut i = 0;
    while i < ok.len() {
        let (mut j, mut bytes) = (i, 0usize);
        while j < ok.len() && j - i < batch.max(1) {
            let b = frames[ok[j]].0.len() + frames[ok[j]].1;
            if j > i && bytes + b > budget {
                break;
            }
            bytes += b;
            j += 1;
        }
        parts.push(i..j);
        i = j;
    }
    for r in parts {
        let part: Vec<(&[u8], usize)> = ok[r.clone()].iter().map(|&x| frames[x]).collect();
        let res = launch(dev, &mut k, &part, &lays[r.clone()], t);
        let res = super::decompress::finished(&k, res)?;
        for (x, v) in ok[r].iter().zip(res) {
            out[*x] = Some(v);
        }
    }
    Ok(out
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(decode_err("not decoded"))))
        .collect())
}
