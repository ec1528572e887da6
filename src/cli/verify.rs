use super::{human, plural};
use anyhow::Result;
use clap::Args;
use clc::archive::Archive;
use clc::diag::Progress;
use clc::parity::Health;
use clc::verify::Report;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct VerifyArgs {
    /// First volume (NAME.001)
    pub archive: PathBuf,
    /// Print only damage
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the result as one JSON object on stdout, each damage an object
    #[arg(long)]
    pub json: bool,
    /// Check only what this snapshot needs (default: every frame and every snapshot)
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
}

pub fn run(a: VerifyArgs) -> Result<i32> {
    super::check_location(&a.archive)?;
    if a.snapshot.is_some() {
        let ar = super::open(&a.archive, &a.snapshot)?;
        let rep = clc::verify::verify_selected(&ar);
        let bad = !rep.damages.is_empty();
        if a.json {
            let mut v = clc::summary::verify_json(&ar, &rep);
            v["parity"] = json!(null);
            v["ok"] = json!(!bad);
            v["exit"] = json!(if bad { 2 } else { 0 });
            println!("{v:#}");
        } else {
            print_frames(&ar, &rep, a.quiet, true);
        }
        return Ok(if bad { 2 } else { 0 });
    }
    if a.json {
        return json_report(&a.archive);
    }
    report(&a.archive, a.quiet)
}

/// What verify found: the frames (when the archive opens) and the parity check.
struct Found {
    opened: clc::Result<(Archive, Report)>,
    parity: clc::Result<Vec<Health>>,
}

/// Format version 5's paged tree (FORMAT.md 12), which a mount of a plain archive reads instead of the
/// index: every page read and checked, and its records' paths and entries equal to the index's.
fn tree_damage(path: &Path, ar: &Archive) -> Option<clc::verify::Damage> {
    let damage = |cause: String| clc::verify::Damage {
        what: "index tree",
        line: format!("index tree (what the mount reads): {cause}"),
        cause,
        ..Default::default()
    };
    let tree = match clc::mount::paged::PagedTree::open(path, 4 << 20) {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => return Some(damage(e.to_string())),
    };
    let Ok(mut got) = tree.paths() else {
        return Some(damage(
            "a page does not read or check (the mount answers EIO for its names)".into(),
        ));
    };
    got.sort();
    let same = got.len() == ar.index().entries().len()
        && got
            .iter()
            .zip(ar.index().entries())
            .enumerate()
            .all(|(i, ((p, id), e))| *p == e.path && *id == i as u64);
    (!same).then(|| damage("its records do not match the index's entries".into()))
}

impl Found {
    /// Checks every frame, then (with parity volumes) every stripe, with progress on a terminal.
    fn check(path: &Path, show: bool) -> Found {
        let opened = Archive::open(path).map(|ar| {
            let r = {
                let frames = ar.index().frames();
                let p = Progress::new(
                    show,
                    "verify",
                    frames.iter().map(|f| u64::from(f.raw_len)).sum(),
                    frames.len() as u64,
                    "frames",
                );
                let mut r = clc::verify::verify_with(&ar, &p);
                p.finish();
                r.damages.extend(tree_damage(path, &ar));
                r
            };
            (ar, r)
        });
        let parity = clc::parity::check_with(path, show);
        Found { opened, parity }
    }

    /// Exit status: 0 all intact, 1 only parity volumes damaged (the data is intact), 2 data damaged.
    fn code(&self) -> i32 {
        let data_bad = match &self.opened {
            Ok((_, r)) => !r.damages.is_empty(),
            Err(_) => true,
        } || matches!(&self.parity, Ok(sets) if sets.iter().any(|h| h.data_damaged()));
        let parity_bad = match &self.parity {
            Ok(sets) => sets.iter().any(|h| !h.problems().is_empty()),
            Err(_) => true,
        };
        if data_bad {
            2
        } else if parity_bad {
            1
        } else {
            0
        }
    }
}

/// Checks every frame through the index and, when parity volumes exist, every data and parity volume
/// stripe by stripe; prints the damage and whether `clc repair` can fix it. Exit status: 0 all intact,
/// 1 only parity volumes damaged (the data is intact), 2 data damaged or the archive does not open.
pub fn report(path: &Path, quiet: bool) -> Result<i32> {
    let f = Found::check(path, !quiet && clc::sys::stderr_is_tty());
    match &f.opened {
        Ok((ar, rep)) => print_frames(ar, rep, quiet, false),
        Err(e) => {
            if matches!(&f.parity, Ok(sets) if sets.is_empty()) {
                return Err(anyhow::anyhow!("{e}"));
            }
            println!("DAMAGED: {e}");
        }
    }
    match &f.parity {
        Ok(sets) => {
            for h in sets {
                print_parity(h, quiet);
            }
        }
        Err(e) => {
            println!("DAMAGED: {e}");
            println!("NOT repairable: no usable parity header");
        }
    }
    Ok(f.code())
}

/// `verify --json`: `ok`, the frames checked, `damages` (objects: what, message, frame, volume, offset,
/// cause, files) and `parity` (null without parity volumes).
fn json_report(path: &Path) -> Result<i32> {
    let f = Found::check(path, clc::sys::stderr_is_tty());
    let mut v = match &f.opened {
        Ok((ar, rep)) => clc::summary::verify_json(ar, rep),
        Err(e) => {
            if matches!(&f.parity, Ok(sets) if sets.is_empty()) {
                return Err(anyhow::anyhow!("{e}"));
            }
            json!({
                "notes": [],
                "damages": [{"what": "archive", "message": e.to_string(), "cause": e.to_string(), "files": []}],
            })
        }
    };
    v["parity"] = match &f.parity {
        Ok(sets) if sets.is_empty() => json!(null),
        // One object per parity set (an archive made with --append has one per generation that wrote one).
        Ok(sets) => json!(sets
            .iter()
            .map(|h| json!({
                "notes": h.notes,
                "problems": h.problems(),
                "summary": h.summary(),
            }))
            .collect::<Vec<_>>()),
        Err(e) => {
            json!({"notes": [], "problems": [e.to_string()], "summary": "NOT repairable: no usable parity header"})
        }
    };
    let code = f.code();
    v["ok"] = json!(code == 0);
    v["exit"] = json!(code);
    println!("{v:#}");
    Ok(code)
}

/// Prints frame damage (of the selected snapshot only, or of everything).
fn print_frames(ar: &Archive, rep: &Report, quiet: bool, selected: bool) {
    for n in &rep.notes {
        println!("note: {n}");
    }
    for d in &rep.damages {
        println!("DAMAGED: {}", d.line);
    }
    if rep.damages.is_empty() {
        if !quiet {
            let snaps = match ar.snapshots().len() {
                0 => String::new(),
                _ if selected => format!(
                    ", snapshot {}",
                    clc::diag::escape(ar.selected().map_or("", |s| &s.record.name).as_bytes())
                ),
                n => format!(", {}", plural(n as u64, "snapshot")),
            };
            println!(
                "ok: {}, {} decoded and checked, {}{snaps}",
                plural(rep.frames_ok, "frame"),
                human(rep.bytes_ok),
                plural(ar.volume_paths().len() as u64, "volume")
            );
        }
    } else {
        println!("{} found", plural(rep.damages.len() as u64, "problem"));
    }
}

/// Prints the parity check.
fn print_parity(h: &Health, quiet: bool) {
    for n in &h.notes {
        println!("note: {n}");
    }
    let problems = h.problems();
    for p in &problems {
        println!("DAMAGED: {p}");
    }
    if !problems.is_empty() || !quiet {
        println!("{}", h.summary());
    }
}
