use proptest::prelude::*;

use super::keys::NUMBERS;
use super::*;

const SHIPPED: &str = include_str!("../../config.txt");

/// Parses `text` as file `t.txt` and returns the one-line error message.
fn error_of(text: &str) -> String {
    match Config::parse_str(text, "t.txt") {
        Ok(cfg) => panic!("expected an error for {text:?}, got {cfg:?}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that `text` fails on `line` naming `key`, with `msg_part` in the message.
fn assert_error(text: &str, line: usize, key: &str, msg_part: &str) {
    let msg = error_of(text);
    let prefix = format!("t.txt:{line}: {key}: ");
    assert!(
        msg.starts_with(&prefix),
        "{msg:?} should start with {prefix:?}"
    );
    assert!(
        msg.contains(msg_part),
        "{msg:?} should contain {msg_part:?}"
    );
    assert!(!msg.contains('\n'), "{msg:?} should be one line");
}

#[test]
fn shipped_config_equals_default() {
    assert_eq!(
        Config::parse_str(SHIPPED, "config.txt").unwrap(),
        Config::default()
    );
}

#[test]
fn shipped_config_sets_every_key_once() {
    for key in KEYS {
        let lines = SHIPPED
            .lines()
            .filter(|l| l.starts_with(&format!("{key} = ")));
        assert_eq!(lines.count(), 1, "config.txt must set {key} once");
    }
}

#[test]
fn shipped_config_states_each_range() {
    let lines: Vec<&str> = SHIPPED.lines().collect();
    for n in NUMBERS {
        let at = lines
            .iter()
            .position(|l| l.starts_with(&format!("{} = ", n.key)))
            .unwrap();
        let range = format!(" {}..={}.", n.show(n.min), n.show(n.max));
        assert!(
            lines[at - 1].contains(&range),
            "config.txt above {}: want {range:?}",
            n.key
        );
    }
}

#[test]
fn default_is_valid() {
    Config::default().validate().unwrap();
}

#[test]
fn every_key_is_known_and_every_number_listed() {
    let mut cfg = Config::default();
    for key in KEYS {
        let err = cfg.set(key, "\u{1}").unwrap_err().to_string();
        assert!(!err.contains("unknown key"), "{key}: {err}");
    }
    for n in NUMBERS {
        assert!(KEYS.contains(&n.key), "{} missing from KEYS", n.key);
    }
}

#[test]
fn every_number_holds_its_bounds() {
    for n in NUMBERS {
        for bound in [n.min, n.max] {
            let mut cfg = Config::default();
            cfg.set(n.key, &bound.to_string()).unwrap();
            assert_eq!((n.get)(&cfg), bound, "{} truncates {bound}", n.key);
        }
        let mut cfg = Config::default();
        assert!(
            cfg.set(n.key, &(n.max + 1).to_string()).is_err(),
            "{}",
            n.key
        );
        if n.min > 0 {
            assert!(
                cfg.set(n.key, &(n.min - 1).to_string()).is_err(),
                "{}",
                n.key
            );
        }
    }
}

#[test]
fn syntax_comments_whitespace_crlf_bom() {
    let text =
        "\u{FEFF}# full-line comment\r\n\n   HASH_LOG=20   # trailing\r\n\tGPU_DEVICE = card#2 \n";
    let cfg = Config::parse_str(text, "t.txt").unwrap();
    assert_eq!(cfg.hash_log, 20);
    assert_eq!(cfg.gpu_device, "card#2");
    assert_eq!(Config::parse_str("", "t.txt").unwrap(), Config::default());
}

#[test]
fn values_of_every_kind() {
    let text = "FORCE_CPU_MODE = Yes\nGPU_FALLBACK_ENABLED = off\nCODEC = LZ4\nPARITY = 10%\n\
                VOLUME_SIZE = 1TiB\nFRAME_SIZE = 16MiB\nCACHE_SIZE = 1g\nGPU_DEVICE = AUTO\n";
    let cfg = Config::parse_str(text, "t.txt").unwrap();
    assert!(cfg.force_cpu && !cfg.gpu_fallback);
    assert_eq!(cfg.codec, Codec::Lz4);
    assert_eq!((cfg.parity, cfg.volume_size), (10, 1 << 40));
    assert_eq!((cfg.frame_size, cfg.cache_size), (16 << 20, 1 << 30));
    assert_eq!(cfg.gpu_device, "auto");
}

#[test]
fn sizes() {
    for (s, n) in [
        ("123", 123),
        ("64K", 64 << 10),
        ("16m", 16 << 20),
        ("2G", 2 << 30),
        ("1T", 1 << 40),
    ] {
        assert_eq!(parse_size(s), Ok(n), "{s}");
    }
    for (s, n) in [
        ("16MiB", 16 << 20),
        ("16MB", 16 << 20),
        ("8 kib", 8 << 10),
        ("7B", 7),
    ] {
        assert_eq!(parse_size(s), Ok(n), "{s}");
    }
    for s in [
        "",
        " ",
        "-1",
        "1.5M",
        "0x10",
        "16Q",
        "M",
        "1 6",
        "+5",
        "18446744073709551616",
        "16777216T",
    ] {
        assert!(parse_size(s).is_err(), "{s:?} should be rejected");
    }
    assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
}

#[test]
fn error_unknown_key() {
    assert_error(
        "HASH_LOG = 12\nHASH_LOGG = 12\n",
        2,
        "HASH_LOGG",
        "unknown key",
    );
    assert_error("hash_log = 12\n", 1, "hash_log", "upper-case: HASH_LOG");
}

#[test]
fn error_bad_value() {
    assert_error(
        "\nFORCE_CPU_MODE = maybe\n",
        2,
        "FORCE_CPU_MODE",
        "not a boolean",
    );
    assert_error("HASH_LOG = 1.5\n", 1, "HASH_LOG", "not a whole number");
    assert_error("HASH_LOG = -3\n", 1, "HASH_LOG", "not a whole number");
    assert_error("CODEC = brotli\n", 1, "CODEC", "not a codec");
    assert_error("ZSTD_LEVEL = 20\n", 1, "ZSTD_LEVEL", "1..=19");
    assert_error("ZSTD_LEVEL = 0\n", 1, "ZSTD_LEVEL", "1..=19");
    assert_error("FRAME_SIZE = 4X\n", 1, "FRAME_SIZE", "not a size");
    assert_error(
        "GPU_DEVICE = a\u{7}b\n",
        1,
        "GPU_DEVICE",
        "control characters",
    );
    assert_error("HASH_LOG =\n", 1, "HASH_LOG", "missing value");
    assert_error(
        "HASH_LOG = # comment only\n",
        1,
        "HASH_LOG",
        "missing value",
    );
}

#[test]
fn error_out_of_range() {
    let text = format!("{}HASH_LOG = 30\n", "\n".repeat(11));
    assert_eq!(
        error_of(&text),
        "t.txt:12: HASH_LOG: 30 is out of range 10..=24"
    );
    assert_error(
        "FRAME_SIZE = 32M\n",
        1,
        "FRAME_SIZE",
        "32M is out of range 64K..=16M",
    );
    assert_error("PARITY = 101%\n", 1, "PARITY", "out of range");
    assert_error(
        "HASH_LOG = 99999999999999999999999\n",
        1,
        "HASH_LOG",
        "too large",
    );
    assert_error("GPU_DEVICE = 99999999999\n", 1, "GPU_DEVICE", "too large");
}

#[test]
fn error_duplicate_key() {
    assert_error(
        "HASH_LOG = 12\n# x\nHASH_LOG = 12\n",
        3,
        "HASH_LOG",
        "given twice (first on line 1)",
    );
}

#[test]
fn error_malformed_line() {
    assert_error(
        "HASH_LOG = 12\nHASH_LOG 12\n",
        2,
        "HASH_LOG 12",
        "not a KEY = VALUE line",
    );
    assert_error("= 12\n", 1, "(no key)", "not a KEY = VALUE line");
}

#[test]
fn error_not_utf8() {
    let err = |bytes: &[u8]| file::parse(bytes, "t.txt").unwrap_err().to_string();
    assert_eq!(
        err(b"HASH_LOG = 12\nGPU_DEVICE = \xff\n"),
        "t.txt:2: GPU_DEVICE: value is not valid UTF-8"
    );
    assert!(err(b"\n\nKE\xffY = 1\n").starts_with("t.txt:3: KE\\xffY: line is not valid UTF-8"));
    // A non-UTF-8 comment is only a comment.
    assert!(file::parse(b"# caf\xe9\nHASH_LOG = 12 # \xe9\n", "t.txt").is_ok());
}

#[test]
fn error_cross_field_names_later_key() {
    let text = "CHUNK_MAX_SIZE = 8M\n\nFRAME_SIZE = 4M\n";
    assert_eq!(
        error_of(text),
        "t.txt:3: FRAME_SIZE: 4M must be at least CHUNK_MAX_SIZE (8M)"
    );
    let text = "FRAME_SIZE = 1M\nCHUNK_MAX_SIZE = 2M\n";
    assert_eq!(
        error_of(text),
        "t.txt:2: CHUNK_MAX_SIZE: 2M must not exceed FRAME_SIZE (1M)"
    );
    // Only one key in the file: that one is named.
    assert_error(
        "CHUNK_MIN_SIZE = 128K\n",
        1,
        "CHUNK_MIN_SIZE",
        "must not exceed CHUNK_AVG_SIZE (64K)",
    );
    assert_error(
        "CACHE_SIZE = 1M\n",
        1,
        "CACHE_SIZE",
        "must be at least FRAME_SIZE (4M)",
    );
}

#[test]
fn validate_after_overrides() {
    let mut cfg = Config::default();
    cfg.set("CHUNK_AVG_SIZE", "8K").unwrap();
    assert_eq!(
        cfg.validate().unwrap_err().to_string(),
        "CHUNK_MIN_SIZE: 16K must not exceed CHUNK_AVG_SIZE (8K)"
    );
    let cfg = Config {
        hash_log: 40,
        ..Config::default()
    };
    assert_eq!(
        cfg.validate().unwrap_err().to_string(),
        "HASH_LOG: 40 is out of range 10..=24"
    );
    let cfg = Config {
        gpu_device: String::new(),
        ..Config::default()
    };
    assert!(cfg
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("GPU_DEVICE: "));
}

#[test]
fn hostile_lines_give_short_messages() {
    let long = format!("{} = 1\n", "K".repeat(1 << 20));
    assert!(error_of(&long).len() < 200);
    let long = format!("GPU_DEVICE = {}\n", "x".repeat(1 << 20));
    assert!(error_of(&long).len() < 200);
    assert_error("HASH\0LOG = 1\n", 1, "HASH\\0LOG", "unknown key");
    assert_error("HASH_LOG = 1\0\n", 1, "HASH_LOG", "not a whole number");
}

#[test]
fn load_reads_a_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.txt");
    std::fs::write(&path, b"HASH_LOG = 12\nNOPE = 1\n").unwrap();
    let msg = Config::load(&path).unwrap_err().to_string();
    assert_eq!(msg, format!("{}:2: NOPE: unknown key", path.display()));
    std::fs::write(&path, vec![b'\n'; (MAX_FILE_BYTES + 1) as usize]).unwrap();
    assert!(Config::load(&path).is_err());
    assert!(matches!(
        Config::load(&dir.path().join("missing")),
        Err(Error::Io { .. })
    ));
}

/// Issue 14 (decided): `--config` naming a FIFO hung waiting for a writer; anything but a regular file
/// is refused at once, naming it.
#[test]
fn load_refuses_what_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    crate::sys::mknod(&fifo, libc::S_IFIFO, 0o644, 0).unwrap();
    for p in [fifo.as_path(), dir.path(), Path::new("/dev/null")] {
        let msg = Config::load(p).unwrap_err().to_string();
        assert!(msg.contains("not a regular file"), "{msg}");
    }
}

proptest! {
    /// Any text gives a valid config or one error line naming the file.
    #[test]
    fn random_text_gives_a_valid_config_or_one_line(text in "\\PC*") {
        match Config::parse_str(&text, "t.txt") {
            Ok(cfg) => prop_assert!(cfg.validate().is_ok()),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with("t.txt:"), "{}", msg);
                prop_assert!(!msg.contains('\n'), "{}", msg);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = file::parse(&bytes, "t.txt") {
            prop_assert!(!e.to_string().contains('\n'));
        }
    }

    /// A value means the same in a file and as an override: both accept it and give the same config,
    /// or both refuse it, the file naming line 1 and the key.
    #[test]
    fn random_values_mean_the_same_in_a_file_and_set(
        key in proptest::sample::select(KEYS),
        value in "[^#\n]{0,40}",
    ) {
        let from_file = Config::parse_str(&format!("{key} = {value}\n"), "t.txt");
        let mut cfg = Config::default();
        let direct = cfg.set(key, &value).and_then(|()| cfg.validate());
        match (from_file, direct) {
            (Ok(f), Ok(())) => prop_assert_eq!(f, cfg),
            (Err(e), Err(_)) => {
                let msg = e.to_string();
                prop_assert!(msg.starts_with(&format!("t.txt:1: {key}: ")), "{}", msg);
            }
            (f, d) => prop_assert!(false, "{:?} = {:?}: file {:?}, set {:?}", key, value, f, d),
        }
    }

    #[test]
    fn sizes_roundtrip(n in any::<u64>()) {
        prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
        prop_assert_eq!(parse_size(&value::fmt_size(n)), Ok(n));
    }
}

#[test]
fn cache_size_counts_as_given_even_at_the_default_value() {
    let mut cfg = Config::default();
    assert!(!cfg.cache_size_given);
    cfg.set("CACHE_SIZE", "256M").unwrap();
    assert_eq!(cfg.cache_size, Config::default().cache_size);
    assert!(
        cfg.cache_size_given,
        "a mount must keep a CACHE_SIZE the user wrote, even 256M"
    );
    cfg.set("CACHE_SIZE", "auto").unwrap();
    assert_eq!(cfg, Config::default());
}

/// A small input's frames are a 32nd of it, never below the small frame size; an input of 32 ×
/// LARGE_FRAME_SIZE or more keeps the configured sizes; the sizes given are never raised.
#[test]
fn small_inputs_get_frames_for_sixteen_threads_twice_over() {
    let d = Config::default();
    let (small, normal, large) = d.frame_limits();
    assert_eq!((small, normal, large), (1 << 20, 4 << 20, 16 << 20));
    let fitted = |input: u64| {
        let mut c = Config::default();
        c.fit_input(input);
        c.frame_limits()
    };
    assert_eq!(fitted(40 << 20), (small, 40 << 15, 40 << 15));
    assert_eq!(
        fitted(3 << 20),
        (small, small, small),
        "not below the small frames"
    );
    assert_eq!(fitted(0), (small, small, small));
    assert_eq!(fitted(200 << 20), (small, normal, 200 << 15));
    assert_eq!(fitted(256 << 20), (small, normal, 256 << 15));
    assert_eq!(fitted(512 << 20), (small, normal, large));
    assert_eq!(fitted(u64::MAX), (small, normal, large), "never raised");
    let mut c = Config {
        frame_size: 256 << 10,
        small_frame_size: 64 << 10,
        large_frame_size: 512 << 10,
        chunk_max: 64 << 10,
        ..Config::default()
    };
    c.fit_input(4 << 20);
    assert_eq!(c.frame_limits(), (64 << 10, 128 << 10, 128 << 10));
}
