//! `clc mount` through real FUSE mounts. Needs root and /dev/fuse: otherwise each test prints SKIP and
//! passes, unless CLC_REQUIRE_FUSE=1, when it fails.
//!
//! Archives are made by the built binary from generated trees; every mount is taken down by a guard
//! (umount2, then a lazy detach) even when an assertion fails.

mod common;

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::Rng;

const CLC: &str = env!("CARGO_BIN_EXE_clc");
/// Small chunks so that 64K frames are allowed.
const SMALL_CHUNKS: &str = "CHUNK_MIN_SIZE = 4K\nCHUNK_AVG_SIZE = 16K\nCHUNK_MAX_SIZE = 64K\n";

/// Compressible but varied bytes: words and numbers.
fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "frame ", "volume ", "chunk ", "index ", "clc ", "fuse\n", "read ", "x",
    ];
    let mut v = Vec::with_capacity(len + 32);
    while v.len() < len {
        if rng.below(4) == 0 {
            v.extend_from_slice(rng.next().to_string().as_bytes());
        } else {
            v.extend_from_slice(WORDS[rng.below(8) as usize].as_bytes());
        }
    }
    v.truncate(len);
    v
}

/// Writes `count` files `f0`, `f1`, … of `len` text bytes from seed `seed` into `dir`; returns their bytes.
fn text_files(dir: &Path, seed: u64, count: usize, len: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed);
    let data: Vec<Vec<u8>> = (0..count).map(|_| text(&mut rng, len)).collect();
    for (i, d) in data.iter().enumerate() {
        fs::write(dir.join(format!("f{i}")), d).unwrap();
    }
    data
}

/// `dirs` directories `d00`, `d01`, … under `src`, each of `files` text files of `len` bytes.
fn text_dirs(src: &Path, dirs: u64, files: usize, len: usize) {
    for d in 0..dirs {
        let dir = src.join(format!("d{d:02}"));
        fs::create_dir_all(&dir).unwrap();
        text_files(&dir, d, files, len);
    }
}

fn set_mtime(p: &Path, secs: u64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    fs::File::open(p).unwrap().set_modified(t).unwrap();
}

