//! The golden archives: `tests/data/golden-v1.*` was written by format version 1, `golden-v2.*` by
//! version 2 (LZ_EXT3_SB frames; scripts/make-golden.sh). Every later clc must list them identically and
//! restore the same bytes and metadata.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).join(name)
}

#[test]
fn golden_v1_lists_verifies_and_restores() {
    golden(1, "LZ_EXT3");
}

/// Version 2: its LZ_EXT3_SB frames (16 KiB sub-blocks) decode on the CPU, serially and in parallel.
#[test]
fn golden_v2_lists_verifies_and_restores() {
    golden(2, "LZ_EXT3_SB");
    let (info, _) = clc_ok!("info", data("golden-v2.001"), "--json");
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["subblock_size"], 16384, "{info}");
    assert_eq!(
        v["subblock_frames"], v["frames_per_codec"]["LZ_EXT3_SB"],
        "{info}"
    );
    let ar = clc::archive::Archive::open(&data("golden-v2.001")).unwrap();
    for (i, f) in ar.index.frames.iter().enumerate() {
        if f.codec == clc::codec::Codec::LzExt3Sb {
            let id = clc::format::index::FrameId(i as u32);
            let stored = ar.read_stored(id).unwrap();
            let par = clc::codec::lz_ext3_sb::decompress_parallel(&stored, f.raw_len as usize, 2)
                .unwrap();
            assert_eq!(par, ar.read_frame(id).unwrap(), "frame {i}");
        }
    }
}

fn golden(version: u32, codec: &str) {
    let first = data(&format!("golden-v{version}.001"));
    let (out, _) = clc_ok!("list", &first);
    assert_eq!(
        out,
        std::fs::read_to_string(data(&format!("golden-v{version}.list"))).unwrap()
    );
    let (out, _) = clc_ok!("verify", &first);
    assert!(out.starts_with("ok: "), "{out}");
    let (info, _) = clc_ok!("info", &first, "--json");
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["format"], format!("clc format v{version}"));
    assert_eq!(v["volumes"].as_array().unwrap().len(), 4);
    assert!(
        v["frames_per_codec"][codec].as_u64().unwrap() >= 2,
        "{info}"
    );
    assert!(
        v["frames_per_codec"]["RAW"].as_u64().unwrap() >= 1,
        "{info}"
    );

    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("g");
    clc_ok!("extract", &first, "-o", &dest, "-q");
    let sums = std::process::Command::new("sha256sum")
        .args(["--check", "--strict", "--quiet"])
        .arg(data(&format!("golden-v{version}.sha256")))
        .current_dir(&dest)
        .output()
        .unwrap();
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    let m = |p: &str| std::fs::symlink_metadata(dest.join(p)).unwrap();
    assert_eq!(
        m("docs/hardlink.txt").ino(),
        m("docs/nested/small.txt").ino()
    );
    assert_eq!(
        std::fs::read_link(dest.join("docs/symlink")).unwrap(),
        PathBuf::from("nested/small.txt")
    );
    assert_eq!(m("bin").mode() & 0o7777, 0o750);
    assert_eq!(
        (m("docs/long.txt").mtime(), m("docs/long.txt").mtime_nsec()),
        (1_704_164_645, 123_456_789)
    );
    assert!(m("empty-dir").is_dir());
    let x = clc::sys::xattrs(&dest.join("docs/long.txt")).unwrap();
    assert_eq!(x, vec![(b"user.golden".to_vec(), b"yes".to_vec())]);
    if clc::sys::is_root() {
        assert_eq!(
            (m("docs/long.txt").uid(), m("docs/long.txt").gid()),
            (1000, 1000)
        );
    }
}

/// A damaged sub-block table (a flipped byte of a start) is refused with a clear error naming the
/// frame; extract restores nothing wrong and `verify` reports it.
#[test]
fn golden_v2_damaged_table_is_refused() {
    let t = tempfile::tempdir().unwrap();
    for n in 1..=4 {
        let name = format!("golden-v2.{n:03}");
        std::fs::copy(data(&name), t.path().join(&name)).unwrap();
    }
    let first = t.path().join("golden-v2.001");
    let ar = clc::archive::Archive::open(&first).unwrap();
    let (i, f) = ar
        .index
        .frames
        .iter()
        .enumerate()
        .find(|(_, f)| f.codec == clc::codec::Codec::LzExt3Sb)
        .unwrap();
    let vol = t.path().join(format!("golden-v2.{:03}", f.volume));
    let mut bytes = std::fs::read(&vol).unwrap();
    bytes[f.offset as usize + 12] ^= 0x01; // start[1]
    std::fs::write(&vol, &bytes).unwrap();
    let err = ar
        .read_frame(clc::format::index::FrameId(i as u32))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sub-block table checksum mismatch"), "{err}");
    let o = common::clc().args(["verify"]).arg(&first).output().unwrap();
    assert_ne!(o.status.code(), Some(0));
}
