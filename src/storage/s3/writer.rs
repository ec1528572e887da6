//! Streaming an object to S3 while it is produced: a multipart upload whose parts are sent as they fill,
//! a bounded number at a time, from memory only (nothing is staged on disk).
//!
//! Memory: the part being filled plus at most `parts_in_flight` parts uploading. The upload is created
//! when the writer is told the object will be one ([`ObjectWriter::begin_upload`]: a volume that is not
//! cut early, the last volume of a pack), or else when the first part is 1 MiB short of full; an
//! object smaller than one part whose upload was never begun is sent with one PUT at `finish`.
//!
//! Once the upload exists, a part is sent while it fills ([`part`](super::part), where payloads are
//! not signed): its request starts with the part's length when its first bytes are written, and each
//! write goes on to the server at once, so a full part has only its last write left to send. Its bytes
//! are kept as well (one part: 5 MiB by default) until its request succeeded: a streamed request that
//! fails is retried from them, whole, with the usual retries. A part that the stream's end leaves short
//! cannot keep its announced length: its request is dropped (the server stores nothing of a body that
//! ends short) and its kept bytes go as the last part, of their own length. Parts
//! are `part_size` bytes and double every 1000 parts, so the 10 000-part limit of S3 is reached only past
//! ~4.9 TB with 5 MiB parts (past S3's 5 TiB object limit with larger ones). Nothing is visible under the name until `finish` completes the upload; `abort`
//! (or dropping the writer unfinished) aborts it, which removes the uploaded parts.

use super::errors::{self, Names};
use super::part::{self, PartSender};
use super::{MAX_PART, MIN_PART};
use crate::storage::requests::{traced, Kind};
use crate::storage::{retry, ObjectWriter, Result, RetryPolicy, StorageError};
use bytes::Bytes;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// S3's limit on the number of parts of one upload.
const MAX_PARTS: usize = 10_000;

/// How many bytes before the first part is full the multipart upload is created. An object that ends
/// within them becomes a one-part upload (its creation was in flight) instead of one `PUT`: one round
/// trip more at `finish`, for objects within 1 MiB under the part size only.
const START_BEFORE: usize = 1 << 20;

/// What the writer shares with its backend.
pub(super) struct Shared {
    pub rt: Arc<Runtime>,
    pub req: Arc<Requests>,
}

/// What a part upload task needs: the client and the names for messages. Not the runtime: a task must
/// never hold the last reference to the runtime it runs on (dropping a runtime inside it panics).
pub(super) struct Requests {
    pub client: Arc<AmazonS3>,
    /// Parts sent while they fill; `None` where payloads are signed (parts go whole).
    pub streamer: Option<Arc<PartSender>>,
    /// How long a streamed part may take once full (a whole request's limit).
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub endpoint: String,
    pub bucket: String,
}

impl Requests {
    fn names<'a>(&'a self, url: &'a str) -> Names<'a> {
        Names {
            object: url,
            endpoint: &self.endpoint,
            bucket: &self.bucket,
        }
    }
}

/// A part whose request started when it began to fill (see the module's documentation).
struct Streaming {
    /// Its number (from 0).
    idx: usize,
    /// Its length, announced in its request.
    len: usize,
    filled: usize,
    /// Everything written to it, kept for a retry or for sending it again short.
    chunks: Vec<Bytes>,
    /// Feeds the request's body; dropped when the part is full, which ends the body.
    body: mpsc::UnboundedSender<Bytes>,
    /// Hands the kept bytes to the request's task when the part is full (for its retries).
    full: oneshot::Sender<Vec<Bytes>>,
    task: JoinHandle<Result<PartId>>,
}

