//! The index of a new generation: the entries of the scan (hardlinks resolved, files that could not be
//! read left out, stamps for the files cache of a versioned archive), the stream's rows, the frames as
//! written, and the parameters; and the archive id of a new archive.

use super::stream::Tables;
use crate::config::Config;
use crate::diag::escape_path;
use crate::diag::Warnings;
use crate::format::generation::{Bases, Earlier, GenIndex, FLAG_VERSIONED};
use crate::format::index::{Dict, Entry, EntryKind, Frame, Stamp, NONE};
use crate::scan::ScanEntry;
use std::collections::HashMap;
use std::path::Path;

/// What the index holds, counted for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// FIFOs, sockets and device nodes.
    pub other: u64,
    pub hardlinks: u64,
    pub dup_files: u64,
    pub dup_bytes: u64,
    /// The sum of the file entries' sizes.
    pub bytes_in: u64,
}

/// The entries of the tree `src` as scanned, with `link_of` (hardlink → its file) from the plan.
pub struct EntryBuilder<'a> {
    pub src: &'a Path,
    pub scanned: &'a [ScanEntry],
    pub link_of: &'a HashMap<usize, usize>,
    /// Files whose content the files cache knew: scan position → (content id or NONE, size).
    pub known: &'a HashMap<usize, (u64, u64)>,
    /// Stamp the files changed before this time (seconds, nanoseconds); `None`: no stamps (a plain
    /// archive). Files changed later are left unstamped so that a change within one clock tick of the
    /// read is never taken for no change (FORMAT.md 10.5).
    pub stamp_before: Option<(i64, u32)>,
}

impl EntryBuilder<'_> {
    /// One entry per scanned path, except files left out (unreadable) and hardlinks to them.
    pub fn entries(&self, t: &Tables, warn: &Warnings) -> (Vec<Entry>, Counts) {
        let mut c = Counts::default();
        // Scan position → entry id (NONE: left out); indexed, not hashed: this runs once per path
        // of the tree, also for an unchanged append, where it is most of the work after the scan.
        let mut new_id: Vec<u64> = vec![NONE; self.scanned.len()];
        let mut entries = Vec::with_capacity(self.scanned.len());
        // (content, size) of every file with content, for the duplicate counts.
        let mut contents: Vec<(u64, u64)> = Vec::with_capacity(self.scanned.len());
        for (i, s) in self.scanned.iter().enumerate() {
            let mut e = Entry::new(s.path.clone(), s.kind, s.mode);
            (e.uid, e.gid, e.mtime_sec, e.mtime_nsec, e.rdev) =
                (s.uid, s.gid, s.mtime_sec, s.mtime_nsec, s.rdev);
            e.xattrs = s.xattrs.clone();
            match s.kind {
                EntryKind::File => match self.link_of.get(&i) {
                    Some(&p) => {
                        let pid = new_id.get(p).copied().unwrap_or(NONE);
                        if pid == NONE {
                            warn.warn(format!(
                                "{}: hardlink target was left out, so is it",
                                escape_path(&s.abs)
                            ));
                            continue;
                        }
                        e.kind = EntryKind::Hardlink;
                        e.link = pid;
                        e.size = entries.get(pid as usize).map_or(0, |t: &Entry| t.size);
                        c.hardlinks += 1;
                    }
                    None => {
                        let got = t.entry_content.get(&i).or_else(|| self.known.get(&i));
                        let Some(&(content, size)) = got else {
                            continue; // unreadable: warned by the reader, left out entirely
                        };
                        e.link = content;
                        e.size = if content == NONE { 0 } else { size };
                        if content != NONE {
                            contents.push((content, e.size));
                        }
                        e.stamp = self.stamp(s);
                        c.files += 1;
                        c.bytes_in += e.size;
                    }
                },
                EntryKind::Symlink => {
                    e.target = s.target.clone();
                    e.size = s.target.len() as u64;
                    c.symlinks += 1;
                }
                EntryKind::Dir => c.dirs += 1,
                _ => c.other += 1,
            }
            new_id[i] = entries.len() as u64;
            entries.push(e);
        }
        // Every file after the first of its content is a duplicate (one content, one size).
        contents.sort_unstable();
        for w in contents.windows(2) {
            if w[0].0 == w[1].0 {
                c.dup_files += 1;
                c.dup_bytes += w[1].1;
            }
        }
        (entries, c)
    }

    fn stamp(&self, s: &ScanEntry) -> Option<Stamp> {
        let before = self.stamp_before?;
        ((s.ctime_sec, s.ctime_nsec) < before && (s.mtime_sec, s.mtime_nsec) < before).then_some(
            Stamp {
                ctime_sec: s.ctime_sec,
                ctime_nsec: s.ctime_nsec,
                ino: s.ino,
            },
        )
    }
}

