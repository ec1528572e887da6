//! `clc extract`: restores entries under DEST. Frames are decoded ahead in parallel into the shared cache
//! while files are written on `MAX_WORKER_THREADS` threads. Every byte written comes from a checked frame: a
//! file whose data fails is removed, never left with wrong bytes or zeros.
//!
//! Safety: index paths are relative with no `..` (checked when the index is loaded); no entry is written
//! through a symlink, whether extracted or already present under DEST.

use crate::archive::Archive;
use crate::cache::{FrameCache, FrameSource, Owed};
use crate::config::Config;
use crate::diag::{escape_path, Progress, Warnings};
use crate::error::{Error, IoContext, Result};
use crate::format::index::{ContentId, Entry, EntryId, EntryKind, FrameId};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub struct ExtractOptions {
    pub dest: PathBuf,
    /// Only these paths and what is below them (all when empty).
    pub paths: Vec<Vec<u8>>,
    pub keep_going: bool,
    /// Show bytes and files written on stderr (see [`crate::diag::Progress`]).
    pub progress: bool,
    /// Restore modes exactly as archived even when not root (`tar -p`); otherwise a non-root extract
    /// clears the bits of the umask, as tar does. Root always restores them exactly.
    pub same_permissions: bool,
}

#[derive(Debug, Default)]
pub struct ExtractStats {
    /// Regular files written (hardlinks whose target was not chosen included).
    pub files: u64,
    pub bytes: u64,
    pub hardlinks: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// FIFOs, sockets and device nodes made.
    pub other: u64,
    pub damaged: Vec<String>,
}

fn selected(e: &Entry, sel: &[Vec<u8>]) -> bool {
    sel.is_empty()
        || sel
            .iter()
            .any(|p| e.path == *p || (e.path.starts_with(p) && e.path.get(p.len()) == Some(&b'/')))
}

/// Strips leading "/" and "./" and trailing "/" from a user-given path: archive paths are relative to the
/// packed directory, so `/bin/ls`, `./bin/ls` and `bin/ls` name the same entry, and `/`, `.` and `./` name
/// the packed directory itself (empty: everything).
pub fn normalize_sel(p: &[u8]) -> Vec<u8> {
    let mut v = p;
    loop {
        if let Some(r) = v.strip_prefix(b"./") {
            v = r;
        } else if let Some(r) = v.strip_prefix(b"/") {
            v = r;
        } else {
            break;
        }
    }
    while let Some(r) = v.strip_suffix(b"/") {
        v = r;
    }
    if v == b"." {
        v = b"";
    }
    v.to_vec()
}

/// Restores the chosen entries under `opts.dest`, in stages: choose the entries → make directories,
/// symlinks and special files → write the files (decoding ahead into the cache, writers in parallel, in
/// stream order) → link hardlinks → set directory metadata, deepest first.
pub fn extract(
    ar: &Archive,
    cfg: &Config,
    opts: &ExtractOptions,
    decoder: Box<dyn crate::cache::BatchDecoder + '_>,
    warn: &Warnings,
) -> Result<ExtractStats> {
    fs::create_dir_all(&opts.dest).ctx(&opts.dest)?;
    let dest = opts.dest.canonicalize().ctx(&opts.dest)?;
    let chosen = choose(ar, &opts.paths)?;
    let root = crate::sys::is_root();
    let x = Extraction {
        ar,
        chosen_set: chosen.iter().copied().collect(),
        chosen,
        guard: PathGuard::new(&dest),
        dest,
        meta: Meta {
            root,
            mode_mask: if root || opts.same_permissions {
                0o7777
            } else {
                0o7777 & !crate::sys::umask()
            },
            warn,
        },
        keep_going: opts.keep_going,
        failed: Mutex::new(Vec::new()),
        written: Mutex::new(HashSet::new()),
    };
    let made = x.make_non_files()?;
    let plan = x.plan_files();
    let progress = x.progress(opts.progress, &plan);
    let stats = x.write_files(cfg, &plan, decoder, &progress);
    progress.finish();
    let mut stats = stats?;
    stats.hardlinks = x.link_hardlinks()?;
    (stats.dirs, stats.symlinks, stats.other) = made;
    x.finish_dirs();
    if opts.paths.is_empty() {
        x.finish_root();
    }
    let mut failed = x.failed.into_inner();
    failed.sort();
    stats
        .damaged
        .extend(failed.into_iter().map(|id| ar.path_of(id)));
    Ok(stats)
}

