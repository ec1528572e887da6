//! Claiming `NAME` for a pack or an append (FORMAT.md section 11): the lock, what killed runs left
//! behind, and what exists already.
//!
//! * The lock: an exclusive `flock` on `NAME.lock`, held until the run ends; a second pack or append of
//!   the same NAME fails at once. The file records the first volume the run writes, so that after a
//!   SIGKILL the next run knows which volumes were its predecessor's unfinished work. It is removed when
//!   the run ends (a killed run leaves it, unlocked).
//! * `.partial` files of a killed run are removed when they start with a clc volume or parity header,
//!   and refused otherwise (never someone else's file).
//! * A plain pack refuses an existing complete archive (unless `--force`) and replaces an incomplete one
//!   of its own: volumes that all start with a clc volume header, none ending a complete generation.
//! * An append opens the archive, removes what a killed append left above the newest complete footer,
//!   and refuses a damaged or missing last volume, suggesting `clc repair`.
//! * An archive in object storage (`s3://…`) is locked by an object created only when absent
//!   ([`BucketLock`]) and has no `.partial` names (an object appears only when its upload completes);
//!   an append to it goes as for local files.

use crate::archive::generations::{self, Listed};
use crate::archive::Archive;
use crate::diag;
use crate::error::{Error, IoContext, Result};
use crate::format::volume::{VolumeHeader, MAGIC as VOLUME_MAGIC};
use crate::ids::VolumeNo;
use crate::parity::layout::MAGIC as PARITY_MAGIC;
use crate::volumes::{self, Name};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The lock on `NAME.lock`, removed when dropped.
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock on `base`, and returns the first volume that a killed run recorded, if one left
    /// its record behind.
    pub fn take(base: &Path) -> Result<(Lock, Option<u32>)> {
        let path = volumes::lock_path(base);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .ctx(&path)?;
            let mut text = String::new();
            if !crate::sys::try_lock_exclusive(&file).ctx(&path)? {
                let _ = file.read_to_string(&mut text);
                let pid = field(&text, "pid").map_or_else(String::new, |p| format!(" (pid {p})"));
                return Err(Error::Usage(format!(
                    "{}: another clc pack is writing this archive{pid}",
                    path.display()
                )));
            }
            // The holder before us may have removed the file after we opened it: lock the one in place.
            let same = std::fs::metadata(&path)
                .ok()
                .zip(file.metadata().ok())
                .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
            if !same {
                continue;
            }
            let _ = file.read_to_string(&mut text);
            let killed = field(&text, "first_volume").and_then(|v| v.parse().ok());
            return Ok((Lock { file, path }, killed));
        }
    }

    /// Records that this run writes volumes from `first` on.
    pub fn record(&mut self, first: u32) -> Result<()> {
        let line = format!("clc pack pid {} first_volume {first}\n", std::process::id());
        self.file.set_len(0).ctx(&self.path)?;
        self.file.rewind().ctx(&self.path)?;
        self.file.write_all(line.as_bytes()).ctx(&self.path)?;
        self.file.sync_data().ctx(&self.path)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Still holding the flock: a waiting run re-checks that the file in place is the one it locked.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The value after `key` in the lock file's line.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == key)?;
    words.next()
}

/// What a pack may write into.
pub struct Claim {
    /// The lock, held until the claim is dropped (local archives).
    pub lock: Option<Lock>,
    /// The lock object of an archive in object storage.
    pub bucket_lock: Option<BucketLock>,
    /// A new archive in object storage: the lock being taken (and, with `--force`, the old volumes
    /// removed) while the tree is scanned; [`PendingLock::wait`] waits for it.
    pub pending: PendingLock,
    /// The archive an append adds to (`None`: a new archive).
    pub previous: Option<Archive>,
    /// The first volume this run writes.
    pub first_volume: u32,
}

/// The lock of a new bucket archive being taken in the background: its requests overlap the scan.
/// Dropped before [`wait`](PendingLock::wait) (a failed scan), it waits for the thread and releases what it took.
#[derive(Default)]
pub struct PendingLock(Option<std::thread::JoinHandle<Result<BucketLock>>>);

impl PendingLock {
    /// Waits until the output is claimed: before anything is written. Locally (and for an append) it
    /// was at once (`None`); a new bucket archive's lock is taken while the tree is scanned, and is
    /// held until the returned value is dropped.
    pub fn wait(mut self) -> Result<Option<BucketLock>> {
        self.join().transpose()
    }

