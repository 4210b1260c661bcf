//! A virtio-net NIC handed to this domain by `DeviceMap` (netdom's uplink), over the raw
//! driver of the `virtio-drivers` crate with the same DMA HAL as the other virtio devices.
//!
//! Receive buffers are posted once at open and reposted after each frame. A send does not
//! wait for the device: the frame is copied into a transmit buffer that stays queued until
//! the device hands it back, and finished sends are reaped by later sends. Waiting for
//! each frame cost a spin per packet for as long as the device model took to run (QEMU
//! transmits from its main loop, not during the notify), which was most of netdom's time
//! per packet; queued, one run of the device model takes every frame posted meanwhile.
//! The driver runs without event indexes (see `virtio_net_transport`), so a burst of
//! frames costs one notification, not one each.

use super::virtio::{DeviceError, RuntimeHal};
use super::virtio_net_transport::NoEventIdx;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};

/// Descriptors per virtqueue: receive buffers posted at once, and sends in flight.
const QUEUE: usize = 64;
/// Bytes per receive buffer: a 12-byte virtio-net header and a 1514-byte frame, rounded up.
const RX_BUFFER: usize = 2048;
/// A transmit buffer's starting capacity (a bigger frame grows it).
const TX_BUFFER: usize = 2048;
/// Sends in flight from which a send first takes back the finished ones.
const REAP_AT: usize = QUEUE / 2;
/// At least the virtio-net header (12 bytes, 10 for a legacy device).
const HDR_ROOM: usize = 16;

/// Offset of the virtio-mmio `QueueNotify` register.
const QUEUE_NOTIFY: usize = 0x050;
/// virtio-net's receive queue.
const RX_QUEUE: u32 = 0;
/// virtio-net's transmit queue.
const TX_QUEUE: u32 = 1;

/// A virtio-net device.
pub struct Net {
    /// The transport's registers.
    base: usize,
    /// Buffers were added to the transmit queue since the last [`Net::flush`].
    tx_added: bool,
    /// Buffers were added to the receive queue since the last [`Net::flush`].
    rx_added: bool,
    raw: VirtIONetRaw<RuntimeHal, NoEventIdx<MmioTransport<'static>>, QUEUE>,
    /// The posted receive buffers, by the token the queue gave each.
    rx: Vec<Option<Box<[u8]>>>,
    /// The transmit buffers the device holds, by token.
    tx: Vec<Option<Vec<u8>>>,
    /// Transmit buffers not in flight, kept for reuse.
    spare: Vec<Vec<u8>>,
    /// Sends in flight.
    in_flight: usize,
}

impl Net {
    /// Opens the virtio-net device whose transport `DeviceMap` gave us at `base` (`size`
    /// bytes), posting every receive buffer.
    pub fn open(base: u64, size: u64) -> Result<Self, DeviceError> {
        let header =
            NonNull::new(base as usize as *mut VirtIOHeader).ok_or(DeviceError::Transport)?;
        // SAFETY: `DeviceMap` gave us this transport (its accesses trap to the microvisor,
        // which performs them inside our window only), and our stage 1 maps the low
        // gigabyte as Device memory; nothing else in this domain touches it.
        let transport = unsafe { MmioTransport::new(header, size as usize) }
            .map_err(|_| DeviceError::Transport)?;
        let raw = VirtIONetRaw::new(NoEventIdx(transport)).map_err(|_| DeviceError::Device)?;
        let mut net = Self {
            base: base as usize,
            tx_added: false,
            rx_added: false,
            raw,
            rx: (0..QUEUE).map(|_| None).collect(),
            tx: (0..QUEUE).map(|_| None).collect(),
            spare: Vec::new(),
            in_flight: 0,
        };
        for _ in 0..QUEUE {
            net.post_rx(vec![0u8; RX_BUFFER].into_boxed_slice())?;
        }
        Ok(net)
    }

    /// Posts `buf` to the receive queue and keeps it until the device fills it.
    fn post_rx(&mut self, mut buf: Box<[u8]>) -> Result<(), DeviceError> {
        // SAFETY: the buffer is kept in `self.rx` under its token, untouched until
        // `receive` takes it back after the device used it; its heap data never moves.
        let token = unsafe { self.raw.receive_begin(&mut buf) }.map_err(|_| DeviceError::Device)?;
        let slot = self
            .rx
            .get_mut(usize::from(token))
            .ok_or(DeviceError::Device)?;
        *slot = Some(buf);
        self.rx_added = true;
        Ok(())
    }

