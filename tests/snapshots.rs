//! Versioned archives (FORMAT.md section 10): `clc pack --append` adds snapshots that store only what
//! changed, `--snapshot` picks one, `clc snapshots` and `clc diff` describe them; appends lose nothing
//! when interrupted or killed, and two at once are refused.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Runs clc with `args`; returns (exit code, stdout, stderr).
fn clc(args: &[&dyn AsRef<OsStr>]) -> (i32, String, String) {
    let refs: Vec<&OsStr> = args.iter().map(|a| a.as_ref()).collect();
    common::run(&refs)
}

/// `clc pack SRC -o OUT --append --cpu -q` plus `extra`; asserts success and returns stdout.
fn append(src: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"pack", &src, &"-o", &out, &"--append", &"--cpu"];
    for e in extra {
        args.push(e);
    }
    let (code, o, e) = clc(&args);
    assert_eq!(code, 0, "append {extra:?}: {o}{e}");
    o
}

fn extract(first: &Path, dest: &Path, snapshot: Option<&str>) {
    let mut args: Vec<&dyn AsRef<OsStr>> = vec![&"extract", &first, &"-o", &dest, &"-q", &"--cpu"];
    if let Some(s) = &snapshot {
        args.push(&"--snapshot");
        args.push(s);
    }
    let (code, o, e) = clc(&args);
    assert_eq!(code, 0, "extract {snapshot:?}: {o}{e}");
}

/// The snapshot names, oldest first.
fn names(first: &Path) -> Vec<String> {
    let (code, o, e) = clc(&[&"snapshots", &first, &"--json"]);
    assert_eq!(code, 0, "{e}");
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn snapshot_json(first: &Path) -> Vec<serde_json::Value> {
    let (code, o, e) = clc(&[&"snapshots", &first, &"--json"]);
    assert_eq!(code, 0, "{e}");
    serde_json::from_str::<serde_json::Value>(&o)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Changes a tree made by `common::make_tree` the way a day of work would: a file edited, one added,
/// one removed, a mode changed, a symlink retargeted, one of the duplicates changed.
fn mutate(root: &Path, round: u64) {
    let mut t = fs::read(root.join("big/text.txt")).unwrap();
    t.splice(1000..1000, format!("edit {round}\n").bytes());
    fs::write(root.join("big/text.txt"), t).unwrap();
    fs::write(
        root.join(format!("small/new-{round}.txt")),
        common::text(50 + round, 20_000),
    )
    .unwrap();
    let gone = root.join("deep/a/b/c/d/e/leaf");
    if gone.exists() {
        fs::remove_file(gone).unwrap();
    } else {
        fs::remove_file(root.join(format!("small/new-{}.txt", round - 1))).unwrap();
    }
    fs::set_permissions(
        root.join("small/name with spaces.txt"),
        fs::Permissions::from_mode(0o600 + round as u32),
    )
    .unwrap();
    fs::remove_file(root.join("deep/link-rel")).unwrap();
    std::os::unix::fs::symlink(format!("../target-{round}"), root.join("deep/link-rel")).unwrap();
    fs::write(
        root.join("dups/dup3.txt"),
        common::text(60 + round, 100_000),
    )
    .unwrap();
}

/// Every snapshot extracts to the tree it was made of, the newest is the default, and `--snapshot`
/// naming nothing lists the names.
#[test]
fn snapshots_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    common::make_tree(&src);
    let out = t.path().join("arc");
    let first = t.path().join("arc.001");
    let mut copies = Vec::new();
    for round in 0..3u64 {
        if round > 0 {
            mutate(&src, round);
        }
        let keep = t.path().join(format!("v{round}"));
        common::copy_tree(&src, &keep);
        append(&src, &out, &["--name", &format!("r{round}"), "-q"]);
        copies.push(keep);
    }
    assert_eq!(names(&first), ["r0", "r1", "r2"]);
    for (round, keep) in copies.iter().enumerate() {
        let dest = t.path().join(format!("x{round}"));
        extract(&first, &dest, Some(&format!("r{round}")));
        common::assert_same_tree(keep, &dest);
    }
    let dest = t.path().join("newest");
    extract(&first, &dest, None);
    common::assert_same_tree(&copies[2], &dest);
    let (code, _, err) = clc(&[&"list", &first, &"--snapshot", &"nope"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no snapshot named nope") && err.contains("r0, r1, r2"),
        "{err}"
    );
    // verify checks every frame and every snapshot; diff says what changed.
    let (code, o, e) = clc(&[&"verify", &first]);
    assert_eq!(code, 0, "{o}{e}");
    assert!(o.contains("3 snapshots"), "{o}");
    let (code, o, e) = clc(&[&"diff", &first, &"r0", &"r1"]);
    assert_eq!(code, 0, "{e}");
    let lines: Vec<&str> = o.lines().collect();
    for want in [
        "M big/text.txt",
        "+ small/new-1.txt",
        "- deep/a/b/c/d/e/leaf",
        "m small/name with spaces.txt",
        "M deep/link-rel",
        "M dups/dup3.txt",
    ] {
        assert!(lines.contains(&want), "{want} missing in:\n{o}");
    }
    assert!(!o.contains("big/random.bin"), "{o}");
}

/// Cross-snapshot dedup: a second snapshot of the same tree, read again in full (`--rescan`), stores no
/// frame, only its small generation index; and an unchanged file is not read at all otherwise.
#[test]
fn identical_trees_add_only_an_index() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    common::make_tree(&src);
    for i in 0..40 {
        fs::write(
            src.join(format!("small/f{i}")),
            common::text(i, 3000 + i as usize),
        )
        .unwrap();
    }
    let out = t.path().join("arc");
    let first = t.path().join("arc.001");
    append(&src, &out, &["-q"]);
    let frames = |v: &serde_json::Value| v["frames"].as_u64().unwrap();
    let info = |first: &Path| -> serde_json::Value {
        let (_, o, _) = clc(&[&"info", &first, &"--json"]);
        serde_json::from_str(&o).unwrap()
    };
    let before = info(&first);
    append(&src, &out, &["--rescan", "-q"]);
    let after = info(&first);
    assert_eq!(
        frames(&before),
        frames(&after),
        "a new frame for identical data"
    );
    let added = fs::metadata(t.path().join("arc.002")).unwrap().len();
    assert!(added < 4096, "the second snapshot added {added} bytes");
    let snaps = snapshot_json(&first);
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[1]["bytes_added"].as_u64().unwrap(), added);
}

