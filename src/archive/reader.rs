//! Opening an archive: footer → index → volumes, and reading frames and file bytes through the index.
//! Opening reads the footer and the index only. The last volume is the highest-numbered one whose tail
//! is a clc footer, and the footer's volume count names the others (`NAME.001` … by canonical name):
//! nothing else beside the archive is looked at. Volumes are opened when a frame in them is first read,
//! their headers checked then, and at most [`volumes::MAX_OPEN_VOLUMES`] are open at once. The index is a
//! [`ValidIndex`]: everything read through it was checked when it was loaded.

use crate::cache::{self, FrameSource, FrameStore, StoredFrame};
use crate::codec::Codec;
use crate::diag::escape_path;
use crate::error::{Error, IoContext, Result};
use crate::format::checksum;
use crate::format::footer::Footer;
use crate::format::frame::FrameHeader;
use crate::format::index::{EntryId, Frame, FrameId, Index, ValidIndex, VolumeNo};
use crate::format::volume::VolumeHeader;
use crate::volumes::{self, Name, Vol};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where an archive came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// clc's own format, with its version.
    Clc(u32),
    /// A CL_Compressor archive (GPU_IDX1/2/3).
    Legacy(&'static str),
}

impl Kind {
    pub fn describe(&self) -> String {
        match self {
            Kind::Clc(v) => format!("clc format v{v}"),
            Kind::Legacy(k) => format!("CL_Compressor {k}"),
        }
    }
}

/// An open archive. Shared by threads (`&self` everywhere).
pub struct Archive {
    index: ValidIndex,
    kind: Kind,
    /// The path of volume `n` at `n - 1`; as many as the index's frames may name.
    volumes: Vec<PathBuf>,
    /// clc's archive id, which every volume's header must carry (none for CL_Compressor archives).
    archive_id: Option<[u8; 16]>,
    /// The volumes open now (a bounded set).
    open: volumes::OpenVolumes<Vol>,
    /// Entries whose bytes cannot be trusted, with the reason (CL_Compressor writer bug).
    damaged: HashMap<EntryId, String>,
    /// "run `clc repair` first", added to volume and frame errors when parity volumes exist.
    repair_hint: Option<String>,
}

/// Without a cache, every frame is read and decoded on the CPU.
impl FrameSource for Archive {
    fn frame(&self, id: FrameId) -> Result<Arc<Vec<u8>>> {
        self.read_frame(id).map(Arc::new)
    }
}

/// The cache reads frames through this.
impl FrameStore for Archive {
    fn meta(&self, id: FrameId) -> Option<&Frame> {
        self.index.frame(id)
    }

    fn read_stored(&self, id: FrameId) -> Result<Vec<u8>> {
        Archive::read_stored(self, id)
    }

    fn frame_error(&self, id: FrameId, cause: Error) -> Error {
        self.frame_err(id, cause)
    }
}

/// The last volume of an archive, opened, with its length and its last [`Footer::SIZE`] bytes.
struct Last {
    number: VolumeNo,
    path: PathBuf,
    file: Vol,
    len: u64,
    tail: Vec<u8>,
}

impl Archive {
    /// Opens the archive that `path` (any `NAME.NNN`, or `NAME`) belongs to. When the last volume is
    /// damaged and parity volumes exist, the error says to run `clc repair`.
    pub fn open(path: &Path) -> Result<Archive> {
        Self::open_inner(path).map_err(|e| match e {
            Error::Corrupt { what, offset, msg } => {
                let msg = match repair_hint(&volumes::base_of(path)) {
                    Some(h) => format!("{msg}; {h}"),
                    None => msg,
                };
                Error::Corrupt { what, offset, msg }
            }
            e => e,
        })
    }

