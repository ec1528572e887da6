//! Volumes in object storage: an archive base (or a volume) written as an `s3://bucket/prefix/NAME` URL.
//!
//! The rest of clc names volumes by path; a path that is an `s3://` URL names an object, and this module is
//! where it is told apart from a file and read or written through [`Store`]. One store per bucket and
//! prefix is made on first use and shared ([`store_for`]); its settings come from
//! [`storage::env::s3_config`](crate::storage::env::s3_config). Storage failures travel inside
//! `io::Error`s (kind `NotFound` for a missing object, `UnexpectedEof` for a read past its end) so that
//! callers keep one error path; [`Error::io`](crate::error::Error::io) takes the [`StorageError`] back
//! out, and the message names the object's URL.

use crate::storage::{env, Location, ObjectName, ObjectWriter, S3Address, StorageError, Store};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Whether `p` is an `s3://` URL rather than a local path.
pub fn is_remote(p: &Path) -> bool {
    p.as_os_str().as_bytes().starts_with(b"s3://")
}

/// A storage error as an `io::Error` of the matching kind, carrying it.
pub fn to_io(e: StorageError) -> io::Error {
    let kind = match e {
        StorageError::NotFound { .. } => io::ErrorKind::NotFound,
        StorageError::PastEnd { .. } => io::ErrorKind::UnexpectedEof,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// The stores made so far, by (bucket, prefix).
static STORES: Mutex<Option<HashMap<(String, String), Store>>> = Mutex::new(None);

/// The store holding `a`'s objects (made once per bucket and prefix).
pub fn store_for(a: &S3Address) -> io::Result<Store> {
    let key = (a.bucket.clone(), a.prefix.clone());
    let mut g = STORES.lock();
    if let Some(s) = g.as_ref().and_then(|m| m.get(&key)) {
        return Ok(s.clone());
    }
    let (store, _) = Store::open(&Location::S3(a.clone()), env::s3_config).map_err(to_io)?;
    g.get_or_insert_with(HashMap::new)
        .insert(key, store.clone());
    Ok(store)
}

/// Drops every store (and with the last one its client threads): before a `fork`, which must not see
/// threads. The next use makes them afresh.
pub fn forget_stores() {
    let stores = STORES.lock().take();
    drop(stores);
}

/// The address of `p`, an `s3://` URL.
pub fn address(p: &Path) -> io::Result<S3Address> {
    let url = p.to_str().ok_or_else(|| {
        to_io(StorageError::BadAddress {
            url: p.to_string_lossy().into_owned(),
            msg: "an s3:// address must be UTF-8".into(),
        })
    })?;
    S3Address::parse(url).map_err(to_io)
}

/// The store and object name of `p`.
pub fn object(p: &Path) -> io::Result<(Store, ObjectName)> {
    let a = address(p)?;
    Ok((store_for(&a)?, a.name))
}

/// Every object named `NAME.SUFFIX` beside `base` (`s3://bucket/prefix/NAME`), as (`SUFFIX`, URL, size).
pub fn siblings(base: &Path) -> io::Result<Vec<(std::ffi::OsString, PathBuf, u64)>> {
    let (store, name) = object(base)?;
    let mut prefix = name.as_os_str().as_bytes().to_vec();
    prefix.push(b'.');
    let mut out = Vec::new();
    for o in store.list(OsStr::from_bytes(&prefix)).map_err(to_io)? {
        let n = o.name.as_os_str().as_bytes();
        if let Some(suffix) = n.strip_prefix(prefix.as_slice()) {
            if !suffix.contains(&b'.') {
                out.push((
                    OsStr::from_bytes(suffix).to_os_string(),
                    base.with_file_name(o.name.as_os_str()),
                    o.size,
                ));
            }
        }
    }
    Ok(out)
}

/// A volume object, open for reading: its address and size (one `HEAD` when opened). It holds no
/// store, so that [`forget_stores`] can end the client threads before a `fork` while it stays open.
pub struct RemoteVol {
    addr: S3Address,
    len: u64,
}

impl RemoteVol {
    pub fn open(p: &Path) -> io::Result<RemoteVol> {
        let addr = address(p)?;
        let len = store_for(&addr)?.size(&addr.name).map_err(to_io)?;
        Ok(RemoteVol { addr, len })
    }

    pub fn size(&self) -> u64 {
        self.len
    }

    /// Exactly `buf.len()` bytes at `at` (one ranged `GET`).
    pub fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let past = || io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end");
        let end = at.checked_add(buf.len() as u64).ok_or_else(past)?;
        if end > self.len {
            return Err(past());
        }
        let b = store_for(&self.addr)?
            .read_range(&self.addr.name, at..end)
            .map_err(to_io)?;
        buf.copy_from_slice(&b);
        // CLC_TRACE: the bytes fetched from the store, as ReadFrames' bytes (no time of its own: the
        // caller times the read).
        crate::diag::trace::add_device(crate::diag::trace::Stage::ReadFrames, 0, b.len() as u64);
        Ok(())
    }
}

/// Ranges of volume objects, each exactly as [`RemoteVol::read_exact_at`] reads it, with up to the
/// store's `reads_in_flight` ranged `GET`s at once ([`Store::read_ranges`]): how the frame cache reads a
/// batch of frames. Ranges of one bucket and prefix go in one call; an archive's volumes all are.
pub fn read_many(reqs: &[(&RemoteVol, std::ops::Range<u64>)]) -> Vec<io::Result<Vec<u8>>> {
    let Some((first, _)) = reqs.first() else {
        return Vec::new();
    };
    let same = reqs
        .iter()
        .all(|(v, _)| v.addr.bucket == first.addr.bucket && v.addr.prefix == first.addr.prefix);
    let past = || io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end");
    if !same {
        return reqs
            .iter()
            .map(|(v, r)| {
                let mut b = vec![0u8; (r.end - r.start) as usize];
                v.read_exact_at(&mut b, r.start).map(|()| b)
            })
            .collect();
    }
    let store = match store_for(&first.addr) {
        Ok(s) => s,
        Err(e) => {
            return reqs
                .iter()
                .map(|_| Err(io::Error::new(e.kind(), e.to_string())))
                .collect()
        }
    };
    let asks: Vec<(&ObjectName, std::ops::Range<u64>)> = reqs
        .iter()
        .map(|(v, r)| (&v.addr.name, r.clone()))
        .collect();
    let mut out: Vec<Option<io::Result<Vec<u8>>>> = reqs
        .iter()
        .map(|(v, r)| (r.end > v.len || r.start > r.end).then(|| Err(past())))
        .collect();
    let todo: Vec<(&ObjectName, std::ops::Range<u64>)> = asks
        .into_iter()
        .zip(&out)
        .filter(|(_, o)| o.is_none())
        .map(|(a, _)| a)
        .collect();
    let mut got = store.read_ranges(&todo).into_iter();
    for o in out.iter_mut().filter(|o| o.is_none()) {
        let r = got.next().unwrap_or_else(|| {
            Err(StorageError::BadReply {
                object: store.describe(&first.addr.name),
                msg: "fewer answers than ranges".into(),
            })
        });
        if let Ok(b) = &r {
            crate::diag::trace::add_device(
                crate::diag::trace::Stage::ReadFrames,
                0,
                b.len() as u64,
            );
        }
        *o = Some(r.map_err(to_io));
    }
    out.into_iter()
        .map(|o| o.unwrap_or_else(|| Err(past())))
        .collect()
}

/// A volume object being written: a streaming upload that appears only when finished.
pub struct RemoteOut {
    w: Option<Box<dyn ObjectWriter>>,
}

impl RemoteOut {
    /// A new object `p`; fails with `AlreadyExists` when one of that name exists (checked first: stores do
    /// not all offer an atomic create-if-absent).
    pub fn create(p: &Path) -> io::Result<RemoteOut> {
        let (store, name) = object(p)?;
        match store.size(&name) {
            Ok(_) => return Err(io::Error::from(io::ErrorKind::AlreadyExists)),
            Err(StorageError::NotFound { .. }) => {}
            Err(e) => return Err(to_io(e)),
        }
        let w = store.writer(&name).map_err(to_io)?;
        Ok(RemoteOut { w: Some(w) })
    }

    /// An object `p` that replaces the one of that name (if any) when finished: how `clc repair` writes a
    /// rebuilt volume over a damaged one (a bucket has no rename).
    pub fn replace(p: &Path) -> io::Result<RemoteOut> {
        let (store, name) = object(p)?;
        let w = store.writer(&name).map_err(to_io)?;
        Ok(RemoteOut { w: Some(w) })
    }

    /// Completes the upload: the object appears now.
    pub fn finish(mut self) -> io::Result<()> {
        match self.w.take() {
            Some(w) => w.finish().map(|_| ()).map_err(to_io),
            None => Ok(()),
        }
    }
}

impl io::Write for RemoteOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let w = self
            .w
            .as_mut()
            .ok_or_else(|| io::Error::other("volume already finished"))?;
        w.write(buf).map_err(to_io)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes object `p` holding `data` only if none of that name exists: `AlreadyExists` (carrying
/// [`StorageError::Exists`]) otherwise; of two racing calls one wins ([`Store::create`]).
pub fn create_whole(p: &Path, data: &[u8]) -> io::Result<()> {
    let (store, name) = object(p)?;
    store.create(&name, data).map_err(|e| match e {
        StorageError::Exists { .. } => io::Error::new(io::ErrorKind::AlreadyExists, e),
        e => to_io(e),
    })
}

/// The last `n` bytes of object `p` (all of it when shorter) and its size, in one suffix-range `GET`.
pub fn read_tail(p: &Path, n: u64) -> io::Result<(Vec<u8>, u64)> {
    let (store, name) = object(p)?;
    let (b, size) = store.read_tail(&name, n).map_err(to_io)?;
    crate::diag::trace::add_device(crate::diag::trace::Stage::ReadFrames, 0, b.len() as u64);
    Ok((b, size))
}

/// The first `max` bytes of object `p` (all of it when shorter).
pub fn read_head(p: &Path, max: u64) -> io::Result<Vec<u8>> {
    let (store, name) = object(p)?;
    let size = store.size(&name).map_err(to_io)?;
    store.read_range(&name, 0..size.min(max)).map_err(to_io)
}

/// Removes object `p` (absent is fine).
pub fn remove(p: &Path) -> io::Result<()> {
    let (store, name) = object(p)?;
    store.delete(&name).map_err(to_io)
}

/// Whether object `p` exists (an error asking counts as no).
pub fn exists(p: &Path) -> bool {
    object(p).is_ok_and(|(s, n)| s.size(&n).is_ok())
}
