//! The GPU path through the binary, on whatever OpenCL device is there (PoCL in CI): a whole pack on the
//! OpenCL device, then extract on the CPU and on the device give the identical tree; no OpenCL library → the
//! CPU does the work (silently with the default device choice, with one line naming `--gpu-device` and
//! `GPU_DEVICE` when a device was asked for), or, with GPU_FALLBACK_ENABLED = false, an error.

mod common;

use common::*;
use std::ffi::OsStr;

/// The OpenCL devices, listed once per process: PoCL's start-up is not safe from several threads at once.
fn devices() -> clc::Result<Vec<clc::gpu::DeviceInfo>> {
    static D: std::sync::OnceLock<Result<Vec<clc::gpu::DeviceInfo>, String>> =
        std::sync::OnceLock::new();
    D.get_or_init(|| clc::gpu::list_devices().map_err(|e| e.to_string()))
        .clone()
        .map_err(clc::Error::Gpu)
}

fn opencl_device() -> Option<String> {
    match devices() {
        Ok(d) if !d.is_empty() => {
            let idx = d
                .iter()
                .find(|x| x.name.to_lowercase().contains("pthread"))
                .unwrap_or(&d[0])
                .index;
            Some(idx.to_string())
        }
        other => {
            let why = other.err().map_or("no device".into(), |e| e.to_string());
            common::require("OPENCL", false, &format!("OpenCL unavailable ({why})"));
            None
        }
    }
}

