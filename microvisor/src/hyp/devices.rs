//! Device passthrough (DESIGN §6.1): virtio-mmio transports found in the device tree, and
//! nodes the boot DTB marks `xen,passthrough`, become Device capabilities; `DomainCreate`
//! assigns them to the new domain. A driver domain exposes one to itself with `DeviceMap`
//! (whole pages mapped, sub-page windows trapped and checked by [`crate::passthrough`]);
//! an ordinary guest (xl `iomem`/`dtdev`) gets its windows mapped where `DomainSpec::windows`
//! puts them ([`Hyp::give_windows`]), at creation and again after a restart in place. Both
//! get their interrupt forwarded the same way.
//!
//! Interrupt forwarding is hardware-linked (DESIGN §5): the device's SPI is linked to the
//! same INTID in the holder's vGIC when it is given to it ([`crate::vgic::VgicDomain::link_hw`]);
//! when it fires, its priority is dropped but it is left active, and the virtual SPI goes
//! into a list register with HW = 1 naming it, so the guest's own deactivation deactivates
//! the physical interrupt: no mask, no maintenance interrupt, one locked pass per interrupt.
//! While it is active the SPI cannot fire again, so a guest cannot storm EL2; a
//! level-triggered device that still asserts its line after the guest's EOI interrupts
//! again, so nothing is lost. Whoever ends the link early (the model, a vCPU switched out
//! with the interrupt in flight, the holder's death) deactivates the physical interrupt.

use super::domain::Domain;
use super::Hyp;
use crate::arch::gic;
use crate::arch::phys::Registers;
use crate::captable::Object;
use crate::mm::pagetable::{Attrs, MapError, MemType, PageTable, TableMemory};
use crate::passthrough::{check_access, check_window, exposure, Exposure, Holding};
use crate::platform::DeviceNode;
use crate::platform::Platform;
use protocol::addr::PhysAddr;
use protocol::cap::{CapHandle, CapKind, Rights};
use protocol::control::{CapError, DeviceWindow};
use protocol::ids::DomainId;
use protocol::layout::GUEST_RAM_BASE;

/// virtio-mmio `MagicValue` ("virt").
const VIRTIO_MAGIC: u32 = 0x7472_6976;

/// A device the microvisor can hand out.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    /// Where it is.
    pub node: DeviceNode,
    /// virtio device type (1 net, 2 block, 3 console, …); 0 for any other device.
    pub virtio_id: u32,
    /// The management UART's kind when this is dom0's management port
    /// ([`crate::mgmt_port`]).
    pub mgmt_uart: Option<crate::console_uart::UartKind>,
    /// How to quiesce it between owners (a passthrough device the microvisor knows,
    /// mapped at EL2 at boot); `None`: returned as it is.
    pub reset: Option<crate::device_reset::Kind>,
    /// Who holds it.
    pub holding: Holding,
    /// Where its assignee, an ordinary guest, sees its registers (guest-physical, whole
    /// pages); `None` for a driver domain's device (it maps it itself, 1:1).
    pub guest: Option<u64>,
}

/// virtio-mmio `Status` register: writing 0 resets the device, which stops its DMA.
const VIRTIO_STATUS: u64 = 0x70;

/// A passthrough device's registers as EL2 mapped them at boot, for
/// [`crate::device_reset::quiesce`].
struct El2Regs(crate::platform::Region);

impl crate::device_reset::Regs for El2Regs {
    fn write(&mut self, offset: u32, value: u32) {
        // The device was mapped at EL2 as device memory at boot (`Device::reset` is set
        // only for those); its holder is dying and no CPU runs one of its vCPUs
        // (`free_if_unloaded`), so nothing else touches the device meanwhile. The doorway
        // keeps the write inside the device's own window (the table's offsets are all below
        // 0x420 and a passthrough window is whole pages; this only guards a mismatch).
        if let Some(regs) = Registers::new(self.0.base, self.0.size) {
            let _ = regs.write32(u64::from(offset), value);
        }
    }
}

