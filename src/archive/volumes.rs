//! Finding the volumes of an archive on disk: `NAME.001`, …, `NAME.999`, `NAME.1000`, ….

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Splits `NAME.NNN` (three or more digits) into (`NAME`, NNN).
pub fn split(p: &Path) -> Option<(PathBuf, u32)> {
    let b = p.as_os_str().as_bytes();
    let dot = b.iter().rposition(|&c| c == b'.')?;
    let digits = &b[dot + 1..];
    if digits.len() < 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((PathBuf::from(std::ffi::OsStr::from_bytes(&b[..dot])), n))
}

/// Every existing `base.NNN` file, sorted by number.
pub fn list(base: &Path) -> Vec<PathBuf> {
    let dir = match base.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = base.file_name() else {
        return Vec::new();
    };
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|de| {
            let fname = de.file_name();
            let (stem, n) = split(Path::new(&fname))?;
            (stem.as_os_str() == name && n > 0).then(|| (n, base.with_file_name(&fname)))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names() {
        assert_eq!(split(Path::new("a/b.001")), Some((PathBuf::from("a/b"), 1)));
        assert_eq!(
            split(Path::new("b.x.1000")),
            Some((PathBuf::from("b.x"), 1000))
        );
        assert_eq!(split(Path::new("b.01")), None);
        assert_eq!(split(Path::new("b.p001")), None);
    }
}
