//! What `pack`, `extract` and `verify` say when they are done, as text lines and as JSON (`--json`), in one
//! vocabulary shared with `info`: entries are files, hardlinks, dirs, symlinks and other (FIFOs, sockets,
//! devices); frames are counted as `LZ_EXT3_GPU`, `LZ_EXT3_CPU` and `RAW` (the form of the CL_Compressor
//! clc replaces: frames compressed on the GPU, compressed on the CPU, stored as they are, whatever the
//! codec), and the reduction is that of the data (the frames' stored bytes against the bytes read).

use crate::archive::Archive;
use crate::extract::ExtractStats;
use crate::format::codec::Codec;
use crate::format::frame::FLAG_GPU;
use crate::format::index::ValidIndex;
use crate::pack::PackStats;
use crate::verify::Report;
use serde_json::{json, Value};
use std::path::PathBuf;

/// `1 volume`, `2 volumes`, `0 files`: `n` and the word, plural unless `n` is 1.
pub fn plural(n: u64, word: &str) -> String {
    match (n, word) {
        (1, w) => format!("1 {w}"),
        (n, "other") => format!("{n} other"),
        (n, w) if w.ends_with('s') || w.ends_with('x') => format!("{n} {w}es"),
        (n, w) => format!("{n} {w}s"),
    }
}

/// Human-readable binary size: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human(n: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// `a` as a percentage of `b` (0 when `b` is 0).
fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// How the frames of an archive were stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Compressed on the GPU.
    pub gpu: u64,
    /// Compressed on the CPU.
    pub cpu: u64,
    /// Stored as they are (compression did not shrink them, or the codec is RAW).
    pub raw: u64,
    /// Bytes the frames hold (stored, not decoded).
    pub stored_bytes: u64,
}

impl FrameCounts {
    /// The counts of a written archive, from its frame table.
    pub fn of_index(idx: &ValidIndex) -> FrameCounts {
        let mut c = FrameCounts::default();
        for f in idx.frames() {
            if f.codec == Codec::Raw {
                c.raw += 1;
            } else if f.flags & FLAG_GPU != 0 {
                c.gpu += 1;
            } else {
                c.cpu += 1;
            }
            c.stored_bytes += u64::from(f.stored_len);
        }
        c
    }

    /// The counts of a pack that just ended.
    pub fn of_pack(st: &PackStats) -> FrameCounts {
        FrameCounts {
            gpu: st.gpu_frames,
            cpu: st.cpu_frames,
            raw: st.raw_frames,
            stored_bytes: st.frame_bytes,
        }
    }

    pub fn total(&self) -> u64 {
        self.gpu + self.cpu + self.raw
    }

    /// `LZ_EXT3_GPU=… (…%) | LZ_EXT3_CPU=… (…%) | RAW=… (…%) | Reduction = …%` for data of `bytes_in`
    /// bytes.
    pub fn line(&self, bytes_in: u64) -> String {
        let n = self.total();
        let part = |name: &str, k: u64| format!("{name}={k} ({:.1}%)", pct(k, n));
        format!(
            "{} | {} | {} | Reduction = {:.1}%",
            part("LZ_EXT3_GPU", self.gpu),
            part("LZ_EXT3_CPU", self.cpu),
            part("RAW", self.raw),
            reduction(self.stored_bytes, bytes_in)
        )
    }

    /// The counts as JSON fields (`frames`, `frames_gpu`, `frames_cpu`, `frames_raw`, `frame_bytes`,
    /// `reduction_percent`), added to `v`.
    pub fn add_json(&self, bytes_in: u64, v: &mut Value) {
        v["frames"] = json!(self.total());
        v["frames_gpu"] = json!(self.gpu);
        v["frames_cpu"] = json!(self.cpu);
        v["frames_raw"] = json!(self.raw);
        v["frame_bytes"] = json!(self.stored_bytes);
        v["reduction_percent"] = json!(round1(reduction(self.stored_bytes, bytes_in)));
    }
}

