//! Bad input: corrupt, missing, truncated and foreign volumes; bad config; refusing to overwrite; unreadable
//! source files; extraction that would write through a symlink. Each gives one clear line naming the thing,
//! a non-zero exit and never wrong bytes.

mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Packs a tree of 8 files of 100 KB each (half text, half noise) into 64K frames and 150K volumes.
fn setup(t: &Path) -> (PathBuf, PathBuf) {
    let src = t.join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..8 {
        let mut data = text(i, 50_000);
        data.extend(noise(i, 50_000));
        fs::write(src.join(format!("f{i}")), data).unwrap();
    }
    let arc = t.join("arc");
    clc_ok!(
        "pack",
        &src,
        "-o",
        &arc,
        "-q",
        "--cpu",
        "--frame-size",
        "64K",
        "--volume-size",
        "150K"
    );
    (src, t.join("arc.001"))
}

fn flip_in_frame(first: &Path, frame: usize) -> String {
    let ar = clc::archive::Archive::open(first).unwrap();
    let f = ar.index().frames()[frame];
    let vol = ar.volume_paths()[f.volume.at()].to_path_buf();
    let mut b = fs::read(&vol).unwrap();
    b[(f.offset + f.stored_len as u64 / 2) as usize] ^= 0x40;
    fs::write(&vol, b).unwrap();
    // The files touching that frame.
    let idx = ar.index();
    let name = idx
        .entries_with_ids()
        .find(|(id, _)| idx.frames_of(*id).iter().any(|x| x.0 as usize == frame))
        .map(|(_, e)| String::from_utf8_lossy(&e.path).into_owned())
        .unwrap();
    name
}

