//! Host side of the LZ_EXT3 encoder: lays a batch of frames out in device memory, runs the five
//! kernels of `kernels/lz_ext3_compress.cl` and reads back one block per frame.
//!
//! Device layout of a launch (F frames, S segments of SUB bytes for the match finder, P = S × SUB / PSUB
//! parse sub-blocks of PSUB bytes):
//! ```text
//! input    S × SUB bytes   frame f at fr_base[f], a multiple of SUB; padding never read
//! matches  S × SUB × u32   (len << 24 | offset) per position, 0 = none
//! alist    2 × S × ACAP u64  sorted anchors (hash << 32 | pos) per segment, then per merged run
//! acnt     2 × S u32         anchors of the run starting at each segment
//! far      S × SUB × u32     offset of the latest earlier anchor with the same hash, 0 = none
//! ltab     S × 2^LHASH_LOG u32   last occurrence + 1 per hash in each segment (0 = none)
//! scratch  P × SCRATCH bytes     sequences 2..n of each parse sub-block
//! info     P × 8 u32, sb_plan P × 4 u32, fr_plan F × 4 u32   (see the kernel file)
//! output   Σ cap(n_f) bytes, cap(n) = n + n/255 + 16 (the bound for MIN_MATCH >= 5)
//! ```

use super::cl::{event_span, Arg, DevBuf, Queue};
use super::device::{Device, Kernels};
use super::Timings;
use crate::error::{Error, Result};
use opencl3::event::Event;
use std::collections::VecDeque;

/// Largest frame the encoder takes (offsets are 3 bytes).
pub(crate) const MAX_FRAME: usize = 16 << 20;
const INFO: usize = 8;
const OVERFLOW: u32 = u32::MAX;

/// Worst-case encoded size of `n` bytes.
pub(crate) fn bound(n: usize) -> usize {
    n + n / 255 + 16
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
    fr_out: Vec<u64>,
    out_bytes: usize,
}

impl Layout {
    fn new(frames: &[&[u8]], sub_log: u32, psub_log: u32) -> Layout {
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
            l.fr_cap.push(bound(fr.len()) as u32);
            l.fr_out.push(l.out_bytes as u64);
            l.out_bytes += bound(fr.len()).next_multiple_of(8);
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

/// A launch whose uploads and kernels are enqueued; [`Pending::collect`] downloads its blocks.
struct Pending<'a> {
    frames: &'a [&'a [u8]],
    fr_out: Vec<u64>,
    output: DevBuf<u8>,
    /// Being filled by a non-blocking read of fr_plan (the heap buffer does not move with the struct).
    plan: Vec<u32>,
    up: Vec<Event>,
    /// clears, lz_build, lz_find, lz_parse, lz_plan, lz_emit, the fr_plan read.
    ev: [Event; 7],
}

