//! Objects in an S3-compatible store (AWS S3, SeaweedFS, MinIO, Ceph RGW), through `object_store`.
//!
//! The backend owns a small tokio runtime and blocks on it, so the rest of clc stays synchronous (it
//! must not be called from inside another tokio runtime). Every request goes through
//! [`retry::run`](crate::storage::retry) with the configured policy; object_store's own retries are off,
//! so retries happen in one place. Ranged reads check that exactly the asked bytes came back.

mod config;
mod errors;
mod part;
mod writer;

pub use config::{Addressing, Credentials, S3Config, MAX_PART, MIN_PART};

use super::error::one_line;
use super::requests::{traced, Kind};
use super::{
    retry, Backend, ObjectInfo, ObjectName, ObjectWriter, Result, RetryPolicy, StorageError,
};
use errors::Names;
use futures_util::stream::{self, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path as Key;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig};
use std::ffi::OsStr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// Pages of a listing after which it is abandoned (1000 keys a page: a billion keys).
const MAX_LIST_PAGES: usize = 1_000_000;

pub(crate) struct S3Backend {
    rt: Arc<Runtime>,
    client: Arc<AmazonS3>,
    /// Sends parts while they fill; `None` where payloads are signed.
    streamer: Option<Arc<part::PartSender>>,
    request_timeout: Duration,
    bucket: String,
    /// Key prefix: empty or ending in `/`.
    prefix: String,
    endpoint: String,
    retry: RetryPolicy,
    part_size: usize,
    parts_in_flight: usize,
    reads_in_flight: usize,
}

