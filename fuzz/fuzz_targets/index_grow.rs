#![no_main]
//! Body: `clc::fuzzing::index_grow` (also run on stable by tests/fuzz_regress.rs and, with the same
//! memory check, tests/bounds.rs). Grows counts rather than bytes, then checks that the heap used to
//! open, list, read and verify the archive stays within `clc::fuzzing::memory_bound` of its size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting the bytes live now and the most live since the last reset.
struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            PEAK.fetch_max(NOW.fetch_add(l.size(), Relaxed) + l.size(), Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        NOW.fetch_sub(l.size(), Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let vols = clc::fuzzing::grow_base(data);
    let size: u64 = vols.iter().map(|v| v.len() as u64).sum();
    let before = NOW.load(Relaxed);
    PEAK.store(before, Relaxed);
    clc::fuzzing::exercise_volumes(&vols);
    let used = (PEAK.load(Relaxed) - before) as u64;
    let bound = clc::fuzzing::memory_bound(size);
    assert!(used <= bound, "{used} bytes of heap for an archive of {size} bytes (bound {bound})");
});