/// A tree with files of many sizes, directories, symlinks, hardlinks, a FIFO, xattrs, odd modes and
/// owners, and fixed mtimes.
fn make_tree(root: &Path, seed: u64) {
    let mut rng = Rng(seed);
    for d in ["a", "a/b", "a/b/c", "empty", "z"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let sizes = [0usize, 1, 100, 4095, 4096, 65_536, 65_537, 200_000, 700_000];
    for (i, &n) in sizes.iter().enumerate() {
        let p = root
            .join(["a", "a/b", "a/b/c", "z"][i % 4])
            .join(format!("f{i}"));
        fs::write(&p, text(&mut rng, n)).unwrap();
    }
    fs::write(root.join("dup1"), text(&mut Rng(7), 150_000)).unwrap();
    fs::write(root.join("a/dup2"), text(&mut Rng(7), 150_000)).unwrap();
    fs::write(root.join("secret"), b"top").unwrap();
    fs::set_permissions(root.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("tool"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::chown(root.join("secret"), Some(1234), Some(5678)).unwrap();
    std::os::unix::fs::chown(root.join("a/b"), Some(42), Some(43)).unwrap();
    fs::hard_link(root.join("a/f0"), root.join("z/hard0")).unwrap();
    fs::hard_link(root.join("a/b/f5"), root.join("z/hard5")).unwrap();
    fs::hard_link(root.join("a/b/f5"), root.join("hard5b")).unwrap();
    std::os::unix::fs::symlink("../a/b/f1", root.join("z/link")).unwrap();
    std::os::unix::fs::symlink("/nowhere/at/all", root.join("dangling")).unwrap();
    std::os::unix::fs::lchown(root.join("z/link"), Some(7), Some(8)).unwrap();
    let fifo = CString::new(root.join("pipe").as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    set_xattr(&root.join("a/f0"), "user.note", b"hello");
    set_xattr(&root.join("a/b"), "user.dir", b"");
    set_xattr(&root.join("secret"), "user.bin", &[0, 1, 2, 255]);
    // mtimes last, deepest first, so creating entries does not move them.
    let mut all = walk(root);
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in all.iter().enumerate() {
        let md = fs::symlink_metadata(p).unwrap();
        if md.is_file() || md.is_dir() {
            set_mtime(p, 1_500_000_000 + i as u64 * 3601);
        }
    }
}

fn set_xattr(p: &Path, name: &str, v: &[u8]) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let r = unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
    assert_eq!(r, 0, "setxattr {name} on {}", p.display());
}

fn xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 4096];
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "listxattr {}", p.display());
    let mut out = Vec::new();
    for name in names[..n as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
    {
        let cn = CString::new(name).unwrap();
        let mut v = vec![0u8; 4096];
        let m = unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        assert!(m >= 0, "getxattr {}", p.display());
        v.truncate(m as usize);
        out.push((name.to_vec(), v));
    }
    out.sort();
    out
}

/// Every path below `root` (not `root` itself), sorted.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

fn pack(src: &Path, out: &Path, extra: &[&str]) {
    let cfg = out.with_extension("cfg");
    fs::write(&cfg, SMALL_CHUNKS).unwrap();
    let st = Command::new(CLC)
        .arg("pack")
        .arg(src)
        .arg("-o")
        .arg(out)
        .args(["-q", "--cpu", "--config"])
        .arg(&cfg)
        .args(extra)
        .status()
        .unwrap();
    assert!(st.success(), "pack failed");
}

/// A mount that is always taken down.
struct Mounted {
    dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Mounted {
    /// `clc mount -f` in a child process; returns once the mount is live.
    fn foreground(archive: &Path, dir: &Path, extra: &[&str]) -> Mounted {
        Self::foreground_env(archive, dir, extra, &[])
    }

    /// [`Mounted::foreground`] with environment variables set for `clc mount`.
    fn foreground_env(archive: &Path, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Mounted {
        fs::create_dir_all(dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let log = dir.with_extension("log");
        let child = Command::new(CLC)
            .arg("mount")
            .arg("-f")
            .arg(archive)
            .arg(&dir)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut m = Mounted {
            dir,
            child: Some(child),
            log,
        };
        m.wait_live();
        m
    }

    fn wait_live(&mut self) {
        let t0 = Instant::now();
        while !common::is_mounted(&self.dir) {
            if let Some(st) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("clc mount exited with {st}: {}", self.log_text());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "mount not live after 10 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if common::is_mounted(&self.dir) {
            let c = CString::new(self.dir.as_os_str().as_bytes()).unwrap();
            if unsafe { libc::umount2(c.as_ptr(), 0) } != 0 {
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        if let Some(mut c) = self.child.take() {
            let t0 = Instant::now();
            while c.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn walk_matches_source_bytes_and_metadata() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src, 1);
    pack(&src, &t.path().join("ar"), &["--frame-size", "64K"]);
    let m = Mounted::foreground(&t.path().join("ar.001"), &t.path().join("mnt"), &[]);
    let ours = walk(&src);
    let theirs = walk(&m.dir);
    let rel = |v: &[PathBuf], base: &Path| -> Vec<PathBuf> {
        v.iter()
            .map(|p| p.strip_prefix(base).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(rel(&ours, &src), rel(&theirs, &m.dir), "same names");
    let mut inos: HashMap<u64, u64> = HashMap::new();
    for p in &ours {
        let r = p.strip_prefix(&src).unwrap();
        let q = m.dir.join(r);
        let (a, b) = (
            fs::symlink_metadata(p).unwrap(),
            fs::symlink_metadata(&q).unwrap(),
        );
        let what = r.display();
        assert_eq!(a.file_type(), b.file_type(), "{what}: type");
        assert_eq!(a.mode() & 0o7777, b.mode() & 0o7777, "{what}: mode");
        assert_eq!((a.uid(), a.gid()), (b.uid(), b.gid()), "{what}: owner");
        if a.is_file() || a.is_dir() {
            assert_eq!(a.mtime(), b.mtime(), "{what}: mtime");
        }
        if a.is_file() {
            assert_eq!(a.len(), b.len(), "{what}: size");
            assert_eq!(b.blocks(), a.len().div_ceil(512), "{what}: blocks");
            assert_eq!(fs::read(p).unwrap(), fs::read(&q).unwrap(), "{what}: bytes");
            assert_eq!(a.nlink(), b.nlink(), "{what}: nlink");
            // Paths sharing a source inode share a mount inode, and only they.
            let seen = *inos.entry(a.ino()).or_insert(b.ino());
            assert_eq!(seen, b.ino(), "{what}: hardlinks share st_ino");
        }
        if a.file_type().is_symlink() {
            assert_eq!(
                fs::read_link(p).unwrap(),
                fs::read_link(&q).unwrap(),
                "{what}: target"
            );
            assert_eq!(a.len(), b.len(), "{what}: symlink size");
        }
        if a.is_dir() {
            let subdirs = fs::read_dir(p)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
                .count() as u64;
            assert_eq!(b.nlink(), 2 + subdirs, "{what}: dir nlink");
        }
        if !a.file_type().is_symlink() {
            assert_eq!(xattrs(p), xattrs(&q), "{what}: xattrs");
        }
    }
    let distinct: std::collections::HashSet<u64> = inos.values().copied().collect();
    assert_eq!(
        distinct.len(),
        inos.len(),
        "distinct files have distinct st_ino"
    );
    // Whole directory listings include . and .. (readdir), and statfs answers.
    let c = CString::new(m.dir.as_os_str().as_bytes()).unwrap();
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut sfs) }, 0);
    let ls = Command::new("ls")
        .arg("-a")
        .arg(m.path("a"))
        .output()
        .unwrap();
    let names = String::from_utf8(ls.stdout).unwrap();
    assert!(names.lines().take(2).eq([".", ".."]), "{names}");
}

#[test]
fn big_file_whole_and_at_random_offsets() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let data = text(&mut Rng(99), 6_000_000);
    fs::write(src.join("big"), &data).unwrap();
    pack(&src, &t.path().join("ar"), &["--frame-size", "64K"]);
    let m = Mounted::foreground(&t.path().join("ar.001"), &t.path().join("mnt"), &[]);
    assert!(fs::read(m.path("big")).unwrap() == data, "whole file");
    let f = fs::File::open(m.path("big")).unwrap();
    let mut rng = Rng(5);
    for _ in 0..200 {
        let off = rng.below(data.len() as u64 + 1000);
        let len = 1 + rng.below(300_000) as usize;
        let mut buf = vec![0u8; len];
        let n = f.read_at(&mut buf, off).unwrap();
        let lo = (off as usize).min(data.len());
        let want = &data[lo..(lo + len).min(data.len())];
        assert!(n <= want.len());
        assert!(buf[..n] == want[..n], "bytes at {off}+{len}");
        if n < want.len() {
            // A short read is allowed; the rest must follow.
            let mut rest = vec![0u8; want.len() - n];
            let mut g = fs::File::open(m.path("big")).unwrap();
            g.seek(SeekFrom::Start(off + n as u64)).unwrap();
            g.read_exact(&mut rest).unwrap();
            assert!(rest == want[n..]);
        }
    }
}

/// An LZ_EXT3E archive (codec 4, format version 6) and a ZSTD one (codec 5, format version 7) serve the
/// same bytes through the mount: whole and at random offsets.
#[test]
fn lz_ext3e_and_zstd_archives_read_through_the_mount() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let data = text(&mut Rng(41), 2_000_000);
    fs::write(src.join("big"), &data).unwrap();
    let small = text_files(&src, 3, 20, 5000);
    for (name, codec) in [
        ("lz_ext3e", clc::codec::Codec::LzExt3E),
        ("zstd", clc::codec::Codec::Zstd),
    ] {
        let ar_path = t.path().join(format!("ar-{name}"));
        pack(&src, &ar_path, &["--frame-size", "64K", "--codec", name]);
        let first = t.path().join(format!("ar-{name}.001"));
        let ar = clc::archive::Archive::open(&first).unwrap();
        assert!(
            ar.index().frames().iter().any(|f| f.codec == codec),
            "{name}"
        );
        let m = Mounted::foreground(&first, &t.path().join(format!("mnt-{name}")), &[]);
        assert!(
            fs::read(m.path("big")).unwrap() == data,
            "{name}: whole file"
        );
        for (i, want) in small.iter().enumerate() {
            assert!(
                fs::read(m.path(&format!("f{i}"))).unwrap() == *want,
                "{name}: f{i}"
            );
        }
        let f = fs::File::open(m.path("big")).unwrap();
        let mut rng = Rng(6);
        for _ in 0..50 {
            let off = rng.below(data.len() as u64);
            let len = 1 + rng.below(200_000) as usize;
            let mut buf = vec![0u8; len];
            let n = f.read_at(&mut buf, off).unwrap();
            let lo = off as usize;
            assert!(
                n >= 1 && buf[..n] == data[lo..lo + n],
                "{name}: bytes at {off}+{len}"
            );
        }
    }
}

#[test]
fn sixteen_threads_read_random_ranges() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let mut rng = Rng(3);
    let files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            let n = 1 + rng.below(1_500_000) as usize;
            (format!("f{i}"), text(&mut rng, n))
        })
        .collect();
    for (n, d) in &files {
        fs::write(src.join(n), d).unwrap();
    }
    pack(&src, &t.path().join("ar"), &["--frame-size", "64K"]);
    // A small cache so that frames are evicted and decoded again while others read.
    let m = Mounted::foreground(
        &t.path().join("ar.001"),
        &t.path().join("mnt"),
        &["--cache-size", "1M"],
    );
    std::thread::scope(|s| {
        for th in 0..16u64 {
            let (files, m) = (&files, &m);
            s.spawn(move || {
                let mut rng = Rng(1000 + th);
                for _ in 0..60 {
                    let (name, data) = &files[rng.below(files.len() as u64) as usize];
                    let off = rng.below(data.len() as u64) as usize;
                    let len = 1 + rng.below(200_000) as usize;
                    let want = &data[off..(off + len).min(data.len())];
                    let mut buf = vec![0u8; want.len()];
                    let f = fs::File::open(m.path(name)).unwrap();
                    f.read_exact_at(&mut buf, off as u64).unwrap();
                    assert!(buf == want, "{name} at {off}+{len}");
                }
            });
        }
    });
}

/// Issue 20: with directory listings that carry attributes (READDIRPLUS) as the walker's lookups show
/// it needs them (the default), as the kernel asks for them (`auto`), never (`CLC_MOUNT_RDPLUS=0`, which a bare `find` of a huge tree wants) or always
/// (`=1`), the mount shows the same tree as the source: names, types, modes, sizes, times, bytes.
#[test]
fn listings_with_and_without_attributes_show_the_same_tree() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src, 3);
    pack(&src, &t.path().join("ar"), &[]);
    for v in ["adaptive", "auto", "0", "1"] {
        let m = Mounted::foreground_env(
            &t.path().join("ar.001"),
            &t.path().join(format!("mnt-{v}")),
            &[],
            &[("CLC_MOUNT_RDPLUS", v)],
        );
        common::assert_same_tree(&src, &m.dir);
    }
}

