//! Archive round trips through the binary: every entry type, every codec, tiny volumes and frames,
//! determinism, path selection, dedup identity.

mod common;

use common::*;
use std::fs;
use std::path::Path;

fn pack_extract(src: &Path, work: &Path, extra: &[&str]) -> std::path::PathBuf {
    let name = work.join("arc");
    let mut args: Vec<std::ffi::OsString> = vec![
        "pack".into(),
        src.into(),
        "-o".into(),
        name.clone().into(),
        "-q".into(),
        "--cpu".into(),
    ];
    args.extend(extra.iter().map(Into::into));
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (code, out, err) = run(&refs);
    assert_eq!(code, 0, "pack: {out} {err}");
    let dest = work.join("out");
    clc_ok!("extract", work.join("arc.001"), "-o", &dest, "-q");
    dest
}

#[test]
fn every_entry_type_every_codec_many_frames_and_volumes() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src);
    for (codec, extra) in [
        (
            "lz_ext3",
            vec!["--frame-size", "64K", "--volume-size", "200K"],
        ),
        ("lz4", vec!["--frame-size", "128K"]),
        ("raw", vec!["--volume-size", "1M"]),
        ("lz_ext3", vec![]),
        (
            "lz_ext3e",
            vec!["--frame-size", "64K", "--volume-size", "300K"],
        ),
        ("lz_ext3e", vec![]),
        ("zstd", vec!["--frame-size", "64K", "--volume-size", "300K"]),
        ("zstd", vec![]),
    ] {
        let work = t.path().join(format!("w-{codec}-{}", extra.len()));
        fs::create_dir(&work).unwrap();
        let mut args = vec!["--codec", codec];
        args.extend(extra.iter().copied());
        let dest = pack_extract(&src, &work, &args);
        assert_same_tree(&src, &dest);
        let (out, _) = clc_ok!("verify", work.join("arc.001"));
        assert!(out.starts_with("ok:"), "{out}");
        let (info, _) = clc_ok!("info", work.join("arc.001"), "--json");
        let v: serde_json::Value = serde_json::from_str(&info).unwrap();
        // Every codec writes format version 8 (LZ4 tree pages, on 7's layout, which allows ZSTD frames;
        // before 8, ZSTD frames made 7 and every other codec 6).
        let (version, name) = match codec {
            "zstd" => (8, "ZSTD"),
            "lz_ext3e" => (8, "LZ_EXT3E"),
            "lz4" => (8, "LZ4"),
            "raw" => (8, "RAW"),
            _ => (8, "LZ_EXT3_SB"),
        };
        assert_eq!(v["format"], format!("clc format v{version}"), "{info}");
        assert!(
            v["frames_per_codec"][name].as_u64().unwrap_or(0) >= 1,
            "{info}"
        );
        if extra.contains(&"200K") {
            let vols = fs::read_dir(&work)
                .unwrap()
                .filter(|d| {
                    d.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("arc.")
                })
                .count();
            assert!(vols >= 5, "expected many volumes, got {vols}");
            for e in fs::read_dir(&work).unwrap() {
                let e = e.unwrap();
                if e.file_name().to_string_lossy().starts_with("arc.") {
                    // A volume exceeds the limit only when one frame alone does (64K frames here).
                    assert!(
                        e.metadata().unwrap().len() <= 200 << 10,
                        "{:?} too big",
                        e.file_name()
                    );
                }
            }
        }
    }
}

#[test]
fn same_input_gives_identical_archive() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src);
    // The creation time is part of the index: SOURCE_DATE_EPOCH fixes it (reproducible archives), and
    // the two packs may run in different seconds. One allocates from glibc's malloc, the other from
    // mimalloc (src/heap.rs: the pack's choice by cores, forced here both ways): the same bytes.
    for (w, from_cores) in [("a", "65536"), ("b", "1")] {
        let st = clc()
            .arg("pack")
            .arg(&src)
            .arg("-o")
            .arg(t.path().join(w))
            .args(["-q", "--cpu", "--volume-size", "1M"])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("CLC_PACK_MIMALLOC_FROM", from_cores)
            .status()
            .unwrap();
        assert!(st.success());
        if w == "a" {
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
    }
    let mut n = 0;
    for i in 1.. {
        let (a, b) = (
            t.path().join(format!("a.{i:03}")),
            t.path().join(format!("b.{i:03}")),
        );
        if !a.exists() {
            assert!(!b.exists());
            break;
        }
        assert!(
            fs::read(&a).unwrap() == fs::read(&b).unwrap(),
            "volume {i} differs"
        );
        n += 1;
    }
    assert!(n >= 2);
}