/// What `--keep-going` would have done, added to the error that stops a plain extract.
const KEEP_GOING_HINT: &str =
    "--keep-going restores every other entry and lists the ones that fail";

/// How metadata is restored: owner only as root; modes masked by the umask unless root or
/// `same_permissions`.
struct Meta<'a> {
    root: bool,
    mode_mask: u32,
    warn: &'a Warnings,
}

/// The entries `sel` names (all when empty), in path order; every path of `sel` must name something.
fn choose(ar: &Archive, sel: &[Vec<u8>]) -> Result<Vec<EntryId>> {
    let chosen: Vec<(EntryId, &Entry)> = ar
        .index()
        .entries_with_ids()
        .filter(|(_, e)| selected(e, sel))
        .collect();
    for p in sel {
        if !chosen
            .iter()
            .any(|(_, e)| selected(e, std::slice::from_ref(p)))
        {
            return Err(Error::NotFound(crate::diag::escape(p)));
        }
    }
    Ok(chosen.into_iter().map(|(id, _)| id).collect())
}

/// One extraction: the archive, what was chosen, and where it goes.
struct Extraction<'a> {
    ar: &'a Archive,
    chosen: Vec<EntryId>,
    chosen_set: HashSet<EntryId>,
    dest: PathBuf,
    guard: PathGuard,
    meta: Meta<'a>,
    keep_going: bool,
    /// Entries that could not be restored (with `keep_going`), other than files whose data failed.
    failed: Mutex<Vec<EntryId>>,
    /// Files written by this extraction: the only ones a hardlink may be linked to.
    written: Mutex<HashSet<EntryId>>,
}

/// The files to write, in stream order, and the frames they need, each once, in the order first needed.
struct FilePlan {
    files: Vec<EntryId>,
    /// For each file, the position in `order` of its first frame (none for an empty file).
    first_pos: Vec<Option<u64>>,
    order: Vec<FrameId>,
    /// Per frame, the bytes the planned files still take from it (a content shared by several files
    /// counts once per file). When a frame's count reaches 0 the writers are done with it and the
    /// cache may drop it and decode the next frames into its buffer ([`FrameCache::consumed`]), so that
    /// an extract does not fault in fresh memory for every frame of the archive.
    unread: Owed,
}

