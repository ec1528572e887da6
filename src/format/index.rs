//! The index: parameters, entries, contents, chunk references, chunks and frames (FORMAT.md section 4).
//! The same in-memory [`Index`] is produced by clc's own reader and by the CL_Compressor reader.

use super::bytes::{Cursor, PutLe};
use super::codec::Codec;
use crate::error::{Error, Result};
use std::sync::Arc;

pub const MAGIC: [u8; 8] = *b"CLCIDX01";
/// `link` value meaning "none".
pub const NONE: u64 = u64::MAX;

pub use crate::ids::{ChunkId, ContentId, EntryId, FrameId, VolumeNo};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EntryKind {
    File = 0,
    Dir = 1,
    Symlink = 2,
    Hardlink = 3,
    Fifo = 4,
    CharDev = 5,
    BlockDev = 6,
    Socket = 7,
}

impl EntryKind {
    pub fn from_u8(v: u8) -> Option<Self> {
        use EntryKind::*;
        Some(match v {
            0 => File,
            1 => Dir,
            2 => Symlink,
            3 => Hardlink,
            4 => Fifo,
            5 => CharDev,
            6 => BlockDev,
            7 => Socket,
            _ => return None,
        })
    }

    /// The `ls -l` type letter.
    pub fn letter(self) -> char {
        use EntryKind::*;
        match self {
            File | Hardlink => '-',
            Dir => 'd',
            Symlink => 'l',
            Fifo => 'p',
            CharDev => 'c',
            BlockDev => 'b',
            Socket => 's',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative path, raw bytes, '/'-separated.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    /// Permission bits (07777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    /// File: content length. Symlink: target length. Hardlink: the target's size. Others 0.
    pub size: u64,
    pub rdev: u64,
    /// File: content id or [`NONE`] when empty. Hardlink: the entry linked to. Others [`NONE`].
    pub link: u64,
    pub target: Vec<u8>,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// What the files cache compares (format version 3, versioned archives only; FORMAT.md 10.3).
    pub stamp: Option<Stamp>,
}

/// A file's change time and inode number when it was read: with its size and mtime, what tells an
/// append that the file is unchanged without reading it (the files cache, FORMAT.md 10.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    pub ctime_sec: i64,
    pub ctime_nsec: u32,
    pub ino: u64,
}

impl Entry {
    /// A new entry with no data, root-owned, mtime 0.
    pub fn new(path: Vec<u8>, kind: EntryKind, mode: u32) -> Self {
        Entry {
            path,
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime_sec: 0,
            mtime_nsec: 0,
            size: 0,
            rdev: 0,
            link: NONE,
            target: Vec::new(),
            xattrs: Vec::new(),
            stamp: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Content {
    pub size: u64,
    pub first_ref: u64,
    pub ref_count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    pub file_offset: u64,
    pub chunk: ChunkId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub frame: FrameId,
    pub offset: u32,
    pub len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The volume holding the frame.
    pub volume: VolumeNo,
    /// Offset of the stored bytes in the volume (clc: header offset + 32; the index file stores the header
    /// offset). For CL_Compressor archives, the frame's offset as recorded.
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    pub codec: Codec,
    pub flags: u8,
    /// xxh3 of the decoded bytes; `None` for CL_Compressor frames, which carry no checksum.
    pub checksum: Option<u64>,
}

/// A frame's dictionary (FORMAT.md 2.3): the bytes of these chunks of earlier frames, in order, precede
/// the frame's own bytes when it is decoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dict {
    pub frame: FrameId,
    /// Runs of consecutive chunk ids: (first, count).
    pub runs: Vec<(ChunkId, u32)>,
}

impl Dict {
    /// Its chunks, in order.
    pub fn chunks(&self) -> impl Iterator<Item = ChunkId> + '_ {
        self.runs
            .iter()
            .flat_map(|&(f, n)| (f.0..f.0 + u64::from(n)).map(ChunkId))
    }
}

/// The most frames a dictionary's chunks may lie in, and the most bytes it may hold.
pub const MAX_DICT_FRAMES: usize = 8;
pub const MAX_DICT_BYTES: u64 = 16 << 20;

/// Bytes `at .. at + len` of decoded frame `frame`: a piece of a dictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub frame: FrameId,
    pub at: u32,
    pub len: u32,
}

impl Frame {
    /// Checks decoded bytes against the frame's length and checksum (a CL_Compressor frame has none).
    pub fn check(&self, data: &[u8]) -> Result<()> {
        if data.len() != self.raw_len as usize {
            return Err(Error::Check("decoded length differs from the index"));
        }
        if self.checksum.is_some_and(|c| c != super::checksum(data)) {
            return Err(Error::Check("checksum mismatch"));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    /// Sorted by key.
    pub params: Vec<(String, String)>,
    pub entries: Vec<Entry>,
    pub contents: Vec<Content>,
    pub refs: Vec<ChunkRef>,
    pub chunks: Vec<Chunk>,
    pub frames: Vec<Frame>,
    /// The frames that have a dictionary, by increasing frame id (format version 3).
    pub dicts: Vec<Dict>,
}

const FRAME_HEADER: u64 = super::frame::FrameHeader::SIZE as u64;

impl Index {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Serializes the raw (uncompressed) index in the version 1 layout (FORMAT.md section 4). Stamps and
    /// dictionaries are not part of it: a version 3 archive writes generation indexes
    /// (`format::generation`).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&MAGIC);
        put_params(&mut v, &self.params);
        v.put_u64(self.entries.len() as u64);
        for e in &self.entries {
            put_entry(&mut v, e, false);
        }
        put_contents(&mut v, &self.contents);
        put_refs(&mut v, &self.refs);
        put_chunks(&mut v, &self.chunks);
        v.put_u64(self.frames.len() as u64);
        for f in &self.frames {
            put_frame(&mut v, f);
        }
        v
    }

    /// Parses a raw index of the version 1 layout. `what` names it in errors.
    pub fn decode(buf: &[u8], what: &str) -> Result<Self> {
        let mut c = Cursor::new(buf, what);
        if c.array::<8>()? != MAGIC {
            return Err(c.err("bad index magic"));
        }
        let mut idx = Index {
            params: read_params(&mut c)?,
            ..Index::default()
        };
        let n = c.count(MIN_ENTRY)?;
        idx.entries.reserve(n);
        for _ in 0..n {
            idx.entries.push(read_entry(&mut c, false)?);
        }
        idx.contents = read_contents(&mut c)?;
        idx.refs = read_refs(&mut c)?;
        idx.chunks = read_chunks(&mut c)?;
        let n = c.count(FRAME_ROW)?;
        idx.frames.reserve(n);
        for _ in 0..n {
            idx.frames.push(read_frame(&mut c)?);
        }
        if c.remaining() != 0 {
            return Err(c.err("trailing bytes after the frame table"));
        }
        Ok(idx)
    }

    /// Checks every cross-reference and bound (see [`ValidIndex`]) and returns the index as a
    /// [`ValidIndex`], the only form readers use. `volume_count` bounds the frames' volume numbers;
    /// `what` names the index in errors.
    pub fn validate(self, what: &str, volume_count: u32) -> Result<ValidIndex> {
        let bad = |msg: String| Error::corrupt(what, 0, format!("index: {msg}"));
        let Index {
            params,
            entries,
            contents,
            refs,
            chunks,
            frames,
            dicts,
        } = self;
        let tables = Tables {
            params,
            contents,
            refs,
            chunks,
            frames,
            dicts,
        };
        tables.check(volume_count).map_err(bad)?;
        check_entries(&tables, &entries).map_err(bad)?;
        Ok(ValidIndex {
            tables: Arc::new(tables),
            entries: Arc::new(entries),
        })
    }
}

/// The data tables of an index: what every snapshot of a versioned archive shares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Tables {
    params: Vec<(String, String)>,
    contents: Vec<Content>,
    refs: Vec<ChunkRef>,
    chunks: Vec<Chunk>,
    frames: Vec<Frame>,
    dicts: Vec<Dict>,
}

type Check = std::result::Result<(), String>;

impl Tables {
    fn check(&self, volume_count: u32) -> Check {
        for (i, f) in self.frames.iter().enumerate() {
            if f.volume.0 == 0 || f.volume.0 > volume_count {
                return Err(format!("frame {i} names volume {}", f.volume));
            }
            if f.raw_len > super::frame::MAX_FRAME {
                return Err(format!("frame {i} raw length {}", f.raw_len));
            }
            if f.stored_len > super::frame::MAX_STORED {
                return Err(format!("frame {i} stored length {}", f.stored_len));
            }
            if f.codec == Codec::Raw && f.stored_len != f.raw_len {
                return Err(format!("RAW frame {i} with stored != raw length"));
            }
        }
        self.check_dicts()?;
        for (i, ch) in self.chunks.iter().enumerate() {
            let f = self
                .frames
                .get(ch.frame.0 as usize)
                .ok_or_else(|| format!("chunk {i} names missing frame {}", ch.frame.0))?;
            if ch.offset as u64 + ch.len as u64 > f.raw_len as u64 || ch.len == 0 {
                return Err(format!("chunk {i} lies outside frame {}", ch.frame.0));
            }
        }
        self.check_contents()
    }

