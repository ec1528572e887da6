//! The archive writer: frames in frame-id order into volumes, each starting with its header and never
//! larger than `VOLUME_SIZE`; then the index blob (across volumes when it does not fit) and the footer.
//!
//! Each volume is one stream — created, written front to back, synced and closed — under its temporary
//! name `NAME.NNN.partial` ([`volumes::partial_path`]); only when the last volume, with the footer, is on
//! disk are they all renamed into place, the last one last (FORMAT.md section 11). That is the shape of
//! the storage layer's `ObjectWriter` (write, finish, abort), where a backend without renames commits the
//! last volume last instead. A writer dropped or [`abort`](VolumeWriter::abort)ed before that leaves only
//! `.partial` files, which it removes when it can.
//!
//! A volume is a local file or an object streamed to a store (`volumes::VolOut`). In a bucket an object
//! appears only when its upload completes, so volumes are written under their final names, one after
//! the other, the last one (index and footer) last: a pack interrupted anywhere leaves no archive that
//! opens as complete, and there is nothing to rename.

use crate::error::{Error, IoContext, Result};
use crate::format::checksum;
use crate::format::footer::Footer;
use crate::format::frame::FrameHeader;
use crate::format::index::VolumeNo;
use crate::format::tree::TreeArea;
use crate::format::volume::VolumeHeader;
use crate::storage::s3::MIN_PART;
use crate::volumes::{self, VolOut};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The volume header and a frame header: a frame of `max_frame(VOLUME_SIZE)` raw bytes fits any empty
/// volume (FORMAT.md: a frame is stored RAW unless its encoding is smaller).
pub const FRAME_OVERHEAD: u64 = (VolumeHeader::SIZE + FrameHeader::SIZE) as u64;

/// The largest frame (raw bytes) that fits a volume of `volume_size` bytes.
pub fn max_frame(volume_size: u64) -> u64 {
    volume_size.saturating_sub(FRAME_OVERHEAD)
}

pub struct VolumeWriter {
    base: PathBuf,
    max: u64,
    archive_id: [u8; 16],
    /// The `format_version` written in every volume header and the footer.
    version: u32,
    /// The number of the first volume this writer creates (1 for a new archive).
    first: u32,
    cur: Option<Stream>,
    /// Every volume created so far: (temporary name, final name).
    made: Vec<(PathBuf, PathBuf)>,
    /// Volumes already renamed into place (a failure after the commit removes these too).
    committed: bool,
    frames_in_cur: u64,
    /// The archive is in object storage: volumes are written under their final names.
    remote: bool,
    /// Size of each volume closed so far, in `made`'s order.
    sizes: Vec<u64>,
    /// In a bucket: uploads of earlier volumes completing while the next one streams. Every one has
    /// completed before the last volume (index and footer) is committed.
    finishing: Vec<std::thread::JoinHandle<(PathBuf, Result<()>)>>,
    /// In a bucket: the volumes whose upload completed (what a failed pack removes; an upload that
    /// did not complete left nothing, and a name it was refused for is someone else's).
    uploaded: Vec<PathBuf>,
    /// Called once, before the first volume is created ([`gate`](Self::gate)).
    gate: Option<Gate>,
    /// Volumes are cut early while the generation is small ([`EARLY_VOLUME`]): in a bucket, unless
    /// `CLC_S3_EARLY_VOLUMES=0`.
    early: bool,
}

/// What must hold before a writer creates anything.
pub type Gate = Box<dyn FnOnce() -> Result<()> + Send>;

/// One volume being written: a stream to its temporary name.
struct Stream {
    number: u32,
    path: PathBuf,
    out: BufWriter<VolOut>,
    pos: u64,
    /// Bytes before this offset have been handed to the kernel's writeback.
    kicked: u64,
    /// In a bucket: its multipart upload was begun ([`VolumeWriter::begin_upload`]).
    begun: bool,
}

/// In a bucket, an index of this many raw bytes or more goes in a volume of its own, after the
/// volume of the last frames ([`VolumeWriter::before_index`]): compressing and uploading it take a few
/// milliseconds there, which the last frames' upload then hides. A smaller index goes where the
/// frames end (one object for a small archive).
pub const INDEX_APART: usize = 256 << 10;