/// Mounts `archive` at `mnt` with `CLC_TRACE=1`, runs `walk` on the mount, unmounts, and returns the
/// trace's line about listings (`mount::walk`'s summary).
fn listing_trace(archive: &Path, mnt: &Path, walk: &dyn Fn(&Path)) -> String {
    listing_trace_env(archive, mnt, walk, &[])
}

/// [`listing_trace`] with more environment for the mount.
fn listing_trace_env(
    archive: &Path,
    mnt: &Path,
    walk: &dyn Fn(&Path),
    env: &[(&str, &str)],
) -> String {
    let env: Vec<(&str, &str)> = [("CLC_TRACE", "1")]
        .into_iter()
        .chain(env.iter().copied())
        .collect();
    let m = Mounted::foreground_env(archive, mnt, &[], &env);
    walk(&m.dir);
    let log = m.log.clone();
    drop(m); // unmounts; the server reports and exits
    let text = fs::read_to_string(log).unwrap();
    text.lines()
        .find(|l| l.contains("listings started:"))
        .unwrap_or_else(|| panic!("no listings line in:\n{text}"))
        .to_string()
}

/// The number just before `word` in `line`.
fn number_before(line: &str, word: &str) -> u64 {
    let i = line
        .find(word)
        .unwrap_or_else(|| panic!("{word:?} in {line}"));
    line[..i]
        .split_whitespace()
        .last()
        .unwrap()
        .parse()
        .unwrap()
}

