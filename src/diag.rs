//! Diagnostics: the one place where the library writes to stderr or reads the environment.
//!
//! * [`Warnings`]: the warnings sink. A warning is printed as one line as it happens (unless quiet) and
//!   counted, so that the command can exit 1.
//! * [`note`]: a line about how the work is done (e.g. no GPU for decoding), not counted.
//! * [`trace`]: `CLC_TRACE` set: the run's one trace (events, and each stage's busy time, span and
//!   bytes) on stderr.
//! * [`log`]: a line to the mount's log (its stderr: the terminal with `-f`, `--log FILE` or nothing).
//! * [`knob`], [`knob_bytes`]: `CLC_GPU_*` overrides for experiments (docs/GPU.md).
//! * [`cache_dir`]: where clc keeps what it can rebuild (kernel binaries, the OpenCL driver table).
//! * [`icd`]: the OpenCL ICD loader's variables, read and set before OpenCL is first loaded.
//! * [`Progress`]: a command's progress on stderr (bytes, items, rate, ETA).
//! * [`temp_dir`]: where temporary files go (`TMPDIR`).
//! * [`creation_time`]: when an archive is made (`SOURCE_DATE_EPOCH`, else now).
//! * [`escape`]: every name that reaches a terminal (archive paths, symlink targets, xattr names, source
//!   paths) goes through it, so that no archive can send escape sequences to the user's terminal.

pub mod trace;

use parking_lot::Mutex;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Escapes a name for one line of text: printable UTF-8 stays, `\n`, `\t` and `\\` become those escapes,
/// every other control character (C0, DEL, C1: ESC, BEL, CR…) and every invalid byte becomes `\xHH`, and the
/// Unicode bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E/F) `\u{…}`, so nothing in a name
/// can move the cursor, retitle the terminal or reorder what is shown. The output is unambiguous: distinct
/// names give distinct strings.
pub fn escape(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                    out.push_str(&format!("\\u{{{:04x}}}", c as u32))
                }
                c => out.push(c),
            }
        }
        for &x in chunk.invalid() {
            out.push_str(&format!("\\x{x:02x}"));
        }
    }
    out
}

/// [`escape`] of a path's bytes.
pub fn escape_path(p: &Path) -> String {
    escape(p.as_os_str().as_bytes())
}

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

    /// An empty sink that prints as this one does, for work on a thread that may outlive a borrow of
    /// this one; [`absorb`](Self::absorb) takes its warnings back.
    pub fn fork(&self) -> Warnings {
        Warnings::new(self.quiet)
    }

    /// Records the warnings of `other` (a [`fork`](Self::fork), which printed them already).
    pub fn absorb(&self, other: Warnings) {
        self.list.lock().extend(other.list.into_inner());
    }

    pub fn all(&self) -> Vec<String> {
        self.list.lock().clone()
    }
}