/// An archive packed with CHUNK_FILES_FROM = 0 (as every archive before the key was): an append with
/// the default (1M) keeps cutting as the archive did, so a tree read again in full stores no frame;
/// cutting its 50-200 kB files whole would have made chunks no generation holds.
#[test]
fn an_append_cuts_files_as_the_archive_did() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..6u64 {
        fs::write(
            src.join(format!("f{i}.txt")),
            common::text(i, 50_000 + 30_000 * i as usize),
        )
        .unwrap();
    }
    let cfg = t.path().join("c.txt");
    fs::write(&cfg, "CHUNK_FILES_FROM = 0\n").unwrap();
    let out = t.path().join("arc");
    let first = t.path().join("arc.001");
    append(&src, &out, &["-q", "--config", cfg.to_str().unwrap()]);
    let frames = || -> u64 {
        let (_, o, _) = clc(&[&"info", &first, &"--json"]);
        let v: serde_json::Value = serde_json::from_str(&o).unwrap();
        v["frames"].as_u64().unwrap()
    };
    let before = frames();
    append(&src, &out, &["--rescan", "-q"]);
    assert_eq!(frames(), before, "the append stored its files' bytes again");
    // A new archive of the same tree with the default: every file one chunk, recorded.
    let fresh = t.path().join("fresh");
    append(&src, &fresh, &["-q"]);
    let ar = clc::archive::Archive::open(&t.path().join("fresh.001")).unwrap();
    assert_eq!(ar.index().chunk_count(), 6);
    assert_eq!(ar.index().param("chunk_files_from"), Some("1048576"));
    let dest = t.path().join("x");
    extract(&first, &dest, None);
    common::assert_same_tree(&src, &dest);
}

