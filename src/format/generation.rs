//! Generation index (format version 3; FORMAT.md section 10.2): what one pack or append added to an
//! archive, and the earlier generations it builds on.
//!
//! ```text
//! "CLCIDX03"
//! u32 generation, u32 flags (bit 0 VERSIONED), u32 first_volume
//! u32 earlier, earlier × (u32 last_volume, u64 index_checksum)
//! u64 frame_base, chunk_base, content_base, ref_base
//! params | frames (+ u32 runs, runs × (u64 first chunk, u32 count): the dictionary) | chunks
//! hashes (u64 first, u64 count, 32 B each)
//! contents | refs | entries (u64 length, entry records with stamps) | snapshots (u32 count, records)
//! ```
//!
//! Ids are global (a generation's rows start at its bases), so this decoder checks only what one blob
//! can show: magic, counts against the bytes left, flags, dictionary sizes, names; the archive reader
//! checks the chain of generations and validates the tables of all of them together.

use super::bytes::{Cursor, PutLe};
use super::index::{
    put_chunks, put_contents, put_entry, put_frame, put_params, put_refs, read_chunks,
    read_contents, read_entry, read_frame, read_params, read_refs, Chunk, ChunkRef, Content, Dict,
    Entry, Frame, FRAME_ROW,
};
use crate::error::{Error, Result};
use crate::ids::{ChunkId, FrameId};

pub const MAGIC: [u8; 8] = *b"CLCIDX03";
/// Flag: written by `pack --append`; the archive holds named snapshots.
pub const FLAG_VERSIONED: u32 = 1;
/// Snapshot names are at most this many bytes.
pub const MAX_NAME: usize = 255;

/// An earlier generation as a later one names it: its last volume and its footer's index checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Earlier {
    pub last_volume: u32,
    pub index_checksum: u64,
}

/// The number of rows of each table in all earlier generations: the ids of a generation's first rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bases {
    pub frames: u64,
    pub chunks: u64,
    pub contents: u64,
    pub refs: u64,
}

/// Records of a generation's entry area (or an earlier one's) that belong to a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub generation: u32,
    pub offset: u64,
    pub len: u64,
    pub count: u64,
}

/// A snapshot (FORMAT.md 10.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub name: String,
    /// Seconds since 1970 UTC when the run that made it started.
    pub time: i64,
    /// The source directory as given.
    pub source: Vec<u8>,
    pub entries: u64,
    pub files: u64,
    pub bytes_in: u64,
    pub runs: Vec<Run>,
}

/// One generation's index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenIndex {
    pub generation: u32,
    pub flags: u32,
    pub first_volume: u32,
    pub earlier: Vec<Earlier>,
    pub bases: Bases,
    pub params: Vec<(String, String)>,
    pub frames: Vec<Frame>,
    /// The frames of this generation that have a dictionary (global frame ids, increasing).
    pub dicts: Vec<Dict>,
    pub chunks: Vec<Chunk>,
    /// Chunk id of `hashes[0]`.
    pub hashes_first: u64,
    pub hashes: Vec<[u8; 32]>,
    pub contents: Vec<Content>,
    pub refs: Vec<ChunkRef>,
    /// Entry records (with stamps), named by runs.
    pub entry_area: Vec<u8>,
    pub snapshots: Vec<SnapshotRecord>,
}

impl GenIndex {
    pub fn versioned(&self) -> bool {
        self.flags & FLAG_VERSIONED != 0
    }

