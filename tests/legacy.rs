//! CL_Compressor archives (`src/legacy/`): the seed archives in `tests/data/seed-archives` must restore the seed
//! tree byte for byte through clc's `Index`; the writer-bug archive must report the right damaged file;
//! mutated archives must never panic. Synthetic IDX1 archives cover volume gaps and odd duplicates.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use clc::format::index::{EntryId, EntryKind};
use clc::legacy::{self, Legacy};
use serde_json::{json, Value};

/// The CL_Compressor archives and the tree they were made from (kept in the repository, ~6 MB).
const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seed-archives");

fn seed() -> PathBuf {
    let p = PathBuf::from(SEED);
    assert!(p.join("tree.tar.xz").is_file(), "{SEED} has no tree.tar.xz");
    p
}

/// Reads files through the index, decoding frames once (cached by stored bytes, so that mutated copies of
/// one archive share the work).
#[derive(Default)]
struct Reader {
    cache: HashMap<(u64, u32, u8), Result<Vec<u8>, String>>,
}

impl Reader {
    fn frame(&mut self, lg: &Legacy, id: usize) -> Result<&[u8], String> {
        let f = lg.index.frames()[id];
        let path = &lg.volumes[f.volume.at()];
        let mut v = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut stored = vec![0u8; f.stored_len as usize];
        std::io::Seek::seek(&mut v, std::io::SeekFrom::Start(f.offset))
            .map_err(|e| e.to_string())?;
        std::io::Read::read_exact(&mut v, &mut stored).map_err(|e| e.to_string())?;
        let key = (
            xxhash_rust::xxh3::xxh3_64(&stored),
            f.raw_len,
            f.codec as u8,
        );
        let out = self.cache.entry(key).or_insert_with(|| {
            clc::codec::decode(f.codec, &stored, f.raw_len as usize).map_err(|e| e.to_string())
        });
        out.as_deref().map_err(Clone::clone)
    }

    /// content → refs → chunks → frame bytes.
    fn read(&mut self, lg: &Legacy, id: EntryId) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let Some(c) = lg.index.content_of(id) else {
            return Ok(out);
        };
        for p in lg.index.pieces(c, 0).collect::<Vec<_>>() {
            let fb = self.frame(lg, p.frame.at())?;
            out.extend_from_slice(&fb[p.at as usize..(p.at + p.len) as usize]);
        }
        Ok(out)
    }
}

/// Extracts `tree.tar.xz` into a temp dir; returns the dir holding `tree/`.
fn extract_tree(seed: &Path) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xJf")
        .arg(seed.join("tree.tar.xz"))
        .arg("-C")
        .arg(t.path())
        .status()
        .expect("run tar");
    assert!(st.success(), "tar failed");
    t
}

/// (files, dirs) under `root`, as relative path bytes.
fn walk(root: &Path) -> (BTreeSet<Vec<u8>>, BTreeSet<Vec<u8>>) {
    let (mut files, mut dirs) = (BTreeSet::new(), BTreeSet::new());
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            if p.is_dir() {
                dirs.insert(rel);
                todo.push(p);
            } else {
                files.insert(rel);
            }
        }
    }
    (files, dirs)
}

fn archive_dirs(seed: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(seed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("archive.001").is_file())
        .collect();
    v.sort();
    v
}

fn entries_of(lg: &Legacy, kind: EntryKind) -> BTreeSet<Vec<u8>> {
    let e = lg.index.entries().iter().filter(|e| e.kind == kind);
    e.map(|e| e.path.clone()).collect()
}

