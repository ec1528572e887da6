//! One multipart `UploadPart` whose body is sent while it is produced: the request starts, with its
//! `Content-Length` (the part size, known when the part begins to fill), as soon as the part's first
//! bytes are written, and each later write goes on to the server at once. So when a part fills, only
//! its last write is still to send, not the whole part (BENCHMARKS.md §10.5).
//!
//! object_store sends whole payloads only, so this request is made here: signed with object_store's
//! own [`AwsAuthorizer`] (SigV4, `UNSIGNED-PAYLOAD`) and sent with reqwest. It is valid S3: an
//! `UploadPart` with a fixed length, no chunked transfer encoding. Used only where payloads are not
//! signed ([`S3Config::sign_payload`]): a signed payload needs the body's SHA-256 before it is sent.

use super::config::{Addressing, S3Config};
use super::errors::{self, Names};
use crate::storage::{Result, StorageError, Tries};
use bytes::Bytes;
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::multipart::PartId;
use object_store::path::Path as Key;

/// Sends part bodies as streams. One per backend; shared by its writers.
pub(crate) struct PartSender {
    http: reqwest::Client,
    /// The URL that keys are appended to: `scheme://host[:port]/bucket` (path-style) or
    /// `scheme://bucket.host[:port]` (virtual-hosted).
    base: String,
    credential: AwsCredential,
    region: String,
}

/// `s`, percent-encoded as S3 keys are in URLs and in SigV4's canonical URI: everything but the
/// unreserved characters and `/`.
fn encode_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl PartSender {
    /// A sender for `bucket`, or `None` where payloads are signed (their hash is needed before the
    /// body is sent, so parts go whole there) or streaming is off ([`S3Config::stream_parts`]).
    /// `plain_http`: the endpoint is `http://`, so no root certificates are loaded.
    pub fn new(cfg: &S3Config, bucket: &str, plain_http: bool) -> Result<Option<PartSender>> {
        if cfg.sign_payload() || !cfg.stream_parts {
            return Ok(None);
        }
        let base = match (&cfg.endpoint, cfg.addressing) {
            (Some(ep), Addressing::Path) => format!("{}/{bucket}", ep.trim_end_matches('/')),
            (Some(ep), Addressing::VirtualHosted) => super::bucket_host(ep, bucket)?,
            (None, Addressing::Path) => format!("https://s3.{}.amazonaws.com/{bucket}", cfg.region),
            (None, Addressing::VirtualHosted) => {
                format!("https://{bucket}.s3.{}.amazonaws.com", cfg.region)
            }
        };
        // The TLS stack's crypto (ring), as for object_store's client; a second install fails quietly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = reqwest::Client::builder().connect_timeout(cfg.connect_timeout);
        if plain_http {
            b = b.tls_certs_only([]);
        }
        let http = b.build().map_err(|e| StorageError::Config {
            setting: "S3 client".into(),
            msg: crate::storage::error::one_line(&e.to_string()),
        })?;
        Ok(Some(PartSender {
            http,
            base,
            credential: AwsCredential {
                key_id: cfg.credentials.key_id.clone(),
                secret_key: cfg.credentials.secret.clone(),
                token: cfg.credentials.session_token.clone(),
            },
            region: cfg.region.clone(),
        }))
    }

    /// Uploads part `idx` (from 0, as object_store numbers them) of upload `upload` of `key`, whose
    /// body `body` yields exactly `len` bytes. One attempt: the caller retries (from the bytes it
    /// kept). A body that ends short of `len`, or fails, fails the request, and no part is stored.
    pub async fn put(
        &self,
        key: &Key,
        upload: &str,
        idx: usize,
        len: u64,
        body: reqwest::Body,
        n: &Names<'_>,
    ) -> Result<PartId> {
        let mut url = url::Url::parse(&format!("{}/{}", self.base, encode_key(key.as_ref())))
            .map_err(|e| StorageError::BadAddress {
                url: n.object.to_string(),
                msg: e.to_string(),
            })?;
        url.query_pairs_mut()
            .append_pair("partNumber", &(idx + 1).to_string())
            .append_pair("uploadId", upload);
        let mut req: HttpRequest = http::Request::builder()
            .method(http::Method::PUT)
            .uri(url.as_str())
            .body(HttpRequestBody::empty())
            .map_err(|e| StorageError::BadAddress {
                url: n.object.to_string(),
                msg: e.to_string(),
            })?;
        AwsAuthorizer::new(&self.credential, "s3", &self.region)
            .with_sign_payload(false)
            .try_authorize(&mut req, None)
            .map_err(|e| StorageError::Upload {
                object: n.object.to_string(),
                msg: format!("signing a part: {e}"),
            })?;
        let res = self
            .http
            .put(url)
            .headers(req.headers().clone())
            .header(http::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .map_err(|e| transport(&e, n))?;
        let status = res.status();
        if !status.is_success() {
            let text = res.text().await.unwrap_or_default();
            let text: String = text.chars().take(2000).collect();
            let e = object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "Server returned non-2xx status code: {} {}: {text}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
                .into(),
            };
            return Err(errors::convert(e, n));
        }
        let etag = res
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| StorageError::BadReply {
                object: n.object.to_string(),
                msg: format!("part {} uploaded without an ETag", idx + 1),
            })?;
        Ok(PartId {
            content_id: etag.to_string(),
        })
    }
}

