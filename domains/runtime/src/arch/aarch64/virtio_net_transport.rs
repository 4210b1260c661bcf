//! The uplink NIC's transport as `virtio-drivers` sees it: the MMIO transport with
//! `VIRTIO_F_RING_EVENT_IDX` hidden from the driver.
//!
//! With event indexes the crate decides to notify when `avail_idx >= avail_event + 1`,
//! not by the spec's window test (`vring_need_event`), so it notifies the device on every
//! buffer added once the device has read past `avail_event`: one register write per frame
//! each way, and each write to a trapped transport is a trip through the microvisor.
//! Without event indexes the crate honours the device's `VRING_USED_F_NO_NOTIFY`, which
//! QEMU sets while a transmit run is already scheduled and while the receive queue has
//! buffers, so a burst of frames costs one notification.

use core::fmt::Debug;
use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// `VIRTIO_F_RING_EVENT_IDX`.
const RING_EVENT_IDX: u64 = 1 << 29;

/// A transport that never offers event indexes.
#[derive(Debug)]
pub struct NoEventIdx<T>(pub T);

impl<T: Transport + Debug> Transport for NoEventIdx<T> {
    fn device_type(&self) -> DeviceType {
        self.0.device_type()
    }

    fn read_device_features(&mut self) -> u64 {
        self.0.read_device_features() & !RING_EVENT_IDX
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.0
            .write_driver_features(driver_features & !RING_EVENT_IDX)
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.0.max_queue_size(queue)
    }

    fn notify(&mut self, queue: u16) {
        self.0.notify(queue)
    }

    fn get_status(&self) -> DeviceStatus {
        self.0.get_status()
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.0.set_status(status)
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.0.set_guest_page_size(guest_page_size)
    }

    fn requires_legacy_layout(&self) -> bool {
        self.0.requires_legacy_layout()
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver_area: PhysAddr,
        device_area: PhysAddr,
    ) {
        self.0
            .queue_set(queue, size, descriptors, driver_area, device_area)
    }

    fn queue_unset(&mut self, queue: u16) {
        self.0.queue_unset(queue)
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.0.queue_used(queue)
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.0.ack_interrupt()
    }

    fn read_config_generation(&self) -> u32 {
        self.0.read_config_generation()
    }

    fn read_config_space<V: FromBytes + IntoBytes>(&self, offset: usize) -> Result<V> {
        self.0.read_config_space(offset)
    }

    fn write_config_space<V: IntoBytes + Immutable>(
        &mut self,
        offset: usize,
        value: V,
    ) -> Result<()> {
        self.0.write_config_space(offset, value)
    }
}
