use super::human;
use anyhow::Result;
use clap::Args;
use clc::archive::Archive;
use std::path::PathBuf;

#[derive(Args)]
pub struct SnapshotsArgs {
    /// First volume (NAME.001)
    pub archive: PathBuf,
    /// One JSON array of snapshots
    #[arg(long)]
    pub json: bool,
}

/// One line per snapshot, oldest first: name, time, source, files, their bytes, bytes added.
pub fn run(a: SnapshotsArgs) -> Result<i32> {
    let ar = Archive::open(&a.archive)?;
    let list = clc::report::snapshots_json(&ar);
    if a.json {
        println!("{}", serde_json::Value::Array(list));
        return Ok(0);
    }
    if !ar.versioned() {
        println!(
            "{}: no snapshots (made without --append: one tree; `clc pack … --append` adds snapshots)",
            a.archive.display()
        );
        return Ok(0);
    }
    for s in &list {
        let n = |k: &str| s[k].as_u64().unwrap_or(0);
        println!(
            "{}  {}  {}  {} files  {}  added {}",
            s["name"].as_str().unwrap_or(""),
            s["utc"].as_str().unwrap_or(""),
            s["source"].as_str().unwrap_or(""),
            n("files"),
            human(n("bytes_in")),
            human(n("bytes_added"))
        );
    }
    Ok(0)
}