/// The files cache: an unchanged file (same size, mtime, ctime, inode) is not read; one whose content
/// changed, or whose ctime changed though size and mtime were put back, is read again; `--rescan`
/// reads everything.
#[test]
fn files_cache_hits_and_misses() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..10 {
        fs::write(src.join(format!("f{i}")), common::text(i, 10_000)).unwrap();
    }
    let out = t.path().join("arc");
    // Files changed within the second before a snapshot starts are not cached (a change in the same
    // clock tick would be missed): wait that second out.
    std::thread::sleep(Duration::from_millis(1100));
    append(&src, &out, &[]);
    let unchanged = |summary: &str| -> u64 {
        let l = summary
            .lines()
            .find(|l| l.starts_with("snapshot "))
            .unwrap_or_else(|| panic!("{summary}"));
        let n = l.split("): ").nth(1).unwrap().split(' ').next().unwrap();
        n.parse().unwrap()
    };
    let o = append(&src, &out, &[]);
    assert_eq!(unchanged(&o), 10, "{o}");
    // f1: new content, new mtime. f2: same size and mtime, but written (ctime changes).
    fs::write(src.join("f1"), common::text(99, 10_000)).unwrap();
    let m = fs::metadata(src.join("f2")).unwrap();
    let mtime = m.modified().unwrap();
    let mut b = fs::read(src.join("f2")).unwrap();
    b[0] ^= 1;
    fs::write(src.join("f2"), &b).unwrap();
    fs::File::options()
        .write(true)
        .open(src.join("f2"))
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let o = append(&src, &out, &[]);
    assert_eq!(unchanged(&o), 8, "{o}");
    let o = append(&src, &out, &["--rescan"]);
    assert_eq!(unchanged(&o), 0, "{o}");
    let dest = t.path().join("x");
    extract(&t.path().join("arc.001"), &dest, None);
    common::assert_same_tree(&src, &dest);
}

/// Default names are the UTC time with -2, -3 for collisions; --name refuses a taken name, '/' and
/// control characters; appending to a plain archive makes its tree the first snapshot.
/// Generations of different codecs in one archive: a ZSTD generation and, appended to it, generations of
/// the default codec and of LZ_EXT3E (versions 7, 6, 6 before format version 8; every generation is 8
/// now, and the version-7 and -6 case is golden-v7's and golden-v6's to keep). Each frame is held to the version
/// of the generation that wrote it, so the archive stays readable (it was refused: "frame 0 is ZSTD,
/// which needs format version 7 (archive says 6)"), and every snapshot extracts to its tree.
#[test]
fn appends_of_other_codecs_keep_a_zstd_archive_readable() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    common::make_tree(&src);
    let out = t.path().join("arc");
    let first = t.path().join("arc.001");
    let mut kept = Vec::new();
    for (round, codec) in [("zstd", "zstd"), ("sb", "lz_ext3"), ("e", "lz_ext3e")]
        .into_iter()
        .enumerate()
    {
        if round > 0 {
            mutate(&src, round as u64);
        }
        append(&src, &out, &["-q", "--codec", codec.1, "--name", codec.0]);
        let keep = t.path().join(format!("v-{}", codec.0));
        common::copy_tree(&src, &keep);
        kept.push((codec.0, keep));
        let (code, o, e) = clc(&[&"verify", &first]);
        assert_eq!(code, 0, "after the {} append: {o}{e}", codec.1);
    }
    let (info, _) = clc_ok!("info", &first, "--json");
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert!(
        v["frames_per_codec"]["ZSTD"].as_u64().unwrap_or(0) >= 1,
        "{info}"
    );
    for (name, tree) in kept {
        let dest = t.path().join(format!("x-{name}"));
        extract(&first, &dest, Some(name));
        common::assert_same_tree(tree.as_path(), dest.as_path());
    }
}