/// Enqueues one launch worth of frames on `q`: uploads, table clears, the five kernels and the read of
/// the frame sizes. Intermediate buffers may be dropped at once: OpenCL frees them after their commands.
fn enqueue<'a>(
    dev: &Device,
    k: &Kernels,
    q: &Queue,
    frames: &'a [&'a [u8]],
) -> Result<Pending<'a>> {
    let tu = &dev.tuning;
    let ctx = &dev.ctx;
    let lay = Layout::new(frames, tu.sub_log, tu.psub_log);
    let (nf, ns) = (frames.len(), lay.nseg());
    let in_bytes = ns << tu.sub_log;
    let np = in_bytes >> tu.psub_log;

    let mut input = DevBuf::<u8>::new(ctx, in_bytes, "allocating the input")?;
    let mut sb_frame = DevBuf::<u32>::new(ctx, ns, "allocating tables")?;
    let mut fr_base = DevBuf::<u64>::new(ctx, nf, "allocating tables")?;
    let mut fr_len = DevBuf::<u32>::new(ctx, nf, "allocating tables")?;
    let mut fr_first = DevBuf::<u32>::new(ctx, nf, "allocating tables")?;
    let mut fr_nsb = DevBuf::<u32>::new(ctx, nf, "allocating tables")?;
    let mut fr_cap = DevBuf::<u32>::new(ctx, nf, "allocating tables")?;
    let mut fr_out = DevBuf::<u64>::new(ctx, nf, "allocating tables")?;
    let mut far = DevBuf::<u32>::new(ctx, in_bytes, "allocating the far-offset array")?;
    let mut ltab = DevBuf::<u32>::new(ctx, ns << tu.lhash_log, "allocating hash tables")?;
    let matches = DevBuf::<u32>::new(ctx, in_bytes, "allocating the match array")?;
    let scratch = DevBuf::<u8>::new(ctx, np * tu.scratch(), "allocating scratch")?;
    let info = DevBuf::<u32>::new(ctx, np * INFO, "allocating tables")?;
    let sb_plan = DevBuf::<u32>::new(ctx, np * 4, "allocating tables")?;
    let fr_plan = DevBuf::<u32>::new(ctx, nf * 4, "allocating tables")?;
    let output = DevBuf::<u8>::new(ctx, lay.out_bytes, "allocating the output")?;

    // The small tables first, blocking (their host vectors die with this call); then the frames,
    // non-blocking (they outlive the whole batch call).
    let mut up = Vec::with_capacity(nf + 10);
    up.push(q.write_now(&mut sb_frame, 0, &lay.sb_frame)?);
    up.push(q.write_now(&mut fr_base, 0, &lay.fr_base)?);
    up.push(q.write_now(&mut fr_len, 0, &lay.fr_len)?);
    up.push(q.write_now(&mut fr_first, 0, &lay.fr_first_sb)?);
    up.push(q.write_now(&mut fr_nsb, 0, &lay.fr_nsb)?);
    up.push(q.write_now(&mut fr_cap, 0, &lay.fr_cap)?);
    up.push(q.write_now(&mut fr_out, 0, &lay.fr_out)?);
    for (f, fr) in frames.iter().enumerate() {
        if !fr.is_empty() {
            up.push(q.write(&mut input, lay.fr_base[f] as usize, fr)?);
        }
    }
    let clear_g = q.fill(&mut far, 0u32)?;
    q.fill(&mut ltab, 0u32)?;

    let wg = Some(tu.wg);
    q.launch(
        &k.build,
        &[&input, &sb_frame, &fr_base, &fr_len, &ltab],
        in_bytes,
        None,
    )?;
    let frame_bufs: [&dyn Arg; 4] = [&input, &sb_frame, &fr_base, &fr_len];
    let k_build = enqueue_far(dev, k, q, frames, ns, frame_bufs, &far)?;
    let k_find = q.launch(
        &k.find,
        &[&input, &sb_frame, &fr_base, &fr_len, &ltab, &far, &matches],
        ns * tu.wg,
        wg,
    )?;
    let np32 = np as u32;
    let k_parse = q.launch(
        &k.parse,
        &[
            &input, &sb_frame, &fr_base, &fr_len, &fr_first, &fr_nsb, &matches, &scratch, &info,
            &np32,
        ],
        np.next_multiple_of(64),
        None,
    )?;
    let k_plan = q.launch(
        &k.plan,
        &[
            &fr_len, &fr_first, &fr_nsb, &fr_cap, &info, &sb_plan, &fr_plan,
        ],
        nf * tu.pwg,
        Some(tu.pwg),
    )?;
    let k_emit = q.launch(
        &k.emit,
        &[
            &input, &sb_frame, &fr_base, &fr_len, &fr_first, &fr_nsb, &fr_out, &scratch, &info,
            &sb_plan, &fr_plan, &output,
        ],
        np * tu.wg,
        wg,
    )?;

    let mut plan = vec![0u32; nf * 4];
    let ev_plan = q.read(&fr_plan, 0, &mut plan)?;
    Ok(Pending {
        frames,
        fr_out: lay.fr_out,
        output,
        plan,
        up,
        ev: [clear_g, k_build, k_find, k_parse, k_plan, k_emit, ev_plan],
    })
}

