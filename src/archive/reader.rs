//! Opening an archive: footer → index → volumes, and reading frames and file bytes through the index.
//! Opening reads the footer and the index only. The last volume is the highest-numbered one whose tail
//! is a clc footer, and the footer's volume count names the others (`NAME.001` … by canonical name):
//! nothing else beside the archive is looked at. Volumes are opened when a frame in them is first read,
//! their headers checked then, and at most [`volumes::MAX_OPEN_VOLUMES`] are open at once. The index is a
//! [`ValidIndex`]: everything read through it was checked when it was loaded.

use super::generations::{self, History, Snapshot};
use crate::cache::{self, FrameSource, FrameStore, StoredFrame};
use crate::codec::Codec;
use crate::diag::escape_path;
use crate::diag::trace::{self, Stage};
use crate::error::{Error, IoContext, Result};
use crate::format::footer::Footer;
use crate::format::frame::FrameHeader;
use crate::format::index::{EntryId, Frame, FrameId, ValidIndex, VolumeNo};
use crate::format::volume::VolumeHeader;
use crate::volumes::{self, Name, Vol};
use std::collections::HashMap;
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
    /// The generations and snapshots of a clc archive (none for CL_Compressor's).
    history: Option<Arc<History>>,
    /// The snapshot `index` is the tree of (`None`: a plain archive's only tree).
    selected: Option<usize>,
    /// `NAME`.
    base: PathBuf,
}

/// The snapshot that `pick` names, if the archive has snapshots; `None` for a plain archive's tree.
fn select(h: &History, pick: &Pick, what: &str) -> Result<Option<usize>> {
    if !h.versioned() {
        return match pick {
            Pick::Newest => Ok(None),
            Pick::Named(n) => Err(Error::Usage(format!(
                "no snapshot named {n}: {what} has no snapshots (it was not made with --append)"
            ))),
        };
    }
    match pick {
        Pick::Newest => Ok(h.snapshots.len().checked_sub(1)),
        Pick::Named(n) => h
            .snapshots
            .iter()
            .position(|s| &s.record.name == n)
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<&str> = h.snapshots.iter().map(|s| s.record.name.as_str()).collect();
                Error::Usage(format!(
                    "no snapshot named {n}; the snapshots are: {}",
                    names.join(", ")
                ))
            }),
    }
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

    fn read_stored_batch(&self, ids: &[FrameId]) -> Vec<Result<Vec<u8>>> {
        Archive::read_stored_batch(self, ids)
    }

    fn read_stored_batch_reusing(
        &self,
        ids: &[FrameId],
        bufs: Vec<Vec<u8>>,
    ) -> Vec<Result<Vec<u8>>> {
        Archive::read_stored_batch_reusing(self, ids, bufs)
    }

    fn frame_error(&self, id: FrameId, cause: Error) -> Error {
        self.frame_err(id, cause)
    }

    fn dict(&self, id: FrameId) -> Option<Vec<crate::format::index::Span>> {
        self.index.dict_spans(id)
    }
}

/// Which tree of an archive to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The newest snapshot (or the only tree of a plain archive).
    Newest,
    /// The snapshot of that name (an error naming every snapshot when there is none).
    Named(String),
}

impl Archive {
    /// Opens the archive that `path` (any `NAME.NNN`, or `NAME`) belongs to, at its newest snapshot.
    /// When the last volume is damaged and parity volumes exist, the error says to run `clc repair`.
    pub fn open(path: &Path) -> Result<Archive> {
        Self::open_at(path, Pick::Newest)
    }

