//! Hostile archives: well-sealed archives (checksums, zlib and footer all correct) whose index or frame
//! headers lie. Built by hand with `Index`, `VolumeWriter` and `FrameHeader`, then given to the binary.
//! `clc list`, `verify` and `extract` must refuse (or, for data damage, skip) with one clear line and exit
//! 2; never panic (exit 101) or abort; write nothing outside DEST (a sentinel directory the archive points
//! at stays empty); and never allocate by an unchecked length: every command runs under `ulimit -v` 2 GB.

mod common;

use clc::archive::VolumeWriter;
use clc::codec::Codec;
use clc::format::footer::Footer;
use clc::format::frame::FrameHeader;
use clc::format::index::{
    Chunk, ChunkId, ChunkRef, Content, Entry, EntryKind, Frame, FrameId, Index, NONE,
};
use clc::ids::VolumeNo;
use clc::volumes::data_path;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An archive to write: an index whose entries are added in the given order (not sorted: hostile
/// archives choose their order), and one RAW frame per file.
#[derive(Default)]
struct Spec {
    idx: Index,
    data: Vec<Vec<u8>>,
    /// Largest volume (0: 1 GiB).
    volume_size: u64,
}

impl Spec {
    fn new() -> Spec {
        let mut s = Spec::default();
        s.idx.params = vec![("format_version".into(), "1".into())];
        s
    }

    fn entry(&mut self, p: &[u8], kind: EntryKind) -> &mut Entry {
        let mode = if kind == EntryKind::Dir { 0o755 } else { 0o644 };
        self.idx.entries.push(Entry::new(p.to_vec(), kind, mode));
        self.idx.entries.last_mut().unwrap()
    }

    fn dir(&mut self, p: &str) -> &mut Self {
        self.entry(p.as_bytes(), EntryKind::Dir);
        self
    }

    /// A file whose bytes are one chunk of a frame of their own.
    fn file(&mut self, p: &[u8], data: &[u8]) -> &mut Self {
        let frame = self.data.len() as u32;
        self.data.push(data.to_vec());
        let content = self.idx.contents.len() as u64;
        self.idx.contents.push(Content {
            size: data.len() as u64,
            first_ref: self.idx.refs.len() as u64,
            ref_count: 1,
        });
        self.idx.refs.push(ChunkRef {
            file_offset: 0,
            chunk: ChunkId(self.idx.chunks.len() as u64),
        });
        self.idx.chunks.push(Chunk {
            frame: FrameId(frame),
            offset: 0,
            len: data.len() as u32,
        });
        let e = self.entry(p, EntryKind::File);
        e.size = data.len() as u64;
        e.link = content;
        self
    }

    fn symlink(&mut self, p: &str, target: &[u8]) -> &mut Self {
        let e = self.entry(p.as_bytes(), EntryKind::Symlink);
        e.target = target.to_vec();
        e.size = target.len() as u64;
        self
    }

    fn hardlink(&mut self, p: &str, to: u64) -> &mut Self {
        let e = self.entry(p.as_bytes(), EntryKind::Hardlink);
        e.link = to;
        self
    }

    /// Rewrites the index so that `files` file entries `d/NNNNNNN` (after the directory `d`) share one
    /// content of `refs` refs alternating between the first two chunks (frames 0 and 1, one byte each),
    /// and `contents` contents all share that one range of refs: the shapes of issue 14 items 3 and 4.
    fn shared(files: usize, refs: usize, contents: usize) -> (Spec, impl FnOnce(&mut Index)) {
        let mut s = Spec::new();
        s.file(b"a", b"x").file(b"b", b"y");
        let patch = move |i: &mut Index| {
            i.refs = (0..refs as u64)
                .map(|k| ChunkRef {
                    file_offset: k,
                    chunk: ChunkId(k % 2),
                })
                .collect();
            let ct = Content {
                size: refs as u64,
                first_ref: 0,
                ref_count: refs as u64,
            };
            i.contents = vec![ct; contents.max(1)];
            i.entries = vec![Entry::new(b"d".to_vec(), EntryKind::Dir, 0o755)];
            for k in 0..files {
                let mut e = Entry::new(format!("d/{k:07}").into_bytes(), EntryKind::File, 0o644);
                e.size = refs as u64;
                e.link = (k % contents.max(1)) as u64;
                i.entries.push(e);
            }
        };
        (s, patch)
    }

    /// Writes `base.001`: the frames (headers as they should be), then `patch` edits the index (the frame
    /// table is filled in by then) and `patch_raw` its encoded bytes before they are sealed.
    fn write(
        &self,
        base: &Path,
        patch: impl FnOnce(&mut Index),
        patch_raw: impl FnOnce(&mut Vec<u8>),
    ) -> PathBuf {
        let max = if self.volume_size == 0 {
            1 << 30
        } else {
            self.volume_size
        };
        // Version 3: these hand-made indexes have no paged tree (a version 5 blob ends in one).
        let mut vw = VolumeWriter::new(base, max, [0x5a; 16], 3);
        let mut idx = self.idx.clone();
        for (i, d) in self.data.iter().enumerate() {
            let h = FrameHeader {
                codec: Codec::Raw,
                flags: 0,
                raw_len: d.len() as u32,
                stored_len: d.len() as u32,
                checksum: clc::format::checksum(d),
                frame_id: i as u32,
            };
            let (volume, offset) = vw.write_frame(&h, d).unwrap();
            idx.frames.push(Frame {
                volume,
                offset,
                stored_len: h.stored_len,
                raw_len: h.raw_len,
                codec: h.codec,
                flags: 0,
                checksum: Some(h.checksum),
            });
        }
        patch(&mut idx);
        let mut raw = idx.encode();
        patch_raw(&mut raw);
        vw.finish(&raw).unwrap().swap_remove(0)
    }

    fn plain(&self, base: &Path) -> PathBuf {
        self.write(base, |_| {}, |_| {})
    }
}

/// Rewrites the footer of `vol` (its check recomputed).
fn patch_footer(vol: &Path, f: impl FnOnce(&mut Footer)) {
    let mut b = fs::read(vol).unwrap();
    let at = b.len() - Footer::SIZE;
    let mut footer = Footer::decode(&b[at..], "t", b.len() as u64).unwrap();
    f(&mut footer);
    b[at..].copy_from_slice(&footer.encode());
    fs::write(vol, b).unwrap();
}

/// A case's directory: the archive goes in `arc.*`, extraction into `dest`; `sentinel` is where hostile
/// entries point, and must stay empty.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sentinel")).unwrap();
        Case { dir }
    }
    fn base(&self) -> PathBuf {
        self.dir.path().join("arc")
    }
    fn sentinel(&self) -> PathBuf {
        self.dir.path().join("sentinel")
    }
    fn dest(&self) -> PathBuf {
        self.dir.path().join("dest")
    }
}