#[test]
fn seed_archives_restore_the_tree() {
    let seed = seed();
    let tmp = extract_tree(&seed);
    let tree = tmp.path().join("tree");
    let (files, dirs) = walk(&tree);
    let mut checked = 0;
    for dir in archive_dirs(&seed) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("bug-") {
            continue;
        }
        let first = dir.join("archive.001");
        assert!(legacy::detect(&first).unwrap(), "{name}");
        let lg = legacy::open(&first)
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: not legacy"));
        let want_kind = format!("GPU_IDX{}", &name[3..4]);
        assert_eq!(lg.kind, want_kind, "{name}");
        assert!(lg.damaged.is_empty(), "{name}: {:?}", lg.damaged);
        (lg.index.clone().into_raw())
            .validate(&name, lg.volumes.len() as u32)
            .unwrap();
        assert_eq!(lg.index.param("format"), Some(lg.kind));
        assert!(lg.index.param("legacy.frame_size").is_some());
        assert!(lg.source_root.ends_with("/tree"), "{}", lg.source_root);
        assert_eq!(entries_of(&lg, EntryKind::File), files, "{name}: file set");
        assert_eq!(entries_of(&lg, EntryKind::Dir), dirs, "{name}: dir set");
        let mut r = Reader::default();
        for (id, e) in lg
            .index
            .entries_with_ids()
            .filter(|(_, e)| e.kind == EntryKind::File)
        {
            let p = String::from_utf8_lossy(&e.path);
            let got = r
                .read(&lg, id)
                .unwrap_or_else(|m| panic!("{name}: {p}: {m}"));
            let want = std::fs::read(tree.join(std::ffi::OsStr::from_bytes(&e.path))).unwrap();
            assert!(
                got == want,
                "{name}: {p}: {} bytes, want {}",
                got.len(),
                want.len()
            );
            assert_eq!(e.mode, 0o644);
        }
        // Any volume opens the same archive.
        let last = lg.volumes.last().unwrap();
        assert_eq!(
            legacy::open(last).unwrap().unwrap().index,
            lg.index,
            "{name}"
        );
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} seed archives");
}

/// `text(tag, n)` from the generator in bug-idx3-head-truncated-stream/HOW-MADE.txt.
fn text(tag: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < n {
        let line =
            format!("{tag} line {i:07}: lorem ipsum dolor sit amet, consectetur adipiscing elit\n");
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.truncate(n);
    out
}

#[test]
fn truncated_stream_bug_is_reported() {
    let seed = seed();
    let lg = legacy::open(&seed.join("bug-idx3-head-truncated-stream/archive.001"))
        .unwrap()
        .unwrap();
    assert_eq!(lg.kind, "GPU_IDX3");
    let path = |id: EntryId| lg.index.entry(id).unwrap().path.clone();
    // HOW-MADE.txt: b.txt starts 100000 bytes into frame 0 and loses all but 948576 bytes; c.txt is lost.
    let names: Vec<_> = lg.damaged.iter().map(|(id, _)| path(*id)).collect();
    assert_eq!(
        names,
        [b"b.txt".to_vec(), b"c.txt".to_vec()],
        "{:?}",
        lg.damaged
    );
    let why = &lg.damaged[0].1;
    for part in ["truncated-stream", "1701000", "1049576", "b.txt", "948576"] {
        assert!(why.contains(part), "{why}");
    }
    let mut r = Reader::default();
    let entry = |n: &[u8]| {
        lg.index
            .entries_with_ids()
            .find(|(_, e)| e.path == n)
            .unwrap()
    };
    assert_eq!(r.read(&lg, entry(b"a.txt").0).unwrap(), text("A", 100_000));
    assert_eq!(r.read(&lg, entry(b"b.txt").0).unwrap(), text("B", 948_576));
    assert_eq!(entry(b"c.txt").1.size, 0);
}

/// Flips `positions` in a copy of `vol` (the last volume) and truncates it; open and read never panic.
fn mutate_file(vol: &Path, positions: &[usize], cuts: &[usize]) -> usize {
    let orig = std::fs::read(vol).unwrap();
    let mut errors = 0;
    let mut r = Reader::default();
    let mut attempt = |bytes: &[u8], what: String| {
        std::fs::write(vol, bytes).unwrap();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match legacy::open(&vol.with_extension("001")) {
                Ok(Some(lg)) => {
                    (lg.index.clone().into_raw())
                        .validate("m", lg.volumes.len() as u32)
                        .unwrap();
                    for (id, _) in lg.index.entries_with_ids() {
                        let _ = r.read(&lg, id);
                    }
                    false
                }
                Ok(None) => false,
                Err(e) => {
                    assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
                    true
                }
            }
        }));
        errors += res.unwrap_or_else(|_| panic!("panic with {what}")) as usize;
    };
    for &p in positions {
        for mask in [0xff, 0x01] {
            let mut m = orig.clone();
            m[p] ^= mask;
            attempt(&m, format!("byte {p} ^ {mask:#x}"));
        }
    }
    for &n in cuts {
        attempt(&orig[..n], format!("truncation to {n}"));
    }
    std::fs::write(vol, &orig).unwrap();
    errors
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, t.path().join(p.file_name().unwrap())).unwrap();
    }
    t
}

fn footer(bytes: &[u8]) -> (usize, usize) {
    let n = bytes.len();
    let le = |a: usize| u64::from_le_bytes(bytes[a..a + 8].try_into().unwrap()) as usize;
    (le(n - 24), le(n - 16))
}

