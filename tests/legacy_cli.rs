//! CL_Compressor archives through the binary: `extract`, `verify`, `info` and `list` on the seed archives;
//! the writer-bug archive is refused (exit 2, first affected file named) and `--keep-going` restores the files
//! before it and lists the rest as damaged.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The CL_Compressor archives and the tree they were made from (kept in the repository).
const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seed-archives");

fn seed() -> PathBuf {
    let p = PathBuf::from(SEED);
    assert!(p.join("tree.tar.xz").is_file(), "{SEED} has no tree.tar.xz");
    p
}

fn untar(seed: &Path, into: &Path) -> PathBuf {
    let st = std::process::Command::new("tar")
        .arg("xf")
        .arg(seed.join("tree.tar.xz"))
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(st.success());
    into.join("tree")
}

#[test]
fn seed_archives_extract_verify_and_describe() {
    let seed = seed();
    let t = tempfile::tempdir().unwrap();
    let tree = untar(&seed, t.path());
    let mut n = 0;
    for d in std::fs::read_dir(&seed).unwrap() {
        let d = d.unwrap().path();
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        if !d.is_dir() || name.starts_with("bug-") {
            continue;
        }
        let first = d.join("archive.001");
        let dest = t.path().join(&name);
        clc_ok!("extract", &first, "-o", &dest, "-q");
        let diff = std::process::Command::new("diff")
            .arg("-r")
            .arg(&tree)
            .arg(&dest)
            .output()
            .unwrap();
        assert!(
            diff.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&diff.stdout)
        );
        let (out, _) = clc_ok!("verify", &first);
        assert!(
            out.contains("content checksums") && out.contains("ok:"),
            "{out}"
        );
        let (out, _) = clc_ok!("info", &first);
        assert!(out.contains("CL_Compressor GPU_IDX"), "{out}");
        let (out, _) = clc_ok!("list", &first);
        assert!(out.contains("misc/empty.dat"), "{out}");
        n += 1;
    }
    assert!(n >= 4, "only {n} seed archives found");
}

#[test]
fn truncated_stream_bug_is_refused_and_keep_going_salvages() {
    let seed = seed();
    let first = seed.join("bug-idx3-head-truncated-stream/archive.001");
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("a");
    let (code, _, err) = common::run(&[
        OsStr::new("extract"),
        first.as_os_str(),
        OsStr::new("-o"),
        dest.as_os_str(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("first affected file: b.txt"), "{err}");
    let dest = t.path().join("b");
    let (code, _, err) = common::run(&[
        OsStr::new("extract"),
        first.as_os_str(),
        OsStr::new("-o"),
        dest.as_os_str(),
        OsStr::new("--keep-going"),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("2 damaged files") && err.contains("b.txt") && err.contains("c.txt"),
        "{err}"
    );
    let got: Vec<_> = common::walk(&dest);
    assert_eq!(
        got,
        vec![PathBuf::from("a.txt")],
        "only the file before the damage comes back"
    );
    let (code, out, _) = common::run(&[OsStr::new("verify"), first.as_os_str()]);
    assert_eq!(code, 2);
    assert!(out.contains("DAMAGED: b.txt"), "{out}");
}

#[test]
fn seed_archive_mounts_like_our_own() {
    let seed = seed();
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tree = untar(&seed, t.path());
    let mnt = t.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let first = seed.join("idx3-head-f1m-v1m/archive.001");
    clc_ok!("mount", &first, &mnt);
    let diff = std::process::Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(&mnt)
        .output()
        .unwrap();
    let (code, _, err) = common::run(&[OsStr::new("umount"), mnt.as_os_str()]);
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
    assert_eq!(code, 0, "{err}");
}