impl Extraction<'_> {
    fn entries(&self) -> impl Iterator<Item = (EntryId, &Entry)> {
        let idx = self.ar.index();
        self.chosen
            .iter()
            .filter_map(move |&id| Some((id, idx.entry(id)?)))
    }

    /// An entry that could not be restored: with `keep_going` it is warned about and listed, and the
    /// work goes on; otherwise the error stops the extraction, saying that `--keep-going` exists.
    fn entry_failed(&self, id: EntryId, err: Error) -> Result<()> {
        if self.keep_going {
            self.meta.warn.warn(format!("not restored: {err}"));
            self.failed.lock().push(id);
            Ok(())
        } else {
            Err(Error::Hint {
                source: Box::new(err),
                hint: KEEP_GOING_HINT.into(),
            })
        }
    }

    /// Directories and non-file entries first (in path order, so parents come first). Returns how many
    /// directories, symlinks and other entries were made.
    fn make_non_files(&self) -> Result<(u64, u64, u64)> {
        let mut made = (0, 0, 0);
        for (id, e) in self.entries() {
            match self.make_non_file(e) {
                Ok(false) => {}
                Ok(true) => match e.kind {
                    EntryKind::Dir => made.0 += 1,
                    EntryKind::Symlink => made.1 += 1,
                    _ => made.2 += 1,
                },
                Err(err) => self.entry_failed(id, err)?,
            }
        }
        Ok(made)
    }

    /// One directory, symlink or special file (nothing for files and hardlinks); false when nothing was
    /// made (a file, or a device or socket skipped).
    fn make_non_file(&self, e: &Entry) -> Result<bool> {
        let target = self.guard.prepare(&e.path)?;
        match e.kind {
            EntryKind::Dir => match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::Target {
                        path: escape_path(&target),
                        msg: "exists and is not a directory".into(),
                    })
                }
                Err(_) => fs::create_dir(&target).ctx(&target)?,
            },
            EntryKind::Symlink => {
                remove_existing(&target)?;
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&e.target), &target)
                    .ctx(&target)?;
                self.guard.add_symlink(&e.path);
                self.meta.owner_and_time(&target, e);
            }
            EntryKind::Fifo | EntryKind::CharDev | EntryKind::BlockDev | EntryKind::Socket => {
                return self.make_special(&target, e)
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A FIFO, device or socket (the last two only as root); false when skipped.
    fn make_special(&self, target: &Path, e: &Entry) -> Result<bool> {
        let bits = match e.kind {
            EntryKind::Fifo => libc::S_IFIFO,
            EntryKind::CharDev => libc::S_IFCHR,
            EntryKind::BlockDev => libc::S_IFBLK,
            _ => libc::S_IFSOCK,
        };
        if e.kind != EntryKind::Fifo && !self.meta.root {
            self.meta.warn.warn(format!(
                "{}: device or socket skipped (needs root)",
                escape_path(target)
            ));
            return Ok(false);
        }
        remove_existing(target)?;
        crate::sys::mknod(target, bits, e.mode, e.rdev).ctx(target)?;
        self.meta.finish(target, e);
        Ok(true)
    }

    /// The progress of writing the planned files: their bytes and their count.
    fn progress(&self, show: bool, plan: &FilePlan) -> Progress {
        if !show {
            return Progress::hidden();
        }
        let idx = self.ar.index();
        let bytes = plan.files.iter().map(|&id| idx.data_size(id)).sum();
        Progress::new(show, "extract", bytes, plan.files.len() as u64, "files")
    }

    /// Regular files (and hardlinks whose target is not extracted) in stream order, and the frames they
    /// need in the order first needed. Each content's frames are walked once, however many files share
    /// it (8 000 files sharing one content of 8 000 refs must not cost 64 million steps): the work is
    /// linear in the index plus the bytes written, and the plan holds one frame per file.
    fn plan_files(&self) -> FilePlan {
        let idx = self.ar.index();
        let first_frame = |id: EntryId| {
            idx.content_of(id)
                .and_then(|c| idx.pieces(c, 0).next())
                .map(|p| p.frame)
        };
        let mut planned: Vec<(EntryId, Option<FrameId>)> = self
            .entries()
            .filter(|&(id, e)| match idx.hardlink_target(id) {
                Some(t) => !self.chosen_set.contains(&t),
                None => e.kind == EntryKind::File,
            })
            .map(|(id, _)| (id, first_frame(id)))
            .collect();
        planned.sort_by_key(|(_, f)| f.map_or(0, |f| f.0));
        let mut order: Vec<FrameId> = Vec::new();
        let mut seen_frame = vec![false; idx.frames().len()];
        // Each content once, with how many planned files read it.
        let mut readers: HashMap<ContentId, i64> = HashMap::new();
        let mut contents = Vec::new();
        for &(id, _) in &planned {
            let Some(c) = idx.content_of(id) else {
                continue;
            };
            let n = readers.entry(c).or_insert(0);
            if *n == 0 {
                contents.push(c);
            }
            *n += 1;
        }
        let mut unread = vec![0i64; idx.frames().len()];
        for c in contents {
            let files = readers[&c];
            for p in idx.pieces(c, 0) {
                let f = p.frame.at();
                if !std::mem::replace(&mut seen_frame[f], true) {
                    order.push(p.frame);
                }
                unread[f] = unread[f].saturating_add(i64::from(p.len).saturating_mul(files));
            }
        }
        let mut pos_of = vec![0u32; idx.frames().len()];
        for (p, f) in order.iter().enumerate() {
            pos_of[f.at()] = p as u32;
        }
        FilePlan {
            first_pos: planned
                .iter()
                .map(|(_, f)| f.map(|f| u64::from(pos_of[f.at()])))
                .collect(),
            files: planned.into_iter().map(|(id, _)| id).collect(),
            order,
            unread: Owed::new(unread),
        }
    }

    /// Writes the planned files on `NUM_IO_WORKERS` writer threads while one thread decodes ahead.
    /// Writers are plain threads, not pool tasks: a writer waits for frames that another thread
    /// decodes, and a pool task that blocks can deadlock the pool (it may be holding, further down its
    /// own stack, the very decode it waits for). Decoding runs on the rayon pool, whose tasks never
    /// wait on the cache.
    fn write_files(
        &self,
        cfg: &Config,
        plan: &FilePlan,
        decoder: Box<dyn crate::cache::BatchDecoder + '_>,
        progress: &Progress,
    ) -> Result<ExtractStats> {
        let mem = MemoryPlan::new(cfg, self.ar.index().max_frame_len());
        let cache = FrameCache::new(self.ar, mem.lru)
            .with_batch_size(mem.batch)
            .with_decoder(decoder)
            .with_spare(mem.spare);
        let w = Writers {
            stats: Mutex::new(ExtractStats::default()),
            failed: Mutex::new(None),
            next: AtomicUsize::new(0),
            progress: AtomicU64::new(0),
        };
        let done = AtomicUsize::new(0);
        std::thread::scope(|s| {
            // Decode ahead on its own thread, at most the LRU share of CACHE_SIZE beyond the writers.
            s.spawn(|| decode_ahead(&cache, &plan.order, &w.progress, &mem, &done));
            let workers: Vec<_> = (0..mem.writers)
                .map(|_| s.spawn(|| self.writer(&cache, plan, &w, progress)))
                .collect();
            for h in workers {
                let _ = h.join();
            }
            done.store(usize::MAX, Ordering::Relaxed);
        });
        match w.failed.into_inner() {
            Some(e) => Err(Error::Hint {
                source: Box::new(e),
                hint: KEEP_GOING_HINT.into(),
            }),
            None => Ok(w.stats.into_inner()),
        }
    }

    /// One writer thread: takes the next planned file until none is left or one has failed.
    fn writer(&self, cache: &FrameCache, plan: &FilePlan, w: &Writers, progress: &Progress) {
        let mut src = Source {
            cache,
            plan,
            buf: Vec::new(),
        };
        loop {
            let k = w.next.fetch_add(1, Ordering::Relaxed);
            let Some(&id) = plan.files.get(k) else { return };
            if w.failed.lock().is_some() {
                return;
            }
            let Some(e) = self.ar.index().entry(id) else {
                continue;
            };
            if let Some(p) = plan.first_pos[k] {
                w.progress.fetch_max(p, Ordering::Relaxed);
            }
            let r = self
                .guard
                .prepare(&e.path)
                .and_then(|t| write_file(self.ar, &mut src, id, e, &t, &self.meta, progress));
            progress.items(1);
            match r {
                Ok(n) => {
                    self.written.lock().insert(id);
                    let mut st = w.stats.lock();
                    st.files += 1;
                    st.bytes += n;
                }
                Err(err) if self.keep_going => {
                    self.meta.warn.warn(format!("damaged: {err}"));
                    w.stats.lock().damaged.push(self.ar.path_of(id));
                }
                Err(err) => {
                    w.failed.lock().get_or_insert(err);
                }
            }
        }
    }

    /// Hardlinks to extracted files. Only a file this extraction wrote is linked to: whatever stands at
    /// its path otherwise (a file of DEST, or one reached through a symlink of DEST) is not the
    /// archive's.
    /// Returns how many were linked.
    fn link_hardlinks(&self) -> Result<u64> {
        let mut linked = 0;
        let idx = self.ar.index();
        let written = self.written.lock().clone();
        for (id, e) in self.entries() {
            let Some(t) = idx.hardlink_target(id) else {
                continue;
            };
            let Some(orig) = idx.entry(t).filter(|_| self.chosen_set.contains(&t)) else {
                continue;
            };
            let r = self.guard.prepare(&e.path).and_then(|target| {
                if !written.contains(&t) {
                    self.meta.warn.warn(format!(
                        "{}: not linked, its target was not restored",
                        escape_path(&target)
                    ));
                    return Ok(false);
                }
                let orig = self.dest.join(std::ffi::OsStr::from_bytes(&orig.path));
                remove_existing(&target)?;
                fs::hard_link(&orig, &target).ctx(&target).map(|()| true)
            });
            match r {
                Ok(l) => linked += u64::from(l),
                Err(err) => self.entry_failed(id, err)?,
            }
        }
        Ok(linked)
    }

    /// Directory metadata last (deepest first), so restrictive modes do not block the writes above.
    fn finish_dirs(&self) {
        let failed: HashSet<EntryId> = self.failed.lock().iter().copied().collect();
        let dirs: Vec<&Entry> = self
            .entries()
            .filter(|(id, e)| e.kind == EntryKind::Dir && !failed.contains(id))
            .map(|(_, e)| e)
            .collect();
        for e in dirs.into_iter().rev() {
            let target = self.dest.join(std::ffi::OsStr::from_bytes(&e.path));
            self.meta.finish(&target, e);
        }
    }

    /// The mtime of the packed directory itself (param `root_mtime`), on DEST, when the whole archive was
    /// extracted. Owner and mode are DEST's own: it may be a directory that existed before.
    fn finish_root(&self) {
        let param = |k: &str| {
            let p = self.ar.index().params();
            p.iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.parse().ok())
        };
        let (Some(sec), nsec) = (param("root_mtime"), param("root_mtime_nsec")) else {
            return;
        };
        let nsec = nsec
            .filter(|&n: &i64| (0..1_000_000_000).contains(&n))
            .unwrap_or(0);
        if let Err(err) = crate::sys::set_mtime(&self.dest, sec, nsec as u32) {
            self.meta.warn.warn(format!(
                "{}: mtime not restored: {err}",
                escape_path(&self.dest)
            ));
        }
    }
}