    /// Every content's refs lie in the ref table, name existing chunks and cover `0..size` in order
    /// without gap or overlap. Contents may share refs, so checking each content's refs one by one costs
    /// contents × refs (80 000 contents sharing one range of 80 000 refs took 9 s); instead every ref is
    /// looked at once: a content `first..first + count` is sound when no ref in it names a missing chunk,
    /// its first ref is at offset 0, every later one continues the one before it (`next_break`), and the
    /// last ends at the content's size. Linear in refs + contents.
    fn check_contents(&self) -> std::result::Result<(), String> {
        if self.contents.is_empty() {
            return Ok(());
        }
        let n = self.refs.len();
        let len = |j: usize| {
            self.chunks
                .get(self.refs[j].chunk.at())
                .map(|c| u64::from(c.len))
        };
        // Where ref j would have to start to continue ref j - 1 (None: j - 1 names no chunk, or overflow).
        let follows =
            |j: usize| len(j - 1).and_then(|l| self.refs[j - 1].file_offset.checked_add(l));
        // next_missing[j]: the first ref at or after j naming no chunk; next_break[j]: the first ref after j
        // that does not continue the one before it (n when none).
        let mut next_missing = vec![n; n + 1];
        let mut next_break = vec![n; n + 1];
        for j in (0..n).rev() {
            next_missing[j] = if len(j).is_none() {
                j
            } else {
                next_missing[j + 1]
            };
            next_break[j] = match j + 1 < n && follows(j + 1) != Some(self.refs[j + 1].file_offset)
            {
                true => j + 1,
                false => next_break[j + 1],
            };
        }
        for (i, ct) in self.contents.iter().enumerate() {
            let range = ct
                .first_ref
                .checked_add(ct.ref_count)
                .filter(|&e| e <= n as u64)
                .map(|e| ct.first_ref as usize..e as usize)
                .ok_or_else(|| format!("content {i} refs out of range"))?;
            let (f, end) = (range.start, range.end);
            if f == end {
                if ct.size != 0 {
                    return Err(format!("content {i} refs cover 0 of {} bytes", ct.size));
                }
                continue;
            }
            // The first problem in ref order, as a walk through the refs would meet it: a ref naming no
            // chunk, or one starting elsewhere than where the previous one ended.
            let gap = if self.refs[f].file_offset != 0 {
                f
            } else {
                next_break[f]
            };
            let missing = next_missing[f];
            if missing < end && missing <= gap {
                let c = self.refs[missing].chunk.0;
                return Err(format!("content {i} names missing chunk {c}"));
            }
            if gap < end {
                let pos = if gap == f {
                    0
                } else {
                    follows(gap).unwrap_or(u64::MAX)
                };
                return Err(format!("content {i} has a gap or overlap at {pos}"));
            }
            let pos = follows(end).unwrap_or(u64::MAX);
            if pos != ct.size {
                return Err(format!("content {i} refs cover {pos} of {} bytes", ct.size));
            }
        }
        Ok(())
    }

