//! The data stream of a pack: a reader thread reads source files in stream order (in batches of at most
//! 1 MiB, small files and a large file's segments several at a time on the reader threads; the read-ahead
//! bounded in bytes, [`read_slots`]); content-defined chunks are cut and hashed (by the reader thread that
//! read the file or segment, else by the cutter, in parallel); the sequencer dedups them by BLAKE3 and
//! fills frames in order, as pieces of the read buffers; each frame is gathered into one buffer by the
//! compressor that takes it.

use crate::chunk;
use crate::config::Config;
use crate::diag::escape_path;
use crate::diag::trace::{self, Stage};
use crate::diag::Warnings;
use crate::format::generation::Bases;
use crate::format::index::{Chunk, ChunkId, ChunkRef, Content, Dict, FrameId, MAX_DICT_FRAMES};
use crate::scan::Source;
use crossbeam_channel::{Receiver, Sender};
use rayon::prelude::*;
use std::collections::HashSet;
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek};
use std::sync::Arc;

/// One content to store: the scan entries that share it (the first is read; the others are duplicates
/// confirmed by BLAKE3 `expect`, or hardlink-free single files).
pub struct Job {
    pub entries: Vec<usize>,
    /// What to read for each entry (its path and scanned identity).
    pub sources: Vec<Source>,
    pub expect: Option<[u8; 32]>,
    pub size: u64,
    /// Continues a run of files of the same name (in stream order): long matches likely pay here.
    pub run: bool,
    /// The content the same path had in the previous snapshot (an append; the file changed): the
    /// frames holding it are candidates for its frame's dictionary (FORMAT.md 2.3).
    pub prev: Option<u64>,
}

/// What the reader tells the sequencer.
pub enum Msg {
    Data {
        job: u64,
        data: Vec<u8>,
        run: bool,
        /// The job's [`Job::prev`].
        prev: Option<u64>,
        /// `data`'s chunks, when the reader cut them already (a small file, or a segment read on the
        /// pool, cut by the thread that read it); otherwise the cutter cuts it.
        cuts: Option<Vec<Cut>>,
    },
    /// The job's bytes are complete; `entries` get the content.
    End { job: u64, entries: Vec<usize> },
    /// The job failed; its bytes so far are discarded.
    Fail { job: u64 },
}

/// Reads every job's files in order, sending batches of about [`read_batch_bytes`]. Runs of small files are
/// read `NUM_READERS` at a time; a large file is streamed in segments, several at a time (see
/// [`reader_into`]).
pub fn reader(jobs: Vec<Job>, cfg: &Config, tx: Sender<Vec<Msg>>, warn: &Warnings) {
    // No cutter gives slots back here: room for all of them.
    let (slots, _kept) = crossbeam_channel::unbounded();
    reader_into(jobs, cfg, (tx, slots), warn, &ReadPool::new(cfg));
}

/// [`reader`], its segment buffers taken from `bufs` (given back once the frames using them are
/// gathered), each batch sent after taking its slots of the read-ahead on `slots` (the other end of
/// [`read_slots`], which the cutter gives back).
///
/// A large file is read [`ReadPool::window`] segments at a time, each by a thread of the reader pool
/// (`pread` at the segment's offset), and sent in order: one thread streaming a large file was busy 98 %
/// at 2.95 GB/s, the pack's cap on a tree of large files on 16 cores (docs/GPU.md run 21). The segments
/// are those of a sequential read (BUFFER_SIZE, at most 8 MiB, from the start of the file), so the cuts,
/// which are made per segment, do not change.
pub fn reader_into(
    jobs: Vec<Job>,
    cfg: &Config,
    (tx, slots): (Sender<Vec<Msg>>, Sender<()>),
    warn: &Warnings,
    bufs: &ReadPool,
) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.readers())
        .thread_name(|i| format!("clc-read-{i}"))
        .build()
        .ok()
        .map(Arc::new);
    let mut r = Reader {
        cfg,
        seg: bufs.seg,
        batch_bytes: read_batch_bytes(cfg),
        queue: jobs.into(),
        batch: Vec::new(),
        batch_len: 0,
        seq: 0,
        tx,
        slots,
        warn,
        pool,
        bufs,
    };
    if r.pool.is_some() {
        if r.read_all().is_err() {
            return;
        }
    } else {
        while let Some(job) = r.queue.pop_front() {
            if r.stream(job).is_err() {
                return;
            }
        }
    }
    r.flush();
}

/// A file read whole (and cut) on a reader thread: smaller than a segment.
fn small_job(j: &Job, seg: usize) -> bool {
    j.size < seg as u64 && !j.sources.is_empty()
}

/// The most bytes of small files being read (and cut) on the reader threads ahead of the one handed on
/// ([`Reader::read_all`]): on 2 cores, with windows of one batch, one thread read and cut nearly every
/// file while the other core waited for frames (BENCHMARKS.md 11.7).
pub const READ_WINDOW_MAX: usize = 16 << 20;

/// The largest window of small files for `cfg`: [`READ_WINDOW_MAX`], but no more than the read-ahead
/// (READ_BUFFER_BATCHES × BUFFER_SIZE, what a config that bounds the pack's memory sets), and at least a
/// batch.
fn window_max(cfg: &Config) -> usize {
    let ahead = cfg.read_buffer_batches.max(1) * cfg.buffer_size as usize;
    READ_WINDOW_MAX.min(ahead).max(read_batch_bytes(cfg))
}

fn read_small(src: &Source, size: u64, seg: usize, bufs: &ReadPool) -> std::io::Result<Vec<u8>> {
    let t = std::time::Instant::now();
    let mut buf = bufs.take((size as usize + 1).min(seg));
    src.open()?.take(seg as u64).read_to_end(&mut buf)?;
    trace::add(Stage::Read, t, std::time::Instant::now(), buf.len() as u64);
    Ok(buf)
}

/// Reads up to `len` bytes of `f` at `offset` into a buffer from `bufs`: fewer only at the end of the
/// file.
fn read_segment(
    f: &std::fs::File,
    offset: u64,
    len: usize,
    bufs: &ReadPool,
) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let t = std::time::Instant::now();
    let mut buf = bufs.take(len);
    buf.resize(len, 0);
    let mut n = 0;
    while n < len {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    trace::add(Stage::Read, t, std::time::Instant::now(), n as u64);
    Ok(buf)
}

/// The reader's segment: BUFFER_SIZE, within 64 KiB..=8 MiB.
fn segment(cfg: &Config) -> usize {
    (cfg.buffer_size as usize).clamp(64 << 10, 8 << 20)
}

/// Buffers for the reader's segments, given back once the frames that refer to them are gathered: a fresh
/// 8 MiB buffer costs a page fault per 4 KiB on first touch (as the frame buffers did, [`FramePool`]).
/// Only reads of at least half a segment take one, so a buffer holds at most twice its bytes.
pub struct ReadPool {
    seg: usize,
    window: usize,
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
}

impl ReadPool {
    /// A pool for `cfg`'s segments (BUFFER_SIZE, within 64 KiB..=8 MiB).
    pub fn new(cfg: &Config) -> Self {
        let seg = segment(cfg);
        // Segments of one large file read at once: no more than the read-ahead holds, nor than there are
        // reader threads.
        let ahead = cfg.read_buffer_batches.max(1) * cfg.buffer_size as usize;
        let window = (ahead / seg).clamp(1, cfg.readers().max(1));
        let (tx, rx) = crossbeam_channel::bounded(window + 4);
        ReadPool {
            seg,
            window,
            tx,
            rx,
        }
    }