/// What the writer threads share.
struct Writers {
    stats: Mutex<ExtractStats>,
    failed: Mutex<Option<Error>>,
    /// The next planned file to take.
    next: AtomicUsize,
    /// The furthest position in the frame order that a writer has started on.
    progress: AtomicU64,
}

/// Most bytes of spare buffers an extract keeps (the mount's bound, `mount::reader`).
const SPARE: u64 = 64 << 20;

/// How extract splits CACHE_SIZE, so that decoded and stored frames together stay within it: 1/2 for
/// the LRU of decoded frames (which is also how far decoding runs ahead of the writers) and the spare
/// buffers of frames the writers are done with (a quarter of it, at most [`SPARE`]), 3/16 for a decode
/// batch's output and 3/16 for its input, 1/8 for the frames the writers hold while copying out of them.
/// Writers are NUM_IO_WORKERS (0: one per core), fewer when their frames would not fit.
struct MemoryPlan {
    lru: u64,
    /// Buffers of frames the writers are done with, kept for the next decodes: at most a quarter of the
    /// LRU's share and [`SPARE`], taken from it (the LRU keeps at least one frame).
    spare: u64,
    batch: usize,
    ahead: usize,
    writers: usize,
}

impl MemoryPlan {
    fn new(cfg: &Config, max_frame: u64) -> MemoryPlan {
        let frame = max_frame.max(1);
        let budget = cfg.cache_size;
        let frames = |share: u64| (share / frame).max(1) as usize;
        let share = (budget / 2).max(frame);
        let spare = (share / 4).min(SPARE).min(share - frame);
        let lru = share - spare;
        MemoryPlan {
            lru,
            spare,
            batch: frames(budget * 3 / 16).min(cfg.decompressor_batch_size.max(1)),
            ahead: frames(lru),
            writers: cfg.io_workers().min(frames(budget / 8)),
        }
    }
}