#[test]
fn names_and_plain_archives() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), b"one").unwrap();
    let out = t.path().join("arc");
    let first = t.path().join("arc.001");
    let (code, _, e) = clc(&[&"pack", &src, &"-o", &out, &"-q", &"--cpu"]);
    assert_eq!(code, 0, "{e}");
    let keep = t.path().join("v0");
    common::copy_tree(&src, &keep);
    let (_, o, _) = clc(&[&"snapshots", &first]);
    assert!(o.contains("no snapshots"), "{o}");
    fs::write(src.join("a"), b"two").unwrap();
    append(&src, &out, &["-q"]);
    append(&src, &out, &["-q"]);
    append(&src, &out, &["-q"]);
    let n = names(&first);
    assert_eq!(n.len(), 4, "{n:?}");
    let is_time = |s: &str| {
        s.len() >= 20
            && s.as_bytes()[4] == b'-'
            && s.as_bytes()[10] == b'T'
            && s[..20].ends_with('Z')
    };
    assert!(n.iter().all(|s| is_time(s)), "{n:?}");
    let mut sorted = n.clone();
    sorted.sort();
    assert_eq!(sorted, n, "default names sort in the order made");
    // The appends ran within a second or two: collisions got suffixes.
    assert!(n.iter().any(|s| s.ends_with("Z-2")), "{n:?}");
    let dest = t.path().join("x0");
    extract(&first, &dest, Some(&n[0]));
    common::assert_same_tree(&keep, &dest);
    for bad in [n[1].as_str(), "a/b", "a\tb", ".."] {
        let (code, _, e) = clc(&[
            &"pack",
            &src,
            &"-o",
            &out,
            &"--append",
            &"--cpu",
            &"--name",
            &bad,
        ]);
        assert_eq!(code, 2, "{bad:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    assert_eq!(names(&first).len(), 4);
}

/// Appending to the golden version 1 archive (a copy): its tree becomes the first snapshot and still
/// restores bit for bit; the new snapshot holds the new tree.
#[test]
fn appending_to_the_golden_v1_archive() {
    append_to_golden(1);
}

/// The same for the golden version 2 archive (LZ_EXT3_SB frames).
#[test]
fn appending_to_the_golden_v2_archive() {
    append_to_golden(2);
}

fn append_to_golden(v: u32) {
    let t = tempfile::tempdir().unwrap();
    let data = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data"));
    for i in 1..=4 {
        let n = format!("golden-v{v}.{i:03}");
        fs::copy(data.join(&n), t.path().join(&n)).unwrap();
    }
    let first = t.path().join(format!("golden-v{v}.001"));
    let src = t.path().join("src");
    common::make_tree(&src);
    let (code, o, e) = clc(&[
        &"pack",
        &src,
        &"-o",
        &t.path().join(format!("golden-v{v}")),
        &"--append",
        &"--cpu",
    ]);
    assert_eq!(code, 0, "{o}{e}");
    let n = names(&first);
    assert_eq!(n.len(), 2);
    let old = t.path().join("old");
    extract(&first, &old, Some(&n[0]));
    let sums = Command::new("sha256sum")
        .args(["--check", "--strict", "--quiet"])
        .arg(data.join(format!("golden-v{v}.sha256")))
        .current_dir(&old)
        .output()
        .unwrap();
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    let new = t.path().join("new");
    extract(&first, &new, None);
    common::assert_same_tree(&src, &new);
    let (code, o, e) = clc(&[&"verify", &first]);
    assert_eq!(code, 0, "{o}{e}");
    // The original volumes are untouched.
    for i in 1..=4 {
        let n = format!("golden-v{v}.{i:03}");
        assert!(fs::read(data.join(&n)).unwrap() == fs::read(t.path().join(&n)).unwrap());
    }
}

/// Starts `clc pack SRC -o OUT --append --rescan --cpu` with the slow pipe and 1 MiB volumes (so it
/// can be caught mid-way).
fn spawn_append(t: &Path, src: &Path, out: &Path, extra: &str) -> Child {
    common::spawn_slow_pack(
        t,
        src,
        out,
        &["--append", "--rescan"],
        &format!("VOLUME_SIZE = 1M\n{extra}"),
    )
}

use common::{finish, wait_for};

/// Waits until `lock` holds `child`'s record.
fn wait_locked(lock: &Path, child: &mut Child) {
    let want = format!("pid {} ", child.id());
    let t0 = Instant::now();
    while !fs::read_to_string(lock).is_ok_and(|s| s.contains(&want)) {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("pack ended ({st}) before it took the lock");
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "never locked");
        std::thread::sleep(Duration::from_micros(300));
    }
}

