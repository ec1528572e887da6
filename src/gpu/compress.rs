//! Host side of the LZ_EXT3 encoder: lays a batch of frames out in device memory, runs the kernels of
//! `kernels/lz_ext3_compress.cl` and reads back one block per frame: an LZ_EXT3_SB frame (codec 3,
//! FORMAT.md 2.2) when the tuning has a sub-block size (`sb_log`), else a plain LZ_EXT3 block (codec 1).
//!
//! Device layout of a launch (F frames, S segments of SUB bytes for the match finder, P = S × SUB / PSUB
//! parse sub-blocks of PSUB bytes):
//! ```text
//! input    S × SUB bytes   frame f at fr_base[f], a multiple of SUB; padding never read
//! matches  S × SUB × u32   (len << 24 | offset) per position, 0 = none
//! alist    2 × S × ACAP u64  sorted anchors (hash << 32 | pos) per segment, then per merged run
//! acnt     2 × S u32         anchors of the run starting at each segment
//! far      S × SUB × u32     offset of the latest earlier anchor with the same hash, 0 = none
//! ltab     S × 2^LHASH_LOG u32   last occurrence per hash in each segment: (pos + 1) << 7 | tag (0 = none)
//! scratch  P × SCRATCH bytes     sequences 2..n of each parse sub-block
//! info     P × 8 u32, sb_plan P × 8 u32, fr_plan F × 4 u32   (see the kernel file)
//! output   per frame: the LZ_EXT3_SB header and table (12 + 4 × count bytes, none for codec 1), then
//!          cap(n) bytes of sequences, cap(n) = n + n/255 + 16 × max(count, 1) (the bound for MIN_MATCH >= 5)
//! ```
//! lz_emit writes the sequences and the table's start[] entries; the host writes sb_log, count and
//! table_check (xxh3 of the header, which needs the whole table) after the download.

use super::cl::{event_span, Arg, DevBuf, Pinned, Queue};
use super::device::{Device, Kernels};
use super::Timings;
use crate::error::{Error, Result};
use opencl3::context::Context;
use opencl3::event::Event;
use std::collections::VecDeque;

/// Largest frame the encoder takes (offsets are 3 bytes).
pub(crate) const MAX_FRAME: usize = 16 << 20;
const INFO: usize = 8;
/// Work-group size of lz_build_l (its BWG).
pub(crate) const BUILD_WG: usize = 256;
const OVERFLOW: u32 = u32::MAX;

/// Worst-case encoded size of `n` bytes.
pub(crate) fn bound(n: usize) -> usize {
    n + n / 255 + 16
}

/// LZ_EXT3_SB sub-blocks of a frame of `n` bytes (0: a plain LZ_EXT3 block).
fn sb_count(n: usize, sb_log: u32) -> usize {
    if sb_log == 0 {
        0
    } else {
        n.div_ceil(1 << sb_log)
    }
}

/// Bytes before the sequences: the LZ_EXT3_SB header and table (none for a plain block).
fn sb_head(n: usize, sb_log: u32) -> usize {
    if sb_log == 0 {
        0
    } else {
        12 + 4 * sb_count(n, sb_log)
    }
}

/// Worst-case size of the sequences of `n` bytes: `bound`, plus 16 bytes per further sub-block.
fn seq_bound(n: usize, sb_log: u32) -> usize {
    n + n / 255 + 16 * sb_count(n, sb_log).max(1)
}

/// Writes sb_log, count and table_check into the header of an LZ_EXT3_SB frame whose start[] entries
/// the kernel wrote (FORMAT.md 2.2).
fn seal_sb_header(block: &mut [u8], n: usize, sb_log: u32) {
    let count = sb_count(n, sb_log);
    block[0] = sb_log as u8;
    block[1..4].fill(0);
    block[4..8].copy_from_slice(&(count as u32).to_le_bytes());
    let at = 8 + 4 * count;
    let check = xxhash_rust::xxh3::xxh3_64(&block[..at]) as u32;
    block[at..at + 4].copy_from_slice(&check.to_le_bytes());
}