/// Far matches, enqueued on `q` after lz_build: each segment's sorted anchors (lz_anchor), merged into
/// one sorted list per frame in log2(segments) rounds (lz_merge), then each anchor linked to its latest
/// earlier twin in `far` (lz_link). `ns` is the launch's segment count; `frame_bufs` are input,
/// sb_frame, fr_base and fr_len. The anchor lists live only for these commands (OpenCL frees them
/// after). Returns lz_link's event.
fn enqueue_far(
    dev: &Device,
    k: &Kernels,
    q: &Queue,
    frames: &[&[u8]],
    ns: usize,
    frame_bufs: [&dyn Arg; 4],
    far: &DevBuf<u32>,
) -> Result<Event> {
    let (tu, ctx) = (&dev.tuning, &dev.ctx);
    let slots = ns * tu.acap;
    let alist = [
        DevBuf::<u64>::new(ctx, slots, "allocating anchor lists")?,
        DevBuf::<u64>::new(ctx, slots, "allocating anchor lists")?,
    ];
    let acnt = [
        DevBuf::<u32>::new(ctx, ns, "allocating anchor lists")?,
        DevBuf::<u32>::new(ctx, ns, "allocating anchor lists")?,
    ];
    let [input, sb_frame, fr_base, fr_len] = frame_bufs;
    q.launch(
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
    for r in 0..rounds {
        let (a, b) = (r % 2, 1 - r % 2);
        let r32 = r as u32;
        q.launch(
            &k.merge,
            &[
                sb_frame, fr_base, fr_len, &alist[a], &acnt[a], &alist[b], &acnt[b], &r32, &nslots,
            ],
            slots.next_multiple_of(64),
            None,
        )?;
    }
    let fin = rounds % 2;
    q.launch(
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
    )
}

impl Pending<'_> {
    /// Waits for the launch on `q`, downloads each block and adds the launch's times to `t`.
    fn collect(self, q: &Queue, t: &mut Timings) -> Result<Vec<Vec<u8>>> {
        q.finish()?;
        let Pending {
            frames,
            fr_out,
            output,
            plan,
            up,
            ev,
        } = self;
        let [clear_g, k_build, k_find, k_parse, k_plan, k_emit, ev_plan] = ev;
        let nf = frames.len();
        let mut outs: Vec<Vec<u8>> = Vec::with_capacity(nf);
        let mut down = vec![ev_plan];
        for f in 0..nf {
            let size = plan[f * 4];
            outs.push(if size == OVERFLOW {
                Vec::new()
            } else {
                vec![0u8; size as usize]
            });
        }
        let mut reads = || -> Result<()> {
            for (f, o) in outs.iter_mut().enumerate() {
                if !o.is_empty() {
                    down.push(q.read(&output, fr_out[f] as usize, o)?);
                }
            }
            Ok(())
        };
        let r = reads();
        let fin = q.finish(); // before `outs` can be dropped, even on error
        r.and(fin)?;
        for (f, o) in outs.iter_mut().enumerate() {
            if plan[f * 4] == OVERFLOW {
                *o = literal_block(frames[f]);
            }
        }
        t.upload_ns += up
            .first()
            .zip(up.last())
            .map_or(0, |(a, b)| event_span(a, b));
        t.kernel_ns += event_span(&clear_g, &k_emit); // table clears + the five kernels
        t.download_ns += down
            .first()
            .zip(down.last())
            .map_or(0, |(a, b)| event_span(a, b));
        let stages = [
            (&clear_g, &k_build),
            (&k_find, &k_find),
            (&k_parse, &k_parse),
            (&k_plan, &k_plan),
            (&k_emit, &k_emit),
        ];
        for (acc, (a, b)) in t.stages_ns.iter_mut().zip(stages) {
            *acc += event_span(a, b);
        }
        t.bytes_in += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        t.bytes_out += outs.iter().map(|o| o.len() as u64).sum::<u64>();
        Ok(outs)
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
    let k = dev.k.lock();
    let ranges = super::launches(frames.len(), batch, launch_budget(dev), |i| {
        padded(dev, frames[i].len())
    });
    let queues = k.queues();
    // Two launches in flight on two queues: while one computes, the other uploads or downloads.
    let mut pending: VecDeque<(Pending, usize)> = VecDeque::new();
    let mut out = Vec::with_capacity(frames.len());
    let pipeline = || -> Result<()> {
        for (n, r) in ranges.into_iter().enumerate() {
            if pending.len() == 2 {
                let (p, qi) = pending.pop_front().expect("two pending");
                out.extend(p.collect(queues[qi], t)?);
            }
            pending.push_back((enqueue(dev, &k, queues[n % 2], &frames[r])?, n % 2));
        }
        while let Some((p, qi)) = pending.pop_front() {
            out.extend(p.collect(queues[qi], t)?);
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
    r.map(|()| out)
}
