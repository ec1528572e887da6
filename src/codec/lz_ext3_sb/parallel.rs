//! The parallel LZ_EXT3_SB decoder: every sub-block of a frame at once, on several threads, with the
//! same bytes and the same accepted frames as the serial decoder (its safe twin, tested against it).
//!
//! 1. **Walk** (threads take sub-blocks in order from a shared counter, and never wait): each sub-block's
//!    sequences are parsed and checked, literals written, and a match copied at once when every byte it
//!    reads is final; otherwise it is set aside, in order, and the walk goes on. A byte of an earlier
//!    sub-block is final below that sub-block's published **progress** (an atomic, stored with `Release`
//!    after the bytes); a byte of the walker's own sub-block is final unless it lies in one of its
//!    set-aside matches. Progress is published after every sequence: the sub-block's start up to its
//!    first set-aside match.
//! 2. **Passes**: threads take the sub-blocks that still have set-aside matches, lowest first, and copy
//!    those that have become ready, in order, publishing progress; a match whose source is still not final
//!    stays for the next pass (no thread ever waits on another). The lowest sub-block with set-aside
//!    matches has every earlier sub-block complete, so each pass finishes at least that one: the passes end,
//!    whatever the frame. Malformed input is refused during the walk; the passes only copy checked matches.
//!
//! `unsafe`: the output is written through a raw pointer, because threads read bytes of other sub-blocks
//! (below their published progress) while those sub-blocks are still being written further on. The
//! protocol makes this race-free: a thread writes only the range of the sub-block it holds; no byte below
//! a published progress is ever written again (matches are copied exactly, without the 16-byte over-write
//! of the serial decoder, and progress never passes a set-aside match); a byte of another sub-block is
//! read only after an `Acquire` load of that sub-block's progress shows it final; and between the walk and
//! the passes, and between passes, the threads join. Every index is checked before a pointer is formed.

use super::super::lz_ext3::read_ext;
use super::decode::{check, in_sub_block, match_part};
use super::{err, Layout, Points};
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// Decodes a frame into exactly `raw_len` bytes on `threads` threads of the current rayon pool (the
/// serial decoder when that is 1 or the frame has one sub-block). Same result as `decompress_serial`.
pub fn decompress_parallel(src: &[u8], raw_len: usize, threads: usize) -> Result<Vec<u8>> {
    let lay = check(src, raw_len)?;
    let n = lay.count();
    let threads = threads.min(n);
    if threads <= 1 {
        return super::decompress_serial(src, raw_len);
    }
    let mut out = vec![0u8; raw_len];
    // Touch every page here, on one thread: pages first written by several threads at once cost far
    // more (the kernel's memory map is shared; under gVisor each fault is a trip to its Sentry).
    for i in (0..raw_len).step_by(4096) {
        // SAFETY: `i < raw_len`; a volatile write of the zero calloc already put there.
        unsafe { std::ptr::write_volatile(out.as_mut_ptr().add(i), 0) };
    }
    // One block of queue slots for all sub-blocks (a match takes at least 4 input bytes), handed out
    // before the threads start: no thread allocates while it decodes.
    let caps: Vec<usize> = (0..n).map(|k| lay.input(k).len() / 4 + 1).collect();
    let mut store = vec![Item::default(); caps.iter().sum()];
    let mut queues = Vec::with_capacity(n);
    let mut rest: &mut [Item] = &mut store;
    for &c in &caps {
        let (mine, tail) = rest.split_at_mut(c);
        queues.push(Mutex::new(Queue {
            items: mine,
            len: 0,
        }));
        rest = tail;
    }
    let frame = Frame {
        out: out.as_mut_ptr(),
        len: raw_len,
        src,
        lay: &lay,
        progress: (0..n).map(|_| Padded(AtomicU32::new(0))).collect(),
        pending: queues,
        next: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
        error: Mutex::new(None),
    };
    let on_threads = |f: &(dyn Fn() + Sync)| {
        rayon::scope(|s| {
            for _ in 0..threads {
                s.spawn(|_| f());
            }
        })
    };
    on_threads(&|| frame.walk_all());
    if let Some((_, e)) = frame.error.lock().take() {
        return Err(e);
    }
    loop {
        let left: Vec<usize> = (0..n)
            .filter(|&k| frame.pending[k].lock().len > 0)
            .collect();
        if left.is_empty() {
            break;
        }
        frame.next.store(0, Ordering::Relaxed);
        let pass = || loop {
            let i = frame.next.fetch_add(1, Ordering::Relaxed);
            let Some(&k) = left.get(i) else { return };
            frame.retry(k);
        };
        if left.len() == 1 {
            pass();
        } else {
            on_threads(&pass);
        }
    }
    Ok(out)
}

