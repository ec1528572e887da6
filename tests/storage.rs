//! The storage layer (`clc::storage`): every operation with the same test body on local files and on a
//! real S3 server (SeaweedFS, started by `scripts/s3-server.sh`), plus what only one side has: FIFOs and
//! devices locally; multipart streaming, credentials, an unreachable endpoint, a server killed
//! mid-upload and a server restarted under a read on S3.
//!
//! The S3 tests talk only to loopback: the test server of `scripts/s3-server.sh` (port `CLC_S3_PORT`,
//! default 8333, with its fixed test credentials; never the caller's AWS settings) and private servers on
//! free ports. Without a server they print SKIP and pass, unless `CLC_REQUIRE_S3=1` or `CI=true`, which
//! make them fail. `scripts/test.sh` starts the server before `cargo test` and stops it after.

mod common;

use clc::storage::env::s3_config_from;
use clc::storage::{Location, ObjectName, RetryPolicy, S3Config, StorageError, Store};
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use common::s3::{fresh_prefix, test_port, PrivateServer, BUCKET};

fn name(s: &str) -> ObjectName {
    ObjectName::new(s).unwrap()
}

/// Deterministic bytes (xorshift).
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// The S3 test server (tests/common/s3.rs)

/// Settings for the test server on `port`, with retries that give up within a second.
fn config(port: u16) -> S3Config {
    let mut c = common::s3::config(port);
    c.retry = quick_retry();
    c
}

/// Retries that give up within a second, for tests that expect failure.
fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(5),
    }
}

/// A store under a fresh prefix of the test bucket, or `None` (SKIP) when no server answers.
fn s3_store(test: &str) -> Option<Store> {
    common::s3::bucket_with(&config(test_port()), test).map(|(s, _)| s)
}

// ---------------------------------------------------------------------------------------------------
// One body for every backend

