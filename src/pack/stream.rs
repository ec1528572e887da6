//! The data stream of a pack: a reader thread reads source files in stream order (read-ahead bounded by
//! `READ_BUFFER_BATCHES` batches of `BUFFER_SIZE` bytes); the sequencer cuts them into content-defined chunks,
//! hashes the chunks in parallel, dedups them by BLAKE3 and fills frames in order; frames go to the
//! compression stage.

use crate::chunk;
use crate::config::Config;
use crate::format::index::{Chunk, ChunkId, ChunkRef, Content, FrameId};
use crate::warn::Warnings;
use crossbeam_channel::{Receiver, Sender};
use rayon::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

/// One content to store: the scan entries that share it (the first is read; the others are duplicates
/// confirmed by BLAKE3 `expect`, or hardlink-free single files).
pub struct Job {
    pub entries: Vec<usize>,
    pub paths: Vec<PathBuf>,
    pub expect: Option<[u8; 32]>,
    pub size: u64,
}

/// What the reader tells the sequencer.
pub enum Msg {
    Data {
        job: u64,
        data: Vec<u8>,
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

/// Reads every job's files in order, sending batches of about `batch_bytes`.
pub fn reader(jobs: Vec<Job>, cfg: &Config, tx: Sender<Vec<Msg>>, warn: &Warnings) {
    let seg = (cfg.buffer_size as usize).clamp(64 << 10, 8 << 20);
    let batch_bytes = cfg.buffer_size as usize;
    let mut queue: VecDeque<Job> = jobs.into();
    let mut batch: Vec<Msg> = Vec::new();
    let mut batch_len = 0usize;
    let mut seq = 0u64;
    let send = |batch: &mut Vec<Msg>, len: &mut usize, force: bool| -> bool {
        if force || *len >= batch_bytes {
            *len = 0;
            return tx.send(std::mem::take(batch)).is_ok();
        }
        true
    };
    while let Some(mut job) = queue.pop_front() {
        // Try each path of the job in turn until one reads completely.
        let mut done = false;
        while !job.entries.is_empty() && !done {
            let id = seq;
            seq += 1;
            let path = job.paths[0].clone();
            let mut hasher = job.expect.map(|_| blake3::Hasher::new());
            let mut total = 0u64;
            let res = (|| -> std::io::Result<()> {
                let mut f = File::open(&path)?;
                loop {
                    // Size the buffer by what the scan saw, so small files cost small buffers.
                    let hint = (job.size.saturating_sub(total) as usize).clamp(1, seg) + 1;
                    let mut buf = Vec::with_capacity(hint.min(seg));
                    let n = (&mut f).take(seg as u64).read_to_end(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    if let Some(h) = hasher.as_mut() {
                        h.update(&buf);
                    }
                    total += n as u64;
                    batch_len += n;
                    batch.push(Msg::Data { job: id, data: buf });
                    if !send(&mut batch, &mut batch_len, false) {
                        return Err(std::io::Error::other("pipeline stopped"));
                    }
                    if n < seg {
                        return Ok(());
                    }
                }
            })();
            match res {
                Ok(()) => {
                    if total != job.size {
                        warn.warn(format!(
                            "{}: size changed while reading ({} → {total} bytes); stored as read",
                            path.display(),
                            job.size
                        ));
                    }
                    let changed = hasher
                        .map(|h| Some(*h.finalize().as_bytes()) != job.expect)
                        .unwrap_or(false);
                    if changed {
                        warn.warn(format!(
                            "{}: changed since it was hashed for dedup; its duplicates are stored on their own",
                            path.display()
                        ));
                        for (e, p) in job.entries.drain(1..).zip(job.paths.drain(1..)) {
                            queue.push_back(Job {
                                entries: vec![e],
                                paths: vec![p],
                                expect: None,
                                size: job.size,
                            });
                        }
                    }
                    batch.push(Msg::End {
                        job: id,
                        entries: std::mem::take(&mut job.entries),
                    });
                    done = true;
                }
                Err(e) => {
                    batch.push(Msg::Fail { job: id });
                    if e.kind() == std::io::ErrorKind::Other && e.to_string() == "pipeline stopped"
                    {
                        return;
                    }
                    warn.warn(format!("{}: {e} (left out)", path.display()));
                    // A duplicate holds the same bytes: read it instead.
                    job.entries.remove(0);
                    job.paths.remove(0);
                    job.expect = None;
                }
            }
        }
    }
    send(&mut batch, &mut batch_len, true);
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

/// Cuts, hashes and dedups chunks; fills frames of `frame_size` and sends them as (id, bytes).
pub fn sequencer(
    rx: Receiver<Vec<Msg>>,
    cfg: &Config,
    frames_tx: Sender<(u32, Vec<u8>)>,
    progress: &indicatif::ProgressBar,
) -> Tables {
    let frame_size = cfg.frame_size as usize;
    let mut t = Tables::default();
    let mut seen: HashMap<[u8; 32], u64> = HashMap::new();
    let mut frame: Vec<u8> = Vec::with_capacity(frame_size);
    let mut pending: Vec<ChunkRef> = Vec::new();
    let mut pending_len = 0u64;
    let emit = |frame: &mut Vec<u8>, t: &mut Tables| {
        if !frame.is_empty() {
            let f = std::mem::replace(frame, Vec::with_capacity(frame_size));
            frames_tx.send((t.frames, f)).ok();
            t.frames += 1;
        }
    };
    for batch in rx {
        // Cut and hash every data segment of the batch in parallel; order is kept.
        let cut: Vec<Vec<(usize, usize, [u8; 32])>> = batch
            .par_iter()
            .map(|m| match m {
                Msg::Data { data, .. } => {
                    chunk::cut(data, cfg.chunk_min, cfg.chunk_avg, cfg.chunk_max)
                        .into_iter()
                        .map(|(o, l)| (o, l, *blake3::hash(&data[o..o + l]).as_bytes()))
                        .collect()
                }
                _ => Vec::new(),
            })
            .collect();
        for (m, cuts) in batch.into_iter().zip(cut) {
            match m {
                Msg::Data { data, .. } => {
                    progress.inc(data.len() as u64);
                    for (o, l, h) in cuts {
                        let id = match seen.get(&h) {
                            Some(&id) => id,
                            None => {
                                if frame.len() + l > frame_size {
                                    emit(&mut frame, &mut t);
                                }
                                let id = t.chunks.len() as u64;
                                t.chunks.push(Chunk {
                                    frame: FrameId(t.frames),
                                    offset: frame.len() as u32,
                                    len: l as u32,
                                });
                                frame.extend_from_slice(&data[o..o + l]);
                                t.unique_bytes += l as u64;
                                seen.insert(h, id);
                                id
                            }
                        };
                        pending.push(ChunkRef {
                            file_offset: pending_len,
                            chunk: ChunkId(id),
                        });
                        pending_len += l as u64;
                    }
                }
                Msg::End { entries, .. } => {
                    let cid = t.contents.len() as u64;
                    if pending_len > 0 {
                        t.contents.push(Content {
                            size: pending_len,
                            first_ref: t.refs.len() as u64,
                            ref_count: pending.len() as u64,
                        });
                        t.refs.append(&mut pending);
                    }
                    t.bytes_in += pending_len * entries.len() as u64;
                    for e in entries {
                        t.entry_content
                            .insert(e, if pending_len > 0 { cid } else { u64::MAX });
                    }
                    pending_len = 0;
                }
                Msg::Fail { .. } => {
                    pending.clear();
                    pending_len = 0;
                }
            }
        }
    }
    emit(&mut frame, &mut t);
    t
}