/// A frame being decoded, shared by the threads.
struct Frame<'a> {
    out: *mut u8,
    len: usize,
    src: &'a [u8],
    lay: &'a Layout,
    /// Per sub-block: its first bytes that are final (relative to its start), each on a cache line
    /// of its own (walkers publish often; a shared line would bounce between the cores).
    progress: Vec<Padded>,
    /// Per sub-block: its set-aside matches, in order (each used by one thread at a time).
    pending: Vec<Mutex<Queue<'a>>>,
    /// The next sub-block to take.
    next: AtomicUsize,
    failed: AtomicBool,
    /// The error of the lowest failing sub-block.
    error: Mutex<Option<(usize, Error)>>,
}

// SAFETY: `out` is only dereferenced under the protocol of the module docs (each thread writes its own
// sub-block's range; reads of other ranges are ordered after the `Release` that published them).
unsafe impl Sync for Frame<'_> {}

/// An atomic alone on its cache line.
#[repr(align(128))]
struct Padded(AtomicU32);

/// Bytes of progress a walker makes between two publications (and at every set-aside match's end).
const PUB: usize = 4096;

/// The progress of one earlier sub-block last read by a walker: most matches read the same one, and
/// progress only grows, so a need below it costs no atomic load.
#[derive(Clone, Copy)]
struct Seen {
    j: usize,
    p: u32,
}

/// A sub-block's set-aside matches: `items[..len]`, in order.
struct Queue<'a> {
    items: &'a mut [Item],
    len: usize,
}

/// A match set aside: its position in the frame, offset and length.
#[derive(Clone, Copy, Default)]
struct Item {
    op: usize,
    off: usize,
    len: usize,
}

