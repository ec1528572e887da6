//! `clc extract`: restores entries under DEST. Frames are decoded ahead in parallel into the shared cache
//! while files are written on `MAX_WORKER_THREADS` threads. Every byte written comes from a checked frame: a
//! file whose data fails is removed, never left with wrong bytes or zeros.
//!
//! Safety: index paths are relative with no `..` (checked when the index is loaded); no entry is written
//! through a symlink, whether extracted or already present under DEST.

use crate::archive::{Archive, FrameSource};
use crate::cache::FrameCache;
use crate::config::Config;
use crate::error::{Error, IoContext, Result};
use crate::format::index::{Entry, EntryId, EntryKind, FrameId};
use crate::warn::Warnings;
use parking_lot::Mutex;
use std::collections::HashSet;
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
}

#[derive(Debug, Default)]
pub struct ExtractStats {
    pub files: u64,
    pub bytes: u64,
    pub damaged: Vec<String>,
}

fn selected(e: &Entry, sel: &[Vec<u8>]) -> bool {
    sel.is_empty()
        || sel
            .iter()
            .any(|p| e.path == *p || (e.path.starts_with(p) && e.path.get(p.len()) == Some(&b'/')))
}

/// Strips trailing '/' and leading "./" from a user-given path.
pub fn normalize_sel(p: &[u8]) -> Vec<u8> {
    let mut v = p;
    while v.starts_with(b"./") {
        v = &v[2..];
    }
    while v.len() > 1 && v.ends_with(b"/") {
        v = &v[..v.len() - 1];
    }
    v.to_vec()
}

