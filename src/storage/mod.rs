//! Where bytes live: one interface over local files and S3-compatible object storage.
//!
//! A [`Store`] is a place that holds named objects: a directory, or a bucket and key prefix. Pack, the
//! archive reader, parity and the mount use only these operations and never learn which one it is:
//!
//! | operation | local files | S3 |
//! |---|---|---|
//! | [`list`](Store::list) names + sizes under a name prefix | `readdir` + `stat` | `ListObjectsV2` (delimiter `/`) |
//! | [`size`](Store::size) | `stat` | `HEAD` |
//! | [`read_range`](Store::read_range) exact bytes, or [`StorageError::PastEnd`] | `pread` | ranged `GET` |
//! | [`read_ranges`](Store::read_ranges) ranges of one or more objects, several in flight | `pread` each | concurrent ranged `GET`s |
//! | [`read_tail`](Store::read_tail) last bytes + size (a footer in one request) | `fstat` + `pread` | suffix-range `GET` |
//! | [`put`](Store::put) a whole object | temp file, `fsync`, `rename` | `PUT` |
//! | [`create`](Store::create) a whole object, only if absent | temp file, `link` | `PUT` + `If-None-Match: *` |
//! | [`writer`](Store::writer) a stream as it is produced | temp file, `rename` at finish | multipart upload, parts sent while writing |
//! | [`delete`](Store::delete) (absent is fine) | `unlink` | `DELETE` |
//!
//! Semantics both share: an object appears under its name only when complete (`put` returns, or the
//! writer's [`finish`](ObjectWriter::finish)); writing an existing name replaces it; an unfinished writer
//! leaves nothing behind. Errors are [`StorageError`] kinds naming the object or endpoint, one line each.
//! Transient S3 failures are retried in one place ([`retry`]) with bounded exponential backoff.
//!
//! Settings for S3 come from [`env::s3_config`], the only function in the library that reads the
//! environment; [`Store::open`] takes them as a closure so a local location never reads them.
//! `docs/STORAGE.md` says how pack, the reader, parity and the mount use this.

mod address;
pub mod env;
mod error;
mod local;
mod name;
pub mod requests;
mod retry;
pub mod s3;

pub use address::{Location, S3Address};
pub use error::{StorageError, Tries};
pub use name::{ObjectInfo, ObjectName, MAX_NAME};
pub use retry::RetryPolicy;
pub use s3::S3Config;

use std::ffi::OsStr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// Result of storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What each kind of store implements; callers use [`Store`].
trait Backend: Send + Sync {
    fn describe(&self, name: &ObjectName) -> String;
    fn list(&self, prefix: &OsStr) -> Result<Vec<ObjectInfo>>;
    fn size(&self, name: &ObjectName) -> Result<u64>;
    fn read_range(&self, name: &ObjectName, r: Range<u64>) -> Result<Vec<u8>>;
    fn read_ranges(&self, reqs: &[(&ObjectName, Range<u64>)]) -> Vec<Result<Vec<u8>>> {
        reqs.iter()
            .map(|(name, r)| self.read_range(name, r.clone()))
            .collect()
    }
    fn read_tail(&self, name: &ObjectName, len: u64) -> Result<(Vec<u8>, u64)>;
    fn put(&self, name: &ObjectName, data: &[u8]) -> Result<()>;
    fn create(&self, name: &ObjectName, data: &[u8]) -> Result<()>;
    fn writer(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>>;
    /// A writer whose `finish` fails with `Exists` when `name` existed when it was made. By default
    /// checked first; a backend may check beside the upload.
    fn writer_new(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>> {
        match self.size(name) {
            Ok(_) => Err(StorageError::Exists {
                object: self.describe(name),
            }),
            Err(StorageError::NotFound { .. }) => self.writer(name),
            Err(e) => Err(e),
        }
    }
    fn delete(&self, name: &ObjectName) -> Result<()>;
}

/// An object being written as it is produced. Nothing appears under its name before [`finish`];
/// dropping it unfinished is the same as [`abort`].
///
/// [`finish`]: ObjectWriter::finish
/// [`abort`]: ObjectWriter::abort
pub trait ObjectWriter: Send {
    /// Appends `data`. May block while earlier parts upload (bounded memory). After an error the writer
    /// is closed: later calls fail and `finish` returns an error.
    fn write(&mut self, data: &[u8]) -> Result<()>;
    /// Bytes accepted so far.
    fn written(&self) -> u64;
    /// The object will be sent in parts or must commit after others (a volume that is not cut early,
    /// a last volume): on S3 its multipart upload is created now, beside the writes, so that its first
    /// part streams as it fills and no round trip waits at the end (BENCHMARKS.md §10.8). An upload
    /// created and then not needed is completed as a one-part upload or aborted like any other.
    /// Locally nothing to do.
    fn begin_upload(&mut self) -> Result<()> {
        Ok(())
    }
    /// Sends what is buffered on now if the store can take it before the end (on S3: as a part, when
    /// it is at least the 5 MiB a part that is not the last must be), so that less is left to send at
    /// `finish`. What is written after still goes in the same object. Locally nothing to do.
    fn send_ready(&mut self) -> Result<()> {
        Ok(())
    }
    /// Starts sending everything written so far as the object's last bytes (on S3: the last part of a
    /// multipart upload, of any size), so that `finish` only waits for it and commits; nothing more may
    /// be written (S3 refuses it and abandons the upload). How the last volume of a bucket pack (index and footer) uploads while the volumes
    /// before it complete. Locally nothing to do.
    fn send_rest(&mut self) -> Result<()> {
        Ok(())
    }
    /// Commits the object; returns its size. On error no object appears (and uploaded parts are removed
    /// as far as the server can be reached).
    fn finish(self: Box<Self>) -> Result<u64>;
    /// Drops what was written.
    fn abort(self: Box<Self>) -> Result<()>;
}

/// A place holding named objects: a local directory or an S3 bucket + key prefix. Cheap to clone and
/// shared by threads.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Store({})",
            self.backend.describe(&ObjectName::new("*").expect("valid"))
        )
    }
}