/// Runs clc under a 2 GB address-space limit; returns (exit code, stdout, stderr). A signal (an abort
/// from a failed allocation) or a panic (101) fails the test here.
fn clc_limited(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let o = Command::new("bash")
        .arg("-c")
        .arg("ulimit -v 2000000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_clc"))
        .args(args)
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    let code = o.status.code();
    assert!(
        code.is_some() && code != Some(101) && code != Some(134),
        "clc {args:?} crashed: {:?}\nstdout: {out}\nstderr: {err}",
        o.status
    );
    (code.unwrap(), out, err)
}

/// What the three commands must do with a case.
enum Expect<'a> {
    /// The archive does not open: every command exits 2 with one stderr line containing this.
    Refused(&'a str),
    /// It opens, but some data is bad: list works, verify reports it (exit 2), extract fails with one line;
    /// both mention this.
    DataDamaged(&'a str),
}

fn check(case: &Case, first: &Path, expect: Expect) {
    let before = listing(case.dir.path());
    let (code, _, err) = clc_limited(&["list".as_ref(), first.as_os_str()]);
    let (vcode, vout, verr) = clc_limited(&["verify".as_ref(), first.as_os_str()]);
    let dest = case.dest();
    // --cpu: without a GPU the default device choice adds a line saying so; these tests count lines.
    let (xcode, _, xerr) = clc_limited(&[
        "extract".as_ref(),
        first.as_os_str(),
        "-o".as_ref(),
        dest.as_os_str(),
        "--cpu".as_ref(),
    ]);
    match expect {
        Expect::Refused(msg) => {
            for (c, e) in [(code, &err), (vcode, &verr), (xcode, &xerr)] {
                assert_eq!(c, 2, "{e}");
                assert!(
                    e.lines().count() == 1 && e.starts_with("clc: error: ") && e.contains(msg),
                    "wanted one line with {msg:?}, got {e:?}"
                );
            }
        }
        Expect::DataDamaged(msg) => {
            assert_eq!(code, 0, "list: {err}");
            assert_eq!(vcode, 2, "verify: {vout}{verr}");
            assert!(vout.contains("DAMAGED") && vout.contains(msg), "{vout}");
            assert_eq!(xcode, 2, "extract: {xerr}");
            assert!(
                xerr.lines().count() == 1 && xerr.contains(msg),
                "wanted one line with {msg:?}, got {xerr:?}"
            );
        }
    }
    assert_eq!(
        fs::read_dir(case.sentinel()).unwrap().count(),
        0,
        "something was written into the sentinel"
    );
    let mut after = listing(case.dir.path());
    after.retain(|p| !p.starts_with("dest"));
    assert_eq!(before, after, "something was written outside DEST");
}

/// Every path under `root`, relative, sorted (symlinks not followed).
fn listing(root: &Path) -> Vec<PathBuf> {
    let mut out = common::walk(root);
    out.retain(|p| !p.starts_with("dest"));
    out
}

/// One lie told by the index, and what the error must say.
type Lie = (fn(&mut Index), &'static str);

fn two_files() -> Spec {
    let mut s = Spec::new();
    s.dir("d").file(b"d/a", b"hello").file(b"d/b", b"world!");
    s
}

#[test]
fn a_sound_hand_made_archive_works() {
    // The builder itself makes archives clc reads back: the other cases differ from this by one lie.
    let case = Case::new();
    let mut s = two_files();
    s.symlink("l", b"d/a").hardlink("m", 1);
    let first = s.plain(&case.base());
    let (code, out, err) = clc_limited(&["list".as_ref(), first.as_os_str()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("d/a") && out.contains("link to d/a"), "{out}");
    let dest = case.dest();
    let (code, _, err) = clc_limited(&[
        "extract".as_ref(),
        first.as_os_str(),
        "-o".as_ref(),
        dest.as_os_str(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(fs::read(dest.join("d/b")).unwrap(), b"world!");
    assert_eq!(fs::metadata(dest.join("m")).unwrap().nlink(), 2);
}

#[test]
fn dotdot_and_absolute_paths_are_refused() {
    for bad in [
        &b"../escape"[..],
        b"d/../../escape",
        b"/ABS/escape",
        b"d//x",
        b"./x",
    ] {
        let case = Case::new();
        let abs = case.sentinel().join("escape");
        let p = if bad.starts_with(b"/ABS") {
            abs.to_str().unwrap().as_bytes().to_vec()
        } else {
            bad.to_vec()
        };
        let mut s = Spec::new();
        s.dir("d").file(&p, b"evil");
        let first = s.write(
            &case.base(),
            |i| i.entries.sort_by(|a, b| a.path.cmp(&b.path)),
            |_| {},
        );
        check(&case, &first, Expect::Refused("index: entry"));
    }
}

#[test]
fn entries_beneath_a_symlink_are_refused() {
    // evil -> SENTINEL, then evil/file: written through, it would land in the sentinel.
    let case = Case::new();
    let mut s = Spec::new();
    let target = case.sentinel();
    s.symlink("evil", target.to_str().unwrap().as_bytes())
        .file(b"evil/file", b"through the link")
        .dir("evil/sub");
    let first = s.plain(&case.base());
    check(&case, &first, Expect::Refused("is not a directory"));
    // The same below a file, and below a parent that is not in the archive at all.
    for (parent, kind) in [("f", EntryKind::File), ("missing", EntryKind::Dir)] {
        let case = Case::new();
        let mut s = Spec::new();
        if kind == EntryKind::File {
            s.file(parent.as_bytes(), b"x");
        }
        s.file(format!("{parent}/child").as_bytes(), b"y");
        let first = s.plain(&case.base());
        check(&case, &first, Expect::Refused("parent"));
    }
}

#[test]
fn duplicate_and_unsorted_paths_are_refused() {
    let case = Case::new();
    let mut s = two_files();
    s.file(b"d/a", b"again");
    check(
        &case,
        &s.plain(&case.base()),
        Expect::Refused("duplicate path"),
    );
    let case = Case::new();
    let mut s = Spec::new();
    s.file(b"z", b"1").file(b"a", b"2");
    check(
        &case,
        &s.plain(&case.base()),
        Expect::Refused("out of order"),
    );
}

#[test]
fn lengths_and_offsets_past_the_end() {
    // A frame whose offset lies past the end of its volume.
    let case = Case::new();
    let first = two_files().write(&case.base(), |i| i.frames[1].offset = 1 << 40, |_| {});
    check(&case, &first, Expect::DataDamaged("frame 1"));
    // A frame claiming 4 GiB of stored bytes: refused before anything is allocated by it.
    let case = Case::new();
    let first = two_files().write(
        &case.base(),
        |i| {
            i.frames[0].codec = Codec::LzExt3;
            i.frames[0].stored_len = u32::MAX;
        },
        |_| {},
    );
    check(&case, &first, Expect::Refused("stored length"));
    // A chunk reaching past its frame; a file larger than its content; a content larger than its refs.
    let lies: [Lie; 4] = [
        (|i| i.chunks[0].len = 6, "lies outside frame"),
        (|i| i.chunks[1].offset = u32::MAX, "lies outside frame"),
        (|i| i.entries[1].size = 1 << 50, "size differs"),
        (
            |i| {
                i.contents[0].size = u64::MAX;
                i.entries[1].size = u64::MAX
            },
            "refs cover",
        ),
    ];
    for (lie, msg) in lies {
        let case = Case::new();
        let first = two_files().write(&case.base(), lie, |_| {});
        check(&case, &first, Expect::Refused(msg));
    }
}

#[test]
fn broken_cross_references_are_refused() {
    let lies: [Lie; 7] = [
        (|i| i.chunks[0].frame = FrameId(7), "missing frame"),
        (|i| i.refs[0].chunk = ChunkId(u64::MAX), "missing chunk"),
        (|i| i.entries[1].link = 99, "missing content"),
        (|i| i.contents[1].first_ref = u64::MAX, "refs out of range"),
        (
            |i| i.frames[0].volume = clc::ids::VolumeNo(2),
            "names volume 2",
        ),
        // Refs that overlap: the second content starts its second ref inside its first.
        (
            |i| {
                i.refs.push(ChunkRef {
                    file_offset: 3,
                    chunk: ChunkId(0),
                });
                i.contents[1].first_ref = 1;
                i.contents[1].ref_count = 2;
            },
            "gap or overlap",
        ),
        (|i| i.frames[0].raw_len = (16 << 20) + 1, "raw length"),
    ];
    for (lie, msg) in lies {
        let case = Case::new();
        let first = two_files().write(&case.base(), lie, |_| {});
        check(&case, &first, Expect::Refused(msg));
    }
}

#[test]
fn hardlinks_to_later_entries_or_directories_are_refused() {
    for (to, msg) in [
        (4u64, "later entry"),
        (0, "does not name a file"),
        (NONE, "later entry"),
    ] {
        let case = Case::new();
        let mut s = two_files();
        s.hardlink("h", to).file(b"z", b"later");
        check(&case, &s.plain(&case.base()), Expect::Refused(msg));
    }
}

#[test]
fn indexes_that_claim_gigabytes_are_refused() {
    // 2^40 entries (the count patched in the encoded index, then sealed).
    let case = Case::new();
    let first = two_files().write(
        &case.base(),
        |_| {},
        |raw| {
            // magic, params (u32 count, "format_version", "1"), then the entry count.
            let at = 8 + 4 + 4 + 14 + 4 + 1;
            raw[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        },
    );
    check(
        &case,
        &first,
        Expect::Refused("count 1099511627776 exceeds"),
    );
    // Footers claiming an index of 2^40 bytes, and of just under the 4 GiB cap.
    for (claim, msg) in [(1u64 << 40, "index claims"), ((4 << 30) - 1, "index")] {
        let case = Case::new();
        let first = two_files().plain(&case.base());
        patch_footer(&first, |f| f.index_raw_len = claim);
        check(&case, &first, Expect::Refused(msg));
    }
    // A footer claiming 2^32 - 1 volumes, in a file named as that volume.
    let case = Case::new();
    let first = two_files().plain(&case.base());
    patch_footer(&first, |f| f.volume_count = u32::MAX);
    let last = data_path(&case.base(), VolumeNo(u32::MAX));
    fs::rename(&first, &last).unwrap();
    check(&case, &last, Expect::Refused("volumes"));
}

#[test]
fn frame_headers_that_disagree_with_the_index() {
    let lies: [Lie; 3] = [
        (
            |i| i.frames[1].checksum = Some(1),
            "disagrees with the index",
        ),
        (
            |i| i.frames[1].codec = Codec::Lz4,
            "disagrees with the index",
        ),
        (
            |i| {
                i.frames[1].stored_len = 5;
                i.frames[1].raw_len = 5;
                i.chunks[1].len = 5;
                i.contents[1].size = 5;
                i.entries[2].size = 5;
            },
            "disagrees with the index",
        ),
    ];
    for (lie, msg) in lies {
        let case = Case::new();
        let first = two_files().write(&case.base(), lie, |_| {});
        check(&case, &first, Expect::DataDamaged(msg));
    }
    // A frame whose header is damaged but whose index entry is sound.
    let case = Case::new();
    let first = two_files().plain(&case.base());
    let mut b = fs::read(&first).unwrap();
    let at = clc::format::volume::VolumeHeader::SIZE + FrameHeader::SIZE + 5 + 9;
    b[at] ^= 1;
    fs::write(&first, b).unwrap();
    check(
        &case,
        &first,
        Expect::DataDamaged("header checksum mismatch"),
    );
}

#[test]
fn a_frame_of_16_mib_plus_one_is_refused() {
    let case = Case::new();
    let mut s = Spec::new();
    s.file(b"big", &vec![7u8; (16 << 20) + 1]);
    check(&case, &s.plain(&case.base()), Expect::Refused("raw length"));
}

#[test]
fn extract_never_links_to_a_file_outside_dest() {
    // DEST already holds `d -> SENTINEL`, and SENTINEL/a exists. The archive has d/a and a hardlink h to
    // it, with and without an entry for the directory d. d/a cannot be written (it lies below a
    // symlink); h must not become a link to SENTINEL/a, even with --keep-going.
    for with_dir in [false, true] {
        let case = Case::new();
        let mut s = Spec::new();
        if with_dir {
            s.dir("d");
        }
        s.file(b"d/a", b"archived");
        s.hardlink("h", with_dir as u64);
        let first = s.plain(&case.base());
        let dest = case.dest();
        fs::create_dir(&dest).unwrap();
        std::os::unix::fs::symlink(case.sentinel(), dest.join("d")).unwrap();
        let outside = case.sentinel().join("a");
        fs::write(&outside, b"outside").unwrap();
        let (code, _, err) = clc_limited(&[
            "extract".as_ref(),
            first.as_os_str(),
            "-o".as_ref(),
            dest.as_os_str(),
            "--keep-going".as_ref(),
        ]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("not a directory") || err.contains("parent d is not in the archive"),
            "{err}"
        );
        assert_eq!(
            fs::metadata(&outside).unwrap().nlink(),
            1,
            "linked outside: {err}"
        );
        assert_eq!(fs::read(&outside).unwrap(), b"outside");
        assert_eq!(fs::read_dir(case.sentinel()).unwrap().count(), 1);
    }
}

// ---------------------------------------------------------------------------------------------------
// Issue 14: archives that exhaust memory or CPU, a shared mount, stray files, many volumes, and the
// extract and pack defects found with them. One named test per item; docs/RELIABILITY.md section 5.

use std::ffi::{OsStr, OsString};
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs clc under `ulimit -v 2000000` (and `ulimit -n files` when given), with `env` set, reading its
/// output as it comes; fails the test if it runs past `limit` (it is killed: a hang), panics or aborts.
fn clc_within(
    args: &[&OsStr],
    files: Option<u32>,
    env: &[(&str, &OsStr)],
    limit: Duration,
) -> (i32, String, String) {
    let n = files.map_or(String::new(), |n| format!("ulimit -n {n}; "));
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -v 2000000; {n}exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_clc"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("clc {args:?} still running after {limit:?}: it hangs or is not linear");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let code = status.code();
    assert!(
        code.is_some() && code != Some(101) && code != Some(134),
        "clc {args:?} crashed: {status:?}\nstdout: {out}\nstderr: {err}"
    );
    (code.unwrap(), out, err)
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

const MINUTE: Duration = Duration::from_secs(60);

/// Exits 2 with one line containing `msg`, for list, verify and extract.
fn refused_within(first: &Path, dest: &Path, msg: &str) {
    for args in [
        vec![os("list"), first.as_os_str()],
        vec![os("verify"), first.as_os_str()],
        vec![
            os("extract"),
            first.as_os_str(),
            os("-o"),
            dest.as_os_str(),
            os("--cpu"),
        ],
    ] {
        let (code, _, err) = clc_within(&args, None, &[], MINUTE);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.lines().count() == 1 && err.contains(msg),
            "{args:?}: wanted one line with {msg:?}, got {err:?}"
        );
    }
}

fn zlib(b: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut z, b).unwrap();
    z.finish().unwrap()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut z, b).unwrap();
    z.finish().unwrap()
}

/// A one-volume CL_Compressor archive `base.001`: ten bytes of frame, the index blob, the 24-byte footer.
fn legacy_archive(base: &Path, blob: &[u8], magic: &[u8; 8]) -> PathBuf {
    let p = data_path(base, VolumeNo(1));
    let mut v = b"0123456789".to_vec();
    let at = v.len() as u64;
    v.extend_from_slice(blob);
    v.extend_from_slice(&at.to_le_bytes());
    v.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    v.extend_from_slice(magic);
    fs::write(&p, v).unwrap();
    p
}

/// The byte position of `what` in `raw` (the first).
fn find(raw: &[u8], what: &[u8]) -> usize {
    raw.windows(what.len()).position(|w| w == what).unwrap()
}

#[test]
fn regression_index_bombs_are_refused_before_they_are_sized() {
    // An entry claiming 40 million xattrs, followed by 64 MiB of zeros (so that the count fits the bytes
    // left): the index inflates 1000:1, past what its stored length can hold; refused by the footer.
    let bomb = |pad: usize| {
        move |raw: &mut Vec<u8>| {
            let at = find(raw, b"\x01\0\0\0\x06\0\0\0user.x");
            raw[at..at + 4].copy_from_slice(&40_000_000u32.to_le_bytes());
            raw.extend(std::iter::repeat_n(0u8, pad));
        }
    };
    let with_xattr = || {
        let mut s = two_files();
        s.idx.entries[1]
            .xattrs
            .push((b"user.x".to_vec(), b"1".to_vec()));
        s
    };
    let case = Case::new();
    let first = with_xattr().write(&case.base(), |_| {}, bomb(64 << 20));
    refused_within(&first, &case.dest(), "index claims");
    // Within that bound (4 MiB of zeros), the count itself is refused before anything is sized by it.
    let case = Case::new();
    let first = with_xattr().write(&case.base(), |_| {}, bomb(4 << 20));
    refused_within(&first, &case.dest(), "40000000 xattrs in one entry");
    // Extended attributes Linux could not have given: the index is damaged.
    for (name, value, msg) in [
        (&b""[..], &b"v"[..], "of 0 bytes"),
        (&[b'n'; 256][..], &b""[..], "of 256 bytes"),
        (b"user.big", &[0u8; 65537][..], "value of 65537 bytes"),
    ] {
        let case = Case::new();
        let mut s = two_files();
        s.idx.entries[1]
            .xattrs
            .push((name.to_vec(), value.to_vec()));
        check(&case, &s.plain(&case.base()), Expect::Refused(msg));
    }
    // CL_Compressor: a GPU_IDX2 payload of 64 MiB of newlines, a GPU_IDX1 one of `[],[],…`: refused
    // while inflating, at 64 × their stored length + 16 MiB.
    let case = Case::new();
    let mut lines =
        br#"{"version": 2, "type": "GPU_IDX2", "params": {}, "count_files": 0, "count_frames": 0}"#
            .to_vec();
    lines.extend(std::iter::repeat_n(b'\n', 64 << 20));
    let first = legacy_archive(&case.base(), &gzip(&lines), b"GPU_IDX2");
    refused_within(&first, &case.dest(), "inflates past");
    let case = Case::new();
    let mut json = br#"{"params": {}, "frames": [], "files": ["#.to_vec();
    json.extend("[],".repeat(20 << 20).bytes());
    json.extend_from_slice(b"[]]}");
    let first = legacy_archive(&case.base(), &zlib(&json), b"GPU_IDX1");
    refused_within(&first, &case.dest(), "inflates past");
    // Below the bound (3 million empty arrays), it parses and is refused for what it holds.
    let case = Case::new();
    let mut json = br#"{"params": {}, "frames": [], "files": ["#.to_vec();
    json.extend("[],".repeat(3 << 20).bytes());
    json.extend_from_slice(b"[]]}");
    let first = legacy_archive(&case.base(), &zlib(&json), b"GPU_IDX1");
    refused_within(&first, &case.dest(), "file 0");
}

#[test]
fn regression_verify_of_files_sharing_one_long_content_is_linear() {
    // 8 000 files sharing one content of 8 000 refs alternating between two frames (a 44 KB archive);
    // frame 1's header disagrees with the index, so verify names the files it touches.
    let case = Case::new();
    let (s, shape) = Spec::shared(8_000, 8_000, 1);
    let first = s.write(
        &case.base(),
        |i| {
            shape(i);
            i.frames[1].checksum = Some(1);
        },
        |_| {},
    );
    let t0 = Instant::now();
    let (code, out, err) = clc_within(&[os("verify"), first.as_os_str()], None, &[], MINUTE);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("files: d/0000000, d/0000001, d/0000002, d/0000003, d/0000004 and 7995 more"),
        "{out}"
    );
    let dest = case.dest();
    let (code, _, err) = clc_within(
        &[
            os("extract"),
            first.as_os_str(),
            os("-o"),
            dest.as_os_str(),
            os("d/0000007"),
        ],
        None,
        &[],
        MINUTE,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("disagrees with the index"), "{err}");
    eprintln!("8 000 x 8 000: verify and extract in {:?}", t0.elapsed());
}

#[test]
fn regression_contents_sharing_one_ref_range_open_in_linear_time() {
    // 200 000 contents sharing one range of 200 000 refs: 4 × 10^10 ref visits when each content's refs
    // were walked at open (80 000 × 80 000 took 9 s); every command opens through that check.
    let case = Case::new();
    let (s, shape) = Spec::shared(200_000, 200_000, 200_000);
    let first = s.write(&case.base(), shape, |_| {});
    let t0 = Instant::now();
    let (code, out, err) = clc_within(&[os("list"), first.as_os_str()], None, &[], MINUTE);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 200_001);
    let (code, out, err) = clc_within(&[os("verify"), first.as_os_str()], None, &[], MINUTE);
    assert_eq!(code, 0, "{out}{err}");
    eprintln!("200 000 x 200 000: list and verify in {:?}", t0.elapsed());
}

/// Packs `src` into `out` (small volumes) through the binary.
fn pack(src: &Path, out: &Path, force: bool) -> (i32, String) {
    let mut args = vec![
        os("pack"),
        src.as_os_str(),
        os("-o"),
        out.as_os_str(),
        os("--volume-size"),
        os("64K"),
        os("--cpu"),
        os("-q"),
    ];
    if force {
        args.push(os("--force"));
    }
    let (code, _, err) = clc_within(&args, None, &[], MINUTE);
    (code, err)
}

/// A source tree of a few hundred KB of noise (several 64K volumes).
fn noise_tree(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/a.bin"), common::noise(1, 150_000)).unwrap();
    fs::write(src.join("b.bin"), common::noise(2, 100_000)).unwrap();
    fs::write(src.join("c.txt"), b"small").unwrap();
    src
}

fn mkfifo(p: &Path) {
    clc::sys::mknod(p, libc::S_IFIFO, 0o644, 0).unwrap();
}

#[test]
fn regression_pack_force_removes_only_our_volumes() {
    let t = tempfile::tempdir().unwrap();
    let src = noise_tree(t.path());
    let out = t.path().join("backup");
    assert_eq!(pack(&src, &out, false).0, 0);
    assert!(data_path(&out, VolumeNo(3)).exists());
    // The user's own files named like volumes, and a directory.
    let user = [t.path().join("backup.2024"), t.path().join("backup.p2024")];
    for p in &user {
        fs::write(p, b"my own file").unwrap();
    }
    fs::create_dir(t.path().join("backup.2023")).unwrap();
    fs::write(t.path().join("backup.2023/inside"), b"x").unwrap();
    let (code, err) = pack(&src, &out, true);
    assert_eq!(code, 0, "{err}");
    for p in &user {
        assert_eq!(fs::read(p).unwrap(), b"my own file", "{}", p.display());
    }
    assert!(t.path().join("backup.2023/inside").exists());
    let first = data_path(&out, VolumeNo(1));
    let (code, out_text, err) = clc_within(&[os("verify"), first.as_os_str()], None, &[], MINUTE);
    assert_eq!(code, 0, "{out_text}{err}");
    // NAME.001 is not ours: refused before anything is removed.
    let old2 = fs::read(data_path(&out, VolumeNo(2))).unwrap();
    fs::write(&first, b"not a volume").unwrap();
    let (code, err) = pack(&src, &out, true);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a volume of a clc archive"), "{err}");
    assert_eq!(fs::read(&first).unwrap(), b"not a volume");
    assert_eq!(fs::read(data_path(&out, VolumeNo(2))).unwrap(), old2);
}

#[test]
fn regression_stray_files_beside_an_archive_are_ignored() {
    let t = tempfile::tempdir().unwrap();
    let src = noise_tree(t.path());
    let out = t.path().join("backup");
    assert_eq!(pack(&src, &out, false).0, 0);
    fs::write(t.path().join("backup.2024"), b"a user's file").unwrap();
    fs::create_dir(t.path().join("backup.2023")).unwrap();
    mkfifo(&t.path().join("backup.999"));
    mkfifo(&t.path().join("backup.p001"));
    fs::write(t.path().join("backup.0001"), b"not canonical").unwrap();
    let first = data_path(&out, VolumeNo(1));
    let dest = t.path().join("dest");
    let limit = Duration::from_secs(30);
    let (code, list, err) = clc_within(&[os("list"), first.as_os_str()], None, &[], limit);
    assert_eq!(code, 0, "list: {err}");
    assert!(list.contains("d/a.bin"), "{list}");
    let (code, v, err) = clc_within(&[os("verify"), first.as_os_str()], None, &[], limit);
    assert_eq!(code, 0, "verify: {v}{err}");
    let x = [os("extract"), first.as_os_str(), os("-o"), dest.as_os_str()];
    let (code, _, err) = clc_within(&x, None, &[], limit);
    assert_eq!(code, 0, "extract: {err}");
    assert_eq!(
        fs::read(dest.join("b.bin")).unwrap(),
        common::noise(2, 100_000)
    );
}

#[test]
fn regression_many_volumes_within_a_bounded_set_of_open_files() {
    // 1 500 volumes (one frame each) under `ulimit -n 1024`: every volume used to be opened at once.
    // (VOLUME_SIZE is a hard limit since format version 3: 200-byte volumes hold one 100-byte frame each,
    // and the last ones the index and footer.)
    let case = Case::new();
    let mut s = Spec::new();
    s.volume_size = 200;
    for i in 0..1_500u32 {
        s.file(format!("f{i:05}").as_bytes(), &i.to_le_bytes().repeat(25));
    }
    let first = s.plain(&case.base());
    assert!(data_path(&case.base(), VolumeNo(1_500)).exists());
    let (code, out, err) = clc_within(&[os("verify"), first.as_os_str()], Some(1024), &[], MINUTE);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok: 1500 frames"), "{out}");
    let dest = case.dest();
    let x = [
        os("extract"),
        first.as_os_str(),
        os("-o"),
        dest.as_os_str(),
        os("--cpu"),
    ];
    let (code, _, err) = clc_within(&x, Some(1024), &[], MINUTE);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        fs::read(dest.join("f01499")).unwrap(),
        1_499u32.to_le_bytes().repeat(25)
    );
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 1_500);
}

#[test]
fn regression_keep_going_restores_every_sibling() {
    let case = Case::new();
    let long_name = format!("e/{}", "n".repeat(300));
    let mut s = Spec::new();
    s.dir("a").file(b"a/good1", b"one");
    s.symlink("b-empty", b"")
        .symlink("c-nul", b"x\0y")
        .symlink("d-long", &[b't'; 5000]);
    s.dir("e").file(long_name.as_bytes(), b"too long a name");
    s.hardlink("h", 1);
    s.dir("z").file(b"z/good2", b"two");
    let first = s.plain(&case.base());
    let dest = case.dest();
    let x = |more: &[&OsStr]| {
        let mut a = vec![
            os("extract"),
            first.as_os_str(),
            os("-o"),
            dest.as_os_str(),
            os("--cpu"),
        ];
        a.extend_from_slice(more);
        clc_within(&a, None, &[], MINUTE)
    };
    // Plain extract stops at the first bad entry and says --keep-going exists.
    let (code, _, err) = x(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.lines().count() == 1 && err.contains("--keep-going"),
        "{err}"
    );
    fs::remove_dir_all(&dest).unwrap();
    let (code, _, err) = x(&[os("--keep-going")]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(fs::read(dest.join("a/good1")).unwrap(), b"one");
    assert_eq!(fs::read(dest.join("z/good2")).unwrap(), b"two");
    assert_eq!(fs::read(dest.join("h")).unwrap(), b"one");
    for bad in ["b-empty", "c-nul", "d-long", &long_name[..20]] {
        assert!(err.contains(bad), "{bad} not listed: {err}");
    }
    assert!(err.contains("4 damaged"), "{err}");
}

/// The `security.capability` value giving cap_net_raw (VFS_CAP_REVISION_2, effective).
const CAP_NET_RAW: [u8; 20] = [
    0x01, 0, 0, 0x02, // magic_etc: revision 2 | effective
    0, 0x20, 0, 0, // permitted: bit 13
    0, 0, 0, 0, // inheritable
    0, 0, 0, 0, // permitted (high)
    0, 0, 0, 0, // inheritable (high)
];

#[test]
fn regression_file_capabilities_survive_extract() {
    if !common::require("ROOT", clc::sys::is_root(), "file capabilities need root") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let ping = src.join("ping");
    fs::write(&ping, b"\x7fELF pretend").unwrap();
    fs::set_permissions(&ping, fs::Permissions::from_mode(0o755)).unwrap();
    if clc::sys::set_xattr(&ping, b"security.capability", &CAP_NET_RAW).is_err() {
        assert!(
            !common::required("ROOT"),
            "cannot set security.capability here"
        );
        eprintln!("SKIP: the file system refuses security.capability");
        return;
    }
    let out = t.path().join("arc");
    assert_eq!(pack(&src, &out, false).0, 0);
    let dest = t.path().join("dest");
    let first = data_path(&out, VolumeNo(1));
    let x = [os("extract"), first.as_os_str(), os("-o"), dest.as_os_str()];
    let (code, _, err) = clc_within(&x, None, &[], MINUTE);
    assert_eq!(code, 0, "{err}");
    let got = clc::sys::xattrs(&dest.join("ping")).unwrap();
    assert!(
        got.contains(&(b"security.capability".to_vec(), CAP_NET_RAW.to_vec())),
        "capability lost: {got:?}"
    );
}

#[test]
fn regression_extract_messages_escape_names() {
    let case = Case::new();
    let mut s = Spec::new();
    s.symlink("\x1b]0;owned\x07\r\x1b[2J", b"");
    s.file(b"x", b"data");
    s.idx.entries[1]
        .xattrs
        .push((b"bogus.\x1b[31m".to_vec(), b"v".to_vec()));
    let first = s.plain(&case.base());
    let dest = case.dest();
    let x = [
        os("extract"),
        first.as_os_str(),
        os("-o"),
        dest.as_os_str(),
        os("--keep-going"),
        os("--cpu"),
    ];
    let (code, _, err) = clc_within(&x, None, &[], MINUTE);
    assert_eq!(code, 2, "{err}");
    assert!(
        !err.bytes().any(|b| [0x1b, 0x07, b'\r'].contains(&b)),
        "raw control bytes reached the terminal: {err:?}"
    );
    assert!(err.contains("\\x1b]0;owned\\x07\\x0d"), "{err}");
    assert!(err.contains("xattr bogus.\\x1b[31m not restored"), "{err}");
}

/// An inotify watch for names created in a directory.
struct CreateWatch(i32);

impl CreateWatch {
    /// Watches `dir` for new names; made before the child starts, so no creation can come first.
    fn new(dir: &Path) -> CreateWatch {
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: plain syscalls; the descriptor is owned by the value and closed when it drops.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            assert!(fd >= 0);
            assert!(libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_CREATE) >= 0);
            CreateWatch(fd)
        }
    }

    /// The first name created since the watch was made, waiting up to `limit`.
    fn first(&self, limit: Duration) -> Option<OsString> {
        let t0 = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: a read into a buffer this function owns.
            let n = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 16 {
                let len = u32::from_le_bytes(buf[12..16].try_into().unwrap()) as usize;
                let name = &buf[16..16 + len];
                let end = name.iter().position(|&b| b == 0).unwrap_or(len);
                return Some(OsStr::from_bytes(&name[..end]).to_owned());
            }
            if t0.elapsed() > limit {
                return None;
            }
            std::hint::spin_loop();
        }
    }
}

