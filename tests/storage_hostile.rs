//! The S3 backend against endpoints that misbehave: hostile answers (garbage, wrong ranges, short bodies,
//! redirects, 5xx, throttling) are errors, never panics or unchecked bytes; and a slow but correct server
//! shows that ranged reads run in parallel. These servers are small threads on loopback ports of this
//! test, so the tests need no S3 server and always run.

use clc::storage::env::s3_config_from;
use clc::storage::{ObjectName, RetryPolicy, S3Config, StorageError, Store};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

const BUCKET: &str = "clc-test";

fn name(s: &str) -> ObjectName {
    ObjectName::new(s).unwrap()
}

/// Settings for an endpoint on a loopback `port`, with retries that give up within a second.
fn config(port: u16) -> S3Config {
    let vars = |k: &str| match k {
        "AWS_ENDPOINT_URL" => Some(format!("http://127.0.0.1:{port}")),
        "AWS_ACCESS_KEY_ID" => Some("clc-test-key".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("clc-test-secret".into()),
        _ => None,
    };
    let mut c = s3_config_from(&vars, None).unwrap();
    c.retry = RetryPolicy {
        attempts: 4,
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(5),
    };
    c
}

/// Serves `answer` to every connection on a loopback port, for `conns` connections.
fn hostile(answer: &'static [u8], conns: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(conns) {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer);
        }
    });
    port
}

/// What a read of a range must fail with, for each kind of hostile answer.
fn bad_reply(e: &StorageError) -> bool {
    matches!(e, StorageError::BadReply { .. })
}

#[test]
fn hostile_answers_are_errors() {
    type Case = (&'static [u8], &'static str, fn(&StorageError) -> bool);
    let cases: &[Case] = &[
        (b"garbage\r\n\r\n", "not HTTP", bad_reply),
        (
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-14/100\r\nContent-Length: 10\r\n\r\n0123456789",
            "another range",
            bad_reply,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
            "the whole object for a range",
            bad_reply,
        ),
        (
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 10\r\n\r\n0123",
            "a short body",
            |e| matches!(e, StorageError::Interrupted { .. }),
        ),
        (
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/5\r\nContent-Length: 10\r\n\r\n0123456789",
            "a range past its own size",
            bad_reply,
        ),
        (
            b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 3\r\n\r\n012",
            "fewer bytes than the range",
            bad_reply,
        ),
        (
            b"HTTP/1.1 503 Slow Down\r\nContent-Length: 56\r\n\r\n<Error><Code>SlowDown</Code><Message>x</Message></Error>",
            "throttling",
            |e| matches!(e, StorageError::Throttled { .. }),
        ),
        (
            b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
            "a server error",
            |e| matches!(e, StorageError::Server { status: 500, .. }),
        ),
        (
            b"HTTP/1.1 301 Moved\r\nContent-Length: 0\r\n\r\n",
            "a bare redirect",
            bad_reply,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n<ListBucketResult><",
            "a truncated listing",
            bad_reply,
        ),
    ];
    for (answer, what, expected) in cases {
        let port = hostile(answer, 64);
        let store = Store::s3(&config(port), BUCKET, "p/").unwrap();
        let t = Instant::now();
        let e = store.read_range(&name("a.001"), 0..10).expect_err(what);
        assert!(expected(&e), "{what}: {e}");
        assert_eq!(e.to_string().lines().count(), 1, "{what}: {e}");
        assert!(
            e.to_string().starts_with("s3://clc-test/p/a.001: "),
            "{what}: {e}"
        );
        // Whatever else is asked of it, an error (and no panic).
        assert!(store.list("").is_err(), "{what}: a listing");
        // A HEAD answered 2xx is a size, whatever the body; the answer must just not panic.
        let _ = store.size(&name("a.001"));
        assert!(
            store.read_tail(&name("a.001"), 10).is_err(),
            "{what}: a tail"
        );
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{what}: {:?}",
            t.elapsed()
        );
    }
}

/// A slow but correct server: answers each ranged GET after `delay` with the asked bytes of an object of
/// `size` zero bytes, counting the requests in flight at once.
fn slow_server(
    delay: Duration,
    size: u64,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::BufRead;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let max2 = max.clone();
    std::thread::spawn(move || {
        for s in l.incoming().take(64) {
            let Ok(s) = s else { continue };
            let (now, max) = (now.clone(), max2.clone());
            std::thread::spawn(move || {
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let mut range = None;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("range: bytes=") {
                            let (a, b) = v.split_once('-').unwrap();
                            range = Some((a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()));
                        }
                    }
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(delay);
                    now.fetch_sub(1, Ordering::SeqCst);
                    let (a, b) = range.unwrap_or((0, size - 1));
                    let body = vec![0u8; (b - a + 1) as usize];
                    let head = format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{size}\r\n\
                         Content-Length: {}\r\nLast-Modified: Mon, 30 Nov 2026 06:00:00 GMT\r\n\r\n",
                        body.len()
                    );
                    if w.write_all(head.as_bytes())
                        .and_then(|_| w.write_all(&body))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, max)
}

#[test]
fn s3_ranged_reads_run_in_parallel() {
    let delay = Duration::from_millis(300);
    let (port, max) = slow_server(delay, 1 << 20);
    let mut cfg = config(port);
    cfg.reads_in_flight = 8;
    let store = Store::s3(&cfg, BUCKET, "p/").unwrap();
    let n = name("a.001");
    let reqs: Vec<_> = (0..8u64).map(|i| (&n, i * 4096..(i + 1) * 4096)).collect();
    let t = Instant::now();
    let got = store.read_ranges(&reqs);
    let took = t.elapsed();
    for r in got {
        assert_eq!(r.unwrap(), vec![0u8; 4096]);
    }
    let max = max.load(std::sync::atomic::Ordering::SeqCst);
    assert!(max >= 4, "at most {max} requests were in flight at once");
    assert!(took < delay * 4, "8 reads of {delay:?} each took {took:?}");
}
