//! clc: a multi-volume, deduplicating archiver with an LZ4-family codec (LZ_EXT3, 16 MiB window) on the CPU
//! and on the GPU through OpenCL, and a read-only FUSE view of its archives.
//!
//! A byte travels: [`scan`] → [`chunk`] → [`dedup`] → [`codec`] / [`gpu`] → [`pack`] (volumes, index,
//! footer); and back: [`archive`] (footer → index → frame) → [`cache`] → [`extract`] / [`mount`].

pub mod codec;
pub mod config;
pub mod error;
pub mod format;
pub mod gpu;
pub mod hash;
pub mod legacy;

pub use config::Config;
pub use error::{Error, Result};
