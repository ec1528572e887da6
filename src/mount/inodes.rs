//! The inode table, built once at mount from the index; no path walks per request.
//!
//! Numbering: the root is inode 1, entry `i` of the index is inode `i + 2`. A hardlink entry has no inode
//! of its own: its name points at the inode of the file it links to, so all paths of a hardlinked file
//! share one inode number and `nlink` counts them. Every entry is reachable: the index is validated, so
//! every parent is an earlier directory entry (CL_Compressor's reader adds the directories its index
//! leaves out) and paths are unique and sorted by bytes.
//!
//! Layout (8 bytes per entry, plus 16 per directory): each entry's parent inode; each directory's names as
//! a run of entry ids in one array, the runs in directory order. Names are not copied: a name is the last
//! component of its entry's path. Built in O(n) without sorting: in an index sorted by path bytes, the
//! children of one directory already come in name order (`D/a` < `D/b` exactly when `a` < `b`), so a
//! counting sort by parent keeps them sorted, and a parent is most often the previous entry's parent or
//! the previous entry itself, so the binary search that finds it runs only when a directory changes.
//!
//! Snapshots (several trees in one mount) take one `Inodes` per tree; the numbering above is local to
//! the tree.

use crate::format::index::{Entry, EntryId, EntryKind, ValidIndex};
use std::collections::HashMap;

/// An inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ino(pub u64);

impl Ino {
    pub const ROOT: Ino = Ino(1);

    fn of_entry(i: usize) -> Ino {
        Ino(i as u64 + 2)
    }

    /// The entry of a non-root inode number (unchecked).
    fn entry(self) -> Option<usize> {
        usize::try_from(self.0.checked_sub(2)?).ok()
    }
}

/// One inode, as the table answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    /// The entry holding the metadata; `None` for the root.
    pub entry: Option<EntryId>,
    /// The directory holding it (for a hardlinked file: the directory of its first path).
    pub parent: Ino,
    /// For directories: 2 + subdirectories. For files: the number of paths naming it.
    pub nlink: u32,
}

/// A directory: the root (slot 0) or a directory entry.
#[derive(Clone, Copy, Debug)]
struct Dir {
    /// Its entry (`u32::MAX` for the root).
    entry: u32,
    /// Where its names start in `Inodes::names`; they end where the next directory's start.
    start: u32,
    nlink: u32,
}

/// The whole table. Read-only after [`Inodes::build`].
pub struct Inodes {
    /// The parent inode of each entry, by entry id.
    parent: Vec<u32>,
    /// The root, then every directory entry, in entry order (so sorted by entry id), and an end marker.
    dirs: Vec<Dir>,
    /// Every directory's names (as the entry whose path ends in it), grouped by directory in `dirs` order,
    /// each group in name order.
    names: Vec<u32>,
    /// Files named by hardlinks too: entry → number of paths.
    links: HashMap<u32, u32>,
}

/// The offset of the last component of `p`.
fn name_at(p: &[u8]) -> usize {
    p.iter().rposition(|&c| c == b'/').map_or(0, |s| s + 1)
}

/// The parent directory part of `p` (without the slash); empty for a top-level name.
fn parent_path(p: &[u8]) -> &[u8] {
    &p[..name_at(p).saturating_sub(1)]
}