    /// Segments of one large file read at the same time.
    pub fn window(&self) -> usize {
        self.window
    }

    /// An empty buffer with room for `cap` bytes (a segment's worth, from the pool, when `cap` is at
    /// least half a segment).
    fn take(&self, cap: usize) -> Vec<u8> {
        if cap < self.seg / 2 {
            return Vec::with_capacity(cap);
        }
        while let Ok(mut v) = self.rx.try_recv() {
            if v.capacity() >= cap {
                v.clear();
                return v;
            }
        }
        Vec::with_capacity(cap.max(self.seg))
    }

    /// Gives a buffer back (kept if it holds a segment and the pool has room).
    pub fn give(&self, v: Vec<u8>) {
        if v.capacity() >= self.seg {
            let _ = self.tx.try_send(v);
        }
    }

    /// `v` to be referred to by frames; given back (as [`give`](Self::give) would) once they are
    /// gathered.
    fn hold(&self, v: Vec<u8>) -> Arc<Held> {
        let back = (v.capacity() >= self.seg).then(|| self.tx.clone());
        Arc::new(Held { data: v, back })
    }
}

struct Stopped;

struct Reader<'a> {
    cfg: &'a Config,
    seg: usize,
    /// The reader threads (none if they could not be started: then one thread reads).
    pool: Option<Arc<rayon::ThreadPool>>,
    bufs: &'a ReadPool,
    batch_bytes: usize,
    queue: VecDeque<Job>,
    batch: Vec<Msg>,
    batch_len: usize,
    seq: u64,
    tx: Sender<Vec<Msg>>,
    /// Slots of the read-ahead, one per [`read_batch_bytes`] (or part) of each batch sent.
    slots: Sender<()>,
    warn: &'a Warnings,
}

impl Reader<'_> {
    fn push(&mut self, m: Msg) -> Result<(), Stopped> {
        if let Msg::Data { data, .. } = &m {
            self.batch_len += data.len();
        }
        self.batch.push(m);
        if self.batch_len >= self.batch_bytes {
            self.flush().then_some(()).ok_or(Stopped)?;
        }
        Ok(())
    }

    /// Sends the batch, after taking its slots of the read-ahead ([`read_slots`]): blocks while the
    /// bytes read ahead of the cutter are at the bound.
    fn flush(&mut self) -> bool {
        let t = std::time::Instant::now();
        for _ in 0..slot_cost(self.batch_len, self.batch_bytes) {
            if self.slots.send(()).is_err() {
                return false;
            }
        }
        self.batch_len = 0;
        let sent = self.tx.send(std::mem::take(&mut self.batch)).is_ok();
        trace::add(Stage::Blocked, t, std::time::Instant::now(), 0);
        sent
    }

    /// Reads every job on the reader threads and hands them on in order. A small file is a task of its
    /// own, cut by the thread that read it while its bytes are in that core's cache; tasks are started
    /// at most [`window_max`] bytes beyond the file being handed on, past large files too, so that the
    /// small files after a large one are read while it streams. A sliding window, not windows read
    /// whole one after the other: each of those waited for its slowest file, with 3-13 of 16 threads
    /// busy, and capped the Rust docs' stream at 2.7 GB/s on 16 cores (docs/GPU.md runs 71-72).
    fn read_all(&mut self) -> Result<(), Stopped> {
        type Got = std::io::Result<(Vec<u8>, Vec<Cut>)>;
        let Some(pool) = self.pool.clone() else {
            return Ok(());
        };
        let (cfg, seg, bufs) = (self.cfg, self.seg, self.bufs);
        let ahead = window_max(cfg);
        pool.in_place_scope_fifo(|s| {
            // Each job with the answer of its task (a small file), or none (streamed when its turn
            // comes).
            let mut flight: VecDeque<(Job, Option<Receiver<Got>>)> = VecDeque::new();
            let mut bytes = 0u64;
            loop {
                while bytes < ahead as u64 && flight.len() < 1024 {
                    let Some(job) = self.queue.pop_front() else {
                        break;
                    };
                    if !small_job(&job, seg) {
                        flight.push_back((job, None));
                        continue;
                    }
                    let (tx, rx) = crossbeam_channel::bounded::<Got>(1);
                    let (src, size) = (job.sources[0].clone(), job.size);
                    s.spawn_fifo(move |_| {
                        let got = read_small(&src, size, seg, bufs).map(|data| {
                            let cuts = if data.len() < seg {
                                cut_file(cfg, &data)
                            } else {
                                Vec::new()
                            };
                            (data, cuts)
                        });
                        let _ = tx.send(got);
                    });
                    bytes += job.size;
                    flight.push_back((job, Some(rx)));
                }
                let Some((job, task)) = flight.pop_front() else {
                    return Ok(());
                };
                let Some(rx) = task else {
                    self.stream(job)?;
                    continue;
                };
                bytes -= job.size;
                match rx.recv() {
                    Ok(Ok((data, cuts))) if data.len() < seg => self.whole(job, data, cuts)?,
                    // Grew past a segment since the scan, or failed: take the streaming path (which
                    // warns).
                    _ => self.stream(job)?,
                }
            }
        })
    }

    /// A small file read whole and cut: checks and sends it.
    fn whole(&mut self, mut job: Job, data: Vec<u8>, cuts: Vec<Cut>) -> Result<(), Stopped> {
        let id = self.seq;
        self.seq += 1;
        let hash = job.expect.map(|_| *blake3::hash(&data).as_bytes());
        let total = data.len() as u64;
        if total > 0 {
            let (run, prev) = (job.run, job.prev);
            self.push(Msg::Data {
                job: id,
                data,
                run,
                prev,
                cuts: Some(cuts),
            })?;
        }
        self.end(id, &mut job, total, hash)
    }

    /// Streams a job's file in segments, trying its duplicates in turn if a read fails.
    fn stream(&mut self, mut job: Job) -> Result<(), Stopped> {
        while !job.entries.is_empty() {
            let id = self.seq;
            self.seq += 1;
            let source = job.sources[0].clone();
            let path = &source.path;
            let mut hasher = job.expect.map(|_| blake3::Hasher::new());
            let mut total = 0u64;
            let res = (|| -> std::io::Result<Result<(), Stopped>> {
                let mut f = source.open()?;
                // Whether `f`'s position is behind `total` (window reads do not move it).
                let mut behind = false;
                loop {
                    // Segments still expected (by the scan's size; one more to see the end when the
                    // size is a multiple of a segment), read a window at a time.
                    let left = job.size.saturating_sub(total) / self.seg as u64 + 1;
                    let k = (left.min(self.bufs.window as u64) as usize).max(1);
                    // Segments read on the pool are cut there too, each by the thread that read it (one
                    // cutter thread at a time cut python3's large files on 16 cores while the small
                    // files after them waited: docs/GPU.md run 73); the cuts are per segment either way.
                    type Seg = std::io::Result<(Vec<u8>, Option<Vec<Cut>>)>;
                    let reads: Vec<Seg> = match self.pool.as_ref() {
                        Some(pool) if k > 1 => {
                            let (f, seg, bufs, cfg) = (&f, self.seg, self.bufs, self.cfg);
                            behind = true;
                            pool.install(|| {
                                (0..k)
                                    .into_par_iter()
                                    .map(|j| {
                                        let b =
                                            read_segment(f, total + (j * seg) as u64, seg, bufs)?;
                                        let cuts = (!b.is_empty()).then(|| cut_one(cfg, &b));
                                        Ok((b, cuts))
                                    })
                                    .collect()
                            })
                        }
                        _ => {
                            if behind {
                                f.seek(std::io::SeekFrom::Start(total))?;
                                behind = false;
                            }
                            // Size the buffer by what the scan saw, so small files cost small buffers.
                            let hint =
                                (job.size.saturating_sub(total) as usize).clamp(1, self.seg) + 1;
                            let mut buf = self.bufs.take(hint.min(self.seg));
                            let t = std::time::Instant::now();
                            let n = (&mut f).take(self.seg as u64).read_to_end(&mut buf)?;
                            trace::add(Stage::Read, t, std::time::Instant::now(), n as u64);
                            vec![Ok((buf, None))]
                        }
                    };
                    // In order, as a sequential read would have seen them: a short segment is the end.
                    for read in reads {
                        let (buf, mut cuts) = read?;
                        let n = buf.len();
                        if n == 0 {
                            return Ok(Ok(()));
                        }
                        // The whole file in one segment (it is short): cut as the small files read
                        // on the pool are, so that its chunks do not depend on the path it took.
                        if total == 0 && n < self.seg && (n as u64) < self.cfg.whole_below() {
                            cuts = Some(cut_file(self.cfg, &buf));
                        }
                        if let Some(h) = hasher.as_mut() {
                            h.update(&buf);
                        }
                        total += n as u64;
                        let msg = Msg::Data {
                            job: id,
                            data: buf,
                            run: job.run,
                            prev: job.prev,
                            cuts,
                        };
                        if self.push(msg).is_err() {
                            return Ok(Err(Stopped));
                        }
                        if n < self.seg {
                            return Ok(Ok(()));
                        }
                    }
                }
            })();
            match res {
                Ok(Err(Stopped)) => return Err(Stopped),
                Ok(Ok(())) => {
                    let hash = hasher.map(|h| *h.finalize().as_bytes());
                    return self.end(id, &mut job, total, hash);
                }
                Err(e) => {
                    self.push(Msg::Fail { job: id })?;
                    self.warn
                        .warn(format!("{}: {e} (left out)", escape_path(path)));
                    // A duplicate held the same bytes when hashed: read it instead, still checked
                    // against that hash, so that if it changed too the others are stored on their own.
                    job.entries.remove(0);
                    job.sources.remove(0);
                }
            }
        }
        Ok(())
    }

    /// Closes a job whose bytes were all sent: warns on a size change, and splits off the duplicates when
    /// the file changed since it was hashed for dedup.
    fn end(
        &mut self,
        id: u64,
        job: &mut Job,
        total: u64,
        hash: Option<[u8; 32]>,
    ) -> Result<(), Stopped> {
        let path = &job.sources[0].path;
        if total != job.size {
            self.warn.warn(format!(
                "{}: size changed while reading ({} → {total} bytes); stored as read",
                escape_path(path),
                job.size
            ));
        }
        if hash.is_some() && hash != job.expect {
            self.warn.warn(format!(
                "{}: changed since it was hashed for dedup; its duplicates are stored on their own",
                escape_path(path)
            ));
            for (e, p) in job.entries.drain(1..).zip(job.sources.drain(1..)) {
                self.queue.push_back(Job {
                    entries: vec![e],
                    sources: vec![p],
                    expect: None,
                    size: job.size,
                    run: false,
                    prev: None,
                });
            }
        }
        self.push(Msg::End {
            job: id,
            entries: std::mem::take(&mut job.entries),
        })
    }
}