/// In a bucket, while a generation is small, a volume is closed after the frame that brings it to this
/// many bytes ([`VolumeWriter::early_cut`]), and uploads at once (one `PUT`, beside the stream) while the
/// next frames are compressed: after the stream only the last volume is left to send, not the whole
/// archive (an object's length must be known before its `PUT`, and a multipart part but the last must
/// be 5 MiB or more, so one object of a few MiB could only go after the stream; BENCHMARKS.md §10.6).
/// Half a MiB: a small tree's frames are all written in its stream's last milliseconds on 16 cores, so
/// what is left after the stream is the largest of these volumes, uploaded beside the others (run 54:
/// with 1 MiB the largest was 1.85 MB, 21 ms; §10.6).
pub const EARLY_VOLUME: u64 = 512 << 10;

/// Volumes are cut early ([`EARLY_VOLUME`]) until the generation's volumes hold this many bytes; the
/// rest goes in volumes of `VOLUME_SIZE`, streamed part by part.
pub const EARLY_UNTIL: u64 = 8 << 20;

/// Early-cut volumes whose uploads may complete at once, in the background (at most EARLY_UNTIL bytes
/// in all).
const EARLY_IN_FLIGHT: usize = 8;

/// Writeback of a volume is started every this many bytes, so the sync at its close has little left.
const WRITEBACK_STEP: u64 = 4 << 20;

impl Stream {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.out.write_all(data).ctx(&self.path)?;
        self.pos += data.len() as u64;
        if self.pos - self.kicked >= WRITEBACK_STEP {
            self.kick()?;
        }
        Ok(())
    }

    /// Starts the kernel's writeback of what was written since the last kick (a local file), so that
    /// the sync at the volume's close waits for little.
    fn kick(&mut self) -> Result<()> {
        if self.pos == self.kicked {
            return Ok(());
        }
        self.out.flush().ctx(&self.path)?;
        if let Some(f) = self.out.get_ref().local() {
            crate::sys::start_writeback(f, self.kicked, self.pos - self.kicked);
        }
        self.kicked = self.pos;
        Ok(())
    }

    /// Flushes and syncs the volume (or completes the upload); it is complete under its temporary name
    /// (in a bucket, under its final name).
    fn finish(self) -> Result<()> {
        let out = self
            .out
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx(&self.path)?;
        out.finish().ctx(&self.path)
    }
}

impl VolumeWriter {
    /// A writer of a new archive of format `version` (`format::version_for` the pack's codec): volumes
    /// `NAME.001`, ….
    pub fn new(base: &Path, max: u64, archive_id: [u8; 16], version: u32) -> Self {
        Self::starting_at(base, max, archive_id, VolumeNo(1), version)
    }

    /// A writer whose first volume is `first` (an append after volume `first − 1`).
    pub fn starting_at(
        base: &Path,
        max: u64,
        archive_id: [u8; 16],
        first: VolumeNo,
        version: u32,
    ) -> Self {
        VolumeWriter {
            base: base.to_path_buf(),
            max,
            archive_id,
            version,
            first: first.0.max(1),
            cur: None,
            made: Vec::new(),
            committed: false,
            frames_in_cur: 0,
            remote: volumes::remote::is_remote(base),
            sizes: Vec::new(),
            finishing: Vec::new(),
            uploaded: Vec::new(),
            gate: None,
            early: volumes::remote::is_remote(base) && crate::storage::env::early_volumes(),
        }
    }

    /// Makes the writer call `g` before it creates its first volume, and fail with its error: a
    /// bucket archive's lock, taken while the tree is scanned and the first frames are compressed, is
    /// waited for only there. Dropped uncalled when nothing was written.
    pub fn gate(&mut self, g: Gate) {
        self.gate = Some(g);
    }

    /// Every file this writer has created so far, where it is now (to remove them if the pack fails).
    pub fn paths(&self) -> Vec<PathBuf> {
        if self.remote {
            return self.uploaded.clone();
        }
        self.made
            .iter()
            .map(|(tmp, fin)| {
                if self.committed || self.remote {
                    fin
                } else {
                    tmp
                }
                .clone()
            })
            .collect()
    }

    /// The number of the volume being written (or the next one).
    fn next_number(&self) -> u32 {
        self.first + self.made.len() as u32
    }

