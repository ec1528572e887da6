//! Opening an archive: footer → index → volumes, and reading frames and file bytes through the index.
//! Opening reads the footer and the index only; volumes are opened and their headers checked, never
//! scanned.

pub mod volumes;

use crate::codec::{self, Codec};
use crate::error::{Error, IoContext, Result};
use crate::format::checksum;
use crate::format::footer::Footer;
use crate::format::frame::FrameHeader;
use crate::format::index::{EntryId, EntryKind, FrameId, Index};
use crate::format::volume::VolumeHeader;
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
    file: std::result::Result<File, String>,
}

/// An open archive. Shared by threads (`&self` everywhere).
pub struct Archive {
    pub index: Index,
    pub kind: Kind,
    volumes: Vec<Volume>,
    /// Entries whose bytes cannot be trusted, with the reason (CL_Compressor writer bug).
    pub damaged: HashMap<EntryId, String>,
    /// "run `clc repair` first", added to volume and frame errors when parity volumes exist.
    repair_hint: Option<String>,
}

/// Reads decoded frames for [`Archive::read_at`]: a cache, or a plain decode.
pub trait FrameSource {
    fn frame(&self, id: FrameId) -> Result<Arc<Vec<u8>>>;
}

impl FrameSource for Archive {
    fn frame(&self, id: FrameId) -> Result<Arc<Vec<u8>>> {
        self.read_frame(id).map(Arc::new)
    }
}

impl Archive {
    /// Opens the archive that `path` (any `NAME.NNN`, or `NAME`) belongs to. When the last volume is
    /// damaged and parity volumes exist, the error says to run `clc repair`.
    pub fn open(path: &Path) -> Result<Archive> {
        Self::open_inner(path).map_err(|e| match e {
            Error::Corrupt { what, offset, msg } => {
                let msg = match crate::parity::repair_hint(&crate::parity::base_of(path)) {
                    Some(h) => format!("{msg}; {h}"),
                    None => msg,
                };
                Error::Corrupt { what, offset, msg }
            }
            e => e,
        })
    }