/// Large files are read several segments at a time (`pack::stream::reader_into`): the archive must be the
/// one a sequential read gives (the cuts are made per segment, so a segment out of order, or read at the
/// wrong offset, changes it), and extract to the same bytes. Sizes around the segment (64K here): a
/// multiple of it (the read that sees the end is the window's last), one byte more, and many segments.
#[test]
fn segments_read_in_parallel_give_the_sequential_archive() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    // Text-like bytes (words from a small vocabulary), compressible and cut by content.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut text = |n: usize| -> Vec<u8> {
        let words = [
            &b"alpha "[..],
            b"beta ",
            b"gamma\n",
            b"delta ",
            b"epsilon ",
            b"zeta, ",
        ];
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.extend_from_slice(words[(x % 6) as usize]);
            v.extend_from_slice(&x.to_le_bytes()[..(x >> 60) as usize % 3]);
        }
        v.truncate(n);
        v
    };
    for (name, size) in [
        ("many", 1_300_000),
        ("exact", 4 << 16),
        ("one_more", (2 << 16) + 1),
        ("small", 5000),
    ] {
        fs::write(src.join(name), text(size)).unwrap();
    }
    let mut archives = Vec::new();
    for (w, readers) in [("seq", 1), ("par", 8)] {
        let cfg = t.path().join(format!("{w}.txt"));
        fs::write(
            &cfg,
            format!("BUFFER_SIZE = 64K\nNUM_READERS = {readers}\n"),
        )
        .unwrap();
        let out = clc()
            .arg("pack")
            .arg(&src)
            .arg("-o")
            .arg(t.path().join(w))
            .args(["-q", "--cpu", "--config"])
            .arg(&cfg)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.is_empty(), "{w}: {err}");
        let dest = t.path().join(format!("{w}-out"));
        clc_ok!(
            "extract",
            t.path().join(format!("{w}.001")),
            "-o",
            &dest,
            "-q"
        );
        assert_same_tree(&src, &dest);
        archives.push(fs::read(t.path().join(format!("{w}.001"))).unwrap());
    }
    assert!(
        archives[0] == archives[1],
        "segments read 4 at a time gave another archive than one at a time"
    );
}

#[test]
fn lookalike_files_are_not_merged() {
    // Same size, same first 2 / last 2 / middle 3 bytes, different elsewhere: dedup must keep both, in the
    // data stream (one chunk each, under CHUNK_FILES_FROM) and in the staged filter (over it).
    for len in [200_000, 1_200_000] {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir(&src).unwrap();
        let base = text(9, len);
        let mut other = base.clone();
        other[1000] ^= 0x55;
        fs::write(src.join("a"), &base).unwrap();
        fs::write(src.join("b"), &other).unwrap();
        fs::write(src.join("c"), &base).unwrap();
        let dest = pack_extract(&src, t.path(), &[]);
        assert!(fs::read(dest.join("a")).unwrap() == base);
        assert!(fs::read(dest.join("b")).unwrap() == other);
        assert!(fs::read(dest.join("c")).unwrap() == base);
        let (out, _) = clc_ok!("info", t.path().join("arc.001"), "--json");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["unique_file_bytes"],
            serde_json::json!(2 * len),
            "{len}: a and c share one content, b has its own"
        );
    }
}