    fn open_next(&mut self) -> Result<()> {
        self.close_current(false)?;
        if let Some(g) = self.gate.take() {
            g()?;
        }
        let number = self.next_number();
        let fin = volumes::data_path(&self.base, VolumeNo(number));
        let path = if self.remote {
            fin.clone()
        } else {
            volumes::partial_path(&fin)
        };
        let f = volumes::create_out(&path).ctx(&path)?;
        self.made.push((path.clone(), fin));
        let mut s = Stream {
            number,
            path,
            out: BufWriter::with_capacity(1 << 20, f),
            pos: 0,
            kicked: 0,
            begun: false,
        };
        let h = VolumeHeader {
            version: self.version as u16,
            number,
            archive_id: self.archive_id,
        };
        s.write(&h.encode())?;
        // On disk at once: a `.partial` file a killed pack leaves starts with a clc header, which is how
        // the next pack knows it for its own (FORMAT.md section 11).
        s.out.flush().ctx(&s.path)?;
        self.cur = Some(s);
        self.frames_in_cur = 0;
        self.begin_if_not_early()
    }

    /// In a bucket with the early cut: once the open volume can no longer be cut early (it reaches
    /// [`EARLY_VOLUME`] only with the generation at [`EARLY_UNTIL`] or more, [`early_cut`]'s rule), it
    /// will be closed only when full or at the end, a multipart upload (when volumes are larger than a
    /// part): created now, so that its first part streams as it fills instead of waiting, once 4 MiB
    /// are buffered, for the upload's creation. Checked when the volume opens and after each of its
    /// frames; decided from sizes only.
    ///
    /// [`early_cut`]: Self::early_cut
    fn begin_if_not_early(&mut self) -> Result<()> {
        let Some(s) = &self.cur else {
            return Ok(());
        };
        if !self.remote || !self.early || s.begun || self.max <= MIN_PART as u64 {
            return Ok(());
        }
        let before: u64 = self.sizes.iter().sum();
        if before + s.pos.max(EARLY_VOLUME) >= EARLY_UNTIL {
            self.begin_upload()?;
        }
        Ok(())
    }

