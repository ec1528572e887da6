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
    // Not "s3 …": those trace lines are requests (`storage::requests`), which tests count.
    crate::diag::trace::note(&format!("S3 client made for s3://{}", a.bucket));
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

/// What was learnt of volume objects without asking again: each object's size from the last listing
/// that named it (so that opening a volume costs no `HEAD`), and the last few tails read (so that the
/// index and, for a short volume, its header come with the footer's `GET`). Keyed by URL; an object this
/// process writes or removes is forgotten. Everything read through it is checked as a fresh read is (a
/// tail against its listed size, the index against its checksum, frames against theirs).
struct Known {
    sizes: HashMap<PathBuf, u64>,
    /// Archive bases (`s3://…/NAME`) listed: `sizes` holds every object of theirs that this process
    /// saw listed or wrote, and no other.
    listed: std::collections::HashSet<PathBuf>,
    /// (URL, object size, offset of the first byte, bytes), newest last.
    tails: Vec<(PathBuf, u64, u64, Vec<u8>)>,
}

static KNOWN: Mutex<Option<Known>> = Mutex::new(None);

/// Bytes of an object's end fetched with its footer: the footer, the index blob of trees up to some
/// tens of thousands of files, and the whole of a short volume, in one `GET`.
pub const TAIL_FETCH: u64 = 1 << 20;

/// Tails kept.
const TAILS_KEPT: usize = 4;

fn known<R>(f: impl FnOnce(&mut Known) -> R) -> R {
    let mut g = KNOWN.lock();
    f(g.get_or_insert_with(|| Known {
        sizes: HashMap::new(),
        listed: Default::default(),
        tails: Vec::new(),
    }))
}

/// Forgets what was learnt of object `p` (it is being written or removed).
fn forget(p: &Path) {
    known(|k| {
        k.sizes.remove(p);
        k.tails.retain(|(u, ..)| u != p);
    });
}

/// Object `p` was just written, `size` bytes.
fn wrote(p: &Path, size: u64) {
    known(|k| {
        k.sizes.insert(p.to_path_buf(), size);
        k.tails.retain(|(u, ..)| u != p);
    });
}

/// Whether object `p`, beside the archive `base`, exists, as far as this process's listing of `base`
/// (and its own writes since) says; `None` when it never listed `base`.
pub fn listed_exists(base: &Path, p: &Path) -> Option<bool> {
    if !is_remote(p) {
        return None;
    }
    known(|k| k.listed.contains(base).then(|| k.sizes.contains_key(p)))
}

/// Before an archive is opened: the last volume's tail (footer and index, [`read_tail`]) and the
/// first volume's header, fetched at once and kept for the reads that follow. Failures are left for
/// those reads to meet and report.
pub fn prefetch_open(first: &Path, last: &Path) {
    let head_len = crate::format::volume::VolumeHeader::SIZE as u64;
    std::thread::scope(|sc| {
        if first != last {
            sc.spawn(|| {
                let listed = known(|k| k.sizes.get(first).copied());
                let (Ok((store, name)), Some(size)) = (object(first), listed) else {
                    return;
                };
                if let Ok(h) = store.read_range(&name, 0..head_len.min(size)) {
                    known(|k| {
                        k.tails.push((first.to_path_buf(), size, 0, h));
                        let extra = k.tails.len().saturating_sub(TAILS_KEPT);
                        k.tails.drain(..extra);
                    });
                }
            });
        }
        let _ = read_tail(last, 0);
    });
}

/// Bytes `at..at + len` of object `p` of `size` bytes from a tail read before, when it holds them all.
fn from_tail(p: &Path, size: u64, at: u64, len: usize) -> Option<Vec<u8>> {
    known(|k| {
        let (_, _, start, b) = k
            .tails
            .iter()
            .rev()
            .find(|(u, n, start, _)| u == p && *n == size && at >= *start)?;
        let from = (at - start) as usize;
        b.get(from..from.checked_add(len)?).map(<[u8]>::to_vec)
    })
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
    known(|k| {
        let prefix = base.as_os_str().as_bytes();
        k.sizes.retain(|p, _| {
            let b = p.as_os_str().as_bytes();
            !(b.starts_with(prefix) && b.get(prefix.len()) == Some(&b'.'))
        });
        for (_, p, size) in &out {
            k.sizes.insert(p.clone(), *size);
        }
        k.listed.insert(base.to_path_buf());
    });
    Ok(out)
}

/// A volume object, open for reading: its address and size (from the listing that found it, else one
/// `HEAD`). It holds no store, so that [`forget_stores`] can end the client threads before a `fork`
/// while it stays open.
pub struct RemoteVol {
    addr: S3Address,
    url: PathBuf,
    len: u64,
}

