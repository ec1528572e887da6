#![no_main]
//! Body: `clc::fuzzing::index_decode` (also run on stable by tests/fuzz_regress.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| clc::fuzzing::index_decode(data));