/// A valid frame holding `src` as literals only, in the encoder's codec (if a frame would overflow).
fn literal_frame(src: &[u8], sb_log: u32) -> Vec<u8> {
    if sb_log == 0 {
        return literal_block(src);
    }
    let s = 1usize << sb_log;
    let mut seqs = Vec::with_capacity(seq_bound(src.len(), sb_log));
    let mut starts = Vec::new();
    for part in src.chunks(s) {
        starts.push(seqs.len() as u32);
        seqs.extend(literal_block(part));
    }
    let mut out = vec![0u8; sb_head(src.len(), sb_log)];
    for (k, st) in starts.iter().enumerate() {
        out[8 + 4 * k..12 + 4 * k].copy_from_slice(&st.to_le_bytes());
    }
    seal_sb_header(&mut out, src.len(), sb_log);
    out.extend(seqs);
    out
}

/// A valid LZ_EXT3 block holding `src` as literals only (used if a frame would overflow its bound).
pub(crate) fn literal_block(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bound(src.len()));
    let l = src.len();
    out.push((l.min(15) as u8) << 4);
    if l >= 15 {
        let mut r = l - 15;
        while r >= 255 {
            out.push(255);
            r -= 255;
        }
        out.push(r as u8);
    }
    out.extend_from_slice(src);
    out
}

/// Where each frame, segment and parse sub-block of a launch lives.
struct Layout {
    /// Frame of each segment.
    sb_frame: Vec<u32>,
    fr_base: Vec<u64>,
    fr_len: Vec<u32>,
    /// First parse sub-block and parse sub-block count of each frame.
    fr_first_sb: Vec<u32>,
    fr_nsb: Vec<u32>,
    fr_cap: Vec<u32>,
    /// Where each frame's sequences start in the output (its LZ_EXT3_SB header lies just before).
    fr_out: Vec<u64>,
    out_bytes: usize,
}

impl Layout {
    fn new(frames: &[&[u8]], sub_log: u32, psub_log: u32, sb_log: u32) -> Layout {
        let sub = 1usize << sub_log;
        let psub = 1usize << psub_log;
        let mut l = Layout {
            sb_frame: Vec::new(),
            fr_base: Vec::new(),
            fr_len: Vec::new(),
            fr_first_sb: Vec::new(),
            fr_nsb: Vec::new(),
            fr_cap: Vec::new(),
            fr_out: Vec::new(),
            out_bytes: 0,
        };
        for (f, fr) in frames.iter().enumerate() {
            let nseg = fr.len().div_ceil(sub).max(1);
            let base = l.sb_frame.len() * sub;
            l.fr_base.push(base as u64);
            l.fr_len.push(fr.len() as u32);
            l.fr_first_sb.push((base / psub) as u32);
            l.fr_nsb.push(fr.len().div_ceil(psub).max(1) as u32);
            let (head, cap) = (sb_head(fr.len(), sb_log), seq_bound(fr.len(), sb_log));
            l.fr_cap.push(cap as u32);
            l.fr_out.push((l.out_bytes + head) as u64);
            l.out_bytes += (head + cap).next_multiple_of(8);
            l.sb_frame.extend(std::iter::repeat_n(f as u32, nseg));
        }
        l
    }

    fn nseg(&self) -> usize {
        self.sb_frame.len()
    }
}

/// Input bytes (padded) that one launch may hold on `dev`.
pub(crate) fn launch_budget(dev: &Device) -> usize {
    // The match array (4 bytes per input byte) is the largest buffer.
    ((dev.max_alloc / 4) as usize).clamp(16 << 20, 512 << 20)
}

/// Padded input bytes of a frame.
pub(crate) fn padded(dev: &Device, n: usize) -> usize {
    n.div_ceil(dev.tuning.sub()).max(1) * dev.tuning.sub()
}

