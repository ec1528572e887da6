//! Archives in S3-compatible object storage, through the binary and a real server (SeaweedFS, started
//! by `scripts/test.sh` through `scripts/s3-server.sh`): pack to a bucket, then list / verify / extract /
//! mount from it; a server killed mid-pack leaves no archive that opens; a mount rides through a server
//! killed and restarted (EIO meanwhile, served again after); wrong credentials and a missing volume
//! object are one line each, naming the endpoint or the object.
//!
//! The binary gets only the test server's settings (never the caller's AWS_* ones). Without a server
//! these tests print SKIP and pass, unless `CLC_REQUIRE_S3=1` or `CI=true`, which make them fail.

mod common;

use clc::storage::env::s3_config_from;
use clc::storage::{ObjectName, S3Config, Store};
use std::collections::HashMap;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BUCKET: &str = "clc-test";
const CLC: &str = env!("CARGO_BIN_EXE_clc");

fn test_port() -> u16 {
    std::env::var("CLC_S3_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8333)
}

fn vars(port: u16, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "clc-test-key".into()),
        ("AWS_SECRET_ACCESS_KEY", secret.into()),
    ]
}

fn config(port: u16) -> S3Config {
    let v: HashMap<&str, String> = vars(port, "clc-test-secret").into_iter().collect();
    s3_config_from(&|k| v.get(k).cloned(), None).unwrap()
}

/// A key prefix no other test or run uses.
fn fresh_prefix(test: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("clc-archive-tests/{}-{t}/{test}/", std::process::id())
}

/// The test server's bucket under a fresh prefix, or `None` (SKIP) when no server answers.
fn bucket(port: u16, test: &str) -> Option<(Store, String)> {
    let prefix = fresh_prefix(test);
    let store = Store::s3(&config(port), BUCKET, &prefix).unwrap();
    match store.list("") {
        Ok(_) => Some((store, format!("s3://{BUCKET}/{prefix}"))),
        Err(e) => {
            common::require(
                "S3",
                false,
                &format!("no S3 test server ({e}); start one with scripts/s3-server.sh start"),
            );
            None
        }
    }
}

/// clc with only the test server's settings in its environment.
fn clc(port: u16, secret: &str, args: &[&str]) -> Command {
    let mut c = Command::new(CLC);
    for k in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL_S3",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ] {
        c.env_remove(k);
    }
    c.envs(vars(port, secret)).args(args);
    c
}

fn run(port: u16, args: &[&str]) -> Output {
    clc(port, "clc-test-secret", args).output().unwrap()
}

