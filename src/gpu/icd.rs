//! Which OpenCL drivers are loaded. The ICD loader loads every driver listed in its vendors directory
//! (`/etc/OpenCL/vendors/*.icd`, or `$OCL_ICD_VENDORS`) on the first OpenCL call, and each one costs
//! start-up time and memory (PoCL: about 40 ms and 55 MiB; NVIDIA's: most of a second for its
//! device probe) whether it has a device the run wants or not. So when `GPU_DEVICE` asks for GPUs
//! (`auto`, `all`) or names a device, only the drivers that have such a device are loaded.
//!
//! What each driver offers is learnt once, by loading it alone in a child process (`clc` run with
//! `CLC_PROBE_ICD` set, see [`probe_child_main`]) and kept in `<cache>/clc/opencl-icds.txt`, keyed by
//! the `.icd` files and the size and modification time of the libraries they name: installing,
//! removing or updating a driver probes again. The chosen drivers get `.icd` files in a directory of
//! their own under the cache, `OCL_ICD_VENDORS` points there and `OCL_ICD_FILENAMES` is cleared before
//! OpenCL is first loaded (ocl-icd and the Khronos loader both read them). A user's `OCL_ICD_VENDORS` or
//! `OCL_ICD_FILENAMES` has those drivers counted in (each entry of the latter is one more driver),
//! and without a cache, or in a program that is not `clc` (tests, benches), every driver is loaded
//! as before: restricting is only ever an optimisation.

use crate::diag::{self, icd::PROBE_ENV};
use std::path::{Path, PathBuf};

/// One driver the ICD loader would load: the library named by an `.icd` file of the vendors
/// directory, or an entry of `OCL_ICD_FILENAMES` (how some images add NVIDIA's, e.g. the lent H200
/// machine: `OCL_ICD_FILENAMES=libpocl.so.2:libnvidia-opencl.so.1` and only `pocl.icd` in the
/// directory).
struct Icd {
    /// Where it was listed (an `.icd` path, or `OCL_ICD_FILENAMES`), for messages and the key.
    from: String,
    lib: String,
}

/// Every driver the loader would load, in a stable order.
fn list_drivers() -> Vec<Icd> {
    let v = diag::icd::vendors();
    let files: Vec<PathBuf> = if v.is_file() {
        vec![v]
    } else {
        let mut f: Vec<PathBuf> = std::fs::read_dir(&v)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "icd"))
                    .collect()
            })
            .unwrap_or_default();
        f.sort();
        f
    };
    let mut out: Vec<Icd> = files
        .into_iter()
        .filter_map(|file| {
            let lib = std::fs::read_to_string(&file).ok()?.trim().to_string();
            (!lib.is_empty()).then(|| Icd {
                from: file.display().to_string(),
                lib,
            })
        })
        .collect();
    for lib in diag::icd::filenames() {
        out.push(Icd {
            from: "OCL_ICD_FILENAMES".into(),
            lib,
        });
    }
    out
}

/// Makes `dir` a vendors directory holding exactly `drivers` (one `.icd` file each).
fn vendors_dir_with(dir: &Path, drivers: &[&Icd]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, d) in drivers.iter().enumerate() {
        let name = format!("{i:02}.icd");
        if std::fs::read_to_string(dir.join(&name)).ok().as_deref() != Some(&d.lib) {
            std::fs::write(dir.join(name), &d.lib)?;
        }
    }
    Ok(())
}