/// Issue 20: a walk that only lists (a bare `find`) gets every listing names only, so the kernel makes
/// no inode per name; a walk that stats what it lists (`ls -lR`) gets attributes with its listings
/// after the first (but one in `walk::PROBE`), and sees the source's metadata either way. A listing of
/// at most `walk::SMALL` names (here the root's 20) always carries attributes and is not counted.
#[test]
fn listings_carry_attributes_only_for_walks_that_stat() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    text_dirs(&src, 20, 40, 100);
    pack(&src, &t.path().join("ar"), &[]);
    // Lists every directory, entering subdirectories by the types the listing gives (no stat).
    fn list_only(dir: &Path) -> usize {
        let mut n = 0;
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            n += 1;
            if e.file_type().unwrap().is_dir() {
                n += list_only(&e.path());
            }
        }
        n
    }
    let summary = |walk: &dyn Fn(&Path)| {
        let line = listing_trace(&t.path().join("ar.001"), &t.path().join("mnt"), walk);
        (
            number_before(&line, " with attributes"),
            number_before(&line, " names only"),
        )
    };
    let (with, names) = summary(&|d| assert_eq!(list_only(d), 820));
    assert_eq!((with, names), (0, 20), "a bare walk");
    // Lists each directory and stats its names before entering the next (as `ls -lR` does).
    fn stat_walk(mnt: &Path, src: &Path) -> usize {
        let mut n = 0;
        let mut names: Vec<_> = fs::read_dir(mnt).unwrap().map(|e| e.unwrap()).collect();
        names.sort_by_key(|e| e.file_name());
        for e in &names {
            let (a, b) = (
                fs::symlink_metadata(e.path()).unwrap(),
                fs::symlink_metadata(src.join(e.file_name())).unwrap(),
            );
            assert_eq!(
                (a.mode(), a.mtime()),
                (b.mode(), b.mtime()),
                "{:?}",
                e.path()
            );
            if a.is_file() {
                assert_eq!(a.len(), b.len(), "{:?}", e.path());
            }
            n += 1;
        }
        for e in &names {
            if e.file_type().unwrap().is_dir() {
                n += stat_walk(&e.path(), &src.join(e.file_name()));
            }
        }
        n
    }
    let (with, names) = summary(&|d| assert_eq!(stat_walk(d, &src), 820));
    assert!(
        with >= 14 && names >= 2,
        "a stat walk: {with} with, {names} without"
    );
    let (with, _) = summary(&|d| common::assert_same_tree(&src, d));
    assert_eq!(with, 0, "a walk that lists everything before it stats");
}

/// Issue 20: where directories are opened with a request (a tree above `NO_OPENDIR_RECORDS` records;
/// here forced with `CLC_MOUNT_OPENDIR=1`), the kernel keeps the listing of a directory of at most
/// `CACHED_LISTING` (32) names, so listing it again sends no request; a larger directory's listing is
/// not kept (filling that cache cost a bare `find` of a million names ~20 %), so listing it again asks
/// again.
#[test]
fn only_small_directories_keep_their_listings() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    for (d, n) in [("small", 20), ("large", 40)] {
        fs::create_dir_all(src.join(d)).unwrap();
        text_files(&src.join(d), 1, n, 10);
    }
    pack(&src, &t.path().join("ar"), &[]);
    // Listing requests and directory opens of a mount on which `dir` is listed `times` times.
    let requests = |dir: &str, times: usize| -> (u64, u64) {
        let walk = |m: &Path| {
            for _ in 0..times {
                assert!(fs::read_dir(m.join(dir)).unwrap().count() >= 20);
            }
        };
        let line = listing_trace_env(
            &t.path().join("ar.001"),
            &t.path().join("mnt"),
            &walk,
            &[("CLC_MOUNT_OPENDIR", "1")],
        );
        (
            number_before(&line, " listing requests"),
            number_before(&line, " directory opens"),
        )
    };
    let ((s1, o1), (s2, o2)) = (requests("small", 1), requests("small", 2));
    assert!(s1 > 0 && s2 == s1, "small: once {s1}, twice {s2}");
    assert!(o2 > o1, "every listing opens its directory: {o1}, {o2}");
    let ((l1, _), (l2, _)) = (requests("large", 1), requests("large", 2));
    assert!(l1 > 0 && l2 > l1, "large: once {l1}, twice {l2}");
}

/// Issue 20: a tree of at most `NO_OPENDIR_RECORDS` records is served without FUSE_OPENDIR: the first
/// one is answered ENOSYS and the kernel asks no more (nor sends FUSE_RELEASEDIR), and every
/// directory then keeps its listing, large ones too; the walk sees the whole tree.
#[test]
fn small_trees_open_directories_without_a_request() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    text_dirs(&src, 6, 40, 10);
    pack(&src, &t.path().join("ar"), &[]);
    let walk = |m: &Path| {
        common::assert_same_tree(&src, m);
        for _ in 0..3 {
            assert_eq!(fs::read_dir(m.join("d00")).unwrap().count(), 40);
        }
    };
    let line = listing_trace(&t.path().join("ar.001"), &t.path().join("mnt"), &walk);
    assert_eq!(number_before(&line, " directory opens"), 1, "{line}");
    let cached = number_before(&line, " listing requests");
    // The same walk with every directory opened by a request: an open per listing, and the large
    // directory listed again asks again.
    let line = listing_trace_env(
        &t.path().join("ar.001"),
        &t.path().join("mnt"),
        &walk,
        &[("CLC_MOUNT_OPENDIR", "1")],
    );
    assert!(number_before(&line, " directory opens") >= 7 + 3, "{line}");
    assert!(
        number_before(&line, " listing requests") > cached,
        "listings kept without opens: {cached} requests, {line}"
    );
}

/// Whether every page of file `p` is in the page cache (`mincore` of a mapping: no read is made).
fn resident(p: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(p).unwrap();
    let len = f.metadata().unwrap().len() as usize;
    // SAFETY: maps `len` bytes of an open file read-only, asks which pages are resident into a vector
    // of one byte per page, and unmaps; nothing else touches the mapping.
    unsafe {
        let a = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        if a == libc::MAP_FAILED {
            return false;
        }
        let mut v = vec![0u8; len.div_ceil(4096)];
        let r = libc::mincore(a, len, v.as_mut_ptr());
        libc::munmap(a, len);
        r == 0 && v.iter().all(|b| b & 1 == 1)
    }
}