/// The generation index's header and tables: everything but the entry area and the snapshots.
pub struct GenParts<'a> {
    pub cfg: &'a Config,
    pub src: &'a Path,
    pub generation: u32,
    pub versioned: bool,
    pub first_volume: u32,
    pub earlier: Vec<Earlier>,
    pub bases: Bases,
    /// BLAKE3s of earlier chunks that no generation holds yet (from chunk 0), computed by this run.
    pub old_hashes: Vec<[u8; 32]>,
    /// The mtime of `src` itself (the root is no entry), restored on DEST by extract.
    pub root_mtime: Option<(i64, u32)>,
    /// When the archive was made (Unix seconds; `SOURCE_DATE_EPOCH` when set, for reproducible archives).
    pub created: i64,
}

impl GenParts<'_> {
    /// The generation's flags (FORMAT.md 3.3).
    pub fn flags(&self) -> u32 {
        if self.versioned {
            FLAG_VERSIONED
        } else {
            0
        }
    }

    /// The generation index over the stream's rows `t`, the `frames` as written and their `dicts`. A
    /// versioned generation stores its chunks' BLAKE3s; a plain one does not (an append to it computes
    /// them once).
    pub fn build(
        self,
        t: Tables,
        counts: &Counts,
        frames: Vec<Frame>,
        dicts: Vec<Dict>,
    ) -> GenIndex {
        let flags = self.flags();
        let mut params = base_params(self.cfg, self.src);
        params.extend([
            ("bytes_in".into(), t.bytes_in.to_string()),
            ("unique_bytes".into(), t.unique_bytes.to_string()),
            ("entries_files".into(), counts.files.to_string()),
            ("entries_dirs".into(), counts.dirs.to_string()),
            ("created".into(), self.created.to_string()),
        ]);
        if let Some((sec, nsec)) = self.root_mtime {
            params.push(("root_mtime".into(), sec.to_string()));
            params.push(("root_mtime_nsec".into(), nsec.to_string()));
        }
        params.sort();
        let chunk_end = self.bases.chunks + t.chunks.len() as u64;
        let first = chunk_end - t.hashes.len() as u64 - self.old_hashes.len() as u64;
        let mut hashes = self.old_hashes;
        hashes.extend(t.hashes);
        let hashes_first = first;
        GenIndex {
            generation: self.generation,
            flags,
            first_volume: self.first_volume,
            earlier: self.earlier,
            bases: self.bases,
            params,
            frames,
            dicts,
            chunks: t.chunks,
            hashes_first,
            hashes,
            contents: t.contents,
            refs: t.refs,
            entry_area: Vec::new(),
            snapshots: Vec::new(),
        }
    }
}