pub(super) struct S3Writer {
    rt: Arc<Runtime>,
    s: Arc<Requests>,
    key: Key,
    url: String,
    part_size: usize,
    parts_in_flight: usize,
    /// The part being filled, while it is not sent as it fills.
    buf: Vec<u8>,
    /// The part being filled and sent as it fills.
    streaming: Option<Streaming>,
    /// The multipart upload, once the first part was sent.
    upload: Option<String>,
    /// Its creation, started by [`ObjectWriter::begin_upload`] or when the first part is
    /// [`START_BEFORE`] bytes short of full, so that the id is there when the part is (one round trip
    /// less between the stream and its first part).
    creating: Option<JoinHandle<Result<String>>>,
    /// The object must not exist yet ([`S3Writer::new_object`]).
    must_be_new: bool,
    /// For a new object that becomes a multipart upload: `HEAD` of the name, sent when the upload is
    /// created; `finish` refuses to commit over an object that existed then. It runs beside the
    /// upload, so the stream never waits for it. (An object of one `PUT` is sent with
    /// `If-None-Match: *` instead: no request before it.)
    absent: Option<JoinHandle<Result<bool>>>,
    /// Part uploads in flight, oldest first.
    inflight: VecDeque<JoinHandle<Result<PartId>>>,
    /// Parts uploaded, in order.
    done: Vec<PartId>,
    sent_parts: usize,
    written: u64,
    /// Everything written was sent ([`ObjectWriter::send_rest`]): nothing more can be.
    rest_sent: bool,
    /// Set after an error, a finish or an abort: nothing more can be written.
    closed: bool,
}

impl S3Writer {
    pub fn new(s: Shared, key: Key, url: String, part_size: usize, parts_in_flight: usize) -> Self {
        S3Writer {
            rt: s.rt,
            s: s.req,
            key,
            url,
            part_size,
            parts_in_flight,
            buf: Vec::new(),
            streaming: None,
            upload: None,
            creating: None,
            must_be_new: false,
            absent: None,
            inflight: VecDeque::new(),
            done: Vec::new(),
            sent_parts: 0,
            written: 0,
            rest_sent: false,
            closed: false,
        }
    }

    /// A writer of an object that must not exist yet: `finish` fails with [`StorageError::Exists`]
    /// (and commits nothing) when one did when the writer was made.
    pub fn new_object(mut self) -> Self {
        self.must_be_new = true;
        self
    }

    /// Sends the `HEAD` that checks a new object's name was free (once, when it becomes a multipart
    /// upload).
    fn check_name(&mut self) {
        if !self.must_be_new || self.absent.is_some() {
            return;
        }
        let (s, key, url) = (self.s.clone(), self.key.clone(), self.url.clone());
        self.absent = Some(self.rt.spawn(async move {
            let r = retry::run(&s.retry, || {
                traced(Kind::Head, &url, 0, async {
                    match s.client.head(&key).await {
                        Ok(_) => Ok(false),
                        Err(object_store::Error::NotFound { .. }) => Ok(true),
                        Err(e) => Err(errors::convert(e, &s.names(&url))),
                    }
                })
            });
            r.await
        }));
    }

    /// Waits for the check that the object did not exist (if one was asked for).
    fn check_absent(&mut self) -> Result<()> {
        let Some(h) = self.absent.take() else {
            return Ok(());
        };
        let absent = self.rt.block_on(h).map_err(|e| StorageError::Upload {
            object: self.url.clone(),
            msg: format!("existence check task: {e}"),
        })??;
        if absent {
            Ok(())
        } else {
            Err(StorageError::Exists {
                object: self.url.clone(),
            })
        }
    }

    /// Starts creating the multipart upload (once).
    fn start_upload(&mut self) {
        if self.upload.is_some() || self.creating.is_some() {
            return;
        }
        self.check_name();
        let (s, key, url) = (self.s.clone(), self.key.clone(), self.url.clone());
        self.creating = Some(self.rt.spawn(async move {
            let r = retry::run(&s.retry, || {
                traced(Kind::Upload, &url, 0, async {
                    s.client
                        .create_multipart(&key)
                        .await
                        .map_err(|e| errors::convert(e, &s.names(&url)))
                })
            });
            r.await
        }));
    }

