//! GPU_IDX3: the inflated index is a whole SQLite 3 database file (FORMAT-NOTES 3.4).
//!
//! ```text
//! files    (id INTEGER PRIMARY KEY, path_rel TEXT  -- ABSOLUTE, '\' replaced by '/'
//!           size INTEGER, is_duplicate BOOLEAN, original_path TEXT -- relative to source_root
//!           mtime REAL, ... placeholders and Windows-only columns ...)
//! frames   (id INTEGER PRIMARY KEY, vol TEXT, offset INTEGER, size INTEGER, original_size INTEGER)
//! kv_store (key TEXT PRIMARY KEY, value TEXT)   -- key 'params': the params JSON
//! ```
//!
//! rusqlite is built without its `serialize` feature, so the image is inflated straight into a
//! temporary file (unique name in `diag::temp_dir()`, created exclusively, mode 0600), never whole in
//! memory, and at most `cap` bytes of it (`footer::max_index_raw` of the blob: a 612 KB archive made a
//! 600 MB file). SQLite opens it `immutable` and read-only, and the name is removed as soon as SQLite holds
//! it open: from then on nothing is left behind whatever ends the process. Before that, [`TempDb`]
//! removes it when dropped, on every path, and on SIGINT, SIGTERM and SIGHUP (`sys::RemoveOnSignal`).

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OpenFlags};

use super::raw::{params_from, Ctx, RawFile, RawFrame, RawIndex};
use crate::error::{IoContext, Result};

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Reads the three tables of a GPU_IDX3 database image, read from `image` (the inflating blob) up to
/// `cap` bytes.
pub fn parse_idx3(image: impl Read, cap: u64, ctx: &Ctx) -> Result<RawIndex> {
    let tmp = TempDb::create()?;
    let len = tmp.fill(image, cap, ctx)?;
    let mut head = [0u8; 100];
    if len < 100 || tmp.file.read_exact_at(&mut head, 0).is_err() || head[..16] != SQLITE_MAGIC[..]
    {
        return Err(ctx.err("payload is not a SQLite 3 database"));
    }
    // Bytes 18/19 select WAL mode, which a read-only open cannot serve without a -shm file; the tool
    // never writes WAL, so ask for the rollback journal (1) instead.
    tmp.file.write_all_at(&[1, 1], 18).ctx(&tmp.path)?;
    let conn = Connection::open_with_flags(
        tmp.uri(),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| ctx.err(format!("SQLite: {e}")))?;
    // The tables are read through SQLite's open descriptor: the name can go now.
    drop(tmp);
    read_tables(&conn, ctx)
}

fn read_tables(conn: &Connection, ctx: &Ctx) -> Result<RawIndex> {
    let sql = |e: rusqlite::Error| ctx.err(format!("SQLite: {e}"));
    for table in ["files", "frames", "kv_store"] {
        // Only real tables: a view could run an endless query.
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if n != 1 {
            return Err(ctx.err(format!("database lacks the table \"{table}\"")));
        }
    }
    let params: String = conn
        .query_row("SELECT value FROM kv_store WHERE key = 'params'", [], |r| {
            r.get(0)
        })
        .map_err(|e| ctx.err(format!("kv_store 'params': {e}")))?;
    let params = super::raw::json_value(params.as_bytes(), super::raw::value_budget(params.len()))
        .map_err(|e| ctx.err(format!("params JSON: {e}")))?;
    let mut idx = RawIndex {
        params: params_from(Some(&params), ctx)?,
        ..RawIndex::default()
    };

    let mut st = conn
        .prepare("SELECT path_rel, size, is_duplicate, original_path, mtime FROM files ORDER BY id")
        .map_err(sql)?;
    let mut rows = st.query([]).map_err(sql)?;
    while let Some(r) = rows.next().map_err(sql)? {
        let n = idx.files.len();
        let bad = |e: rusqlite::Error| ctx.err(format!("files row {}: {e}", n + 1));
        let size: i64 = r.get(1).map_err(bad)?;
        idx.files.push(RawFile {
            path: r.get(0).map_err(bad)?,
            size: u64::try_from(size)
                .map_err(|_| ctx.err(format!("files row {}: size {size}", n + 1)))?,
            is_duplicate: r.get::<_, Option<i64>>(2).map_err(bad)?.unwrap_or(0) != 0,
            original: r.get(3).map_err(bad)?,
            // Metadata only: an unreadable mtime is treated as absent.
            mtime: r.get::<_, Option<f64>>(4).ok().flatten(),
        });
    }
    drop(rows);
    drop(st);

    let mut st = conn
        .prepare("SELECT id, vol, offset, size, original_size FROM frames ORDER BY id")
        .map_err(sql)?;
    let mut rows = st.query([]).map_err(sql)?;
    while let Some(r) = rows.next().map_err(sql)? {
        let n = idx.frames.len();
        let bad = |e: rusqlite::Error| ctx.err(format!("frames row {}: {e}", n + 1));
        let int = |i: usize| -> Result<u64> {
            let v: i64 = r.get(i).map_err(bad)?;
            u64::try_from(v)
                .map_err(|_| ctx.err(format!("frames row {}: negative value {v}", n + 1)))
        };
        idx.frames.push(RawFrame {
            id: int(0)?,
            volume_name: r.get(1).map_err(bad)?,
            offset: int(2)?,
            compressed_size: int(3)?,
            uncompressed_size: int(4)?,
        });
    }
    Ok(idx)
}

/// A database image in a fresh file under the temp dir; its name is removed (with any journal) on drop,
/// and on SIGINT, SIGTERM and SIGHUP while it lives.
struct TempDb {
    path: PathBuf,
    file: std::fs::File,
    _on_signal: crate::sys::RemoveOnSignal,
}

