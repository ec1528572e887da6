//! `CLC_TRACE=1`: one trace for a whole run, on stderr (the only trace: pack's phases, the GPU's
//! start-up and every stage of the stream, CPU and GPU alike, go through here).
//!
//! Two kinds of lines: events ([`note`], [`span`]: something happened at a time, such as "scan
//! done" or "kernels loaded from the cache") and, at the end ([`report`]), one line per pipeline
//! [`Stage`] with the time spent in it summed over every thread (`busy`), the span from its first
//! start to its last end (`span`, since the run began), the bytes it handled and bytes / span. A stage
//! whose span is close to the whole stream and whose busy time is close to its span on one thread is
//! the one capping the run. Without `CLC_TRACE` (or with it empty or `0`) every call is a load and a
//! branch. `CLC_TRACE_EVENTS=FILE` also writes every stage interval to FILE (`stage thread start_ns
//! end_ns`), from which a timeline of the pipeline shows which threads were busy when. The last column,
//! `faults`, is the minor page faults (mostly first touches of fresh memory) of the threads that
//! recorded the stage, each thread's counted since its previous record (so a thread's waits between
//! two records are charged to the second); the process's total is printed after the table.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// The stages a byte passes through in `pack`, and back in `extract` and `mount` (and the GPU's parts of
/// them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Walking the tree (whole scan phase).
    Scan,
    /// Whole-file dedup: size groups, sample bytes, FNV-1a / BLAKE3 of candidates.
    Dedup,
    /// Reading source files (reader threads, summed).
    Read,
    /// Content-defined chunking, BLAKE3 of chunks and the entropy test (parallel).
    Chunk,
    /// The cutter's groups, wall time from handing a group to its threads until every segment is cut
    /// (`Chunk` plus the wait for free threads).
    CutGroup,
    /// The sequencer's serial part: the chunk map, frames' pieces.
    Sequence,
    /// A frame's bytes gathered into one buffer by the compressor that takes it.
    Gather,
    /// A pack's stage blocked handing work on (the reader on the read-ahead, the cutter and the
    /// sequencer on the next stage's queue, the compressors' dispatch on the frames not yet written).
    Blocked,
    /// xxh3 of every frame.
    Checksum,
    /// CPU encoding of frames.
    CpuEncode,
    /// A GPU batch from the host's side: staging, launch, waiting, results (per feeder thread).
    GpuBatch,
    /// Device time of the compression kernels (from profiling events).
    GpuKernel,
    /// Host-to-device and device-to-host copies (device time).
    GpuCopy,
    /// CPU decode + checksum of every GPU frame before it is written.
    Verify,
    /// Writing frames to the volumes.
    Write,
    /// Building and encoding the index, writing it and the footer, closing volumes.
    Finish,
    /// Extract and mount: reading frames' stored bytes.
    ReadFrames,
    /// Extract and mount: CPU decode and checksum of frames.
    Decode,
    /// Extract and mount: a GPU decode batch from the host's side (launch, wait, results, checks).
    GpuDecode,
    /// Mount: a FUSE read from its request to its bytes (waits for frames included; summed over the
    /// request threads), with the bytes answered.
    MountRead,
}

const STAGES: [Stage; 20] = [
    Stage::Scan,
    Stage::Dedup,
    Stage::Read,
    Stage::Chunk,
    Stage::CutGroup,
    Stage::Sequence,
    Stage::Gather,
    Stage::Blocked,
    Stage::Checksum,
    Stage::CpuEncode,
    Stage::GpuBatch,
    Stage::GpuKernel,
    Stage::GpuCopy,
    Stage::Verify,
    Stage::Write,
    Stage::Finish,
    Stage::ReadFrames,
    Stage::Decode,
    Stage::GpuDecode,
    Stage::MountRead,
];

struct Acc {
    busy: AtomicU64,
    bytes: AtomicU64,
    faults: AtomicU64,
    first: AtomicU64,
    last: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ACC0: Acc = Acc {
    busy: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
    faults: AtomicU64::new(0),
    first: AtomicU64::new(u64::MAX),
    last: AtomicU64::new(0),
};
static ACC: [Acc; STAGES.len()] = [ACC0; STAGES.len()];

fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

/// Whether `CLC_TRACE` is set (read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let on = std::env::var_os("CLC_TRACE").is_some_and(|v| !v.is_empty() && v != "0");
        if on {
            t0();
        }
        on
    })
}

/// Starts the run's clock (the first call wins); later times are relative to it.
pub fn start() {
    if enabled() {
        t0();
    }
}

fn ns(at: Instant) -> u64 {
    at.saturating_duration_since(t0()).as_nanos() as u64
}

/// Prints an event line.
pub fn note(what: &str) {
    if enabled() {
        eprintln!("clc: trace: {:8.3} s  {what}", t0().elapsed().as_secs_f64());
    }
}