#[test]
fn pack_on_opencl_then_extract_on_cpu() {
    let Some(dev) = opencl_device() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut data = text(5, 300_000);
    data.extend(noise(6, 100_000));
    data.extend(text(5, 200_000));
    std::fs::write(src.join("mixed"), &data).unwrap();
    std::fs::write(src.join("text"), text(7, 150_000)).unwrap();
    std::fs::write(src.join("tiny"), b"0123456789abc").unwrap();
    // Duplicates and a lookalike go through the GPU's FNV-1a stage; only BLAKE3-equal files may merge.
    std::fs::write(src.join("text-copy"), text(7, 150_000)).unwrap();
    let mut look = text(7, 150_000);
    look[70_000] ^= 1;
    std::fs::write(src.join("text-lookalike"), look).unwrap();
    // Every frame on the device: no lead for the CPU, all frames the GPU's (compress::Split).
    let g = t.path().join("g");
    let (code, out, err) = run_with(
        &[
            ("CLC_GPU_LEAD", OsStr::new("0")),
            ("CLC_GPU_SHARE", OsStr::new("1/1")),
        ],
        &[
            OsStr::new("pack"),
            src.as_os_str(),
            OsStr::new("-o"),
            g.as_os_str(),
            OsStr::new("--gpu-device"),
            OsStr::new(&dev),
            OsStr::new("--frame-size"),
            OsStr::new("128K"),
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("LZ_EXT3_GPU="), "{out}");
    let (info, _) = clc_ok!("info", t.path().join("g.001"), "--json");
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    // Stored as format v2's LZ_EXT3_SB frames (the default SUBBLOCK_SIZE), as the CPU encoder writes.
    assert!(
        v["frames_per_codec"]["LZ_EXT3_SB_GPU"]
            .as_u64()
            .unwrap_or(0)
            >= 3,
        "{info}"
    );
    // mixed (600000) + text (150000) + tiny (13) + lookalike (150000); the copy shares text's content.
    assert_eq!(v["unique_file_bytes"], serde_json::json!(900_013), "{info}");
    let dest = t.path().join("out");
    clc_ok!(
        "extract",
        t.path().join("g.001"),
        "-o",
        &dest,
        "--cpu",
        "-q"
    );
    assert_same_tree(&src, &dest);
    clc_ok!("verify", t.path().join("g.001"));
    // Extract with the OpenCL device: the GPU-made archive (plain LZ_EXT3 frames: decoded on the CPU)
    // and a CPU-made one (LZ_EXT3_SB frames: decoded on the device beside the CPU), the same tree, every
    // frame checked.
    let dest = t.path().join("out-gpu");
    let (out, _) = clc_ok!(
        "extract",
        t.path().join("g.001"),
        "-o",
        &dest,
        "--gpu-device",
        &dev
    );
    assert!(out.contains("; 0 redone on the CPU"), "{out}");
    assert_same_tree(&src, &dest);
    clc_ok!(
        "pack",
        &src,
        "-o",
        t.path().join("c"),
        "--cpu",
        "--frame-size",
        "128K",
        "-q"
    );
    // The split as it is (the CPU takes back what the device has not finished when its own part is
    // done: on a CPU device that can be every frame), then every LZ_EXT3_SB frame on the device with the
    // CPU waiting for it (CLC_GPU_DECODE_ALL=1): the device's bytes, every one checked.
    let dest = t.path().join("out-sb");
    let (out, _) = clc_ok!(
        "extract",
        t.path().join("c.001"),
        "-o",
        &dest,
        "--gpu-device",
        &dev
    );
    assert!(out.contains("; 0 redone on the CPU"), "{out}");
    assert_same_tree(&src, &dest);
    let dest = t.path().join("out-sb-all");
    let (code, out, err) = run_with(
        &[("CLC_GPU_DECODE_ALL", OsStr::new("1"))],
        &[
            OsStr::new("extract"),
            t.path().join("c.001").as_os_str(),
            OsStr::new("-o"),
            dest.as_os_str(),
            OsStr::new("--gpu-device"),
            OsStr::new(&dev),
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("; 0 redone on the CPU; 0 taken back from the GPU")
            && !out.contains("GPU decoded 0 frames"),
        "{out}"
    );
    assert_same_tree(&src, &dest);
}

/// The frames of `archive` per codec name (`clc info --json`).
fn codec_frames(archive: &std::path::Path, codec: &str) -> u64 {
    let (info, _) = clc_ok!("info", archive, "--json");
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    v["frames_per_codec"][codec].as_u64().unwrap_or(0)
}

/// A pack shared by the CPU threads and the OpenCL device (compress::Split, FORMAT.md §6): the frames of
/// the first CLC_GPU_LEAD bytes on the CPU, then one frame in two on the device. The same config and
/// device set give the same bytes on every run and with two devices (POCL_DEVICES), the device's frames
/// are where the rule puts them, and the tree comes back whole.
#[test]
fn cpu_and_device_share_a_pack_deterministically() {
    let Some(dev) = opencl_device() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..6u64 {
        std::fs::write(src.join(format!("t{i}")), text(20 + i, 200_000)).unwrap();
    }
    std::fs::write(src.join("n"), noise(9, 100_000)).unwrap();
    let pack = |name: &str, device: &str, share: &str, envs: &[(&str, &OsStr)]| {
        let out = t.path().join(name);
        let mut e = vec![
            ("CLC_GPU_LEAD", OsStr::new("300000")),
            ("CLC_GPU_SHARE", OsStr::new(share)),
            ("SOURCE_DATE_EPOCH", OsStr::new("1700000000")),
        ];
        e.extend_from_slice(envs);
        let (code, o, err) = run_with(
            &e,
            &[
                OsStr::new("pack"),
                src.as_os_str(),
                OsStr::new("-o"),
                out.as_os_str(),
                OsStr::new("--gpu-device"),
                OsStr::new(device),
                OsStr::new("--frame-size"),
                OsStr::new("128K"),
                OsStr::new("--threads"),
                OsStr::new("2"),
            ],
        );
        assert_eq!(code, Some(0), "{o}{err}");
        let archive = t.path().join(format!("{name}.001"));
        (std::fs::read(&archive).unwrap(), archive)
    };
    let (a, a_path) = pack("a", &dev, "1/2", &[]);
    let (b, _) = pack("b", &dev, "1/2", &[]);
    assert!(a == b, "two runs of one config and device set differ");
    let (on_gpu, on_cpu) = (
        codec_frames(&a_path, "LZ_EXT3_SB_GPU"),
        codec_frames(&a_path, "LZ_EXT3_SB"),
    );
    // 1.3 MB in 128 KiB frames: the first three frames (the lead) and the odd ones after it on the CPU.
    assert!(on_gpu >= 3 && on_cpu >= 5, "GPU {on_gpu}, CPU {on_cpu}");
    let (c, c_path) = pack("c", &dev, "0/1", &[]);
    assert_eq!(codec_frames(&c_path, "LZ_EXT3_SB_GPU"), 0);
    assert!(c != a, "a share of 0 still put frames on the device");
    let dest = t.path().join("out");
    clc_ok!("extract", &a_path, "-o", &dest, "--cpu", "-q");
    assert_same_tree(&src, &dest);
    // Two devices of the same kind: the same frames on the GPU side, the same bytes.
    if std::env::var_os("POCL_DEVICES").is_none() && dev_is_pocl(&dev) {
        let (two, _) = pack(
            "two",
            "all",
            "1/2",
            &[("POCL_DEVICES", OsStr::new("pthread pthread"))],
        );
        assert!(two == a, "two devices wrote other bytes than one");
    }
}

/// Whether device `idx` is PoCL's CPU device (two of them can be asked for with POCL_DEVICES).
fn dev_is_pocl(idx: &str) -> bool {
    devices().is_ok_and(|d| {
        d.iter()
            .any(|x| x.index.to_string() == idx && x.name.to_lowercase().contains("pthread"))
            && d.len() == 1
    })
}

#[test]
fn missing_opencl_falls_back_or_fails_as_configured() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), text(1, 10_000)).unwrap();
    let empty = t.path().join("no-icds");
    std::fs::create_dir(&empty).unwrap();
    let run_env = |args: &[&OsStr]| {
        let o = clc()
            .args(args)
            .env("OCL_ICD_VENDORS", &empty)
            .env("OPENCL_VENDOR_PATH", &empty)
            // GPU_DEVICE = auto opens the GPU from this many bytes on (the tree is small).
            .env("CLC_GPU_AUTO_MIN", "0")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let a = t.path().join("a");
    let (code, out, err) = run_env(&[
        OsStr::new("pack"),
        src.as_os_str(),
        OsStr::new("-o"),
        a.as_os_str(),
    ]);
    // The default device choice on a machine without OpenCL: the CPU, without a word.
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(err, "", "nothing on stderr");
    assert!(
        out.contains("RAW=") && out.contains("LZ_EXT3_GPU=0 (0.0%)") && out.contains("on the CPU"),
        "{out}"
    );
    // A device asked for by flag: one line naming the flag and the key, and the CPU does the work.
    let a2 = t.path().join("a2");
    let (code, out, err) = run_env(&[
        OsStr::new("pack"),
        src.as_os_str(),
        OsStr::new("-o"),
        a2.as_os_str(),
        OsStr::new("--gpu-device"),
        OsStr::new("0"),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("no GPU used") && err.contains("--gpu-device") && err.contains("GPU_DEVICE"),
        "{err}"
    );
    let cfg = t.path().join("cfg.txt");
    std::fs::write(&cfg, "GPU_FALLBACK_ENABLED = false\n").unwrap();
    let b = t.path().join("b");
    let (code, _, err) = run_env(&[
        OsStr::new("pack"),
        src.as_os_str(),
        OsStr::new("-o"),
        b.as_os_str(),
        OsStr::new("--config"),
        cfg.as_os_str(),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("OpenCL") && err.lines().count() == 1, "{err}");
    assert!(!t.path().join("b.001").exists());
    // A named device opens beside the pack (compress::OpenAhead): its failure is still the error, and
    // what the CPU packed meanwhile is removed.
    let b2 = t.path().join("b2");
    let (code, _, err) = run_env(&[
        OsStr::new("pack"),
        src.as_os_str(),
        OsStr::new("-o"),
        b2.as_os_str(),
        OsStr::new("--config"),
        cfg.as_os_str(),
        OsStr::new("--gpu-device"),
        OsStr::new("0"),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("OpenCL") && err.lines().count() == 1, "{err}");
    assert!(!t.path().join("b2.001").exists());
}

/// A kernel that reports a block larger than the launch's output (its lz_plan's size, through
/// `CLC_GPU_C_SRC`): the batch fails with a warning naming it and is redone on the CPU; the archive is
/// whole. The host once sliced its pinned download buffer with that size and panicked (exit 101).
#[test]
fn a_block_size_past_the_output_is_redone_on_the_cpu() {
    let Some(dev) = opencl_device() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), text(11, 300_000)).unwrap();
    std::fs::write(src.join("b"), text(12, 200_000)).unwrap();
    let kernel = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/lz_ext3_compress.cl"),
    )
    .unwrap();
    let honest = "fr_plan[f * 4 + F_SIZE] = pos <= fr_cap[f] ? pos : OVERFLOW;";
    assert_eq!(
        kernel.matches(honest).count(),
        1,
        "the line this test changes"
    );
    let lying = t.path().join("lying.cl");
    std::fs::write(
        &lying,
        kernel.replace(honest, "fr_plan[f * 4 + F_SIZE] = 0x7ffffff0u;"),
    )
    .unwrap();
    let a = t.path().join("a");
    let (code, out, err) = run_with(
        &[
            ("CLC_GPU_LEAD", OsStr::new("0")),
            ("CLC_GPU_SHARE", OsStr::new("1/1")),
            ("CLC_GPU_C_SRC", lying.as_os_str()),
            ("CLC_CACHE_DIR", t.path().join("cache").as_os_str()),
        ],
        &[
            OsStr::new("pack"),
            src.as_os_str(),
            OsStr::new("-o"),
            a.as_os_str(),
            OsStr::new("--gpu-device"),
            OsStr::new(&dev),
            OsStr::new("--frame-size"),
            OsStr::new("128K"),
        ],
    );
    // Exit 1: the archive is complete, with warnings.
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("batch redone on the CPU") && err.contains("runs past the output"),
        "{err}"
    );
    assert!(out.contains("GPU frames redone on the CPU"), "{out}");
    clc_ok!("verify", t.path().join("a.001"));
    let dest = t.path().join("x");
    clc_ok!("extract", t.path().join("a.001"), "-o", &dest);
    assert_same_tree(&src, &dest);
}

