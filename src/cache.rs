//! A byte-budget LRU cache of decoded frames, shared by threads.
//!
//! * Single flight: two readers that miss on the same frame wait for one decode.
//! * Batched decode: misses that wait at the same time are gathered into batches of up to
//!   `DECOMPRESSOR_BATCH_SIZE` frames and handed to one [`BatchDecoder`] call (the CPU decoder spreads a
//!   batch over the rayon pool; a GPU decoder would make it one launch). The first waiting reader drains
//!   the queue ("flat combining"); the others find their frame done when they wake.
//! * [`FrameCache::prefetch`] decodes frames ahead in batches, skipping those cached or in flight.
//!
//! The cache either borrows the archive ([`FrameCache::new`], used by extract) or owns a share of it
//! ([`FrameCache::shared`], used by the long-lived mount).

use crate::archive::{Archive, FrameSource};
use crate::error::{Error, Result};
use crate::format::index::FrameId;
use parking_lot::{Condvar, Mutex};
use rayon::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Decodes batches of frames. The hook where a GPU `decompress_batch` plugs in.
pub trait BatchDecoder: Send + Sync {
    /// Decodes `batch[i] = (frame, its stored bytes)`; returns one result per frame, in order. Every `Ok`
    /// must have passed [`Archive::check_decoded`] (length and checksum): callers trust the bytes.
    fn decode_batch(&self, ar: &Archive, batch: &[(FrameId, Vec<u8>)]) -> Vec<Result<Vec<u8>>>;
}

/// The CPU decoder: the frames of a batch decode in parallel on the rayon pool.
pub struct CpuDecoder;

impl<T: BatchDecoder + ?Sized> BatchDecoder for &T {
    fn decode_batch(&self, ar: &Archive, batch: &[(FrameId, Vec<u8>)]) -> Vec<Result<Vec<u8>>> {
        (**self).decode_batch(ar, batch)
    }
}

impl BatchDecoder for CpuDecoder {
    fn decode_batch(&self, ar: &Archive, batch: &[(FrameId, Vec<u8>)]) -> Vec<Result<Vec<u8>>> {
        batch
            .par_iter()
            .map(|(id, stored)| {
                let n = ar.index.frames[id.0 as usize].raw_len as u64;
                crate::trace::timed(crate::trace::Stage::Decode, n, || {
                    ar.decode_stored(*id, stored)
                })
            })
            .collect()
    }
}

/// Adapts a codec-level batch function to [`BatchDecoder`]: the shape of the GPU's
/// `decompress_batch(&[(&[u8], usize)]) -> Result<Vec<Result<Vec<u8>>>>` (stored bytes and raw length in,
/// one result per frame out). Frames of `codec` go to `decode` in one call; other frames, and all of them
/// when the call fails as a whole or answers the wrong number of results, decode on the CPU. Every
/// result is checked against the index, so a decoder that returns wrong bytes yields an error, never data.
pub struct CodecBatch<F> {
    pub codec: crate::codec::Codec,
    pub decode: F,
}

impl<F> BatchDecoder for CodecBatch<F>
where
    F: Fn(&[(&[u8], usize)]) -> Result<Vec<Result<Vec<u8>>>> + Send + Sync,
{
    fn decode_batch(&self, ar: &Archive, batch: &[(FrameId, Vec<u8>)]) -> Vec<Result<Vec<u8>>> {
        let mut out: Vec<Option<Result<Vec<u8>>>> = batch.iter().map(|_| None).collect();
        let mine: Vec<usize> = (0..batch.len())
            .filter(|&i| ar.codec_of(batch[i].0) == self.codec)
            .collect();
        if !mine.is_empty() {
            let input: Vec<(&[u8], usize)> = mine
                .iter()
                .map(|&i| {
                    let id = batch[i].0;
                    (
                        &batch[i].1[..],
                        ar.index.frames[id.0 as usize].raw_len as usize,
                    )
                })
                .collect();
            if let Ok(res) = (self.decode)(&input).map(|r| (r.len() == mine.len()).then_some(r)) {
                for (&i, r) in mine.iter().zip(res.into_iter().flatten()) {
                    let id = batch[i].0;
                    // A result that fails its check is redone on the CPU below (and counted there).
                    out[i] = r.ok().filter(|d| ar.check_decoded(id, d).is_ok()).map(Ok);
                }
            }
        }
        out.into_par_iter()
            .zip(batch.par_iter())
            .map(|(r, (id, stored))| r.unwrap_or_else(|| ar.decode_stored(*id, stored)))
            .collect()
    }
}