/// Maps `size` bytes of device registers at `pa` into `stage2` at `ipa` (device memory,
/// never executable); already there is fine (several transports share a page).
/// Table pages come from `tables`: the domain's own charged budget, so a device window
/// costs its holder, never the shared pool (security review F4).
fn map_device(
    stage2: &mut PageTable,
    tables: &mut impl TableMemory,
    ipa: u64,
    pa: PhysAddr,
    size: u64,
) -> Result<(), CapError> {
    let attrs = Attrs {
        mem: MemType::Device,
        read: true,
        write: true,
        exec: false,
    };
    match stage2.map(tables, ipa, pa, size, attrs) {
        Ok(()) | Err(MapError::AlreadyMapped) => Ok(()),
        Err(_) => Err(CapError::NoMemory),
    }
}

/// Routes physical SPI `irq` to the pCPU of `d`'s vCPU 0 and links the virtual SPI of the
/// same INTID to it, so the guest's deactivation ends the physical one.
fn route_spi(d: &mut Domain, platform: &Platform, irq: u32) {
    if !d.vgic.link_hw(irq, irq) {
        // Past the SPIs the guest's GIC has: it could not be delivered anyway.
        crate::info!("{}: device interrupt {} is beyond its vGIC", d.id, irq);
        return;
    }
    let pcpu = usize::from(d.vcpus[0].placement.pcpu);
    if let Some(&mpidr) = platform.cpus.as_slice().get(pcpu) {
        gic::enable_spi(irq, mpidr);
    }
}