impl S3Backend {
    /// A store over `s3://bucket/prefix`. Checks the settings; makes no request.
    pub fn new(cfg: &S3Config, bucket: &str, prefix: &str) -> Result<S3Backend> {
        let http = cfg.validate()?;
        // The TLS stack's crypto (ring); installing it twice is harmless and the second call fails quietly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("clc-s3")
            // Sockets are written on these threads: a server gone mid-upload is EPIPE, not SIGPIPE.
            .on_thread_start(crate::sys::block_sigpipe_in_thread)
            .enable_all()
            .build()
            .map_err(|e| StorageError::io("S3 client runtime", e))?;
        // Plain HTTP has no TLS to verify: the system's root certificates (a bundle and a directory of
        // some 150 files, read and parsed by each client when it is built: ~10 ms on the 2-core
        // machine, BENCHMARKS.md §10.6) are not loaded.
        let options = ClientOptions::new()
            .with_allow_http(http)
            .with_no_system_certificates(http)
            .with_connect_timeout(cfg.connect_timeout)
            .with_timeout(cfg.request_timeout);
        let no_retries = RetryConfig {
            max_retries: 0,
            retry_timeout: Duration::ZERO,
            ..RetryConfig::default()
        };
        let virtual_hosted = cfg.addressing == Addressing::VirtualHosted;
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.credentials.key_id)
            .with_secret_access_key(&cfg.credentials.secret)
            .with_client_options(options)
            .with_retry(no_retries)
            .with_virtual_hosted_style_request(virtual_hosted)
            .with_disable_bulk_delete(true)
            .with_unsigned_payload(!cfg.sign_payload());
        if let Some(t) = &cfg.credentials.session_token {
            b = b.with_token(t);
        }
        if let Some(ep) = &cfg.endpoint {
            b = b.with_endpoint(if virtual_hosted {
                bucket_host(ep, bucket)?
            } else {
                ep.clone()
            });
        }
        let client = b.build().map_err(|e| StorageError::Config {
            setting: format!("s3://{bucket}"),
            msg: one_line(&e.to_string()),
        })?;
        let streamer = part::PartSender::new(cfg, bucket, http)?.map(Arc::new);
        Ok(S3Backend {
            rt: Arc::new(rt),
            client: Arc::new(client),
            streamer,
            request_timeout: cfg.request_timeout,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            endpoint: cfg.endpoint_text(),
            retry: cfg.retry,
            part_size: cfg.part_size,
            parts_in_flight: cfg.parts_in_flight,
            reads_in_flight: cfg.reads_in_flight,
        })
    }

    fn url(&self, name: &str) -> String {
        format!("s3://{}/{}{}", self.bucket, self.prefix, name)
    }

    fn names<'a>(&'a self, object: &'a str) -> Names<'a> {
        Names {
            object,
            endpoint: &self.endpoint,
            bucket: &self.bucket,
        }
    }

    /// The key of `name`, and its URL for messages. S3 keys are UTF-8 without control characters.
    fn key(&self, name: &ObjectName) -> Result<(Key, String)> {
        let s = name.to_str().ok_or_else(|| StorageError::BadName {
            name: name.to_string(),
            msg: "not UTF-8, which S3 keys must be".into(),
        })?;
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(StorageError::BadName {
                name: name.to_string(),
                msg: format!("{c:?} cannot be part of an S3 key"),
            });
        }
        let url = self.url(s);
        let key = Key::parse(format!("{}{s}", self.prefix)).map_err(|e| StorageError::BadName {
            name: name.to_string(),
            msg: one_line(&e.to_string()),
        })?;
        Ok((key, url))
    }

    /// A multipart writer of `name` with this backend's client, retries and part settings.
    fn s3_writer(&self, name: &ObjectName) -> Result<writer::S3Writer> {
        let (key, url) = self.key(name)?;
        let shared = writer::Shared {
            rt: self.rt.clone(),
            req: Arc::new(writer::Requests {
                client: self.client.clone(),
                streamer: self.streamer.clone(),
                request_timeout: self.request_timeout,
                retry: self.retry,
                endpoint: self.endpoint.clone(),
                bucket: self.bucket.clone(),
            }),
        };
        Ok(writer::S3Writer::new(
            shared,
            key,
            url,
            self.part_size,
            self.parts_in_flight,
        ))
    }

    async fn head(&self, key: &Key, url: &str) -> Result<u64> {
        retry::run(&self.retry, || {
            traced(Kind::Head, url, 0, async {
                self.client
                    .head(key)
                    .await
                    .map(|m| m.size)
                    .map_err(|e| errors::convert(e, &self.names(url)))
            })
        })
        .await
    }

    /// One GET of `range` (retried): the range the server sent, the object's size and the bytes.
    async fn get(
        &self,
        key: &Key,
        url: &str,
        range: GetRange,
    ) -> Result<(Range<u64>, u64, Vec<u8>)> {
        retry::run(&self.retry, || {
            traced(Kind::Get, url, 0, async {
                let opts = GetOptions::new().with_range(Some(range.clone()));
                let res = self.client.get_opts(key, opts).await;
                let res = res.map_err(|e| errors::convert(e, &self.names(url)))?;
                let (got, size) = (res.range.clone(), res.meta.size);
                let body = res.bytes().await;
                let body = body.map_err(|e| errors::convert(e, &self.names(url)))?;
                Ok((got, size, Vec::from(body)))
            })
        })
        .await
    }

    /// The last `len` bytes and the size, in one suffix-range GET (a HEAD for an empty object).
    async fn tail(&self, key: &Key, url: &str, len: u64) -> Result<(Vec<u8>, u64)> {
        if len == 0 {
            return Ok((Vec::new(), self.head(key, url).await?));
        }
        let (range, size, body) = match self.get(key, url, GetRange::Suffix(len)).await {
            Ok(v) => v,
            // An empty object has no last bytes to range over (416).
            Err(StorageError::Server { status: 416, .. }) => match self.head(key, url).await? {
                0 => return Ok((Vec::new(), 0)),
                size => {
                    return Err(StorageError::BadReply {
                        object: url.to_string(),
                        msg: format!("refused a suffix range of an object of {size} bytes"),
                    })
                }
            },
            Err(e) => return Err(e),
        };
        let want = size.saturating_sub(len)..size;
        if range != want || body.len() as u64 != want.end - want.start {
            return Err(StorageError::BadReply {
                object: url.to_string(),
                msg: format!(
                    "asked for the last {len} bytes of {size}, got {} bytes for {}..{}",
                    body.len(),
                    range.start,
                    range.end
                ),
            });
        }
        Ok((body, size))
    }

    /// One ranged GET (retried), checked: exactly `r` comes back, or the range is past the end.
    async fn get_range(&self, key: &Key, url: &str, r: Range<u64>) -> Result<Vec<u8>> {
        if r.start >= r.end {
            return Ok(Vec::new());
        }
        let got = self.get(key, url, GetRange::Bounded(r.clone())).await;
        let (range, size, body) = match got {
            Ok(v) => v,
            // 416: the range starts at or past the end; say where the end is.
            Err(StorageError::Server { status: 416, .. }) => {
                let size = self.head(key, url).await?;
                return Err(StorageError::PastEnd {
                    object: url.to_string(),
                    start: r.start,
                    end: r.end,
                    size,
                });
            }
            Err(e) => return Err(e),
        };
        if range.end < r.end && range.start == r.start && size < r.end {
            return Err(StorageError::PastEnd {
                object: url.to_string(),
                start: r.start,
                end: r.end,
                size,
            });
        }
        if range != r || body.len() as u64 != r.end - r.start {
            return Err(StorageError::BadReply {
                object: url.to_string(),
                msg: format!(
                    "asked for bytes {}..{}, got {} bytes for {}..{}",
                    r.start,
                    r.end,
                    body.len(),
                    range.start,
                    range.end
                ),
            });
        }
        Ok(body)
    }
}

/// `scheme://bucket.host[:port]` from an endpoint, for virtual-hosted addressing.
fn bucket_host(endpoint: &str, bucket: &str) -> Result<String> {
    let mut u = url::Url::parse(endpoint).map_err(|e| StorageError::Config {
        setting: "endpoint".into(),
        msg: format!("{endpoint}: {e}"),
    })?;
    let host = format!("{bucket}.{}", u.host_str().unwrap_or_default());
    u.set_host(Some(&host)).map_err(|e| StorageError::Config {
        setting: "endpoint".into(),
        msg: format!("{endpoint}: virtual-hosted addressing of bucket {bucket}: {e}"),
    })?;
    Ok(u.as_str().trim_end_matches('/').to_string())
}

