//! Parity volumes and `clc repair`: lost, truncated and corrupted data volumes (the first, a middle one, the
//! last with the index) and parity volumes are rebuilt bit-exact up to the parity amount; beyond it, repair
//! says what is lost, changes nothing, and extract --keep-going still restores the intact files.

mod common;

use common::*;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// A few MB of mixed text and random files.
fn make_src(root: &Path) -> PathBuf {
    let src = root.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("text.txt"), text(1, 1_500_000)).unwrap();
    fs::write(src.join("random.bin"), noise(2, 1_800_000)).unwrap();
    for i in 0..12 {
        fs::write(
            src.join(format!("sub/f{i}")),
            text(10 + i, 40_000 + 1000 * i as usize),
        )
        .unwrap();
    }
    fs::write(src.join("sub/noise"), noise(9, 300_000)).unwrap();
    src
}

/// Packs `src` into `dir/arc` with `parity` (e.g. "30%", or None for no parity) and `vsize` volumes.
fn pack(src: &Path, dir: &Path, parity: Option<&str>, vsize: &str) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let arc = dir.join("arc");
    let mut args: Vec<OsString> = [
        "pack",
        "-q",
        "--cpu",
        "--frame-size",
        "64K",
        "--volume-size",
        vsize,
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.extend([src.into(), "-o".into(), arc.clone().into()]);
    if let Some(p) = parity {
        args.extend(["--parity".into(), p.into()]);
    }
    let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    let (code, out, err) = run(&refs);
    assert_eq!(code, 0, "{out}{err}");
    dir.join("arc.001")
}