fn decode_ahead(
    cache: &FrameCache,
    order: &[FrameId],
    progress: &AtomicU64,
    plan: &MemoryPlan,
    done: &AtomicUsize,
) {
    let (ahead, batch) = (plan.ahead, plan.batch);
    let mut pos = 0;
    while pos < order.len() && done.load(Ordering::Relaxed) != usize::MAX {
        let writers = progress.load(Ordering::Relaxed) as usize;
        if pos >= writers + ahead {
            std::thread::sleep(std::time::Duration::from_micros(200));
            continue;
        }
        let end = (pos + batch).min(order.len());
        cache.prefetch(&order[pos..end]);
        pos = end;
    }
}

/// Where a writer takes a file's bytes: the cache, the plan's count of what each frame still owes
/// the writers, and one copy buffer for all of the writer's files (a fresh one per file faulted in
/// ~100 MB of new pages for the Rust docs' 5,917 files).
struct Source<'c, 'a> {
    cache: &'c FrameCache<'a>,
    plan: &'c FilePlan,
    buf: Vec<u8>,
}

impl Source<'_, '_> {
    /// Up to `len` bytes of file `id` from `off` into the buffer (`self.buf[..n]`, n returned); frames
    /// the writers are then done with go back to the cache.
    fn read(&mut self, ar: &Archive, id: EntryId, off: u64, len: usize) -> Result<usize> {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        let buf = &mut self.buf[..len];
        let mut done = 0usize;
        let mut runs: Vec<(FrameId, usize)> = Vec::new();
        ar.read_runs(
            id,
            off,
            buf.len(),
            self.cache as &dyn FrameSource,
            |f, frame, r| {
                buf[done..done + r.len()].copy_from_slice(&frame[r.clone()]);
                done += r.len();
                runs.push((f, r.len()));
            },
        )?;
        self.plan.unread.read(self.cache, &runs);
        Ok(done)
    }
}

