//! Archived metadata → FUSE attributes.
//!
//! * mode, uid, gid, size and mtime are the archived ones; atime and ctime repeat mtime.
//! * Directories report size 4096 (one ext4-like block) and nlink 2 + subdirectories; regular files
//!   nlink = the number of paths naming them (hardlinks); symlinks the length of their target.
//! * `blocks` is the size in 512-byte units, rounded up; `blksize` is [`BLKSIZE`].
//! * The root is implicit in the index: it takes mode 0755, the mounting user and the mtime given.

use super::inodes::{Ino, Inodes, Node};
use crate::format::index::{Entry, EntryKind, ValidIndex};
use fuser::{FileAttr, FileType, INodeNo};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Preferred I/O size reported in `st_blksize` (FUSE's usual read size).
pub const BLKSIZE: u32 = 128 << 10;
/// `st_size` of a directory.
pub const DIR_SIZE: u64 = 4096;

/// Metadata of the implicit root (and of directories synthesized for a foreign index).
#[derive(Clone, Copy, Debug)]
pub struct RootMeta {
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
}

pub fn file_type(k: EntryKind) -> FileType {
    match k {
        EntryKind::File | EntryKind::Hardlink => FileType::RegularFile,
        EntryKind::Dir => FileType::Directory,
        EntryKind::Symlink => FileType::Symlink,
        EntryKind::Fifo => FileType::NamedPipe,
        EntryKind::CharDev => FileType::CharDevice,
        EntryKind::BlockDev => FileType::BlockDevice,
        EntryKind::Socket => FileType::Socket,
    }
}

/// The entry holding the metadata of node `n`, if any (not for the root or synthesized directories).
pub fn entry_of(index: &ValidIndex, n: Node) -> Option<&Entry> {
    index.entry(n.entry?)
}

/// The type of inode `ino`.
pub fn kind_of(index: &ValidIndex, inodes: &Inodes, ino: Ino) -> FileType {
    inodes
        .node(ino)
        .and_then(|n| entry_of(index, n))
        .map_or(FileType::Directory, |e| file_type(e.kind))
}

/// Seconds and nanoseconds since the epoch (negative allowed) as a `SystemTime`.
pub fn time(sec: i64, nsec: u32) -> SystemTime {
    let ns = Duration::from_nanos(nsec.min(999_999_999) as u64);
    let t = if sec >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(sec as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(sec.unsigned_abs()))
    };
    t.and_then(|t| t.checked_add(ns)).unwrap_or(UNIX_EPOCH)
}

/// Linux `new_encode_dev` of a `dev_t`: the 32-bit device number FUSE carries.
pub fn encode_rdev(rdev: u64) -> u32 {
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// What a [`FileAttr`] is made of: the fields an index entry and a paged-tree record (format version 5)
/// both carry, with the inode's link count.
pub struct Meta<'a> {
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    pub size: u64,
    pub rdev: u64,
    pub target: &'a [u8],
    pub nlink: u32,
}

/// The attributes of the root directory (inode `ino`), which has no entry: `root`'s owner and time.
pub fn root_attr(ino: Ino, root: &RootMeta, nlink: u32) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino.0),
        size: DIR_SIZE,
        blocks: DIR_SIZE / 512,
        atime: root.mtime,
        mtime: root.mtime,
        ctime: root.mtime,
        crtime: root.mtime,
        kind: FileType::Directory,
        perm: 0o755,
        nlink,
        uid: root.uid,
        gid: root.gid,
        rdev: 0,
        blksize: BLKSIZE,
        flags: 0,
    }
}

/// The attributes of inode `ino` made of `m`.
pub fn meta_attr(ino: Ino, m: &Meta) -> FileAttr {
    let size = match m.kind {
        EntryKind::File => m.size,
        EntryKind::Symlink => m.target.len() as u64,
        EntryKind::Dir => DIR_SIZE,
        _ => 0,
    };
    let rdev = match m.kind {
        EntryKind::CharDev | EntryKind::BlockDev => encode_rdev(m.rdev),
        _ => 0,
    };
    let t = time(m.mtime_sec, m.mtime_nsec);
    FileAttr {
        ino: INodeNo(ino.0),
        size,
        blocks: size.div_ceil(512),
        atime: t,
        mtime: t,
        ctime: t,
        crtime: t,
        kind: file_type(m.kind),
        perm: (m.mode & 0o7777) as u16,
        nlink: m.nlink,
        uid: m.uid,
        gid: m.gid,
        rdev,
        blksize: BLKSIZE,
        flags: 0,
    }
}

/// The attributes of inode `ino`.
pub fn attr(index: &ValidIndex, inodes: &Inodes, ino: Ino, root: &RootMeta) -> Option<FileAttr> {
    let node = inodes.node(ino)?;
    let Some(e) = entry_of(index, node) else {
        return Some(root_attr(ino, root, node.nlink));
    };
    Some(meta_attr(
        ino,
        &Meta {
            kind: e.kind,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime_sec: e.mtime_sec,
            mtime_nsec: e.mtime_nsec,
            size: e.size,
            rdev: e.rdev,
            target: &e.target,
            nlink: node.nlink,
        },
    ))
}

/// The value of xattr `name` of inode `ino`.
pub fn xattr<'i>(
    index: &'i ValidIndex,
    inodes: &Inodes,
    ino: Ino,
    name: &[u8],
) -> Option<&'i [u8]> {
    let e = entry_of(index, inodes.node(ino)?)?;
    e.xattrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// The xattr names of inode `ino`, each followed by a NUL (the `listxattr` layout).
pub fn xattr_names(index: &ValidIndex, inodes: &Inodes, ino: Ino) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(e) = inodes.node(ino).and_then(|n| entry_of(index, n)) {
        for (n, _) in &e.xattrs {
            out.extend_from_slice(n);
            out.push(0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_devices() {
        assert_eq!(time(0, 0), UNIX_EPOCH);
        assert_eq!(
            time(-2, 500),
            UNIX_EPOCH - Duration::from_nanos(1_999_999_500)
        );
        assert_eq!(time(5, 7), UNIX_EPOCH + Duration::new(5, 7));
        // 8:1 (/dev/sda1) and 259:65536 round-trip through the kernel's new_decode_dev layout.
        assert_eq!(encode_rdev(libc::makedev(8, 1)), 0x801);
        let v = encode_rdev(libc::makedev(259, 65536));
        assert_eq!(
            ((v & 0xfff00) >> 8, (v & 0xff) | ((v >> 12) & 0xfff00)),
            (259, 65536)
        );
    }
}