/// Issue 20: after the first read of a file of a paged tree, the files after it in its directory are
/// pushed into the kernel's page cache (FUSE_NOTIFY_STORE), so reading them sends no READ; with
/// `CLC_MOUNT_PUSH=0` each file costs a READ of its own. The bytes read are the source's either way.
#[test]
fn files_after_a_first_read_are_pushed_into_the_page_cache() {
    if !common::fuse_ok() {
        return;
    }
    // A plain archive: served from its paged tree.
    pushes_spare_first_reads(&[], &[]);
    // A snapshot of a versioned archive: opened whole (as a bucket archive is), one tree.
    pushes_spare_first_reads(&["--append", "--name", "s1"], &["--snapshot", "s1"]);
}

/// Thirty files of one directory read in name order through a mount (`mount_args`) of an archive packed
/// with `pack_args`: with pushes, only the first is a first READ (the rest were pushed into the page cache,
/// which `mincore` sees before they are read); without, every file is.
fn pushes_spare_first_reads(pack_args: &[&str], mount_args: &[&str]) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    // At most `walk::SMALL` names: the listing carries attributes, so the kernel holds every inode.
    text_files(&src.join("d"), 7, 30, 9000);
    pack(&src, &t.path().join("ar"), pack_args);
    let first_reads = |push: &str| -> u64 {
        let m = Mounted::foreground_env(
            &t.path().join("ar.001"),
            &t.path().join("mnt"),
            mount_args,
            &[("CLC_TRACE", "1"), ("CLC_MOUNT_PUSH", push)],
        );
        let mut names: Vec<PathBuf> = fs::read_dir(m.path("d"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        assert_eq!(names.len(), 30);
        let same = |p: &Path| {
            let want = fs::read(src.join("d").join(p.file_name().unwrap())).unwrap();
            assert!(
                fs::read(p).unwrap() == want,
                "{p:?} differs from its source"
            );
        };
        same(&names[0]);
        if push == "1" {
            let last = names.last().unwrap();
            let t0 = std::time::Instant::now();
            while !resident(last) {
                assert!(
                    t0.elapsed().as_secs() < 20,
                    "{last:?} never reached the page cache ({mount_args:?})"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        for p in &names[1..] {
            same(p);
        }
        let log = m.log.clone();
        drop(m);
        let text = fs::read_to_string(log).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("first reads:"))
            .unwrap_or_else(|| panic!("no first reads line in:\n{text}"));
        number_before(line, "; pushed")
    };
    assert_eq!(
        first_reads("1"),
        1,
        "the 29 files after the first were pushed ({mount_args:?})"
    );
    assert_eq!(
        first_reads("0"),
        30,
        "without pushes every file is read ({mount_args:?})"
    );
}

/// Issue 20: eight readers with O_DIRECT, each streaming through its own eighth of one file in 1 MiB
/// reads, all finish with the right bytes, with a cache smaller than their read-ahead windows together
/// (frames evicted before they are read) — whether the kernel sends FUSE_OPEN (`CLC_MOUNT_OPEN=1`: one
/// read state per handle) or not (the default: one state per inode, a stream per reader).
#[test]
fn eight_direct_readers_of_one_file_finish() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let data = text(&mut Rng(11), 24 << 20);
    fs::write(src.join("big"), &data).unwrap();
    pack(&src, &t.path().join("ar"), &["--frame-size", "1M"]);
    for open_calls in ["0", "1"] {
        let m = Mounted::foreground_env(
            &t.path().join("ar.001"),
            &t.path().join(format!("mnt{open_calls}")),
            &["--cache-size", "3M"],
            &[("CLC_MOUNT_OPEN", open_calls)],
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let part = data.len() / 8;
        std::thread::scope(|s| {
            for j in 0..8 {
                let (tx, m, data) = (tx.clone(), &m, &data);
                s.spawn(move || {
                    use std::os::unix::fs::OpenOptionsExt;
                    let f = fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_DIRECT)
                        .open(m.path("big"))
                        .unwrap();
                    // O_DIRECT wants an aligned buffer.
                    let mut raw = vec![0u8; (1 << 20) + 4096];
                    let skip = raw.as_ptr().align_offset(4096);
                    let buf = &mut raw[skip..skip + (1 << 20)];
                    let mut at = j * part;
                    while at < (j + 1) * part {
                        let n = f.read_at(buf, at as u64).unwrap();
                        assert!(n > 0, "reader {j}: end of file at {at}");
                        let n = n.min((j + 1) * part - at);
                        assert!(buf[..n] == data[at..at + n], "reader {j} at {at}");
                        at += n;
                    }
                    tx.send(j).unwrap();
                });
            }
            drop(tx);
            let t0 = Instant::now();
            for _ in 0..8 {
                let left = Duration::from_secs(120).saturating_sub(t0.elapsed());
                match rx.recv_timeout(left) {
                    Ok(_) => {}
                    // A reader failed: the scope reports its panic.
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        // End the server, so that the stuck reads fail and the scope can end.
                        if let Some(c) = &m.child {
                            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
                        }
                        panic!(
                            "a direct reader did not finish in 120 s (CLC_MOUNT_OPEN={open_calls})"
                        );
                    }
                }
            }
        });
    }
}

/// `CLC_TRACE=1`: the mount's report at unmount has a MountRead line with the bytes its reads
/// answered (a file read once through the page cache: its size).
#[test]
fn trace_reports_the_bytes_reads_answered() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let data = text(&mut Rng(5), 300_000);
    fs::write(src.join("f"), &data).unwrap();
    pack(&src, &t.path().join("ar"), &[]);
    let m = Mounted::foreground_env(
        &t.path().join("ar.001"),
        &t.path().join("mnt"),
        &[],
        &[("CLC_TRACE", "1")],
    );
    assert!(fs::read(m.path("f")).unwrap() == data);
    let log = m.log.clone();
    drop(m); // unmounts; the server reports and exits
    let text = fs::read_to_string(log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("MountRead"))
        .unwrap_or_else(|| panic!("no MountRead line in:\n{text}"));
    assert!(line.split_whitespace().any(|w| w == "300000"), "{line}");
}

