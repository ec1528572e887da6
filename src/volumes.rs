//! Volume names, which volumes exist, and opening them: the one home of `NAME.001` … `NAME.999`,
//! `NAME.1000`, … (data volumes, clc's and CL_Compressor's) and `NAME.p001`, … (parity volumes).
//!
//! `NAME` (the archive's *base*, possibly with a directory) plus a suffix: three or more decimal digits
//! for a data volume (volume 1 is `.001`), `p` and three or more digits for a parity volume. clc reads
//! any such number (`NAME.0001` is volume 1); CL_Compressor archives only canonical ones
//! ([`canonical_number`]: `NAME.001`, not `NAME.0001`), as its writer made them.
//!
//! Which volumes exist is decided here from one listing of the base's directory ([`siblings`]); a volume
//! is opened for reading by [`open`] and created by [`create`]. These three are where a storage
//! backend other than local files would come in.
//!
//! What lies beside an archive is not trusted (issue 14): listings keep canonical names of regular files
//! only, so a user's `NAME.2024` directory, a FIFO `NAME.999` or `NAME.0001` is never taken for a volume;
//! [`open`] never blocks and refuses anything but a regular file; [`last_with_tail`] finds the last
//! volume by what its tail says, not by the highest number present; [`OpenVolumes`] keeps a bounded
//! set of volumes open however many an archive has; and [`stale_volumes`] names what `pack --force`
//! may delete: only volumes whose header says they are volumes of that name.
//!
//! A base or volume path may also be an `s3://bucket/prefix/NAME` URL: [`remote`] reads and writes such
//! volumes through [`Store`](crate::storage::Store). [`siblings`], [`open_vol`], [`create_out`],
//! [`remove`], [`exists`] and [`size`] serve both (objects listed by the store count as regular files);
//! [`open`] and [`create`] (plain files, for parity and CL_Compressor archives) refuse URLs.

pub mod remote;

use crate::ids::VolumeNo;
use parking_lot::Mutex;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::num::NonZeroUsize;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a volume's name says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    /// Data volume `NAME.NNN`.
    Data(VolumeNo),
    /// Parity volume `NAME.pNNN` (1-based).
    Parity(u32),
}

/// `base` followed by `suffix` (`NAME` + `.001`).
fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Path of data volume `n` of the archive `base`: `NAME.001`, …, `NAME.999`, `NAME.1000`, ….
pub fn data_path(base: &Path, n: VolumeNo) -> PathBuf {
    with_suffix(base, &format!(".{:03}", n.0))
}

/// Path of parity volume `n` (1-based) of the archive `base`: `NAME.p001`, ….
pub fn parity_path(base: &Path, n: u32) -> PathBuf {
    with_suffix(base, &format!(".p{n:03}"))
}