fn ok(port: u16, args: &[&str]) -> String {
    let o = run(port, args);
    assert!(
        o.status.success(),
        "clc {args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (exit code, stderr) of a run expected to fail.
fn fails(port: u16, args: &[&str]) -> (i32, String) {
    let o = run(port, args);
    assert!(!o.status.success(), "clc {args:?} succeeded");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// (exit code, stdout and stderr) of a run expected to fail.
fn fails_all(port: u16, args: &[&str]) -> (i32, String) {
    let o = run(port, args);
    assert!(!o.status.success(), "clc {args:?} succeeded");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code().unwrap_or(-1), text)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Pack → list, verify, extract from the bucket: the same tree, the same listing as a local pack.
#[test]
fn pack_to_a_bucket_and_read_it_back() {
    let port = test_port();
    let Some((store, url)) = bucket(port, "roundtrip") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    common::make_tree(&src);
    fs::write(src.join("noise.bin"), common::noise(3, 300_000)).unwrap();
    let arch = format!("{url}data");
    ok(
        port,
        &["pack", s(&src), "-o", &arch, "--volume-size", "64K", "-q"],
    );
    let objects: Vec<String> = store
        .list("")
        .unwrap()
        .into_iter()
        .map(|o| o.name.to_string())
        .collect();
    assert!(objects.len() >= 3, "several volumes: {objects:?}");
    assert!(
        objects.iter().all(|n| n.starts_with("data.")),
        "{objects:?}"
    );
    // The same tree packed locally lists the same.
    let local = t.path().join("local");
    clc_ok!("pack", &src, "-o", &local, "--volume-size", "64K", "-q");
    let first = format!("{arch}.001");
    let remote_list = ok(port, &["list", &first]);
    let (local_list, _) = clc_ok!("list", t.path().join("local.001"));
    assert_eq!(remote_list, local_list);
    ok(port, &["verify", &first]);
    ok(port, &["info", &arch]);
    let out = t.path().join("out");
    ok(port, &["extract", &first, "-o", s(&out), "-q"]);
    common::assert_same_tree(&src, &out);
    // Packing over it again is refused without --force, and replaces it with.
    let (code, err) = fails(port, &["pack", s(&src), "-o", &arch, "-q"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{arch}.001: already exists")),
        "{err}"
    );
    ok(port, &["pack", s(&src), "-o", &arch, "--force", "-q"]);
    assert_eq!(store.list("").unwrap().len(), 1, "one volume now");
    ok(port, &["verify", &first]);
    // Appending to a bucket archive is refused in one line, before anything is written; the archive
    // stays as it was and no lock or .partial object is left.
    let (code, err) = fails(port, &["pack", s(&src), "-o", &arch, "--append", "-q"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("appending to an archive in object storage is not supported yet"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let names: Vec<String> = store
        .list("")
        .unwrap()
        .into_iter()
        .map(|o| o.name.to_string())
        .collect();
    assert_eq!(names, ["data.001"]);
    // The tree of a bucket archive is its one generation: `info` lists no snapshots, and naming one is
    // an error that says there is none.
    let info = ok(port, &["info", &arch]);
    assert!(!info.contains("snapshots:"), "{info}");
    let (code, err) = fails(port, &["list", &first, "--snapshot", "nope"]);
    assert_eq!(code, 2, "{err}");
    ok(port, &["verify", &first]);
}

/// Wrong credentials, a bad address and a missing volume object: exit 2, one line naming what failed.
#[test]
fn failures_name_the_endpoint_or_the_object() {
    let port = test_port();
    let Some((store, url)) = bucket(port, "failures") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..4 {
        fs::write(src.join(format!("f{i}")), common::noise(i, 100_000)).unwrap();
    }
    let arch = format!("{url}data");
    let first = format!("{arch}.001");
    ok(
        port,
        &[
            "pack",
            s(&src),
            "-o",
            &arch,
            "--volume-size",
            "64K",
            "--frame-size",
            "64K",
            "-q",
        ],
    );

    let o = clc(port, "wrong-secret", &["list", &first])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("credentials"),
        "{err}"
    );

    let (code, err) = fails(port, &["list", "s3://Bad_Bucket/x.001"]);
    assert_eq!(code, 2);
    assert!(err.contains("s3://Bad_Bucket/x.001"), "{err}");

    let (code, err) = fails(port, &["list", &format!("{url}none.001")]);
    assert_eq!((code, err.lines().count()), (2, 1), "{err}");

    store.delete(&ObjectName::new("data.002").unwrap()).unwrap();
    let missing = format!("{arch}.002");
    for cmd in ["verify", "extract"] {
        let out = t.path().join(format!("out-{cmd}"));
        let args: Vec<&str> = match cmd {
            "extract" => vec![cmd, &first, "-o", s(&out), "-q"],
            _ => vec![cmd, &first],
        };
        let (code, err) = fails_all(port, &args);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains(&missing), "{cmd} names {missing}: {err}");
    }
    // The other files still extract, with --keep-going if there is one; list needs no volume.
    ok(port, &["list", &first]);
}

// ---------------------------------------------------------------------------------------------------
// A private server, killed and restarted

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3-server.sh")
}

/// A private SeaweedFS on free ports, for tests that kill and restart it; killed when dropped.
struct PrivateServer {
    port: u16,
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl PrivateServer {
    /// `None` (SKIP) when the shared test server does not answer either (no weed installed).
    fn start(test: &str) -> Option<PrivateServer> {
        bucket(test_port(), test)?;
        let dir = tempfile::tempdir().unwrap();
        let s = PrivateServer {
            port: free_port_block(),
            dir: dir.path().to_path_buf(),
            _dir: dir,
        };
        s.run("start");
        Some(s)
    }

    fn run(&self, cmd: &str) {
        let out = Command::new(script())
            .arg(cmd)
            .env("CLC_S3_PORT", self.port.to_string())
            .env("CLC_S3_DIR", &self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "s3-server.sh {cmd} on port {}: {}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("kill")
            .env("CLC_S3_PORT", self.port.to_string())
            .env("CLC_S3_DIR", &self.dir)
            .output();
    }
}

/// A port P such that P..P+5 and P+10000..P+10005 are free (weed mini's ports).
fn free_port_block() -> u16 {
    let mut p = 21_000 + (std::process::id() % 2000) as u16 * 7;
    for _ in 0..3000 {
        let ok = (0..5).all(|i| {
            TcpListener::bind(("127.0.0.1", p + i)).is_ok()
                && TcpListener::bind(("127.0.0.1", p + 10_000 + i)).is_ok()
        });
        if ok {
            return p;
        }
        p = if p > 34_000 { 21_000 } else { p + 7 };
    }
    panic!("no free block of ports for a private S3 server");
}

/// The server killed while pack uploads: pack fails (exit 2), and what is left in the bucket does not
/// open as an archive, whatever volumes were committed.
#[test]
fn server_killed_mid_pack_leaves_no_archive_that_opens() {
    let Some(srv) = PrivateServer::start("killed-pack") else {
        return;
    };
    let port = srv.port;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    for i in 0..24 {
        fs::write(src.join(format!("f{i:02}")), common::noise(i, 1 << 20)).unwrap();
    }
    let store = Store::s3(&config(port), BUCKET, "").unwrap();
    let arch = format!("s3://{BUCKET}/data");
    let mut pack = clc(
        port,
        "clc-test-secret",
        &[
            "pack",
            s(&src),
            "-o",
            &arch,
            "--volume-size",
            "1M",
            "--frame-size",
            "1M",
            "-q",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Kill it once two volumes are committed (the pack is still running: 24 volumes to go).
    let t0 = Instant::now();
    while store.list("data.").map_or(0, |l| l.len()) < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "pack made no volumes"
        );
        assert!(pack.try_wait().unwrap().is_none(), "pack ended too soon");
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.run("kill");
    let o = pack.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) || err.contains("s3://"),
        "{err}"
    );
    srv.run("start");
    let left = store.list("data.").unwrap();
    assert!(
        !left.is_empty(),
        "committed volumes stay (the server was gone)"
    );
    for cmd in ["list", "verify"] {
        let (code, err) = fails(port, &[cmd, &format!("{arch}.001")]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("no clc footer"), "{cmd}: {err}");
    }
}

/// A mount from the bucket reads every file equal to the source; with the server killed a read of a
/// frame not cached fails with EIO (after the retries) and the mount keeps serving: once the server is
/// back the same read succeeds.
#[test]
fn mount_from_a_bucket_rides_through_a_restart() {
    if !common::fuse_ok() {
        return;
    }
    let Some(srv) = PrivateServer::start("mount") else {
        return;
    };
    let port = srv.port;
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    let files: Vec<Vec<u8>> = (0..4).map(|i| common::noise(10 + i, 1_500_000)).collect();
    for (i, d) in files.iter().enumerate() {
        fs::write(src.join(format!("f{i}")), d).unwrap();
    }
    let arch = format!("s3://{BUCKET}/m");
    ok(
        port,
        &[
            "pack",
            s(&src),
            "-o",
            &arch,
            "--volume-size",
            "2M",
            "--frame-size",
            "1M",
            "-q",
        ],
    );
    let mnt = t.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let log = t.path().join("mount.log");
    ok(
        port,
        &[
            "mount",
            &format!("{arch}.001"),
            s(&mnt),
            "--cache-size",
            "2M",
            "--log",
            s(&log),
        ],
    );
    let mnt = mnt.canonicalize().unwrap();
    let _guard = Unmount(mnt.clone());
    assert_eq!(fs::read(mnt.join("f0")).unwrap(), files[0]);
    srv.run("kill");
    let e = fs::read(mnt.join("f3")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    srv.run("start");
    for (i, d) in files.iter().enumerate() {
        assert_eq!(&fs::read(mnt.join(format!("f{i}"))).unwrap(), d, "f{i}");
    }
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new(CLC).arg("umount").arg(&self.0).output();
    }
}
