//! Settings of the S3 backend: endpoint, region, credentials, addressing, limits. Plain data; filled from
//! the environment and the AWS profile files by [`crate::storage::env`] (the one place that reads them),
//! or directly by a caller or a test.

use crate::storage::{Result, RetryPolicy, StorageError};
use std::fmt;
use std::time::Duration;

/// Credentials of an S3 account. `Debug` never prints the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub key_id: String,
    pub secret: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("key_id", &self.key_id)
            .field("secret", &"…")
            .field("session_token", &self.session_token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// How the bucket appears in request URLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// `https://endpoint/bucket/key`: what self-hosted stores (SeaweedFS, MinIO, Ceph RGW) expect.
    Path,
    /// `https://bucket.endpoint/key`: what AWS prefers.
    VirtualHosted,
}

#[derive(Clone, Debug, PartialEq)]
pub struct S3Config {
    /// `scheme://host[:port]`; `None` is AWS itself (`https://s3.REGION.amazonaws.com`).
    pub endpoint: Option<String>,
    pub region: String,
    pub credentials: Credentials,
    pub addressing: Addressing,
    /// Allow `http://` to a host that is not loopback (loopback is always allowed).
    pub allow_http_anywhere: bool,
    pub retry: RetryPolicy,
    pub connect_timeout: Duration,
    /// Whole-request limit (a part upload or a ranged read included).
    pub request_timeout: Duration,
    /// Size of the first multipart parts; grows ×2 every 1000 parts (S3 allows 10 000 parts).
    pub part_size: usize,
    /// Parts uploaded at once by one streaming writer (its memory is about (this + 1) × part size).
    pub parts_in_flight: usize,
    /// Ranged reads in flight at once in [`Store::read_ranges`](crate::storage::Store::read_ranges).
    pub reads_in_flight: usize,
    /// Send each multipart part while it fills (its request starts with its length when its first
    /// bytes are written), where payloads are not signed; otherwise each part goes whole once full.
    pub stream_parts: bool,
}

/// S3's smallest part (all but the last); larger parts mean fewer requests, more memory per writer.
pub const MIN_PART: usize = 5 << 20;
/// S3's largest part.
pub const MAX_PART: usize = 5 << 30;

impl S3Config {
    /// Defaults for everything but where and who.
    pub fn new(endpoint: Option<String>, region: &str, credentials: Credentials) -> S3Config {
        let addressing = if endpoint.is_some() {
            Addressing::Path
        } else {
            Addressing::VirtualHosted
        };
        S3Config {
            endpoint,
            region: region.to_string(),
            credentials,
            addressing,
            allow_http_anywhere: false,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(120),
            part_size: 5 << 20,
            parts_in_flight: 4,
            reads_in_flight: 8,
            stream_parts: true,
        }
    }