/// The share of `bytes_in` that storing it as `stored` bytes saved, in percent (0 for no input). Frames
/// are never larger than their data (a frame compression does not shrink is stored RAW), so this lies in
/// 0 … 100; the fixed cost of headers and index is in the volume sizes, not here.
pub fn reduction(stored: u64, bytes_in: u64) -> f64 {
    if bytes_in == 0 {
        0.0
    } else {
        (100.0 - pct(stored, bytes_in)).clamp(0.0, 100.0)
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn paths(v: &[PathBuf]) -> Vec<String> {
    v.iter().map(|p| p.display().to_string()).collect()
}

/// `120 files, 2 hardlinks, 14 dirs, 81 symlinks, 2 other`: the entry counts, as `info` and `pack` say
/// them.
pub fn entries_text(files: u64, hardlinks: u64, dirs: u64, symlinks: u64, other: u64) -> String {
    format!(
        "{}, {}, {}, {}, {}",
        plural(files, "file"),
        plural(hardlinks, "hardlink"),
        plural(dirs, "dir"),
        plural(symlinks, "symlink"),
        plural(other, "other")
    )
}

/// The lines `clc pack` prints on stdout when it is done.
pub fn pack_text(st: &PackStats) -> Vec<String> {
    let first = st
        .volumes
        .first()
        .map(|p| crate::diag::escape_path(p))
        .unwrap_or_default();
    let mut out = vec![format!(
        "packed {} ({}) into {first} ({}, {})",
        entries_text(st.files, st.hardlinks, st.dirs, st.symlinks, st.other),
        human(st.bytes_in),
        plural(st.volumes.len() as u64, "volume"),
        human(st.stored_bytes)
    )];
    if let Some(name) = &st.snapshot {
        out.push(format!(
            "snapshot {} (generation {}): {} unchanged since the last snapshot ({}, not read); {} stored \
             against earlier versions",
            crate::diag::escape(name.as_bytes()),
            st.generation,
            plural(st.unchanged_files, "file"),
            human(st.unchanged_bytes),
            plural(st.dict_frames, "frame")
        ));
    }
    out.extend([
        format!(
            "dedup: {} ({} saved); chunk dedup left {} unique of {}",
            plural(st.dup_files, "duplicate file"),
            human(st.dup_bytes),
            human(st.unique_bytes),
            human(st.bytes_in)
        ),
        format!("frames: {}", FrameCounts::of_pack(st).line(st.bytes_in)),
    ]);
    if st.gpu_redone > 0 {
        out.push(format!(
            "GPU frames redone on the CPU after a failed check: {}",
            st.gpu_redone
        ));
    }
    if let Some(p) = &st.parity {
        out.push(format!(
            "parity: {} ({}), {} ({:.1}% of the data volumes), stripe {}, {:.2} s",
            plural(p.paths.len() as u64, "volume"),
            paths(&p.paths).join(", "),
            human(p.bytes),
            pct(p.bytes, st.stored_bytes),
            human(u64::from(p.stripe_size)),
            p.seconds
        ));
    }
    let on = match &st.gpu {
        Some(g) => format!("the GPU {g} and the CPU"),
        None => "the CPU".to_string(),
    };
    out.push(format!(
        "time {:.2} s, {}/s, codec {} on {on}{}",
        st.seconds,
        human((st.bytes_in as f64 / st.seconds.max(1e-9)) as u64),
        st.codec,
        if st.warnings > 0 {
            format!(", {}", plural(st.warnings as u64, "warning"))
        } else {
            String::new()
        }
    ));
    out
}

/// `clc pack --json`: the summary as one object.
pub fn pack_json(st: &PackStats) -> Value {
    let mut v = json!({
        "archive": st.volumes.first().map(|p| p.display().to_string()),
        "volumes": paths(&st.volumes),
        "files": st.files,
        "hardlinks": st.hardlinks,
        "dirs": st.dirs,
        "symlinks": st.symlinks,
        "other": st.other,
        "bytes_in": st.bytes_in,
        "unique_bytes": st.unique_bytes,
        "duplicate_files": st.dup_files,
        "duplicate_bytes": st.dup_bytes,
        "bytes_stored": st.stored_bytes,
        "codec": st.codec,
        "gpu": st.gpu,
        "gpu_redone": st.gpu_redone,
        "seconds": round3(st.seconds),
        "warnings": st.warnings,
        "snapshot": st.snapshot,
        "generation": st.generation,
        "unchanged_files": st.unchanged_files,
        "unchanged_bytes": st.unchanged_bytes,
        "dict_frames": st.dict_frames,
        "parity": st.parity.as_ref().map(|p| json!({
            "volumes": paths(&p.paths),
            "bytes": p.bytes,
            "stripe_size": p.stripe_size,
            "seconds": round3(p.seconds),
        })),
    });
    FrameCounts::of_pack(st).add_json(st.bytes_in, &mut v);
    v
}

/// The line `clc extract` prints on stdout when it is done.
pub fn extract_text(st: &ExtractStats, seconds: f64) -> String {
    format!(
        "extracted {} ({}) in {seconds:.2} s, {}/s",
        entries_text(st.files, st.hardlinks, st.dirs, st.symlinks, st.other),
        human(st.bytes),
        human((st.bytes as f64 / seconds.max(1e-9)) as u64)
    )
}

/// `clc extract --json`: what was restored, and the files that were not (damaged).
pub fn extract_json(st: &ExtractStats, seconds: f64, warnings: usize) -> Value {
    json!({
        "files": st.files,
        "hardlinks": st.hardlinks,
        "dirs": st.dirs,
        "symlinks": st.symlinks,
        "other": st.other,
        "bytes": st.bytes,
        "seconds": round3(seconds),
        "damaged": st.damaged,
        "warnings": warnings,
    })
}

/// `clc verify --json`: the frames checked and each damage as an object.
pub fn verify_json(ar: &Archive, rep: &Report) -> Value {
    json!({
        "frames_ok": rep.frames_ok,
        "bytes_ok": rep.bytes_ok,
        "volumes": ar.volume_paths().len(),
        "notes": rep.notes,
        "damages": rep.damages.iter().map(|d| json!({
            "what": d.what,
            "message": d.line,
            "frame": d.frame,
            "volume": d.volume,
            "offset": d.offset,
            "cause": d.cause,
            "files": d.files,
            "snapshots": d.snapshots,
        })).collect::<Vec<_>>(),
    })
}

/// A param's text as JSON: an integer or a boolean when it is one, else the string.
pub fn param_value(s: &str) -> Value {
    if let Ok(n) = s.parse::<u64>() {
        json!(n)
    } else if let Ok(n) = s.parse::<i64>() {
        json!(n)
    } else if s == "true" || s == "false" {
        json!(s == "true")
    } else {
        json!(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "volume"), "1 volume");
        assert_eq!(plural(0, "volume"), "0 volumes");
        assert_eq!(plural(2, "other"), "2 other");
        assert_eq!(plural(1, "other"), "1 other");
        assert_eq!(plural(3, "duplicate file"), "3 duplicate files");
    }

    #[test]
    fn frame_line_has_the_old_form_and_a_sane_reduction() {
        let c = FrameCounts {
            gpu: 0,
            cpu: 3,
            raw: 1,
            stored_bytes: 25,
        };
        assert_eq!(
            c.line(100),
            "LZ_EXT3_GPU=0 (0.0%) | LZ_EXT3_CPU=3 (75.0%) | RAW=1 (25.0%) | Reduction = 75.0%"
        );
        // Nothing in, or tiny input: never a negative or absurd reduction.
        let none = FrameCounts::default();
        assert_eq!(
            none.line(0),
            "LZ_EXT3_GPU=0 (0.0%) | LZ_EXT3_CPU=0 (0.0%) | RAW=0 (0.0%) | Reduction = 0.0%"
        );
        assert_eq!(reduction(5, 5), 0.0);
        assert_eq!(reduction(7000, 5), 0.0);
        assert_eq!(reduction(0, 5), 100.0);
    }

    #[test]
    fn params_become_numbers_where_they_are() {
        assert_eq!(param_value("4194304"), json!(4_194_304));
        assert_eq!(param_value("-3"), json!(-3));
        assert_eq!(param_value("true"), json!(true));
        assert_eq!(param_value("0.1.0"), json!("0.1.0"));
        assert_eq!(param_value("lz_ext3"), json!("lz_ext3"));
    }

    #[test]
    fn sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
    }
}
