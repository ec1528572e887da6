//! The mount of a plain archive of format version 5 from its paged tree (FORMAT.md 12): at open, the
//! footer, the blob's trailer and the page directory; each page when something looks into it, kept in
//! a cache of [`PAGE_BUDGET`] bytes. Record r is inode r + 1; nothing is built at open.
//!
//! A page that cannot be read or fails a check answers EIO for the records it holds and is logged once
//! (page, volume, offset); the other pages keep working. The generation index (frames, contents, the
//! entries in path order) is read only when a file's bytes are first read (see `ClcFs::reader`).

use super::attr::{self, RootMeta};
use super::inodes::Ino;
use crate::archive::generations::{self, Listed};
use crate::error::{Error, IoContext, Result};
use crate::format::generation::FLAG_VERSIONED;
use crate::format::index::{EntryKind, NONE};
use crate::format::tree::{inflate, unpack, Directory, Page, PageCodec, Record, Trailer};
use crate::format::TREE_VERSION;
use crate::volumes::{self, Name};
use fuser::{Errno, FileAttr, FileType};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Bytes of raw pages a mount keeps (a page is 64 KiB raw; 1,000 pages hold about a million records).
pub const PAGE_BUDGET: usize = 64 << 20;

/// Pages kept, oldest first out.
#[derive(Default)]
struct Cache {
    pages: HashMap<usize, Arc<Page>>,
    order: VecDeque<usize>,
    bytes: usize,
}

/// A plain version 5 archive's tree, read page by page.
pub struct PagedTree {
    vols: Vec<Listed>,
    /// The index blob's pieces: (position in `vols`, start, end).
    extents: Vec<(usize, u64, u64)>,
    dir: Directory,
    /// How the pages are stored (the trailer's magic).
    codec: PageCodec,
    cache: Mutex<Cache>,
    budget: usize,
    /// Pages that failed (logged once each).
    bad: Mutex<HashSet<usize>>,
    /// The volumes of `vols`, each opened on its first read and kept open.
    open: Vec<OnceLock<volumes::Vol>>,
}

/// The file a record's bytes are read from: its entry in the generation index, with what must match.
pub struct FileRef {
    pub entry: u64,
    pub size: u64,
    pub name: Vec<u8>,
}

impl PagedTree {
    /// The paged tree of the archive `path` names, if it is a local clc archive whose newest complete
    /// generation is of version 5 or later, generation 1 and not versioned (one plain tree), with no
    /// volumes above it. `Ok(None)` for every other archive (the mount then opens it whole); an error
    /// when its trailer or directory is damaged.
    pub fn open(path: &Path, budget: usize) -> Result<Option<PagedTree>> {
        if volumes::remote::is_remote(path) {
            return Ok(None);
        }
        // Absolute: a background mount serves from `/` (a path that does not resolve is not a volume's).
        let Ok(path) = path.canonicalize() else {
            return Ok(None);
        };
        let base = match volumes::parse(&path) {
            Some((b, Name::Data(_))) => b,
            _ => return Ok(None),
        };
        if volumes::remote::is_remote(&base) {
            return Ok(None);
        }
        let vols = generations::list(&base);
        let Some(n) = generations::newest(&vols)? else {
            return Ok(None);
        };
        if n.footer.version < TREE_VERSION || !n.stray.is_empty() {
            return Ok(None);
        }
        let extents = generations::extents(&vols, n.at, &n.footer)?;
        let open = vols.iter().map(|_| OnceLock::new()).collect();
        let mut t = PagedTree {
            open,
            vols,
            extents,
            dir: Directory {
                generation: 0,
                flags: 0,
                records: 0,
                unique_bytes: 0,
                pages: Vec::new(),
            },
            codec: PageCodec::Zlib,
            cache: Mutex::new(Cache::default()),
            budget,
            bad: Mutex::new(HashSet::new()),
        };
        let len = n.footer.index_stored_len;
        let what = format!("{} (index tree)", t.vols[n.at].path.display());
        let tb = t.read_blob(
            len.saturating_sub(Trailer::SIZE as u64),
            Trailer::SIZE as u64,
        )?;
        let tr = Trailer::decode(&tb, len, n.footer.version, &what)?;
        t.codec = tr.pages;
        let z = t.read_blob(tr.dir_offset, u64::from(tr.dir_stored))?;
        let raw = inflate(&z, tr.dir_raw, tr.dir_checksum, &what, tr.dir_offset)?;
        t.dir = Directory::decode(&raw, &tr, &what)?;
        if t.dir.generation != 1 || t.dir.flags & FLAG_VERSIONED != 0 {
            return Ok(None);
        }
        Ok(Some(t))
    }