/// The sequencer's result: the rows this run adds to the data tables (their ids, and the ids they name,
/// are global: they start at the archive's [`Bases`]), the chunks' BLAKE3s, and which scan entry got
/// which content.
#[derive(Default)]
pub struct Tables {
    pub contents: Vec<Content>,
    pub refs: Vec<ChunkRef>,
    pub chunks: Vec<Chunk>,
    /// BLAKE3 of each new chunk, in chunk order.
    pub hashes: Vec<[u8; 32]>,
    /// Scan position → (content id or NONE, size) of every file read.
    pub entry_content: HashMap<usize, (u64, u64)>,
    pub bytes_in: u64,
    pub unique_bytes: u64,
    /// New frames.
    pub frames: u32,
}

/// What the sequencer starts from: the ids of the archive's first new rows, and what earlier
/// generations hold (empty for a new archive): chunk ids by BLAKE3, content ids by their chunk lists.
#[derive(Default)]
pub struct Seed {
    pub bases: Bases,
    pub chunk_ids: HashMap<[u8; 32], u64>,
    pub by_chunks: HashMap<Vec<u64>, u64>,
}

/// Frame buffers given back after compression, for the next frames' bytes to be gathered into
/// ([`FrameParts::gather`]). A fresh 4-16 MiB buffer costs a page fault per 4 KiB on first touch.
pub struct FramePool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    /// The capacity of a new buffer: the pack's largest frame, so that every buffer fits every frame
    /// (one sized for a smaller frame was dropped when a larger one needed a buffer, and a fresh one
    /// faulted in; pages never touched cost nothing).
    cap: usize,
}

impl FramePool {
    /// A pool holding at most `n` idle buffers of `cap` bytes (the largest frame).
    pub fn new(n: usize, cap: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(n.max(1));
        FramePool { tx, rx, cap }
    }

    /// An empty buffer with room for `len` bytes: a given-back one when there is one.
    pub fn take(&self, len: usize) -> Vec<u8> {
        while let Ok(mut v) = self.rx.try_recv() {
            if v.capacity() >= len {
                v.clear();
                return v;
            }
        }
        Vec::with_capacity(len.max(self.cap))
    }

    /// Gives a buffer back (dropped if the pool is full).
    pub fn give(&self, v: Vec<u8>) {
        let _ = self.tx.try_send(v);
    }
}

/// A frame's bytes on their way to the compressors, with the dictionary chosen for it.
pub struct RawFrame {
    pub id: u32,
    pub data: Vec<u8>,
    pub dict: Option<Dict>,
}

/// A read buffer whose bytes frames refer to until they are gathered ([`FrameParts`]); a segment's
/// buffer goes back to the read pool when the last of them is done with it.
pub struct Held {
    data: Vec<u8>,
    back: Option<Sender<Vec<u8>>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(tx) = self.back.take() {
            let _ = tx.try_send(std::mem::take(&mut self.data));
        }
    }
}

/// `len` bytes of a read buffer, from `at`.
struct Piece {
    buf: Arc<Held>,
    at: usize,
    len: usize,
}

/// A frame as the sequencer sends it: where its bytes lie in the read buffers, not a copy of them. The
/// copy into one buffer ([`gather`](Self::gather)) is made by the compressor that takes the frame, so
/// that the sequencer, one thread that every byte passes, does not copy (on 16 cores it was busy 88-99 %
/// of the stream copying, faulting fresh frame buffers in and freeing read buffers: docs/GPU.md run 69).
pub struct FrameParts {
    pub id: u32,
    /// The frame's length in bytes.
    pub len: usize,
    pub dict: Option<Dict>,
    pieces: Vec<Piece>,
}

