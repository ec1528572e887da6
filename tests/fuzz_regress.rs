//! The fuzz targets' bodies (`clc::fuzzing`) on stable, in every `cargo test`: over the committed seeds
//! (`fuzz/seeds/<target>/`), every crash the fuzzer found (`fuzz/regressions/<target>/`), a local corpus if
//! one exists (`fuzz/corpus/<target>/`, at most `CORPUS_CAP` files each unless `CLC_FUZZ_CORPUS_ALL=1`),
//! and a few hundred generated inputs. Then one named test per bug the fuzzer or the hostile-archive tests
//! caught. The long runs are `scripts/fuzz.sh` (nightly, libFuzzer); see docs/RELIABILITY.md.

mod common;

use common::Rng;
use std::path::{Path, PathBuf};

type Body = fn(&[u8]);

const TARGETS: [(&str, Body); 12] = [
    ("lz_ext3_decode", clc::fuzzing::lz_ext3_decode),
    ("lz_ext3_sb_decode", clc::fuzzing::lz_ext3_sb_decode),
    ("lz_ext3_roundtrip", clc::fuzzing::lz_ext3_roundtrip),
    ("index_decode", clc::fuzzing::index_decode),
    ("headers", clc::fuzzing::headers),
    ("open_archive", clc::fuzzing::open_archive),
    ("open_archive_mutate", clc::fuzzing::open_archive_mutate),
    ("index_grow", clc::fuzzing::index_grow),
    ("lz_ext3e_decode", clc::fuzzing::lz_ext3e_decode),
    ("lz_ext3e_roundtrip", clc::fuzzing::lz_ext3e_roundtrip),
    ("tree_pages", clc::fuzzing::tree_pages),
    ("zstd_decode", clc::fuzzing::zstd_decode),
];
const CORPUS_CAP: usize = 200;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files_in(dir: &Path, cap: usize) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v.truncate(cap);
    v
}

fn run_files(target: &str, body: Body) -> usize {
    let all = std::env::var("CLC_FUZZ_CORPUS_ALL").as_deref() == Ok("1");
    let d = fuzz_dir();
    let mut n = 0;
    for (sub, cap) in [
        ("seeds", usize::MAX),
        ("regressions", usize::MAX),
        ("corpus", if all { usize::MAX } else { CORPUS_CAP }),
    ] {
        let files = files_in(&d.join(sub).join(target), cap);
        // Without its seeds a target's replay would test little and pass anyway.
        assert!(
            sub != "seeds" || !files.is_empty(),
            "no seeds in fuzz/seeds/{target}"
        );
        for p in files {
            let data = std::fs::read(&p).unwrap();
            eprintln!("{}", p.display());
            body(&data);
            n += 1;
        }
    }
    n
}

/// Seeds and regressions, then `count` random inputs of up to `max_len` bytes, some starting from a seed.
fn run_target(target: &str, body: Body, count: usize, max_len: usize) {
    let n = run_files(target, body);
    let seeds: Vec<Vec<u8>> = files_in(&fuzz_dir().join("seeds").join(target), usize::MAX)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let mut rng = Rng(0x5EED ^ target.len() as u64);
    for i in 0..count {
        let mut data = match seeds.get(i % (seeds.len() + 1)) {
            // A seed with a few bytes changed, cut or extended.
            Some(s) => {
                let mut s = s.clone();
                for _ in 0..1 + rng.next() % 4 {
                    if !s.is_empty() {
                        let at = (rng.next() as usize) % s.len();
                        s[at] ^= 1 << (rng.next() % 8);
                    }
                }
                if rng.next() % 4 == 0 {
                    s.truncate((rng.next() as usize) % (s.len() + 1));
                }
                s
            }
            None => {
                let len = (rng.next() as usize) % (max_len + 1);
                rng.bytes(len)
            }
        };
        if rng.next() % 8 == 0 {
            data.extend(rng.bytes(16));
        }
        body(&data);
    }
    eprintln!("{target}: {n} files, {count} generated inputs");
}

/// `run_target` for the target called `name` in [`TARGETS`].
fn run_named(name: &str, count: usize, max_len: usize) {
    let (t, body) = TARGETS
        .iter()
        .find(|(t, _)| *t == name)
        .expect("a target of TARGETS");
    run_target(t, *body, count, max_len);
}

#[test]
fn lz_ext3_sb_decode_inputs() {
    run_named("lz_ext3_sb_decode", 400, 8192);
}

#[test]
fn lz_ext3_decode_inputs() {
    run_named("lz_ext3_decode", 400, 4096);
}

#[test]
fn lz_ext3_roundtrip_inputs() {
    run_named("lz_ext3_roundtrip", 300, 70_000);
}

#[test]
fn lz_ext3e_decode_inputs() {
    run_named("lz_ext3e_decode", 400, 4096);
}

#[test]
fn zstd_decode_inputs() {
    run_named("zstd_decode", 300, 4096);
}

