//! The data stream of a pack: a reader thread reads source files in stream order (read-ahead bounded by
//! `READ_BUFFER_BATCHES` batches of `BUFFER_SIZE` bytes); the sequencer cuts them into content-defined chunks,
//! hashes the chunks in parallel, dedups them by BLAKE3 and fills frames in order; frames go to the
//! compression stage.

use crate::chunk;
use crate::config::Config;
use crate::diag::escape_path;
use crate::diag::trace::{self, Stage};
use crate::diag::Warnings;
use crate::format::index::{Chunk, ChunkId, ChunkRef, Content, FrameId};
use crate::scan::Source;
use crossbeam_channel::{Receiver, Sender};
use rayon::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::io::Read;

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
}

/// What the reader tells the sequencer.
pub enum Msg {
    Data {
        job: u64,
        data: Vec<u8>,
        run: bool,
    },
    /// The job's bytes are complete; `entries` get the content.
    End {
        job: u64,
        entries: Vec<usize>,
    },
    /// The job failed; its bytes so far are discarded.
    Fail {
        job: u64,
    },
}

/// Reads every job's files in order, sending batches of about `BUFFER_SIZE` bytes. Runs of small files are
/// read `NUM_READERS` at a time; a large file is streamed in segments.
pub fn reader(jobs: Vec<Job>, cfg: &Config, tx: Sender<Vec<Msg>>, warn: &Warnings) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.readers())
        .thread_name(|i| format!("clc-read-{i}"))
        .build()
        .ok();
    let mut r = Reader {
        seg: (cfg.buffer_size as usize).clamp(64 << 10, 8 << 20),
        batch_bytes: cfg.buffer_size as usize,
        queue: jobs.into(),
        batch: Vec::new(),
        batch_len: 0,
        seq: 0,
        tx,
        warn,
    };
    while let Some(job) = r.queue.pop_front() {
        let small = |j: &Job| j.size < r.seg as u64 && !j.sources.is_empty();
        if !small(&job) || pool.is_none() {
            if r.stream(job).is_err() {
                return;
            }
            continue;
        }
        // A window of small files, read in parallel, handled in order.
        let mut window = vec![job];
        let mut bytes = window[0].size;
        while let Some(next) = r.queue.front() {
            if !small(next) || window.len() >= 1024 || bytes >= r.batch_bytes as u64 {
                break;
            }
            bytes += next.size;
            window.push(r.queue.pop_front().expect("front exists"));
        }
        let seg = r.seg;
        let reads: Vec<std::io::Result<Vec<u8>>> =
            pool.as_ref().expect("checked above").install(|| {
                window
                    .par_iter()
                    .map(|j| read_small(&j.sources[0], j.size, seg))
                    .collect()
            });
        for (job, res) in window.into_iter().zip(reads) {
            let ok = match res {
                Ok(data) if data.len() < seg => r.whole(job, data),
                // Grew past a segment since the scan, or failed: take the streaming path (which warns).
                _ => r.stream(job),
            };
            if ok.is_err() {
                return;
            }
        }
    }
    r.flush();
}

fn read_small(src: &Source, size: u64, seg: usize) -> std::io::Result<Vec<u8>> {
    let t = std::time::Instant::now();
    let mut buf = Vec::with_capacity((size as usize + 1).min(seg));
    src.open()?.take(seg as u64).read_to_end(&mut buf)?;
    trace::add(Stage::Read, t, std::time::Instant::now(), buf.len() as u64);
    Ok(buf)
}

struct Stopped;

struct Reader<'a> {
    seg: usize,
    batch_bytes: usize,
    queue: VecDeque<Job>,
    batch: Vec<Msg>,
    batch_len: usize,
    seq: u64,
    tx: Sender<Vec<Msg>>,
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

    fn flush(&mut self) -> bool {
        self.batch_len = 0;
        self.tx.send(std::mem::take(&mut self.batch)).is_ok()
    }

    /// A small file read whole: checks and sends it.
    fn whole(&mut self, mut job: Job, data: Vec<u8>) -> Result<(), Stopped> {
        let id = self.seq;
        self.seq += 1;
        let hash = job.expect.map(|_| *blake3::hash(&data).as_bytes());
        let total = data.len() as u64;
        if total > 0 {
            let run = job.run;
            self.push(Msg::Data { job: id, data, run })?;
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
                loop {
                    // Size the buffer by what the scan saw, so small files cost small buffers.
                    let hint = (job.size.saturating_sub(total) as usize).clamp(1, self.seg) + 1;
                    let mut buf = Vec::with_capacity(hint.min(self.seg));
                    let t = std::time::Instant::now();
                    let n = (&mut f).take(self.seg as u64).read_to_end(&mut buf)?;
                    trace::add(Stage::Read, t, std::time::Instant::now(), n as u64);
                    if n == 0 {
                        return Ok(Ok(()));
                    }
                    if let Some(h) = hasher.as_mut() {
                        h.update(&buf);
                    }
                    total += n as u64;
                    let msg = Msg::Data {
                        job: id,
                        data: buf,
                        run: job.run,
                    };
                    if self.push(msg).is_err() {
                        return Ok(Err(Stopped));
                    }
                    if n < self.seg {
                        return Ok(Ok(()));
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
                });
            }
        }
        self.push(Msg::End {
            job: id,
            entries: std::mem::take(&mut job.entries),
        })
    }
}

