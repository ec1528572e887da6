//! Volume discovery and the 24-byte CL_Compressor footer.
//!
//! ```text
//! NAME.001  [frame][frame]...                 no header, no padding, no checksum
//! NAME.NNN  [frame]...[index blob][footer]    the highest-numbered volume
//!
//! footer (last 24 bytes of the last volume):
//! off size field
//! 0   8    index_offset  u64 LE, offset of the index blob in this same volume
//! 8   8    index_size    u64 LE, length of the index blob
//! 16  8    magic         "GPU_IDX1" | "GPU_IDX2" | "GPU_IDX3" (ASCII, no NUL)
//! ```
//!
//! Invariant checked here: `index_offset + index_size <= file length - 24` (every writer makes it `==`).

use crate::diag::escape_path;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::format::{footer::Footer, volume};
use crate::ids::VolumeNo;
use crate::volumes::{self, canonical_number};

/// Size of the CL_Compressor footer.
pub const FOOTER_SIZE: u64 = 24;
/// Volume numbers above this are refused (98 MiB × 100 000 is far beyond any real archive).
pub const MAX_VOLUMES: u32 = 100_000;
/// The compressed index blob is read whole; refuse one larger than this.
pub const MAX_INDEX_STORED: u64 = 1 << 30;

/// The volumes `<stem>.001 ..= <stem>.<count>` in one directory; some may be missing (gaps).
pub struct VolumeSet {
    stem: OsString,
    /// Path of volume n at `n - 1`, present or not.
    pub paths: Vec<PathBuf>,
    /// File length of volume n at `n - 1`; `None` when the file is missing.
    pub lens: Vec<Option<u64>>,
}

impl VolumeSet {
    /// Finds the volumes next to `first`. `Ok(None)` when `first` is not named `NAME.NNN` (3+ digits).
    pub fn discover(first: &Path) -> Result<Option<Self>> {
        volumes::size(first).ctx(first)?;
        let (Some(stem), Some(_)) = (
            first.file_stem(),
            first.extension().and_then(canonical_number),
        ) else {
            return Ok(None);
        };
        let dir = volumes::dir_of(first);
        let base = dir.join(stem);
        volumes::siblings(&base).ctx(&dir)?;
        // Canonical names of regular files only; the last volume is the highest-numbered one that ends
        // in a GPU_IDX magic, so a user's `NAME.2024` beside the archive is not taken for it.
        let found = volumes::list_data_sized(&base);
        let is_footer = |t: &[u8]| matches!(t, b"GPU_IDX1" | b"GPU_IDX2" | b"GPU_IDX3");
        let count = match volumes::last_with_tail(&base, 8, is_footer) {
            Some((n, _, _)) => n.0,
            None => found.last().map_or(0, |(n, _, _)| n.0),
        };
        if count == 0 {
            return Ok(None);
        }
        if count > MAX_VOLUMES {
            let what = volumes::data_path(&base, VolumeNo(count));
            return Err(Error::corrupt(
                escape_path(&what),
                0,
                format!("volume number {count} is above the limit of {MAX_VOLUMES}"),
            ));
        }
        let paths: Vec<PathBuf> = (1..=count)
            .map(|n| volumes::data_path(&base, VolumeNo(n)))
            .collect();
        let mut lens = vec![None; count as usize];
        for (n, p, len) in found.into_iter().filter(|(n, _, _)| n.0 <= count) {
            // Files are asked again (the listing gave 0 for one that could not be looked at); objects'
            // sizes come from the listing.
            let len = if volumes::remote::is_remote(&p) {
                len
            } else {
                volumes::size(&p).ctx(&p)?
            };
            lens[n.at()] = Some(len);
        }
        Ok(Some(VolumeSet {
            stem: stem.to_os_string(),
            paths,
            lens,
        }))
    }

    /// Number of volume slots (the highest volume number found).
    pub fn count(&self) -> u32 {
        self.paths.len() as u32
    }

    /// The highest-numbered volume, which holds the footer.
    pub fn last(&self) -> &Path {
        &self.paths[self.paths.len() - 1]
    }

    /// The volume number of a bare file name as the index records it, if it names a slot of this set.
    pub fn number_of(&self, name: &str) -> Option<u32> {
        let p = Path::new(name);
        if p.file_name() != Some(OsStr::new(name)) || p.file_stem() != Some(self.stem.as_os_str()) {
            return None;
        }
        p.extension()
            .and_then(canonical_number)
            .filter(|&n| n <= self.count())
    }
}

/// What the footer says, once it looks like a CL_Compressor footer.
pub struct LegacyFooter {
    pub kind: &'static str,
    pub index_offset: u64,
    pub index_size: u64,
}

/// Decides whether the set is a CL_Compressor archive (FORMAT.md section 8.1).
/// `Ok(None)`: clc's own archive, or no `GPU_IDX1|2|3` footer at all. `Err`: the footer has the magic but
/// its offset and size do not fit the file.
pub fn probe(vols: &VolumeSet, first: &Path) -> Result<Option<LegacyFooter>> {
    let head_of = if vols.lens[0].is_some() {
        &vols.paths[0]
    } else {
        first
    };
    if read_up_to(head_of, 0, 8)? == volume::MAGIC {
        return Ok(None);
    }
    let last = vols.last();
    let Some(len) = vols.lens[vols.lens.len() - 1] else {
        return Err(Error::MissingVolume(last.to_path_buf()));
    };
    if len >= Footer::SIZE as u64
        && read_at(last, len - Footer::SIZE as u64, 8)?[..] == *b"CLCFOOT1"
    {
        return Ok(None);
    }
    if len < FOOTER_SIZE {
        return Ok(None);
    }
    let at = len - FOOTER_SIZE;
    let tail = read_at(last, at, FOOTER_SIZE as usize)?;
    let kind = match &tail[16..24] {
        b"GPU_IDX1" => "GPU_IDX1",
        b"GPU_IDX2" => "GPU_IDX2",
        b"GPU_IDX3" => "GPU_IDX3",
        _ => return Ok(None),
    };
    let le = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let (index_offset, index_size) = (le(&tail[0..8]), le(&tail[8..16]));
    let bad = |msg: String| Error::corrupt(escape_path(last), at, format!("{kind} footer: {msg}"));
    match index_offset.checked_add(index_size) {
        Some(end) if end <= at && index_size > 0 => {}
        _ => {
            return Err(bad(format!(
                "index at {index_offset}+{index_size} does not fit before the footer"
            )))
        }
    }
    if index_size > MAX_INDEX_STORED {
        return Err(bad(format!(
            "index of {index_size} bytes is above the 1 GiB limit"
        )));
    }
    Ok(Some(LegacyFooter {
        kind,
        index_offset,
        index_size,
    }))
}

/// Exactly `len` bytes at `offset` of `path` (a file or a volume object, through `volumes::Vol`).
pub fn read_at(path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let f = volumes::open_vol(path).ctx(path)?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, offset).ctx(path)?;
    Ok(buf)
}

/// Up to `len` bytes at `offset` of `path` (fewer at the end of the file).
fn read_up_to(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
    let f = volumes::open_vol(path).ctx(path)?;
    let mut buf = vec![0u8; len as usize];
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], offset + got as u64).ctx(path)? {
            0 => break,
            n => got += n,
        }
    }
    buf.truncate(got);
    Ok(buf)
}