fn write_file(
    ar: &Archive,
    src: &mut Source,
    id: EntryId,
    e: &Entry,
    target: &Path,
    meta: &Meta,
    progress: &Progress,
) -> Result<u64> {
    ar.check_entry(id)?;
    remove_existing(target)?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .ctx(target)?;
    let size = ar.index().data_size(id);
    let want = (1 << 20).min(size as usize).max(1);
    let mut off = 0u64;
    let res = (|| -> Result<()> {
        while off < size {
            let n = src.read(ar, id, off, want)?;
            if n == 0 {
                return Err(Error::Damaged {
                    path: ar.path_of(id),
                    why: "data ends early".into(),
                });
            }
            crate::diag::trace::timed(crate::diag::trace::Stage::Write, n as u64, || {
                f.write_all(&src.buf[..n])
            })
            .ctx(target)?;
            progress.bytes(n as u64);
            off += n as u64;
        }
        Ok(())
    })();
    if let Err(err) = res {
        drop(f);
        let _ = fs::remove_file(target);
        return Err(err);
    }
    drop(f);
    let meta_from = ar.index().entry(ar.index().data_entry(id)).unwrap_or(e);
    meta.finish(target, meta_from);
    Ok(size)
}

fn remove_existing(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => Err(Error::Target {
            path: escape_path(p),
            msg: "exists and is a directory".into(),
        }),
        Ok(_) => fs::remove_file(p).ctx(p),
        Err(_) => Ok(()),
    }
}