#[test]
fn mutated_footer_and_index_never_panic() {
    let seed = seed();
    let t = copy_dir(&seed.join("bug-idx3-head-truncated-stream"));
    let vol = t.path().join("archive.001");
    let bytes = std::fs::read(&vol).unwrap();
    let (off, _) = footer(&bytes);
    let region = bytes.len() - off;
    let positions: Vec<usize> = (0..100)
        .map(|i| off + i * region / 100)
        .chain(bytes.len() - 24..bytes.len())
        .collect();
    let cuts: Vec<usize> = (0..25)
        .map(|i| i * bytes.len() / 25)
        .chain((1..=25).map(|k| bytes.len() - k))
        .collect();
    let errors = mutate_file(&vol, &positions, &cuts);
    assert!(errors > 100, "only {errors} mutations were refused");
}

/// Rewrites the index of `vol` with `f(inflated index)`, re-compressed the way `kind` does it.
fn rewrite_index(vol: &Path, kind: u8, f: impl FnOnce(&mut Vec<u8>)) {
    use std::io::Read;
    let bytes = std::fs::read(vol).unwrap();
    let (off, size) = footer(&bytes);
    let blob = &bytes[off..off + size];
    let mut raw = Vec::new();
    if kind == 1 {
        flate2::read::ZlibDecoder::new(blob)
            .read_to_end(&mut raw)
            .unwrap();
    } else {
        flate2::read::GzDecoder::new(blob)
            .read_to_end(&mut raw)
            .unwrap();
    }
    f(&mut raw);
    let blob = if kind == 1 {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&raw).unwrap();
        z.finish().unwrap()
    } else {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&raw).unwrap();
        z.finish().unwrap()
    };
    let mut out = bytes[..off].to_vec();
    out.extend_from_slice(&blob);
    out.extend_from_slice(&(off as u64).to_le_bytes());
    out.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    out.extend_from_slice(format!("GPU_IDX{kind}").as_bytes());
    std::fs::write(vol, out).unwrap();
}

#[test]
fn mutated_index_payloads_never_panic() {
    let seed = seed();
    let cases = [
        ("bug-idx3-head-truncated-stream", "archive.001", 3u8),
        ("idx1-37b0d32-default", "archive.001", 1),
        ("idx2-0218296-f1m-v1m", "archive.003", 2),
    ];
    let mut r = Reader::default();
    for (dir, last, kind) in cases {
        let t = copy_dir(&seed.join(dir));
        let vol = t.path().join(last);
        let orig = std::fs::read(&vol).unwrap();
        let mut n = 0;
        rewrite_index(&vol, kind, |raw| n = raw.len());
        let (mut opened, mut refused) = (0, 0);
        let mut seed_rng = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..120 {
            seed_rng = seed_rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let pos = (seed_rng >> 33) as usize % n;
            let val = (seed_rng >> 20) as u8;
            std::fs::write(&vol, &orig).unwrap();
            // Aim at bytes in use (a SQLite image is mostly zero pages).
            rewrite_index(&vol, kind, |raw| {
                let p = (pos..n).chain(0..pos).find(|&p| raw[p] != 0).unwrap_or(pos);
                raw[p] = if i % 3 == 0 { b'9' } else { val };
            });
            let res =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    match legacy::open(&t.path().join("archive.001")) {
                        Ok(Some(lg)) => {
                            for (id, _) in lg.index.entries_with_ids() {
                                let _ = r.read(&lg, id);
                            }
                            opened += 1;
                        }
                        Ok(None) => {}
                        Err(_) => refused += 1,
                    }
                }));
            assert!(res.is_ok(), "{dir}: panic with index byte {pos} = {val:#x}");
        }
        eprintln!("{dir}: {opened} mutated indexes opened, {refused} refused");
        assert!(refused > 0, "{dir}: no mutation was refused");
    }
}

// ---- synthetic IDX1 archives -------------------------------------------------------------------------

