//! `clc verify`: reads every frame of every volume, checks inline headers, decodes and checks checksums,
//! and names, for each damage, the volume, offset, frame and the files it touches.

use crate::archive::{Archive, Kind};
use crate::diag::Progress;
use crate::format::index::{EntryId, EntryKind, FrameId};
use rayon::prelude::*;

/// How many of the files a damaged frame touches are named.
const SHOWN: usize = 5;

/// `a, b, c and N more`, or `(none)`.
fn files_line(ar: &Archive, count: u64, ids: &[EntryId]) -> String {
    if ids.is_empty() {
        return "(none)".into();
    }
    let names: Vec<String> = ids.iter().map(|&id| ar.path_of(id)).collect();
    let more = count.saturating_sub(ids.len() as u64);
    match more {
        0 => names.join(", "),
        n => format!("{} and {n} more", names.join(", ")),
    }
}

/// One problem found.
#[derive(Debug, Clone, Default)]
pub struct Damage {
    /// The whole problem, one line.
    pub line: String,
    /// `volume` (missing, wrong or unreadable), `frame` (fails to read, decode or check) or `file` (its
    /// bytes are known to be damaged).
    pub what: &'static str,
    pub frame: Option<u32>,
    pub volume: Option<String>,
    pub offset: Option<u64>,
    /// Why, without the place.
    pub cause: String,
    /// The files whose data is affected (all of them; `line` names the first five), in the tree the
    /// archive was opened at.
    pub files: Vec<String>,
    /// A damaged frame of an archive with snapshots: the snapshots with files in it (`line` names them).
    pub snapshots: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub frames_ok: u64,
    pub bytes_ok: u64,
    pub damages: Vec<Damage>,
    pub notes: Vec<String>,
}

/// Checks every frame of the archive, every snapshot's tree, and that no volume lies past the newest
/// complete footer.
pub fn verify(ar: &Archive) -> Report {
    verify_with(ar, &Progress::hidden())
}

/// [`verify`], showing the frames and bytes checked on `progress`.
pub fn verify_with(ar: &Archive, progress: &Progress) -> Report {
    let frames: Vec<u32> = (0..ar.index().frames().len() as u32).collect();
    let mut rep = check(ar, &frames, progress);
    if let Some(h) = ar.history() {
        for p in &h.stray {
            rep.damages.push(Damage {
                what: "volume",
                line: format!(
                    "{}: after the newest complete footer, so in no snapshot (an interrupted append, or \
                     the rest of a snapshot whose last volume is missing or damaged)",
                    crate::diag::escape_path(p)
                ),
                ..Damage::default()
            });
        }
    }
    let bad: Vec<FrameId> = rep
        .damages
        .iter()
        .filter_map(|d| d.frame.map(FrameId))
        .collect();
    for k in 0..ar.snapshots().len() {
        let name = crate::diag::escape(ar.snapshots()[k].record.name.as_bytes());
        match ar.tree(k) {
            Err(e) => rep.damages.push(Damage {
                what: "snapshot",
                cause: e.to_string(),
                line: format!("snapshot {name}: {e}"),
                ..Damage::default()
            }),
            Ok(tree) if !bad.is_empty() => {
                let hit = tree.files_in_frames(&bad, 0);
                let framed = rep.damages.iter_mut().filter(|d| d.frame.is_some());
                for (d, (count, _)) in framed.zip(hit) {
                    if count > 0 {
                        d.snapshots.push(name.clone());
                    }
                }
            }
            Ok(_) => {}
        }
    }
    for d in rep.damages.iter_mut().filter(|d| !d.snapshots.is_empty()) {
        d.line = format!("{}; snapshots: {}", d.line, d.snapshots.join(", "));
    }
    rep
}

/// Checks the frames that the selected tree's files need (and their dictionaries).
pub fn verify_selected(ar: &Archive) -> Report {
    let idx = ar.index();
    let mut need: std::collections::BTreeSet<u32> = std::collections::BTreeSet::new();
    for (id, e) in idx.entries_with_ids() {
        if e.kind == EntryKind::File {
            need.extend(idx.frames_of(id).into_iter().map(|f| f.0));
        }
    }
    let dicts: Vec<u32> = need
        .iter()
        .filter_map(|&f| idx.dict_spans(FrameId(f)))
        .flatten()
        .map(|s| s.frame.0)
        .collect();
    need.extend(dicts);
    check(
        ar,
        &need.into_iter().collect::<Vec<_>>(),
        &Progress::hidden(),
    )
}

thread_local! {
    /// A pool thread's buffers for a frame's stored and decoded bytes while [`check`] runs.
    static BUFS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

fn check(ar: &Archive, frames: &[u32], progress: &Progress) -> Report {
    let mut rep = Report::default();
    for p in ar.volume_problems() {
        rep.damages.push(Damage {
            what: "volume",
            cause: p.clone(),
            line: p,
            ..Damage::default()
        });
    }
    if let Kind::Legacy(k) = ar.kind() {
        rep.notes.push(format!(
            "CL_Compressor {k} archive: frames carry no content checksums; checked that every frame decodes to \
             its declared size, that file sizes add up to the stream, and that every duplicate's original exists"
        ));
    }
    let results: Vec<(u32, Result<u64, crate::Error>)> = frames
        .par_iter()
        .map(|&i| {
            // Each pool thread reads and decodes into the same two buffers, frame after frame (a fresh
            // pair per frame faulted in every byte: docs/BENCHMARKS.md 11.14); freed below.
            let r = BUFS.with_borrow_mut(|(stored, out)| {
                ar.read_frame_reusing(FrameId(i), stored, out)
                    .map(|()| out.len() as u64)
            });
            if let Some(f) = ar.index().frames().get(i as usize) {
                progress.bytes(u64::from(f.raw_len));
            }
            progress.items(1);
            (i, r)
        })
        .collect();
    rayon::broadcast(|_| BUFS.take());
    let bad: Vec<FrameId> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| FrameId(*i))
        .collect();
    // Linear in the index whatever it shares (see `files_in_frames`); every file is named for --json, the
    // first SHOWN in the line.
    let mut touched = ar.index().files_in_frames(&bad, usize::MAX).into_iter();
    for (i, r) in results {
        match r {
            Ok(n) => {
                rep.frames_ok += 1;
                rep.bytes_ok += n;
            }
            Err(err) => {
                let (count, ids) = touched.next().unwrap_or_default();
                let (volume, offset, cause) = match &err {
                    crate::Error::Frame {
                        volume,
                        offset,
                        cause,
                        ..
                    } => (Some(volume.clone()), Some(*offset), cause.to_string()),
                    e => (None, None, e.to_string()),
                };
                rep.damages.push(Damage {
                    line: format!(
                        "{err}; files: {}",
                        files_line(ar, count, &ids[..ids.len().min(SHOWN)])
                    ),
                    what: "frame",
                    frame: Some(i),
                    volume,
                    offset,
                    cause,
                    // Escaped as everywhere, so that they match extract's `damaged` list.
                    files: ids.iter().map(|&id| ar.path_of(id)).collect(),
                    snapshots: Vec::new(),
                });
            }
        }
    }
    for (id, why) in ar.damaged() {
        rep.damages.push(Damage {
            line: format!("{}: {why}", ar.path_of(id)),
            what: "file",
            cause: why.to_string(),
            files: vec![ar.path_of(id)],
            ..Damage::default()
        });
    }
    rep
}
