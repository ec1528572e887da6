use super::{human, plural};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct InfoArgs {
    /// First volume (NAME.001)
    pub archive: Option<PathBuf>,
    /// JSON instead of text
    #[arg(long)]
    pub json: bool,
    /// List the OpenCL devices instead
    #[arg(long)]
    pub devices: bool,
    /// The snapshot to describe (default: the newest)
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
}

pub fn run(a: InfoArgs) -> Result<i32> {
    if a.devices {
        return devices();
    }
    let Some(path) = a.archive else {
        bail!("info needs an archive (NAME.001) or --devices");
    };
    super::check_location(&path)?;
    let ar = super::open(&path, &a.snapshot)?;
    let v = clc::report::info_json(&ar);
    if a.json {
        println!("{v:#}");
        return Ok(0);
    }
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    println!("format:         {}", v["format"].as_str().unwrap_or(""));
    if let Some(t) = v["created_utc"].as_str() {
        println!("created:        {t} UTC");
    }
    println!(
        "entries:        {}",
        clc::summary::entries_text(
            n("files"),
            n("hardlinks"),
            n("dirs"),
            n("symlinks"),
            n("other")
        )
    );
    println!(
        "bytes in:       {} ({})",
        human(n("bytes_in")),
        n("bytes_in")
    );
    println!(
        "after dedup:    {} of unique files, {} of unique chunks",
        human(n("unique_file_bytes")),
        human(n("unique_chunk_bytes"))
    );
    println!(
        "stored:         {} in {}",
        human(n("bytes_stored")),
        plural(n("frames"), "frame")
    );
    let counts = clc::summary::FrameCounts {
        gpu: n("frames_gpu"),
        cpu: n("frames_cpu"),
        raw: n("frames_raw"),
        stored_bytes: n("bytes_stored"),
    };
    println!("frames:         {}", counts.line(n("bytes_in")));
    if let Some(m) = v["frames_per_codec"].as_object() {
        let parts: Vec<String> = m.iter().map(|(k, c)| format!("{k}={c}")).collect();
        println!("codecs:         {}", parts.join(" | "));
    }
    if n("subblock_frames") > 0 {
        println!(
            "sub-blocks:     {} in {} of {} frames (LZ_EXT3_SB, decoded in parallel)",
            human(n("subblock_size")),
            n("subblock_frames"),
            n("frames")
        );
    }
    if let Some(vols) = v["volumes"].as_array() {
        println!("volumes:        {}", vols.len());
        for vol in vols {
            let b = vol["bytes"].as_u64().map_or("missing".to_string(), human);
            println!("  {} ({b})", vol["path"].as_str().unwrap_or(""));
        }
    }
    if let Some(snaps) = v["snapshots"].as_array().filter(|s| !s.is_empty()) {
        println!(
            "snapshots:      {} (shown: {}); volumes in all: {}",
            snaps.len(),
            v["snapshot"].as_str().unwrap_or(""),
            human(n("bytes_total"))
        );
        for s in snaps {
            let m = |k: &str| s[k].as_u64().unwrap_or(0);
            println!(
                "  {}  {}  {} files, {}; added {}",
                s["name"].as_str().unwrap_or(""),
                s["utc"].as_str().unwrap_or(""),
                m("files"),
                human(m("bytes_in")),
                human(m("bytes_added"))
            );
        }
    }
    if let Some(p) = v["params"].as_object() {
        println!("parameters:");
        for (k, val) in p {
            match val.as_str() {
                Some(s) => println!("  {k} = {s}"),
                None => println!("  {k} = {val}"),
            }
        }
    }
    if n("damaged_files") > 0 {
        println!("damaged files:  {} (see clc verify)", n("damaged_files"));
    }
    Ok(0)
}

fn devices() -> Result<i32> {
    match clc::gpu::list_devices() {
        Ok(list) if !list.is_empty() => {
            for d in list {
                println!(
                    "{}: {} [{}] on {}, {} compute units, {}",
                    d.index,
                    d.name,
                    d.kind,
                    d.platform,
                    d.compute_units,
                    human(d.global_mem)
                );
            }
            Ok(0)
        }
        Ok(_) => {
            println!("no OpenCL devices");
            Ok(1)
        }
        Err(e) => {
            println!("no OpenCL: {e}");
            Ok(1)
        }
    }
}