#[test]
fn small_duplicates_share_one_content_lookalikes_do_not() {
    // Files under CHUNK_FILES_FROM (1 MiB: one chunk each) are merged by the data stream when their chunks
    // are equal; one byte apart they must stay two contents. Files of CHUNK_FILES_FROM and more (cut into
    // chunks) go through the staged filter first; with CHUNK_FILES_FROM 0, every file over 64 KiB does
    // (`mid` and `over` here).
    for (cfg, over_len, staged) in [
        ("", 1 << 20, 2),
        ("", (1 << 20) - 1, 0),
        ("CHUNK_FILES_FROM = 0\n", (64 << 10) + 1, 4),
    ] {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(src.join("v1")).unwrap();
        fs::create_dir_all(src.join("v2")).unwrap();
        let small = text(3, 40_000);
        let mut near = small.clone();
        near[39_999] ^= 1;
        let edge = text(4, 64 << 10);
        let mid = text(6, 300_000);
        let over = text(5, over_len);
        for v in ["v1", "v2"] {
            fs::write(src.join(v).join("small"), &small).unwrap();
            fs::write(src.join(v).join("edge"), &edge).unwrap();
            fs::write(src.join(v).join("mid"), &mid).unwrap();
            fs::write(src.join(v).join("over"), &over).unwrap();
        }
        fs::write(src.join("near"), &near).unwrap();
        let config = t.path().join("config.txt");
        fs::write(&config, cfg).unwrap();
        let arc = t.path().join("arc");
        let out = clc()
            .args(["pack", "-q", "--cpu", "--config"])
            .args([&config, &src, Path::new("-o"), &arc])
            .env("CLC_TRACE", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{cfg:?} {over_len}: {err}");
        let stats = err
            .lines()
            .find(|l| l.contains("whole-file dedup done"))
            .unwrap_or_else(|| panic!("no dedup line: {err}"));
        assert!(
            stats.contains(&format!("same_size: {staged},")),
            "{cfg:?} {over_len}: {stats}"
        );
        let dest = t.path().join("out");
        clc_ok!("extract", t.path().join("arc.001"), "-o", &dest, "-q");
        assert_same_tree(&src, &dest);
        let (out, _) = clc_ok!("info", t.path().join("arc.001"), "--json");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let want = small.len() + near.len() + edge.len() + mid.len() + over.len();
        assert_eq!(
            v["unique_file_bytes"],
            serde_json::json!(want),
            "{cfg:?} {over_len}: each pair shares a content; near has its own"
        );
    }
}

#[test]
fn extract_selected_paths_only() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src);
    clc_ok!("pack", &src, "-o", t.path().join("arc"), "-q", "--cpu");
    let dest = t.path().join("sel");
    clc_ok!(
        "extract",
        t.path().join("arc.001"),
        "-o",
        &dest,
        "-q",
        "deep/a/",
        "small/a.txt"
    );
    let got: Vec<String> = walk(&dest)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(
        got,
        [
            "deep",
            "deep/a",
            "deep/a/b",
            "deep/a/b/c",
            "deep/a/b/c/d",
            "deep/a/b/c/d/e",
            "deep/a/b/c/d/e/leaf",
            "small",
            "small/a.txt"
        ]
    );
    assert_eq!(fs::read(dest.join("small/a.txt")).unwrap(), b"hello\n");
    let (code, _, err) = run(&[
        "extract".as_ref(),
        t.path().join("arc.001").as_os_str(),
        "-o".as_ref(),
        dest.as_os_str(),
        "no/such".as_ref(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no/such"), "{err}");
}

#[test]
fn list_and_info_describe_the_archive() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src);
    clc_ok!("pack", &src, "-o", t.path().join("arc"), "-q", "--cpu");
    let (out, _) = clc_ok!("list", t.path().join("arc.001"));
    assert!(
        out.lines()
            .any(|l| l.starts_with("lrwxrwxrwx") && l.ends_with("deep/link-rel -> ../small/a.txt")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("-rwxr-x--x") && l.ends_with("small/a.txt")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("prw-r-----") && l.ends_with("small/fifo")),
        "{out}"
    );
    assert!(out.contains("small/bad\\xff\\xfename\\nx"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("2001-09-09 01:46") && l.ends_with("name with spaces.txt")),
        "{out}"
    );
    let (out, _) = clc_ok!("list", t.path().join("arc.001"), "--json");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), walk(&src).len());
    // A name that is not UTF-8 comes in the text form (each invalid byte as \xHH) and says so.
    let odd: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["escaped"] == true)
        .collect();
    assert_eq!(odd.len(), 1, "{out}");
    assert_eq!(odd[0]["path"], "small/bad\\xff\\xfename\\nx", "{out}");
    let (out, _) = clc_ok!("info", t.path().join("arc.001"));
    assert!(out.contains("clc format v8"), "{out}");
    assert!(
        out.contains("1 hardlink, ") && out.contains("frame_size = "),
        "{out}"
    );
    assert!(out.contains("sub-blocks:     64.0 KiB in"), "{out}");
    let (out, _) = clc_ok!("info", t.path().join("arc.001"), "--json");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["subblock_size"], 65536, "{out}");
    assert!(v["subblock_frames"].as_u64().unwrap() >= 1, "{out}");
}