pub fn extract(
    ar: &Archive,
    cfg: &Config,
    opts: &ExtractOptions,
    decoder: Box<dyn crate::cache::BatchDecoder + '_>,
    warn: &Warnings,
) -> Result<ExtractStats> {
    fs::create_dir_all(&opts.dest).ctx(&opts.dest)?;
    let dest = opts.dest.canonicalize().ctx(&opts.dest)?;
    let idx = &ar.index;
    let chosen: Vec<usize> = (0..idx.entries.len())
        .filter(|&i| selected(&idx.entries[i], &opts.paths))
        .collect();
    for p in &opts.paths {
        if !chosen
            .iter()
            .any(|&i| selected(&idx.entries[i], std::slice::from_ref(p)))
        {
            return Err(Error::NotFound(String::from_utf8_lossy(p).into_owned()));
        }
    }
    let chosen_set: HashSet<usize> = chosen.iter().copied().collect();
    let guard = PathGuard::new(&dest);
    let root = crate::sys::is_root();

    // Directories and non-file entries first (in path order, so parents come first).
    for &i in &chosen {
        let e = &idx.entries[i];
        let target = guard.prepare(&e.path)?;
        match e.kind {
            EntryKind::Dir => match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::Other(format!(
                        "{}: exists and is not a directory",
                        target.display()
                    )))
                }
                Err(_) => fs::create_dir(&target).ctx(&target)?,
            },
            EntryKind::Symlink => {
                remove_existing(&target)?;
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&e.target), &target)
                    .ctx(&target)?;
                guard.add_symlink(&e.path);
                set_owner_and_time(&target, e, root, warn);
            }
            EntryKind::Fifo | EntryKind::CharDev | EntryKind::BlockDev | EntryKind::Socket => {
                let bits = match e.kind {
                    EntryKind::Fifo => libc::S_IFIFO,
                    EntryKind::CharDev => libc::S_IFCHR,
                    EntryKind::BlockDev => libc::S_IFBLK,
                    _ => libc::S_IFSOCK,
                };
                if e.kind != EntryKind::Fifo && !root {
                    warn.warn(format!(
                        "{}: device or socket skipped (needs root)",
                        target.display()
                    ));
                    continue;
                }
                remove_existing(&target)?;
                crate::sys::mknod(&target, bits, e.mode, e.rdev).ctx(&target)?;
                finish_metadata(&target, e, root, warn);
            }
            _ => {}
        }
    }

    // Regular files (and hardlinks whose target is not extracted), written in parallel, in stream order.
    let files: Vec<usize> = chosen
        .iter()
        .copied()
        .filter(|&i| {
            let e = &idx.entries[i];
            e.kind == EntryKind::File
                || (e.kind == EntryKind::Hardlink && !chosen_set.contains(&(e.link as usize)))
        })
        .collect();
    // Each file's frames, looked up once: they order the files, the decode-ahead and the writers' progress.
    let mut planned: Vec<(usize, Vec<FrameId>)> = files
        .iter()
        .map(|&i| (i, ar.frames_of(&idx.entries[i])))
        .collect();
    planned.sort_by_key(|(_, f)| f.first().map_or(0, |f| f.0));
    let files: Vec<usize> = planned.iter().map(|(i, _)| *i).collect();
    let plan = MemoryPlan::new(cfg, idx.max_frame_len());
    let cache = FrameCache::new(ar, plan.lru)
        .with_batch_size(plan.batch)
        .with_decoder(decoder);
    let stats = Mutex::new(ExtractStats::default());
    let failed = Mutex::new(None::<Error>);
    let done = AtomicUsize::new(0);
    let progress = AtomicU64::new(0);
    let order: Vec<FrameId> = {
        let mut seen = HashSet::new();
        planned
            .iter()
            .flat_map(|(_, f)| f.iter().copied())
            .filter(|f| seen.insert(*f))
            .collect()
    };
    let mut pos_of = vec![0u32; idx.frames.len()];
    for (p, f) in order.iter().enumerate() {
        pos_of[f.0 as usize] = p as u32;
    }
    let first_pos: Vec<Option<u64>> = planned
        .iter()
        .map(|(_, f)| f.first().map(|f| u64::from(pos_of[f.0 as usize])))
        .collect();
    // Writers are plain threads, not pool tasks: a writer waits for frames that another thread decodes,
    // and a pool task that blocks can deadlock the pool (it may be holding, further down its own stack,
    // the very decode it waits for). Decoding runs on the rayon pool, whose tasks never wait on the cache.
    let next = AtomicUsize::new(0);
    let writers = plan.writers;
    std::thread::scope(|s| {
        // Decode ahead on its own thread, at most the LRU share of CACHE_SIZE beyond the writers.
        s.spawn(|| decode_ahead(&cache, &order, &progress, &plan, &done));
        let workers: Vec<_> = (0..writers)
            .map(|_| {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = files.get(k) else { return };
                    if failed.lock().is_some() {
                        return;
                    }
                    let e = &idx.entries[i];
                    if let Some(p) = first_pos[k] {
                        progress.fetch_max(p, Ordering::Relaxed);
                    }
                    let r = guard
                        .prepare(&e.path)
                        .and_then(|t| write_file(ar, &cache, EntryId(i as u64), e, &t, root, warn));
                    match r {
                        Ok(n) => {
                            let mut st = stats.lock();
                            st.files += 1;
                            st.bytes += n;
                        }
                        Err(err) if opts.keep_going => {
                            warn.warn(format!("damaged: {err}"));
                            stats.lock().damaged.push(ar.path_of(EntryId(i as u64)));
                        }
                        Err(err) => {
                            failed.lock().get_or_insert(err);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        done.store(usize::MAX, Ordering::Relaxed);
    });
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }

    // Hardlinks to extracted files.
    for &i in &chosen {
        let e = &idx.entries[i];
        if e.kind == EntryKind::Hardlink && chosen_set.contains(&(e.link as usize)) {
            let target = guard.prepare(&e.path)?;
            let orig = dest.join(std::ffi::OsStr::from_bytes(
                &idx.entries[e.link as usize].path,
            ));
            if orig.symlink_metadata().is_err() {
                warn.warn(format!(
                    "{}: not linked, its target was not restored",
                    target.display()
                ));
                continue;
            }
            remove_existing(&target)?;
            fs::hard_link(&orig, &target).ctx(&target)?;
        }
    }
    // Directory metadata last (deepest first), so restrictive modes do not block the writes above.
    for &i in chosen.iter().rev() {
        let e = &idx.entries[i];
        if e.kind == EntryKind::Dir {
            let target = dest.join(std::ffi::OsStr::from_bytes(&e.path));
            finish_metadata(&target, e, root, warn);
        }
    }
    Ok(stats.into_inner())
}

/// How extract splits CACHE_SIZE, so that decoded and stored frames together stay within it: 3/8 for
/// the LRU of decoded frames (which is also how far decoding runs ahead of the writers), 1/4 for a decode
/// batch's output and 1/4 for its input, 1/8 for the frames the writers hold while copying out of them.
/// Writers are NUM_IO_WORKERS (0: one per core), fewer when their frames would not fit.
struct MemoryPlan {
    lru: u64,
    batch: usize,
    ahead: usize,
    writers: usize,
}

impl MemoryPlan {
    fn new(cfg: &Config, max_frame: u64) -> MemoryPlan {
        let frame = max_frame.max(1);
        let budget = cfg.cache_size;
        let frames = |share: u64| (share / frame).max(1) as usize;
        let lru = (budget * 3 / 8).max(frame);
        MemoryPlan {
            lru,
            batch: frames(budget / 4).min(cfg.decompressor_batch_size.max(1)),
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

fn write_file(
    ar: &Archive,
    cache: &FrameCache,
    id: EntryId,
    e: &Entry,
    target: &Path,
    root: bool,
    warn: &Warnings,
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
    let size = match e.kind {
        EntryKind::Hardlink => ar.index.entries[e.link as usize].size,
        _ => e.size,
    };
    let mut buf = vec![0u8; (1 << 20).min(size as usize).max(1)];
    let mut off = 0u64;
    let res = (|| -> Result<()> {
        while off < size {
            let n = ar.read_at(id, off, &mut buf, cache as &dyn FrameSource)?;
            if n == 0 {
                return Err(Error::Other(format!("{}: data ends early", ar.path_of(id))));
            }
            crate::trace::timed(crate::trace::Stage::Write, n as u64, || {
                f.write_all(&buf[..n])
            })
            .ctx(target)?;
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
    let meta_from = match e.kind {
        EntryKind::Hardlink => &ar.index.entries[e.link as usize],
        _ => e,
    };
    finish_metadata(target, meta_from, root, warn);
    Ok(size)
}

fn remove_existing(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => Err(Error::Other(format!(
            "{}: exists and is a directory",
            p.display()
        ))),
        Ok(_) => fs::remove_file(p).ctx(p),
        Err(_) => Ok(()),
    }
}

fn set_owner(p: &Path, e: &Entry, root: bool, warn: &Warnings) {
    if root {
        if let Err(err) = std::os::unix::fs::lchown(p, Some(e.uid), Some(e.gid)) {
            warn.warn(format!("{}: owner not restored: {err}", p.display()));
        }
    }
}

fn set_time(p: &Path, e: &Entry, warn: &Warnings) {
    if let Err(err) = crate::sys::set_mtime(p, e.mtime_sec, e.mtime_nsec) {
        warn.warn(format!("{}: mtime not restored: {err}", p.display()));
    }
}

/// Owner and mtime: all a symlink keeps.
fn set_owner_and_time(p: &Path, e: &Entry, root: bool, warn: &Warnings) {
    set_owner(p, e, root, warn);
    set_time(p, e, warn);
}

fn finish_metadata(p: &Path, e: &Entry, root: bool, warn: &Warnings) {
    for (n, v) in &e.xattrs {
        if let Err(err) = crate::sys::set_xattr(p, n, v) {
            warn.warn(format!(
                "{}: xattr {} not restored: {err}",
                p.display(),
                String::from_utf8_lossy(n)
            ));
        }
    }
    // Owner before mode (chown clears setuid/setgid), mtime last.
    set_owner(p, e, root, warn);
    if let Err(err) = fs::set_permissions(p, fs::Permissions::from_mode(e.mode)) {
        warn.warn(format!("{}: mode not restored: {err}", p.display()));
    }
    set_time(p, e, warn);
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
        crate::format::index::check_path(rel).map_err(Error::Other)?;
        let mut end = 0;
        while let Some(pos) = rel[end..].iter().position(|&b| b == b'/') {
            let anc = &rel[..end + pos];
            end += pos + 1;
            if self.good_dirs.lock().contains(anc) {
                continue;
            }
            let p = self.dest.join(std::ffi::OsStr::from_bytes(anc));
            if self.symlinks.lock().contains(anc) {
                return Err(Error::Other(format!(
                    "{}: refused, it lies below a symlink of the archive",
                    String::from_utf8_lossy(rel)
                )));
            }
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::Other(format!(
                        "{}: refused, {} is not a directory",
                        String::from_utf8_lossy(rel),
                        p.display()
                    )))
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
mod tests {
    use super::*;

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
            // Decoded in the LRU, a batch's output and input, and one frame per writer.
            let held = p.lru + 2 * p.batch as u64 * frame + p.writers as u64 * frame;
            if cache >= 8 * frame {
                assert!(held <= cache, "{cache} {frame}: {held}");
            } else {
                // Smaller than a frame per share: one of each, whatever the budget.
                assert!(p.writers == 1 && p.batch == 1, "{cache} {frame}");
            }
        }
    }
}