impl FrameParts {
    /// The frame's bytes in one buffer from `pool`; the read buffers it referred to are let go.
    pub fn gather(self, pool: &FramePool) -> RawFrame {
        let t = std::time::Instant::now();
        let mut data = pool.take(self.len);
        for p in &self.pieces {
            data.extend_from_slice(&p.buf.data[p.at..p.at + p.len]);
        }
        drop(self.pieces);
        trace::add(Stage::Gather, t, std::time::Instant::now(), self.len as u64);
        RawFrame {
            id: self.id,
            data,
            dict: self.dict,
        }
    }
}

/// What an append knows of earlier generations, for choosing dictionaries.
pub trait DictPlan: Sync {
    /// The chunks of content `c` (of an earlier generation) that may be part of a dictionary (their
    /// frame has none), in order: (chunk id, its frame, its length).
    fn chunks_of(&self, c: u64) -> Vec<(u64, FrameId, u32)>;
}

/// The most bytes of earlier versions gathered as one frame's dictionary: with a frame of up to 4 MiB
/// behind them, every byte stays within LZ_EXT3's 16 MiB reach.
const DICT_BUDGET: u64 = 12 << 20;

pub use crate::chunk::Cut;

/// Bytes in one batch of the reader: at most BUFFER_SIZE, and at most [`READ_BATCH_MAX`], so that the
/// first frames reach the compressors after a megabyte is read rather than after BUFFER_SIZE, and no
/// batch makes the next stage wait long for it (issue 21: the compressors sat idle while 16 MiB batches
/// were read and cut).
pub fn read_batch_bytes(cfg: &Config) -> usize {
    (cfg.buffer_size as usize).min(READ_BATCH_MAX)
}

/// The largest reader batch (see [`read_batch_bytes`]).
pub const READ_BATCH_MAX: usize = 1 << 20;

/// Batches of the reader that may wait for the cutter: READ_BUFFER_BATCHES × BUFFER_SIZE bytes of
/// read-ahead, as before batches were made smaller.
pub fn read_depth(cfg: &Config) -> usize {
    let per = (cfg.buffer_size as usize)
        .div_ceil(read_batch_bytes(cfg))
        .max(1);
    cfg.read_buffer_batches.max(1) * per
}

/// The read-ahead's bound in bytes, in slots of [`read_batch_bytes`]: the reader takes a batch's slots
/// before sending it (a large file's segment of up to 8 MiB takes eight of 1 MiB) and the cutter gives
/// them back once the batch is cut. There are [`read_depth`] slots for the queue (READ_BUFFER_BATCHES ×
/// BUFFER_SIZE bytes, 64 MiB by default) and a segment's worth per thread for the group the cutter cuts
/// at once ([`cutter`]; 8 MiB per thread). Counting batches alone, as before, let 8 MiB segments queue
/// up to 8 × READ_BUFFER_BATCHES × BUFFER_SIZE once several were read at a time. A bound of the queue
/// alone (64 MiB) made the 16-core pack of large files slower (docs/GPU.md run 28: the cutter's groups
/// held 8 segments for 16 threads). Besides the slots, the reader holds the window it is reading.
pub fn read_slots(cfg: &Config) -> (Sender<()>, Receiver<()>) {
    let group = cfg.threads().max(1) * slot_cost(segment(cfg), read_batch_bytes(cfg));
    crossbeam_channel::bounded(read_depth(cfg) + group)
}

/// Slots of a batch of `bytes` data bytes (an empty batch, the last, takes one).
fn slot_cost(bytes: usize, batch_bytes: usize) -> usize {
    bytes.div_ceil(batch_bytes.max(1)).max(1)
}

/// The cutter: cuts, hashes and judges every data segment of each batch that the reader did not cut
/// already (in parallel; order is kept) and hands the batch on with its cuts. Small files read on the
/// reader threads come cut (by the thread that read each, [`reader_into`]), so what is left here is a
/// large file's segments, and small files when there are no reader threads. A stage of its own so
/// that the next batch is cut while the sequencer places the last one: the sequencer, which every byte
/// passes, never waits for hashing.
/// Batches are small (a megabyte, so the first frames start early), so the batches the reader has ready
/// are cut together, up to one per thread: cut one batch at a time, the 16-core machine's pack ran at
/// one core's cutting speed (Rust docs 0.37 s instead of 0.24 s, a mixed tree 0.81 s instead of 0.46 s;
/// docs/GPU.md runs 15-16).
///
/// A data segment is cut by one thread, so a group holds up to one segment per thread: `threads` × the
/// largest segment in it. A large file comes in segments of up to 8 MiB (BUFFER_SIZE), where small files
/// come in 1 MiB batches: counting 1 MiB per thread for both, a tree of large files was cut two segments
/// at a time, 1.2 GB/s on 16 cores (docs/GPU.md run 20). Which batches are cut together never changes the
/// cuts: each segment is cut on its own.
///
/// Groups of small files left to it are cut on threads of the cutter's own (`clc-cut-N`, MAX_WORKER_THREADS of them),
/// not on the worker pool the encoders share: there a group's work queued behind the frames already
/// handed to the encoders (up to two per thread, each 10-40 ms of one core), so the stage that feeds
/// every later one waited for them, once per group of at most `threads` MiB (on 16 cores the stream of
/// a mixed tree 15 % faster, docs/GPU.md run 38). A group holding a large file's segments stays on the
/// shared pool: it amortizes that wait over 8 × the bytes, and its cutting is as heavy as the encoding,
/// so on threads of its own it oversubscribed the cores (run 38: a tree of large files 5 % slower, the
/// cutter's and the encoders' busy time up by 10-20 %). Its threads start with the first such group and
/// sleep between groups.
pub fn cutter(
    (rx, slots): (Receiver<Vec<Msg>>, Receiver<()>),
    cfg: &Config,
    tx: Sender<(Vec<Msg>, Vec<Vec<Cut>>)>,
) {
    let threads = cfg.threads().max(1);
    // Threads of its own for groups of small segments, started for the first such group: small files
    // read on the reader threads come cut already, so with those there is none. Without them (they
    // could not be started) it cuts every group on the worker pool.
    let mut pool: Option<Option<rayon::ThreadPool>> = None;
    // (bytes, largest segment) of a batch's data; of the data still to cut.
    let sizes = |b: &[Msg]| -> (usize, usize) {
        b.iter().fold((0, 0), |(n, top), m| match m {
            Msg::Data { data, .. } => (n + data.len(), top.max(data.len())),
            _ => (n, top),
        })
    };
    let uncut = |b: &[Msg]| -> (usize, usize) {
        b.iter().fold((0, 0), |(n, top), m| match m {
            Msg::Data {
                data, cuts: None, ..
            } => (n + data.len(), top.max(data.len())),
            _ => (n, top),
        })
    };
    while let Ok(first) = rx.recv() {
        let (mut n, mut top) = uncut(&first);
        let mut group = vec![first];
        while n < threads * top.max(read_batch_bytes(cfg)) {
            match rx.try_recv() {
                Ok(b) => {
                    let (bn, btop) = uncut(&b);
                    n += bn;
                    top = top.max(btop);
                    group.push(b);
                }
                Err(_) => break,
            }
        }
        let cut_now = if n == 0 {
            Vec::new()
        } else {
            let all: Vec<&Msg> = group.iter().flatten().collect();
            let own = if top < segment(cfg) {
                pool.get_or_insert_with(|| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .thread_name(|i| format!("clc-cut-{i}"))
                        .build()
                        .ok()
                })
                .as_ref()
            } else {
                None
            };
            trace::timed(Stage::CutGroup, n as u64, || match own {
                Some(p) => p.install(|| cut(cfg, &all)),
                None => cut(cfg, &all),
            })
        };
        let mut cut_now = cut_now.into_iter();
        // Cut: the reader may read their bytes' worth again (the slots were taken before the batches
        // were sent, so they are there).
        let taken: usize = group
            .iter()
            .map(|b| slot_cost(sizes(b).0, read_batch_bytes(cfg)))
            .sum();
        for _ in 0..taken {
            let _ = slots.recv();
        }
        for mut batch in group {
            let these = batch
                .iter_mut()
                .map(|m| {
                    let here = cut_now.next().unwrap_or_default();
                    match m {
                        Msg::Data { cuts, .. } => cuts.take().unwrap_or(here),
                        _ => here,
                    }
                })
                .collect();
            let t = std::time::Instant::now();
            if tx.send((batch, these)).is_err() {
                return;
            }
            trace::add(Stage::Blocked, t, std::time::Instant::now(), 0);
        }
    }
}

