//! Device passthrough: virtio-mmio transports found in the device tree become Device
//! capabilities; `DeviceMap` maps one into its holder and forwards its interrupt.
//!
//! Interrupt forwarding: the physical SPI is masked when it fires, the same INTID is injected
//! as a virtual SPI (with EOI notification), and the physical SPI is unmasked when the guest
//! deactivates the virtual one. A level-triggered device that still asserts its line then
//! interrupts again, so nothing is lost and a guest cannot storm EL2.

use super::tables::FrameTables;
use super::Hyp;
use crate::arch::{gic, mem};
use crate::captable::Object;
use crate::mm::pagetable::{Attrs, MapError, MemType};
use crate::platform::DeviceNode;
use protocol::addr::PhysAddr;
use protocol::cap::{CapHandle, CapKind, Rights};
use protocol::control::CapError;
use protocol::ids::DomainId;

/// virtio-mmio `MagicValue` ("virt").
const VIRTIO_MAGIC: u32 = 0x7472_6976;

/// A device the microvisor can hand out.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    /// Where it is.
    pub node: DeviceNode,
    /// virtio device type (1 net, 2 block, 3 console, …).
    pub virtio_id: u32,
    /// The domain it is mapped into, if any.
    pub owner: Option<DomainId>,
}

/// Finds the virtio-mmio transports with a device behind them. `map` must make each page
/// reachable from EL2 first.
pub fn probe(nodes: &[DeviceNode], mut map: impl FnMut(PhysAddr, u64)) -> alloc::vec::Vec<Device> {
    let mut found = alloc::vec::Vec::new();
    for node in nodes {
        let (base, size) = node.page_span();
        map(base, size);
        let reg = node.region.base.as_u64();
        // SAFETY: the transport's registers were just mapped as device memory at EL2.
        let (magic, id) = unsafe { (mem::mmio_read32(reg), mem::mmio_read32(reg + 8)) };
        if magic == VIRTIO_MAGIC && id != 0 {
            found.push(Device {
                node: *node,
                virtio_id: id,
                owner: None,
            });
        }
    }
    found
}

impl Hyp {
    /// `DeviceMap`: maps the device behind Device cap `raw` into domain `id`.
    pub fn device_map(&mut self, id: DomainId, raw: u64) -> Result<[u64; 3], CapError> {
        let h = CapHandle::from_raw(raw).ok_or(CapError::InvalidHandle)?;
        let d = self.domain(id).ok_or(CapError::Stale)?;
        let Object::Device { index } = d.caps.lookup(h, CapKind::Device, Rights::WRITE)?.object
        else {
            return Err(CapError::WrongKind);
        };
        let dev = *self
            .devices
            .get(usize::from(index))
            .ok_or(CapError::InvalidHandle)?;
        match dev.owner {
            Some(o) if o != id => return Err(CapError::WrongState),
            _ => {}
        }
        let (base, size) = dev.node.page_span();
        let attrs = Attrs {
            mem: MemType::Device,
            read: true,
            write: true,
            exec: false,
        };
        let d = self.domains[usize::from(id.0)]
            .as_deref_mut()
            .ok_or(CapError::Stale)?;
        let stage2 = d.stage2.as_mut().ok_or(CapError::WrongState)?;
        match stage2.map(
            &mut FrameTables(&mut self.frames),
            base.as_u64(),
            base,
            size,
            attrs,
        ) {
            // Transports share pages: a neighbour's mapping already covers this one.
            Ok(()) | Err(MapError::AlreadyMapped) => {}
            Err(_) => return Err(CapError::NoMemory),
        }
        if let Some(irq) = dev.node.irq {
            d.vgic.set_eoi_notify(0, irq, true);
            let pcpu = usize::from(d.vcpus[0].placement.pcpu);
            if let Some(&mpidr) = self.platform.cpus.as_slice().get(pcpu) {
                gic::enable_spi(irq, mpidr);
            }
        }
        self.devices[usize::from(index)].owner = Some(id);
        Ok([dev.node.region.base.as_u64(), dev.node.region.size, 0])
    }

    /// A physical SPI fired: forward it to the domain owning its device, if any.
    pub fn forward_spi(&mut self, intid: u32, cpu: usize) -> bool {
        let Some(owner) = self
            .devices
            .iter()
            .find(|d| d.node.irq == Some(intid))
            .and_then(|d| d.owner)
        else {
            return false;
        };
        gic::mask_spi(intid);
        self.inject(owner, 0, intid, cpu);
        true
    }

    /// The guest finished with virtual SPI `intid`: let the device interrupt again.
    pub fn spi_completed(&mut self, owner: DomainId, intid: u32) {
        if self
            .devices
            .iter()
            .any(|d| d.owner == Some(owner) && d.node.irq == Some(intid))
        {
            gic::unmask_spi(intid);
        }
    }

    /// Releases every device a domain owned (it is being freed).
    pub fn release_devices(&mut self, id: DomainId) {
        for d in self.devices.iter_mut().filter(|d| d.owner == Some(id)) {
            d.owner = None;
            if let Some(irq) = d.node.irq {
                gic::mask_spi(irq);
            }
        }
    }
}