impl Backend for S3Backend {
    fn describe(&self, name: &ObjectName) -> String {
        self.url(&name.to_string())
    }

    fn list(&self, prefix: &OsStr) -> Result<Vec<ObjectInfo>> {
        let p = prefix.to_str().ok_or_else(|| StorageError::BadName {
            name: super::error::printable(&prefix.to_string_lossy()),
            msg: "not UTF-8, which S3 keys must be".into(),
        })?;
        let full = format!("{}{p}", self.prefix);
        let url = self.url(p);
        self.rt.block_on(async {
            let mut out = Vec::new();
            let mut token: Option<String> = None;
            for _ in 0..MAX_LIST_PAGES {
                let page = retry::run(&self.retry, || {
                    traced(Kind::List, &url, 0, async {
                        let opts = PaginatedListOptions {
                            delimiter: Some("/".into()),
                            page_token: token.clone(),
                            ..Default::default()
                        };
                        self.client
                            .list_paginated(Some(&full), opts)
                            .await
                            .map_err(|e| errors::convert(e, &self.names(&url)))
                    })
                })
                .await?;
                for m in page.result.objects {
                    let key = m.location.as_ref();
                    // Only direct children of the prefix; a key the server returns outside it is skipped.
                    let Some(rest) = key.strip_prefix(self.prefix.as_str()) else {
                        continue;
                    };
                    if rest.starts_with(p) && !rest.contains('/') {
                        if let Ok(name) = ObjectName::new(rest) {
                            out.push(ObjectInfo { name, size: m.size });
                        }
                    }
                }
                match page.page_token {
                    Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                    _ => {
                        out.sort_by(|a, b| a.name.cmp(&b.name));
                        out.dedup_by(|a, b| a.name == b.name);
                        return Ok(out);
                    }
                }
            }
            Err(StorageError::BadReply {
                object: url.clone(),
                msg: format!("listing did not end after {MAX_LIST_PAGES} pages"),
            })
        })
    }

    fn size(&self, name: &ObjectName) -> Result<u64> {
        let (key, url) = self.key(name)?;
        self.rt.block_on(self.head(&key, &url))
    }

    fn read_range(&self, name: &ObjectName, r: Range<u64>) -> Result<Vec<u8>> {
        let (key, url) = self.key(name)?;
        self.rt.block_on(self.get_range(&key, &url, r))
    }

    fn read_ranges(&self, reqs: &[(&ObjectName, Range<u64>)]) -> Vec<Result<Vec<u8>>> {
        self.rt.block_on(
            stream::iter(reqs.iter())
                .map(|(name, r)| async move {
                    let (key, url) = self.key(name)?;
                    self.get_range(&key, &url, r.clone()).await
                })
                .buffered(self.reads_in_flight)
                .collect::<Vec<_>>(),
        )
    }

    fn read_tail(&self, name: &ObjectName, len: u64) -> Result<(Vec<u8>, u64)> {
        let (key, url) = self.key(name)?;
        self.rt.block_on(self.tail(&key, &url, len))
    }

    fn put(&self, name: &ObjectName, data: &[u8]) -> Result<()> {
        let (key, url) = self.key(name)?;
        let payload = object_store::PutPayload::from(data.to_vec());
        self.rt.block_on(retry::run(&self.retry, || {
            traced(Kind::Put, &url, data.len() as u64, async {
                self.client
                    .put(&key, payload.clone())
                    .await
                    .map(|_| ())
                    .map_err(|e| errors::convert(e, &self.names(&url)))
            })
        }))
    }

    fn create(&self, name: &ObjectName, data: &[u8]) -> Result<()> {
        let (key, url) = self.key(name)?;
        let payload = object_store::PutPayload::from(data.to_vec());
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let r = self.rt.block_on(retry::run(&self.retry, || {
            traced(Kind::Create, &url, data.len() as u64, async {
                attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let opts = object_store::PutOptions::from(object_store::PutMode::Create);
                self.client
                    .put_opts(&key, payload.clone(), opts)
                    .await
                    .map(|_| ())
                    .map_err(|e| errors::convert(e, &self.names(&url)))
            })
        }));
        match r {
            // A retried create may have succeeded before its answer was lost: the object is ours when
            // it holds exactly our bytes (callers put something unique in it).
            Err(StorageError::Exists { .. })
                if attempts.into_inner() > 1
                    && self.size(name).ok() == Some(data.len() as u64)
                    && self
                        .read_range(name, 0..data.len() as u64)
                        .is_ok_and(|b| b == data) =>
            {
                Ok(())
            }
            r => r,
        }
    }

    fn writer(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(self.s3_writer(name)?))
    }

    fn writer_new(&self, name: &ObjectName) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(self.s3_writer(name)?.new_object()))
    }

    fn delete(&self, name: &ObjectName) -> Result<()> {
        let (key, url) = self.key(name)?;
        self.rt.block_on(retry::run(&self.retry, || {
            traced(Kind::Delete, &url, 0, async {
                match self.client.delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(errors::convert(e, &self.names(&url))),
                }
            })
        }))
    }
}