/// Runs clc with `envs` added; (exit code, stdout, stderr).
fn run_with(envs: &[(&str, &OsStr)], args: &[&OsStr]) -> (Option<i32>, String, String) {
    let mut c = clc();
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn kernel_binaries_are_cached_per_device_source_and_options() {
    let Some(dev) = opencl_device() else { return };
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), text(3, 50_000)).unwrap();
    let cache = t.path().join("cache");
    let cfg = t.path().join("c3.txt");
    std::fs::write(&cfg, "HASH_CANDIDATES = 3\n").unwrap();
    let envs = [
        ("CLC_CACHE_DIR", cache.as_os_str()),
        ("CLC_TRACE", OsStr::new("1")),
    ];
    let pack = |name: &str, extra: &[&OsStr]| {
        let out = t.path().join(name);
        let mut args = vec![
            OsStr::new("pack"),
            src.as_os_str(),
            OsStr::new("-o"),
            out.as_os_str(),
            OsStr::new("--gpu-device"),
            OsStr::new(&dev),
        ];
        args.extend_from_slice(extra);
        let (code, o, e) = run_with(&envs, &args);
        assert_eq!(code, Some(0), "{o}{e}");
        let count = |w: &str| e.lines().filter(|l| l.ends_with(w)).count();
        (count(": Compiled"), count(": Cached"))
    };
    // Four programs: compression, plain LZ_EXT3 decoding, FNV-1a, LZ_EXT3_SB decoding.
    assert_eq!(
        pack("a", &[]),
        (4, 0),
        "first run compiles the four programs"
    );
    assert_eq!(pack("b", &[]), (0, 4), "second run loads them");
    let files = || std::fs::read_dir(cache.join("kernels")).unwrap().count();
    assert_eq!(files(), 4);
    // Other build options (HASH_CANDIDATES is a -D value) are another binary, not a stale one.
    assert_eq!(
        pack("c", &[OsStr::new("--config"), cfg.as_os_str()]),
        (4, 0)
    );
    assert_eq!(files(), 8);
    // A damaged cache file is rebuilt, never used.
    for f in std::fs::read_dir(cache.join("kernels")).unwrap() {
        let p = f.unwrap().path();
        let mut d = std::fs::read(&p).unwrap();
        let n = d.len();
        d[n / 2] ^= 0x55;
        std::fs::write(&p, d).unwrap();
    }
    assert_eq!(pack("d", &[]), (4, 0));
}

