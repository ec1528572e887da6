//! Timing for the speed examples (`cut_speed`, `codec_speed`, `ext3e_decode`), included by each with
//! `#[path = "common/timing.rs"] mod timing;` (a file under examples/common/ is not an example itself).

use std::time::{Duration, Instant};

/// CPU time this thread has run, from /proc/thread-self/schedstat (Linux), so that other processes on a
/// busy machine do not count; `None` where that file is missing. The kernel updates it at scheduler
/// ticks (a few ms), so samples must be much longer than that.
pub fn thread_cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Time of one call of `f`: the best of three samples, each repeating `f` for at least `min` of wall
/// time; in this thread's CPU time when `cpu` and it is available, else in wall time (with work on
/// other threads, wall time is the one that counts).
pub fn best_time(min: Duration, cpu: bool, mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let (t, c) = (Instant::now(), thread_cpu_time());
        let mut calls = 0u32;
        while calls == 0 || t.elapsed() < min {
            f();
            calls += 1;
        }
        let took = match (cpu, c, thread_cpu_time()) {
            (true, Some(a), Some(b)) => b.saturating_sub(a),
            _ => t.elapsed(),
        };
        best = best.min(took / calls);
    }
    best
}
