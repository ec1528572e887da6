//! clc: a multi-volume, deduplicating archiver with an LZ4-family codec (LZ_EXT3, 16 MiB window) on the CPU
//! and on the GPU through OpenCL, and a read-only FUSE view of its archives.
//!
//! A byte travels: [`scan`] → [`chunk`] → [`dedup`] → [`codec`] / [`gpu`] → [`pack`] (volumes, index,
//! footer) → [`parity`] (optional Reed–Solomon volumes); and back: [`archive`] (footer → index → frame) →
//! [`cache`] → [`extract`] / [`mount`], with [`parity`] rebuilding lost volumes first. [`legacy`] reads the
//! archives of the Python CL_Compressor into the same index; [`fuzzing`] holds the fuzz targets' bodies.

pub mod archive;
pub mod cache;
pub mod chunk;
pub mod codec;
pub mod config;
pub mod dedup;
pub mod error;
pub mod extract;
pub mod format;
pub mod fuzzing;
pub mod gpu;
pub mod hash;
pub mod legacy;
pub mod mount;
pub mod pack;
pub mod parity;
pub mod report;
pub mod scan;
pub mod sys;
pub mod trace;
pub mod verify;
pub mod warn;

pub use config::Config;
pub use error::{Error, Result};