    /// FORMAT.md 2.3: a dictionary belongs to an LZ_EXT3 frame and names existing chunks of earlier
    /// frames that have none themselves, at most 16 MiB in at most 8 frames; frames listed once, in
    /// order; flag bit 1 exactly on them.
    fn check_dicts(&self) -> Check {
        let mut prev: Option<FrameId> = None;
        for d in &self.dicts {
            let i = d.frame.0;
            if prev.is_some_and(|p| p >= d.frame) {
                return Err(format!("dictionary of frame {i} out of order"));
            }
            prev = Some(d.frame);
            let f = self
                .frames
                .get(d.frame.at())
                .ok_or_else(|| format!("dictionary of missing frame {i}"))?;
            if f.codec != Codec::LzExt3 {
                return Err(format!(
                    "frame {i}: a dictionary on a {} frame",
                    f.codec.name()
                ));
            }
            let end_ok = d.runs.iter().all(|&(c, n)| {
                n > 0
                    && c.0
                        .checked_add(u64::from(n))
                        .is_some_and(|e| e <= self.chunks.len() as u64)
            });
            if d.runs.is_empty() || !end_ok {
                return Err(format!("frame {i}: dictionary chunks out of range"));
            }
            let (mut bytes, mut frames) = (0u64, Vec::<FrameId>::new());
            for c in d.chunks() {
                let ch = &self.chunks[c.at()];
                if ch.frame >= d.frame {
                    return Err(format!("frame {i}: dictionary chunk {c} of a later frame"));
                }
                if self.dict_index(ch.frame).is_some() {
                    return Err(format!(
                        "frame {i}: dictionary chunk {c} in frame {}, which has a dictionary",
                        ch.frame
                    ));
                }
                bytes += u64::from(ch.len);
                if !frames.contains(&ch.frame) {
                    frames.push(ch.frame);
                }
                if bytes > MAX_DICT_BYTES || frames.len() > MAX_DICT_FRAMES {
                    return Err(format!(
                        "frame {i}: dictionary of more than 16 MiB or 8 frames"
                    ));
                }
            }
        }
        for (i, f) in self.frames.iter().enumerate() {
            let flagged = f.flags & super::frame::FLAG_DICT != 0;
            if flagged != self.dict_index(FrameId(i as u32)).is_some() {
                return Err(format!(
                    "frame {i}: dictionary flag disagrees with the table"
                ));
            }
        }
        Ok(())
    }

    fn dict_index(&self, id: FrameId) -> Option<usize> {
        self.dicts.binary_search_by(|d| d.frame.cmp(&id)).ok()
    }
}

/// Entries: valid sorted paths, parents that are earlier directories, files naming contents of their
/// size, hardlinks naming earlier files.
fn check_entries(t: &Tables, entries: &[Entry]) -> Check {
    let mut prev: Option<&[u8]> = None;
    // The parent path last proved to be a directory entry: siblings come in runs, so the binary
    // search of `check_parent` runs once per run, not once per entry.
    let mut proved: Option<&[u8]> = None;
    for (i, e) in entries.iter().enumerate() {
        check_path(&e.path).map_err(|m| format!("entry {i}: {m}"))?;
        if prev.is_some_and(|p| p >= e.path.as_slice()) {
            return Err(format!("entry {i} out of order or duplicate path"));
        }
        prev = Some(&e.path);
        let parent = e
            .path
            .iter()
            .rposition(|&b| b == b'/')
            .map(|s| &e.path[..s]);
        if parent.is_some() && parent != proved {
            check_parent(entries, i, &e.path)?;
            proved = parent;
        }
        check_xattrs(&e.xattrs).map_err(|m| format!("entry {i}: {m}"))?;
        match e.kind {
            EntryKind::File => {
                if e.link == NONE {
                    if e.size != 0 {
                        return Err(format!("entry {i} has size but no content"));
                    }
                } else {
                    let ct = t
                        .contents
                        .get(e.link as usize)
                        .ok_or_else(|| format!("entry {i} names missing content"))?;
                    if ct.size != e.size {
                        return Err(format!("entry {i} size differs from its content"));
                    }
                }
            }
            EntryKind::Hardlink => {
                let t = (e.link < i as u64)
                    .then(|| &entries[e.link as usize])
                    .ok_or_else(|| format!("hardlink {i} names a later entry"))?;
                if t.kind != EntryKind::File {
                    return Err(format!("hardlink {i} does not name a file"));
                }
            }
            // The stored size of anything but a file is not used: list and the mount show a
            // symlink's target length, a hardlink's file's size, 0 otherwise (docs/RELIABILITY.md).
            _ => {}
        }
    }
    Ok(())
}

/// The parent of entry `i` (whose path is `p`) must be an earlier entry of kind Dir, or the root: an
/// entry below a symlink, a file or nothing would be written through whatever stands there. Entries are
/// sorted by then (checked before), so the parent is found by binary search.
fn check_parent(entries: &[Entry], i: usize, p: &[u8]) -> Check {
    let Some(slash) = p.iter().rposition(|&b| b == b'/') else {
        return Ok(());
    };
    let parent = &p[..slash];
    let show = || String::from_utf8_lossy(parent).into_owned();
    match entries[..i].binary_search_by(|e| e.path.as_slice().cmp(parent)) {
        Ok(j) if entries[j].kind == EntryKind::Dir => Ok(()),
        Ok(_) => Err(format!("entry {i}: parent {} is not a directory", show())),
        Err(_) => Err(format!(
            "entry {i}: parent {} is not in the archive",
            show()
        )),
    }
}

/// An index whose every cross-reference [`Index::validate`] has checked. Its tables are private and its
/// accessors rely on what was proved, which is:
///
/// * frames: volume in `1..=volume_count`, raw length at most `MAX_FRAME`, stored length at most
///   `MAX_STORED`, a RAW frame's stored length equal to its raw length; a dictionary (FORMAT.md 2.3)
///   names 1 to 4 earlier frames without dictionaries, at most 16 MiB;
/// * chunks: non-empty, in an existing frame, within that frame's raw length;
/// * contents: their refs lie in the ref table, name existing chunks, and cover `0..size` without gap
///   or overlap;
/// * entries: valid relative paths, sorted and unique, each parent an earlier directory entry; a file
///   names an existing content of its size (or none, with size 0); a hardlink names an earlier file.
///
/// The data tables are shared (cheaply cloned) between the trees of the snapshots of one archive
/// ([`ValidIndex::with_entries`]). Entry ids given to the accessors may come from anywhere: an unknown
/// one gives `None` (or nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidIndex {
    tables: Arc<Tables>,
    entries: Arc<Vec<Entry>>,
}
/// A piece of a file's bytes: `len` bytes at `at` in the decoded frame `frame`, which are the file's
/// bytes from `file_offset` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub frame: FrameId,
    pub at: u32,
    pub len: u32,
    pub file_offset: u64,
}