    /// The raw (uncompressed) bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&MAGIC);
        v.put_u32(self.generation);
        v.put_u32(self.flags);
        v.put_u32(self.first_volume);
        v.put_u32(self.earlier.len() as u32);
        for e in &self.earlier {
            v.put_u32(e.last_volume);
            v.put_u64(e.index_checksum);
        }
        let b = &self.bases;
        for x in [b.frames, b.chunks, b.contents, b.refs] {
            v.put_u64(x);
        }
        put_params(&mut v, &self.params);
        v.put_u64(self.frames.len() as u64);
        let mut dicts = self.dicts.iter().peekable();
        for (i, f) in self.frames.iter().enumerate() {
            put_frame(&mut v, f);
            let id = FrameId((b.frames + i as u64) as u32);
            match dicts.next_if(|d| d.frame == id) {
                Some(d) => {
                    v.put_u32(d.runs.len() as u32);
                    for &(c, n) in &d.runs {
                        v.put_u64(c.0);
                        v.put_u32(n);
                    }
                }
                None => v.put_u32(0),
            }
        }
        put_chunks(&mut v, &self.chunks);
        v.put_u64(self.hashes_first);
        v.put_u64(self.hashes.len() as u64);
        for h in &self.hashes {
            v.extend_from_slice(h);
        }
        put_contents(&mut v, &self.contents);
        put_refs(&mut v, &self.refs);
        v.put_u64(self.entry_area.len() as u64);
        v.extend_from_slice(&self.entry_area);
        v.put_u32(self.snapshots.len() as u32);
        for s in &self.snapshots {
            v.put_bytes(s.name.as_bytes());
            v.put_i64(s.time);
            v.put_bytes(&s.source);
            v.put_u64(s.entries);
            v.put_u64(s.files);
            v.put_u64(s.bytes_in);
            v.put_u32(s.runs.len() as u32);
            for r in &s.runs {
                v.put_u32(r.generation);
                v.put_u64(r.offset);
                v.put_u64(r.len);
                v.put_u64(r.count);
            }
        }
        v
    }

    /// Parses a generation index; `what` names it in errors.
    pub fn decode(buf: &[u8], what: &str) -> Result<GenIndex> {
        let (mut g, area) = Self::decode_parts(buf, what)?;
        g.entry_area = buf[area].to_vec();
        Ok(g)
    }

    /// [`GenIndex::decode`] of an inflated index that is not needed afterwards: its entry area (most of
    /// a big index: 70 of the 94 MB of a million entries) becomes the `entry_area` in place, moved to
    /// the front of `raw` and the rest given back, instead of copied into fresh memory (whose page
    /// faults were a large part of opening such an archive: docs/BENCHMARKS.md 5.4).
    pub fn decode_owned(mut raw: Vec<u8>, what: &str) -> Result<GenIndex> {
        let (mut g, area) = Self::decode_parts(&raw, what)?;
        raw.truncate(area.end);
        raw.drain(..area.start);
        raw.shrink_to_fit();
        g.entry_area = raw;
        Ok(g)
    }

    /// Everything but the entry area, and where the entry area lies in `buf`.
    fn decode_parts(buf: &[u8], what: &str) -> Result<(GenIndex, std::ops::Range<usize>)> {
        let mut c = Cursor::new(buf, what);
        if c.array::<8>()? != MAGIC {
            return Err(c.err("bad generation index magic"));
        }
        let mut g = GenIndex {
            generation: c.u32()?,
            flags: c.u32()?,
            first_volume: c.u32()?,
            ..GenIndex::default()
        };
        if g.flags & !FLAG_VERSIONED != 0 {
            return Err(c.err(format!("unknown generation flags {:#x}", g.flags)));
        }
        if g.generation == 0 || g.first_volume == 0 {
            return Err(c.err("generation or first volume 0"));
        }
        let n = c.u32()? as usize;
        if n != g.generation as usize - 1 || n > c.remaining() / 12 {
            return Err(c.err(format!(
                "generation {} lists {n} earlier generations",
                g.generation
            )));
        }
        for _ in 0..n {
            g.earlier.push(Earlier {
                last_volume: c.u32()?,
                index_checksum: c.u64()?,
            });
        }
        g.bases = Bases {
            frames: c.u64()?,
            chunks: c.u64()?,
            contents: c.u64()?,
            refs: c.u64()?,
        };
        g.params = read_params(&mut c)?;
        g.read_frames(&mut c)?;
        g.chunks = read_chunks(&mut c)?;
        g.hashes_first = c.u64()?;
        let n = c.count(32)?;
        g.hashes.reserve(n);
        for _ in 0..n {
            g.hashes.push(c.array::<32>()?);
        }
        let end = g.hashes_first.checked_add(n as u64);
        if end != g.bases.chunks.checked_add(g.chunks.len() as u64) {
            return Err(c.err("chunk hashes do not end with this generation's last chunk"));
        }
        g.contents = read_contents(&mut c)?;
        g.refs = read_refs(&mut c)?;
        let n = c.count(1)?;
        let start = c.pos();
        c.take(n)?;
        let area = start..start + n;
        let n = c.u32()? as usize;
        if n > c.remaining() / 40 {
            return Err(c.err("too many snapshots"));
        }
        for _ in 0..n {
            let s = read_snapshot(&mut c)?;
            g.snapshots.push(s);
        }
        if !g.versioned() && !g.snapshots.is_empty() {
            return Err(c.err("snapshot records in a plain generation"));
        }
        if c.remaining() != 0 {
            return Err(c.err("trailing bytes after the snapshots"));
        }
        Ok((g, area))
    }

    fn read_frames(&mut self, c: &mut Cursor) -> Result<()> {
        let n = c.count(FRAME_ROW + 4)?;
        if self.bases.frames.saturating_add(n as u64) > u64::from(u32::MAX) {
            return Err(c.err("more than 2^32 frames"));
        }
        self.frames.reserve(n);
        for i in 0..n {
            self.frames.push(read_frame(c)?);
            let runs = c.u32()? as usize;
            if runs > c.remaining() / 12 {
                return Err(c.err(format!("a dictionary of {runs} runs")));
            }
            if runs > 0 {
                let mut d = Dict {
                    frame: FrameId((self.bases.frames + i as u64) as u32),
                    runs: Vec::with_capacity(runs),
                };
                for _ in 0..runs {
                    d.runs.push((ChunkId(c.u64()?), c.u32()?));
                }
                self.dicts.push(d);
            }
        }
        Ok(())
    }
}

