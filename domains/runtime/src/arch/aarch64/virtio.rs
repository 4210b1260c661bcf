//! virtio devices handed to this domain by `DeviceMap`: the `virtio-drivers` HAL and the
//! block device (the console is in `virtio_console`).
//!
//! Without an IOMMU a device sees host-physical addresses, so DMA buffers are translated
//! with the DMA offset `DeviceMap` reports. The domain's RAM is contiguous in both address
//! spaces and identity-mapped by our stage 1, so a buffer's virtual address is its
//! guest-physical address.

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk, SECTOR_SIZE as SECTOR};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// Host-physical minus guest-physical address of our RAM.
static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Records the DMA offset `DeviceMap` reported, before the device is opened.
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

/// Transfers a [`Block`] keeps in flight at most (its virtqueue has 16 descriptors and a
/// transfer takes one, with indirect descriptors).
pub const BLOCK_DEPTH: usize = 8;

/// One transfer in flight: its request/response slot, the device's token, its range of
/// the staging buffer and its position in the results [`Block::finish`] reports.
#[derive(Clone, Copy)]
struct Flight {
    slot: usize,
    token: u16,
    at: usize,
    len: usize,
    write: bool,
    seq: usize,
}

/// A virtio block device with a staging buffer that transfers read and fill. Up to
/// [`BLOCK_DEPTH`] transfers are in flight at once ([`Block::start`]), completed in
/// whatever order the device finishes them and reported in start order
/// ([`Block::finish`]).
///
/// The device writes the staging buffer and the request headers behind the compiler's
/// back, so they are kept as raw allocations, never freed (a `Block` lives as long as its
/// domain): a reference to the buffer exists only
/// inside [`Block::staging`]'s borrow, which first waits for every transfer; a transfer
/// borrows its own range only while it is queued and completed.
pub struct Block {
    dev: VirtIOBlk<RuntimeHal, MmioTransport<'static>>,
    /// The transport's registers (what the interrupt handler acknowledges).
    base: usize,
    /// The device interrupts on completions and waits sleep in WFI ([`Block::use_interrupt`]);
    /// else they spin.
    interrupts: bool,
    staging: NonNull<u8>,
    staging_len: usize,
    reqs: NonNull<BlkReq>,
    resps: NonNull<BlkResp>,
    flights: alloc::vec::Vec<Flight>,
    done: alloc::vec::Vec<Option<Result<(), DeviceError>>>,
}

/// Slot `slot`'s header and response and `len` bytes at `at` of the staging buffer, as the
/// device API wants them.
///
/// # Safety
/// `slot < BLOCK_DEPTH` and `at + len` within the staging buffer; nothing else may use
/// them while the references live.
unsafe fn parts<'a>(
    reqs: NonNull<BlkReq>,
    resps: NonNull<BlkResp>,
    staging: NonNull<u8>,
    slot: usize,
    at: usize,
    len: usize,
) -> (&'a mut BlkReq, &'a mut [u8], &'a mut BlkResp) {
    // SAFETY: in bounds of their allocations and exclusive, per the contract.
    unsafe {
        (
            &mut *reqs.as_ptr().add(slot),
            core::slice::from_raw_parts_mut(staging.as_ptr().add(at), len),
            &mut *resps.as_ptr().add(slot),
        )
    }
}

/// `n` default values in a leaked heap array (the device may still use them if the owner
/// goes away, so they are never freed).
fn raw_array<T: Default>(n: usize) -> NonNull<T> {
    let v: alloc::boxed::Box<[T]> = (0..n).map(|_| T::default()).collect();
    NonNull::new(alloc::boxed::Box::into_raw(v) as *mut T).expect("a box is never null")
}

