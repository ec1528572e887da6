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

    /// Writes `base.001`: the frames (headers as they should be), then `patch` edits the index (the frame
    /// table is filled in by then) and `patch_raw` its encoded bytes before they are sealed.
    fn write(
        &self,
        base: &Path,
        patch: impl FnOnce(&mut Index),
        patch_raw: impl FnOnce(&mut Vec<u8>),
    ) -> PathBuf {
        let mut vw = VolumeWriter::new(base, 1 << 30, [0x5a; 16]);
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
