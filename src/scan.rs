//! Parallel, deterministic walk of the source tree: `NUM_SCAN_WORKERS` threads read directories and stat
//! their children; the result is sorted by path bytes, so the archive does not depend on thread timing.

use crate::diag::escape_path;
use crate::diag::Warnings;
use crate::error::{Error, Result};
use crate::format::index::EntryKind;
use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One entry found by the walk.
#[derive(Clone, Debug)]
pub struct ScanEntry {
    /// Relative path bytes, '/'-separated.
    pub path: Vec<u8>,
    /// Absolute (or source-relative) path to open.
    pub abs: PathBuf,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    /// Change time (the files cache of an append compares it, with the inode number).
    pub ctime_sec: i64,
    pub ctime_nsec: u32,
    pub size: u64,
    pub rdev: u64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub target: Vec<u8>,
    pub xattrs: Xattrs,
}

/// A scanned file to read: its path and the identity (device, inode) the scan saw there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
}

impl Source {
    /// The source at `path` as it is now (tests, and files added by hand).
    pub fn of(path: &Path) -> std::io::Result<Source> {
        let m = fs::symlink_metadata(path)?;
        Ok(Source {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    /// Opens the file for reading its bytes, only if it is still the one scanned: never through a
    /// symlink (`O_NOFOLLOW`), never blocking (`O_NONBLOCK`: a FIFO swapped in), and the opened file must
    /// be a regular file with the scanned device and inode. A file replaced after the scan (by a
    /// symlink to a 0600 secret, which was stored under the old name with mode 0644) is not read.
    pub fn open(&self) -> std::io::Result<fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.path)?;
        let m = f.metadata()?;
        if !m.is_file() || m.dev() != self.dev || m.ino() != self.ino {
            return Err(std::io::Error::other("replaced since the scan"));
        }
        Ok(f)
    }
}

impl ScanEntry {
    /// What to open to read this entry's bytes.
    pub fn source(&self) -> Source {
        Source {
            path: self.abs.clone(),
            dev: self.dev,
            ino: self.ino,
        }
    }
}

/// Walks `root` with `workers` threads. Entries that cannot be read are warned about and left out.
pub fn scan(root: &Path, workers: usize, warn: &Warnings) -> Result<Vec<ScanEntry>> {
    scan_with(root, workers, true, warn)
}

/// Extended attributes: (name, value) pairs.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// [`scan`], reading extended attributes only when `xattrs` is set: an append reads them afterwards,
/// only for entries its files cache does not know ([`read_xattrs`]).
pub fn scan_with(
    root: &Path,
    workers: usize,
    xattrs: bool,
    warn: &Warnings,
) -> Result<Vec<ScanEntry>> {
    let meta = fs::metadata(root).map_err(|e| Error::io(root, e))?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!(
            "{}: not a directory",
            escape_path(root)
        )));
    }
    fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    let out = Mutex::new(Vec::new());
    // Directories to read; `None` tells a worker that every directory is read.
    let (tx, rx) = unbounded::<Option<(PathBuf, Vec<u8>)>>();
    let pending = AtomicUsize::new(1);
    tx.send(Some((root.to_path_buf(), Vec::new()))).ok();
    let workers = workers.max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (tx, rx) = (tx.clone(), rx.clone());
            let (out, pending) = (&out, &pending);
            s.spawn(move || worker(&tx, &rx, (pending, workers), out, xattrs, warn));
        }
    });
    drop(tx);
    let mut v = out.into_inner();
    // Sorting the paths is a tenth of an unchanged append's CPU time: both cores.
    use rayon::slice::ParallelSliceMut;
    v.par_sort_unstable_by(|a: &ScanEntry, b| a.path.cmp(&b.path));
    Ok(v)
}

/// Reads directories from `rx` until told that all are read. `pending` counts the directories queued or
/// being read; the worker that finishes the last one tells every worker (`workers` of them) to stop, so
/// that none waits on a timer (a 5 ms poll made every scan end up to 5-10 ms after its last directory).
fn worker(
    tx: &Sender<Option<(PathBuf, Vec<u8>)>>,
    rx: &Receiver<Option<(PathBuf, Vec<u8>)>>,
    (pending, workers): (&AtomicUsize, usize),
    out: &Mutex<Vec<ScanEntry>>,
    xattrs: bool,
    warn: &Warnings,
) {
    while let Ok(Some((dir, rel))) = rx.recv() {
        let mut found = Vec::new();
        match fs::read_dir(&dir) {
            Ok(rd) => {
                for de in rd {
                    let de = match de {
                        Ok(d) => d,
                        Err(e) => {
                            warn.warn(format!("{}: {e}", escape_path(&dir)));
                            continue;
                        }
                    };
                    let name = de.file_name();
                    let mut path = rel.clone();
                    if !path.is_empty() {
                        path.push(b'/');
                    }
                    path.extend_from_slice(name.as_bytes());
                    match stat_entry(&de, path, xattrs, warn) {
                        Ok(e) => {
                            if e.kind == EntryKind::Dir {
                                pending.fetch_add(1, Ordering::SeqCst);
                                tx.send(Some((e.abs.clone(), e.path.clone()))).ok();
                            }
                            found.push(e);
                        }
                        Err(msg) => warn.warn(msg),
                    }
                }
            }
            Err(e) => warn.warn(format!("{}: {e} (directory left empty)", escape_path(&dir))),
        }
        out.lock().extend(found);
        if pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            for _ in 0..workers {
                tx.send(None).ok();
            }
        }
    }
}