#[test]
fn lz_ext3e_roundtrip_inputs() {
    run_named("lz_ext3e_roundtrip", 300, 70_000);
}

#[test]
fn index_decode_inputs() {
    run_named("index_decode", 400, 2048);
}

#[test]
fn headers_inputs() {
    run_named("headers", 400, 100);
}

#[test]
fn open_archive_inputs() {
    run_named("open_archive", 200, 4096);
}

#[test]
fn open_archive_mutate_inputs() {
    run_named("open_archive_mutate", 200, 64);
}

#[test]
fn index_grow_inputs() {
    // Few and short: each grows the index by up to 2^17 items per operation (tests/bounds.rs checks
    // the largest shapes, with a heap count).
    run_named("index_grow", 24, 12);
}

/// The regression input `fuzz/regressions/open_archive_mutate/NAME`, the volumes `mutate_base` makes of it,
/// and a directory holding them as `a.001`, `a.002`, ….
fn mutated_on_disk(name: &str) -> (Vec<u8>, Vec<Vec<u8>>, tempfile::TempDir) {
    let data = std::fs::read(
        fuzz_dir()
            .join("regressions/open_archive_mutate")
            .join(name),
    )
    .unwrap();
    let vols = clc::fuzzing::mutate_base(&data);
    let t = tempfile::tempdir().unwrap();
    for (i, v) in vols.iter().enumerate() {
        std::fs::write(t.path().join(format!("a.{:03}", i + 1)), v).unwrap();
    }
    (data, vols, t)
}

/// Found again by `open_archive_mutate` with the fix reverted (after 382 executions, starting from the
/// corpus of the earlier runs): one mutation writing 0xffffffff over a frame's stored length in the index
/// made `read_stored` allocate it (libFuzzer: out-of-memory, malloc(4294906717)). tests/hostile.rs found
/// it first; the fix refuses it when the index is loaded.
#[test]
fn regression_open_archive_mutate_stored_len_alloc() {
    let (data, _, t) = mutated_on_disk("stored-len-alloc");
    let err = match clc::archive::Archive::open(&t.path().join("a.001")) {
        Ok(_) => panic!("opened an archive whose frame claims gigabytes"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("stored length"), "{err}");
    clc::fuzzing::open_archive_mutate(&data);
}

/// The fuzzer's `[4, 0, 0, 0]`: the first volume cut to 0 bytes. An archive whose first volume is not clc's
/// is looked for in its last volume alone, and the footer found there was taken as the first volume's
/// (its position in a one-volume slice): reading the index then subtracted past zero and panicked. Now the
/// archive opens from its last volume, and what lay in the empty one fails by name.
#[test]
fn regression_open_archive_mutate_empty_first_volume() {
    let (data, vols, t) = mutated_on_disk("empty-first-volume");
    assert!(vols.len() >= 2 && vols[0].is_empty() && !vols[1].is_empty());
    // The last volume holds the footer and the whole index: the archive opens, and verify names the
    // empty volume, its frames and their files, while the frames of the second volume check.
    let ar = match clc::archive::Archive::open(&t.path().join("a.001")) {
        Ok(ar) => ar,
        Err(e) => {
            panic!("the last volume holds the whole index, yet the archive did not open: {e}")
        }
    };
    let report = clc::verify::verify(&ar);
    assert!(report.frames_ok > 0, "{report:?}");
    assert!(
        report
            .damages
            .iter()
            .any(|d| d.what == "volume" && d.line.contains("a.001")),
        "verify does not name the empty volume: {report:?}"
    );
    assert!(
        report
            .damages
            .iter()
            .any(|d| d.frame.is_some() && !d.files.is_empty()),
        "verify does not name the files of the empty volume's frames: {report:?}"
    );
    clc::fuzzing::open_archive_mutate(&data);
}

/// Writes `fuzz/seeds/*` (run by hand: `cargo test --test fuzz_regress -- --ignored write_seeds`).
#[test]
#[ignore]
fn write_seeds() {
    use clc::codec::{lz_ext3, EncodeParams};
    use clc::format::frame::FrameHeader;
    use clc::format::volume::VolumeHeader;
    let d = fuzz_dir().join("seeds");
    let put = |t: &str, name: &str, b: &[u8]| {
        let dir = d.join(t);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), b).unwrap();
    };
    let text: Vec<u8> =
        b"the frame, the volume, the index; the frame again, and the volume. ".repeat(20);
    for (name, src) in [
        ("text", &text[..]),
        ("short", &b"abcabcabcabcabcabcabcabc"[..]),
    ] {
        let c = lz_ext3::compress(src, &EncodeParams::default());
        let mut v = (src.len() as u32).to_le_bytes()[..3].to_vec();
        v.extend(&c);
        put("lz_ext3_decode", name, &v);
        let mut r = vec![16, 2, 20];
        r.extend_from_slice(src);
        put("lz_ext3_roundtrip", name, &r);
    }
    let base = clc::fuzzing::base_archive();
    put("index_decode", "base", &base.raw_index);
    let vh = VolumeHeader {
        version: 1,
        number: 1,
        archive_id: [7; 16],
    };
    put(
        "headers",
        "volume",
        &[[0u8].as_slice(), &vh.encode()].concat(),
    );
    let fh = FrameHeader {
        codec: clc::codec::Codec::LzExt3,
        flags: 0,
        raw_len: 100,
        stored_len: 50,
        checksum: 1,
        frame_id: 0,
    };
    put(
        "headers",
        "frame",
        &[[2u8].as_slice(), &fh.encode()].concat(),
    );
    let last = base.volumes.last().unwrap();
    put(
        "headers",
        "footer",
        &[[4u8].as_slice(), &last[last.len() - 80..]].concat(),
    );
    // A one-volume archive of a few small files.
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/a.txt"), &text[..300]).unwrap();
    std::fs::write(src.join("d/b.txt"), &text[..300]).unwrap();
    std::fs::write(src.join("c"), b"cccccccccccccccccccccccc").unwrap();
    std::os::unix::fs::symlink("d/a.txt", src.join("l")).unwrap();
    let cfg = clc::Config {
        force_cpu: true,
        frame_size: 1 << 10,
        chunk_min: 256,
        chunk_avg: 512,
        chunk_max: 1 << 10,
        ..clc::Config::default()
    };
    let opts = clc::pack::PackOptions {
        src,
        out: t.path().join("a"),
        force: true,
        progress: false,
        ..Default::default()
    };
    let st = clc::pack::pack(&cfg, &opts, None, &clc::diag::Warnings::new(true)).unwrap();
    assert_eq!(st.volumes.len(), 1);
    let one = std::fs::read(&st.volumes[0]).unwrap();
    put(
        "open_archive",
        "one-volume",
        &[[0u8].as_slice(), &one].concat(),
    );
    put(
        "open_archive",
        "split",
        &[[1u8, 200, 0].as_slice(), &one].concat(),
    );
    put("open_archive_mutate", "none", b"");
    put("open_archive_mutate", "index-flip", &[1, 40, 0, 0x01]);
    put("open_archive_mutate", "frame-header", &[2, 1, 9, 0x80]);
    put("open_archive_mutate", "index-value", &[3, 100, 1, 6]);
    // index_grow: one seed per operation (2^6 to 2^10 items), and all of them at once.
    let made_by_3 = clc::fuzzing::base_archive_contents() as u8;
    for (name, ops) in [
        ("none", vec![]),
        ("xattrs", vec![0, 3, 0, 10]),
        ("xattr-empty-name", vec![0, 0, 1, 4]),
        ("shared-content", vec![1, 0, 0, 10]),
        ("shared-range", vec![3, 0, 1, 8, 2, made_by_3, 0, 10]),
        ("long-content", vec![3, 0, 1, 10]),
        ("prefix-contents", vec![4, 1, 2, 10]),
        ("hardlinks", vec![5, 1, 0, 10]),
        ("depth", vec![6, 0, 0, 8]),
        ("symlinks", vec![7, 0, 4, 8]),
        (
            "all",
            vec![
                0, 1, 0, 6, 1, 0, 0, 6, 2, 1, 0, 6, 3, 0, 1, 6, 4, 1, 2, 6, 5, 2, 0, 6, 6, 0, 0, 6,
                7, 0, 2, 6,
            ],
        ),
    ] {
        put("index_grow", name, &ops);
    }
}

