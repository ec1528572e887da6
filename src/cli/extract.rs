use super::Common;
use anyhow::Result;
use clap::Args;
use clc::diag::Warnings;
use clc::extract::{normalize_sel, ExtractOptions};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExtractArgs {
    /// First volume (NAME.001)
    pub archive: PathBuf,
    /// Destination directory
    #[arg(short, long, value_name = "DEST")]
    pub output: PathBuf,
    /// Only these paths (and what is below them)
    pub paths: Vec<PathBuf>,
    /// Restore every intact file and list the damaged ones instead of stopping at the first
    #[arg(long)]
    pub keep_going: bool,
    /// Print what was restored (counts, damaged files) as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// The snapshot to restore (default: the newest)
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    /// Restore modes exactly as archived when not root (root always does; others clear the umask's bits)
    #[arg(long)]
    pub same_permissions: bool,
    #[command(flatten)]
    pub common: Common,
}

pub fn run(a: ExtractArgs) -> Result<i32> {
    let cfg = a.common.config(&[])?;
    super::check_location(&a.archive)?;
    let ar = super::open(&a.archive, &a.snapshot)?;
    let warn = Warnings::new(false);
    let sel: Vec<Vec<u8>> = a
        .paths
        .iter()
        .map(|p| normalize_sel(p.as_os_str().as_bytes()))
        .collect();
    let opts = ExtractOptions {
        dest: a.output.clone(),
        // `/` or `.` names the packed directory itself: everything.
        paths: if sel.iter().any(|p| p.is_empty()) {
            Vec::new()
        } else {
            sel
        },
        keep_going: a.keep_going,
        progress: !a.common.quiet && clc::sys::stderr_is_tty(),
        same_permissions: a.same_permissions,
    };
    let t0 = std::time::Instant::now();
    let decoder = clc::gpu::GpuDecoder::for_frames(&cfg, ar.index().frames(), a.common.quiet)?;
    let st = match &decoder {
        Some(d) => clc::extract::extract(&ar, &cfg, &opts, Box::new(d), &warn)?,
        None => clc::extract::extract(&ar, &cfg, &opts, Box::new(clc::cache::CpuDecoder), &warn)?,
    };
    let seconds = t0.elapsed().as_secs_f64();
    let said = decoder.as_ref().and_then(|d| d.finish());
    let gpu_line = decoder.as_ref().map(|d| {
        use std::sync::atomic::Ordering::Relaxed;
        match &said {
            Some(why) if d.not_opened() => why.clone(),
            _ => format!(
                "GPU decoded {}, the CPU {} beside it; {} redone on the CPU; {} taken back from the GPU{}",
                super::plural(d.gpu_frames.load(Relaxed), "frame"),
                d.cpu_share_frames.load(Relaxed),
                d.cpu_frames.load(Relaxed),
                d.taken_frames.load(Relaxed),
                said.as_ref().map_or(String::new(), |s| format!(" ({s})"))
            ),
        }
    });
    if let Some(d) = &decoder {
        clc::diag::trace::note(&format!(
            "decode: GPU's share of the decoded bytes {} per mille",
            d.share()
        ));
    }
    clc::diag::trace::report();
    // Some OpenCL drivers abort while tearing down at exit; the process ends now anyway.
    std::mem::forget(decoder);
    if a.json {
        println!(
            "{:#}",
            clc::summary::extract_json(&st, seconds, warn.count())
        );
    } else {
        if !st.damaged.is_empty() {
            eprintln!(
                "clc: {} not restored:",
                super::plural(st.damaged.len() as u64, "damaged file")
            );
            for d in &st.damaged {
                eprintln!("  {d}");
            }
        }
        if !a.common.quiet {
            if let Some(l) = gpu_line {
                println!("{l}");
            }
            println!("{}", clc::summary::extract_text(&st, seconds));
        }
    }
    Ok(if !st.damaged.is_empty() {
        2
    } else if warn.count() > 0 {
        1
    } else {
        0
    })
}