fn base_params(cfg: &Config, src: &Path) -> Vec<(String, String)> {
    let mut params = vec![
        (
            "format_version".into(),
            crate::format::version_for(cfg.frame_codec()).to_string(),
        ),
        ("codec".into(), cfg.codec.name().into()),
        (
            "stream_order".into(),
            if cfg.order_similar { "similar" } else { "path" }.into(),
        ),
        ("frame_size".into(), cfg.frame_size.to_string()),
        (
            "adaptive_frames".into(),
            if cfg.adaptive_frames { "true" } else { "false" }.into(),
        ),
        ("small_frame_size".into(), cfg.frame_limits().0.to_string()),
        ("large_frame_size".into(), cfg.frame_limits().2.to_string()),
        ("volume_size".into(), cfg.volume_size.to_string()),
        ("chunk_min".into(), cfg.chunk_min.to_string()),
        ("chunk_avg".into(), cfg.chunk_avg.to_string()),
        ("chunk_max".into(), cfg.chunk_max.to_string()),
        ("hash_log".into(), cfg.hash_log.to_string()),
        ("hash_candidates".into(), cfg.hash_candidates.to_string()),
        (
            "good_enough_match".into(),
            cfg.good_enough_match.to_string(),
        ),
        ("subblock_size".into(), cfg.subblock_size.to_string()),
        ("clc_version".into(), env!("CARGO_PKG_VERSION").into()),
        ("source_root".into(), src.to_string_lossy().into_owned()),
    ];
    // Only where it shapes the frames, so that other packs' params (and archive ids) are unchanged.
    if cfg.frame_codec() == crate::codec::Codec::Zstd {
        params.push(("zstd_level".into(), cfg.zstd_level.to_string()));
    }
    if cfg.whole_below() > 0 {
        params.push(("chunk_files_from".into(), cfg.whole_below().to_string()));
    }
    params
}

/// blake3("clc-archive-id-v1" ‖ params ‖ listing)[0..16]: the same input and config give the same id.
pub fn archive_id(cfg: &Config, src: &Path, scanned: &[ScanEntry]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(b"clc-archive-id-v1");
    for (k, v) in base_params(cfg, src) {
        h.update(&(k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    // The same bytes in 64 KiB batches: an update per field cost 4-5 ms of a 13,000-file pack's
    // serial start on the 2-core host (docs/GPU.md run 113).
    let mut buf = Vec::with_capacity(1 << 16);
    for e in scanned {
        buf.extend_from_slice(&(e.path.len() as u64).to_le_bytes());
        buf.extend_from_slice(&e.path);
        buf.push(e.kind as u8);
        buf.extend_from_slice(&e.size.to_le_bytes());
        buf.extend_from_slice(&e.mtime_sec.to_le_bytes());
        buf.extend_from_slice(&e.mtime_nsec.to_le_bytes());
        if buf.len() >= 1 << 16 {
            h.update(&buf);
            buf.clear();
        }
    }
    h.update(&buf);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_id_hashes_every_entry_field_in_order_across_batches() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"x").unwrap();
        let warn = Warnings::new(true);
        let one = crate::scan::scan(t.path(), 1, &warn)
            .unwrap()
            .into_iter()
            .find(|e| e.path == b"f")
            .unwrap();
        // ~5,000 entries of ~45 bytes each: several 64 KiB batches, and one entry across each boundary.
        let scanned: Vec<ScanEntry> = (0..5_000u32)
            .map(|i| {
                let mut e = one.clone();
                e.path = format!("dir{}/file-{i}", i % 7).into_bytes();
                e.size = u64::from(i) * 3;
                e.mtime_sec = i64::from(i) - 2_500;
                e.mtime_nsec = i * 11;
                e
            })
            .collect();
        let cfg = Config::default();
        // The fields one update each, as archive ids were made before the batching.
        let mut h = blake3::Hasher::new();
        h.update(b"clc-archive-id-v1");
        for (k, v) in base_params(&cfg, t.path()) {
            h.update(&(k.len() as u64).to_le_bytes());
            h.update(k.as_bytes());
            h.update(&(v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        for e in &scanned {
            h.update(&(e.path.len() as u64).to_le_bytes());
            h.update(&e.path);
            h.update(&[e.kind as u8]);
            h.update(&e.size.to_le_bytes());
            h.update(&e.mtime_sec.to_le_bytes());
            h.update(&e.mtime_nsec.to_le_bytes());
        }
        let want = h.finalize();
        assert_eq!(
            &archive_id(&cfg, t.path(), &scanned)[..],
            &want.as_bytes()[..16]
        );
        // And every field counts.
        let mut other = scanned.clone();
        other[4_321].mtime_nsec += 1;
        assert_ne!(
            archive_id(&cfg, t.path(), &other),
            archive_id(&cfg, t.path(), &scanned)
        );
    }
}
