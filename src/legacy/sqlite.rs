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
//! rusqlite is built without its `serialize` feature, so the bytes go to a temporary file (unique name in
//! `diag::temp_dir()`, created exclusively) that is removed when [`TempDb`] drops, on every path.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OpenFlags};

use super::raw::{params_from, Ctx, RawFile, RawFrame, RawIndex};
use crate::error::{Error, IoContext, Result};

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Reads the three tables of a GPU_IDX3 database image.
pub fn parse_idx3(db: &[u8], ctx: &Ctx) -> Result<RawIndex> {
    if db.len() < 100 || db[..16] != SQLITE_MAGIC[..] {
        return Err(ctx.err("payload is not a SQLite 3 database"));
    }
    let mut image = db.to_vec();
    // Bytes 18/19 select WAL mode, which a read-only open cannot serve without a -shm file; the tool
    // never writes WAL, so ask for the rollback journal (1) instead.
    image[18] = 1;
    image[19] = 1;
    let tmp = TempDb::write(&image)?;
    let conn = Connection::open_with_flags(
        &tmp.0,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| ctx.err(format!("SQLite: {e}")))?;
    let out = read_tables(&conn, ctx);
    drop(conn);
    out
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
    let params: serde_json::Value =
        serde_json::from_str(&params).map_err(|e| ctx.err(format!("params JSON: {e}")))?;
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

/// A database image written to a fresh file under the temp dir; removed (with any journal) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn write(bytes: &[u8]) -> Result<Self> {
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
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .ctx(&path)?;
        let guard = TempDb(path);
        std::io::Write::write_all(&mut f, bytes).map_err(|e| Error::io(&guard.0, e))?;
        Ok(guard)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        for suffix in ["-journal", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
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
        let t = TempDb::write(b"x").unwrap();
        let p = t.0.clone();
        assert!(p.exists());
        drop(t);
        assert!(!p.exists());
    }

    #[test]
    fn missing_tables_and_views_are_refused() {
        let db = image("CREATE TABLE files(id INTEGER PRIMARY KEY, path_rel TEXT); CREATE TABLE kv_store(key TEXT, value TEXT);");
        let e = parse_idx3(&db, &ctx()).unwrap_err();
        assert!(e.to_string().contains("lacks the table \"frames\""), "{e}");
        let db = image(
            "CREATE TABLE f(x); CREATE VIEW files AS SELECT 1; CREATE TABLE frames(id); CREATE TABLE kv_store(key, value);",
        );
        assert!(parse_idx3(&db, &ctx()).is_err());
        assert!(parse_idx3(b"SQLite format 3\0 too short", &ctx()).is_err());
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
        let idx = parse_idx3(&db, &ctx()).unwrap();
        assert_eq!(idx.files[0].path, "/r/a");
        assert_eq!(idx.files[0].mtime, Some(1.5));
        assert!(idx.files[1].is_duplicate);
        assert_eq!(idx.frames[0].volume_name, "x.001");
        assert_eq!(idx.params["frame_size"], 8);
    }
}
