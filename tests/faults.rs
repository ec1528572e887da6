//! Faults while packing: a source file that vanishes, shrinks, grows or turns unreadable mid-pack, a disk
//! that fills up, a pack killed with SIGKILL, and a file that changes between dedup hashing and packing.
//! None may leave an archive that opens as complete with wrong bytes: the pack warns and stores what it
//! read, or fails with one line naming the volume and leaves nothing that opens.
//!
//! Timing: the pack runs with tiny read-ahead and frame queues (64K buffers and frames, one batch in
//! flight), so when `NAME.001.partial` appears (at the first frame written; volumes get their names when
//! the archive is complete) the reader is at most about a megabyte into the stream; each victim is acted
//! on then, far before the reader gets to the point that matters.

mod common;

use clc::pack::stream::{self, Job, Msg};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// Starts `clc pack SRC -o OUT --cpu` with the slow pipe, in path order (plus `extra` config lines).
fn spawn_pack(t: &Path, src: &Path, out: &Path, extra: &str) -> Child {
    common::spawn_slow_pack(t, src, out, &[], &format!("STREAM_ORDER = path\n{extra}"))
}

use common::{finish, wait_for};

fn extract_all(first: &Path, dest: &Path) {
    let (code, _, err) = common::run(&[
        "extract".as_ref(),
        first.as_os_str(),
        "-o".as_ref(),
        dest.as_os_str(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = common::run(&["verify".as_ref(), first.as_os_str()]);
    assert_eq!(code, 0, "{out}{err}");
}

/// `first.txt` (`first` bytes of text, packed first) and `victim.txt`.
fn tree(t: &Path, first: usize, victim: &[u8]) -> (PathBuf, PathBuf) {
    let src = t.join("src");
    fs::create_dir(&src).unwrap();
    if first > 0 {
        fs::write(src.join("1-first.txt"), common::text(1, first)).unwrap();
    }
    let v = src.join("2-victim.txt");
    fs::write(&v, victim).unwrap();
    (src, v)
}

#[test]
fn a_file_that_vanishes_or_turns_unreadable_before_it_is_read_is_left_out() {
    for unreadable in [false, true] {
        let t = tempfile::tempdir().unwrap();
        let (src, victim) = tree(t.path(), 30 << 20, &common::noise(3, 1 << 20));
        let out = t.path().join("arc");
        let mut child = spawn_pack(t.path(), &src, &out, "");
        wait_for(&t.path().join("arc.001.partial"), &mut child);
        fs::remove_file(&victim).unwrap();
        if unreadable {
            // Opens (a directory does), then every read fails (EISDIR): an I/O error mid-pack.
            fs::create_dir(&victim).unwrap();
        }
        let (code, err) = finish(child);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("2-victim.txt") && err.contains("left out"),
            "{err}"
        );
        let dest = t.path().join("out");
        extract_all(&t.path().join("arc.001"), &dest);
        assert!(!dest.join("2-victim.txt").exists());
        assert!(fs::read(dest.join("1-first.txt")).unwrap() == common::text(1, 30 << 20));
    }
}

#[test]
fn a_file_that_shrinks_or_grows_while_read_is_stored_as_read() {
    let original = common::text(5, 50 << 20);
    for grow in [false, true] {
        let t = tempfile::tempdir().unwrap();
        let (src, victim) = tree(t.path(), 0, &original);
        let out = t.path().join("arc");
        let mut child = spawn_pack(t.path(), &src, &out, "");
        wait_for(&t.path().join("arc.001.partial"), &mut child);
        let expect = if grow {
            let more = common::noise(9, 5 << 20);
            let mut f = fs::OpenOptions::new().append(true).open(&victim).unwrap();
            std::io::Write::write_all(&mut f, &more).unwrap();
            [&original[..], &more].concat()
        } else {
            fs::OpenOptions::new()
                .write(true)
                .open(&victim)
                .unwrap()
                .set_len(10 << 20)
                .unwrap();
            original[..10 << 20].to_vec()
        };
        let (code, err) = finish(child);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("size changed while reading"), "{err}");
        let dest = t.path().join("out");
        extract_all(&t.path().join("arc.001"), &dest);
        let got = fs::read(dest.join("2-victim.txt")).unwrap();
        assert_eq!(got.len(), expect.len(), "grow: {grow}");
        assert!(
            got == expect,
            "stored bytes differ from the file's (grow: {grow})"
        );
    }
}

/// A small tmpfs, unmounted (lazily if busy) on drop.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let c = std::ffi::CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn a_full_disk_fails_with_the_volume_named_and_leaves_no_archive() {
    if !common::require(
        "ROOT",
        clc::sys::is_root(),
        "the full-disk test mounts a 2 MiB tmpfs and needs root",
    ) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let full = t.path().join("full");
    fs::create_dir(&full).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&full)
        .status();
    if !common::require(
        "ROOT",
        st.is_ok_and(|s| s.success()),
        "could not mount a tmpfs",
    ) {
        return;
    }
    let _guard = Tmpfs(full.clone());
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..4 {
        fs::write(src.join(format!("n{i}.bin")), common::noise(i, 1 << 20)).unwrap();
    }
    for volume_size in ["", "VOLUME_SIZE = 512K\n"] {
        let out = full.join("arc");
        let (code, err) = finish(spawn_pack(t.path(), &src, &out, volume_size));
        assert_eq!(code, 2, "{err}");
        assert!(
            err.lines().count() == 1
                && err.contains("No space left on device")
                && err.contains(&format!("{}.0", out.display())),
            "{err}"
        );
        let left: Vec<_> = fs::read_dir(&full).unwrap().flatten().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

/// FORMAT.md section 11: a pack killed by SIGKILL leaves only `.partial` files, so nothing opens; the
/// next pack of the same NAME recognises them as its own (they start with a clc volume header) and
/// replaces them, while a `.partial` name holding anyone else's bytes is refused, never removed.
#[test]
fn a_pack_killed_mid_way_leaves_nothing_that_opens_and_the_next_pack_replaces_it() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..6 {
        fs::write(src.join(format!("f{i}.txt")), common::text(i, 8 << 20)).unwrap();
    }
    let out = t.path().join("arc");
    let child = spawn_pack(t.path(), &src, &out, "VOLUME_SIZE = 1M\n");
    common::signal_when(&t.path().join("arc.003.partial"), child, libc::SIGKILL);
    let first = t.path().join("arc.001");
    assert!(
        !first.exists(),
        "a volume got its name before the archive was complete"
    );
    assert!(clc::archive::Archive::open(&first).is_err());
    let dest = t.path().join("dest");
    for args in [
        vec!["list".as_ref(), first.as_os_str()],
        vec!["verify".as_ref(), first.as_os_str()],
        vec![
            "extract".as_ref(),
            first.as_os_str(),
            "-o".as_ref(),
            dest.as_os_str(),
        ],
    ] {
        let (code, _, err) = common::run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    // The next pack replaces the leftovers (and says so) ...
    let (code, _, err) = common::run(&[
        "pack".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "-q".as_ref(),
        "--cpu".as_ref(),
        "--volume-size".as_ref(),
        "1M".as_ref(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("left by an interrupted pack"), "{err}");
    let partial: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
    extract_all(&first, &dest);
    // ... but never a file that is not clc's.
    fs::write(t.path().join("arc2.001.partial"), b"someone else's notes").unwrap();
    let other = t.path().join("arc2");
    let (code, _, err) = common::run(&[
        "pack".as_ref(),
        src.as_os_str(),
        "-o".as_ref(),
        other.as_os_str(),
        "--cpu".as_ref(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a volume clc was writing"), "{err}");
    assert_eq!(
        fs::read(t.path().join("arc2.001.partial")).unwrap(),
        b"someone else's notes"
    );
}

/// Runs the pack's reader over `jobs` and returns each scan entry's bytes as the sequencer would store
/// them (a failed job's bytes are dropped), with the warnings.
fn read_jobs(jobs: Vec<Job>) -> (std::collections::HashMap<usize, Vec<u8>>, Vec<String>) {
    let (got, _, warns) = read_jobs_with(&clc::Config::default(), jobs);
    (got, warns)
}

/// [`read_jobs`] with `cfg`; also the entries in the order their jobs ended. Asserts that the reader
/// sends every job's messages in stream order: job numbers never go back, a job's bytes come before its
/// end, and no job's messages follow its end.
#[allow(clippy::type_complexity)]
fn read_jobs_with(
    cfg: &clc::Config,
    jobs: Vec<Job>,
) -> (
    std::collections::HashMap<usize, Vec<u8>>,
    Vec<usize>,
    Vec<String>,
) {
    let warn = clc::diag::Warnings::new(true);
    let (tx, rx) = crossbeam_channel::unbounded();
    stream::reader(jobs, cfg, tx, &warn);
    let mut pending: std::collections::HashMap<u64, Vec<u8>> = Default::default();
    let mut got = std::collections::HashMap::new();
    let mut ended = Vec::new();
    let mut last: Option<(u64, bool)> = None;
    for m in rx.into_iter().flatten() {
        let (id, closes) = match &m {
            Msg::Data { job, .. } => (*job, false),
            Msg::End { job, .. } | Msg::Fail { job } => (*job, true),
        };
        if let Some((prev, closed)) = last {
            assert!(
                id > prev || (id == prev && !closed),
                "job {id} after job {prev} (closed: {closed})"
            );
        }
        last = Some((id, closes));
        match m {
            Msg::Data { job, data, .. } => pending.entry(job).or_default().extend(data),
            Msg::End { job, entries } => {
                let b = pending.remove(&job).unwrap_or_default();
                for e in entries {
                    got.insert(e, b.clone());
                    ended.push(e);
                }
            }
            Msg::Fail { job } => {
                pending.remove(&job);
            }
        }
    }
    (got, ended, warn.all())
}

/// Small files are read in windows spread over the reader threads, and large files streamed between
/// them: whatever thread finishes first, every file's bytes go out whole and in stream order, a file that
/// vanished since the scan is warned about and left out, and a file grown past a segment since the scan
/// is streamed whole.
#[test]
fn small_files_read_in_parallel_are_sent_whole_and_in_order() {
    let t = tempfile::tempdir().unwrap();
    // 64 KiB segments: files of 64 KiB and more are streamed; windows of 16 KiB (a quarter batch).
    let cfg = clc::Config {
        buffer_size: 64 << 10,
        num_readers: 4,
        ..Default::default()
    };
    let mut jobs = Vec::new();
    let mut want = std::collections::HashMap::new();
    for i in 0..400usize {
        let size = match i % 23 {
            0 => 0,
            7 => 70_000 + i,
            11 => 200_000,
            _ => (i * 997) % 20_000,
        };
        let bytes = common::text(i as u64, size);
        let p = t.path().join(format!("f{i}"));
        fs::write(&p, &bytes).unwrap();
        jobs.push(Job {
            entries: vec![i],
            sources: vec![clc::scan::Source::of(&p).unwrap()],
            expect: None,
            size: size as u64,
            run: i % 5 == 1,
            prev: None,
        });
        want.insert(i, bytes);
    }
    // Vanished since the scan; grown past a segment since the scan.
    fs::remove_file(t.path().join("f100")).unwrap();
    want.remove(&100);
    let grown = common::text(9, 100_000);
    fs::write(t.path().join("f200"), &grown).unwrap();
    want.insert(200, grown);
    let (got, ended, warns) = read_jobs_with(&cfg, jobs);
    let order: Vec<usize> = (0..400).filter(|&i| i != 100).collect();
    assert_eq!(ended, order, "entries end in stream order");
    for (i, bytes) in &want {
        assert!(got[i] == *bytes, "f{i}: {} bytes sent", got[i].len());
    }
    assert_eq!(warns.len(), 2, "{warns:?}");
    assert!(warns.iter().any(|w| w.contains("f100")), "{warns:?}");
    assert!(
        warns
            .iter()
            .any(|w| w.contains("f200") && w.contains("size changed")),
        "{warns:?}"
    );
}

/// Files `a`, `b`, `c` that were equal when the dedup stage hashed them, as one job.
fn dup_job(dir: &Path, size: usize) -> (Job, Vec<u8>) {
    let same = common::text(11, size);
    let paths: Vec<PathBuf> = ["a", "b", "c"].iter().map(|n| dir.join(n)).collect();
    for p in &paths {
        fs::write(p, &same).unwrap();
    }
    let job = Job {
        entries: vec![0, 1, 2],
        sources: paths
            .iter()
            .map(|p| clc::scan::Source::of(p).unwrap())
            .collect(),
        expect: Some(*blake3::hash(&same).as_bytes()),
        size: size as u64,
        run: false,
        prev: None,
    };
    (job, same)
}

#[test]
fn a_file_changed_after_dedup_hashing_never_gives_its_duplicates_its_bytes() {
    // Small (read whole) and large (streamed) files take different paths in the reader.
    for size in [10_000, 3 << 20] {
        let t = tempfile::tempdir().unwrap();
        let (job, same) = dup_job(t.path(), size);
        let changed = common::noise(12, size);
        fs::write(t.path().join("a"), &changed).unwrap();
        let (got, warns) = read_jobs(vec![job]);
        assert!(got[&0] == changed, "a keeps what was read of it");
        assert!(
            got[&1] == same && got[&2] == same,
            "b and c must keep their own bytes"
        );
        assert!(
            warns
                .iter()
                .any(|w| w.contains("changed since it was hashed")),
            "{warns:?}"
        );
    }
}

#[test]
fn regression_dedup_fallback_duplicate_changed() {
    // `a` vanished and `b` changed after hashing: the reader falls back to `b`, but must check it
    // against the dedup hash, or `c` would be stored with `b`'s new bytes (it was, before the fix).
    for size in [10_000, 3 << 20] {
        let t = tempfile::tempdir().unwrap();
        let (job, same) = dup_job(t.path(), size);
        fs::remove_file(t.path().join("a")).unwrap();
        let changed = common::noise(13, size);
        fs::write(t.path().join("b"), &changed).unwrap();
        let (got, warns) = read_jobs(vec![job]);
        assert!(!got.contains_key(&0), "a is left out");
        assert!(got[&1] == changed, "b keeps what was read of it");
        assert!(
            got[&2] == same,
            "c must keep its own bytes, not b's new ones"
        );
        assert!(warns.iter().any(|w| w.contains("left out")), "{warns:?}");
    }
}

/// Issue 14 item 10: a file replaced after the scan by a symlink to a 0600 secret of the same size was
/// read through the link and stored under the old name (mode 0644, exit 0). The reader now opens with
/// O_NOFOLLOW and checks the opened file is the one scanned (device and inode), small and streamed.
#[test]
fn regression_pack_never_reads_a_file_swapped_after_the_scan() {
    for size in [10_000, 3 << 20] {
        let t = tempfile::tempdir().unwrap();
        let secret = t.path().join("secret");
        fs::write(&secret, common::noise(21, size)).unwrap();
        let victim = t.path().join("victim");
        fs::write(&victim, common::text(22, size)).unwrap();
        let scanned = clc::scan::Source::of(&victim).unwrap();
        // Swapped: by a symlink to the secret, then by another file (a new inode) of the same size.
        fs::remove_file(&victim).unwrap();
        std::os::unix::fs::symlink(&secret, &victim).unwrap();
        let job = |source: clc::scan::Source| Job {
            entries: vec![0],
            sources: vec![source],
            expect: None,
            size: size as u64,
            run: false,
            prev: None,
        };
        let (got, warns) = read_jobs(vec![job(scanned.clone())]);
        assert!(
            !got.contains_key(&0),
            "{size}: the secret's bytes were stored"
        );
        assert!(
            warns.iter().any(|w| w.contains("(left out)")),
            "{size}: {warns:?}"
        );
        // (Made while the symlink still holds its inode, so it cannot reuse the scanned one.)
        let other = t.path().join("other");
        fs::write(&other, common::noise(23, size)).unwrap();
        fs::rename(&other, &victim).unwrap();
        assert_ne!(clc::scan::Source::of(&victim).unwrap(), scanned);
        let (got, warns) = read_jobs(vec![job(scanned)]);
        assert!(
            !got.contains_key(&0),
            "{size}: another file's bytes were stored"
        );
        assert!(
            warns.iter().any(|w| w.contains("replaced since the scan")),
            "{size}: {warns:?}"
        );
    }
}