/// A tree of `n` MiB of fresh incompressible bytes (so an append of it writes as many 1 MiB volumes).
fn fresh(root: &Path, seed: u64, n: usize) {
    fs::create_dir_all(root).unwrap();
    for i in 0..n {
        fs::write(
            root.join(format!("f{i}")),
            common::noise(seed * 1000 + i as u64, 1 << 20),
        )
        .unwrap();
    }
}

/// Every snapshot but the one being written still extracts and verifies.
fn earlier_intact(first: &Path, keep: &[(String, PathBuf)], t: &Path) {
    assert_eq!(
        names(first),
        keep.iter().map(|k| k.0.clone()).collect::<Vec<_>>()
    );
    for (name, tree) in keep {
        let dest = t.join(format!("check-{name}"));
        let _ = fs::remove_dir_all(&dest);
        extract(first, &dest, Some(name));
        common::assert_same_tree(tree, &dest);
    }
}

/// SIGKILL at several points of an append (early, mid-stream, late) never costs an earlier snapshot;
/// the next append removes what the killed one left and succeeds. SIGINT and SIGTERM remove the
/// append's files at once and say "interrupted".
#[test]
fn interrupted_appends_lose_nothing() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fresh(&src, 1, 3);
    let out = t.path().join("arc");
    let first = t.path().join("arc.001");
    append(&src, &out, &["--name", "base", "-q"]);
    let keep = vec![("base".to_string(), t.path().join("v-base"))];
    common::copy_tree(&src, &keep[0].1);
    fresh(&src, 2, 12);
    // Kill when the 1st, 4th and 9th new volume appears, then with SIGINT and SIGTERM.
    for (k, how) in [
        (1, "KILL"),
        (4, "KILL"),
        (9, "KILL"),
        (2, "INT"),
        (3, "TERM"),
    ] {
        let mut child = spawn_append(t.path(), &src, &out, "");
        // The killed run before left .partial files: wait for this run's lock record (written once
        // it has removed them) before waiting for its volume.
        wait_locked(&t.path().join("arc.lock"), &mut child);
        let vol = t.path().join(format!("arc.{:03}.partial", 1 + k));
        let sig = match how {
            "KILL" => libc::SIGKILL,
            "INT" => libc::SIGINT,
            _ => libc::SIGTERM,
        };
        common::signal_when(&vol, child, sig);
        if how != "KILL" {
            // SIGINT and SIGTERM remove the append's files at once.
            let left: Vec<String> = fs::read_dir(t.path())
                .unwrap()
                .flatten()
                .map(|d| d.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("arc.") && n != "arc.001")
                .collect();
            assert!(left.is_empty(), "{how} left {left:?}");
        }
        earlier_intact(&first, &keep, t.path());
    }
    // The next append replaces what the killed one left.
    append(&src, &out, &["--name", "after", "-q"]);
    let n = names(&first);
    assert_eq!(n, ["base", "after"]);
    let dest = t.path().join("after");
    extract(&first, &dest, Some("after"));
    common::assert_same_tree(&src, &dest);
}

