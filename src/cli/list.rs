use anyhow::Result;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub struct ListArgs {
    /// First volume (NAME.001)
    pub archive: PathBuf,
    /// One JSON array of entries
    #[arg(long)]
    pub json: bool,
    /// The snapshot to list (default: the newest)
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
}

pub fn run(a: ListArgs) -> Result<i32> {
    super::check_location(&a.archive)?;
    let ar = super::open(&a.archive, &a.snapshot)?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let idx = ar.index();
    let ids = idx.entries_with_ids().map(|(id, _)| id);
    let r = if a.json {
        let v: Vec<_> = ids.map(|id| clc::report::list_json(idx, id)).collect();
        writeln!(out, "{}", serde_json::Value::Array(v))
    } else {
        ids.into_iter()
            .try_for_each(|id| writeln!(out, "{}", clc::report::list_line(idx, id)))
    };
    match r.and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        r => r.map(|_| 0).map_err(Into::into),
    }
}
