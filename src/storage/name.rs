//! Object names: one path component inside a store (`NAME.001`, `NAME.p001`, …), validated once.

use super::error::printable;
use super::{Result, StorageError};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;

/// Longest object name, in bytes: the usual file-name limit (`NAME_MAX`).
pub const MAX_NAME: usize = 255;

/// The name of one object inside a [`Store`](super::Store): a single path component.
///
/// Invariants (checked by [`ObjectName::new`]): 1 to [`MAX_NAME`] bytes, no `/`, no NUL, not `.` or `..`.
/// Any other bytes are allowed, so a local archive whose name is not UTF-8 keeps working; the S3 backend
/// additionally requires UTF-8 without control characters and says so when a name is not.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectName(OsString);

impl ObjectName {
    /// Validates `name` as one path component.
    pub fn new(name: impl AsRef<OsStr>) -> Result<ObjectName> {
        let n = name.as_ref();
        let b = n.as_bytes();
        let bad = |msg: &str| StorageError::BadName {
            name: printable(&n.to_string_lossy()),
            msg: msg.to_string(),
        };
        if b.is_empty() {
            return Err(bad("an object name cannot be empty"));
        }
        if b.len() > MAX_NAME {
            return Err(bad("longer than 255 bytes"));
        }
        if b.contains(&b'/') {
            return Err(bad("contains '/': an object name is one path component"));
        }
        if b.contains(&0) {
            return Err(bad("contains a NUL byte"));
        }
        if b == b"." || b == b".." {
            return Err(bad("'.' and '..' are not object names"));
        }
        Ok(ObjectName(n.to_os_string()))
    }

    pub fn as_os_str(&self) -> &OsStr {
        &self.0
    }

    /// The name as UTF-8, if it is.
    pub fn to_str(&self) -> Option<&str> {
        self.0.to_str()
    }
}

/// Shows the name lossily, with control characters escaped (one line, whatever the bytes).
impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", printable(&self.0.to_string_lossy()))
    }
}

impl fmt::Debug for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// One object found by [`Store::list`](super::Store::list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: ObjectName,
    /// Size in bytes.
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_component() {
        assert!(ObjectName::new("data.001").is_ok());
        assert!(ObjectName::new(OsStr::from_bytes(b"caf\xe9.001")).is_ok());
        assert!(ObjectName::new("name with spaces").is_ok());
        for bad in ["", ".", "..", "a/b", "/a", "a\0b"] {
            let e = ObjectName::new(bad).unwrap_err();
            assert!(matches!(e, StorageError::BadName { .. }), "{bad:?}: {e}");
        }
        assert!(ObjectName::new("x".repeat(255)).is_ok());
        let e = ObjectName::new("x".repeat(256)).unwrap_err().to_string();
        assert!(e.contains("255 bytes"), "{e}");
    }
}
