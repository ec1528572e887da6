//! Host side of the LZ_EXT3 decoder kernel: one work-group per frame (decoding windows of sequences
//! in parallel, see the kernel), a status word per frame.

use super::cl::{event_span, DevBuf};
use super::device::{Device, Kernels};
use super::Timings;
use crate::error::{Error, Result};

/// Largest decoded frame accepted (the format's limit).
const MAX_RAW: usize = 16 << 20;

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

fn decode_err(msg: &str) -> Error {
    Error::Decode(format!("lz_ext3 (gpu): {msg}"))
}

/// Decodes one launch worth of frames (every one within limits); adds its times to `t`.
fn launch(
    dev: &Device,
    k: &Kernels,
    frames: &[(&[u8], usize)],
    t: &mut Timings,
) -> Result<Vec<Result<Vec<u8>>>> {
    let q = &k.queue;
    let ctx = &dev.ctx;
    let nf = frames.len();
    let (mut in_off, mut in_len, mut out_off, mut out_len) = (vec![], vec![], vec![], vec![]);
    let (mut ib, mut ob) = (0usize, 0usize);
    for (enc, raw) in frames {
        in_off.push(ib as u64);
        in_len.push(enc.len() as u32);
        out_off.push(ob as u64);
        out_len.push(*raw as u32);
        ib += enc.len();
        ob += raw.next_multiple_of(8);
    }
    let mut input = DevBuf::<u8>::new(ctx, ib, "allocating the input")?;
    let mut d_in_off = DevBuf::<u64>::new(ctx, nf, "allocating tables")?;
    let mut d_in_len = DevBuf::<u32>::new(ctx, nf, "allocating tables")?;
    let mut d_out_off = DevBuf::<u64>::new(ctx, nf, "allocating tables")?;
    let mut d_out_len = DevBuf::<u32>::new(ctx, nf, "allocating tables")?;
    let output = DevBuf::<u8>::new(ctx, ob, "allocating the output")?;
    let status = DevBuf::<u32>::new(ctx, nf, "allocating tables")?;

    // Small tables blocking (their vectors die with this call), frames non-blocking (they outlive it).
    let mut up = Vec::with_capacity(nf + 4);
    up.push(q.write_now(&mut d_in_off, 0, &in_off)?);
    up.push(q.write_now(&mut d_in_len, 0, &in_len)?);
    up.push(q.write_now(&mut d_out_off, 0, &out_off)?);
    up.push(q.write_now(&mut d_out_len, 0, &out_len)?);
    for (f, (enc, _)) in frames.iter().enumerate() {
        if !enc.is_empty() {
            up.push(q.write(&mut input, in_off[f] as usize, enc)?);
        }
    }
    let wg = dev.tuning.dwg;
    let kev = q.launch(
        &k.decompress,
        &[
            &input, &d_in_off, &d_in_len, &output, &d_out_off, &d_out_len, &status,
        ],
        nf * wg,
        Some(wg),
    )?;
    let mut st = vec![u32::MAX; nf];
    let ev_st = q.read_now(&status, 0, &mut st)?;
    let mut outs: Vec<Vec<u8>> = frames.iter().map(|(_, raw)| vec![0u8; *raw]).collect();
    let mut down = vec![ev_st];
    let mut reads = || -> Result<()> {
        for (f, o) in outs.iter_mut().enumerate() {
            if st[f] == 0 && !o.is_empty() {
                down.push(q.read(&output, out_off[f] as usize, o)?);
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
    t.bytes_in += ib as u64;
    t.bytes_out += frames.iter().map(|(_, r)| *r as u64).sum::<u64>();
    Ok(outs
        .into_iter()
        .zip(st)
        .map(|(o, s)| {
            if s == 0 {
                Ok(o)
            } else {
                Err(decode_err(status_text(s)))
            }
        })
        .collect())
}

/// Passes `r` on; on an error first waits for the queue, so that no transfer still reads or writes
/// host memory the caller is about to free.
pub(crate) fn finished<T>(k: &Kernels, r: Result<T>) -> Result<T> {
    if r.is_err() {
        let _ = k.queue.finish();
    }
    r
}

/// Decodes `frames` on one device in launches of at most `batch` frames.
pub(crate) fn run(
    dev: &Device,
    frames: &[(&[u8], usize)],
    batch: usize,
    t: &mut Timings,
) -> Result<Vec<Result<Vec<u8>>>> {
    let k = dev.k.lock();
    let mut out: Vec<Option<Result<Vec<u8>>>> = (0..frames.len()).map(|_| None).collect();
    // Frames outside the format's limits never reach the device.
    let mut ok = Vec::new();
    for (i, (enc, raw)) in frames.iter().enumerate() {
        if *raw > MAX_RAW || enc.len() > u32::MAX as usize / 2 {
            out[i] = Some(Err(decode_err("frame over the 16 MiB limit")));
        } else {
            ok.push(i);
        }
    }
    // Input plus output bytes per launch: no match array here, so up to a whole allocation (more
    // frames per launch is the decoder's parallelism).
    let budget = (dev.max_alloc as usize).clamp(16 << 20, 1 << 30);
    let mut i = 0;
    while i < ok.len() {
        let (mut j, mut bytes) = (i, 0usize);
        while j < ok.len() && j - i < batch.max(1) {
            let (enc, raw) = frames[ok[j]];
            let b = enc.len() + raw;
            if j > i && bytes + b > budget {
                break;
            }
            bytes += b;
            j += 1;
        }
        let part: Vec<(&[u8], usize)> = ok[i..j].iter().map(|&x| frames[x]).collect();
        for (x, r) in ok[i..j]
            .iter()
            .zip(finished(&k, launch(dev, &k, &part, t))?)
        {
            out[*x] = Some(r);
        }
        i = j;
    }
    Ok(out
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(decode_err("not decoded"))))
        .collect())
}
