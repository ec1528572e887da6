//! Command-line interface: one file per subcommand, each a thin call into the library.

pub mod diff;
pub mod docs;
pub mod extract;
pub mod info;
pub mod list;
pub mod mount;
pub mod pack;
pub mod repair;
pub mod snapshots;
pub mod verify;

use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand};
use clc::config::Config;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "clc",
    version,
    about = "Deduplicating multi-volume archiver with GPU (OpenCL) compression and a FUSE view",
    long_about = "Deduplicating multi-volume archiver with GPU (OpenCL) compression and a FUSE view.\n\n\
        clc packs a directory into NAME.001, NAME.002, … (whole-file and chunk deduplication, LZ_EXT3 \
        frames compressed on the CPU or an OpenCL GPU, a checksum on every frame and on the index), \
        restores it, lists it, checks it, repairs it from parity volumes and mounts it read-only \
        through FUSE. It also reads the archives of the Python CL_Compressor.\n\n\
        Summaries go to stdout, warnings and errors to stderr, progress to stderr when it is a \
        terminal. Exit status: 0 ok, 1 finished with warnings, 2 error.\n\n\
        Environment: SOURCE_DATE_EPOCH sets the creation time pack records (reproducible archives); \
        CLC_TRACE=1 prints the stages of a run with their times."
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Pack a directory into NAME.001, NAME.002, …
    Pack(pack::PackArgs),
    /// Restore an archive (or the given paths) under DEST
    Extract(extract::ExtractArgs),
    /// List entries, one `ls -l`-like line each
    List(list::ListArgs),
    /// Show what an archive holds and how it was made
    Info(info::InfoArgs),
    /// List the snapshots of an archive made with `pack --append`
    Snapshots(snapshots::SnapshotsArgs),
    /// What changed between two snapshots: + added, - removed, M modified, m metadata only
    Diff(diff::DiffArgs),
    /// Read every volume and check every checksum
    Verify(verify::VerifyArgs),
    /// Rebuild missing or damaged volumes from the parity volumes (NAME.p001, …)
    Repair(repair::RepairArgs),
    /// Mount an archive as a read-only filesystem
    Mount(mount::MountArgs),
    /// Unmount a mounted archive
    Umount(mount::UmountArgs),
    /// Print the shell completion script for bash, zsh or fish
    Completions(docs::CompletionsArgs),
    /// Write the man pages (clc.1 and one per subcommand) into DIR
    Man(docs::ManArgs),
}

/// `clc mount …` alone: the same arguments, help and errors as [`Cli`]'s `mount`, parsed without building
/// the other subcommands (a warm mount's start, issue 20).
#[derive(Parser)]
#[command(name = "clc", version)]
pub struct MountCli {
    #[command(subcommand)]
    pub cmd: MountOnly,
}

#[derive(Subcommand)]
pub enum MountOnly {
    /// Mount an archive as a read-only filesystem
    Mount(mount::MountArgs),
}

/// Flags shared by every command that reads or writes data.
#[derive(Args, Clone)]
pub struct Common {
    /// Configuration file (default: built-in defaults, those of the shipped config.txt)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Never use OpenCL (same as FORCE_CPU_MODE = true)
    #[arg(long)]
    pub cpu: bool,
    /// OpenCL device: auto, all, an index or a name substring (see `clc info --devices`)
    #[arg(long, value_name = "NAME-or-INDEX")]
    pub gpu_device: Option<String>,
    /// Worker threads (MAX_WORKER_THREADS; 0 = every core)
    #[arg(long, value_name = "N")]
    pub threads: Option<String>,
    /// No progress and no summary; warnings and errors only
    #[arg(short, long)]
    pub quiet: bool,
}

impl Common {
    /// Loads the config file (or defaults), applies command-line overrides, and sizes the global thread
    /// pool.
    pub fn config(&self, extra: &[(&str, Option<String>)]) -> Result<Config> {
        self.config_with(extra, |_| {})
    }