/// The sequencer's result: the data tables of the index, and which scan entry got which content.
#[derive(Default)]
pub struct Tables {
    pub contents: Vec<Content>,
    pub refs: Vec<ChunkRef>,
    pub chunks: Vec<Chunk>,
    pub entry_content: HashMap<usize, u64>,
    pub bytes_in: u64,
    pub unique_bytes: u64,
    pub frames: u32,
}

/// Frame buffers given back after compression, for the sequencer to fill again. A fresh 4-16 MiB
/// buffer costs a page fault per 4 KiB on first touch, which made the sequencer (one thread that
/// every byte passes) spend more time faulting than copying.
pub struct FramePool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
}

impl FramePool {
    /// A pool holding at most `n` idle buffers.
    pub fn new(n: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(n.max(1));
        FramePool { tx, rx }
    }

    /// An empty buffer with room for `cap` bytes: a given-back one when there is one.
    fn take(&self, cap: usize) -> Vec<u8> {
        while let Ok(mut v) = self.rx.try_recv() {
            if v.capacity() >= cap {
                v.clear();
                return v;
            }
        }
        Vec::with_capacity(cap)
    }

    /// Gives a buffer back (dropped if the pool is full).
    pub fn give(&self, v: Vec<u8>) {
        let _ = self.tx.try_send(v);
    }
}

/// A frame's bytes on their way to the compressors.
pub struct RawFrame {
    pub id: u32,
    pub data: Vec<u8>,
}

/// A chunk of a data segment: offset, length, BLAKE3, and whether it looks incompressible.
type Cut = (usize, usize, [u8; 32], bool);

/// A frame being filled: its bytes, the chunks placed in it (their frame id is set when it is sent) and
/// the size at which it is sent.
struct OpenFrame {
    data: Vec<u8>,
    chunks: Vec<u64>,
    limit: usize,
}

impl OpenFrame {
    fn new(limit: u64) -> OpenFrame {
        OpenFrame {
            data: Vec::new(),
            chunks: Vec::new(),
            limit: limit as usize,
        }
    }
}

