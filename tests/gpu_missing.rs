//! Without an OpenCL platform the backend reports `Error::Gpu` and never panics. Own test binary: the
//! ICD loader reads `OCL_ICD_VENDORS` once, before the first OpenCL call of the process.

use clc::gpu::{list_devices, Gpu};
use clc::Config;

#[test]
fn no_platform_is_a_clean_error() {
    std::env::set_var("OCL_ICD_VENDORS", "/nonexistent-empty-dir");
    std::env::remove_var("POCL_DEVICES");
    for sel in ["auto", "all", "0", "pthread"] {
        let r = Gpu::open(&Config {
            gpu_device: sel.into(),
            ..Config::default()
        });
        match r {
            Err(clc::Error::Gpu(msg)) => {
                assert!(!msg.contains('\n'), "one-line message: {msg:?}");
                eprintln!("{sel}: {msg}");
            }
            Err(e) => panic!("{sel}: wrong error kind: {e}"),
            Ok(g) => panic!("{sel}: opened {} with no OpenCL vendors", g.describe()),
        }
    }
    match list_devices() {
        Ok(d) => assert!(d.is_empty()),
        Err(e) => assert!(matches!(e, clc::Error::Gpu(_))),
    }
}
