#![no_main]
//! Body: `clc::fuzzing::open_archive_mutate` (also run on stable by tests/fuzz_regress.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| clc::fuzzing::open_archive_mutate(data));
