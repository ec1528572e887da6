//! Which directory listings carry attributes, learnt from what the walker does.
//!
//! The mount asks the kernel for READDIRPLUS in its auto mode: the first listing call of a directory
//! (and one made after names of it were looked up) is a READDIRPLUS, and the kernel makes an inode and
//! a dentry for every name whose attributes come with it. A walker that stats what it lists (`ls -lR`,
//! `du`, `find -exec stat`) then needs no LOOKUP per name; a bare `find` needs none of them, and made
//! ~1 million inodes for nothing (6.3 s against squashfuse's 0.5 s, docs/BENCHMARKS.md 5.4-5.6).
//!
//! A READDIRPLUS may be answered with fewer names than fit, and the kernel makes no inode for `.` and
//! `..`: a listing answered *names only* replies with the two dots alone, after which the kernel asks
//! for the rest with plain READDIR (auto mode: position > 0 and no lookup in the directory since).
//!
//! The evidence is the LOOKUPs of names that are not directories: a walker that stats what it lists
//! looks up every name a names-only listing gave it; `find` looks up only the directories it enters.
//! Each listing's choice is made when it starts, from the lookups since the one before:
//! * after a names-only listing, [`HITS`] or more lookups of non-directories switch attributes on,
//!   fewer switch them off;
//! * while they are on, every [`PROBE`]th listing is answered names only, a probe of whether the
//!   walker still stats (a listing with attributes shows nothing: the walker's stats need no request).
//!
//! A listing of at most [`SMALL`] names always carries attributes (and is left out of the evidence):
//! making a few inodes costs the kernel less than the round trip a names-only listing adds (and the
//! LOOKUP of each subdirectory entered): a bare `find` of a documentation tree of 511 small directories
//! took 0.26 s with every listing names only, 0.10 s with attributes (docs/BENCHMARKS.md 5.6).
//!
//! The mount starts with attributes off. Concurrent walkers share the evidence: the choice may be
//! wrong for one of them, which costs time (lookups or unneeded inodes), never a wrong answer.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A listing of at most this many names carries attributes, whatever the walker does.
pub const SMALL: u64 = 32;
/// Lookups of non-directories after a names-only listing that show a walker stats what it lists.
pub const HITS: u32 = 4;
/// While attributes are on, one listing in this many is answered names only (a probe).
pub const PROBE: u32 = 8;

#[derive(Default)]
struct State {
    /// The walker stats what it lists (attributes on).
    stats: bool,
    /// The last listing was answered names only.
    last_names: bool,
    /// Listings answered while attributes were on (for the probes).
    on: u32,
}

/// The evidence and the choice (one per mount).
#[derive(Default)]
pub struct Walk {
    hits: AtomicU32,
    state: Mutex<State>,
    /// Listings answered with attributes and names only (for `CLC_TRACE`'s report).
    with_attrs: AtomicU64,
    names_only: AtomicU64,
    /// READDIR and READDIRPLUS requests answered.
    requests: AtomicU64,
    /// FUSE_OPENDIR requests (answered or ENOSYS).
    dir_opens: AtomicU64,
}

impl Walk {
    /// A lookup found a name; `dir`: it is a directory (which tells nothing: every walker enters them).
    pub fn looked_up(&self, dir: bool) {
        if !dir {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A READDIR or READDIRPLUS request came.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A FUSE_OPENDIR came.
    pub fn opened_dir(&self) {
        self.dir_opens.fetch_add(1, Ordering::Relaxed);
    }

    /// A listing starts (a READDIRPLUS at position 0): answer it with attributes?
    pub fn attrs(&self) -> bool {
        let hits = self.hits.swap(0, Ordering::Relaxed);
        let mut s = self.state.lock();
        if s.last_names {
            s.stats = hits >= HITS;
        } else if hits >= HITS {
            s.stats = true;
        }
        let names = if s.stats {
            s.on = s.on.wrapping_add(1);
            s.on % PROBE == 0
        } else {
            true
        };
        s.last_names = names;
        let n = if names {
            &self.names_only
        } else {
            &self.with_attrs
        };
        n.fetch_add(1, Ordering::Relaxed);
        !names
    }

    /// What the trace reports at unmount.
    pub fn summary(&self) -> String {
        format!(
            "listings started: {} with attributes, {} names only; {} listing requests; {} directory opens",
            self.with_attrs.load(Ordering::Relaxed),
            self.names_only.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
            self.dir_opens.load(Ordering::Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A walk of `dirs` directories: each listed (the choice recorded), then `lookups` lookups of its
    /// non-directories (a stat walk looks up only the names a names-only listing gave).
    fn walk(w: &Walk, dirs: usize, stats: bool) -> Vec<bool> {
        (0..dirs)
            .map(|_| {
                let a = w.attrs();
                w.looked_up(true); // entering a subdirectory
                if stats && !a {
                    for _ in 0..20 {
                        w.looked_up(false);
                    }
                }
                a
            })
            .collect()
    }

    #[test]
    fn a_bare_find_gets_names_only() {
        let w = Walk::default();
        assert!(walk(&w, 100, false).iter().all(|a| !a));
    }

    #[test]
    fn a_stat_walk_gets_attributes_but_for_probes() {
        let w = Walk::default();
        let a = walk(&w, 81, true);
        assert!(!a[0], "the first listing is names only");
        let on = a[1..].iter().filter(|&&x| x).count();
        assert_eq!(on, 70, "{a:?}"); // 80 listings, one in PROBE a probe
        assert!(!a[PROBE as usize], "the probe");
    }

    #[test]
    fn a_find_after_a_stat_walk_turns_attributes_off_at_the_next_probe() {
        let w = Walk::default();
        walk(&w, 10, true);
        let a = walk(&w, 20, false);
        let first_off = a.iter().position(|x| !x).unwrap();
        assert!(first_off < PROBE as usize, "{a:?}");
        assert!(a[first_off..].iter().all(|x| !x), "{a:?}");
    }

    #[test]
    fn a_few_lookups_are_no_walk() {
        let w = Walk::default();
        w.attrs();
        for _ in 0..HITS - 1 {
            w.looked_up(false);
        }
        assert!(!w.attrs());
        for _ in 0..HITS {
            w.looked_up(false);
        }
        assert!(w.attrs());
    }
}