    /// The endpoint as messages name it.
    pub fn endpoint_text(&self) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }

    /// Checks the endpoint URL (scheme, host, no path or credentials in it; `http://` only to loopback
    /// unless allowed) and the limits. Returns whether plain HTTP is used.
    pub fn validate(&self) -> Result<bool> {
        let cfg = |setting: &str, msg: String| StorageError::Config {
            setting: setting.to_string(),
            msg,
        };
        if !(MIN_PART..=MAX_PART).contains(&self.part_size) {
            return Err(cfg(
                "part size",
                format!("{} is outside 5 MiB ..= 5 GiB", self.part_size),
            ));
        }
        if self.parts_in_flight == 0 || self.reads_in_flight == 0 || self.retry.attempts == 0 {
            return Err(cfg(
                "S3 limits",
                "parts in flight, reads in flight and attempts must be at least 1".into(),
            ));
        }
        if self.region.is_empty()
            || !self
                .region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(cfg(
                "region",
                format!("{:?} is not a region name", self.region),
            ));
        }
        let Some(ep) = &self.endpoint else {
            return Ok(false);
        };
        let bad = |msg: &str| cfg("endpoint", format!("{ep}: {msg}"));
        let u = url::Url::parse(ep).map_err(|e| bad(&e.to_string()))?;
        let http = match u.scheme() {
            "https" => false,
            "http" => true,
            _ => return Err(bad("the endpoint must be an http:// or https:// URL")),
        };
        if !u.username().is_empty() || u.password().is_some() {
            return Err(bad("credentials do not belong in the endpoint URL"));
        }
        if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
            return Err(bad(
                "the endpoint is scheme://host[:port] with no path or query",
            ));
        }
        let Some(loopback) = is_loopback(&u) else {
            return Err(bad("no host"));
        };
        if http && !loopback && !self.allow_http_anywhere {
            return Err(bad(
                "plain http:// is allowed to loopback only (set CLC_S3_ALLOW_HTTP=1 to allow it anywhere)",
            ));
        }
        Ok(http)
    }

    /// Whether request bodies are signed (their SHA-256 in the signature, computed before each upload
    /// is sent: ~2 ms per 4 MiB on the critical path of a pack's last part). Not over TLS, which
    /// protects the bytes in transit itself, nor to loopback, where nothing is in transit: there the
    /// signature says `UNSIGNED-PAYLOAD`, as the AWS SDKs do over TLS. Signed only over plain http
    /// to another host (`CLC_S3_ALLOW_HTTP=1`). Either way frames carry their own checksums.
    pub fn sign_payload(&self) -> bool {
        let Some(u) = self
            .endpoint
            .as_deref()
            .and_then(|e| url::Url::parse(e).ok())
        else {
            return false;
        };
        u.scheme() == "http" && is_loopback(&u) != Some(true)
    }
}

/// Whether the URL's host is loopback; `None` without a host.
fn is_loopback(u: &url::Url) -> Option<bool> {
    Some(match u.host()? {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(a) => a.is_loopback(),
        url::Host::Ipv6(a) => a.is_loopback(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ep: &str) -> S3Config {
        S3Config::new(
            Some(ep.into()),
            "us-east-1",
            Credentials {
                key_id: "k".into(),
                secret: "s3cr3t".into(),
                session_token: Some("t0k3n".into()),
            },
        )
    }

    #[test]
    fn endpoints_are_checked() {
        assert!(cfg("http://127.0.0.1:8333").validate().unwrap());
        assert!(cfg("http://localhost:9000").validate().unwrap());
        assert!(cfg("http://[::1]:9000").validate().unwrap());
        assert!(!cfg("https://s3.example.com").validate().unwrap());
        for bad in [
            "http://10.0.0.5:9000",
            "ftp://host",
            "https://user:pw@host",
            "https://host/bucket",
            "https://host?x=1",
            "not a url",
            "http://",
        ] {
            let e = cfg(bad).validate().expect_err(bad).to_string();
            assert!(e.starts_with("endpoint: "), "{e}");
            assert_eq!(e.lines().count(), 1);
        }
        let mut c = cfg("http://10.0.0.5:9000");
        c.allow_http_anywhere = true;
        assert!(c.validate().unwrap());
        c.part_size = 1 << 20;
        assert!(c.validate().is_err());
    }

    #[test]
    fn payloads_are_signed_only_over_plain_http_to_another_host() {
        for (ep, signed) in [
            ("http://127.0.0.1:8333", false),
            ("http://localhost:9000", false),
            ("http://[::1]:9000", false),
            ("https://s3.example.com", false),
            ("https://127.0.0.1:9000", false),
            ("http://10.0.0.5:9000", true),
            ("http://minio.example.com", true),
        ] {
            assert_eq!(cfg(ep).sign_payload(), signed, "{ep}");
        }
        let mut aws = cfg("https://x");
        aws.endpoint = None;
        assert!(!aws.sign_payload());
    }

    #[test]
    fn debug_hides_secrets() {
        let d = format!("{:?}", cfg("http://127.0.0.1:1"));
        assert!(!d.contains("s3cr3t") && !d.contains("t0k3n"), "{d}");
    }
}
