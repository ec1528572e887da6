//! Opening an archive: footer → index → volumes, and reading frames and file bytes through the index.
//! Opening reads the footer and the index only; volumes are opened and their headers checked, never
//! scanned. The index is a [`ValidIndex`]: everything read through it was checked when it was loaded.

use crate::cache::{self, FrameSource, FrameStore, StoredFrame};
use crate::codec::Codec;
use crate::error::{Error, IoContext, Result};
use crate::format::checksum;
use crate::format::footer::Footer;
use crate::format::frame::FrameHeader;
use crate::format::index::{EntryId, Frame, FrameId, Index, ValidIndex, VolumeNo};
use crate::format::volume::VolumeHeader;
use crate::volumes::{self, Name};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
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

struct Volume {
    path: PathBuf,
    /// The open volume, or why it cannot be used (missing, another archive's, another slot's).
    file: Result<File>,
}

/// An open archive. Shared by threads (`&self` everywhere).
pub struct Archive {
    index: ValidIndex,
    kind: Kind,
    /// Volume `n` at `n - 1`; as many as the index's frames may name.
    volumes: Vec<Volume>,
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
    file: File,
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

    /// Finds the volumes, then reads clc's footer or, failing that, opens a CL_Compressor archive.
    fn open_inner(path: &Path) -> Result<Archive> {
        let base = match volumes::parse(path) {
            Some((b, Name::Data(_))) => b,
            _ if volumes::list_data(path).is_empty() => {
                return Err(Error::Usage(format!(
                    "{}: not an archive volume (expected NAME.001)",
                    path.display()
                )))
            }
            _ => path.to_path_buf(),
        };
        let vols = volumes::list_data(&base);
        let (first, last) = match (vols.first(), vols.last()) {
            (Some((_, first)), Some((number, last))) => (first, open_last(*number, last)?),
            _ => {
                return Err(Error::io(
                    path,
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ))
            }
        };
        if Footer::looks_like(&last.tail) {
            return Self::open_clc(&base, last);
        }
        let what = last.path.display().to_string();
        if first_bytes(first).is_some_and(|b| b == crate::format::volume::MAGIC) {
            return Err(Error::corrupt(
                what,
                last.len.saturating_sub(Footer::SIZE as u64),
                "no clc footer: this volume is truncated, or the last volume of the archive is missing",
            ));
        }
        match crate::legacy::open(first)? {
            Some(l) => Ok(Self::from_legacy(l)),
            None => Err(Error::corrupt(
                what,
                0,
                "not a clc or CL_Compressor archive",
            )),
        }
    }

    /// clc's own archive: footer → index (validated) → every volume opened and its header checked.
    fn open_clc(base: &Path, mut last: Last) -> Result<Archive> {
        let what = last.path.display().to_string();
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
        let index =
            read_index(&mut last.file, &footer, &what)?.validate(&what, footer.volume_count)?;
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
        let repair_hint = repair_hint(base);
        let volumes = (1..=footer.volume_count)
            .map(|n| {
                let path = volumes::data_path(base, VolumeNo(n));
                let file =
                    open_volume(&path, n, &footer.archive_id).map_err(|e| match &repair_hint {
                        Some(h) => Error::Hint {
                            source: Box::new(e),
                            hint: h.clone(),
                        },
                        None => e,
                    });
                Volume { path, file }
            })
            .collect();
        Ok(Archive {
            index,
            kind: Kind::Clc(footer.version),
            volumes,
            damaged: HashMap::new(),
            repair_hint,
        })
    }

    fn from_legacy(l: crate::legacy::Legacy) -> Archive {
        let volumes = l
            .volumes
            .into_iter()
            .map(|path| Volume {
                file: volumes::open(&path).ctx(&path),
                path,
            })
            .collect();
        Archive {
            index: l.index,
            kind: Kind::Legacy(l.kind),
            volumes,
            damaged: l.damaged.into_iter().collect(),
            repair_hint: None,
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
        self.volumes.iter().map(|v| v.path.as_path()).collect()
    }

    /// Problems found with volumes at open (missing, wrong archive, wrong slot).
    pub fn volume_problems(&self) -> Vec<String> {
        self.volumes
            .iter()
            .filter_map(|v| v.file.as_ref().err().map(Error::to_string))
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
            volume: self.volumes[f.volume.at()].path.display().to_string(),
            offset: f.offset,
            cause: Box::new(cause),
        }
    }