    fn join(&mut self) -> Option<Result<BucketLock>> {
        let h = self.0.take()?;
        Some(
            h.join()
                .unwrap_or_else(|_| Err(Error::Internal("taking the lock panicked".into()))),
        )
    }
}

impl Drop for PendingLock {
    fn drop(&mut self) {
        drop(self.join());
    }
}

/// Whether `p` starts with `magic`.
fn starts_with(p: &Path, magic: &[u8]) -> bool {
    let mut b = vec![0u8; magic.len()];
    volumes::open(p)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
        && b == magic
}

/// Takes `out` for writing. `append`: add a generation to the archive there (or start a versioned
/// one); otherwise a new archive, replacing an existing one only with `force`.
pub fn claim(out: &Path, force: bool, append: bool) -> Result<Claim> {
    if volumes::remote::is_remote(out) {
        return claim_remote(out, force, append);
    }
    let dir = volumes::dir_of(out);
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: output directory does not exist",
            dir.display()
        )));
    }
    let (lock, killed) = Lock::take(out)?;
    remove_partials(out)?;
    let vols = generations::list(out);
    let claim = if append && !vols.is_empty() {
        let previous = open_for_append(out, &vols, killed)?;
        let first_volume = previous.volume_paths().len() as u32 + 1;
        Claim {
            lock: Some(lock),
            bucket_lock: None,
            pending: PendingLock::default(),
            previous: Some(previous),
            first_volume,
        }
    } else {
        prepare_new(out, &vols, force)?;
        Claim {
            lock: Some(lock),
            bucket_lock: None,
            pending: PendingLock::default(),
            previous: None,
            first_volume: 1,
        }
    };
    let mut claim = claim;
    if let Some(l) = claim.lock.as_mut() {
        l.record(claim.first_volume)?;
    }
    Ok(claim)
}

/// `out` in object storage: listed first (which checks the settings and the bucket before anything is
/// scanned). An append is then locked with the object `NAME.lock` ([`BucketLock`]) and opens the
/// archive there as for local files. A new archive refuses an existing one (from that listing) unless
/// `force`; its lock is taken, and with `force` the objects whose header says they are that volume are
/// removed (as for local files), in a thread while the tree is scanned ([`PendingLock::wait`] waits for it
/// before anything is written). A volume that appears between the listing and the upload is not
/// replaced: each volume's upload checks that its name was free ([`volumes::create_out`]).
fn claim_remote(out: &Path, force: bool, append: bool) -> Result<Claim> {
    let listed = volumes::siblings(out).map_err(|e| Error::io(out, e))?;
    if append {
        let lock = BucketLock::take(out)?;
        let vols = generations::list(out);
        if !vols.is_empty() {
            // In a bucket a volume appears only when its upload completes and a generation's last
            // volume (index and footer) is completed last, so volumes above the newest footer are what
            // an interrupted append left (a newer generation whose last volume object was deleted later
            // is told apart by its parity set, which `open_for_append` looks for first).
            let previous = open_for_append(out, &vols, Some(u32::MAX))?;
            let first_volume = previous.volume_paths().len() as u32 + 1;
            return Ok(Claim {
                lock: None,
                bucket_lock: Some(lock),
                pending: PendingLock::default(),
                previous: Some(previous),
                first_volume,
            });
        }
        let present = |p: &Path| volumes::exists(p);
        check_new_remote(out, force, &present)?;
        if force {
            remove_own(out, present)?;
        }
        return Ok(Claim {
            lock: None,
            bucket_lock: Some(lock),
            pending: PendingLock::default(),
            previous: None,
            first_volume: 1,
        });
    }
    let names: std::collections::HashSet<PathBuf> = listed.into_iter().map(|(_, p)| p).collect();
    let present = move |p: &Path| names.contains(p);
    check_new_remote(out, force, &present)?;
    let base = out.to_path_buf();
    let pending = std::thread::spawn(move || {
        let lock = BucketLock::take(&base)?;
        if force {
            remove_own(&base, present)?;
        }
        crate::diag::trace::note("bucket lock taken");
        Ok(lock)
    });
    Ok(Claim {
        lock: None,
        bucket_lock: None,
        pending: PendingLock(Some(pending)),
        previous: None,
        first_volume: 1,
    })
}

