#![no_main]
//! Body: `clc::fuzzing::heap::check_grown` (also run by tests/bounds.rs, and without the memory check by
//! tests/fuzz_regress.rs as `clc::fuzzing::index_grow`). Grows counts rather than bytes, then checks
//! that the heap used to open, list, read and verify the archive stays within
//! `clc::fuzzing::memory_bound` of its size.

#[global_allocator]
static ALLOC: clc::fuzzing::heap::Counting = clc::fuzzing::heap::Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    clc::fuzzing::heap::check_grown("index_grow", data);
});
