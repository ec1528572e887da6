//! A byte-budget cache of decoded frames, shared by threads.
//!
//! * Eviction that a loop does not defeat: new frames enter a probation queue (a quarter of the budget,
//!   first in first out); what leaves it moves to the protected part while that has room, else is
//!   dropped and remembered (a *ghost*: its id and last use). The protected part drops its least
//!   recently used frame only for a ghost that comes back having been used more recently than that
//!   frame. So a walk over more frames than the budget (`tar` over the two halves of a tree whose data
//!   stream interleaves them: every frame used twice, the second time after the budget's worth of other
//!   frames) keeps three quarters of the budget for the second use, where LRU would drop every frame just
//!   before it; a one-time scan passes through probation without touching the protected frames; and a
//!   new working set replaces the old one after one extra decode of each of its frames.
//!
//! * Single flight: two readers that miss on the same frame wait for one decode.
//! * Batched decode: misses that wait at the same time are gathered into batches of up to
//!   `DECOMPRESSOR_BATCH_SIZE` frames and handed to one [`BatchDecoder`] call (the CPU decoder spreads a
//!   batch over the rayon pool; a GPU decoder would make it one launch). The first waiting reader drains
//!   the queue ("flat combining"); the others find their frame done when they wake.
//! * [`FrameCache::prefetch`] decodes frames ahead in batches, skipping those cached or in flight.
//!
//! The cache knows frames, not archives: it reads them from a [`FrameStore`] (the archive reader
//! implements it), either borrowed ([`FrameCache::new`], used by extract) or shared
//! ([`FrameCache::shared`], used by the long-lived mount). A [`BatchDecoder`] (the CPU's here, the GPU's
//! in `gpu`) decodes frames from their metadata and stored bytes alone.

use crate::codec;
use crate::diag::trace::{self, Stage};
use crate::error::{Error, Result};
use crate::format::index::{Frame, Span};
use crate::ids::FrameId;
use parking_lot::{Condvar, Mutex, RwLock};
use rayon::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Where frames come from: their metadata and stored bytes (the archive reader implements it).
pub trait FrameStore: Send + Sync {
    /// The frame table's entry for frame `id`; `None` when there is no such frame.
    fn meta(&self, id: FrameId) -> Option<&Frame>;
    /// The stored (encoded) bytes of frame `id`; errors name the frame, its volume and offset.
    fn read_stored(&self, id: FrameId) -> Result<Vec<u8>>;
    /// The stored bytes of every frame of `ids`, in order, each as [`read_stored`](Self::read_stored)
    /// returns it; several are read at once (the archive reader sends a bucket archive's as parallel
    /// ranged `GET`s, more than the pool's threads).
    fn read_stored_batch(&self, ids: &[FrameId]) -> Vec<Result<Vec<u8>>> {
        ids.par_iter()
            .map(|&id| trace::timed(Stage::ReadFrames, 0, || self.read_stored(id)))
            .collect()
    }
    /// [`read_stored_batch`](Self::read_stored_batch), reading into `bufs` (one per frame, in order;
    /// buffers that held other bytes) where the store can, to spare the page faults of fresh buffers.
    fn read_stored_batch_reusing(
        &self,
        ids: &[FrameId],
        bufs: Vec<Vec<u8>>,
    ) -> Vec<Result<Vec<u8>>> {
        drop(bufs);
        self.read_stored_batch(ids)
    }
    /// `cause` (why frame `id` did not decode or check) with the frame's volume and offset.
    fn frame_error(&self, id: FrameId, cause: Error) -> Error;
    /// Frame `id`'s dictionary (FORMAT.md 2.3) as byte ranges of earlier decoded frames, if it has one:
    /// such a frame is decoded after those frames, on the CPU, never in a batch.
    fn dict(&self, _id: FrameId) -> Option<Vec<Span>> {
        None
    }
}

/// Decoded, checked frames by id: a cache, or a plain decode.
pub trait FrameSource {
    fn frame(&self, id: FrameId) -> Result<Arc<Vec<u8>>>;
}

/// A frame to decode: its id, its entry of the frame table and its stored bytes.
pub struct StoredFrame {
    pub id: FrameId,
    pub meta: Frame,
    pub bytes: Vec<u8>,
}

/// Decodes one frame on the CPU and checks the result against its length and checksum.
pub fn decode(f: &StoredFrame) -> Result<Vec<u8>> {
    decode_on(f, false)
}

/// [`decode`]; `parallel`: the frame's own parts on several threads too ([`codec::decode_parallel`]).
fn decode_on(f: &StoredFrame, parallel: bool) -> Result<Vec<u8>> {
    decode_reusing(f, parallel, Vec::new())
}

/// [`decode`] into `out`'s memory (see [`decode_reusing`]).
pub fn decode_into(f: &StoredFrame, out: Vec<u8>) -> Result<Vec<u8>> {
    decode_reusing(f, false, out)
}

/// [`decode_on`] into `out`'s memory (a buffer that held other bytes, all replaced): the same bytes,
/// checked the same way, without the page faults of a fresh buffer.
fn decode_reusing(f: &StoredFrame, parallel: bool, out: Vec<u8>) -> Result<Vec<u8>> {
    let (c, n) = (f.meta.codec, f.meta.raw_len as usize);
    let data = if out.capacity() == 0 {
        if parallel {
            codec::decode_parallel(c, &f.bytes, n)?
        } else {
            codec::decode(c, &f.bytes, n)?
        }
    } else {
        codec::decode_reusing(c, &f.bytes, n, out, parallel)?
    };
    f.meta.check(&data)?;
    Ok(data)
}

