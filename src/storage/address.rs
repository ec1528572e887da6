//! Where an archive lives, from what the user typed: a local path (`dir/NAME`) or an S3 URL
//! (`s3://bucket/prefix/NAME`). Parsing is strict, since the text comes from a command line or a script:
//! anything odd is one [`StorageError::BadAddress`] naming the URL and what is wrong with it.

use super::error::printable;
use super::{ObjectName, Result, StorageError};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Longest S3 key (prefix and name), in bytes, as S3 allows.
const MAX_KEY: usize = 1024;

/// A parsed location: the store (a directory, or a bucket and key prefix) and the name inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local { dir: PathBuf, name: ObjectName },
    S3(S3Address),
}

/// `s3://bucket/prefix/name`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Address {
    pub bucket: String,
    /// The key prefix of the store: empty, or ending in `/`.
    pub prefix: String,
    pub name: ObjectName,
}

impl S3Address {
    /// Parses `s3://bucket/prefix/name`.
    pub fn parse(url: &str) -> Result<S3Address> {
        let bad = |msg: &str| StorageError::BadAddress {
            url: printable(url),
            msg: msg.to_string(),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("an S3 address starts with s3://"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.contains('@') || bucket.contains(':') {
            return Err(bad(
                "credentials and ports do not belong in an s3:// address: use AWS_ACCESS_KEY_ID / \
                 AWS_SECRET_ACCESS_KEY or AWS_PROFILE, and AWS_ENDPOINT_URL",
            ));
        }
        check_bucket(bucket).map_err(|m| bad(&m))?;
        if key.is_empty() {
            return Err(bad(
                "no archive name after the bucket (expected s3://bucket/prefix/NAME)",
            ));
        }
        if key.ends_with('/') {
            return Err(bad(
                "ends with '/': an archive name is needed after the prefix",
            ));
        }
        if key.len() > MAX_KEY {
            return Err(bad("the key is longer than 1024 bytes"));
        }
        check_key(key).map_err(|m| bad(&m))?;
        let (prefix, name) = match key.rfind('/') {
            Some(i) => (&key[..=i], &key[i + 1..]),
            None => ("", key),
        };
        let name = ObjectName::new(name).map_err(|e| bad(&e.to_string()))?;
        Ok(S3Address {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            name,
        })
    }

    /// The URL of object `name` in the same bucket and prefix.
    pub fn object_url(&self, name: &ObjectName) -> String {
        format!("s3://{}/{}{}", self.bucket, self.prefix, name)
    }
}

/// Bucket naming rules of S3 (which self-hosted stores accept too): 3 to 63 characters, lowercase
/// letters, digits, `.` and `-`, starting and ending with a letter or digit, no `..`, not an IP address.
fn check_bucket(b: &str) -> std::result::Result<(), String> {
    let e = |m: &str| Err(format!("bucket name {b:?}: {m}"));
    if b.is_empty() {
        return Err("no bucket name after s3://".into());
    }
    if !(3..=63).contains(&b.len()) {
        return e("must be 3 to 63 characters long");
    }
    if let Some(c) = b
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return e(&format!(
            "{c:?} is not allowed (lowercase letters, digits, '.' and '-')"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(b.chars().next()) || !alnum(b.chars().last()) {
        return e("must start and end with a letter or digit");
    }
    if b.contains("..") {
        return e("must not contain '..'");
    }
    if b.parse::<std::net::Ipv4Addr>().is_ok() {
        return e("must not look like an IP address");
    }
    Ok(())
}

/// Key rules: `/`-separated segments, none empty, `.` or `..`; no control characters, `\`, `?` or `#`.
fn check_key(key: &str) -> std::result::Result<(), String> {
    for seg in key.split('/') {
        match seg {
            "" => return Err("empty path segment ('//' or a leading '/')".into()),
            "." | ".." => return Err(format!("{seg:?} is not allowed as a path segment")),
            _ => {}
        }
    }
    if let Some(c) = key
        .chars()
        .find(|c| c.is_control() || matches!(c, '\\' | '?' | '#'))
    {
        return Err(format!("{c:?} is not allowed in a key"));
    }
    Ok(())
}

impl Location {
    /// Parses what the user typed: `s3://…` is an S3 address; other `scheme://` forms are refused;
    /// anything else is a local path whose last component is the name.
    pub fn parse(s: impl AsRef<OsStr>) -> Result<Location> {
        let s = s.as_ref();
        let b = s.as_bytes();
        let lossy = || printable(&s.to_string_lossy());
        if let Some(i) = find(b, b"://") {
            let scheme = &b[..i];
            if scheme
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'+')
            {
                if scheme != b"s3" {
                    return Err(StorageError::BadAddress {
                        url: lossy(),
                        msg: "only s3:// addresses and local paths are supported".into(),
                    });
                }
                let url = s.to_str().ok_or_else(|| StorageError::BadAddress {
                    url: lossy(),
                    msg: "an s3:// address must be UTF-8".into(),
                })?;
                return S3Address::parse(url).map(Location::S3);
            }
        }
        let bad = |msg: &str| StorageError::BadAddress {
            url: lossy(),
            msg: msg.into(),
        };
        if b.is_empty() {
            return Err(bad("empty path"));
        }
        if b.ends_with(b"/") {
            return Err(bad("ends with '/': a name is needed after the directory"));
        }
        let p = Path::new(s);
        let name = p
            .file_name()
            .ok_or_else(|| bad("has no file name ('.' or '..')"))?;
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = ObjectName::new(name).map_err(|e| bad(&e.to_string()))?;
        Ok(Location::Local { dir, name })
    }

    /// The name inside the store (the archive's `NAME`, or a volume's `NAME.001`).
    pub fn name(&self) -> &ObjectName {
        match self {
            Location::Local { name, .. } => name,
            Location::S3(a) => &a.name,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(u: &str) -> S3Address {
        S3Address::parse(u).unwrap_or_else(|e| panic!("{u}: {e}"))
    }

    #[test]
    fn s3_addresses_split_into_bucket_prefix_and_name() {
        let a = s3("s3://bucket/backups/2024/data.001");
        assert_eq!(a.bucket, "bucket");
        assert_eq!(a.prefix, "backups/2024/");
        assert_eq!(a.name.to_str(), Some("data.001"));
        assert_eq!(
            a.object_url(&ObjectName::new("data.002").unwrap()),
            "s3://bucket/backups/2024/data.002"
        );
        let b = s3("s3://my.bucket-1/data");
        assert_eq!((b.prefix.as_str(), b.name.to_str()), ("", Some("data")));
        assert_eq!(
            Location::parse("s3://bkt/x/y").unwrap(),
            Location::S3(s3("s3://bkt/x/y"))
        );
    }

    #[test]
    fn hostile_s3_addresses_give_one_error_naming_the_url() {
        let long_key = format!("s3://bkt/{}/x", "a/".repeat(600));
        let cases = [
            "s3://",
            "s3:///x",
            "s3://bucket",
            "s3://bucket/",
            "s3://bucket/dir/",
            "s3://b/x",
            "s3://Bucket/x",
            "s3://bu_cket/x",
            "s3://-bucket/x",
            "s3://bucket-/x",
            "s3://buc..ket/x",
            "s3://192.168.1.1/x",
            "s3://key:secret@bucket/x",
            "s3://bucket:9000/x",
            "s3://bucket//x",
            "s3://bucket/a/../x",
            "s3://bucket/./x",
            "s3://bucket/a\nb",
            "s3://bucket/a?versionId=1",
            "s3://bucket/a#frag",
            "s3://bucket/a\\b",
            &long_key,
        ];
        for u in cases {
            let e = S3Address::parse(u).expect_err(u);
            let m = e.to_string();
            assert!(matches!(e, StorageError::BadAddress { .. }), "{u}: {m}");
            assert!(m.starts_with(&printable(u)), "{u:?}: {m}");
            assert_eq!(m.lines().count(), 1, "{m}");
        }
        assert!(S3Address::parse(&format!("s3://{}/x", "b".repeat(64))).is_err());
        assert!(S3Address::parse(&format!("s3://bkt/{}", "n".repeat(256))).is_err());
    }

    #[test]
    fn local_paths_and_other_schemes() {
        let l = Location::parse("/srv/backups/data.001").unwrap();
        assert_eq!(
            l,
            Location::Local {
                dir: "/srv/backups".into(),
                name: ObjectName::new("data.001").unwrap()
            }
        );
        let l = Location::parse("data").unwrap();
        assert!(matches!(&l, Location::Local { dir, .. } if dir == Path::new(".")));
        assert_eq!(l.name().to_str(), Some("data"));
        let odd = OsStr::from_bytes(b"dir/caf\xe9");
        assert!(Location::parse(odd).is_ok());
        for bad in ["", "/", "dir/", "..", "dir/..", "http://host/x", "gs://b/x"] {
            let e = Location::parse(bad).expect_err(bad);
            assert!(matches!(e, StorageError::BadAddress { .. }), "{bad}: {e}");
        }
        // A local file whose name merely contains "://" after a path is still a path.
        assert!(matches!(
            Location::parse("./a://b").unwrap(),
            Location::Local { .. }
        ));
    }
}
