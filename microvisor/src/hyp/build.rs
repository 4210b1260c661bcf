//! Building a domain: checking the request, allocating its RAM and stage 2, its vCPUs and
//! Xen-ABI resources, and queueing the scrub and load of its memory (done outside the lock,
//! see [`super::bulk`]); rebuilding one in place after a restart; releasing its memory.

use super::domain::{Domain, OwnedSpec, Power, Vcpu, VcpuStats};
use crate::arch::context::{El1Context, GuestRegs, VgicHwState, MAX_LRS};
use crate::arch::mem;
use crate::captable::{CapTable, Capability};
use crate::hyp::tables::FrameTables;
use crate::hyp::{vcpu_key, Hyp};
use crate::mm::pagetable::{Attrs, MemType, PageTable, Stage};
use crate::vgic::VgicDomain;
use alloc::boxed::Box;
use alloc::string::String;
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::cap::CapHandle;
use protocol::control::{CapError, DomainState, VcpuPlacement};
use protocol::ids::DomainId;
use protocol::layout::{GUEST_RAM_BASE, MAX_VCPUS, VTIMER_PPI};

/// What to build.
pub struct BuildRequest<'a> {
    /// Name.
    pub name: &'a str,
    /// Image bytes (a boot module).
    pub image: &'a [u8],
    /// RAM in MiB.
    pub mem_mib: u32,
    /// vCPU placements.
    pub vcpus: &'a [VcpuPlacement],
    /// Start-info arguments.
    pub cmdline: &'a str,
    /// Controller and memory cap.
    pub parent: Option<(DomainId, CapHandle)>,
    /// Capabilities to grant it.
    pub caps: &'a [Capability],
    /// Boot module index of `image`, if it is one (needed to restart it).
    pub module: Option<u16>,
    /// Initramfs for a Linux kernel, and its boot module index.
    pub ramdisk: Option<(&'a [u8], u16)>,
}

impl Hyp {
    /// Builds a paused domain in the first free slot; returns its id.
    pub fn build_domain(
        &mut self,
        req: &BuildRequest<'_>,
        cpu: usize,
    ) -> Result<DomainId, CapError> {
        let slot = (0..self.domains.len())
            .find(|&i| self.domains[i].is_none())
            .ok_or(CapError::NoSlots)?;
        let id = DomainId(slot as u16);
        let instance = self.next_instance(id);
        self.build_domain_at(req, id, instance, cpu)
    }

    /// Builds a paused domain with id `id` (free) as incarnation `instance`. Its RAM is
    /// scrubbed and loaded by `cpu` after it releases the global lock (see [`super::bulk`]);
    /// until then its vCPUs do not run.
    pub fn build_domain_at(
        &mut self,
        req: &BuildRequest<'_>,
        id: DomainId,
        instance: u32,
        cpu: usize,
    ) -> Result<DomainId, CapError> {
        let slot = usize::from(id.0);
        if self.domains.get(slot).is_none_or(|d| d.is_some()) {
            return Err(CapError::NoSlots);
        }
        let nvcpus = req.vcpus.len();
        if nvcpus == 0
            || nvcpus > MAX_VCPUS
            || req.name.is_empty()
            || req.name.len() > protocol::boot::MAX_NAME_LEN
        {
            return Err(CapError::InvalidArgument);
        }
        if req.mem_mib == 0
            || u64::from(req.mem_mib) * 1024 * 1024 > protocol::layout::GUEST_RAM_MAX
        {
            return Err(CapError::InvalidArgument);
        }
        let ncpus = self.platform.cpus.len();
        if req.vcpus.iter().any(|p| usize::from(p.pcpu) >= ncpus) {
            return Err(CapError::CpuUnavailable);
        }
        let ram_size = u64::from(req.mem_mib) * 1024 * 1024;
        // Memory: contiguous, 2 MiB aligned so stage 2 can use blocks; scrubbed.
        let pages = ram_size / PAGE_SIZE;
        let ram_pa = self
            .frames
            .alloc(pages, 2 * 1024 * 1024)
            .map_err(|_| CapError::NoMemory)?;
        let load = super::loader::LoadSpec {
            id,
            name: req.name,
            image: req.image,
            ramdisk: req.ramdisk.map(|(bytes, _)| bytes),
            cmdline: req.cmdline,
            vcpus: nvcpus as u16,
        };
        let (entry, load_ops) = match super::loader::load(ram_pa, ram_size, &load) {
            Ok(planned) => planned,
            Err(e) => {
                // Nothing was written yet.
                let _ = self.frames.free(ram_pa, pages);
                return Err(e);
            }
        };

        let mut tables = FrameTables(&mut self.frames);
        let built = PageTable::new(&mut tables, Stage::Stage2).and_then(|mut pt| {
            let attrs = Attrs {
                mem: MemType::Normal,
                read: true,
                write: true,
                exec: true,
            };
            pt.map(
                &mut tables,
                GUEST_RAM_BASE.as_u64(),
                ram_pa,
                ram_size,
                attrs,
            )?;
            Ok(pt)
        });
        let stage2 = match built {
            Ok(pt) => pt,
            Err(_) => {
                let _ = self.frames.free(ram_pa, pages);
                return Err(CapError::NoMemory);
            }
        };

        let mut caps = CapTable::new();
        for cap in req.caps {
            caps.insert(*cap)?;
        }
        let vcpus = req
            .vcpus
            .iter()
            .enumerate()
            .map(|(i, p)| Vcpu {
                regs: GuestRegs::default(),
                el1: El1Context::reset((1 << 31) | i as u64),
                vgic_hw: VgicHwState::default(),
                fp: crate::arch::fpsimd::FpState::default(),
                lrs: [0; MAX_LRS],
                power: Power::Off,
                blocked: false,
                placement: *p,
                msg_page: None,
                vtimer_masked: false,
                stats: VcpuStats::default(),
            })
            .collect();
        let mut vgic = VgicDomain::new(nvcpus);
        for v in 0..nvcpus {
            vgic.set_eoi_notify(v, VTIMER_PPI, true);
        }
        let domain = Domain {
            id,
            name: String::from(req.name),
            instance,
            state: DomainState::Created,
            ram_pa,
            ram_size,
            stage2: Some(stage2),
            vmid: id.0 + 1,
            vcpus,
            vgic,
            caps,
            negotiated: false,
            parent: req.parent,
            console: crate::console_line::DomainConsole::default(),
            entry,
            xen: super::xen::XenDomain::default(),
            dying: false,
            logged: 0,
            restarts: 0,
            spec: OwnedSpec {
                module: req.module,
                ramdisk_module: req.ramdisk.map(|(_, m)| m),
                mem_mib: req.mem_mib,
                vcpus: req.vcpus.to_vec(),
                cmdline: String::from(req.cmdline),
                caps: req.caps.to_vec(),
            },
            restart_pending: None,
            child_events: 0,
            shutdown_request: None,
            input: alloc::collections::VecDeque::new(),
            loading: Some(cpu),
        };
        let mut domain = Box::new(domain);
        if let Err(e) = self.xen_setup(&mut domain) {
            self.release_memory(ram_pa, ram_size, domain.stage2, cpu);
            return Err(e);
        }
        // Queue the vCPUs (not runnable yet); undo everything on a placement conflict.
        for (i, p) in req.vcpus.iter().enumerate() {
            let rq = &mut self.runqueues[usize::from(p.pcpu)];
            if rq.add(vcpu_key(id, i), p.priority, p.exclusive).is_err() {
                for (j, q) in req.vcpus.iter().enumerate().take(i) {
                    let _ = self.runqueues[usize::from(q.pcpu)].remove(vcpu_key(id, j));
                }
                self.xen_release(&mut domain);
                self.release_memory(ram_pa, ram_size, domain.stage2, cpu);
                return Err(CapError::CpuUnavailable);
            }
        }
        self.domains[slot] = Some(domain);
        // Zero, load, then clean: the guest starts with its MMU off (uncached accesses).
        let q = &mut self.bulk[cpu];
        q.ops.push(super::bulk::Op::Zero {
            pa: ram_pa.as_u64(),
            len: ram_size,
        });
        q.ops.extend(load_ops);
        q.ops.push(super::bulk::Op::Clean {
            pa: ram_pa.as_u64(),
            len: ram_size,
        });
        q.finish.push(super::bulk::Finish::Ready(id, instance));
        Ok(id)
    }

