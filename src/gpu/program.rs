//! Building OpenCL programs, with a cache of program binaries on disk.
//!
//! [`build`] turns (device, source, options) into a built `Program`. The first build for a device
//! compiles the source (seconds on NVIDIA's driver) and stores the binary the driver returns; later
//! builds load that binary (milliseconds). A cached binary is keyed by BLAKE3 of everything that
//! could change it: the platform's name and version, the device's name, vendor, version and driver
//! version, the build options and the source text. Any change gives a new key, so a stale binary is
//! never loaded: it is simply not found (old files are left in place; they are small).
//!
//! Where: `kernels/` in clc's cache directory ([`diag::cache_dir`]: `$CLC_CACHE_DIR` when set, an empty
//! value turning the cache off, else `$XDG_CACHE_HOME/clc`, else `$HOME/.cache/clc`). Each file is
//! `"CLCKBIN1" ‖ xxh3(binary) u64 LE ‖ binary`; one that fails its check, or that the driver
//! refuses, is rebuilt from source and replaced. Writes go to a temporary file renamed into place, so
//! concurrent runs never read half a file. A cache that cannot be read or written costs the
//! compile time only: it is never an error.

use opencl3::context::Context;
use opencl3::device::Device as ClDevice;
use opencl3::platform::Platform;
use opencl3::program::Program;
use std::path::PathBuf;

use crate::diag;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"CLCKBIN1";

/// The directory of cached kernel binaries, or None when there is no home or the cache is off
/// ([`diag::cache_dir`]).
pub fn cache_dir() -> Option<PathBuf> {
    Some(diag::cache_dir()?.join("kernels"))
}

/// Everything a binary depends on, as text (hashed into the file name).
fn identity(dev: &ClDevice, source: &str, options: &str) -> Vec<u8> {
    let platform = dev
        .platform()
        .map(Platform::new)
        .map(|p| {
            (
                p.name().unwrap_or_default(),
                p.version().unwrap_or_default(),
            )
        })
        .unwrap_or_default();
    let mut id = Vec::with_capacity(source.len() + 256);
    for part in [
        "clc-kernel-binary-v1",
        &platform.0,
        &platform.1,
        &dev.name().unwrap_or_default(),
        &dev.vendor().unwrap_or_default(),
        &dev.version().unwrap_or_default(),
        &dev.driver_version().unwrap_or_default(),
        options,
        source,
    ] {
        id.extend_from_slice(&(part.len() as u64).to_le_bytes());
        id.extend_from_slice(part.as_bytes());
    }
    id
}

/// Where the binary for this device, source and options lives (None: no cache).
pub(crate) fn cache_path(dev: &ClDevice, source: &str, options: &str) -> Option<PathBuf> {
    let key = blake3::hash(&identity(dev, source, options));
    Some(cache_dir()?.join(format!("{}.bin", &key.to_hex()[..32])))
}

/// The binary stored at `path`, if the file is there and passes its check.
fn load(path: &std::path::Path) -> Option<Vec<u8>> {
    let data = std::fs::read(path).ok()?;
    let (head, bin) = data.split_at_checked(16)?;
    let sum = u64::from_le_bytes(head[8..16].try_into().ok()?);
    (&head[..8] == MAGIC && !bin.is_empty() && xxhash_rust::xxh3::xxh3_64(bin) == sum)
        .then(|| bin.to_vec())
}

/// Stores `bin` at `path` (temporary file, then rename). Failures are ignored: the cache is optional.
fn store(path: &std::path::Path, bin: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("bin"),
        std::process::id()
    ));
    let mut data = Vec::with_capacity(bin.len() + 16);
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(bin).to_le_bytes());
    data.extend_from_slice(bin);
    if std::fs::write(&tmp, &data).is_ok() && std::fs::rename(&tmp, path).is_ok() {
        return;
    }
    let _ = std::fs::remove_file(&tmp);
}

/// How a program was obtained, for the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from the binary cache.
    Cached,
    /// Compiled from source (and stored, when there is a cache).
    Compiled,
}

/// Builds `source` with `options` for `dev`, the one device of `ctx`: from the cached binary when
/// there is a good one, else from source (then caching the binary). `file` names the source in errors.
pub(crate) fn build(
    ctx: &Context,
    dev: &ClDevice,
    source: &str,
    options: &str,
    file: &str,
) -> Result<(Program, Origin)> {
    let path = cache_path(dev, source, options);
    if let Some(bin) = path.as_deref().and_then(load) {
        if let Ok(p) = Program::create_and_build_from_binary(ctx, &[&bin], options) {
            return Ok((p, Origin::Cached));
        }
    }
    let name = dev.name().unwrap_or_default();
    let p = Program::create_and_build_from_source(ctx, source, options).map_err(|log| {
        let first = log
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or(log.lines().next().unwrap_or(""));
        Error::Gpu(format!(
            "building {file} for {}: {}",
            name.trim(),
            first.trim()
        ))
    })?;
    if let Some(path) = path {
        // One device per context: the first (only) binary is this device's.
        if let Some(bin) = p.get_binaries().ok().and_then(|b| b.into_iter().next()) {
            if !bin.is_empty() {
                store(&path, &bin);
            }
        }
    }
    Ok((p, Origin::Compiled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_cache_file_is_not_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        store(&p, b"binary bytes");
        assert_eq!(load(&p).as_deref(), Some(&b"binary bytes"[..]));
        let mut data = std::fs::read(&p).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        std::fs::write(&p, &data).unwrap();
        assert_eq!(load(&p), None);
        std::fs::write(&p, &data[..10]).unwrap();
        assert_eq!(load(&p), None);
        assert_eq!(load(&dir.path().join("missing.bin")), None);
    }
}
