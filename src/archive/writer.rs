//! The archive writer: frames in frame-id order into `NAME.001`, `NAME.002`, …, each volume starting
//! with its header and never exceeding `VOLUME_SIZE` unless one frame alone does; then the index and
//! the footer.
//!
//! A volume is a local file or an object streamed to a store (`volumes::VolOut`); either way it is
//! complete only when closed (`fsync`, or the upload completed), one after the other, so the last
//! volume, which holds the index and the footer, is committed last: a pack interrupted anywhere leaves no
//! archive that opens as complete.

use crate::error::{IoContext, Result};
use crate::format::footer::Footer;
use crate::format::frame::FrameHeader;
use crate::format::index::VolumeNo;
use crate::format::volume::VolumeHeader;
use crate::format::{checksum, FORMAT_VERSION};
use crate::volumes::{self, VolOut};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct VolumeWriter {
    base: PathBuf,
    max: u64,
    archive_id: [u8; 16],
    cur: Option<Open>,
    paths: Vec<PathBuf>,
    frames_in_cur: u64,
}

struct Open {
    number: u32,
    path: PathBuf,
    out: BufWriter<VolOut>,
    pos: u64,
    /// Bytes before this offset have been handed to the kernel's writeback.
    kicked: u64,
}

/// Writeback of a volume is started every this many bytes, so the sync at its close has little left.
const WRITEBACK_STEP: u64 = 32 << 20;

impl VolumeWriter {
    pub fn new(base: &Path, max: u64, archive_id: [u8; 16]) -> Self {
        VolumeWriter {
            base: base.to_path_buf(),
            max,
            archive_id,
            cur: None,
            paths: Vec::new(),
            frames_in_cur: 0,
        }
    }

    /// Every volume created so far (to remove them if the pack fails).
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    fn open_next(&mut self) -> Result<()> {
        self.close_current()?;
        let number = self.paths.len() as u32 + 1;
        let path = volumes::data_path(&self.base, VolumeNo(number));
        let f = volumes::create_out(&path).ctx(&path)?;
        self.paths.push(path.clone());
        let mut out = BufWriter::with_capacity(1 << 20, f);
        let h = VolumeHeader {
            version: FORMAT_VERSION as u16,
            number,
            archive_id: self.archive_id,
        };
        out.write_all(&h.encode()).ctx(&path)?;
        self.cur = Some(Open {
            number,
            path,
            out,
            pos: VolumeHeader::SIZE as u64,
            kicked: 0,
        });
        self.frames_in_cur = 0;
        Ok(())
    }

    fn close_current(&mut self) -> Result<()> {
        if let Some(o) = self.cur.take() {
            let out = o
                .out
                .into_inner()
                .map_err(|e| e.into_error())
                .ctx(&o.path)?;
            out.finish().ctx(&o.path)?;
        }
        Ok(())
    }

    /// Ensures `len` more bytes fit the open volume (opening a new one if not, unless it is still empty).
    fn room_for(&mut self, len: u64) -> Result<()> {
        let full = match &self.cur {
            None => true,
            Some(o) => o.pos + len > self.max && self.frames_in_cur > 0,
        };
        if full {
            self.open_next()?;
        }
        Ok(())
    }

    /// Writes one frame; returns (volume number, offset of its stored bytes).
    pub fn write_frame(&mut self, h: &FrameHeader, stored: &[u8]) -> Result<(VolumeNo, u64)> {
        let len = (FrameHeader::SIZE + stored.len()) as u64;
        self.room_for(len)?;
        let o = self.cur.as_mut().expect("room_for opened a volume");
        o.out.write_all(&h.encode()).ctx(&o.path)?;
        o.out.write_all(stored).ctx(&o.path)?;
        let at = o.pos + FrameHeader::SIZE as u64;
        o.pos += len;
        self.frames_in_cur += 1;
        if o.pos - o.kicked >= WRITEBACK_STEP {
            o.out.flush().ctx(&o.path)?;
            if let Some(f) = o.out.get_ref().local() {
                crate::sys::start_writeback(f, o.kicked, o.pos - o.kicked);
            }
            o.kicked = o.pos;
        }
        Ok((VolumeNo(o.number), at))
    }

    /// Writes the index blob (zlib of `raw_index`) and the footer, and syncs. Returns the volume paths.
    pub fn finish(mut self, raw_index: &[u8]) -> Result<Vec<PathBuf>> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
        z.write_all(raw_index)
            .expect("writing to a Vec cannot fail");
        let blob = z.finish().expect("writing to a Vec cannot fail");
        // The index and footer go together, after the last frame, in a volume with room for them.
        self.room_for(blob.len() as u64 + Footer::SIZE as u64)?;
        let id = self.archive_id;
        let count = self.paths.len() as u32;
        let o = self.cur.as_mut().expect("room_for opened a volume");
        let footer = Footer {
            version: FORMAT_VERSION,
            volume_count: count,
            archive_id: id,
            index_offset: o.pos,
            index_stored_len: blob.len() as u64,
            index_raw_len: raw_index.len() as u64,
            index_checksum: checksum(raw_index),
        };
        o.out.write_all(&blob).ctx(&o.path)?;
        o.out.write_all(&footer.encode()).ctx(&o.path)?;
        self.close_current()?;
        Ok(self.paths)
    }
}