/// A device's encoder buffers for one queue, kept between launches (in `Kernels::cbufs`) and grown
/// when a launch needs more: no allocation per launch once the largest launch has been seen.
pub(crate) struct Buffers {
    input: DevBuf<u8>,
    sb_frame: DevBuf<u32>,
    fr_base: DevBuf<u64>,
    fr_len: DevBuf<u32>,
    fr_first: DevBuf<u32>,
    fr_nsb: DevBuf<u32>,
    fr_cap: DevBuf<u32>,
    fr_out: DevBuf<u64>,
    far: DevBuf<u32>,
    ltab: DevBuf<u32>,
    matches: DevBuf<u32>,
    scratch: DevBuf<u8>,
    info: DevBuf<u32>,
    sb_plan: DevBuf<u32>,
    fr_plan: DevBuf<u32>,
    output: DevBuf<u8>,
    alist: [DevBuf<u64>; 2],
    acnt: [DevBuf<u32>; 2],
    /// Pinned host memory the frames are copied into before their upload, and the blocks downloaded
    /// into: NVIDIA's driver moves pageable memory through staging of its own (about 1.2 GB/s from the
    /// device on the H200 machine, docs/GPU.md run 117), pinned memory at the bus's speed.
    pin_in: Pinned,
    pin_out: Pinned,
}

/// Replaces `b` with a buffer an eighth larger than `need` unless it holds `need` already.
fn grow<T>(ctx: &Context, b: &mut DevBuf<T>, need: usize, what: &str) -> Result<()> {
    if b.len() < need {
        // Free the old one first: device memory may not hold both.
        *b = DevBuf::new(ctx, 1, what)?;
        *b = DevBuf::new(ctx, need + need / 8, what)?;
    }
    Ok(())
}

impl Buffers {
    fn new(ctx: &Context, q: &Queue) -> Result<Buffers> {
        let t = "allocating tables";
        Ok(Buffers {
            input: DevBuf::new(ctx, 1, t)?,
            sb_frame: DevBuf::new(ctx, 1, t)?,
            fr_base: DevBuf::new(ctx, 1, t)?,
            fr_len: DevBuf::new(ctx, 1, t)?,
            fr_first: DevBuf::new(ctx, 1, t)?,
            fr_nsb: DevBuf::new(ctx, 1, t)?,
            fr_cap: DevBuf::new(ctx, 1, t)?,
            fr_out: DevBuf::new(ctx, 1, t)?,
            far: DevBuf::new(ctx, 1, t)?,
            ltab: DevBuf::new(ctx, 1, t)?,
            matches: DevBuf::new(ctx, 1, t)?,
            scratch: DevBuf::new(ctx, 1, t)?,
            info: DevBuf::new(ctx, 1, t)?,
            sb_plan: DevBuf::new(ctx, 1, t)?,
            fr_plan: DevBuf::new(ctx, 1, t)?,
            output: DevBuf::new(ctx, 1, t)?,
            alist: [DevBuf::new(ctx, 1, t)?, DevBuf::new(ctx, 1, t)?],
            acnt: [DevBuf::new(ctx, 1, t)?, DevBuf::new(ctx, 1, t)?],
            pin_in: Pinned::new(ctx, q, 1)?,
            pin_out: Pinned::new(ctx, q, 1)?,
        })
    }

