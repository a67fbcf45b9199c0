//! A global allocator that records the largest single allocation made while tracking is on,
//! so the frame checks can assert that a reader never allocates more than the frame caps
//! allow, whatever length a frame header declares. Shared by the fuzz targets and the corpus
//! replay test (`#[path]`-included by both); each binary declares it `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The system allocator, plus a record of the largest request made while [`track`] is on.
pub struct PeakAlloc;

static TRACKING: AtomicBool = AtomicBool::new(false);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn note(size: usize) {
    if TRACKING.load(Ordering::Relaxed) {
        PEAK.fetch_max(size, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is `System`'s; the bookkeeping only touches atomics and never
// allocates.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded unchanged; `ptr` came from `System` through this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Forgets the largest allocation seen so far.
pub fn reset() {
    PEAK.store(0, Ordering::Relaxed);
}

/// Turns tracking on (`true`) or off, around the calls under test only. Only meaningful
/// while no other thread allocates much (one test per binary).
pub fn tracking(on: bool) {
    TRACKING.store(on, Ordering::Relaxed);
}

/// The largest single allocation made while tracking was on since the last [`reset`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}