impl Frame<'_> {
    /// Step 1 for the sub-blocks this thread takes.
    fn walk_all(&self) {
        loop {
            if self.failed.load(Ordering::Relaxed) {
                return;
            }
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            if k >= self.progress.len() {
                return;
            }
            if let Err(e) = self.walk(k) {
                let mut g = self.error.lock();
                if g.as_ref().is_none_or(|(j, _)| k < *j) {
                    *g = Some((k, in_sub_block(k, e)));
                }
                self.failed.store(true, Ordering::Relaxed);
                return;
            }
        }
    }

    /// Walks sub-block `k`: checks every sequence, writes literals and ready matches, sets the others
    /// aside.
    fn walk(&self, k: usize) -> Result<()> {
        let r = self.lay.output(k);
        let (b, end) = (r.start, r.end);
        let input = &self.src[self.lay.input(k)];
        let mut guard = self.pending[k].lock();
        let q = &mut *guard;
        let mut seen = Seen {
            j: usize::MAX,
            p: 0,
        };
        let mut published = b;
        let mut ip = 0usize;
        let mut op = b;
        let mut pts = Points::new(self.lay.points(k));
        while ip < input.len() {
            pts.at(ip, op - b)?;
            let token = input[ip];
            ip += 1;
            let mut lit = (token >> 4) as usize;
            if lit == 15 {
                lit += read_ext(input, &mut ip)?;
            }
            if lit > end - op {
                return Err(err("literals past the sub-block's end"));
            }
            if lit <= 16 && ip + 16 <= input.len() && op + 16 <= end {
                // SAFETY: [op, op + 16) lies in this sub-block, above its progress; the bytes past the
                // run are written again later by this walk.
                unsafe {
                    std::ptr::copy_nonoverlapping(input.as_ptr().add(ip), self.out.add(op), 16)
                };
            } else {
                let s = input
                    .get(ip..ip.wrapping_add(lit))
                    .ok_or_else(|| err("literals past the input"))?;
                // SAFETY: [op, op + lit) lies in this sub-block (checked above), above its progress.
                unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), self.out.add(op), lit) };
            }
            ip += lit;
            op += lit;
            if ip == input.len() {
                break;
            }
            let (off, ml) = match_part(input, &mut ip, token)?;
            if off > op {
                return Err(err("match offset before the frame start"));
            }
            if ml > end - op {
                return Err(err("match past the sub-block's end"));
            }
            let it = Item { op, off, len: ml };
            if self.ready(b, &q.items[..q.len], &it, &mut seen) {
                self.copy(&it);
            } else {
                // Others may wait on what lies before the first set-aside match: publish it now.
                if q.len == 0 && published < op {
                    self.publish(k, b, op);
                    published = op;
                }
                // Cannot overflow: at most one match per 4 input bytes.
                q.items[q.len] = it;
                q.len += 1;
            }
            op += ml;
            if q.len == 0 && op >= published + PUB {
                self.publish(k, b, op);
                published = op;
            }
        }
        if op != end {
            return Err(err("sub-block ends before its output is full"));
        }
        pts.end()?;
        let upto = if q.len > 0 { q.items[0].op } else { end };
        self.publish(k, b, upto);
        Ok(())
    }

    /// Step 2 for sub-block `k`: copies the set-aside matches that are ready, in order.
    fn retry(&self, k: usize) {
        let b = self.lay.output(k).start;
        let end = self.lay.output(k).end;
        let mut guard = self.pending[k].lock();
        let q = &mut *guard;
        let pending = &mut q.items[..q.len];
        let mut seen = Seen {
            j: usize::MAX,
            p: 0,
        };
        let mut kept = 0;
        for i in 0..pending.len() {
            let it = pending[i];
            if self.ready(b, &pending[..kept], &it, &mut seen) {
                self.copy(&it);
                if kept == 0 {
                    // Everything before the next set-aside match is final now.
                    let upto = pending.get(i + 1).map_or(end, |p| p.op);
                    self.publish(k, b, upto);
                }
            } else {
                pending[kept] = it;
                kept += 1;
            }
        }
        q.len = kept;
    }

    fn publish(&self, k: usize, b: usize, upto: usize) {
        self.progress[k]
            .0
            .store((upto - b) as u32, Ordering::Release);
    }

    /// Whether every byte `it` reads is final: below the progress of the earlier sub-blocks it reads,
    /// and outside the set-aside matches `before` (sorted, disjoint) of its own sub-block (from `b`).
    fn ready(&self, b: usize, before: &[Item], it: &Item, seen: &mut Seen) -> bool {
        let a = it.op - it.off;
        let z = a + it.off.min(it.len);
        if z > b && before.last().is_some_and(|p| p.op + p.len > a) {
            let from = a.max(b);
            let i = before.partition_point(|p| p.op + p.len <= from);
            if before.get(i).is_some_and(|p| p.op < z) {
                return false;
            }
        }
        if a < b {
            let log = self.lay.sb_log;
            let last = (z.min(b) - 1) >> log;
            for j in (a >> log)..=last {
                let js = j << log;
                let need = (z.min(js + (1 << log)) - js) as u32;
                if seen.j == j && seen.p >= need {
                    continue;
                }
                let p = self.progress[j].0.load(Ordering::Acquire);
                *seen = Seen { j, p };
                if p < need {
                    return false;
                }
            }
        }
        true
    }

    /// Copies a ready match exactly (forward-copy semantics: an overlapping source repeats).
    fn copy(&self, it: &Item) {
        let (op, off, len) = (it.op, it.off, it.len);
        debug_assert!(off >= 1 && off <= op && op + len <= self.len);
        // SAFETY: `ready` showed [op - off, op - off + min(off, len)) final; the destination is in the
        // caller's own sub-block, above its published progress; the bounds were checked by the walk.
        unsafe {
            let dst = self.out.add(op);
            let s = self.out.add(op - off);
            if off >= len {
                std::ptr::copy_nonoverlapping(s, dst, len);
            } else {
                // Doubling chunks, each a whole number of periods after the source.
                let mut done = 0;
                let mut chunk = off;
                while done < len {
                    let c = chunk.min(len - done);
                    std::ptr::copy_nonoverlapping(s, dst.add(done), c);
                    done += c;
                    chunk = done + off;
                }
            }
        }
    }
}
