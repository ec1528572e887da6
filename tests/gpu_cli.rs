//! The GPU path through the binary, on whatever OpenCL device is there (PoCL in CI): a whole pack on the
//! OpenCL device, then extract on the CPU and on the device give the identical tree; no OpenCL library → the
//! CPU does the work (silently with the default device choice, with one line naming `--gpu-device` and
//! `GPU_DEVICE` when a device was asked for), or, with GPU_FALLBACK_ENABLED = false, an error.

mod common;

use common::*;
use std::ffi::OsStr;

fn opencl_device() -> Option<String> {
    match clc::gpu::list_devices() {
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
    let (out, _) = clc_ok!(
        "pack",
        &src,
        "-o",
        t.path().join("g"),
        "--gpu-device",
        &dev,
        "--frame-size",
        "128K"
    );
    assert!(out.contains("LZ_EXT3_GPU="), "{out}");
    let (info, _) = clc_ok!("info", t.path().join("g.001"), "--json");
    let v: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert!(
        v["frames_per_codec"]["LZ_EXT3_GPU"].as_u64().unwrap_or(0) >= 3,
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
    // And decoded in batches on the OpenCL device: the same tree, every frame checked.
    let dest = t.path().join("out-gpu");
    let (out, _) = clc_ok!(
        "extract",
        t.path().join("g.001"),
        "-o",
        &dest,
        "--gpu-device",
        &dev
    );
    assert!(
        out.contains("; 0 redone on the CPU") && !out.contains("GPU decoded 0 frames"),
        "{out}"
    );
    assert_same_tree(&src, &dest);
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
}