/// Whether frame sizes follow the data (ADAPTIVE_FRAMES, and a codec that compresses).
fn adaptive(cfg: &Config) -> bool {
    cfg.adaptive_frames && cfg.codec != crate::codec::Codec::Raw
}

/// Cuts, hashes and judges one data segment.
fn cut_one(cfg: &Config, data: &[u8]) -> Vec<Cut> {
    trace::timed(Stage::Chunk, data.len() as u64, || {
        chunk::cut_segment(
            data,
            cfg.chunk_min,
            cfg.chunk_avg,
            cfg.chunk_max,
            adaptive(cfg),
        )
    })
}

/// Cuts, hashes and judges a whole file read in one piece: one chunk when it is smaller than
/// [`Config::whole_below`], else as [`cut_one`] cuts a segment.
fn cut_file(cfg: &Config, data: &[u8]) -> Vec<Cut> {
    if (data.len() as u64) < cfg.whole_below() {
        return trace::timed(Stage::Chunk, data.len() as u64, || {
            chunk::whole(data, adaptive(cfg))
        });
    }
    cut_one(cfg, data)
}

/// Cuts, hashes and judges every data segment of the batch in parallel (those the reader did not cut
/// already); order is kept.
fn cut(cfg: &Config, batch: &[&Msg]) -> Vec<Vec<Cut>> {
    batch
        .par_iter()
        .map(|m| match m {
            Msg::Data {
                data, cuts: None, ..
            } => cut_one(cfg, data),
            _ => Vec::new(),
        })
        .collect()
}

/// A frame being filled: where its bytes lie, their length, the chunks placed in it (positions in this
/// run's chunk table; their frame id is set when it is sent) and the size at which it is sent.
struct OpenFrame {
    pieces: Vec<Piece>,
    len: usize,
    /// Bytes of the read buffers its pieces keep alive (a buffer counted each time the frame turns to it).
    pinned: usize,
    chunks: Vec<u64>,
    limit: usize,
}

impl OpenFrame {
    fn new(limit: u64) -> OpenFrame {
        OpenFrame {
            pieces: Vec::new(),
            len: 0,
            pinned: 0,
            chunks: Vec::new(),
            limit: limit as usize,
        }
    }

    /// Adds `len` bytes of `buf` from `at`: a piece referring to the buffer, or, when the frame keeps
    /// more than [`PIN_MAX`] × its limit of read buffers alive (a frame of a few new chunks from many
    /// segments otherwise seen before), a copy of them.
    fn add(&mut self, buf: &Arc<Held>, at: usize, len: usize) {
        self.len += len;
        if let Some(p) = self.pieces.last_mut() {
            if Arc::ptr_eq(&p.buf, buf) {
                if p.at + p.len == at {
                    p.len += len;
                } else {
                    self.pieces.push(Piece {
                        buf: buf.clone(),
                        at,
                        len,
                    });
                }
                return;
            }
        }
        let cap = buf.data.capacity();
        if self.pinned + cap > PIN_MAX * self.limit.max(self.len) {
            let copy = Arc::new(Held {
                data: buf.data[at..at + len].to_vec(),
                back: None,
            });
            self.pinned += len;
            self.pieces.push(Piece {
                buf: copy,
                at: 0,
                len,
            });
            return;
        }
        self.pinned += cap;
        self.pieces.push(Piece {
            buf: buf.clone(),
            at,
            len,
        });
    }
}

/// A frame keeps at most this many times its size of read buffers alive (past it, its new chunks are
/// copied): a segment (up to 8 MiB) may hold a frame's first bytes and the next frame's too.
const PIN_MAX: usize = 3;

/// Cuts, hashes and dedups chunks and fills frames. With ADAPTIVE_FRAMES the frame size follows the data
/// (see [`Config::frame_limits`]): chunks that look incompressible ([`chunk::incompressible`]) fill frames
/// of their own of SMALL_FRAME_SIZE, so that a random read of them costs little; a frame of other data
/// that is being filled with a run of same-named files (the same file in several versions or places,
/// where long matches pay) grows up to LARGE_FRAME_SIZE; the rest fills frames of FRAME_SIZE. Every
/// frame is given to the codec, which stores it RAW when that is not smaller. Frames are numbered in the
/// order they are sent; their buffers come from `pool` (the compressors give them back). The reader's
/// buffers go back to `bufs` once placed.
pub fn sequencer(
    rx: Receiver<(Vec<Msg>, Vec<Vec<Cut>>)>,
    cfg: &Config,
    seed: Seed,
    dicts: Option<&dyn DictPlan>,
    frames_tx: Sender<FrameParts>,
    bufs: &ReadPool,
    progress: &crate::diag::Progress,
) -> Tables {
    let mut seq = Sequencer::new(cfg, seed, frames_tx);
    seq.dicts = dicts;
    for (batch, cut) in rx {
        let t_seq = std::time::Instant::now();
        let mut seq_bytes = 0u64;
        for (m, cuts) in batch.into_iter().zip(cut) {
            match m {
                Msg::Data {
                    job,
                    data,
                    run,
                    prev,
                    cuts: _,
                } => {
                    if let Some(c) = prev {
                        seq.vote(job, c);
                    }
                    progress.bytes(data.len() as u64);
                    seq_bytes += data.len() as u64;
                    let data = bufs.hold(data);
                    for c in cuts {
                        seq.place(&data, c, run);
                    }
                }
                Msg::End { entries, .. } => {
                    progress.items(entries.len() as u64);
                    seq.current = None;
                    seq.end_content(entries)
                }
                Msg::Fail { .. } => seq.fail(),
            }
        }
        // Own work only: the time blocked handing frames on is left out.
        let end = std::time::Instant::now() - std::mem::take(&mut seq.blocked);
        trace::add(Stage::Sequence, t_seq, end.max(t_seq), seq_bytes);
    }
    seq.finish()
}

