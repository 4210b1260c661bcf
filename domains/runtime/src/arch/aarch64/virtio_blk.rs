//! The virtio-blk device of a driver domain: a small driver of our own over
//! `virtio-drivers`' MMIO transport and split virtqueue.
//!
//! Not the crate's `VirtIOBlk`, because that one takes one buffer per request and does not
//! negotiate discard: a request here is a descriptor chain of any number of buffers
//! (header, data segments, status), so a transfer can go straight to a frontend's granted
//! pages ([`Block::start_direct`]: one segment per page, each seen by the device at the
//! address a grant device map gave, through the HAL's alias regions), and
//! `VIRTIO_BLK_T_DISCARD` is available when the device offers it ([`Block::discard`]).
//!
//! Memory the device reads or writes behind the compiler's back (the staging buffer, the
//! request headers and status bytes, the alias pages) is kept as raw, never-freed
//! allocations: a `Block` lives as long as its domain, and the device may still use them
//! if it goes away. A reference to the staging buffer exists only inside
//! [`Block::staging`]'s borrow, which first waits for every transfer; a transfer borrows
//! its own buffers only while it is queued and completed.

use super::virtio::{register_alias, DeviceError, RuntimeHal};
use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::Transport;
use virtio_drivers::PAGE_SIZE;
use zerocopy::IntoBytes;

#[path = "virtio_blk_sync.rs"]
mod sync;
#[path = "virtio_blk_wire.rs"]
mod wire;

use wire::{
    read_discard, Features, Header, CFG_CAPACITY, QUEUE, QUEUE_SIZE, SECTOR, S_OK, S_PENDING, T_IN,
    T_OUT,
};
pub use wire::{DiscardLimits, DmaSeg, BLOCK_DEPTH, DIRECT_SEGMENTS};

/// Where a transfer's data is.
#[derive(Clone, Copy)]
enum Data {
    /// `len` bytes at `at` of the staging buffer.
    Staged { at: usize, len: usize },
    /// `n` segments on the slot's alias pages: segment `i` is `pieces[i] = (offset, len)`
    /// on alias page `i` of the slot.
    Direct {
        n: usize,
        pieces: [(u16, u16); DIRECT_SEGMENTS],
    },
}

/// One transfer in flight: its header/status slot, the device's token, its data, its
/// direction and its position in the results [`Block::finish`] reports.
#[derive(Clone, Copy)]
struct Flight {
    slot: usize,
    token: u16,
    data: Data,
    write: bool,
    seq: usize,
}

