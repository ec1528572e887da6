//! `clc mount`: the archive as a read-only FUSE filesystem.
//!
//! * [`inodes`]: the inode table, built once from the index.
//! * [`attr`]: archived metadata → FUSE attributes.
//! * [`reader`]: reads through the shared, batched frame cache, with read-ahead per open file.
//! * [`serve`]: mount options, the foreground/background session, signals, `clc umount`.
//! * [`table`]: what is mounted where (a mountpoint must be free; `umount` takes only clc's mounts).
//! * [`paged`]: a plain version 5 archive served from its paged tree.
//! * [`walk`]: which directory listings carry attributes (READDIRPLUS), learnt from the walker.
//! * [`push`]: the files a walker reads next, pushed into the kernel's page cache (no READ for them).
//! * this file: the fuser adapter. Each callback converts, delegates, and replies once. The helpers
//!   behind the callbacks answer `Result<T, Errno>`; a library error becomes an errno in one place,
//!   [`errno`] (ENOENT for what is missing, EIO for damage, the OS's own code for I/O).
//!
//! The archive never changes while mounted, so attributes and names get long TTLs, opened files keep
//! their page cache (`FOPEN_KEEP_CACHE`) and small directories their listings (`FOPEN_CACHE_DIR`, see
//! [`CACHED_LISTING`]).
//! Opening a file costs no request: the first FUSE_OPEN is answered ENOSYS (where the kernel offers
//! FUSE_NO_OPEN_SUPPORT; otherwise opens are answered as usual), after which the kernel
//! opens files without asking (and sends no FUSE_RELEASE), keeping their page cache; the read state
//! lives per inode (`ClcFs::file_state`). Directories of a tree of at most [`NO_OPENDIR_RECORDS`]
//! records are opened the same way (FUSE_OPENDIR answered ENOSYS, no FUSE_RELEASEDIR), and then keep
//! their listings whatever their size. A read-only mount refuses writes before they reach us.

pub mod attr;
pub mod inodes;
pub mod paged;
pub mod push;
pub mod reader;
#[allow(unsafe_code)]
pub mod serve;
pub mod table;
pub mod trees;
pub mod walk;

use crate::archive::Archive;
use crate::error::Error;
use crate::format::index::EntryKind;
use attr::RootMeta;
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use inodes::Ino;
use parking_lot::RwLock;
use reader::{Bytes, OpenFile, Reader};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};
use trees::{Place, Tree, Trees};

pub use serve::{unmount, MountOptions};

/// Attribute and name TTL: the archive never changes.
const TTL: Duration = Duration::from_secs(365 * 24 * 3600);
const GEN: Generation = Generation(0);

/// Most decoded bytes the mount's default cache grows to (see [`default_cache`]).
pub const CACHE_GROWS_TO: u64 = 1 << 30;

/// The mount's cache budget when none is given (`--cache-size`, or `CACHE_SIZE` changed from its
/// default `base`): the archive's decoded bytes (all its frames), at least `base` and at most
/// [`CACHE_GROWS_TO`]. A walk over a tree whose data stream interleaves two parts of it (two versions,
/// same-named files side by side) uses every frame twice, once in each half of the walk; a budget below
/// the archive's decoded bytes decodes many frames twice (docs/BENCHMARKS.md 5.3), one above it each
/// frame once. The budget is a ceiling: an idle mount holds nothing.
pub fn default_cache(frames: &[crate::format::index::Frame], base: u64) -> u64 {
    let decoded: u64 = frames.iter().map(|f| u64::from(f.raw_len)).sum();
    decoded.min(CACHE_GROWS_TO).max(base)
}

/// The errno a FUSE reply carries for a library error: the one mapping from error kinds to errnos.
pub fn errno(e: &Error) -> Errno {
    match e {
        Error::NotFound(_) => Errno::ENOENT,
        Error::Io { source, .. } => source.raw_os_error().map_or(Errno::EIO, Errno::from_i32),
        Error::Usage(_) | Error::Setting { .. } => Errno::EINVAL,
        // A file whose bytes cannot be read (a damaged or missing frame or volume, known damage) and
        // anything else: an I/O error, whatever the cause below it.
        _ => Errno::EIO,
    }
}

/// A missing inode.
const MISSING: Errno = Errno::ENOENT;

/// The kernel keeps the listing of a directory of at most this many names (`FOPEN_CACHE_DIR`), so that
/// listing it again asks nothing. It fills that cache name by name (a page-cache lookup each): for a
/// bare `find` of a million names in directories of ~970 that was ~20 % of its time, while listing a
/// large directory again costs a request per ~3,000 names (docs/BENCHMARKS.md 5.6).
const CACHED_LISTING: u64 = 32;