/// The sequencer's state between batches.
struct Sequencer<'a> {
    adaptive: bool,
    large: usize,
    frames_tx: Sender<FrameParts>,
    /// Time spent waiting for the compressors since the batch began (not the sequencer's own work,
    /// for the trace).
    blocked: std::time::Duration,
    /// [0]: compressible data, [1]: data that looks incompressible (only with ADAPTIVE_FRAMES).
    open: [OpenFrame; 2],
    t: Tables,
    /// The ids of this run's first rows.
    bases: Bases,
    /// Chunk id by BLAKE3 (of every generation).
    seen: HashMap<[u8; 32], u64>,
    /// The refs of the content being read, and its length so far.
    pending: Vec<ChunkRef>,
    pending_len: u64,
    /// Contents by their chunk ids (of every generation): equal lists are equal bytes.
    by_chunks: HashMap<Vec<u64>, u64>,
    /// Earlier generations, for dictionaries.
    dicts: Option<&'a dyn DictPlan>,
    /// The open compressible frame's dictionary so far: the chunks of earlier versions of its files.
    dict: OpenDict,
    /// The job being read and the earlier version of its file.
    current: Option<(u64, u64)>,
}

/// A dictionary being gathered for the open compressible frame.
#[derive(Default)]
struct OpenDict {
    chunks: Vec<u64>,
    seen: HashSet<u64>,
    bytes: u64,
    frames: Vec<FrameId>,
}

impl<'a> Sequencer<'a> {
    fn new(cfg: &'a Config, seed: Seed, frames_tx: Sender<FrameParts>) -> Self {
        let (small, normal, large) = cfg.frame_limits();
        Sequencer {
            adaptive: adaptive(cfg),
            large: large as usize,
            frames_tx,
            blocked: std::time::Duration::ZERO,
            open: [OpenFrame::new(normal), OpenFrame::new(small)],
            t: Tables::default(),
            bases: seed.bases,
            seen: seed.chunk_ids,
            pending: Vec::new(),
            pending_len: 0,
            by_chunks: seed.by_chunks,
            dicts: None,
            dict: OpenDict::default(),
            current: None,
        }
    }

    /// Job `job`, whose file's earlier version is content `c`, is being read: that version's chunks join
    /// the open compressible frame's dictionary (within 12 MiB and 8 frames).
    fn vote(&mut self, job: u64, c: u64) {
        if self.current.is_some_and(|(j, _)| j == job) {
            return;
        }
        self.current = Some((job, c));
        self.add_to_dict(c);
    }

    fn add_to_dict(&mut self, c: u64) {
        let Some(plan) = self.dicts else {
            return;
        };
        let d = &mut self.dict;
        for (k, f, len) in plan.chunks_of(c) {
            if d.bytes + u64::from(len) > DICT_BUDGET {
                return;
            }
            let new_frame = !d.frames.contains(&f);
            if (new_frame && d.frames.len() == MAX_DICT_FRAMES) || !d.seen.insert(k) {
                continue;
            }
            if new_frame {
                d.frames.push(f);
            }
            d.chunks.push(k);
            d.bytes += u64::from(len);
        }
    }

    /// The dictionary of the compressible frame being sent (`len` bytes): the earlier versions gathered,
    /// when they are at least an eighth of it. The next frame starts gathering anew, with the earlier
    /// version of the file being read.
    fn choose_dict(&mut self, id: u32, len: usize) -> Option<Dict> {
        let d = std::mem::take(&mut self.dict);
        if let Some((_, c)) = self.current {
            self.add_to_dict(c);
        }
        if d.chunks.is_empty() || d.bytes * 8 < len as u64 {
            return None;
        }
        let mut runs: Vec<(ChunkId, u32)> = Vec::new();
        for k in d.chunks {
            match runs.last_mut() {
                Some((f, n)) if f.0 + u64::from(*n) == k => *n += 1,
                _ => runs.push((ChunkId(k), 1)),
            }
        }
        Some(Dict {
            frame: FrameId(id),
            runs,
        })
    }

    /// Adds a chunk of `data` to the content being read: a chunk seen before is referred to again;
    /// a new one goes into the open frame of its kind (which is sent first when it would overflow).
    fn place(&mut self, data: &Arc<Held>, (o, l, h, raw): Cut, run: bool) {
        let id = match self.seen.get(&h) {
            Some(&id) => id,
            None => {
                let k = usize::from(raw);
                let limit = if self.adaptive && run && !raw {
                    self.large
                } else {
                    self.open[k].limit
                };
                if self.open[k].len + l > limit {
                    self.emit(k);
                }
                let t = &mut self.t;
                let f = &mut self.open[k];
                let local = t.chunks.len() as u64;
                let id = self.bases.chunks + local;
                t.chunks.push(Chunk {
                    frame: FrameId(u32::MAX), // set by `emit`
                    offset: f.len as u32,
                    len: l as u32,
                });
                t.hashes.push(h);
                f.chunks.push(local);
                f.add(data, o, l);
                t.unique_bytes += l as u64;
                self.seen.insert(h, id);
                id
            }
        };
        self.pending.push(ChunkRef {
            file_offset: self.pending_len,
            chunk: ChunkId(id),
        });
        self.pending_len += l as u64;
    }

    /// The content being read is complete: it becomes a content (or shares an earlier one with the same
    /// chunks) and `entries` get it.
    fn end_content(&mut self, entries: Vec<usize>) {
        let t = &mut self.t;
        let len = self.pending_len;
        let mut cid = self.bases.contents + t.contents.len() as u64;
        // A file with the same chunks as an earlier one (of this run or of any generation) has the same
        // bytes (chunks are identified by BLAKE3): it shares that content.
        let key: Option<Vec<u64>> =
            (len > 0).then(|| self.pending.iter().map(|r| r.chunk.0).collect());
        match key.as_ref().and_then(|k| self.by_chunks.get(k)) {
            Some(&earlier) => {
                cid = earlier;
                self.pending.clear();
            }
            None if len > 0 => {
                t.contents.push(Content {
                    size: len,
                    first_ref: self.bases.refs + t.refs.len() as u64,
                    ref_count: self.pending.len() as u64,
                });
                t.refs.append(&mut self.pending);
                if let Some(k) = key {
                    self.by_chunks.insert(k, cid);
                }
            }
            None => {}
        }
        t.bytes_in += len * entries.len() as u64;
        for e in entries {
            t.entry_content
                .insert(e, (if len > 0 { cid } else { u64::MAX }, len));
        }
        self.pending_len = 0;
    }

    /// The content being read failed: its chunks so far are not referred to.
    fn fail(&mut self) {
        self.pending.clear();
        self.pending_len = 0;
    }

    /// Sends open frame `k` (if it holds anything) with the next frame id.
    fn emit(&mut self, k: usize) {
        let (t, f) = (&mut self.t, &mut self.open[k]);
        if f.len == 0 {
            return;
        }
        let id = (self.bases.frames + u64::from(t.frames)) as u32;
        for c in f.chunks.drain(..) {
            t.chunks[c as usize].frame = FrameId(id);
        }
        let pieces = std::mem::take(&mut f.pieces);
        let len = f.len;
        f.len = 0;
        f.pinned = 0;
        let dict = if k == 0 {
            self.choose_dict(id, len)
        } else {
            None
        };
        let wait = std::time::Instant::now();
        let parts = FrameParts {
            id,
            len,
            dict,
            pieces,
        };
        self.frames_tx.send(parts).ok();
        self.blocked += wait.elapsed();
        trace::add(Stage::Blocked, wait, std::time::Instant::now(), 0);
        self.t.frames += 1;
    }