/// The bytes of a dictionary: its spans, cut from the decoded frames `frame` gives.
pub fn dict_bytes(
    spans: &[Span],
    frame: &mut dyn FnMut(FrameId) -> Result<Arc<Vec<u8>>>,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(spans.iter().map(|s| s.len as usize).sum());
    let mut have: Option<(FrameId, Arc<Vec<u8>>)> = None;
    for s in spans {
        let data = match &have {
            Some((f, d)) if *f == s.frame => d.clone(),
            _ => {
                let d = frame(s.frame)?;
                have = Some((s.frame, d.clone()));
                d
            }
        };
        let (a, b) = (s.at as usize, s.at as usize + s.len as usize);
        out.extend_from_slice(
            data.get(a..b)
                .ok_or(Error::Check("dictionary outside its frame"))?,
        );
    }
    Ok(out)
}

/// Decodes a frame with a dictionary (its bytes) on the CPU and checks the result.
pub fn decode_with_dict(f: &StoredFrame, dict: &[u8]) -> Result<Vec<u8>> {
    let data = codec::decode_with_dict(f.meta.codec, dict, &f.bytes, f.meta.raw_len as usize)?;
    f.meta.check(&data)?;
    Ok(data)
}

/// [`decode`], its time and decoded bytes counted in the trace's `Decode` stage.
pub fn decode_traced(f: &StoredFrame) -> Result<Vec<u8>> {
    trace::timed(Stage::Decode, u64::from(f.meta.raw_len), || decode(f))
}

/// Decodes batches of frames. The hook where a GPU `decompress_batch` plugs in.
pub trait BatchDecoder: Send + Sync {
    /// Decodes each frame of `batch`; returns one result per frame, in order. Every `Ok` must have
    /// passed [`Frame::check`] (length and checksum): callers trust the bytes. An `Err` is the cause
    /// alone; the cache adds the frame's volume and offset.
    fn decode_batch(&self, batch: &[StoredFrame]) -> Vec<Result<Vec<u8>>>;
    /// [`decode_batch`](Self::decode_batch), writing into `outs` where it can (one buffer per frame, in
    /// order, or fewer: buffers of dropped frames, their bytes to be replaced), so that decoding spares
    /// the page faults of fresh buffers. The results are checked as `decode_batch`'s are.
    fn decode_batch_reusing(
        &self,
        batch: &[StoredFrame],
        outs: Vec<Vec<u8>>,
    ) -> Vec<Result<Vec<u8>>> {
        drop(outs);
        self.decode_batch(batch)
    }
}

/// The CPU decoder: the frames of a batch decode in parallel on the rayon pool; a batch of fewer frames
/// than the pool has threads also decodes each frame's parts in parallel (LZ_EXT3E's sub-blocks).
pub struct CpuDecoder;

impl<T: BatchDecoder + ?Sized> BatchDecoder for &T {
    fn decode_batch(&self, batch: &[StoredFrame]) -> Vec<Result<Vec<u8>>> {
        (**self).decode_batch(batch)
    }
    fn decode_batch_reusing(
        &self,
        batch: &[StoredFrame],
        outs: Vec<Vec<u8>>,
    ) -> Vec<Result<Vec<u8>>> {
        (**self).decode_batch_reusing(batch, outs)
    }
}

impl BatchDecoder for CpuDecoder {
    fn decode_batch(&self, batch: &[StoredFrame]) -> Vec<Result<Vec<u8>>> {
        self.decode_batch_reusing(batch, Vec::new())
    }

    fn decode_batch_reusing(
        &self,
        batch: &[StoredFrame],
        mut outs: Vec<Vec<u8>>,
    ) -> Vec<Result<Vec<u8>>> {
        let parallel = batch.len() < rayon::current_num_threads();
        outs.resize_with(batch.len(), Vec::new);
        batch
            .par_iter()
            .zip(outs)
            .map(|(f, out)| {
                trace::timed(Stage::Decode, u64::from(f.meta.raw_len), || {
                    decode_reusing(f, parallel, out)
                })
            })
            .collect()
    }
}

/// Adapts a codec-level batch function to [`BatchDecoder`]: the shape of the GPU's
/// `decompress_batch(&[(&[u8], usize)]) -> Result<Vec<Result<Vec<u8>>>>` (stored bytes and raw length in,
/// one result per frame out). Frames of `codec` go to `decode` in one call; other frames, and all of them
/// when the call fails as a whole or answers the wrong number of results, decode on the CPU. Every
/// result is checked against its frame's metadata, so a decoder that returns wrong bytes yields an
/// error, never data.
pub struct CodecBatch<F> {
    pub codec: codec::Codec,
    pub decode: F,
}

impl<F> BatchDecoder for CodecBatch<F>
where
    F: Fn(&[(&[u8], usize)]) -> Result<Vec<Result<Vec<u8>>>> + Send + Sync,
{
    fn decode_batch(&self, batch: &[StoredFrame]) -> Vec<Result<Vec<u8>>> {
        let mut out: Vec<Option<Result<Vec<u8>>>> = batch.iter().map(|_| None).collect();
        let mine: Vec<usize> = (0..batch.len())
            .filter(|&i| batch[i].meta.codec == self.codec)
            .collect();
        if !mine.is_empty() {
            let input: Vec<(&[u8], usize)> = mine
                .iter()
                .map(|&i| (&batch[i].bytes[..], batch[i].meta.raw_len as usize))
                .collect();
            if let Ok(res) = (self.decode)(&input).map(|r| (r.len() == mine.len()).then_some(r)) {
                for (&i, r) in mine.iter().zip(res.into_iter().flatten()) {
                    // A result that fails its check is redone on the CPU below (and counted there).
                    out[i] = r.ok().filter(|d| batch[i].meta.check(d).is_ok()).map(Ok);
                }
            }
        }
        out.into_par_iter()
            .zip(batch.par_iter())
            .map(|(r, f)| r.unwrap_or_else(|| decode(f)))
            .collect()
    }
}

