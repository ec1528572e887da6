//! What can go wrong where bytes live. Every variant names the object (its full address: a path or an
//! `s3://bucket/key` URL), the endpoint or the setting it concerns, and prints as one line.

use std::fmt;
use std::time::Duration;

/// How many attempts a failed operation made, and for how long; printed after transient errors.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tries {
    pub attempts: u32,
    pub elapsed: Duration,
}

impl fmt::Display for Tries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.attempts > 1 {
            write!(
                f,
                " (gave up after {} attempts in {:.1} s)",
                self.attempts,
                self.elapsed.as_secs_f64()
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A location (`s3://…` URL or path) that cannot be used.
    #[error("{url}: {msg}")]
    BadAddress { url: String, msg: String },
    /// An object name that this store cannot hold.
    #[error("{name}: bad object name: {msg}")]
    BadName { name: String, msg: String },
    /// A setting (environment variable, profile file entry) that is missing or invalid.
    #[error("{setting}: {msg}")]
    Config { setting: String, msg: String },
    /// The object does not exist.
    #[error("{object}: no such object")]
    NotFound { object: String },
    /// An object that [`Store::create`](super::Store::create) found already there.
    #[error("{object}: already exists")]
    Exists { object: String },
    /// The bucket does not exist at that endpoint.
    #[error("s3://{bucket}: no such bucket at {endpoint}")]
    NoBucket { bucket: String, endpoint: String },
    /// A local path that is not a regular file (a FIFO, device, directory, socket).
    #[error("{object}: not a regular file ({kind})")]
    NotRegular { object: String, kind: &'static str },
    /// A ranged read that ends past the end of the object.
    #[error("{object}: bytes {start}..{end} are past the end of the object ({size} bytes)")]
    PastEnd {
        object: String,
        start: u64,
        end: u64,
        size: u64,
    },
    /// No connection could be made to the endpoint.
    #[error("{endpoint}: endpoint unreachable ({msg}){tries}")]
    Unreachable {
        endpoint: String,
        msg: String,
        tries: Tries,
    },
    /// The server did not answer in time.
    #[error("{object}: no answer from the server in time ({msg}){tries}")]
    Timeout {
        object: String,
        msg: String,
        tries: Tries,
    },
    /// The connection broke during the request.
    #[error("{object}: connection lost ({msg}){tries}")]
    Interrupted {
        object: String,
        msg: String,
        tries: Tries,
    },
    /// The server asked us to slow down (HTTP 429/503 SlowDown) and kept asking.
    #[error("{object}: throttled by the server ({code}){tries}")]
    Throttled {
        object: String,
        code: String,
        tries: Tries,
    },
    /// The server rejected the credentials (unknown key id, bad secret, expired token).
    #[error(
        "{endpoint}: credentials rejected ({code}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
    )]
    Credentials { endpoint: String, code: String },
    /// The credentials are valid but may not do this.
    #[error("{object}: access denied ({code})")]
    Denied { object: String, code: String },
    /// Any other error answer from the server (HTTP status and S3 error code or message).
    #[error("{object}: server error {status} ({msg}){tries}")]
    Server {
        object: String,
        status: u16,
        msg: String,
        tries: Tries,
    },
    /// An answer that does not make sense (wrong length, wrong range, unparsable).
    #[error("{object}: bad answer from the server: {msg}")]
    BadReply { object: String, msg: String },
    /// A streaming upload that cannot go on (too many parts, an earlier part failed).
    #[error("{object}: upload failed: {msg}")]
    Upload { object: String, msg: String },
    /// A local I/O error.
    #[error("{object}: {source}")]
    Io {
        object: String,
        #[source]
        source: std::io::Error,
    },
}

impl StorageError {
    /// Whether trying again later may succeed: the endpoint was unreachable, the connection broke, the
    /// server timed out, throttled, or failed with a 5xx. Decides retries in [`super::retry`].
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Unreachable { .. }
            | StorageError::Timeout { .. }
            | StorageError::Interrupted { .. }
            | StorageError::Throttled { .. } => true,
            StorageError::Server { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Records how many attempts were made on a transient error.
    pub(crate) fn with_tries(mut self, t: Tries) -> Self {
        match &mut self {
            StorageError::Unreachable { tries, .. }
            | StorageError::Timeout { tries, .. }
            | StorageError::Interrupted { tries, .. }
            | StorageError::Throttled { tries, .. }
            | StorageError::Server { tries, .. } => *tries = t,
            _ => {}
        }
        self
    }

    /// Whether the object (or its bucket) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StorageError::NotFound { .. } | StorageError::NoBucket { .. }
        )
    }

    pub(crate) fn io(object: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io {
            object: object.into(),
            source,
        }
    }
}

/// `s` with control characters escaped (`\n`, `\u{1b}`), so that a hostile name or URL cannot break a
/// message into several lines or drive a terminal.
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Makes text from a server or a library fit on one line of a message: control characters become
/// spaces, runs of spaces collapse, and it is cut at 200 characters.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if out.chars().count() >= 200 {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("a\n\n  b\r\tc  "), "a b c");
        assert!(one_line(&"x".repeat(500)).chars().count() <= 201);
        let e = StorageError::Unreachable {
            endpoint: "http://127.0.0.1:1".into(),
            msg: "connection refused".into(),
            tries: Tries {
                attempts: 4,
                elapsed: Duration::from_millis(1500),
            },
        };
        assert_eq!(
            e.to_string(),
            "http://127.0.0.1:1: endpoint unreachable (connection refused) (gave up after 4 attempts in 1.5 s)"
        );
        assert!(e.is_transient());
        let nf = StorageError::NotFound {
            object: "s3://b/p/x.001".into(),
        };
        assert_eq!(nf.to_string(), "s3://b/p/x.001: no such object");
        assert!(!nf.is_transient() && nf.is_not_found());
    }
}