    fn closed_err(&self) -> StorageError {
        StorageError::Upload {
            object: self.url.clone(),
            msg: "the upload was already finished, aborted or failed".into(),
        }
    }

    /// Size of part `i` (from 0): `part_size`, doubling every 1000 parts, at most 5 GiB.
    fn size_of_part(&self, i: usize) -> usize {
        let shift = (i / 1000).min(20) as u32;
        self.part_size.saturating_mul(1 << shift).min(MAX_PART)
    }

    /// The upload's id when it exists, taking a creation that has finished (never waiting for one).
    fn upload_ready(&mut self) -> Result<Option<String>> {
        if self.upload.is_none() && self.creating.as_ref().is_some_and(|h| h.is_finished()) {
            let h = self.creating.take().expect("checked");
            let id = self.rt.block_on(h).map_err(|e| StorageError::Upload {
                object: self.url.clone(),
                msg: format!("upload creation task: {e}"),
            })??;
            self.upload = Some(id);
        }
        Ok(self.upload.clone())
    }

    /// Starts sending the part being filled while it fills (what is buffered of it first), where
    /// parts can be streamed and the upload exists; otherwise it stays buffered.
    fn start_streaming(&mut self) -> Result<()> {
        let Some(streamer) = self.s.streamer.clone() else {
            return Ok(());
        };
        if self.rest_sent || self.sent_parts >= MAX_PARTS {
            return Ok(());
        }
        let Some(id) = self.upload_ready()? else {
            return Ok(());
        };
        let len = self.size_of_part(self.sent_parts);
        let (body, rx) = mpsc::unbounded_channel();
        let (full, full_rx) = oneshot::channel();
        let mut chunks = Vec::new();
        if !self.buf.is_empty() {
            let b = Bytes::from(std::mem::take(&mut self.buf));
            let _ = body.send(b.clone());
            chunks.push(b);
        }
        let filled = chunks.iter().map(Bytes::len).sum();
        let idx = self.sent_parts;
        let part = StreamedPart {
            s: self.s.clone(),
            streamer,
            key: self.key.clone(),
            url: self.url.clone(),
            upload: id,
            idx,
            len,
        };
        let task = self.rt.spawn(part.send(rx, full_rx));
        self.streaming = Some(Streaming {
            idx,
            len,
            filled,
            chunks,
            body,
            full,
            task,
        });
        Ok(())
    }

    /// Writes what fits of `data` into the part being streamed; returns how much that was.
    fn write_streaming(&mut self, data: &[u8]) -> Result<usize> {
        let st = self.streaming.as_mut().expect("a part is being streamed");
        let n = (st.len - st.filled).min(data.len());
        let b = Bytes::copy_from_slice(&data[..n]);
        // A request that already failed no longer reads its body: it is retried from `chunks`.
        let _ = st.body.send(b.clone());
        st.chunks.push(b);
        st.filled += n;
        if st.filled == st.len {
            // Full: its body ends, its task gets the kept bytes, and it joins the parts in flight.
            let st = self.streaming.take().expect("just used");
            drop(st.body);
            let _ = st.full.send(st.chunks);
            self.inflight.push_back(st.task);
            self.sent_parts += 1;
            while self.inflight.len() > self.parts_in_flight {
                self.wait_oldest()?;
            }
        }
        Ok(n)
    }

    /// Takes back a part being streamed that will not reach its announced length: its request is
    /// dropped (the server stores nothing of a body that ends short), and its bytes are returned to be
    /// sent whole, as a part of their own length, under the same number.
    fn unstream(&mut self) -> Option<Vec<Bytes>> {
        let st = self.streaming.take()?;
        debug_assert_eq!(st.idx, self.sent_parts);
        st.task.abort();
        // Waits until the request is dropped, so that its connection is closed before the part is
        // sent again.
        let _ = self.rt.block_on(st.task);
        Some(st.chunks)
    }