/// Cuts, hashes and dedups chunks and fills frames. With ADAPTIVE_FRAMES the frame size follows the data
/// (see [`Config::frame_limits`]): chunks that look incompressible ([`chunk::incompressible`]) fill frames
/// of their own of SMALL_FRAME_SIZE, so that a random read of them costs little; a frame of other data
/// that is being filled with a run of same-named files (the same file in several versions or places,
/// where long matches pay) grows up to LARGE_FRAME_SIZE; the rest fills frames of FRAME_SIZE. Every
/// frame is given to the codec, which stores it RAW when that is not smaller. Frames are numbered in the
/// order they are sent; their buffers come from `pool` (the compressors give them back).
pub fn sequencer(
    rx: Receiver<Vec<Msg>>,
    cfg: &Config,
    frames_tx: Sender<RawFrame>,
    pool: &FramePool,
    progress: &crate::diag::Progress,
) -> Tables {
    let mut seq = Sequencer::new(cfg, frames_tx, pool);
    for batch in rx {
        let cut = seq.cut(&batch);
        let t_seq = std::time::Instant::now();
        let mut seq_bytes = 0u64;
        for (m, cuts) in batch.into_iter().zip(cut) {
            match m {
                Msg::Data { data, run, .. } => {
                    progress.bytes(data.len() as u64);
                    seq_bytes += data.len() as u64;
                    for c in cuts {
                        seq.place(&data, c, run);
                    }
                }
                Msg::End { entries, .. } => {
                    progress.items(entries.len() as u64);
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
    cfg: &'a Config,
    adaptive: bool,
    large: usize,
    frames_tx: Sender<RawFrame>,
    /// Where frame buffers come from.
    pool: &'a FramePool,
    /// Time spent waiting for the compressors since the batch began (not the sequencer's own work,
    /// for the trace).
    blocked: std::time::Duration,
    /// [0]: compressible data, [1]: data that looks incompressible (only with ADAPTIVE_FRAMES).
    open: [OpenFrame; 2],
    t: Tables,
    /// Chunk id by BLAKE3.
    seen: HashMap<[u8; 32], u64>,
    /// The refs of the content being read, and its length so far.
    pending: Vec<ChunkRef>,
    pending_len: u64,
    /// Contents of files up to STREAM_DEDUP_MAX by their chunk ids (a few per file).
    small_contents: HashMap<Vec<u64>, u64>,
}

impl<'a> Sequencer<'a> {
    fn new(cfg: &'a Config, frames_tx: Sender<RawFrame>, pool: &'a FramePool) -> Self {
        let (small, normal, large) = cfg.frame_limits();
        Sequencer {
            cfg,
            adaptive: cfg.adaptive_frames && cfg.codec != crate::codec::Codec::Raw,
            large: large as usize,
            frames_tx,
            pool,
            blocked: std::time::Duration::ZERO,
            open: [OpenFrame::new(normal), OpenFrame::new(small)],
            t: Tables::default(),
            seen: HashMap::new(),
            pending: Vec::new(),
            pending_len: 0,
            small_contents: HashMap::new(),
        }
    }

    /// Cuts, hashes and judges every data segment of the batch in parallel; order is kept.
    fn cut(&self, batch: &[Msg]) -> Vec<Vec<Cut>> {
        let (cfg, adaptive) = (self.cfg, self.adaptive);
        batch
            .par_iter()
            .map(|m| match m {
                Msg::Data { data, .. } => trace::timed(Stage::Chunk, data.len() as u64, || {
                    chunk::cut(data, cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max)
                        .into_iter()
                        .map(|(o, l)| {
                            let c = &data[o..o + l];
                            let raw = adaptive && chunk::incompressible(c);
                            (o, l, *blake3::hash(c).as_bytes(), raw)
                        })
                        .collect()
                }),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Adds a chunk of `data` to the content being read: a chunk seen before is referred to again;
    /// a new one goes into the open frame of its kind (which is sent first when it would overflow).
    fn place(&mut self, data: &[u8], (o, l, h, raw): Cut, run: bool) {
        let id = match self.seen.get(&h) {
            Some(&id) => id,
            None => {
                let k = usize::from(raw);
                let limit = if self.adaptive && run && !raw {
                    self.large
                } else {
                    self.open[k].limit
                };
                if self.open[k].data.len() + l > limit {
                    self.emit(k);
                }
                let t = &mut self.t;
                let f = &mut self.open[k];
                if f.data.capacity() == 0 {
                    f.data = self.pool.take(f.limit);
                }
                let id = t.chunks.len() as u64;
                t.chunks.push(Chunk {
                    frame: FrameId(u32::MAX), // set by `emit`
                    offset: f.data.len() as u32,
                    len: l as u32,
                });
                f.chunks.push(id);
                f.data.extend_from_slice(&data[o..o + l]);
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

    /// The content being read is complete: it becomes a content (or shares an earlier small one) and
    /// `entries` get it.
    fn end_content(&mut self, entries: Vec<usize>) {
        let t = &mut self.t;
        let len = self.pending_len;
        let mut cid = t.contents.len() as u64;
        // A small file with the same chunks as an earlier one has the same bytes (chunks are identified
        // by BLAKE3): it shares that content.
        let key: Option<Vec<u64>> = (len > 0 && len <= crate::dedup::STREAM_DEDUP_MAX)
            .then(|| self.pending.iter().map(|r| r.chunk.0).collect());
        match key.as_ref().and_then(|k| self.small_contents.get(k)) {
            Some(&earlier) => {
                cid = earlier;
                self.pending.clear();
            }
            None if len > 0 => {
                t.contents.push(Content {
                    size: len,
                    first_ref: t.refs.len() as u64,
                    ref_count: self.pending.len() as u64,
                });
                t.refs.append(&mut self.pending);
                if let Some(k) = key {
                    self.small_contents.insert(k, cid);
                }
            }
            None => {}
        }
        t.bytes_in += len * entries.len() as u64;
        for e in entries {
            t.entry_content
                .insert(e, if len > 0 { cid } else { u64::MAX });
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
        if f.data.is_empty() {
            return;
        }
        let id = t.frames;
        for c in f.chunks.drain(..) {
            t.chunks[c as usize].frame = FrameId(id);
        }
        let data = std::mem::take(&mut f.data);
        let wait = std::time::Instant::now();
        self.frames_tx.send(RawFrame { id, data }).ok();
        self.blocked += wait.elapsed();
        t.frames += 1;
    }

    /// Sends the frames still open and returns the tables.
    fn finish(mut self) -> Tables {
        for k in 0..self.open.len() {
            self.emit(k);
        }
        self.t
    }
}
