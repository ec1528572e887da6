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

use crate::ids::VolumeNo;
use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

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

/// Every existing data volume of `base` (number 1 or more), sorted by number. An unreadable directory
/// lists nothing.
pub fn list_data(base: &Path) -> Vec<(VolumeNo, PathBuf)> {
    let mut found: Vec<(VolumeNo, PathBuf)> = siblings(base)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(suffix, p)| match parse_suffix(suffix.as_bytes())? {
            Name::Data(n) if n.0 > 0 => Some((n, p)),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

/// Every existing parity volume of `base` (number 1 or more), sorted by number.
pub fn list_parity(base: &Path) -> Vec<(u32, PathBuf)> {
    let mut found: Vec<(u32, PathBuf)> = siblings(base)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(suffix, p)| match parse_suffix(suffix.as_bytes())? {
            Name::Parity(n) if n > 0 => Some((n, p)),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

/// Whether the archive `base` has parity volumes (its first one exists).
pub fn has_parity(base: &Path) -> bool {
    parity_path(base, 1).exists()
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

/// Opens a volume for reading.
pub fn open(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// Creates a new volume for writing; fails when one of that name exists.
pub fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