impl Block {
    /// Opens the virtio-blk device whose transport `DeviceMap` gave us at `base` (`size`
    /// bytes), with a page-aligned staging buffer of `staging` bytes (at least one sector).
    pub fn open(base: u64, size: u64, staging: usize) -> Result<Self, DeviceError> {
        let header =
            NonNull::new(base as usize as *mut VirtIOHeader).ok_or(DeviceError::Transport)?;
        // SAFETY: `DeviceMap` gave us this transport (its accesses trap to the microvisor,
        // which performs them inside our window only), and our stage 1 maps the low
        // gigabyte as Device memory; nothing else in this domain touches it.
        let transport = unsafe { MmioTransport::new(header, size as usize) }
            .map_err(|_| DeviceError::Transport)?;
        let dev = VirtIOBlk::new(transport).map_err(|_| DeviceError::Device)?;
        let staging_len = staging.max(SECTOR).next_multiple_of(PAGE_SIZE);
        let layout = Layout::from_size_align(staging_len, PAGE_SIZE).expect("page layout");
        // SAFETY: the layout has a non-zero size.
        let buf = NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) })
            .expect("out of memory for the staging buffer");
        Ok(Self {
            dev,
            base: base as usize,
            interrupts: false,
            staging: buf,
            staging_len,
            reqs: raw_array(BLOCK_DEPTH),
            resps: raw_array(BLOCK_DEPTH),
            flights: alloc::vec::Vec::with_capacity(BLOCK_DEPTH),
            done: alloc::vec::Vec::new(),
        })
    }

    /// Size in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.dev.capacity()
    }

    /// True if the device refuses writes.
    pub fn readonly(&self) -> bool {
        self.dev.readonly()
    }

    /// The device's serial (`VIRTIO_BLK_T_GET_ID`), as the host named it.
    pub fn serial(&mut self) -> Result<alloc::string::String, DeviceError> {
        self.wait_all();
        let mut id = [0u8; 20];
        let n = self
            .dev
            .device_id(&mut id)
            .map_err(|_| DeviceError::Device)?;
        Ok(alloc::string::String::from_utf8_lossy(&id[..n]).into())
    }

    /// The staging buffer, once every transfer in flight has completed (their results
    /// are kept for [`Block::finish`]).
    pub fn staging(&mut self) -> &mut [u8] {
        self.wait_all();
        // SAFETY: the allocation is `staging_len` bytes, owned by `self`; no transfer is in
        // flight, so the device does not touch it, and the borrow of `self` keeps `start`
        // from queueing one while the slice lives.
        unsafe { core::slice::from_raw_parts_mut(self.staging.as_ptr(), self.staging_len) }
    }

    /// Queues a transfer of `len` bytes (whole sectors) between sector `sector` and
    /// `staging()[at..at + len]`. Refused if [`BLOCK_DEPTH`] transfers are in flight, or
    /// the range is empty, not whole sectors, outside the buffer or overlapping a transfer
    /// in flight.
    pub fn start(
        &mut self,
        write: bool,
        sector: u64,
        at: usize,
        len: usize,
    ) -> Result<(), DeviceError> {
        let fits = at
            .checked_add(len)
            .is_some_and(|end| end <= self.staging_len);
        let apart = self
            .flights
            .iter()
            .all(|f| at + len <= f.at || f.at + f.len <= at);
        if self.flights.len() >= BLOCK_DEPTH
            || len == 0
            || !len.is_multiple_of(SECTOR)
            || !fits
            || !apart
        {
            return Err(DeviceError::Device);
        }
        let slot = (0..BLOCK_DEPTH)
            .find(|s| self.flights.iter().all(|f| f.slot != *s))
            .ok_or(DeviceError::Device)?;
        // SAFETY: the slot is free and the range is inside the buffer (checked above); no
        // reference covers the range (see the type's doc) and no other transfer in flight
        // uses it or the slot. They stay allocated (never freed) and untouched by us until
        // `wait_all` passes the same ones back.
        let token = unsafe {
            let (req, buf, resp) = parts(self.reqs, self.resps, self.staging, slot, at, len);
            if write {
                self.dev.write_blocks_nb(sector as usize, req, buf, resp)
            } else {
                self.dev.read_blocks_nb(sector as usize, req, buf, resp)
            }
        }
        .map_err(|_| DeviceError::Device)?;
        let seq = self.done.len();
        self.done.push(None);
        self.flights.push(Flight {
            slot,
            token,
            at,
            len,
            write,
            seq,
        });
        Ok(())
    }

    /// Waits for every transfer and appends the results of all transfers started since
    /// the last call, in start order.
    pub fn finish(&mut self, results: &mut alloc::vec::Vec<Result<(), DeviceError>>) {
        self.wait_all();
        results.extend(
            self.done
                .drain(..)
                .map(|r| r.unwrap_or(Err(DeviceError::Device))),
        );
    }

    /// Waits until the device has completed every transfer in flight, recording each
    /// result. With [`Block::use_interrupt`] the vCPU sleeps between completions, else it
    /// spins.
    fn wait_all(&mut self) {
        while !self.flights.is_empty() {
            let Some(token) = self.next_used() else {
                continue;
            };
            let Some(i) = self.flights.iter().position(|f| f.token == token) else {
                // Not ours: the device is confused; nothing can be completed safely.
                panic!("virtio-blk completed unknown token {token}");
            };
            let f = self.flights.swap_remove(i);
            // SAFETY: the same header, range and response this token was queued with; the
            // device is done with them.
            let r = unsafe {
                let (req, buf, resp) =
                    parts(self.reqs, self.resps, self.staging, f.slot, f.at, f.len);
                if f.write {
                    self.dev.complete_write_blocks(token, req, buf, resp)
                } else {
                    self.dev.complete_read_blocks(token, req, buf, resp)
                }
            };
            self.done[f.seq] = Some(r.map_err(|_| DeviceError::Device));
        }
    }

    /// Makes completed writes durable (a no-op if the device has no write cache).
    pub fn flush(&mut self) -> Result<(), DeviceError> {
        self.wait_all();
        self.dev.flush().map_err(|_| DeviceError::Device)
    }

    /// The token of the next completed transfer, waiting for one (with interrupts, in WFI;
    /// else by spinning once and answering `None`).
    ///
    /// No completion can be slept through: the device interrupts for the first completion
    /// after the used index we last consumed (published as `used_event` by the queue when
    /// it pops, or by the clear avail flag without `EVENT_IDX`), the used ring is read again
    /// with IRQs masked right before the WFI, and WFI returns on an interrupt that became
    /// pending after that read even though IRQs are masked.
    fn next_used(&mut self) -> Option<u16> {
        if let Some(t) = self.dev.peek_used() {
            return Some(t);
        }
        if !self.interrupts {
            core::hint::spin_loop();
            return None;
        }
        let dev = &mut self.dev;
        crate::irq::wait_for_device(|| {
            // Our `used_event` store (or avail flag) before the device's used index load:
            // otherwise the device might not see that we want an interrupt while we miss
            // its completion.
            core::sync::atomic::fence(Ordering::SeqCst);
            dev.peek_used().is_some()
        });
        self.dev.peek_used()
    }

    /// Makes the device interrupt on SPI `intid` when a transfer completes, so that waits
    /// sleep instead of spinning. The domain's IRQ handler must call
    /// [`super::virtio_irq::ack`] for `intid` (which lowers the level-triggered line), and
    /// the SPI must be enabled at the distributor. Returns false (and keeps polling) if the
    /// interrupt cannot be registered.
    pub fn use_interrupt(&mut self, intid: u32) -> bool {
        // SAFETY: `base` is the transport `DeviceMap` gave us (see `open`), mapped for the
        // domain's life; only `virtio_irq` touches its interrupt status registers (the
        // driver crate's `ack_interrupt` is not called).
        if !unsafe { super::virtio_irq::register(intid, self.base) } {
            return false;
        }
        self.dev.enable_interrupts();
        self.interrupts = true;
        true
    }
}
