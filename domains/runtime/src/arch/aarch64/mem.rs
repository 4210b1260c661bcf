//! Raw memory: the heap, the per-vCPU message pages, the start-info copy, GIC MMIO and the
//! deliberate out-of-RAM probe of the adversarial tests.

use super::regs::{mpidr, without_interrupts};
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use protocol::control::MSG_PAGE_SIZE;
use protocol::layout::MAX_VCPUS;
#[cfg(not(feature = "native"))]
use protocol::layout::{
    GUEST_GICD_BASE, GUEST_GICD_SIZE, GUEST_GICR_BASE, GUEST_GICR_SIZE, GUEST_GICV2_GICC_BASE,
    GUEST_GICV2_GICC_SIZE,
};

/// The global allocator: a first-fit heap behind a spin lock taken with IRQs masked, so an
/// interrupt handler that allocates cannot deadlock against the code it interrupted.
pub struct Heap(spin::Mutex<linked_list_allocator::Heap>);

impl Heap {
    /// An empty heap; every allocation fails until [`Heap::init`].
    pub const fn empty() -> Self {
        Self(spin::Mutex::new(linked_list_allocator::Heap::empty()))
    }

    /// Hands `[start, end)` to the heap. Only the first call has an effect.
    ///
    /// Panics if the range is empty; the caller checks it lies in our RAM above the image.
    pub(crate) fn init(&self, start: u64, end: u64) {
        assert!(start < end, "empty heap");
        without_interrupts(|| {
            let mut h = self.0.lock();
            if h.size() == 0 {
                // SAFETY: `start` is the linker's `__heap_start` (past the image and .bss)
                // and `end` the start-info reserve, both inside our identity-mapped RAM
                // (checked by `start::primary`); nothing else uses this range, and the
                // size check above makes this the only call.
                unsafe { h.init(start as *mut u8, (end - start) as usize) };
            }
        })
    }
}