    /// Reads a frame's stored bytes, checking its inline header against the frame table.
    pub fn read_stored(&self, id: FrameId) -> Result<Vec<u8>> {
        let f = self.index.frame(id).ok_or(Error::NoFrame(id))?;
        // Validated: the frame's volume is one of `volumes`.
        let vol = &self.volumes[f.volume.at()];
        let file = vol
            .file
            .as_ref()
            .map_err(|e| self.frame_err(id, e.clone()))?;
        let hdr = if matches!(self.kind, Kind::Clc(_)) {
            FrameHeader::SIZE
        } else {
            0
        };
        let start = f.offset - hdr as u64;
        let mut buf = vec![0u8; hdr + f.stored_len as usize];
        file.read_exact_at(&mut buf, start).map_err(|e| {
            let cause = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Check("volume is truncated")
            } else {
                Error::io(&vol.path, e)
            };
            self.frame_err(id, cause)
        })?;
        if hdr > 0 {
            let h = FrameHeader::decode(&buf, &vol.path.display().to_string(), start)?;
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
            buf.drain(..hdr);
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
        // Validated: the frame's volume is one of `volumes`.
        let vol = &self.volumes[f.volume.at()];
        let file = vol
            .file
            .as_ref()
            .map_err(|e| self.frame_err(id, e.clone()))?;
        let mut b = [0u8; 1];
        file.read_exact_at(&mut b, f.offset)
            .map_err(|e| self.frame_err(id, Error::io(&vol.path, e)))?;
        Ok(Some(1u64 << b[0].min(63)))
    }

    /// The path of entry `e`, for messages.
    pub fn path_of(&self, e: EntryId) -> String {
        self.index.entry(e).map_or_else(String::new, |x| {
            String::from_utf8_lossy(&x.path).into_owned()
        })
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
        let Some(content) = self.index.content_of(e) else {
            return Ok(0);
        };
        let size = self.index.data_size(e);
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let in_file = |source: Error| Error::InFile {
            path: self.path_of(e),
            source: Box::new(source),
        };
        let want = buf.len().min((size - offset) as usize);
        let mut done = 0usize;
        for p in self.index.pieces(content, offset) {
            if done == want {
                break;
            }
            let data = src.frame(p.frame).map_err(in_file)?;
            let within = (offset + done as u64 - p.file_offset) as usize;
            let n = (p.len as usize - within).min(want - done);
            let s = p.at as usize + within;
            // Validated: the piece lies within its frame; checked: the frame has its full length.
            let bytes = data.get(s..s + n).ok_or_else(|| {
                in_file(Error::Check("decoded frame shorter than the index says"))
            })?;
            buf[done..done + n].copy_from_slice(bytes);
            done += n;
        }
        Ok(done)
    }
}

/// Opens the last volume and reads its tail, where clc's footer is.
fn open_last(number: VolumeNo, path: &Path) -> Result<Last> {
    let file = volumes::open(path).ctx(path)?;
    let len = file.metadata().ctx(path)?.len();
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
    volumes::open(p).ok()?.read_exact(&mut b).ok()?;
    Some(b)
}

/// The advice added to a missing- or damaged-volume message when the archive has parity volumes.
fn repair_hint(base: &Path) -> Option<String> {
    volumes::has_parity(base).then(|| {
        format!(
            "parity volumes exist: run `clc repair {}` first",
            volumes::data_path(base, VolumeNo(1)).display()
        )
    })
}

fn read_index(f: &mut File, footer: &Footer, what: &str) -> Result<Index> {
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

/// Opens volume `n` of the archive whose id is `id`, checking its header.
fn open_volume(path: &Path, n: u32, id: &[u8; 16]) -> Result<File> {
    let bad = |msg: String| Error::BadVolume {
        path: path.to_path_buf(),
        msg,
    };
    let f = volumes::open(path).ctx(path)?;
    let mut b = [0u8; VolumeHeader::SIZE];
    f.read_exact_at(&mut b, 0)
        .map_err(|_| bad("too short for a volume header".into()))?;
    let h = VolumeHeader::decode(&b, &path.display().to_string())?;
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