/// Result shared with every reader waiting on a frame.
type Shared = Result<Arc<Vec<u8>>>;
type Slot = Arc<(Mutex<Option<Shared>>, Condvar)>;

enum StoreRef<'a> {
    Borrowed(&'a dyn FrameStore),
    Owned(Arc<dyn FrameStore>),
}

impl<'a> std::ops::Deref for StoreRef<'a> {
    type Target = dyn FrameStore + 'a;
    fn deref(&self) -> &(dyn FrameStore + 'a) {
        match self {
            StoreRef::Borrowed(a) => *a,
            StoreRef::Owned(a) => &**a,
        }
    }
}

/// Buffers of frames the cache dropped and of stored bytes already decoded, handed to the next frames
/// read and decoded ([`FrameCache::with_spare`]). A frame's first touch of fresh memory costs a page
/// fault per 4 KiB (~2 µs: as much as decoding the page, docs/BENCHMARKS.md 11.9); these buffers' pages
/// are mapped already. A dropped frame may still be held by a reader (a reply in flight): its buffer is
/// handed out only once nobody else holds it.
struct Spare {
    bufs: Mutex<VecDeque<Arc<Vec<u8>>>>,
    /// Most bytes (capacities) kept; the oldest buffers are freed past it.
    most: u64,
}

impl Spare {
    /// Keeps `b`, freeing the oldest buffers past the bound.
    fn give(&self, b: Arc<Vec<u8>>) {
        if b.capacity() == 0 {
            return;
        }
        let mut q = self.bufs.lock();
        q.push_back(b);
        let mut total: u64 = q.iter().map(|b| b.capacity() as u64).sum();
        while total > self.most {
            match q.pop_front() {
                Some(old) => total -= old.capacity() as u64,
                None => break,
            }
        }
    }

    /// A buffer for `len` bytes: the smallest kept one that nobody else holds with room for them;
    /// else the largest such one, grown to `len` rounded up to a power of two (a mapped buffer grows in
    /// place or is remapped: its pages stay and only the new ones are fresh; pages past a frame's
    /// length are not touched until a longer frame uses them); else an empty one.
    fn take(&self, len: usize) -> Vec<u8> {
        let class = len.max(1).next_power_of_two();
        let mut q = self.bufs.lock();
        let free = |b: &Arc<Vec<u8>>| Arc::strong_count(b) == 1 && Arc::weak_count(b) == 0;
        let fit = q
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len && free(b))
            .min_by_key(|(_, b)| b.capacity())
            .or_else(|| {
                q.iter()
                    .enumerate()
                    .filter(|(_, b)| free(b))
                    .max_by_key(|(_, b)| b.capacity())
            })
            .map(|(i, _)| i);
        let got = fit
            .and_then(|i| q.remove(i))
            .and_then(|b| Arc::try_unwrap(b).ok());
        drop(q);
        match got {
            Some(b) if b.capacity() >= len => b,
            Some(mut b) => {
                b.clear();
                b.reserve_exact(class);
                b
            }
            // The reader or decoder makes it (mapped zero pages rather than pages written twice).
            None => Vec::new(),
        }
    }
}

/// Per frame, the bytes its readers still owe it (the mount's large files, an extract's planned
/// files): [`Owed::read`] subtracts what was read and gives a frame back to the cache
/// ([`FrameCache::consumed`]) when its count reaches 0, so that the next frames are decoded into its
/// buffer ([`FrameCache::with_spare`]) rather than into fresh memory.
pub struct Owed(Vec<AtomicI64>);

