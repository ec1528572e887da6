//! The read path of the mount: (file, offset, len) → [`Archive::read_runs`] through the shared
//! [`FrameCache`], plus read-ahead for handles that read sequentially.
//!
//! Read-ahead: each open handle remembers where its last read ended. A read that starts near there
//! counts as sequential; the frames of the next `ahead` bytes are then decoded on the rayon pool
//! (`FrameCache::prefetch`, batched). The window is refilled when the reader has used half of it, so a
//! streaming reader finds its frames decoded, while random readers never trigger it.

use crate::archive::Archive;
use crate::cache::{FrameCache, FrameSource, Owed};
use crate::error::{Error, Result};
use crate::format::index::{EntryId, EntryKind, FrameId, ValidIndex};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A read that starts at most this far from where the previous one ended still counts as sequential
/// (the kernel issues read-ahead requests in parallel, so they arrive slightly out of order).
const SEQ_SLACK: u64 = 1 << 20;
/// How many entries after a file's the tree-walk prefetch looks at.
const FOLLOW_SCAN: u64 = 256;
/// Only files at least this large count against [`Reader::unread`]. Small files' frames hold many
/// files that pushes, read-ahead and `tar` read in an order of their own: giving those frames back cut
/// no page faults of a read-all of the Rust docs and cost it ~8 % on 16 cores (docs/BENCHMARKS.md 5.10).
const CONSUME_FROM: u64 = 8 << 20;
/// Most bytes of buffers of dropped frames the cache keeps for the next decodes (a quarter of its
/// budget when that is less).
const SPARE: u64 = 64 << 20;
/// Error lines remembered so that a retried read of a bad frame logs once.
const MAX_LOGGED: usize = 1024;

/// Sequential streams remembered per file. Without FUSE opens (see `mount::ClcFs::open`) every reader
/// of a file shares one [`OpenFile`]; readers at different places of it (fio jobs each over a part,
/// several processes) then each keep a stream of their own, so their read-ahead goes on.
const STREAMS: usize = 8;

/// One sequential reader: where its last read ended, and how far read-ahead was issued for it.
#[derive(Default)]
struct Stream {
    last_end: AtomicU64,
    ahead_to: AtomicU64,
}

/// The read state of one file: its tree and entry, and its sequential readers.
pub struct OpenFile {
    /// The tree the file belongs to (the archive's, or one snapshot's).
    pub index: ValidIndex,
    pub entry: EntryId,
    streams: Streams,
    /// The byte ranges of the file read so far (sorted, apart), up to [`READ_RANGES`] of them.
    read: Mutex<Vec<(u64, u64)>>,
}

/// Ranges a file remembers as read; a file read in more pieces than that counts no more reads.
const READ_RANGES: usize = 16;

impl OpenFile {
    pub fn new(index: ValidIndex, entry: EntryId) -> Self {
        OpenFile {
            index,
            entry,
            streams: Streams::default(),
            read: Mutex::new(Vec::new()),
        }
    }

    /// Records `start..end` as read; whether none of it was read before (then its bytes count
    /// against [`Reader::unread`]: a file read twice, by a push and by its reader, or after the
    /// kernel dropped its pages, counts once).
    fn first_read(&self, start: u64, end: u64) -> bool {
        let mut v = self.read.lock();
        let i = v.partition_point(|r| r.1 < start);
        let j = v.partition_point(|r| r.0 <= end);
        let new = v[i..j].iter().all(|r| r.1 <= start || r.0 >= end);
        if i == j {
            if v.len() >= READ_RANGES {
                return false;
            }
            v.insert(i, (start, end));
        } else {
            let merged = (v[i].0.min(start), v[j - 1].1.max(end));
            v.splice(i..j, [merged]);
        }
        new
    }
}

/// Up to [`STREAMS`] sequential readers of one file. The fields are hints (relaxed atomics): a race
/// costs a read-ahead issued twice or late, never wrong bytes.
struct Streams {
    all: [Stream; STREAMS],
    /// The slot a read that continues no stream takes over next (round robin).
    next: AtomicUsize,
}

impl Default for Streams {
    fn default() -> Self {
        Streams {
            all: Default::default(),
            next: AtomicUsize::new(1),
        }
    }
}