    /// A fresh incarnation number for domain id `id`.
    pub fn next_instance(&mut self, id: DomainId) -> u32 {
        let slot = usize::from(id.0);
        self.instances[slot] = self.instances[slot].wrapping_add(1).max(1);
        self.instances[slot]
    }

    /// Destroys a stage 2 and queues the RAM's scrub and release on `cpu` (outside the
    /// lock), so the next owner never sees this domain's data.
    pub(super) fn release_memory(
        &mut self,
        ram_pa: PhysAddr,
        ram_size: u64,
        stage2: Option<PageTable>,
        cpu: usize,
    ) {
        if let Some(pt) = stage2 {
            pt.destroy(&mut FrameTables(&mut self.frames));
        }
        self.queue_scrub_and_free(ram_pa, ram_size / PAGE_SIZE, cpu);
    }

    /// Builds incarnation `instance` of domain `id` from its old spec and starts it.
    #[allow(clippy::too_many_arguments)] // One call site; the fields of a dissolved Domain.
    pub(super) fn rebuild(
        &mut self,
        id: DomainId,
        instance: u32,
        name: String,
        spec: OwnedSpec,
        parent: Option<(DomainId, CapHandle)>,
        restarts: u32,
        cpu: usize,
    ) {
        let Some(index) = spec.module else { return };
        let Some(m) = self
            .platform
            .modules
            .as_slice()
            .get(usize::from(index))
            .copied()
        else {
            return;
        };
        // SAFETY: boot modules are reserved at boot and never written.
        let image = unsafe { mem::boot_blob(m.region.base.as_u64(), m.region.size as usize) };
        let ramdisk = spec.ramdisk_module.and_then(|r| {
            let m = self
                .platform
                .modules
                .as_slice()
                .get(usize::from(r))
                .copied()?;
            // SAFETY: boot modules are reserved at boot and never written.
            let bytes = unsafe { mem::boot_blob(m.region.base.as_u64(), m.region.size as usize) };
            Some((bytes, r))
        });
        let req = BuildRequest {
            name: &name,
            image,
            ramdisk,
            mem_mib: spec.mem_mib,
            vcpus: &spec.vcpus,
            cmdline: &spec.cmdline,
            parent,
            caps: &spec.caps,
            module: spec.module,
        };
        match self.build_domain_at(&req, id, instance, cpu) {
            Ok(_) => {
                if let Some(d) = self.domain_mut(id) {
                    d.restarts = restarts;
                }
                let _ = self.start_domain(id, cpu);
                crate::info!("{} ({}) restarted (restart {})", id, name, restarts);
            }
            Err(e) => crate::info!("{} ({}) could not be rebuilt: {}", id, name, e),
        }
        // Either way the controller learns the outcome from DomainQuery.
        if let Some((p, _)) = parent {
            if let Some(pd) = self.domain_mut(p) {
                pd.child_events |= 1 << id.0;
            }
            self.inject(p, 0, protocol::layout::CONTROL_EVENT_PPI, cpu);
        }
    }
}
