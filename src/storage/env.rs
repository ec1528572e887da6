//! The one place where the library reads the environment: S3 settings the way AWS tools take them.
//!
//! | setting      | taken from, first found wins                                                           |
//! |--------------|----------------------------------------------------------------------------------------|
//! | credentials  | `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`); else the profile's `aws_access_key_id` / `aws_secret_access_key` / `aws_session_token` in the credentials file, then in the config file |
//! | profile      | `AWS_PROFILE`, `AWS_DEFAULT_PROFILE`, else `default`                                   |
//! | files        | `AWS_SHARED_CREDENTIALS_FILE` (else `~/.aws/credentials`), `AWS_CONFIG_FILE` (else `~/.aws/config`, sections `[default]` / `[profile NAME]`) |
//! | region       | `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1`           |
//! | endpoint     | `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's `s3 = endpoint_url` or `endpoint_url`, else AWS (all skipped with `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`) |
//! | addressing   | `CLC_S3_ADDRESSING` (`path` or `virtual`), the profile's `s3 = addressing_style`, else path-style with an endpoint (self-hosted stores) and virtual-hosted on AWS |
//! | plain HTTP   | always to loopback; elsewhere only with `CLC_S3_ALLOW_HTTP=1`                          |
//! | uploads      | `CLC_S3_PART_MIB` (multipart part size, 5-5120, default 5), `CLC_S3_PARTS_IN_FLIGHT` (1-64, default 4), `CLC_S3_STREAM_PARTS` (0: send each part whole once full; default 1); `CLC_S3_EARLY_VOLUMES` (0: no early cut of a small archive's volumes, [`early_volumes`]; default 1) |
//!
//! An empty variable counts as unset. There is no fallback to instance metadata or other network
//! sources: without credentials, opening an S3 location is one clear error.

use super::s3::{Addressing, Credentials, S3Config};
use super::{Result, StorageError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Profile files larger than this are refused (they are a few lines).
const MAX_PROFILE_FILE: u64 = 1 << 20;

/// S3 settings from this process's environment and `$HOME/.aws`.
pub fn s3_config() -> Result<S3Config> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    s3_config_from(&|k| std::env::var(k).ok(), home.as_deref())
}

/// Whether a pack into a bucket cuts a small archive's volumes early (`archive::writer::EARLY_VOLUME`):
/// unless `CLC_S3_EARLY_VOLUMES=0`.
pub fn early_volumes() -> bool {
    std::env::var_os("CLC_S3_EARLY_VOLUMES").is_none_or(|v| v != "0")
}

