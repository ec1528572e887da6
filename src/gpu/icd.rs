//! Which OpenCL drivers are loaded. The ICD loader loads every driver listed in its vendors directory
//! (`/etc/OpenCL/vendors/*.icd`, or `$OCL_ICD_VENDORS`) on the first OpenCL call, and each one costs
//! start-up time and memory (PoCL: about 40 ms and 55 MiB; NVIDIA's: most of a second for its
//! device probe) whether it has a device the run wants or not. So when `GPU_DEVICE` asks for GPUs
//! (`auto`, `all`) or names a device, only the drivers that have such a device are loaded.
//!
//! What each driver offers is learnt once, by loading it alone in a child process (`clc` run with
//! `CLC_PROBE_ICD` set, see [`probe_child_main`]) and kept in `<cache>/clc/opencl-icds.txt`, keyed by
//! the `.icd` files and the size and modification time of the libraries they name: installing,
//! removing or updating a driver probes again. The chosen drivers' `.icd` files are copied into a
//! directory of their own under the cache, and `OCL_ICD_VENDORS` points there before OpenCL is
//! first loaded (ocl-icd and the Khronos loader both read it). A user who sets `OCL_ICD_VENDORS` or
//! `OCL_ICD_FILENAMES` keeps them, and without a cache, or in a program that is not `clc` (tests,
//! benches), every driver is loaded as before: restricting is only ever an optimisation.

use std::path::{Path, PathBuf};

/// Set in the environment of the child that probes one driver.
const PROBE_ENV: &str = "CLC_PROBE_ICD";

/// One `.icd` file and the library it names.
struct Icd {
    file: PathBuf,
    lib: String,
}

fn vendors_dir() -> PathBuf {
    PathBuf::from("/etc/OpenCL/vendors")
}

