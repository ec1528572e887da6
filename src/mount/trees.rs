//! The trees a mount serves (FORMAT.md 10.6): one tree at the root (an archive made without `--append`,
//! or `--snapshot NAME`), or, for an archive made with `--append`, one directory per snapshot at the
//! root, named by the snapshot, each snapshot's tree built the first time it is looked into (so that
//! mounting an archive of many snapshots costs no more than opening it).
//!
//! Inode numbers: a single tree uses its own numbers ([`Inodes`]: the root 1, entry `i` at `i + 2`).
//! With snapshots, the root (1) is the list of snapshots and snapshot `k`'s inode `i` is
//! `(k + 1) << TREE_SHIFT | i`; its root directory is `(k + 1) << TREE_SHIFT | 1`.

use super::inodes::{Ino, Inodes};
use crate::archive::Archive;
use crate::format::index::ValidIndex;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Inode numbers of one snapshot's tree fit below this bit (2^40 entries).
pub const TREE_SHIFT: u32 = 40;

/// A tree and its inode table.
pub struct Tree {
    pub index: ValidIndex,
    pub inodes: Inodes,
}

impl Tree {
    pub fn new(index: ValidIndex) -> Tree {
        let inodes = Inodes::build(&index);
        Tree { index, inodes }
    }
}

/// One snapshot directory of the root.
pub struct Snap {
    pub name: Vec<u8>,
    pub time: SystemTime,
    tree: OnceLock<Result<Arc<Tree>, String>>,
}

pub enum Trees {
    Single(Arc<Tree>),
    Snapshots(Vec<Snap>),
}

/// Where an inode lives.
pub enum Place {
    /// The root of the snapshot layout.
    Top,
    /// Snapshot `k`'s directory at the root, not yet built or failed (`Err`: why).
    In {
        tree: Arc<Tree>,
        /// Which tree (0 for a single tree; k + 1 for snapshot k).
        slot: u64,
        local: Ino,
    },
}

impl Trees {
    /// The layout for `ar`: snapshots when it has them and `all` is asked for, else its selected tree.
    pub fn new(ar: &Archive, all: bool) -> Trees {
        if !all || !ar.versioned() {
            return Trees::Single(Arc::new(Tree::new(ar.index().clone())));
        }
        let snaps = ar
            .snapshots()
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let t = s.record.time;
                let time = if t >= 0 {
                    UNIX_EPOCH + Duration::from_secs(t as u64)
                } else {
                    UNIX_EPOCH
                };
                let tree = OnceLock::new();
                // The tree the archive opened at (the newest) is ready: no need to decode it again.
                if ar.selected_at() == Some(k) {
                    let _ = tree.set(Ok(Arc::new(Tree::new(ar.index().clone()))));
                }
                Snap {
                    name: s.record.name.as_bytes().to_vec(),
                    time,
                    tree,
                }
            })
            .collect();
        Trees::Snapshots(snaps)
    }

    /// The global number of tree `slot`'s local inode.
    pub fn global(slot: u64, local: Ino) -> Ino {
        if slot == 0 {
            local
        } else {
            Ino(slot << TREE_SHIFT | local.0)
        }
    }

    /// The snapshot directories (empty for a single tree).
    pub fn snaps(&self) -> &[Snap] {
        match self {
            Trees::Single(_) => &[],
            Trees::Snapshots(s) => s,
        }
    }

    /// The tree of snapshot `k`, built on first use with `ar`.
    pub fn snapshot(&self, ar: &Archive, k: usize) -> Result<Arc<Tree>, String> {
        let s = &self.snaps()[k];
        s.tree
            .get_or_init(|| {
                ar.tree(k)
                    .map(|idx| Arc::new(Tree::new(idx)))
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    /// Where global inode `ino` lives; `Err` with the reason when a snapshot's tree cannot be built,
    /// `Ok(None)` when there is no such inode.
    pub fn place(&self, ar: &Archive, ino: Ino) -> Result<Option<Place>, String> {
        match self {
            Trees::Single(t) => Ok(t.inodes.node(ino).is_some().then(|| Place::In {
                tree: t.clone(),
                slot: 0,
                local: ino,
            })),
            Trees::Snapshots(snaps) => {
                if ino == Ino::ROOT {
                    return Ok(Some(Place::Top));
                }
                let slot = ino.0 >> TREE_SHIFT;
                let local = Ino(ino.0 & ((1 << TREE_SHIFT) - 1));
                if slot == 0 || slot as usize > snaps.len() {
                    return Ok(None);
                }
                let tree = self.snapshot(ar, slot as usize - 1)?;
                if tree.inodes.node(local).is_none() {
                    return Ok(None);
                }
                Ok(Some(Place::In { tree, slot, local }))
            }
        }
    }

    /// The inodes all trees hold now (for statfs): built trees only.
    pub fn inode_count(&self) -> u64 {
        match self {
            Trees::Single(t) => t.inodes.len() as u64,
            Trees::Snapshots(s) => {
                1 + s
                    .iter()
                    .filter_map(|s| s.tree.get()?.as_ref().ok().map(|t| t.inodes.len() as u64))
                    .sum::<u64>()
            }
        }
    }
}
