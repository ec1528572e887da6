//! `clc mount` and `clc umount`.

use super::Common;
use anyhow::{anyhow, bail, Result};
use clap::Args;
use clc::config::parse_size;
use clc::mount::paged::{PagedTree, PAGE_BUDGET};
use clc::mount::serve::{self, Serve};
use clc::mount::{ClcFs, LaterReader, MountOptions};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args)]
pub struct MountArgs {
    /// First volume (NAME.001)
    pub archive: PathBuf,
    /// Directory to mount on
    pub mountpoint: PathBuf,
    /// Stay attached and serve from this process (default: return once mounted, serve in the background)
    #[arg(short, long)]
    pub foreground: bool,
    /// Decoded-frame cache budget, e.g. 512M (default: CACHE_SIZE when it is set, else the archive's
    /// decoded bytes, at least 256M and at most 1G)
    #[arg(long, value_name = "SIZE")]
    pub cache_size: Option<String>,
    /// FUSE options: allow_other, allow_root, default_permissions, fsname=…, noexec, read_ahead_kb=N
    /// (the kernel's read-ahead, root only; default 2048), … (comma-separated)
    #[arg(short = 'o', value_name = "OPTION,…")]
    pub options: Vec<String>,
    /// Append the background process's messages (read errors) to FILE
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Serve this snapshot at the root (default for an archive made with --append: one directory per
    /// snapshot at the root)
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args)]
pub struct UmountArgs {
    /// Where the archive is mounted
    pub mountpoint: PathBuf,
}

pub fn run(a: MountArgs) -> Result<i32> {
    clc::diag::trace::start();
    // No thread may start before the fork: load the settings without building the thread pool.
    let cfg = a.common.load(&[])?;
    clc::mount::table::require_free(&a.mountpoint)?;
    clc::diag::trace::note("settings loaded");
    // CACHE_SIZE's usual check is against FRAME_SIZE (a pack setting); here it is the archive's frames.
    let given = match &a.cache_size {
        Some(s) => Some(parse_size(s).map_err(|m| anyhow!("--cache-size: {m}"))?),
        None if cfg.cache_size_given => Some(cfg.cache_size),
        None => None,
    };
    super::check_location(&a.archive)?;
    let path = a
        .archive
        .canonicalize()
        .unwrap_or_else(|_| a.archive.clone());
    let opts = MountOptions::parse(&a.options, &format!("clc:{}", path.display()))?;
    let how = Serve {
        foreground: a.foreground,
        threads: cfg.threads(),
        log: a.log.clone(),
    };
    // A plain archive of format version 5: its paged tree alone (FORMAT.md 12); the archive is opened
    // whole on the first read of a file. Anything else (or a damaged tree: the whole open says what is
    // wrong) is opened whole now.
    if a.snapshot.is_none() {
        if let Ok(Some(tree)) = PagedTree::open(&a.archive, PAGE_BUDGET) {
            clc::diag::trace::note(&format!("paged tree opened ({} records)", tree.records()));
            if let Some(c) = given.filter(|&c| c < 1 << 20) {
                bail!("--cache-size {c}: must be at least 1048576 (1M, and the largest frame of the archive)");
            }
            let (dcfg, quiet) = (cfg.clone(), a.common.quiet);
            let later = LaterReader {
                path: path.clone(),
                cache: given,
                base_cache: cfg.cache_size,
                batch: cfg.decompressor_batch_size,
                decoder: Box::new(move |ar| {
                    match clc::gpu::GpuDecoder::lazy_for_frames(&dcfg, ar.index().frames(), quiet) {
                        Some(d) => Box::new(d),
                        None => Box::new(clc::cache::CpuDecoder),
                    }
                }),
            };
            let mtime = tree.last_volume_mtime();
            serve::mount(ClcFs::paged(tree, later, mtime), &a.mountpoint, &opts, &how)?;
            return Ok(0);
        }
    }
    let ar = super::open(&a.archive, &a.snapshot)?;
    clc::diag::trace::note(&format!(
        "archive opened ({} entries)",
        ar.index().entries().len()
    ));
    let cache =
        given.unwrap_or_else(|| clc::mount::default_cache(ar.index().frames(), cfg.cache_size));
    let least = ar.index().max_frame_len().max(1 << 20);
    if cache < least {
        bail!("--cache-size {cache}: must be at least {least} (1M, and the largest frame of the archive)");
    }
    for p in ar.volume_problems() {
        eprintln!("clc: warning: {p}; files with data there will fail to read (EIO)");
    }
    // The GPU (if any) is opened lazily, in the serving process after the fork: OpenCL does not survive one.
    let decoder: Box<dyn clc::cache::BatchDecoder> =
        match clc::gpu::GpuDecoder::lazy_for_frames(&cfg, ar.index().frames(), a.common.quiet) {
            Some(d) => Box::new(d),
            None => Box::new(clc::cache::CpuDecoder),
        };
    let all = a.snapshot.is_none();
    let fs = ClcFs::new(
        Arc::new(ar),
        cache,
        cfg.decompressor_batch_size,
        decoder,
        all,
    );
    clc::diag::trace::note("inode table built");
    serve::mount(fs, &a.mountpoint, &opts, &how)?;
    Ok(0)
}

pub fn run_umount(a: UmountArgs) -> Result<i32> {
    clc::mount::table::require_clc(&a.mountpoint)?;
    clc::mount::unmount(&a.mountpoint)?;
    Ok(0)
}