impl Streams {
    /// The stream that a read of `start..end` continues (its previous read ended within [`SEQ_SLACK`]
    /// of `start`; a file's first read at 0 continues the empty stream), now ending at `end`. `None`
    /// when it continues none: it then starts a stream in the next slot, round robin.
    fn continued(&self, start: u64, end: u64) -> Option<&Stream> {
        let near = |last: u64| start <= last.saturating_add(SEQ_SLACK) && last <= start + SEQ_SLACK;
        if let Some(s) = self
            .all
            .iter()
            .find(|s| near(s.last_end.load(Ordering::Relaxed)))
        {
            s.last_end.store(end, Ordering::Relaxed);
            return Some(s);
        }
        let s = &self.all[self.next.fetch_add(1, Ordering::Relaxed) % STREAMS];
        s.last_end.store(end, Ordering::Relaxed);
        s.ahead_to.store(end, Ordering::Relaxed);
        None
    }
}

/// Most bytes a gather buffer keeps between reads (see [`recycle`]): above the largest FUSE read the
/// kernel sends (256 pages unless `max_pages_limit` was raised).
const GATHER_KEEP: usize = 4 << 20;

thread_local! {
    /// The buffer a read that spans several frames or pieces is gathered in, kept per FUSE thread
    /// ([`recycle`]). A fresh one per read cost a page fault per 4 KiB written: in a read-all of
    /// four 100 MiB files (adaptive frames and chunk dedup put a file's bytes in several frames, so
    /// most 1 MiB reads span two), 43 % of the serving process's page faults (docs/BENCHMARKS.md 5.7).
    static GATHER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// This thread's gather buffer, empty, with room for `len` bytes.
fn gather_buffer(len: usize) -> Vec<u8> {
    let mut v = GATHER.take();
    v.clear();
    v.reserve(len);
    v
}

/// Gives the buffer of a gathered read back to this thread once its bytes are replied, so that the
/// next read that spans frames writes into pages already mapped.
pub fn recycle(b: Bytes) {
    // An empty `Owned` (a read of nothing) holds no buffer: it must not replace the kept one.
    if let Bytes::Owned(v) = b {
        if v.capacity() > 0 && v.capacity() <= GATHER_KEEP {
            GATHER.set(v);
        }
    }
}

/// The bytes of one read: a range of one decoded frame, shared with the cache, or bytes gathered from
/// several frames.
pub enum Bytes {
    Frame(Arc<Vec<u8>>, Range<usize>),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Frame(f, r) => &f[r.clone()],
            Bytes::Owned(v) => v,
        }
    }
}

pub struct Reader {
    archive: Arc<Archive>,
    cache: Arc<FrameCache<'static>>,
    /// Read-ahead window in bytes (0: off).
    ahead: u64,
    /// Prefetch the frames of the following files on a file's first read that misses
    /// (`CLC_MOUNT_FOLLOW=0` turns it off, for measuring).
    follow: bool,
    /// Per frame, the bytes that reading every large file ([`CONSUME_FROM`]) once would still take
    /// from it (a frame shared by several files, or by two versions of a file, counts each). A frame is given back to the
    /// cache when it reaches 0 ([`FrameCache::consumed`]): a read-all (`tar`, `cp -a`, `rsync`)
    /// then decodes into the buffers of the frames it is done with, not into fresh memory for the
    /// whole archive. A reader that reads a file twice only makes a frame be decoded again.
    unread: Owed,
    logged: Mutex<HashSet<String>>,
}

/// [`Reader::unread`]'s start: the bytes every file of at least [`CONSUME_FROM`] bytes (not hardlink:
/// it shows the same inode) takes from each frame.
fn frame_reads(ix: &ValidIndex) -> Owed {
    let mut t = vec![0i64; ix.frames().len()];
    for (j, e) in ix.entries().iter().enumerate() {
        if e.kind != EntryKind::File {
            continue;
        }
        let Some(c) = ix.content_of(EntryId(j as u64)) else {
            continue;
        };
        if ix.data_size(EntryId(j as u64)) < CONSUME_FROM {
            continue;
        }
        for p in ix.pieces(c, 0) {
            if let Some(x) = t.get_mut(p.frame.at()) {
                *x += i64::from(p.len);
            }
        }
    }
    Owed::new(t)
}

