//! The read path of the mount: (file, offset, len) → [`Archive::read_at`] through the shared
//! [`FrameCache`], plus read-ahead for handles that read sequentially.
//!
//! Read-ahead: each open handle remembers where its last read ended. A read that starts near there
//! counts as sequential; the frames of the next `ahead` bytes are then decoded on the rayon pool
//! (`FrameCache::prefetch`, batched). The window is refilled when the reader has used half of it, so a
//! streaming reader finds its frames decoded, while random readers never trigger it.

use crate::archive::Archive;
use crate::cache::{FrameCache, FrameSource};
use crate::error::{Error, Result};
use crate::format::index::{EntryId, FrameId, ValidIndex};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A read that starts at most this far from where the previous one ended still counts as sequential
/// (the kernel issues read-ahead requests in parallel, so they arrive slightly out of order).
const SEQ_SLACK: u64 = 1 << 20;
/// Error lines remembered so that a retried read of a bad frame logs once.
const MAX_LOGGED: usize = 1024;

/// The state of one open file.
pub struct OpenFile {
    /// The tree the file belongs to (the archive's, or one snapshot's).
    pub index: ValidIndex,
    pub entry: EntryId,
    /// Where the last read ended.
    last_end: AtomicU64,
    /// Read-ahead was issued up to this file offset.
    ahead_to: AtomicU64,
}

impl OpenFile {
    pub fn new(index: ValidIndex, entry: EntryId) -> Self {
        OpenFile {
            index,
            entry,
            last_end: AtomicU64::new(0),
            ahead_to: AtomicU64::new(0),
        }
    }
}

pub struct Reader {
    archive: Arc<Archive>,
    cache: Arc<FrameCache<'static>>,
    /// Read-ahead window in bytes (0: off).
    ahead: u64,
    logged: Mutex<HashSet<String>>,
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
        let ahead = (budget / 4).min(32 << 20).max(2 * frame);
        let batch = batch.min((budget / (4 * frame.max(1))).max(1) as usize);
        let cache = FrameCache::shared(archive.clone(), budget)
            .with_batch_size(batch)
            .with_decoder(decoder);
        Reader {
            archive,
            cache: Arc::new(cache),
            ahead,
            logged: Mutex::new(HashSet::new()),
        }
    }

    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// Reads up to `len` bytes of `f` at `offset`. Errors are logged once (they name the file, the frame
    /// and the volume) and returned.
    pub fn read(&self, f: &OpenFile, offset: u64, len: u32) -> Result<Vec<u8>> {
        let size = f.index.data_size(f.entry);
        let want = (len as u64).min(size.saturating_sub(offset)) as usize;
        let mut buf = vec![0u8; want];
        self.archive
            .check_entry(f.entry)
            .inspect_err(|e| self.log_once(e))?;
        let n = self
            .archive
            .read_in(
                &f.index,
                f.entry,
                offset,
                &mut buf,
                &*self.cache as &dyn FrameSource,
            )
            .inspect_err(|e| self.log_once(e))?;
        buf.truncate(n);
        self.read_ahead(f, offset, offset + n as u64, size);
        Ok(buf)
    }

    fn read_ahead(&self, f: &OpenFile, start: u64, end: u64, size: u64) {
        let last = f.last_end.swap(end, Ordering::Relaxed);
        let sequential = start <= last.saturating_add(SEQ_SLACK) && last <= start + SEQ_SLACK;
        if !sequential || self.ahead == 0 || end >= size {
            return;
        }
        if f.ahead_to.load(Ordering::Relaxed) >= (end + self.ahead / 2).min(size) {
            return;
        }
        let to = (end + self.ahead).min(size);
        let prev = f.ahead_to.fetch_max(to, Ordering::Relaxed);
        if prev >= to {
            return; // another read of this handle issued it
        }
        let ids = f.index.frames_in(f.entry, prev.max(end), to);
        let ids: Vec<FrameId> = ids
            .into_iter()
            .filter(|&id| !self.cache.contains(id))
            .collect();
        if ids.is_empty() {
            return;
        }
        let cache = self.cache.clone();
        rayon::spawn(move || cache.prefetch(&ids));
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
