//! The inode table, built once at mount from the index; no path walks per request.
//!
//! Numbering: the root is inode 1, entry `i` of the index is inode `i + 2`. A hardlink entry has no inode
//! of its own: its name points at the inode of the file it links to, so all paths of a hardlinked file
//! share one inode number and `nlink` counts them. Every entry is reachable: the index is validated, so
//! every parent is a directory entry (CL_Compressor's reader adds the directories its index leaves out).

use crate::format::index::{EntryId, EntryKind, ValidIndex};
use std::collections::HashMap;

/// An inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ino(pub u64);

impl Ino {
    pub const ROOT: Ino = Ino(1);

    fn of_entry(i: usize) -> Ino {
        Ino(i as u64 + 2)
    }
}

/// One name in a directory.
#[derive(Clone, Copy, Debug)]
struct Child {
    /// The entry whose last path component is the name.
    named_by: u32,
    /// Where the name starts in that path.
    name_at: u32,
    ino: Ino,
}

/// One inode.
#[derive(Clone, Debug)]
pub struct Node {
    /// The entry holding the metadata; `None` for the root.
    pub entry: Option<EntryId>,
    pub parent: Ino,
    /// For directories: 2 + subdirectories. For files: the number of paths naming it.
    pub nlink: u32,
    /// Range of this directory's names in `Inodes::children`.
    children: (u32, u32),
}

/// The whole table. Read-only after [`Inodes::build`].
pub struct Inodes {
    /// Indexed by `ino - 1`.
    nodes: Vec<Node>,
    /// All directories' names, grouped by directory, each group sorted by name bytes.
    children: Vec<Child>,
}

/// Splits `a/b/c` into (`a/b`, offset of `c`); a top-level name has parent "".
fn split_parent(p: &[u8]) -> (&[u8], usize) {
    match p.iter().rposition(|&c| c == b'/') {
        Some(s) => (&p[..s], s + 1),
        None => (&[], 0),
    }
}

impl Inodes {
    /// Builds the table from the index: O(n log n) in the number of entries.
    pub fn build(index: &ValidIndex) -> Inodes {
        let n = index.entries().len();
        let mut nodes: Vec<Node> = Vec::with_capacity(n + 1);
        let dir_node = |entry, parent| Node {
            entry,
            parent,
            nlink: 2,
            children: (0, 0),
        };
        nodes.push(dir_node(None, Ino::ROOT));
        for (i, e) in index.entries().iter().enumerate() {
            let nlink = if e.kind == EntryKind::Dir { 2 } else { 1 };
            nodes.push(Node {
                entry: Some(EntryId(i as u64)),
                parent: Ino::ROOT,
                nlink,
                children: (0, 0),
            });
        }
        // Directory paths → inode; "" is the root.
        let mut dirs: HashMap<&[u8], Ino> = HashMap::with_capacity(n / 4 + 1);
        dirs.insert(&[], Ino::ROOT);
        for (i, e) in index.entries().iter().enumerate() {
            if e.kind == EntryKind::Dir {
                dirs.insert(&e.path, Ino::of_entry(i));
            }
        }
        let mut edges: Vec<(Ino, Child)> = Vec::with_capacity(n);
        let mut linked: Vec<u32> = Vec::new();
        for (i, e) in index.entries().iter().enumerate() {
            // Validated: a hardlink names an earlier file entry.
            let ino = match index.hardlink_target(EntryId(i as u64)) {
                Some(t) => {
                    linked.push(t.0 as u32);
                    Ino::of_entry(t.at())
                }
                None => Ino::of_entry(i),
            };
            // Validated: the parent is an earlier directory entry (or the root).
            let (parent_path, at) = split_parent(&e.path);
            let parent = dirs.get(parent_path).copied().unwrap_or(Ino::ROOT);
            nodes[ino.0 as usize - 1].parent = parent;
            edges.push((
                parent,
                Child {
                    named_by: i as u32,
                    name_at: at as u32,
                    ino,
                },
            ));
        }
        for t in linked {
            nodes[t as usize + 1].nlink += 1;
        }
        let mut table = Inodes {
            nodes,
            children: Vec::new(),
        };
        table.group(edges, index);
        table
    }

    /// Sorts names by (directory, name), drops repeated names (first wins), and records each directory's
    /// range and subdirectory count.
    fn group(&mut self, mut edges: Vec<(Ino, Child)>, index: &ValidIndex) {
        edges.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| self.name_in(index, &a.1).cmp(self.name_in(index, &b.1)))
        });
        edges.dedup_by(|b, a| a.0 == b.0 && self.name_in(index, &a.1) == self.name_in(index, &b.1));
        let mut start = 0usize;
        while start < edges.len() {
            let dir = edges[start].0;
            let end = start + edges[start..].partition_point(|(d, _)| *d == dir);
            let subdirs = edges[start..end]
                .iter()
                .filter(|(_, c)| self.is_dir(index, c.ino))
                .count() as u32;
            let node = &mut self.nodes[dir.0 as usize - 1];
            node.children = (start as u32, end as u32);
            node.nlink = 2 + subdirs;
            start = end;
        }
        self.children = edges.into_iter().map(|(_, c)| c).collect();
    }

    fn name_in<'i>(&'i self, index: &'i ValidIndex, c: &Child) -> &'i [u8] {
        let path = index
            .entry(EntryId(u64::from(c.named_by)))
            .map_or(&[][..], |e| &e.path[..]);
        path.get(c.name_at as usize..).unwrap_or_default()
    }

    /// Whether `ino` is a directory (the root or a directory entry).
    pub fn is_dir(&self, index: &ValidIndex, ino: Ino) -> bool {
        match self.node(ino) {
            Some(Node { entry: None, .. }) => true,
            Some(Node { entry: Some(e), .. }) => {
                index.entry(*e).is_some_and(|x| x.kind == EntryKind::Dir)
            }
            None => false,
        }
    }

    /// The node of `ino`, if it exists.
    pub fn node(&self, ino: Ino) -> Option<&Node> {
        self.nodes.get((ino.0 as usize).checked_sub(1)?)
    }

    /// The inode named `name` in directory `dir`.
    pub fn lookup(&self, index: &ValidIndex, dir: Ino, name: &[u8]) -> Option<Ino> {
        let kids = self.children_of(dir)?;
        kids.binary_search_by(|c| self.name_in(index, c).cmp(name))
            .ok()
            .map(|k| kids[k].ino)
    }

    fn children_of(&self, dir: Ino) -> Option<&[Child]> {
        let (a, b) = self.node(dir)?.children;
        self.children.get(a as usize..b as usize)
    }

    /// The names in directory `dir` from position `from` on: (name, inode).
    pub fn list<'i>(
        &'i self,
        index: &'i ValidIndex,
        dir: Ino,
        from: usize,
    ) -> impl Iterator<Item = (&'i [u8], Ino)> + 'i {
        self.children_of(dir)
            .unwrap_or(&[])
            .iter()
            .skip(from)
            .map(move |c| (self.name_in(index, c), c.ino))
    }

    /// Number of inodes, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
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
        assert_eq!(t.lookup(&idx, Ino(3), b"x"), Some(Ino(5)));
        assert_eq!(t.node(Ino(5)).unwrap().nlink, 2);
        assert_eq!(t.node(a).unwrap().nlink, 3);
        assert_eq!(t.node(Ino::ROOT).unwrap().nlink, 3);
        assert_eq!(t.node(Ino(3)).unwrap().parent, a);
        assert_eq!(t.lookup(&idx, Ino::ROOT, b"nope"), None);
        assert!(t.node(Ino(0)).is_none());
    }
}
