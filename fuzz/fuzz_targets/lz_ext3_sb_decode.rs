#![no_main]
//! Body: `clc::fuzzing::lz_ext3_sb_decode` (also run on stable by tests/fuzz_regress.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| clc::fuzzing::lz_ext3_sb_decode(data));