#[test]
fn corrupt_frame_is_named_and_never_extracted_wrong() {
    let t = tempfile::tempdir().unwrap();
    let (src, first) = setup(t.path());
    let victim = flip_in_frame(&first, 3);
    let (code, out, _) = run(&[os("verify"), first.as_os_str()]);
    assert_eq!(code, 2);
    assert!(
        out.contains("DAMAGED: frame 3 (volume") && out.contains(&victim),
        "{out}"
    );
    // Plain extract fails with the file named, and leaves no wrong file behind.
    let dest = t.path().join("out");
    let (code, _, err) = run(&[
        os("extract"),
        first.as_os_str(),
        os("-o"),
        dest.as_os_str(),
        os("--cpu"),
    ]);
    assert_eq!(code, 2);
    assert!(err.lines().count() == 1 && err.contains("frame 3"), "{err}");
    for p in walk(&dest) {
        let got = fs::read(dest.join(&p)).unwrap();
        assert!(
            got == fs::read(src.join(&p)).unwrap(),
            "{} restored wrong",
            p.display()
        );
    }
    // --keep-going restores every intact file and names the damaged ones.
    let dest = t.path().join("out2");
    let (code, _, err) = run(&[
        os("extract"),
        first.as_os_str(),
        os("-o"),
        dest.as_os_str(),
        os("--keep-going"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains(&victim), "{err}");
    let restored = walk(&dest);
    assert!(restored.len() >= 6 && !restored.iter().any(|p| p.to_str() == Some(&victim)));
    for p in restored {
        assert!(fs::read(dest.join(&p)).unwrap() == fs::read(src.join(&p)).unwrap());
    }
}

#[test]
fn missing_truncated_and_foreign_volumes_are_named() {
    let t = tempfile::tempdir().unwrap();
    let (_, first) = setup(t.path());
    let vols: Vec<PathBuf> = (1..)
        .map(|i| t.path().join(format!("arc.{i:03}")))
        .take_while(|p| p.exists())
        .collect();
    assert!(vols.len() >= 3, "{}", vols.len());
    let last = vols.last().unwrap().clone();

    // A middle volume missing: verify names it.
    let mid = vols[1].clone();
    fs::rename(&mid, t.path().join("aside")).unwrap();
    let (code, out, _) = run(&[os("verify"), first.as_os_str()]);
    assert_eq!(code, 2);
    assert!(out.contains("arc.002"), "{out}");
    fs::rename(t.path().join("aside"), &mid).unwrap();

    // The last volume missing: the archive does not open, and the message says why.
    fs::rename(&last, t.path().join("aside")).unwrap();
    let (code, _, err) = run(&[os("list"), first.as_os_str()]);
    assert_eq!(code, 2);
    assert!(err.contains("missing") && err.lines().count() == 1, "{err}");
    fs::rename(t.path().join("aside"), &last).unwrap();

    // The last volume truncated.
    let good = fs::read(&last).unwrap();
    fs::write(&last, &good[..good.len() - 10]).unwrap();
    let (code, _, err) = run(&[os("list"), first.as_os_str()]);
    assert_eq!(code, 2);
    assert!(err.contains("arc.0") && err.lines().count() == 1, "{err}");
    fs::write(&last, &good).unwrap();

    // A volume of another archive in slot 2.
    let t2 = tempfile::tempdir().unwrap();
    setup(t2.path());
    fs::copy(t2.path().join("arc.002"), &mid).unwrap();
    let (code, out, _) = run(&[os("verify"), first.as_os_str()]);
    assert_eq!(code, 2);
    assert!(out.contains("arc.002: volume of another archive"), "{out}");

    // Volumes 1 and 2 of the archive swapped: each slot names the volume it holds.
    let t3 = tempfile::tempdir().unwrap();
    let (_, first) = setup(t3.path());
    let (one, two) = (t3.path().join("arc.001"), t3.path().join("arc.002"));
    fs::rename(&one, t3.path().join("aside")).unwrap();
    fs::rename(&two, &one).unwrap();
    fs::rename(t3.path().join("aside"), &two).unwrap();
    let (code, out, _) = run(&[os("verify"), first.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("arc.001: this is volume 2 of the archive, not 1")
            && out.contains("arc.002: this is volume 1 of the archive, not 2"),
        "{out}"
    );
    let (code, _, err) = run(&[
        os("extract"),
        first.as_os_str(),
        os("-o"),
        t3.path().join("x").as_os_str(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("this is volume"), "{err}");
}

#[test]
fn every_single_byte_flip_in_the_index_region_is_caught() {
    let t = tempfile::tempdir().unwrap();
    let (_, first) = setup(t.path());
    let last = (1..)
        .map(|i| t.path().join(format!("arc.{i:03}")))
        .take_while(|p| p.exists())
        .last()
        .unwrap();
    let good = fs::read(&last).unwrap();
    let ar = clc::archive::Archive::open(&first).unwrap();
    drop(ar);
    // Flip each of the last 400 bytes (index blob and footer) in turn: open must fail or, if it opens,
    // give the same index (a flip inside zlib padding could be harmless) — never panic.
    let reference = clc::archive::Archive::open(&first).unwrap().index().clone();
    for back in 1..=400.min(good.len()) {
        let mut b = good.clone();
        let i = good.len() - back;
        b[i] ^= 0x01;
        fs::write(&last, &b).unwrap();
        if let Ok(a) = clc::archive::Archive::open(&first) {
            assert_eq!(
                *a.index(),
                reference,
                "flip at {i} changed the index silently"
            );
        }
    }
    fs::write(&last, &good).unwrap();
}

#[test]
fn refuses_to_overwrite_without_force() {
    let t = tempfile::tempdir().unwrap();
    let (src, first) = setup(t.path());
    let arc = t.path().join("arc");
    let (code, _, err) = run(&[
        os("pack"),
        src.as_os_str(),
        os("-o"),
        arc.as_os_str(),
        os("-q"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("arc.001: already exists"), "{err}");
    // --force replaces it, and leaves no stale volume behind (the new archive has one volume).
    clc_ok!("pack", &src, "-o", &arc, "-q", "--cpu", "--force");
    assert!(!t.path().join("arc.002").exists());
    clc_ok!("verify", &first);
}

#[test]
fn bad_config_and_flags_name_the_key() {
    let t = tempfile::tempdir().unwrap();
    let (src, _) = setup(t.path());
    let cfg = t.path().join("bad.txt");
    fs::write(&cfg, "HASH_LOG = 16\nNO_SUCH_KEY = 1\n").unwrap();
    let (code, _, err) = run(&[
        os("pack"),
        src.as_os_str(),
        os("-o"),
        t.path().join("x").as_os_str(),
        os("--config"),
        cfg.as_os_str(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.txt:2") && err.contains("NO_SUCH_KEY"),
        "{err}"
    );
    fs::write(&cfg, "HASH_LOG = 40\n").unwrap();
    let (code, _, err) = run(&[
        os("pack"),
        src.as_os_str(),
        os("-o"),
        t.path().join("x").as_os_str(),
        os("--config"),
        cfg.as_os_str(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.txt:1") && err.contains("HASH_LOG"),
        "{err}"
    );
    let (code, _, err) = run(&[
        os("pack"),
        src.as_os_str(),
        os("-o"),
        t.path().join("x").as_os_str(),
        os("--volume-size"),
        os("12Q"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--volume-size"), "{err}");
    assert!(!t.path().join("x.001").exists());
}

#[test]
fn unreadable_source_file_is_left_out_with_a_warning() {
    // Root reads anything, so run the pack as nobody (setpriv), with a file nobody may read.
    let setpriv = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok();
    if !require(
        "ROOT",
        clc::sys::is_root() && setpriv,
        "the unreadable-file test needs root and setpriv",
    ) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), b"readable").unwrap();
    fs::write(src.join("b"), b"secret").unwrap();
    fs::write(src.join("c"), b"readable too").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(src.join("b"), fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let o = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_clc"))
        .args(["pack", "--cpu", "-q"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("arc"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("src/b") && err.contains("left out"), "{err}");
    let (out, _) = clc_ok!("list", t.path().join("arc.001"));
    assert!(
        out.contains(" a\n") && out.contains(" c\n") && !out.contains(" b\n"),
        "{out}"
    );
    let dest = t.path().join("out");
    clc_ok!("extract", t.path().join("arc.001"), "-o", &dest, "-q");
    assert_eq!(fs::read(dest.join("c")).unwrap(), b"readable too");
}

#[test]
fn extract_never_writes_through_a_symlink_in_dest() {
    let t = tempfile::tempdir().unwrap();
    let (src, first) = setup(t.path());
    let _ = src;
    // An archive with a directory "d" holding a file; DEST already has "d" as a symlink to elsewhere.
    let src2 = t.path().join("src2");
    fs::create_dir_all(src2.join("d")).unwrap();
    fs::write(src2.join("d/file"), b"x").unwrap();
    clc_ok!("pack", &src2, "-o", t.path().join("arc2"), "-q", "--cpu");
    let dest = t.path().join("dest");
    let outside = t.path().join("outside");
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, dest.join("d")).unwrap();
    let (code, _, err) = run(&[
        os("extract"),
        t.path().join("arc2.001").as_os_str(),
        os("-o"),
        dest.as_os_str(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "wrote outside DEST"
    );
    let _ = first;
}
