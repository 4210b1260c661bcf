//! virtio devices handed to this domain by `DeviceMap`: the `virtio-drivers` HAL (the
//! block device is in `virtio_blk`, the console in `virtio_console`).
//!
//! Without an IOMMU a device sees host-physical addresses, so DMA buffers are translated
//! with the DMA offset `DeviceMap` reports. The domain's RAM is contiguous in both address
//! spaces and identity-mapped by our stage 1, so a buffer's virtual address is its
//! guest-physical address.
//!
//! Alias regions: a driver may register pages of its own RAM whose device address is
//! something else ([`register_alias`]), so that a buffer the device should see at a
//! foreign address (a frontend's page given to us by a grant device map) can still be
//! handed to `virtio-drivers` as a slice: the slice covers our alias page (real memory we
//! never read or write while it is queued), and [`RuntimeHal::share`] gives the device
//! the foreign address instead. This is how the block device reads and writes granted
//! pages without a bounce buffer.

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// Host-physical minus guest-physical address of our RAM.
static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Records the DMA offset `DeviceMap` reported, before the device is opened.
pub fn set_phys_offset(offset: u64) {
    PHYS_OFFSET.store(offset, Ordering::Release);
}

pub(super) fn to_phys(va: usize) -> PhysAddr {
    (va as u64).wrapping_add(PHYS_OFFSET.load(Ordering::Acquire))
}

/// Alias regions that may be registered at once (one per block device).
const MAX_ALIAS_REGIONS: usize = 8;

/// One registered alias region: `pages` pages of our RAM at `base`, and for each the
/// device address a buffer on it stands for (`table`, `pages` entries).
struct AliasRegion {
    base: AtomicUsize,
    pages: AtomicUsize,
    table: AtomicPtr<AtomicU64>,
}

#[allow(clippy::declare_interior_mutable_const)] // Only to initialise the array below.
const NO_REGION: AliasRegion = AliasRegion {
    base: AtomicUsize::new(0),
    pages: AtomicUsize::new(0),
    table: AtomicPtr::new(core::ptr::null_mut()),
};

static ALIASES: [AliasRegion; MAX_ALIAS_REGIONS] = [NO_REGION; MAX_ALIAS_REGIONS];

/// Registers `table.len()` pages at `base` (page-aligned, our RAM, never freed) as an alias
/// region whose page `i` the device sees at `table[i]` (plus the offset in the page).
/// Returns false if every region is taken (the caller then has no alias path).
pub fn register_alias(base: NonNull<u8>, table: &'static [AtomicU64]) -> bool {
    for r in &ALIASES {
        // Claim the slot by its table pointer; base and size follow (a share() of this
        // region cannot happen before the registration returns).
        if r.table
            .compare_exchange(
                core::ptr::null_mut(),
                table.as_ptr() as *mut AtomicU64,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            r.pages.store(table.len(), Ordering::Release);
            r.base.store(base.as_ptr() as usize, Ordering::Release);
            return true;
        }
    }
    false
}

/// The device address a buffer at `va` stands for, if `va` lies in an alias region.
fn alias(va: usize) -> Option<PhysAddr> {
    for r in &ALIASES {
        let base = r.base.load(Ordering::Acquire);
        let pages = r.pages.load(Ordering::Acquire);
        if base == 0 || va < base || va >= base + pages * PAGE_SIZE {
            continue;
        }
        let page = (va - base) / PAGE_SIZE;
        let table = r.table.load(Ordering::Acquire);
        // SAFETY: `table` points at a leaked (never freed) array of `pages` entries
        // (`register_alias`'s contract), and `page < pages`.
        let dev = unsafe { (*table.add(page)).load(Ordering::Acquire) };
        return Some(dev + ((va - base) % PAGE_SIZE) as u64);
    }
    None
}

/// The HAL `virtio-drivers` uses: heap pages for DMA, host-physical addresses for devices.
pub struct RuntimeHal;

// SAFETY: DMA pages come from the global allocator (page aligned, zeroed, never handed out
// twice until freed), their physical addresses are exact (contiguous RAM at a fixed
// offset), and MMIO addresses are identity-mapped by our stage 1. A buffer in an alias
// region is shared at the address its registrant stands behind (a granted frame pinned
// until the device is done with it).
unsafe impl Hal for RuntimeHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let layout = Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).expect("page layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).expect("out of memory for DMA buffers");
        (to_phys(ptr.as_ptr() as usize), ptr)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        let layout = Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).expect("page layout");
        // SAFETY: `vaddr` came from `dma_alloc` with the same layout (the caller's contract).
        unsafe { alloc::alloc::dealloc(vaddr.as_ptr(), layout) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as usize as *mut u8).expect("MMIO at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        let va = buffer.as_ptr() as *mut u8 as usize;
        alias(va).unwrap_or_else(|| to_phys(va))
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// Why a device could not be used.
#[derive(Debug)]
pub enum DeviceError {
    /// The MMIO registers are not a virtio transport.
    Transport,
    /// The device refused initialisation or an operation.
    Device,
}

pub use super::virtio_blk::{Block, DiscardLimits, DmaSeg, BLOCK_DEPTH, DIRECT_SEGMENTS};