fn list_icds(dir: &Path) -> Vec<Icd> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Icd> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "icd"))
        .filter_map(|file| {
            let lib = std::fs::read_to_string(&file).ok()?.trim().to_string();
            (!lib.is_empty()).then_some(Icd { file, lib })
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// Size and mtime of a driver library (searched in the usual directories when the name is bare).
fn lib_stamp(lib: &str) -> String {
    let p = Path::new(lib);
    let candidates: Vec<PathBuf> = if p.is_absolute() {
        vec![p.to_path_buf()]
    } else {
        [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/local/lib",
            "/usr/lib/aarch64-linux-gnu",
        ]
        .iter()
        .map(|d| Path::new(d).join(lib))
        .collect()
    };
    for c in candidates {
        if let Ok(m) = std::fs::metadata(&c) {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            return format!("{}:{}:{t}", c.display(), m.len());
        }
    }
    format!("{lib}:?")
}

/// One device of a driver, as the child reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    platform: String,
    kind: String,
    name: String,
    compute_units: u32,
}

/// Runs the probe child for `icd`; None if it could not run or said nothing parseable.
fn probe(icd: &Icd, scratch: &Path) -> Option<Vec<Seen>> {
    let exe = std::env::current_exe().ok()?;
    if exe.file_stem().is_none_or(|s| s != "clc") {
        return None;
    }
    let dir = scratch.join(format!("probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let copy = dir.join(icd.file.file_name()?);
    std::fs::copy(&icd.file, &copy).ok()?;
    let out = std::process::Command::new(exe)
        .env(PROBE_ENV, "1")
        .env("OCL_ICD_VENDORS", &dir)
        .env_remove("OCL_ICD_FILENAMES")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut seen = Vec::new();
    let mut done = false;
    for line in text.lines() {
        if line == "end" {
            done = true;
            break;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if let [platform, kind, name, cus] = f[..] {
            seen.push(Seen {
                platform: platform.into(),
                kind: kind.into(),
                name: name.into(),
                compute_units: cus.parse().unwrap_or(0),
            });
        }
    }
    done.then_some(seen)
}

/// The child's side: lists the devices of the one driver it was given and exits. Called first thing
/// by `main`; returns without doing anything unless `CLC_PROBE_ICD` is set.
pub fn probe_child_main() {
    if std::env::var_os(PROBE_ENV).is_none() {
        return;
    }
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    if let Ok(devs) = super::list_devices() {
        for d in devs {
            println!(
                "{}\t{}\t{}\t{}",
                clean(&d.platform),
                clean(&d.kind),
                clean(&d.name),
                d.compute_units
            );
        }
    }
    println!("end");
    std::process::exit(0);
}

/// Whether a device of this kind and name is one that `sel` can pick without knowing the numbering.
fn wanted(sel: &str, s: &Seen) -> Option<bool> {
    let sel = sel.trim().to_ascii_lowercase();
    match sel.as_str() {
        "auto" | "" | "all" => Some(s.kind == "GPU"),
        x if x
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == ' ') =>
        {
            None
        }
        x => Some(
            s.name.to_ascii_lowercase().contains(x) || s.platform.to_ascii_lowercase().contains(x),
        ),
    }
}

/// The drivers, what each offers (probed once, then from the table), the table's key and the cache
/// directory; None when the user chose the drivers, there is no cache or a probe failed.
#[allow(clippy::type_complexity)]
fn known() -> Option<(Vec<Icd>, Vec<Vec<Seen>>, String, PathBuf)> {
    if std::env::var_os("OCL_ICD_VENDORS").is_some()
        || std::env::var_os("OCL_ICD_FILENAMES").is_some()
        || std::env::var_os(PROBE_ENV).is_some()
    {
        return None;
    }
    let base = super::program::cache_dir().and_then(|k| k.parent().map(Path::to_path_buf))?;
    let icds = list_icds(&vendors_dir());
    if icds.is_empty() {
        return None;
    }
    let mut key_src = String::from("clc-icds-v1\n");
    for i in &icds {
        key_src += &format!("{}\t{}\t{}\n", i.file.display(), i.lib, lib_stamp(&i.lib));
    }
    let key = blake3::hash(key_src.as_bytes()).to_hex()[..32].to_string();
    let table = base.join("opencl-icds.txt");
    let mut known = read_table(&table, &key);
    if known.len() != icds.len() {
        let probed: Option<Vec<Vec<Seen>>> = icds.iter().map(|i| probe(i, &base)).collect();
        let probed = probed?;
        write_table(&table, &key, &icds, &probed);
        known = probed;
    }
    Some((icds, known, key, base))
}

/// Compute units of the GPU-type devices every driver offers, from the probe table (None: unknown,
/// e.g. no cache). Lets `GPU_DEVICE = auto` weigh the GPUs against the CPU without loading OpenCL.
pub fn gpu_compute_units() -> Option<u64> {
    let (_, known, _, _) = known()?;
    Some(
        known
            .iter()
            .flatten()
            .filter(|s| s.kind == "GPU")
            .map(|s| u64::from(s.compute_units))
            .sum(),
    )
}

/// Before OpenCL is first loaded: points `OCL_ICD_VENDORS` at the drivers that `sel` needs. Returns
/// false when no driver has a device `sel` could pick (the caller then need not load OpenCL at all).
pub(crate) fn prepare(sel: &str) -> bool {
    let Some((icds, known, key, base)) = known() else {
        return true;
    };
    // A driver is needed if one of its devices may be picked; an index selection needs them all.
    let mut need = Vec::new();
    for (icd, seen) in icds.iter().zip(&known) {
        let mut any = false;
        for s in seen.iter() {
            match wanted(sel, s) {
                None => return true,
                Some(w) => any |= w,
            }
        }
        if any {
            need.push(icd);
        }
    }
    let all = sel.trim().eq_ignore_ascii_case("all");
    if need.len() == icds.len() || (need.is_empty() && all) {
        return true; // "all" without any GPU means every device
    }
    if need.is_empty() {
        return false;
    }
    let names: Vec<String> = need
        .iter()
        .filter_map(|i| i.file.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let dir = base.join(format!(
        "icd-{}",
        &blake3::hash(format!("{key}\n{}", names.join("\n")).as_bytes()).to_hex()[..16]
    ));
    let ready = need.iter().all(|i| {
        i.file
            .file_name()
            .is_some_and(|n| dir.join(n).is_file() || copy_into(&i.file, &dir))
    });
    if ready {
        // SAFETY (of the intent; set_var is safe in this edition): called before OpenCL is loaded,
        // from the thread that opens devices; no other thread reads the environment meanwhile.
        std::env::set_var("OCL_ICD_VENDORS", &dir);
    }
    true
}

fn copy_into(file: &Path, dir: &Path) -> bool {
    let Some(name) = file.file_name() else {
        return false;
    };
    std::fs::create_dir_all(dir).is_ok() && std::fs::copy(file, dir.join(name)).is_ok()
}

fn read_table(path: &Path, key: &str) -> Vec<Vec<Seen>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out: Vec<Vec<Seen>> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[..] {
            ["icd", k, ..] if k == key => out.push(Vec::new()),
            ["dev", k, platform, kind, name, cus] if k == key => match out.last_mut() {
                Some(v) => v.push(Seen {
                    platform: platform.into(),
                    kind: kind.into(),
                    name: name.into(),
                    compute_units: cus.parse().unwrap_or(0),
                }),
                None => return Vec::new(),
            },
            _ => return Vec::new(),
        }
    }
    out
}

fn write_table(path: &Path, key: &str, icds: &[Icd], probed: &[Vec<Seen>]) {
    let mut text = String::new();
    for (i, seen) in icds.iter().zip(probed) {
        text += &format!("icd\t{key}\t{}\n", i.lib.replace(['\t', '\n'], " "));
        for s in seen {
            text += &format!(
                "dev\t{key}\t{}\t{}\t{}\t{}\n",
                s.platform, s.kind, s.name, s.compute_units
            );
        }
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
        let tmp = dir.join(format!(".opencl-icds.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(kind: &str, name: &str) -> Seen {
        Seen {
            platform: "P".into(),
            kind: kind.into(),
            name: name.into(),
            compute_units: 8,
        }
    }

    #[test]
    fn only_drivers_with_a_wanted_device_are_needed() {
        assert_eq!(wanted("auto", &seen("GPU", "H200")), Some(true));
        assert_eq!(wanted("auto", &seen("CPU", "pthread")), Some(false));
        assert_eq!(wanted("all", &seen("CPU", "pthread")), Some(false));
        assert_eq!(wanted("NVIDIA", &seen("GPU", "NVIDIA H200")), Some(true));
        assert_eq!(wanted("h200", &seen("CPU", "pthread")), Some(false));
        assert_eq!(wanted("0", &seen("CPU", "pthread")), None);
        assert_eq!(wanted("0,1", &seen("GPU", "x")), None);
    }

    #[test]
    fn the_table_reads_back_and_refuses_another_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        let icds = vec![
            Icd {
                file: "/a.icd".into(),
                lib: "liba.so".into(),
            },
            Icd {
                file: "/b.icd".into(),
                lib: "libb.so".into(),
            },
        ];
        let probed = vec![vec![seen("GPU", "g1"), seen("GPU", "g2")], vec![]];
        write_table(&p, "k1", &icds, &probed);
        assert_eq!(read_table(&p, "k1"), probed);
        assert!(read_table(&p, "k2").is_empty());
    }
}