    /// Opens the archive at the snapshot `pick` names.
    pub fn open_at(path: &Path, pick: Pick) -> Result<Archive> {
        Self::open_inner(path, &pick).map_err(|e| match e {
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

    /// Finds the volumes, then reads clc's newest complete footer or, failing that, opens a
    /// CL_Compressor archive.
    fn open_inner(path: &Path, pick: &Pick) -> Result<Archive> {
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
        let remote = volumes::remote::is_remote(&base);
        let vols = if remote {
            // A listing that fails (credentials, endpoint, bucket) is that error, not "no volumes".
            generations::list_checked(&base).ctx(path)?
        } else {
            generations::list(&base)
        };
        let (Some(first), Some(last)) = (vols.first(), vols.last()) else {
            return Err(Error::io(
                path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        };
        if remote {
            // The first volume's header and the last one's tail (footer and index) in one round trip.
            volumes::remote::prefetch_open(&first.path, &last.path);
        }
        let clc_first = first_bytes(&first.path).is_some_and(|b| b == crate::format::volume::MAGIC);
        let newest = if clc_first {
            generations::newest(&vols)?
        } else {
            // Only the last volume can hold a clc footer of an archive whose first volume is not clc's.
            // Its position is the listing's, not the one-volume slice's (an `at` of 0 named the first
            // volume, and an empty first volume panicked reading the index: found by fuzzing).
            generations::newest(std::slice::from_ref(last))?.map(|n| generations::Newest {
                at: vols.len() - 1,
                ..n
            })
        };
        if let Some(n) = newest {
            return Self::open_clc(&base, &vols, &n, pick);
        }
        let what = escape_path(&last.path);
        let top = &last.path;
        if clc_first {
            let len = last.len;
            return Err(Error::corrupt(
                escape_path(top),
                len.saturating_sub(Footer::SIZE as u64),
                "no clc footer: this volume is truncated, or the last volume of the archive is missing",
            ));
        }
        if *pick != Pick::Newest {
            return Err(Error::Usage(format!(
                "{what}: a CL_Compressor archive has no snapshots"
            )));
        }
        match crate::legacy::open(&first.path)? {
            Some(l) => Ok(Self::from_legacy(l)),
            None => Err(Error::corrupt(
                escape_path(top),
                0,
                "not a clc or CL_Compressor archive",
            )),
        }
    }

    /// clc's own archive: every generation's index, the chosen tree validated against their tables; the
    /// volumes named from the footer's count, opened (and their headers checked) when first read.
    fn open_clc(
        base: &Path,
        vols: &[generations::Listed],
        newest: &generations::Newest,
        pick: &Pick,
    ) -> Result<Archive> {
        let footer = &newest.footer;
        let what = escape_path(&vols[newest.at].path);
        let (history, mut tables) = generations::load(vols, newest)?;
        crate::diag::trace::note("open: generations loaded");
        // A frame whose codec is newer than the format version of the generation that wrote it (codec 4,
        // LZ_EXT3E, needs 4; codec 5, ZSTD, 7). Per generation, not against the newest footer: an append
        // of another codec writes a lower version than an earlier generation's frames may need.
        // Generations hold consecutive frames in order; a frame no generation claims (hostile counts)
        // is held to the newest footer's version.
        let n = tables.frames.len() as u64;
        let mut version_at = vec![footer.version; tables.frames.len()];
        for g in &history.generations {
            let lo = g.bases.frames.min(n) as usize;
            let hi = g.bases.frames.saturating_add(g.added.frames).min(n) as usize;
            version_at[lo..hi].fill(g.version);
        }
        if let Some((i, f, v)) = tables
            .frames
            .iter()
            .zip(&version_at)
            .enumerate()
            .map(|(i, (f, &v))| (i, f, v))
            .find(|(_, f, v)| f.codec.min_version() > *v)
        {
            return Err(Error::corrupt(
                &what,
                footer.index_offset,
                format!(
                    "frame {i} is {}, which needs format version {} (archive says {v})",
                    f.codec.name(),
                    f.codec.min_version(),
                ),
            ));
        }
        // A volume holds a frame or index bytes, so a larger count is a lie; it would otherwise size
        // the volume table (2^32 - 1 slots for a file named NAME.4294967295).
        let index_room: u64 = history.generations.len() as u64
            + history
                .generations
                .iter()
                .map(|g| g.index_room)
                .sum::<u64>();
        if footer.volume_count as u64 > tables.frames.len() as u64 + index_room {
            return Err(Error::corrupt(
                &what,
                vols[newest.at].len - Footer::SIZE as u64,
                format!(
                    "footer says the archive has {} volumes but its index has only {} frames",
                    footer.volume_count,
                    tables.frames.len()
                ),
            ));
        }
        if !newest.stray.is_empty() {
            let names: Vec<String> = newest.stray.iter().map(|p| escape_path(p)).collect();
            crate::diag::note(&format!(
                "ignoring {}: after the newest complete footer ({}), left by an interrupted append or \
                 the rest of a snapshot whose last volume is missing (see `clc verify`)",
                names.join(", "),
                what
            ));
        }
        let selected = select(&history, pick, &what)?;
        tables.entries = match selected {
            Some(k) => history.snapshot_entries(k, &what)?,
            None => history.plain_entries(&what)?,
        };
        crate::diag::trace::note("open: entries decoded");
        let index = tables.validate(&what, footer.volume_count)?;
        crate::diag::trace::note("open: index validated");
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
            history: Some(Arc::new(history)),
            selected,
            base: base.to_path_buf(),
        };
        Ok(ar)
    }

    fn from_legacy(l: crate::legacy::Legacy) -> Archive {
        let base = l
            .volumes
            .first()
            .map_or_else(PathBuf::new, |p| volumes::base_of(p));
        Archive {
            index: l.index,
            kind: Kind::Legacy(l.kind),
            volumes: l.volumes,
            archive_id: None,
            open: volumes::OpenVolumes::default(),
            damaged: l.damaged.into_iter().collect(),
            repair_hint: None,
            history: None,
            selected: None,
            base,
        }
    }

    /// The generations and snapshots (none for a CL_Compressor archive).
    pub fn history(&self) -> Option<&History> {
        self.history.as_deref()
    }

    /// Whether the archive holds named snapshots (made with `--append`).
    pub fn versioned(&self) -> bool {
        self.history().is_some_and(History::versioned)
    }

    /// The named snapshots, oldest first (empty for a plain or CL_Compressor archive).
    pub fn snapshots(&self) -> &[Snapshot] {
        self.history().map_or(&[], |h| h.snapshots.as_slice())
    }

    /// The snapshot whose tree [`Archive::index`] is, if any.
    pub fn selected(&self) -> Option<&Snapshot> {
        self.selected.and_then(|k| self.snapshots().get(k))
    }

    /// The position of the selected snapshot in [`Archive::snapshots`].
    pub fn selected_at(&self) -> Option<usize> {
        self.selected
    }

    /// The tree of snapshot `k` (a position in [`Archive::snapshots`]), validated against the same
    /// tables; the selected one is not decoded again.
    pub fn tree(&self, k: usize) -> Result<ValidIndex> {
        if Some(k) == self.selected {
            return Ok(self.index.clone());
        }
        let h = self
            .history()
            .filter(|h| k < h.snapshots.len())
            .ok_or_else(|| Error::NotFound(format!("snapshot {k}")))?;
        let what = self.describe_last();
        let entries = h.snapshot_entries(k, &what)?;
        self.index.with_entries(entries, &what)
    }

    /// The archive's base path (`NAME`).
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The id every volume carries.
    pub fn archive_id(&self) -> [u8; 16] {
        self.archive_id.unwrap_or([0; 16])
    }

    /// The bytes that snapshot `k`'s generation added (its volumes).
    pub fn added_bytes(&self, k: usize) -> u64 {
        match (self.history(), self.snapshots().get(k)) {
            (Some(h), Some(s)) => h.generation_bytes(&self.base, s.generation),
            _ => 0,
        }
    }

    fn describe_last(&self) -> String {
        self.volumes
            .last()
            .map_or_else(String::new, |p| escape_path(p))
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
        let numbers: Vec<u32> = (1..=self.volumes.len() as u32).collect();
        // In a bucket each check is a ranged GET: run them together (`volumes::each_volume`); a mount of
        // an archive of 13 objects spent 25 ms on them one after another before it answered.
        let remote = numbers
            .first()
            .is_some_and(|&n| volumes::remote::is_remote(self.volume_path(VolumeNo(n))));
        volumes::each_volume(&numbers, remote, |&n| {
            self.volume(VolumeNo(n)).err().map(|e| e.to_string())
        })
        .into_iter()
        .flatten()
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
        self.read_stored_reusing(id, Vec::new())
    }

    /// [`read_stored`](Self::read_stored) into `buf`'s memory (a buffer that held other bytes, whose
    /// contents are replaced) for a local volume, sparing the page faults of a fresh buffer; a bucket's
    /// frame is read as `read_stored` reads it.
    pub fn read_stored_reusing(&self, id: FrameId, mut buf: Vec<u8>) -> Result<Vec<u8>> {
        let f = self.index.frame(id).ok_or(Error::NoFrame(id))?;
        let file = self.volume(f.volume).map_err(|e| self.frame_err(id, e))?;
        let hdr = self.frame_header_len();
        let start = f.offset - hdr as u64;
        let read = if let Vol::Remote(_) = &*file {
            // One ranged GET for the header and the stored bytes: a round trip each would double
            // the latency of every frame.
            let mut all = vec![0u8; hdr + f.stored_len as usize];
            file.read_exact_at(&mut all, start).map(|()| {
                let buf = all.split_off(hdr);
                (all, buf)
            })
        } else {
            // The header and the stored bytes in two buffers, so that the stored bytes (up to 16 MiB)
            // need not be moved down over the header afterwards; both come from one read of the
            // volume's cache.
            let mut head = vec![0u8; hdr];
            buf = crate::codec::sized(buf, f.stored_len as usize);
            file.read_exact_at(&mut head, start)
                .and_then(|()| file.read_exact_at(&mut buf, f.offset))
                .map(|()| (head, buf))
        };
        self.checked_stored(id, read)
    }

    /// The stored bytes of frames `ids`, in order, as [`read_stored`](Self::read_stored) returns each;
    /// when all lie in a bucket, as parallel ranged `GET`s (up to the store's `reads_in_flight`),
    /// otherwise on the rayon pool.
    pub fn read_stored_batch(&self, ids: &[FrameId]) -> Vec<Result<Vec<u8>>> {
        self.read_stored_batch_reusing(ids, Vec::new())
    }

    /// [`read_stored_batch`](Self::read_stored_batch), local frames read into `bufs` (one per frame,
    /// in order; fewer: the rest into fresh buffers) as [`read_stored_reusing`](Self::read_stored_reusing)
    /// does.
    pub fn read_stored_batch_reusing(
        &self,
        ids: &[FrameId],
        mut bufs: Vec<Vec<u8>>,
    ) -> Vec<Result<Vec<u8>>> {
        use rayon::prelude::*;
        let hdr = self.frame_header_len();
        let located: Vec<Option<(Arc<Vol>, std::ops::Range<u64>)>> = ids
            .iter()
            .map(|&id| {
                let f = self.index.frame(id)?;
                let v = self.volume(f.volume).ok()?;
                let start = f.offset - hdr as u64;
                Some((v, start..f.offset + u64::from(f.stored_len)))
            })
            .collect();
        let remote: Option<Vec<(&volumes::remote::RemoteVol, std::ops::Range<u64>)>> = located
            .iter()
            .map(|l| match l {
                Some((v, r)) => match &**v {
                    Vol::Remote(rv) => Some((rv, r.clone())),
                    Vol::Local(_) => None,
                },
                None => None,
            })
            .collect();
        let Some(reqs) = remote.filter(|r| r.len() > 1) else {
            bufs.resize_with(ids.len(), Vec::new);
            return ids
                .par_iter()
                .zip(bufs)
                .map(|(&id, b)| {
                    trace::timed(Stage::ReadFrames, 0, || self.read_stored_reusing(id, b))
                })
                .collect();
        };
        let t0 = std::time::Instant::now();
        let got = volumes::remote::read_many(&reqs);
        trace::add(Stage::ReadFrames, t0, std::time::Instant::now(), 0);
        ids.iter()
            .zip(got)
            .map(|(&id, r)| {
                let split = r.map(|mut all| {
                    let buf = all.split_off(hdr.min(all.len()));
                    (all, buf)
                });
                self.checked_stored(id, split)
            })
            .collect()
    }

    /// Bytes of the inline frame header before a frame's stored bytes (none in CL_Compressor volumes).
    fn frame_header_len(&self) -> usize {
        if matches!(self.kind, Kind::Clc(_)) {
            FrameHeader::SIZE
        } else {
            0
        }
    }

    /// A frame's stored bytes as read (its inline header, its stored bytes), after checking the header
    /// against the frame table.
    fn checked_stored(
        &self,
        id: FrameId,
        read: std::io::Result<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Vec<u8>> {
        let f = self.index.frame(id).ok_or(Error::NoFrame(id))?;
        let path = self.volume_path(f.volume);
        let start = f.offset - self.frame_header_len() as u64;
        let (head, buf) = read.map_err(|e| {
            let cause = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Check("volume is truncated")
            } else {
                Error::io(path, e)
            };
            self.frame_err(id, cause)
        })?;
        if !head.is_empty() {
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

    /// Reads, decodes and checks one frame on the CPU (after its dictionary frames, if it has them).
    pub fn read_frame(&self, id: FrameId) -> Result<Vec<u8>> {
        let (mut stored, mut out) = (Vec::new(), Vec::new());
        self.read_frame_reusing(id, &mut stored, &mut out)?;
        Ok(out)
    }

    /// [`read_frame`](Self::read_frame) with kept buffers: the stored bytes are read into `stored`'s
    /// memory and decoded into `out`'s (both left there for the next frame), so that a caller checking
    /// frame after frame (`verify`) does not fault in fresh memory for each. The same checks.
    pub fn read_frame_reusing(
        &self,
        id: FrameId,
        stored: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let dict = self
            .index
            .dict_spans(id)
            .map(|spans| cache::dict_bytes(&spans, &mut |f| self.read_frame(f).map(Arc::new)))
            .transpose()
            .map_err(|e| self.frame_err(id, e))?;
        let bytes = self.read_stored_reusing(id, std::mem::take(stored))?;
        let meta = *self.index.frame(id).ok_or(Error::NoFrame(id))?;
        let f = StoredFrame { id, meta, bytes };
        let got = match dict {
            Some(d) => cache::decode_with_dict(&f, &d),
            None => cache::decode_into(&f, std::mem::take(out)),
        };
        *stored = f.bytes;
        *out = got.map_err(|e| self.frame_err(id, e))?;
        Ok(())
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
        self.check_entry(e)?;
        self.read_in(&self.index, e, offset, buf, src)
    }

    /// [`Archive::read_at`] for entry `e` of the tree `idx` (another snapshot of this archive: see
    /// [`Archive::tree`]).
    pub fn read_in(
        &self,
        idx: &ValidIndex,
        e: EntryId,
        offset: u64,
        buf: &mut [u8],
        src: &dyn FrameSource,
    ) -> Result<usize> {
        let mut done = 0usize;
        self.runs_in(idx, e, offset, buf.len(), src, |_, frame, r| {
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
        f: impl FnMut(FrameId, &Arc<Vec<u8>>, std::ops::Range<usize>),
    ) -> Result<usize> {
        self.check_entry(e)?;
        self.runs_in(&self.index, e, offset, len, src, f)
    }

    /// [`Archive::read_runs`] for entry `e` of the tree `idx` (this archive's tree or another snapshot's;
    /// the caller has checked the entry's frames with [`Archive::check_entry`]).
    pub fn runs_in(
        &self,
        idx: &ValidIndex,
        e: EntryId,
        offset: u64,
        len: usize,
        src: &dyn FrameSource,
        mut f: impl FnMut(FrameId, &Arc<Vec<u8>>, std::ops::Range<usize>),
    ) -> Result<usize> {
        let Some(content) = idx.content_of(e) else {
            return Ok(0);
        };
        let path_of = |e: EntryId| {
            idx.entry(e).map_or_else(String::new, |x| {
                String::from_utf8_lossy(&x.path).into_owned()
            })
        };
        let size = idx.data_size(e);
        if offset >= size || len == 0 {
            return Ok(0);
        }
        let in_file = |source: Error| Error::InFile {
            path: path_of(e),
            source: Box::new(source),
        };
        let want = len.min((size - offset) as usize);
        let mut done = 0usize;
        // The run being gathered: (frame id, its bytes, range).
        let mut run: Option<(FrameId, Arc<Vec<u8>>, std::ops::Range<usize>)> = None;
        for p in idx.pieces(content, offset) {
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
                    if let Some((id, d, r)) = run.replace((p.frame, data, s..s + n)) {
                        f(id, &d, r);
                    }
                }
            }
            done += n;
        }
        if let Some((id, d, r)) = run {
            f(id, &d, r);
        }
        Ok(done)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames read one after the other through the same two buffers give what a fresh read gives, and a
    /// damaged frame between good ones is refused without the bytes of the frame before it.
    #[test]
    fn frames_read_through_kept_buffers_are_checked_as_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (_, first, _) = crate::extract::tests::small_archive(dir.path());
        let ar = Archive::open(&first).unwrap();
        let n = ar.index().frames().len();
        assert!(n > 8, "{n} frames");
        let (mut stored, mut out) = (Vec::new(), Vec::new());
        for i in 0..n {
            let id = FrameId(i as u32);
            ar.read_frame_reusing(id, &mut stored, &mut out).unwrap();
            assert_eq!(out, ar.read_frame(id).unwrap(), "frame {i}");
        }
        // Damage a compressed frame in the middle (one byte of its stored bytes).
        let k = (n / 2..n)
            .find(|&i| ar.index().frames()[i].codec != Codec::Raw)
            .expect("a compressed frame");
        let f = ar.index().frames()[k];
        drop(ar);
        let mut vol = std::fs::read(&first).unwrap();
        vol[(f.offset + u64::from(f.stored_len) / 2) as usize] ^= 0x55;
        std::fs::write(&first, &vol).unwrap();
        let ar = Archive::open(&first).unwrap();
        for i in k - 1..=(k + 1).min(n - 1) {
            let id = FrameId(i as u32);
            let got = ar.read_frame_reusing(id, &mut stored, &mut out);
            if i == k {
                assert!(got.is_err(), "damaged frame {k} read as good");
            } else {
                got.unwrap();
                assert_eq!(out, ar.read_frame(id).unwrap(), "frame {i}");
            }
        }
    }
}