/// A new archive in a bucket where `present` says which objects exist: refused when its first volume
/// does, unless `force`.
fn check_new_remote(out: &Path, force: bool, present: &dyn Fn(&Path) -> bool) -> Result<()> {
    let first_data = volumes::data_path(out, VolumeNo(1));
    let first_parity = volumes::parity_path(out, 1);
    let first = if !present(&first_data) && present(&first_parity) {
        &first_parity
    } else {
        &first_data
    };
    if present(first) && !force {
        return Err(Error::Usage(format!(
            "{}: already exists (use --force to overwrite)",
            diag::escape_path(first)
        )));
    }
    Ok(())
}

/// The lock of an archive in object storage: the object `NAME.lock`, created only when absent
/// ([`Store::create`](crate::storage::Store::create): `If-None-Match: *` on S3), so that of two packs
/// or appends of one archive exactly one goes on; removed when dropped. It names the run (pid, host,
/// start time). A run killed before it removes the lock leaves it, and the next run is refused with a
/// line naming the object, to be deleted by hand once no clc is writing (a bucket has no `flock` that
/// ends with its process).
pub struct BucketLock {
    path: PathBuf,
}

impl BucketLock {
    pub fn take(base: &Path) -> Result<BucketLock> {
        let path = volumes::lock_path(base);
        let (secs, nanos) = super::now();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        // Unique bytes: a create retried after a lost answer knows its own object by them.
        let text = format!(
            "clc pack pid {} host {} time {secs} nonce {nanos}\n",
            std::process::id(),
            host.trim()
        );
        match volumes::remote::create_whole(&path, text.as_bytes()) {
            Ok(()) => Ok(BucketLock { path }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let held = volumes::remote::read_head(&path, 200).unwrap_or_default();
                let held = String::from_utf8_lossy(&held);
                let who = match (
                    field(&held, "pid"),
                    field(&held, "host"),
                    field(&held, "time"),
                ) {
                    (Some(p), Some(h), Some(t)) => format!(" (pid {p} on {h}, started at {t} s)"),
                    _ => String::new(),
                };
                Err(Error::Usage(format!(
                    "{}: another clc pack is writing this archive{}; if none is (a killed run), \
                     delete this object",
                    diag::escape_path(&path),
                    diag::escape(who.as_bytes())
                )))
            }
            Err(e) => Err(Error::io(&path, e)),
        }
    }
}

impl Drop for BucketLock {
    fn drop(&mut self) {
        let _ = volumes::remove(&self.path);
    }
}

/// With `--force`: removes the volumes whose header says they are that `NAME.NNN` or `NAME.pNNN`,
/// after refusing (before anything is removed) when `NAME.001` or `NAME.p001` is there and not ours.
fn remove_own(out: &Path, present: impl Fn(&Path) -> bool) -> Result<()> {
    let head = crate::parity::layout::ParityHeader::FIXED;
    let ours = volumes::stale_volumes(out, head, |name, b| match name {
        volumes::Name::Data(n) => {
            VolumeHeader::decode(&b[..VolumeHeader::SIZE], "").is_ok_and(|h| h.number == n.0)
        }
        volumes::Name::Parity(k) => {
            crate::parity::layout::ParityHeader::decode_fixed(b, "").is_ok_and(|h| h.index == k)
        }
    });
    let (first_data, first_parity) = (
        volumes::data_path(out, VolumeNo(1)),
        volumes::parity_path(out, 1),
    );
    let occupied = [&first_data, &first_parity]
        .into_iter()
        .find(|p| present(p) && !ours.contains(p));
    if let Some(p) = occupied {
        return Err(Error::Usage(format!(
            "{}: exists and is not a volume of a clc archive; not removed (--force replaces only \
             an archive's own volumes)",
            diag::escape_path(p)
        )));
    }
    let removed = volumes::each_volume(&ours, volumes::remote::is_remote(out), |p| {
        volumes::remove(p).ctx(p)
    });
    removed.into_iter().collect()
}