/// Copies every file of `from` into a new `to`; returns `to/arc.001`.
fn copy_set(from: &Path, to: &Path) -> PathBuf {
    fs::create_dir_all(to).unwrap();
    for de in fs::read_dir(from).unwrap() {
        let p = de.unwrap().path();
        fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
    to.join("arc.001")
}

fn data_vols(dir: &Path) -> Vec<PathBuf> {
    clc::volumes::list_data(&dir.join("arc"))
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn parity_vols(dir: &Path) -> Vec<PathBuf> {
    clc::volumes::list_parity(&dir.join("arc"))
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn flip(p: &Path, at: u64) {
    let mut b = fs::read(p).unwrap();
    let at = (at as usize).min(b.len() - 1);
    b[at] ^= 0x5a;
    b[at / 2] ^= 0xff;
    fs::write(p, b).unwrap();
}

fn flip_one(p: &Path, at: usize) {
    let mut b = fs::read(p).unwrap();
    b[at] ^= 1;
    fs::write(p, b).unwrap();
}

fn truncate(p: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(p)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn listing(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|d| {
            let p = d.unwrap().path();
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

/// repair → every damaged file is back bit for bit → verify exits 0 → extract gives the source tree.
fn repair_and_check(first: &Path, orig: &Path, src: &Path, damaged: &[PathBuf]) {
    let (code, out, err) = run(&[os("repair"), first.as_os_str()]);
    assert_eq!(code, 0, "repair: {out}{err}");
    for p in damaged {
        let name = p.file_name().unwrap();
        assert!(
            fs::read(p).unwrap() == fs::read(orig.join(name)).unwrap(),
            "{} not rebuilt bit-exact",
            p.display()
        );
        assert!(out.contains(&format!("rebuilt {}", p.display())), "{out}");
    }
    let (code, out, err) = run(&[os("verify"), first.as_os_str()]);
    assert_eq!(code, 0, "verify after repair: {out}{err}");
    assert!(out.contains("parity ok"), "{out}");
    let dest = first.parent().unwrap().join("restored");
    clc_ok!("extract", first, "-o", &dest, "-q");
    assert_same_tree(src, &dest);
}

#[test]
fn lost_truncated_and_corrupted_volumes_are_rebuilt_bit_exact() {
    let t = tempfile::tempdir().unwrap();
    let src = make_src(t.path());
    let orig = t.path().join("orig");
    pack(&src, &orig, Some("30%"), "256K");
    let vols = data_vols(&orig);
    let pars = parity_vols(&orig);
    let (n, p) = (vols.len(), pars.len());
    assert!(n >= 10, "{n} data volumes");
    assert_eq!(p, (n * 30).div_ceil(100), "P = ceil(30% × N)");

    // The first volume, lost.
    let d = t.path().join("first");
    let first = copy_set(&orig, &d);
    fs::remove_file(&first).unwrap();
    let (code, out, _) = run(&[os("verify"), first.as_os_str()]);
    assert_eq!(code, 2);
    assert!(
        out.contains("arc.001: missing") && out.contains("repairable with clc repair"),
        "{out}"
    );
    repair_and_check(&first, &orig, &src, std::slice::from_ref(&first));

    // A middle one truncated, another corrupted.
    let d = t.path().join("middle");
    let first = copy_set(&orig, &d);
    let (a, b, c) = (d.join("arc.004"), d.join("arc.007"), d.join("arc.009"));
    truncate(&a, 1000);
    flip(&b, 50_000);
    let mut long = fs::read(&c).unwrap();
    long.extend_from_slice(b"trailing garbage");
    fs::write(&c, long).unwrap();
    repair_and_check(&first, &orig, &src, &[a.clone(), b.clone(), c]);
    assert!(d.join("arc.004.damaged").exists() && d.join("arc.007.damaged").exists());

    // The LAST volume, with the index: the archive does not open, yet verify reports from the parity.
    let d = t.path().join("last");
    let first = copy_set(&orig, &d);
    let last = data_vols(&d).pop().unwrap();
    fs::remove_file(&last).unwrap();
    let (code, out, _) = run(&[os("verify"), first.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("missing") && out.contains("repairable with clc repair"),
        "{out}"
    );
    let dest = d.join("x");
    let (code, _, err) = run(&[os("extract"), first.as_os_str(), os("-o"), dest.as_os_str()]);
    assert_eq!(code, 2);
    assert!(err.contains("clc repair"), "{err}");
    repair_and_check(&first, &orig, &src, std::slice::from_ref(&last));

    // The last one corrupted in its index, a parity volume corrupted and another lost.
    let d = t.path().join("last-and-parity");
    let first = copy_set(&orig, &d);
    let last = data_vols(&d).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    flip(&last, len - 100);
    let pv = parity_vols(&d);
    flip(&pv[0], 5000);
    fs::remove_file(&pv[1]).unwrap();
    repair_and_check(&first, &orig, &src, &[last, pv[0].clone(), pv[1].clone()]);

    // As many lost volumes as there are parity volumes, the first and the last among them.
    let d = t.path().join("many");
    let first = copy_set(&orig, &d);
    let mut gone: Vec<PathBuf> = data_vols(&d)
        .into_iter()
        .step_by(n / p)
        .take(p - 1)
        .collect();
    gone.push(data_vols(&d).pop().unwrap());
    for g in &gone {
        fs::remove_file(g).unwrap();
    }
    repair_and_check(&first, &orig, &src, &gone);
}

#[test]
fn only_parity_damaged_is_a_warning_and_is_repaired() {
    let t = tempfile::tempdir().unwrap();
    let src = make_src(t.path());
    let orig = t.path().join("orig");
    pack(&src, &orig, Some("10"), "256K");
    let d = t.path().join("p");
    let first = copy_set(&orig, &d);
    let pv = parity_vols(&d);
    truncate(&pv[0], 10);
    let (code, out, _) = run(&[os("verify"), first.as_os_str()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("parity volume") && out.contains("truncated"),
        "{out}"
    );
    repair_and_check(&first, &orig, &src, &pv[..1]);
}

#[test]
fn more_damage_than_parity_is_reported_and_nothing_is_destroyed() {
    let t = tempfile::tempdir().unwrap();
    let src = make_src(t.path());
    let orig = t.path().join("orig");
    pack(&src, &orig, Some("10%"), "256K");
    let d = t.path().join("d");
    let first = copy_set(&orig, &d);
    let p = parity_vols(&d).len();
    let vols = data_vols(&d);
    for v in vols.iter().skip(1).take(p + 1) {
        fs::remove_file(v).unwrap();
    }
    let before = listing(&d);
    let (code, out, _) = run(&[os("repair"), first.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("NOT repairable") && out.contains("arc.002"),
        "{out}"
    );
    assert!(out.contains("files:"), "the lost files are named: {out}");
    assert!(
        listing(&d) == before,
        "repair changed files it could not repair"
    );
    let (code, out, _) = run(&[os("verify"), first.as_os_str()]);
    assert_eq!(code, 2);
    assert!(out.contains("NOT repairable"), "{out}");
    // extract --keep-going restores every intact file.
    let dest = d.join("x");
    let (code, _, err) = run(&[
        os("extract"),
        first.as_os_str(),
        os("-o"),
        dest.as_os_str(),
        os("--keep-going"),
    ]);
    assert_eq!(code, 2, "{err}");
    let restored = walk(&dest);
    assert!(!restored.is_empty());
    for r in restored.iter().filter(|r| dest.join(r).is_file()) {
        assert!(fs::read(dest.join(r)).unwrap() == fs::read(src.join(r)).unwrap());
    }
}

#[test]
fn damage_is_located_per_stripe() {
    // 3 data volumes of ~3 MB, 1 MiB stripes, one parity shard — in two parity volumes, since no volume
    // may exceed 3M (FORMAT.md 9.1): corruption in different stripes of two volumes is still repairable;
    // two in the same stripe is not.
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), noise(5, 7 << 20)).unwrap();
    let orig = t.path().join("orig");
    pack(&src, &orig, Some("10%"), "3M");
    assert_eq!((data_vols(&orig).len(), parity_vols(&orig).len()), (3, 2));
    for v in data_vols(&orig).iter().chain(&parity_vols(&orig)) {
        assert!(fs::metadata(v).unwrap().len() <= 3 << 20, "{}", v.display());
    }

    let d = t.path().join("ok");
    let first = copy_set(&orig, &d);
    // Each of the three volumes damaged, in a different stripe: one parity volume rebuilds them all.
    let vols = data_vols(&d);
    for (v, at) in vols.iter().zip([(1 << 20) + 100, (2 << 20) + 100, 100_000]) {
        flip_one(v, at);
    }
    let (code, out, _) = run(&[os("verify"), first.as_os_str()]);
    assert_eq!(code, 2);
    assert!(out.contains("repairable with clc repair"), "{out}");
    repair_and_check(&first, &orig, &src, &vols);

    // Two volumes damaged in the same stripe: one parity slice is not enough.
    let d = t.path().join("bad");
    let first = copy_set(&orig, &d);
    flip_one(&d.join("arc.001"), 100_000);
    flip_one(&d.join("arc.003"), 200_000);
    let before = listing(&d);
    let (code, out, _) = run(&[os("repair"), first.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("NOT repairable: 1 of 3 stripes"), "{out}");
    assert!(listing(&d) == before);
}

#[test]
fn without_parity_repair_reports_intact_frames() {
    let t = tempfile::tempdir().unwrap();
    let src = make_src(t.path());
    let d = t.path().join("d");
    let first = pack(&src, &d, None, "256K");
    let (code, out, _) = run(&[os("repair"), first.as_os_str()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("no parity volumes") && out.contains("no damage found"),
        "{out}"
    );
    flip(&d.join("arc.003"), 30_000);
    fs::remove_file(d.join("arc.005")).unwrap();
    let (code, out, _) = run(&[os("repair"), first.as_os_str()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("arc.005: missing") && out.contains("arc.003:"),
        "{out}"
    );
    assert!(
        out.contains("damaged") && out.contains("intact frame"),
        "{out}"
    );
}

#[test]
fn pack_force_replaces_stale_parity_and_refuses_without_it() {
    let t = tempfile::tempdir().unwrap();
    let src = make_src(t.path());
    let d = t.path().join("d");
    let first = pack(&src, &d, Some("20%"), "256K");
    let p = parity_vols(&d).len();
    // Without --force: refused.
    let (code, _, err) = run(&[
        os("pack"),
        src.as_os_str(),
        os("-o"),
        d.join("arc").as_os_str(),
        os("--parity"),
        os("10%"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    // With --force and no parity: the stale parity volumes go too.
    clc_ok!("pack", &src, "-o", d.join("arc"), "-q", "--cpu", "--force");
    assert!(p >= 1 && parity_vols(&d).is_empty());
    let (code, out, _) = run(&[os("verify"), first.as_os_str()]);
    assert_eq!(code, 0, "{out}");
}