impl Inodes {
    /// Builds the table from the index: O(n) in the number of entries, plus a binary search each time the
    /// parent directory changes from one entry to the next.
    pub fn build(index: &ValidIndex) -> Inodes {
        let entries = index.entries();
        let n = entries.len();
        // Inode numbers are u32 here; an index this large cannot be inflated (4 GiB cap) anyway.
        assert!(
            n < u32::MAX as usize - 2,
            "too many entries for the inode table"
        );
        let parent = parents(entries);
        let mut dirs = vec![Dir {
            entry: u32::MAX,
            start: 0,
            nlink: 2,
        }];
        dirs.extend(
            entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.kind == EntryKind::Dir)
                .map(|(i, _)| Dir {
                    entry: i as u32,
                    start: 0,
                    nlink: 2,
                }),
        );
        let mut t = Inodes {
            parent,
            dirs,
            names: Vec::new(),
            links: HashMap::new(),
        };
        // Counting sort of the names by parent directory (stable: each group stays in entry order).
        let mut last = (u32::MAX, 0u32);
        let slot: Vec<u32> = (0..n)
            .map(|i| {
                let p = t.parent[i];
                if p != last.0 {
                    last = (p, t.dir_slot(Ino(u64::from(p))).unwrap_or(0) as u32);
                }
                last.1
            })
            .collect();
        let mut count = vec![0u32; t.dirs.len() + 1];
        for &s in &slot {
            count[s as usize + 1] += 1;
        }
        for k in 1..count.len() {
            count[k] += count[k - 1];
        }
        for (k, d) in t.dirs.iter_mut().enumerate() {
            d.start = count[k];
        }
        let mut names = vec![0u32; n];
        for (i, &s) in slot.iter().enumerate() {
            let at = &mut count[s as usize];
            names[*at as usize] = i as u32;
            *at += 1;
        }
        t.names = names;
        t.dirs.push(Dir {
            entry: u32::MAX,
            start: n as u32,
            nlink: 0,
        });
        for (i, e) in entries.iter().enumerate() {
            if e.kind == EntryKind::Dir {
                let s = slot[i] as usize;
                t.dirs[s].nlink += 1;
            }
            // Validated: a hardlink names an earlier file entry.
            if let Some(target) = index.hardlink_target(EntryId(i as u64)) {
                *t.links.entry(target.0 as u32).or_insert(1) += 1;
            }
        }
        t
    }

    /// The slot in `dirs` of directory `ino`, if it is one.
    fn dir_slot(&self, ino: Ino) -> Option<usize> {
        if ino == Ino::ROOT {
            return Some(0);
        }
        let e = ino.entry().filter(|&e| e < self.parent.len())? as u32;
        // Entries fit in u32 (see `build`); the end marker's entry (u32::MAX) is never searched for.
        let dirs = &self.dirs[1..];
        dirs.binary_search_by_key(&e, |d| d.entry)
            .ok()
            .map(|k| k + 1)
    }

    /// Whether `ino` is a directory (the root or a directory entry).
    pub fn is_dir(&self, _index: &ValidIndex, ino: Ino) -> bool {
        self.dir_slot(ino).is_some()
    }

    /// The node of `ino`, if it exists.
    pub fn node(&self, ino: Ino) -> Option<Node> {
        if ino == Ino::ROOT {
            return Some(Node {
                entry: None,
                parent: Ino::ROOT,
                nlink: self.dirs[0].nlink,
            });
        }
        let e = ino.entry()?;
        let parent = Ino(u64::from(*self.parent.get(e)?));
        let nlink = match self.dir_slot(ino) {
            Some(s) => self.dirs[s].nlink,
            None => self.links.get(&(e as u32)).copied().unwrap_or(1),
        };
        Some(Node {
            entry: Some(EntryId(e as u64)),
            parent,
            nlink,
        })
    }

    /// The names of directory slot `s`, as entry ids.
    fn names_of(&self, s: usize) -> &[u32] {
        let (a, b) = (self.dirs[s].start, self.dirs[s + 1].start);
        &self.names[a as usize..b as usize]
    }

    /// The inode named `name` in directory `dir`.
    pub fn lookup(&self, index: &ValidIndex, dir: Ino, name: &[u8]) -> Option<Ino> {
        let kids = self.names_of(self.dir_slot(dir)?);
        let k = kids
            .binary_search_by(|&c| name_of(index, c).cmp(name))
            .ok()?;
        Some(ino_of(index, kids[k]))
    }

    /// The number of names in directory `dir`.
    pub fn dir_len(&self, dir: Ino) -> Option<usize> {
        Some(self.names_of(self.dir_slot(dir)?).len())
    }

    /// The names in directory `dir` from position `from` on: (name, inode).
    pub fn list<'i>(
        &'i self,
        index: &'i ValidIndex,
        dir: Ino,
        from: usize,
    ) -> impl Iterator<Item = (&'i [u8], Ino)> + 'i {
        let kids = self.dir_slot(dir).map_or(&[][..], |s| self.names_of(s));
        kids.iter()
            .skip(from)
            .map(move |&c| (name_of(index, c), ino_of(index, c)))
    }

    /// The names after file `ino` in its directory, in name order, as (inode, kind, size) (a hardlink's
    /// name leads to its target's inode): what a reader walking the tree reads next (`mount::push`
    /// chooses which to push).
    pub fn named_after<'i>(
        &'i self,
        index: &'i ValidIndex,
        ino: Ino,
    ) -> impl Iterator<Item = (Ino, EntryKind, u64)> + 'i {
        let after = || -> Option<&'i [u32]> {
            let kids = self.names_of(self.dir_slot(self.node(ino)?.parent)?);
            let name = name_of(index, ino.entry()? as u32);
            let at = kids
                .binary_search_by(|&c| name_of(index, c).cmp(name))
                .ok()?;
            Some(&kids[at + 1..])
        };
        after().unwrap_or(&[]).iter().map_while(move |&c| {
            let x = index.entry(EntryId(u64::from(c)))?;
            Some((ino_of(index, c), x.kind, x.size))
        })
    }

    /// Number of inode numbers, the root included (hardlink entries count, though no name leads to them).
    pub fn len(&self) -> usize {
        self.parent.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes held by the table (for the mount's memory figures).
    pub fn heap_bytes(&self) -> usize {
        self.parent.capacity() * 4
            + self.names.capacity() * 4
            + self.dirs.capacity() * std::mem::size_of::<Dir>()
            + self.links.capacity() * 12
    }
}

/// The last path component of entry `e`.
fn name_of(index: &ValidIndex, e: u32) -> &[u8] {
    index
        .entry(EntryId(u64::from(e)))
        .map_or(&[][..], |x| &x.path[name_at(&x.path)..])
}

/// The inode a name of entry `e` leads to: the hardlink's target's, or its own.
fn ino_of(index: &ValidIndex, e: u32) -> Ino {
    let id = EntryId(u64::from(e));
    Ino::of_entry(index.data_entry(id).at())
}

/// The parent inode of every entry. Validated: each parent is an earlier directory entry (or the root),
/// and entries are sorted by path; so the parent is the previous entry's parent, or the previous entry,
/// or found by binary search among the earlier entries.
fn parents(entries: &[Entry]) -> Vec<u32> {
    let mut out = Vec::with_capacity(entries.len());
    let mut last: (&[u8], u32) = (&[], Ino::ROOT.0 as u32);
    for (i, e) in entries.iter().enumerate() {
        let pp = parent_path(&e.path);
        if pp != last.0 {
            let ino = if pp.is_empty() {
                Ino::ROOT
            } else if i > 0 && entries[i - 1].path == pp {
                Ino::of_entry(i - 1)
            } else {
                match entries[..i].binary_search_by(|x| x.path.as_slice().cmp(pp)) {
                    Ok(j) => Ino::of_entry(j),
                    Err(_) => Ino::ROOT, // cannot happen in a validated index
                }
            };
            last = (pp, ino.0 as u32);
        }
        out.push(last.1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::Entry;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry::new(path.as_bytes().to_vec(), kind, 0o755)
    }

    #[test]
    fn tree_hardlinks_and_nlink() {
        let mut idx = crate::format::index::Index {
            entries: vec![
                entry("a", EntryKind::Dir),
                entry("a/b", EntryKind::Dir),
                entry("a/b.c", EntryKind::File),
                entry("a/b/x", EntryKind::File),
                entry("z", EntryKind::Symlink),
            ],
            ..Default::default()
        };
        let mut h = entry("a/h", EntryKind::Hardlink);
        h.link = 3;
        idx.entries.insert(4, h);
        let idx = idx.validate("t", 0).unwrap();
        let t = Inodes::build(&idx);
        let a = t.lookup(&idx, Ino::ROOT, b"a").unwrap();
        assert_eq!(a, Ino(2));
        let names: Vec<_> = t.list(&idx, a, 0).map(|(n, i)| (n.to_vec(), i)).collect();
        assert_eq!(
            names,
            vec![
                (b"b".to_vec(), Ino(3)),
                (b"b.c".to_vec(), Ino(4)),
                (b"h".to_vec(), Ino(5)),
            ]
        );
        assert_eq!(t.list(&idx, a, 2).count(), 1);
        assert_eq!(t.lookup(&idx, Ino(3), b"x"), Some(Ino(5)));
        assert_eq!(t.node(Ino(5)).unwrap().nlink, 2);
        assert_eq!(t.node(a).unwrap().nlink, 3);
        assert_eq!(t.node(Ino::ROOT).unwrap().nlink, 3);
        assert_eq!(t.node(Ino(3)).unwrap().parent, a);
        assert_eq!(t.node(Ino(5)).unwrap().parent, Ino(3));
        assert_eq!(t.node(Ino(7)).unwrap().parent, Ino::ROOT);
        assert_eq!(t.lookup(&idx, Ino::ROOT, b"nope"), None);
        assert_eq!(t.lookup(&idx, Ino(4), b"x"), None, "a file has no names");
        assert!(t.is_dir(&idx, Ino(3)) && !t.is_dir(&idx, Ino(4)));
        assert!(t.node(Ino(0)).is_none());
        assert!(t.node(Ino(8)).is_none());
        assert_eq!(t.len(), 7);
    }

    /// Against a straightforward model (a map from directory path to sorted names) on a generated tree
    /// whose names sort differently as names and as paths would if the table sorted paths ('-' < '/' <
    /// '0'): every directory lists what the model lists, in the same order, and lookups find each name.
    #[test]
    fn matches_a_model_on_a_generated_tree() {
        use std::collections::BTreeMap;
        let mut paths: Vec<(Vec<u8>, EntryKind)> = Vec::new();
        let parts: [&[u8]; 5] = [b"a", b"a-b", b"a.b", b"a0", b"b"];
        for x in parts {
            paths.push((x.to_vec(), EntryKind::Dir));
            for y in parts {
                let p = [x, b"/", y].concat();
                let kind = if y == b"a" {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                };
                paths.push((p.clone(), kind));
                if kind == EntryKind::Dir {
                    for z in parts {
                        paths.push(([&p[..], b"/", z].concat(), EntryKind::File));
                    }
                }
            }
        }
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        let idx = crate::format::index::Index {
            entries: paths
                .iter()
                .map(|(p, k)| Entry::new(p.clone(), *k, 0o755))
                .collect(),
            ..Default::default()
        }
        .validate("t", 0)
        .unwrap();
        let t = Inodes::build(&idx);
        let mut model: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        model.insert(Vec::new(), Vec::new());
        for (p, k) in &paths {
            let at = name_at(p);
            model
                .entry(parent_path(p).to_vec())
                .or_default()
                .push(p[at..].to_vec());
            if *k == EntryKind::Dir {
                model.entry(p.clone()).or_default();
            }
        }
        for (dir, want) in model.iter_mut() {
            want.sort();
            let ino = if dir.is_empty() {
                Ino::ROOT
            } else {
                Ino::of_entry(paths.iter().position(|(p, _)| p == dir).unwrap())
            };
            let got: Vec<Vec<u8>> = t.list(&idx, ino, 0).map(|(n, _)| n.to_vec()).collect();
            assert_eq!(&got, want, "listing of {:?}", String::from_utf8_lossy(dir));
            for name in want.iter() {
                let child = t.lookup(&idx, ino, name).unwrap();
                assert_eq!(t.node(child).unwrap().parent, ino);
            }
        }
    }
}