/// Three or more ASCII digits as a number (any leading zeros).
fn digits(b: &[u8]) -> Option<u32> {
    if b.len() < 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// What a name's suffix (after the last '.') says: data or parity, and its number.
fn parse_suffix(suffix: &[u8]) -> Option<Name> {
    match suffix.strip_prefix(b"p") {
        Some(d) => digits(d).map(Name::Parity),
        None => digits(suffix).map(|n| Name::Data(VolumeNo(n))),
    }
}

/// Splits a volume's path into its archive base and what it is: `a/b.001` → (`a/b`, data 1),
/// `a/b.p002` → (`a/b`, parity 2). `None` when the path names no volume.
pub fn parse(p: &Path) -> Option<(PathBuf, Name)> {
    let b = p.as_os_str().as_bytes();
    let dot = b.iter().rposition(|&c| c == b'.')?;
    let name = parse_suffix(&b[dot + 1..])?;
    Some((PathBuf::from(OsStr::from_bytes(&b[..dot])), name))
}

/// The archive base (`NAME`) of a path naming any of its volumes (`NAME.001`, `NAME.p001`), or `NAME`
/// itself.
pub fn base_of(path: &Path) -> PathBuf {
    parse(path).map_or_else(|| path.to_path_buf(), |(b, _)| b)
}

/// A CL_Compressor volume number: `001` → 1; three digits or more, no extra leading zeros, 1-based.
pub fn canonical_number(suffix: &OsStr) -> Option<u32> {
    let s = suffix.to_str()?;
    let n = digits(s.as_bytes())?;
    (n >= 1 && format!("{n:03}") == s).then_some(n)
}

/// The directory holding the volumes of `base` ("." for a bare name).
pub fn dir_of(base: &Path) -> PathBuf {
    match base.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Every file next to `base` named `NAME.SUFFIX` (`NAME` being the last component of `base`), as
/// (`SUFFIX`, path): the one directory listing that every listing of volumes filters.
pub fn siblings(base: &Path) -> io::Result<Vec<(OsString, PathBuf)>> {
    if remote::is_remote(base) {
        let found = remote::siblings(base)?;
        return Ok(found.into_iter().map(|(s, p, _)| (s, p)).collect());
    }
    let Some(name) = base.file_name() else {
        return Ok(Vec::new());
    };
    let mut prefix = name.as_bytes().to_vec();
    prefix.push(b'.');
    let mut out = Vec::new();
    for de in std::fs::read_dir(dir_of(base))? {
        let fname = de?.file_name();
        if let Some(suffix) = fname.as_bytes().strip_prefix(prefix.as_slice()) {
            // The suffix is what follows the name's last '.', as `parse` reads it.
            if !suffix.contains(&b'.') {
                out.push((
                    OsString::from_vec(suffix.to_vec()),
                    base.with_file_name(&fname),
                ));
            }
        }
    }
    Ok(out)
}

/// What a canonical suffix names: `001` → data 1, `p001` → parity 1 (`0001`, `p01`, `000` name nothing).
fn canonical_suffix(suffix: &OsStr) -> Option<Name> {
    match suffix.as_bytes().strip_prefix(b"p") {
        Some(d) => canonical_number(OsStr::from_bytes(d)).map(Name::Parity),
        None => canonical_number(suffix).map(|n| Name::Data(VolumeNo(n))),
    }
}

/// Whether `p` is a regular file (following a symlink); looked at with `stat`, never opened.
pub fn is_regular(p: &Path) -> bool {
    if remote::is_remote(p) {
        return remote::exists(p);
    }
    std::fs::metadata(p).is_ok_and(|m| m.is_file())
}

/// The canonical volumes of `base` that are regular files, as (name, path), sorted.
fn list(base: &Path) -> Vec<(Name, PathBuf)> {
    let mut found: Vec<(Name, PathBuf)> = siblings(base)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(suffix, p)| Some((canonical_suffix(&suffix)?, p)))
        .filter(|(_, p)| remote::is_remote(p) || is_regular(p))
        .collect();
    found.sort_by_key(|(n, _)| match *n {
        Name::Data(v) => (0, v.0),
        Name::Parity(k) => (1, k),
    });
    found
}

/// Every data volume of `base` on disk (canonical names, regular files), sorted by number. An
/// unreadable directory lists nothing.
pub fn list_data(base: &Path) -> Vec<(VolumeNo, PathBuf)> {
    list(base)
        .into_iter()
        .filter_map(|(n, p)| match n {
            Name::Data(v) => Some((v, p)),
            Name::Parity(_) => None,
        })
        .collect()
}

/// [`list_data`] with each volume's size: for objects the sizes the one listing returned (no `HEAD`
/// each), for files a `stat` each (0 when it fails).
pub fn list_data_sized(base: &Path) -> Vec<(VolumeNo, PathBuf, u64)> {
    list_data_sized_checked(base).unwrap_or_default()
}

/// [`list_data_sized`], with a listing of objects that fails (endpoint, credentials, bucket) as that
/// error rather than as no volumes.
pub fn list_data_sized_checked(base: &Path) -> io::Result<Vec<(VolumeNo, PathBuf, u64)>> {
    if remote::is_remote(base) {
        let mut found: Vec<(VolumeNo, PathBuf, u64)> = remote::siblings(base)?
            .into_iter()
            .filter_map(|(suffix, p, len)| match canonical_suffix(&suffix)? {
                Name::Data(n) => Some((n, p, len)),
                Name::Parity(_) => None,
            })
            .collect();
        found.sort_by_key(|(n, _, _)| n.0);
        return Ok(found);
    }
    Ok(list_data(base)
        .into_iter()
        .map(|(n, p)| {
            let len = size(&p).unwrap_or(0);
            (n, p, len)
        })
        .collect())
}

/// Every parity volume of `base` on disk (canonical names, regular files), sorted by number.
pub fn list_parity(base: &Path) -> Vec<(u32, PathBuf)> {
    list(base)
        .into_iter()
        .filter_map(|(n, p)| match n {
            Name::Parity(k) => Some((k, p)),
            Name::Data(_) => None,
        })
        .collect()
}

/// Whether the archive `base` has parity volumes (its first one is a regular file). In a bucket the
/// listing this process made of `base` answers, when there was one (no `HEAD`).
pub fn has_parity(base: &Path) -> bool {
    let first = parity_path(base, 1);
    remote::listed_exists(base, &first).unwrap_or_else(|| is_regular(&first))
}

/// The name a volume is written under until its archive (or generation) is complete:
/// `NAME.001.partial`, `NAME.p001.partial` (FORMAT.md section 11).
pub fn partial_path(volume: &Path) -> PathBuf {
    with_suffix(volume, ".partial")
}

/// The lock a pack or append holds on `NAME` while it writes: `NAME.lock`.
pub fn lock_path(base: &Path) -> PathBuf {
    with_suffix(base, ".lock")
}

/// Every `NAME.NNN.partial` and `NAME.pNNN.partial` next to `base` (left by a pack that was killed), as
/// (what the name says, path), sorted.
pub fn list_partial(base: &Path) -> Vec<(Name, PathBuf)> {
    let Some(name) = base.file_name() else {
        return Vec::new();
    };
    let mut prefix = name.as_bytes().to_vec();
    prefix.push(b'.');
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir_of(base)) else {
        return out;
    };
    for de in rd.flatten() {
        let fname = de.file_name();
        let rest = fname.as_bytes().strip_prefix(prefix.as_slice());
        if let Some(suffix) = rest.and_then(|r| r.strip_suffix(b".partial")) {
            if let Some(n) = parse_suffix(suffix) {
                out.push((n, base.with_file_name(&fname)));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// Syncs the directory holding `base`'s volumes, so that renames into it are durable.
pub fn sync_dir(base: &Path) -> io::Result<()> {
    File::open(dir_of(base))?.sync_all()
}

/// The highest-numbered data volume of `base` whose last `n` bytes satisfy `is_tail` (a footer's magic),
/// with those bytes. Volumes past the last one (a user's `NAME.2024`) are skipped, each costing one
/// open and one read; `None` when no volume has such a tail.
pub fn last_with_tail(
    base: &Path,
    n: usize,
    is_tail: impl Fn(&[u8]) -> bool,
) -> Option<(VolumeNo, PathBuf, Vec<u8>)> {
    list_data(base).into_iter().rev().find_map(|(v, p)| {
        let f = open_vol(&p).ok()?;
        let len = f.size().ok()?;
        let mut tail = vec![0u8; n];
        f.read_exact_at(&mut tail, len.checked_sub(n as u64)?)
            .ok()?;
        is_tail(&tail).then_some((v, p, tail))
    })
}

/// Opens a volume for reading. Never blocks (a FIFO or a device named like a volume would) and refuses
/// anything but a regular file: it is looked at with `stat` first, opened with `O_NONBLOCK`, and what was
/// opened is checked again.
pub fn open(path: &Path) -> io::Result<File> {
    if remote::is_remote(path) {
        return Err(no_url(path));
    }
    let not_regular = || io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
    if !std::fs::metadata(path)?.is_file() {
        return Err(not_regular());
    }
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(not_regular());
    }
    Ok(f)
}

/// How many volumes a reader keeps open at once, at most (well below the usual 1024 descriptors).
pub const MAX_OPEN_VOLUMES: usize = 64;

/// The volumes a reader has open: at most [`MAX_OPEN_VOLUMES`], the least recently used closed first
/// (once no read holds it), so an archive of any number of volumes reads within a bounded set of file
/// descriptors (1 500 volumes under `ulimit -n 1024` made `verify` report 964 EMFILE problems).
pub struct OpenVolumes<F = File> {
    files: Mutex<lru::LruCache<VolumeNo, Arc<F>>>,
}

impl<F> Default for OpenVolumes<F> {
    fn default() -> Self {
        OpenVolumes::new(MAX_OPEN_VOLUMES)
    }
}

impl<F> OpenVolumes<F> {
    /// At most `cap` (1 or more) volumes open at once.
    pub fn new(cap: usize) -> OpenVolumes<F> {
        let cap = NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN);
        OpenVolumes {
            files: Mutex::new(lru::LruCache::new(cap)),
        }
    }

    /// Volume `n`, opened by `open` unless it is open already.
    pub fn get<E>(&self, n: VolumeNo, open: impl FnOnce() -> Result<F, E>) -> Result<Arc<F>, E> {
        if let Some(f) = self.files.lock().get(&n) {
            return Ok(f.clone());
        }
        let f = Arc::new(open()?);
        self.files.lock().put(n, f.clone());
        Ok(f)
    }

    /// How many are open (for tests).
    pub fn len(&self) -> usize {
        self.files.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What `pack --force` over `base` may remove: the canonical data and parity volumes that are regular
/// files whose first `head_len` bytes `is_ours` accepts for that name (a clc volume header numbered as
/// the name says). Anything else named like a volume (a user's `NAME.2024`, a directory, a CL_Compressor
/// volume, a damaged volume) is not listed.
pub fn stale_volumes(
    base: &Path,
    head_len: usize,
    is_ours: impl Fn(Name, &[u8]) -> bool + Sync,
) -> Vec<PathBuf> {
    let named: Vec<(Name, PathBuf)> = siblings(base)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(suffix, p)| canonical_suffix(&suffix).map(|n| (n, p)))
        .collect();
    let keep = each_volume(&named, remote::is_remote(base), |(name, p)| {
        let mut head = vec![0u8; head_len];
        open_vol(p).is_ok_and(|f| f.read_exact_at(&mut head, 0).is_ok() && is_ours(*name, &head))
    });
    let mut ours: Vec<PathBuf> = named
        .into_iter()
        .zip(keep)
        .filter_map(|((_, p), k)| k.then_some(p))
        .collect();
    ours.sort();
    ours
}

/// `f` of every item, in order: one after another for local files; for objects in a bucket
/// ([`EACH_AT_ONCE`] at a time), since each is a request of a round trip or more (a `--force` pack
/// over a bucket archive of 20 objects spent 30-45 ms on their checks and deletes one by one,
/// BENCHMARKS.md 10.7).
pub fn each_volume<I: Sync, T: Send>(
    items: &[I],
    remote: bool,
    f: impl Fn(&I) -> T + Sync,
) -> Vec<T> {
    if !remote || items.len() < 2 {
        return items.iter().map(&f).collect();
    }
    let mut out = Vec::with_capacity(items.len());
    for group in items.chunks(EACH_AT_ONCE) {
        std::thread::scope(|s| {
            let running: Vec<_> = group.iter().map(|i| s.spawn(|| f(i))).collect();
            for h in running {
                match h.join() {
                    Ok(v) => out.push(v),
                    Err(e) => std::panic::resume_unwind(e),
                }
            }
        });
    }
    out
}

/// Requests to a bucket [`each_volume`] has in flight at once.
pub const EACH_AT_ONCE: usize = 16;

/// Whether the volume `path` exists (a file, or an object).
pub fn exists(path: &Path) -> bool {
    if remote::is_remote(path) {
        remote::exists(path)
    } else {
        path.exists()
    }
}

/// The size of the volume `path` (a file, or an object).
pub fn size(path: &Path) -> io::Result<u64> {
    if remote::is_remote(path) {
        remote::RemoteVol::open(path).map(|v| v.size())
    } else {
        std::fs::metadata(path).map(|m| m.len())
    }
}

/// Removes the volume `path` (a file, or an object).
pub fn remove(path: &Path) -> io::Result<()> {
    if remote::is_remote(path) {
        remote::remove(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// Why a URL cannot be opened as a plain file.
fn no_url(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{}: this step reads local files only, and this volume is an object in a bucket",
            path.display()
        ),
    )
}

/// Creates a new volume for writing, as a local file; fails when one of that name exists (and for an
/// `s3://` URL).
pub fn create(path: &Path) -> io::Result<File> {
    if remote::is_remote(path) {
        return Err(no_url(path));
    }
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// A volume open for reading: a local file or an object.
pub enum Vol {
    Local(File),
    Remote(remote::RemoteVol),
}

impl Vol {
    /// Its size in bytes.
    pub fn size(&self) -> io::Result<u64> {
        match self {
            Vol::Local(f) => Ok(f.metadata()?.len()),
            Vol::Remote(r) => Ok(r.size()),
        }
    }

    /// Up to `buf.len()` bytes at `at`, fewer only at the end (0 past it), as `pread` returns them.
    pub fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        match self {
            Vol::Local(f) => std::os::unix::fs::FileExt::read_at(f, buf, at),
            Vol::Remote(r) => {
                let n = (buf.len() as u64).min(r.size().saturating_sub(at)) as usize;
                if n > 0 {
                    r.read_exact_at(&mut buf[..n], at)?;
                }
                Ok(n)
            }
        }
    }

    /// Exactly `buf.len()` bytes at `at`; `UnexpectedEof` when the volume ends before.
    pub fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        match self {
            Vol::Local(f) => std::os::unix::fs::FileExt::read_exact_at(f, buf, at),
            Vol::Remote(r) => r.read_exact_at(buf, at),
        }
    }
}

/// Opens a volume for reading, a file or an object.
pub fn open_vol(path: &Path) -> io::Result<Vol> {
    if remote::is_remote(path) {
        remote::RemoteVol::open(path).map(Vol::Remote)
    } else {
        open(path).map(Vol::Local)
    }
}

/// A volume being written: a new local file, or an object streamed as it is written (visible only once
/// [`finish`](VolOut::finish)ed; dropped unfinished, it leaves nothing).
pub enum VolOut {
    Local(File),
    Remote(remote::RemoteOut),
}

impl VolOut {
    /// The local file, for writeback hints.
    pub fn local(&self) -> Option<&File> {
        match self {
            VolOut::Local(f) => Some(f),
            VolOut::Remote(_) => None,
        }
    }

    /// Starts the object's multipart upload now (it will be one); nothing for a file.
    pub fn begin_upload(&mut self) -> io::Result<()> {
        match self {
            VolOut::Local(_) => Ok(()),
            VolOut::Remote(r) => r.begin_upload(),
        }
    }

    /// Hands what is buffered on to the store when it can take it before the end (an upload's part);
    /// nothing for a file.
    pub fn send_ready(&mut self) -> io::Result<()> {
        match self {
            VolOut::Local(_) => Ok(()),
            VolOut::Remote(r) => r.send_ready(),
        }
    }

    /// Starts uploading all of the volume now (its last part), leaving `finish` to complete it;
    /// nothing for a file.
    pub fn send_rest(&mut self) -> io::Result<()> {
        match self {
            VolOut::Local(_) => Ok(()),
            VolOut::Remote(r) => r.send_rest(),
        }
    }

    /// Makes the volume durable: `fsync` of the file, or completing the upload.
    pub fn finish(self) -> io::Result<()> {
        match self {
            VolOut::Local(f) => f.sync_data(),
            VolOut::Remote(r) => r.finish(),
        }
    }
}

impl io::Write for VolOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            VolOut::Local(f) => f.write(buf),
            VolOut::Remote(r) => r.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            VolOut::Local(f) => f.flush(),
            VolOut::Remote(r) => r.flush(),
        }
    }
}

