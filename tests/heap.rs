//! The binary's allocator switch (src/heap.rs), installed here as this test binary's global allocator:
//! blocks made before the switch stay glibc's and are freed and resized by it, blocks made after are
//! mimalloc's, on any thread.

#[global_allocator]
static HEAP: clc::heap::Switch = clc::heap::Switch;

use clc::heap::{is_mimalloc, mimalloc_started, use_mimalloc};

#[test]
fn blocks_go_back_to_the_allocator_that_made_them() {
    // Before the switch: glibc's, small and large (past glibc's mmap threshold).
    let mut small_before: Vec<u64> = (0..100).collect();
    let mut large_before = vec![7u8; 4 << 20];
    let zeroed_before = vec![0u8; 1 << 20];
    assert!(!is_mimalloc(small_before.as_ptr().cast()));
    assert!(!is_mimalloc(large_before.as_ptr()));

    // Built without its load-time constructor where the build's CFLAGS carry the define
    // (.cargo/config.toml sets them unless the environment has a CFLAGS of its own): then nothing has
    // started mimalloc yet.
    if option_env!("CFLAGS").is_some_and(|f| f.contains("-DMI_PRIM_HAS_PROCESS_ATTACH")) {
        assert!(
            !mimalloc_started(),
            "mimalloc started at load although built with -DMI_PRIM_HAS_PROCESS_ATTACH"
        );
    } else {
        eprintln!(
            "note: CFLAGS without -DMI_PRIM_HAS_PROCESS_ATTACH: mimalloc keeps its constructor"
        );
    }
    use_mimalloc();
    assert!(mimalloc_started());

    let mut small_after: Vec<u64> = (0..100).collect();
    let large_after = vec![9u8; 4 << 20];
    let zeroed_after = vec![0u8; 1 << 20];
    assert!(is_mimalloc(small_after.as_ptr().cast()));
    assert!(is_mimalloc(large_after.as_ptr()));
    assert!(is_mimalloc(zeroed_after.as_ptr()));
    assert!(zeroed_after.iter().all(|&b| b == 0));
    // Still glibc's: a glibc pointer is never taken for mimalloc's.
    assert!(!is_mimalloc(small_before.as_ptr().cast()));
    assert!(!is_mimalloc(zeroed_before.as_ptr()));

    // Grown in place or moved, each block keeps its bytes and its allocator.
    small_before.extend(100..100_000);
    large_before.resize(16 << 20, 8);
    small_after.extend(100..100_000);
    assert!(!is_mimalloc(small_before.as_ptr().cast()));
    assert!(!is_mimalloc(large_before.as_ptr()));
    assert!(is_mimalloc(small_after.as_ptr().cast()));
    assert!(small_before.iter().copied().eq(0..100_000));
    assert!(small_after.iter().copied().eq(0..100_000));
    assert!(large_before[..4 << 20].iter().all(|&b| b == 7));
    assert!(large_before[4 << 20..].iter().all(|&b| b == 8));

    // Freed on other threads (as the pack's compressors free the readers' buffers).
    let blocks: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 1000 + i * 5000]).collect();
    let handles: Vec<_> = [small_before, small_after]
        .into_iter()
        .map(|v| std::thread::spawn(move || v.len()))
        .chain(std::iter::once(std::thread::spawn(move || {
            let n = blocks
                .iter()
                .enumerate()
                .filter(|(i, b)| b[0] == *i as u8)
                .count();
            drop(blocks);
            n
        })))
        .collect();
    let lens: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(lens, [100_000, 100_000, 64]);
    drop((large_before, zeroed_before, large_after, zeroed_after));
}