/// GPU_DEVICE = auto on a large stream (here made large by CLC_GPU_AUTO_FROM) decides from its first
/// frames' ratio: very compressible text leaves OpenCL alone; data that compresses to about half opens the
/// GPU (on a machine without a GPU-type device: tries, finds none, and the CPU works). The archive is the
/// tree's either way.
#[test]
fn auto_decides_from_the_first_frames_ratio() {
    let t = tempfile::tempdir().unwrap();
    let envs = [
        ("CLC_TRACE", OsStr::new("1")),
        ("CLC_GPU_AUTO_FROM", OsStr::new("0")),
        ("CLC_GPU_AUTO_SAMPLE", OsStr::new("1000000")),
        ("CLC_GPU_LEAD", OsStr::new("2000000")),
        ("CLC_CACHE_DIR", t.path().as_os_str()),
    ];
    for (name, half_noise) in [("text", false), ("half", true)] {
        let src = t.path().join(name);
        std::fs::create_dir(&src).unwrap();
        for i in 0..6u64 {
            let mut d = text(i, 300_000);
            if half_noise {
                // Every other 4 KiB noise: about half of it compresses away.
                for (k, c) in d.chunks_mut(4096).enumerate().filter(|(k, _)| k % 2 == 0) {
                    let n = c.len();
                    c.copy_from_slice(&noise(i * 1000 + k as u64, n));
                }
            }
            std::fs::write(src.join(format!("f{i}")), d).unwrap();
        }
        let out = t.path().join(format!("{name}-a"));
        let (code, o, e) = run_with(
            &envs,
            &[
                OsStr::new("pack"),
                src.as_os_str(),
                OsStr::new("-o"),
                out.as_os_str(),
                OsStr::new("--frame-size"),
                OsStr::new("262144"),
            ],
        );
        assert_eq!(code, Some(0), "{o}{e}");
        assert!(e.contains("ratio decides"), "{e}");
        if half_noise {
            assert!(e.contains("of their size: the GPU is opened"), "{e}");
            // Opened, or tried and none found (no GPU-type device here).
            assert!(
                e.contains("frames shared: the CPU alone for the first 2000000 bytes, then the GPU 1 of every 1")
                    || e.contains("no GPU used"),
                "{e}"
            );
        } else {
            assert!(e.contains("of their size: the GPU is left out"), "{e}");
            assert!(
                !e.contains("platforms listed") && !e.contains("no GPU used"),
                "{e}"
            );
        }
        let back = t.path().join(format!("{name}-x"));
        let mut a = out.into_os_string();
        a.push(".001");
        let (code, o, e) = run(&[
            OsStr::new("extract"),
            a.as_os_str(),
            OsStr::new("-o"),
            back.as_os_str(),
        ]);
        assert_eq!(code, 0, "{o}{e}");
        assert_same_tree(&src, &back);
    }
}

