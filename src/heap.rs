//! The process's allocator: glibc's malloc, or mimalloc for a pack on many cores.
//!
//! A pack moves hundreds of MB through buffers that one thread allocates and another frees (read
//! buffers, frames, chunk lists) on every core. On the lent 16-core machine the same binary packed 10-19 %
//! faster with mimalloc than with glibc's malloc (the Rust docs, the mixed tree, python3; docs/GPU.md
//! run 80, BENCHMARKS.md 11.10). On two of its cores mimalloc was no faster on two trees and 9-10 %
//! slower on the Rust docs: it keeps more memory per thread (peak 218 against 135 MB there), and each
//! page touched for the first time costs ~2 µs (run 75), which two busy cores feel. So a pack takes
//! mimalloc from [`MIMALLOC_FROM_CORES`] usable cores up ([`for_pack`]). Its peak resident size roughly
//! doubles there (343 against 182 MB on the Rust docs, 16 cores).
//!
//! The mount is the opposite case: an idle mount of the Rust docs held 24 MB with mimalloc against
//! 4.4 MB with glibc's malloc, and its idle size is one of issue 20's figures. So the binary installs
//! [`Switch`] as its global allocator and a pack turns mimalloc on before its threads start; every
//! other command never touches it.
//!
//! A block is freed by the allocator that made it: blocks allocated before the switch (the parsed
//! command line) are glibc's, and `mi_is_in_heap_region` tells the two apart (mimalloc's page map: its
//! own mappings, disjoint from glibc's). Until the switch no block is mimalloc's, so the check costs
//! the other commands one relaxed load per free. mimalloc is built without transparent huge pages
//! (`no_thp`): with them a pack's peak resident size doubled again (321 → 713 MB on the Rust docs, 16
//! cores, run 79) and on the 2-core development machine two runs in four spent 3-5 × the system time
//! compacting memory for huge pages (`defrag = madvise`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// New blocks come from mimalloc.
static MI: AtomicBool = AtomicBool::new(false);
/// Some block may be mimalloc's (set before [`MI`], never cleared).
static EVER: AtomicBool = AtomicBool::new(false);

/// The global allocator of the `clc` binary: glibc's malloc until [`use_mimalloc`], mimalloc after.
pub struct Switch;

// mimalloc's start and whether it happened: what its load-time constructor calls (src/prim/prim.c), and
// the flag that constructor clears. Not in mimalloc.h, but global symbols of the static library
// libmimalloc-sys builds (0.1.49, mimalloc v3; a version without them fails to link, not to run).
extern "C" {
    fn _mi_preloading() -> bool;
    fn _mi_auto_process_init();
}

/// Whether mimalloc has started (by [`use_mimalloc`], or at load where it keeps its constructor).
pub fn mimalloc_started() -> bool {
    // SAFETY: reads one static flag of mimalloc's.
    !unsafe { _mi_preloading() }
}

/// Starts mimalloc once, as its constructor would have at load. It is built without that constructor
/// (`MI_PRIM_HAS_PROCESS_ATTACH`, .cargo/config.toml), which cost every `clc` start ~0.1-0.4 ms while only
/// a pack on many cores uses it (BENCHMARKS.md 5.13). Starting it sets its options, its page map and the
/// hook that hands a finished thread's memory back; until then no block is mimalloc's and
/// `mi_is_in_heap_region` is never asked.
fn start_mimalloc() {
    static START: std::sync::Once = std::sync::Once::new();
    START.call_once(|| {
        if !mimalloc_started() {
            // SAFETY: mimalloc's own start, called once (the `Once`, and only while it has not started),
            // before any block is allocated from it.
            unsafe { _mi_auto_process_init() }
        }
    });
}

/// From now on, new blocks come from mimalloc. Call before the command starts threads (a thread started
/// later sees the switch through its spawn); the blocks allocated before stay glibc's and are freed by it.
pub fn use_mimalloc() {
    start_mimalloc();
    EVER.store(true, Ordering::SeqCst);
    MI.store(true, Ordering::SeqCst);
}

/// Usable cores (`available_parallelism`: the affinity mask and cgroup quota) from which a pack
/// allocates from mimalloc, unless `CLC_PACK_MIMALLOC_FROM` says another count (1: always; 65536:
/// never, for measuring the two side by side).
pub const MIMALLOC_FROM_CORES: u32 = 8;

/// Chooses a pack's allocator, before its threads start: mimalloc from [`MIMALLOC_FROM_CORES`] usable
/// cores up.
pub fn for_pack() {
    let from = crate::diag::knob("CLC_PACK_MIMALLOC_FROM", 1..=65536, MIMALLOC_FROM_CORES);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores >= from as usize {
        use_mimalloc();
    }
}

/// Whether `p` is a block of mimalloc's (for tests and the switch itself).
pub fn is_mimalloc(p: *const u8) -> bool {
    // SAFETY: mi_is_in_heap_region only looks `p` up in mimalloc's page map; it does not dereference it.
    EVER.load(Ordering::Relaxed) && unsafe { libmimalloc_sys::mi_is_in_heap_region(p.cast()) }
}

// SAFETY: each call goes to one of two allocators that each uphold GlobalAlloc's contract, and a block
// is always given back (freed, resized) to the allocator that made it: `is_mimalloc` is exact.
unsafe impl GlobalAlloc for Switch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if MI.load(Ordering::Relaxed) {
            // SAFETY: the caller's layout, passed on.
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        } else {
            // SAFETY: as above.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if MI.load(Ordering::Relaxed) {
            // SAFETY: the caller's layout, passed on.
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        } else {
            // SAFETY: as above.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_mimalloc(ptr) {
            // SAFETY: a block of mimalloc's, with the layout it was allocated with.
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        } else {
            // SAFETY: a block of glibc's (allocated through System), with its layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A block stays with the allocator that made it.
        if is_mimalloc(ptr) {
            // SAFETY: a block of mimalloc's, its layout, the caller's new size.
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        } else {
            // SAFETY: a block of glibc's, its layout, the caller's new size.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}