/// How a process is made to load only some drivers. Loaders differ: ocl-icd 2.3 honours a vendors
/// directory (`OCL_ICD_VENDORS`) but not `OCL_ICD_FILENAMES` beside an empty one; the loader of the
/// lent H200 machine's image finds nothing through our vendors directory but loads `OCL_ICD_FILENAMES`.
/// Each driver's probe tries the first way, then the second, and the table records which one worked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// `OCL_ICD_VENDORS` = a directory of `.icd` files, `OCL_ICD_FILENAMES` unset.
    Vendors,
    /// `OCL_ICD_FILENAMES` = the libraries, `OCL_ICD_VENDORS` = an empty directory.
    Filenames,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Vendors => "vendors",
            Via::Filenames => "filenames",
        }
    }

    fn parse(s: &str) -> Option<Via> {
        [Via::Vendors, Via::Filenames]
            .into_iter()
            .find(|v| v.name() == s)
    }

    /// The (variable, value or None to unset) pairs that load exactly `drivers`, with `dir` a
    /// directory of this set's own (made here).
    fn env(
        self,
        dir: &Path,
        drivers: &[&Icd],
    ) -> std::io::Result<Vec<(&'static str, Option<std::ffi::OsString>)>> {
        Ok(match self {
            Via::Vendors => {
                vendors_dir_with(dir, drivers)?;
                vec![
                    ("OCL_ICD_VENDORS", Some(dir.as_os_str().to_owned())),
                    ("OCL_ICD_FILENAMES", None),
                ]
            }
            Via::Filenames => {
                let empty = dir.join("none");
                std::fs::create_dir_all(&empty)?;
                let libs: Vec<&str> = drivers.iter().map(|d| d.lib.as_str()).collect();
                vec![
                    ("OCL_ICD_VENDORS", Some(empty.into_os_string())),
                    ("OCL_ICD_FILENAMES", Some(libs.join(":").into())),
                ]
            }
        })
    }
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

/// Runs the probe child for `icd`, loading it the first way that works; None if none did (why goes
/// to the trace).
fn probe(icd: &Icd, scratch: &Path) -> Option<(Via, Vec<Seen>)> {
    let mut why = Vec::new();
    for via in [Via::Vendors, Via::Filenames] {
        match probe_inner(icd, via, scratch) {
            Ok(seen) => return Some((via, seen)),
            Err(e) => why.push(format!("{}: {e}", via.name())),
        }
    }
    diag::trace::note(&format!(
        "OpenCL driver probe of {} ({}): {}",
        icd.lib,
        icd.from,
        why.join("; ")
    ));
    None
}

