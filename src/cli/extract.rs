use super::{human, Common};
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
    let opts = ExtractOptions {
        dest: a.output.clone(),
        paths: a
            .paths
            .iter()
            .map(|p| normalize_sel(p.as_os_str().as_bytes()))
            .collect(),
        keep_going: a.keep_going,
        same_permissions: a.same_permissions,
    };
    let t0 = std::time::Instant::now();
    let decoder = clc::gpu::GpuDecoder::for_frames(&cfg, ar.index().frames(), a.common.quiet)?;
    let st = match &decoder {
        Some(d) => clc::extract::extract(&ar, &cfg, &opts, Box::new(d), &warn)?,
        None => clc::extract::extract(&ar, &cfg, &opts, Box::new(clc::cache::CpuDecoder), &warn)?,
    };
    if let (Some(d), false) = (&decoder, a.common.quiet) {
        use std::sync::atomic::Ordering::Relaxed;
        println!(
            "GPU decoded {} frames, the CPU {} beside it; {} redone on the CPU",
            d.gpu_frames.load(Relaxed),
            d.cpu_share_frames.load(Relaxed),
            d.cpu_frames.load(Relaxed)
        );
    }
    if let Some(d) = &decoder {
        clc::diag::trace::note(&format!(
            "decode: GPU share at the end {} per mille",
            d.share()
        ));
    }
    clc::diag::trace::report();
    // Some OpenCL drivers abort while tearing down at exit; the process ends now anyway.
    std::mem::forget(decoder);
    if !st.damaged.is_empty() {
        eprintln!("clc: {} damaged files not restored:", st.damaged.len());
        for d in &st.damaged {
            eprintln!("  {d}");
        }
        return Ok(2);
    }
    if !a.common.quiet {
        let s = t0.elapsed().as_secs_f64();
        println!(
            "extracted {} files ({}) in {:.2} s, {}/s",
            st.files,
            human(st.bytes),
            s,
            human((st.bytes as f64 / s.max(1e-9)) as u64)
        );
    }
    Ok(if warn.count() > 0 { 1 } else { 0 })
}