/// ADAPTIVE_FRAMES: incompressible chunks fill small frames of their own, a run of same-named files (two
/// versions of a tree) may grow its frame past FRAME_SIZE up to LARGE_FRAME_SIZE; off, or with
/// `--frame-size` on the command line, every frame is at most FRAME_SIZE. The tree always comes back exactly.
#[test]
fn adaptive_frames_follow_the_data() {
    use clc::codec::Codec;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    for v in ["v1", "v2"] {
        fs::create_dir_all(src.join(v).join("doc")).unwrap();
        fs::create_dir_all(src.join(v).join("media")).unwrap();
        // 6.9 MiB in all: a pack of a small input caps its frames at a 32nd of it (221 KiB here, above
        // FRAME_SIZE), so that the runs still have room to grow.
        for i in 0..32u64 {
            // v2 changes a byte every 2000: no chunk is shared, long matches are everywhere.
            let mut body = text(i, 96 << 10);
            if v == "v2" {
                body.iter_mut().step_by(2000).for_each(|b| *b = b'#');
            }
            fs::write(src.join(v).join(format!("doc/part{i}.txt")), body).unwrap();
        }
        for i in 0..6u64 {
            let seed = 100 + i + if v == "v2" { 50 } else { 0 };
            fs::write(
                src.join(v).join(format!("media/m{i}.bin")),
                noise(seed, 80 << 10),
            )
            .unwrap();
        }
    }
    let cfg = t.path().join("c.txt");
    // (ADAPTIVE_FRAMES, --frame-size given on the command line)
    for (adaptive, cli_frame) in [(true, false), (false, false), (true, true)] {
        fs::write(
            &cfg,
            format!(
                "ADAPTIVE_FRAMES = {adaptive}\nFRAME_SIZE = 128K\nSMALL_FRAME_SIZE = 64K\n\
                 LARGE_FRAME_SIZE = 512K\nCHUNK_MIN_SIZE = 4K\nCHUNK_AVG_SIZE = 16K\n\
                 CHUNK_MAX_SIZE = 64K\n"
            ),
        )
        .unwrap();
        let work = t.path().join(format!("w-{adaptive}-{cli_frame}"));
        fs::create_dir(&work).unwrap();
        let mut args = vec!["--config", cfg.to_str().unwrap()];
        if cli_frame {
            args.extend(["--frame-size", "128K"]);
        }
        let dest = pack_extract(&src, &work, &args);
        assert_same_tree(&src, &dest);
        let ar = clc::archive::Archive::open(&work.join("arc.001")).unwrap();
        let frames = ar.index().frames();
        let max = |raw: bool| {
            frames
                .iter()
                .filter(|f| (f.codec == Codec::Raw) == raw)
                .map(|f| f.raw_len)
                .max()
                .unwrap()
        };
        let (raw_max, coded_max) = (max(true), max(false));
        if cli_frame {
            // --frame-size caps every frame; incompressible data still gets its small frames.
            assert!(raw_max <= 64 << 10, "incompressible frame of {raw_max}");
            assert!(
                coded_max <= 128 << 10,
                "a frame of {coded_max} past --frame-size"
            );
        } else if adaptive {
            assert!(raw_max <= 64 << 10, "incompressible frame of {raw_max}");
            assert!(
                coded_max > 128 << 10 && coded_max <= 512 << 10,
                "no run grew its frame: largest {coded_max}"
            );
        } else {
            assert!(raw_max.max(coded_max) <= 128 << 10, "{raw_max} {coded_max}");
            assert!(raw_max > 64 << 10, "noise frames are FRAME_SIZE: {raw_max}");
        }
    }
}