/// Every operation of the interface, with the semantics both backends share.
fn every_operation(store: &Store) {
    assert_eq!(store.list("").unwrap(), vec![], "a fresh store is empty");
    let a1 = name("a.001");
    let a2 = name("a.002");
    let data = noise(1, 1000);
    store.put(&a1, &data).unwrap();
    store.put(&a2, b"").unwrap();
    store.put(&name("b.001"), b"b").unwrap();

    // list: names and sizes, sorted, by name prefix
    let l: Vec<(String, u64)> = store
        .list("a.")
        .unwrap()
        .into_iter()
        .map(|o| (o.name.to_string(), o.size))
        .collect();
    assert_eq!(l, vec![("a.001".into(), 1000), ("a.002".into(), 0)]);
    assert_eq!(store.list("").unwrap().len(), 3);
    assert!(store.list("zz").unwrap().is_empty());

    // size, and missing objects named
    assert_eq!(store.size(&a1).unwrap(), 1000);
    assert_eq!(store.size(&a2).unwrap(), 0);
    let missing = name("missing.001");
    for e in [
        store.size(&missing).unwrap_err(),
        store.read_range(&missing, 0..10).unwrap_err(),
        store.read_tail(&missing, 10).unwrap_err(),
    ] {
        assert!(matches!(e, StorageError::NotFound { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!("{}: no such object", store.describe(&missing))
        );
    }

    // ranged reads: exact bytes, or past the end with the size
    assert_eq!(store.read_range(&a1, 0..1000).unwrap(), data);
    assert_eq!(store.read_range(&a1, 10..20).unwrap(), &data[10..20]);
    assert_eq!(store.read_range(&a1, 999..1000).unwrap(), &data[999..]);
    assert_eq!(store.read_range(&a1, 1000..1000).unwrap(), b"");
    for r in [990..1010, 1000..1001, 2000..3000] {
        let e = store.read_range(&a1, r.clone()).unwrap_err();
        assert!(
            matches!(e, StorageError::PastEnd { size: 1000, start, end, .. } if start == r.start && end == r.end),
            "{r:?}: {e}"
        );
        assert!(e.to_string().starts_with(&store.describe(&a1)), "{e}");
    }
    let e = store.read_range(&a2, 0..1).unwrap_err();
    assert!(matches!(e, StorageError::PastEnd { size: 0, .. }), "{e}");

    // several ranges at once, in order, each with its own result
    let b1 = name("b.001");
    let rs = store.read_ranges(&[
        (&a1, 0..10),
        (&a1, 500..600),
        (&a1, 990..1010),
        (&b1, 0..1),
        (&missing, 0..1),
        (&a1, 10..20),
    ]);
    assert_eq!(rs.len(), 6);
    assert_eq!(rs[0].as_ref().unwrap(), &data[0..10]);
    assert_eq!(rs[1].as_ref().unwrap(), &data[500..600]);
    assert!(matches!(rs[2], Err(StorageError::PastEnd { .. })));
    assert_eq!(rs[3].as_ref().unwrap(), b"b");
    assert!(matches!(rs[4], Err(StorageError::NotFound { .. })));
    assert_eq!(rs[5].as_ref().unwrap(), &data[10..20]);

    // the tail and the size in one call
    assert_eq!(
        store.read_tail(&a1, 100).unwrap(),
        (data[900..].to_vec(), 1000)
    );
    assert_eq!(store.read_tail(&a1, 5000).unwrap(), (data.clone(), 1000));
    assert_eq!(store.read_tail(&a1, 0).unwrap(), (vec![], 1000));
    assert_eq!(store.read_tail(&a2, 10).unwrap(), (vec![], 0));

    // put replaces; so does a writer, at finish (reads meanwhile see the old object)
    store.put(&a1, b"replaced").unwrap();
    assert_eq!(store.read_range(&a1, 0..8).unwrap(), b"replaced");
    let mut w = store.writer(&a1).unwrap();
    w.write(b"REPLACED").unwrap();
    assert_eq!(store.read_range(&a1, 0..8).unwrap(), b"replaced");
    w.finish().unwrap();
    assert_eq!(store.read_range(&a1, 0..8).unwrap(), b"REPLACED");

    // create: only when absent; of racing creates exactly one wins (a lock in a bucket rests on this:
    // S3 servers that ignore `If-None-Match: *` would let every one win)
    let c1 = name("c.lock");
    store.create(&c1, b"first").unwrap();
    let e = store.create(&c1, b"second").unwrap_err();
    assert!(matches!(e, StorageError::Exists { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!("{}: already exists", store.describe(&c1))
    );
    assert_eq!(store.read_tail(&c1, 100).unwrap(), (b"first".to_vec(), 5));
    store.delete(&c1).unwrap();
    let won: Vec<bool> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let (store, c1) = (store.clone(), c1.clone());
                s.spawn(move || store.create(&c1, format!("racer {i}").as_bytes()).is_ok())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let winner = won.iter().position(|w| *w).unwrap();
    let held = store.read_tail(&c1, 100).unwrap().0;
    assert_eq!(held, format!("racer {winner}").as_bytes());
    store.delete(&c1).unwrap();

    // a streaming writer: nothing visible before finish
    let w1 = name("w.001");
    let mut w = store.writer(&w1).unwrap();
    for i in 0..3 {
        w.write(&noise(10 + i, 400)).unwrap();
    }
    assert_eq!(w.written(), 1200);
    assert!(store.size(&w1).unwrap_err().is_not_found());
    assert!(store.list("w.").unwrap().is_empty());
    assert_eq!(w.finish().unwrap(), 1200);
    let want: Vec<u8> = (0..3).flat_map(|i| noise(10 + i, 400)).collect();
    assert_eq!(store.read_range(&w1, 0..1200).unwrap(), want);

    // aborted and dropped writers leave nothing
    let mut w = store.writer(&name("w.002")).unwrap();
    w.write(b"never").unwrap();
    w.abort().unwrap();
    let mut w = store.writer(&name("w.003")).unwrap();
    w.write(b"never").unwrap();
    drop(w);
    let l: Vec<String> = store
        .list("w.")
        .unwrap()
        .into_iter()
        .map(|o| o.name.to_string())
        .collect();
    assert_eq!(l, vec!["w.001"]);

    // a writer of a new object: refused at finish (nothing replaced) when the name was taken, and
    // committed when it was free
    // (locally when the writer is made, on S3 at finish: its check runs beside the upload)
    let e = store.writer_new(&w1).and_then(|mut w| {
        w.write(b"not over w.001")?;
        w.finish().map(|_| ())
    });
    assert!(matches!(e, Err(StorageError::Exists { .. })), "{e:?}");
    assert_eq!(store.read_range(&w1, 0..1200).unwrap(), want);
    let w4 = name("w.004");
    let mut w = store.writer_new(&w4).unwrap();
    w.write(b"new").unwrap();
    assert_eq!(w.finish().unwrap(), 3);
    assert_eq!(store.read_range(&w4, 0..3).unwrap(), b"new");
    store.delete(&w4).unwrap();

    // names with spaces and non-ASCII
    for n in ["name with spaces.001", "ünïcødé.001", "a+b=c,d;e.001"] {
        store.put(&name(n), n.as_bytes()).unwrap();
        assert_eq!(
            store.read_range(&name(n), 0..n.len() as u64).unwrap(),
            n.as_bytes()
        );
        assert_eq!(store.list(n).unwrap()[0].name.to_string(), n);
    }

    // delete; deleting what is not there is fine
    store.delete(&a1).unwrap();
    assert!(store.size(&a1).unwrap_err().is_not_found());
    store.delete(&a1).unwrap();
    for o in store.list("").unwrap() {
        store.delete(&o.name).unwrap();
    }
    assert!(store.list("").unwrap().is_empty());
}

#[test]
fn local_every_operation() {
    let d = tempfile::tempdir().unwrap();
    every_operation(&Store::local(d.path()));
    // Nothing but what was asked is left in the directory (no temporary files).
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
}

#[test]
fn s3_every_operation() {
    if let Some(store) = s3_store("every_operation") {
        every_operation(&store);
    }
}

#[test]
fn locations_open_the_right_store() {
    let d = tempfile::tempdir().unwrap();
    let loc = Location::parse(d.path().join("data.001")).unwrap();
    let (store, n) = Store::open(&loc, || panic!("a local location reads no S3 settings")).unwrap();
    assert_eq!(n.to_string(), "data.001");
    store.put(&n, b"x").unwrap();
    assert_eq!(std::fs::read(d.path().join("data.001")).unwrap(), b"x");
    let loc = Location::parse("s3://clc-test/some/prefix/data.001").unwrap();
    let (store, n) = Store::open(&loc, || Ok(config(test_port()))).unwrap();
    assert_eq!(store.describe(&n), "s3://clc-test/some/prefix/data.001");
    let e = Store::open(&loc, || s3_config_from(&|_| None, None)).unwrap_err();
    assert!(e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
}

// ---------------------------------------------------------------------------------------------------
// Local only

#[test]
fn local_reads_never_open_fifos_or_devices() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::local(d.path());
    let fifo = std::ffi::CString::new(d.path().join("f.001").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink("/dev/zero", d.path().join("f.002")).unwrap();
    std::fs::create_dir(d.path().join("f.003")).unwrap();
    std::fs::write(d.path().join("real"), b"0123456789").unwrap();
    std::os::unix::fs::symlink("real", d.path().join("f.004")).unwrap();
    let t = Instant::now();
    for (n, kind) in [
        ("f.001", "a FIFO"),
        ("f.002", "a device"),
        ("f.003", "a directory"),
    ] {
        for e in [
            store.read_range(&name(n), 0..4).unwrap_err(),
            store.size(&name(n)).unwrap_err(),
            store.read_tail(&name(n), 4).unwrap_err(),
        ] {
            assert!(matches!(e, StorageError::NotRegular { .. }), "{n}: {e}");
            assert!(
                e.to_string()
                    .ends_with(&format!("not a regular file ({kind})")),
                "{e}"
            );
        }
    }
    assert!(t.elapsed() < Duration::from_secs(2), "a FIFO blocked");
    // A symbolic link to a regular file is followed (a volume may live on another disk).
    assert_eq!(store.read_range(&name("f.004"), 2..5).unwrap(), b"234");
    let l: Vec<String> = store
        .list("f.")
        .unwrap()
        .into_iter()
        .map(|o| o.name.to_string())
        .collect();
    assert_eq!(l, vec!["f.004"]);
}

#[test]
fn local_writers_never_follow_links_and_names_may_be_any_bytes() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::local(d.path());
    // A link planted at the destination is replaced, not written through.
    let outside = d.path().join("outside");
    std::fs::write(&outside, b"precious").unwrap();
    std::os::unix::fs::symlink(&outside, d.path().join("v.001")).unwrap();
    store.put(&name("v.001"), b"new").unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"precious");
    assert!(!std::fs::symlink_metadata(d.path().join("v.001"))
        .unwrap()
        .file_type()
        .is_symlink());
    // Non-UTF-8 names work locally; S3 refuses them with a clear error.
    let odd = ObjectName::new(std::ffi::OsStr::from_bytes(b"caf\xe9\n.001")).unwrap();
    store.put(&odd, b"odd").unwrap();
    assert_eq!(store.read_range(&odd, 0..3).unwrap(), b"odd");
    let s3 = Store::s3(&config(1), BUCKET, "").unwrap();
    let e = s3.put(&odd, b"odd").unwrap_err();
    assert!(matches!(e, StorageError::BadName { .. }), "{e}");
    assert_eq!(e.to_string().lines().count(), 1, "{e}");
    // A writer's temporary file is hidden from listings while it is written.
    let mut w = store.writer(&name("v.002")).unwrap();
    w.write(b"partial").unwrap();
    let l: Vec<String> = store
        .list("")
        .unwrap()
        .into_iter()
        .map(|o| o.name.to_string())
        .collect();
    assert!(!l.iter().any(|n| n.contains("v.002")), "{l:?}");
    w.finish().unwrap();
    assert_eq!(store.size(&name("v.002")).unwrap(), 7);
}

// ---------------------------------------------------------------------------------------------------
// S3 only

/// A volume-sized object in irregular writes, its parts sent while they fill (the default) and sent
/// whole once full (`stream_parts` off, as where payloads are signed): the same bytes either way.
#[test]
fn s3_streams_a_volume_sized_object_in_parts() {
    let Some(probe) = s3_store("multipart") else {
        return;
    };
    drop(probe);
    for streamed in [true, false] {
        multipart_object(streamed);
    }
}

fn multipart_object(streamed: bool) {
    let mut cfg = config(test_port());
    cfg.part_size = 5 << 20;
    cfg.parts_in_flight = 3;
    cfg.stream_parts = streamed;
    let store = Store::s3(&cfg, BUCKET, &fresh_prefix("multipart")).unwrap();
    let n = name("vol.001");
    let total = (48 << 20) + 123;
    let data = noise(7, total);
    let mut w = store.writer(&n).unwrap();
    // Irregular pieces, as a volume writer produces frames.
    let mut at = 0;
    let mut step = 1 << 20;
    while at < total {
        let end = (at + step).min(total);
        w.write(&data[at..end]).unwrap();
        at = end;
        step = step * 7 / 5 % (3 << 20) + 4097;
        if at > 20 << 20 && at < 22 << 20 {
            assert!(
                store.size(&n).unwrap_err().is_not_found(),
                "visible before finish"
            );
        }
    }
    assert_eq!(w.finish().unwrap(), total as u64);
    assert_eq!(store.size(&n).unwrap(), total as u64);
    // Part boundaries and the end, then everything in 4 MiB ranges read in parallel.
    let part = 5u64 << 20;
    for r in [
        part - 10..part + 10,
        3 * part - 1..3 * part + 1,
        total as u64 - 5..total as u64,
    ] {
        let got = store.read_range(&n, r.clone()).unwrap();
        assert!(got == data[r.start as usize..r.end as usize], "{r:?}");
    }
    let ranges: Vec<_> = (0..total as u64)
        .step_by(4 << 20)
        .map(|s| (&n, s..(s + (4 << 20)).min(total as u64)))
        .collect();
    let back: Vec<u8> = store
        .read_ranges(&ranges)
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    assert!(back == data, "the object read back differs");
    store.delete(&n).unwrap();
}

/// `send_rest` sends what was written as the last part (here the only one, under 5 MiB) before
/// `finish`: nothing is visible until `finish`, a write after it is refused (and the object then never
/// appears), and an object larger than a part keeps its earlier parts.
#[test]
fn s3_send_rest_uploads_the_last_part_before_finish() {
    let Some(store) = s3_store("send-rest") else {
        return;
    };
    for (k, total) in [(1, 300_000usize), (2, (5 << 20) + 70_000)] {
        let n = name(&format!("rest-{k}"));
        let data = noise(20 + k as u64, total);
        let mut w = store.writer_new(&n).unwrap();
        w.write(&data[..total / 2]).unwrap();
        w.write(&data[total / 2..]).unwrap();
        w.send_rest().unwrap();
        assert!(
            store.size(&n).unwrap_err().is_not_found(),
            "visible before finish"
        );
        assert_eq!(w.finish().unwrap(), total as u64);
        assert!(
            store.read_range(&n, 0..total as u64).unwrap() == data,
            "{total} bytes"
        );
    }
    let n = name("rest-then-write");
    let mut w = store.writer(&n).unwrap();
    w.write(b"first").unwrap();
    w.send_rest().unwrap();
    let e = w.write(b"more").unwrap_err().to_string();
    assert!(
        e.contains("rest-then-write") && e.contains("last part"),
        "{e}"
    );
    assert!(w.finish().is_err());
    assert!(store.size(&n).unwrap_err().is_not_found());
}

#[test]
fn s3_wrong_credentials_are_one_clear_error() {
    let Some(_) = s3_store("credentials") else {
        return;
    };
    let good = config(test_port());
    for (key, secret) in [
        ("clc-test-key", "wrong-secret"),
        ("no-such-key", "clc-test-secret"),
    ] {
        let mut cfg = good.clone();
        cfg.credentials.key_id = key.into();
        cfg.credentials.secret = secret.into();
        let store = Store::s3(&cfg, BUCKET, "x/").unwrap();
        let t = Instant::now();
        for e in [
            store.list("").unwrap_err(),
            store.read_range(&name("a.001"), 0..1).unwrap_err(),
            store.put(&name("a.001"), b"x").unwrap_err(),
        ] {
            let m = e.to_string();
            assert!(matches!(e, StorageError::Credentials { .. }), "{key}: {m}");
            assert!(
                m.starts_with(&format!(
                    "http://127.0.0.1:{}: credentials rejected",
                    test_port()
                )),
                "{m}"
            );
            assert!(!m.contains(secret), "{m}");
            assert_eq!(m.lines().count(), 1, "{m}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "credentials errors are not retried"
        );
    }
}

#[test]
fn s3_missing_object_and_bucket_are_named() {
    let Some(store) = s3_store("missing") else {
        return;
    };
    let e = store.size(&name("data.007")).unwrap_err();
    assert!(e.to_string().starts_with("s3://clc-test/clc-tests/"), "{e}");
    assert!(
        e.to_string().ends_with("/missing/data.007: no such object"),
        "{e}"
    );
    let nb = Store::s3(&config(test_port()), "no-such-bucket-clc", "").unwrap();
    let e = nb.read_range(&name("x"), 0..1).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("no-such-bucket-clc"), "{e}");
}

#[test]
fn s3_unreachable_endpoint_is_one_error_in_bounded_time() {
    // A port that was free a moment ago: connection refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = config(port);
    cfg.retry = RetryPolicy::default();
    let store = Store::s3(&cfg, BUCKET, "p/").unwrap();
    let t = Instant::now();
    let e = store.read_range(&name("a.001"), 0..10).unwrap_err();
    let took = t.elapsed();
    let m = e.to_string();
    assert!(matches!(e, StorageError::Unreachable { .. }), "{m}");
    assert!(
        m.starts_with(&format!("http://127.0.0.1:{port}: endpoint unreachable")),
        "{m}"
    );
    assert!(m.contains("gave up after 6 attempts"), "{m}");
    assert_eq!(m.lines().count(), 1);
    assert!(
        took <= cfg.retry.max_total_delay() + Duration::from_secs(3),
        "{took:?}"
    );
    assert!(
        took >= Duration::from_millis(500),
        "retried with backoff: {took:?}"
    );
}

/// A private server for `test` (which it may kill and restart) and settings for it with 5 MiB parts,
/// two in flight; `None` (SKIP) when no S3 server answers.
fn private_server(test: &str) -> Option<(PrivateServer, S3Config)> {
    s3_store(test)?;
    let server = PrivateServer::start(test).unwrap();
    let mut cfg = config(server.port);
    cfg.part_size = 5 << 20;
    cfg.parts_in_flight = 2;
    Some((server, cfg))
}

/// Kills the server now and starts it again 300 ms later, in a thread the caller joins.
fn kill_and_restart(server: &PrivateServer) -> std::thread::JoinHandle<()> {
    server.run("kill");
    let mut start = server.command("start");
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        assert!(start.status().unwrap().success(), "restart");
    })
}

/// A part is sent while it fills: its request starts when its first bytes are written (counted
/// then), each part's bytes are kept, and a part whose request the server broke (killed while the part
/// streamed) is sent again whole from them once the server is back: the object is complete and exact.
/// A part the end leaves short goes at its own length (the object is not a multiple of the part).
#[test]
fn s3_a_streamed_part_is_retried_from_its_kept_bytes() {
    let Some((server, mut cfg)) = private_server("streamed-retry") else {
        return;
    };
    // Retries that outlast a restart (SeaweedFS may answer 500 for a moment after it).
    cfg.retry = RetryPolicy {
        attempts: 30,
        first_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(1),
        max_elapsed: Duration::from_secs(60),
    };
    let store = Store::s3(&cfg, BUCKET, "streamed/").unwrap();
    let n = name("vol.001");
    let total = (13 << 20) + 4321;
    let data = noise(11, total);
    let mut w = store.writer_new(&n).unwrap();
    let before = clc::storage::requests::counts();
    // The first part and 2 MiB of the second: the second's request is open, its body half sent.
    w.write(&data[..7 << 20]).unwrap();
    // Requests run on the store's own threads: counted when they start, soon after the write.
    let t = Instant::now();
    let streamed = || {
        clc::storage::requests::counts()
            .since(&before)
            .part_streamed
    };
    while streamed() == 0 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        streamed() >= 1,
        "the second part's request started as it began to fill"
    );
    // Its 2 MiB reach the server, then the server dies under the open request.
    std::thread::sleep(Duration::from_millis(100));
    let restart = kill_and_restart(&server);
    w.write(&data[7 << 20..]).unwrap();
    let size = w.finish();
    restart.join().unwrap();
    assert_eq!(size.unwrap(), total as u64);
    assert_eq!(store.size(&n).unwrap(), total as u64);
    assert!(
        store.read_range(&n, 0..total as u64).unwrap() == data,
        "the object read back differs"
    );
}

