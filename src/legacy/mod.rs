//! Reader for archives written by the Python CL_Compressor (GPU_IDX1 / GPU_IDX2 / GPU_IDX3), mapped onto
//! clc's own [`Index`] so that the rest of clc reads them like its own archives (docs/FORMAT.md section 8).
//!
//! footer → index blob → inflate (bounded) → [`raw`] model (JSON, JSON lines or SQLite) → [`build`] (stream
//! layout, duplicates, damage, directories, sort) → a validated [`Index`].
//!
//! Frames carry no checksum (`Frame::checksum == None`) and `Frame::offset` is the offset of the frame's
//! bytes themselves. Nothing here decodes a frame.

#![forbid(unsafe_code)]

mod build;
mod json;
mod raw;
mod sqlite;
mod volumes;

use crate::diag::escape_path;
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::format::index::{EntryId, ValidIndex};
use raw::{inflate, parse_idx1, parse_idx2, Ctx, MAX_INDEX_RAW};
use volumes::{LegacyFooter, VolumeSet};

/// A CL_Compressor archive, opened.
#[derive(Debug)]
pub struct Legacy {
    /// Entries sorted by path bytes, validated against `volumes.len()` volumes.
    pub index: ValidIndex,
    /// "GPU_IDX1" | "GPU_IDX2" | "GPU_IDX3".
    pub kind: &'static str,
    /// Volume paths: position i is volume number i + 1 (`<base>.NNN`). A slot may name a missing file when
    /// no frame lives in it.
    pub volumes: Vec<PathBuf>,
    /// Entries whose bytes cannot be trusted, in archive order, with a one-line reason each. A damaged
    /// entry's `size` is the number of bytes still known good (its content holds exactly those); the size
    /// the old index promised is in the reason.
    pub damaged: Vec<(EntryId, String)>,
    /// `params.source_root` as recorded ("" when an IDX1/IDX2 index lacks it).
    pub source_root: String,
}

/// True when `first` (any volume) belongs to a CL_Compressor archive. Reads only the first bytes of volume 1
/// and the footer; `Err` when the footer has the magic but does not fit the file.
pub fn detect(first: &Path) -> Result<bool> {
    Ok(probe(first)?.is_some())
}

/// Opens the CL_Compressor archive that `first` (any volume, usually `NAME.001`) belongs to.
/// `Ok(None)`: not a CL_Compressor archive (clc's own, or no `GPU_IDX1|2|3` footer). `Err`: it looks like one
/// but is damaged; the message names the volume and the offset.
pub fn open(first: &Path) -> Result<Option<Legacy>> {
    let Some((vols, foot)) = probe(first)? else {
        return Ok(None);
    };
    let last = vols.last();
    let ctx = Ctx {
        what: escape_path(last),
        offset: foot.index_offset,
        kind: foot.kind,
    };
    let blob = volumes::read_at(last, foot.index_offset, foot.index_size as usize)?;
    // As for clc's own index, what the blob inflates to is bounded by the blob's size (a 204 KB archive
    // held 200 MiB of newlines): 64 x stored + 16 MiB, and 1 GiB.
    let cap = crate::format::footer::max_index_raw(blob.len() as u64).min(MAX_INDEX_RAW);
    let raw = match foot.kind {
        "GPU_IDX1" => parse_idx1(&inflate(&blob, false, cap, &ctx)?, &ctx)?,
        "GPU_IDX2" => parse_idx2(&inflate(&blob, true, cap, &ctx)?, &ctx)?,
        _ => sqlite::parse_idx3(flate2::read::GzDecoder::new(&blob[..]), cap, &ctx)?,
    };
    drop(blob);
    let built = build::build(&raw, foot.kind, &vols, &ctx)?;
    let index = built.index.validate(&ctx.what, vols.count())?;
    Ok(Some(Legacy {
        index,
        kind: foot.kind,
        volumes: vols.paths,
        damaged: built.damaged,
        source_root: built.source_root,
    }))
}

fn probe(first: &Path) -> Result<Option<(VolumeSet, LegacyFooter)>> {
    let Some(vols) = VolumeSet::discover(first)? else {
        return Ok(None);
    };
    Ok(volumes::probe(&vols, first)?.map(|f| (vols, f)))
}
