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
//! * [`escape`]: every name that reaches a terminal (archive paths, symlink targets, xattr names, source
//!   paths) goes through it, so that no archive can send escape sequences to the user's terminal.

pub mod trace;

use parking_lot::Mutex;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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

#[cfg(test)]
mod tests {
    use super::*;

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
