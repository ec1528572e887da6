use super::Common;
use anyhow::Result;
use clap::Args;
use clc::codec::Codec;
use clc::diag::Warnings;
use clc::pack::{GpuUse, OpenAhead, PackOptions};
use std::path::PathBuf;

#[derive(Args)]
pub struct PackArgs {
    /// Directory to pack
    pub src: PathBuf,
    /// Archive name: volumes are NAME.001, NAME.002, …
    #[arg(short, long, value_name = "NAME")]
    pub output: PathBuf,
    /// Largest volume (123, 64K, 16M, 2G)
    #[arg(long, value_name = "SIZE")]
    pub volume_size: Option<String>,
    /// Bytes of unique data per frame (64K … 16M); no frame is larger (adaptive frames do not grow past it)
    #[arg(long, value_name = "SIZE")]
    pub frame_size: Option<String>,
    /// Frame codec: lz_ext3 (default), lz_ext3e (smaller; codec 4), zstd (codec 5; level ZSTD_LEVEL), lz4 or raw
    #[arg(long)]
    pub codec: Option<String>,
    /// Also write Reed–Solomon parity volumes NAME.p001, … able to rebuild this share of the data volumes
    /// (10 or 10%; config key PARITY)
    #[arg(long, value_name = "PCT")]
    pub parity: Option<String>,
    /// Overwrite an existing archive of that name
    #[arg(long, conflicts_with = "append")]
    pub force: bool,
    /// Print the summary as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// Add a snapshot of SRC to the archive NAME (creating it if there is none): only new data is
    /// stored, in new volumes; earlier volumes are never rewritten
    #[arg(long)]
    pub append: bool,
    /// Name of the new snapshot (default: the UTC time, 2026-11-30T05-28-00Z)
    #[arg(long, value_name = "SNAPSHOT", requires = "append")]
    pub name: Option<String>,
    /// Read every file, even those the files cache (path, size, mtime, ctime, inode) says are unchanged
    #[arg(long, requires = "append")]
    pub rescan: bool,
    #[command(flatten)]
    pub common: Common,
}

pub fn run(a: PackArgs) -> Result<i32> {
    let small_frames = a.frame_size.is_some();
    let mut cfg = a.common.config_with(
        &[
            ("VOLUME_SIZE", a.volume_size.clone()),
            ("FRAME_SIZE", a.frame_size.clone()),
            ("CODEC", a.codec.clone()),
            ("PARITY", a.parity.clone()),
        ],
        |c| {
            // --frame-size is the largest frame: runs of same-named files do not grow past it.
            if small_frames {
                c.large_frame_size = c.frame_size;
            }
            // A --frame-size below the chunk sizes scales them down rather than failing.
            if small_frames && u64::from(c.chunk_max) > c.frame_size {
                c.chunk_max = c.frame_size as u32;
                c.chunk_avg = c.chunk_avg.min(c.chunk_max / 4);
                c.chunk_min = c.chunk_min.min(c.chunk_avg / 4);
            }
        },
    )?;
    // GPU_DEVICE = auto: pack opens the GPU itself, where pack::compress::auto_plan and auto_verdict want it.
    // A named device opens on a thread of its own from now on, while the pack scans and the CPU encodes
    // the first frames (compress::Split). Either way, with GPU_FALLBACK_ENABLED = false a failure to
    // open it is still an error.
    // The GPU encoder writes LZ_EXT3(_SB) only: with another codec no device is opened (a named one is
    // said to be left alone, so a GPU_FALLBACK_ENABLED = false pack does not fail for a device it has
    // no use for).
    let gpu_codec = matches!(cfg.frame_codec(), Codec::LzExt3 | Codec::LzExt3Sb);
    if !gpu_codec && !cfg.force_cpu && !cfg.gpu_device.trim().eq_ignore_ascii_case("auto") {
        if !a.common.quiet {
            eprintln!(
                "clc: {} frames are encoded on the CPU only; GPU device {:?} not opened",
                cfg.frame_codec().name(),
                cfg.gpu_device.trim()
            );
        }
        cfg.force_cpu = true;
    }
    let auto = !cfg.force_cpu && cfg.gpu_device.trim().eq_ignore_ascii_case("auto");
    let open_failed = std::sync::Arc::new(std::sync::Mutex::new(None));
    let record = |failed: &std::sync::Mutex<Option<anyhow::Error>>, e: anyhow::Error| {
        *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    };
    let ahead = (!auto && !cfg.force_cpu).then(|| {
        // A device the driver probe table says exists (no driver loaded to ask) is not waited for at
        // the end when no frame went to it, unless a failure to open it must be an error.
        let vouched = cfg.gpu_fallback && clc::gpu::known_match(&cfg.gpu_device) == Some(true);
        let (cfg, failed) = (cfg.clone(), open_failed.clone());
        let (quiet, asked) = (a.common.quiet, a.common.gpu_asked(&cfg));
        let open = move || match super::open_gpu(&cfg, quiet, asked) {
            Ok(g) => g,
            Err(e) => {
                record(&failed, e);
                None
            }
        };
        OpenAhead::start(open, vouched)
    });
    let open = || match a.common.gpu(&cfg) {
        Ok(g) => g,
        Err(e) => {
            record(&open_failed, e);
            None
        }
    };
    let warn = Warnings::new(false);
    super::check_location(&a.output)?;
    let opts = PackOptions {
        src: a.src.clone(),
        out: a.output.clone(),
        force: a.force,
        progress: !a.common.quiet && clc::sys::stderr_is_tty(),
        append: a.append,
        name: a.name.clone(),
        rescan: a.rescan,
    };
    // SIGINT/SIGTERM stop the pack at the next safe point; what it wrote is removed.
    clc::sys::catch_interrupts();
    // The GPU that GPU_DEVICE = auto opens, if it does: forgotten at the end, as `ahead` is.
    let auto_gpu = std::sync::OnceLock::new();
    let choice = match (&ahead, auto) {
        (Some(a), _) => GpuUse::Opening(a),
        (None, true) => GpuUse::Auto(&open, &auto_gpu),
        (None, false) => GpuUse::Off,
    };
    let st = match clc::pack::pack_with(&cfg, &opts, choice, &warn) {
        Err(clc::Error::Interrupted(sig)) => {
            eprintln!("clc: interrupted; nothing was written");
            std::mem::forget(ahead);
            std::mem::forget(auto_gpu);
            return Ok(128 + sig);
        }
        r => r,
    };
    clc::diag::trace::note("pack returned (its memory freed)");
    if let Some(e) = open_failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
        // The archive was written on the CPU, but GPU_FALLBACK_ENABLED = false asked for an error.
        if let Ok(st) = &st {
            let parity = st.parity.iter().flat_map(|p| &p.paths);
            for v in st.volumes.iter().chain(parity) {
                let _ = std::fs::remove_file(v);
            }
        }
        return Err(e);
    }
    let st = st?;
    if a.json {
        println!("{:#}", clc::summary::pack_json(&st));
    } else if !a.common.quiet {
        for line in clc::summary::pack_text(&st) {
            println!("{line}");
        }
    }
    // Some OpenCL drivers (seen: PoCL) abort while tearing down at exit, and NVIDIA's teardown takes time:
    // the process ends now anyway (main ends it without the libraries' exit handlers).
    std::mem::forget(ahead);
    std::mem::forget(auto_gpu);
    Ok(if st.warnings > 0 { 1 } else { 0 })
}
