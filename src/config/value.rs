//! Value syntax of config.txt and of CLI overrides: sizes, counts, booleans, and the short, escaped form
//! in which a hostile value is quoted back in an error message.

/// Longest piece of user text quoted in an error message, in characters.
const SHOWN_MAX: usize = 40;

/// Parses a byte size: digits with an optional binary unit `K`, `M`, `G` or `T` (×1024 each step),
/// case-insensitive, optionally followed by `B` or `iB` (`16M`, `16MB`, `16MiB`, `123`, `123B`).
/// Whitespace may separate the number and the unit. Rejects empty, negative, fractional, overflowing
/// and any other text.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "{} is not a size (like 4096, 64K, 16M, 2G)",
            shown(s)
        ));
    }
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "{} is not a size (like 4096, 64K, 16M, 2G)",
                shown(s)
            ))
        }
    };
    let n = parse_digits(digits).ok_or_else(|| format!("{} is too large", shown(s)))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{} is too large", shown(s)))
}

/// Parses a plain non-negative decimal count (digits only: no sign, no unit, no fraction).
pub fn parse_count(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{} is not a whole number", shown(s)));
    }
    parse_digits(s).ok_or_else(|| format!("{} is too large", shown(s)))
}

/// Parses `true/false/1/0/yes/no/on/off`, case-insensitive.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{} is not a boolean (true/false, 1/0, yes/no, on/off)",
            shown(s.trim())
        )),
    }
}

/// ASCII digits → u64; `None` on overflow. The caller has checked that `s` is all digits.
fn parse_digits(s: &str) -> Option<u64> {
    s.bytes().try_fold(0u64, |n, b| {
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// A size in the largest binary unit that divides it exactly: `65536` → `64K`, `1000` → `1000`.
pub fn fmt_size(n: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if n != 0 && n % (1u64 << shift) == 0 {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// User text as quoted in an error message: control and non-printing characters escaped, cut to
/// [`SHOWN_MAX`] characters so that a megabyte-long line still gives a one-line message.
pub fn shown(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == SHOWN_MAX {
            out.push('…');
            break;
        }
        match c {
            '"' | '\'' | '\\' => out.push(c),
            _ => out.extend(c.escape_debug()),
        }
    }
    if out.is_empty() {
        out.push_str("(empty)");
    }
    out
}

/// [`shown`] for bytes that may not be UTF-8: invalid bytes appear as `\xNN`.
pub fn shown_bytes(b: &[u8]) -> String {
    let mut text = String::new();
    for chunk in b.utf8_chunks() {
        text.push_str(chunk.valid());
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    shown(text.trim())
}
