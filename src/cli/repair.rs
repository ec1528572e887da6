use super::human;
use anyhow::Result;
use clap::Args;
use clc::parity::salvage::{self, VolumeSalvage};
use std::path::PathBuf;

#[derive(Args)]
pub struct RepairArgs {
    /// First volume (NAME.001)
    pub archive: PathBuf,
    /// Print only damage and what was done
    #[arg(short, long)]
    pub quiet: bool,
}

/// Exit status: 0 repaired (or nothing to repair) and verified, 2 damage left.
pub fn run(a: RepairArgs) -> Result<i32> {
    super::check_location(&a.archive)?;
    let show = !a.quiet && clc::sys::stderr_is_tty();
    let Some(r) = clc::parity::repair_with(&a.archive, show)? else {
        return salvage_report(&a);
    };
    for p in r.before.iter().flat_map(|h| h.problems()) {
        println!("DAMAGED: {p}");
    }
    if r.rebuilt.is_empty() && r.lost.is_empty() && !a.quiet {
        println!("nothing to repair: every data and parity volume is intact");
    }
    for p in &r.rebuilt {
        println!("rebuilt {}", clc::diag::escape_path(p));
    }
    for (old, aside) in &r.moved {
        println!(
            "  the damaged {} was kept as {}",
            clc::diag::escape_path(old),
            clc::diag::escape_path(aside)
        );
    }
    if !r.lost.is_empty() {
        for h in &r.before {
            println!("{}", h.summary());
        }
        let lost: Vec<String> = r.lost.iter().map(|p| clc::diag::escape_path(p)).collect();
        println!(
            "NOT repaired (more damage than the parity covers): {}",
            lost.join(", ")
        );
    }
    if !r.rebuilt.is_empty() && !a.quiet {
        println!("repair took {:.2} s; checking the result:", r.seconds);
    }
    let code = super::verify::report(&a.archive, a.quiet)?;
    Ok(if r.lost.is_empty() { code } else { 2 })
}

/// No parity: say so, and tell from the inline frame headers which frames of which volume are intact.
fn salvage_report(a: &RepairArgs) -> Result<i32> {
    let base = clc::volumes::base_of(&a.archive);
    println!(
        "no parity volumes ({}, …): nothing can be rebuilt. Frames found through their inline headers:",
        clc::diag::escape_path(&clc::volumes::parity_path(&base, 1))
    );
    let vols = salvage::scan(&base);
    for v in &vols {
        println!("{}", describe(v));
    }
    if vols.iter().all(VolumeSalvage::is_clean) && !vols.is_empty() {
        println!("no damage found in the frames");
        return super::verify::report(&a.archive, a.quiet);
    }
    println!(
        "`clc extract --keep-going {} -o DEST` restores every file whose frames are intact (it needs the \
         index in the last volume); no salvaged archive is written",
        clc::diag::escape_path(&a.archive)
    );
    let _ = super::verify::report(&a.archive, true);
    Ok(2)
}

fn describe(v: &VolumeSalvage) -> String {
    let name = clc::diag::escape_path(&v.path);
    if let Some(why) = &v.unreadable {
        return format!("  {name}: {why}: every frame in it is lost");
    }
    let mut ids = v.intact.clone();
    ids.sort_unstable();
    let mut s = format!(
        "  {name}: {} intact frame{} ({}{})",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        human(v.intact_bytes),
        if ids.is_empty() {
            String::new()
        } else {
            format!(", ids {}", clc::parity::health::ranges(&ids))
        }
    );
    if !v.header_ok {
        s.push_str("; volume header damaged");
    }
    for (id, off, why) in &v.damaged {
        s.push_str(&format!("; frame {id} at offset {off} damaged ({why})"));
    }
    if v.lost_bytes > 0 {
        s.push_str(&format!(
            "; {} outside any intact frame header",
            human(v.lost_bytes)
        ));
    }
    if v.has_footer {
        s.push_str("; index and footer present");
    }
    s
}