/// A virtio block device with a staging buffer that transfers read and fill, and direct
/// transfers to device addresses. Up to [`BLOCK_DEPTH`] transfers are in flight at once,
/// completed in whatever order the device finishes them and reported in start order
/// ([`Block::finish`]); the device is notified once per batch, when it is waited for.
pub struct Block {
    transport: MmioTransport<'static>,
    queue: VirtQueue<RuntimeHal, QUEUE_SIZE>,
    features: Features,
    capacity: u64,
    discard: Option<DiscardLimits>,
    /// The transport's registers (what the interrupt handler acknowledges).
    base: usize,
    /// The device interrupts on completions and waits sleep in WFI ([`Block::use_interrupt`]);
    /// else they spin.
    interrupts: bool,
    staging: NonNull<u8>,
    staging_len: usize,
    headers: NonNull<Header>,
    statuses: NonNull<u8>,
    /// `BLOCK_DEPTH * DIRECT_SEGMENTS` alias pages (slot `s` uses the `s`-th run of
    /// [`DIRECT_SEGMENTS`]), and the device address each stands for; `None` if no alias
    /// region could be registered (then there are no direct transfers).
    alias: Option<(NonNull<u8>, &'static [AtomicU64])>,
    flights: Vec<Flight>,
    done: Vec<Option<Result<(), DeviceError>>>,
    /// Transfers were queued since the device was last notified: the notify (a trapped
    /// register write) is sent once for all of them when they are waited for.
    unkicked: bool,
}

/// `n` default values in a leaked heap array (the device may still use them if the owner
/// goes away, so they are never freed).
fn raw_array<T: Default>(n: usize) -> NonNull<T> {
    let v: alloc::boxed::Box<[T]> = (0..n).map(|_| T::default()).collect();
    NonNull::new(alloc::boxed::Box::into_raw(v) as *mut T).expect("a box is never null")
}

/// `bytes` (a multiple of the page size) of zeroed, page-aligned memory, never freed.
fn raw_pages(bytes: usize) -> NonNull<u8> {
    let layout = Layout::from_size_align(bytes, PAGE_SIZE).expect("page layout");
    // SAFETY: the layout has a non-zero size (callers ask for at least a page).
    NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) }).expect("out of memory for DMA")
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
        let mut transport = unsafe { MmioTransport::new(header, size as usize) }
            .map_err(|_| DeviceError::Transport)?;
        let features = transport.begin_init(Features::all());
        // Two 32-bit reads: each register access of the trapped transport is one word.
        let capacity = transport
            .read_consistent(|| {
                let low = transport.read_config_space::<u32>(CFG_CAPACITY)?;
                let high = transport.read_config_space::<u32>(CFG_CAPACITY + 4)?;
                Ok(u64::from(low) | (u64::from(high) << 32))
            })
            .map_err(|_| DeviceError::Device)?;
        let discard = if features.contains(Features::DISCARD) {
            read_discard(&transport)
        } else {
            None
        };
        let queue = VirtQueue::new(
            &mut transport,
            QUEUE,
            features.contains(Features::RING_INDIRECT_DESC),
            features.contains(Features::RING_EVENT_IDX),
        )
        .map_err(|_| DeviceError::Device)?;
        transport.finish_init();
        let staging_len = staging.max(SECTOR).next_multiple_of(PAGE_SIZE);
        // Direct chains need indirect descriptors (a chain longer than the queue otherwise).
        let alias = features
            .contains(Features::RING_INDIRECT_DESC)
            .then(|| {
                let pages = BLOCK_DEPTH * DIRECT_SEGMENTS;
                let base = raw_pages(pages * PAGE_SIZE);
                let table: &'static [AtomicU64] =
                    alloc::boxed::Box::leak((0..pages).map(|_| AtomicU64::new(0)).collect());
                register_alias(base, table).then_some((base, table))
            })
            .flatten();
        Ok(Self {
            transport,
            queue,
            features,
            capacity,
            discard,
            base: base as usize,
            interrupts: false,
            staging: raw_pages(staging_len),
            staging_len,
            headers: raw_array(BLOCK_DEPTH),
            statuses: raw_array(BLOCK_DEPTH),
            alias,
            flights: Vec::with_capacity(BLOCK_DEPTH),
            unkicked: false,
            done: Vec::new(),
        })
    }

    /// Size in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// True if the device refuses writes.
    pub fn readonly(&self) -> bool {
        self.features.contains(Features::RO)
    }

    /// Whether the device has a cache that [`Block::flush`] empties.
    pub fn has_flush(&self) -> bool {
        self.features.contains(Features::FLUSH)
    }

    /// What the device accepts in a discard, if it discards at all.
    pub fn discard_limits(&self) -> Option<DiscardLimits> {
        self.discard
    }

    /// Segments a [`Block::start_direct`] transfer may carry (0: no direct transfers).
    pub fn direct_segments(&self) -> usize {
        if self.alias.is_some() {
            DIRECT_SEGMENTS
        } else {
            0
        }
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

    /// A free header/status slot, if fewer than [`BLOCK_DEPTH`] transfers are in flight.
    fn free_slot(&self) -> Option<usize> {
        (0..BLOCK_DEPTH).find(|s| self.flights.iter().all(|f| f.slot != *s))
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
        let apart = self.flights.iter().all(|f| match f.data {
            Data::Staged { at: a, len: l } => at + len <= a || a + l <= at,
            Data::Direct { .. } => true,
        });
        if len == 0 || !len.is_multiple_of(SECTOR) || !fits || !apart {
            return Err(DeviceError::Device);
        }
        let slot = self.free_slot().ok_or(DeviceError::Device)?;
        self.queue_flight(slot, write, sector, Data::Staged { at, len })
    }

    /// Queues a transfer between sector `sector` and the device addresses `segs` (at most
    /// [`Block::direct_segments`], each whole sectors within a page, together the
    /// transfer's length): the device reads them for a write and fills them for a read.
    /// The caller keeps the memory behind them reserved for the device until
    /// [`Block::finish`] has reported this transfer (a granted frame stays pinned by its
    /// device map until then). Refused like [`Block::start`], or if the segments do not fit.
    pub fn start_direct(
        &mut self,
        write: bool,
        sector: u64,
        segs: &[DmaSeg],
    ) -> Result<(), DeviceError> {
        let Some((_, table)) = self.alias else {
            return Err(DeviceError::Device);
        };
        let sane = |s: &DmaSeg| {
            s.len > 0
                && (s.len as usize).is_multiple_of(SECTOR)
                && (s.addr as usize % PAGE_SIZE) + s.len as usize <= PAGE_SIZE
        };
        if segs.is_empty() || segs.len() > DIRECT_SEGMENTS || !segs.iter().all(sane) {
            return Err(DeviceError::Device);
        }
        let slot = self.free_slot().ok_or(DeviceError::Device)?;
        let mut pieces = [(0, 0); DIRECT_SEGMENTS];
        for ((i, s), p) in segs.iter().enumerate().zip(pieces.iter_mut()) {
            // Alias page i of the slot stands for this segment's page; the slice placed
            // on it starts at the segment's offset in the page, so the HAL shares it at
            // exactly `s.addr`.
            let page = s.addr & !(PAGE_SIZE as u64 - 1);
            table[slot * DIRECT_SEGMENTS + i].store(page, Ordering::Release);
            *p = ((s.addr as usize % PAGE_SIZE) as u16, s.len as u16);
        }
        let data = Data::Direct {
            n: segs.len(),
            pieces,
        };
        self.queue_flight(slot, write, sector, data)
    }

    /// The buffers of a transfer in slot `slot`, in chain order: device-readable
    /// (`inputs`: the header, and the data of a write) and device-writable (`outputs`: the
    /// data of a read, and the status byte).
    ///
    /// # Safety
    /// The slot's header and status, and the data's memory (staging range or alias pages),
    /// must not be referenced elsewhere while the slices live; the staging range lies in
    /// the buffer and the alias pages exist ([`Block::start`] and [`Block::start_direct`]
    /// checked both).
    unsafe fn chain<'a>(
        &self,
        slot: usize,
        write: bool,
        data: Data,
    ) -> (Vec<&'a [u8]>, Vec<&'a mut [u8]>) {
        // SAFETY: `slot < BLOCK_DEPTH`, within the header and status arrays; exclusive per
        // the contract.
        let (header, status) = unsafe {
            (
                (*self.headers.as_ptr().add(slot)).as_bytes(),
                core::slice::from_raw_parts_mut(self.statuses.as_ptr().add(slot), 1),
            )
        };
        // Sized once: this runs twice per transfer (queueing and popping) and every
        // reallocation is a walk of the heap's free list.
        let n = match data {
            Data::Staged { .. } => 1,
            Data::Direct { n, .. } => n,
        };
        let mut inputs: Vec<&'a [u8]> = Vec::with_capacity(if write { n + 1 } else { 1 });
        let mut outputs: Vec<&'a mut [u8]> = Vec::with_capacity(if write { 1 } else { n + 1 });
        inputs.push(header);
        let mut put = |b: &'a mut [u8]| {
            if write {
                inputs.push(b);
            } else {
                outputs.push(b);
            }
        };
        match data {
            Data::Staged { at, len } => {
                // SAFETY: inside the staging buffer and exclusive, per the contract.
                let buf =
                    unsafe { core::slice::from_raw_parts_mut(self.staging.as_ptr().add(at), len) };
                put(buf)
            }
            Data::Direct { n, pieces } => {
                let (base, _) = self.alias.expect("direct data without alias pages");
                for (i, &(off, len)) in pieces.iter().enumerate().take(n) {
                    let page = (slot * DIRECT_SEGMENTS + i) * PAGE_SIZE;
                    // SAFETY: alias page `slot * DIRECT_SEGMENTS + i` of the region
                    // (`BLOCK_DEPTH * DIRECT_SEGMENTS` pages), `off + len <= PAGE_SIZE`
                    // (checked by `start_direct`); nothing else uses the slot's pages.
                    put(unsafe {
                        core::slice::from_raw_parts_mut(
                            base.as_ptr().add(page + usize::from(off)),
                            usize::from(len),
                        )
                    });
                }
            }
        }
        outputs.push(status);
        (inputs, outputs)
    }

    /// Queues the transfer `data` in free slot `slot`. The device hears of it when the
    /// transfers are waited for ([`Block::finish`], or anything else that waits): one
    /// notify for a whole batch.
    fn queue_flight(
        &mut self,
        slot: usize,
        write: bool,
        sector: u64,
        data: Data,
    ) -> Result<(), DeviceError> {
        let header = Header {
            kind: if write { T_OUT } else { T_IN },
            reserved: 0,
            sector,
        };
        // SAFETY: the slot is free: no transfer in flight uses its header or status.
        unsafe {
            self.headers.as_ptr().add(slot).write(header);
            self.statuses.as_ptr().add(slot).write(S_PENDING);
        }
        // SAFETY: the slot is free and the data's memory was checked by the caller and is
        // used by no other transfer in flight (staging ranges apart, alias pages per slot);
        // the buffers stay allocated (never freed) and untouched by us until `wait_all`
        // passes the same ones back to `pop_used`.
        let token = unsafe {
            let (inputs, mut outputs) = self.chain(slot, write, data);
            self.queue.add(&inputs, &mut outputs)
        }
        .map_err(|_| DeviceError::Device)?;
        self.unkicked = true;
        let seq = self.done.len();
        self.done.push(None);
        self.flights.push(Flight {
            slot,
            token,
            data,
            write,
            seq,
        });
        Ok(())
    }

    /// Waits for every transfer and appends the results of all transfers started since
    /// the last call, in start order.
    pub fn finish(&mut self, results: &mut Vec<Result<(), DeviceError>>) {
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
        if core::mem::take(&mut self.unkicked) && self.queue.should_notify() {
            self.transport.notify(QUEUE);
        }
        while !self.flights.is_empty() {
            let Some(token) = self.next_used() else {
                continue;
            };
            let Some(i) = self.flights.iter().position(|f| f.token == token) else {
                // Not ours: the device is confused; nothing can be completed safely.
                panic!("virtio-blk completed unknown token {token}");
            };
            let f = self.flights.swap_remove(i);
            // SAFETY: the same buffers this token was queued with; the device is done
            // with them.
            let popped = unsafe {
                let (inputs, mut outputs) = self.chain(f.slot, f.write, f.data);
                self.queue.pop_used(token, &inputs, &mut outputs)
            };
            // SAFETY: the slot's status byte; the device has written it (used ring entry
            // read with Acquire by the queue) and no reference to it is alive.
            let status = unsafe { self.statuses.as_ptr().add(f.slot).read_volatile() };
            let ok = popped.is_ok() && status == S_OK;
            self.done[f.seq] = Some(if ok { Ok(()) } else { Err(DeviceError::Device) });
        }
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
        if let Some(t) = self.queue.peek_used() {
            return Some(t);
        }
        if !self.interrupts {
            core::hint::spin_loop();
            return None;
        }
        let queue = &self.queue;
        crate::irq::wait_for_device(|| {
            // Our `used_event` store (or avail flag) before the device's used index load:
            // otherwise the device might not see that we want an interrupt while we miss
            // its completion.
            core::sync::atomic::fence(Ordering::SeqCst);
            queue.peek_used().is_some()
        });
        self.queue.peek_used()
    }

    /// Makes the device interrupt on SPI `intid` when a transfer completes, so that waits
    /// sleep instead of spinning. The domain's IRQ handler must call
    /// [`super::virtio_irq::ack`] for `intid` (which lowers the level-triggered line), and
    /// the SPI must be enabled at the distributor. Returns false (and keeps polling) if the
    /// interrupt cannot be registered.
    pub fn use_interrupt(&mut self, intid: u32) -> bool {
        // SAFETY: `base` is the transport `DeviceMap` gave us (see `open`), mapped for the
        // domain's life; only `virtio_irq` touches its interrupt status registers (the
        // transport's `ack_interrupt` is not called).
        if !unsafe { super::virtio_irq::register(intid, self.base) } {
            return false;
        }
        self.queue.set_dev_notify(true);
        self.interrupts = true;
        true
    }
}