impl Owed {
    /// `bytes[f]`: what frame `f` will be read for in all (empty: nothing is counted).
    pub fn new(bytes: Vec<i64>) -> Self {
        Owed(bytes.into_iter().map(AtomicI64::new).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What frame `f` is still owed (0 for a frame not counted).
    pub fn left(&self, f: FrameId) -> i64 {
        self.0.get(f.at()).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Subtracts `runs` (frame, bytes read from it); a frame whose count reaches 0 goes back to `cache`.
    pub fn read(&self, cache: &FrameCache, runs: &[(FrameId, usize)]) {
        for &(id, n) in runs {
            if let Some(left) = self.0.get(id.at()) {
                let n = n as i64;
                let was = left.fetch_sub(n, Ordering::Relaxed);
                if was > 0 && was <= n {
                    cache.consumed(id);
                }
            }
        }
    }
}

pub struct FrameCache<'a> {
    store: StoreRef<'a>,
    decoder: Box<dyn BatchDecoder + 'a>,
    batch_size: usize,
    budget: u64,
    /// `CLC_CACHE_LRU=1`: plain LRU eviction instead (for measuring the eviction against it).
    lru: bool,
    held: RwLock<Held>,
    /// Ticks of the recency clock: each hit stamps its frame with the next tick.
    clock: AtomicU64,
    inflight: Mutex<HashMap<FrameId, Slot>>,
    /// Misses claimed by a reader and not yet taken into a batch.
    pending: Mutex<VecDeque<FrameId>>,
    /// Buffers to read and decode the next frames into (`None`: every frame into fresh memory).
    spare: Option<Spare>,
}

/// The frames held, each with the tick of its last use. Hits take the lock shared (many readers hit at
/// once and only bump an atomic stamp); inserts take it exclusively and, when over budget, evict in one
/// pass (see the module's comment for which frames), down to 15/16 of the budget, so that the pass (a
/// sort of the frames) runs once per budget/16 bytes inserted rather than once per insert.
struct Held {
    frames: HashMap<FrameId, Kept>,
    bytes: u64,
    /// Bytes of the protected frames (the rest are on probation).
    protected: u64,
    /// Frames dropped from probation: their last use, and the order they were dropped in (the oldest
    /// ghosts are forgotten past [`MAX_GHOSTS`]).
    ghosts: HashMap<FrameId, u64>,
    ghost_order: VecDeque<FrameId>,
    /// Frames dropped as consumed ([`FrameCache::consumed`]): one decoded again after that is
    /// held as any other frame, never dropped that way again (emptied past [`MAX_GHOSTS`]).
    consumed: std::collections::HashSet<FrameId>,
    /// Frames dropped by the last insert or release, for [`Spare`].
    dropped: Vec<Arc<Vec<u8>>>,
}

struct Kept {
    data: Arc<Vec<u8>>,
    /// Tick of the last use.
    used: AtomicU64,
    /// Tick of the insert (probation is first in, first out).
    inserted: u64,
    protected: bool,
    /// Decoded again after being dropped as consumed: held as any other frame from now on.
    again: bool,
}

/// Ghosts remembered, at most (16 bytes and a queue slot each).
const MAX_GHOSTS: usize = 1 << 14;

/// Default frames per decode batch (the shipped DECOMPRESSOR_BATCH_SIZE).
const DEFAULT_BATCH: usize = 16;

impl<'a> FrameCache<'a> {
    /// A cache of at most `budget` decoded bytes (at least one frame) over a borrowed store.
    pub fn new(store: &'a dyn FrameStore, budget: u64) -> Self {
        Self::with(StoreRef::Borrowed(store), budget)
    }

    fn with(store: StoreRef<'a>, budget: u64) -> Self {
        FrameCache {
            store,
            decoder: Box::new(CpuDecoder),
            batch_size: DEFAULT_BATCH,
            budget,
            lru: std::env::var_os("CLC_CACHE_LRU").is_some_and(|v| v == "1"),
            held: RwLock::new(Held {
                frames: HashMap::new(),
                bytes: 0,
                protected: 0,
                ghosts: HashMap::new(),
                ghost_order: VecDeque::new(),
                consumed: Default::default(),
                dropped: Vec::new(),
            }),
            clock: AtomicU64::new(0),
            inflight: Mutex::new(HashMap::new()),
            pending: Mutex::new(VecDeque::new()),
            spare: None,
        }
    }

    /// Reads and decodes frames into the buffers of frames dropped before (and of stored bytes
    /// decoded), keeping at most `bytes` of them; see [`Spare`].
    pub fn with_spare(mut self, bytes: u64) -> Self {
        self.spare = Some(Spare {
            bufs: Mutex::new(VecDeque::new()),
            most: bytes,
        });
        self
    }

    /// A buffer for `len` bytes from the spares (empty when there is none).
    fn spare_for(&self, len: usize) -> Vec<u8> {
        self.spare.as_ref().map(|s| s.take(len)).unwrap_or_default()
    }

    /// Hands the frames the last insert or release dropped to the spares (or frees them).
    fn keep_dropped(&self, g: &mut Held) {
        let dropped = std::mem::take(&mut g.dropped);
        if let Some(s) = &self.spare {
            for d in dropped {
                s.give(d);
            }
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

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    fn lookup(&self, id: FrameId) -> Option<Arc<Vec<u8>>> {
        let g = self.held.read();
        let k = g.frames.get(&id)?;
        k.used.store(self.tick(), Ordering::Relaxed);
        Some(k.data.clone())
    }

    fn insert(&self, id: FrameId, data: Arc<Vec<u8>>) {
        let mut g = self.held.write();
        let len = data.len() as u64;
        let now = self.tick();
        if let Some(old) = g.frames.remove(&id) {
            g.bytes -= old.data.len() as u64;
            if old.protected {
                g.protected -= old.data.len() as u64;
            }
        }
        // A ghost used more recently than the protected part's least recently used frame comes back
        // protected (the pass below then drops that frame); anything else starts on probation.
        let protected = !self.lru
            && g.ghosts.remove(&id).is_some_and(|last| {
                g.frames
                    .values()
                    .filter(|k| k.protected)
                    .map(|k| k.used.load(Ordering::Relaxed))
                    .min()
                    .is_some_and(|oldest| last > oldest)
            });
        let again = g.consumed.remove(&id);
        g.frames.insert(
            id,
            Kept {
                data,
                used: AtomicU64::new(now),
                inserted: now,
                protected,
                again,
            },
        );
        g.bytes += len;
        if protected {
            g.protected += len;
        }
        if g.bytes > self.budget && g.frames.len() > 1 {
            let to = self.budget - self.budget / 16;
            if self.lru {
                Self::evict_lru(&mut g, id, to);
            } else {
                Self::evict(&mut g, id, self.budget, to);
            }
        }
        self.keep_dropped(&mut g);
    }

    /// Says that frame `id` will not be needed again (its reader has read every byte that every file
    /// takes from it). A frame on probation (decoded once, not reused) is dropped now and its buffer
    /// kept for the next frames ([`with_spare`](Self::with_spare)): a read-all then decodes into a few
    /// buffers instead of fresh memory for every frame of the archive. A frame needed again after all
    /// (a file read twice) is decoded again and from then on held as any other.
    pub fn consumed(&self, id: FrameId) {
        let mut g = self.held.write();
        let Some(k) = g.frames.get(&id) else {
            return;
        };
        if k.protected || k.again {
            return;
        }
        let len = k.data.len() as u64;
        Self::drop_frame(&mut g, id, len, false);
        if g.consumed.len() >= MAX_GHOSTS {
            g.consumed.clear();
        }
        g.consumed.insert(id);
        self.keep_dropped(&mut g);
    }

    /// Brings the bytes held down to `to` (never dropping `keep`, the frame just inserted): the
    /// protected part back to 3/4 of `budget` by least recent use, then probation's oldest frames, each
    /// moved to the protected part while it has room, else dropped as a ghost; then, if still over,
    /// the protected part's least recently used frames.
    fn evict(g: &mut Held, keep: FrameId, budget: u64, to: u64) {
        let room = budget - budget / 4;
        let mut probation: Vec<(u64, FrameId, u64)> = Vec::new();
        let mut protected: Vec<(u64, FrameId, u64)> = Vec::new();
        for (&id, k) in g.frames.iter().filter(|(&id, _)| id != keep) {
            let len = k.data.len() as u64;
            if k.protected {
                protected.push((k.used.load(Ordering::Relaxed), id, len));
            } else {
                probation.push((k.inserted, id, len));
            }
        }
        protected.sort_unstable();
        probation.sort_unstable();
        let mut protected = protected.into_iter().peekable();
        while g.protected > room && g.bytes > to {
            let Some((_, id, len)) = protected.next() else {
                break;
            };
            Self::drop_frame(g, id, len, true);
        }
        for (_, id, len) in probation {
            if g.bytes <= to {
                return;
            }
            if g.protected + len <= room {
                if let Some(k) = g.frames.get_mut(&id) {
                    k.protected = true;
                    g.protected += len;
                }
            } else {
                Self::drop_frame(g, id, len, false);
            }
        }
        for (_, id, len) in protected {
            if g.bytes <= to {
                break;
            }
            if g.frames.get(&id).is_some_and(|k| k.protected) {
                Self::drop_frame(g, id, len, true);
            }
        }
    }

    /// `CLC_CACHE_LRU=1`: drops the least recently used frames (never `keep`) until at most `to` bytes
    /// are held.
    fn evict_lru(g: &mut Held, keep: FrameId, to: u64) {
        let mut order: Vec<(u64, FrameId, u64, bool)> = g
            .frames
            .iter()
            .filter(|(&id, _)| id != keep)
            .map(|(&id, k)| {
                (
                    k.used.load(Ordering::Relaxed),
                    id,
                    k.data.len() as u64,
                    k.protected,
                )
            })
            .collect();
        order.sort_unstable();
        for (_, id, len, protected) in order {
            if g.bytes <= to {
                break;
            }
            Self::drop_frame(g, id, len, protected);
        }
    }

    /// Drops frame `id` (`len` bytes); a frame dropped from probation is remembered as a ghost.
    fn drop_frame(g: &mut Held, id: FrameId, len: u64, protected: bool) {
        let Some(k) = g.frames.remove(&id) else {
            return;
        };
        g.dropped.push(k.data.clone());
        g.bytes -= len;
        if protected {
            g.protected -= len;
        } else {
            if g.ghosts
                .insert(id, k.used.load(Ordering::Relaxed))
                .is_none()
            {
                g.ghost_order.push_back(id);
            }
            while g.ghost_order.len() > MAX_GHOSTS {
                if let Some(old) = g.ghost_order.pop_front() {
                    g.ghosts.remove(&old);
                }
            }
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.held.read().bytes
    }

    /// Whether frame `id` is decoded and held now.
    pub fn contains(&self, id: FrameId) -> bool {
        self.held.read().frames.contains_key(&id)
    }

    /// Decodes every frame of `ids` that is neither cached nor being decoded, in batches (frames with a
    /// dictionary one by one, after their dictionaries).
    pub fn prefetch(&self, ids: &[FrameId]) {
        let (with_dict, ids): (Vec<FrameId>, Vec<FrameId>) =
            ids.iter().partition(|&&id| self.store.dict(id).is_some());
        for id in with_dict {
            let _ = self.frame(id);
        }
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
        if let Some(s) = m.get(&id) {
            return Claim::Follower(s.clone());
        }
        // A leader may have finished between the caller's lookup and now.
        if let Some(d) = self.lookup(id) {
            return Claim::Done(d);
        }
        let s: Slot = Arc::new((Mutex::new(None), Condvar::new()));
        m.insert(id, s.clone());
        Claim::Leader(s)
    }

    /// Reads and decodes `ids` (all claimed by the caller) with one decoder call, then wakes their waiters.
    fn run_batch(&self, ids: &[FrameId]) {
        let store: &dyn FrameStore = &*self.store;
        let stored: Vec<Result<Vec<u8>>> = if self.spare.is_some() {
            let bufs = ids
                .iter()
                .map(|&id| self.spare_for(store.meta(id).map_or(0, |m| m.stored_len as usize)))
                .collect();
            store.read_stored_batch_reusing(ids, bufs)
        } else {
            store.read_stored_batch(ids)
        };
        let mut todo = Vec::with_capacity(ids.len());
        let mut results: Vec<Option<Result<Vec<u8>>>> = Vec::with_capacity(ids.len());
        for (&id, s) in ids.iter().zip(stored) {
            match s.and_then(|bytes| {
                let meta = *store.meta(id).ok_or(Error::NoFrame(id))?;
                Ok(StoredFrame { id, meta, bytes })
            }) {
                // A RAW frame's stored bytes are its bytes: checked and kept as they are, no decoder
                // call and no copy.
                Ok(f) if f.meta.codec == codec::Codec::Raw => results.push(Some(
                    f.meta
                        .check(&f.bytes)
                        .map(|()| f.bytes)
                        .map_err(|e| store.frame_error(id, e)),
                )),
                Ok(f) => {
                    todo.push(f);
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        // Decoder errors are causes alone; the store says where the frame lies.
        let decoded: Vec<Result<Vec<u8>>> = if todo.is_empty() {
            Vec::new()
        } else if self.spare.is_some() {
            let outs = todo
                .iter()
                .map(|f| self.spare_for(f.meta.raw_len as usize))
                .collect();
            self.decoder.decode_batch_reusing(&todo, outs)
        } else {
            self.decoder.decode_batch(&todo)
        };
        let mut decoded = decoded
            .into_iter()
            .zip(&todo)
            .map(|(r, f)| r.map_err(|e| store.frame_error(f.id, e)));
        for (&id, r) in ids.iter().zip(results) {
            let r = r.or_else(|| decoded.next());
            let r = r.unwrap_or_else(|| {
                Err(Error::Internal(format!(
                    "frame {id}: the decoder returned too few results"
                )))
            });
            self.complete(id, r);
        }
        drop(decoded);
        // The stored bytes are decoded: their buffers serve the next frames' reads.
        if let Some(s) = &self.spare {
            for f in todo {
                s.give(Arc::new(f.bytes));
            }
        }
    }

    fn complete(&self, id: FrameId, r: Result<Vec<u8>>) {
        let shared = match r {
            Ok(d) => {
                let d = Arc::new(d);
                self.insert(id, d.clone());
                Ok(d)
            }
            Err(e) => Err(e),
        };
        if let Some(slot) = self.inflight.lock().remove(&id) {
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
    g.as_ref().expect("filled before notify").clone()
}

impl FrameCache<'static> {
    /// A cache over a shared store, for holders that outlive any borrow (the FUSE mount).
    pub fn shared(store: Arc<dyn FrameStore>, budget: u64) -> Self {
        Self::with(StoreRef::Owned(store), budget)
    }
}

impl FrameCache<'_> {
    /// A frame with a dictionary: the frames its dictionary lies in first (through the cache; they have
    /// none of their own), then it, decoded here on the CPU.
    fn frame_with_dict(&self, id: FrameId, spans: Vec<Span>) -> Result<Arc<Vec<u8>>> {
        let dict = dict_bytes(&spans, &mut |f| self.frame(f))
            .map_err(|e| self.store.frame_error(id, e))?;
        match self.claim(id) {
            Claim::Done(d) => Ok(d),
            Claim::Follower(s) => wait(&s),
            Claim::Leader(s) => {
                let store: &dyn FrameStore = &*self.store;
                let r = store.read_stored(id).and_then(|bytes| {
                    let meta = *store.meta(id).ok_or(Error::NoFrame(id))?;
                    decode_with_dict(&StoredFrame { id, meta, bytes }, &dict)
                        .map_err(|e| store.frame_error(id, e))
                });
                self.complete(id, r);
                wait(&s)
            }
        }
    }
}

impl FrameSource for FrameCache<'_> {
    fn frame(&self, id: FrameId) -> Result<Arc<Vec<u8>>> {
        if let Some(d) = self.lookup(id) {
            return Ok(d);
        }
        if let Some(dict) = self.store.dict(id) {
            return self.frame_with_dict(id, dict);
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
    use crate::format::index::VolumeNo;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Frames held in memory: 10 frames of 64 KiB, LZ_EXT3 where that is smaller. Frame `bad` (if any)
    /// has a flipped stored byte.
    struct Mem {
        frames: Vec<Frame>,
        stored: Vec<Vec<u8>>,
        raw: Vec<Vec<u8>>,
    }

    impl Mem {
        fn new(bad: Option<usize>) -> Mem {
            Mem::with(10, bad)
        }

        /// `n` frames of 64 KiB.
        fn with(n: u32, bad: Option<usize>) -> Mem {
            let mut x = 1u64;
            let (mut frames, mut stored, mut raw) = (vec![], vec![], vec![]);
            for i in 0..n {
                let data: Vec<u8> = (0..65_536)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x % 7) as u8
                    })
                    .collect();
                let enc = codec::encode(codec::Codec::LzExt3, &data, &Default::default());
                let (codec, mut enc) = if enc.len() < data.len() {
                    (codec::Codec::LzExt3, enc)
                } else {
                    (codec::Codec::Raw, data.clone())
                };
                if bad == Some(i as usize) {
                    let mid = enc.len() / 2;
                    enc[mid] ^= 0x40;
                }
                frames.push(Frame {
                    volume: VolumeNo(1),
                    offset: u64::from(i) << 16,
                    stored_len: enc.len() as u32,
                    raw_len: data.len() as u32,
                    codec,
                    flags: 0,
                    checksum: Some(crate::format::checksum(&data)),
                });
                stored.push(enc);
                raw.push(data);
            }
            Mem {
                frames,
                stored,
                raw,
            }
        }

        fn ids(&self) -> Vec<FrameId> {
            (0..self.frames.len() as u32).map(FrameId).collect()
        }
    }

    impl FrameStore for Mem {
        fn meta(&self, id: FrameId) -> Option<&Frame> {
            self.frames.get(id.at())
        }
        fn read_stored(&self, id: FrameId) -> Result<Vec<u8>> {
            self.stored.get(id.at()).cloned().ok_or(Error::NoFrame(id))
        }
        fn read_stored_batch_reusing(
            &self,
            ids: &[FrameId],
            bufs: Vec<Vec<u8>>,
        ) -> Vec<Result<Vec<u8>>> {
            ids.iter()
                .zip(bufs)
                .map(|(&id, mut b)| {
                    b.clear();
                    b.extend_from_slice(self.stored.get(id.at()).ok_or(Error::NoFrame(id))?);
                    Ok(b)
                })
                .collect()
        }
        fn frame_error(&self, id: FrameId, cause: Error) -> Error {
            Error::Frame {
                frame: id,
                volume: "mem".into(),
                offset: self.frames[id.at()].offset,
                cause: Box::new(cause),
            }
        }
    }

    /// Counts decoder calls and frames, then decodes on the CPU.
    struct Counting(Arc<(AtomicUsize, AtomicUsize)>);

    impl BatchDecoder for Counting {
        fn decode_batch(&self, b: &[StoredFrame]) -> Vec<Result<Vec<u8>>> {
            self.0 .0.fetch_add(1, Ordering::Relaxed);
            self.0 .1.fetch_add(b.len(), Ordering::Relaxed);
            CpuDecoder.decode_batch(b)
        }
    }

    fn stored(m: &Mem, ids: &[FrameId]) -> Vec<StoredFrame> {
        ids.iter()
            .map(|&id| StoredFrame {
                id,
                meta: m.frames[id.at()],
                bytes: m.stored[id.at()].clone(),
            })
            .collect()
    }

    #[test]
    fn concurrent_misses_decode_once_and_in_batches() {
        let m = Mem::new(None);
        let n = m.frames.len();
        let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let cache = FrameCache::new(&m, 1 << 30)
            .with_batch_size(4)
            .with_decoder(Box::new(Counting(counts.clone())));
        std::thread::scope(|s| {
            for t in 0..8 {
                let (cache, m) = (&cache, &m);
                s.spawn(move || {
                    for i in 0..n {
                        let id = FrameId(((i + t) % n) as u32);
                        assert_eq!(*cache.frame(id).unwrap(), m.raw[id.at()]);
                    }
                });
            }
        });
        let total: u64 = m.frames.iter().map(|f| u64::from(f.raw_len)).sum();
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
        let m = Mem::new(None);
        let codec = m.frames[0].codec;
        assert_eq!(codec, codec::Codec::LzExt3);
        let ids = m.ids();
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
                            let mut d = codec::decode(codec, s, *n)?;
                            if lie && k == 1 {
                                d[0] ^= 1;
                            }
                            Ok(d)
                        })
                        .collect())
                },
            };
            let got = dec.decode_batch(&stored(&m, &ids[..3]));
            for (k, r) in got.into_iter().enumerate() {
                // A result that fails its check is never returned: it is redone on the CPU.
                assert_eq!(r.unwrap(), m.raw[k], "frame {k}");
            }
            if !lie {
                let cache = FrameCache::new(&m, 1 << 30)
                    .with_batch_size(3)
                    .with_decoder(Box::new(dec));
                cache.prefetch(&ids);
                for &id in &ids {
                    assert_eq!(*cache.frame(id).unwrap(), m.raw[id.at()]);
                }
            }
        }
        assert!(
            calls.load(Ordering::Relaxed) >= 3,
            "the external decoder was used"
        );
    }

