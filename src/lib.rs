//! clc: a multi-volume, deduplicating archiver with an LZ4-family codec (LZ_EXT3, 16 MiB window) on the CPU
//! and on the GPU through OpenCL, and a read-only FUSE view of its archives.
//!
//! A byte travels: [`scan`] → [`chunk`] → [`dedup`] → [`codec`] / [`gpu`] → [`pack`] → [`archive`]'s
//! writer (volumes, index, footer) → [`parity`] (optional Reed–Solomon volumes); and back: [`archive`]'s
//! reader (footer → validated index → frame) → [`cache`] → [`extract`] / [`mount`], with [`parity`]
//! rebuilding lost volumes first. [`legacy`] reads the archives of the Python CL_Compressor into the same
//! index. The layers, and which module owns which concept: `docs/ARCHITECTURE.md`.
//!
//! Unsafe code is denied here and allowed only in the FFI modules: [`sys`] (libc), [`heap`] (the global
//! allocator), `gpu::cl` (OpenCL)
//! and [`mount::serve`] (fork, signals, mounts), and in one hot loop, the parallel LZ_EXT3_SB decoder
//! (`codec::lz_ext3_sb::parallel`, held to its safe serial twin); each `unsafe` block says why it is
//! sound.

#![deny(unsafe_code)]

pub mod archive;
pub mod cache;
pub mod chunk;
pub mod codec;
pub mod config;
pub mod dedup;
pub mod diag;
pub mod error;
pub mod extract;
pub mod format;
/// The fuzz targets' bodies (the `fuzzing` feature: the fuzz/ crate and `cargo test` enable it).
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod gpu;
pub mod hash;
#[allow(unsafe_code)]
pub mod heap;
pub mod ids;
pub mod legacy;
pub mod mount;
pub mod pack;
pub mod parity;
pub mod report;
pub mod scan;
pub mod storage;
pub mod summary;
#[allow(unsafe_code)]
pub mod sys;
pub mod verify;
pub mod volumes;

pub use config::Config;
pub use error::{Error, Result};
