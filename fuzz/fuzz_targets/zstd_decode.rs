#![no_main]
//! Body: `clc::fuzzing::zstd_decode` (also run on stable by tests/fuzz_regress.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| clc::fuzzing::zstd_decode(data));