fn stat_entry(
    de: &fs::DirEntry,
    path: Vec<u8>,
    xattrs: bool,
    warn: &Warnings,
) -> std::result::Result<ScanEntry, String> {
    let abs = de.path();
    // Relative to the open directory (fstatat), without following a symlink, as lstat would.
    let m = de
        .metadata()
        .map_err(|e| format!("{}: {e} (left out)", escape_path(&abs)))?;
    let ft = m.file_type();
    let kind = if ft.is_file() {
        EntryKind::File
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_char_device() {
        EntryKind::CharDev
    } else if ft.is_block_device() {
        EntryKind::BlockDev
    } else if ft.is_socket() {
        EntryKind::Socket
    } else {
        return Err(format!(
            "{}: unknown file type (left out)",
            escape_path(&abs)
        ));
    };
    let target = if kind == EntryKind::Symlink {
        fs::read_link(&abs)
            .map_err(|e| format!("{}: {e} (left out)", escape_path(&abs)))?
            .as_os_str()
            .as_bytes()
            .to_vec()
    } else {
        Vec::new()
    };
    let xattrs = if xattrs {
        read_xattrs(&abs, warn)
    } else {
        Vec::new()
    };
    Ok(ScanEntry {
        size: match kind {
            EntryKind::File => m.len(),
            EntryKind::Symlink => target.len() as u64,
            _ => 0,
        },
        path,
        abs,
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime_sec: m.mtime(),
        mtime_nsec: m.mtime_nsec().clamp(0, 999_999_999) as u32,
        ctime_sec: m.ctime(),
        ctime_nsec: m.ctime_nsec().clamp(0, 999_999_999) as u32,
        rdev: m.rdev(),
        dev: m.dev(),
        ino: m.ino(),
        nlink: m.nlink(),
        target,
        xattrs,
    })
}

/// The extended attributes of `abs` (not following a symlink); a failure is warned about.
pub fn read_xattrs(abs: &Path, warn: &Warnings) -> Vec<(Vec<u8>, Vec<u8>)> {
    crate::sys::xattrs(abs).unwrap_or_else(|e| {
        warn.warn(format!(
            "{}: extended attributes not read: {e}",
            escape_path(abs)
        ));
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_is_sorted_and_complete() {
        let d = tempfile::tempdir().unwrap();
        for p in ["b/c/d", "a", "b/e"] {
            fs::create_dir_all(d.path().join(p)).unwrap();
        }
        fs::write(d.path().join("b/c/d/f"), b"x").unwrap();
        std::os::unix::fs::symlink("f", d.path().join("b/l")).unwrap();
        let w = Warnings::new(true);
        let v = scan(d.path(), 3, &w).unwrap();
        let paths: Vec<_> = v
            .iter()
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .collect();
        assert_eq!(paths, ["a", "b", "b/c", "b/c/d", "b/c/d/f", "b/e", "b/l"]);
        assert_eq!(v[6].kind, EntryKind::Symlink);
        assert_eq!(v[6].target, b"f");
        assert_eq!(w.count(), 0);
    }

    /// Every worker stops once the last directory is read, whatever the number of workers against the
    /// number of directories (an empty root, a chain, a wide level), and nothing is lost: a scan that
    /// does not end within 30 s fails the test instead of hanging it.
    #[test]
    fn every_worker_stops_after_the_last_directory() {
        let empty = tempfile::tempdir().unwrap();
        let deep = tempfile::tempdir().unwrap();
        fs::create_dir_all(deep.path().join("a/b/c/d/e/f/g/h")).unwrap();
        let wide = tempfile::tempdir().unwrap();
        for i in 0..150 {
            fs::create_dir_all(wide.path().join(format!("d{i}/s"))).unwrap();
            fs::write(wide.path().join(format!("d{i}/s/f")), b"x").unwrap();
        }
        for (root, n) in [(empty.path(), 0), (deep.path(), 8), (wide.path(), 450)] {
            for workers in [1, 2, 7, 32] {
                let root = root.to_path_buf();
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let _ = tx.send(scan(&root, workers, &Warnings::new(true)).map(|v| v.len()));
                });
                let got = rx
                    .recv_timeout(std::time::Duration::from_secs(30))
                    .expect("the scan ended");
                assert_eq!(got.unwrap(), n, "{workers} workers");
            }
        }
    }
}