#[test]
fn auto_loads_no_opencl_driver_without_a_gpu() {
    let Some(_) = opencl_device() else { return };
    let has_gpu = devices().unwrap().iter().any(|d| d.kind == "GPU");
    if has_gpu {
        eprintln!("SKIP: this machine has an OpenCL GPU");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), text(3, 50_000)).unwrap();
    let cache = t.path().join("cache");
    // The default leaves OpenCL alone in a small pack whatever is installed (compress::auto_plan).
    let (code, o, e) = run_with(
        &[
            ("CLC_CACHE_DIR", cache.as_os_str()),
            ("CLC_TRACE", OsStr::new("1")),
        ],
        &[
            OsStr::new("pack"),
            src.as_os_str(),
            OsStr::new("-o"),
            t.path().join("small").as_os_str(),
        ],
    );
    assert_eq!(code, Some(0), "{o}{e}");
    assert!(e.contains("the GPU is left out"), "{e}");
    assert!(
        !e.contains("no GPU used") && !e.contains("platforms listed"),
        "{e}"
    );
    let envs = [
        ("CLC_CACHE_DIR", cache.as_os_str()),
        ("CLC_TRACE", OsStr::new("1")),
        ("CLC_GPU_AUTO_MIN", OsStr::new("0")),
    ];
    for i in 1..=2 {
        let out = t.path().join(format!("a{i}"));
        let args = [
            OsStr::new("pack"),
            src.as_os_str(),
            OsStr::new("-o"),
            out.as_os_str(),
        ];
        let (code, o, e) = run_with(&envs, &args);
        assert_eq!(code, Some(0), "{o}{e}");
        // The GPU was tried and is absent: said in the trace only (the default device choice says
        // nothing about it on a machine without a GPU).
        assert!(e.contains("trace:") && e.contains("no GPU used"), "{e}");
        // The first run probes the drivers (in child processes) and loads none itself either; its
        // answer is kept, so the second run does not even load the ICD loader.
        assert!(!e.contains("OpenCL platforms listed"), "run {i}: {e}");
        assert!(cache.join("opencl-icds.txt").is_file());
    }
}

