//! The salvage report for an archive without parity: each volume is walked frame by frame through the
//! inline frame headers (`CLCF`, checked by `header_check`), resynchronising on the next valid header after
//! damage, and every frame is decoded and checked against its xxh3. It says which frames of which volume
//! are intact; nothing is written (extract --keep-going already restores every file whose frames are
//! intact when the index can be read).

use crate::codec;
use crate::format::checksum;
use crate::format::footer::Footer;
use crate::format::frame::{FrameHeader, MAGIC};
use crate::format::volume::VolumeHeader;
use crate::ids::VolumeNo;
use crate::volumes;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What the frame headers of one volume tell.
#[derive(Debug, Clone, Default)]
pub struct VolumeSalvage {
    pub path: PathBuf,
    /// Why the volume could not be walked at all (missing, unreadable).
    pub unreadable: Option<String>,
    pub header_ok: bool,
    /// Frame ids that decode and match their checksum.
    pub intact: Vec<u32>,
    pub intact_bytes: u64,
    /// (frame id, offset of its header, why) for frames whose header holds but whose data does not.
    pub damaged: Vec<(u32, u64, String)>,
    /// Bytes belonging to no valid frame header (nor to the index and footer of the last volume).
    pub lost_bytes: u64,
    /// The last volume's index and footer are present and their footer check holds.
    pub has_footer: bool,
}

impl VolumeSalvage {
    pub fn is_clean(&self) -> bool {
        self.unreadable.is_none()
            && self.header_ok
            && self.damaged.is_empty()
            && self.lost_bytes == 0
    }
}

/// Walks every `NAME.NNN` of the archive `base` (the volumes found on disk).
pub fn scan(base: &Path) -> Vec<VolumeSalvage> {
    // A gap in the numbering is a missing volume: name it.
    let last = volumes::list_data(base).last().map_or(0, |(n, _)| n.0);
    (1..=last)
        .map(|n| scan_volume(&volumes::data_path(base, VolumeNo(n))))
        .collect()
}

fn scan_volume(path: &Path) -> VolumeSalvage {
    let mut v = VolumeSalvage {
        path: path.to_path_buf(),
        ..Default::default()
    };
    let f = match volumes::open(path) {
        Ok(f) => f,
        Err(e) => {
            v.unreadable = Some(if e.kind() == std::io::ErrorKind::NotFound {
                "missing".into()
            } else {
                e.to_string()
            });
            return v;
        }
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let mut hb = [0u8; VolumeHeader::SIZE];
    v.header_ok = f.read_exact_at(&mut hb, 0).is_ok() && VolumeHeader::decode(&hb, "").is_ok();
    // The last volume's frames end where its index starts.
    let mut end = len;
    let mut tail = vec![0u8; Footer::SIZE.min(len as usize)];
    let tail_at = len - tail.len() as u64;
    if f.read_exact_at(&mut tail, tail_at).is_ok() {
        if let Ok(ft) = Footer::decode(&tail, "", len) {
            v.has_footer = true;
            end = ft.index_offset;
        }
    }
    let mut pos = VolumeHeader::SIZE as u64;
    while pos < end {
        match frame_at(&f, pos, end) {
            Some((h, stored)) => {
                match codec::decode(h.codec, &stored, h.raw_len as usize) {
                    Ok(d) if checksum(&d) == h.checksum => {
                        v.intact.push(h.frame_id);
                        v.intact_bytes += d.len() as u64;
                    }
                    Ok(_) => v
                        .damaged
                        .push((h.frame_id, pos, "checksum mismatch".into())),
                    Err(e) => v.damaged.push((h.frame_id, pos, e.to_string())),
                }
                pos += (FrameHeader::SIZE + stored.len()) as u64;
            }
            None => {
                let next = next_header(&f, pos + 1, end);
                v.lost_bytes += next - pos;
                pos = next;
            }
        }
    }
    v
}

/// A frame whose header holds at `pos`, with its stored bytes, if it lies before `end`.
fn frame_at(f: &File, pos: u64, end: u64) -> Option<(FrameHeader, Vec<u8>)> {
    let mut hb = [0u8; FrameHeader::SIZE];
    f.read_exact_at(&mut hb, pos).ok()?;
    let h = FrameHeader::decode(&hb, "", pos).ok()?;
    let start = pos + FrameHeader::SIZE as u64;
    if start + u64::from(h.stored_len) > end {
        return None;
    }
    let mut stored = vec![0u8; h.stored_len as usize];
    f.read_exact_at(&mut stored, start).ok()?;
    Some((h, stored))
}

/// The offset of the next valid frame header at or after `from`, or `end`.
fn next_header(f: &File, from: u64, end: u64) -> u64 {
    const BLOCK: usize = 1 << 20;
    let mut buf = vec![0u8; BLOCK + 3];
    let mut at = from;
    while at < end {
        let n = ((end - at) as usize).min(buf.len());
        if f.read_exact_at(&mut buf[..n], at).is_err() {
            return end;
        }
        for k in 0..n.saturating_sub(3) {
            if buf[k..k + 4] == MAGIC && frame_at(f, at + k as u64, end).is_some() {
                return at + k as u64;
            }
        }
        at += n.saturating_sub(3).max(1) as u64;
    }
    end
}
