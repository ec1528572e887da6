//! Load on a FUSE mount: 16 reader threads (random ranges and whole files, every byte compared with the
//! source; half of them open with O_DIRECT so that their reads reach clc, not the page cache) and a `find`-style walk loop, for `CLC_LOAD_SECONDS` (default 20), over an archive about three
//! times the size of the mount's `--cache-size`. Passes with 0 errors and the mount process's peak resident
//! size (VmHWM) within the cache size plus a fixed 64 MiB allowance. Prints the figures
//! (docs/RELIABILITY.md records them).
//!
//! Needs root and /dev/fuse: otherwise prints SKIP and passes, unless CLC_REQUIRE_FUSE=1.

mod common;

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CLC: &str = env!("CARGO_BIN_EXE_clc");
const CACHE_MIB: u64 = 16;
const ALLOWANCE_MIB: u64 = 64;
const READERS: usize = 16;

/// `clc mount -f` in a child; unmounted and reaped on drop, even when an assertion fails.
struct Mount {
    dir: PathBuf,
    child: Child,
}

impl Mount {
    fn new(first: &Path, dir: &Path, log: &Path) -> Mount {
        fs::create_dir_all(dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let child = Command::new(CLC)
            .arg("mount")
            .arg("-f")
            .arg(first)
            .arg(&dir)
            .args(["--cache-size", &format!("{CACHE_MIB}M")])
            // The budget is clc's: an OpenCL runtime, once loaded to look for a GPU, brings its own
            // libraries and heaps (PoCL: about 60 MiB), which no cache setting governs.
            .arg("--cpu")
            .stdout(Stdio::null())
            .stderr(fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let mut m = Mount { dir, child };
        let t0 = Instant::now();
        while !common::is_mounted(&m.dir) {
            if let Some(st) = m.child.try_wait().unwrap() {
                panic!(
                    "clc mount exited with {st}: {}",
                    fs::read_to_string(log).unwrap()
                );
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "mount not live");
            std::thread::sleep(Duration::from_millis(5));
        }
        m
    }

    /// VmHWM of the serving process, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let c = CString::new(self.dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path string.
        if unsafe { libc::umount2(c.as_ptr(), 0) } != 0 {
            // SAFETY: as above.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        let t0 = Instant::now();
        while self.child.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// About 48 MiB in 60 files of 0 B to 3 MiB (text and noise), 6 directories, symlinks.
fn make_tree(src: &Path) -> HashMap<PathBuf, Vec<u8>> {
    let mut files = HashMap::new();
    let mut x = 7u64;
    for i in 0..60u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let size = match i % 6 {
            0 => 0,
            1 => (x >> 40) as usize % 4096,
            2 => (x >> 40) as usize % (256 << 10),
            _ => (x >> 40) as usize % (3 << 20),
        };
        let data = if i % 2 == 0 {
            common::text(i, size)
        } else {
            common::noise(i, size)
        };
        let rel = PathBuf::from(format!("d{}/sub{}/f{i}.bin", i % 3, i % 2));
        fs::create_dir_all(src.join(&rel).parent().unwrap()).unwrap();
        fs::write(src.join(&rel), &data).unwrap();
        files.insert(rel, data);
    }
    std::os::unix::fs::symlink("sub0/f0.bin", src.join("d0/link")).unwrap();
    files
}

/// Every path below `root`, relative, sorted: the walk a `find` does (readdir, lstat, readlink).
fn find(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(root.join(&rel))? {
            let r = rel.join(e?.file_name());
            let md = fs::symlink_metadata(root.join(&r))?;
            if md.is_dir() {
                stack.push(r.clone());
            } else if md.file_type().is_symlink() {
                fs::read_link(root.join(&r))?;
            }
            out.push(r);
        }
    }
    out.sort();
    Ok(out)
}

#[derive(Default)]
struct Counts {
    reads: AtomicU64,
    bytes: AtomicU64,
    /// Of which through O_DIRECT opens (served by clc itself).
    direct_reads: AtomicU64,
    direct_bytes: AtomicU64,
    walks: AtomicU64,
    errors: AtomicU64,
}

fn reader(mnt: &Path, files: &HashMap<PathBuf, Vec<u8>>, seed: u64, stop: &AtomicBool, c: &Counts) {
    let names: Vec<&PathBuf> = files.keys().collect();
    let mut x = seed | 1;
    let mut rnd = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n.max(1)
    };
    let mut buf = vec![0u8; 1 << 20];
    while !stop.load(Ordering::Relaxed) {
        let name = names[rnd(names.len() as u64) as usize];
        let want = &files[name];
        // Odd readers open with O_DIRECT, so their reads reach clc rather than the kernel's page cache.
        let mut o = fs::OpenOptions::new();
        o.read(true);
        if seed % 2 == 1 {
            o.custom_flags(libc::O_DIRECT);
        }
        let f = match o.open(mnt.join(name)) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("open {}: {e}", name.display());
                c.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        // A few ranges at random offsets, or the whole file in 128K reads.
        let whole = rnd(4) == 0;
        let mut off = if whole { 0 } else { rnd(want.len() as u64 + 1) };
        for _ in 0..if whole { usize::MAX } else { 4 } {
            let len = if whole {
                128 << 10
            } else {
                1 + rnd(buf.len() as u64) as usize
            };
            let n = match f.read_at(&mut buf[..len], off) {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("read {} at {off}: {e}", name.display());
                    c.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            };
            let expect = &want[(off as usize).min(want.len())..];
            let expect = &expect[..expect.len().min(len)];
            if buf[..n] != *expect {
                eprintln!("wrong bytes: {} at {off}, {n} bytes", name.display());
                c.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
            c.reads.fetch_add(1, Ordering::Relaxed);
            c.bytes.fetch_add(n as u64, Ordering::Relaxed);
            if seed % 2 == 1 {
                c.direct_reads.fetch_add(1, Ordering::Relaxed);
                c.direct_bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            if n == 0 {
                break;
            }
            off = if whole {
                off + n as u64
            } else {
                rnd(want.len() as u64 + 1)
            };
        }
    }
}

#[test]
fn sixteen_readers_and_a_walk_loop_read_every_byte_right_within_the_cache_budget() {
    if !common::fuse_ok() {
        return;
    }
    let secs: u64 = std::env::var("CLC_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let files = make_tree(&src);
    let total: usize = files.values().map(Vec::len).sum();
    let cfg = t.path().join("c.cfg");
    fs::write(
        &cfg,
        "FRAME_SIZE = 1M\nCHUNK_MIN_SIZE = 16K\nCHUNK_AVG_SIZE = 64K\nCHUNK_MAX_SIZE = 256K\n",
    )
    .unwrap();
    let out = t.path().join("arc");
    let st = Command::new(CLC)
        .arg("pack")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .args(["-q", "--cpu", "--config"])
        .arg(&cfg)
        .status()
        .unwrap();
    assert!(st.success());
    let expect_paths = find(&src).unwrap();
    let m = Mount::new(
        &t.path().join("arc.001"),
        &t.path().join("mnt"),
        &t.path().join("mount.log"),
    );
    let (stop, counts) = (AtomicBool::new(false), Counts::default());
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for i in 0..READERS {
            let (mnt, files, stop, counts) = (&m.dir, &files, &stop, &counts);
            s.spawn(move || reader(mnt, files, 0x1000 + i as u64, stop, counts));
        }
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                match find(&m.dir) {
                    Ok(p) if p == expect_paths => {}
                    Ok(p) => {
                        eprintln!("walk saw {} paths, not {}", p.len(), expect_paths.len());
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("walk: {e}");
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                counts.walks.fetch_add(1, Ordering::Relaxed);
            }
        });
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let hwm = m.peak_rss_kib();
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    eprintln!(
        "mount load: {elapsed:.1} s, {READERS} readers + walk loop over {} files ({:.1} MiB): {} reads, \
         {:.1} MiB checked (O_DIRECT: {} reads, {:.1} MiB), {} walks, {} errors; mount VmHWM {:.1} MiB (cache {CACHE_MIB} MiB + \
         {ALLOWANCE_MIB} MiB allowed)",
        files.len(),
        total as f64 / 1048576.0,
        c(&counts.reads),
        c(&counts.bytes) as f64 / 1048576.0,
        c(&counts.direct_reads),
        c(&counts.direct_bytes) as f64 / 1048576.0,
        c(&counts.walks),
        c(&counts.errors),
        hwm as f64 / 1024.0
    );
    assert_eq!(c(&counts.errors), 0);
    assert!(c(&counts.direct_reads) > 0 && c(&counts.walks) > 0);
    assert!(
        hwm <= (CACHE_MIB + ALLOWANCE_MIB) << 10,
        "mount peak RSS {hwm} KiB over {CACHE_MIB} MiB cache + {ALLOWANCE_MIB} MiB"
    );
}
