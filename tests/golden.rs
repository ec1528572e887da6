//! The golden archive: `tests/data/golden-v1.*` was written by format version 1 (scripts/make-golden.sh).
//! Every later clc must list it identically and restore the same bytes and metadata.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).join(name)
}

#[test]
fn golden_v1_lists_verifies_and_restores() {
    let first = data("golden-v1.001");
    let (out, _) = clc_ok!("list", &first);
    assert_eq!(
        out,
        std::fs::read_to_string(data("golden-v1.list")).unwrap()
    );
    let (out, _) = clc_ok!("verify", &first);
    assert!(out.starts_with("ok: "), "{out}");
    let (info, _) = clc_ok!("info", &first, "--json");
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(v["format"], "clc format v1");
    assert_eq!(v["volumes"].as_array().unwrap().len(), 4);
    assert!(
        v["frames_per_codec"]["LZ_EXT3"].as_u64().unwrap() >= 2,
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
        .arg(data("golden-v1.sha256"))
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