/// A killed append whose volumes were partly renamed into place (simulated: the last volumes of a
/// finished append turned back into `.partial` files, with the lock file a killed run leaves): readers
/// open the previous snapshot and name the ignored volumes; the next append removes them. Without the
/// lock's record the same volumes mean a damaged or missing last volume, and the append refuses.
#[test]
fn a_half_renamed_append_is_recognised() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fresh(&src, 3, 2);
    let out = t.path().join("arc");
    let first = t.path().join("arc.001");
    append(&src, &out, &["--name", "one", "-q", "--volume-size", "1M"]);
    let one = t.path().join("v-one");
    common::copy_tree(&src, &one);
    let before: Vec<_> = (1..=9)
        .filter(|i| t.path().join(format!("arc.{i:03}")).exists())
        .collect();
    fresh(&src, 4, 3);
    append(
        &src,
        &out,
        &["--name", "two", "-q", "--volume-size", "1M", "--rescan"],
    );
    let all: Vec<_> = (1..=20)
        .filter(|i| t.path().join(format!("arc.{i:03}")).exists())
        .collect();
    let last = *all.last().unwrap();
    assert!(
        last > before.len() + 1,
        "the append wrote one volume only: {all:?}"
    );
    // Undo the rename of the last volume (the footer) and the one before it.
    for v in [last, last - 1] {
        let p = t.path().join(format!("arc.{v:03}"));
        fs::rename(&p, t.path().join(format!("arc.{v:03}.partial"))).unwrap();
    }
    // Readers see "one" and name what they ignore.
    let (code, o, e) = clc(&[&"list", &first]);
    assert_eq!(code, 0, "{e}");
    assert!(
        e.contains("ignoring") && e.contains(&format!("arc.{:03}", before.len() + 1)),
        "{e}"
    );
    assert!(o.contains("f1"), "{o}");
    assert_eq!(names(&first), ["one"]);
    let (code, o, _) = clc(&[&"verify", &first]);
    assert_eq!(code, 2, "{o}");
    // Without the record of a killed append: refused, pointing at repair.
    let (code, _, e) = clc(&[&"pack", &src, &"-o", &out, &"--append", &"--cpu"]);
    assert_eq!(code, 2, "{e}");
    assert!(
        e.contains("clc repair") && e.contains("damaged or missing"),
        "{e}"
    );
    // With it: cleaned up and done.
    fs::write(
        t.path().join("arc.lock"),
        format!("clc pack pid 1 first_volume {}\n", before.len() + 1),
    )
    .unwrap();
    append(
        &src,
        &out,
        &["--name", "three", "-q", "--volume-size", "1M"],
    );
    assert_eq!(names(&first), ["one", "three"]);
    earlier_intact(
        &first,
        &[("one".into(), one), ("three".into(), src.clone())],
        t.path(),
    );
}

/// Two appends at once: the second fails at once with a clear error naming the lock; the first
/// completes.
#[test]
fn a_concurrent_append_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fresh(&src, 5, 10);
    let out = t.path().join("arc");
    let mut slow = spawn_append(t.path(), &src, &out, "");
    wait_for(&t.path().join("arc.001.partial"), &mut slow);
    let (code, _, e) = clc(&[&"pack", &src, &"-o", &out, &"--append", &"--cpu"]);
    assert_eq!(code, 2, "{e}");
    assert!(
        e.contains("arc.lock") && e.contains("another clc pack is writing this archive"),
        "{e}"
    );
    let (code, e) = finish(slow);
    assert_eq!(code, 0, "{e}");
    assert!(!t.path().join("arc.lock").exists());
    let dest = t.path().join("x");
    extract(&t.path().join("arc.001"), &dest, None);
    common::assert_same_tree(&src, &dest);
}

/// Appending to an archive whose last volume is damaged or missing is refused with a line that
/// suggests `clc repair`.
#[test]
fn appending_to_a_damaged_archive_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fresh(&src, 6, 1);
    let out = t.path().join("arc");
    append(&src, &out, &["-q"]);
    fresh(&src, 7, 1);
    append(&src, &out, &["-q", "--rescan"]);
    let last = t.path().join("arc.002");
    let mut b = fs::read(&last).unwrap();
    let n = b.len();
    b[n - 30] ^= 0x55;
    fs::write(&last, &b).unwrap();
    let (code, _, e) = clc(&[&"pack", &src, &"-o", &out, &"--append", &"--cpu"]);
    assert_eq!(code, 2, "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("cannot append") && e.contains("clc repair"),
        "{e}"
    );
}