    /// Sends the filled buffer as the next part, first waiting for the oldest part if too many are in
    /// flight.
    fn send_part(&mut self) -> Result<()> {
        // Where parts are streamed, only the first is ever buffered.
        let next = match self.s.streamer {
            Some(_) => 0,
            None => self.size_of_part(self.sent_parts + 1),
        };
        let data = PutPayload::from(std::mem::replace(&mut self.buf, Vec::with_capacity(next)));
        self.send_payload(data)
    }

    /// Sends the part being filled whole, now: the buffer, or what was streamed of it.
    fn send_current(&mut self) -> Result<()> {
        match self.unstream() {
            Some(chunks) => self.send_payload(chunks.into_iter().collect()),
            None => self.send_part(),
        }
    }

    /// Sends `data` as the next part, first waiting for the oldest part if too many are in flight.
    fn send_payload(&mut self, data: PutPayload) -> Result<()> {
        if self.sent_parts >= MAX_PARTS {
            return Err(StorageError::Upload {
                object: self.url.clone(),
                msg: format!("more than {MAX_PARTS} parts"),
            });
        }
        let id = match &self.upload {
            Some(id) => id.clone(),
            None => {
                self.start_upload();
                let h = self.creating.take().expect("start_upload started it");
                let id = self.rt.block_on(h).map_err(|e| StorageError::Upload {
                    object: self.url.clone(),
                    msg: format!("upload creation task: {e}"),
                })??;
                self.upload = Some(id.clone());
                id
            }
        };
        while self.inflight.len() >= self.parts_in_flight {
            self.wait_oldest()?;
        }
        let (s, key, url, idx) = (
            self.s.clone(),
            self.key.clone(),
            self.url.clone(),
            self.sent_parts,
        );
        self.inflight.push_back(self.rt.spawn(async move {
            let len = data.content_length() as u64;
            retry::run(&s.retry, || {
                traced(Kind::Part, &url, len, async {
                    s.client
                        .put_part(&key, &id, idx, data.clone())
                        .await
                        .map_err(|e| errors::convert(e, &s.names(&url)))
                })
            })
            .await
        }));
        self.sent_parts += 1;
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<()> {
        let Some(h) = self.inflight.pop_front() else {
            return Ok(());
        };
        let part = self.rt.block_on(h).map_err(|e| StorageError::Upload {
            object: self.url.clone(),
            msg: format!("part upload task: {e}"),
        })??;
        self.done.push(part);
        Ok(())
    }

    /// Stops the parts in flight and aborts the upload (one attempt: this runs after failures too).
    fn abort_upload(&mut self) -> Result<()> {
        if let Some(st) = self.streaming.take() {
            st.task.abort();
        }
        for h in self.inflight.drain(..) {
            h.abort();
        }
        if let Some(h) = self.absent.take() {
            h.abort();
        }
        if let Some(h) = self.creating.take() {
            // An upload being created is waited for, so that it can be aborted too.
            if let Ok(Ok(id)) = self.rt.block_on(h) {
                self.upload.get_or_insert(id);
            }
        }
        let Some(id) = self.upload.take() else {
            return Ok(());
        };
        let s = self.s.clone();
        let url = self.url.as_str();
        self.rt.block_on(traced(Kind::Abort, url, 0, async {
            let r = s.client.abort_multipart(&self.key, &id).await;
            r.map_err(|e| errors::convert(e, &s.names(url)))
        }))
    }

    /// Whether the object holds exactly `data` (`len` bytes).
    fn holds(&self, data: &PutPayload, len: u64) -> bool {
        let (s, key) = (&self.s, &self.key);
        let got = self.rt.block_on(async {
            let r = s.client.get(key).await.ok()?;
            (r.meta.size == len).then_some(())?;
            r.bytes().await.ok()
        });
        got.is_some_and(|b| {
            let want: Vec<u8> = data.iter().flat_map(|c| c.iter().copied()).collect();
            b[..] == want[..]
        })
    }

    fn write_inner(&mut self, mut data: &[u8]) -> Result<()> {
        if self.rest_sent && !data.is_empty() {
            return Err(StorageError::Upload {
                object: self.url.clone(),
                msg: "written after its last part was sent".into(),
            });
        }
        while !data.is_empty() {
            if self.streaming.is_none()
                && self.s.streamer.is_some()
                && (self.upload.is_some() || self.creating.is_some())
            {
                self.start_streaming()?;
            }
            if self.streaming.is_some() {
                let n = self.write_streaming(data)?;
                data = &data[n..];
                self.written += n as u64;
                continue;
            }
            let room = self.size_of_part(self.sent_parts) - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.written += n as u64;
            let part = self.size_of_part(self.sent_parts);
            if self.buf.len() == part {
                self.send_part()?;
            } else if self.buf.len() >= part.saturating_sub(START_BEFORE) {
                self.start_upload();
            }
        }
        Ok(())
    }

    /// Sends what is buffered as a part now, if it is large enough to be one that is not the last and
    /// the object is a multipart upload already (a smaller object stays one `PUT`).
    fn send_ready_inner(&mut self) -> Result<()> {
        let multipart = self.upload.is_some() || self.creating.is_some();
        let buffered = match &self.streaming {
            Some(st) => st.filled,
            None => self.buf.len(),
        };
        if multipart && buffered >= MIN_PART {
            self.send_current()?;
        }
        Ok(())
    }

    /// Sends what is buffered as the last part of a multipart upload (created now if it was not),
    /// whatever its size.
    fn send_rest_inner(&mut self) -> Result<()> {
        if !self.rest_sent
            && (self.streaming.is_some() || !self.buf.is_empty() || self.upload.is_none())
        {
            self.start_upload();
            self.send_current()?;
        }
        self.rest_sent = true;
        Ok(())
    }

    fn finish_inner(&mut self) -> Result<u64> {
        let s = self.s.clone();
        if self.upload.is_none() && self.creating.is_none() {
            // Smaller than one part: one PUT, only if absent for a new object.
            let data = PutPayload::from(std::mem::take(&mut self.buf));
            let (key, url) = (&self.key, self.url.as_str());
            let len = data.content_length() as u64;
            let mode = match self.must_be_new {
                true => object_store::PutMode::Create,
                false => object_store::PutMode::Overwrite,
            };
            let attempts = std::sync::atomic::AtomicU32::new(0);
            let r = self.rt.block_on(retry::run(&s.retry, || {
                traced(Kind::Put, url, len, async {
                    attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let opts = object_store::PutOptions::from(mode.clone());
                    s.client
                        .put_opts(key, data.clone(), opts)
                        .await
                        .map(|_| ())
                        .map_err(|e| errors::convert(e, &s.names(url)))
                })
            }));
            return match r {
                // A retried PUT may have succeeded before its answer was lost: the object is ours
                // when it holds exactly these bytes.
                Err(StorageError::Exists { .. })
                    if attempts.into_inner() > 1 && self.holds(&data, len) =>
                {
                    Ok(self.written)
                }
                r => r.map(|()| self.written),
            };
        }
        if self.streaming.is_some() || !self.buf.is_empty() || self.upload.is_none() {
            self.send_current()?;
        }
        while !self.inflight.is_empty() {
            self.wait_oldest()?;
        }
        self.check_absent()?;
        let id = self.upload.clone().unwrap_or_default();
        let parts = std::mem::take(&mut self.done);
        let (key, url) = (&self.key, self.url.as_str());
        self.rt.block_on(retry::run(&s.retry, || {
            traced(Kind::Complete, url, 0, async {
                s.client
                    .complete_multipart(key, &id, parts.clone())
                    .await
                    .map(|_| ())
                    .map_err(|e| errors::convert(e, &s.names(url)))
            })
        }))?;
        self.upload = None;
        Ok(self.written)
    }
}

/// What the task of a streamed part needs.
struct StreamedPart {
    s: Arc<Requests>,
    streamer: Arc<PartSender>,
    key: Key,
    url: String,
    upload: String,
    idx: usize,
    len: usize,
}

impl StreamedPart {
    /// Sends the part as its bytes arrive through `rx`; if that request fails, sends it again whole
    /// from the bytes `full` brings once the part is full, with the configured retries (less the
    /// attempt made). Once full, the streamed request has the request timeout to end.
    async fn send(
        self,
        rx: mpsc::UnboundedReceiver<Bytes>,
        mut full: oneshot::Receiver<Vec<Bytes>>,
    ) -> Result<PartId> {
        let (s, url, len) = (&self.s, self.url.as_str(), self.len as u64);
        let names = s.names(url);
        let req = traced(
            Kind::PartStreamed,
            url,
            len,
            self.streamer.put(
                &self.key,
                &self.upload,
                self.idx,
                len,
                part::body(rx),
                &names,
            ),
        );
        tokio::pin!(req);
        // The kept bytes, once the part is full (`Some(None)`: the writer took the part back).
        let mut kept: Option<Option<Vec<Bytes>>> = None;
        let first = tokio::select! {
            r = &mut req => r,
            k = &mut full => {
                kept = Some(k.ok());
                match tokio::time::timeout(s.request_timeout, &mut req).await {
                    Ok(r) => r,
                    Err(_) => Err(StorageError::Timeout {
                        object: url.to_string(),
                        msg: format!("part {} of {} bytes", self.idx + 1, len),
                        tries: Default::default(),
                    }),
                }
            }
        };
        let Err(e) = first else {
            return first;
        };
        let chunks = match kept {
            Some(k) => k,
            None => full.await.ok(),
        };
        let Some(chunks) = chunks else {
            return Err(e);
        };
        let payload: PutPayload = chunks.into_iter().collect();
        let mut policy = s.retry;
        policy.attempts = policy.attempts.saturating_sub(1).max(1);
        retry::run(&policy, || {
            traced(Kind::Part, url, len, async {
                s.client
                    .put_part(&self.key, &self.upload, self.idx, payload.clone())
                    .await
                    .map_err(|e| errors::convert(e, &names))
            })
        })
        .await
    }
}

impl ObjectWriter for S3Writer {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        if self.closed {
            return Err(self.closed_err());
        }
        let r = self.write_inner(data);
        if r.is_err() {
            self.closed = true;
            let _ = self.abort_upload();
        }
        r
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn begin_upload(&mut self) -> Result<()> {
        if self.closed {
            return Err(self.closed_err());
        }
        if !self.rest_sent {
            self.start_upload();
        }
        Ok(())
    }

    fn send_ready(&mut self) -> Result<()> {
        if self.closed {
            return Err(self.closed_err());
        }
        let r = self.send_ready_inner();
        if r.is_err() {
            self.closed = true;
            let _ = self.abort_upload();
        }
        r
    }

    fn send_rest(&mut self) -> Result<()> {
        if self.closed {
            return Err(self.closed_err());
        }
        let r = self.send_rest_inner();
        if r.is_err() {
            self.closed = true;
            let _ = self.abort_upload();
        }
        r
    }

    fn finish(mut self: Box<Self>) -> Result<u64> {
        if self.closed {
            return Err(self.closed_err());
        }
        self.closed = true;
        let r = self.finish_inner();
        if r.is_err() {
            let _ = self.abort_upload();
        }
        r
    }

    fn abort(mut self: Box<Self>) -> Result<()> {
        self.closed = true;
        self.abort_upload()
    }
}

impl Drop for S3Writer {
    /// A writer dropped before `finish` aborts its upload: no object appears and no parts stay behind
    /// (as far as the server can be reached).
    fn drop(&mut self) {
        let _ = self.abort_upload();
    }
}
