#![no_main]
//! Body: `clc::fuzzing::tree_pages` (also run on stable by tests/fuzz_regress.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| clc::fuzzing::tree_pages(data));
