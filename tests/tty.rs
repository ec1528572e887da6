//! Progress on a terminal: `pack`, `extract`, `verify` and `repair` run under `script` (util-linux), which
//! gives them a pseudo-terminal, draw a progress line (bytes, items, rate, an ETA that never starts absurd)
//! and clear it; the same commands piped, or with `-q`, write nothing on stderr.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether `script` is there; see `common::require` (CI must have it: scripts/deps.sh installs util-linux).
fn script_ok() -> bool {
    let ok = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    require("SCRIPT", ok, "`script` (util-linux) is not installed")
}

/// Runs clc with `args` on a pseudo-terminal; returns its exit code and everything it wrote there.
fn on_tty(args: &[&Path]) -> (i32, String) {
    let mut line = format!("'{}'", env!("CARGO_BIN_EXE_clc"));
    for a in args {
        let a = a.to_str().unwrap();
        assert!(!a.contains('\''));
        line.push_str(&format!(" '{a}'"));
    }
    let o = Command::new("script")
        .args(["-q", "-e", "-f", "-c", &line, "/dev/null"])
        .env("COLUMNS", "120")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// The progress lines drawn in a transcript (split at carriage returns, escape codes removed).
fn drawn(transcript: &str, label: &str) -> Vec<String> {
    transcript
        .split(['\r', '\n'])
        .map(|l| l.replace("\x1b[2K", ""))
        .filter(|l| l.starts_with(&format!("{label} ")) && l.contains(" ETA "))
        .collect()
}

/// Asserts the transcript shows `label`'s progress with `unit`, and that no ETA shown is absurd (more than
/// ten minutes for a few megabytes).
fn assert_progress(transcript: &str, label: &str, unit: &str) {
    let lines = drawn(transcript, label);
    assert!(!lines.is_empty(), "no {label} progress in {transcript:?}");
    for l in &lines {
        assert!(l.contains(&format!(" {unit} ")), "{l}");
        assert!(l.contains("B/"), "bytes done of total: {l}");
        let eta = l.rsplit(" ETA ").next().unwrap().trim();
        assert!(
            eta == "…" || eta.ends_with('s') && !eta.contains('h') && eta.len() <= 6,
            "absurd ETA {eta:?} in {l}"
        );
    }
}

fn tree(t: &Path) -> PathBuf {
    let src = t.join("src");
    for d in 0..4 {
        let dir = src.join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..10 {
            let mut data = text(d * 10 + f, 300_000);
            data.extend(noise(d * 10 + f, 200_000));
            fs::write(dir.join(format!("f{f}")), data).unwrap();
        }
    }
    src
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

#[test]
fn progress_on_a_terminal_and_silence_when_piped() {
    if !script_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = tree(t.path());
    let first = t.path().join("a.001");
    let dest = t.path().join("x");

    let (code, out) = on_tty(&[p("pack"), &src, p("-o"), &t.path().join("a"), p("--cpu")]);
    assert_eq!(code, 0, "{out}");
    assert_progress(&out, "pack", "files");
    assert!(out.contains("/40 files"), "{out:?}");
    assert!(
        out.contains("packed 40 files"),
        "the summary follows: {out:?}"
    );
    let (code, out) = on_tty(&[p("verify"), &first]);
    assert_eq!(code, 0, "{out}");
    assert_progress(&out, "verify", "frames");
    let (code, out) = on_tty(&[p("extract"), &first, p("-o"), &dest, p("--cpu")]);
    assert_eq!(code, 0, "{out}");
    assert_progress(&out, "extract", "files");
    assert_same_tree(&src, &dest);

    // -q on a terminal: no progress.
    let (code, out) = on_tty(&[p("verify"), &first, p("-q")]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, out) = on_tty(&[p("extract"), &first, p("-o"), &t.path().join("y"), p("-q")]);
    assert_eq!((code, out.as_str()), (0, ""));

    // Piped, with the default device choice: the summary on stdout, nothing on stderr (not even about
    // OpenCL on a machine without a GPU).
    for args in [
        vec![p("pack"), &src, p("-o"), &t.path().join("b")],
        vec![p("verify"), &first],
        vec![p("extract"), &first, p("-o"), &t.path().join("z")],
    ] {
        let o = clc().args(&args).stdin(Stdio::null()).output().unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(o.status.success(), "{args:?}: {err}");
        assert_eq!(err, "", "{args:?}: stderr");
        assert!(
            !out.contains('\x1b') && !out.contains('\r') && !out.is_empty(),
            "{out:?}"
        );
    }
}

#[test]
fn repair_shows_the_check_and_the_rebuild() {
    if !script_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = tree(t.path());
    let arc = t.path().join("a");
    clc_ok!(
        "pack",
        &src,
        "-o",
        &arc,
        "-q",
        "--cpu",
        "--volume-size",
        "4M",
        "--parity",
        "50"
    );
    let first = t.path().join("a.001");
    let second = t.path().join("a.002");
    let len = fs::metadata(&second).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&second).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let keep = fs::read(&first).unwrap();

    // Piped first (it must say nothing on stderr), on a copy.
    let copy = t.path().join("copy");
    fs::create_dir(&copy).unwrap();
    for e in fs::read_dir(t.path()).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("a.") {
            fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    let o = clc()
        .arg("repair")
        .arg(copy.join("a.001"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");

    let (code, out) = on_tty(&[p("repair"), &first]);
    assert_eq!(code, 0, "{out}");
    assert_progress(&out, "parity check", "volumes");
    assert_progress(&out, "repair", "stripes");
    assert_progress(&out, "verify", "frames");
    assert!(out.contains("rebuilt "), "{out:?}");
    assert_eq!(fs::metadata(&second).unwrap().len(), len);
    assert_eq!(
        fs::read(&first).unwrap(),
        keep,
        "an intact volume is never rewritten"
    );
}