/// Each append writes its own parity set over its new volumes, numbered on, never touching the earlier
/// sets; `repair` rebuilds a lost volume of any generation; no volume, data or parity, passes
/// `--volume-size`.
#[test]
fn parity_over_appended_volumes() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fresh(&src, 8, 3);
    let out = t.path().join("arc");
    let first = t.path().join("arc.001");
    let flags = ["-q", "--volume-size", "1M", "--parity", "50"];
    append(&src, &out, &flags);
    let one = t.path().join("v-one");
    common::copy_tree(&src, &one);
    let list = |pre: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(t.path())
            .unwrap()
            .flatten()
            .map(|d| d.path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with(pre) && n[pre.len()..].bytes().all(|b| b.is_ascii_digit())
            })
            .collect();
        v.sort();
        v
    };
    let parity_one: Vec<(PathBuf, Vec<u8>)> = list("arc.p")
        .into_iter()
        .map(|p| (p.clone(), fs::read(&p).unwrap()))
        .collect();
    assert!(!parity_one.is_empty());
    fresh(&src, 9, 3);
    append(&src, &out, &[&flags[..], &["--rescan"]].concat());
    let parity_all = list("arc.p");
    assert!(parity_all.len() > parity_one.len(), "{parity_all:?}");
    for (p, b) in &parity_one {
        assert!(fs::read(p).unwrap() == *b, "{} was rewritten", p.display());
    }
    for v in list("arc.").iter().chain(&parity_all) {
        let len = fs::metadata(v).unwrap().len();
        assert!(len <= 1 << 20, "{} is {len} bytes", v.display());
    }
    // Lose one data volume of each generation (the first's, and the newest, with the footer).
    let data = list("arc.");
    let gen2_first = data
        .iter()
        .position(|p| !parity_one.is_empty() && p.ends_with(format!("arc.{:03}", 2)))
        .unwrap();
    fs::remove_file(&data[gen2_first]).unwrap();
    let last = data.last().unwrap().clone();
    fs::remove_file(&last).unwrap();
    let (code, o, _) = clc(&[&"verify", &first]);
    assert_eq!(code, 2, "{o}");
    let (code, o, e) = clc(&[&"repair", &first]);
    assert_eq!(code, 0, "{o}{e}");
    assert!(
        o.contains("rebuilt") && o.contains(&last.display().to_string()),
        "{o}"
    );
    earlier_intact(
        &first,
        &names(&first)
            .into_iter()
            .zip([one, src.clone()])
            .collect::<Vec<_>>(),
        t.path(),
    );
}

