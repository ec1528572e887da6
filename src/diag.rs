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
//! * [`progress_bar`]: pack's progress on stderr.
//! * [`temp_dir`]: where temporary files go (`TMPDIR`).

pub mod trace;

use parking_lot::Mutex;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

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