    fn open_inner(path: &Path) -> Result<Archive> {
        let base = match volumes::split(path) {
            Some((b, _)) => b,
            None if volumes::list(path).is_empty() => {
                return Err(Error::Usage(format!(
                    "{}: not an archive volume (expected NAME.001)",
                    path.display()
                )))
            }
            None => path.to_path_buf(),
        };
        let vols = volumes::list(&base);
        let last = vols
            .last()
            .ok_or_else(|| Error::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)))?;
        let mut f = File::open(last).ctx(last)?;
        let len = f.metadata().ctx(last)?.len();
        let mut tail = vec![0u8; Footer::SIZE.min(len as usize)];
        let tail_at = len - tail.len() as u64;
        f.read_exact_at(&mut tail, tail_at).ctx(last)?;
        let first_is_clc = first_bytes(&vols[0]).is_some_and(|b| b == crate::format::volume::MAGIC);
        if !Footer::looks_like(&tail) {
            if !first_is_clc {
                if let Some(l) = crate::legacy::open(&vols[0])? {
                    return Ok(Self::from_legacy(l));
                }
                return Err(Error::corrupt(
                    last.display().to_string(),
                    0,
                    "not a clc or CL_Compressor archive",
                ));
            }
            return Err(Error::corrupt(
                last.display().to_string(),
                len.saturating_sub(Footer::SIZE as u64),
                "no clc footer: this volume is truncated, or the last volume of the archive is missing",
            ));
        }
        let what = last.display().to_string();
        let footer = Footer::decode(&tail, &what, len)?;
        let (_, last_no) = volumes::split(last).unwrap_or((base.clone(), 0));
        if last_no != footer.volume_count {
            return Err(Error::corrupt(
                &what,
                len - Footer::SIZE as u64,
                format!(
                    "footer says the archive has {} volumes but this is volume {last_no}",
                    footer.volume_count
                ),
            ));
        }
        let index = read_index(&mut f, &footer, &what)?;
        index.validate(&what, footer.volume_count)?;
        if footer.version < 2 {
            if let Some(i) = index.frames.iter().position(|f| f.codec == Codec::LzExt3Sb) {
                return Err(Error::corrupt(
                    &what,
                    footer.index_offset,
                    format!(
                        "frame {i} is LZ_EXT3_SB, which needs format version 2 (archive says 1)"
                    ),
                ));
            }
        }
        // Every volume but the last holds at least one frame, so a larger count is a lie; it would
        // otherwise size the volume table (2^32 - 1 slots for a file named NAME.4294967295).
        if footer.volume_count as u64 > index.frames.len() as u64 + 1 {
            return Err(Error::corrupt(
                &what,
                len - Footer::SIZE as u64,
                format!(
                    "footer says the archive has {} volumes but its index has only {} frames",
                    footer.volume_count,
                    index.frames.len()
                ),
            ));
        }
        let repair_hint = crate::parity::repair_hint(&base);
        let volumes = (1..=footer.volume_count)
            .map(|n| {
                let mut v = open_volume(
                    &crate::pack::writer::volume_path(&base, n),
                    n,
                    &footer.archive_id,
                );
                if let (Err(e), Some(h)) = (&mut v.file, &repair_hint) {
                    *e = format!("{e} ({h})");
                }
                v
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
                file: File::open(&path).map_err(|e| format!("{}: {e}", path.display())),
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

    /// Paths of the data volumes, in order.
    pub fn volume_paths(&self) -> Vec<&Path> {
        self.volumes.iter().map(|v| v.path.as_path()).collect()
    }

    /// Problems found with volumes at open (missing, wrong archive, wrong slot).
    pub fn volume_problems(&self) -> Vec<String> {
        self.volumes
            .iter()
            .filter_map(|v| v.file.as_ref().err().cloned())
            .collect()
    }

    fn volume_name(&self, n: u32) -> String {
        self.volumes
            .get(n as usize - 1)
            .map_or_else(|| format!("volume {n}"), |v| v.path.display().to_string())
    }

    fn frame_err(&self, id: FrameId, msg: impl Into<String>) -> Error {
        let f = &self.index.frames[id.0 as usize];
        let mut msg = msg.into();
        if let Some(h) = self
            .repair_hint
            .as_ref()
            .filter(|h| !msg.contains(h.as_str()))
        {
            msg = format!("{msg} ({h})");
        }
        Error::Frame {
            frame: id.0,
            volume: self.volume_name(f.volume),
            offset: f.offset,
            msg,
        }
    }

    /// Reads a frame's stored bytes, checking its inline header against the frame table.
    pub fn read_stored(&self, id: FrameId) -> Result<Vec<u8>> {
        let f = self
            .index
            .frames
            .get(id.0 as usize)
            .ok_or_else(|| Error::Other(format!("frame {} does not exist", id.0)))?;
        let vol = &self.volumes[f.volume as usize - 1];
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
            let msg = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                "volume is truncated".to_string()
            } else {
                e.to_string()
            };
            self.frame_err(id, msg)
        })?;
        if hdr > 0 {
            let h = FrameHeader::decode(&buf, &vol.path.display().to_string(), start)?;
            let want = (f.codec, f.raw_len, f.stored_len, f.checksum, id.0);
            if (
                h.codec,
                h.raw_len,
                h.stored_len,
                Some(h.checksum),
                h.frame_id,
            ) != want
            {
                return Err(self.frame_err(id, "frame header disagrees with the index"));
            }
            buf.drain(..hdr);
        }
        Ok(buf)
    }

    /// Checks decoded bytes of frame `id` against its length and checksum.
    pub fn check_decoded(&self, id: FrameId, data: &[u8]) -> Result<()> {
        let f = &self.index.frames[id.0 as usize];
        if data.len() != f.raw_len as usize {
            return Err(self.frame_err(id, "decoded length differs from the index"));
        }
        if f.checksum.is_some_and(|c| c != checksum(data)) {
            return Err(self.frame_err(id, "checksum mismatch"));
        }
        Ok(())
    }

    /// Decodes stored bytes of frame `id` on the CPU and checks them.
    pub fn decode_stored(&self, id: FrameId, stored: &[u8]) -> Result<Vec<u8>> {
        let f = &self.index.frames[id.0 as usize];
        let data = codec::decode(f.codec, stored, f.raw_len as usize)
            .map_err(|e| self.frame_err(id, e.to_string()))?;
        self.check_decoded(id, &data)?;
        Ok(data)
    }

    /// Reads, decodes and checks one frame on the CPU.
    pub fn read_frame(&self, id: FrameId) -> Result<Vec<u8>> {
        let stored = self.read_stored(id)?;
        self.decode_stored(id, &stored)
    }

    /// The path of entry `e`, for messages.
    pub fn path_of(&self, e: EntryId) -> String {
        self.index
            .entries
            .get(e.0 as usize)
            .map_or_else(String::new, |x| {
                String::from_utf8_lossy(&x.path).into_owned()
            })
    }

    /// Fails when the bytes of entry `e` are known to be damaged (whatever its size says).
    pub fn check_entry(&self, e: EntryId) -> Result<()> {
        let Some(entry) = self.index.entries.get(e.0 as usize) else {
            return Err(Error::NotFound(format!("entry {}", e.0)));
        };
        let owner = if entry.kind == EntryKind::Hardlink {
            EntryId(entry.link)
        } else {
            e
        };
        match self.damaged.get(&owner) {
            Some(why) => Err(Error::Other(format!("{}: {why}", self.path_of(e)))),
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
        let entry = self
            .index
            .entries
            .get(e.0 as usize)
            .ok_or_else(|| Error::NotFound(format!("entry {}", e.0)))?;
        let owner = if entry.kind == EntryKind::Hardlink {
            EntryId(entry.link)
        } else {
            e
        };
        if let Some(why) = self.damaged.get(&owner) {
            return Err(Error::Other(format!("{}: {why}", self.path_of(e))));
        }
        let Some(cid) = self.index.content_of(entry) else {
            return Ok(0);
        };
        let refs = self.index.content_refs(cid);
        let size = self.index.contents[cid.0 as usize].size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min((size - offset) as usize);
        let mut i = refs.partition_point(|r| r.file_offset <= offset) - 1;
        let mut done = 0usize;
        while done < want {
            let r = refs[i];
            let ch = self.index.chunks[r.chunk.0 as usize];
            let data = src.frame(ch.frame).map_err(|err| {
                Error::Other(format!("{}: {err}", String::from_utf8_lossy(&entry.path)))
            })?;
            let within = (offset + done as u64 - r.file_offset) as usize;
            let n = (ch.len as usize - within).min(want - done);
            let s = ch.offset as usize + within;
            buf[done..done + n].copy_from_slice(&data[s..s + n]);
            done += n;
            i += 1;
        }
        Ok(done)
    }

    /// Frames holding bytes of entry `e` (empty for non-files), in file order, without repeats.
    pub fn frames_of(&self, e: &crate::format::index::Entry) -> Vec<FrameId> {
        let Some(cid) = self.index.content_of(e) else {
            return Vec::new();
        };
        let mut out: Vec<FrameId> = Vec::new();
        for r in self.index.content_refs(cid) {
            let f = self.index.chunks[r.chunk.0 as usize].frame;
            if out.last() != Some(&f) {
                out.push(f);
            }
        }
        out
    }

    /// The sub-block size of an LZ_EXT3_SB frame, read from its first stored byte (None for other codecs).
    pub fn subblock_size(&self, id: FrameId) -> Result<Option<u64>> {
        let f = self
            .index
            .frames
            .get(id.0 as usize)
            .ok_or_else(|| Error::Other(format!("frame {} does not exist", id.0)))?;
        if f.codec != Codec::LzExt3Sb || f.stored_len == 0 {
            return Ok(None);
        }
        let file = self.volumes[f.volume as usize - 1]
            .file
            .as_ref()
            .map_err(|e| self.frame_err(id, e.clone()))?;
        let mut b = [0u8; 1];
        file.read_exact_at(&mut b, f.offset)
            .map_err(|e| self.frame_err(id, e.to_string()))?;
        Ok(Some(1u64 << b[0].min(63)))
    }

    /// The codec name used in summaries for a frame.
    pub fn codec_of(&self, id: FrameId) -> Codec {
        self.index.frames[id.0 as usize].codec
    }
}

fn first_bytes(p: &Path) -> Option<[u8; 8]> {
    let mut b = [0u8; 8];
    File::open(p).ok()?.read_exact(&mut b).ok()?;
    Some(b)
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

fn open_volume(path: &Path, n: u32, id: &[u8; 16]) -> Volume {
    let file = (|| {
        let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut b = [0u8; VolumeHeader::SIZE];
        f.read_exact_at(&mut b, 0)
            .map_err(|_| format!("{}: too short for a volume header", path.display()))?;
        let h = VolumeHeader::decode(&b, &path.display().to_string()).map_err(|e| e.to_string())?;
        if h.archive_id != *id {
            return Err(format!("{}: volume of another archive", path.display()));
        }
        if h.number != n {
            return Err(format!(
                "{}: this is volume {} of the archive, not {n}",
                path.display(),
                h.number
            ));
        }
        Ok(f)
    })();
    Volume {
        path: path.to_path_buf(),
        file,
    }
}
