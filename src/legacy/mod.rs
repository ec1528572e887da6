//! Reader for archives written by the Python CL_Compressor (GPU_IDX1/2/3).
//! PLACEHOLDER until the reader lands: no archive is recognised.

use crate::format::index::{EntryId, Index};
use std::path::{Path, PathBuf};

pub struct Legacy {
    pub index: Index,
    pub kind: &'static str,
    pub volumes: Vec<PathBuf>,
    pub damaged: Vec<(EntryId, String)>,
    pub source_root: String,
}

pub fn open(_first: &Path) -> crate::Result<Option<Legacy>> {
    Ok(None)
}