// SAFETY: allocation is delegated to linked_list_allocator under a lock; it returns blocks
// that fit `layout` and are not in use.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        without_interrupts(|| {
            self.0
                .lock()
                .allocate_first_fit(layout)
                .map_or(core::ptr::null_mut(), NonNull::as_ptr)
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` with this `layout`.
            without_interrupts(|| unsafe { self.0.lock().deallocate(p, layout) })
        }
    }
}

/// Copies the start info out of the reserve at the end of RAM.
///
/// Returns `None` unless `[ipa, ipa + len)` lies within `[reserve_start, ram_end)`.
#[cfg_attr(feature = "native", allow(dead_code))] // native builds have no start info
pub(crate) fn copy_start_info(
    ipa: u64,
    len: u64,
    reserve_start: u64,
    ram_end: u64,
) -> Option<Vec<u8>> {
    let end = ipa.checked_add(len)?;
    if ipa < reserve_start || end > ram_end || len == 0 {
        return None;
    }
    // SAFETY: the range is inside our RAM's start-info reserve (checked above), which is
    // identity-mapped Normal memory owned by no Rust object and written by nobody while
    // vCPU 0 runs alone.
    let bytes = unsafe { core::slice::from_raw_parts(ipa as *const u8, len as usize) };
    Some(bytes.to_vec())
}

#[repr(C, align(4096))]
struct MsgPage(UnsafeCell<[u8; MSG_PAGE_SIZE]>);

// SAFETY: vCPU n only ever touches page n (indexed by its own MPIDR), with IRQs masked.
unsafe impl Sync for MsgPage {}

static MSG_PAGES: [MsgPage; MAX_VCPUS] =
    [const { MsgPage(UnsafeCell::new([0; MSG_PAGE_SIZE])) }; MAX_VCPUS];

fn own_page() -> &'static MsgPage {
    let vcpu = (mpidr() & 0xFF) as usize;
    // Boot code parks vCPUs at or above MAX_VCPUS, so this cannot fail.
    &MSG_PAGES[vcpu]
}

/// Guest-physical address of the calling vCPU's message page.
pub fn msg_page_ipa() -> u64 {
    own_page().0.get() as u64
}

/// Copies `bytes` (at most a page; longer input is truncated) into this vCPU's message page.
pub fn msg_write(bytes: &[u8]) {
    let page = own_page();
    let n = bytes.len().min(MSG_PAGE_SIZE);
    without_interrupts(|| {
        // SAFETY: only this vCPU uses its page and IRQs are masked, so no other reference
        // to it exists during the copy; `n` is at most the page size.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), page.0.get().cast::<u8>(), n) }
    })
}

/// Copies the first `len` bytes (at most a page) of this vCPU's message page out.
pub fn msg_read(len: usize) -> Vec<u8> {
    let page = own_page();
    let n = len.min(MSG_PAGE_SIZE);
    let mut out = alloc::vec![0u8; n];
    without_interrupts(|| {
        // SAFETY: as for `msg_write`; the microvisor writes the page only during our `hvc`.
        unsafe { core::ptr::copy_nonoverlapping(page.0.get().cast::<u8>(), out.as_mut_ptr(), n) }
    });
    out
}

#[cfg(feature = "native")]
fn check_gic(addr: u64) {
    use crate::board::{GICC_BASE, GICC_SIZE, GICD_BASE, GICD_SIZE, GICR_BASE, GICR_SIZE};
    let in_gicd = (GICD_BASE..GICD_BASE + GICD_SIZE).contains(&addr);
    let in_gicr = (GICR_BASE..GICR_BASE + GICR_SIZE).contains(&addr);
    let in_gicc = (GICC_BASE..GICC_BASE + GICC_SIZE).contains(&addr);
    assert!(
        (in_gicd || in_gicr || in_gicc) && addr.is_multiple_of(4),
        "not a GIC register: {addr:#x}"
    );
}

#[cfg(not(feature = "native"))]
fn check_gic(addr: u64) {
    let in_gicd =
        addr >= GUEST_GICD_BASE.as_u64() && addr < GUEST_GICD_BASE.as_u64() + GUEST_GICD_SIZE;
    let in_gicr =
        addr >= GUEST_GICR_BASE.as_u64() && addr < GUEST_GICR_BASE.as_u64() + GUEST_GICR_SIZE;
    // A vGICv2's CPU interface (its 4 KiB distributor lies inside the GICv3 one's range).
    let gicc = GUEST_GICV2_GICC_BASE.as_u64();
    let in_gicc = addr >= gicc && addr < gicc + GUEST_GICV2_GICC_SIZE;
    assert!(
        (in_gicd || in_gicr || in_gicc) && addr.is_multiple_of(4),
        "not a GIC register: {addr:#x}"
    );
}

/// 32-bit read of a GIC register (emulated distributor or redistributor, or a vGICv2's
/// CPU interface). Panics outside the GIC frames (a runtime bug).
pub fn gic_read32(addr: u64) -> u32 {
    check_gic(addr);
    // SAFETY: the address is an aligned register in the GIC frames (checked above), all in
    // the `[0, 1G)` block our identity map makes Device memory and owned by no Rust object;
    // a single 32-bit load (reading an IAR acknowledges, which is the caller's intent).
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// 32-bit write of a GIC register (as for [`gic_read32`]). Panics outside the GIC frames (a runtime bug).
pub fn gic_write32(addr: u64, value: u32) {
    check_gic(addr);
    // SAFETY: as for `gic_read32`; a single 32-bit store.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
}

/// Reads 32 bits at `addr`, which must lie outside `[ram_start, ram_end)` (otherwise `None`
/// and nothing is read). Adversarial tests use it to touch memory they do not own; the
/// microvisor is expected to stop the domain.
pub fn probe_read32(addr: u64, ram_start: u64, ram_end: u64) -> Option<u32> {
    if (addr >= ram_start && addr < ram_end) || !addr.is_multiple_of(4) {
        return None;
    }
    // SAFETY: the address is outside our RAM, so no Rust object lives there and the read
    // cannot alias anything; the worst outcome is a fault handled by the microvisor.
    Some(unsafe { core::ptr::read_volatile(addr as *const u32) })
}