    /// Grows what is too small for a launch of `nf` frames laid out as `lay`.
    fn fit(
        &mut self,
        ctx: &Context,
        q: &Queue,
        tu: &super::device::Tuning,
        lay: &Layout,
    ) -> Result<()> {
        let (nf, ns) = (lay.fr_len.len(), lay.nseg());
        let in_bytes = ns << tu.sub_log;
        let np = in_bytes >> tu.psub_log;
        let t = "allocating tables";
        grow(ctx, &mut self.input, in_bytes, "allocating the input")?;
        grow(ctx, &mut self.sb_frame, ns, t)?;
        grow(ctx, &mut self.fr_base, nf, t)?;
        grow(ctx, &mut self.fr_len, nf, t)?;
        grow(ctx, &mut self.fr_first, nf, t)?;
        grow(ctx, &mut self.fr_nsb, nf, t)?;
        grow(ctx, &mut self.fr_cap, nf, t)?;
        grow(ctx, &mut self.fr_out, nf, t)?;
        grow(
            ctx,
            &mut self.far,
            in_bytes,
            "allocating the far-offset array",
        )?;
        grow(
            ctx,
            &mut self.ltab,
            ns << tu.lhash_log,
            "allocating hash tables",
        )?;
        grow(
            ctx,
            &mut self.matches,
            in_bytes,
            "allocating the match array",
        )?;
        grow(
            ctx,
            &mut self.scratch,
            np * tu.scratch(),
            "allocating scratch",
        )?;
        grow(ctx, &mut self.info, np * INFO, t)?;
        grow(ctx, &mut self.sb_plan, np * 8, t)?;
        grow(ctx, &mut self.fr_plan, nf * 4, t)?;
        grow(
            ctx,
            &mut self.output,
            lay.out_bytes,
            "allocating the output",
        )?;
        for i in 0..2 {
            grow(
                ctx,
                &mut self.alist[i],
                ns * tu.acap,
                "allocating anchor lists",
            )?;
            grow(ctx, &mut self.acnt[i], ns, "allocating anchor lists")?;
        }
        self.pin_in.fit(ctx, q, in_bytes)?;
        self.pin_out.fit(ctx, q, lay.out_bytes)
    }
}

/// Runs `f` on the threads that copy a launch's frames into pinned memory and its blocks out of it while
/// the feeder holds the device: one thread had copied 5.7 GB in and 3.3 GB out serially inside the
/// device's lock on the H200 machine (docs/GPU.md runs 118, 121). A pool of its own, not the worker
/// pool, whose tasks (a CPU frame's encoding, 10-40 ms) would keep the device waiting.
fn on_copy_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("clc-gpu-copy-{i}"))
            .build()
            .ok()
    });
    match pool {
        Some(p) => p.install(f),
        None => f(), // no threads could be started: the worker pool copies
    }
}

/// Copies each frame to its place (`base`) in `pin`, several at once on [`on_copy_pool`]; the padding
/// between them is left as it is (the kernels never read it).
fn copy_frames_in(pin: &mut [u8], frames: &[&[u8]], base: &[u64]) {
    use rayon::prelude::*;
    let mut parts: Vec<(&mut [u8], &[u8])> = Vec::with_capacity(frames.len());
    let mut rest = pin;
    let mut at = 0usize;
    for (fr, &b) in frames.iter().zip(base) {
        let skip = b as usize - at;
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(skip);
        let (dst, tail) = tail.split_at_mut(fr.len());
        parts.push((dst, fr));
        rest = tail;
        at = b as usize + fr.len();
    }
    on_copy_pool(|| {
        parts
            .into_par_iter()
            .for_each(|(dst, src)| dst.copy_from_slice(src))
    });
}

/// The commands of one stage of a launch: its first and (if not the same) its last event.
struct Span(Event, Option<Event>);

impl Span {
    fn last(&self) -> &Event {
        self.1.as_ref().unwrap_or(&self.0)
    }

    fn ns(&self) -> u64 {
        event_span(&self.0, self.last())
    }
}

/// A launch whose uploads and kernels are enqueued; [`Pending::collect`] downloads its blocks.
struct Pending<'a> {
    sb_log: u32,
    frames: &'a [&'a [u8]],
    /// Where its frames lie (the small tables are uploaded from it without blocking: kept until
    /// `collect`).
    lay: Layout,
    /// The launch's buffers (the output is read from them); back to the device after `collect`.
    bufs: Buffers,
    /// Being filled by a non-blocking read of fr_plan (the heap buffer does not move with the struct).
    plan: Vec<u32>,
    up: Vec<Event>,
    /// Stage spans in `COMPRESS_STAGES` order (None: a stage with no command in this launch).
    ev: [Option<Span>; 8],
    ev_plan: Event,
}