impl Reader {
    /// A reader with a cache of `budget` bytes and decode batches of `batch` frames. The read-ahead window
    /// is a quarter of the budget, at most 32 MiB and at least two frames. A batch holds its frames'
    /// stored and decoded bytes outside the budget, so it is cut to at most a quarter of the budget
    /// (at least one frame).
    pub fn new(
        archive: Arc<Archive>,
        budget: u64,
        batch: usize,
        decoder: Box<dyn crate::cache::BatchDecoder>,
    ) -> Reader {
        let frame = archive.index().max_frame_len();
        let off = |var: &str| std::env::var_os(var).is_some_and(|v| v == "0");
        // `CLC_MOUNT_AHEAD=0`: no decode-ahead, for measuring.
        let ahead = if off("CLC_MOUNT_AHEAD") {
            0
        } else {
            (budget / 4).min(32 << 20).max(2 * frame)
        };
        let batch = batch.min((budget / (4 * frame.max(1))).max(1) as usize);
        // `CLC_MOUNT_RECYCLE=0`: frames neither given back when read nor decoded into kept buffers.
        let recycle = !off("CLC_MOUNT_RECYCLE");
        let unread = if recycle {
            frame_reads(archive.index())
        } else {
            Owed::new(Vec::new())
        };
        let cache = FrameCache::shared(archive.clone(), budget)
            .with_batch_size(batch)
            .with_decoder(decoder);
        let cache = if recycle {
            cache.with_spare(SPARE.min(budget / 4))
        } else {
            cache
        };
        Reader {
            archive,
            cache: Arc::new(cache),
            ahead,
            follow: !off("CLC_MOUNT_FOLLOW"),
            unread,
            logged: Mutex::new(HashSet::new()),
        }
    }

    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// Reads up to `len` bytes of `f` at `offset`. A read within one frame (the usual case: frames are
    /// far larger than a FUSE request) is answered from the decoded frame without a copy. Errors are
    /// logged once (they name the file, the frame and the volume) and returned.
    pub fn read(&self, f: &OpenFile, offset: u64, len: u32) -> Result<Bytes> {
        let size = f.index.data_size(f.entry);
        // A first read of a file whose frame is not decoded yet: a reader walking the tree (tar, cp -r,
        // rsync, grep -r) goes on to the next files in path order, so their frames are decoded meanwhile.
        if offset == 0 && self.follow {
            let first = f.index.frames_in(f.entry, 0, 1);
            if first.iter().any(|&id| !self.cache.contains(id)) {
                self.prefetch_following(&f.index, f.entry, &first);
            }
        }
        self.archive
            .check_entry(f.entry)
            .inspect_err(|e| self.log_once(e))?;
        let mut out = Bytes::Owned(Vec::new());
        // The frames read and how many of their bytes.
        let mut runs: Vec<(FrameId, usize)> = Vec::new();
        let n = self
            .archive
            .runs_in(
                &f.index,
                f.entry,
                offset,
                len as usize,
                &*self.cache as &dyn FrameSource,
                |id, frame, r| {
                    runs.push((id, r.len()));
                    match &mut out {
                        Bytes::Owned(v) if v.is_empty() => out = Bytes::Frame(frame.clone(), r),
                        Bytes::Owned(v) => v.extend_from_slice(&frame[r]),
                        Bytes::Frame(first, fr) => {
                            let mut v = gather_buffer(len as usize);
                            v.extend_from_slice(&first[fr.clone()]);
                            v.extend_from_slice(&frame[r]);
                            out = Bytes::Owned(v);
                        }
                    }
                },
            )
            .inspect_err(|e| self.log_once(e))?;
        self.read_ahead(f, offset, offset + n as u64, size);
        if n == 0
            || size < CONSUME_FROM
            || self.unread.is_empty()
            || !f.first_read(offset, offset + n as u64)
        {
            return Ok(out);
        }
        self.unread.read(&self.cache, &runs);
        Ok(out)
    }

