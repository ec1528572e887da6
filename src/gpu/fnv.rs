//! Host side of the FNV-1a 64 kernel: buffers packed at 8-byte aligned offsets, one work-item each.

use super::cl::{event_span, DevBuf};
use super::device::{Device, Kernels};
use super::Timings;
use crate::error::Result;

fn launch(dev: &Device, k: &Kernels, bufs: &[&[u8]], t: &mut Timings) -> Result<Vec<u64>> {
    let q = &k.queue;
    let ctx = &dev.ctx;
    let n = bufs.len();
    let (mut off, mut len) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut total = 0usize;
    for b in bufs {
        off.push(total as u64);
        len.push(b.len() as u64);
        total += b.len().next_multiple_of(8);
    }
    let mut input = DevBuf::<u8>::new(ctx, total, "allocating the input")?;
    let mut d_off = DevBuf::<u64>::new(ctx, n, "allocating tables")?;
    let mut d_len = DevBuf::<u64>::new(ctx, n, "allocating tables")?;
    let out = DevBuf::<u64>::new(ctx, n, "allocating tables")?;
    let mut up = Vec::with_capacity(n + 2);
    up.push(q.write_now(&mut d_off, 0, &off)?);
    up.push(q.write_now(&mut d_len, 0, &len)?);
    for (i, b) in bufs.iter().enumerate() {
        if !b.is_empty() {
            up.push(q.write(&mut input, off[i] as usize, b)?);
        }
    }
    let count = n as u32;
    let kev = q.launch(
        &k.fnv,
        &[&input, &d_off, &d_len, &out, &count],
        n.next_multiple_of(64),
        None,
    )?;
    let mut h = vec![0u64; n];
    let dev_ev = q.read_now(&out, 0, &mut h)?;
    t.upload_ns += up
        .first()
        .zip(up.last())
        .map_or(0, |(a, b)| event_span(a, b));
    t.kernel_ns += event_span(&kev, &kev);
    t.download_ns += event_span(&dev_ev, &dev_ev);
    t.bytes_in += bufs.iter().map(|b| b.len() as u64).sum::<u64>();
    Ok(h)
}

/// Hashes `bufs` on one device, in launches bounded by the device's byte budget.
pub(crate) fn run(dev: &Device, bufs: &[&[u8]], t: &mut Timings) -> Result<Vec<u64>> {
    let k = dev.k.lock();
    let budget = super::compress::launch_budget(dev);
    let mut out = Vec::with_capacity(bufs.len());
    let mut i = 0;
    while i < bufs.len() {
        let (mut j, mut bytes) = (i, 0usize);
        while j < bufs.len() && (j == i || bytes + bufs[j].len() <= budget) {
            bytes += bufs[j].len();
            j += 1;
        }
        out.extend(super::decompress::finished(
            &k,
            launch(dev, &k, &bufs[i..j], t),
        )?);
        i = j;
    }
    Ok(out)
}
