//! Archives in S3-compatible object storage, through the binary and a real server (SeaweedFS, started
//! by `scripts/test.sh` through `scripts/s3-server.sh`): pack to a bucket, then list / verify / extract /
//! mount from it; a server killed mid-pack leaves no archive that opens; a mount rides through a server
//! killed and restarted (EIO meanwhile, served again after); wrong credentials and a missing volume
//! object are one line each, naming the endpoint or the object.
//!
//! The binary gets only the test server's settings (never the caller's AWS_* ones). Without a server
//! these tests print SKIP and pass, unless `CLC_REQUIRE_S3=1` or `CI=true`, which make them fail.

mod common;

use clc::storage::{ObjectName, Store};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::s3::{config, noise_files, vars, Case, PrivateServer, BUCKET};

const CLC: &str = env!("CARGO_BIN_EXE_clc");

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
    let Some(c) = Case::shared("roundtrip", |src| {
        common::make_tree(src);
        fs::write(src.join("noise.bin"), common::noise(3, 300_000)).unwrap();
    }) else {
        return;
    };
    let (port, store, arch, first, src, t) = (c.port, &c.store, &c.arch, &c.first, &c.src, &c.t);
    ok(
        port,
        &["pack", s(src), "-o", arch, "--volume-size", "64K", "-q"],
    );
    let before = objects(store);
    assert!(before.len() >= 3, "several volumes: {before:?}");
    assert!(before.iter().all(|n| n.starts_with("data.")), "{before:?}");
    // The same tree packed locally lists the same.
    let local = t.path().join("local");
    clc_ok!("pack", &src, "-o", &local, "--volume-size", "64K", "-q");
    let remote_list = ok(port, &["list", first]);
    let (local_list, _) = clc_ok!("list", t.path().join("local.001"));
    assert_eq!(remote_list, local_list);
    ok(port, &["verify", first]);
    ok(port, &["info", arch]);
    let out = t.path().join("out");
    ok(port, &["extract", first, "-o", s(&out), "-q"]);
    common::assert_same_tree(src, &out);
    // Packing over it again is refused without --force, and replaces it with.
    let (code, err) = fails(port, &["pack", s(src), "-o", arch, "-q"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{arch}.001: already exists")),
        "{err}"
    );
    ok(port, &["pack", s(src), "-o", arch, "--force", "-q"]);
    ok(port, &["verify", first]);
    // The 64 KiB volumes are gone: only the new archive's (volumes cut early, 1 MiB or more each, and
    // the index's), and no lock object is left behind by a pack.
    let n: usize = ok(port, &["info", arch])
        .lines()
        .find_map(|l| l.strip_prefix("volumes:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("info names the volume count");
    assert!(n < before.len(), "{n} volumes against {}", before.len());
    let want: Vec<String> = (1..=n).map(|i| format!("data.{i:03}")).collect();
    assert_eq!(objects(store), want);
    // The tree of a bucket archive is its one generation: `info` lists no snapshots, and naming one is
    // an error that says there is none.
    let info = ok(port, &["info", arch]);
    assert!(!info.contains("snapshots:"), "{info}");
    let (code, err) = fails(port, &["list", first, "--snapshot", "nope"]);
    assert_eq!(code, 2, "{err}");
    ok(port, &["verify", first]);
}

/// Kills the server once `store` holds `n` objects named `data.*` while `run` is still going, and
/// returns the killed run's output (`what` names the run when it made no volumes or ended first).
fn kill_server_at(
    srv: &PrivateServer,
    store: &Store,
    n: usize,
    mut run: std::process::Child,
    what: &str,
) -> Output {
    let t0 = Instant::now();
    while store.list("data.").map_or(0, |l| l.len()) < n {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{what} made no volumes"
        );
        assert!(run.try_wait().unwrap().is_none(), "{what} ended too soon");
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.run("kill");
    run.wait_with_output().unwrap()
}

/// Wrong credentials, a bad address and a missing volume object: exit 2, one line naming what failed.
#[test]
fn failures_name_the_endpoint_or_the_object() {
    let Some(c) = Case::shared("failures", |src| noise_files(src, 4, 0, 100_000)) else {
        return;
    };
    let (port, store, url, arch, first, src, t) =
        (c.port, &c.store, &c.url, &c.arch, &c.first, &c.src, &c.t);
    ok(
        port,
        &[
            "pack",
            s(src),
            "-o",
            arch,
            "--volume-size",
            "64K",
            "--frame-size",
            "64K",
            "-q",
        ],
    );

    let o = clc(port, "wrong-secret", &["list", first])
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
    ok(port, &["list", first]);
}

// ---------------------------------------------------------------------------------------------------
// Snapshots appended to a bucket archive

/// The names of the objects under a store's prefix.
fn objects(store: &Store) -> Vec<String> {
    store
        .list("")
        .unwrap()
        .into_iter()
        .map(|o| o.name.to_string())
        .collect()
}

/// Three snapshots appended to a bucket archive (the first one starts it): each extracts equal to the
/// tree it was made of; the files cache, read from the bucket archive's index, leaves unchanged files
/// unread; no lock object stays; and a local archive of the same appends lists the same.
#[test]
fn appends_to_a_bucket_archive() {
    let Some(c) = Case::shared("append", common::make_tree) else {
        return;
    };
    let (port, store, arch, first, src, t) = (c.port, &c.store, &c.arch, &c.first, &c.src, &c.t);
    // Files older than the run: the files cache trusts only stamps from before the run's start.
    let old = std::time::Duration::from_secs(2);
    std::thread::sleep(old);
    let mut copies = Vec::new();
    for round in 0..3u64 {
        if round > 0 {
            fs::write(
                src.join(format!("small/new-{round}.txt")),
                common::text(70 + round, 30_000),
            )
            .unwrap();
            fs::write(
                src.join("big/random.bin"),
                common::noise(80 + round, 200_000),
            )
            .unwrap();
            std::thread::sleep(old);
        }
        let keep = t.path().join(format!("v{round}"));
        common::copy_tree(src, &keep);
        let name = format!("r{round}");
        let o = ok(
            port,
            &[
                "pack",
                s(src),
                "-o",
                arch,
                "--append",
                "--name",
                &name,
                "--volume-size",
                "256K",
                "--cpu",
            ],
        );
        if round > 0 {
            let packed: u64 = o
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{o}"));
            // Every file but the new and the changed one is known from the bucket's index.
            let want = format!("{} files unchanged since the last snapshot", packed - 2);
            assert!(o.contains(&want), "round {round}: want {want:?} in {o}");
        }
        copies.push(keep);
        assert!(
            !objects(store).iter().any(|n| n.ends_with(".lock")),
            "{:?}",
            objects(store)
        );
    }
    let snaps = ok(port, &["snapshots", first]);
    let names: Vec<&str> = snaps
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["r0", "r1", "r2"], "{snaps}");
    for (round, keep) in copies.iter().enumerate() {
        let dest = t.path().join(format!("x{round}"));
        let name = format!("r{round}");
        ok(
            port,
            &["extract", first, "-o", s(&dest), "--snapshot", &name, "-q"],
        );
        common::assert_same_tree(keep, &dest);
    }
    let v = ok(port, &["verify", first]);
    assert!(v.contains("3 snapshots"), "{v}");
}

/// Two appends of one bucket archive at once: the second is refused, naming the lock object, while the
/// first goes on and completes; a lock object left by a killed run refuses the next one the same way.
#[test]
fn concurrent_append_to_a_bucket_is_refused() {
    let Some(c) = Case::shared("concurrent", |src| noise_files(src, 16, 100, 1 << 20)) else {
        return;
    };
    let (port, store, arch, src, t) = (c.port, &c.store, &c.arch, &c.src, &c.t);
    let args = [
        "pack",
        s(src),
        "-o",
        arch,
        "--append",
        "--volume-size",
        "1M",
        "--frame-size",
        "1M",
        "--cpu",
        "-q",
    ];
    let mut one = clc(port, "clc-test-secret", &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !objects(store).iter().any(|n| n == "data.lock") {
        assert!(t0.elapsed() < Duration::from_secs(60), "no lock object");
        assert!(
            one.try_wait().unwrap().is_none(),
            "the first append ended too soon"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (code, err) = fails(port, &args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{arch}.lock: another clc pack is writing this archive (pid "
        )),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let o = one.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let names = objects(store);
    assert!(!names.contains(&"data.lock".to_string()), "{names:?}");
    let out = t.path().join("out");
    ok(
        port,
        &["extract", &format!("{arch}.001"), "-o", s(&out), "-q"],
    );
    common::assert_same_tree(src, &out);
    // A lock a killed run left refuses the next append until it is deleted.
    store
        .put(
            &ObjectName::new("data.lock").unwrap(),
            b"clc pack pid 1 host h time 0\n",
        )
        .unwrap();
    let (code, err) = fails(port, &args);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("data.lock: another clc pack is writing this archive (pid 1 on h"),
        "{err}"
    );
    store
        .delete(&ObjectName::new("data.lock").unwrap())
        .unwrap();
    ok(port, &args);
    let v = ok(port, &["verify", &format!("{arch}.001")]);
    assert!(v.contains("2 snapshots"), "{v}");
}

// ---------------------------------------------------------------------------------------------------
// A private server, killed and restarted

/// The server killed while pack uploads: pack fails (exit 2), and what is left in the bucket does not
/// open as an archive, whatever volumes were committed.
#[test]
fn server_killed_mid_pack_leaves_no_archive_that_opens() {
    // Enough volumes that the pack is still running when the kill lands (volumes complete in the
    // background while the next streams, so a pack of small volumes is quick).
    let Some(c) = Case::private("killed-pack", |src| noise_files(src, 40, 0, 1 << 20)) else {
        return;
    };
    let (port, srv, store, arch, src) = (c.port, c.srv(), &c.store, &c.arch, &c.src);
    let pack = clc(
        port,
        "clc-test-secret",
        &[
            "pack",
            s(src),
            "-o",
            arch,
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
    // Kill it once two volumes are committed (the pack is still running: 40 volumes to go).
    let o = kill_server_at(srv, store, 2, pack, "pack");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) || err.contains("s3://"),
        "{err}"
    );
    srv.restart();
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
    let Some(c) = Case::private("mount", |src| noise_files(src, 4, 10, 1_500_000)) else {
        return;
    };
    let (port, srv, arch, src, t) = (c.port, c.srv(), &c.arch, &c.src, &c.t);
    let files: Vec<Vec<u8>> = (0..4).map(|i| common::noise(10 + i, 1_500_000)).collect();
    ok(
        port,
        &[
            "pack",
            s(src),
            "-o",
            arch,
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
    assert_eq!(fs::read(mnt.join("f00")).unwrap(), files[0]);
    srv.run("kill");
    let e = fs::read(mnt.join("f03")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    srv.restart();
    for (i, d) in files.iter().enumerate() {
        assert_eq!(
            &fs::read(mnt.join(format!("f{i:02}"))).unwrap(),
            d,
            "f{i:02}"
        );
    }
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new(CLC).arg("umount").arg(&self.0).output();
    }
}

/// The server killed while an append uploads: the append fails (exit 2); once the server is back the
/// earlier snapshots read as before and the new one is absent; the next append (after the lock object
/// the killed run left is deleted) removes what the killed one uploaded and completes.
#[test]
fn server_killed_mid_append_keeps_earlier_snapshots() {
    let Some(c) = Case::private("killed-append", common::make_tree) else {
        return;
    };
    let (port, srv, store, arch, first, src, t) =
        (c.port, c.srv(), &c.store, &c.arch, &c.first, &c.src, &c.t);
    let keep = t.path().join("v0");
    common::copy_tree(src, &keep);
    let base = ["--volume-size", "1M", "--frame-size", "1M", "--cpu", "-q"];
    let pack = |extra: &[&str]| {
        let mut a = vec!["pack", s(src), "-o", &arch, "--append"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&base);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let a0 = pack(&["--name", "first"]);
    ok(port, &a0.iter().map(String::as_str).collect::<Vec<_>>());
    let before = objects(store);
    for i in 0..24 {
        fs::write(
            src.join(format!("big-{i:02}")),
            common::noise(200 + i, 1 << 20),
        )
        .unwrap();
    }
    let a1 = pack(&["--name", "second"]);
    let run = clc(
        port,
        "clc-test-secret",
        &a1.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Killed once two new volumes are committed (24 to go).
    let o = kill_server_at(srv, store, before.len() + 2, run, "append");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    srv.restart();
    // The new volumes the killed run committed are there, above the newest footer; they change nothing.
    assert!(objects(store).len() > before.len(), "{:?}", objects(store));
    let snaps = ok(port, &["snapshots", first]);
    assert!(
        snaps.contains("first") && !snaps.contains("second"),
        "{snaps}"
    );
    let out = t.path().join("out");
    ok(port, &["extract", first, "-o", s(&out), "-q"]);
    common::assert_same_tree(&keep, &out);
    ok(port, &["list", first]);
    // The killed run's lock is still there (the server was gone): refused until it is deleted.
    let (code, err) = fails(port, &a1.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("data.lock: another clc pack"), "{err}");
    store
        .delete(&ObjectName::new("data.lock").unwrap())
        .unwrap();
    let o = ok(port, &a1.iter().map(String::as_str).collect::<Vec<_>>());
    let _ = o;
    let snaps = ok(port, &["snapshots", first]);
    assert!(
        snaps.contains("first") && snaps.contains("second"),
        "{snaps}"
    );
    let out2 = t.path().join("out2");
    ok(port, &["extract", first, "-o", s(&out2), "-q"]);
    common::assert_same_tree(src, &out2);
    let v = ok(port, &["verify", first]);
    assert!(v.contains("2 snapshots"), "{v}");
}

/// Parity volumes in a bucket: a pack with PARITY > 0 streams them (each header first, so nothing is
/// written out of order); `verify` checks them; `repair` rebuilds a deleted volume object (the last,
/// with the index) and a damaged one from the parity and uploads them, after which the archive
/// verifies and extracts equal to the source. An append adds its own parity set, which repairs too.
#[test]
fn parity_in_a_bucket_repairs_lost_and_damaged_volumes() {
    let Some(c) = Case::shared("parity", common::make_tree) else {
        return;
    };
    let (port, store, arch, first, src, t) = (c.port, &c.store, &c.arch, &c.first, &c.src, &c.t);
    let args = |extra: &[&str]| {
        let mut a = vec![
            "pack",
            s(src),
            "-o",
            &arch,
            "--volume-size",
            "512K",
            "--parity",
            "40",
        ];
        a.extend_from_slice(extra);
        a.push("-q");
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let strs = |v: &[String]| v.iter().map(String::to_string).collect::<Vec<_>>();
    let a0 = strs(&args(&["--append", "--name", "one"]));
    ok(port, &a0.iter().map(String::as_str).collect::<Vec<_>>());
    let names = objects(store);
    let data: Vec<&String> = names.iter().filter(|n| !n.contains(".p")).collect();
    let parity: Vec<&String> = names.iter().filter(|n| n.contains(".p")).collect();
    assert!(data.len() >= 3 && !parity.is_empty(), "{names:?}");
    let v = ok(port, &["verify", first]);
    assert!(v.contains("parity ok"), "{v}");
    // The last data volume (index and footer) deleted, another one damaged in its middle.
    let last = ObjectName::new(data[data.len() - 1].as_str()).unwrap();
    let mid = ObjectName::new(data[1].as_str()).unwrap();
    let last_bytes = store.read_tail(&last, 1 << 30).unwrap().0;
    let mut mid_bytes = store.read_tail(&mid, 1 << 30).unwrap().0;
    store.delete(&last).unwrap();
    let k = mid_bytes.len() / 2;
    mid_bytes[k] ^= 0x55;
    store.put(&mid, &mid_bytes).unwrap();
    let (code, _) = fails_all(port, &["verify", first]);
    assert_ne!(code, 0);
    let r = ok(port, &["repair", first]);
    assert!(r.contains(data[data.len() - 1].as_str()), "{r}");
    assert_eq!(store.read_tail(&last, 1 << 30).unwrap().0, last_bytes);
    mid_bytes[k] ^= 0x55;
    assert_eq!(store.read_tail(&mid, 1 << 30).unwrap().0, mid_bytes);
    let v = ok(port, &["verify", first]);
    assert!(v.contains("parity ok"), "{v}");
    let out = t.path().join("out");
    ok(port, &["extract", first, "-o", s(&out), "-q"]);
    common::assert_same_tree(src, &out);
    // An append writes its own parity set; a volume of the new generation lost is rebuilt as well.
    fs::write(src.join("added.bin"), common::noise(9, 700_000)).unwrap();
    let a1 = strs(&args(&["--append", "--name", "two"]));
    ok(port, &a1.iter().map(String::as_str).collect::<Vec<_>>());
    let after = objects(store);
    let new_data: Vec<&String> = after
        .iter()
        .filter(|n| !n.contains(".p") && !names.contains(n))
        .collect();
    let new_parity = after.iter().filter(|n| n.contains(".p")).count();
    assert!(
        !new_data.is_empty() && new_parity > parity.len(),
        "{after:?}"
    );
    let gone = ObjectName::new(new_data[0].as_str()).unwrap();
    let gone_bytes = store.read_tail(&gone, 1 << 30).unwrap().0;
    store.delete(&gone).unwrap();
    ok(port, &["repair", first]);
    assert_eq!(store.read_tail(&gone, 1 << 30).unwrap().0, gone_bytes);
    let out2 = t.path().join("out2");
    ok(port, &["extract", first, "-o", s(&out2), "-q"]);
    common::assert_same_tree(src, &out2);
    let v = ok(port, &["verify", first]);
    assert!(v.contains("2 snapshots"), "{v}");
}

/// The requests one run of clc made, by kind (`LIST`, `GET`, `HEAD`, `PUT`, `MPU-PART`, …), from the
/// lines `CLC_TRACE` prints for each (`storage::requests`).
fn requests(port: u16, args: &[&str]) -> std::collections::BTreeMap<String, usize> {
    requests_with(port, &[], args)
}

/// [`requests`] with more environment variables.
fn requests_with(
    port: u16,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::collections::BTreeMap<String, usize> {
    let o = clc(port, "clc-test-secret", args)
        .envs(env.iter().copied())
        .env("CLC_TRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "clc {args:?}: {err}");
    let mut n = std::collections::BTreeMap::new();
    for l in err.lines() {
        let mut w = l.split_whitespace().skip_while(|w| *w != "s3");
        if let (Some(_), Some(kind)) = (w.next(), w.next()) {
            *n.entry(kind.to_string()).or_insert(0) += 1;
        }
    }
    n
}

/// Opening a bucket archive (what `clc list` needs) is one `LIST` (which gives every volume's size: no
/// `HEAD`) and one `GET` of the last volume's tail (footer and index together), plus, for an archive of
/// several volumes, one `GET` of the first volume's header in the same round trip (docs/STORAGE.md).
#[test]
fn opening_a_bucket_archive_is_one_listing_and_one_tail_read() {
    // Under 1 MiB: one volume (volumes are cut early only from 1 MiB on).
    let Some(c) = Case::shared("open-requests", |src| noise_files(src, 6, 40, 25_000)) else {
        return;
    };
    let (port, arch, first, src) = (c.port, &c.arch, &c.first, &c.src);
    let count = |m: &std::collections::BTreeMap<String, usize>, k: &str| m.get(k).copied();
    ok(port, &["pack", s(src), "-o", arch, "-q"]);
    let one = requests(port, &["list", first]);
    assert_eq!(count(&one, "LIST"), Some(1), "{one:?}");
    assert_eq!(count(&one, "GET"), Some(1), "{one:?}");
    assert_eq!(one.values().sum::<usize>(), 2, "nothing else: {one:?}");
    // Several volumes: the first one's header comes with the last one's tail.
    ok(
        port,
        &[
            "pack",
            s(src),
            "-o",
            arch,
            "-q",
            "--force",
            "--volume-size",
            "64K",
        ],
    );
    assert!(c.store.list("data.").unwrap().len() >= 2);
    let many = requests(port, &["list", first]);
    assert_eq!(count(&many, "LIST"), Some(1), "{many:?}");
    assert_eq!(count(&many, "GET"), Some(2), "{many:?}");
    assert_eq!(many.values().sum::<usize>(), 3, "nothing else: {many:?}");
    // A pack is one listing, the lock, the volumes' uploads (a small one `If-None-Match: *`, a
    // multipart one with a `HEAD` beside it), and the lock's removal: nothing is asked again after the
    // last volume is complete.
    let pack = requests(port, &["pack", s(src), "-o", arch, "-q", "--force"]);
    assert_eq!(
        count(&pack, "LIST"),
        Some(2),
        "the claim's and --force's: {pack:?}"
    );
    assert_eq!(count(&pack, "PUT-IF-ABSENT"), Some(1), "the lock: {pack:?}");
    assert_eq!(count(&pack, "PUT"), Some(1), "one small volume: {pack:?}");
    assert_eq!(
        count(&pack, "HEAD"),
        None,
        "no existence check: the PUT is only if absent: {pack:?}"
    );
}

/// A volume object that exists already is never replaced by a pack without `--force`, even when it
/// is not the first (which the claim checks): that volume's upload is refused when it would complete,
/// the pack fails naming it, nothing of the run is left, and no archive opens. Volumes complete in the
/// background while the next one streams, so this also holds the last volume (index and footer) to
/// being committed only after every earlier one succeeded.
#[test]
fn an_existing_volume_object_is_not_replaced() {
    let Some(c) = Case::shared("existing", |src| noise_files(src, 6, 60, 50_000)) else {
        return;
    };
    let (port, store, arch, first, src) = (c.port, &c.store, &c.arch, &c.first, &c.src);
    let args = ["-q", "--volume-size", "64K"];
    // The same pack elsewhere says how many volumes it makes: the foreign object takes the name of the
    // last but one, the volume still completing in the background when the last one would commit.
    let probe = format!("{}probe", c.url);
    ok(port, &[&["pack", s(src), "-o", &probe][..], &args].concat());
    let n = store.list("probe.").unwrap().len();
    assert!(n >= 3, "several volumes: {n}");
    let taken = format!("data.{:03}", n - 1);
    let foreign = b"someone else's object".to_vec();
    store
        .put(&ObjectName::new(taken.as_str()).unwrap(), &foreign)
        .unwrap();
    let (code, err) = fails(port, &[&["pack", s(src), "-o", arch][..], &args].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{}{taken}", c.url)), "{err}");
    let left: Vec<String> = objects(store)
        .into_iter()
        .filter(|o| o.starts_with("data."))
        .collect();
    assert_eq!(
        left,
        std::slice::from_ref(&taken),
        "only the foreign object: {err}"
    );
    assert_eq!(
        store
            .read_range(
                &ObjectName::new(taken.as_str()).unwrap(),
                0..foreign.len() as u64
            )
            .unwrap(),
        foreign
    );
    let (code, _) = fails(port, &["list", first]);
    assert_eq!(code, 2);
}

/// A CL_Compressor archive uploaded to a bucket (the seed archives of tests/legacy.rs, one volume and
/// three) is read through the same volume interface as clc's own: list, info, verify and extract from
/// the bucket give what they give for the local copy, and the mount serves its files.
#[test]
fn cl_compressor_archives_in_a_bucket_are_readable() {
    let Some(c) = Case::shared("legacy", |_| ()) else {
        return;
    };
    let (port, url, t) = (c.port, &c.url, &c.t);
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-archives");
    for set in ["idx1-37b0d32-default", "idx3-head-f1m-v1m"] {
        let local = seed.join(set).join("archive.001");
        // Under their own names (the index names its volumes), one prefix per archive.
        let prefix = format!(
            "{}{set}/",
            url.strip_prefix(&format!("s3://{BUCKET}/")).unwrap()
        );
        let store = Store::s3(&config(port), BUCKET, &prefix).unwrap();
        for e in fs::read_dir(seed.join(set)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if name.starts_with("archive.") {
                let key = ObjectName::new(&name).unwrap();
                store.put(&key, &fs::read(&p).unwrap()).unwrap();
            }
        }
        let first = format!("{url}{set}/archive.001");
        let (local_list, _) = clc_ok!("list", &local);
        assert_eq!(ok(port, &["list", &first]), local_list, "{set}");
        let info = ok(port, &["info", &first]);
        assert!(info.contains("CL_Compressor"), "{set}: {info}");
        ok(port, &["verify", &first]);
        let (a, b) = (t.path().join(format!("{set}-s3")), t.path().join(set));
        ok(port, &["extract", &first, "-o", s(&a), "-q"]);
        clc_ok!("extract", &local, "-o", &b, "-q");
        common::assert_same_tree(&b, &a);
        if common::fuse_ok() {
            let mnt = t.path().join(format!("{set}-mnt"));
            fs::create_dir(&mnt).unwrap();
            ok(port, &["mount", &first, s(&mnt)]);
            let mnt = mnt.canonicalize().unwrap();
            let _guard = Unmount(mnt.clone());
            common::assert_same_tree(&b, &mnt);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Settings through the binary

/// Endpoint, region and credentials from an AWS profile (`AWS_PROFILE`, the credentials and config
/// files), with no `AWS_*` key variables: pack and list work; the same profile with a wrong secret is
/// exit 2 and one line that names the endpoint and the credentials.
#[test]
fn an_aws_profile_gives_endpoint_region_and_credentials() {
    let Some(c) = Case::shared("profile", |src| noise_files(src, 2, 40, 20_000)) else {
        return;
    };
    let (port, arch, first, src, t) = (c.port, &c.arch, &c.first, &c.src, &c.t);
    let creds = t.path().join("credentials");
    let conf = t.path().join("config");
    fs::write(
        &creds,
        "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n\
         [bench]\naws_access_key_id = clc-test-key\naws_secret_access_key = clc-test-secret\n\n\
         [wrong]\naws_access_key_id = clc-test-key\naws_secret_access_key = not-the-secret\n",
    )
    .unwrap();
    fs::write(
        &conf,
        format!(
            "[profile bench]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:{port}\n\
             [profile wrong]\nregion = us-east-1\nendpoint_url = http://127.0.0.1:{port}\n"
        ),
    )
    .unwrap();
    let with_profile = |profile: &str, args: &[&str]| {
        let mut c = Command::new(CLC);
        for (k, _) in vars(port, "") {
            c.env_remove(k);
        }
        for k in [
            "AWS_DEFAULT_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL_S3",
        ] {
            c.env_remove(k);
        }
        c.env("AWS_PROFILE", profile)
            .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
            .env("AWS_CONFIG_FILE", &conf)
            .args(args)
            .output()
            .unwrap()
    };
    let o = with_profile("bench", &["pack", s(src), "-o", arch, "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = with_profile("bench", &["list", first]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(listed.contains("f00") && listed.contains("f01"), "{listed}");
    let o = with_profile("wrong", &["list", first]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("credentials"),
        "{err}"
    );
}

/// An endpoint where nothing listens: every command (pack and the readers) is exit 2 and one line
/// naming the endpoint, within the bounded retries.
#[test]
fn an_unreachable_endpoint_is_exit_2_and_one_line() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    noise_files(&src, 1, 41, 1000);
    let url = format!("s3://{BUCKET}/nowhere/data");
    let first = format!("{url}.001");
    let out = t.path().join("out");
    let t0 = Instant::now();
    for args in [
        vec!["pack", s(&src), "-o", &url, "-q"],
        vec!["list", &first],
        vec!["extract", &first, "-o", s(&out), "-q"],
    ] {
        let o = clc(port, "clc-test-secret", &args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(&format!("http://127.0.0.1:{port}")) && err.contains("unreachable"),
            "{args:?}: {err}"
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    assert!(!out.exists(), "nothing extracted");
}

/// A tree whose index is large (`INDEX_APART` raw bytes or more): in a bucket its index and footer go
/// in a volume of their own after the last frames' volume (uploaded while that one completes, completed
/// after it); the archive lists, verifies, extracts and mounts equal to the source, lists as a local
/// pack of the same tree does, and takes an appended snapshot.
#[test]
fn a_large_index_goes_in_a_volume_of_its_own() {
    let Some(c) = Case::shared("index-apart", |src| {
        for d in 0..20 {
            let dir = src.join(format!("directory-with-a-long-name-{d:02}"));
            fs::create_dir_all(&dir).unwrap();
            for f in 0..100 {
                let body = format!("file {d} {f} {}", "x".repeat(f * 7));
                fs::write(dir.join(format!("some-file-name-{f:03}.txt")), body).unwrap();
            }
        }
        fs::write(src.join("noise.bin"), common::noise(42, 200_000)).unwrap();
    }) else {
        return;
    };
    let (port, store, arch, first, src, t) = (c.port, &c.store, &c.arch, &c.first, &c.src, &c.t);
    ok(port, &["pack", s(src), "-o", arch, "-q"]);
    assert_eq!(objects(store), ["data.001", "data.002"]);
    let index_volume = store.size(&ObjectName::new("data.002").unwrap()).unwrap();
    let local = t.path().join("local");
    clc_ok!("pack", &src, "-o", &local, "-q");
    let local_size = fs::metadata(t.path().join("local.001")).unwrap().len();
    let frames_volume = store.size(&ObjectName::new("data.001").unwrap()).unwrap();
    // The local archive's bytes and one more volume header: the index and footer moved (their
    // compressed length may differ by a few bytes: the snapshot's time is in the index).
    let moved = (frames_volume + index_volume) as i64 - 40 - local_size as i64;
    assert!(
        moved.abs() < 64,
        "{frames_volume} + {index_volume} vs {local_size}"
    );
    assert!(index_volume > 40 + 80 && frames_volume < local_size);
    let (local_list, _) = clc_ok!("list", t.path().join("local.001"));
    assert_eq!(ok(port, &["list", first]), local_list);
    ok(port, &["verify", first]);
    let out = t.path().join("out");
    ok(port, &["extract", first, "-o", s(&out), "-q"]);
    common::assert_same_tree(src, &out);
    if common::fuse_ok() {
        let mnt = t.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        ok(port, &["mount", first, s(&mnt)]);
        let mnt = mnt.canonicalize().unwrap();
        let guard = Unmount(mnt.clone());
        common::assert_same_tree(src, &mnt);
        drop(guard);
    }
    // An appended snapshot goes after it, and both read back.
    fs::write(src.join("added.txt"), b"after the first snapshot").unwrap();
    ok(port, &["pack", s(src), "-o", arch, "--append", "-q"]);
    ok(port, &["verify", first]);
    let out2 = t.path().join("out2");
    ok(port, &["extract", first, "-o", s(&out2), "-q"]);
    common::assert_same_tree(src, &out2);
}

/// A bucket pack sends each part while it fills: every part after the first whole one starts as its
/// first bytes are written (`MPU-PART-STREAMED`), and the part the stream's end leaves short goes whole,
/// at its own length (`MPU-PART`); the archive reads back equal to the source. With
/// `CLC_S3_STREAM_PARTS=0` no part is streamed, and the archive is the same.
#[test]
fn a_bucket_pack_sends_parts_while_they_fill() {
    // 16 MiB that does not compress: three full 5 MiB parts and a short last one.
    let Some(c) = Case::shared("streamed-parts", |src| noise_files(src, 8, 70, 2 << 20)) else {
        return;
    };
    let (port, arch, first, src, t) = (c.port, &c.arch, &c.first, &c.src, &c.t);
    let count = |m: &std::collections::BTreeMap<String, usize>, k: &str| m.get(k).copied();
    // One volume (no early cut), whose parts are what this test is about.
    let one = [("CLC_S3_EARLY_VOLUMES", "0")];
    let pack = requests_with(port, &one, &["pack", s(src), "-o", arch, "-q", "--cpu"]);
    assert_eq!(c.store.list("data.").unwrap().len(), 1);
    let streamed = count(&pack, "MPU-PART-STREAMED").unwrap_or(0);
    assert!(
        (2..=3).contains(&streamed),
        "parts 2 and 3 (and the first when the upload was there in time) streamed: {pack:?}"
    );
    assert!(
        count(&pack, "MPU-PART").unwrap_or(0) >= 1,
        "the short last part goes whole: {pack:?}"
    );
    let out = t.path().join("out");
    ok(port, &["extract", first, "-o", s(&out), "-q"]);
    common::assert_same_tree(src, &out);
    let listing = ok(port, &["list", first]);
    let o = clc(
        port,
        "clc-test-secret",
        &["pack", s(src), "-o", arch, "-q", "--cpu", "--force"],
    )
    .env("CLC_S3_STREAM_PARTS", "0")
    .envs(one)
    .env("CLC_TRACE", "1")
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("MPU-PART-STREAMED"), "{err}");
    assert!(err.contains("MPU-PART"), "{err}");
    assert_eq!(ok(port, &["list", first]), listing);
    ok(port, &["verify", first]);
}

/// The server killed while a part streams (right after the volume's multipart upload is created, when
/// its first part's request opens): the pack fails with one line naming the endpoint or the object,
/// exit 2, and once the server is back no archive opens (the volume was never completed).
#[test]
fn server_killed_while_a_part_streams_leaves_no_archive_that_opens() {
    // 96 MiB that does not compress, in one volume (no early cut: server_killed_mid_pack_… covers
    // volumes committed before the kill): parts are still streaming when the kill lands.
    let Some(c) = Case::private("killed-streaming", |src| noise_files(src, 48, 90, 2 << 20)) else {
        return;
    };
    let (port, srv, arch, src) = (c.port, c.srv(), &c.arch, &c.src);
    let mut pack = clc(
        port,
        "clc-test-secret",
        &["pack", s(src), "-o", arch, "-q", "--cpu"],
    )
    .env("CLC_S3_EARLY_VOLUMES", "0")
    .env("CLC_TRACE", "1")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut err = std::io::BufReader::new(pack.stderr.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        let n = std::io::BufRead::read_line(&mut err, &mut l).unwrap();
        assert!(n > 0, "the pack ended before its upload began: {lines:?}");
        let created = l.contains(" MPU-CREATE ");
        lines.push(l);
        if created {
            break;
        }
    }
    srv.run("kill");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = pack.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{rest}");
    assert!(
        rest.lines()
            .any(|l| l.contains(" MPU-PART-STREAMED ") && l.contains(" failed: ")),
        "a streamed part was cut: {rest}"
    );
    let errors: Vec<&str> = rest
        .lines()
        .filter(|l| !l.starts_with("clc: trace:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {errors:?}");
    assert!(
        errors[0].contains(&format!("127.0.0.1:{port}")) || errors[0].contains("s3://"),
        "{errors:?}"
    );
    srv.restart();
    let left = objects(&c.store);
    assert!(
        !left.iter().any(|n| n.starts_with("data.0")),
        "no volume was completed (the lock of the killed run may stay): {left:?}"
    );
    for cmd in ["list", "verify"] {
        let (code, err) = fails(port, &[cmd, &format!("{arch}.001")]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
    }
}

/// A small archive in a bucket is cut into volumes of 1 MiB or more, each sent with one `PUT` as soon
/// as its last frame is written (so that only the last volume is left to send after the stream). The cut depends on the frames' sizes only: two packs of the tree give
/// the same objects byte for byte; a local pack of it has the same frames (one volume), and lists the
/// same. Every command reads it, and a snapshot appends to it; `CLC_S3_EARLY_VOLUMES=0` gives one volume.
#[test]
fn a_small_bucket_archive_is_cut_into_volumes_sent_during_the_pack() {
    // Five 1 MiB files that do not compress (frames of SMALL_FRAME_SIZE, stored RAW), and small text.
    let Some(c) = Case::shared("early-volumes", |src| {
        common::make_tree(src);
        noise_files(&src.join("n"), 5, 90, 1 << 20);
    }) else {
        return;
    };
    let (port, store, arch, first, src, t) = (c.port, &c.store, &c.arch, &c.first, &c.src, &c.t);
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    let pack = requests_with(port, &epoch, &["pack", s(src), "-o", arch, "-q", "--cpu"]);
    let vols = store.list("data.").unwrap();
    let n = vols.len();
    assert!(n >= 3, "several volumes: {vols:?}");
    // Each closed after the frame that took it to EARLY_VOLUME; the last holds what followed, and the
    // index.
    for v in &vols[..n - 1] {
        assert!(
            v.size >= clc::archive::writer::EARLY_VOLUME,
            "{} of {} bytes",
            v.name,
            v.size
        );
    }
    assert!(
        count_of(&pack, "PUT") >= n - 1,
        "each volume but the last is one PUT: {pack:?}"
    );
    // Deterministic: the same tree packed again elsewhere gives the same objects.
    pack_beside(&c, src, "again", &epoch);
    let again_vols = store.list("again.").unwrap();
    assert_eq!(again_vols.len(), n);
    for (a, b) in vols.iter().zip(&again_vols) {
        let read = |name| store.read_range(name, 0..a.size).unwrap();
        assert_eq!(read(&a.name), read(&b.name), "{} and {}", a.name, b.name);
    }
    // A local pack of the tree: one volume, the same frames (stored bytes) and the same listing.
    let local = t.path().join("local");
    clc_ok!("pack", &src, "-o", &local, "-q", "--cpu");
    let (local_info, _) = clc_ok!("info", t.path().join("local.001"));
    let info = ok(port, &["info", first]);
    let stored = |i: &str| {
        i.lines()
            .find(|l| l.starts_with("stored:"))
            .map(str::to_string)
    };
    assert!(stored(&info).is_some(), "{info}");
    assert_eq!(stored(&info), stored(&local_info));
    assert!(info.contains(&format!("volumes:        {n}")), "{info}");
    let (local_list, _) = clc_ok!("list", t.path().join("local.001"));
    assert_eq!(ok(port, &["list", first]), local_list);
    // Without the early cut: one volume, the same listing.
    let (one, _) = pack_beside(&c, src, "one", &[("CLC_S3_EARLY_VOLUMES", "0")]);
    assert_eq!(store.list("one.").unwrap().len(), 1);
    assert_eq!(ok(port, &["list", &format!("{one}.001")]), local_list);
    let v = ok(port, &["verify", first]);
    assert!(v.contains(&format!("{n} volumes")), "{v}");
    let out = t.path().join("out");
    ok(port, &["extract", first, "-o", s(&out), "-q"]);
    common::assert_same_tree(src, &out);
    // A snapshot appends to it (its own volumes cut the same way).
    fs::write(src.join("n").join("added"), common::noise(99, 1 << 20)).unwrap();
    ok(
        port,
        &["pack", s(src), "-o", arch, "--append", "--name", "r1", "-q"],
    );
    assert!(store.list("data.").unwrap().len() > n);
    let v = ok(port, &["verify", first]);
    assert!(v.contains("2 snapshots"), "{v}");
    let out2 = t.path().join("out2");
    ok(port, &["extract", first, "-o", s(&out2), "-q"]);
    common::assert_same_tree(src, &out2);
}

/// A volume that will be a multipart upload begins it as soon as that is known, not once its first
/// part is nearly full: the volume after the early cut (closed only when full or at the end) once it
/// can no longer be cut early, and the last volume (index and footer, committed after the others)
/// when it opens, before the index is written into it; so no `MPU-CREATE` waits between the stream's
/// end and their last part. Early-cut volumes (one `PUT` each) begin none. Both archives read back.
#[test]
fn volumes_that_will_be_multipart_uploads_begin_them_when_they_open() {
    // 16 MiB that does not compress: 1 MiB frames, one per early volume up to 8 MiB, then a volume of
    // the rest (a whole 5 MiB part and a short one) that holds the index too.
    let Some(c) = Case::shared("begun", |src| {
        noise_files(&src.join("big"), 16, 120, 1 << 20);
        noise_files(&src.join("small"), 3, 140, 1 << 20);
    }) else {
        return;
    };
    let (port, store, src, t) = (c.port, &c.store, &c.src, &c.t);
    let traced = |tree: &Path, name: &str| {
        let (arch, err) = pack_beside(&c, tree, name, &[("CLC_TRACE", "1")]);
        let out = t.path().join(format!("out-{name}"));
        ok(
            port,
            &["extract", &format!("{arch}.001"), "-o", s(&out), "-q"],
        );
        common::assert_same_tree(tree, &out);
        (store.list(format!("{name}.")).unwrap(), err)
    };
    // Where `what` first appears in the trace (a line index), if it does.
    let at = |err: &str, what: &str| err.lines().position(|l| l.contains(what));

    let (vols, err) = traced(&src.join("big"), "big");
    let n = vols.len();
    assert!(n >= 3, "early volumes, then one more: {vols:?}");
    assert!(vols[n - 1].size > 5 << 20, "{vols:?}");
    // Begun once the volume can no longer be cut early: at its first frame here (it takes the
    // generation past 8 MiB), long before 4 MiB of it are buffered.
    let begun = format!("volume {n}: upload begun at ");
    let line = err.lines().find(|l| l.contains(&begun)).unwrap_or_default();
    let bytes: u64 = line
        .split(&begun)
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|b| b.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(bytes <= (1 << 20) + 200, "{line}: {err}");
    assert_eq!(
        err.matches("upload begun").count(),
        1,
        "early volumes are one PUT each: {err}"
    );

    // Three early volumes of one frame each: the last frame closes its volume, and the index and
    // footer go in a fourth, whose upload begins before the index is written.
    let (vols, err) = traced(&src.join("small"), "small");
    assert_eq!(vols.len(), 4, "{vols:?}");
    let (b, i) = (
        at(&err, "volume 4: upload begun at 40 bytes"),
        at(&err, "index written"),
    );
    assert!(b.is_some() && i.is_some() && b < i, "{err}");
}

/// Packs `tree` with `--cpu` into the archive `name` beside the case's own, with `envs` set; asserts
/// that it succeeded and returns its base (`s3://…/name`) and the command's stderr.
fn pack_beside(c: &Case, tree: &Path, name: &str, envs: &[(&str, &str)]) -> (String, String) {
    let arch = format!("{}{name}", c.arch.trim_end_matches("data"));
    let o = clc(
        c.port,
        "clc-test-secret",
        &["pack", s(tree), "-o", &arch, "-q", "--cpu"],
    )
    .envs(envs.iter().copied())
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    (arch, err)
}

/// How many requests of `kind` a [`requests`] map holds.
fn count_of(m: &std::collections::BTreeMap<String, usize>, kind: &str) -> usize {
    m.get(kind).copied().unwrap_or(0)
}

/// A new pack into a bucket takes its lock while the tree is scanned and waits for it only before its
/// first volume (`VolumeWriter::gate`): a lock held by another run still refuses it, with one line naming
/// the lock object and its holder, exit 2, nothing written, and the other run's lock left in place.
#[test]
fn a_new_bucket_pack_is_refused_by_a_held_lock_before_writing_anything() {
    let Some(c) = Case::shared("held-lock", |src| noise_files(src, 3, 30, 400_000)) else {
        return;
    };
    let (port, store, arch, src) = (c.port, &c.store, &c.arch, &c.src);
    let lock = ObjectName::new("data.lock").unwrap();
    store.put(&lock, b"clc pack pid 1 host h time 0\n").unwrap();
    let (code, err) = fails(port, &["pack", s(src), "-o", arch, "-q"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "{arch}.lock: another clc pack is writing this archive (pid 1 on h"
        )),
        "{err}"
    );
    assert_eq!(
        objects(store),
        ["data.lock"],
        "nothing written, the lock kept"
    );
    store.delete(&lock).unwrap();
    ok(port, &["pack", s(src), "-o", arch, "-q"]);
    ok(port, &["verify", &format!("{arch}.001")]);
}