/// Enqueues one launch worth of frames on `q` with `bufs` (none of whose earlier commands may still be
/// pending on another queue): uploads, table clears, the kernels and the read of the frame sizes. On an
/// error it waits for `q` before `bufs` goes: an upload from its pinned memory may be in flight.
fn enqueue<'a>(
    dev: &Device,
    k: &Kernels,
    q: &Queue,
    frames: &'a [&'a [u8]],
    mut bufs: Buffers,
) -> Result<Pending<'a>> {
    let tu = &dev.tuning;
    let lay = Layout::new(frames, tu.sub_log, tu.psub_log, tu.sb_log);
    match enqueue_into(dev, k, q, frames, &lay, &mut bufs) {
        Ok(e) => Ok(Pending {
            sb_log: dev.tuning.sb_log,
            frames,
            lay,
            bufs,
            plan: e.plan,
            up: e.up,
            ev: e.ev,
            ev_plan: e.ev_plan,
        }),
        Err(err) => {
            let _ = q.finish();
            Err(err)
        }
    }
}

/// What [`enqueue_into`] enqueued: [`Pending`] without its layout and buffers.
struct Enqueued {
    plan: Vec<u32>,
    up: Vec<Event>,
    ev: [Option<Span>; 8],
    ev_plan: Event,
}

/// [`enqueue`]'s commands, for `frames` laid out as `lay` (which must outlive them).
fn enqueue_into(
    dev: &Device,
    k: &Kernels,
    q: &Queue,
    frames: &[&[u8]],
    lay: &Layout,
    bufs: &mut Buffers,
) -> Result<Enqueued> {
    let tu = &dev.tuning;
    let ctx = &dev.ctx;
    let (nf, ns) = (frames.len(), lay.nseg());
    let in_bytes = ns << tu.sub_log;
    let np = in_bytes >> tu.psub_log;

    bufs.fit(ctx, q, tu, lay)?;
    let Buffers {
        input,
        sb_frame,
        fr_base,
        fr_len,
        fr_first,
        fr_nsb,
        fr_cap,
        fr_out,
        far,
        ltab,
        matches,
        scratch,
        info,
        sb_plan,
        fr_plan,
        output,
        alist,
        acnt,
        pin_in,
        pin_out: _,
    } = bufs;

    // The frames copied into pinned memory first, so that the uploads then follow one another on the
    // device; every upload is non-blocking: the small tables' host vectors (`lay`) and the buffers
    // travel with the launch and are used again only after it is collected (a blocking write cost a
    // round trip to the driver each).
    let pin = &mut pin_in.as_mut_slice()[..in_bytes];
    copy_frames_in(pin, frames, &lay.fr_base);
    let up = vec![
        q.write(sb_frame, 0, &lay.sb_frame)?,
        q.write(fr_base, 0, &lay.fr_base)?,
        q.write(fr_len, 0, &lay.fr_len)?,
        q.write(fr_first, 0, &lay.fr_first_sb)?,
        q.write(fr_nsb, 0, &lay.fr_nsb)?,
        q.write(fr_cap, 0, &lay.fr_cap)?,
        q.write(fr_out, 0, &lay.fr_out)?,
        q.write(input, 0, pin)?,
    ];
    let clear_g = q.fill_n(far, 0u32, in_bytes)?;

    let wg = Some(tu.wg);
    if k.build_l.is_none() {
        q.fill_n(ltab, 0u32, ns << tu.lhash_log)?; // lz_build_l writes every entry: no clear
    }
    let build_args: [&dyn Arg; 5] = [input, sb_frame, fr_base, fr_len, ltab];
    let k_build = match &k.build_l {
        Some(kl) => q.launch(kl, &build_args, ns * BUILD_WG, Some(BUILD_WG))?,
        None => q.launch(&k.build.0, &build_args, in_bytes / k.build.1, None)?,
    };
    let frame_bufs: [&dyn Arg; 4] = [input, sb_frame, fr_base, fr_len];
    let (anchor, merge, link) = enqueue_far(dev, k, q, frames, ns, frame_bufs, (far, alist, acnt))?;
    let k_find = q.launch(
        &k.find,
        &[input, sb_frame, fr_base, fr_len, ltab, far, matches],
        ns * tu.wg,
        wg,
    )?;
    let np32 = np as u32;
    // Literal runs chain within an LZ_EXT3_SB sub-block (2^gl parse sub-blocks), or the whole frame.
    let (gl, sb) = match tu.sb_log {
        0 => (24u32, 0u32),
        l => (l - tu.psub_log, 1u32),
    };
    // lz_parse_w: 32 work-items per parse sub-block, two sub-blocks per work-group.
    let (parse_items, parse_wg) = match k.parse.1 {
        true => (np.div_ceil(2) * 64, Some(64)),
        false => (np.next_multiple_of(64), None),
    };
    let k_parse = q.launch(
        &k.parse.0,
        &[
            input, sb_frame, fr_base, fr_len, fr_first, fr_nsb, matches, scratch, info, &np32,
        ],
        parse_items,
        parse_wg,
    )?;
    let k_plan = q.launch(
        &k.plan,
        &[
            fr_len, fr_first, fr_nsb, fr_cap, info, sb_plan, fr_plan, &gl, &sb,
        ],
        nf * tu.pwg,
        Some(tu.pwg),
    )?;
    let k_emit = q.launch(
        &k.emit,
        &[
            input, sb_frame, fr_base, fr_len, fr_first, fr_nsb, fr_out, scratch, info, sb_plan,
            fr_plan, output, &gl, &sb,
        ],
        np * tu.wg,
        wg,
    )?;

    let mut plan = vec![0u32; nf * 4];
    let ev_plan = q.read(fr_plan, 0, &mut plan)?;
    Ok(Enqueued {
        plan,
        up,
        ev: [
            Some(Span(clear_g, Some(k_build))),
            Some(anchor),
            merge,
            Some(link),
            Some(Span(k_find, None)),
            Some(Span(k_parse, None)),
            Some(Span(k_plan, None)),
            Some(Span(k_emit, None)),
        ],
        ev_plan,
    })
}