impl ValidIndex {
    /// The parameters, sorted by key.
    pub fn params(&self) -> &[(String, String)] {
        &self.tables.params
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.tables
            .params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every entry, in path order (entry `i` has id `EntryId(i)`).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entry `id`, if there is one.
    pub fn entry(&self, id: EntryId) -> Option<&Entry> {
        self.entries.get(id.at())
    }

    /// The entries with their ids.
    pub fn entries_with_ids(&self) -> impl Iterator<Item = (EntryId, &Entry)> {
        (0u64..).map(EntryId).zip(self.entries.iter())
    }

    /// The file a hardlink entry names (an earlier file entry); `None` for other entries.
    pub fn hardlink_target(&self, id: EntryId) -> Option<EntryId> {
        let e = self.entry(id)?;
        (e.kind == EntryKind::Hardlink).then_some(EntryId(e.link))
    }

    /// The entry holding the data and metadata of `id`'s bytes: its hardlink target, or itself.
    pub fn data_entry(&self, id: EntryId) -> EntryId {
        self.hardlink_target(id).unwrap_or(id)
    }

    /// The content holding the bytes of entry `id` (following a hardlink); `None` for an empty file and
    /// for entries without data.
    pub fn content_of(&self, id: EntryId) -> Option<ContentId> {
        let file = self.entry(self.data_entry(id))?;
        (file.kind == EntryKind::File && file.link != NONE).then_some(ContentId(file.link))
    }

    /// The bytes of data of entry `id`: a file's size, a hardlink's target's; 0 for anything else.
    pub fn data_size(&self, id: EntryId) -> u64 {
        self.content_of(id)
            .map_or(0, |c| self.tables.contents[c.at()].size)
    }

    /// The sum of all contents' sizes: the bytes of the unique files.
    pub fn unique_bytes(&self) -> u64 {
        self.tables.contents.iter().map(|c| c.size).sum()
    }

    /// The sum of all chunks' lengths: the unique bytes after chunk dedup.
    pub fn chunk_bytes(&self) -> u64 {
        self.tables.chunks.iter().map(|c| u64::from(c.len)).sum()
    }

    /// The frame table.
    pub fn frames(&self) -> &[Frame] {
        &self.tables.frames
    }

    /// Frame `id`, if there is one.
    pub fn frame(&self, id: FrameId) -> Option<&Frame> {
        self.tables.frames.get(id.at())
    }

    /// Every frame id, in order.
    pub fn frame_ids(&self) -> impl Iterator<Item = FrameId> {
        (0..self.tables.frames.len() as u32).map(FrameId)
    }

    /// The decoded length of the largest frame (0 without frames).
    pub fn max_frame_len(&self) -> u64 {
        self.tables
            .frames
            .iter()
            .map(|f| u64::from(f.raw_len))
            .max()
            .unwrap_or(0)
    }

    /// The pieces of content `c` from the one holding byte `offset` on, in file order.
    pub fn pieces(&self, c: ContentId, offset: u64) -> impl Iterator<Item = Piece> + '_ {
        let refs = self.refs(c);
        let first = refs
            .partition_point(|r| r.file_offset <= offset)
            .saturating_sub(1);
        refs[first..].iter().map(|r| {
            // Validated: every ref names a chunk, every chunk lies within its frame.
            let ch = self.tables.chunks[r.chunk.at()];
            Piece {
                frame: ch.frame,
                at: ch.offset,
                len: ch.len,
                file_offset: r.file_offset,
            }
        })
    }

    /// The frames holding bytes `from..to` of entry `id` (following a hardlink), in file order, without
    /// repeats.
    pub fn frames_in(&self, id: EntryId, from: u64, to: u64) -> Vec<FrameId> {
        let Some(c) = self.content_of(id) else {
            return Vec::new();
        };
        let mut out: Vec<FrameId> = Vec::new();
        for p in self.pieces(c, from).take_while(|p| p.file_offset < to) {
            if out.last() != Some(&p.frame) {
                out.push(p.frame);
            }
        }
        out
    }

    /// Every frame holding bytes of entry `id`, in file order, without repeats.
    pub fn frames_of(&self, id: EntryId) -> Vec<FrameId> {
        self.frames_in(id, 0, u64::MAX)
    }

    /// For each frame of `wanted`: how many file entries hold bytes in it, and up to `names` of them.
    ///
    /// Linear in entries + contents + refs, whatever the index shares. Walking each file's refs would cost
    /// files × refs (8 000 files sharing one content of 8 000 refs made `verify` build 64 million
    /// strings). Validation proved that two contents whose refs overlap start at the same ref (a later
    /// start would need a ref at offset 0 inside a run that started at 0), so the contents fall into
    /// groups by their first ref, each group a set of prefixes of its longest range, and the groups'
    /// ranges are disjoint: one walk of each group's longest range finds, for each frame, the first ref
    /// that reaches it, and so which of the group's contents (those longer than that) hold bytes in it.
    pub fn files_in_frames(&self, wanted: &[FrameId], names: usize) -> Vec<(u64, Vec<EntryId>)> {
        use std::collections::{HashMap, HashSet};
        let mut out: Vec<(u64, Vec<EntryId>)> = vec![(0, Vec::new()); wanted.len()];
        let slot: HashMap<FrameId, usize> =
            wanted.iter().enumerate().map(|(i, f)| (*f, i)).collect();
        if slot.is_empty() {
            return out;
        }
        // The file entries of each content, in entry order.
        let mut users: HashMap<u64, Vec<EntryId>> = HashMap::new();
        for (id, e) in self.entries_with_ids() {
            if e.kind == EntryKind::File && e.link != NONE {
                users.entry(e.link).or_default().push(id);
            }
        }
        // Contents with users, by first ref, longest first.
        let mut order: Vec<u64> = users.keys().copied().collect();
        order.retain(|&c| self.tables.contents[c as usize].ref_count > 0);
        let key = |c: &u64| {
            let ct = &self.tables.contents[*c as usize];
            (ct.first_ref, std::cmp::Reverse(ct.ref_count), *c)
        };
        order.sort_unstable_by_key(key);
        let mut seen: HashSet<FrameId> = HashSet::new();
        let mut g = 0;
        while g < order.len() {
            let first = self.tables.contents[order[g] as usize].first_ref;
            let len = order[g..]
                .iter()
                .take_while(|&&c| self.tables.contents[c as usize].first_ref == first)
                .count();
            let group = &order[g..g + len];
            g += len;
            seen.clear();
            // Users of the group's first k contents, for every k (every content here has users).
            let mut before = Vec::with_capacity(len + 1);
            before.push(0u64);
            for c in group {
                before.push(before[before.len() - 1] + users[c].len() as u64);
            }
            let longest = self.tables.contents[group[0] as usize].ref_count;
            for p in 0..longest {
                let r = self.tables.refs[(first + p) as usize];
                let frame = self.tables.chunks[r.chunk.at()].frame;
                let Some(&w) = slot.get(&frame) else { continue };
                if !seen.insert(frame) {
                    continue;
                }
                // The group's contents longer than p hold bytes of this frame: a prefix of `group`.
                let k = group.partition_point(|&c| self.tables.contents[c as usize].ref_count > p);
                out[w].0 += before[k];
                // Each content has a user: at most `names` contents are visited.
                for c in &group[..k] {
                    let room = names.saturating_sub(out[w].1.len());
                    if room == 0 {
                        break;
                    }
                    out[w].1.extend(users[c].iter().take(room));
                }
            }
        }
        out
    }