/// Files of `ar` whose data lies in the frames or volumes chosen: (relative path, frames, volumes).
fn file_frames(archive: &Path) -> Vec<(String, Vec<u32>, Vec<u32>)> {
    let ar = clc::archive::Archive::open(archive).unwrap();
    let idx = ar.index();
    idx.entries_with_ids()
        .filter(|(_, e)| e.kind == clc::format::index::EntryKind::File)
        .map(|(id, e)| {
            let frames: Vec<u32> = idx.frames_of(id).iter().map(|f| f.0).collect();
            let vols = frames
                .iter()
                .map(|&f| idx.frames()[f as usize].volume.0)
                .collect();
            (String::from_utf8(e.path.clone()).unwrap(), frames, vols)
        })
        .collect()
}

#[test]
fn corrupt_frame_gives_eio_only_on_its_file() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let data = text_files(&src, 11, 4, 300_000);
    pack(&src, &t.path().join("ar"), &["--frame-size", "64K"]);
    let first = t.path().join("ar.001");
    let files = file_frames(&first);
    // A frame of f1 that no other file uses.
    let (_, f1_frames, _) = files.iter().find(|(p, _, _)| p == "f1").unwrap();
    let bad = *f1_frames
        .iter()
        .find(|f| files.iter().all(|(p, fr, _)| p == "f1" || !fr.contains(f)))
        .unwrap();
    {
        let ar = clc::archive::Archive::open(&first).unwrap();
        let fr = ar.index().frames()[bad as usize];
        let vol = ar.volume_paths()[fr.volume.at()].to_path_buf();
        let at = fr.offset + fr.stored_len as u64 / 2;
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&vol)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
    }
    let m = Mounted::foreground(&first, &t.path().join("mnt"), &[]);
    assert_eq!(errno_of(fs::read(m.path("f1"))), Some(libc::EIO), "f1");
    for i in [0, 2, 3] {
        let got = fs::read(m.path(&format!("f{i}"))).unwrap();
        assert!(got == data[i], "f{i} reads correctly");
    }
    let log = m.log_text();
    assert!(
        log.contains("f1") && log.contains(&format!("frame {bad}")) && log.contains("ar.00"),
        "one log line names file, frame and volume: {log}"
    );
}

#[test]
fn writes_are_refused_with_erofs() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src, 2);
    pack(&src, &t.path().join("ar"), &[]);
    let m = Mounted::foreground(&t.path().join("ar.001"), &t.path().join("mnt"), &[]);
    let rofs = Some(libc::EROFS);
    let w = fs::OpenOptions::new().write(true).open(m.path("a/f0"));
    assert_eq!(errno_of(w), rofs, "open for writing");
    assert_eq!(errno_of(fs::write(m.path("new"), b"x")), rofs, "create");
    assert_eq!(errno_of(fs::create_dir(m.path("d"))), rofs, "mkdir");
    assert_eq!(errno_of(fs::remove_file(m.path("a/f0"))), rofs, "unlink");
    assert_eq!(
        errno_of(fs::rename(m.path("a/f0"), m.path("a/g"))),
        rofs,
        "rename"
    );
    let perm = fs::Permissions::from_mode(0o777);
    assert_eq!(
        errno_of(fs::set_permissions(m.path("a/f0"), perm)),
        rofs,
        "chmod"
    );
    assert_eq!(
        fs::read(m.path("a/f0")).unwrap(),
        fs::read(src.join("a/f0")).unwrap()
    );
}

#[test]
fn sigterm_unmounts_cleanly() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src, 3);
    pack(&src, &t.path().join("ar"), &[]);
    let mut m = Mounted::foreground(&t.path().join("ar.001"), &t.path().join("mnt"), &[]);
    // Busy mount: a file stays open while the signal comes.
    let held = fs::File::open(m.path("a/b/f1")).unwrap();
    let pid = m.child.as_ref().unwrap().id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let t0 = Instant::now();
    while common::is_mounted(&m.dir) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "still mounted after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(held);
    let mut child = m.child.take().unwrap();
    let t0 = Instant::now();
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "mount process still running"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(st.success(), "exit status {st}");
}

#[test]
fn background_mount_with_and_without_fusermount() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src, 4);
    pack(&src, &t.path().join("ar"), &[]);
    let bare = t.path().join("bin");
    fs::create_dir(&bare).unwrap();
    let sys_path = std::env::var("PATH").unwrap_or_default();
    for (name, path) in [("without", bare.to_str().unwrap()), ("with", &sys_path[..])] {
        let dir = t.path().join(format!("mnt-{name}"));
        fs::create_dir(&dir).unwrap();
        // The mount is made before the fork: one the kernel refuses is reported by the command
        // itself (message and exit status), and nothing is left mounted.
        let out = Command::new(CLC)
            .arg("mount")
            .arg(t.path().join("ar.001"))
            .arg(&dir)
            .args(["-o", "no_such_fuse_option=1"])
            .env("PATH", path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: a refused mount succeeded");
        assert!(err.contains("cannot mount"), "{name}: {err}");
        assert!(!common::is_mounted(&dir.canonicalize().unwrap()));
        let mut m = Mounted {
            dir: dir.canonicalize().unwrap(),
            child: None,
            log: t.path().join("unused.log"),
        };
        let t0 = Instant::now();
        let out = Command::new(CLC)
            .arg("mount")
            .arg(t.path().join("ar.001"))
            .arg(&m.dir)
            .env("PATH", path)
            .output()
            .unwrap();
        let took = t0.elapsed();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Live as soon as the command returns.
        assert!(
            common::is_mounted(&m.dir),
            "{name}: mounted when clc mount returns"
        );
        eprintln!("background mount {name} fusermount: {took:?}");
        assert_eq!(
            fs::read(m.path("a/f0")).unwrap(),
            fs::read(src.join("a/f0")).unwrap()
        );
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = info
            .lines()
            .find(|l| l.split(' ').nth(4) == m.dir.to_str())
            .unwrap();
        assert!(
            line.contains(" fuse.clc clc:"),
            "fsname and subtype: {line}"
        );
        let st = Command::new(CLC)
            .arg("umount")
            .arg(&m.dir)
            .env("PATH", path)
            .status()
            .unwrap();
        assert!(st.success(), "{name}: clc umount");
        assert!(!common::is_mounted(&m.dir));
        m.child = None;
    }
}

