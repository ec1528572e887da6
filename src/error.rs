//! The library's error type: one kind per way things fail, each naming what failed (path, volume, frame,
//! offset, key) so that the binary prints one clear line and the mount picks an errno by kind
//! (`mount::errno`). Errors are `Clone` (I/O causes are shared), so that a frame's failure can reach
//! every reader that waited for it. `anyhow` is used only in `src/cli` and `main.rs`.
//!
//! Paths held as `PathBuf` are escaped when shown ([`crate::diag::escape`]); text fields hold text that
//! was escaped when it was made (names from an archive or a source tree go through the same helper).

use crate::diag::escape_path;
use crate::ids::FrameId;
use std::path::PathBuf;
use std::sync::Arc;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named path.
    #[error("{}: {source}", escape_path(path))]
    Io {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A configuration file problem: file, line and key.
    #[error("{file}:{line}: {key}: {msg}")]
    Config {
        file: String,
        line: usize,
        key: String,
        msg: String,
    },
    /// A bad value for one setting (a config key or its command-line flag), or two settings that
    /// disagree; `key` is the one to change.
    #[error("{key}: {msg}")]
    Setting { key: String, msg: String },
    /// A bad command-line value or a request that cannot be done as asked.
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
    #[error("{}: volume missing", escape_path(.0))]
    MissingVolume(PathBuf),
    /// A volume that is there but is not the one its slot needs (another archive's, another number's, too
    /// short).
    #[error("{}: {msg}", escape_path(path))]
    BadVolume { path: PathBuf, msg: String },
    /// Frame `frame` (in `volume` at `offset`) could not be read, decoded or checked; `cause` says why.
    #[error("frame {frame} (volume {volume}, offset {offset}): {cause}")]
    Frame {
        frame: FrameId,
        volume: String,
        offset: u64,
        cause: Box<Error>,
    },
    /// The frame table names no such frame.
    #[error("frame {0} does not exist")]
    NoFrame(FrameId),
    /// Decoded bytes disagree with what the index promises (length, checksum), or a frame's inline
    /// header with the index.
    #[error("{0}")]
    Check(&'static str),
    /// A codec rejected its input.
    #[error("decode error: {0}")]
    Decode(String),
    /// OpenCL is missing or failed.
    #[error("OpenCL: {0}")]
    Gpu(String),
    /// An entry (or path, or inode) that cannot be found in the archive.
    #[error("{0}: no such entry in the archive")]
    NotFound(String),
    /// The bytes of an archived file are known to be damaged (a CL_Compressor writer bug, or data that
    /// ends before its size).
    #[error("{path}: {why}")]
    Damaged { path: String, why: String },
    /// Reading the bytes of archived file `path` failed.
    #[error("{path}: {source}")]
    InFile {
        path: String,
        #[source]
        source: Box<Error>,
    },
    /// `source`, with advice on what to do about it (e.g. run `clc repair` first).
    #[error("{source} ({hint})")]
    Hint {
        #[source]
        source: Box<Error>,
        hint: String,
    },
    /// A destination path that extract will not write (it would replace a directory, or write through a
    /// symlink or a non-directory).
    #[error("{path}: {msg}")]
    Target { path: String, msg: String },
    /// Parity volumes that cannot be made or used; `what` is the volume or the stage.
    #[error("{what}: {msg}")]
    Parity { what: String, msg: String },
    /// Mounting or unmounting at `path` failed.
    #[error("{}: {msg}", escape_path(path))]
    Mount { path: PathBuf, msg: String },
    /// SIGINT or SIGTERM (the signal number) stopped the operation; what it had written is removed.
    #[error("interrupted")]
    Interrupted(i32),
    /// Where bytes live failed (an object store or its settings); the message names the object's URL,
    /// the endpoint or the setting.
    #[error("{0}")]
    Storage(Arc<crate::storage::StorageError>),
    /// A broken promise inside clc (a worker that panicked, a decoder that returned too few results).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Wraps an `io::Error` with the path it concerns; one that carries a storage error (a volume in
    /// object storage, `volumes::remote`) becomes that error, which names its object itself.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let source = match source.get_ref() {
            Some(e) if e.is::<crate::storage::StorageError>() => {
                let kind = source.kind();
                match source.into_inner().map(|e| e.downcast()) {
                    Some(Ok(e)) => return Error::Storage(Arc::from(e)),
                    Some(Err(e)) => std::io::Error::new(kind, e),
                    None => std::io::Error::from(kind),
                }
            }
            _ => source,
        };
        Error::Io {
            path: path.into(),
            source: Arc::new(source),
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
}

impl From<crate::storage::StorageError> for Error {
    fn from(e: crate::storage::StorageError) -> Self {
        Error::Storage(Arc::new(e))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_failed() {
        let io = Error::io("a/b", std::io::Error::from_raw_os_error(libc::ENOENT));
        assert!(io.to_string().starts_with("a/b: "), "{io}");
        let f = Error::Frame {
            frame: FrameId(3),
            volume: "x.002".into(),
            offset: 72,
            cause: Box::new(Error::Check("checksum mismatch")),
        };
        assert_eq!(
            f.to_string(),
            "frame 3 (volume x.002, offset 72): checksum mismatch"
        );
        let wrapped = Error::InFile {
            path: "d/f".into(),
            source: Box::new(Error::Hint {
                source: Box::new(f),
                hint: "run it".into(),
            }),
        };
        assert_eq!(
            wrapped.to_string(),
            "d/f: frame 3 (volume x.002, offset 72): checksum mismatch (run it)"
        );
    }
}
