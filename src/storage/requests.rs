//! What the S3 backend asked of the server: a counter per kind of request (always on, a few atomics), and
//! with `CLC_TRACE` set one line per request (kind, object, bytes sent or received, end time and
//! duration relative to the run's start, as `diag::trace` prints its spans).
//!
//! Tests read [`counts`] to hold the layers above to their promised number of requests (opening a bucket
//! archive is one `LIST` and one suffix-range `GET` per footer candidate, `docs/STORAGE.md`); the trace
//! lines are how `docs/BENCHMARKS.md` §10 says where a bucket pack's time goes. Every attempt counts, a
//! retried one too.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The kinds of request the S3 backend makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    List,
    Head,
    Get,
    Put,
    /// `PUT` with `If-None-Match: *` ([`Store::create`](super::Store::create)).
    Create,
    /// `CreateMultipartUpload`.
    Upload,
    Part,
    /// `UploadPart` sent while the part fills (counted when it starts; dropped unprinted when the
    /// stream's end leaves the part short).
    PartStreamed,
    Complete,
    Abort,
    Delete,
}

const KINDS: [Kind; 11] = [
    Kind::List,
    Kind::Head,
    Kind::Get,
    Kind::Put,
    Kind::Create,
    Kind::Upload,
    Kind::Part,
    Kind::PartStreamed,
    Kind::Complete,
    Kind::Abort,
    Kind::Delete,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::List => "LIST",
            Kind::Head => "HEAD",
            Kind::Get => "GET",
            Kind::Put => "PUT",
            Kind::Create => "PUT-IF-ABSENT",
            Kind::Upload => "MPU-CREATE",
            Kind::Part => "MPU-PART",
            Kind::PartStreamed => "MPU-PART-STREAMED",
            Kind::Complete => "MPU-COMPLETE",
            Kind::Abort => "MPU-ABORT",
            Kind::Delete => "DELETE",
        }
    }
}

static COUNTS: [AtomicU64; KINDS.len()] = [const { AtomicU64::new(0) }; KINDS.len()];

/// Requests made so far by this process, per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub list: u64,
    pub head: u64,
    pub get: u64,
    pub put: u64,
    pub create: u64,
    pub upload: u64,
    pub part: u64,
    pub part_streamed: u64,
    pub complete: u64,
    pub abort: u64,
    pub delete: u64,
}

impl Counts {
    /// Every request.
    pub fn total(&self) -> u64 {
        self.list
            + self.head
            + self.get
            + self.put
            + self.create
            + self.upload
            + self.part
            + self.part_streamed
            + self.complete
            + self.abort
            + self.delete
    }

    /// The requests made between `before` and `self`.
    pub fn since(&self, before: &Counts) -> Counts {
        Counts {
            list: self.list - before.list,
            head: self.head - before.head,
            get: self.get - before.get,
            put: self.put - before.put,
            create: self.create - before.create,
            upload: self.upload - before.upload,
            part: self.part - before.part,
            part_streamed: self.part_streamed - before.part_streamed,
            complete: self.complete - before.complete,
            abort: self.abort - before.abort,
            delete: self.delete - before.delete,
        }
    }
}

/// The requests made so far by this process (every store together).
pub fn counts() -> Counts {
    let c = |k: Kind| COUNTS[k as usize].load(Ordering::Relaxed);
    Counts {
        list: c(Kind::List),
        head: c(Kind::Head),
        get: c(Kind::Get),
        put: c(Kind::Put),
        create: c(Kind::Create),
        upload: c(Kind::Upload),
        part: c(Kind::Part),
        part_streamed: c(Kind::PartStreamed),
        complete: c(Kind::Complete),
        abort: c(Kind::Abort),
        delete: c(Kind::Delete),
    }
}

/// Runs one request `f` of kind `k` on `what` (an object URL) with `bytes` sent: counts it and, with
/// `CLC_TRACE`, prints it when it ends. `bytes` of a reply are added by `received`.
pub(crate) async fn traced<T, F>(k: Kind, what: &str, bytes: u64, f: F) -> super::Result<T>
where
    F: Future<Output = super::Result<T>>,
    T: Received,
{
    COUNTS[k as usize].fetch_add(1, Ordering::Relaxed);
    if !crate::diag::trace::enabled() {
        return f.await;
    }
    let t = Instant::now();
    let r = f.await;
    let got = r.as_ref().map_or(0, Received::received);
    let state = match &r {
        Ok(_) => String::new(),
        Err(e) => format!(" failed: {e}"),
    };
    crate::diag::trace::span(
        &format!("s3 {} {what} {}{state}", k.name(), bytes + got),
        t,
        0,
    );
    r
}

/// Bytes a reply carried, for the trace.
pub(crate) trait Received {
    fn received(&self) -> u64 {
        0
    }
}

impl Received for () {}
impl Received for u64 {}
impl Received for bool {}
impl Received for String {}
impl Received for object_store::multipart::PartId {}
impl Received for object_store::list::PaginatedListResult {}
impl Received for (std::ops::Range<u64>, u64, Vec<u8>) {
    fn received(&self) -> u64 {
        self.2.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_kind_and_subtracts() {
        let before = counts();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        for k in KINDS {
            let r: super::super::Result<()> = rt.block_on(traced(k, "x", 0, async { Ok(()) }));
            assert!(r.is_ok());
        }
        let d = counts().since(&before);
        // Other tests of this process may make requests at the same time: at least one of each.
        for (k, n) in KINDS.iter().zip([
            d.list,
            d.head,
            d.get,
            d.put,
            d.create,
            d.upload,
            d.part,
            d.part_streamed,
            d.complete,
            d.abort,
            d.delete,
        ]) {
            assert!(n >= 1, "{k:?} not counted");
        }
        assert!(d.total() >= KINDS.len() as u64);
    }
}