/// Far matches, enqueued on `q` after the tables (lz_build_l or lz_build4): each segment's sorted
/// anchors (lz_anchor), merged into one sorted list per frame in log2(segments) rounds (lz_merge), then
/// each anchor linked to its latest earlier twin in `far` (lz_link). `ns` is the launch's segment count; `frame_bufs` are input,
/// sb_frame, fr_base and fr_len; then `far` and the two anchor lists and counts (ping-pong for the
/// merge rounds), from the launch's buffers. Returns the spans of the anchors, the merges (none for
/// frames of one segment) and the link.
fn enqueue_far(
    dev: &Device,
    k: &Kernels,
    q: &Queue,
    frames: &[&[u8]],
    ns: usize,
    frame_bufs: [&dyn Arg; 4],
    (far, alist, acnt): (&DevBuf<u32>, &[DevBuf<u64>; 2], &[DevBuf<u32>; 2]),
) -> Result<(Span, Option<Span>, Span)> {
    let tu = &dev.tuning;
    let slots = ns * tu.acap;
    let [input, sb_frame, fr_base, fr_len] = frame_bufs;
    let anchor = q.launch(
        &k.anchor,
        &[input, sb_frame, fr_base, fr_len, &alist[0], &acnt[0]],
        ns * tu.awg,
        Some(tu.awg),
    )?;
    let max_seg = frames
        .iter()
        .map(|f| f.len().div_ceil(tu.sub()).max(1))
        .max()
        .unwrap_or(1);
    let rounds = max_seg.next_power_of_two().trailing_zeros() as usize;
    let nslots = slots as u32;
    let mut merge: Option<Span> = None;
    for r in 0..rounds {
        let (a, b) = (r % 2, 1 - r % 2);
        let r32 = r as u32;
        let e = q.launch(
            &k.merge,
            &[
                sb_frame, fr_base, fr_len, &alist[a], &acnt[a], &alist[b], &acnt[b], &r32, &nslots,
            ],
            slots.next_multiple_of(64),
            None,
        )?;
        merge = Some(match merge {
            None => Span(e, None),
            Some(Span(first, _)) => Span(first, Some(e)),
        });
    }
    let fin = rounds % 2;
    let link = q.launch(
        &k.link,
        &[
            input,
            sb_frame,
            fr_base,
            fr_len,
            &alist[fin],
            &acnt[fin],
            far,
            &nslots,
        ],
        slots.next_multiple_of(64),
        None,
    )?;
    Ok((Span(anchor, None), merge, Span(link, None)))
}