/// A request that failed before an answer: the kinds object_store's errors map to.
fn transport(e: &reqwest::Error, n: &Names) -> StorageError {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    let msg = crate::storage::error::one_line(&cur.to_string());
    let tries = Tries::default();
    let object = n.object.to_string();
    if e.is_connect() {
        StorageError::Unreachable {
            endpoint: n.endpoint.to_string(),
            msg,
            tries,
        }
    } else if e.is_timeout() {
        StorageError::Timeout { object, msg, tries }
    } else {
        StorageError::Interrupted { object, msg, tries }
    }
}

/// A body that yields what the writer sends through `rx`, and ends when it is dropped.
pub(super) fn body(rx: tokio::sync::mpsc::UnboundedReceiver<Bytes>) -> reqwest::Body {
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
    });
    reqwest::Body::wrap_stream(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(endpoint: Option<&str>, addressing: Addressing) -> S3Config {
        let mut c = S3Config::new(
            endpoint.map(str::to_string),
            "eu-west-3",
            crate::storage::s3::Credentials {
                key_id: "k".into(),
                secret: "s".into(),
                session_token: None,
            },
        );
        c.addressing = addressing;
        c
    }

    #[test]
    fn parts_go_to_the_bucket_the_addressing_names() {
        let base = |c: &S3Config| {
            let plain = c
                .endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http:"));
            PartSender::new(c, "bk", plain).unwrap().map(|p| p.base)
        };
        for (ep, a, want) in [
            (
                Some("http://127.0.0.1:8333"),
                Addressing::Path,
                "http://127.0.0.1:8333/bk",
            ),
            (
                Some("https://s3.example.com"),
                Addressing::VirtualHosted,
                "https://bk.s3.example.com",
            ),
            (
                None,
                Addressing::Path,
                "https://s3.eu-west-3.amazonaws.com/bk",
            ),
            (
                None,
                Addressing::VirtualHosted,
                "https://bk.s3.eu-west-3.amazonaws.com",
            ),
        ] {
            assert_eq!(base(&cfg(ep, a)).as_deref(), Some(want), "{ep:?} {a:?}");
        }
        // Signed payloads (plain http to another host) and the switch turned off: parts go whole.
        let mut signed = cfg(Some("http://10.0.0.5:9000"), Addressing::Path);
        signed.allow_http_anywhere = true;
        assert!(base(&signed).is_none());
        let mut off = cfg(Some("http://127.0.0.1:8333"), Addressing::Path);
        off.stream_parts = false;
        assert!(base(&off).is_none());
    }

    #[test]
    fn keys_are_encoded_as_sigv4_wants() {
        assert_eq!(encode_key("a/b-c_d.e~f"), "a/b-c_d.e~f");
        assert_eq!(encode_key("t/my vol+1.001"), "t/my%20vol%2B1.001");
        assert_eq!(encode_key("é"), "%C3%A9");
    }
}