fn read_snapshot(c: &mut Cursor) -> Result<SnapshotRecord> {
    let name = c.bytes()?;
    let name = String::from_utf8(name.to_vec()).map_err(|_| c.err("snapshot name is not UTF-8"))?;
    check_name(&name).map_err(|m| c.err(m))?;
    let time = c.i64()?;
    let source = c.bytes()?.to_vec();
    let entries = c.u64()?;
    let files = c.u64()?;
    let bytes_in = c.u64()?;
    let n = c.u32()? as usize;
    if n > c.remaining() / 28 {
        return Err(c.err("too many runs"));
    }
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        runs.push(Run {
            generation: c.u32()?,
            offset: c.u64()?,
            len: c.u64()?,
            count: c.u64()?,
        });
    }
    let total = runs
        .iter()
        .try_fold(0u64, |a, r| a.checked_add(r.count))
        .ok_or_else(|| c.err("run counts overflow"))?;
    if total != entries {
        return Err(c.err(format!(
            "snapshot {name}: runs hold {total} entries, the record says {entries}"
        )));
    }
    Ok(SnapshotRecord {
        name,
        time,
        source,
        entries,
        files,
        bytes_in,
        runs,
    })
}

/// A snapshot name: 1 to 255 bytes of UTF-8, no '/', no control characters, not "." or "..".
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let shown = name.escape_debug();
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!(
            "snapshot name \"{shown}\" must be 1 to {MAX_NAME} bytes"
        ));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(format!(
            "snapshot name \"{shown}\" contains '/' or a control character"
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("snapshot name \"{shown}\" is not a directory name"));
    }
    Ok(())
}

/// Decodes the `count` entry records that a run names: `bytes` (its slice of an entry area) must hold
/// exactly them. `stamped`: records of version 3 (false for a version 1 entry table).
pub fn decode_run(bytes: &[u8], count: u64, stamped: bool, what: &str) -> Result<Vec<Entry>> {
    let mut c = Cursor::new(bytes, what);
    // Every record is at least 55 bytes: a count beyond that is a lie, refused before allocating.
    if count > (bytes.len() / super::index::MIN_ENTRY) as u64 {
        return Err(c.err(format!("a run of {count} entries in {} bytes", bytes.len())));
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        out.push(read_entry(&mut c, stamped)?);
    }
    if c.remaining() != 0 {
        return Err(c.err("a run's bytes hold more than its entries"));
    }
    Ok(out)
}