/// Files (path, bytes, original) → volumes `a.NNN` with RAW frames of `fs` bytes; frame k goes into volume
/// `frame_vols[k]`, the index into volume `last`. `tweak` may edit the JSON index first.
fn synth(
    dir: &Path,
    files: &[(&str, &[u8], Option<&str>)],
    fs: usize,
    frame_vols: &[u32],
    last: u32,
    tweak: impl FnOnce(&mut Value),
) -> PathBuf {
    let stream: Vec<u8> = files
        .iter()
        .filter(|f| f.2.is_none())
        .flat_map(|f| f.1.iter().copied())
        .collect();
    let mut vols: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut frames = Vec::new();
    let mut modes = serde_json::Map::new();
    for (k, piece) in stream.chunks(fs).enumerate() {
        let v = vols.entry(frame_vols[k]).or_default();
        frames.push(
            json!({"frame_id": k, "volume_name": format!("a.{:03}", frame_vols[k]),
            "offset": v.len(), "compressed_size": piece.len(), "uncompressed_size": piece.len()}),
        );
        modes.insert(k.to_string(), json!("raw"));
        v.extend_from_slice(piece);
    }
    let files: Vec<Value> = files
        .iter()
        .map(|f| json!({"path_rel": f.0, "size": f.1.len(), "is_duplicate": f.2.is_some(), "original": f.2}))
        .collect();
    let mut doc = json!({"files": files, "frames": frames, "dictionary": null,
        "params": {"frame_size": fs, "source_root": "/src", "frame_modes": modes}});
    tweak(&mut doc);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(doc.to_string().as_bytes()).unwrap();
    let blob = z.finish().unwrap();
    let v = vols.entry(last).or_default();
    let off = v.len() as u64;
    v.extend_from_slice(&blob);
    v.extend_from_slice(&off.to_le_bytes());
    v.extend_from_slice(&(blob.len() as u64).to_le_bytes());
    v.extend_from_slice(b"GPU_IDX1");
    for (n, bytes) in vols {
        std::fs::write(dir.join(format!("a.{n:03}")), bytes).unwrap();
    }
    dir.join(format!("a.{last:03}"))
}

fn read_all(lg: &Legacy) -> HashMap<String, Vec<u8>> {
    let mut r = Reader::default();
    let files = lg
        .index
        .entries_with_ids()
        .filter(|(_, e)| e.kind == EntryKind::File);
    files
        .map(|(id, e)| {
            (
                String::from_utf8(e.path.clone()).unwrap(),
                r.read(lg, id).unwrap(),
            )
        })
        .collect()
}