/// Writes `fuzz/seeds/lz_ext3e_decode/*` (run by hand: `cargo test --test fuzz_regress -- --ignored
/// write_ext3e_seeds`): frames of the default options, of raw streams only, of a long repeat and of a short
/// input, each behind its 3-byte raw length.
#[test]
#[ignore]
fn write_ext3e_seeds() {
    use clc::codec::lz_ext3e::{Encoder, Options};
    use clc::codec::EncodeParams;
    let dir = fuzz_dir().join("seeds/lz_ext3e_decode");
    std::fs::create_dir_all(&dir).unwrap();
    let text: Vec<u8> =
        b"the frame, the volume, the index; the frame again, and the volume. ".repeat(75);
    let raw = Options {
        huffman: 0,
        ..Options::default()
    };
    let small = Options {
        subblock_log: 12,
        ..Options::default()
    };
    for (name, src, opt) in [
        ("text", &text[..], Options::default()),
        ("text_raw", &text[..], raw),
        ("repeat", &[b'z'; 9000][..], small),
        (
            "short",
            &b"abcabcabcabcabcabcabcabc"[..],
            Options::default(),
        ),
    ] {
        let mut v = (src.len() as u32).to_le_bytes()[..3].to_vec();
        Encoder::new(&EncodeParams::default(), &opt).compress(src, &mut v);
        assert_eq!(
            clc::codec::lz_ext3e::decompress(&v[3..], src.len()).unwrap(),
            src
        );
        std::fs::write(dir.join(name), &v).unwrap();
    }
}