/// `--json` gives UTF-8 names as they are (newline, tab, backslash, bidi controls and all: JSON escapes
/// them its own way), not the terminal's escaped form escaped once more.
#[test]
fn json_names_are_escaped_once() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let names = [
        "line\nbreak",
        "tab\there",
        "back\\slash",
        "bidi\u{202e}txt.exe",
        "plain",
    ];
    fs::create_dir_all(&src).unwrap();
    for n in names {
        fs::write(src.join(n), n).unwrap();
    }
    std::os::unix::fs::symlink("line\nbreak", src.join("sym")).unwrap();
    clc_ok!("pack", &src, "-o", t.path().join("arc"), "-q", "--cpu");
    let (out, _) = clc_ok!("list", t.path().join("arc.001"), "--json");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let paths: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    for n in names {
        assert!(paths.contains(&n), "{n:?} in {out}");
    }
    let sym = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "sym")
        .unwrap();
    assert_eq!(sym["target"], "line\nbreak", "{out}");
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("escaped").is_none()),
        "{out}"
    );
    // The text listing keeps the terminal-safe form.
    let (text, _) = clc_ok!("list", t.path().join("arc.001"));
    assert!(
        text.contains("line\\nbreak") && text.contains("bidi\\u{202e}txt.exe"),
        "{text}"
    );
}

/// A tree of 8 MiB is cut into frames of at most a sixteenth of it, not below 1 MiB (`Config::fit_input`),
/// so that its frames are encoded on several threads at once: about eight frames where the 4 MiB
/// frames gave two; and it still restores.
#[test]
fn a_small_tree_is_cut_into_frames_for_several_threads() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..32u64 {
        fs::write(src.join(format!("f{i:02}.txt")), text(100 + i, 256 << 10)).unwrap();
    }
    let dest = pack_extract(&src, t.path(), &[]);
    assert_same_tree(&src, &dest);
    let (out, _) = clc_ok!("info", t.path().join("arc.001"), "--json");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let frames = v["frames"].as_u64().unwrap();
    assert!((7..=9).contains(&frames), "{frames} frames for 8 MiB");
}

/// CHUNK_FILES_FROM: a file below it is one chunk, so a run it shares with another file is stored in
/// both (the LZ window finds it instead); a file at or above it is cut by FastCDC; 0 cuts every file, as
/// packs before the key did. The archive records the value (absent when 0), and every pack restores.
#[test]
fn files_below_chunk_files_from_are_one_chunk() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let a = text(1, 700_000);
    // b: 20 kB of its own, then a's bytes: FastCDC's cuts resync within a chunk or two.
    let b = [noise(2, 20_000), a.clone()].concat();
    fs::write(src.join("a.txt"), &a).unwrap();
    fs::write(src.join("b.txt"), &b).unwrap();
    let big = text(3, (1 << 20) + 300_000);
    fs::write(src.join("big.txt"), &big).unwrap();
    let total = (a.len() + b.len() + big.len()) as u64;
    let cfg = t.path().join("c.txt");
    for from in ["1M", "0"] {
        fs::write(&cfg, format!("CHUNK_FILES_FROM = {from}\n")).unwrap();
        let work = t.path().join(format!("w-{from}"));
        fs::create_dir(&work).unwrap();
        let dest = pack_extract(&src, &work, &["--config", cfg.to_str().unwrap()]);
        assert_same_tree(&src, &dest);
        let ar = clc::archive::Archive::open(&work.join("arc.001")).unwrap();
        let ix = ar.index();
        let chunk_bytes: u64 = (0..ix.chunk_count())
            .map(|i| u64::from(ix.chunk(clc::ids::ChunkId(i)).unwrap().len))
            .sum();
        let big_chunks = clc::chunk::cut(&big, 16 << 10, 64 << 10, 256 << 10).len() as u64;
        if from == "1M" {
            assert_eq!(ix.param("chunk_files_from"), Some("1048576"));
            assert_eq!(chunk_bytes, total, "nothing shared between single chunks");
            assert!(big_chunks > 4);
            assert_eq!(
                ix.chunk_count(),
                2 + big_chunks,
                "a and b one chunk each, big cut"
            );
        } else {
            assert_eq!(ix.param("chunk_files_from"), None);
            assert!(
                chunk_bytes < total - 400_000,
                "b's copy of a shared: {chunk_bytes} of {total} bytes in chunks"
            );
        }
    }
}
