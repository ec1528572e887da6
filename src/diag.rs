//! Diagnostics: the one place where the library writes to stderr or reads the environment.
//!
//! * [`Warnings`]: the warnings sink. A warning is printed as one line as it happens (unless quiet) and
//!   counted, so that the command can exit 1.
//! * [`note`]: a line about how the work is done (e.g. no GPU for decoding), not counted.
//! * [`Trace`]: `CLC_TRACE` set: each stage's end, with the time since the start, on stderr.
//! * [`log`]: a line to the mount's log (its stderr: the terminal with `-f`, `--log FILE` or nothing).
//! * [`knob`]: `CLC_GPU_*` overrides for experiments (docs/GPU.md).
//! * [`progress_bar`]: pack's progress on stderr.
//! * [`temp_dir`]: where temporary files go (`TMPDIR`).

use parking_lot::Mutex;
use std::io::Write;
use std::time::Instant;

#[derive(Default)]
pub struct Warnings {
    list: Mutex<Vec<String>>,
    quiet: bool,
}

impl Warnings {
    pub fn new(quiet: bool) -> Self {
        Warnings {
            list: Mutex::new(Vec::new()),
            quiet,
        }
    }

    /// Records a warning and prints it unless quiet.
    pub fn warn(&self, msg: impl Into<String>) {
        let msg = msg.into();
        if !self.quiet {
            eprintln!("clc: warning: {msg}");
        }
        self.list.lock().push(msg);
    }

    pub fn count(&self) -> usize {
        self.list.lock().len()
    }

    pub fn all(&self) -> Vec<String> {
        self.list.lock().clone()
    }
}

/// Prints `clc: LINE` on stderr: how the work is being done, not a problem to count.
pub fn note(line: &str) {
    eprintln!("clc: {line}");
}

/// The stage times of one run, printed when `CLC_TRACE` is set.
pub struct Trace {
    start: Instant,
    on: bool,
}

impl Trace {
    /// Starts the clock; reads `CLC_TRACE` once.
    pub fn start() -> Trace {
        Trace {
            start: Instant::now(),
            on: std::env::var_os("CLC_TRACE").is_some(),
        }
    }

    /// Prints `clc: trace: WHAT at S s` when tracing.
    pub fn stage(&self, what: &str) {
        if self.on {
            eprintln!(
                "clc: trace: {what} at {:.3} s",
                self.start.elapsed().as_secs_f64()
            );
        }
    }

    /// Seconds since the start.
    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// Writes one line to the mount's log. Never fails.
pub fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "clc mount: {line}");
}

/// Flushes stderr (before a fork or an exit, so that no line is lost or written twice).
pub fn flush() {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// An experiment override from the environment variable `name` (docs/GPU.md): its value when it parses
/// and lies in `range`, else `default`.
pub fn knob(name: &str, range: std::ops::RangeInclusive<u32>, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| range.contains(v))
        .unwrap_or(default)
}

/// A progress bar of `total` bytes drawn on stderr, or a hidden one when `show` is false.
pub fn progress_bar(show: bool, total: u64) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb
}

/// The directory for temporary files: `TMPDIR`, else `/tmp` (`std::env::temp_dir`).
pub fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir()
}
