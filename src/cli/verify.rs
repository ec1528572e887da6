use super::human;
use anyhow::Result;
use clap::Args;
use clc::archive::Archive;
use std::path::PathBuf;

#[derive(Args)]
pub struct VerifyArgs {
    /// First volume (NAME.001)
    pub archive: PathBuf,
    /// Print only damage
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(a: VerifyArgs) -> Result<i32> {
    let ar = Archive::open(&a.archive)?;
    let rep = clc::verify::verify(&ar);
    for n in &rep.notes {
        println!("note: {n}");
    }
    for d in &rep.damages {
        println!("DAMAGED: {}", d.line);
    }
    if rep.damages.is_empty() {
        if !a.quiet {
            println!(
                "ok: {} frames, {} decoded and checked, {} volumes",
                rep.frames_ok,
                human(rep.bytes_ok),
                ar.volume_paths().len()
            );
        }
        Ok(0)
    } else {
        println!("{} problems found", rep.damages.len());
        Ok(2)
    }
}