#[test]
fn s3_server_killed_mid_upload_then_restarted() {
    let Some((server, cfg)) = private_server("killed") else {
        return;
    };
    let store = Store::s3(&cfg, BUCKET, "killed/").unwrap();
    let done = name("done.001");
    let done_data = noise(3, 100_000);
    store.put(&done, &done_data).unwrap();

    // Killed mid-upload: the stream fails, within the retry bound, and no object appears.
    let n = name("vol.001");
    let mut w = store.writer(&n).unwrap();
    let piece = noise(4, 1 << 20);
    for _ in 0..12 {
        w.write(&piece).unwrap();
    }
    server.run("kill");
    let t = Instant::now();
    let r = (0..12)
        .try_for_each(|_| w.write(&piece))
        .and_then(|()| w.finish().map(|_| ()));
    let e = r.expect_err("an upload to a dead server must fail");
    assert!(
        e.is_transient() || matches!(e, StorageError::Upload { .. }),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    // Restarted (same data): the finished object is there, the interrupted one is not. A server that
    // has just started may answer 500 for a moment (SeaweedFS's volume server registering), so these
    // reads use retries that outlast that, as the default ones do.
    let mut patient = cfg.clone();
    patient.retry = RetryPolicy {
        attempts: 12,
        max_delay: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    let store = Store::s3(&patient, BUCKET, "killed/").unwrap();
    server.run("start");
    assert!(store.size(&n).unwrap_err().is_not_found());
    assert!(store.list("vol").unwrap().is_empty());
    assert_eq!(store.read_range(&done, 0..100_000).unwrap(), done_data);

    // Killed and restarted under a read: the default retries carry the read across the restart.
    let restart = kill_and_restart(&server);
    let got = store.read_range(&done, 10..90_000);
    restart.join().unwrap();
    assert_eq!(got.unwrap(), &done_data[10..90_000]);
}