    /// Creates the open volume's multipart upload now, beside what is written (in a bucket).
    fn begin_upload(&mut self) -> Result<()> {
        match self.cur.as_mut() {
            Some(s) if self.remote && !s.begun => {
                s.begun = true;
                s.out.get_mut().begin_upload().ctx(&s.path)?;
                if crate::diag::trace::enabled() {
                    crate::diag::trace::note(&format!(
                        "volume {}: upload begun at {} bytes",
                        s.number, s.pos
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Closes the open volume. In a bucket a volume that is not the last completes its upload in the
    /// background while the next one streams (after the one before it has: at most one more writer's
    /// parts in memory);
    /// [`join_finishing`](Self::join_finishing) waits for them.
    fn close_current(&mut self, last: bool) -> Result<()> {
        let Some(s) = self.cur.take() else {
            return Ok(());
        };
        self.sizes.push(s.pos);
        if !self.remote {
            return s.finish();
        }
        let path = s.path.clone();
        if !last {
            // One volume of `VOLUME_SIZE` completes in the background at a time, so memory stays
            // bounded (two writers) however far the server falls behind; early-cut volumes (a few MiB
            // each) a few at once.
            let small = s.pos <= EARLY_UNTIL;
            let limit = if small { EARLY_IN_FLIGHT } else { 1 };
            while self.finishing.len() >= limit {
                let h = self.finishing.remove(0);
                self.join_one(h)?;
            }
            self.finishing
                .push(std::thread::spawn(move || (path, s.finish())));
            return Ok(());
        }
        s.finish()?;
        self.uploaded.push(path);
        Ok(())
    }

    /// Waits for the earlier volumes' uploads; the first failure is the result.
    fn join_finishing(&mut self) -> Result<()> {
        let mut r = Ok(());
        for h in std::mem::take(&mut self.finishing) {
            let one = self.join_one(h);
            if r.is_ok() {
                r = one;
            }
        }
        r
    }

    /// Waits for one volume's upload.
    fn join_one(&mut self, h: std::thread::JoinHandle<(PathBuf, Result<()>)>) -> Result<()> {
        match h.join() {
            Ok((path, r)) => r.map(|()| self.uploaded.push(path)),
            Err(_) => Err(Error::Internal("a volume upload panicked".into())),
        }
    }

    /// Whether the open volume is closed now, after its last frame: in a bucket, once it holds
    /// [`EARLY_VOLUME`] bytes, while the generation's volumes (this one included) hold less than
    /// [`EARLY_UNTIL`]. Decided from the sizes of the frames written, never from timing: the same
    /// tree and config give the same cut (FORMAT.md 6).
    fn early_cut(&self) -> bool {
        let Some(s) = &self.cur else {
            return false;
        };
        let before: u64 = self.sizes.iter().sum();
        self.early && s.pos >= EARLY_VOLUME && before + s.pos < EARLY_UNTIL
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

    /// Writes one frame; returns (volume number, offset of its stored bytes). A frame that cannot fit
    /// an empty volume is refused: the packer caps frames at [`max_frame`].
    pub fn write_frame(&mut self, h: &FrameHeader, stored: &[u8]) -> Result<(VolumeNo, u64)> {
        let len = (FrameHeader::SIZE + stored.len()) as u64;
        if len + VolumeHeader::SIZE as u64 > self.max {
            return Err(Error::Internal(format!(
                "frame {} of {len} bytes does not fit a volume of {} bytes",
                h.frame_id, self.max
            )));
        }
        self.room_for(len)?;
        let s = self.cur.as_mut().expect("room_for opened a volume");
        s.write(&h.encode())?;
        s.write(stored)?;
        self.frames_in_cur += 1;
        if crate::diag::trace::enabled() {
            crate::diag::trace::note(&format!(
                "frame {} written: volume {}, {len} bytes, volume at {} bytes",
                h.frame_id, s.number, s.pos
            ));
        }
        let at = (VolumeNo(s.number), s.pos - stored.len() as u64);
        if self.early_cut() {
            self.close_current(false)?;
        } else {
            self.begin_if_not_early()?;
        }
        Ok(at)
    }

    /// Starts the writeback of the open volume's frames (a local file) while the index is being built,
    /// so that the sync after it waits for the index's bytes only.
    pub fn kick_writeback(&mut self) -> Result<()> {
        match self.cur.as_mut() {
            Some(s) => s.kick(),
            None => Ok(()),
        }
    }

    /// Writes the index blob (zlib of `raw_index`) and the footer, syncs, and renames every volume into
    /// place, the last one last. Returns the volume paths.
    pub fn finish(self, raw_index: &[u8]) -> Result<Vec<PathBuf>> {
        let v = self.finish_sized(raw_index, None)?;
        Ok(v.into_iter().map(|(p, _)| p).collect())
    }

    /// [`finish`](Self::finish), returning each volume's size with its path (no `stat` or `HEAD`
    /// after). `tree`: format version 5's paged tree (FORMAT.md 12), written after the index in its blob.
    pub fn finish_sized(
        mut self,
        raw_index: &[u8],
        tree: Option<&TreeArea>,
    ) -> Result<Vec<(PathBuf, u64)>> {
        let r = self
            .before_index(raw_index.len())
            .and_then(|()| self.seal(raw_index, tree))
            .and_then(|()| self.commit());
        match r {
            Ok(()) => Ok(self
                .made
                .iter()
                .map(|(_, f)| f.clone())
                .zip(self.sizes.iter().copied())
                .collect()),
            Err(e) => {
                self.abort();
                Err(e)
            }
        }
    }

    /// In a bucket, before the index is compressed, so that the last frames upload while it is made:
    /// with an index of [`INDEX_APART`] raw bytes or more, the volume of the last frames is closed
    /// (its last part uploads and it completes in the background) and the index and footer go in a
    /// volume of their own (FORMAT.md 3.2: the blob lies in the last volume alone); with a smaller one
    /// the buffered bytes go as a part when there are 5 MiB or more. The volume that will hold the
    /// index and footer, when earlier ones are still completing, gets its multipart upload now.
    fn before_index(&mut self, raw_index: usize) -> Result<()> {
        if !self.remote {
            return Ok(());
        }
        match self.cur.as_mut() {
            // The last frame closed its volume (an early cut): the index goes in a new one.
            None if !self.finishing.is_empty() => self.open_next()?,
            None => return Ok(()),
            Some(_) if raw_index >= INDEX_APART && self.frames_in_cur > 0 => self.open_next()?,
            Some(s) => {
                s.out.flush().ctx(&s.path)?;
                s.out.get_mut().send_ready().ctx(&s.path)?;
            }
        }
        if !self.finishing.is_empty() {
            // The last volume, sent while the others complete and committed after them (`seal`): a
            // multipart upload, created while the index is compressed rather than after.
            self.begin_upload()?;
        }
        Ok(())
    }

    /// The index blob after the last frame, spilling into new volumes while it does not fit (FORMAT.md
    /// 3.2), then the footer, in the volume where the blob ends if there is room, else in one more.
    fn seal(&mut self, raw_index: &[u8], tree: Option<&TreeArea>) -> Result<()> {
        let mut blob = deflate_index(raw_index);
        if let Some(t) = tree {
            let tail = t.bytes(blob.len() as u64);
            blob.extend_from_slice(&tail);
        }
        let foot = Footer::SIZE as u64;
        if self.cur.is_none() {
            self.open_next()?;
        }
        let mut rest = &blob[..];
        let mut start: Option<u64> = None;
        loop {
            let s = self.cur.as_mut().expect("a volume is open");
            let room = self.max.saturating_sub(s.pos);
            if rest.len() as u64 + foot <= room {
                start.get_or_insert(s.pos);
                s.write(rest)?;
                break;
            }
            let k = (room as usize).min(rest.len());
            if k > 0 {
                start.get_or_insert(s.pos);
                s.write(&rest[..k])?;
                rest = &rest[k..];
            }
            self.open_next()?;
        }
        let s = self.cur.as_mut().expect("a volume is open");
        let footer = Footer {
            version: self.version,
            volume_count: s.number,
            archive_id: self.archive_id,
            index_offset: start.unwrap_or(s.pos),
            index_stored_len: blob.len() as u64,
            index_raw_len: raw_index.len() as u64,
            index_checksum: checksum(raw_index),
        };
        s.write(&footer.encode())?;
        if self.remote && !self.finishing.is_empty() {
            // Uploading while the earlier volumes complete; committed only after them.
            s.out.flush().ctx(&s.path)?;
            s.out.get_mut().send_rest().ctx(&s.path)?;
        }
        // The last volume is committed only after every earlier one: an interrupted pack never leaves
        // a footer whose volumes are not all there.
        self.join_finishing()?;
        self.close_current(true)
    }

    /// Renames every volume to its final name, the last one (with the footer) last, and syncs the
    /// directory. A final name that exists already is an error (nothing is overwritten).
    fn commit(&mut self) -> Result<()> {
        if self.remote {
            // Each object appeared when its upload completed, the last one last.
            self.committed = true;
            return Ok(());
        }
        for (_, fin) in &self.made {
            if fin.symlink_metadata().is_ok() {
                return Err(Error::Usage(format!(
                    "{}: appeared while the archive was written; not overwritten",
                    fin.display()
                )));
            }
        }
        self.committed = true;
        for (tmp, fin) in &self.made {
            std::fs::rename(tmp, fin).ctx(fin)?;
        }
        volumes::sync_dir(&self.base).ctx(volumes::dir_of(&self.base))
    }

    /// Removes every file written so far (temporary or renamed), and in a bucket every volume whose
    /// upload completed.
    pub fn abort(&mut self) {
        self.cur = None;
        // Uploads still completing are waited for, so that what they commit is removed below.
        let _ = self.join_finishing();
        for p in self.paths() {
            let _ = volumes::remove(&p);
        }
        // A rename may have failed half-way: try both names.
        if !self.remote {
            for (tmp, _) in &self.made {
                let _ = std::fs::remove_file(tmp);
            }
        }
        self.made.clear();
        self.uploaded.clear();
    }
}

impl Drop for VolumeWriter {
    /// A writer dropped before it finished (an error or a panic on the way) leaves no `.partial` files.
    fn drop(&mut self) {
        if !self.committed {
            self.abort();
        }
    }
}

/// An index of more than this many raw bytes is compressed in parts of this size at once: 128 KiB, so
/// that the Rust docs' 1.19 MB index is ten parts for 16 cores rather than a 1 MiB part (6-10 ms on one
/// core after the stream) and a small one; each part's sync flush and primed start cost ~50 bytes.
const INDEX_PART: usize = 128 << 10;

/// The zlib stream of an index blob (FORMAT.md 3: zlib, level 3). Up to [`INDEX_PART`] bytes, one
/// encoder as always; a larger index (a tree of many files: 4.7 MB raw for 23,000 files, 45 ms on one
/// core, run 38) is cut into parts of [`INDEX_PART`] compressed on the rayon pool, each a raw deflate
/// stream primed with the 32 KiB before it and ended by a sync flush (the last by the final block), joined
/// under one zlib header and the Adler-32 of the whole, as pigz does: one ordinary zlib stream that every
/// reader inflates as before. The bytes depend on the index alone, never on the thread count.
fn deflate_index(raw: &[u8]) -> Vec<u8> {
    use rayon::prelude::*;
    if raw.len() <= INDEX_PART {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
        z.write_all(raw).expect("writing to a Vec cannot fail");
        return z.finish().expect("writing to a Vec cannot fail");
    }
    let parts: Vec<Vec<u8>> = raw
        .par_chunks(INDEX_PART)
        .enumerate()
        .map(|(i, part)| {
            let start = i * INDEX_PART;
            let dict = &raw[start.saturating_sub(32 << 10)..start];
            deflate_part(dict, part, start + part.len() == raw.len())
        })
        .collect();
    let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum::<usize>() + 6);
    out.extend_from_slice(&[0x78, 0x5e]); // deflate, 32 KiB window, level 2-5
    for p in &parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(&adler32(raw).to_be_bytes());
    out
}

/// `part` as raw deflate at level 3 after the dictionary `dict`, ended by a sync flush (or, `last`, by
/// the final block).
fn deflate_part(dict: &[u8], part: &[u8], last: bool) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    let mut c = Compress::new(Compression::new(3), false);
    if !dict.is_empty() {
        c.set_dictionary(dict)
            .expect("a fresh raw deflate stream takes a dictionary");
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(part.len() / 2 + 4096);
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(4096));
        }
        let done = c.total_in() as usize;
        let st = c
            .compress_vec(&part[done..], &mut out, flush)
            .expect("deflating into a Vec cannot fail");
        let all_in = c.total_in() as usize == part.len();
        // A sync flush is complete once a call leaves output room unused (zlib's rule).
        if all_in
            && (if last {
                st == Status::StreamEnd
            } else {
                out.len() < out.capacity()
            })
        {
            return out;
        }
    }
}

/// Adler-32 (RFC 1950) of `data`.
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most before `b` could overflow 32 bits (zlib's NMAX).
    for block in data.chunks(5552) {
        for &x in block {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    b << 16 | a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Compressible but not trivial bytes: words from a small vocabulary picked by a xorshift.
    fn text(n: usize) -> Vec<u8> {
        let words: [&[u8]; 8] = [
            b"frame ", b"volume ", b"index\n", b"chunk ", b"0x1f ", b"dedup ", b"{", b"}\n",
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.extend_from_slice(words[(x % 8) as usize]);
            out.push(b'a' + (x >> 40) as u8 % 26);
        }
        out.truncate(n);
        out
    }

    fn inflate(z: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(z)
            .read_to_end(&mut out)
            .expect("a valid zlib stream");
        out
    }

    #[test]
    fn adler32_is_rfc1950s() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        // Past one block of 5552 bytes: each byte at its largest, so the sums need their reductions.
        let big = vec![0xffu8; 100_000];
        assert_eq!(adler32(&big), 0x149a_302c); // Python's zlib.adler32
    }

    #[test]
    fn a_large_index_deflates_in_parts_to_one_zlib_stream() {
        let raw = text(3 * INDEX_PART + 12_345);
        let z = deflate_index(&raw);
        assert_eq!(inflate(&z), raw);
        // The parts cost little against one encoder, and the bytes do not depend on the threads.
        let mut one = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
        one.write_all(&raw).unwrap();
        let one = one.finish().unwrap();
        assert!(
            z.len() as f64 <= one.len() as f64 * 1.01,
            "{} against {}",
            z.len(),
            one.len()
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(pool.install(|| deflate_index(&raw)), z);
        // A wrong check value is refused by the reader.
        let mut bad = z.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        let mut out = Vec::new();
        assert!(flate2::read::ZlibDecoder::new(&bad[..])
            .read_to_end(&mut out)
            .is_err());
    }

    #[test]
    fn a_small_index_is_one_encoders_stream() {
        let raw = text(INDEX_PART);
        let mut one = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
        one.write_all(&raw).unwrap();
        assert_eq!(deflate_index(&raw), one.finish().unwrap());
    }
}
