//! `--volume-size` is a hard limit (FORMAT.md: every volume, data and parity): frames are capped to fit,
//! and an index larger than a volume spans volumes (3.2). Tested with the smallest volume size and an
//! index of several times that.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

fn run(args: &[&dyn AsRef<OsStr>]) -> (i32, String, String) {
    let refs: Vec<&OsStr> = args.iter().map(|a| a.as_ref()).collect();
    common::run(&refs)
}

/// Every `arc.*` volume (data and parity) in `dir`.
fn volumes(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.strip_prefix("arc.").is_some_and(|s| {
                let s = s.strip_prefix('p').unwrap_or(s);
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
            })
        })
        .collect();
    v.sort();
    v
}

/// The last volume's footer: (index_offset, index_stored_len).
fn footer(last: &Path) -> (u64, u64) {
    let b = fs::read(last).unwrap();
    let f = clc::format::footer::Footer::decode(&b[b.len() - 80..], "t", b.len() as u64).unwrap();
    (f.index_offset, f.index_stored_len)
}

/// The blob bytes of each data volume it spans, in order (FORMAT.md 3.2): (volume, first, end).
fn blob_pieces<'a>(data: &[&'a PathBuf], offset: u64, stored: u64) -> Vec<(&'a PathBuf, u64, u64)> {
    let mut need = stored;
    let mut out = Vec::new();
    for (k, v) in data.iter().enumerate().rev() {
        let len = fs::metadata(v).unwrap().len();
        let end = if k + 1 == data.len() { len - 80 } else { len };
        let have = end - 40;
        if have >= need {
            assert_eq!(end - need, offset);
            out.push((*v, offset, end));
            break;
        }
        out.push((*v, 40, end));
        need -= have;
    }
    out.reverse();
    out
}

/// Volume and offset of byte `pos` of the index blob.
fn blob_byte<'a>(data: &[&'a PathBuf], offset: u64, stored: u64, pos: u64) -> (&'a PathBuf, u64) {
    let mut at = 0;
    for (v, a, b) in blob_pieces(data, offset, stored) {
        if pos < at + (b - a) {
            return (v, a + pos - at);
        }
        at += b - a;
    }
    panic!("byte {pos} is past the blob");
}

/// The length of the zlib generation index at the front of a version 5 blob (its trailer's `index_len`).
fn index_len(data: &[&PathBuf], stored: u64) -> u64 {
    let last = fs::read(data[data.len() - 1]).unwrap();
    let (offset, _) = footer(data[data.len() - 1]);
    let t: Vec<u8> = (stored - 48..stored)
        .map(|p| {
            let (v, at) = blob_byte(data, offset, stored, p);
            if v == data[data.len() - 1] {
                last[at as usize]
            } else {
                fs::read(v).unwrap()[at as usize]
            }
        })
        .collect();
    clc::format::tree::Trailer::decode(&t, stored, clc::format::FORMAT_VERSION, "t")
        .unwrap()
        .index_len
}

/// A tree whose index is large and incompressible: thousands of files with random names (and, as a
/// versioned archive, a BLAKE3 per chunk), next to a large incompressible file that must be cut into
/// frames of less than a volume.
fn tree(root: &Path) {
    fs::create_dir_all(root.join("many")).unwrap();
    let mut rng = common::Rng(7);
    for i in 0..3000 {
        let name: String = (0..40)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.below(36) as usize]))
            .collect();
        fs::write(root.join("many").join(name), format!("{i} {}", rng.next())).unwrap();
    }
    fs::write(root.join("big.bin"), common::noise(3, 600 << 10)).unwrap();
}

#[test]
fn tiny_volumes_with_a_large_index_stay_within_the_limit() {
    for (what, extra) in [
        ("plain", vec![]),
        ("versioned, parity", vec!["--append", "--parity", "30"]),
    ] {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        tree(&src);
        let out = t.path().join("arc");
        let mut args: Vec<&dyn AsRef<OsStr>> = vec![
            &"pack",
            &src,
            &"-o",
            &out,
            &"-q",
            &"--cpu",
            &"--volume-size",
            &"64K",
        ];
        for e in &extra {
            args.push(e);
        }
        let (code, o, e) = run(&args);
        assert_eq!(code, 0, "{what}: {o}{e}");
        let vols = volumes(t.path());
        for v in &vols {
            let len = fs::metadata(v).unwrap().len();
            assert!(len <= 64 << 10, "{what}: {} is {len} bytes", v.display());
        }
        let data: Vec<&PathBuf> = vols
            .iter()
            .filter(|p| !p.to_string_lossy().contains(".p"))
            .collect();
        let (offset, stored) = footer(data.last().unwrap());
        assert!(
            stored > 2 * (64 << 10),
            "{what}: the index is only {stored} bytes"
        );
        let last_len = fs::metadata(data.last().unwrap()).unwrap().len();
        assert!(
            offset + stored + 80 > last_len,
            "{what}: the index did not span volumes"
        );
        let first = t.path().join("arc.001");
        let (code, o, e) = run(&[&"verify", &first]);
        assert_eq!(code, 0, "{what}: {o}{e}");
        if !extra.is_empty() {
            // (Creating 3000 files takes seconds here: extracted once.)
            let dest = t.path().join("x");
            let (code, o, e) = run(&[&"extract", &first, &"-o", &dest, &"-q"]);
            assert_eq!(code, 0, "{what}: {o}{e}");
            common::assert_same_tree(&src, &dest);
        }
        // A byte of the generation index (the blob's first `index_len` bytes in format version 5: the
        // paged tree follows it) flipped in a volume it spans: refused as a checksum mismatch.
        let (vol, at) = blob_byte(&data, offset, stored, index_len(&data, stored) - 10);
        let mut b = fs::read(vol).unwrap();
        b[at as usize] ^= 1;
        fs::write(vol, &b).unwrap();
        let (code, _, e) = run(&[&"list", &first]);
        assert_eq!(code, 2, "{what}");
        assert!(e.contains("index"), "{what}: {e}");
    }
}