/// A tree of at most this many records is served without FUSE_OPENDIR: the first is answered ENOSYS,
/// after which the kernel opens directories without asking, sends no FUSE_RELEASEDIR, and keeps every
/// directory's listing (`FOPEN_CACHE_DIR`, the kernel's default then). A read-all of the Rust-doc tree
/// (509 directories, 6,426 records) then sends 1,018 requests fewer (docs/BENCHMARKS.md 5.7). Above
/// it, directories are opened as usual so that only small ones keep their listings ([`CACHED_LISTING`]):
/// filling that cache name by name cost a bare `find` of a million names ~20 %; below it, at most
/// this many names are ever filled in.
pub const NO_OPENDIR_RECORDS: u64 = 1 << 16;

/// Read states kept for files opened without a FUSE_OPEN (see [`ClcFs::file_state`]).
const MAX_STATES: usize = 4096;

/// The mounted archive: its trees and inode tables, the reader, and the open files.
pub struct ClcFs {
    /// The trees of an archive opened whole (empty when `paged`).
    trees: Trees,
    /// A plain version 5 archive's paged tree (FORMAT.md 12): every name and attribute request is
    /// answered from it, and the archive is opened whole only for the first read of a file's bytes.
    paged: Option<Arc<paged::PagedTree>>,
    /// The reader: made at mount for an archive opened whole; for a paged tree, on the first read
    /// (`Err`: why the archive could not be opened then, answered EIO).
    reader: OnceLock<std::result::Result<Arc<Reader>, String>>,
    /// How to make the reader on the first read (paged trees only).
    later: parking_lot::Mutex<Option<LaterReader>>,
    root: RootMeta,
    files: RwLock<HashMap<FileHandle, Arc<OpenFile>>>,
    next_fh: AtomicU64,
    /// The read state of files read without a handle of ours (opened without a FUSE_OPEN), by inode;
    /// at most [`MAX_STATES`], the map emptied when full.
    states: RwLock<HashMap<Ino, Arc<OpenFile>>>,
    /// Answer FUSE_OPEN (keeping a handle per open) instead of ENOSYS: `CLC_MOUNT_OPEN=1` (for
    /// measuring), or a kernel without FUSE_NO_OPEN_SUPPORT (see `init`).
    open_calls: bool,
    /// Answer FUSE_OPENDIR (and get FUSE_RELEASEDIR) instead of ENOSYS: a tree of more than
    /// [`NO_OPENDIR_RECORDS`] records, `CLC_MOUNT_OPENDIR=1` (for measuring), or a kernel without
    /// FUSE_NO_OPENDIR_SUPPORT (see `init`).
    opendir_calls: bool,
    /// `CLC_MOUNT_OPENDIR=0`: no FUSE_OPENDIR whatever the tree's size (for measuring), where the
    /// kernel offers it.
    no_opendir: bool,
    /// Which directory listings carry attributes (`CLC_MOUNT_RDPLUS`, for measuring; see `init`).
    rdplus: Rdplus,
    /// Push the files a walker reads next into the kernel's page cache ([`push`]; `CLC_MOUNT_PUSH=0`
    /// turns it off, for measuring).
    push_on: bool,
    /// What one push may take (`CLC_MOUNT_PUSH_LIMITS`, for measuring; see [`push::Limits`]).
    push_limits: push::Limits,
    push: push::Push,
    /// READs at offset 0 (a file's first read, for `CLC_TRACE`).
    first_reads: AtomicU64,
    /// What the walker does, for [`Rdplus::Adaptive`]'s choice per listing.
    walk: walk::Walk,
    /// Blocks of data (the archive's unique bytes).
    blocks: u64,
    /// Exit the process when the session ends (set by [`serve`]); see `destroy`.
    exit_when_done: bool,
    /// Decode threads of the rayon pool, built on the first call for the reader ([`ClcFs::reader`]):
    /// a mount that starts no thread before serving answers its first requests sooner. `None` (a
    /// filesystem not served by [`serve`]): rayon's default pool.
    pool_threads: Option<usize>,
    pool: std::sync::Once,
}

/// Which directory listings carry attributes (READDIRPLUS). The default, `Adaptive`, asks the kernel
/// for its auto mode (attributes when a listing starts, and when names of it were looked up) and
/// answers each listing's start with attributes or names only as [`walk`] learns from the walker.
/// The others are levers kept for measuring (`CLC_MOUNT_RDPLUS`, docs/BENCHMARKS.md 5.4 and 5.6):
/// `auto` the kernel's auto mode with attributes always given, `0` never (a bare `find` instantiates
/// no inode per name), `1` always.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rdplus {
    Adaptive,
    Auto,
    Off,
    Always,
}

impl Rdplus {
    /// `CLC_MOUNT_RDPLUS`'s value: `0` off, `1` always, `auto` auto, anything else (or unset) adaptive.
    pub fn from_env(v: Option<&OsStr>) -> Rdplus {
        match v.map(OsStr::as_bytes) {
            Some(b"0") => Rdplus::Off,
            Some(b"1") => Rdplus::Always,
            Some(b"auto") => Rdplus::Auto,
            _ => Rdplus::Adaptive,
        }
    }

