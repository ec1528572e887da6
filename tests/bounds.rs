//! The bound docs/RELIABILITY.md states for hostile archives, checked: opening, listing, reading (within
//! `fuzzing::READ_BUDGET`) and verifying an archive of N bytes uses at most `fuzzing::memory_bound(N)` of
//! heap and time linear in its index, whatever counts the index claims or shares. The archives are the
//! `index_grow` fuzz target's (valid, checksums and all), each count grown to 2^17, the shapes of
//! issue 14 items 2–4 among them; a counting allocator measures the heap. The same check runs in the
//! fuzz target; here it runs in every `cargo test`.

use std::time::Duration;

#[global_allocator]
static ALLOC: clc::fuzzing::heap::Counting = clc::fuzzing::heap::Counting;

/// Linear work on these indexes takes well under a second; the quadratic walks this replaced took
/// minutes at these counts (80 000 × 80 000 took 9 s).
const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Grows the base archive by `ops`, exercises it, and checks heap (`clc::fuzzing::heap`, the fuzz
/// target's check) and time; returns (archive bytes, heap used).
fn check(what: &str, ops: &[[u8; 4]]) -> (u64, u64) {
    let data: Vec<u8> = ops.iter().flatten().copied().collect();
    let vols = clc::fuzzing::grow_base(&data);
    let last = vols.last().unwrap();
    let footer = &last[last.len() - 80..];
    let raw = u64::from_le_bytes(footer[48..56].try_into().unwrap());
    let u = check_volumes(what, vols, raw);
    (u.size, u.heap)
}

/// Heap (as `check` does for grown ones) and time for the volumes `vols`, whose raw index is `raw` bytes.
fn check_volumes(what: &str, vols: Vec<Vec<u8>>, raw: u64) -> clc::fuzzing::heap::Used {
    let u = clc::fuzzing::heap::check_volumes(what, &vols);
    eprintln!(
        "{what}: archive {} B, raw index {raw} B, heap {} B ({:.1} per archive byte, {:.2} per index \
         byte), bound {} B, {:.2?}",
        u.size,
        u.heap,
        u.heap as f64 / u.size as f64,
        u.heap as f64 / raw as f64,
        u.bound,
        u.took
    );
    assert!(u.took < TIME_LIMIT, "{what}: took {:?}", u.took);
    u
}

/// A one-volume CL_Compressor archive: ten bytes of frame, the index `raw` compressed (gzip for
/// GPU_IDX2/3, zlib for GPU_IDX1), the 24-byte footer.
fn legacy(raw: &[u8], magic: &[u8; 8]) -> Vec<Vec<u8>> {
    use std::io::Write;
    let level = flate2::Compression::new(6);
    let blob = if magic == b"GPU_IDX1" {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), level);
        z.write_all(raw).unwrap();
        z.finish().unwrap()
    } else {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), level);
        z.write_all(raw).unwrap();
        z.finish().unwrap()
    };
    let mut v = b"0123456789".to_vec();
    v.extend_from_slice(&blob);
    v.extend_from_slice(&10u64.to_le_bytes());
    v.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    v.extend_from_slice(magic);
    vec![v]
}

/// CL_Compressor JSON indexes of 15 MiB of `[],[],…` (the most JSON values per byte) in each place one
/// can stand: in `params` (kept as a `serde_json::Value`), in `files` (read record by record), in a
/// GPU_IDX2 header line.
#[test]
fn regression_legacy_json_bombs_bounded() {
    let arrays = "[],".repeat(5 << 20);
    let idx1 = |params: &str, files: &str| {
        format!(r#"{{"params": {{"x": [{params}[]]}}, "frames": [], "files": [{files}]}}"#)
    };
    let raw = idx1(&arrays, "");
    check_volumes(
        "GPU_IDX1 params",
        legacy(raw.as_bytes(), b"GPU_IDX1"),
        raw.len() as u64,
    );
    let raw = idx1("", &format!("{arrays}[]"));
    check_volumes(
        "GPU_IDX1 files",
        legacy(raw.as_bytes(), b"GPU_IDX1"),
        raw.len() as u64,
    );
    let raw = format!(
        r#"{{"version": 2, "type": "GPU_IDX2", "params": {{"x": [{arrays}[]]}}, "count_files": 0, "count_frames": 0}}"#
    );
    check_volumes(
        "GPU_IDX2 header",
        legacy(raw.as_bytes(), b"GPU_IDX2"),
        raw.len() as u64,
    );
}

/// `[op, a, b, 17]`: 2^17 of op's items.
fn big(op: u8, a: u8, b: u8) -> [u8; 4] {
    [op, a, b, 17]
}

#[test]
fn regression_many_xattrs_bounded() {
    // Issue 14 item 2's shape: one entry with as many xattrs as Linux allows (32 768), and a second
    // operation claiming more with an empty name (refused at open).
    check("xattrs", &[big(0, 7, 0)]);
    check("xattrs, empty name", &[big(0, 0, 1)]);
}

#[test]
fn regression_files_sharing_one_long_content_bounded() {
    // Issue 14 item 3: 2^17 files sharing one content of 2^17 refs alternating between two frames.
    check("shared long content", &[big(3, 0, 1)]);
}

#[test]
fn regression_contents_sharing_refs_bounded() {
    // Issue 14 item 4: 2^17 contents covering the prefixes of one run of 2^17 refs (2^33 ref visits for a
    // per-content walk), and 2^17 copies of the long content that operation 3 makes.
    check("prefix contents", &[big(4, 0, 1)]);
    let made_by_3 = clc::fuzzing::base_archive_contents() as u8;
    check("shared ranges", &[[3, 0, 1, 12], big(2, made_by_3, 0)]);
}

#[test]
fn many_files_hardlinks_symlinks_and_depth_bounded() {
    check("files sharing a content", &[big(1, 0, 0)]);
    check("hardlinks", &[big(5, 1, 0)]);
    check("symlinks", &[[7, 0, 8, 17]]);
    check("depth", &[[6, 0, 0, 12]]);
}

/// Every committed seed and regression of the index_grow target, under the same check.
#[test]
fn index_grow_seeds_bounded() {
    let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for sub in ["seeds", "regressions"] {
        let Ok(rd) = std::fs::read_dir(d.join(sub).join("index_grow")) else {
            continue;
        };
        for f in rd.flatten() {
            let data = std::fs::read(f.path()).unwrap();
            let ops: Vec<[u8; 4]> = data
                .chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect();
            check(&f.path().display().to_string(), &ops);
            n += 1;
        }
    }
    assert!(n > 0, "no seeds in fuzz/seeds/index_grow");
}