/// Creates a new data volume, a file or an object; fails when one of that name exists.
pub fn create_out(path: &Path) -> io::Result<VolOut> {
    if remote::is_remote(path) {
        remote::RemoteOut::create(path).map(VolOut::Remote)
    } else {
        create(path).map(VolOut::Local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn names_parse_and_print() {
        let d = |n| Name::Data(VolumeNo(n));
        assert_eq!(
            parse(Path::new("a/b.001")),
            Some((PathBuf::from("a/b"), d(1)))
        );
        assert_eq!(
            parse(Path::new("b.x.1000")),
            Some((PathBuf::from("b.x"), d(1000)))
        );
        assert_eq!(parse(Path::new("b.0001")), Some((PathBuf::from("b"), d(1))));
        assert_eq!(
            parse(Path::new("d/a.p012")),
            Some((PathBuf::from("d/a"), Name::Parity(12)))
        );
        for bad in ["b.01", "b.p01", "b", "b.x01", "b.pp001", "b.99999999999"] {
            assert_eq!(parse(Path::new(bad)), None, "{bad}");
        }
        assert_eq!(
            data_path(Path::new("d/a"), VolumeNo(3)),
            PathBuf::from("d/a.003")
        );
        assert_eq!(
            data_path(Path::new("a"), VolumeNo(1000)),
            PathBuf::from("a.1000")
        );
        assert_eq!(parity_path(Path::new("d/a"), 3), PathBuf::from("d/a.p003"));
        assert_eq!(parity_path(Path::new("a"), 1000), PathBuf::from("a.p1000"));
        assert_eq!(base_of(Path::new("d/a.001")), PathBuf::from("d/a"));
        assert_eq!(base_of(Path::new("d/a.p012")), PathBuf::from("d/a"));
        assert_eq!(base_of(Path::new("d/a")), PathBuf::from("d/a"));
    }

    #[test]
    fn canonical_numbers() {
        assert_eq!(canonical_number(OsStr::new("001")), Some(1));
        assert_eq!(canonical_number(OsStr::new("1000")), Some(1000));
        assert_eq!(canonical_number(OsStr::new("01")), None);
        assert_eq!(canonical_number(OsStr::new("0001")), None);
        assert_eq!(canonical_number(OsStr::new("000")), None);
        assert_eq!(canonical_number(OsStr::new("1a3")), None);
        assert_eq!(canonical_number(OsStr::new("99999999999")), None);
    }

    #[test]
    fn listings_keep_data_and_parity_apart() {
        let t = tempfile::tempdir().unwrap();
        for n in [
            "a.002", "a.001", "a.p001", "a.000", "a.x.001", "ab.003", "a.01", "a.p000",
        ] {
            std::fs::write(t.path().join(n), b"").unwrap();
        }
        let base = t.path().join("a");
        let data: Vec<_> = list_data(&base).into_iter().map(|(n, _)| n.0).collect();
        assert_eq!(data, vec![1, 2]);
        let parity = list_parity(&base);
        assert_eq!(parity, vec![(1, t.path().join("a.p001"))]);
        assert!(has_parity(&base));
        assert!(list_data(&t.path().join("none")).is_empty());
    }

    fn mkfifo(p: &Path) {
        crate::sys::mknod(p, libc::S_IFIFO, 0o644, 0).unwrap();
    }

    /// Issue 14 item 6: a user's `backup.2024`, a directory, a FIFO `backup.999` or `backup.p001` beside
    /// an archive: listings keep canonical names of regular files only, and opening a FIFO neither
    /// blocks nor succeeds.
    #[test]
    fn regression_stray_files_beside_an_archive() {
        let t = tempfile::tempdir().unwrap();
        for n in ["a.001", "a.002", "a.0003", "a.2024", "a.p001"] {
            std::fs::write(t.path().join(n), b"x").unwrap();
        }
        std::fs::create_dir(t.path().join("a.2023")).unwrap();
        mkfifo(&t.path().join("a.999"));
        mkfifo(&t.path().join("a.p002"));
        let base = t.path().join("a");
        let data: Vec<u32> = list_data(&base).into_iter().map(|(n, _)| n.0).collect();
        assert_eq!(data, vec![1, 2, 2024]);
        let parity: Vec<u32> = list_parity(&base).into_iter().map(|(n, _)| n).collect();
        assert_eq!(parity, vec![1]);
        let e = open(&t.path().join("a.999")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(open(&t.path().join("a.2023")).is_err());
        // The last volume is found by its tail, not by the highest number present.
        std::fs::write(t.path().join("a.002"), b"....FOOT").unwrap();
        let (n, _, tail) = last_with_tail(&base, 4, |t| t == b"FOOT").unwrap();
        assert_eq!((n, tail), (VolumeNo(2), b"FOOT".to_vec()));
        assert!(last_with_tail(&base, 4, |t| t == b"none").is_none());
    }

    /// Issue 14 item 7: every volume stayed open; now at most `cap` are, the oldest closed first, and a
    /// failed open is not kept.
    #[test]
    fn regression_open_volumes_are_bounded() {
        let t = tempfile::tempdir().unwrap();
        let set = OpenVolumes::new(3);
        let mut opened = 0;
        for round in 0..2 {
            for n in 1..=10u32 {
                let p = t.path().join(format!("v{n}"));
                std::fs::write(&p, [n as u8]).unwrap();
                let f = set
                    .get(VolumeNo(n), || {
                        opened += 1;
                        open(&p)
                    })
                    .unwrap();
                let mut b = [0u8];
                f.read_exact_at(&mut b, 0).unwrap();
                assert_eq!(b[0], n as u8, "round {round}");
                assert!(set.len() <= 3);
            }
        }
        assert_eq!(opened, 20);
        assert!(set
            .get(VolumeNo(99), || open(&t.path().join("none")))
            .is_err());
        assert_eq!(set.len(), 3);
        let again = set.get(VolumeNo(10), || -> io::Result<File> { panic!("reopened") });
        assert!(again.is_ok());
    }

    /// Issue 14 item 5: `pack --force` removed every `NAME.<digits>`; only files whose head says they
    /// are that volume are named now.
    #[test]
    fn regression_stale_volumes_are_only_ours() {
        let t = tempfile::tempdir().unwrap();
        for n in ["b.001", "b.002", "b.p001", "b.2024", "b.p2024", "b.0001"] {
            let body = if n == "b.2024" || n == "b.p2024" {
                "user"
            } else {
                "ours"
            };
            std::fs::write(t.path().join(n), format!("{body} {n}")).unwrap();
        }
        std::fs::create_dir(t.path().join("b.2023")).unwrap();
        mkfifo(&t.path().join("b.003"));
        let got = stale_volumes(&t.path().join("b"), 4, |_, h| h == b"ours");
        let names: Vec<_> = got
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["b.001", "b.002", "b.p001"]);
    }

    /// For a bucket, `each_volume` runs up to EACH_AT_ONCE items at once (every item of a group waits
    /// until all of its group have started: run one after another, the first would wait in vain), and
    /// keeps the order; locally it runs them in order on the caller's thread.
    #[test]
    fn each_volume_runs_a_buckets_requests_together_and_in_order() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let items: Vec<usize> = (0..EACH_AT_ONCE * 2 + 3).collect();
        let started = AtomicUsize::new(0);
        let got = each_volume(&items, true, |&i| {
            let group_end = ((i / EACH_AT_ONCE + 1) * EACH_AT_ONCE).min(items.len());
            started.fetch_add(1, Ordering::SeqCst);
            let t = std::time::Instant::now();
            while started.load(Ordering::SeqCst) < group_end {
                if t.elapsed() > std::time::Duration::from_secs(5) {
                    return None;
                }
                std::thread::yield_now();
            }
            Some(i * 3)
        });
        let want: Vec<Option<usize>> = items.iter().map(|i| Some(i * 3)).collect();
        assert_eq!(got, want);
        let me = std::thread::current().id();
        let local = each_volume(&items, false, |&i| (i, std::thread::current().id() == me));
        assert!(local
            .iter()
            .enumerate()
            .all(|(k, &(i, here))| k == i && here));
    }
}
