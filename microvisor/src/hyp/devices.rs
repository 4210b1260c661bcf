//! Device passthrough (DESIGN §6.1): virtio-mmio transports found in the device tree become
//! Device capabilities; `DomainCreate` assigns them to a driver domain, `DeviceMap` exposes
//! one to its holder (whole pages mapped, sub-page windows trapped and checked by
//! [`crate::passthrough`]) and forwards its interrupt.
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
use crate::passthrough::{check_access, exposure, Exposure, Holding};
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
    /// Who holds it.
    pub holding: Holding,
}

/// virtio-mmio `Status` register: writing 0 resets the device, which stops its DMA.
const VIRTIO_STATUS: u64 = 0x70;

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
                holding: Holding::default(),
            });
        }
    }
    found
}

impl Hyp {
    /// The device index behind Device cap `raw` of domain `id`, if it has `rights`.
    pub fn device_index(&self, id: DomainId, raw: u64, rights: Rights) -> Result<usize, CapError> {
        let h = CapHandle::from_raw(raw).ok_or(CapError::InvalidHandle)?;
        let d = self.domain(id).ok_or(CapError::Stale)?;
        let Object::Device { index } = d.caps.lookup(h, CapKind::Device, rights)?.object else {
            return Err(CapError::WrongKind);
        };
        let index = usize::from(index);
        if index >= self.devices.len() {
            return Err(CapError::InvalidHandle);
        }
        Ok(index)
    }

    /// Assigns the devices behind `indexes` to `to` (a domain being created). All or none.
    pub fn assign_devices(&mut self, indexes: &[usize], to: DomainId) -> Result<(), CapError> {
        let mut trial: alloc::vec::Vec<Holding> = self.devices.iter().map(|d| d.holding).collect();
        for &i in indexes {
            trial[i].delegate(to).map_err(|_| CapError::WrongState)?;
        }
        for (dev, h) in self.devices.iter_mut().zip(trial) {
            dev.holding = h;
        }
        Ok(())
    }

    /// `DeviceMap`: gives domain `id` the device behind its Device cap `raw`: whole-page
    /// windows are mapped into its stage 2, sub-page windows are left unmapped and served
    /// by [`Hyp::device_mmio`]; its SPI is routed to the pCPU of the domain's vCPU 0.
    pub fn device_map(&mut self, id: DomainId, raw: u64) -> Result<[u64; 3], CapError> {
        let index = self.device_index(id, raw, Rights::WRITE)?;
        let dev = self.devices[index];
        let mut holding = dev.holding;
        holding.map(id).map_err(|_| CapError::WrongState)?;
        let d = self.domains[usize::from(id.0)]
            .as_deref_mut()
            .ok_or(CapError::Stale)?;
        if exposure(dev.node.region) == Exposure::Mapped {
            let attrs = Attrs {
                mem: MemType::Device,
                read: true,
                write: true,
                exec: false,
            };
            let stage2 = d.stage2.as_mut().ok_or(CapError::WrongState)?;
            let base = dev.node.region.base;
            match stage2.map(
                &mut FrameTables(&mut self.frames),
                base.as_u64(),
                base,
                dev.node.region.size,
                attrs,
            ) {
                Ok(()) | Err(MapError::AlreadyMapped) => {}
                Err(_) => return Err(CapError::NoMemory),
            }
        }
        if let Some(irq) = dev.node.irq {
            d.vgic.set_eoi_notify(0, irq, true);
            let pcpu = usize::from(d.vcpus[0].placement.pcpu);
            if let Some(&mpidr) = self.platform.cpus.as_slice().get(pcpu) {
                gic::enable_spi(irq, mpidr);
            }
        }
        self.devices[index].holding = holding;
        Ok([dev.node.region.base.as_u64(), dev.node.region.size, 0])
    }

    /// A trapped access by domain `id` at `ipa`: performed on the device if it falls inside
    /// the sub-page window of a device that domain mapped. `None` when it does not (a
    /// fault for that domain: it reached outside its own registers).
    pub fn device_mmio(
        &self,
        id: DomainId,
        ipa: u64,
        width: u8,
        write: Option<u64>,
    ) -> Option<u64> {
        let pa = self.devices.iter().find_map(|d| {
            let trapped = exposure(d.node.region) == Exposure::Trapped;
            (d.holding.mapped_by == Some(id) && trapped)
                .then(|| check_access(d.node.region, ipa, width).ok())
                .flatten()
        })?;
        // SAFETY: `pa` lies inside a virtio-mmio window that EL2 mapped as device memory at
        // probe time, naturally aligned and of a width the device accepts; the domain
        // holds that device.
        Some(unsafe { mem::mmio_access(pa, width, write) })
    }
    /// A physical SPI fired: forward it to the domain owning its device, if any.
    pub fn forward_spi(&mut self, intid: u32, cpu: usize) -> bool {
        let Some(owner) = self
            .devices
            .iter()
            .find(|d| d.node.irq == Some(intid))
            .and_then(|d| d.holding.mapped_by)
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
            .any(|d| d.holding.mapped_by == Some(owner) && d.node.irq == Some(intid))
        {
            gic::unmask_spi(intid);
        }
    }

    /// Releases every device a domain held (it is being freed): each is reset, so no DMA
    /// it started lands in memory that is about to be scrubbed and reused, and its
    /// interrupt is masked. A domain rebuilt in place keeps its assignments.
    pub fn release_devices(&mut self, id: DomainId) {
        let restarting = self.domain(id).is_some_and(|d| d.restart_pending.is_some());
        for d in self.devices.iter_mut() {
            if !d.holding.release(id, restarting) {
                continue;
            }
            if let Some(irq) = d.node.irq {
                gic::mask_spi(irq);
            }
            // SAFETY: the transport's registers are mapped at EL2 (probe); writing 0 to
            // Status is the virtio reset, which ends all of the device's DMA.
            unsafe { mem::mmio_write32(d.node.region.base.as_u64() + VIRTIO_STATUS, 0) };
        }
    }
}