    /// The FUSE_INIT flags asked for.
    pub fn flags(self) -> InitFlags {
        match self {
            Rdplus::Adaptive | Rdplus::Auto => {
                InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO
            }
            Rdplus::Off => InitFlags::empty(),
            Rdplus::Always => InitFlags::FUSE_DO_READDIRPLUS,
        }
    }
}

/// Makes the decoder for an archive's frames (the GPU one where it pays).
pub type MakeDecoder =
    Box<dyn FnOnce(&crate::archive::Archive) -> Box<dyn crate::cache::BatchDecoder> + Send>;

/// What a paged mount needs to open the archive whole and make its reader on the first read.
pub struct LaterReader {
    pub path: std::path::PathBuf,
    /// `--cache-size` (or `CACHE_SIZE` given): else the archive's default ([`default_cache`]).
    pub cache: Option<u64>,
    /// `CACHE_SIZE` (its default) for [`default_cache`].
    pub base_cache: u64,
    pub batch: usize,
    /// Makes the decoder for the archive's frames (the GPU one where it pays).
    pub decoder: MakeDecoder,
}

impl LaterReader {
    fn make(self) -> std::result::Result<Arc<Reader>, String> {
        let t0 = std::time::Instant::now();
        let ar = crate::archive::Archive::open(&self.path).map_err(|e| e.to_string())?;
        for p in ar.volume_problems() {
            crate::diag::log(&format!(
                "warning: {p}; files with data there will fail to read (EIO)"
            ));
        }
        let least = ar.index().max_frame_len().max(1 << 20);
        let cache = self
            .cache
            .unwrap_or_else(|| default_cache(ar.index().frames(), self.base_cache))
            .max(least);
        let decoder = (self.decoder)(&ar);
        crate::diag::trace::note(&format!(
            "archive opened for the first read ({} entries, {:.3} s)",
            ar.index().entries().len(),
            t0.elapsed().as_secs_f64()
        ));
        Ok(Arc::new(Reader::new(
            Arc::new(ar),
            cache,
            self.batch,
            decoder,
        )))
    }
}

/// A name in a directory listing: (next offset, global inode, name, its type).
type Listed<'a> = (u64, Ino, &'a [u8], fuser::FileType);