fn probe_inner(icd: &Icd, via: Via, scratch: &Path) -> std::result::Result<Vec<Seen>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("no current exe: {e}"))?;
    if exe.file_stem().is_none_or(|s| s != "clc") {
        return Err("not run from the clc binary".into());
    }
    let dir = scratch.join(format!("probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let env = via
        .env(&dir, &[icd])
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.env(PROBE_ENV, "1").stdin(std::process::Stdio::null());
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.map_err(|e| format!("running the probe: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut seen = Vec::new();
    for line in text.lines() {
        if line == "end" {
            return Ok(seen);
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
    let err = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "no answer ({}; {:?})",
        out.status,
        err.trim().chars().take(200).collect::<String>()
    ))
}

/// The child's side: lists the devices of the one driver it was given and exits. Called first thing
/// by `main`; returns without doing anything unless `CLC_PROBE_ICD` is set.
pub fn probe_child_main() {
    if !diag::icd::is_probe() {
        return;
    }
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    match super::list_devices() {
        Err(e) => {
            // No "end": the parent takes this driver as not understood and restricts nothing.
            diag::note(&e.to_string());
            diag::flush();
            std::process::exit(1);
        }
        Ok(devs) => {
            let lines: Vec<String> = devs
                .iter()
                .map(|d| {
                    format!(
                        "{}\t{}\t{}\t{}",
                        clean(&d.platform),
                        clean(&d.kind),
                        clean(&d.name),
                        d.compute_units
                    )
                })
                .collect();
            diag::icd::answer(&lines);
        }
    }
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

/// What the drivers offer: each driver the loader would load, what it offers (probed once, then from
/// the table), the table's key and the cache directory.
struct Known {
    icds: Vec<Icd>,
    seen: Vec<(Via, Vec<Seen>)>,
    key: String,
    base: PathBuf,
}

/// The drivers and what they offer, learnt once per process (None when the user chose the drivers,
/// there is no cache or a probe failed). Once per process because [`prepare`] changes the loader's
/// variables that [`list_drivers`] reads: learnt again after that, the restricted list is another key,
/// whose table replaced the whole one, so the next `clc` probed every driver again in the foreground
/// (0.3-0.4 s with NVIDIA's; the cause of run 33's slow extracts, docs/GPU.md).
fn known() -> Option<&'static Known> {
    static KNOWN: std::sync::OnceLock<Option<Known>> = std::sync::OnceLock::new();
    KNOWN.get_or_init(learn).as_ref()
}

fn learn() -> Option<Known> {
    if diag::icd::is_probe() {
        return None;
    }
    let base = diag::cache_dir()?;
    let icds = list_drivers();
    if icds.is_empty() {
        return None;
    }
    let key = table_key(&icds);
    let table = base.join("opencl-icds.txt");
    let mut seen = read_table(&table, &key);
    if seen.len() != icds.len() {
        let probed: Option<Vec<(Via, Vec<Seen>)>> = icds.iter().map(|i| probe(i, &base)).collect();
        let probed = probed?;
        write_table(&table, &key, &icds, &probed);
        seen = probed;
    }
    Some(Known {
        icds,
        seen,
        key,
        base,
    })
}

/// The table's key: the drivers, where each was listed, and each library's size and mtime.
fn table_key(icds: &[Icd]) -> String {
    let mut key_src = String::from("clc-icds-v3\n");
    for i in icds {
        key_src += &format!("{}\t{}\t{}\n", i.from, i.lib, lib_stamp(&i.lib));
    }
    blake3::hash(key_src.as_bytes()).to_hex()[..32].to_string()
}

/// Compute units of the GPU-type devices every driver offers, from the probe table (None: unknown,
/// e.g. no cache). Lets `GPU_DEVICE = auto` weigh the GPUs against the CPU without loading OpenCL.
pub fn gpu_compute_units() -> Option<u64> {
    let k = known()?;
    Some(
        k.seen
            .iter()
            .flat_map(|(_, seen)| seen)
            .filter(|s| s.kind == "GPU")
            .map(|s| u64::from(s.compute_units))
            .sum(),
    )
}

/// Whether `sel` (a `GPU_DEVICE` value) picks a device, from the probe table alone (no driver is
/// loaded): Some(true) when a driver offers one, Some(false) when none does, None when the table
/// cannot tell (no table, an index selection, `auto`).
pub fn known_match(sel: &str) -> Option<bool> {
    let t = sel.trim().to_ascii_lowercase();
    if t.is_empty() || t == "auto" {
        return None;
    }
    match_in(&t, &known()?.seen)
}

/// [`known_match`] over the devices `seen`: `all` picks every GPU, or every device when there is no
/// GPU; a name, the devices whose name or platform contains it.
fn match_in(sel: &str, seen: &[(Via, Vec<Seen>)]) -> Option<bool> {
    let devs = || seen.iter().flat_map(|(_, s)| s);
    if sel == "all" {
        return Some(devs().next().is_some());
    }
    let mut any = false;
    for s in devs() {
        any |= wanted(sel, s)?;
    }
    Some(any)
}

/// Before OpenCL is first loaded: points `OCL_ICD_VENDORS` at the drivers that `sel` needs. Returns
/// false when no driver has a device `sel` could pick (the caller then need not load OpenCL at all).
pub(crate) fn prepare(sel: &str) -> bool {
    let Some(Known {
        icds,
        seen: known,
        key,
        base,
    }) = known()
    else {
        return true;
    };
    // A driver is needed if one of its devices may be picked; an index selection needs them all.
    let mut need = Vec::new();
    let mut vias = Vec::new();
    for (icd, (via, seen)) in icds.iter().zip(known) {
        let mut any = false;
        for s in seen.iter() {
            match wanted(sel, s) {
                None => return true,
                Some(w) => any |= w,
            }
        }
        if any {
            need.push(icd);
            vias.push(*via);
        }
    }
    let all = sel.trim().eq_ignore_ascii_case("all");
    if need.len() == icds.len() || (need.is_empty() && all) {
        return true; // "all" without any GPU means every device
    }
    if need.is_empty() {
        return false;
    }
    let libs: Vec<&str> = need.iter().map(|i| i.lib.as_str()).collect();
    let dir = base.join(format!(
        "icd-{}",
        &blake3::hash(format!("{key}\n{}", libs.join("\n")).as_bytes()).to_hex()[..16]
    ));
    // Load them the way their probes did (a way that worked for every one of them).
    let Some(via) = [Via::Vendors, Via::Filenames]
        .into_iter()
        .find(|v| vias.iter().all(|x| x == v))
    else {
        return true;
    };
    if let Ok(env) = via.env(&dir, &need) {
        // Called before OpenCL is loaded, from the thread that opens devices (see diag::icd::set).
        diag::icd::set(env);
    }
    true
}

fn read_table(path: &Path, key: &str) -> Vec<(Via, Vec<Seen>)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out: Vec<(Via, Vec<Seen>)> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[..] {
            ["icd", k, _, via] if k == key => match Via::parse(via) {
                Some(v) => out.push((v, Vec::new())),
                None => return Vec::new(),
            },
            ["dev", k, platform, kind, name, cus] if k == key => match out.last_mut() {
                Some((_, v)) => v.push(Seen {
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

fn write_table(path: &Path, key: &str, icds: &[Icd], probed: &[(Via, Vec<Seen>)]) {
    let mut text = String::new();
    for (i, (via, seen)) in icds.iter().zip(probed) {
        text += &format!(
            "icd\t{key}\t{}\t{}\n",
            i.lib.replace(['\t', '\n'], " "),
            via.name()
        );
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
    fn a_name_is_checked_against_the_table_without_a_driver() {
        let gpus = vec![
            (Via::Vendors, vec![seen("CPU", "pthread-zen")]),
            (Via::Filenames, vec![seen("GPU", "NVIDIA H200")]),
        ];
        let cpus = vec![(Via::Vendors, vec![seen("CPU", "pthread-zen")])];
        assert_eq!(match_in("h200", &gpus), Some(true));
        assert_eq!(match_in("pthread", &gpus), Some(true));
        assert_eq!(match_in("nvidai", &gpus), Some(false));
        assert_eq!(match_in("h200", &cpus), Some(false));
        // The platform name counts too, as when opening.
        assert_eq!(match_in("p", &cpus), Some(true));
        // `all`: every GPU, or every device without one; nothing without any device.
        assert_eq!(match_in("all", &cpus), Some(true));
        assert_eq!(match_in("all", &[(Via::Vendors, vec![])]), Some(false));
        // Indices depend on the drivers loaded: the table cannot tell.
        assert_eq!(match_in("1", &gpus), None);
        assert_eq!(match_in("0,1", &gpus), None);
    }

    #[test]
    fn the_table_reads_back_and_refuses_another_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        let icds = vec![
            Icd {
                from: "/a.icd".into(),
                lib: "liba.so".into(),
            },
            Icd {
                from: "OCL_ICD_FILENAMES".into(),
                lib: "libb.so".into(),
            },
        ];
        let probed = vec![
            (Via::Vendors, vec![seen("GPU", "g1"), seen("GPU", "g2")]),
            (Via::Filenames, vec![]),
        ];
        write_table(&p, "k1", &icds, &probed);
        assert_eq!(read_table(&p, "k1"), probed);
        assert!(read_table(&p, "k2").is_empty());
    }
}
