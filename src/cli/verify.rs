use super::human;
use anyhow::Result;
use clap::Args;
use clc::archive::Archive;
use clc::parity::Health;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct VerifyArgs {
    /// First volume (NAME.001)
    pub archive: PathBuf,
    /// Print only damage
    #[arg(short, long)]
    pub quiet: bool,
    /// Check only what this snapshot needs (default: every frame and every snapshot)
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
}

pub fn run(a: VerifyArgs) -> Result<i32> {
    super::check_location(&a.archive)?;
    if a.snapshot.is_some() {
        let ar = super::open(&a.archive, &a.snapshot)?;
        return Ok(if print_frames(&ar, a.quiet, true) {
            2
        } else {
            0
        });
    }
    report(&a.archive, a.quiet)
}

/// Checks every frame through the index and, when parity volumes exist, every data and parity volume
/// stripe by stripe; prints the damage and whether `clc repair` can fix it. Exit status: 0 all intact,
/// 1 only parity volumes damaged (the data is intact), 2 data damaged or the archive does not open.
pub fn report(path: &Path, quiet: bool) -> Result<i32> {
    let opened = Archive::open(path);
    let parity = clc::parity::check(path);
    let mut data_bad = match &opened {
        Ok(ar) => print_frames(ar, quiet, false),
        Err(e) => {
            if matches!(&parity, Ok(sets) if sets.is_empty()) {
                return Err(anyhow::anyhow!("{e}"));
            }
            println!("DAMAGED: {e}");
            true
        }
    };
    let parity_bad = match &parity {
        Ok(sets) => {
            let mut bad = false;
            for h in sets {
                data_bad |= h.data_damaged();
                bad |= print_parity(h, quiet);
            }
            bad
        }
        Err(e) => {
            println!("DAMAGED: {e}");
            println!("NOT repairable: no usable parity header");
            true
        }
    };
    Ok(if data_bad {
        2
    } else if parity_bad {
        1
    } else {
        0
    })
}

/// Prints frame damage (of the selected snapshot only, or of everything); returns whether there was any.
fn print_frames(ar: &Archive, quiet: bool, selected: bool) -> bool {
    let rep = if selected {
        clc::verify::verify_selected(ar)
    } else {
        clc::verify::verify(ar)
    };
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
                    ar.selected().map_or("", |s| &s.record.name)
                ),
                n => format!(", {n} snapshots"),
            };
            println!(
                "ok: {} frames, {} decoded and checked, {} volumes{snaps}",
                rep.frames_ok,
                human(rep.bytes_ok),
                ar.volume_paths().len()
            );
        }
        false
    } else {
        println!("{} problems found", rep.damages.len());
        true
    }
}

/// Prints the parity check; returns whether any volume needs repair.
pub fn print_parity(h: &Health, quiet: bool) -> bool {
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
    !problems.is_empty()
}
