//! The S3 test server, for every test that needs one (tests/storage.rs, tests/s3_archive.rs): the
//! shared server of `scripts/s3-server.sh` (port `CLC_S3_PORT`, default 8333, with its fixed test
//! credentials; never the caller's AWS settings), a fresh key prefix per test, and private servers on
//! free ports for tests that kill and restart one. Without a server the tests print SKIP, unless
//! `CLC_REQUIRE_S3=1` or `CI=true` ([`super::require`]).

use clc::storage::env::s3_config_from;
use clc::storage::{S3Config, Store};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The test bucket `scripts/s3-server.sh start` makes.
pub const BUCKET: &str = "clc-test";

/// The shared test server's port.
pub fn test_port() -> u16 {
    std::env::var("CLC_S3_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8333)
}

/// The environment that points clc at the test server on `port` (with `secret` as the secret key).
pub fn vars(port: u16, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "clc-test-key".into()),
        ("AWS_SECRET_ACCESS_KEY", secret.into()),
    ]
}

/// Settings for the test server on `port`, through the same parsing as the environment.
pub fn config(port: u16) -> S3Config {
    let v: HashMap<&str, String> = vars(port, "clc-test-secret").into_iter().collect();
    s3_config_from(&|k| v.get(k).cloned(), None).unwrap()
}

/// A key prefix (ending in `/`) no other test or run uses.
pub fn fresh_prefix(test: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("clc-tests/{}-{t}/{test}/", std::process::id())
}

/// The test bucket under a fresh prefix, with `cfg` (the test server's settings, perhaps changed), as
/// a store and its `s3://bucket/prefix/` URL; `None` (SKIP) when no server answers.
pub fn bucket_with(cfg: &S3Config, test: &str) -> Option<(Store, String)> {
    let prefix = fresh_prefix(test);
    let store = Store::s3(cfg, BUCKET, &prefix).unwrap();
    match store.list("") {
        Ok(_) => Some((store, format!("s3://{BUCKET}/{prefix}"))),
        Err(e) => {
            super::require(
                "S3",
                false,
                &format!(
                    "{test}: no S3 test server ({e}); start one with scripts/s3-server.sh start"
                ),
            );
            None
        }
    }
}

/// [`bucket_with`] the shared test server's settings.
pub fn bucket(test: &str) -> Option<(Store, String)> {
    bucket_with(&config(test_port()), test)
}

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3-server.sh")
}

/// A private SeaweedFS on free ports, for tests that kill and restart it; killed when dropped.
pub struct PrivateServer {
    pub port: u16,
    _dir: tempfile::TempDir,
    pub dir: PathBuf,
}

impl PrivateServer {
    /// `None` (SKIP) when the shared test server does not answer either (no weed installed).
    pub fn start(test: &str) -> Option<PrivateServer> {
        bucket(test)?;
        let dir = tempfile::tempdir().unwrap();
        let s = PrivateServer {
            port: free_port_block(),
            dir: dir.path().to_path_buf(),
            _dir: dir,
        };
        s.run("start");
        Some(s)
    }

    /// `scripts/s3-server.sh CMD` for this server (start, stop, kill); asserts it succeeded.
    pub fn run(&self, cmd: &str) {
        let out = self.command(cmd).output().unwrap();
        assert!(
            out.status.success(),
            "s3-server.sh {cmd} on port {}: {}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `start` after a kill, then waits (a minute at most) until the server lists the bucket and serves
    /// the first byte of every object in it: a SeaweedFS just started may refuse or answer 500 for a
    /// while, on a loaded machine longer than a client's retries. What a test checks after this is how
    /// clc recovers once the server is back, not how long the server takes to come back.
    pub fn restart(&self) {
        self.run("start");
        let store = Store::s3(&config(self.port), BUCKET, "").unwrap();
        let t0 = std::time::Instant::now();
        let serving = || match store.list("") {
            Ok(l) => l
                .iter()
                .filter(|o| o.size > 0)
                .all(|o| store.read_range(&o.name, 0..1).is_ok()),
            Err(_) => false,
        };
        while !serving() {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(60),
                "the S3 server on port {} does not serve again a minute after its start",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The `scripts/s3-server.sh CMD` command for this server, to run elsewhere (another thread).
    pub fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new(script());
        c.arg(cmd)
            .env("CLC_S3_PORT", self.port.to_string())
            .env("CLC_S3_DIR", &self.dir);
        c
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self.command("kill").output();
    }
}

/// A port P such that P..P+5 and P+10000..P+10005 are free (weed mini's ports); starts at a place that
/// depends on the process, so that test binaries running at once seldom race for one block, and each
/// call of a process starts past the blocks of the calls before (a server just started may not have
/// bound its ports yet when the next test looks).
pub fn free_port_block() -> u16 {
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut p = 20_000 + (std::process::id() % 2000) as u16 * 7 + call * 70;
    for _ in 0..3000 {
        let ok = (0..5).all(|i| {
            TcpListener::bind(("127.0.0.1", p + i)).is_ok()
                && TcpListener::bind(("127.0.0.1", p + 10_000 + i)).is_ok()
        });
        if ok {
            return p;
        }
        p = if p > 34_000 { 20_000 } else { p + 7 };
    }
    panic!("no free block of ports for a private S3 server");
}

/// One S3 test's set-up, which every test of tests/s3_archive.rs starts with: a server (the shared
/// one under a fresh key prefix, or a private one at its bucket's root for tests that kill it), a
/// store over that prefix, a temporary directory holding the source tree `src`, and the archive's
/// address `arch` (`s3://bucket/prefix/data`) and first volume `first` (`….001`).
pub struct Case {
    pub port: u16,
    pub store: Store,
    /// `s3://bucket/prefix/`.
    pub url: String,
    pub arch: String,
    pub first: String,
    pub src: PathBuf,
    pub t: tempfile::TempDir,
    /// The private server, killed when the case is dropped.
    pub server: Option<PrivateServer>,
}

impl Case {
    /// On the shared test server under a fresh prefix; `fill` makes the source tree in the (absent)
    /// directory it is given. `None` (SKIP) when no server answers.
    pub fn shared(test: &str, fill: impl FnOnce(&Path)) -> Option<Case> {
        let port = test_port();
        let (store, url) = bucket_with(&config(port), test)?;
        Some(Case::made(port, store, url, None, fill))
    }

    /// On a private server of its own (which the test may kill and restart), at the bucket's root.
    pub fn private(test: &str, fill: impl FnOnce(&Path)) -> Option<Case> {
        let srv = PrivateServer::start(test)?;
        let port = srv.port;
        let store = Store::s3(&config(port), BUCKET, "").unwrap();
        let url = format!("s3://{BUCKET}/");
        Some(Case::made(port, store, url, Some(srv), fill))
    }

    fn made(
        port: u16,
        store: Store,
        url: String,
        server: Option<PrivateServer>,
        fill: impl FnOnce(&Path),
    ) -> Case {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fill(&src);
        let arch = format!("{url}data");
        Case {
            port,
            store,
            first: format!("{arch}.001"),
            arch,
            url,
            src,
            t,
            server,
        }
    }

    /// The private server (the test asked for one).
    pub fn srv(&self) -> &PrivateServer {
        self.server.as_ref().expect("a case on a private server")
    }
}

/// `n` files `fNN` of `size` random bytes (seeds `seed`, `seed + 1`, …) in a new directory `dir`.
pub fn noise_files(dir: &Path, n: u64, seed: u64, size: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i:02}")), super::noise(seed + i, size)).unwrap();
    }
}