/// S3 settings from the variables `var` gives and the profile files under `home` (for tests).
pub fn s3_config_from(
    var: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<S3Config> {
    let var = |k: &str| var(k).filter(|v| !v.is_empty());
    let named = var("AWS_PROFILE").or_else(|| var("AWS_DEFAULT_PROFILE"));
    let profile_name = named.clone().unwrap_or_else(|| "default".into());
    let file = |env: &str, rel: &str| {
        var(env)
            .map(PathBuf::from)
            .or_else(|| home.map(|h| h.join(rel)))
    };
    let creds_file = file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    let config_file = file("AWS_CONFIG_FILE", ".aws/config");
    let from_creds = read_profile(creds_file.as_deref(), &profile_name, false)?;
    let from_config = read_profile(config_file.as_deref(), &profile_name, true)?;
    if let (Some(n), None, None) = (&named, &from_creds, &from_config) {
        return Err(StorageError::Config {
            setting: format!("AWS_PROFILE={n}"),
            msg: format!(
                "no such profile in {} or {}",
                shown(creds_file.as_deref()),
                shown(config_file.as_deref())
            ),
        });
    }
    let empty = HashMap::new();
    let pc = from_creds.as_ref().unwrap_or(&empty);
    let pf = from_config.as_ref().unwrap_or(&empty);
    let prof = |k: &str| pc.get(k).or_else(|| pf.get(k)).cloned();

    let credentials = credentials(&var, &prof, &profile_name)?;
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .or_else(|| prof("region"))
        .unwrap_or_else(|| "us-east-1".into());
    let endpoint = if var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").as_deref() == Some("true") {
        None
    } else {
        var("AWS_ENDPOINT_URL_S3")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or_else(|| prof("s3.endpoint_url"))
            .or_else(|| prof("endpoint_url"))
            .map(|e| e.trim_end_matches('/').to_string())
    };
    let mut cfg = S3Config::new(endpoint, &region, credentials);
    let style = var("CLC_S3_ADDRESSING")
        .map(|v| ("CLC_S3_ADDRESSING".to_string(), v))
        .or_else(|| {
            prof("s3.addressing_style")
                .map(|v| (format!("profile {profile_name}: addressing_style"), v))
        });
    if let Some((setting, v)) = style {
        cfg.addressing = match v.as_str() {
            "path" => Addressing::Path,
            "virtual" => Addressing::VirtualHosted,
            "auto" => cfg.addressing,
            _ => {
                return Err(StorageError::Config {
                    setting,
                    msg: format!("{v:?} is not path, virtual or auto"),
                })
            }
        };
    }
    cfg.allow_http_anywhere = zero_or_one(var("CLC_S3_ALLOW_HTTP"), "CLC_S3_ALLOW_HTTP", false)?;
    cfg.stream_parts = zero_or_one(var("CLC_S3_STREAM_PARTS"), "CLC_S3_STREAM_PARTS", true)?;
    if let Some(v) = var("CLC_S3_PART_MIB") {
        cfg.part_size = whole_in(&v, 5..=5120, "CLC_S3_PART_MIB", "MiB")? << 20;
    }
    if let Some(v) = var("CLC_S3_PARTS_IN_FLIGHT") {
        cfg.parts_in_flight = whole_in(&v, 1..=64, "CLC_S3_PARTS_IN_FLIGHT", "parts")?;
    }
    Ok(cfg)
}

/// A 0/1 switch `name` (`default` when unset).
fn zero_or_one(v: Option<String>, name: &str, default: bool) -> Result<bool> {
    match v.as_deref() {
        None => Ok(default),
        Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(v) => Err(StorageError::Config {
            setting: name.into(),
            msg: format!("{v:?} is not 0 or 1"),
        }),
    }
}

/// `v` as a whole number within `range`, or the setting's error.
fn whole_in(
    v: &str,
    range: std::ops::RangeInclusive<usize>,
    setting: &str,
    unit: &str,
) -> Result<usize> {
    v.parse::<usize>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| StorageError::Config {
            setting: setting.into(),
            msg: format!(
                "{v:?} is not a whole number of {unit} from {} to {}",
                range.start(),
                range.end()
            ),
        })
}

fn credentials(
    var: &dyn Fn(&str) -> Option<String>,
    prof: &dyn Fn(&str) -> Option<String>,
    profile: &str,
) -> Result<Credentials> {
    match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(key_id), Some(secret)) => {
            return Ok(Credentials {
                key_id,
                secret,
                session_token: var("AWS_SESSION_TOKEN"),
            })
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(StorageError::Config {
                setting: "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY".into(),
                msg: "only one of the two is set".into(),
            })
        }
        (None, None) => {}
    }
    match (prof("aws_access_key_id"), prof("aws_secret_access_key")) {
        (Some(key_id), Some(secret)) => Ok(Credentials {
            key_id,
            secret,
            session_token: prof("aws_session_token"),
        }),
        (Some(_), None) | (None, Some(_)) => Err(StorageError::Config {
            setting: format!("profile {profile}"),
            msg: "has only one of aws_access_key_id and aws_secret_access_key".into(),
        }),
        (None, None) => {
            let other = [
                "role_arn",
                "credential_process",
                "sso_start_url",
                "sso_session",
            ]
            .into_iter()
            .find(|k| prof(k).is_some());
            Err(StorageError::Config {
                setting: "S3 credentials".into(),
                msg: match other {
                    Some(k) => format!(
                        "profile {profile} uses {k}, which clc does not support: export AWS_ACCESS_KEY_ID, \
                         AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN instead (aws configure export-credentials)"
                    ),
                    None => "none found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE \
                             with a profile in ~/.aws/credentials"
                        .into(),
                },
            })
        }
    }
}

