//! object_store's errors → [`StorageError`] kinds. object_store exposes the transport failure kind
//! (`HttpError`) but not the HTTP status or the S3 error code, which are read from its message: the
//! status after "status code: " and the code from the `<Code>…</Code>` of the S3 error body.

use crate::storage::error::{one_line, Tries};
use crate::storage::StorageError;
use object_store::client::{HttpError, HttpErrorKind};

/// Names that an error message needs: the object's URL, the endpoint and the bucket.
pub(super) struct Names<'a> {
    pub object: &'a str,
    pub endpoint: &'a str,
    pub bucket: &'a str,
}

/// The S3 error code in a message (`<Code>SlowDown</Code>`).
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    let code = &text[start..start + len];
    (!code.is_empty() && code.len() < 64 && code.chars().all(|c| c.is_ascii_alphanumeric()))
        .then_some(code)
}

/// The HTTP status in a message ("… status code: 503 Service Unavailable …").
fn status(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    let digits = text.get(at..at + 3)?;
    digits.parse().ok().filter(|s| (100..600).contains(s))
}

/// object_store's message without what the error kind and the object's URL already say: the
/// "Generic S3 error: " label and the "Error performing GET <url> in 1ms - " request line.
fn tidy(text: &str) -> String {
    let t = text.strip_prefix("Generic S3 error: ").unwrap_or(text);
    let t = match t.find("Error performing ") {
        Some(i) => t[i..].split_once(" - ").map_or(t, |(_, rest)| rest),
        None => t,
    };
    one_line(t.trim_end_matches(':'))
}

/// The reason phrase after the status ("… status code: 500 Internal Server Error: body" → "Internal Server
/// Error").
fn reason(text: &str) -> Option<String> {
    let at = text.find("status code: ")? + "status code: ".len() + 3;
    let r = text.get(at..)?.split(':').next()?.trim();
    (!r.is_empty()).then(|| one_line(r))
}

/// The innermost cause's message ("Connection refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    one_line(&cur.to_string())
}

fn http_kind(e: &(dyn std::error::Error + 'static)) -> Option<HttpErrorKind> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            return Some(h.kind());
        }
        cur = c.source();
    }
    None
}

const CREDENTIAL_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
    "InvalidSecurity",
];

const THROTTLE_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "RequestThrottled",
];

/// Converts one failed request's error.
pub(super) fn convert(e: object_store::Error, n: &Names) -> StorageError {
    let text = e.to_string();
    let code = s3_code(&text);
    let object = n.object.to_string();
    let no_tries = Tries::default();
    if code == Some("NoSuchBucket") {
        return StorageError::NoBucket {
            bucket: n.bucket.to_string(),
            endpoint: n.endpoint.to_string(),
        };
    }
    let st = match &e {
        object_store::Error::NotFound { .. } => return StorageError::NotFound { object },
        object_store::Error::AlreadyExists { .. } => return StorageError::Exists { object },
        object_store::Error::Unauthenticated { .. } => Some(401),
        object_store::Error::PermissionDenied { .. } => Some(403),
        _ => status(&text),
    };
    if matches!(st, Some(401 | 403)) {
        let c = code.unwrap_or("HTTP 401/403").to_string();
        return if code.is_none_or(|c| CREDENTIAL_CODES.contains(&c)) {
            StorageError::Credentials {
                endpoint: n.endpoint.to_string(),
                code: c,
            }
        } else {
            StorageError::Denied { object, code: c }
        };
    }
    if let Some(k) = http_kind(&e) {
        let msg = root_cause(&e);
        return match k {
            HttpErrorKind::Connect => StorageError::Unreachable {
                endpoint: n.endpoint.to_string(),
                msg,
                tries: no_tries,
            },
            HttpErrorKind::Timeout => StorageError::Timeout {
                object,
                msg,
                tries: no_tries,
            },
            HttpErrorKind::Request | HttpErrorKind::Interrupted | HttpErrorKind::Decode => {
                StorageError::Interrupted {
                    object,
                    msg,
                    tries: no_tries,
                }
            }
            _ => StorageError::BadReply { object, msg },
        };
    }
    if st == Some(429) || code.is_some_and(|c| THROTTLE_CODES.contains(&c)) {
        return StorageError::Throttled {
            object,
            code: code.unwrap_or("HTTP 429").to_string(),
            tries: no_tries,
        };
    }
    match (st, code) {
        (Some(status), c) => StorageError::Server {
            object,
            status,
            msg: c
                .map(str::to_string)
                .or_else(|| reason(&text))
                .unwrap_or_else(|| tidy(&text)),
            tries: no_tries,
        },
        // S3 may answer 200 with an error body (InternalError during CompleteMultipartUpload).
        (None, Some(c)) if c.contains("Internal") => StorageError::Server {
            object,
            status: 500,
            msg: c.to_string(),
            tries: no_tries,
        },
        _ => StorageError::BadReply {
            object,
            msg: tidy(&text),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_are_read_from_messages() {
        let t = "Generic S3 error: Error performing PUT http://127.0.0.1:8333/b/x in 2ms - Server returned \
                 non-2xx status code: 503 Service Unavailable: <?xml version=\"1.0\"?><Error><Code>SlowDown</Code>\
                 <Message>Please reduce</Message></Error>";
        assert_eq!(status(t), Some(503));
        assert_eq!(s3_code(t), Some("SlowDown"));
        assert_eq!(status("status code: 5"), None);
        assert_eq!(s3_code("<Code></Code>"), None);
        assert_eq!(s3_code("<Code>a b</Code>"), None);
        assert_eq!(s3_code("<Code>unterminated"), None);
        let n = Names {
            object: "s3://b/x",
            endpoint: "http://127.0.0.1:8333",
            bucket: "b",
        };
        let e = object_store::Error::Generic {
            store: "S3",
            source: t.into(),
        };
        let c = convert(e, &n);
        assert!(matches!(c, StorageError::Throttled { .. }), "{c}");
        assert!(c.is_transient());
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 500 Internal Server Error: oops".into(),
        };
        let c = convert(e, &n);
        assert!(
            matches!(c, StorageError::Server { status: 500, .. }) && c.is_transient(),
            "{c}"
        );
        let e = object_store::Error::Generic {
            store: "S3",
            source:
                "Server returned non-2xx status code: 400 Bad Request: <Code>InvalidPart</Code>"
                    .into(),
        };
        let c = convert(e, &n);
        assert!(
            matches!(c, StorageError::Server { status: 400, .. }) && !c.is_transient(),
            "{c}"
        );
        assert_eq!(c.to_string(), "s3://b/x: server error 400 (InvalidPart)");
        let t = "Generic S3 error: Error performing GET http://h/b/x in 5ms - Server returned non-2xx status \
                 code: 500 Internal Server Error:";
        assert_eq!(reason(t).as_deref(), Some("Internal Server Error"));
        let t = "Generic S3 error: Error performing GET http://h/b/x in 1ms - Received redirect without LOCATION";
        assert_eq!(tidy(t), "Received redirect without LOCATION");
        assert_eq!(
            tidy("Generic S3 error: Requested 0..10, got 5..15"),
            "Requested 0..10, got 5..15"
        );
    }
}