#[test]
fn missing_middle_volume_fails_only_its_files() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let data = text_files(&src, 21, 10, 250_000);
    // Random-looking numbers compress about 2:1, so 2.5 MB makes several 512K volumes.
    pack(
        &src,
        &t.path().join("ar"),
        &["--frame-size", "64K", "--volume-size", "512K"],
    );
    let first = t.path().join("ar.001");
    let files = file_frames(&first);
    let vols = files
        .iter()
        .flat_map(|f| f.2.iter())
        .max()
        .copied()
        .unwrap();
    assert!(vols >= 3, "{vols} volumes");
    fs::rename(t.path().join("ar.002"), t.path().join("away")).unwrap();
    let m = Mounted::foreground(&first, &t.path().join("mnt"), &[]);
    let (mut bad, mut good) = (0, 0);
    for (p, _, v) in &files {
        let i: usize = p[1..].parse().unwrap();
        let r = fs::read(m.path(p));
        if v.contains(&2) {
            assert_eq!(errno_of(r), Some(libc::EIO), "{p} has data in volume 2");
            bad += 1;
        } else {
            assert!(r.unwrap() == data[i], "{p} reads correctly");
            good += 1;
        }
    }
    assert!(bad > 0 && good > 0, "{bad} bad, {good} good");
    let log = m.log_text();
    assert!(
        log.contains("ar.002"),
        "warning names the missing volume: {log}"
    );
}

#[test]
fn ten_thousand_files_mount_fast() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    for d in 0..100 {
        let dir = src.join(format!("d{d:03}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            let mut h = fs::File::create(dir.join(format!("f{f:03}"))).unwrap();
            writeln!(h, "file {d} {f}").unwrap();
        }
    }
    pack(&src, &t.path().join("ar"), &[]);
    let dir = t.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    let m = Mounted {
        dir: dir.canonicalize().unwrap(),
        child: None,
        log: t.path().join("unused.log"),
    };
    let t0 = Instant::now();
    let st = Command::new(CLC)
        .arg("mount")
        .arg(t.path().join("ar.001"))
        .arg(&m.dir)
        .status()
        .unwrap();
    let took = t0.elapsed();
    assert!(st.success());
    eprintln!("mount of 10,000 files: {took:?}");
    assert!(took < Duration::from_millis(500), "mount took {took:?}");
    assert_eq!(
        fs::read_to_string(m.path("d042/f017")).unwrap(),
        "file 42 17\n"
    );
    assert_eq!(fs::read_dir(m.path("d099")).unwrap().count(), 100);
}

/// Regression: fuser's mount handle, dropped when a session ends, calls umount2 on the mount point again
/// and so unmounted a newer mount made there in the meantime (about 1 in 100 quick remounts).
#[test]
fn old_daemon_never_unmounts_a_newer_mount_at_the_same_place() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src, 5);
    pack(&src, &t.path().join("ar"), &[]);
    let dir = t.path().join("mnt");
    fs::create_dir(&dir).unwrap();
    let m = Mounted {
        dir: dir.canonicalize().unwrap(),
        child: None,
        log: t.path().join("unused.log"),
    };
    let clc = |args: &[&Path]| Command::new(CLC).args(args).status().unwrap().success();
    let ar = t.path().join("ar.001");
    assert!(clc(&[Path::new("mount"), &ar, &m.dir]));
    for i in 0..40 {
        assert!(clc(&[Path::new("umount"), &m.dir]), "umount {i}");
        assert!(clc(&[Path::new("mount"), &ar, &m.dir]), "mount {i}");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(common::is_mounted(&m.dir), "the last mount is still there");
    assert_eq!(
        fs::read(m.path("a/f0")).unwrap(),
        fs::read(src.join("a/f0")).unwrap()
    );
}

