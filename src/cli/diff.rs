use anyhow::{anyhow, Result};
use clap::Args;
use clc::archive::{Archive, Pick};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub struct DiffArgs {
    /// First volume (NAME.001)
    pub archive: PathBuf,
    /// The older snapshot
    pub a: String,
    /// The newer snapshot
    pub b: String,
}

/// What changed from snapshot A to snapshot B, one path per line: `+` added, `-` removed, `M` other
/// bytes or type, `m` same bytes but other mode, owner, mtime or xattrs.
pub fn run(a: DiffArgs) -> Result<i32> {
    let ar = Archive::open_at(&a.archive, Pick::Named(a.a.clone()))?;
    let k = ar
        .snapshots()
        .iter()
        .position(|s| s.record.name == a.b)
        .ok_or_else(|| {
            let names: Vec<&str> = ar
                .snapshots()
                .iter()
                .map(|s| s.record.name.as_str())
                .collect();
            anyhow!(
                "no snapshot named {}; the snapshots are: {}",
                a.b,
                names.join(", ")
            )
        })?;
    let older = ar.index();
    let newer = ar.tree(k)?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let r = clc::report::diff(older, &newer)
        .into_iter()
        .try_for_each(|(c, p)| writeln!(out, "{} {}", c.mark(), clc::diag::escape(&p)));
    match r.and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        r => r.map(|_| 0).map_err(Into::into),
    }
}