/// Appends the version 3 record of `e` to `out`.
pub fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    put_entry(out, e, true);
}

/// The error for a chain of generations that does not hold together.
pub fn chain_error(what: &str, msg: impl Into<String>) -> Error {
    Error::corrupt(what, 0, format!("generation index: {}", msg.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::codec::Codec;
    use crate::format::index::{EntryKind, Stamp};
    use crate::ids::{ChunkId, VolumeNo};

    fn sample() -> GenIndex {
        let mut f = Entry::new(b"a".to_vec(), EntryKind::File, 0o644);
        f.size = 3;
        f.link = 4;
        f.stamp = Some(Stamp {
            ctime_sec: -5,
            ctime_nsec: 7,
            ino: 99,
        });
        let d = Entry::new(b"b".to_vec(), EntryKind::Dir, 0o755);
        let mut area = Vec::new();
        encode_entry(&mut area, &f);
        encode_entry(&mut area, &d);
        GenIndex {
            generation: 2,
            flags: FLAG_VERSIONED,
            first_volume: 3,
            earlier: vec![Earlier {
                last_volume: 2,
                index_checksum: 77,
            }],
            bases: Bases {
                frames: 5,
                chunks: 6,
                contents: 4,
                refs: 8,
            },
            params: vec![("k".into(), "v".into())],
            frames: vec![
                Frame {
                    volume: VolumeNo(3),
                    offset: 72,
                    stored_len: 10,
                    raw_len: 20,
                    codec: Codec::LzExt3,
                    flags: 2,
                    checksum: Some(1),
                };
                2
            ],
            dicts: vec![Dict {
                frame: FrameId(6),
                runs: vec![(ChunkId(1), 2), (ChunkId(9), 1)],
            }],
            chunks: vec![Chunk {
                frame: FrameId(5),
                offset: 0,
                len: 3,
            }],
            hashes_first: 6,
            hashes: vec![[9; 32]],
            contents: vec![Content {
                size: 3,
                first_ref: 8,
                ref_count: 1,
            }],
            refs: vec![ChunkRef {
                file_offset: 0,
                chunk: ChunkId(6),
            }],
            entry_area: area.clone(),
            snapshots: vec![SnapshotRecord {
                name: "2026-01-01T00-00-00Z".into(),
                time: 1_767_225_600,
                source: b"/src".to_vec(),
                entries: 2,
                files: 1,
                bytes_in: 3,
                runs: vec![Run {
                    generation: 2,
                    offset: 0,
                    len: area.len() as u64,
                    count: 2,
                }],
            }],
        }
    }

    #[test]
    fn roundtrip_and_runs() {
        let g = sample();
        let b = g.encode();
        let back = GenIndex::decode(&b, "g").unwrap();
        assert_eq!(back, g);
        assert_eq!(GenIndex::decode_owned(b.clone(), "g").unwrap(), g);
        let r = back.snapshots[0].runs[0];
        let es = decode_run(&back.entry_area, r.count, true, "g").unwrap();
        assert_eq!(es[0].stamp.unwrap().ino, 99);
        assert_eq!(es[1].path, b"b");
        assert!(decode_run(&back.entry_area, 1, true, "g").is_err());
        assert!(decode_run(&back.entry_area, 3, true, "g").is_err());
    }

    /// Every cut fails; flips never panic.
    #[test]
    fn truncations_fail() {
        let b = sample().encode();
        for n in 0..b.len() {
            assert!(GenIndex::decode(&b[..n], "g").is_err(), "cut at {n}");
            assert!(
                GenIndex::decode_owned(b[..n].to_vec(), "g").is_err(),
                "cut at {n}"
            );
        }
        for i in 0..b.len() {
            let mut m = b.clone();
            m[i] ^= 0x41;
            let _ = GenIndex::decode(&m, "g");
        }
    }

    #[test]
    fn names() {
        for ok in ["2026-11-30T05-28-00Z", "nightly", "a b", "é"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a/b", "a\nb", "\u{7f}", ".", "..", &"x".repeat(256)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
