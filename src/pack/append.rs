//! What an append knows of the archive it adds to (FORMAT.md 10.5): the previous snapshot (its entries,
//! for the files cache and for sharing entry records), every generation's chunks by BLAKE3 and contents
//! by their chunk lists (so that nothing stored is stored again), and where the new generation starts.

use super::plan::Cache;
use super::stream::{DictPlan, Seed};
use crate::archive::generations::History;
use crate::archive::Archive;
use crate::diag::Warnings;
use crate::error::{Error, Result};
use crate::format::generation::{Bases, Earlier, Run};
use crate::format::index::{ChunkId, ContentId, Entry, EntryKind, FrameId, Stamp, NONE};
use crate::scan::ScanEntry;
use rayon::prelude::*;
use std::collections::HashMap;

/// An open archive being appended to.
pub struct Previous<'a> {
    pub ar: &'a Archive,
    pub h: &'a History,
}

impl<'a> Previous<'a> {
    pub fn new(ar: &'a Archive) -> Result<Previous<'a>> {
        let h = ar
            .history()
            .ok_or_else(|| Error::Usage("only clc archives can be appended to".into()))?;
        Ok(Previous { ar, h })
    }

    /// The number of the generation an append writes.
    pub fn generation(&self) -> u32 {
        self.h.generations.len() as u32 + 1
    }

    /// The earlier generations, as the new one names them.
    pub fn earlier(&self) -> Vec<Earlier> {
        self.h
            .generations
            .iter()
            .map(|g| Earlier {
                last_volume: g.last_volume,
                index_checksum: g.index_checksum,
            })
            .collect()
    }

    /// The rows of every generation: the ids of the new generation's first rows.
    pub fn bases(&self) -> Bases {
        self.h
            .generations
            .last()
            .map_or(Bases::default(), |g| Bases {
                frames: g.bases.frames + g.added.frames,
                chunks: g.bases.chunks + g.added.chunks,
                contents: g.bases.contents + g.added.contents,
                refs: g.bases.refs + g.added.refs,
            })
    }

    /// The parameters of the newest generation (its chunk sizes are the append's, so that chunks match).
    pub fn param(&self, key: &str) -> Option<&str> {
        self.ar.index().param(key)
    }

    /// The previous snapshot's entries: the newest snapshot, or a plain archive's tree.
    pub fn entries(&self) -> &[Entry] {
        self.ar.index().entries()
    }

    /// The previous snapshot's runs (for a plain archive, one run over generation 1's entry area).
    pub fn runs(&self) -> Vec<Run> {
        match self.ar.selected() {
            Some(s) => s.record.runs.clone(),
            None => vec![self.plain_run()],
        }
    }

    /// The run over a plain archive's whole tree.
    pub fn plain_run(&self) -> Run {
        let g = &self.h.generations[0];
        Run {
            generation: 1,
            offset: 0,
            len: g.area_len(),
            count: self.entries().len() as u64,
        }
    }

    /// The files cache: scan position → (content, size) of every regular file whose path, size, mtime,
    /// change time and inode equal the previous snapshot's entry and stamp; their bytes are not read
    /// (none with `rescan`). Reads the extended attributes of the other entries (the scan left them
    /// out): an unchanged change time means unchanged attributes. Both lists are sorted by path.
    pub fn files_cache(&self, scanned: &mut [ScanEntry], rescan: bool, warn: &Warnings) -> Cache {
        let prev = self.entries();
        let mut known = HashMap::new();
        let mut was = HashMap::new();
        let mut unknown: Vec<usize> = Vec::new();
        let mut j = 0usize;
        for (i, s) in scanned.iter_mut().enumerate() {
            while j < prev.len() && prev[j].path < s.path {
                j += 1;
            }
            let e = prev.get(j).filter(|e| e.path == s.path);
            let stamp = Stamp {
                ctime_sec: s.ctime_sec,
                ctime_nsec: s.ctime_nsec,
                ino: s.ino,
            };
            let same = e.filter(|e| {
                s.kind == EntryKind::File
                    && e.kind == EntryKind::File
                    && e.size == s.size
                    && (e.mtime_sec, e.mtime_nsec) == (s.mtime_sec, s.mtime_nsec)
                    && e.stamp == Some(stamp)
            });
            match same {
                Some(e) if !rescan => {
                    s.xattrs = e.xattrs.clone();
                    known.insert(i, (e.link, e.size));
                }
                _ => {
                    if let Some(e) = e.filter(|e| e.kind == EntryKind::File && e.link != NONE) {
                        was.insert(i, e.link);
                    }
                    unknown.push(i);
                }
            }
        }
        let read: Vec<(usize, crate::scan::Xattrs)> = unknown
            .par_iter()
            .map(|&i| (i, crate::scan::read_xattrs(&scanned[i].abs, warn)))
            .collect();
        for (i, x) in read {
            scanned[i].xattrs = x;
        }
        Cache { known, prev: was }
    }

    /// What the stream starts from: every chunk by BLAKE3, every content by its chunk list. Also returns
    /// the BLAKE3s of the chunks that no generation holds (a plain or version 1 generation 1), from chunk
    /// 0, computed here by decoding their frames, for the new generation to store.
    pub fn seed(&self) -> Result<(Seed, Vec<[u8; 32]>)> {
        let idx = self.ar.index();
        let bases = self.bases();
        let missing = (0..bases.chunks)
            .find(|&c| self.h.chunk_hash(c).is_some())
            .unwrap_or(bases.chunks);
        let computed = if missing > 0 {
            self.hash_chunks(missing)?
        } else {
            Vec::new()
        };
        let mut chunk_ids = HashMap::with_capacity(bases.chunks as usize);
        for c in 0..bases.chunks {
            let h = match computed.get(c as usize) {
                Some(h) => Some(*h),
                None => self.h.chunk_hash(c),
            };
            if let Some(h) = h {
                chunk_ids.entry(h).or_insert(c);
            }
        }
        let by_chunks: HashMap<Vec<u64>, u64> = (0..idx.content_count())
            .map(|c| {
                let key: Vec<u64> = idx.chunks_of(ContentId(c)).map(|k| k.0).collect();
                (key, c)
            })
            .collect();
        let seed = Seed {
            bases,
            chunk_ids,
            by_chunks,
        };
        Ok((seed, computed))
    }

    /// BLAKE3 of chunks `0 .. n`, read from their frames (each frame decoded once, in parallel).
    fn hash_chunks(&self, n: u64) -> Result<Vec<[u8; 32]>> {
        let idx = self.ar.index();
        let mut by_frame: HashMap<FrameId, Vec<u64>> = HashMap::new();
        for c in 0..n {
            let ch = idx
                .chunk(ChunkId(c))
                .ok_or_else(|| Error::Internal(format!("chunk {c} missing")))?;
            by_frame.entry(ch.frame).or_default().push(c);
        }
        let groups: Vec<(FrameId, Vec<u64>)> = by_frame.into_iter().collect();
        let hashed: Vec<Vec<(u64, [u8; 32])>> = groups
            .par_iter()
            .map(|(f, cs)| {
                let data = self.ar.read_frame(*f)?;
                cs.iter()
                    .map(|&c| {
                        let ch = idx.chunk(ChunkId(c)).expect("listed above");
                        let s = ch.offset as usize;
                        let bytes = data.get(s..s + ch.len as usize).ok_or_else(|| {
                            Error::Internal(format!("chunk {c} outside frame {f}"))
                        })?;
                        Ok((c, *blake3::hash(bytes).as_bytes()))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let mut out = vec![[0u8; 32]; n as usize];
        for (c, h) in hashed.into_iter().flatten() {
            out[c as usize] = h;
        }
        Ok(out)
    }

    /// The names taken by earlier snapshots.
    pub fn names(&self) -> Vec<&str> {
        self.h
            .snapshots
            .iter()
            .map(|s| s.record.name.as_str())
            .collect()
    }

    /// Whether the archive is plain: its tree then becomes the first snapshot (FORMAT.md 10.4).
    pub fn is_plain(&self) -> bool {
        !self.h.versioned()
    }

    /// A plain archive's creation time, as far as files tell: its last volume's modification time.
    pub fn plain_time(&self) -> i64 {
        let last = self.ar.volume_paths().last().map(|p| p.to_path_buf());
        last.and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64)
    }
}

/// Dictionaries for an append's frames come from the chunks of earlier generations.
impl DictPlan for Previous<'_> {
    fn chunks_of(&self, c: u64) -> Vec<(u64, FrameId, u32)> {
        let idx = self.ar.index();
        idx.chunks_of(ContentId(c))
            .filter_map(|k| {
                let ch = idx.chunk(k)?;
                idx.dict_of(ch.frame)
                    .is_none()
                    .then_some((k.0, ch.frame, ch.len))
            })
            .collect()
    }
}