/// A slightly edited large file is stored against its earlier version (FORMAT.md 2.3): its frames name
/// the earlier version's chunks as their dictionary, the snapshot costs a small part of the file, every
/// snapshot still extracts, and verify checks the frames with a dictionary.
#[test]
fn an_edited_file_is_stored_against_its_earlier_version() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    // Lines of numbers: compressible (about 2:1), yet every few bytes unlike the rest, so that a long match
    // into the earlier version is there to be found (a text of a few words repeats every short string).
    let big: Vec<u8> = common::noise(7, 1_000_000)
        .chunks(8)
        .enumerate()
        .flat_map(|(i, c)| {
            format!("{i:08} {}\n", u64::from_le_bytes(c.try_into().unwrap())).into_bytes()
        })
        .collect();
    assert!(big.len() > 2_500_000);
    fs::write(src.join("big.txt"), &big).unwrap();
    let out = t.path().join("arc");
    let first = t.path().join("arc.001");
    append(&src, &out, &["-q"]);
    let keep = t.path().join("v1");
    common::copy_tree(&src, &keep);
    // Edits every 200 KB: about half of the 64 KiB chunks change, which chunk dedup alone stores again.
    let mut b = big.clone();
    for k in (0..15).rev() {
        let at = k * 200_000 + 1234;
        b.splice(at..at + 5, format!("[edit {k}]").bytes());
    }
    fs::write(src.join("big.txt"), &b).unwrap();
    let o = append(&src, &out, &[]);
    let line = o.lines().find(|l| l.starts_with("snapshot ")).unwrap();
    let n: u64 = line
        .split("; ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{o}"));
    assert!(n >= 1, "no frame stored against the earlier version: {o}");
    let snaps = snapshot_json(&first);
    let added = snaps[1]["bytes_added"].as_u64().unwrap();
    let whole = snaps[0]["bytes_added"].as_u64().unwrap();
    assert!(
        added * 5 < whole,
        "the edit cost {added} of {whole} bytes: {o}"
    );
    let names = names(&first);
    for (name, tree) in [(&names[0], &keep), (&names[1], &src)] {
        let dest = t.path().join(format!("x-{name}"));
        extract(&first, &dest, Some(name));
        common::assert_same_tree(tree, &dest);
    }
    let (code, o, e) = clc(&[&"verify", &first]);
    assert_eq!(code, 0, "{o}{e}");
}

/// Damage to the data only one snapshot holds: `clc verify` fails and names that snapshot (and no
/// other) beside the frame, in its line and in `--json`; every other snapshot still extracts whole.
#[test]
fn verify_names_the_snapshot_whose_data_is_damaged() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fresh(&src, 7, 2);
    let out = t.path().join("arc");
    let first = t.path().join("arc.001");
    append(&src, &out, &["--name", "one", "-q"]);
    let one = t.path().join("v-one");
    common::copy_tree(&src, &one);
    // Only "two" holds this file: its bytes (incompressible, one frame) are all of arc.002's frames.
    fs::write(src.join("only-in-two"), common::noise(99, 512 << 10)).unwrap();
    append(&src, &out, &["--name", "two", "-q"]);
    fs::remove_file(src.join("only-in-two")).unwrap();
    append(&src, &out, &["--name", "three", "-q"]);
    assert_eq!(names(&first), ["one", "two", "three"]);
    let (code, o, e) = clc(&[&"verify", &first]);
    assert_eq!(code, 0, "{o}{e}");
    // One byte in the middle of the frame of "only-in-two".
    let vol = t.path().join("arc.002");
    let mut b = fs::read(&vol).unwrap();
    b[200 << 10] ^= 0x40;
    fs::write(&vol, &b).unwrap();
    let (code, o, e) = clc(&[&"verify", &first]);
    assert_eq!(code, 2, "{o}{e}");
    let text = format!("{o}{e}");
    let line = text
        .lines()
        .find(|l| l.contains("arc.002"))
        .unwrap_or_else(|| panic!("no line names arc.002: {text}"));
    assert!(line.ends_with("; snapshots: two"), "{line}");
    let (code, o, e) = clc(&[&"verify", &first, &"--json"]);
    assert_eq!(code, 2, "{e}");
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    let damages = v["damages"].as_array().unwrap();
    assert_eq!(damages.len(), 1, "{o}");
    assert_eq!(damages[0]["what"], "frame");
    assert_eq!(damages[0]["snapshots"], serde_json::json!(["two"]), "{o}");
    // The newest tree does not hold the file, so no file of it is named.
    assert_eq!(damages[0]["files"], serde_json::json!([]), "{o}");
    for (name, tree) in [("one", &one), ("three", &src)] {
        let dest = t.path().join(format!("x-{name}"));
        extract(&first, &dest, Some(name));
        common::assert_same_tree(tree, &dest);
    }
    let dest = t.path().join("x-two");
    let (code, _, e) = clc(&[
        &"extract",
        &first,
        &"-o",
        &dest,
        &"-q",
        &"--snapshot",
        &"two",
    ]);
    assert_ne!(code, 0, "the damaged snapshot extracted: {e}");
    assert!(e.contains("only-in-two"), "{e}");
}