    /// Frames decoded (counted by the decoder) while `walk` is read through a cache of `budget` bytes.
    fn decodes(m: &Mem, budget: u64, walk: &[u32]) -> usize {
        let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let cache = FrameCache::new(m, budget).with_decoder(Box::new(Counting(counts.clone())));
        for &i in walk {
            assert_eq!(*cache.frame(FrameId(i)).unwrap(), m.raw[i as usize]);
            assert!(cache.bytes() <= budget.max(65_536));
        }
        counts.1.load(Ordering::Relaxed)
    }

    /// Two walks over 28 frames with room for 16 (the doc tree's `tar` over two versions whose files
    /// the data stream interleaves): LRU drops each frame just before its second use and decodes 56;
    /// probation and the protected part keep 12 of them for the second walk.
    #[test]
    fn a_loop_over_more_than_the_budget_keeps_most_of_it() {
        let m = Mem::with(40, None);
        let walk: Vec<u32> = (0..28).chain(0..28).collect();
        let n = decodes(&m, 16 << 16, &walk);
        assert_eq!(n, 56 - 12, "frames decoded");
    }

    /// A hot set read again after a scan of many other frames is still held: the scan passes through
    /// probation. A new working set then takes the protected part over after one extra decode each.
    #[test]
    fn a_scan_passes_the_hot_set_by_and_a_new_set_takes_over() {
        let m = Mem::with(80, None);
        let hot: Vec<u32> = (0..8).collect();
        let mut walk: Vec<u32> = hot.repeat(3);
        walk.extend(20..50);
        walk.extend(&hot);
        let n = decodes(&m, 16 << 16, &walk);
        assert_eq!(n, 8 + 30, "the hot set was decoded again after the scan");
        // A new set of 12 frames, read 3 times after the hot set: its first round misses, its second
        // misses once more (ghosts come back protected), then it is held.
        let new: Vec<u32> = (50..62).collect();
        let mut walk2 = walk.clone();
        walk2.extend(new.repeat(3));
        let n2 = decodes(&m, 16 << 16, &walk2);
        assert!(n2 <= n + 24, "{} decodes for the new set", n2 - n);
        let mut walk3 = walk2.clone();
        walk3.extend(&new);
        assert_eq!(decodes(&m, 16 << 16, &walk3), n2, "the new set is held");
    }