/// Result shared with every reader waiting on a frame.
type Shared = std::result::Result<Arc<Vec<u8>>, String>;
type Slot = Arc<(Mutex<Option<Shared>>, Condvar)>;

enum ArchiveRef<'a> {
    Borrowed(&'a Archive),
    Owned(Arc<Archive>),
}

impl std::ops::Deref for ArchiveRef<'_> {
    type Target = Archive;
    fn deref(&self) -> &Archive {
        match self {
            ArchiveRef::Borrowed(a) => a,
            ArchiveRef::Owned(a) => a,
        }
    }
}

pub struct FrameCache<'a> {
    archive: ArchiveRef<'a>,
    decoder: Box<dyn BatchDecoder + 'a>,
    batch_size: usize,
    budget: u64,
    inner: Mutex<Inner>,
    inflight: Mutex<HashMap<u32, Slot>>,
    /// Misses claimed by a reader and not yet taken into a batch.
    pending: Mutex<VecDeque<FrameId>>,
}

struct Inner {
    lru: lru::LruCache<u32, Arc<Vec<u8>>>,
    bytes: u64,
}

/// Default frames per decode batch (the shipped DECOMPRESSOR_BATCH_SIZE).
const DEFAULT_BATCH: usize = 16;

impl<'a> FrameCache<'a> {
    /// A cache of at most `budget` decoded bytes (at least one frame) over a borrowed archive.
    pub fn new(archive: &'a Archive, budget: u64) -> Self {
        Self::with(ArchiveRef::Borrowed(archive), budget)
    }

    fn with(archive: ArchiveRef<'a>, budget: u64) -> Self {
        FrameCache {
            archive,
            decoder: Box::new(CpuDecoder),
            batch_size: DEFAULT_BATCH,
            budget,
            inner: Mutex::new(Inner {
                lru: lru::LruCache::unbounded(),
                bytes: 0,
            }),
            inflight: Mutex::new(HashMap::new()),
            pending: Mutex::new(VecDeque::new()),
        }
    }

    /// Frames per decoder call (DECOMPRESSOR_BATCH_SIZE), at least 1.
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Replaces the CPU decoder (e.g. with a GPU batch decoder).
    pub fn with_decoder(mut self, d: Box<dyn BatchDecoder + 'a>) -> Self {
        self.decoder = d;
        self
    }