impl Drop for CreateWatch {
    fn drop(&mut self) {
        // SAFETY: the descriptor this value owns.
        unsafe { libc::close(self.0) };
    }
}

#[test]
fn regression_idx3_temp_file_is_removed_on_sigterm() {
    // A GPU_IDX3 payload of 24 MB: a SQLite header, then noise. SIGTERM the moment its temporary
    // file appears (it is being written then); nothing may be left in TMPDIR.
    let case = Case::new();
    let mut image = b"SQLite format 3\0".to_vec();
    image.resize(100, 0);
    image.extend(common::noise(9, 24 << 20));
    let first = legacy_archive(&case.base(), &gzip(&image), b"GPU_IDX3");
    let tmp = case.dir.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let mut caught = 0;
    for _ in 0..5 {
        let watch = CreateWatch::new(&tmp);
        let child = Command::new(env!("CARGO_BIN_EXE_clc"))
            .args([os("list"), first.as_os_str()])
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let seen = watch.first(MINUTE);
        // SAFETY: a signal to the child this test started.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let st = child.wait_with_output().unwrap().status;
        assert!(seen.is_some(), "no temporary file was made");
        if st.code().is_none() {
            caught += 1; // ended by the signal, while the file existed
        }
        let left: Vec<_> = fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
    assert!(
        caught > 0,
        "the signal never came while the file was being written"
    );
    // Without a signal, the payload is refused and nothing is left either.
    let (code, _, err) = clc_within(
        &[os("list"), first.as_os_str()],
        None,
        &[("TMPDIR", tmp.as_os_str())],
        MINUTE,
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
}

/// Runs `cmd` as uid/gid 65534 with no groups; its exit success.
fn as_nobody(cmd: &[&OsStr]) -> bool {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether tests can run commands as another user (root and setpriv); SKIP or fail as `require` says.
fn other_user_ok() -> bool {
    let ok = clc::sys::is_root() && Command::new("setpriv").arg("--version").output().is_ok();
    common::require("ROOT", ok, "running as another user needs root and setpriv")
}

/// A hand-made archive: `pub/readme` (0644 in a 0755 dir) and `priv/secret` (0600 in a 0700 dir), both
/// root's, in a directory every user can enter.
fn permissions_archive(case: &Case) -> PathBuf {
    fs::set_permissions(case.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut s = Spec::new();
    s.dir("priv").file(b"priv/secret", b"top secret");
    s.dir("pub").file(b"pub/readme", b"hello");
    let first = s.write(
        &case.base(),
        |i| {
            i.entries[0].mode = 0o700;
            i.entries[1].mode = 0o600;
            i.entries[3].mode = 0o666;
        },
        |_| {},
    );
    fs::set_permissions(&first, fs::Permissions::from_mode(0o644)).unwrap();
    first
}

#[test]
fn regression_allow_other_enforces_the_archived_permissions() {
    if !common::fuse_ok() || !other_user_ok() {
        return;
    }
    let case = Case::new();
    let first = permissions_archive(&case);
    let mnt = case.dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clc"))
        .args([
            os("mount"),
            os("-f"),
            first.as_os_str(),
            mnt.as_os_str(),
            os("-o"),
            os("allow_other"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mnt = mnt.canonicalize().unwrap();
    let t0 = Instant::now();
    while !common::is_mounted(&mnt) {
        assert!(child.try_wait().unwrap().is_none(), "clc mount exited");
        assert!(t0.elapsed() < Duration::from_secs(20), "not mounted");
        std::thread::sleep(Duration::from_millis(10));
    }
    let cat = |p: &str| {
        let p = mnt.join(p);
        as_nobody(&[os("cat"), p.as_os_str()])
    };
    let readme_ok = cat("pub/readme");
    let secret_ok = cat("priv/secret");
    let priv_dir = mnt.join("priv");
    let ls_ok = as_nobody(&[os("ls"), priv_dir.as_os_str()]);
    let root_reads = fs::read(mnt.join("priv/secret")).ok();
    let _ = Command::new(env!("CARGO_BIN_EXE_clc"))
        .args([os("umount"), mnt.as_os_str()])
        .status();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        readme_ok,
        "another user cannot read a 0644 file in a 0755 directory"
    );
    assert!(
        !secret_ok,
        "another user read root's 0600 file in a 0700 directory"
    );
    assert!(!ls_ok, "another user listed root's 0700 directory");
    assert_eq!(root_reads.as_deref(), Some(&b"top secret"[..]));
}

#[test]
fn decided_non_root_extract_applies_the_umask() {
    // tar's rule: a user's extract clears the umask's bits unless asked to keep the modes exactly.
    if !other_user_ok() {
        return;
    }
    let case = Case::new();
    let first = permissions_archive(&case);
    for (flag, mode) in [(None, 0o644), (Some("--same-permissions"), 0o666)] {
        let dest = case.dir.path().join(format!("dest-{mode:o}"));
        fs::create_dir(&dest).unwrap();
        std::os::unix::fs::chown(&dest, Some(65534), Some(65534)).unwrap();
        let mut cmd = format!(
            "umask 022; exec {} extract {} -o {} --cpu pub",
            env!("CARGO_BIN_EXE_clc"),
            first.display(),
            dest.display()
        );
        if let Some(f) = flag {
            cmd.push(' ');
            cmd.push_str(f);
        }
        assert!(as_nobody(&[os("sh"), os("-c"), os(&cmd)]), "{cmd}");
        let m = fs::metadata(dest.join("pub/readme"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(m, mode, "{flag:?}");
    }
}

#[test]
fn decided_list_shows_the_sizes_the_mount_uses() {
    // A symlink's stored size and a directory's are not used by the mount: list shows the target's
    // length and 0, whatever the index says.
    let case = Case::new();
    let mut s = Spec::new();
    s.dir("d").symlink("l", b"abc");
    let first = s.write(
        &case.base(),
        |i| {
            i.entries[0].size = 12_345;
            i.entries[1].size = 999;
        },
        |_| {},
    );
    let (code, out, err) = clc_within(&[os("list"), first.as_os_str()], None, &[], MINUTE);
    assert_eq!(code, 0, "{err}");
    let size_of = |name: &str| {
        let line = out.lines().find(|l| l.ends_with(name)).unwrap();
        line.split_whitespace().nth(2).unwrap().to_string()
    };
    assert_eq!(size_of(" d"), "0", "{out}");
    assert_eq!(size_of(" l -> abc"), "3", "{out}");
}

#[test]
fn decided_xattr_names_with_nul_are_damage() {
    let case = Case::new();
    let mut s = two_files();
    s.idx.entries[1]
        .xattrs
        .push((b"user.a\0b".to_vec(), b"v".to_vec()));
    check(&case, &s.plain(&case.base()), Expect::Refused("no NUL"));
}

#[test]
fn decided_config_must_be_a_regular_file() {
    let case = Case::new();
    let first = two_files().plain(&case.base());
    let fifo = case.dir.path().join("config.fifo");
    mkfifo(&fifo);
    let dest = case.dest();
    let x = [
        os("extract"),
        first.as_os_str(),
        os("-o"),
        dest.as_os_str(),
        os("--config"),
        fifo.as_os_str(),
    ];
    let (code, _, err) = clc_within(&x, None, &[], Duration::from_secs(30));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

/// An archive's own chunk sizes are what an append cuts with (so unchanged data keeps its chunks): a
/// hand-made index that records sizes FastCDC refuses (or out of order) stops the append with one line
/// naming the archive and the param, and leaves the archive as it was; none of them panics.
#[test]
fn regression_an_append_refuses_chunk_sizes_the_archive_should_not_have() {
    // The params an index records, and what the error line must name.
    let lies: [(&[(&str, &str)], &str); 6] = [
        (
            &[("chunk_min", "1"), ("chunk_avg", "2"), ("chunk_max", "3")],
            "CHUNK_MIN_SIZE",
        ),
        (
            &[
                ("chunk_min", "65536"),
                ("chunk_avg", "16384"),
                ("chunk_max", "262144"),
            ],
            "chunk_min 65536, chunk_avg 16384",
        ),
        (
            &[
                ("chunk_min", "16384"),
                ("chunk_avg", "65536"),
                ("chunk_max", "4294967295"),
            ],
            "CHUNK_MAX_SIZE",
        ),
        (
            &[
                ("chunk_min", "16384"),
                ("chunk_avg", "65536"),
                ("chunk_max", "x"),
            ],
            "chunk_max = \"x\"",
        ),
        (
            &[("chunk_files_from", "99999999999999")],
            "chunk_files_from",
        ),
        (&[("chunk_files_from", "16777216")], "CHUNK_FILES_FROM"),
    ];
    for (k, (lie, names)) in lies.iter().enumerate() {
        let case = Case::new();
        let mut s = two_files();
        s.idx
            .params
            .extend(lie.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        let first = s.plain(&case.base());
        let before = fs::read(&first).unwrap();
        let src = case.dir.path().join("src");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("f.txt"), common::noise(9, 300_000)).unwrap();
        let (code, _, err) = clc_limited(&[
            os("pack"),
            src.as_os_str(),
            os("-o"),
            case.base().as_os_str(),
            os("--append"),
            os("--cpu"),
            os("-q"),
        ]);
        assert_eq!(code, 2, "case {k}: {err}");
        let name = case.base().display().to_string();
        assert!(
            err.lines().count() == 1
                && err.starts_with(&format!("clc: error: {name}: "))
                && err.contains(names),
            "case {k}: wanted one line naming {name} and {names}, got {err:?}"
        );
        assert!(
            fs::read(&first).unwrap() == before,
            "case {k}: the archive changed"
        );
        let left: Vec<String> = fs::read_dir(case.dir.path())
            .unwrap()
            .flatten()
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("arc.") && n != "arc.001")
            .collect();
        assert!(left.is_empty(), "case {k}: the append left {left:?}");
    }
}