impl Pending<'_> {
    /// Waits for the launch on `q`, downloads each block and adds the launch's times to `t`.
    /// Gives the launch's buffers back with the blocks, and the device times (ns) at which its first
    /// command after the uploads started and its last kernel ended (None without profiling data).
    fn collect(self, q: &Queue, t: &mut Timings) -> Result<(Vec<Vec<u8>>, Buffers, Option<Wall>)> {
        q.finish()?;
        let Pending {
            sb_log,
            frames,
            lay,
            mut bufs,
            plan,
            up,
            ev,
            ev_plan,
        } = self;
        let nf = frames.len();
        // Each block's place in the output and its length (None: it overflowed its bound).
        let blocks: Vec<Option<(usize, usize)>> = (0..nf)
            .map(|f| {
                let (size, head) = (plan[f * 4], sb_head(frames[f].len(), sb_log));
                (size != OVERFLOW).then(|| (lay.fr_out[f] as usize - head, head + size as usize))
            })
            .collect();
        let mut down = vec![ev_plan];
        // One read from the first block's start to the last one's end (the gaps between them are the
        // blocks' unused bounds): a read per block cost a command each. A size the kernel reported
        // wrongly is an error, not a panic (the pinned buffer holds the launch's whole output, as the
        // device buffer does).
        let span = blocks.iter().flatten().filter(|b| b.1 > 0);
        let lo = span.clone().map(|b| b.0).min();
        let hi = span.map(|b| b.0 + b.1).max();
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let to =
                bufs.pin_out.as_mut_slice().get_mut(lo..hi).ok_or_else(|| {
                    Error::Gpu("a block's reported size runs past the output".into())
                })?;
            let r = q.read(&bufs.output, lo, to);
            let fin = q.finish(); // before the pinned memory can be reused or dropped, even on error
            down.push(r?);
            fin?;
        }
        let pin = bufs.pin_out.as_slice();
        let outs: Vec<Vec<u8>> = on_copy_pool(|| {
            use rayon::prelude::*;
            blocks
                .par_iter()
                .zip(frames.par_iter())
                .map(|(b, fr)| match *b {
                    None => literal_frame(fr, sb_log),
                    Some((at, len)) => {
                        let mut o = pin[at..at + len].to_vec();
                        if sb_log > 0 {
                            seal_sb_header(&mut o, fr.len(), sb_log);
                        }
                        o
                    }
                })
                .collect()
        });
        t.upload_ns += up
            .first()
            .zip(up.last())
            .map_or(0, |(a, b)| event_span(a, b));
        let mut wall = None;
        if let (Some(first), Some(last)) = (&ev[0], &ev[7]) {
            t.kernel_ns += event_span(&first.0, last.last()); // table clears + every kernel
            if let (Ok(a), Ok(b)) = (
                first.0.profiling_command_start(),
                last.last().profiling_command_end(),
            ) {
                wall = Some(Wall(a, b));
            }
        }
        t.download_ns += down
            .first()
            .zip(down.last())
            .map_or(0, |(a, b)| event_span(a, b));
        for (acc, sp) in t.stages_ns.iter_mut().zip(&ev) {
            *acc += sp.as_ref().map_or(0, Span::ns);
        }
        t.bytes_in += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        t.bytes_out += outs.iter().map(|o| o.len() as u64).sum::<u64>();
        Ok((outs, bufs, wall))
    }
}

