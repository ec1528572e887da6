//! The library's error type. Every variant names the thing that failed (file, volume, offset, key) so
//! that the binary can print one clear line. `anyhow` is used only in `main.rs`.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A configuration problem: file, line and key.
    #[error("{file}:{line}: {key}: {msg}")]
    Config {
        file: String,
        line: usize,
        key: String,
        msg: String,
    },
    /// A bad command-line value.
    #[error("{0}")]
    Usage(String),
    /// Damaged or inconsistent archive bytes, with the volume (or file) and offset.
    #[error("{what}: corrupt at offset {offset}: {msg}")]
    Corrupt {
        what: String,
        offset: u64,
        msg: String,
    },
    /// A volume is missing from the set.
    #[error("{0}: volume missing")]
    MissingVolume(PathBuf),
    /// A frame failed to decode or failed its checksum.
    #[error("frame {frame} (volume {volume}, offset {offset}): {msg}")]
    Frame {
        frame: u32,
        volume: String,
        offset: u64,
        msg: String,
    },
    /// A codec rejected its input.
    #[error("decode error: {0}")]
    Decode(String),
    /// OpenCL is missing or failed.
    #[error("OpenCL: {0}")]
    Gpu(String),
    /// An entry that cannot be found in the archive.
    #[error("{0}: no such entry in the archive")]
    NotFound(String),
    /// Anything else worth one line.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Wraps an `io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A corruption error on `what` (a volume or file name) at `offset`.
    pub fn corrupt(what: impl Into<String>, offset: u64, msg: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            offset,
            msg: msg.into(),
        }
    }

    /// The errno a FUSE reply should carry for this error.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NotFound(_) => libc::ENOENT,
            Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            Error::Usage(_) => libc::EINVAL,
            _ => libc::EIO,
        }
    }
}

/// Extension to attach a path to `io::Result`s.
pub trait IoContext<T> {
    fn ctx(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