    #[test]
    fn prefetch_fills_and_budget_holds() {
        let m = Mem::new(None);
        let ids = m.ids();
        let cache = FrameCache::new(&m, 200_000).with_batch_size(3);
        cache.prefetch(&ids);
        assert!(cache.bytes() <= 200_000);
        let last = *ids.last().unwrap();
        assert!(cache.contains(last));
        assert_eq!(*cache.frame(ids[0]).unwrap(), m.raw[0]);
    }

    /// A frame that fails to decode reaches every waiter as the same error, placed by the store, and
    /// is not cached; its neighbours in the batch are.
    #[test]
    fn a_bad_frame_fails_every_reader_with_its_place() {
        let m = Mem::new(Some(2));
        let cache = FrameCache::new(&m, 1 << 30).with_batch_size(4);
        let errs: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| cache.frame(FrameId(2)).unwrap_err()))
                .collect();
            hs.into_iter()
                .map(|h| match h.join().unwrap() {
                    e @ Error::Frame { .. } => e.to_string(),
                    e => panic!("not a frame error: {e}"),
                })
                .collect()
        });
        assert!(
            errs[0].starts_with("frame 2 (volume mem, offset 131072): "),
            "{}",
            errs[0]
        );
        assert!(errs.iter().all(|e| *e == errs[0]), "{errs:?}");
        assert!(!cache.contains(FrameId(2)));
        cache.prefetch(&m.ids());
        assert!(cache.contains(FrameId(1)) && cache.contains(FrameId(3)));
        assert!(matches!(
            cache.frame(FrameId(99)),
            Err(Error::NoFrame(FrameId(99)))
        ));
    }

    /// A frame given back as consumed is dropped and the next frame decodes into its buffer (same
    /// memory, the right bytes); a buffer a reader still holds is not handed out; a frame decoded again
    /// after being consumed is kept from then on.
    #[test]
    fn consumed_frames_lend_their_buffers_to_the_next() {
        // RAW frames: one buffer per frame (its stored bytes are its bytes), so which buffer each
        // frame gets is certain.
        let mut m = Mem::with(6, None);
        for (i, f) in m.frames.iter_mut().enumerate() {
            f.codec = codec::Codec::Raw;
            f.stored_len = f.raw_len;
            m.stored[i] = m.raw[i].clone();
        }
        let cache = FrameCache::new(&m, 1 << 30).with_spare(1 << 20);
        let a = cache.frame(FrameId(0)).unwrap();
        let at = a.as_ptr();
        drop(a);
        cache.consumed(FrameId(0));
        assert!(!cache.contains(FrameId(0)));
        let spare = |p: *const u8| {
            let s = cache.spare.as_ref().unwrap().bufs.lock();
            s.iter().any(|b| b.as_ptr() == p)
        };
        assert!(spare(at), "frame 0's buffer kept");
        let b = cache.frame(FrameId(1)).unwrap();
        assert_eq!(b.as_ptr(), at, "frame 1 read into frame 0's buffer");
        assert!(!spare(at));
        assert_eq!(*b, m.raw[1]);
        // Held by a reader when consumed: its buffer waits.
        cache.consumed(FrameId(1));
        assert!(spare(at));
        let c = cache.frame(FrameId(2)).unwrap();
        assert_ne!(c.as_ptr(), at);
        assert!(spare(at), "still kept, not lent");
        assert_eq!(*c, m.raw[2]);
        assert_eq!(*b, m.raw[1], "the held frame's bytes are untouched");
        drop(b);
        let d = cache.frame(FrameId(3)).unwrap();
        assert_eq!(d.as_ptr(), at, "taken once nobody held it");
        assert_eq!(*d, m.raw[3]);
        // Frame 0 read again: read again, then kept though consumed again.
        assert_eq!(*cache.frame(FrameId(0)).unwrap(), m.raw[0]);
        cache.consumed(FrameId(0));
        assert!(cache.contains(FrameId(0)), "a frame needed twice is kept");
        // Without spares a consumed frame is dropped all the same (freed).
        let plain = FrameCache::new(&m, 1 << 30);
        drop(plain.frame(FrameId(4)).unwrap());
        plain.consumed(FrameId(4));
        assert!(!plain.contains(FrameId(4)));
        assert_eq!(*plain.frame(FrameId(4)).unwrap(), m.raw[4]);
    }

    /// The spares hand out the smallest free buffer that fits, else the largest free one grown to a
    /// power of two, else none; they keep at most their bound.
    #[test]
    fn spares_fit_grow_and_stay_bounded() {
        let s = Spare {
            bufs: Mutex::new(VecDeque::new()),
            most: 10_000,
        };
        let used = |cap: usize, len: usize| {
            let mut v = Vec::with_capacity(cap);
            v.resize(len, 1u8);
            Arc::new(v)
        };
        s.give(used(4096, 4000));
        s.give(used(1024, 1000));
        let held = used(2048, 2000);
        s.give(held.clone());
        assert_eq!(s.take(900).capacity(), 1024, "the smallest that fits");
        assert_eq!(s.take(1500).capacity(), 4096, "the held one is not lent");
        drop(held);
        let g = s.take(3000);
        assert_eq!(g.capacity(), 4096, "the free 2048 one grown to 4096");
        assert!(g.is_empty());
        assert_eq!(s.take(5000).capacity(), 0, "none: the caller makes one");
        // Bounded by what the buffers hold mapped (capacities), not by the bytes they last held.
        for _ in 0..12 {
            s.give(used(4096, 1000));
        }
        let kept: usize = s.bufs.lock().iter().map(|b| b.capacity()).sum();
        assert!(kept <= 10_000, "{kept} bytes kept");
    }
}