/// Removes the `.partial` files a killed run left (those that start with a clc header, or are empty: a
/// run killed as it created one).
fn remove_partials(out: &Path) -> Result<()> {
    for (name, p) in volumes::list_partial(out) {
        let magic: &[u8] = match name {
            Name::Data(_) => &VOLUME_MAGIC,
            Name::Parity(_) => &PARITY_MAGIC[..6],
        };
        let empty = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file() && m.len() == 0);
        if !empty && !starts_with(&p, magic) {
            return Err(Error::Usage(format!(
                "{}: not a volume clc was writing; remove it or choose another name",
                p.display()
            )));
        }
        volumes::remove(&p).ctx(&p)?;
        diag::note(&format!(
            "removed {}: left by an interrupted pack",
            p.display()
        ));
    }
    Ok(())
}

/// A new archive: nothing of that name, or an incomplete archive of clc's own (replaced), or with `force`
/// an archive there: then only the files whose header says they are that `NAME.NNN` or `NAME.pNNN` are
/// removed; anything else named like a volume (a user's `NAME.2024`, a directory, a CL_Compressor
/// volume) is left alone, and a `NAME.001` or `NAME.p001` that is not a clc volume refuses the pack
/// before anything is removed.
fn prepare_new(out: &Path, vols: &[Listed], force: bool) -> Result<()> {
    let parity = volumes::list_parity(out);
    if force {
        return remove_own(out, |p| p.symlink_metadata().is_ok());
    }
    let own_incomplete = !vols.is_empty()
        && vols.iter().all(|v| starts_with(&v.path, &VOLUME_MAGIC))
        && matches!(generations::newest(vols), Ok(None));
    if !vols.is_empty() && !own_incomplete {
        return Err(Error::Usage(format!(
            "{}: already exists (use --force to overwrite)",
            diag::escape_path(&vols[0].path)
        )));
    }
    if vols.is_empty() && !parity.is_empty() {
        return Err(Error::Usage(format!(
            "{}: already exists (use --force to overwrite)",
            diag::escape_path(&parity[0].1)
        )));
    }
    if own_incomplete {
        diag::note(&format!(
            "replacing {} … {}: an incomplete archive left by an interrupted pack",
            diag::escape_path(&vols[0].path),
            diag::escape_path(&vols[vols.len() - 1].path)
        ));
    }
    let data = vols.iter().map(|v| v.path.clone());
    for p in data.chain(parity.into_iter().map(|(_, p)| p)) {
        volumes::remove(&p).ctx(&p)?;
    }
    Ok(())
}

/// The archive to append to, after removing what a killed append left above its newest complete footer.
fn open_for_append(out: &Path, vols: &[Listed], killed: Option<u32>) -> Result<Archive> {
    let first = volumes::data_path(out, VolumeNo(1));
    let refuse = |why: String| {
        Error::Usage(format!(
            "cannot append to {}: {why}; run `clc verify {}` (and `clc repair` if it has parity volumes)",
            out.display(),
            first.display()
        ))
    };
    let newest = generations::newest(vols)
        .map_err(|e| refuse(e.to_string()))?
        .ok_or_else(|| {
            refuse(format!(
                "{} has no clc footer (its last volume is damaged or missing)",
                vols[vols.len() - 1].path.display()
            ))
        })?;
    let top = newest.footer.volume_count;
    if let Some(p) = crate::parity::covers_past(out, top) {
        return Err(refuse(format!(
            "the parity volume {} covers data volumes after {}: the last volume of a newer snapshot is \
             missing",
            p.display(),
            volumes::data_path(out, VolumeNo(top)).display()
        )));
    }
    if !newest.stray.is_empty() {
        let id = newest.footer.archive_id;
        let top = vols[newest.at].number;
        let ours = killed.is_some_and(|f| f > top)
            && vols[newest.at + 1..]
                .iter()
                .all(|v| generations::header_id(&v.path) == Some(id));
        if !ours {
            return Err(refuse(format!(
                "{} lies after the newest complete footer ({}): the last volume of a newer snapshot is \
                 damaged or missing",
                newest.stray[0].display(),
                vols[newest.at].path.display()
            )));
        }
        for p in &newest.stray {
            volumes::remove(p).ctx(p)?;
            diag::note(&format!(
                "removed {}: left by an interrupted append",
                p.display()
            ));
        }
    }
    let ar = Archive::open(out).map_err(|e| refuse(e.to_string()))?;
    if ar.history().is_none() {
        return Err(Error::Usage(format!(
            "{}: a CL_Compressor archive cannot be appended to",
            first.display()
        )));
    }
    let problems = ar.volume_problems();
    if let Some(p) = problems.first() {
        return Err(refuse(p.clone()));
    }
    Ok(ar)
}