impl ClcFs {
    /// Builds the inode table(s) and the reader; `cache_size` bytes of decoded frames, decoded in
    /// batches of `batch`. `all_snapshots`: an archive made with `--append` shows one directory per
    /// snapshot at the root (their trees built when first looked into); otherwise the archive's selected
    /// tree is the root. Reads nothing beyond what `Archive::open` read.
    pub fn new(
        archive: Arc<Archive>,
        cache_size: u64,
        batch: usize,
        decoder: Box<dyn crate::cache::BatchDecoder>,
        all_snapshots: bool,
    ) -> ClcFs {
        let trees = Trees::new(&archive, all_snapshots);
        let mtime = archive
            .volume_paths()
            .last()
            .and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| m.modified().ok())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let bytes = archive.index().unique_bytes();
        let reader = Reader::new(archive, cache_size, batch, decoder);
        Self::with(
            trees,
            None,
            OnceLock::from(Ok(Arc::new(reader))),
            None,
            mtime,
            bytes,
        )
    }

    /// A mount of a plain version 5 archive from its paged tree: reads nothing more at open; `later`
    /// opens the archive whole on the first read of a file's bytes. `mtime`: the root's (the last
    /// volume's modification time).
    pub fn paged(tree: paged::PagedTree, later: LaterReader, mtime: SystemTime) -> ClcFs {
        let empty = Trees::Single(Arc::new(Tree::new(
            crate::format::index::Index::default()
                .validate("empty", 0)
                .expect("an empty index is valid"),
        )));
        let bytes = tree.unique_bytes();
        Self::with(
            empty,
            Some(Arc::new(tree)),
            OnceLock::new(),
            Some(later),
            mtime,
            bytes,
        )
    }

    /// The fields both constructors set alike: the root's owner (the serving user), the knobs read
    /// from the environment (for measuring), and empty per-file state. `bytes`: the unique bytes, for
    /// `statfs`'s block count.
    fn with(
        trees: Trees,
        paged: Option<Arc<paged::PagedTree>>,
        reader: OnceLock<std::result::Result<Arc<Reader>, String>>,
        later: Option<LaterReader>,
        mtime: SystemTime,
        bytes: u64,
    ) -> ClcFs {
        let (uid, gid) = serve::ids();
        ClcFs {
            trees,
            paged,
            reader,
            later: parking_lot::Mutex::new(later),
            root: RootMeta { uid, gid, mtime },
            files: RwLock::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            states: RwLock::new(HashMap::new()),
            open_calls: std::env::var_os("CLC_MOUNT_OPEN").is_some_and(|v| v == "1"),
            opendir_calls: std::env::var_os("CLC_MOUNT_OPENDIR").is_some_and(|v| v == "1"),
            no_opendir: std::env::var_os("CLC_MOUNT_OPENDIR").is_some_and(|v| v == "0"),
            rdplus: Rdplus::from_env(std::env::var_os("CLC_MOUNT_RDPLUS").as_deref()),
            push_on: std::env::var_os("CLC_MOUNT_PUSH").is_none_or(|v| v != "0"),
            push_limits: push::Limits::from_env(
                std::env::var_os("CLC_MOUNT_PUSH_LIMITS").as_deref(),
            ),
            push: push::Push::default(),
            first_reads: AtomicU64::new(0),
            walk: walk::Walk::default(),
            blocks: bytes.div_ceil(attr::BLKSIZE as u64),
            exit_when_done: false,
            pool_threads: None,
            pool: std::sync::Once::new(),
        }
    }

    /// The paged tree, if this mount serves one (for [`serve`] to read its root page in the serving
    /// process while the command returns).
    pub fn paged_tree(&self) -> Option<Arc<paged::PagedTree>> {
        self.paged.clone()
    }

    /// The tree's records (inodes).
    fn records(&self) -> u64 {
        match &self.paged {
            Some(t) => t.records(),
            None => self.trees.inode_count(),
        }
    }

    /// The reader, made on the first call for a paged tree (EIO, logged once, when the archive does
    /// not open then).
    fn reader(&self) -> Result<&Arc<Reader>, Errno> {
        if let Some(n) = self.pool_threads {
            self.pool.call_once(|| serve::start_pool(n));
        }
        let r = self.reader.get_or_init(|| match self.later.lock().take() {
            Some(l) => l.make(),
            None => Err("the archive could not be opened".into()),
        });
        r.as_ref().map_err(|e| {
            crate::diag::log(&format!("first read: {e}"));
            Errno::EIO
        })
    }

    /// After the first read of file `ino` of a paged tree, or of an archive opened whole with one tree
    /// (a bucket archive's, whose frames come by ranged GETs): the files that follow it in its
    /// directory go to the push thread ([`push`]), unless `CLC_MOUNT_PUSH=0`.
    fn push_following(&self, ino: Ino) {
        if !self.push_on || self.push.notifier.get().is_none() {
            return;
        }
        let Ok(reader) = self.reader() else {
            return;
        };
        let next = match (&self.paged, &self.trees) {
            (Some(t), _) => push::pick(t.named_after(ino), &self.push_limits),
            (None, Trees::Single(t)) => {
                push::pick(t.inodes.named_after(&t.index, ino), &self.push_limits)
            }
            // Snapshot trees number their inodes per tree: not pushed.
            (None, Trees::Snapshots(_)) => return,
        };
        let files: Vec<(Ino, Arc<OpenFile>, u64)> = self
            .push
            .claim(next)
            .into_iter()
            .filter_map(|(i, size)| self.file_state(i).ok().map(|f| (i, f, size)))
            .collect();
        if !files.is_empty() {
            self.push.send(push::Job {
                reader: reader.clone(),
                files,
            });
        }
    }

    fn ar(&self) -> &Archive {
        match self.reader.get() {
            Some(Ok(r)) => r.archive(),
            // Only an archive opened whole has trees to place inodes in; its reader is made at mount.
            _ => unreachable!("the trees of a paged mount are never asked"),
        }
    }

    /// Where `ino` lives: ENOENT when nowhere, EIO (logged) when its snapshot's tree cannot be read.
    fn place(&self, ino: Ino) -> Result<Place, Errno> {
        match self.trees.place(self.ar(), ino) {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(MISSING),
            Err(e) => {
                crate::diag::log(&format!("snapshot tree: {e}"));
                Err(Errno::EIO)
            }
        }
    }

    /// The root's metadata for tree `slot`: a snapshot's directory takes the snapshot's time.
    fn root_of(&self, slot: u64) -> RootMeta {
        let snap = (slot as usize)
            .checked_sub(1)
            .and_then(|k| self.trees.snaps().get(k));
        RootMeta {
            mtime: snap.map_or(self.root.mtime, |s| s.time),
            ..self.root
        }
    }

    /// The attributes of the snapshot layout's root.
    fn top_attr(&self) -> FileAttr {
        FileAttr {
            ino: INodeNo(Ino::ROOT.0),
            size: attr::DIR_SIZE,
            blocks: attr::DIR_SIZE / 512,
            atime: self.root.mtime,
            mtime: self.root.mtime,
            ctime: self.root.mtime,
            crtime: self.root.mtime,
            kind: fuser::FileType::Directory,
            perm: 0o555,
            nlink: 2 + self.trees.snaps().len() as u32,
            uid: self.root.uid,
            gid: self.root.gid,
            rdev: 0,
            blksize: attr::BLKSIZE,
            flags: 0,
        }
    }

    /// A snapshot's directory at the root: its attributes come from the snapshot's record, not from its
    /// tree, so that listing the root (`readdirplus`) or a `stat` of a snapshot's directory builds no
    /// tree (with 30 snapshots, that made the first `ls` of a mount take 0.2 s). It reports one link: the
    /// count of its subdirectories would need the tree, and 1 is what `find` takes for "not counted".
    fn snapshot_dir_attr(&self, ino: Ino) -> Option<FileAttr> {
        let slot = ino.0 >> trees::TREE_SHIFT;
        if slot == 0 || ino.0 & ((1 << trees::TREE_SHIFT) - 1) != Ino::ROOT.0 {
            return None;
        }
        let snap = self.trees.snaps().get(slot as usize - 1)?;
        Some(FileAttr {
            ino: INodeNo(ino.0),
            size: attr::DIR_SIZE,
            blocks: attr::DIR_SIZE / 512,
            atime: snap.time,
            mtime: snap.time,
            ctime: snap.time,
            crtime: snap.time,
            kind: fuser::FileType::Directory,
            perm: 0o555,
            nlink: 1,
            uid: self.root.uid,
            gid: self.root.gid,
            rdev: 0,
            blksize: attr::BLKSIZE,
            flags: 0,
        })
    }

    fn attr(&self, ino: Ino) -> Result<FileAttr, Errno> {
        if let Some(t) = &self.paged {
            return t.attr(ino, &self.root);
        }
        if let Some(a) = self.snapshot_dir_attr(ino) {
            return Ok(a);
        }
        match self.place(ino)? {
            Place::Top => Ok(self.top_attr()),
            Place::In { tree, slot, local } => {
                let mut a = attr::attr(&tree.index, &tree.inodes, local, &self.root_of(slot))
                    .ok_or(MISSING)?;
                a.ino = INodeNo(Trees::global(slot, local).0);
                if slot > 0 && local == Ino::ROOT {
                    a.perm = 0o555;
                }
                Ok(a)
            }
        }
    }

    fn lookup_attr(&self, parent: Ino, name: &OsStr) -> Result<FileAttr, Errno> {
        if let Some(t) = &self.paged {
            return t.attr(t.lookup(parent, name.as_bytes())?, &self.root);
        }
        match self.place(parent)? {
            Place::Top => {
                let k = self
                    .trees
                    .snaps()
                    .iter()
                    .position(|s| s.name == name.as_bytes())
                    .ok_or(Errno::ENOENT)?;
                self.attr(Trees::global(k as u64 + 1, Ino::ROOT))
            }
            Place::In { tree, slot, local } => {
                if !tree.inodes.is_dir(&tree.index, local) {
                    return Err(Errno::ENOTDIR);
                }
                let ino = tree
                    .inodes
                    .lookup(&tree.index, local, name.as_bytes())
                    .ok_or(Errno::ENOENT)?;
                self.attr(Trees::global(slot, ino))
            }
        }
    }

    fn check_dir(&self, ino: Ino) -> Result<(), Errno> {
        if let Some(t) = &self.paged {
            return t.is_dir(ino);
        }
        match self.place(ino)? {
            Place::Top => Ok(()),
            Place::In { tree, local, .. } if tree.inodes.is_dir(&tree.index, local) => Ok(()),
            Place::In { .. } => Err(Errno::ENOTDIR),
        }
    }

    /// `.`, `..` and the names of `dir` from position `from`, each with its type. Lazy in the tree's
    /// listing, so that each readdir call of a big directory costs what it returns; `f` gets each name
    /// and returns true when the reply is full.
    fn dir_list(
        &self,
        dir: Ino,
        from: u64,
        mut f: impl FnMut(Listed) -> bool,
    ) -> Result<(), Errno> {
        let dt = fuser::FileType::Directory;
        let skip = (from as usize).saturating_sub(2);
        if let Some(t) = &self.paged {
            t.is_dir(dir)?;
            let dots = [(dir, &b"."[..]), (t.parent(dir)?, &b".."[..])];
            let mut off = from;
            for (i, n) in dots.into_iter().skip((from as usize).min(2)) {
                off += 1;
                if f((off, i, n, dt)) {
                    return Ok(());
                }
            }
            return t.list(dir, skip as u64, |n, i, kind| {
                off += 1;
                f((off, i, n, kind))
            });
        }
        match self.place(dir)? {
            Place::Top => {
                let dots = [(dir, &b"."[..], dt), (dir, &b".."[..], dt)];
                let names = self.trees.snaps().iter().enumerate().map(|(k, s)| {
                    (
                        Trees::global(k as u64 + 1, Ino::ROOT),
                        s.name.as_slice(),
                        dt,
                    )
                });
                let items = dots.into_iter().chain(names.skip(skip));
                for (off, (i, n, t)) in (from + 1..).zip(items.skip((from as usize).min(2))) {
                    if f((off, i, n, t)) {
                        break;
                    }
                }
                Ok(())
            }
            Place::In { tree, slot, local } => {
                if !tree.inodes.is_dir(&tree.index, local) {
                    return Err(Errno::ENOTDIR);
                }
                let parent = match (slot, local) {
                    (s, Ino::ROOT) if s > 0 => Ino::ROOT,
                    _ => Trees::global(
                        slot,
                        tree.inodes.node(local).map_or(Ino::ROOT, |n| n.parent),
                    ),
                };
                let dots = [(dir, &b"."[..], dt), (parent, &b".."[..], dt)];
                let names = tree.inodes.list(&tree.index, local, skip).map(|(n, i)| {
                    let kind = attr::kind_of(&tree.index, &tree.inodes, i);
                    (Trees::global(slot, i), n, kind)
                });
                let items = dots.into_iter().skip((from as usize).min(2)).chain(names);
                for (off, (i, n, t)) in (from + 1..).zip(items) {
                    if f((off, i, n, t)) {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// The number of names in directory `dir` (0 when it is none).
    fn dir_len(&self, dir: Ino) -> u64 {
        if let Some(t) = &self.paged {
            return t.dir_len(dir).unwrap_or(0);
        }
        match self.place(dir) {
            Ok(Place::Top) => self.trees.snaps().len() as u64,
            Ok(Place::In { tree, local, .. }) => tree.inodes.dir_len(local).unwrap_or(0) as u64,
            Err(_) => 0,
        }
    }

    /// The tree and local inode of a file-like inode (not the snapshot layout's root).
    fn in_tree(&self, ino: Ino) -> Result<(Arc<Tree>, Ino), Errno> {
        match self.place(ino)? {
            Place::Top => Err(Errno::EISDIR),
            Place::In { tree, local, .. } => Ok((tree, local)),
        }
    }

    /// A paged tree's file `ino` as an open file of the archive opened whole: its record's entry must
    /// be a file of the same size and name there (else EIO, logged: no bytes of another file).
    fn paged_file(&self, t: &paged::PagedTree, ino: Ino) -> Result<OpenFile, Errno> {
        let f = t.file(ino)?;
        let index = self.reader()?.archive().index();
        let id = crate::format::index::EntryId(f.entry);
        match index.entry(id) {
            Some(e)
                if e.kind == EntryKind::File
                    && e.size == f.size
                    && e.path.rsplit(|&c| c == b'/').next() == Some(&f.name[..]) =>
            {
                Ok(OpenFile::new(index.clone(), id))
            }
            _ => {
                crate::diag::log(&format!(
                    "index tree: inode {} names entry {}, which is not its file",
                    ino.0, f.entry
                ));
                Err(Errno::EIO)
            }
        }
    }

    fn open_file(&self, ino: Ino, flags: OpenFlags) -> Result<FileHandle, Errno> {
        if let Some(t) = &self.paged {
            t.file(ino)?;
            if flags.acc_mode() != OpenAccMode::O_RDONLY || flags.0 & libc::O_TRUNC != 0 {
                return Err(Errno::EROFS);
            }
            let f = self.paged_file(t, ino)?;
            let fh = FileHandle(self.next_fh.fetch_add(1, Ordering::Relaxed));
            self.files.write().insert(fh, Arc::new(f));
            return Ok(fh);
        }
        let (tree, local) = self.in_tree(ino)?;
        let node = tree.inodes.node(local).ok_or(MISSING)?;
        let e = attr::entry_of(&tree.index, node).ok_or(Errno::EISDIR)?;
        if e.kind == EntryKind::Dir {
            return Err(Errno::EISDIR);
        }
        if flags.acc_mode() != OpenAccMode::O_RDONLY || flags.0 & libc::O_TRUNC != 0 {
            return Err(Errno::EROFS);
        }
        let entry = node.entry.ok_or(MISSING)?;
        let fh = FileHandle(self.next_fh.fetch_add(1, Ordering::Relaxed));
        self.files
            .write()
            .insert(fh, Arc::new(OpenFile::new(tree.index.clone(), entry)));
        Ok(fh)
    }

    fn read(&self, ino: Ino, fh: FileHandle, offset: u64, size: u32) -> Result<Bytes, Errno> {
        let f = match self.files.read().get(&fh).cloned() {
            Some(f) => f,
            None => self.file_state(ino)?,
        };
        let t0 = std::time::Instant::now();
        let r = self.reader()?.read(&f, offset, size).map_err(|e| errno(&e));
        let n = r.as_ref().map_or(0, |b| b.len() as u64);
        crate::diag::trace::add(
            crate::diag::trace::Stage::MountRead,
            t0,
            std::time::Instant::now(),
            n,
        );
        r
    }

    /// The read state of file `ino` read without a handle of ours: kept per inode, so that a file's
    /// sequential readers keep their read-ahead from one read to the next.
    fn file_state(&self, ino: Ino) -> Result<Arc<OpenFile>, Errno> {
        if let Some(f) = self.states.read().get(&ino) {
            return Ok(f.clone());
        }
        let f = match &self.paged {
            Some(t) => Arc::new(self.paged_file(t, ino)?),
            None => {
                let (tree, local) = self.in_tree(ino)?;
                let node = tree.inodes.node(local).ok_or(MISSING)?;
                Arc::new(OpenFile::new(
                    tree.index.clone(),
                    node.entry.ok_or(Errno::EISDIR)?,
                ))
            }
        };
        let mut m = self.states.write();
        if m.len() >= MAX_STATES {
            m.clear(); // a tree walk reads each file once; a file read again starts a new state
        }
        Ok(m.entry(ino).or_insert(f).clone())
    }

    fn readlink(&self, ino: Ino) -> Result<Vec<u8>, Errno> {
        if let Some(t) = &self.paged {
            return t.readlink(ino);
        }
        let (tree, local) = self.in_tree(ino).map_err(|_| Errno::EINVAL)?;
        let node = tree.inodes.node(local).ok_or(MISSING)?;
        match attr::entry_of(&tree.index, node) {
            Some(e) if e.kind == EntryKind::Symlink => Ok(e.target.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn xattr(&self, ino: Ino, name: &OsStr) -> Result<Vec<u8>, Errno> {
        if let Some(t) = &self.paged {
            return t.xattr(ino, name.as_bytes());
        }
        match self.place(ino)? {
            Place::Top => Err(Errno::ENODATA),
            Place::In { tree, local, .. } => {
                attr::xattr(&tree.index, &tree.inodes, local, name.as_bytes())
                    .map(<[u8]>::to_vec)
                    .ok_or(Errno::ENODATA)
            }
        }
    }

    fn xattr_names(&self, ino: Ino) -> Result<Vec<u8>, Errno> {
        if let Some(t) = &self.paged {
            return t.xattr_names(ino);
        }
        match self.place(ino)? {
            Place::Top => Ok(Vec::new()),
            Place::In { tree, local, .. } => {
                Ok(attr::xattr_names(&tree.index, &tree.inodes, local))
            }
        }
    }

    fn access(&self, ino: Ino, mask: AccessFlags) -> Result<(), Errno> {
        match &self.paged {
            Some(t) => t.attr(ino, &self.root).map(|_| ())?,
            None => self.place(ino).map(|_| ())?,
        }
        if mask.contains(AccessFlags::W_OK) {
            return Err(Errno::EROFS);
        }
        Ok(())
    }
}

/// Replies to an xattr request of `size` bytes with `data` (its length when `size` is 0).
fn reply_sized(reply: ReplyXattr, size: u32, data: &[u8]) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(data);
    }
}

/// The adapter: conversions and one reply per callback. Everything that would write gets EROFS.
impl Filesystem for ClcFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let want =
            self.rdplus.flags() | InitFlags::FUSE_CACHE_SYMLINKS | InitFlags::FUSE_PARALLEL_DIROPS;
        let _ = config.add_capabilities(want & config.capabilities());
        let _ = config.set_max_background(64);
        // A kernel that does not say it takes ENOSYS as a zero-message open (FUSE_NO_OPEN_SUPPORT,
        // which older kernels lack) would fail the open with it: answer FUSE_OPEN there.
        if !config
            .capabilities()
            .contains(InitFlags::FUSE_NO_OPEN_SUPPORT)
        {
            self.open_calls = true;
        }
        if !config
            .capabilities()
            .contains(InitFlags::FUSE_NO_OPENDIR_SUPPORT)
            || (self.records() > NO_OPENDIR_RECORDS && !self.no_opendir)
        {
            self.opendir_calls = true;
        }
        Ok(())
    }

    /// The session is over: the filesystem was unmounted. fuser would now drop its mount handle, which
    /// calls `umount2` on the mount point again (its "still mounted?" check answers yes for an aborted
    /// connection) and so would unmount a newer mount made at the same place meanwhile. Exiting here
    /// skips that.
    fn destroy(&mut self) {
        if self.exit_when_done {
            // CLC_TRACE: what the mount read (with --log, into the log).
            crate::diag::trace::note(&self.walk.summary());
            crate::diag::trace::note(&format!(
                "first reads: {}; {}",
                self.first_reads.load(Ordering::Relaxed),
                self.push.summary()
            ));
            crate::diag::trace::report();
            crate::diag::flush();
            std::process::exit(0);
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.lookup_attr(Ino(parent.0), name) {
            Ok(a) => {
                self.walk.looked_up(a.kind == fuser::FileType::Directory);
                reply.entry(&TTL, &a, GEN)
            }
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(Ino(ino.0)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.readlink(Ino(ino.0)) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    /// ENOSYS (unless `CLC_MOUNT_OPEN=1`): the kernel then takes every open of a file as done, without
    /// a request, with `FOPEN_KEEP_CACHE`, and sends no release: two round trips fewer per file read.
    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if !self.open_calls {
            return reply.error(Errno::ENOSYS);
        }
        match self.open_file(Ino(ino.0), flags) {
            Ok(fh) => reply.opened(fh, FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.read(Ino(ino.0), fh, offset, size) {
            Ok(d) => {
                reply.data(&d);
                reader::recycle(d);
                if offset == 0 {
                    self.first_reads.fetch_add(1, Ordering::Relaxed);
                    self.push_following(Ino(ino.0));
                }
            }
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.files.write().remove(&fh);
        reply.ok();
    }

    /// ENOSYS for a tree of at most [`NO_OPENDIR_RECORDS`] records (see there).
    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.walk.opened_dir();
        if !self.opendir_calls {
            return reply.error(Errno::ENOSYS);
        }
        match self.check_dir(Ino(ino.0)) {
            Ok(()) => reply.opened(
                FileHandle(0),
                if self.dir_len(Ino(ino.0)) <= CACHED_LISTING {
                    FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR
                } else {
                    FopenFlags::FOPEN_KEEP_CACHE
                },
            ),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.walk.request();
        let r = self.dir_list(Ino(ino.0), offset, |(off, i, name, kind)| {
            reply.add(INodeNo(i.0), off, kind, OsStr::from_bytes(name))
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        self.walk.request();
        // Names only (see `walk`): the two dots, for which the kernel makes no inode; it asks for the
        // rest with plain READDIR.
        let names_only = offset == 0
            && self.rdplus == Rdplus::Adaptive
            && self.dir_len(Ino(ino.0)) > walk::SMALL
            && !self.walk.attrs();
        let r = self.dir_list(Ino(ino.0), offset, |(off, i, name, _)| {
            if names_only && off > 2 {
                return true;
            }
            match self.attr(i) {
                Ok(a) => reply.add(INodeNo(i.0), off, OsStr::from_bytes(name), &TTL, &a, GEN),
                Err(_) => false,
            }
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let files = self.records();
        reply.statfs(
            self.blocks,
            0,
            0,
            files,
            0,
            attr::BLKSIZE,
            255,
            attr::BLKSIZE,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.xattr(Ino(ino.0), name) {
            Ok(v) => reply_sized(reply, size, &v),
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.xattr_names(Ino(ino.0)) {
            Ok(names) => reply_sized(reply, size, &names),
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self.access(Ino(ino.0), mask) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    // Everything below would change the archive.

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: fuser::ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::{Frame, VolumeNo};

    #[test]
    fn default_cache_is_the_archives_decoded_bytes_within_bounds() {
        let frame = |raw_len: u32| Frame {
            volume: VolumeNo(1),
            offset: 40,
            stored_len: 1,
            raw_len,
            codec: crate::codec::Codec::Raw,
            flags: 0,
            checksum: None,
        };
        let base = 256 << 20;
        let frames = |n: usize| vec![frame(16 << 20); n];
        // 20 frames of 16 MiB: 320 MiB decoded, above the base.
        assert_eq!(default_cache(&frames(20), base), 320 << 20);
        // Small archives keep the base; large ones stop at the ceiling.
        assert_eq!(default_cache(&frames(3), base), base);
        assert_eq!(default_cache(&frames(100), base), CACHE_GROWS_TO);
        assert_eq!(default_cache(&[], base), base);
    }

    #[test]
    fn readdirplus_lever_reads_its_values() {
        let of = |v: Option<&str>| Rdplus::from_env(v.map(OsStr::new));
        assert_eq!(of(None), Rdplus::Adaptive);
        assert_eq!(of(Some("auto")), Rdplus::Auto);
        assert_eq!(of(Some("0")), Rdplus::Off);
        assert_eq!(of(Some("1")), Rdplus::Always);
        assert_eq!(of(Some("yes")), Rdplus::Adaptive);
        assert!(Rdplus::Off.flags().is_empty());
        assert!(Rdplus::Always
            .flags()
            .contains(InitFlags::FUSE_DO_READDIRPLUS));
        assert!(!Rdplus::Always
            .flags()
            .contains(InitFlags::FUSE_READDIRPLUS_AUTO));
        assert!(Rdplus::Auto
            .flags()
            .contains(InitFlags::FUSE_READDIRPLUS_AUTO));
        assert_eq!(Rdplus::Adaptive.flags(), Rdplus::Auto.flags());
    }
}
