use super::{human, Common};
use anyhow::Result;
use clap::Args;
use clc::diag::Warnings;
use clc::pack::{GpuUse, PackOptions, PackStats};
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
    /// Frame codec: lz_ext3 (default), lz4 or raw
    #[arg(long)]
    pub codec: Option<String>,
    /// Also write Reed–Solomon parity volumes NAME.p001, … able to rebuild this share of the data volumes
    /// (10 or 10%; config key PARITY)
    #[arg(long, value_name = "PCT")]
    pub parity: Option<String>,
    /// Overwrite an existing archive of that name
    #[arg(long, conflicts_with = "append")]
    pub force: bool,
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
    let cfg = a.common.config_with(
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
    // GPU_DEVICE = auto: pack opens the GPU itself, once the scan shows enough bytes for it to pay
    // (and with GPU_FALLBACK_ENABLED = false, a failure to open it is still an error).
    let auto = !cfg.force_cpu && cfg.gpu_device.trim().eq_ignore_ascii_case("auto");
    let gpu = if auto { None } else { a.common.gpu(&cfg)? };
    let open_failed = std::sync::Mutex::new(None);
    let open = || match a.common.gpu(&cfg) {
        Ok(g) => g,
        Err(e) => {
            *open_failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
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
    let choice = match (&gpu, auto) {
        (Some(g), _) => GpuUse::Given(g),
        (None, true) => GpuUse::Auto(&open),
        (None, false) => GpuUse::Off,
    };
    let st = match clc::pack::pack_with(&cfg, &opts, choice, &warn) {
        Err(clc::Error::Interrupted(sig)) => {
            eprintln!("clc: interrupted; nothing was written");
            std::mem::forget(gpu);
            return Ok(128 + sig);
        }
        r => r,
    };
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
    if !a.common.quiet {
        print_summary(&st);
    }
    // Some OpenCL drivers (seen: PoCL) abort while tearing down at exit; the process ends now anyway.
    std::mem::forget(gpu);
    Ok(if st.warnings > 0 { 1 } else { 0 })
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

fn print_summary(st: &PackStats) {
    let first = st
        .volumes
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    println!(
        "packed {} files, {} dirs, {} other ({}) into {} ({} volume{}, {})",
        st.files,
        st.dirs,
        st.other,
        human(st.bytes_in),
        first,
        st.volumes.len(),
        if st.volumes.len() == 1 { "" } else { "s" },
        human(st.stored_bytes)
    );
    if let Some(name) = &st.snapshot {
        println!(
            "snapshot {name} (generation {}): {} files unchanged since the last snapshot ({}, not read); \
             {} frames stored against earlier versions",
            st.generation,
            st.unchanged_files,
            human(st.unchanged_bytes),
            st.dict_frames
        );
    }
    println!(
        "dedup: {} duplicate files ({} saved), {} hardlinks; chunk dedup left {} unique of {}",
        st.dup_files,
        human(st.dup_bytes),
        st.hardlinks,
        human(st.unique_bytes),
        human(st.bytes_in)
    );
    let n = st.frames;
    let part = |name: &str, k: u64| format!("{name}={k} ({:.1}%)", pct(k, n));
    let mut parts = Vec::new();
    if st.gpu.is_some() || st.gpu_frames > 0 {
        parts.push(part("LZ_EXT3_GPU", st.gpu_frames));
        parts.push(part("LZ_EXT3_CPU", st.cpu_frames));
    } else {
        parts.push(part("COMPRESSED", st.cpu_frames));
    }
    parts.push(part("RAW", st.raw_frames));
    parts.push(format!(
        "Reduction = {:.1}%",
        100.0 - pct(st.stored_bytes, st.bytes_in.max(1))
    ));
    println!("frames: {}", parts.join(" | "));
    if st.gpu_redone > 0 {
        println!(
            "GPU frames redone on the CPU after a failed check: {}",
            st.gpu_redone
        );
    }
    if let Some(p) = &st.parity {
        let names: Vec<String> = p.paths.iter().map(|x| x.display().to_string()).collect();
        println!(
            "parity: {} volume{} ({}), {} ({:.1}% of the data volumes), stripe {}, {:.2} s",
            p.paths.len(),
            if p.paths.len() == 1 { "" } else { "s" },
            names.join(", "),
            human(p.bytes),
            pct(p.bytes, st.stored_bytes),
            human(u64::from(p.stripe_size)),
            p.seconds
        );
    }
    if let Some(g) = &st.gpu {
        println!("GPU: {g}");
    }
    println!(
        "time {:.2} s, {}/s{}",
        st.seconds,
        human((st.bytes_in as f64 / st.seconds.max(1e-9)) as u64),
        if st.warnings > 0 {
            format!(", {} warnings", st.warnings)
        } else {
            String::new()
        }
    );
}
