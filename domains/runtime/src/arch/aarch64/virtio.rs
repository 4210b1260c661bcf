//! virtio devices handed to this domain by `DeviceMap`: the `virtio-drivers` HAL and a
//! console port.
//!
//! Without an IOMMU a device sees host-physical addresses, so DMA buffers are translated
//! with the start info's `phys_offset`. The domain's RAM is contiguous in both address
//! spaces and identity-mapped by our stage 1, so a buffer's virtual address is its
//! guest-physical address.

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::device::console::VirtIOConsole;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// Host-physical minus guest-physical address of our RAM.
static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Records the start info's `phys_offset` before any device is opened.
pub fn set_phys_offset(offset: u64) {
    PHYS_OFFSET.store(offset, Ordering::Release);
}

fn to_phys(va: usize) -> PhysAddr {
    (va as u64).wrapping_add(PHYS_OFFSET.load(Ordering::Acquire))
}

/// The HAL `virtio-drivers` uses: heap pages for DMA, host-physical addresses for devices.
pub struct RuntimeHal;

// SAFETY: DMA pages come from the global allocator (page aligned, zeroed, never handed out
// twice until freed), their physical addresses are exact (contiguous RAM at a fixed
// offset), and MMIO addresses are identity-mapped by our stage 1.
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
        to_phys(buffer.as_ptr() as *mut u8 as usize)
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

/// A virtio console port.
pub struct Console(VirtIOConsole<RuntimeHal, MmioTransport<'static>>);

impl Console {
    /// Opens the virtio console whose transport `DeviceMap` mapped at `base` (`size` bytes).
    pub fn open(base: u64, size: u64) -> Result<Self, DeviceError> {
        let header =
            NonNull::new(base as usize as *mut VirtIOHeader).ok_or(DeviceError::Transport)?;
        // SAFETY: `DeviceMap` mapped this transport into our stage 2 and our stage 1 maps
        // the low gigabyte as Device memory; nothing else in this domain touches it.
        let transport = unsafe { MmioTransport::new(header, size as usize) }
            .map_err(|_| DeviceError::Transport)?;
        VirtIOConsole::new(transport)
            .map(Console)
            .map_err(|_| DeviceError::Device)
    }

    /// The next received byte, if any (never blocks).
    pub fn read_byte(&mut self) -> Option<u8> {
        self.0.recv(true).ok().flatten()
    }

    /// Sends bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), DeviceError> {
        self.0.send_bytes(bytes).map_err(|_| DeviceError::Device)
    }

    /// Acknowledges the device's interrupt; true if it had raised one.
    pub fn ack_interrupt(&mut self) -> bool {
        self.0.ack_interrupt().unwrap_or(false)
    }
}

/// A virtio block device. Requests are synchronous: the call returns when the device has
/// completed it (the caller's buffer is the DMA buffer, so no copy).
pub struct Block(VirtIOBlk<RuntimeHal, MmioTransport<'static>>);

impl Block {
    /// Opens the virtio-blk device whose transport `DeviceMap` gave us at `base` (`size`
    /// bytes).
    pub fn open(base: u64, size: u64) -> Result<Self, DeviceError> {
        let header =
            NonNull::new(base as usize as *mut VirtIOHeader).ok_or(DeviceError::Transport)?;
        // SAFETY: `DeviceMap` gave us this transport (its accesses trap to the microvisor,
        // which performs them inside our window only), and our stage 1 maps the low
        // gigabyte as Device memory; nothing else in this domain touches it.
        let transport = unsafe { MmioTransport::new(header, size as usize) }
            .map_err(|_| DeviceError::Transport)?;
        VirtIOBlk::new(transport)
            .map(Block)
            .map_err(|_| DeviceError::Device)
    }

    /// Size in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.0.capacity()
    }

    /// True if the device refuses writes.
    pub fn readonly(&self) -> bool {
        self.0.readonly()
    }

    /// The device's serial (`VIRTIO_BLK_T_GET_ID`), as the host named it.
    pub fn serial(&mut self) -> Result<alloc::string::String, DeviceError> {
        let mut id = [0u8; 20];
        let n = self.0.device_id(&mut id).map_err(|_| DeviceError::Device)?;
        Ok(alloc::string::String::from_utf8_lossy(&id[..n]).into())
    }

    /// Reads `buf.len()` bytes (a multiple of 512) starting at `sector`.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.0
            .read_blocks(sector as usize, buf)
            .map_err(|_| DeviceError::Device)
    }

    /// Writes `buf` (a multiple of 512 bytes) starting at `sector`.
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.0
            .write_blocks(sector as usize, buf)
            .map_err(|_| DeviceError::Device)
    }

    /// Makes completed writes durable (a no-op if the device has no write cache).
    pub fn flush(&mut self) -> Result<(), DeviceError> {
        self.0.flush().map_err(|_| DeviceError::Device)
    }

    /// Acknowledges the device's interrupt.
    pub fn ack_interrupt(&mut self) {
        let _ = self.0.ack_interrupt();
    }

    /// Asks the device not to interrupt on completions (the caller polls).
    pub fn disable_interrupts(&mut self) {
        self.0.disable_interrupts();
    }
}
