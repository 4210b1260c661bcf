//! Host devices as the management protocol reports them (`ctl info NAME`): the passthrough
//! devices a domain holds (a driver domain's NIC or disks, a guest's `dtdev`/`iomem`).

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// One host device and who holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    /// Base of its MMIO window (host physical).
    pub mmio_base: u64,
    /// Size of its MMIO window in bytes.
    pub mmio_size: u64,
    /// Its interrupts (GIC INTIDs).
    pub irqs: Vec<u32>,
    /// virtio device type behind a virtio-mmio transport (1 net, 2 block, …); 0 for a
    /// device that is not virtio (a node the boot device tree marks `xen,passthrough`).
    pub virtio_id: u32,
    /// The domain holding it; `None` while it is free.
    pub holder: Option<u16>,
}