    /// Finds the last volume (the highest-numbered with a clc footer), then reads that footer or, when no
    /// volume has one, opens a CL_Compressor archive.
    fn open_inner(path: &Path) -> Result<Archive> {
        let base = match volumes::parse(path) {
            Some((b, Name::Data(_))) => b,
            _ if volumes::list_data(path).is_empty() => {
                return Err(Error::Usage(format!(
                    "{}: not an archive volume (expected NAME.001)",
                    escape_path(path)
                )))
            }
            _ => path.to_path_buf(),
        };
        if volumes::remote::is_remote(&base) {
            // A listing that fails (credentials, endpoint, bucket) is that error, not "no volumes".
            volumes::siblings(&base).ctx(path)?;
        }
        let vols = volumes::list_data(&base);
        if vols.is_empty() {
            return Err(Error::io(
                path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        if let Some((number, p, _)) =
            volumes::last_with_tail(&base, Footer::SIZE, Footer::looks_like)
        {
            return Self::open_clc(&base, open_last(number, &p)?);
        }
        // No footer anywhere: the last of the volumes numbered 1, 2, … without a gap is named.
        let top = vols
            .iter()
            .zip(1u32..)
            .take_while(|((n, _), i)| n.0 == *i)
            .last()
            .map_or(&vols[0].1, |((_, p), _)| p);
        let first = &vols[0].1;
        if vols[0].0 .0 == 1
            && first_bytes(first).is_some_and(|b| b == crate::format::volume::MAGIC)
        {
            let len = volumes::size(top).unwrap_or(0);
            return Err(Error::corrupt(
                escape_path(top),
                len.saturating_sub(Footer::SIZE as u64),
                "no clc footer: this volume is truncated, or the last volume of the archive is missing",
            ));
        }
        match crate::legacy::open(first)? {
            Some(l) => Ok(Self::from_legacy(l)),
            None => Err(Error::corrupt(
                escape_path(top),
                0,
                "not a clc or CL_Compressor archive",
            )),
        }
    }

    /// clc's own archive: footer → index (validated) → the volumes' names, from the footer's count.
    fn open_clc(base: &Path, last: Last) -> Result<Archive> {
        let what = escape_path(&last.path);
        let footer_at = last.len - Footer::SIZE as u64;
        let footer = Footer::decode(&last.tail, &what, last.len)?;
        if last.number.0 != footer.volume_count {
            return Err(Error::corrupt(
                &what,
                footer_at,
                format!(
                    "footer says the archive has {} volumes but this is volume {}",
                    footer.volume_count, last.number
                ),
            ));
        }
        let index = read_index(&last.file, &footer, &what)?.validate(&what, footer.volume_count)?;
        if footer.version < 2 {
            if let Some(i) = index
                .frames()
                .iter()
                .position(|f| f.codec == Codec::LzExt3Sb)
            {
                return Err(Error::corrupt(
                    &what,
                    footer.index_offset,
                    format!(
                        "frame {i} is LZ_EXT3_SB, which needs format version 2 (archive says {})",
                        footer.version
                    ),
                ));
            }
        }
        // Every volume but the last holds at least one frame, so a larger count is a lie; it would
        // otherwise size the volume table (2^32 - 1 slots for a file named NAME.4294967295).
        if footer.volume_count as u64 > index.frames().len() as u64 + 1 {
            return Err(Error::corrupt(
                &what,
                footer_at,
                format!(
                    "footer says the archive has {} volumes but its index has only {} frames",
                    footer.volume_count,
                    index.frames().len()
                ),
            ));
        }
        let volumes = (1..=footer.volume_count)
            .map(|n| volumes::data_path(base, VolumeNo(n)))
            .collect();
        let ar = Archive {
            index,
            kind: Kind::Clc(footer.version),
            volumes,
            archive_id: Some(footer.archive_id),
            open: volumes::OpenVolumes::default(),
            damaged: HashMap::new(),
            repair_hint: repair_hint(base),
        };
        // The last volume is open already: keep it (its header is checked like any other's).
        let _ = ar
            .open
            .get(last.number, || ar.check_header(last.number, last.file));
        Ok(ar)
    }

    fn from_legacy(l: crate::legacy::Legacy) -> Archive {
        Archive {
            index: l.index,
            kind: Kind::Legacy(l.kind),
            volumes: l.volumes,
            archive_id: None,
            open: volumes::OpenVolumes::default(),
            damaged: l.damaged.into_iter().collect(),
            repair_hint: None,
        }
    }

    /// Volume `n`, open (from the bounded set, or opened now and its header checked). Errors name the
    /// volume, with the repair hint when parity volumes exist.
    fn volume(&self, n: VolumeNo) -> Result<Arc<Vol>> {
        self.open.get(n, || {
            let path = self.volume_path(n);
            volumes::open_vol(path)
                .ctx(path)
                .and_then(|f| self.check_header(n, f))
                .map_err(|e| match &self.repair_hint {
                    Some(h) => Error::Hint {
                        source: Box::new(e),
                        hint: h.clone(),
                    },
                    None => e,
                })
        })
    }

    /// The path of volume `n` (validated frames only name existing slots).
    fn volume_path(&self, n: VolumeNo) -> &Path {
        self.volumes
            .get(n.at())
            .map_or(Path::new(""), PathBuf::as_path)
    }

    /// `f`, volume `n`, if its header says it is that volume of this archive (clc), or as it is
    /// (CL_Compressor volumes have no header).
    fn check_header(&self, n: VolumeNo, f: Vol) -> Result<Vol> {
        match &self.archive_id {
            Some(id) => check_volume(f, self.volume_path(n), n.0, id),
            None => Ok(f),
        }
    }

    /// The validated index.
    pub fn index(&self) -> &ValidIndex {
        &self.index
    }

    /// Where the archive came from.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// Entries whose bytes are known to be damaged, with the reason, in entry order.
    pub fn damaged(&self) -> Vec<(EntryId, &str)> {
        let mut v: Vec<(EntryId, &str)> = self
            .damaged
            .iter()
            .map(|(id, why)| (*id, why.as_str()))
            .collect();
        v.sort();
        v
    }

    /// Paths of the data volumes, in order.
    pub fn volume_paths(&self) -> Vec<&Path> {
        self.volumes.iter().map(PathBuf::as_path).collect()
    }

    /// Problems with the volumes (missing, not a regular file, another archive's, another slot's):
    /// each volume is opened and checked in turn, within the bounded set of open files.
    pub fn volume_problems(&self) -> Vec<String> {
        (1..=self.volumes.len() as u32)
            .filter_map(|n| self.volume(VolumeNo(n)).err().map(|e| e.to_string()))
            .collect()
    }

    /// `cause`, a failure of frame `id`, with the frame's volume and offset (and the repair hint).
    fn frame_err(&self, id: FrameId, cause: Error) -> Error {
        let Some(f) = self.index.frame(id) else {
            return cause;
        };
        let cause = match &self.repair_hint {
            Some(h) if !cause.to_string().contains(h.as_str()) => Error::Hint {
                source: Box::new(cause),
                hint: h.clone(),
            },
            _ => cause,
        };
        Error::Frame {
            frame: id,
            volume: escape_path(self.volume_path(f.volume)),
            offset: f.offset,
            cause: Box::new(cause),
        }
    }

    /// Reads a frame's stored bytes, checking its inline header against the frame table.
    pub fn read_stored(&self, id: FrameId) -> Result<Vec<u8>> {
        let f = self.index.frame(id).ok_or(Error::NoFrame(id))?;
        let path = self.volume_path(f.volume);
        let file = self.volume(f.volume).map_err(|e| self.frame_err(id, e))?;
        let hdr = if matches!(self.kind, Kind::Clc(_)) {
            FrameHeader::SIZE
        } else {
            0
        };
        let start = f.offset - hdr as u64;
        let read_err = |e: std::io::Error| {
            let cause = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Check("volume is truncated")
            } else {
                Error::io(path, e)
            };
            self.frame_err(id, cause)
        };
        // The header and the stored bytes in two buffers, so that the stored bytes (up to 16 MiB) need not
        // be moved down over the header afterwards; both come from one read of the volume's cache.
        let mut head = [0u8; FrameHeader::SIZE];
        let mut buf = vec![0u8; f.stored_len as usize];
        if hdr > 0 {
            file.read_exact_at(&mut head, start).map_err(read_err)?;
        }
        file.read_exact_at(&mut buf, f.offset).map_err(read_err)?;
        if hdr > 0 {
            let h = FrameHeader::decode(&head, &escape_path(path), start)?;
            let want = (f.codec, f.raw_len, f.stored_len, f.checksum, id.0);
            let got = (
                h.codec,
                h.raw_len,
                h.stored_len,
                Some(h.checksum),
                h.frame_id,
            );
            if got != want {
                let cause = Error::Check("frame header disagrees with the index");
                return Err(self.frame_err(id, cause));
            }
        }
        Ok(buf)
    }

    /// Reads, decodes and checks one frame on the CPU.
    pub fn read_frame(&self, id: FrameId) -> Result<Vec<u8>> {
        let bytes = self.read_stored(id)?;
        let meta = *self.index.frame(id).ok_or(Error::NoFrame(id))?;
        cache::decode(&StoredFrame { id, meta, bytes }).map_err(|e| self.frame_err(id, e))
    }

    /// The sub-block size of an LZ_EXT3_SB frame, read from its first stored byte (None for other
    /// codecs). The byte is not trusted beyond that: the decoders check it (FORMAT.md 2.2).
    pub fn subblock_size(&self, id: FrameId) -> Result<Option<u64>> {
        let f = self.index.frame(id).ok_or(Error::NoFrame(id))?;
        if f.codec != Codec::LzExt3Sb || f.stored_len == 0 {
            return Ok(None);
        }
        let file = self.volume(f.volume).map_err(|e| self.frame_err(id, e))?;
        let mut b = [0u8; 1];
        file.read_exact_at(&mut b, f.offset)
            .map_err(|e| self.frame_err(id, Error::io(self.volume_path(f.volume), e)))?;
        Ok(Some(1u64 << b[0].min(63)))
    }

    /// The path of entry `e`, for messages.
    pub fn path_of(&self, e: EntryId) -> String {
        self.index
            .entry(e)
            .map_or_else(String::new, |x| crate::diag::escape(&x.path))
    }

    /// Fails when entry `e` does not exist, or its bytes are known to be damaged (whatever its size
    /// says).
    pub fn check_entry(&self, e: EntryId) -> Result<()> {
        if self.index.entry(e).is_none() {
            return Err(Error::NotFound(format!("entry {e}")));
        }
        match self.damaged.get(&self.index.data_entry(e)) {
            Some(why) => Err(Error::Damaged {
                path: self.path_of(e),
                why: why.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Reads up to `buf.len()` bytes of entry `e` at `offset`; returns how many (0 at or past the end).
    /// Every byte comes from a checked frame; errors name the file.
    pub fn read_at(
        &self,
        e: EntryId,
        offset: u64,
        buf: &mut [u8],
        src: &dyn FrameSource,
    ) -> Result<usize> {
        let mut done = 0usize;
        self.read_runs(e, offset, buf.len(), src, |frame, r| {
            buf[done..done + r.len()].copy_from_slice(&frame[r.clone()]);
            done += r.len();
        })?;
        Ok(done)
    }

    /// The bytes of entry `e` from `offset` on, at most `len` of them, without copying: `f` gets them in
    /// file order as runs, each a range of one decoded frame (pieces that follow each other in the same
    /// frame form one run). Returns how many bytes the runs hold (0 at or past the end). Every byte comes
    /// from a checked frame; errors name the file, and no run is given after an error.
    pub fn read_runs(
        &self,
        e: EntryId,
        offset: u64,
        len: usize,
        src: &dyn FrameSource,
        mut f: impl FnMut(&Arc<Vec<u8>>, std::ops::Range<usize>),
    ) -> Result<usize> {
        self.check_entry(e)?;
        let Some(content) = self.index.content_of(e) else {
            return Ok(0);
        };
        let size = self.index.data_size(e);
        if offset >= size || len == 0 {
            return Ok(0);
        }
        let in_file = |source: Error| Error::InFile {
            path: self.path_of(e),
            source: Box::new(source),
        };
        let want = len.min((size - offset) as usize);
        let mut done = 0usize;
        // The run being gathered: (frame id, its bytes, range).
        let mut run: Option<(FrameId, Arc<Vec<u8>>, std::ops::Range<usize>)> = None;
        for p in self.index.pieces(content, offset) {
            if done == want {
                break;
            }
            let within = (offset + done as u64 - p.file_offset) as usize;
            let n = (p.len as usize - within).min(want - done);
            let s = p.at as usize + within;
            match &mut run {
                Some((id, _, r)) if *id == p.frame && r.end == s => r.end += n,
                _ => {
                    let data = src.frame(p.frame).map_err(in_file)?;
                    // Validated: the piece lies within its frame; checked: the frame has its full
                    // length. A shorter one is refused before any of its bytes are given.
                    if data.len() < p.at as usize + p.len as usize {
                        return Err(in_file(Error::Check(
                            "decoded frame shorter than the index says",
                        )));
                    }
                    if let Some((_, d, r)) = run.replace((p.frame, data, s..s + n)) {
                        f(&d, r);
                    }
                }
            }
            done += n;
        }
        if let Some((_, d, r)) = run {
            f(&d, r);
        }
        Ok(done)
    }
}

/// Opens the last volume and reads its tail, where clc's footer is (again: the volume may have been
/// replaced since it was found).
fn open_last(number: VolumeNo, path: &Path) -> Result<Last> {
    let file = volumes::open_vol(path).ctx(path)?;
    let len = file.size().ctx(path)?;
    let mut tail = vec![0u8; Footer::SIZE.min(len as usize)];
    let tail_at = len - tail.len() as u64;
    file.read_exact_at(&mut tail, tail_at).ctx(path)?;
    Ok(Last {
        number,
        path: path.to_path_buf(),
        file,
        len,
        tail,
    })
}

fn first_bytes(p: &Path) -> Option<[u8; 8]> {
    let mut b = [0u8; 8];
    volumes::open_vol(p).ok()?.read_exact_at(&mut b, 0).ok()?;
    Some(b)
}

/// The advice added to a missing- or damaged-volume message when the archive has parity volumes.
fn repair_hint(base: &Path) -> Option<String> {
    volumes::has_parity(base).then(|| {
        format!(
            "parity volumes exist: run `clc repair {}` first",
            escape_path(&volumes::data_path(base, VolumeNo(1)))
        )
    })
}

fn read_index(f: &Vol, footer: &Footer, what: &str) -> Result<Index> {
    let mut blob = vec![0u8; footer.index_stored_len as usize];
    f.read_exact_at(&mut blob, footer.index_offset).ctx(what)?;
    // zlib inflates at most about 1032:1, so a claim beyond that is not believed when sizing the buffer.
    let believable = footer.index_stored_len.saturating_mul(1032);
    let mut raw = Vec::with_capacity(footer.index_raw_len.min(believable).min(1 << 28) as usize);
    flate2::read::ZlibDecoder::new(&blob[..])
        .take(footer.index_raw_len + 1)
        .read_to_end(&mut raw)
        .map_err(|e| {
            Error::corrupt(
                what,
                footer.index_offset,
                format!("index does not inflate: {e}"),
            )
        })?;
    if raw.len() as u64 != footer.index_raw_len || checksum(&raw) != footer.index_checksum {
        return Err(Error::corrupt(
            what,
            footer.index_offset,
            "index checksum mismatch",
        ));
    }
    Index::decode(&raw, &format!("{what} (index)"))
}

/// `f`, opened as volume `n` of the archive whose id is `id`, if its header says so.
fn check_volume(f: Vol, path: &Path, n: u32, id: &[u8; 16]) -> Result<Vol> {
    let bad = |msg: String| Error::BadVolume {
        path: path.to_path_buf(),
        msg,
    };
    let mut b = [0u8; VolumeHeader::SIZE];
    f.read_exact_at(&mut b, 0)
        .map_err(|_| bad("too short for a volume header".into()))?;
    let h = VolumeHeader::decode(&b, &escape_path(path))?;
    if h.archive_id != *id {
        return Err(bad("volume of another archive".into()));
    }
    if h.number != n {
        return Err(bad(format!(
            "this is volume {} of the archive, not {n}",
            h.number
        )));
    }
    Ok(f)
}
