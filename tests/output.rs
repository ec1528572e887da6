//! What people read: the summaries (stdout) in one vocabulary with `info`, the frame line in the form of the
//! tool clc replaces, plurals, a sane reduction on tiny inputs, silence about a GPU nobody asked for,
//! `--json` for pack, verify, extract and info, extract paths with a leading `/`, the packed directory's
//! own mtime, `mount` / `umount` refusing what is not theirs, and the man pages and shell completions
//! naming every subcommand.

mod common;

use common::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// A small tree: 3 files (one a duplicate of another; 450,000 bytes), a hardlink, 2 dirs, 2 symlinks, a
/// FIFO; the root's mtime set.
fn small_tree(t: &Path) -> PathBuf {
    let src = t.join("src");
    fs::create_dir_all(src.join("d/e")).unwrap();
    fs::write(src.join("a.txt"), text(1, 200_000)).unwrap();
    fs::write(src.join("d/b.txt"), text(1, 200_000)).unwrap();
    fs::write(src.join("d/e/c.bin"), noise(2, 50_000)).unwrap();
    fs::hard_link(src.join("a.txt"), src.join("hard.txt")).unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("l1")).unwrap();
    std::os::unix::fs::symlink("d/b.txt", src.join("l2")).unwrap();
    let fifo = std::ffi::CString::new(src.join("fifo").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid path string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    set_mtime(&src, 1_600_000_000, 42);
    src
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// The `frames:` line of a summary: `LZ_EXT3_GPU=a (p%) | LZ_EXT3_CPU=b (p%) | RAW=c (p%) | Reduction = r%`;
/// returns (a, b, c, r).
fn frame_line(line: &str) -> (u64, u64, u64, f64) {
    let parts: Vec<&str> = line.split(" | ").collect();
    assert_eq!(parts.len(), 4, "{line}");
    let count = |p: &str, name: &str| -> u64 {
        let rest = p
            .strip_prefix(&format!("{name}="))
            .unwrap_or_else(|| panic!("{name} in {line}"));
        let (n, pct) = rest.split_once(' ').unwrap();
        assert!(pct.starts_with('(') && pct.ends_with("%)"), "{line}");
        n.parse().unwrap()
    };
    let red = parts[3]
        .strip_prefix("Reduction = ")
        .and_then(|r| r.strip_suffix('%'))
        .unwrap_or_else(|| panic!("{line}"));
    (
        count(parts[0], "LZ_EXT3_GPU"),
        count(parts[1], "LZ_EXT3_CPU"),
        count(parts[2], "RAW"),
        red.parse().unwrap(),
    )
}

#[test]
fn pack_and_info_say_the_same_things_in_the_same_words() {
    let t = tempfile::tempdir().unwrap();
    let src = small_tree(t.path());
    let a = t.path().join("a");
    // The default device choice: on a machine without a GPU, nothing is said about OpenCL.
    let (code, out, err) = run(&[os("pack"), src.as_os_str(), os("-o"), a.as_os_str()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "stderr is for warnings and errors");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("packed 3 files, 1 hardlink, 2 dirs, 2 symlinks, 1 other (")
            && lines[0].contains("(1 volume, "),
        "{out}"
    );
    assert!(lines[1].starts_with("dedup: 1 duplicate file ("), "{out}");
    let fl = lines
        .iter()
        .find_map(|l| l.strip_prefix("frames: "))
        .expect("frames line");
    let (g, c, r, red) = frame_line(fl);
    assert!(c >= 1 && r >= 1, "{fl}");
    assert!((0.0..100.0).contains(&red) && red > 10.0, "{fl}");
    assert!(
        out.contains("on the CPU") || out.contains("on the GPU"),
        "{out}"
    );

    let (info, _) = clc_ok!("info", t.path().join("a.001"));
    assert!(
        info.contains("entries:        3 files, 1 hardlink, 2 dirs, 2 symlinks, 1 other"),
        "{info}"
    );
    let ifl = info
        .lines()
        .find_map(|l| l.strip_prefix("frames:         "))
        .expect("frames line in info");
    assert_eq!(frame_line(ifl), (g, c, r, red), "pack: {fl}\ninfo: {ifl}");
    assert!(!info.contains("COMPRESSED") && !out.contains("COMPRESSED"));
    assert!(info.contains("volumes:        1\n"), "{info}");
    let (v, _) = clc_ok!("verify", t.path().join("a.001"));
    assert!(
        v.starts_with("ok: ") && v.contains(", 1 volume\n") && !v.contains("1 volumes"),
        "{v}"
    );
}

#[test]
fn tiny_and_empty_inputs_have_a_sane_reduction() {
    let t = tempfile::tempdir().unwrap();
    for (name, data) in [("tiny", &b"x"[..]), ("empty", &b""[..])] {
        let src = t.path().join(name);
        fs::create_dir(&src).unwrap();
        fs::write(src.join("f"), data).unwrap();
        let (out, _) = clc_ok!("pack", &src, "-o", t.path().join(name), "--cpu");
        let fl = out
            .lines()
            .find_map(|l| l.strip_prefix("frames: "))
            .unwrap();
        let (_, _, _, red) = frame_line(fl);
        assert!((0.0..=100.0).contains(&red), "{name}: {fl}");
        assert!(
            out.contains("1 file, ") && out.contains("(1 volume, "),
            "{out}"
        );
    }
}

#[test]
fn a_gpu_asked_for_and_missing_is_one_line_naming_flag_and_key() {
    let t = tempfile::tempdir().unwrap();
    let src = small_tree(t.path());
    let (code, out, err) = run(&[
        os("pack"),
        src.as_os_str(),
        os("-o"),
        t.path().join("a").as_os_str(),
        os("--gpu-device"),
        os("no-such-device-name"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--gpu-device") && err.contains("GPU_DEVICE") && err.contains("CPU"),
        "{err}"
    );
    assert!(out.contains("LZ_EXT3_CPU="), "{out}");
    // The same through the config file.
    let cfg = t.path().join("c.txt");
    fs::write(&cfg, "GPU_DEVICE = no-such-device-name\n").unwrap();
    let (_, _, err) = run(&[
        os("pack"),
        src.as_os_str(),
        os("-o"),
        t.path().join("b").as_os_str(),
        os("--config"),
        cfg.as_os_str(),
    ]);
    assert!(
        err.lines().count() == 1 && err.contains("GPU_DEVICE"),
        "{err}"
    );
    // extract says the same, once.
    let (first, x) = (t.path().join("a.001"), t.path().join("x"));
    let (code, _, err) = run(&[
        os("extract"),
        first.as_os_str(),
        os("-o"),
        x.as_os_str(),
        os("--gpu-device"),
        os("no-such-device-name"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.lines().count() == 1 && err.contains("--gpu-device") && err.contains("GPU_DEVICE"),
        "{err}"
    );
    // -q: not even that.
    let (_, out, err) = run(&[
        os("pack"),
        src.as_os_str(),
        os("-o"),
        t.path().join("c").as_os_str(),
        os("--gpu-device"),
        os("no-such-device-name"),
        os("-q"),
    ]);
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
}

/// A codec the GPU encoder does not write (ZSTD) opens no device: one line says so, and a missing device
/// is no error even with GPU_FALLBACK_ENABLED = false (the pack has no use for it). The archive is the
/// `--cpu` one.
#[test]
fn a_codec_the_gpu_cannot_write_opens_no_device() {
    let t = tempfile::tempdir().unwrap();
    let src = small_tree(t.path());
    let cfg = t.path().join("c.txt");
    fs::write(&cfg, "GPU_FALLBACK_ENABLED = false\n").unwrap();
    let (code, _, err) = run(&[
        os("pack"),
        src.as_os_str(),
        os("-o"),
        t.path().join("a").as_os_str(),
        os("--codec"),
        os("zstd"),
        os("--gpu-device"),
        os("no-such-device-name"),
        os("--config"),
        cfg.as_os_str(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("ZSTD frames are encoded on the CPU only")
            && err.contains("\"no-such-device-name\" not opened"),
        "{err}"
    );
    // The same pack with LZ_EXT3 does need the device: with fallback off, an error.
    let (code, _, err) = run(&[
        os("pack"),
        src.as_os_str(),
        os("-o"),
        t.path().join("b").as_os_str(),
        os("--gpu-device"),
        os("no-such-device-name"),
        os("--config"),
        cfg.as_os_str(),
    ]);
    assert_ne!(code, 0, "{err}");
    let (code, _, err) = run(&[
        os("pack"),
        src.as_os_str(),
        os("-o"),
        t.path().join("c").as_os_str(),
        os("--codec"),
        os("zstd"),
        os("--cpu"),
        os("-q"),
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    let frames = |n: &str| fs::read(t.path().join(n)).unwrap();
    // Same tree, same config but the output name: the volumes' frames are the same bytes.
    assert_eq!(frames("a.001").len(), frames("c.001").len());
}

#[test]
fn json_for_pack_info_verify_and_extract() {
    let t = tempfile::tempdir().unwrap();
    let src = small_tree(t.path());
    let a = t.path().join("a");
    let o = clc()
        .args([
            os("pack"),
            src.as_os_str(),
            os("-o"),
            a.as_os_str(),
            os("--json"),
        ])
        .env("SOURCE_DATE_EPOCH", "1700000123")
        .output()
        .unwrap();
    assert!(o.status.success());
    let p = json(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(p["files"], 3);
    assert_eq!(p["hardlinks"], 1);
    assert_eq!(p["symlinks"], 2);
    assert_eq!(p["other"], 1);
    assert_eq!(p["bytes_in"], 450_000);
    assert_eq!(p["volumes"].as_array().unwrap().len(), 1);
    let frames = p["frames"].as_u64().unwrap();
    assert_eq!(
        frames,
        p["frames_gpu"].as_u64().unwrap()
            + p["frames_cpu"].as_u64().unwrap()
            + p["frames_raw"].as_u64().unwrap()
    );
    assert!(p["reduction_percent"].as_f64().unwrap() > 0.0);
    assert!(p["seconds"].is_number());

    let first = t.path().join("a.001");
    let (info, _) = clc_ok!("info", &first, "--json");
    let i = json(&info);
    assert_eq!(i["created"], 1_700_000_123);
    assert_eq!(i["created_utc"], "2023-11-14 22:15");
    assert_eq!(i["frames"].as_u64(), Some(frames));
    assert_eq!(i["frames_cpu"], p["frames_cpu"]);
    assert_eq!(i["reduction_percent"], p["reduction_percent"]);
    // Numbers as numbers, booleans as booleans, text as text.
    assert_eq!(i["params"]["format_version"], 8);
    // LZ_EXT3_SB frames (format 2 and later) are the ones counted as LZ_EXT3_CPU.
    assert_eq!(i["frames_per_codec"]["LZ_EXT3_SB"], i["frames_cpu"], "{i}");
    assert!(p["frames_cpu"].as_u64().unwrap() >= 1, "{p}");
    assert!(i["params"]["frame_size"].is_u64());
    assert_eq!(i["params"]["adaptive_frames"], true);
    assert!(i["params"]["clc_version"].is_string());
    assert!(i["volumes"][0]["bytes"].is_u64());

    let (v, _) = clc_ok!("verify", &first, "--json");
    let v = json(&v);
    assert_eq!(v["ok"], true);
    assert_eq!(v["frames_ok"].as_u64(), Some(frames));
    assert_eq!(v["damages"], serde_json::json!([]));

    let (x, _) = clc_ok!("extract", &first, "-o", t.path().join("x"), "--json");
    let x = json(&x);
    assert_eq!(
        (&x["files"], &x["hardlinks"], &x["symlinks"], &x["bytes"]),
        (&3.into(), &1.into(), &2.into(), &450_000.into()),
        "{x}"
    );
    assert_eq!(x["damaged"], serde_json::json!([]));
}

#[test]
fn json_names_each_damage() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..6 {
        fs::write(src.join(format!("f{i}")), text(i, 100_000)).unwrap();
    }
    clc_ok!(
        "pack",
        &src,
        "-o",
        t.path().join("a"),
        "-q",
        "--cpu",
        "--frame-size",
        "64K"
    );
    let first = t.path().join("a.001");
    let ar = clc::archive::Archive::open(&first).unwrap();
    let f = ar.index().frames()[2];
    let mut b = fs::read(&first).unwrap();
    b[(f.offset + 40) as usize] ^= 0x55;
    fs::write(&first, b).unwrap();
    let (code, out, _) = run(&[os("verify"), first.as_os_str(), os("--json")]);
    assert_eq!(code, 2);
    let v = json(&out);
    assert_eq!(v["ok"], false);
    let d = &v["damages"].as_array().unwrap()[0];
    assert_eq!(d["what"], "frame");
    assert_eq!(d["frame"], 2);
    assert_eq!(d["offset"], f.offset);
    assert!(d["volume"].as_str().unwrap().ends_with("a.001"), "{d}");
    assert!(!d["files"].as_array().unwrap().is_empty(), "{d}");
    assert!(d["message"].as_str().unwrap().contains("frame 2"), "{d}");

    let (code, out, _) = run(&[
        os("extract"),
        first.as_os_str(),
        os("-o"),
        t.path().join("x").as_os_str(),
        os("--keep-going"),
        os("--json"),
    ]);
    assert_eq!(code, 2);
    let x = json(&out);
    let damaged: Vec<&str> = x["damaged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(
        damaged,
        d["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect::<Vec<_>>()
    );
    assert_eq!(x["files"].as_u64().unwrap() + damaged.len() as u64, 6);
}

#[test]
fn extract_takes_a_leading_slash_and_restores_the_top_directory_mtime() {
    let t = tempfile::tempdir().unwrap();
    let src = small_tree(t.path());
    clc_ok!("pack", &src, "-o", t.path().join("a"), "-q", "--cpu");
    let first = t.path().join("a.001");
    let one = t.path().join("one");
    clc_ok!("extract", &first, "-o", &one, "-q", "/d/b.txt", "/l1");
    assert_eq!(
        walk(&one),
        vec![
            PathBuf::from("d"),
            PathBuf::from("d/b.txt"),
            PathBuf::from("l1")
        ]
    );
    // Only some paths: DEST is not the packed directory, its mtime is its own.
    assert_ne!(fs::metadata(&one).unwrap().mtime(), 1_600_000_000);
    let (code, _, err) = run(&[
        os("extract"),
        first.as_os_str(),
        os("-o"),
        one.as_os_str(),
        os("/nope"),
    ]);
    assert!(code == 2 && err.contains("nope"), "{err}");

    // "/" names the packed directory: everything, as without paths.
    let all = t.path().join("all");
    clc_ok!("extract", &first, "-o", &all, "-q", "/");
    assert_eq!(walk(&all), walk(&src));
    let m = fs::metadata(&all).unwrap();
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_000, 42));
    let m = fs::metadata(&src).unwrap();
    assert_eq!(
        (m.mtime(), m.mtime_nsec()),
        (1_600_000_000, 42),
        "the source is untouched"
    );
}

#[test]
fn umount_takes_only_clc_mounts_and_mount_only_free_directories() {
    let t = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&[os("umount"), t.path().as_os_str()]);
    assert!(
        code == 2 && err.trim_end().ends_with("not mounted"),
        "{err}"
    );
    let (code, _, err) = run(&[os("umount"), os("/")]);
    assert!(code == 2 && err.contains("not a clc mount"), "{err}");
    let src = small_tree(t.path());
    clc_ok!("pack", &src, "-o", t.path().join("a"), "-q", "--cpu");
    let first = t.path().join("a.001");
    // "/" always has a mount on it: refused before anything is mounted.
    let (code, _, err) = run(&[os("mount"), first.as_os_str(), os("/")]);
    assert!(
        code == 2 && err.contains("already has a mount on it"),
        "{err}"
    );
    if !fuse_ok() {
        return;
    }
    let mnt = t.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    clc_ok!("mount", &first, &mnt);
    let (code, _, err) = run(&[os("mount"), first.as_os_str(), mnt.as_os_str()]);
    let second = (code, err);
    clc_ok!("umount", &mnt);
    assert!(
        second.0 == 2 && second.1.contains("already has a mount on it (fuse.clc"),
        "{second:?}"
    );
    let (code, _, err) = run(&[os("umount"), mnt.as_os_str()]);
    assert!(code == 2 && err.contains("not mounted"), "{err}");
}

/// The subcommands `clc --help` lists.
fn subcommands() -> Vec<String> {
    let (out, _) = clc_ok!("--help");
    let list: Vec<String> = out
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    for must in ["pack", "extract", "verify", "mount", "completions", "man"] {
        assert!(list.iter().any(|c| c == must), "{must} in {list:?}");
    }
    list
}

#[test]
fn completions_and_man_pages_name_every_subcommand() {
    let subs = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let (out, _) = clc_ok!("completions", shell);
        for s in &subs {
            assert!(out.contains(s.as_str()), "{shell} completion lacks {s}");
        }
        assert!(
            out.contains("volume-size") && out.contains("gpu-device"),
            "{shell}"
        );
    }
    let (code, _, err) = run(&[os("completions"), os("tcsh")]);
    assert!(code == 2 && err.contains("tcsh"), "{err}");

    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("man");
    clc_ok!("man", &dir);
    let main = fs::read_to_string(dir.join("clc.1")).unwrap();
    assert!(main.contains(".TH clc 1 "), "roff: {}", &main[..80]);
    for s in &subs {
        assert!(main.contains(&format!("clc\\-{s}")), "clc.1 lacks {s}");
        let page = fs::read_to_string(dir.join(format!("clc-{s}.1")))
            .unwrap_or_else(|e| panic!("clc-{s}.1: {e}"));
        assert!(page.contains(&format!(".TH clc-{s} 1 ")), "clc-{s}.1 title");
    }
    let pack = fs::read_to_string(dir.join("clc-pack.1")).unwrap();
    assert!(
        pack.contains("volume\\-size") && pack.contains("\\-\\-json"),
        "clc-pack.1 options"
    );
}

/// `clc mount …` is parsed by a command line that holds only `mount` (`cli::MountCli`, a warm mount's
/// start): its help and its usage errors are the full command line's.
#[test]
fn mount_parses_as_the_full_command_line_does() {
    let (alone, _) = clc_ok!("mount", "--help");
    let (full, _) = clc_ok!("help", "mount");
    assert_eq!(alone, full);
    assert!(
        alone.contains("--cache-size") && alone.contains("--gpu-device"),
        "{alone}"
    );
    let (code, _, err) = run(&[os("mount")]);
    assert!(
        code == 2 && err.contains("<MOUNTPOINT>") && err.contains(" mount <ARCHIVE> <MOUNTPOINT>"),
        "{err}"
    );
    let (code, _, err) = run(&[os("mount"), os("--no-such-flag"), os("a"), os("b")]);
    assert!(code == 2 && err.contains("--no-such-flag"), "{err}");
}