impl RemoteVol {
    pub fn open(p: &Path) -> io::Result<RemoteVol> {
        let addr = address(p)?;
        let len = match known(|k| k.sizes.get(p).copied()) {
            Some(n) => n,
            None => store_for(&addr)?.size(&addr.name).map_err(to_io)?,
        };
        Ok(RemoteVol {
            addr,
            url: p.to_path_buf(),
            len,
        })
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
        if let Some(b) = from_tail(&self.url, self.len, at, buf.len()) {
            buf.copy_from_slice(&b);
            return Ok(());
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
    // Past the end, or in a tail read with the footer (the last frames of a volume): no request.
    let mut out: Vec<Option<io::Result<Vec<u8>>>> = reqs
        .iter()
        .map(|(v, r)| {
            if r.end > v.len || r.start > r.end {
                return Some(Err(past()));
            }
            from_tail(&v.url, v.len, r.start, (r.end - r.start) as usize).map(Ok)
        })
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
    url: PathBuf,
}

impl RemoteOut {
    /// A new object `p`: its `finish` fails with `AlreadyExists` (committing nothing) when an object of
    /// that name existed when it was made. The check (a `HEAD`) runs beside the upload
    /// ([`Store::writer_new`]), so the stream does not wait a round trip for it.
    pub fn create(p: &Path) -> io::Result<RemoteOut> {
        let (store, name) = object(p)?;
        let w = store.writer_new(&name).map_err(exists_to_io)?;
        Ok(RemoteOut {
            w: Some(w),
            url: p.to_path_buf(),
        })
    }

    /// An object `p` that replaces the one of that name (if any) when finished: how `clc repair` writes a
    /// rebuilt volume over a damaged one (a bucket has no rename).
    pub fn replace(p: &Path) -> io::Result<RemoteOut> {
        let (store, name) = object(p)?;
        let w = store.writer(&name).map_err(to_io)?;
        Ok(RemoteOut {
            w: Some(w),
            url: p.to_path_buf(),
        })
    }

    /// Starts the upload now, beside the writes ([`ObjectWriter::begin_upload`]).
    pub fn begin_upload(&mut self) -> io::Result<()> {
        match self.w.as_mut() {
            Some(w) => w.begin_upload().map_err(to_io),
            None => Ok(()),
        }
    }

    /// Sends what is buffered on now when the store can take it before the end
    /// ([`ObjectWriter::send_ready`]): less left to upload at `finish`.
    pub fn send_ready(&mut self) -> io::Result<()> {
        match self.w.as_mut() {
            Some(w) => w.send_ready().map_err(to_io),
            None => Ok(()),
        }
    }

    /// Starts uploading everything written as the object's last bytes ([`ObjectWriter::send_rest`]);
    /// `finish` then only waits for it and completes the upload.
    pub fn send_rest(&mut self) -> io::Result<()> {
        match self.w.as_mut() {
            Some(w) => w.send_rest().map_err(to_io),
            None => Ok(()),
        }
    }

    /// Completes the upload: the object appears now.
    pub fn finish(mut self) -> io::Result<()> {
        forget(&self.url);
        match self.w.take() {
            Some(w) => {
                let n = w.finish().map_err(exists_to_io)?;
                wrote(&self.url, n);
                Ok(())
            }
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

/// [`to_io`], with [`StorageError::Exists`] as `AlreadyExists`.
fn exists_to_io(e: StorageError) -> io::Error {
    match e {
        StorageError::Exists { .. } => io::Error::new(io::ErrorKind::AlreadyExists, e),
        e => to_io(e),
    }
}

/// Writes object `p` holding `data` only if none of that name exists: `AlreadyExists` (carrying
/// [`StorageError::Exists`]) otherwise; of two racing calls one wins ([`Store::create`]).
pub fn create_whole(p: &Path, data: &[u8]) -> io::Result<()> {
    let (store, name) = object(p)?;
    forget(p);
    store.create(&name, data).map_err(exists_to_io)?;
    wrote(p, data.len() as u64);
    Ok(())
}

/// The last `n` bytes of object `p` (all of it when shorter) and its size. One suffix-range `GET` of
/// at least [`TAIL_FETCH`] bytes, kept, so that reads of the index (and of a short volume's header)
/// that follow are answered from it; when the listing said the object is longer than that, a `GET` of
/// its header goes with it, in flight at the same time (both kept under the size the tail's reply
/// gave, which is what the reader checks against the listing).
pub fn read_tail(p: &Path, n: u64) -> io::Result<(Vec<u8>, u64)> {
    let (store, name) = object(p)?;
    let fetch = n.max(TAIL_FETCH);
    let listed = known(|k| k.sizes.get(p).copied());
    // Read already (the open's prefetch): the same bytes, no request.
    let kept = known(|k| {
        k.tails
            .iter()
            .rev()
            .find(|(u, size, start, b)| u == p && start + b.len() as u64 == *size)
            .map(|(_, size, _, b)| (*size, b.len() as u64))
    });
    if let Some((size, have)) = kept.filter(|&(size, have)| have >= n || have == size) {
        let keep = n.min(have);
        if let Some(b) = from_tail(p, size, size - keep, keep as usize) {
            return Ok((b, size));
        }
    }
    let head_len = crate::format::volume::VolumeHeader::SIZE as u64;
    let (tail, head) = std::thread::scope(|sc| {
        let head = listed
            .is_some_and(|size| size > fetch)
            .then(|| sc.spawn(|| store.read_range(&name, 0..head_len)));
        let tail = store.read_tail(&name, fetch);
        (tail, head.and_then(|h| h.join().ok()).and_then(|r| r.ok()))
    });
    let (b, size) = tail.map_err(to_io)?;
    crate::diag::trace::add_device(crate::diag::trace::Stage::ReadFrames, 0, b.len() as u64);
    let start = size - b.len() as u64;
    known(|k| {
        k.tails.retain(|(u, ..)| u != p);
        if let Some(h) = head.filter(|_| size > fetch) {
            k.tails.push((p.to_path_buf(), size, 0, h));
        }
        k.tails.push((p.to_path_buf(), size, start, b.clone()));
        let extra = k.tails.len().saturating_sub(TAILS_KEPT);
        k.tails.drain(..extra);
    });
    let keep = (n as usize).min(b.len());
    Ok((b[b.len() - keep..].to_vec(), size))
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
    forget(p);
    store.delete(&name).map_err(to_io)
}

/// Whether object `p` exists (an error asking counts as no).
pub fn exists(p: &Path) -> bool {
    object(p).is_ok_and(|(s, n)| s.size(&n).is_ok())
}