    /// The NIC's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.raw.mac_address()
    }

    /// Hands the next received frame (without the virtio-net header) to `f` and reposts its
    /// buffer; `None` if nothing has arrived.
    pub fn receive<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let token = self.raw.poll_receive()?;
        let mut buf = self.rx.get_mut(usize::from(token))?.take()?;
        // SAFETY: `buf` is the buffer posted under `token` (kept in `self.rx`).
        let (hdr, len) = match unsafe { self.raw.receive_complete(token, &mut buf) } {
            Ok(x) => x,
            Err(_) => {
                // The queue did not give it back: keep it where it was.
                self.rx[usize::from(token)] = Some(buf);
                return None;
            }
        };
        let r = buf.get(hdr..hdr + len).map(f);
        // A buffer that cannot be reposted only shrinks the queue; it never corrupts it.
        let _ = self.post_rx(buf);
        r
    }

    /// Takes back every transmit buffer the device has finished with.
    fn reap(&mut self) {
        while let Some(token) = self.raw.poll_transmit() {
            let Some(buf) = self.tx.get_mut(usize::from(token)).and_then(Option::take) else {
                return;
            };
            // SAFETY: `buf` is the buffer queued under `token`, untouched since.
            if unsafe { self.raw.transmit_complete(token, &buf) }.is_err() {
                self.tx[usize::from(token)] = Some(buf);
                return;
            }
            self.in_flight -= 1;
            self.spare.push(buf);
        }
    }

    /// Queues one frame for sending. When every descriptor is in flight, waits until the
    /// device has finished one: dropping would cost the sender a retransmission.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), DeviceError> {
        // A finished buffer waiting to be taken back costs only memory: take them back
        // in batches.
        if self.in_flight >= REAP_AT {
            self.reap();
        }
        if self.in_flight == QUEUE {
            while self.raw.poll_transmit().is_none() {
                core::hint::spin_loop();
            }
            self.reap();
        }
        let mut buf = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(TX_BUFFER));
        buf.clear();
        buf.resize(HDR_ROOM, 0);
        let hdr = self
            .raw
            .fill_buffer_header(&mut buf)
            .map_err(|_| DeviceError::Device)?;
        buf.truncate(hdr);
        buf.extend_from_slice(frame);
        // SAFETY: `buf` is kept in `self.tx` under its token, untouched until `reap` takes
        // it back after the device used it; its heap data never moves meanwhile.
        let token = match unsafe { self.raw.transmit_begin(&buf) } {
            Ok(t) => t,
            Err(_) => {
                self.spare.push(buf);
                return Err(DeviceError::Device);
            }
        };
        match self.tx.get_mut(usize::from(token)) {
            Some(slot) => *slot = Some(buf),
            // Out of range cannot happen (a token is a descriptor index); should it, the
            // buffer must outlive the device's use of it.
            None => core::mem::forget(buf),
        }
        self.in_flight += 1;
        self.tx_added = true;
        Ok(())
    }

    /// Makes sure the device looks at every buffer added since the last call; call it now
    /// and then. The crate decides whether to notify by reading the device's
    /// `VRING_USED_F_NO_NOTIFY` just after publishing a buffer, with no full barrier
    /// between the two, so a device that re-enables notifications at that moment can miss
    /// both the buffer and the notification; the buffer would then wait for the next one
    /// added, which may never come (the last frame of a burst, or a receive queue the
    /// device has emptied). One register write per queue that had buffers added.
    pub fn flush(&mut self) {
        for (added, queue) in [
            (&mut self.tx_added, TX_QUEUE),
            (&mut self.rx_added, RX_QUEUE),
        ] {
            if core::mem::take(added) {
                // SAFETY: `QueueNotify` of the transport `open` was given (identity-mapped
                // Device memory, see there); writing a queue index only makes the device
                // look at that queue.
                unsafe { core::ptr::write_volatile((self.base + QUEUE_NOTIFY) as *mut u32, queue) };
            }
        }
    }

    /// Whether buffers were added since the last [`Net::flush`]: a flush is owed.
    pub fn owes_flush(&self) -> bool {
        self.tx_added || self.rx_added
    }

    /// Makes the device interrupt on SPI `intid` when frames arrive or sends complete. The
    /// domain's IRQ handler must call [`super::virtio_irq::ack`] for `intid` (which lowers
    /// the level-triggered line: no masking at the distributor, whose every access is a
    /// locked exit of the microvisor). Returns false (interrupts stay off: poll) if the
    /// interrupt cannot be registered.
    pub fn use_interrupt(&mut self, intid: u32) -> bool {
        // SAFETY: `base` is the transport `DeviceMap` gave us (see `open`), mapped for the
        // domain's life; only `virtio_irq` touches its interrupt status registers (the
        // transport's `ack_interrupt` is never called).
        if !unsafe { super::virtio_irq::register(intid, self.base) } {
            return false;
        }
        self.raw.enable_interrupts();
        true
    }
}