    /// Decodes on the pool the frames of the files after `e` in path order (not yet cached, not in
    /// `skip`), up to half the read-ahead window, looking at most [`FOLLOW_SCAN`] entries ahead.
    fn prefetch_following(&self, ix: &ValidIndex, e: EntryId, skip: &[FrameId]) {
        let end = (e.0 + 1 + FOLLOW_SCAN).min(ix.entries().len() as u64);
        let mut ids: Vec<FrameId> = Vec::new();
        let mut bytes = 0u64;
        'scan: for j in e.0 + 1..end {
            let id = EntryId(j);
            for fr in ix.frames_in(id, 0, ix.data_size(id)) {
                if bytes >= self.ahead / 2 {
                    break 'scan;
                }
                if skip.contains(&fr) || ids.contains(&fr) || self.cache.contains(fr) {
                    continue;
                }
                bytes += ix.frame(fr).map_or(0, |m| u64::from(m.raw_len));
                ids.push(fr);
            }
        }
        if !ids.is_empty() {
            let cache = self.cache.clone();
            rayon::spawn(move || cache.prefetch(&ids));
        }
    }

    /// Issues read-ahead for the stream the read of `start..end` continues, if any; whether it
    /// continued one (the read is sequential).
    fn read_ahead(&self, f: &OpenFile, start: u64, end: u64, size: u64) -> bool {
        let Some(s) = f.streams.continued(start, end) else {
            return false;
        };
        if self.ahead == 0 || end >= size {
            return true;
        }
        if s.ahead_to.load(Ordering::Relaxed) >= (end + self.ahead / 2).min(size) {
            return true;
        }
        let to = (end + self.ahead).min(size);
        let prev = s.ahead_to.fetch_max(to, Ordering::Relaxed);
        if prev >= to {
            return true; // another read of this stream issued it
        }
        let ids = f.index.frames_in(f.entry, prev.max(end), to);
        let ids: Vec<FrameId> = ids
            .into_iter()
            .filter(|&id| !self.cache.contains(id))
            .collect();
        if !ids.is_empty() {
            let cache = self.cache.clone();
            rayon::spawn(move || cache.prefetch(&ids));
        }
        true
    }

    fn log_once(&self, e: &Error) {
        let line = e.to_string();
        let mut seen = self.logged.lock();
        if seen.len() < MAX_LOGGED && seen.insert(line.clone()) {
            crate::diag::log(&format!("read error: {line}"));
        }
    }

    /// Bytes of decoded frames held now.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1 << 20;

    /// A read gathered from several frames writes into the buffer the previous one used (no fresh
    /// pages per read); a read of nothing keeps it, and one above [`GATHER_KEEP`] is not kept.
    #[test]
    fn gathered_reads_reuse_their_buffer() {
        let mut v = gather_buffer(M as usize);
        v.extend_from_slice(&[7u8; 1000]);
        let at = v.as_ptr();
        recycle(Bytes::Owned(v));
        let w = gather_buffer(4096);
        assert!(w.is_empty());
        assert_eq!(w.as_ptr(), at, "the kept buffer is handed out again");
        recycle(Bytes::Owned(w));
        recycle(Bytes::Owned(Vec::new()));
        recycle(Bytes::Frame(Arc::new(vec![1, 2, 3]), 0..2));
        let w = gather_buffer(10);
        assert_eq!(w.as_ptr(), at, "a read of nothing or of one frame keeps it");
        recycle(Bytes::Owned(Vec::with_capacity(GATHER_KEEP + 1)));
        assert!(
            gather_buffer(10).capacity() < GATHER_KEEP,
            "a huge buffer is not kept"
        );
        drop(w);
    }

    /// Eight readers each streaming through its own eighth of one file, their reads interleaved, all
    /// keep read-ahead; random reads are never sequential, and after they took two slots the readers
    /// stream again within one round.
    #[test]
    fn interleaved_readers_each_keep_a_stream() {
        let s = Streams::default();
        let part = 64 * M;
        // First reads: reader 0 continues the empty stream at 0, the others start streams.
        for j in 0..8u64 {
            let at = j * part;
            assert_eq!(s.continued(at, at + M).is_some(), j == 0, "reader {j}");
        }
        for step in 1..10u64 {
            for j in 0..8u64 {
                let at = j * part + step * M;
                assert!(s.continued(at, at + M).is_some(), "reader {j} step {step}");
            }
        }
        assert!(s.continued(1000 * M, 1001 * M).is_none());
        assert!(s.continued(500 * M, 501 * M).is_none());
        // Two slots were taken over: the readers who lost theirs take others over in turn, and after
        // one round every reader has a stream again.
        for j in 0..8u64 {
            let at = j * part + 10 * M;
            s.continued(at, at + M);
        }
        for j in 0..8u64 {
            let at = j * part + 11 * M;
            assert!(
                s.continued(at, at + M).is_some(),
                "reader {j} after the disturbance"
            );
        }
    }

    /// Bytes of a file count once against the frames' unread bytes: a range read again (wholly or in
    /// part) counts nothing; touching ranges merge; past [`READ_RANGES`] apart nothing new counts.
    #[test]
    fn each_byte_of_a_file_counts_once() {
        let ix = crate::format::index::Index::default()
            .validate("empty", 0)
            .expect("an empty index is valid");
        let f = OpenFile::new(ix, EntryId(0));
        assert!(f.first_read(0, 100));
        assert!(f.first_read(100, 200), "touching");
        assert!(!f.first_read(50, 150), "read before");
        assert!(!f.first_read(150, 250), "partly read before");
        assert!(f.first_read(300, 400));
        assert!(f.first_read(250, 300), "the gap between two ranges");
        assert_eq!(*f.read.lock(), vec![(0, 400)]);
        for k in 1..READ_RANGES as u64 {
            assert!(f.first_read(1000 * k, 1000 * k + 10), "range {k}");
        }
        assert!(!f.first_read(1_000_000, 1_000_010), "past the ranges kept");
        assert!(
            f.first_read(1010, 1020),
            "growing a kept range still counts"
        );
    }
}