    /// The refs of content `c` (an id from `content_of`, so in range).
    fn refs(&self, c: ContentId) -> &[ChunkRef] {
        let ct = &self.tables.contents[c.at()];
        &self.tables.refs[ct.first_ref as usize..(ct.first_ref + ct.ref_count) as usize]
    }

    /// The dictionary of frame `id` (FORMAT.md 2.3), if it has one.
    pub fn dict_of(&self, id: FrameId) -> Option<&Dict> {
        self.tables.dict_index(id).map(|i| &self.tables.dicts[i])
    }

    /// The byte ranges of decoded frames that make up a dictionary of chunks `runs` (of this index: a
    /// frame's own, or one an append plans), adjacent ones merged; `None` when a chunk is unknown.
    pub fn spans(&self, runs: &[(ChunkId, u32)]) -> Option<Vec<Span>> {
        let mut out: Vec<Span> = Vec::new();
        for &(first, n) in runs {
            for c in first.0..first.0.checked_add(u64::from(n))? {
                let ch = self.tables.chunks.get(c as usize)?;
                match out.last_mut() {
                    Some(s) if s.frame == ch.frame && s.at + s.len == ch.offset => s.len += ch.len,
                    _ => out.push(Span {
                        frame: ch.frame,
                        at: ch.offset,
                        len: ch.len,
                    }),
                }
            }
        }
        Some(out)
    }

    /// Frame `id`'s dictionary as byte ranges of earlier frames (validated: all exist), if it has one.
    pub fn dict_spans(&self, id: FrameId) -> Option<Vec<Span>> {
        self.spans(&self.dict_of(id)?.runs)
    }

    /// The frames that have a dictionary.
    pub fn dicts(&self) -> &[Dict] {
        &self.tables.dicts
    }

    /// The content table's length: contents have ids `0 .. content_count()`.
    pub fn content_count(&self) -> u64 {
        self.tables.contents.len() as u64
    }

    /// The chunks of content `c`, in file order (nothing for an unknown id).
    pub fn chunks_of(&self, c: ContentId) -> impl Iterator<Item = ChunkId> + '_ {
        let refs: &[ChunkRef] = match self.tables.contents.get(c.at()) {
            Some(_) => self.refs(c),
            None => &[],
        };
        refs.iter().map(|r| r.chunk)
    }

    /// Chunk `id`, if there is one.
    pub fn chunk(&self, id: ChunkId) -> Option<&Chunk> {
        self.tables.chunks.get(id.at())
    }

    /// The chunk table's length.
    pub fn chunk_count(&self) -> u64 {
        self.tables.chunks.len() as u64
    }

    /// The same data tables with another entry table (another snapshot's tree), which is validated
    /// against them; `what` names it in errors. The tables are shared, not copied.
    pub fn with_entries(&self, entries: Vec<Entry>, what: &str) -> Result<ValidIndex> {
        check_entries(&self.tables, &entries)
            .map_err(|m| Error::corrupt(what, 0, format!("index: {m}")))?;
        Ok(ValidIndex {
            tables: self.tables.clone(),
            entries: Arc::new(entries),
        })
    }

    /// The tables again, for writing them out or changing them (then to be validated anew).
    pub fn into_raw(self) -> Index {
        let t = Arc::unwrap_or_clone(self.tables);
        Index {
            params: t.params,
            entries: Arc::unwrap_or_clone(self.entries),
            contents: t.contents,
            refs: t.refs,
            chunks: t.chunks,
            frames: t.frames,
            dicts: t.dicts,
        }
    }
}

/// A relative path is one or more non-empty components, none "." or "..", no NUL.
pub fn check_path(p: &[u8]) -> std::result::Result<(), String> {
    if p.is_empty() || p[0] == b'/' || p.contains(&0) {
        return Err("empty, absolute or NUL in path".into());
    }
    for comp in p.split(|&b| b == b'/') {
        if comp.is_empty() || comp == b"." || comp == b".." {
            return Err(format!("bad path \"{}\"", crate::diag::escape(p)));
        }
    }
    Ok(())
}

/// Linux's limits on extended attributes (`XATTR_NAME_MAX`, `XATTR_SIZE_MAX`, `XATTR_LIST_MAX`): a name of
/// 1 ..= 255 bytes without NUL, a value of at most 64 KiB, and one file's names (each with its NUL) at most
/// 64 KiB in all. An index holding anything else is damaged: no file system could have given it.
pub const XATTR_NAME_MAX: usize = 255;
pub const XATTR_SIZE_MAX: usize = 64 << 10;
pub const XATTR_LIST_MAX: usize = 64 << 10;
/// The most xattrs one entry can have: names of one byte and a NUL each.
pub const MAX_XATTRS: usize = XATTR_LIST_MAX / 2;

/// Checks one entry's xattrs against Linux's limits ([`XATTR_NAME_MAX`] …).
pub fn check_xattrs(x: &[(Vec<u8>, Vec<u8>)]) -> std::result::Result<(), String> {
    let mut list = 0usize;
    for (n, v) in x {
        let show = || crate::diag::escape(&n[..n.len().min(64)]);
        if n.is_empty() || n.len() > XATTR_NAME_MAX || n.contains(&0) {
            return Err(format!(
                "xattr name \"{}\" of {} bytes (1 to {XATTR_NAME_MAX}, no NUL)",
                show(),
                n.len()
            ));
        }
        if v.len() > XATTR_SIZE_MAX {
            return Err(format!("xattr {} value of {} bytes", show(), v.len()));
        }
        list += n.len() + 1;
        if list > XATTR_LIST_MAX {
            return Err(format!("xattr names past {XATTR_LIST_MAX} bytes"));
        }
    }
    Ok(())
}

fn utf8(c: &Cursor, b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| c.err("param is not UTF-8"))
}

/// Smallest encoded entry (version 1 layout), frame row, content, ref and chunk: counts are checked
/// against them before anything is allocated.
pub(crate) const MIN_ENTRY: usize = 55;
pub(crate) const FRAME_ROW: usize = 30;