impl TempDb {
    fn create() -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!(
            "clc-legacy-{}-{nanos}-{}.sqlite",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = crate::diag::temp_dir().join(name);
        // Guarded before it exists, so that no signal can come between its creation and its guard.
        let on_signal = crate::sys::RemoveOnSignal::new(&path);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .ctx(&path)?;
        Ok(TempDb {
            path,
            file,
            _on_signal: on_signal,
        })
    }

    /// Copies `src` into the file, refusing more than `cap` bytes; returns the length.
    fn fill(&self, mut src: impl Read, cap: u64, ctx: &Ctx) -> Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = src
                .read(&mut buf)
                .map_err(|e| ctx.err(format!("gzip stream: {e}")))?;
            if n == 0 {
                return Ok(len);
            }
            if len + n as u64 > cap {
                return Err(ctx.err(format!("gzip stream inflates past {cap} bytes")));
            }
            self.file.write_all_at(&buf[..n], len).ctx(&self.path)?;
            len += n as u64;
        }
    }

    /// A read-only, immutable URI for the file: SQLite takes no locks, keeps no journal and never
    /// reopens it, so its name can be removed once the connection is open.
    fn uri(&self) -> String {
        use std::os::unix::ffi::OsStrExt;
        let mut u = String::from("file:");
        for &b in self.path.as_os_str().as_bytes() {
            match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'.' | b'_' | b'~' => {
                    u.push(b as char)
                }
                _ => u.push_str(&format!("%{b:02X}")),
            }
        }
        u.push_str("?mode=ro&immutable=1");
        u
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        for suffix in ["-journal", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            what: "v.001".into(),
            offset: 0,
            kind: "GPU_IDX3",
        }
    }

    /// Builds a database image with `schema`, returned as bytes.
    fn image(schema: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        let c = Connection::open(&p).unwrap();
        c.execute_batch(schema).unwrap();
        drop(c);
        std::fs::read(&p).unwrap()
    }

    #[test]
    fn temp_db_is_removed_on_drop() {
        let t = TempDb::create().unwrap();
        assert_eq!(t.fill(&b"xyz"[..], 3, &ctx()).unwrap(), 3);
        let p = t.path.clone();
        assert!(p.exists());
        drop(t);
        assert!(!p.exists());
        let t = TempDb::create().unwrap();
        let e = t.fill(&b"xyzw"[..], 3, &ctx()).unwrap_err();
        assert!(e.to_string().contains("inflates past 3"), "{e}");
    }

    /// Issue 14 item 12: the image's file was kept for the whole open (and left by a SIGTERM); now its
    /// name is gone once SQLite has it open, and the tables still read.
    #[test]
    fn regression_idx3_temp_file_gone_once_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = image(
            r#"CREATE TABLE files(id INTEGER PRIMARY KEY, path_rel TEXT, size INTEGER, is_duplicate BOOLEAN,
                 original_path TEXT, mtime REAL);
               CREATE TABLE frames(id INTEGER PRIMARY KEY, vol TEXT, offset INTEGER, size INTEGER, original_size INTEGER);
               CREATE TABLE kv_store(key TEXT PRIMARY KEY, value TEXT);
               INSERT INTO kv_store VALUES('params', '{}');"#,
        );
        let before: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .map(|d| d.file_name())
            .collect();
        let idx = parse_idx3(&db[..], db.len() as u64, &ctx()).unwrap();
        assert!(idx.files.is_empty());
        let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .map(|d| d.file_name())
            .filter(|n| !before.contains(n) && n.to_string_lossy().starts_with("clc-legacy-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        drop(dir);
    }

    #[test]
    fn missing_tables_and_views_are_refused() {
        let db = image("CREATE TABLE files(id INTEGER PRIMARY KEY, path_rel TEXT); CREATE TABLE kv_store(key TEXT, value TEXT);");
        let e = parse_idx3(&db[..], db.len() as u64, &ctx()).unwrap_err();
        assert!(e.to_string().contains("lacks the table \"frames\""), "{e}");
        let db = image(
            "CREATE TABLE f(x); CREATE VIEW files AS SELECT 1; CREATE TABLE frames(id); CREATE TABLE kv_store(key, value);",
        );
        assert!(parse_idx3(&db[..], db.len() as u64, &ctx()).is_err());
        assert!(parse_idx3(&b"SQLite format 3\0 too short"[..], 100, &ctx()).is_err());
    }

    #[test]
    fn reads_rows_in_id_order() {
        let db = image(
            r#"CREATE TABLE files(id INTEGER PRIMARY KEY, path_rel TEXT, size INTEGER, is_duplicate BOOLEAN,
                 original_path TEXT, mtime REAL);
               CREATE TABLE frames(id INTEGER PRIMARY KEY, vol TEXT, offset INTEGER, size INTEGER, original_size INTEGER);
               CREATE TABLE kv_store(key TEXT PRIMARY KEY, value TEXT);
               INSERT INTO kv_store VALUES('params', '{"frame_size": 8}');
               INSERT INTO files VALUES(2, '/r/b', 3, 1, 'a', NULL);
               INSERT INTO files VALUES(1, '/r/a', 3, 0, NULL, 1.5);
               INSERT INTO frames VALUES(0, 'x.001', 0, 3, 3);"#,
        );
        let idx = parse_idx3(&db[..], db.len() as u64, &ctx()).unwrap();
        assert_eq!(idx.files[0].path, "/r/a");
        assert_eq!(idx.files[0].mtime, Some(1.5));
        assert!(idx.files[1].is_duplicate);
        assert_eq!(idx.frames[0].volume_name, "x.001");
        assert_eq!(idx.params["frame_size"], 8);
    }
}
