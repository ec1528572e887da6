//! Pushing what a tree walker reads next into the kernel's page cache (FUSE_NOTIFY_STORE), so that
//! reading it sends no request.
//!
//! `tar`, `cp -r`, `rsync` and `grep -r` read a directory's files one after the other, each with a READ
//! round trip that the walker waits for. When a file is first read (from a paged tree, or from an
//! archive opened whole with one tree, as a bucket archive is), the files that follow it in its
//! directory (small ones: [`EACH`], up to [`FILES`] and [`BYTES`]) are read through the frame cache by
//! one thread of their own and stored into the kernel's page cache; the walker then finds
//! their pages there (files are opened with `FOPEN_KEEP_CACHE`, see `mount::ClcFs::open`). A file whose
//! inode the kernel does not hold yet (listed without attributes) is skipped by the kernel; a file read
//! before its push lands is read as usual. The bytes pushed are the ones a READ would answer (checked
//! frames), so nothing can differ. The pushes run on their own thread, never on a FUSE request thread:
//! a store waits for the pages it fills, which a READ in flight may hold until a request thread answers
//! it.

use super::inodes::Ino;
use super::reader::{recycle, OpenFile, Reader};
use crate::format::index::EntryKind;
use fuser::{INodeNo, Notifier};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};

/// Most files pushed after one first read.
pub const FILES: usize = 64;
/// Most bytes pushed after one first read.
pub const BYTES: u64 = 4 << 20;
/// Largest file pushed (a larger one is read with requests and the mount's read-ahead).
pub const EACH: u64 = 1 << 20;
/// Jobs waiting for the push thread; a job that finds the queue full is dropped.
const QUEUE: usize = 8;
/// Inodes remembered as pushed (the set is emptied when full).
const REMEMBERED: usize = 1 << 16;

/// The limits of one push: the largest file, the most files, the most bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub each: u64,
    pub files: usize,
    pub bytes: u64,
}

impl Limits {
    /// [`EACH`], [`FILES`] and [`BYTES`], unless `CLC_MOUNT_PUSH_LIMITS=EACH,FILES,BYTES` (three
    /// numbers, for measuring; anything else keeps the defaults) says otherwise.
    pub fn from_env(v: Option<&std::ffi::OsStr>) -> Limits {
        let given = v.and_then(|v| v.to_str()).and_then(|v| {
            let n: Vec<u64> = v
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            match n[..] {
                [each, files, bytes] => Some(Limits {
                    each,
                    files: usize::try_from(files).ok()?,
                    bytes,
                }),
                _ => None,
            }
        });
        given.unwrap_or(Limits {
            each: EACH,
            files: FILES,
            bytes: BYTES,
        })
    }
}

/// Of the names after a first read's file in its directory ((inode, kind, size), in name order), the
/// files to push: regular files of 1 to `lim.each` bytes, up to `lim.files` of them and until
/// `lim.bytes` are reached. No name is taken past that point (a paged tree reads its records as they
/// are taken).
pub fn pick(
    mut after: impl Iterator<Item = (Ino, EntryKind, u64)>,
    lim: &Limits,
) -> Vec<(Ino, u64)> {
    let (mut out, mut total) = (Vec::new(), 0u64);
    while out.len() < lim.files && total < lim.bytes {
        let Some((ino, kind, size)) = after.next() else {
            break;
        };
        if kind == EntryKind::File && (1..=lim.each).contains(&size) {
            total += size;
            out.push((ino, size));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_limits_from_the_environment() {
        let d = Limits::from_env(None);
        assert_eq!((d.each, d.files, d.bytes), (EACH, FILES, BYTES));
        let l = Limits::from_env(Some("4194304,256,16777216".as_ref()));
        assert_eq!((l.each, l.files, l.bytes), (4 << 20, 256, 16 << 20));
        for bad in ["1,2", "a,b,c", "1,2,3,4", ""] {
            assert_eq!(Limits::from_env(Some(bad.as_ref())), d, "{bad}");
        }
        // The limits cut the pick: files above `each` are skipped, `files` and `bytes` stop it.
        let names = |n: u64, size: u64| (1..=n).map(move |i| (Ino(i), EntryKind::File, size));
        let small = Limits {
            each: 10,
            files: 3,
            bytes: 100,
        };
        assert_eq!(pick(names(5, 11), &small), vec![]);
        assert_eq!(pick(names(5, 10), &small).len(), 3);
        let few_bytes = Limits {
            each: 10,
            files: 9,
            bytes: 25,
        };
        assert_eq!(pick(names(9, 10), &few_bytes).len(), 3);
    }
}

/// The files to push after one first read.
pub struct Job {
    pub reader: Arc<Reader>,
    pub files: Vec<(Ino, Arc<OpenFile>, u64)>,
}

/// The push thread and what it has been given.
#[derive(Default)]
pub struct Push {
    /// The session's notifier, set once the session exists (`mount::serve`).
    pub notifier: Arc<OnceLock<Notifier>>,
    tx: OnceLock<Option<SyncSender<Job>>>,
    /// Inodes queued for a push (each is pushed once).
    queued: Mutex<HashSet<u64>>,
    /// Files and bytes stored into the kernel's page cache (for `CLC_TRACE`).
    files: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl Push {
    /// Of `files` (inode, size), those not queued before, now marked queued.
    pub fn claim(&self, files: Vec<(Ino, u64)>) -> Vec<(Ino, u64)> {
        let mut q = self.queued.lock();
        if q.len() + files.len() > REMEMBERED {
            q.clear();
        }
        files.into_iter().filter(|(i, _)| q.insert(i.0)).collect()
    }

    /// Queues `job` for the push thread (started on the first job); drops it when the queue is full or
    /// there is no notifier yet.
    pub fn send(&self, job: Job) {
        let tx = self.tx.get_or_init(|| {
            let notifier = self.notifier.get()?.clone();
            let (tx, rx) = sync_channel::<Job>(QUEUE);
            let (files, bytes) = (self.files.clone(), self.bytes.clone());
            std::thread::Builder::new()
                .name("clc-push".into())
                .spawn(move || {
                    for job in rx {
                        for (ino, f, size) in &job.files {
                            let Ok(b) = job.reader.read(f, 0, *size as u32) else {
                                continue;
                            };
                            if b.len() as u64 == *size
                                && notifier.store(INodeNo(ino.0), 0, &b).is_ok()
                            {
                                files.fetch_add(1, Ordering::Relaxed);
                                bytes.fetch_add(*size, Ordering::Relaxed);
                            }
                            recycle(b);
                        }
                    }
                })
                .ok()?;
            Some(tx)
        });
        if let Some(tx) = tx {
            let _ = tx.try_send(job);
        }
    }

    /// What the trace reports at unmount.
    pub fn summary(&self) -> String {
        format!(
            "pushed into the page cache: {} files, {} bytes",
            self.files.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed)
        )
    }
}