/// Params: u32 count, then (bytes key, bytes value) each.
pub(crate) fn put_params(v: &mut Vec<u8>, params: &[(String, String)]) {
    v.put_u32(params.len() as u32);
    for (k, val) in params {
        v.put_bytes(k.as_bytes());
        v.put_bytes(val.as_bytes());
    }
}

pub(crate) fn read_params(c: &mut Cursor) -> Result<Vec<(String, String)>> {
    let np = c.u32()? as usize;
    if np > c.remaining() / 8 {
        return Err(c.err("too many params"));
    }
    let mut params = Vec::with_capacity(np);
    for _ in 0..np {
        let k = c.bytes()?;
        let k = utf8(c, k)?;
        let v = c.bytes()?;
        let v = utf8(c, v)?;
        params.push((k, v));
    }
    Ok(params)
}

/// One entry record; `stamped` adds the version 3 stamp (FORMAT.md 10.3).
pub(crate) fn put_entry(v: &mut Vec<u8>, e: &Entry, stamped: bool) {
    v.put_u8(e.kind as u8);
    v.put_bytes(&e.path);
    v.put_u32(e.mode);
    v.put_u32(e.uid);
    v.put_u32(e.gid);
    v.put_i64(e.mtime_sec);
    v.put_u32(e.mtime_nsec);
    v.put_u64(e.size);
    v.put_u64(e.rdev);
    v.put_u64(e.link);
    v.put_bytes(&e.target);
    v.put_u32(e.xattrs.len() as u32);
    for (n, val) in &e.xattrs {
        v.put_bytes(n);
        v.put_bytes(val);
    }
    if stamped {
        match &e.stamp {
            None => v.put_u8(0),
            Some(s) => {
                v.put_u8(1);
                v.put_i64(s.ctime_sec);
                v.put_u32(s.ctime_nsec);
                v.put_u64(s.ino);
            }
        }
    }
}

/// The length of `e`'s record as [`put_entry`] writes it.
pub fn record_len(e: &Entry, stamped: bool) -> u64 {
    let x: usize = e.xattrs.iter().map(|(n, v)| 8 + n.len() + v.len()).sum();
    let stamp = match (stamped, &e.stamp) {
        (false, _) => 0,
        (true, None) => 1,
        (true, Some(_)) => 21,
    };
    (1 + 4 + e.path.len() + 12 + 12 + 24 + 4 + e.target.len() + 4 + x + stamp) as u64
}

pub(crate) fn read_entry(c: &mut Cursor, stamped: bool) -> Result<Entry> {
    let kind = EntryKind::from_u8(c.u8()?).ok_or_else(|| c.err("unknown entry kind"))?;
    let path = c.bytes()?.to_vec();
    let mode = c.u32()?;
    let uid = c.u32()?;
    let gid = c.u32()?;
    let mtime_sec = c.i64()?;
    let mtime_nsec = c.u32()?;
    let size = c.u64()?;
    let rdev = c.u64()?;
    let link = c.u64()?;
    let target = c.bytes()?.to_vec();
    let at = c.pos();
    let nx = c.u32()? as usize;
    // Each xattr takes at least 9 bytes (a name of 1 byte) and Linux allows at most XATTR_LIST_MAX / 2:
    // a count past either is refused before anything is sized by it.
    if nx > MAX_XATTRS || nx > c.remaining() / 9 {
        return Err(c.err(format!("{nx} xattrs in one entry")));
    }
    let mut xattrs = Vec::with_capacity(nx);
    for _ in 0..nx {
        let n = c.bytes()?.to_vec();
        let v = c.bytes()?.to_vec();
        xattrs.push((n, v));
    }
    check_xattrs(&xattrs)
        .map_err(|m| Error::corrupt(c.what(), at as u64, format!("index: {m}")))?;
    if mode > 0o7777 || mtime_nsec >= 1_000_000_000 {
        return Err(c.err("entry mode or mtime out of range"));
    }
    let stamp = match stamped.then(|| c.u8()).transpose()? {
        None | Some(0) => None,
        Some(1) => Some(Stamp {
            ctime_sec: c.i64()?,
            ctime_nsec: c.u32()?,
            ino: c.u64()?,
        }),
        Some(_) => return Err(c.err("bad entry stamp flag")),
    };
    Ok(Entry {
        path,
        kind,
        mode,
        uid,
        gid,
        mtime_sec,
        mtime_nsec,
        size,
        rdev,
        link,
        target,
        xattrs,
        stamp,
    })
}

pub(crate) fn put_contents(v: &mut Vec<u8>, contents: &[Content]) {
    v.put_u64(contents.len() as u64);
    for c in contents {
        v.put_u64(c.size);
        v.put_u64(c.first_ref);
        v.put_u64(c.ref_count);
    }
}

pub(crate) fn read_contents(c: &mut Cursor) -> Result<Vec<Content>> {
    let n = c.count(24)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Content {
            size: c.u64()?,
            first_ref: c.u64()?,
            ref_count: c.u64()?,
        });
    }
    Ok(out)
}

pub(crate) fn put_refs(v: &mut Vec<u8>, refs: &[ChunkRef]) {
    v.put_u64(refs.len() as u64);
    for r in refs {
        v.put_u64(r.file_offset);
        v.put_u64(r.chunk.0);
    }
}

pub(crate) fn read_refs(c: &mut Cursor) -> Result<Vec<ChunkRef>> {
    let n = c.count(16)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(ChunkRef {
            file_offset: c.u64()?,
            chunk: ChunkId(c.u64()?),
        });
    }
    Ok(out)
}

pub(crate) fn put_chunks(v: &mut Vec<u8>, chunks: &[Chunk]) {
    v.put_u64(chunks.len() as u64);
    for ch in chunks {
        v.put_u32(ch.frame.0);
        v.put_u32(ch.offset);
        v.put_u32(ch.len);
    }
}

pub(crate) fn read_chunks(c: &mut Cursor) -> Result<Vec<Chunk>> {
    let n = c.count(12)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Chunk {
            frame: FrameId(c.u32()?),
            offset: c.u32()?,
            len: c.u32()?,
        });
    }
    Ok(out)
}

/// One frame row: the stored offset is that of the frame header.
pub(crate) fn put_frame(v: &mut Vec<u8>, f: &Frame) {
    v.put_u32(f.volume.0);
    v.put_u64(f.offset - FRAME_HEADER);
    v.put_u32(f.stored_len);
    v.put_u32(f.raw_len);
    v.put_u8(f.codec as u8);
    v.put_u8(f.flags);
    v.put_u64(f.checksum.unwrap_or(0));
}