impl Meta<'_> {
    fn owner(&self, p: &Path, e: &Entry) {
        if self.root {
            if let Err(err) = std::os::unix::fs::lchown(p, Some(e.uid), Some(e.gid)) {
                self.warn
                    .warn(format!("{}: owner not restored: {err}", escape_path(p)));
            }
        }
    }

    fn time(&self, p: &Path, e: &Entry) {
        if let Err(err) = crate::sys::set_mtime(p, e.mtime_sec, e.mtime_nsec) {
            self.warn
                .warn(format!("{}: mtime not restored: {err}", escape_path(p)));
        }
    }

    /// Owner and mtime: all a symlink keeps.
    fn owner_and_time(&self, p: &Path, e: &Entry) {
        self.owner(p, e);
        self.time(p, e);
    }

    /// Owner first: chown clears setuid/setgid bits and the `security.capability` xattr (a packed
    /// `ping` lost cap_net_raw when xattrs went first). Then xattrs, the mode, and the mtime last.
    fn finish(&self, p: &Path, e: &Entry) {
        self.owner(p, e);
        for (n, v) in &e.xattrs {
            if let Err(err) = crate::sys::set_xattr(p, n, v) {
                self.warn.warn(format!(
                    "{}: xattr {} not restored: {err}",
                    escape_path(p),
                    crate::diag::escape(n)
                ));
            }
        }
        let mode = e.mode & self.mode_mask;
        if let Err(err) = fs::set_permissions(p, fs::Permissions::from_mode(mode)) {
            self.warn
                .warn(format!("{}: mode not restored: {err}", escape_path(p)));
        }
        self.time(p, e);
    }
}

/// Refuses to create anything below a symlink: ancestors must be real directories under DEST.
struct PathGuard {
    dest: PathBuf,
    good_dirs: Mutex<HashSet<Vec<u8>>>,
    symlinks: Mutex<HashSet<Vec<u8>>>,
}

impl PathGuard {
    fn new(dest: &Path) -> Self {
        PathGuard {
            dest: dest.to_path_buf(),
            good_dirs: Mutex::new(HashSet::new()),
            symlinks: Mutex::new(HashSet::new()),
        }
    }

    fn add_symlink(&self, p: &[u8]) {
        self.symlinks.lock().insert(p.to_vec());
    }

