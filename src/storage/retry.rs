//! The one place where failed storage operations are tried again: bounded exponential backoff with
//! jitter, for transient errors only ([`StorageError::is_transient`]: unreachable endpoint, broken
//! connection, timeout, throttling, 5xx). Every request of the S3 backend goes through [`run`]; callers
//! (pack, the archive reader, parity, the mount) never retry on their own. Local files are not retried:
//! their errors are not transient.

use super::error::Tries;
use super::{Result, StorageError};
use std::future::Future;
use std::time::{Duration, Instant};

/// How often and how long to try again.
///
/// Attempt `n` (from 2) waits `first_delay × 2^(n-2)`, capped at `max_delay`, times a jitter factor in
/// [0.5, 1); no attempt starts after `max_elapsed` or past `attempts`. With the defaults an operation
/// gives up after 6 attempts and about 3–6 s of waiting (plus the requests themselves), which covers a
/// server restart and bounds the wait for an endpoint that is down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// No new attempt starts later than this after the first.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before attempt `attempt + 1`, after `attempt` attempts failed with `err` over `elapsed`;
    /// `None` means give up.
    pub fn delay_after(
        &self,
        attempt: u32,
        elapsed: Duration,
        err: &StorageError,
    ) -> Option<Duration> {
        if !err.is_transient() || attempt >= self.attempts {
            return None;
        }
        let exp = attempt.saturating_sub(1).min(30);
        let base = self
            .first_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let d = base.mul_f64(0.5 + jitter() / 2.0);
        (elapsed + d <= self.max_elapsed).then_some(d)
    }

    /// The longest total wait between attempts this policy allows (without the requests' own time).
    pub fn max_total_delay(&self) -> Duration {
        let mut sum = Duration::ZERO;
        for a in 1..self.attempts {
            let exp = (a - 1).min(30);
            sum += self
                .first_delay
                .saturating_mul(1u32 << exp)
                .min(self.max_delay);
        }
        sum.min(self.max_elapsed)
    }
}

/// A number in [0, 1) from the clock: enough to spread the retries of parallel requests.
fn jitter() -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Spread the low bits (xorshift-multiply) so that close instants give different factors.
    let mut x = u64::from(n) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs `op` until it succeeds, fails with a permanent error, or `policy` gives up; the error of the last
/// attempt is returned with the attempts recorded in it.
pub(crate) async fn run<T, F, Fut>(policy: &RetryPolicy, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => match policy.delay_after(attempt, start.elapsed(), &e) {
                Some(d) => {
                    tokio::time::sleep(d).await;
                    attempt += 1;
                }
                None => {
                    return Err(e.with_tries(Tries {
                        attempts: attempt,
                        elapsed: start.elapsed(),
                    }))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn refused() -> StorageError {
        StorageError::Unreachable {
            endpoint: "http://127.0.0.1:1".into(),
            msg: "connection refused".into(),
            tries: Tries::default(),
        }
    }

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            max_elapsed: Duration::from_secs(5),
        }
    }

    #[test]
    fn transient_errors_are_retried_until_success() {
        let calls = Cell::new(0);
        let r = block_on(run(&quick(5), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(refused())
                } else {
                    Ok(n)
                }
            }
        }));
        assert_eq!(r.unwrap(), 3);
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn gives_up_after_the_attempts_and_says_so() {
        let calls = Cell::new(0);
        let r: Result<()> = block_on(run(&quick(4), || {
            calls.set(calls.get() + 1);
            async { Err(refused()) }
        }));
        assert_eq!(calls.get(), 4);
        let e = r.unwrap_err();
        assert!(e.to_string().contains("gave up after 4 attempts"), "{e}");
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let calls = Cell::new(0);
        let r: Result<()> = block_on(run(&quick(5), || {
            calls.set(calls.get() + 1);
            async {
                Err(StorageError::NotFound {
                    object: "s3://b/x".into(),
                })
            }
        }));
        assert_eq!(calls.get(), 1);
        assert_eq!(r.unwrap_err().to_string(), "s3://b/x: no such object");
    }

    #[test]
    fn delays_grow_are_capped_and_bounded_in_time() {
        let p = RetryPolicy::default();
        let e = refused();
        let mut last = Duration::ZERO;
        for a in 1..p.attempts {
            let d = p.delay_after(a, Duration::ZERO, &e).unwrap();
            assert!(d <= p.max_delay, "attempt {a}: {d:?}");
            assert!(d >= p.first_delay / 2);
            last = d;
        }
        assert!(last >= Duration::from_millis(1600), "{last:?}");
        assert_eq!(p.delay_after(p.attempts, Duration::ZERO, &e), None);
        assert_eq!(p.delay_after(1, p.max_elapsed, &e), None);
        // The default gives up within seconds, not minutes.
        assert!(p.max_total_delay() <= Duration::from_secs(8));
        assert!(p.max_total_delay() >= Duration::from_secs(3));
        assert_eq!(RetryPolicy::none().delay_after(1, Duration::ZERO, &e), None);
    }
}