/// Finds the virtio-mmio transports with a device behind them. `map` must make each page
/// reachable from EL2 first.
pub fn probe(nodes: &[DeviceNode], mut map: impl FnMut(PhysAddr, u64)) -> alloc::vec::Vec<Device> {
    let mut found = alloc::vec::Vec::new();
    for node in nodes {
        let (base, size) = node.page_span();
        map(base, size);
        // The transport's registers were just mapped as device memory at EL2.
        let regs = Registers::new(node.region.base, node.region.size);
        let read = |off| regs.and_then(|r| r.read32(off).ok()).unwrap_or(0);
        let (magic, id) = (read(0), read(8));
        if magic == VIRTIO_MAGIC && id != 0 {
            found.push(Device {
                node: *node,
                virtio_id: id,
                mgmt_uart: None,
                reset: None,
                holding: Holding::default(),
                guest: None,
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
        if self.domain(id).is_none() {
            return Err(CapError::Stale);
        }
        if exposure(dev.node.region) == Exposure::Mapped {
            let (stage2, mut tables) = self.stage2_mut(id).ok_or(CapError::WrongState)?;
            let base = dev.node.region.base;
            map_device(
                stage2,
                &mut tables,
                base.as_u64(),
                base,
                dev.node.region.size,
            )?;
        }
        let d = self.domains[usize::from(id.0)]
            .as_deref_mut()
            .ok_or(CapError::Stale)?;
        if let Some(irq) = dev.node.irq {
            route_spi(d, &self.platform, irq);
        }
        self.devices[index].holding = holding;
        if exposure(dev.node.region) == Exposure::Trapped && id != DomainId::DOM0 {
            // A driver domain's accesses are served on its CPU's fast path from now on (by
            // the locked path's `device_mmio` if the slot is full). Dom0's (its management
            // port) stay on the locked path: served lock-free, its polling made one sample
            // of `bench micro`'s exclusive timer 340 µs late under QEMU's round-robin
            // (deterministically, cause not found), and nothing waits on its latency.
            super::fast_slots::add_window(id, dev.node.region);
        }
        // Where the holder's RAM really is, for the addresses it gives its device (no
        // IOMMU: a device sees host addresses). Only a Device holder learns it (security
        // review F17); 0 for RAM that is not one run, which a DMA driver cannot use.
        let dma_offset = d
            .ram
            .contiguous_base()
            .map_or(0, |pa| pa.as_u64().wrapping_sub(GUEST_RAM_BASE.as_u64()));
        Ok([
            dev.node.region.base.as_u64(),
            dev.node.region.size,
            dma_offset,
        ])
    }

    /// Whether domain `id` may be given device addresses of granted frames
    /// (`GNTMAP_device_map`): it has mapped a DMA-capable device (a virtio transport) and
    /// its RAM is one run, so `DeviceMap` already told it where its RAM really is and it
    /// programs host-physical addresses into that device. Without an IOMMU such a domain
    /// can make its device write anywhere, so the address of a frame it was granted gives
    /// it nothing new; every other domain gets none (security review F17).
    pub fn may_device_map(&self, id: DomainId) -> bool {
        let contiguous = self
            .domain(id)
            .is_some_and(|d| !d.dying && d.ram.contiguous_base().is_some());
        contiguous
            && self
                .devices
                .iter()
                .any(|dev| dev.virtio_id != 0 && dev.holding.mapped_by == Some(id))
    }

    /// An ordinary guest `to`, just built with the devices behind `indexes`, sees them at
    /// `windows`: each window must be whole pages of one of those devices (one window per
    /// device: a Device capability is one register window) placed clear of the guest's own
    /// layout. Checked whole before anything is recorded; then mapped.
    pub fn give_windows(
        &mut self,
        to: DomainId,
        indexes: &[usize],
        windows: &[DeviceWindow],
    ) -> Result<(), CapError> {
        let mut placed: alloc::vec::Vec<(usize, u64)> = alloc::vec::Vec::new();
        let ram = self
            .domain(to)
            .map(|d| u64::from(d.spec.mem_mib) << 20)
            .ok_or(CapError::Stale)?;
        for w in windows {
            let index = indexes
                .iter()
                .copied()
                .find(|&i| {
                    let r = self.devices[i].node.region;
                    r.base.as_u64() <= w.host && w.host < r.base.as_u64().saturating_add(r.size)
                })
                .ok_or(CapError::InvalidArgument)?;
            let region = self.devices[index].node.region;
            // The whole device, at one place: a guest never sees part of a register file.
            if w.host != region.base.as_u64() || w.size != region.size {
                return Err(CapError::InvalidArgument);
            }
            check_window(region, w.host, w.guest, w.size, ram)
                .map_err(|_| CapError::InvalidArgument)?;
            if placed.iter().any(|&(i, _)| i == index) {
                return Err(CapError::InvalidArgument);
            }
            placed.push((index, w.guest));
        }
        for (i, guest) in placed {
            self.devices[i].guest = Some(guest);
        }
        self.map_guest_devices(to);
        Ok(())
    }

    /// Maps every device assigned to ordinary guest `id` at its guest window and routes its
    /// SPI to it (after creation, and after a restart in place rebuilt its stage 2). A
    /// device whose window cannot be mapped (out of table pages) stays unmapped: the guest's
    /// driver faults on it, which is logged as that guest's stage-2 fault.
    pub fn map_guest_devices(&mut self, id: DomainId) {
        for i in 0..self.devices.len() {
            let dev = self.devices[i];
            let Some(guest) = dev.guest else { continue };
            if dev.holding.assigned != Some(id) {
                continue;
            }
            let mut holding = dev.holding;
            if holding.map(id).is_err() {
                continue;
            }
            let Some((stage2, mut tables)) = self.stage2_mut(id) else {
                return;
            };
            let r = dev.node.region;
            if map_device(stage2, &mut tables, guest, r.base, r.size).is_err() {
                crate::info!("{}: no table pages to map the device at {}", id, r.base);
                continue;
            }
            let Some(d) = self.domains[usize::from(id.0)].as_deref_mut() else {
                return;
            };
            if let Some(irq) = dev.node.irq {
                route_spi(d, &self.platform, irq);
            }
            self.devices[i].holding = holding;
            crate::info!(
                "{}: device {} at guest {:#x} (IRQ {:?})",
                id,
                r.base,
                guest,
                dev.node.irq
            );
        }
    }

    /// The device-tree fragment boot module of domain `id`, if it was given one.
    pub fn guest_dt_module(&self, id: DomainId) -> Option<&'static [u8]> {
        let index = (*self.guest_dts.get(usize::from(id.0))?)?;
        self.module(usize::from(index))
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
        // `pa` lies inside a virtio-mmio or management-UART window that EL2 mapped as
        // device memory at probe time, naturally aligned and of a width the device accepts;
        // the domain holds that device. The doorway checks it is not RAM.
        Registers::new(PhysAddr::new(pa), u64::from(width))?
            .access(0, width, write)
            .ok()
    }
    /// A physical SPI fired (acknowledged on this CPU): forwards it to the domain holding its
    /// device, if any, and ends its part here: priority dropped, left active for the
    /// holder's hardware-linked LR to deactivate. False (nothing done) if no domain holds
    /// it: the caller ends it. One the holder's vGIC cannot take (not linked) is masked.
    pub fn forward_spi(&mut self, intid: u32, cpu: usize) -> bool {
        let Some(owner) = self
            .devices
            .iter()
            .find(|d| d.node.irq == Some(intid))
            .and_then(|d| d.holding.mapped_by)
        else {
            return false;
        };
        let Some(d) = self.domain_mut(owner) else {
            return false;
        };
        match d.vgic.inject_hw(intid) {
            Some(mask) => {
                if let Some(vcpu) = d.vcpus.get_mut(0) {
                    vcpu.stats.irqs += 1;
                }
                gic::drop_priority(intid);
                self.wake_mask(owner, mask, cpu);
            }
            None => {
                gic::mask_spi(intid);
                gic::eoi(intid);
            }
        }
        true
    }

    /// Releases every device a domain held (it is being freed): each is reset, so no DMA
    /// it started lands in memory that is about to be scrubbed and reused, and its
    /// interrupt is masked. A domain rebuilt in place keeps its assignments.
    pub fn release_devices(&mut self, id: DomainId) {
        // First: no access of its is performed on a device from here on (its fast path
        // served them under the slot's lock), so none reaches one being reset below.
        super::fast_slots::clear_windows(id);
        let restarting = self.domain(id).is_some_and(|d| d.restart_pending.is_some());
        let mut domain = self
            .domains
            .get_mut(usize::from(id.0))
            .and_then(|d| d.as_deref_mut());
        for d in self.devices.iter_mut() {
            if !d.holding.release(id, restarting) {
                continue;
            }
            if let Some(irq) = d.node.irq {
                gic::mask_spi(irq);
                // Its vCPUs are all switched out (`free_if_unloaded`), but a switched-out
                // vCPU keeps a passthrough SPI's hardware-linked LR in flight, and the vGIC
                // may hold one fired but not yet delivered: each is ended here, so the next
                // holder gets interrupts.
                let Some(held) = domain.as_deref_mut() else {
                    continue;
                };
                let in_lr = held.end_linked_lrs(irq).then_some(irq);
                if let Some(pintid) = held.vgic.unlink_hw(irq).or(in_lr) {
                    gic::deactivate(pintid);
                }
            }
            if !restarting {
                d.guest = None;
            }
            if d.virtio_id == 0 {
                // A guest's device or the management UART: no DMA, nothing in flight to
                // stop. Its stage-2 window goes with the domain's tables. One the
                // microvisor knows (PL061, PL031, Cadence UART) is quiesced so that what
                // the old owner armed does not reach the next; others are returned as
                // they are, for the next owner's driver to initialise.
                if let Some(kind) = d.reset {
                    crate::device_reset::quiesce(kind, &mut El2Regs(d.node.region));
                }
                continue;
            }
            // The transport's registers are mapped at EL2 (probe); writing 0 to Status is
            // the virtio reset, which ends all of the device's DMA.
            let reset = Registers::new(d.node.region.base, d.node.region.size)
                .and_then(|r| r.write32(VIRTIO_STATUS, 0).ok());
            if reset.is_none() {
                crate::info!("device at {} could not be reset", d.node.region.base);
            }
        }
        if !restarting {
            if let Some(slot) = self.guest_dts.get_mut(usize::from(id.0)) {
                *slot = None;
            }
        }
    }
}