    /// As [`Common::config`], with `fixup` applied to the overridden config before it is validated.
    pub fn config_with(
        &self,
        extra: &[(&str, Option<String>)],
        fixup: impl FnOnce(&mut Config),
    ) -> Result<Config> {
        let cfg = self.load_with(extra, fixup)?;
        rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.threads())
            .build_global()
            .ok();
        Ok(cfg)
    }

    /// [`Common::config`] without starting any thread (for commands that fork, like `mount`).
    pub fn load(&self, extra: &[(&str, Option<String>)]) -> Result<Config> {
        self.load_with(extra, |_| {})
    }

    fn load_with(
        &self,
        extra: &[(&str, Option<String>)],
        fixup: impl FnOnce(&mut Config),
    ) -> Result<Config> {
        let mut cfg = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        let mut over: Vec<(&str, Option<String>)> = vec![
            ("FORCE_CPU_MODE", self.cpu.then(|| "true".to_string())),
            ("GPU_DEVICE", self.gpu_device.clone()),
            ("MAX_WORKER_THREADS", self.threads.clone()),
        ];
        over.extend(extra.iter().cloned());
        for (key, val) in over {
            if let Some(v) = val {
                cfg.set(key, &v).map_err(|e| match e {
                    clc::Error::Setting { msg, .. } => anyhow!("{}: {msg}", flag_of(key)),
                    e => e.into(),
                })?;
            }
        }
        fixup(&mut cfg);
        cfg.validate()
            .map_err(|m| anyhow!("invalid settings: {m}"))?;
        Ok(cfg)
    }

    /// Opens the GPU unless the CPU is forced. With GPU_FALLBACK_ENABLED an OpenCL failure returns None
    /// (the CPU does the work), silently when the device choice is the default (`auto`) and the machine
    /// has no OpenCL GPU (most machines), else with one line naming `--gpu-device` and `GPU_DEVICE`.
    /// Without GPU_FALLBACK_ENABLED the failure is an error.
    pub fn gpu(&self, cfg: &Config) -> Result<Option<clc::gpu::Gpu>> {
        open_gpu(cfg, self.quiet, self.gpu_asked(cfg))
    }

    /// Whether a device was asked for, by `--gpu-device` or by a `GPU_DEVICE` other than `auto`.
    pub fn gpu_asked(&self, cfg: &Config) -> bool {
        let d = cfg.gpu_device.trim();
        self.gpu_device.is_some() || !(d.is_empty() || d.eq_ignore_ascii_case("auto"))
    }
}

/// [`Common::gpu`] for `quiet` and whether a device was `asked` for (callable from any thread).
pub fn open_gpu(cfg: &Config, quiet: bool, asked: bool) -> Result<Option<clc::gpu::Gpu>> {
    if cfg.force_cpu {
        return Ok(None);
    }
    match clc::gpu::Gpu::open(cfg) {
        Ok(g) => Ok(Some(g)),
        Err(e) if cfg.gpu_fallback => {
            // Said in the trace in any case (CLC_TRACE: why the CPU did the work).
            clc::diag::trace::note(&format!("no GPU used ({e})"));
            if !quiet && (asked || has_gpu()) {
                eprintln!(
                    "clc: no GPU used ({e}); working on the CPU (device chosen by --gpu-device or \
                     GPU_DEVICE = {:?}; `clc info --devices` lists them)",
                    cfg.gpu_device
                );
            }
            Ok(None)
        }
        Err(e) => Err(e).context(
            "GPU_FALLBACK_ENABLED is false (use --cpu, or --gpu-device / GPU_DEVICE to choose a device)",
        ),
    }
}

/// Whether OpenCL shows a device of type GPU (asked only after opening one failed).
fn has_gpu() -> bool {
    clc::gpu::list_devices().is_ok_and(|d| d.iter().any(|d| d.kind == "GPU"))
}

fn flag_of(key: &str) -> String {
    match key {
        "GPU_DEVICE" => "--gpu-device".into(),
        "MAX_WORKER_THREADS" => "--threads".into(),
        "VOLUME_SIZE" => "--volume-size".into(),
        "CODEC" => "--codec".into(),
        "FRAME_SIZE" => "--frame-size".into(),
        "CACHE_SIZE" => "--cache-size".into(),
        "PARITY" => "--parity".into(),
        k => k.into(),
    }
}

/// Exit status: 0 ok, 1 finished with warnings, 2 error.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Pack(a) => pack::run(a),
        Cmd::Extract(a) => extract::run(a),
        Cmd::List(a) => list::run(a),
        Cmd::Info(a) => info::run(a),
        Cmd::Snapshots(a) => snapshots::run(a),
        Cmd::Diff(a) => diff::run(a),
        Cmd::Verify(a) => verify::run(a),
        Cmd::Repair(a) => repair::run(a),
        Cmd::Mount(a) => mount::run(a),
        Cmd::Umount(a) => mount::run_umount(a),
        Cmd::Completions(a) => docs::completions(a),
        Cmd::Man(a) => docs::man(a),
    }
}

pub use clc::summary::{human, plural};
/// Opens `path` at the snapshot `snapshot` names (the newest when `None`).
pub fn open(path: &std::path::Path, snapshot: &Option<String>) -> Result<clc::archive::Archive> {
    let pick = match snapshot {
        Some(n) => clc::archive::Pick::Named(n.clone()),
        None => clc::archive::Pick::Newest,
    };
    Ok(clc::archive::Archive::open_at(path, pick)?)
}

/// Checks an archive argument that is an address (`s3://bucket/prefix/NAME`, or another `scheme://`,
/// which is refused) before the library is asked for it; a local path is the library's to check.
pub fn check_location(p: &std::path::Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let b = p.as_os_str().as_bytes();
    let scheme = b.windows(3).position(|w| w == b"://").map(|i| &b[..i]);
    if scheme
        .is_some_and(|s| !s.is_empty() && s.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+'))
    {
        clc::storage::Location::parse(p.as_os_str())?;
    }
    Ok(())
}