/// An archive made with `--append` mounts with one directory per snapshot at the root (even with one
/// snapshot), each holding that snapshot's tree; `--snapshot NAME` serves one at the root; an archive
/// made without `--append` mounts as before.
#[test]
fn snapshots_mount_one_directory_each() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src, 11);
    let ar = t.path().join("ar");
    pack(&src, &ar, &["--append", "--name", "one"]);
    let first = t.path().join("ar.001");
    {
        let m = Mounted::foreground(&first, &t.path().join("m1"), &[]);
        let names: Vec<String> = fs::read_dir(&m.dir)
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["one"]);
        assert!(fs::metadata(m.path("one")).unwrap().is_dir());
        assert!(fs::read(m.path("one/dup1")).unwrap() == fs::read(src.join("dup1")).unwrap());
    }
    let keep = t.path().join("v1");
    assert!(Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(&keep)
        .status()
        .unwrap()
        .success());
    fs::write(src.join("a/f0"), b"changed in two").unwrap();
    fs::remove_file(src.join("dup1")).unwrap();
    fs::write(src.join("new"), b"only in two").unwrap();
    pack(&src, &ar, &["--append", "--name", "two"]);
    let m = Mounted::foreground(&first, &t.path().join("m2"), &[]);
    let mut names: Vec<String> = fs::read_dir(&m.dir)
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["one", "two"]);
    assert_eq!(fs::metadata(&m.dir).unwrap().nlink(), 4);
    // Listing the root and a stat of each snapshot's directory build no tree (statfs counts the inodes
    // of the trees built: the newest, built at the mount); looking into "one" builds its tree.
    let inodes = |p: &Path| {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C path and a zeroed statvfs to fill.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
        st.f_files
    };
    let at_mount = inodes(&m.dir);
    for snap in ["one", "two"] {
        let md = fs::metadata(m.path(snap)).unwrap();
        assert!(md.is_dir() && md.nlink() == 1, "{snap}");
    }
    assert_eq!(inodes(&m.dir), at_mount);
    assert!(m.path("one/a").is_dir());
    assert!(inodes(&m.dir) > at_mount);
    for (snap, tree) in [("one", &keep), ("two", &src)] {
        let rel = |root: &Path| -> Vec<PathBuf> {
            walk(root)
                .into_iter()
                .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
                .collect()
        };
        let got = rel(&m.path(snap));
        assert_eq!(got, rel(tree), "{snap}");
        for p in got {
            let (a, b) = (tree.join(&p), m.path(snap).join(&p));
            let ma = fs::symlink_metadata(&a).unwrap();
            if ma.is_file() {
                assert!(
                    fs::read(&a).unwrap() == fs::read(&b).unwrap(),
                    "{snap}/{}",
                    p.display()
                );
            }
        }
    }
    // Inode numbers of the two trees never collide; ".." of a snapshot is the root.
    let i1 = fs::metadata(m.path("one/a/f0")).unwrap().ino();
    let i2 = fs::metadata(m.path("two/a/f0")).unwrap().ino();
    assert_ne!(i1, i2);
    assert_eq!(
        fs::metadata(m.path("two/..")).unwrap().ino(),
        fs::metadata(&m.dir).unwrap().ino()
    );
    drop(m);
    let one = Mounted::foreground(&first, &t.path().join("m3"), &["--snapshot", "one"]);
    assert!(fs::read(one.path("dup1")).unwrap() == fs::read(keep.join("dup1")).unwrap());
    assert!(!one.path("new").exists());
    drop(one);
    // Plain archives: the tree at the root.
    let plain = t.path().join("plain");
    pack(&src, &plain, &[]);
    let p = Mounted::foreground(&t.path().join("plain.001"), &t.path().join("m4"), &[]);
    assert_eq!(fs::read(p.path("new")).unwrap(), b"only in two");
}

/// Format version 5's paged tree (FORMAT.md 12): a page whose bytes are damaged gives EIO for the names
/// it holds and one log line naming the page and the volume; names and bytes in other pages read as
/// packed. A plain archive mounts from its pages without opening the index (the trace says so).
#[test]
fn damaged_tree_page_gives_eio_only_on_its_names() {
    if !common::fuse_ok() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    for d in 0..3 {
        let dir = src.join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..3000 {
            let name = format!("a-rather-long-file-name-{f:05}");
            fs::write(dir.join(name), format!("{d} {f}\n")).unwrap();
        }
    }
    pack(&src, &t.path().join("ar"), &[]);
    let first = t.path().join("ar.001");
    // The last page holds the last records: names in d2 (breadth first: d0, d1, d2, then their files).
    let b = fs::read(&first).unwrap();
    let foot =
        clc::format::footer::Footer::decode(&b[b.len() - 80..], "t", b.len() as u64).unwrap();
    assert_eq!(foot.version, 8);
    let blob = &b[foot.index_offset as usize..b.len() - 80];
    let tr = clc::format::tree::Trailer::decode(
        &blob[blob.len() - 48..],
        blob.len() as u64,
        foot.version,
        "t",
    )
    .unwrap();
    let z = &blob[tr.dir_offset as usize..][..tr.dir_stored as usize];
    let raw = clc::format::tree::inflate(z, tr.dir_raw, tr.dir_checksum, "t", 0).unwrap();
    let dir = clc::format::tree::Directory::decode(&raw, &tr, "t").unwrap();
    assert!(dir.pages.len() >= 4, "{} pages", dir.pages.len());
    let last = dir.pages.len() - 1;
    let p = dir.pages[last];
    let at = foot.index_offset + p.offset + u64::from(p.stored) / 2;
    {
        let f = fs::OpenOptions::new().write(true).open(&first).unwrap();
        f.write_all_at(&[b[at as usize] ^ 0x5a], at).unwrap();
    }
    // `clc verify` reads every page: the damage is data damage (exit 2), named as the tree's.
    let v = Command::new(CLC)
        .arg("verify")
        .arg(&first)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&v.stdout).to_string() + &String::from_utf8_lossy(&v.stderr);
    assert_eq!(v.status.code(), Some(2), "{out}");
    assert!(out.contains("index tree"), "{out}");
    let m = Mounted::foreground_env(&first, &t.path().join("mnt"), &[], &[("CLC_TRACE", "1")]);
    assert_eq!(
        fs::read_to_string(m.path("d0/a-rather-long-file-name-00007")).unwrap(),
        "0 7\n"
    );
    assert_eq!(fs::read_dir(m.path("d0")).unwrap().count(), 3000);
    assert_eq!(
        errno_of(fs::metadata(m.path("d2/a-rather-long-file-name-02999"))),
        Some(libc::EIO)
    );
    let listed: std::io::Result<Vec<_>> = fs::read_dir(m.path("d2")).unwrap().collect();
    assert_eq!(errno_of(listed), Some(libc::EIO));
    let log = m.log_text();
    assert!(
        log.contains("paged tree opened")
            && log.contains(&format!("index tree page {last}"))
            && log.contains("ar.001")
            && log.matches("index tree page").count() == 1,
        "one log line names the page and the volume: {log}"
    );
}