    /// Checks (and creates, as plain directories) the ancestors of `rel`; returns DEST/rel.
    fn prepare(&self, rel: &[u8]) -> Result<PathBuf> {
        let show = || crate::diag::escape(rel);
        crate::format::index::check_path(rel).map_err(|msg| Error::Target { path: show(), msg })?;
        let mut end = 0;
        while let Some(pos) = rel[end..].iter().position(|&b| b == b'/') {
            let anc = &rel[..end + pos];
            end += pos + 1;
            if self.good_dirs.lock().contains(anc) {
                continue;
            }
            let p = self.dest.join(std::ffi::OsStr::from_bytes(anc));
            if self.symlinks.lock().contains(anc) {
                return Err(Error::Target {
                    path: show(),
                    msg: "refused, it lies below a symlink of the archive".into(),
                });
            }
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::Target {
                        path: show(),
                        msg: format!("refused, {} is not a directory", escape_path(&p)),
                    })
                }
                Err(_) => fs::create_dir(&p)
                    .or_else(|e| {
                        if p.is_dir() && !p.is_symlink() {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .ctx(&p)?,
            }
            self.good_dirs.lock().insert(anc.to_vec());
        }
        Ok(self.dest.join(std::ffi::OsStr::from_bytes(rel)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Packs a small tree under `dir` into frames of 16 KiB: text `a.txt`, the same in `b.txt`, noise
    /// `d/noise.bin`, `d/small` and `empty`. Returns the tree, the archive's first volume and the pack's
    /// config.
    pub(crate) fn small_archive(dir: &Path) -> (PathBuf, PathBuf, Config) {
        let src = dir.join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        let text: Vec<u8> = (0..40_000u32)
            .flat_map(|i| format!("line {} of {}\n", i % 97, i * 7919 % 10007).into_bytes())
            .collect();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..150_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        fs::write(src.join("a.txt"), &text).unwrap();
        fs::write(src.join("b.txt"), &text).unwrap();
        fs::write(src.join("d/noise.bin"), &noise).unwrap();
        fs::write(src.join("d/small"), b"small").unwrap();
        fs::write(src.join("empty"), b"").unwrap();
        let cfg = Config {
            force_cpu: true,
            frame_size: 16 << 10,
            adaptive_frames: false,
            ..Config::default()
        };
        let opts = crate::pack::PackOptions {
            src: src.clone(),
            out: dir.join("a"),
            ..Default::default()
        };
        crate::pack::pack(&cfg, &opts, None, &Warnings::new(true)).unwrap();
        (src, dir.join("a.001"), cfg)
    }

    #[test]
    fn the_plan_keeps_frames_within_cache_size() {
        for (cache, frame, io, batch) in [
            (256u64 << 20, 4u64 << 20, 0usize, 64usize),
            (256 << 20, 16 << 20, 64, 64),
            (16 << 20, 4 << 20, 8, 64),
            (1 << 20, 16 << 20, 4, 1),
        ] {
            let cfg = Config {
                cache_size: cache,
                num_io_workers: io,
                decompressor_batch_size: batch,
                ..Config::default()
            };
            let p = MemoryPlan::new(&cfg, frame);
            assert!(p.writers >= 1 && p.batch >= 1 && p.ahead >= 1);
            assert!(p.batch <= batch);
            // Decoded in the LRU and its spares, a batch's output and input, and one frame per writer.
            let held = p.lru + p.spare + 2 * p.batch as u64 * frame + p.writers as u64 * frame;
            assert!(p.lru >= frame);
            if cache >= 8 * frame {
                assert!(held <= cache, "{cache} {frame}: {held}");
            } else {
                // Smaller than a frame per share: one of each, whatever the budget.
                assert!(p.writers == 1 && p.batch == 1, "{cache} {frame}");
            }
        }
    }

    /// The plan's per-frame counts add up to the bytes of the planned files (a content shared by
    /// several files counted once per file), and the writers bring every count to exactly 0, so every
    /// frame goes back to the cache once and none while a file still needs it.
    #[test]
    fn the_writers_give_back_every_frame_once_its_bytes_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let (src, first, cfg) = small_archive(dir.path());
        let warn = Warnings::new(true);
        let ar = Archive::open(&first).unwrap();
        let dest = dir.path().join("out");
        fs::create_dir_all(&dest).unwrap();
        let chosen = choose(&ar, &[]).unwrap();
        let x = Extraction {
            ar: &ar,
            chosen_set: chosen.iter().copied().collect(),
            chosen,
            guard: PathGuard::new(&dest),
            dest: dest.clone(),
            meta: Meta {
                root: false,
                mode_mask: 0o7777,
                warn: &warn,
            },
            keep_going: false,
            failed: Mutex::new(Vec::new()),
            written: Mutex::new(HashSet::new()),
        };
        x.make_non_files().unwrap();
        let plan = x.plan_files();
        let frames = ar.index().frames().len() as u32;
        let owed: i64 = (0..frames).map(|f| plan.unread.left(FrameId(f))).sum();
        let bytes: u64 = plan.files.iter().map(|&id| ar.index().data_size(id)).sum();
        assert_eq!(owed as u64, bytes);
        let size = |p: &str| fs::metadata(src.join(p)).unwrap().len();
        assert_eq!(bytes, 2 * size("a.txt") + size("d/noise.bin") + 5);
        assert!(plan.order.len() > 10, "{} frames", plan.order.len());
        let cfg = Config {
            cache_size: 1 << 20,
            ..cfg
        };
        x.write_files(
            &cfg,
            &plan,
            Box::new(crate::cache::CpuDecoder),
            &Progress::hidden(),
        )
        .unwrap();
        for f in 0..frames {
            assert_eq!(plan.unread.left(FrameId(f)), 0, "frame {f}");
        }
        for p in ["a.txt", "b.txt", "d/noise.bin", "d/small", "empty"] {
            assert_eq!(
                fs::read(dest.join(p)).unwrap(),
                fs::read(src.join(p)).unwrap(),
                "{p}"
            );
        }
    }

    #[test]
    fn selections_are_relative_to_the_packed_directory() {
        for (given, want) in [
            (&b"bin/ls"[..], &b"bin/ls"[..]),
            (b"/bin/ls", b"bin/ls"),
            (b"./bin/ls/", b"bin/ls"),
            (b"//bin//", b"bin"),
            (b"/", b""),
            (b".", b""),
            (b"./", b""),
            (b"..", b".."),
        ] {
            assert_eq!(
                normalize_sel(given),
                want,
                "{:?}",
                String::from_utf8_lossy(given)
            );
        }
    }
}