#[test]
fn synthetic_gaps_and_volume_names() {
    let t = tempfile::tempdir().unwrap();
    let files: &[(&str, &[u8], Option<&str>)] =
        &[("d/x", b"hello world, ", None), ("y", b"bye", None)];
    // Frames in volume 1 only, index in volume 3, no volume 2: fine.
    let last = synth(t.path(), files, 8, &[1, 1], 3, |_| {});
    let lg = legacy::open(&t.path().join("a.001")).unwrap().unwrap();
    assert_eq!(lg.volumes.len(), 3);
    assert_eq!(read_all(&lg)["d/x"], b"hello world, ");
    assert_eq!(
        entries_of(&lg, EntryKind::Dir),
        BTreeSet::from([b"d".to_vec()])
    );
    std::fs::remove_file(last).unwrap();

    // A frame in the missing volume 2: the error names it.
    synth(t.path(), files, 8, &[1, 2], 3, |_| {});
    std::fs::remove_file(t.path().join("a.002")).unwrap();
    let e = legacy::open(&t.path().join("a.001"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.002") && e.contains("missing"), "{e}");

    // A frame naming a volume of another archive.
    synth(t.path(), files, 8, &[1, 1], 3, |d| {
        d["frames"][1]["volume_name"] = json!("b.001")
    });
    let e = legacy::open(&t.path().join("a.001"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown volume \"b.001\"") && e.contains("a.003"),
        "{e}"
    );

    // A frame running past its volume's end, and a footer pointing outside the file.
    synth(t.path(), files, 8, &[1, 1], 3, |d| {
        d["frames"][1]["offset"] = json!(1u64 << 40)
    });
    assert!(legacy::open(&t.path().join("a.001")).is_err());
    let mut v = std::fs::read(t.path().join("a.003")).unwrap();
    let n = v.len();
    v[n - 17] = 0x7f;
    std::fs::write(t.path().join("a.003"), v).unwrap();
    let e = legacy::open(&t.path().join("a.001"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.003") && e.contains("footer"), "{e}");
}

#[test]
fn synthetic_duplicates_and_paths() {
    let t = tempfile::tempdir().unwrap();
    let files: &[(&str, &[u8], Option<&str>)] = &[
        ("copy", b"shared", Some("z/orig")),
        ("lost", b"abc", Some("nowhere")),
        ("empty", b"", None),
        ("z/orig", b"shared", None),
    ];
    synth(t.path(), files, 4, &[1, 1], 1, |_| {});
    let lg = legacy::open(&t.path().join("a.001")).unwrap().unwrap();
    let got = read_all(&lg);
    assert_eq!(got["copy"], b"shared");
    assert_eq!(got["z/orig"], b"shared");
    assert_eq!(got["empty"], b"");
    assert_eq!(lg.damaged.len(), 1);
    let (id, why) = &lg.damaged[0];
    assert_eq!(lg.index.entry(*id).unwrap().path, b"lost");
    assert!(why.contains("nowhere"), "{why}");
    let names: Vec<_> = lg.index.entries().iter().map(|e| e.path.clone()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    for bad in ["../up", "/abs", "a//b", "./a", ""] {
        synth(t.path(), &[(bad, b"x", None)], 4, &[1], 1, |_| {});
        let e = legacy::open(&t.path().join("a.001"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{bad:?}")), "{e}");
    }
    synth(
        t.path(),
        &[("a", b"x", None), ("a/b", b"y", None)],
        4,
        &[1],
        1,
        |_| {},
    );
    assert!(legacy::open(&t.path().join("a.001")).is_err());
}

#[test]
fn clc_and_foreign_files_are_not_legacy() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("c.001");
    let mut v = b"CLCVOL\0\x01".to_vec();
    v.resize(200, 0);
    v[176..184].copy_from_slice(b"GPU_IDX1");
    std::fs::write(&p, &v).unwrap();
    assert!(legacy::open(&p).unwrap().is_none());
    let mut v = vec![0u8; 200];
    v[120..128].copy_from_slice(b"CLCFOOT1");
    v[192..200].copy_from_slice(b"GPU_IDX1");
    std::fs::write(&p, &v).unwrap();
    assert!(legacy::open(&p).unwrap().is_none());
    std::fs::write(&p, b"short").unwrap();
    assert!(!legacy::detect(&p).unwrap());
    let q = t.path().join("plain.txt");
    std::fs::write(&q, b"whatever GPU_IDX1").unwrap();
    assert!(legacy::open(&q).unwrap().is_none());
    assert!(legacy::open(&t.path().join("absent.001")).is_err());
}

#[test]
fn synthetic_truncation_damages_duplicates_too() {
    let t = tempfile::tempdir().unwrap();
    let files: &[(&str, &[u8], Option<&str>)] = &[
        ("a", b"AAAAAA", None),
        ("b", b"BBBBBBBBBB", None),
        ("c", b"CCC", None),
        ("e", b"", None),
        ("z", b"BBBBBBBBBB", Some("b")),
    ];
    // Like the writer bug: b starts 6 bytes into an 8-byte frame, the index keeps its 10 bytes but only 2
    // reached the frames.
    synth(t.path(), files, 8, &[1, 1, 1], 1, |d| {
        let f = d["frames"].as_array_mut().unwrap();
        f.truncate(2);
        f[1]["uncompressed_size"] = json!(3);
        f[1]["compressed_size"] = json!(3);
    });
    // Rebuild the stream as the buggy writer left it: "AAAAAABB" + "CCC".
    let v = std::fs::read(t.path().join("a.001")).unwrap();
    let mut fixed = b"AAAAAABBCCC".to_vec();
    let (off, size) = footer(&v);
    fixed.extend_from_slice(&v[off..off + size]);
    fixed.extend_from_slice(&11u64.to_le_bytes());
    fixed.extend_from_slice(&(size as u64).to_le_bytes());
    fixed.extend_from_slice(b"GPU_IDX1");
    std::fs::write(t.path().join("a.001"), fixed).unwrap();

    let lg = legacy::open(&t.path().join("a.001")).unwrap().unwrap();
    let got = read_all(&lg);
    assert_eq!(got["a"], b"AAAAAA");
    assert_eq!(got["b"], b"BB");
    assert_eq!(got["c"], b"");
    assert_eq!(got["e"], b"");
    assert_eq!(got["z"], b"BB");
    let damaged: Vec<_> = lg
        .damaged
        .iter()
        .map(|(id, why)| (lg.index.entry(*id).unwrap().path.clone(), why.clone()))
        .collect();
    let names: Vec<_> = damaged.iter().map(|d| d.0.as_slice()).collect();
    assert_eq!(names, [&b"b"[..], b"c", b"z"]);
    assert!(
        damaged[0].1.contains("promises 19 bytes, frames hold 11"),
        "{}",
        damaged[0].1
    );
    assert!(
        damaged[2].1.contains("duplicate of \"b\""),
        "{}",
        damaged[2].1
    );
}
