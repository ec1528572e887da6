//! Objects as regular files in one directory.
//!
//! Reads open regular files only: the path is `stat`ed first and opened with `O_NONBLOCK`, and the open
//! file is checked again, so a FIFO or device planted under a volume's name is never opened for long,
//! never blocks and is never read. Symbolic links are followed on reads (a volume may be a link to
//! another disk), never on writes: a new object is written under a hidden temporary name created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW`, synced, and renamed over the final name when the writer finishes, so
//! a name never shows a half-written object.

use super::error::printable;
use super::{Backend, ObjectInfo, ObjectName, ObjectWriter, Result, StorageError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Open read handles kept per store; beyond this many the table is emptied (archives have few volumes
/// open at once, and reopening costs one `open`).
const MAX_HANDLES: usize = 128;

/// Marks the temporary name of an object being written: `.NAME.clc-partial.PID.N`.
const PARTIAL: &str = ".clc-partial.";

pub(crate) struct LocalBackend {
    dir: PathBuf,
    handles: Handles,
}

/// Open read handles by name, shared with writers so that a finished write drops the stale handle.
type Handles = Arc<Mutex<HashMap<OsString, Arc<File>>>>;

impl LocalBackend {
    pub fn new(dir: &Path) -> Self {
        LocalBackend {
            dir: dir.to_path_buf(),
            handles: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn path(&self, name: &ObjectName) -> PathBuf {
        self.dir.join(name.as_os_str())
    }

    fn forget(&self, name: &ObjectName) {
        self.handles.lock().remove(name.as_os_str());
    }

    /// An open handle on the regular file `name`, from the table or newly opened.
    fn handle(&self, name: &ObjectName) -> Result<Arc<File>> {
        if let Some(f) = self.handles.lock().get(name.as_os_str()) {
            return Ok(f.clone());
        }
        let f = Arc::new(open_regular(&self.path(name))?);
        let mut t = self.handles.lock();
        if t.len() >= MAX_HANDLES {
            t.clear();
        }
        t.insert(name.as_os_str().to_os_string(), f.clone());
        Ok(f)
    }
}

/// A path as messages show it: one line whatever its bytes.
trait Shown {
    fn shown(&self) -> String;
}

impl Shown for Path {
    fn shown(&self) -> String {
        printable(&self.display().to_string())
    }
}

fn kind(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

fn io_err(p: &Path, e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound { object: p.shown() }
    } else {
        StorageError::io(p.shown(), e)
    }
}

/// Opens `p` for reading if it is a regular file: `stat` first (a device is never opened), then
/// `O_NONBLOCK` (a FIFO swapped in meanwhile does not block the open) and `fstat` of what was opened.
fn open_regular(p: &Path) -> Result<File> {
    let object = || p.shown();
    let m = std::fs::metadata(p).map_err(|e| io_err(p, e))?;
    if !m.is_file() {
        return Err(StorageError::NotRegular {
            object: object(),
            kind: kind(&m),
        });
    }
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(p)
        .map_err(|e| io_err(p, e))?;
    let m2 = f.metadata().map_err(|e| io_err(p, e))?;
    if !m2.is_file() || m2.ino() != m.ino() || m2.dev() != m.dev() {
        return Err(StorageError::NotRegular {
            object: object(),
            kind: kind(&m2),
        });
    }
    Ok(f)
}

impl Backend for LocalBackend {
    fn describe(&self, name: &ObjectName) -> String {
        self.path(name).shown()
    }

    fn list(&self, prefix: &OsStr) -> Result<Vec<ObjectInfo>> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let mut out = Vec::new();
        for de in rd {
            let de = de.map_err(|e| io_err(&self.dir, e))?;
            let fname = de.file_name();
            let b = fname.as_bytes();
            if !b.starts_with(prefix.as_bytes()) || find(b, PARTIAL.as_bytes()) {
                continue;
            }
            // Follows symbolic links, as reads do; anything but a regular file is not an object.
            match std::fs::metadata(de.path()) {
                Ok(m) if m.is_file() => out.push(ObjectInfo {
                    name: ObjectName::new(&fname)?,
                    size: m.len(),
                }),
                _ => continue,
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn size(&self, name: &ObjectName) -> Result<u64> {
        let p = self.path(name);
        let m = std::fs::metadata(&p).map_err(|e| io_err(&p, e))?;
        if !m.is_file() {
            return Err(StorageError::NotRegular {
                object: p.shown(),
                kind: kind(&m),
            });
        }
        Ok(m.len())
    }

    fn read_range(&self, name: &ObjectName, r: Range<u64>) -> Result<Vec<u8>> {
        if r.start >= r.end {
            return Ok(Vec::new());
        }
        let f = self.handle(name)?;
        let p = || self.path(name);
        let size = f.metadata().map_err(|e| io_err(&p(), e))?.len();
        if r.end > size {
            return Err(StorageError::PastEnd {
                object: p().shown(),
                start: r.start,
                end: r.end,
                size,
            });
        }
        let mut buf = vec![0u8; (r.end - r.start) as usize];
        f.read_exact_at(&mut buf, r.start)
            .map_err(|e| io_err(&p(), e))?;
        Ok(buf)
    }

    fn read_tail(&self, name: &ObjectName, len: u64) -> Result<(Vec<u8>, u64)> {
        let f = self.handle(name)?;
        let p = self.path(name);
        let size = f.metadata().map_err(|e| io_err(&p, e))?.len();
        let start = size.saturating_sub(len);
        let mut buf = vec![0u8; (size - start) as usize];
        f.read_exact_at(&mut buf, start)
            .map_err(|e| io_err(&p, e))?;
        Ok((buf, size))
    }

    fn put(&self, name: &ObjectName, data: &[u8]) -> Result<()> {
        let mut w = self.writer(name)?;
        w.write(data)?;
        w.finish().map(|_| ())
    }

    fn create(&self, name: &ObjectName, data: &[u8]) -> Result<()> {
        let p = self.path(name);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p);
        let mut f = match f {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StorageError::Exists {
                    object: printable(&p.to_string_lossy()),
                })
            }
            r => r.map_err(|e| io_err(&p, e))?,
        };
        self.forget(name);
        f.write_all(data)
            .and_then(|()| f.sync_data())
            .map_err(|e| io_err(&p, e))
    }

    fn writer(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let mut tmp = OsString::from(".");
        tmp.push(name.as_os_str());
        tmp.push(format!(
            "{PARTIAL}{}.{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = self.dir.join(tmp);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, e))?;
        self.forget(name);
        Ok(Box::new(LocalWriter {
            handles: self.handles.clone(),
            name: name.as_os_str().to_os_string(),
            out: Some(BufWriter::with_capacity(1 << 20, f)),
            tmp,
            dst: self.path(name),
            dir: self.dir.clone(),
            written: 0,
        }))
    }

    fn delete(&self, name: &ObjectName) -> Result<()> {
        self.forget(name);
        let p = self.path(name);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&p, e)),
            _ => Ok(()),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Writes into the temporary file; `finish` syncs it and renames it over the destination.
struct LocalWriter {
    handles: Handles,
    name: OsString,
    /// `None` once finished or aborted.
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    dst: PathBuf,
    dir: PathBuf,
    written: u64,
}

impl ObjectWriter for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> Result<()> {
        let out = self.out.as_mut().ok_or_else(|| StorageError::Upload {
            object: self.dst.shown(),
            msg: "write after finish or abort".into(),
        })?;
        out.write_all(buf).map_err(|e| io_err(&self.dst, e))?;
        self.written += buf.len() as u64;
        Ok(())
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn finish(mut self: Box<Self>) -> Result<u64> {
        let out = self.out.take().ok_or_else(|| StorageError::Upload {
            object: self.dst.shown(),
            msg: "finish after abort".into(),
        })?;
        let r = (|| {
            let f = out.into_inner().map_err(|e| e.into_error())?;
            f.sync_data()?;
            std::fs::rename(&self.tmp, &self.dst)?;
            self.handles.lock().remove(&self.name);
            // The rename is durable once the directory is synced.
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = r {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(io_err(&self.dst, e));
        }
        Ok(self.written)
    }

    fn abort(mut self: Box<Self>) -> Result<()> {
        self.out = None;
        match std::fs::remove_file(&self.tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&self.tmp, e)),
            _ => Ok(()),
        }
    }
}

impl Drop for LocalWriter {
    /// A writer dropped before `finish` leaves nothing behind.
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