/// A launch's kernels on the device clock: start and end, ns.
#[derive(Clone, Copy)]
struct Wall(u64, u64);

impl Wall {
    /// The span from the earlier start to the later end.
    fn join(a: Option<Wall>, b: Option<Wall>) -> Option<Wall> {
        match (a, b) {
            (Some(Wall(s1, e1)), Some(Wall(s2, e2))) => Some(Wall(s1.min(s2), e1.max(e2))),
            (x, None) | (None, x) => x,
        }
    }
}

/// Encodes `frames` on one device in launches of at most `batch` frames and the device's byte budget.
pub(crate) fn run(
    dev: &Device,
    frames: &[&[u8]],
    batch: usize,
    t: &mut Timings,
) -> Result<Vec<Vec<u8>>> {
    if let Some(f) = frames.iter().find(|f| f.len() > MAX_FRAME) {
        return Err(Error::Gpu(format!(
            "frame of {} bytes is over the 16 MiB limit",
            f.len()
        )));
    }
    let mut guard = dev.k.lock();
    // Each queue's buffers, taken out of the device for the call and put back after it.
    let mut slots = [guard.cbufs[0].take(), guard.cbufs[1].take()];
    let k = &*guard;
    // CLC_GPU_HALVE_MIN=SEGMENTS: a call of fewer than twice that many segments is not cut in two on two
    // queues (experiments; 0, the default, always cuts). The bytes do not depend on the launches.
    let segs: usize = frames
        .iter()
        .map(|f| padded(dev, f.len()) >> dev.tuning.sub_log)
        .sum();
    let halve_min = crate::diag::knob("CLC_GPU_HALVE_MIN", 0..=u32::MAX, 0) as usize;
    let two = k.queue2.is_some() && segs >= 2 * halve_min;
    let ranges = super::launches(frames.len(), batch, launch_budget(dev), two, |i| {
        padded(dev, frames[i].len())
    });
    let queues = k.queues();
    // Two launches in flight on two queues: while one computes, the other uploads or downloads.
    let mut pending: VecDeque<(Pending, usize)> = VecDeque::new();
    let mut out = Vec::with_capacity(frames.len());
    let mut wall: Option<Wall> = None;
    let pipeline = || -> Result<()> {
        for (n, r) in ranges.into_iter().enumerate() {
            if pending.len() == 2 {
                let (p, qi) = pending.pop_front().expect("two pending");
                let (o, b, w) = p.collect(queues[qi], t)?;
                wall = Wall::join(wall, w);
                out.extend(o);
                slots[qi] = Some(b);
            }
            let qi = n % 2;
            let bufs = match slots[qi].take() {
                Some(b) => b,
                None => Buffers::new(&dev.ctx, queues[qi])?,
            };
            pending.push_back((enqueue(dev, k, queues[qi], &frames[r], bufs)?, qi));
        }
        while let Some((p, qi)) = pending.pop_front() {
            let (o, b, w) = p.collect(queues[qi], t)?;
            wall = Wall::join(wall, w);
            out.extend(o);
            slots[qi] = Some(b);
        }
        if let Some(Wall(a, b)) = wall {
            t.kernel_wall_ns += b.saturating_sub(a);
        }
        Ok(())
    };
    let r = pipeline();
    if r.is_err() {
        // Reads into the pending launches' host vectors may be in flight: wait before dropping them.
        for q in queues {
            let _ = q.finish();
        }
    }
    drop(pending);
    guard.cbufs = slots;
    r.map(|()| out)
}