pub(crate) fn read_frame(c: &mut Cursor) -> Result<Frame> {
    let volume = VolumeNo(c.u32()?);
    let offset = c.u64()?;
    let stored_len = c.u32()?;
    let raw_len = c.u32()?;
    let codec = Codec::from_u8(c.u8()?).ok_or_else(|| c.err("unknown frame codec"))?;
    let flags = c.u8()?;
    let checksum = c.u64()?;
    let offset = offset
        .checked_add(FRAME_HEADER)
        .ok_or_else(|| c.err("frame offset overflows"))?;
    Ok(Frame {
        volume,
        offset,
        stored_len,
        raw_len,
        codec,
        flags,
        checksum: Some(checksum),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Index {
        let mut f = Entry::new(b"a/f".to_vec(), EntryKind::File, 0o644);
        f.size = 10;
        f.link = 0;
        f.xattrs.push((b"user.x".to_vec(), b"1".to_vec()));
        let mut h = Entry::new(b"a/g".to_vec(), EntryKind::Hardlink, 0o644);
        h.link = 1;
        h.size = 10;
        Index {
            params: vec![("codec".into(), "lz_ext3".into())],
            entries: vec![Entry::new(b"a".to_vec(), EntryKind::Dir, 0o755), f, h],
            contents: vec![Content {
                size: 10,
                first_ref: 0,
                ref_count: 2,
            }],
            refs: vec![
                ChunkRef {
                    file_offset: 0,
                    chunk: ChunkId(0),
                },
                ChunkRef {
                    file_offset: 4,
                    chunk: ChunkId(1),
                },
            ],
            chunks: vec![
                Chunk {
                    frame: FrameId(0),
                    offset: 0,
                    len: 4,
                },
                Chunk {
                    frame: FrameId(0),
                    offset: 4,
                    len: 6,
                },
            ],
            frames: vec![Frame {
                volume: VolumeNo(1),
                offset: 72,
                stored_len: 10,
                raw_len: 10,
                codec: Codec::Raw,
                flags: 0,
                checksum: Some(7),
            }],
            dicts: Vec::new(),
        }
    }

    #[test]
    fn record_lengths() {
        let mut v = Vec::new();
        for e in sample().entries.iter_mut() {
            for stamped in [false, true] {
                for stamp in [
                    None,
                    Some(Stamp {
                        ctime_sec: 1,
                        ctime_nsec: 2,
                        ino: 3,
                    }),
                ] {
                    e.stamp = stamp;
                    v.clear();
                    put_entry(&mut v, e, stamped);
                    assert_eq!(record_len(e, stamped), v.len() as u64);
                }
            }
        }
    }

    #[test]
    fn roundtrip_and_validate() {
        let idx = sample();
        let b = idx.encode();
        let back = Index::decode(&b, "i").unwrap();
        assert_eq!(back, idx);
        let valid = back.clone().validate("i", 1).unwrap();
        assert_eq!(valid.into_raw(), idx);
        assert!(back.validate("i", 0).is_err());
    }

    /// Every cut of an index fails to decode; every one-bit flip either fails to decode, fails to
    /// validate, or gives an index that is exactly what the flipped bytes say (it encodes back to them).
    #[test]
    fn truncations_fail_and_flips_are_caught_or_exact() {
        let b = sample().encode();
        for n in 0..b.len() {
            assert!(
                Index::decode(&b[..n], "i").is_err(),
                "a cut at {n} of {} bytes decoded",
                b.len()
            );
        }
        let (mut caught, mut flips) = (0, 0);
        for i in 0..b.len() {
            for bit in [0x01u8, 0x80] {
                let mut m = b.clone();
                m[i] ^= bit;
                flips += 1;
                match Index::decode(&m, "i") {
                    Err(_) => caught += 1,
                    Ok(x) => {
                        assert_eq!(x.encode(), m, "flip at {i} decoded to other bytes");
                        caught += usize::from(x.validate("i", 1).is_err());
                    }
                }
            }
        }
        // Most flips land in lengths, counts, kinds and references, which are checked.
        assert!(caught * 2 > flips, "{caught} of {flips} flips caught");
    }

    /// Found by tests/hostile.rs: a frame's stored length was not bounded, so reading the frame
    /// allocated up to 4 GiB first (an abort under `ulimit -v`).
    #[test]
    fn regression_validate_stored_len_unbounded() {
        let mut idx = sample();
        idx.frames[0].codec = Codec::LzExt3;
        idx.frames[0].stored_len = u32::MAX;
        let e = idx.validate("i", 1).unwrap_err().to_string();
        assert!(e.contains("stored length"), "{e}");
    }

    /// Found by tests/hostile.rs: an entry below a symlink (`evil -> /x`, `evil/file`), below a file or
    /// below nothing passed validation; FORMAT.md says every parent is a directory entry.
    #[test]
    fn regression_validate_entry_below_non_directory() {
        for (kind, msg) in [
            (EntryKind::Symlink, "is not a directory"),
            (EntryKind::File, "is not a directory"),
        ] {
            let mut idx = sample();
            idx.entries[0].kind = kind;
            let e = idx.validate("i", 1).unwrap_err().to_string();
            assert!(e.contains(msg), "{e}");
        }
        let mut idx = sample();
        idx.entries.remove(0);
        idx.entries[1].link = 0;
        let e = idx.validate("i", 1).unwrap_err().to_string();
        assert!(e.contains("parent a is not in the archive"), "{e}");
    }

    /// A change to an index and the words of the error it must cause.
    type Lie = (fn(&mut Index), &'static str);
    type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

    /// `n` contents that all share one range of `k` refs, alternating between chunks of two frames, and
    /// a file entry for each content: the shapes of issue 14 items 3 and 4.
    pub(crate) fn shared_refs(n: usize, k: usize) -> Index {
        let mut idx = sample();
        idx.entries.truncate(1);
        idx.frames.push(Frame {
            offset: 200,
            ..idx.frames[0]
        });
        idx.chunks = vec![
            Chunk {
                frame: FrameId(0),
                offset: 0,
                len: 1,
            },
            Chunk {
                frame: FrameId(1),
                offset: 0,
                len: 1,
            },
        ];
        idx.refs = (0..k as u64)
            .map(|i| ChunkRef {
                file_offset: i,
                chunk: ChunkId(i % 2),
            })
            .collect();
        idx.contents = vec![
            Content {
                size: k as u64,
                first_ref: 0,
                ref_count: k as u64
            };
            n
        ];
        for i in 0..n {
            let mut f = Entry::new(format!("a/f{i:07}").into_bytes(), EntryKind::File, 0o644);
            f.size = k as u64;
            f.link = i as u64;
            idx.entries.push(f);
        }
        idx
    }

    /// Issue 14 item 4: contents sharing one ref range made validation cost contents × refs (80 000 ×
    /// 80 000 took 9 s in `list`). Now every ref is looked at once: this is 2.5 billion ref visits the
    /// old way, milliseconds now.
    #[test]
    fn regression_validate_shared_refs_is_linear() {
        let idx = shared_refs(50_000, 50_000);
        let t = std::time::Instant::now();
        let valid = idx.validate("i", 1).unwrap();
        assert!(
            t.elapsed().as_secs() < 10,
            "validate took {:?}",
            t.elapsed()
        );
        assert_eq!(valid.data_size(EntryId(1)), 50_000);
    }

    /// The linear content check finds the same first problem, with the same words, as a walk through
    /// each content's refs.
    #[test]
    fn content_problems_are_named_as_before() {
        let cases: [Lie; 6] = [
            (
                |i| i.refs[1].chunk = ChunkId(9),
                "content 0 names missing chunk 9",
            ),
            (
                |i| i.refs[1].file_offset = 3,
                "content 0 has a gap or overlap at 4",
            ),
            (
                |i| i.refs[0].file_offset = 1,
                "content 0 has a gap or overlap at 0",
            ),
            (
                |i| i.contents[0].size = 11,
                "content 0 refs cover 10 of 11 bytes",
            ),
            (
                |i| i.contents[0].ref_count = 3,
                "content 0 refs out of range",
            ),
            (
                |i| {
                    i.contents[0].ref_count = 0;
                    i.entries[1].size = 10;
                },
                "content 0 refs cover 0 of 10 bytes",
            ),
        ];
        for (lie, msg) in cases {
            let mut idx = sample();
            lie(&mut idx);
            let e = idx.validate("i", 1).unwrap_err().to_string();
            assert!(e.contains(msg), "{e} (wanted {msg})");
        }
        // A missing chunk before a gap is named first, as a walk would meet it.
        let mut idx = sample();
        idx.refs[0].chunk = ChunkId(9);
        idx.refs[1].file_offset = 7;
        let e = idx.validate("i", 1).unwrap_err().to_string();
        assert!(e.contains("names missing chunk 9"), "{e}");
        // Ranges that share a start (one a prefix of the other) are sound.
        let mut idx = sample();
        idx.contents.push(Content {
            size: 4,
            first_ref: 0,
            ref_count: 1,
        });
        idx.validate("i", 1).unwrap();
    }

    /// Issue 14 item 3: `verify` named the files of each damaged frame by walking every file's refs
    /// (8 000 files sharing one content of 8 000 refs: 64 million strings). `files_in_frames` counts
    /// and names them in linear time, and agrees with that walk.
    #[test]
    fn regression_files_in_frames_is_linear_and_exact() {
        let idx = shared_refs(8_000, 8_000).validate("i", 1).unwrap();
        let t = std::time::Instant::now();
        let got = idx.files_in_frames(&[FrameId(1), FrameId(0), FrameId(7)], 5);
        assert!(t.elapsed().as_secs() < 10, "took {:?}", t.elapsed());
        assert_eq!(got[0].0, 8_000);
        assert_eq!(got[1].0, 8_000);
        assert_eq!(got[0].1, (1..=5).map(EntryId).collect::<Vec<_>>());
        assert_eq!(got[2], (0, vec![]));
        // Against the walk, on contents that are prefixes of one another and a hardlink.
        let mut idx = shared_refs(4, 5);
        for (i, c) in idx.contents.iter_mut().enumerate() {
            c.ref_count = i as u64 + 1;
            c.size = i as u64 + 1;
        }
        for (i, e) in idx.entries.iter_mut().skip(1).enumerate() {
            e.size = i as u64 + 1;
        }
        let valid = idx.validate("i", 1).unwrap();
        for f in [FrameId(0), FrameId(1)] {
            let walk: Vec<EntryId> = valid
                .entries_with_ids()
                .filter(|(id, e)| e.kind == EntryKind::File && valid.frames_of(*id).contains(&f))
                .map(|(id, _)| id)
                .collect();
            let (n, mut named) = valid.files_in_frames(&[f], 10).remove(0);
            named.sort();
            assert_eq!((n, named), (walk.len() as u64, walk), "frame {f:?}");
        }
    }

    /// Issue 14 item 2: xattrs Linux cannot hold make the index damaged (and an entry claiming 40 million
    /// of them is refused before anything is sized by the claim).
    #[test]
    fn regression_xattrs_beyond_linux_limits() {
        let long = vec![b'n'; 256];
        let big = vec![0u8; XATTR_SIZE_MAX + 1];
        let cases: [(Xattrs, &str); 4] = [
            (vec![(Vec::new(), b"v".to_vec())], "of 0 bytes"),
            (vec![(long, Vec::new())], "of 256 bytes"),
            (vec![(b"user.a\0b".to_vec(), Vec::new())], "no NUL"),
            (vec![(b"user.x".to_vec(), big)], "value of 65537 bytes"),
        ];
        for (x, msg) in cases {
            let mut idx = sample();
            idx.entries[1].xattrs = x;
            let e = idx.clone().validate("i", 1).unwrap_err().to_string();
            assert!(e.contains(msg), "{e}");
            let e = Index::decode(&idx.encode(), "i").unwrap_err().to_string();
            assert!(e.contains(msg), "{e}");
        }
        let mut idx = sample();
        idx.entries[1].xattrs = (0..300)
            .map(|i| (vec![b'a' + (i % 26) as u8; 250], vec![]))
            .collect();
        let e = idx.validate("i", 1).unwrap_err().to_string();
        assert!(e.contains("names past 65536"), "{e}");
        // The count of the sample's one xattr set to 40 million.
        let mut b = sample().encode();
        let at = b
            .windows(10)
            .position(|w| w == b"\x01\0\0\0\x06\0\0\0us")
            .unwrap();
        b[at..at + 4].copy_from_slice(&40_000_000u32.to_le_bytes());
        let e = Index::decode(&b, "i").unwrap_err().to_string();
        assert!(e.contains("40000000 xattrs"), "{e}");
    }

    #[test]
    fn validate_rejects_bad_references() {
        let mut idx = sample();
        idx.chunks[1].len = 100;
        assert!(idx.validate("i", 1).is_err());
        let mut idx = sample();
        idx.entries[1].path = b"a/../x".to_vec();
        assert!(idx.validate("i", 1).is_err());
        let mut idx = sample();
        idx.entries[2].link = 2;
        assert!(idx.validate("i", 1).is_err());
    }
}
