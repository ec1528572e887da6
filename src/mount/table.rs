//! What is mounted where (`/proc/self/mountinfo`): `clc mount` refuses a directory that already has a
//! mount on it, and `clc umount` unmounts only clc's own mounts (`fuse.clc`, or a source named `clc:…`).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// One mount, as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    pub mount_point: PathBuf,
    /// `ext4`, `fuse.clc`, `fuse.sshfs`, …
    pub fstype: String,
    /// The device or FUSE `fsname` (clc's: `clc:/path/to/NAME.001`).
    pub source: String,
}

impl Mounted {
    /// Whether clc serves it: its type is `fuse.clc` (the default subtype) or its source `clc:…` (the
    /// default fsname).
    pub fn is_clc(&self) -> bool {
        self.fstype == "fuse.clc"
            || self.fstype.starts_with("fuse") && self.source.starts_with("clc:")
    }

    fn describe(&self) -> String {
        format!("{} from {}", self.fstype, self.source)
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Parses mountinfo text: `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER`.
/// Lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Mounted> {
    use std::os::unix::ffi::OsStrExt;
    text.lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let mount_point = head.split(' ').nth(4)?;
            let mut t = tail.split(' ');
            let (fstype, source) = (t.next()?, t.next()?);
            Some(Mounted {
                mount_point: PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(mount_point))),
                fstype: String::from_utf8_lossy(&unescape(fstype)).into_owned(),
                source: String::from_utf8_lossy(&unescape(source)).into_owned(),
            })
        })
        .collect()
}

/// The mount whose mount point is `dir` (the topmost when several are stacked), or None.
pub fn mounted_at(dir: &Path) -> Result<Option<Mounted>> {
    let info = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(info).map_err(|e| Error::io(info, e))?;
    // A FUSE mount whose server died fails canonicalize (ENOTCONN): fall back to the absolute path.
    let want = dir
        .canonicalize()
        .or_else(|_| std::path::absolute(dir))
        .map_err(|e| Error::io(dir, e))?;
    Ok(parse(&text)
        .into_iter()
        .rev()
        .find(|m| m.mount_point == want))
}

/// Fails unless nothing is mounted on `dir` (so that `clc mount` never hides another filesystem).
pub fn require_free(dir: &Path) -> Result<()> {
    // The usual answer, "not a mount root", comes from statx without reading mountinfo (BENCHMARKS.md
    // 5.14); a mount root, or a kernel that does not say, is looked up there so that it can be named.
    if let Ok(crate::sys::MountStat {
        mount_root: Some(false),
        ..
    }) = crate::sys::mount_stat(dir)
    {
        return Ok(());
    }
    match mounted_at(dir)? {
        None => Ok(()),
        Some(m) => Err(Error::Mount {
            path: dir.to_path_buf(),
            msg: format!(
                "already has a mount on it ({}); unmount it first or choose another directory",
                m.describe()
            ),
        }),
    }
}

/// Fails unless a clc mount is on `dir`: "not mounted" when nothing is, "not a clc mount" for another
/// filesystem (which `clc umount` leaves alone).
pub fn require_clc(dir: &Path) -> Result<()> {
    match mounted_at(dir)? {
        None => Err(Error::Mount {
            path: dir.to_path_buf(),
            msg: "not mounted".into(),
        }),
        Some(m) if !m.is_clc() => Err(Error::Mount {
            path: dir.to_path_buf(),
            msg: format!(
                "not a clc mount ({}); clc umount unmounts only archives mounted by clc",
                m.describe()
            ),
        }),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    40 22 0:45 / /tmp/a\\040b rw,nosuid shared:5 master:2 - fuse.clc clc:/x/a.001 ro,user_id=0\n\
                    41 22 0:46 / /mnt/s rw - fuse.sshfs user@host: rw\n\
                    garbage line\n";
        let m = parse(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].mount_point, PathBuf::from("/"));
        assert_eq!(m[1].mount_point, PathBuf::from("/tmp/a b"));
        assert_eq!(
            (m[1].fstype.as_str(), m[1].source.as_str()),
            ("fuse.clc", "clc:/x/a.001")
        );
        assert!(m[1].is_clc());
        assert!(!m[0].is_clc() && !m[2].is_clc());
        // fsname kept, subtype changed with -o subtype=…: still clc's.
        let own = Mounted {
            mount_point: "/m".into(),
            fstype: "fuse.other".into(),
            source: "clc:/a.001".into(),
        };
        assert!(own.is_clc());
        assert_eq!(unescape("a\\134b\\012"), b"a\\b\n");
        assert_eq!(unescape("\\9x\\"), b"\\9x\\");
    }

    #[test]
    fn the_root_is_mounted_and_not_clc() {
        let r = mounted_at(Path::new("/"))
            .unwrap()
            .expect("/ is a mount point");
        assert!(!r.is_clc());
        assert!(require_free(Path::new("/")).is_err());
        let e = require_clc(Path::new("/")).unwrap_err().to_string();
        assert!(e.contains("not a clc mount"), "{e}");
        let t = tempfile::tempdir().unwrap();
        assert!(require_free(t.path()).is_ok());
        let e = require_clc(t.path()).unwrap_err().to_string();
        assert!(e.ends_with("not mounted"), "{e}");
    }
}
