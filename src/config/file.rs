//! The line syntax of config.txt: `KEY = VALUE` lines, `#` comments (a whole line, or trailing after
//! whitespace), blank lines; whitespace around keys and values is ignored, CRLF line ends and a leading
//! UTF-8 BOM are accepted. Every error names the file, the 1-based line and the key.
//!
//! The parser works on bytes: comments are cut before decoding, so a Latin-1 comment is harmless, while
//! a non-UTF-8 key or value is an error naming its line.

use std::collections::HashMap;

use super::keys::KEYS;
use super::value::{shown, shown_bytes};
use super::{Config, Invalid};
use crate::error::{Error, Result};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses and validates a whole config file, starting from `Config::default()`.
pub fn parse(bytes: &[u8], file: &str) -> Result<Config> {
    let err = |line: usize, key: &str, msg: String| Error::Config {
        file: file.to_string(),
        line,
        key: key.to_string(),
        msg,
    };
    let mut cfg = Config::default();
    // Line on which each key was set, for duplicates and for cross-field errors.
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let Some((key, value)) = split_line(raw).map_err(|(key, msg)| err(line, &key, msg))? else {
            continue;
        };
        let Some(&known) = KEYS.iter().find(|k| **k == key) else {
            return Err(err(line, &shown(key), unknown_key(key)));
        };
        if let Some(first) = seen.insert(known, line) {
            return Err(err(
                line,
                known,
                format!("given twice (first on line {first})"),
            ));
        }
        cfg.set_value(known, value)
            .map_err(|msg| err(line, known, msg))?;
    }
    cfg.check().map_err(|invalid| {
        // Name the key set last in the file: it is the one that broke the rule.
        let key = (invalid.keys().into_iter())
            .max_by_key(|k| seen.get(k).copied().unwrap_or(0))
            .unwrap_or("?");
        let line = seen.get(key).copied().unwrap_or(0);
        err(line, key, invalid.message(key))
    })?;
    Ok(cfg)
}

/// One raw line → `None` for a blank or comment line, else the trimmed key and value.
/// The error is (key as shown in the message, message).
fn split_line(raw: &[u8]) -> std::result::Result<Option<(&str, &str)>, (String, String)> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let raw = strip_comment(raw);
    let text = match std::str::from_utf8(raw) {
        Ok(text) => text.trim(),
        Err(_) => return Err(not_utf8(raw)),
    };
    if text.is_empty() {
        return Ok(None);
    }
    let Some((key, value)) = text.split_once('=') else {
        return Err((shown(text), "not a KEY = VALUE line".into()));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(("(no key)".into(), "not a KEY = VALUE line".into()));
    }
    Ok(Some((key, value.trim())))
}

/// Cuts a `#` comment: one at the start of the line or after a space or tab. A `#` inside a value
/// (`GPU_DEVICE = card#2`) stays. `#` is ASCII, so this is safe before UTF-8 decoding.
fn strip_comment(raw: &[u8]) -> &[u8] {
    let mut after_space = true;
    for (i, &b) in raw.iter().enumerate() {
        if b == b'#' && after_space {
            return &raw[..i];
        }
        after_space = b == b' ' || b == b'\t';
    }
    raw
}

/// The error for a line that is not UTF-8: it names the key when the key itself is readable.
fn not_utf8(raw: &[u8]) -> (String, String) {
    let key_part = raw.split(|&b| b == b'=').next().unwrap_or(raw);
    match std::str::from_utf8(key_part).map(str::trim) {
        Ok(key) if KEYS.contains(&key) && key_part.len() < raw.len() => {
            (key.to_string(), "value is not valid UTF-8".into())
        }
        _ => (shown_bytes(key_part), "line is not valid UTF-8".into()),
    }
}

/// The message for an unknown key, with a hint when only the case is wrong.
pub fn unknown_key(key: &str) -> String {
    let upper = key.to_ascii_uppercase();
    match KEYS.iter().find(|k| **k == upper) {
        Some(k) => format!("unknown key (keys are upper-case: {k})"),
        None => "unknown key".into(),
    }
}

impl Invalid {
    /// The keys this problem concerns.
    fn keys(&self) -> [&'static str; 2] {
        match self {
            Invalid::Value { key, .. } => [key, key],
            Invalid::Order { low, high, .. } => [low, high],
        }
    }
}
