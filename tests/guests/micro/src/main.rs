//! `micro`: a bare arm64 Linux-`Image` guest that measures the hypervisor through the Xen
//! ABI alone, so the same file boots on Bulkhead and on Xen (dom0less). The role comes from
//! `/chosen/bootargs` (see the library); results are one `MICRO metric=…` line each.
//!
//! Clock: `CNTVCT_EL0`. Under `-icount shift=0` it advances one tick per 16 instructions
//! retired (on any CPU) or skipped while every CPU idles, so it is exact but coarse. The
//! PMU would be finer, but Xen 4.17 gives guests no PMU. Round trips are therefore timed in
//! batches of [`BATCH`] calls (one tick = one instruction per call) with the same loop's
//! empty run subtracted; interrupt latencies are single events, in whole ticks (16 ×).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod gic;
#[cfg(target_os = "none")]
mod hv;
#[cfg(target_os = "none")]
mod roles;

/// `protocol` links `alloc` for its control messages; nothing this guest calls allocates,
/// so every request is refused (a null pointer: `alloc` then reports the failure).
#[cfg(target_os = "none")]
struct NoHeap;

// SAFETY: returning null is always a valid answer of `alloc`; `dealloc` is never reached
// because nothing was ever handed out.
#[cfg(target_os = "none")]
unsafe impl core::alloc::GlobalAlloc for NoHeap {
    unsafe fn alloc(&self, _: core::alloc::Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: core::alloc::Layout) {}
}

#[cfg(target_os = "none")]
#[global_allocator]
static HEAP: NoHeap = NoHeap;

#[cfg(not(target_os = "none"))]
fn main() {}