    /// `len` bytes of the index blob from `off`, across the volumes it spans.
    fn read_blob(&self, off: u64, len: u64) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len.min(1 << 24) as usize);
        let (mut at, end) = (0u64, off.saturating_add(len));
        for &(k, a, b) in &self.extents {
            let (lo, hi) = (at, at + (b - a));
            at = hi;
            let (s, e) = (off.max(lo), end.min(hi));
            if s >= e {
                continue;
            }
            let v = &self.vols[k];
            let f = match self.open[k].get() {
                Some(f) => f,
                None => {
                    let f = volumes::open_vol(&v.path).ctx(&v.path)?;
                    self.open[k].get_or_init(|| f)
                }
            };
            let mut buf = vec![0u8; (e - s) as usize];
            f.read_exact_at(&mut buf, a + (s - lo)).ctx(&v.path)?;
            out.extend_from_slice(&buf);
        }
        if out.len() as u64 != len {
            let v = &self.vols[self.extents.last().map_or(0, |e| e.0)];
            return Err(Error::corrupt(
                v.path.display().to_string(),
                off,
                "index tree: bytes past the index blob",
            ));
        }
        Ok(out)
    }

    /// Where blob offset `off` lies, for messages: (volume path, offset in it).
    fn place_of(&self, off: u64) -> (String, u64) {
        let mut at = 0;
        for &(k, a, b) in &self.extents {
            if off < at + (b - a) {
                return (self.vols[k].path.display().to_string(), a + (off - at));
            }
            at += b - a;
        }
        (String::new(), off)
    }

    /// Page `k`, read, inflated and checked when first asked for.
    fn page(&self, k: usize) -> std::result::Result<Arc<Page>, Errno> {
        if let Some(p) = self.cache.lock().pages.get(&k) {
            return Ok(p.clone());
        }
        let r = self.load(k);
        match r {
            Ok(p) => {
                let p = Arc::new(p);
                let mut c = self.cache.lock();
                if !c.pages.contains_key(&k) {
                    c.bytes += p.heap_bytes();
                    c.pages.insert(k, p.clone());
                    c.order.push_back(k);
                    while c.bytes > self.budget && c.order.len() > 1 {
                        let old = c.order.pop_front().expect("more than one page");
                        if let Some(o) = c.pages.remove(&old) {
                            c.bytes -= o.heap_bytes();
                        }
                    }
                }
                Ok(p)
            }
            Err(e) => {
                if self.bad.lock().insert(k) {
                    crate::diag::log(&format!("index tree page {k}: {e}"));
                }
                Err(Errno::EIO)
            }
        }
    }

    fn load(&self, k: usize) -> Result<Page> {
        let p = self.dir.pages[k];
        let (vol, at) = self.place_of(p.offset);
        let what = format!("{vol} (at offset {at})");
        let z = self.read_blob(p.offset, u64::from(p.stored))?;
        let raw = unpack(self.codec, &z, p.raw, p.checksum, &what, at)?;
        let end = self
            .dir
            .pages
            .get(k + 1)
            .map_or(self.dir.records, |q| q.first);
        Page::parse(raw, p.first..end, self.dir.records, &what)
    }

    /// `f` of record `r`.
    fn with<T>(&self, r: u64, f: impl FnOnce(&Record) -> T) -> std::result::Result<T, Errno> {
        let (k, _) = self.dir.page_of(r).ok_or(Errno::ENOENT)?;
        let p = self.page(k)?;
        let rec = p.record(r).ok_or(Errno::EIO)?;
        Ok(f(&rec))
    }

    fn rec_of(ino: Ino) -> std::result::Result<u64, Errno> {
        ino.0.checked_sub(1).ok_or(Errno::ENOENT)
    }

    /// Reads the root's page now (inflated and checked), so that the first request of a fresh mount (the
    /// root's attributes, then its listing) finds it. A damaged page is logged as on any first use.
    pub fn warm(&self) {
        let _ = self.with(0, |_| ());
    }

    /// The last volume's modification time (the root directory's mtime, as for an archive opened whole).
    pub fn last_volume_mtime(&self) -> std::time::SystemTime {
        self.extents
            .last()
            .and_then(|e| std::fs::metadata(&self.vols[e.0].path).ok())
            .and_then(|m| m.modified().ok())
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
    }

    /// Number of records (inodes), the root included.
    pub fn records(&self) -> u64 {
        self.dir.records
    }

    pub fn unique_bytes(&self) -> u64 {
        self.dir.unique_bytes
    }

    /// Bytes of pages held now.
    pub fn cached_bytes(&self) -> usize {
        self.cache.lock().bytes
    }

    /// The attributes of `ino`; the root's from `root`.
    pub fn attr(&self, ino: Ino, root: &RootMeta) -> std::result::Result<FileAttr, Errno> {
        let r = Self::rec_of(ino)?;
        self.with(r, |e| {
            if r == 0 {
                return Ok(attr::root_attr(ino, root, e.nlink));
            }
            if e.kind == EntryKind::Hardlink {
                return Err(Errno::ENOENT); // no name leads to a hardlink record's own number
            }
            Ok(attr::meta_attr(
                ino,
                &attr::Meta {
                    kind: e.kind,
                    mode: e.mode,
                    uid: e.uid,
                    gid: e.gid,
                    mtime_sec: e.mtime_sec,
                    mtime_nsec: e.mtime_nsec,
                    size: e.size,
                    rdev: e.rdev,
                    target: e.target,
                    nlink: e.nlink,
                },
            ))
        })?
    }

    /// A directory's children: (first record, count); ENOTDIR for anything else.
    fn children(&self, dir: Ino) -> std::result::Result<(u64, u64), Errno> {
        let r = Self::rec_of(dir)?;
        self.with(r, |e| match e.kind {
            EntryKind::Dir => Ok((e.link, e.children)),
            _ => Err(Errno::ENOTDIR),
        })?
    }

    /// The number of names in directory `dir`.
    pub fn dir_len(&self, dir: Ino) -> std::result::Result<u64, Errno> {
        self.children(dir).map(|c| c.1)
    }

    pub fn is_dir(&self, ino: Ino) -> std::result::Result<(), Errno> {
        self.children(ino).map(|_| ())
    }

    /// The inode and type a name of record `r` (child of `parent`) leads to: a hardlink's file's, or
    /// its own. EIO when the record does not name `parent` or a hardlink names no file.
    fn target(&self, r: u64, parent: u64) -> std::result::Result<(Ino, FileType), Errno> {
        let (kind, link, p) = self.with(r, |e| (e.kind, e.link, e.parent))?;
        self.target_of(r, kind, link, p, parent)
    }

    /// [`Self::target`] of record `r`, given its kind, link and parent.
    fn target_of(
        &self,
        r: u64,
        kind: EntryKind,
        link: u64,
        p: u64,
        parent: u64,
    ) -> std::result::Result<(Ino, FileType), Errno> {
        if p != parent {
            crate::diag::log(&format!(
                "index tree: record {r} listed under record {parent} names {p} as its parent"
            ));
            return Err(Errno::EIO);
        }
        if kind != EntryKind::Hardlink {
            return Ok((Ino(r + 1), attr::file_type(kind)));
        }
        match self.with(link, |e| e.kind)? {
            EntryKind::File => Ok((Ino(link + 1), FileType::RegularFile)),
            _ => {
                crate::diag::log(&format!(
                    "index tree: hardlink record {r} names record {link}, not a file"
                ));
                Err(Errno::EIO)
            }
        }
    }

    /// The inode named `name` in `dir`: a binary search over the directory's run of records.
    pub fn lookup(&self, dir: Ino, name: &[u8]) -> std::result::Result<Ino, Errno> {
        let (first, n) = self.children(dir)?;
        let (mut lo, mut hi) = (0u64, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let ord = self.with(first + mid, |e| e.name.cmp(name))?;
            match ord {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return self.target(first + mid, dir.0 - 1).map(|t| t.0)
                }
            }
        }
        Err(Errno::ENOENT)
    }

    /// The parent of directory `dir` (the root's is the root).
    pub fn parent(&self, dir: Ino) -> std::result::Result<Ino, Errno> {
        let r = Self::rec_of(dir)?;
        self.with(r, |e| Ino(e.parent + 1))
    }

    /// The names of `dir` from position `skip` on: `f(name, inode, type)` until it returns true.
    pub fn list(
        &self,
        dir: Ino,
        skip: u64,
        mut f: impl FnMut(&[u8], Ino, FileType) -> bool,
    ) -> std::result::Result<(), Errno> {
        let (first, n) = self.children(dir)?;
        // The page of the record before, kept: a listing's records are one run.
        let mut page: Option<Arc<Page>> = None;
        for r in first + skip.min(n)..first + n {
            let p = match page {
                Some(p) if p.holds(r) => p,
                _ => self.page(self.dir.page_of(r).ok_or(Errno::EIO)?.0)?,
            };
            let rec = p.record(r).ok_or(Errno::EIO)?;
            let (ino, kind) = self.target_of(r, rec.kind, rec.link, rec.parent, dir.0 - 1)?;
            if f(rec.name, ino, kind) {
                break;
            }
            page = Some(p);
        }
        Ok(())
    }

    pub fn readlink(&self, ino: Ino) -> std::result::Result<Vec<u8>, Errno> {
        self.with(Self::rec_of(ino)?, |e| match e.kind {
            EntryKind::Symlink => Ok(e.target.to_vec()),
            _ => Err(Errno::EINVAL),
        })?
    }

    pub fn xattr(&self, ino: Ino, name: &[u8]) -> std::result::Result<Vec<u8>, Errno> {
        self.with(Self::rec_of(ino)?, |e| {
            e.xattrs()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_vec())
                .ok_or(Errno::ENODATA)
        })?
    }

    pub fn xattr_names(&self, ino: Ino) -> std::result::Result<Vec<u8>, Errno> {
        self.with(Self::rec_of(ino)?, |e| {
            let mut out = Vec::new();
            for (n, _) in e.xattrs() {
                out.extend_from_slice(n);
                out.push(0);
            }
            out
        })
    }

    /// What file `ino`'s bytes are read from.
    pub fn file(&self, ino: Ino) -> std::result::Result<FileRef, Errno> {
        self.with(Self::rec_of(ino)?, |e| match e.kind {
            EntryKind::File => Ok(FileRef {
                entry: e.entry,
                size: e.size,
                name: e.name.to_vec(),
            }),
            EntryKind::Dir => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        })?
    }

    /// The names after file `ino` in its directory, in name order, as (inode, kind, size), read record by
    /// record as they are taken: what a reader walking the tree reads next (`mount::push` chooses which
    /// to push). Ends at the directory's end or at a page that cannot be read.
    pub fn named_after(&self, ino: Ino) -> impl Iterator<Item = (Ino, EntryKind, u64)> + '_ {
        let start = Self::rec_of(ino)
            .ok()
            .and_then(|r| self.with(r, |e| e.parent).ok().map(|p| (r, p)));
        let ((from, end), parent) = match start {
            Some((r, p)) => ((r + 1, self.dir.records), p),
            None => ((0, 0), 0),
        };
        (from..end).map_while(
            move |q| match self.with(q, |e| (e.parent, e.kind, e.size)) {
                Ok((p, kind, size)) if p == parent => Some((Ino(q + 1), kind, size)),
                _ => None,
            },
        )
    }

    /// Every record but the root as (path, entry), by walking the tree from the root (for tests and
    /// checks: it reads every page).
    pub fn paths(&self) -> std::result::Result<Vec<(Vec<u8>, u64)>, Errno> {
        let mut path_of: HashMap<u64, Vec<u8>> = HashMap::from([(0, Vec::new())]);
        let mut out = Vec::new();
        for r in 1..self.dir.records {
            let (name, parent, entry, kind) =
                self.with(r, |e| (e.name.to_vec(), e.parent, e.entry, e.kind))?;
            let mut p = path_of.get(&parent).cloned().ok_or(Errno::EIO)?;
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(&name);
            if kind == EntryKind::Dir {
                path_of.insert(r, p.clone());
            }
            out.push((p, if entry == NONE { u64::MAX } else { entry }));
        }
        Ok(out)
    }
}