impl Store {
    /// The directory `dir` (which must exist for anything to be found or written there).
    pub fn local(dir: &Path) -> Store {
        Store {
            backend: Arc::new(local::LocalBackend::new(dir)),
        }
    }

    /// `s3://bucket/prefix` with settings `cfg`; `prefix` is empty or ends in `/`. Makes no request.
    pub fn s3(cfg: &S3Config, bucket: &str, prefix: &str) -> Result<Store> {
        Ok(Store {
            backend: Arc::new(s3::S3Backend::new(cfg, bucket, prefix)?),
        })
    }

    /// The store that `loc` is in, and the name inside it. S3 settings are asked of `s3_config` (usually
    /// [`env::s3_config`]) only for an S3 location.
    pub fn open(
        loc: &Location,
        s3_config: impl FnOnce() -> Result<S3Config>,
    ) -> Result<(Store, ObjectName)> {
        match loc {
            Location::Local { dir, name } => Ok((Store::local(dir), name.clone())),
            Location::S3(a) => Ok((
                Store::s3(&s3_config()?, &a.bucket, &a.prefix)?,
                a.name.clone(),
            )),
        }
    }

    /// The full address of `name` (a path or an `s3://` URL), as messages name it.
    pub fn describe(&self, name: &ObjectName) -> String {
        self.backend.describe(name)
    }

    /// Objects whose names start with `prefix`, sorted by name. Only regular files count locally, and
    /// only direct children of the prefix on S3.
    pub fn list(&self, prefix: impl AsRef<OsStr>) -> Result<Vec<ObjectInfo>> {
        self.backend.list(prefix.as_ref())
    }

    /// Size of one object; [`StorageError::NotFound`] names it when it does not exist.
    pub fn size(&self, name: &ObjectName) -> Result<u64> {
        self.backend.size(name)
    }

    /// Exactly the bytes `r` of `name`; [`StorageError::PastEnd`] if the object ends before `r.end`. An
    /// empty range returns no bytes without a request.
    pub fn read_range(&self, name: &ObjectName, r: Range<u64>) -> Result<Vec<u8>> {
        self.backend.read_range(name, r)
    }

    /// Several ranges, of one object or several, each as [`read_range`](Self::read_range) returns it, in
    /// order. On S3 up to `reads_in_flight` requests run at once: how the reader fetches frames ahead and
    /// parity reads one stripe of every volume.
    pub fn read_ranges(&self, reqs: &[(&ObjectName, Range<u64>)]) -> Vec<Result<Vec<u8>>> {
        self.backend.read_ranges(reqs)
    }

    /// The last `len` bytes of `name` (all of it if shorter) and its size, in one request on S3: how a
    /// reader gets the footer (and often the index) without a `HEAD` first.
    pub fn read_tail(&self, name: &ObjectName, len: u64) -> Result<(Vec<u8>, u64)> {
        self.backend.read_tail(name, len)
    }

    /// Writes a whole object, replacing any of that name.
    pub fn put(&self, name: &ObjectName, data: &[u8]) -> Result<()> {
        self.backend.put(name, data)
    }

    /// Writes a whole object only if none of that name exists: [`StorageError::Exists`] otherwise, and
    /// of two racing calls exactly one succeeds (how a lock in a bucket is taken). Locally an exclusive
    /// create of a temp file linked into place; on S3 a `PUT` with `If-None-Match: *` (a store that
    /// ignores the header replaces the object: `tests/storage.rs` checks that SeaweedFS honours it).
    pub fn create(&self, name: &ObjectName, data: &[u8]) -> Result<()> {
        self.backend.create(name, data)
    }

    /// A writer that streams a new object under `name` (replacing any at `finish`).
    pub fn writer(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>> {
        self.backend.writer(name)
    }

    /// A writer of a new object `name`: [`StorageError::Exists`], committing nothing, when an object of
    /// that name existed when the writer was made: locally at once, on S3 from `finish`, since the check
    /// (a `HEAD`) runs beside the upload so that the stream does not wait for it. As for any check-then-write,
    /// an object created meanwhile by someone else is replaced (a pack holds the archive's lock).
    pub fn writer_new(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>> {
        self.backend.writer_new(name)
    }

    /// Deletes `name`; an object that does not exist is not an error.
    pub fn delete(&self, name: &ObjectName) -> Result<()> {
        self.backend.delete(name)
    }
}
