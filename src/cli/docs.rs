//! `clc completions SHELL` and `clc man DIR`: shell completions and man pages generated from the clap
//! definitions, so that they always list every subcommand and flag of this binary.

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish (also elvish, powershell)
    pub shell: clap_complete::Shell,
}

#[derive(Args)]
pub struct ManArgs {
    /// Directory to write clc.1 and clc-SUBCOMMAND.1 into (created if missing)
    pub dir: PathBuf,
}

/// Prints the completion script for `a.shell` on stdout.
pub fn completions(a: CompletionsArgs) -> Result<i32> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "clc", &mut std::io::stdout());
    Ok(0)
}

/// Writes `clc.1` and one page per subcommand (`clc-pack.1`, …) into `a.dir`; prints their paths.
pub fn man(a: ManArgs) -> Result<i32> {
    std::fs::create_dir_all(&a.dir).with_context(|| a.dir.display().to_string())?;
    let mut cmd = super::Cli::command();
    cmd.build();
    write_page(&a.dir, "clc", cmd.clone())?;
    for sub in cmd.get_subcommands() {
        let name = format!("clc-{}", sub.get_name());
        let page = sub
            .clone()
            .display_name(&name)
            .bin_name(format!("clc {}", sub.get_name()));
        write_page(&a.dir, &name, page)?;
    }
    Ok(0)
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .source(concat!("clc ", env!("CARGO_PKG_VERSION")))
        .manual("clc manual")
        .render(&mut out)
        .with_context(|| path.display().to_string())?;
    std::fs::write(&path, out).with_context(|| path.display().to_string())?;
    println!("{}", path.display());
    Ok(())
}