    /// Sends the frames still open and returns the tables.
    fn finish(mut self) -> Tables {
        for k in 0..self.open.len() {
            self.emit(k);
        }
        self.t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefgh ijk\n"[(x % 13) as usize]
            })
            .collect()
    }

    /// The cutter hands every batch on in order, each data segment with its own cuts (those of
    /// `chunk::cut_segment`), whether its group was cut on the cutter's threads (small files) or on the
    /// worker pool (a group holding a large file's segment).
    #[test]
    fn cutter_gives_every_segment_its_own_cuts_in_order() {
        let cfg = Config {
            buffer_size: 64 << 10,
            max_worker_threads: 3,
            ..Config::default()
        };
        let seg = segment(&cfg);
        // Every batch is queued before the cutter starts, so its groups are fixed: a group takes batches
        // until it holds 3 threads × 64 KiB (or 3 × its largest segment). So the first batch (small
        // files) is a group cut on the cutter's threads, the next three (a 64 KiB segment among them) one
        // cut on the worker pool, then small files on the cutter's threads and large segments on the pool.
        let sizes: [&[usize]; 6] = [
            &[60_000, 60_000, 50_000, 30_000],
            &[seg, 20_000],
            &[0, 17_000, 64_000, 9],
            &[40_000, 50_000, 60_000, 50_000],
            &[61_000, 62_000, 63_000, 20_000],
            &[seg, seg, seg / 2],
        ];
        let mut batches = Vec::new();
        let mut sent = Vec::new();
        for (b, sz) in sizes.iter().enumerate() {
            let job = b as u64;
            let mut batch = Vec::new();
            for (i, &n) in sz.iter().enumerate() {
                let data = text((b * 10 + i) as u64, n);
                sent.push(Some(data.clone()));
                batch.push(Msg::Data {
                    job,
                    data,
                    run: false,
                    prev: None,
                    cuts: None,
                });
            }
            batch.push(Msg::End {
                job,
                entries: vec![b],
            });
            sent.push(None);
            batches.push(batch);
        }
        let mut got = Vec::new();
        for (batch, cuts) in cut_batches(&cfg, batches) {
            assert_eq!(batch.len(), cuts.len());
            for (m, c) in batch.into_iter().zip(cuts) {
                match m {
                    Msg::Data { data, .. } => {
                        let want = chunk::cut_segment(
                            &data,
                            cfg.chunk_min,
                            cfg.chunk_avg,
                            cfg.chunk_max,
                            adaptive(&cfg),
                        );
                        assert_eq!(c, want);
                        got.push(Some(data));
                    }
                    _ => {
                        assert!(c.is_empty());
                        got.push(None);
                    }
                }
            }
        }
        assert!(got == sent, "every segment, in order");
    }

    /// The reader's windows of small files stay within the read-ahead a config sets (a config that bounds
    /// the pack's memory bounds them too), and hold at least a batch.
    /// A frame refers to the read buffers and is gathered into their bytes in order; adjacent chunks of
    /// one buffer are one piece; a frame that would keep more than PIN_MAX × its limit of buffers alive
    /// copies the rest; a segment's buffer goes back to the read pool once every frame using it is
    /// gathered, not before.
    #[test]
    fn frames_refer_to_read_buffers_until_gathered() {
        let cfg = Config {
            buffer_size: 64 << 10,
            ..Config::default()
        };
        let bufs = ReadPool::new(&cfg);
        let seg = bufs.seg;
        let a = text(1, seg);
        let b = text(2, 1000);
        let (ha, hb) = (bufs.hold(a.clone()), bufs.hold(b.clone()));
        let mut f = OpenFrame::new(3 * seg as u64);
        f.add(&ha, 0, 100);
        f.add(&ha, 100, 50);
        f.add(&hb, 10, 20);
        f.add(&ha, 500, 7);
        assert_eq!(
            f.pieces.len(),
            3,
            "adjacent chunks of one buffer make one piece"
        );
        assert_eq!(f.len, 177);
        assert_eq!(f.pinned, seg + b.capacity() + seg);
        let mut g = OpenFrame::new(3 * seg as u64);
        g.add(&ha, seg - 10, 10);
        let parts = |f: OpenFrame, id| FrameParts {
            id,
            len: f.len,
            dict: None,
            pieces: f.pieces,
        };
        drop((ha, hb));
        let pool = FramePool::new(2, 0);
        let got = parts(f, 7).gather(&pool);
        let want: Vec<u8> = [&a[..150], &b[10..30], &a[500..507]].concat();
        assert_eq!((got.id, &got.data), (7, &want));
        assert!(
            bufs.rx.try_recv().is_err(),
            "frame g still refers to the segment"
        );
        assert_eq!(parts(g, 8).gather(&pool).data, a[seg - 10..]);
        let back = bufs
            .rx
            .try_recv()
            .expect("the segment's buffer is back in the pool");
        assert_eq!(back.capacity(), a.capacity());
        assert!(
            bufs.rx.try_recv().is_err(),
            "a small file's buffer is not kept"
        );

        // Past PIN_MAX × the limit of buffers alive, chunks are copied and nothing more is pinned.
        let mut h = OpenFrame::new(seg as u64);
        let held: Vec<Arc<Held>> = (0..PIN_MAX + 2)
            .map(|i| bufs.hold(text(10 + i as u64, seg)))
            .collect();
        for k in &held {
            h.add(k, 3, 5);
        }
        let shared = h
            .pieces
            .iter()
            .filter(|p| Arc::strong_count(&p.buf) > 1)
            .count();
        assert_eq!(shared, PIN_MAX, "only PIN_MAX segments are kept alive");
        let want: Vec<u8> = held.iter().flat_map(|k| k.data[3..8].to_vec()).collect();
        drop(held);
        assert_eq!(parts(h, 9).gather(&pool).data, want);
    }

    /// The reader hands every job on in order: small files with the cuts of the thread that read them,
    /// a large file's segments read on the pool with cuts too (each its segment's own, as the cutter
    /// would make them), the small files after a large one after it, however their reads overlap.
    #[test]
    fn the_reader_hands_on_in_order_with_each_segments_cuts() {
        let cfg = Config {
            buffer_size: 64 << 10,
            max_worker_threads: 4,
            num_readers: 4,
            ..Config::default()
        };
        let d = tempfile::tempdir().unwrap();
        let sizes = [
            3_000,
            5 * (64 << 10) + 77,
            20_000,
            0,
            64 << 10,
            9_999,
            40_000,
        ];
        let mut jobs = Vec::new();
        let mut want = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let p = d.path().join(format!("f{i}"));
            let bytes = text(i as u64 + 7, n);
            std::fs::write(&p, &bytes).unwrap();
            want.push(bytes);
            jobs.push(job_of(i, &p, n));
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let (slots, _kept) = crossbeam_channel::unbounded();
        let warn = Warnings::default();
        reader_into(jobs, &cfg, (tx, slots), &warn, &ReadPool::new(&cfg));
        let mut got: Vec<Vec<u8>> = vec![Vec::new(); sizes.len()];
        let mut order = Vec::new();
        let (mut cut_here, mut segments_cut) = (0, 0);
        for m in rx.into_iter().flatten() {
            match m {
                Msg::Data {
                    job, data, cuts, ..
                } => {
                    if let Some(c) = cuts {
                        // A file under a segment is read whole: one chunk (CHUNK_FILES_FROM is 1M);
                        // a larger one's segments are cut.
                        let want = if sizes[job as usize] < 64 << 10 {
                            assert_eq!(c.len(), usize::from(!data.is_empty()), "job {job}");
                            cut_file(&cfg, &data)
                        } else {
                            cut_one(&cfg, &data)
                        };
                        assert_eq!(c, want, "job {job}: the cutter's cuts");
                        cut_here += 1;
                        segments_cut += usize::from(data.len() == 64 << 10);
                    }
                    got[job as usize].extend_from_slice(&data);
                }
                Msg::End { job, entries } => {
                    assert_eq!(entries, vec![job as usize]);
                    order.push(job);
                }
                Msg::Fail { job } => panic!("job {job} failed"),
            }
        }
        assert_eq!(order, (0..sizes.len() as u64).collect::<Vec<_>>());
        assert_eq!(got, want);
        assert!(segments_cut >= 4, "a large file's segments cut on the pool");
        assert!(cut_here >= 8, "{cut_here} segments came cut");
    }

    /// The job of entry `i`: file `p` of `n` bytes, no duplicates.
    fn job_of(i: usize, p: &std::path::Path, n: usize) -> Job {
        Job {
            entries: vec![i],
            sources: vec![crate::scan::Source::of(p).unwrap()],
            expect: None,
            size: n as u64,
            run: false,
            prev: None,
        }
    }

    /// Without reader threads every file is streamed; a file read whole in one short segment is still
    /// cut as the pool cuts small files (one chunk under CHUNK_FILES_FROM), a larger one's segments are
    /// left to the cutter, so the chunks do not depend on the path a file took.
    #[test]
    fn a_streamed_small_file_is_cut_as_on_the_pool() {
        let cfg = Config {
            buffer_size: 64 << 10,
            ..Config::default()
        };
        let d = tempfile::tempdir().unwrap();
        let sizes = [40_000, 3 * (64 << 10)];
        let (tx, rx) = crossbeam_channel::unbounded();
        let (slots, _kept) = crossbeam_channel::unbounded();
        let warn = Warnings::default();
        let bufs = ReadPool::new(&cfg);
        let mut r = Reader {
            cfg: &cfg,
            seg: bufs.seg,
            pool: None,
            bufs: &bufs,
            batch_bytes: read_batch_bytes(&cfg),
            queue: VecDeque::new(),
            batch: Vec::new(),
            batch_len: 0,
            seq: 0,
            tx,
            slots,
            warn: &warn,
        };
        for (i, &n) in sizes.iter().enumerate() {
            let p = d.path().join(format!("f{i}"));
            std::fs::write(&p, text(i as u64 + 13, n)).unwrap();
            assert!(r.stream(job_of(i, &p, n)).is_ok());
        }
        assert!(r.flush());
        drop(r);
        let data: Vec<(u64, Vec<u8>, Option<Vec<Cut>>)> = rx
            .into_iter()
            .flatten()
            .filter_map(|m| match m {
                Msg::Data {
                    job, data, cuts, ..
                } => Some((job, data, cuts)),
                _ => None,
            })
            .collect();
        assert_eq!(data.len(), 4, "one segment, then three");
        let (job, small, cuts) = &data[0];
        assert_eq!(*job, 0);
        assert_eq!(cuts.as_ref(), Some(&chunk::whole(small, adaptive(&cfg))));
        assert!(cut_one(&cfg, small).len() > 1, "FastCDC would cut it");
        assert!(data[1..]
            .iter()
            .all(|(job, _, cuts)| *job == 1 && cuts.is_none()));
    }

    #[test]
    fn windows_of_small_files_stay_within_the_read_ahead() {
        assert_eq!(window_max(&Config::default()), READ_WINDOW_MAX);
        let small = Config {
            buffer_size: 64 << 10,
            read_buffer_batches: 4,
            ..Config::default()
        };
        assert_eq!(window_max(&small), 256 << 10);
        let one = Config {
            buffer_size: 64 << 10,
            read_buffer_batches: 0,
            ..Config::default()
        };
        assert_eq!(window_max(&one), 64 << 10);
    }

    /// Queues `batches` for the cutter, each with its slots of the read-ahead taken as the reader takes
    /// them, runs the cutter to the end and returns what it handed on; every slot must be given back.
    fn cut_batches(cfg: &Config, batches: Vec<Vec<Msg>>) -> Vec<(Vec<Msg>, Vec<Vec<Cut>>)> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (slot_tx, slot_rx) = crossbeam_channel::unbounded();
        for batch in batches {
            let bytes: usize = batch
                .iter()
                .map(|m| match m {
                    Msg::Data { data, .. } => data.len(),
                    _ => 0,
                })
                .sum();
            for _ in 0..slot_cost(bytes, read_batch_bytes(cfg)) {
                slot_tx.send(()).unwrap();
            }
            tx.send(batch).unwrap();
        }
        drop(tx);
        let (out_tx, out_rx) = crossbeam_channel::unbounded();
        cutter((rx, slot_rx), cfg, out_tx);
        assert!(slot_tx.is_empty(), "every slot given back");
        out_rx.into_iter().collect()
    }

    /// Segments the reader cut (small files) keep the reader's cuts, whatever they are; the others in the
    /// same batches are cut by the cutter; a batch with nothing left to cut still goes on, with every
    /// slot of its bytes given back.
    #[test]
    fn cutter_passes_on_the_readers_cuts_and_cuts_the_rest() {
        let cfg = Config {
            buffer_size: 64 << 10,
            max_worker_threads: 2,
            ..Config::default()
        };
        // Not what cutting gives: the reader's cuts must come through as they are.
        let mark = |n: usize| vec![(0, n, [n as u8; 32], true)];
        let batches: [&[(usize, bool)]; 3] = [
            &[(30_000, true), (50_000, false), (20_000, true)],
            &[(40_000, true), (9, true)],
            &[(64 << 10, false), (1000, true)],
        ];
        let mut queued = Vec::new();
        let mut want = Vec::new();
        for (b, items) in batches.iter().enumerate() {
            let mut batch = Vec::new();
            for (i, &(n, pre)) in items.iter().enumerate() {
                let data = text((b * 10 + i) as u64, n);
                want.push(if pre {
                    mark(n)
                } else {
                    chunk::cut_segment(
                        &data,
                        cfg.chunk_min,
                        cfg.chunk_avg,
                        cfg.chunk_max,
                        adaptive(&cfg),
                    )
                });
                batch.push(Msg::Data {
                    job: b as u64,
                    data,
                    run: false,
                    prev: None,
                    cuts: pre.then(|| mark(n)),
                });
            }
            queued.push(batch);
        }
        let got: Vec<Vec<Cut>> = cut_batches(&cfg, queued)
            .into_iter()
            .flat_map(|(_, cuts)| cuts)
            .collect();
        assert!(
            got == want,
            "the reader's cuts as given, the rest cut, in order"
        );
    }
}