/// A device asked for by name in an extract (GpuDecoder::for_frames, docs/GPU.md "Extract and mount"):
/// looked up in the driver probe table without loading a driver. Known to exist but unable to pay (an
/// archive the CPU decodes in less time than an open takes): never opened, and the summary says so.
/// `CLC_GPU_DECODE_MIN` set: opened, and the extract does not wait for it at its end. A misspelled
/// name: one line at once with the table, one line after the wait without one (no cache).
#[test]
fn extract_opens_a_named_device_only_where_it_can_pay() {
    let Some(_) = opencl_device() else { return };
    let name = devices().unwrap()[0].name.clone();
    let t = tempfile::tempdir().unwrap();
    let src = three_texts(t.path(), 40, 300_000);
    clc_ok!(
        "pack",
        &src,
        "-o",
        t.path().join("a"),
        "--cpu",
        "--frame-size",
        "128K",
        "-q"
    );
    let cache = t.path().join("cache");
    let extract = |dest: &str, device: &str, envs: &[(&str, &OsStr)]| {
        let dest = t.path().join(dest);
        let mut e = vec![
            ("CLC_CACHE_DIR", cache.as_os_str()),
            ("CLC_TRACE", OsStr::new("1")),
        ];
        e.extend_from_slice(envs);
        let r = run_with(
            &e,
            &[
                OsStr::new("extract"),
                t.path().join("a.001").as_os_str(),
                OsStr::new("-o"),
                dest.as_os_str(),
                OsStr::new("--gpu-device"),
                OsStr::new(device),
            ],
        );
        (r, dest)
    };
    // The first run learns the table (probe children); the device is never opened here.
    let ((code, out, err), dest) = extract("x1", &name, &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("GPU not opened"), "{out}");
    assert!(!err.contains("OpenCL platforms listed"), "{err}");
    assert!(cache.join("opencl-icds.txt").is_file());
    assert_same_tree(&src, &dest);
    // Forced open: the GPU's line, the same tree.
    let ((code, out, err), dest) = extract("x2", &name, &[("CLC_GPU_DECODE_MIN", OsStr::new("0"))]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("GPU decoded") && out.contains("; 0 redone on the CPU"),
        "{out}"
    );
    assert_same_tree(&src, &dest);
    // Misspelled, with the table and without any cache: one line naming the flag and the key.
    for cache_off in [false, true] {
        let off = [("CLC_CACHE_DIR", OsStr::new(""))];
        let envs: &[(&str, &OsStr)] = if cache_off { &off } else { &[] };
        let ((code, out, err), dest) = extract("x3", "no-such-device-name", envs);
        assert_eq!(code, Some(0), "{out}{err}");
        let said: Vec<&str> = err.lines().filter(|l| !l.contains("trace")).collect();
        assert!(
            said.len() == 1 && said[0].contains("--gpu-device") && said[0].contains("GPU_DEVICE"),
            "cache off {cache_off}: {err}"
        );
        // With the table it is said before the work and no decoder is made (no GPU line).
        assert!(cache_off || !out.contains("GPU decoded"), "{out}");
        assert_same_tree(&src, &dest);
        std::fs::remove_dir_all(&dest).unwrap();
    }
}