/// Prints `clc: LINE` on stderr: how the work is being done, not a problem to count.
pub fn note(line: &str) {
    eprintln!("clc: {line}");
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

/// A byte count from the environment variable `name` (e.g. `CLC_GPU_AUTO_MIN`), when it is set and parses.
pub fn knob_bytes(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// clc's cache directory: `$CLC_CACHE_DIR` when set (an empty value turns the cache off: None), else
/// `$XDG_CACHE_HOME/clc`, else `$HOME/.cache/clc`; None without any of them.
pub fn cache_dir() -> Option<PathBuf> {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    match std::env::var_os("CLC_CACHE_DIR") {
        Some(d) if d.is_empty() => None,
        Some(d) => Some(PathBuf::from(d)),
        None => match non_empty("XDG_CACHE_HOME") {
            Some(x) => Some(PathBuf::from(x).join("clc")),
            None => Some(PathBuf::from(non_empty("HOME")?).join(".cache/clc")),
        },
    }
}

/// The OpenCL ICD loader's environment (ocl-icd and the Khronos loader both read it, once, at the first
/// OpenCL call), and `CLC_PROBE_ICD`, which makes `clc` the child that probes one driver
/// (`gpu::icd`).
pub mod icd {
    use super::*;

    /// Set in the environment of the child that probes one driver.
    pub const PROBE_ENV: &str = "CLC_PROBE_ICD";

    /// Whether this process is that child.
    pub fn is_probe() -> bool {
        std::env::var_os(PROBE_ENV).is_some()
    }

    /// The vendors directory the loader reads (`OCL_ICD_VENDORS`: a directory or one `.icd` file;
    /// default `/etc/OpenCL/vendors`).
    pub fn vendors() -> PathBuf {
        std::env::var_os("OCL_ICD_VENDORS")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("/etc/OpenCL/vendors"), PathBuf::from)
    }

    /// The libraries listed in `OCL_ICD_FILENAMES` (`:`-separated), in order.
    pub fn filenames() -> Vec<String> {
        std::env::var_os("OCL_ICD_FILENAMES")
            .map(|v| {
                v.to_string_lossy()
                    .split(':')
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets (Some) or removes (None) each variable. Only before OpenCL is first loaded, from the
    /// thread that opens devices (the loader reads these variables once, at its first call). Other
    /// threads may run (pack's stream, while `GPU_DEVICE = auto` opens the GPU), but none of them
    /// reads the environment through libc; Rust's own reads and writes of it are serialised.
    pub fn set(vars: Vec<(&'static str, Option<OsString>)>) {
        for (k, v) in vars {
            match v {
                Some(v) => std::env::set_var(k, v),
                None => std::env::remove_var(k),
            }
        }
    }

    /// The probe child's answer on stdout: its lines, then `end` (which the parent requires).
    pub fn answer(lines: &[String]) {
        let mut out = std::io::stdout().lock();
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
        let _ = writeln!(out, "end");
        let _ = out.flush();
    }
}

/// What a command is doing, on stderr while it runs: `LABEL BYTES/TOTAL DONE/COUNT UNIT [bar] RATE ETA T`,
/// cleared when it finishes. Hidden (every call a no-op) unless asked for: commands ask only when stderr
/// is a terminal and `-q` is not given. Clones share one bar; every method may be called from any thread.
#[derive(Clone)]
pub struct Progress {
    bar: indicatif::ProgressBar,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::hidden()
    }
}

impl Progress {
    /// A progress that draws nothing.
    pub fn hidden() -> Progress {
        Progress {
            bar: indicatif::ProgressBar::hidden(),
            count: Default::default(),
        }
    }

    /// A bar of `bytes` bytes and `count` items called `unit` ("files", "frames", "stripes") drawn on
    /// stderr when `show`, else [`Progress::hidden`]. It is drawn at once, then at most 10 times a second
    /// and at least twice (so that a stall shows as a falling rate).
    pub fn new(show: bool, label: &str, bytes: u64, count: u64, unit: &'static str) -> Progress {
        if !show {
            return Progress::hidden();
        }
        let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let shown = done.clone();
        let style = indicatif::ProgressStyle::with_template(
            "{prefix} {bytes}/{total_bytes} {count} {wide_bar} {rate} ETA {eta_sane}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .with_key(
            "count",
            move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let n = shown.load(std::sync::atomic::Ordering::Relaxed);
                let _ = write!(w, "{n}/{count} {unit}");
            },
        )
        .with_key("rate", Pace::new(false))
        .with_key("eta_sane", Pace::new(true))
        .progress_chars("=> ");
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(bytes),
            indicatif::ProgressDrawTarget::stderr_with_hz(10),
        )
        .with_style(style)
        .with_prefix(label.to_string());
        bar.tick();
        bar.enable_steady_tick(std::time::Duration::from_millis(500));
        Progress { bar, count: done }
    }

    /// `n` more bytes done.
    pub fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }

    /// `n` more items done.
    pub fn items(&self, n: u64) {
        self.count
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The rate (or the time left) of a progress bar, measured over the last [`Pace::WINDOW`] of work, from
/// the first byte on: start-up (opening files, the first frames in flight) never makes the first figures
/// absurd. `…` until the work has run [`Pace::SETTLE`].
#[derive(Clone)]
struct Pace {
    eta: bool,
    samples: std::collections::VecDeque<(Instant, u64)>,
    len: u64,
}

impl Pace {
    /// How long work must have been flowing before a figure is shown.
    const SETTLE: std::time::Duration = std::time::Duration::from_millis(1500);
    /// The span the rate is measured over.
    const WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

    fn new(eta: bool) -> Pace {
        Pace {
            eta,
            samples: Default::default(),
            len: 0,
        }
    }

    /// Position `pos` of `len` at `now`.
    fn record(&mut self, now: Instant, pos: u64, len: u64) {
        self.len = len;
        if pos == 0 {
            return;
        }
        if let Some(&(t, _)) = self.samples.back() {
            if now.saturating_duration_since(t) < std::time::Duration::from_millis(200) {
                return;
            }
        }
        self.samples.push_back((now, pos));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|&(t, _)| now.saturating_duration_since(t) >= Self::WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Bytes per second over the window, once settled.
    fn rate(&self) -> Option<f64> {
        let (&(t0, p0), &(t1, p1)) = (self.samples.front()?, self.samples.back()?);
        let span = t1.saturating_duration_since(t0);
        (span >= Self::SETTLE).then(|| p1.saturating_sub(p0) as f64 / span.as_secs_f64())
    }

    fn text(&self) -> String {
        let Some(rate) = self.rate() else {
            return if self.eta { "…" } else { "…/s" }.into();
        };
        if !self.eta {
            return format!("{}/s", indicatif::BinaryBytes(rate as u64));
        }
        let pos = self.samples.back().map_or(0, |&(_, p)| p);
        let left = self.len.saturating_sub(pos) as f64;
        if rate <= 0.0 {
            return if left > 0.0 { "…" } else { "0s" }.into();
        }
        match (left / rate).round() as u64 {
            s if s >= 100 * 3600 => ">99h".into(),
            s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
            s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
            s => format!("{s}s"),
        }
    }
}

impl indicatif::style::ProgressTracker for Pace {
    fn clone_box(&self) -> Box<dyn indicatif::style::ProgressTracker> {
        Box::new(self.clone())
    }

    fn tick(&mut self, state: &indicatif::ProgressState, now: Instant) {
        self.record(now, state.pos(), state.len().unwrap_or(0));
    }

    fn reset(&mut self, _: &indicatif::ProgressState, _: Instant) {
        self.samples.clear();
    }

    fn write(&self, _: &indicatif::ProgressState, w: &mut dyn std::fmt::Write) {
        let _ = w.write_str(&self.text());
    }
}

/// The time an archive is made, in Unix seconds: `SOURCE_DATE_EPOCH` when it is set to a number (the
/// reproducible-builds convention: the same tree, config and epoch give the same archive), else now.
pub fn creation_time() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        })
}

/// The directory for temporary files: `TMPDIR`, else `/tmp` (`std::env::temp_dir`).
pub fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_and_rate_wait_for_the_work_to_settle_and_forget_the_start() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let (gib, mib) = (1u64 << 30, 1u64 << 20);
        let mut eta = Pace::new(true);
        let mut rate = Pace::new(false);
        let mut both = |ms, pos| {
            eta.record(at(ms), pos, 4 * gib);
            rate.record(at(ms), pos, 4 * gib);
            (eta.text(), rate.text())
        };
        // Nothing done yet, however long the start-up: no figure.
        assert_eq!(both(0, 0), ("…".into(), "…/s".into()));
        assert_eq!(both(5000, 0), ("…".into(), "…/s".into()));
        // The first bytes after a 5 s start-up: still no figure until 1.5 s of work.
        assert_eq!(both(5100, mib), ("…".into(), "…/s".into()));
        assert_eq!(both(6000, 100 * mib), ("…".into(), "…/s".into()));
        // Then the rate of the work itself (100 MiB/s), not of the start-up: 4 GiB - 200 MiB left → 39 s.
        assert_eq!(both(7100, 201 * mib), ("39s".into(), "100.00 MiB/s".into()));
        // A stall lowers the rate over the window; it never divides by zero.
        let (e, r) = both(30_000, 201 * mib);
        assert_eq!((e.as_str(), r.as_str()), ("…", "0 B/s"));
        // Long ETAs are given in hours, capped.
        let mut slow = Pace::new(true);
        slow.record(at(0), 1, 4 * gib);
        slow.record(at(2000), 2, 4 * gib);
        assert_eq!(slow.text(), ">99h");
        let mut done = Pace::new(true);
        done.record(at(0), 1, 10);
        done.record(at(2000), 10, 10);
        assert_eq!(done.text(), "0s");
    }

    #[test]
    fn hidden_progress_counts_nothing_and_never_fails() {
        let p = Progress::new(false, "x", 10, 2, "files");
        p.bytes(5);
        p.items(1);
        p.finish();
        Progress::default().finish();
    }

    /// Names from an archive reached the terminal raw in extract's warnings (ESC, BEL, CR).
    #[test]
    fn regression_escape_terminal_controls() {
        assert_eq!(escape(b"a\nb\xffc"), "a\\nb\\xffc");
        assert_eq!(
            escape(b"\x1b]0;owned\x07\r\x1b[2J\\"),
            "\\x1b]0;owned\\x07\\x0d\\x1b[2J\\\\"
        );
        assert_eq!(escape("C1 \u{9b}31m".as_bytes()), "C1 \\x9b31m");
        assert_eq!(escape("rtl \u{202e}txt".as_bytes()), "rtl \\u{202e}txt");
        assert_eq!(escape("déjà vu".as_bytes()), "déjà vu");
        assert_eq!(escape_path(Path::new("d/\x1bx")), "d/\\x1bx");
    }
}