    /// The archive the frames come from.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    fn lookup(&self, id: FrameId) -> Option<Arc<Vec<u8>>> {
        self.inner.lock().lru.get(&id.0).cloned()
    }

    fn insert(&self, id: FrameId, data: Arc<Vec<u8>>) {
        let mut g = self.inner.lock();
        let len = data.len() as u64;
        if let Some(old) = g.lru.put(id.0, data) {
            g.bytes -= old.len() as u64;
        }
        g.bytes += len;
        while g.bytes > self.budget && g.lru.len() > 1 {
            match g.lru.pop_lru() {
                Some((_, old)) => g.bytes -= old.len() as u64,
                None => break,
            }
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }

    /// Whether frame `id` is decoded and held now.
    pub fn contains(&self, id: FrameId) -> bool {
        self.inner.lock().lru.contains(&id.0)
    }

    /// Decodes every frame of `ids` that is neither cached nor being decoded, in batches.
    pub fn prefetch(&self, ids: &[FrameId]) {
        for part in ids.chunks(self.batch_size) {
            let mine: Vec<FrameId> = part
                .iter()
                .copied()
                .filter(|&id| !self.contains(id) && matches!(self.claim(id), Claim::Leader(_)))
                .collect();
            if !mine.is_empty() {
                self.run_batch(&mine);
            }
        }
    }

    /// Takes the slot of `id`: the leader decodes (or queues) it, followers wait on it.
    fn claim(&self, id: FrameId) -> Claim {
        let mut m = self.inflight.lock();
        if let Some(s) = m.get(&id.0) {
            return Claim::Follower(s.clone());
        }
        // A leader may have finished between the caller's lookup and now.
        if let Some(d) = self.lookup(id) {
            return Claim::Done(d);
        }
        let s: Slot = Arc::new((Mutex::new(None), Condvar::new()));
        m.insert(id.0, s.clone());
        Claim::Leader(s)
    }

    /// Reads and decodes `ids` (all claimed by the caller) with one decoder call, then wakes their waiters.
    fn run_batch(&self, ids: &[FrameId]) {
        let ar: &Archive = &self.archive;
        let stored: Vec<Result<Vec<u8>>> = ids
            .par_iter()
            .map(|&id| {
                crate::trace::timed(crate::trace::Stage::ReadFrames, 0, || ar.read_stored(id))
            })
            .collect();
        let mut todo = Vec::with_capacity(ids.len());
        let mut results: Vec<Option<Result<Vec<u8>>>> = Vec::with_capacity(ids.len());
        for (&id, s) in ids.iter().zip(stored) {
            match s {
                Ok(bytes) => {
                    todo.push((id, bytes));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let mut decoded = if todo.is_empty() {
            Vec::new()
        } else {
            self.decoder.decode_batch(ar, &todo)
        }
        .into_iter();
        for (&id, r) in ids.iter().zip(results) {
            let r = r.or_else(|| decoded.next()).unwrap_or_else(|| {
                Err(Error::Other(format!(
                    "frame {}: the decoder returned too few results",
                    id.0
                )))
            });
            self.complete(id, r);
        }
    }

    fn complete(&self, id: FrameId, r: Result<Vec<u8>>) {
        let shared = match r {
            Ok(d) => {
                let d = Arc::new(d);
                self.insert(id, d.clone());
                Ok(d)
            }
            Err(e) => Err(e.to_string()),
        };
        if let Some(slot) = self.inflight.lock().remove(&id.0) {
            *slot.0.lock() = Some(shared);
            slot.1.notify_all();
        }
    }

    /// Decodes queued misses, a batch at a time, until `slot` is filled or the queue is empty.
    fn drain_until_done(&self, slot: &Slot) {
        while slot.0.lock().is_none() {
            let batch: Vec<FrameId> = {
                let mut q = self.pending.lock();
                let n = q.len().min(self.batch_size);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                return;
            }
            self.run_batch(&batch);
        }
    }
}

enum Claim {
    Leader(Slot),
    Follower(Slot),
    Done(Arc<Vec<u8>>),
}

fn wait(slot: &Slot) -> Result<Arc<Vec<u8>>> {
    let mut g = slot.0.lock();
    while g.is_none() {
        slot.1.wait(&mut g);
    }
    g.as_ref()
        .expect("filled before notify")
        .clone()
        .map_err(Error::Other)
}

impl FrameCache<'static> {
    /// A cache over a shared archive, for holders that outlive any borrow (the FUSE mount).
    pub fn shared(archive: Arc<Archive>, budget: u64) -> Self {
        Self::with(ArchiveRef::Owned(archive), budget)
    }
}

impl FrameSource for FrameCache<'_> {
    fn frame(&self, id: FrameId) -> Result<Arc<Vec<u8>>> {
        if let Some(d) = self.lookup(id) {
            return Ok(d);
        }
        let slot = match self.claim(id) {
            Claim::Done(d) => return Ok(d),
            Claim::Follower(s) => s,
            Claim::Leader(s) => {
                self.pending.lock().push_back(id);
                self.drain_until_done(&s);
                s
            }
        };
        wait(&slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts decoder calls and frames, then decodes on the CPU.
    struct Counting(Arc<(AtomicUsize, AtomicUsize)>);

    impl BatchDecoder for Counting {
        fn decode_batch(&self, ar: &Archive, b: &[(FrameId, Vec<u8>)]) -> Vec<Result<Vec<u8>>> {
            self.0 .0.fetch_add(1, Ordering::Relaxed);
            self.0 .1.fetch_add(b.len(), Ordering::Relaxed);
            CpuDecoder.decode_batch(ar, b)
        }
    }

    fn archive(dir: &std::path::Path) -> Archive {
        let src = dir.join("src");
        std::fs::create_dir(&src).unwrap();
        let mut x = 1u64;
        let data: Vec<u8> = (0..600_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 7) as u8
            })
            .collect();
        std::fs::write(src.join("f"), &data).unwrap();
        let mut cfg = crate::Config::default();
        for (k, v) in [
            ("FRAME_SIZE", "64K"),
            ("CHUNK_MIN_SIZE", "4K"),
            ("CHUNK_AVG_SIZE", "16K"),
            ("CHUNK_MAX_SIZE", "64K"),
        ] {
            cfg.set(k, v).unwrap();
        }
        cfg.set("FORCE_CPU_MODE", "true").unwrap();
        let opts = crate::pack::PackOptions {
            src,
            out: dir.join("a"),
            force: false,
            progress: false,
        };
        crate::pack::pack(&cfg, &opts, None, &crate::warn::Warnings::new(true)).unwrap();
        Archive::open(&dir.join("a.001")).unwrap()
    }

    #[test]
    fn concurrent_misses_decode_once_and_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let ar = archive(dir.path());
        let n = ar.index.frames.len();
        assert!(n > 4, "{n} frames");
        let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let cache = FrameCache::new(&ar, 1 << 30)
            .with_batch_size(4)
            .with_decoder(Box::new(Counting(counts.clone())));
        std::thread::scope(|s| {
            for t in 0..8 {
                let cache = &cache;
                let ar = &ar;
                s.spawn(move || {
                    for i in 0..n {
                        let id = FrameId(((i + t) % n) as u32);
                        let got = cache.frame(id).unwrap();
                        assert_eq!(*got, ar.read_frame(id).unwrap());
                    }
                });
            }
        });
        let total: u64 = ar.index.frames.iter().map(|f| f.raw_len as u64).sum();
        assert_eq!(cache.bytes(), total);
        // Every frame decoded exactly once, never more than 4 to a call.
        let (calls, frames) = (
            counts.0.load(Ordering::Relaxed),
            counts.1.load(Ordering::Relaxed),
        );
        assert_eq!(frames, n);
        assert!(calls * 4 >= n, "{calls} calls for {n} frames");
    }

    #[test]
    fn codec_batch_checks_what_an_external_decoder_returns() {
        let dir = tempfile::tempdir().unwrap();
        let ar = archive(dir.path());
        let codec = ar.codec_of(FrameId(0));
        let ids: Vec<FrameId> = (0..ar.index.frames.len() as u32).map(FrameId).collect();
        let calls = AtomicUsize::new(0);
        // An honest external decoder, then one that corrupts the second frame of each call: its result
        // fails the checksum and the frame is decoded again on the CPU.
        for lie in [false, true] {
            let dec = CodecBatch {
                codec,
                decode: |b: &[(&[u8], usize)]| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    Ok(b.iter()
                        .enumerate()
                        .map(|(k, (s, n))| {
                            let mut d = crate::codec::decode(codec, s, *n)?;
                            if lie && k == 1 {
                                d[0] ^= 1;
                            }
                            Ok(d)
                        })
                        .collect())
                },
            };
            let batch: Vec<(FrameId, Vec<u8>)> = ids[..3]
                .iter()
                .map(|&id| (id, ar.read_stored(id).unwrap()))
                .collect();
            let got = dec.decode_batch(&ar, &batch);
            for (k, r) in got.into_iter().enumerate() {
                // A result that fails its check is never returned: it is redone on the CPU.
                assert_eq!(r.unwrap(), ar.read_frame(ids[k]).unwrap(), "frame {k}");
            }
            if !lie {
                let cache = FrameCache::new(&ar, 1 << 30)
                    .with_batch_size(3)
                    .with_decoder(Box::new(dec));
                cache.prefetch(&ids);
                for &id in &ids {
                    assert_eq!(*cache.frame(id).unwrap(), ar.read_frame(id).unwrap());
                }
            }
        }
        assert!(
            calls.load(Ordering::Relaxed) >= 3,
            "the external decoder was used"
        );
    }

    #[test]
    fn prefetch_fills_and_budget_holds() {
        let dir = tempfile::tempdir().unwrap();
        let ar = archive(dir.path());
        let ids: Vec<FrameId> = (0..ar.index.frames.len() as u32).map(FrameId).collect();
        let cache = FrameCache::new(&ar, 200_000).with_batch_size(3);
        cache.prefetch(&ids);
        assert!(cache.bytes() <= 200_000);
        let last = *ids.last().unwrap();
        assert!(cache.contains(last));
        assert_eq!(
            *cache.frame(ids[0]).unwrap(),
            ar.read_frame(ids[0]).unwrap()
        );
    }
}