/// `DIR/src` holding three files `t0`..`t2` of `size` bytes of [`text`] from seeds `seed`, `seed + 1`, ….
fn three_texts(dir: &std::path::Path, seed: u64, size: usize) -> std::path::PathBuf {
    let src = dir.join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..3u64 {
        std::fs::write(src.join(format!("t{i}")), text(seed + i, size)).unwrap();
    }
    src
}

/// A pack with a named device that the probe table vouches for, whose stream is no longer than the CPU's
/// lead, never opens the device (the trace says so) and does not wait for it
/// (CLC_TEST_GPU_OPEN_DELAY_MS stands for a slow driver); with a one-byte lead it opens the device and
/// waits for it; one the table cannot vouch for (no cache) is still waited for, so that a failure to open
/// is said. The archive is the `--cpu` one where no frame went to the device.
#[test]
fn pack_does_not_wait_for_a_vouched_device_no_frame_needs() {
    let Some(_) = opencl_device() else { return };
    let name = devices().unwrap()[0].name.clone();
    let t = tempfile::tempdir().unwrap();
    let src = three_texts(t.path(), 50, 200_000);
    let cache = t.path().join("cache");
    let delay = std::time::Duration::from_secs(6);
    let pack = |out: &str, envs: &[(&str, &OsStr)]| {
        let mut e = vec![
            ("CLC_CACHE_DIR", cache.as_os_str()),
            ("SOURCE_DATE_EPOCH", OsStr::new("1")),
        ];
        e.extend_from_slice(envs);
        let mut args = vec![
            OsStr::new("pack"),
            src.as_os_str(),
            OsStr::new("-o"),
            OsStr::new(out),
            OsStr::new("-q"),
            OsStr::new("--frame-size"),
            OsStr::new("128K"),
        ];
        if out.ends_with("cpu") {
            args.push(OsStr::new("--cpu"));
        } else {
            args.extend([OsStr::new("--gpu-device"), OsStr::new(&name)]);
        }
        let at = std::time::Instant::now();
        let (code, so, se) = run_with(&e, &args);
        assert_eq!(code, Some(0), "{so}{se}");
        (at.elapsed(), se)
    };
    let base = |n: &str| t.path().join(n).to_string_lossy().into_owned();
    let slow = [("CLC_TEST_GPU_OPEN_DELAY_MS", OsStr::new("6000"))];
    pack(&base("cpu"), &[]);
    // Learns the probe table (no delay), so that the next packs can vouch for the device.
    pack(&base("learn"), &[]);
    assert!(cache.join("opencl-icds.txt").is_file());
    // Vouched for, and the stream shorter than the CPU's lead: the driver is not even loaded.
    let traced = [slow[0], ("CLC_TRACE", OsStr::new("1"))];
    let (took, err) = pack(&base("vouched"), &traced);
    assert!(took < delay, "waited for the device: {took:?}");
    assert!(err.contains("GPU not opened"), "{err}");
    assert!(!err.contains("GPU opened (on its own thread)"), "{err}");
    // With a lead of one byte the frames after the first (of 128 KiB) are past it, so the pack opens the
    // device and waits for it there.
    let lead1 = [slow[0], ("CLC_GPU_LEAD", OsStr::new("1"))];
    let (took, _) = pack(&base("vouched1"), &lead1);
    assert!(
        took >= delay,
        "frames were meant for the device, yet it was not waited for: {took:?}"
    );
    let off = [slow[0], ("CLC_CACHE_DIR", OsStr::new(""))];
    let (took, _) = pack(&base("unknown"), &off);
    assert!(
        took >= delay,
        "did not wait for a device no table vouches for: {took:?}"
    );
    let bytes = |n: &str| std::fs::read(t.path().join(format!("{n}.001"))).unwrap();
    for n in ["learn", "vouched", "unknown"] {
        assert!(bytes(n) == bytes("cpu"), "{n}: not the --cpu archive");
    }
}