fn shown(p: Option<&Path>) -> String {
    p.map_or_else(|| "(no HOME)".into(), |p| p.display().to_string())
}

/// The keys of `profile` in an AWS profile file (`None`: no such file or section). In the config file
/// (`config = true`) sections are `[default]` and `[profile NAME]`; in the credentials file `[NAME]`.
/// A nested block (`s3 =` followed by indented `key = value` lines) gives keys `s3.key`.
fn read_profile(
    path: Option<&Path>,
    profile: &str,
    config: bool,
) -> Result<Option<HashMap<String, String>>> {
    let Some(path) = path else { return Ok(None) };
    let err = |line: usize, msg: &str| StorageError::Config {
        setting: if line == 0 {
            path.display().to_string()
        } else {
            format!("{}:{line}", path.display())
        },
        msg: msg.to_string(),
    };
    let text = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(path.display().to_string(), e)),
        Ok(m) if !m.is_file() => return Err(err(0, "not a regular file")),
        Ok(m) if m.len() > MAX_PROFILE_FILE => return Err(err(0, "larger than 1 MiB")),
        Ok(_) => {
            std::fs::read(path).map_err(|e| StorageError::io(path.display().to_string(), e))?
        }
    };
    let text = String::from_utf8(text).map_err(|_| err(0, "not UTF-8"))?;
    let want = if config && profile != "default" {
        format!("profile {profile}")
    } else {
        profile.to_string()
    };
    let mut found: Option<HashMap<String, String>> = None;
    let mut in_section = false;
    let mut nested: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(sec) = line.strip_prefix('[') {
            let sec = sec
                .strip_suffix(']')
                .ok_or_else(|| err(i + 1, "a section header is [NAME]"))?;
            let sec = sec.split_whitespace().collect::<Vec<_>>().join(" ");
            in_section = sec == want;
            nested = None;
            if in_section {
                found.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| err(i + 1, "expected `key = value` or [section]"))?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
        let indented = raw.starts_with([' ', '\t']);
        if !in_section {
            continue;
        }
        let map = found.get_or_insert_with(HashMap::new);
        match (&nested, indented) {
            (Some(parent), true) => {
                map.insert(format!("{parent}.{k}"), v);
            }
            _ if v.is_empty() => nested = Some(k),
            _ => {
                nested = None;
                map.insert(k, v);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn environment_variables_win() {
        let v = vars(&[
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
            ("AWS_SESSION_TOKEN", ""),
            ("AWS_REGION", "eu-west-3"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:8333/"),
        ]);
        let c = s3_config_from(&v, None).unwrap();
        assert_eq!(c.credentials.key_id, "AK");
        assert_eq!(c.credentials.secret, "SK");
        assert_eq!(c.credentials.session_token, None);
        assert_eq!(c.region, "eu-west-3");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!(c.addressing, Addressing::Path);
        assert!(c.validate().unwrap());
    }

    #[test]
    fn missing_or_half_credentials_are_one_clear_error() {
        let e = s3_config_from(&vars(&[]), None).unwrap_err().to_string();
        assert!(
            e.contains("AWS_ACCESS_KEY_ID") && e.contains("AWS_PROFILE"),
            "{e}"
        );
        let e = s3_config_from(&vars(&[("AWS_ACCESS_KEY_ID", "AK")]), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("only one of the two"), "{e}");
        let e = s3_config_from(&vars(&[("AWS_PROFILE", "nope")]), None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("AWS_PROFILE=nope: no such profile"), "{e}");
    }

    #[test]
    fn profiles_from_the_aws_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".aws")).unwrap();
        std::fs::write(
            d.path().join(".aws/credentials"),
            "# comment\n[default]\naws_access_key_id = DK\naws_secret_access_key = DS\n\n\
             [work]\naws_access_key_id=WK\naws_secret_access_key = WS\naws_session_token = WT\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join(".aws/config"),
            "[default]\nregion = us-west-2\n[profile work]\nregion = eu-central-1\n\
             s3 =\n  addressing_style = virtual\n  endpoint_url = https://s3.example.net\n\
             [profile sso]\nsso_session = corp\n",
        )
        .unwrap();
        let h = Some(d.path());
        let c = s3_config_from(&vars(&[]), h).unwrap();
        assert_eq!(
            (c.credentials.key_id.as_str(), c.region.as_str()),
            ("DK", "us-west-2")
        );
        assert_eq!(c.endpoint, None);
        assert_eq!(c.addressing, Addressing::VirtualHosted);
        let c = s3_config_from(&vars(&[("AWS_PROFILE", "work")]), h).unwrap();
        assert_eq!(c.credentials.key_id, "WK");
        assert_eq!(c.credentials.session_token.as_deref(), Some("WT"));
        assert_eq!(c.region, "eu-central-1");
        assert_eq!(c.endpoint.as_deref(), Some("https://s3.example.net"));
        assert_eq!(c.addressing, Addressing::VirtualHosted);
        // Variables beat the profile; CLC_S3_ADDRESSING beats addressing_style.
        let c = s3_config_from(
            &vars(&[
                ("AWS_PROFILE", "work"),
                ("AWS_REGION", "ap-south-1"),
                ("CLC_S3_ADDRESSING", "path"),
            ]),
            h,
        )
        .unwrap();
        assert_eq!(
            (c.region.as_str(), c.addressing),
            ("ap-south-1", Addressing::Path)
        );
        let e = s3_config_from(&vars(&[("AWS_PROFILE", "sso")]), h)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sso_session") && e.contains("export-credentials"),
            "{e}"
        );
        let c = s3_config_from(
            &vars(&[("CLC_S3_PART_MIB", "12"), ("CLC_S3_PARTS_IN_FLIGHT", "8")]),
            h,
        )
        .unwrap();
        assert_eq!((c.part_size, c.parts_in_flight), (12 << 20, 8));
        assert!(c.stream_parts, "parts are streamed by default");
        let c = s3_config_from(&vars(&[("CLC_S3_STREAM_PARTS", "0")]), h).unwrap();
        assert!(!c.stream_parts);
        for (k, v) in [
            ("CLC_S3_PART_MIB", "4"),
            ("CLC_S3_PART_MIB", "8M"),
            ("CLC_S3_PARTS_IN_FLIGHT", "0"),
            ("CLC_S3_STREAM_PARTS", "yes"),
        ] {
            let e = s3_config_from(&vars(&[(k, v)]), h).unwrap_err().to_string();
            assert!(e.contains(k) && e.contains(v), "{e}");
        }
        let e = s3_config_from(&vars(&[("CLC_S3_ADDRESSING", "sideways")]), h)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("CLC_S3_ADDRESSING: "), "{e}");
    }

    #[test]
    fn malformed_profile_files_name_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("creds");
        std::fs::write(&f, "[default]\naws_access_key_id\n").unwrap();
        let v = vars(&[("AWS_SHARED_CREDENTIALS_FILE", f.to_str().unwrap())]);
        let e = s3_config_from(&v, None).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:2: ", f.display())), "{e}");
        std::fs::write(&f, "[default\n").unwrap();
        let e = s3_config_from(&v, None).unwrap_err().to_string();
        assert!(e.contains(":1: "), "{e}");
    }
}
