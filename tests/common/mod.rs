//! Shared test helpers: build trees with every entry type, run the binary, compare trees.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A copy of `src` at `to` with everything `assert_same_tree` compares (`cp -a` keeps modes, times,
/// xattrs and hardlinks).
pub fn copy_tree(src: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a {} {}", src.display(), to.display());
}

pub fn clc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clc"))
}

/// Runs clc with `args`, returning (exit code, stdout, stderr).
pub fn run(args: &[&OsStr]) -> (i32, String, String) {
    let o: Output = clc().args(args).output().expect("run clc");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[macro_export]
macro_rules! clc_ok {
    ($($a:expr),* $(,)?) => {{
        let args: Vec<std::ffi::OsString> = vec![$(std::ffi::OsString::from($a)),*];
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let (code, out, err) = common::run(&refs);
        assert!(code == 0, "clc {:?} exited {code}\nstdout: {out}\nstderr: {err}", args);
        (out, err)
    }};
}

/// Deterministic pseudo-random bytes.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Text-like bytes with repeats near and far.
pub fn text(seed: u64, n: usize) -> Vec<u8> {
    let words = [
        "alpha ", "beta ", "gamma ", "delta\n", "archive ", "frame ", "volume ", "chunk ",
    ];
    let r = noise(seed, n);
    let mut v = Vec::with_capacity(n + 8);
    let mut i = 0;
    while v.len() < n {
        v.extend_from_slice(words[r[i % r.len()] as usize % words.len()].as_bytes());
        i += 1;
    }
    v.truncate(n);
    v
}

/// A tree with every entry type the archive keeps: files of many sizes (one spanning many frames), an empty
/// file, duplicates, a hardlink pair, symlinks, an empty dir, a FIFO, xattrs, odd names (spaces, newline,
/// non-UTF-8 bytes), assorted modes and mtimes.
pub fn make_tree(root: &Path) {
    let w = |p: &str, data: &[u8]| {
        let p = root.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
    };
    w("big/text.txt", &text(1, 3 << 20));
    w("big/random.bin", &noise(2, 700 << 10));
    w("small/a.txt", b"hello\n");
    w("small/empty", b"");
    w("small/name with spaces.txt", b"spaces");
    w("small/dup1.txt", &text(3, 100_000));
    w("dups/dup2.txt", &text(3, 100_000));
    w("dups/dup3.txt", &text(3, 100_000));
    w("deep/a/b/c/d/e/leaf", b"deep");
    let odd = root.join(OsStr::from_bytes(b"small/bad\xff\xfename\nx"));
    fs::write(&odd, b"non-utf8 name").unwrap();
    fs::create_dir_all(root.join("emptydir")).unwrap();
    fs::hard_link(root.join("small/a.txt"), root.join("small/hard-a.txt")).unwrap();
    std::os::unix::fs::symlink("../small/a.txt", root.join("deep/link-rel")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("deep/link-dangling")).unwrap();
    let fifo = std::ffi::CString::new(root.join("small/fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid path string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    fs::set_permissions(root.join("small/a.txt"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::set_permissions(root.join("deep/a"), fs::Permissions::from_mode(0o700)).unwrap();
    set_xattr(
        &root.join("big/random.bin"),
        "user.clc.test",
        b"value\x00with nul",
    );
    set_mtime(
        &root.join("small/name with spaces.txt"),
        1_000_000_000,
        123_456_789,
    );
    set_mtime(&root.join("emptydir"), 1_500_000_000, 5);
}

pub fn set_xattr(p: &Path, name: &str, val: &[u8]) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid pointers for the call.
    let r = unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), val.as_ptr().cast(), val.len(), 0) };
    assert_eq!(r, 0, "setxattr on {}", p.display());
}

pub fn set_mtime(p: &Path, sec: i64, nsec: i64) {
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let ts = libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    // SAFETY: valid pointers for the call.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            [ts, ts].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0);
}

fn xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    clc::sys::xattrs(p).unwrap()
}

/// Every path under `root` (relative bytes), sorted.
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for de in fs::read_dir(root.join(&rel)).unwrap() {
            let de = de.unwrap();
            let r = rel.join(de.file_name());
            if de.file_type().unwrap().is_dir() {
                stack.push(r.clone());
            }
            out.push(r);
        }
    }
    out.sort();
    out
}