/// Prints an event that started at `start` and ends now, with its bytes (0: none).
pub fn span(what: &str, start: Instant, bytes: u64) {
    if !enabled() {
        return;
    }
    let d = start.elapsed().as_secs_f64();
    let rate = if bytes > 0 && d > 0.0 {
        format!(", {:.2} GB/s", bytes as f64 / d / 1e9)
    } else {
        String::new()
    };
    eprintln!(
        "clc: trace: {:8.3} s  {what} ({:.3} s{rate})",
        t0().elapsed().as_secs_f64(),
        d
    );
}

/// Records that `stage` ran from `start` to `end` and handled `bytes`.
pub fn add(stage: Stage, start: Instant, end: Instant, bytes: u64) {
    if !enabled() {
        return;
    }
    let a = &ACC[stage as usize];
    let (s, e) = (ns(start), ns(end));
    a.busy.fetch_add(e.saturating_sub(s), Ordering::Relaxed);
    a.bytes.fetch_add(bytes, Ordering::Relaxed);
    a.faults.fetch_add(new_faults(), Ordering::Relaxed);
    a.first.fetch_min(s, Ordering::Relaxed);
    a.last.fetch_max(e, Ordering::Relaxed);
    if let Some(ev) = events() {
        ev.lock().push((stage as u8, thread_no(), s, e));
    }
}

/// `CLC_TRACE_EVENTS=FILE` (with `CLC_TRACE`): every stage interval, written to FILE by [`report`] as
/// `stage thread start_ns end_ns` lines, for a timeline of the pipeline.
type Events = parking_lot::Mutex<Vec<(u8, u32, u64, u64)>>;

fn events() -> Option<&'static Events> {
    static EV: OnceLock<Option<Events>> = OnceLock::new();
    EV.get_or_init(|| {
        std::env::var_os("CLC_TRACE_EVENTS").map(|_| parking_lot::Mutex::new(Vec::new()))
    })
    .as_ref()
}

/// The calling thread's minor page faults since its previous call (since it started, the first time).
fn new_faults() -> u64 {
    thread_local!(static SEEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) });
    let now = crate::sys::minor_faults(false);
    SEEN.with(|c| now.saturating_sub(c.replace(now)))
}

/// A small number for the calling thread, in the order threads first record.
fn thread_no() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    thread_local!(static NO: u32 = NEXT.fetch_add(1, Ordering::Relaxed));
    NO.with(|n| *n)
}

/// Records device time (no host interval): busy time only, at the current span.
pub fn add_device(stage: Stage, busy_ns: u64, bytes: u64) {
    if !enabled() {
        return;
    }
    let a = &ACC[stage as usize];
    let now = ns(Instant::now());
    a.busy.fetch_add(busy_ns, Ordering::Relaxed);
    a.bytes.fetch_add(bytes, Ordering::Relaxed);
    a.first
        .fetch_min(now.saturating_sub(busy_ns), Ordering::Relaxed);
    a.last.fetch_max(now, Ordering::Relaxed);
}

/// Runs `f` as part of `stage`, handling `bytes`.
#[inline]
pub fn timed<R>(stage: Stage, bytes: u64, f: impl FnOnce() -> R) -> R {
    if !enabled() {
        return f();
    }
    let a = Instant::now();
    let r = f();
    add(stage, a, Instant::now(), bytes);
    r
}

/// Prints one line per stage that ran, then clears the figures.
pub fn report() {
    if !enabled() {
        return;
    }
    if let (Some(ev), Some(path)) = (events(), std::env::var_os("CLC_TRACE_EVENTS")) {
        use std::fmt::Write as _;
        let mut out = String::new();
        for (st, th, s, e) in ev.lock().drain(..) {
            let _ = writeln!(out, "{:?} {th} {s} {e}", STAGES[st as usize]);
        }
        if let Err(e) = std::fs::write(&path, out) {
            eprintln!("clc: trace: {}: {e}", std::path::Path::new(&path).display());
        }
    }
    eprintln!(
        "clc: trace: {:<10} {:>9} {:>17} {:>13} {:>9} {:>9}",
        "stage", "busy s", "span s", "bytes", "GB/s", "faults"
    );
    for (i, st) in STAGES.iter().enumerate() {
        let a = &ACC[i];
        let first = a.first.swap(u64::MAX, Ordering::Relaxed);
        if first == u64::MAX {
            continue;
        }
        let last = a.last.swap(0, Ordering::Relaxed);
        let busy = a.busy.swap(0, Ordering::Relaxed) as f64 / 1e9;
        let bytes = a.bytes.swap(0, Ordering::Relaxed);
        let faults = a.faults.swap(0, Ordering::Relaxed);
        let span = last.saturating_sub(first) as f64 / 1e9;
        let rate = if bytes > 0 && span > 0.0 {
            format!("{:.2}", bytes as f64 / span / 1e9)
        } else {
            "-".into()
        };
        eprintln!(
            "clc: trace: {:<10} {:>9.3} {:>7.3}..{:<7.3}  {:>13} {:>9} {:>9}",
            format!("{st:?}"),
            busy,
            first as f64 / 1e9,
            last as f64 / 1e9,
            bytes,
            rate,
            faults
        );
    }
    eprintln!(
        "clc: trace: minor faults of the process so far: {}",
        crate::sys::minor_faults(true)
    );
}
