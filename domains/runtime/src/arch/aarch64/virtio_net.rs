//! A virtio-net NIC handed to this domain by `DeviceMap` (netdom's uplink), over the
//! `virtio-drivers` crate with the same DMA HAL as the other virtio devices.
//!
//! Receive buffers are posted once at open and recycled after each frame; a send waits
//! until the device has taken the frame (QEMU's user network completes a send quickly),
//! so no transmit buffer outlives the call.

use super::virtio::{DeviceError, RuntimeHal};
use core::ptr::NonNull;
use virtio_drivers::device::net::{TxBuffer, VirtIONet};
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};

/// Descriptors per virtqueue (receive buffers posted at once).
const QUEUE: usize = 64;
/// Bytes per receive buffer: a 12-byte virtio-net header and a 1514-byte frame, rounded up.
const RX_BUFFER: usize = 2048;

/// A virtio-net device.
pub struct Net(VirtIONet<RuntimeHal, MmioTransport<'static>, QUEUE>);

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
        VirtIONet::new(transport, RX_BUFFER)
            .map(Net)
            .map_err(|_| DeviceError::Device)
    }

    /// The NIC's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.0.mac_address()
    }

    /// Hands the next received frame (without the virtio-net header) to `f` and reposts its
    /// buffer; `None` if nothing has arrived.
    pub fn receive<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let buf = self.0.receive().ok()?;
        let r = f(buf.packet());
        // A buffer that cannot be reposted only shrinks the queue; it never corrupts it.
        let _ = self.0.recycle_rx_buffer(buf);
        Some(r)
    }

    /// Sends one frame and waits until the device has taken it.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), DeviceError> {
        if !self.0.can_send() {
            return Err(DeviceError::Device);
        }
        self.0
            .send(TxBuffer::from(frame))
            .map_err(|_| DeviceError::Device)
    }

    /// Acknowledges the device's interrupt.
    pub fn ack_interrupt(&mut self) {
        let _ = self.0.ack_interrupt();
    }

    /// Lets the device interrupt when frames arrive.
    pub fn enable_interrupts(&mut self) {
        self.0.enable_interrupts();
    }
}