/// Asserts `b` restores `a`: same paths, types, modes, owners, mtimes, sizes, bytes, symlink targets, xattrs,
/// and the same hardlink grouping.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let pa = walk(a);
    let pb = walk(b);
    assert_eq!(pa, pb, "different path sets");
    let mut groups_a: HashMap<u64, Vec<&PathBuf>> = HashMap::new();
    let mut groups_b: HashMap<u64, Vec<&PathBuf>> = HashMap::new();
    for p in &pa {
        let (x, y) = (a.join(p), b.join(p));
        let (ma, mb) = (
            fs::symlink_metadata(&x).unwrap(),
            fs::symlink_metadata(&y).unwrap(),
        );
        let what = p.display();
        assert_eq!(ma.file_type(), mb.file_type(), "type of {what}");
        assert_eq!(ma.mode(), mb.mode(), "mode of {what}");
        assert_eq!(
            (ma.uid(), ma.gid()),
            (mb.uid(), mb.gid()),
            "owner of {what}"
        );
        // A directory's size is its filesystem's business (ext4's grows with what it once held).
        if !ma.is_dir() {
            assert_eq!(ma.len(), mb.len(), "size of {what}");
        }
        assert_eq!(
            (ma.mtime(), ma.mtime_nsec()),
            (mb.mtime(), mb.mtime_nsec()),
            "mtime of {what}"
        );
        if ma.file_type().is_symlink() {
            assert_eq!(
                fs::read_link(&x).unwrap(),
                fs::read_link(&y).unwrap(),
                "target of {what}"
            );
        } else if ma.is_file() {
            assert!(
                fs::read(&x).unwrap() == fs::read(&y).unwrap(),
                "content of {what}"
            );
            if ma.nlink() > 1 {
                groups_a.entry(ma.ino()).or_default().push(p);
                groups_b.entry(mb.ino()).or_default().push(p);
            }
        }
        assert_eq!(xattrs(&x), xattrs(&y), "xattrs of {what}");
    }
    let mut ga: Vec<_> = groups_a.into_values().collect();
    let mut gb: Vec<_> = groups_b.into_values().collect();
    ga.sort();
    gb.sort();
    assert_eq!(ga, gb, "hardlink groups");
}

/// Whether requirement `what` (ROOT, FUSE, OPENCL) must be met here: `CLC_REQUIRE_<what>=1`, or
/// `CI=true` (scripts/test.sh sets both in CI), so that nothing is skipped silently there.
pub fn required(what: &str) -> bool {
    std::env::var(format!("CLC_REQUIRE_{what}")).as_deref() == Ok("1")
        || std::env::var("CI").as_deref() == Ok("true")
}

/// `ok`; when it is false the test prints `SKIP: why` and should return, or fails where `what` is
/// [`required`].
pub fn require(what: &str, ok: bool, why: &str) -> bool {
    if !ok {
        assert!(
            !required(what),
            "CLC_REQUIRE_{what}=1 or CI=true, but {why}"
        );
        eprintln!("SKIP: {why}");
    }
    ok
}

/// Whether FUSE mounts can be tested here (root and /dev/fuse); see [`require`].
pub fn fuse_ok() -> bool {
    let ok = clc::sys::is_root() && Path::new("/dev/fuse").exists();
    require("FUSE", ok, "FUSE mount tests need root and /dev/fuse")
}

/// Whether something is mounted at `mnt` (a canonical path), from /proc/self/mountinfo.
pub fn is_mounted(mnt: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = mnt.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(want))
}

/// Deterministic pseudo-random numbers (xorshift64; the seed must not be 0).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (0 for n = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 24) as u8).collect()
    }
}

/// The pipeline of the kill tests (tests/faults.rs, tests/snapshots.rs): 64K frames, chunks and read
/// batches, one batch and one frame in flight, one reader, so that when a volume file appears the
/// reader is at most about a megabyte further.
pub const SLOW_PIPE: &str = "FRAME_SIZE = 64K\nCHUNK_MIN_SIZE = 4K\nCHUNK_AVG_SIZE = 16K\n\
    CHUNK_MAX_SIZE = 64K\nBUFFER_SIZE = 64K\nREAD_BUFFER_BATCHES = 1\nWRITE_BUFFER_BATCHES = 1\n\
    COMPRESSOR_BATCH_SIZE = 1\nNUM_READERS = 1\n";

/// Starts `clc pack SRC -o OUT --cpu ARGS…` with [`SLOW_PIPE`] plus the config lines `extra` (written
/// to `t/slow.cfg`), its output captured.
pub fn spawn_slow_pack(
    t: &Path,
    src: &Path,
    out: &Path,
    args: &[&str],
    extra: &str,
) -> std::process::Child {
    let cfg = t.join("slow.cfg");
    fs::write(&cfg, format!("{SLOW_PIPE}{extra}")).unwrap();
    clc()
        .arg("pack")
        .arg(src)
        .arg("-o")
        .arg(out)
        .args(args)
        .args(["--cpu", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `p` exists; fails when `child` ends first or after a minute.
pub fn wait_for(p: &Path, child: &mut std::process::Child) {
    let t0 = std::time::Instant::now();
    while !p.exists() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("pack ended ({st}) before {} appeared", p.display());
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "{} never appeared",
            p.display()
        );
        std::thread::sleep(std::time::Duration::from_micros(300));
    }
}

/// Waits for `child` to end: its exit code (-1 when a signal ended it) and its stderr. Fails when it
/// panicked.
pub fn finish(child: std::process::Child) -> (i32, String) {
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let code = o.status.code().unwrap_or(-1);
    assert_ne!(code, 101, "pack panicked: {err}");
    (code, err)
}

/// The kill-and-check step of the kill tests: once `p` exists, sends `sig` to `child` and waits for it
/// to end. Returns its exit code and stderr; fails when it finished before the signal (a SIGKILL that
/// came too late proves nothing) or answered a SIGINT / SIGTERM with anything but `128 + sig` and a
/// line saying "interrupted".
pub fn signal_when(p: &Path, mut child: std::process::Child, sig: i32) -> (i32, String) {
    wait_for(p, &mut child);
    // SAFETY: signalling a child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    let (code, err) = finish(child);
    if sig == libc::SIGKILL {
        assert_eq!(code, -1, "finished before the kill: {err}");
    } else {
        assert_eq!(code, 128 + sig, "signal {sig}: {err}");
        assert!(err.contains("interrupted"), "{err}");
    }
    (code, err)
}
pub mod s3;
