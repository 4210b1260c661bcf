//! Building a domain: checking the request, allocating its RAM and stage 2, its vCPUs and
//! Xen-ABI resources, and queueing the scrub and load of its memory (done outside the lock,
//! see [`super::bulk`]); rebuilding one in place after a restart; releasing its memory.

use super::domain::{Domain, OwnedSpec, Power, Vcpu, VcpuStats};
use crate::arch::context::{El1Context, GuestRegs, VgicHwState, MAX_LRS};
use crate::captable::{CapTable, Capability};
use crate::hyp::tables::{ChargedTables, FrameTables, TableBudget};
use crate::hyp::{vcpu_key, Hyp};
use crate::mm::frames::BLOCK_SIZE;
use crate::mm::pagetable::{Attrs, MemType, PageTable, Stage};
use crate::mm::ram::RamMap;
use crate::sched::{RunQueue, SchedError, VcpuKey};
use crate::tlb_reach::TlbReach;
use crate::vgic::VgicDomain;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::addr::PAGE_SIZE;
use protocol::cap::{CapHandle, CapKind, Rights};
use protocol::control::{CapError, DomainState, VcpuPlacement};
use protocol::ids::DomainId;
use protocol::layout::{
    GUEST_GICV2_GICC_BASE, GUEST_GICV2_GICC_SIZE, GUEST_RAM_BASE, MAX_VCPUS, VTIMER_PPI,
};

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
    /// Device-tree fragment for a Linux kernel's tree (xl `device_tree`), a boot module.
    pub extra_dt: &'a [u8],
    /// Its access to the performance monitors.
    pub pmu: protocol::control::PmuAccess,
    /// Each vCPU's budget per period in µs, checked by the caller
    /// ([`protocol::control::budgets_valid`]); empty: none.
    pub budgets: &'a [(u32, u32)],
}

impl Hyp {
    /// Builds a paused domain in the next free id after the last one handed out (F9:
    /// round-robin, see [`crate::domid`]); returns its id.
    pub fn build_domain(
        &mut self,
        req: &BuildRequest<'_>,
        cpu: usize,
    ) -> Result<DomainId, CapError> {
        let slot =
            crate::domid::round_robin(self.domains.len(), usize::from(self.last_domid), |i| {
                self.domains[i].is_none()
            })
            .ok_or(CapError::NoSlots)?;
        let id = DomainId(slot as u16);
        let instance = self.next_instance(id);
        let built = self.build_domain_at(req, id, instance, cpu)?;
        self.last_domid = id.0;
        Ok(built)
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
        // What building it costs the other CPUs is logged when it is loaded (`lock_holds`).
        self.holds.build_began(cpu);
        let ram_size = u64::from(req.mem_mib) * 1024 * 1024;
        let pages = ram_size / PAGE_SIZE;
        let contiguous = super::loader::needs_contiguous_ram(req.image);
        let mut ram = self.alloc_ram(req.name, pages, contiguous)?;
        let load = super::loader::LoadSpec {
            id,
            name: req.name,
            image: req.image,
            ramdisk: req.ramdisk.map(|(bytes, _)| bytes),
            extra_dt: req.extra_dt,
            cmdline: req.cmdline,
            vcpus: nvcpus as u16,
            gic: self.platform.gic_version(),
            pcpus: ncpus as u16,
            seed: self.seeds.as_mut().map(crate::seeds::Seeds::draw),
        };
        let (entry, load_ops) = match super::loader::load(&ram, &load) {
            Ok(planned) => planned,
            Err(e) => {
                // Nothing was written yet.
                self.free_ram(&ram);
                return Err(e);
            }
        };

        // What the build scrubs and maps itself: all of the RAM, or for a domain scrubbed
        // on first touch only the blocks the load writes (see `super::lazy`).
        let lazily = super::lazy::lazily_scrubbed(contiguous);
        // Where the CPU can force it (FEAT_S2FWB), such a guest's RAM is write-back whatever
        // its stage 1 says, as KVM's guests are: nothing written for it needs cleaning to
        // the point of coherency first (a guest starts with its MMU off).
        let forced_wb = lazily && crate::arch::coherence::has_forced_wb();
        if lazily {
            ram.make_lazy(if forced_wb {
                super::lazy::scrub_block_forced_wb
            } else {
                super::lazy::scrub_block
            });
        }
        let written: Vec<(u64, u64)> = load_ops
            .iter()
            .filter_map(super::bulk::Op::written)
            .collect();
        let spans = ram.built_spans(&written);

        let mut budget = TableBudget::for_ram(pages);
        // Not run anywhere yet (and with no VTTBR every invalidation is global anyway).
        let mut reach = TlbReach::Nowhere;
        let mut tables = ChargedTables {
            frames: &mut self.frames,
            budget: &mut budget,
            vttbr: None,
            reach: &mut reach,
        };
        let guest_gicc = self.guest_gicc;
        let stage = if forced_wb {
            Stage::Stage2ForcedWb
        } else {
            Stage::Stage2
        };
        let built = PageTable::new(&mut tables, stage).and_then(|mut pt| {
            for &(offset, pa, len) in &spans {
                let ipa = GUEST_RAM_BASE.as_u64() + offset;
                if let Err(err) = pt.map(&mut tables, ipa, pa, len, super::lazy::RAM) {
                    pt.destroy(&mut tables);
                    return Err(err);
                }
            }
            if let Some(gicc) = guest_gicc {
                // A vGICv2's CPU interface is the hardware's virtual one (GICV), never trapped.
                let device = Attrs {
                    mem: MemType::Device,
                    read: true,
                    write: true,
                    exec: false,
                };
                let ipa = GUEST_GICV2_GICC_BASE.as_u64();
                if let Err(err) = pt.map(&mut tables, ipa, gicc.base, GUEST_GICV2_GICC_SIZE, device)
                {
                    pt.destroy(&mut tables);
                    return Err(err);
                }
            }
            Ok(pt)
        });
        let stage2 = match built {
            Ok(pt) => pt,
            Err(_) => {
                self.free_ram(&ram);
                return Err(CapError::NoMemory);
            }
        };
        budget.used = budget.used.max(1);

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
                pmu: crate::arch::monitors::PmuState::default(),
                debug: crate::debugregs::DebugShadow::default(),
                lrs: [0; MAX_LRS],
                power: Power::Off,
                blocked: false,
                placement: *p,
                msg_page: None,
                vtimer_masked: false,
                stats: VcpuStats::default(),
                fault_pending: false,
                migrating: false,
                budget_us: req.budgets.get(i).copied().unwrap_or((0, 0)),
                poll: None,
            })
            .collect();
        super::percpu::domain_created(
            usize::from(id.0),
            req.vcpus.iter().map(|p| (p.exclusive, usize::from(p.pcpu))),
        );
        let mut vgic = VgicDomain::new(self.platform.gic_version(), nvcpus);
        for v in 0..nvcpus {
            vgic.set_eoi_notify(v, VTIMER_PPI, true);
        }
        let domain = Domain {
            id,
            name: String::from(req.name),
            instance,
            state: DomainState::Created,
            ram,
            stage2: Some(stage2),
            tables: budget,
            xen_frames: crate::mm::charged::FrameBudget::new(super::xen::setup::XEN_FRAME_PAGES),
            vmid: id.0 + 1,
            tlb_reach: TlbReach::Nowhere,
            vcpus,
            vgic,
            caps,
            negotiated: false,
            parent: req.parent,
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
                pmu: req.pmu,
                caps: req.caps.to_vec(),
                budgets: req.budgets.to_vec(),
            },
            restart_pending: None,
            child_events: 0,
            shutdown_request: None,
            loading: Some(cpu),
            hung: false,
        };
        let mut domain = Box::new(domain);
        if let Err(e) = self.xen_setup(&mut domain) {
            let stage2 = domain.stage2.take();
            self.release_memory(&domain.ram, stage2, cpu);
            return Err(e);
        }
        // Queue the vCPUs (not runnable yet) with their budgets; undo everything on a
        // placement conflict.
        let now = crate::arch::counter_now();
        for (i, p) in req.vcpus.iter().enumerate() {
            let rq = &mut self.runqueues[usize::from(p.pcpu)];
            let budget = req.budgets.get(i).copied().unwrap_or((0, 0));
            let queued = queue_vcpu(rq, vcpu_key(id, i), p, budget, now);
            if queued.is_ok() && budget != (0, 0) {
                let (b, per) = budget;
                crate::info!(
                    "{id} ({}) vCPU {i}: budget {b} us per {per} us (configured)",
                    req.name
                );
            }
            if queued.is_err() {
                for (j, q) in req.vcpus.iter().enumerate().take(i) {
                    let _ = self.runqueues[usize::from(q.pcpu)].remove(vcpu_key(id, j));
                }
                self.xen_release(&mut domain);
                let stage2 = domain.stage2.take();
                self.release_memory(&domain.ram, stage2, cpu);
                return Err(CapError::CpuUnavailable);
            }
        }
        // Zero and clean what the load leaves, load, then clean what was loaded: the guest
        // starts with its MMU off (uncached accesses), so all of its RAM must be at the
        // point of coherency. What the load writes is not zeroed first (a third of a
        // Linux guest's build was zeroing its kernel and initramfs just to overwrite them);
        // a load op that fails zeroes its range instead (`Bulk::execute`).
        // Forced write-back RAM needs neither clean: the guest's accesses are cacheable
        // whatever its MMU says, and FEAT_S2FWB implies that instruction fetches see data
        // writes without one (`arch::coherence`); only the instruction caches are
        // invalidated after the load (`Bulk::execute`).
        let q = &mut self.bulk[cpu];
        for &(_, pa, len) in &spans {
            for (pa, len) in crate::mm::ram::subtract(pa.as_u64(), len, &written) {
                q.ops.push(if forced_wb {
                    super::bulk::Op::Zero { pa, len }
                } else {
                    super::bulk::Op::ZeroToPoc { pa, len }
                });
            }
        }
        q.ops.extend(load_ops);
        if !forced_wb {
            for &(pa, len) in &written {
                q.ops.push(super::bulk::Op::Clean { pa, len });
            }
        }
        q.finish.push(super::bulk::Finish::Ready(id, instance));
        let writable = domain.caps.holds(CapKind::Console, Rights::WRITE).is_ok();
        super::fast_slots::open(id, req.name, writable);
        for c in &domain.vcpus {
            self.note_placed(id, usize::from(c.placement.pcpu));
        }
        self.domains[slot] = Some(domain);
        Ok(id)
    }

    /// Takes `pages` pages of RAM for domain `name`: one 2 MiB-aligned run if `contiguous`,
    /// otherwise whatever extents are free. A refusal is logged with what was asked for and
    /// what is available.
    fn alloc_ram(&mut self, name: &str, pages: u64, contiguous: bool) -> Result<RamMap, CapError> {
        let mut ram = RamMap::new();
        let taken = if contiguous {
            self.frames
                .alloc(pages, BLOCK_SIZE)
                .map(|pa| ram.push(pa, pages))
        } else {
            self.frames.alloc_scattered(pages, |pa, n| ram.push(pa, n))
        };
        if taken.is_err() {
            crate::info!(
                "cannot build {}: asked for {} MiB{}, {} MiB free (largest contiguous run {} MiB)",
                name,
                pages / 256,
                if contiguous { " contiguous" } else { "" },
                self.frames.free_pages() / 256,
                self.frames.largest_free_run() / 256
            );
            return Err(CapError::NoMemory);
        }
        Ok(ram)
    }

    /// Returns RAM that nothing has written yet.
    fn free_ram(&mut self, ram: &RamMap) {
        for e in ram.extents() {
            let r = self.frames.free(e.pa, e.pages);
            debug_assert!(r.is_ok(), "fresh RAM extent {e:?} freed twice");
        }
    }

    /// A fresh incarnation number for domain id `id`.
    pub fn next_instance(&mut self, id: DomainId) -> u32 {
        let slot = usize::from(id.0);
        self.instances[slot] = self.instances[slot].wrapping_add(1).max(1);
        self.instances[slot]
    }

    /// Destroys a stage 2 and queues the scrub and release of every RAM extent on `cpu`
    /// (outside the lock), so the next owner never sees this domain's data.
    pub(super) fn release_memory(&mut self, ram: &RamMap, stage2: Option<PageTable>, cpu: usize) {
        if let Some(pt) = stage2 {
            pt.destroy(&mut FrameTables(&mut self.frames));
        }
        if ram.lazy().is_some() {
            // Retired, then only the blocks it ever exposed zeroed (`Op::ReleaseLazy`): of a
            // 512 MiB Linux guest that touched 40 blocks, 432 MiB go back unwritten.
            let q = &mut self.bulk[cpu];
            q.ops.push(super::bulk::Op::ReleaseLazy(ram.clone()));
            for e in ram.extents() {
                q.finish.push(super::bulk::Finish::Free(e.pa, e.pages));
            }
            return;
        }
        for e in ram.extents() {
            self.queue_scrub_and_free(e.pa, e.pages, cpu);
        }
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
        let Some(image) = self.module(usize::from(index)) else {
            return;
        };
        let ramdisk = spec
            .ramdisk_module
            .and_then(|r| Some((self.module(usize::from(r))?, r)));
        let extra_dt = self.guest_dt_module(id).unwrap_or(&[]);
        let req = BuildRequest {
            name: &name,
            image,
            ramdisk,
            extra_dt,
            mem_mib: spec.mem_mib,
            vcpus: &spec.vcpus,
            cmdline: &spec.cmdline,
            parent,
            caps: &spec.caps,
            module: spec.module,
            pmu: spec.pmu,
            budgets: &spec.budgets,
        };
        match self.build_domain_at(&req, id, instance, cpu) {
            Ok(_) => {
                if let Some(d) = self.domain_mut(id) {
                    d.restarts = restarts;
                }
                // An ordinary guest's passed-through devices appear where they were.
                self.map_guest_devices(id);
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

/// Adds vCPU `key` placed at `p` to its pCPU's run queue `rq` with its budget in µs
/// (`(0, 0)`: none) counted from `now`; on a refusal the queue is left as it was. The budget
/// was checked with the request ([`protocol::control::budgets_valid`]).
fn queue_vcpu(
    rq: &mut RunQueue,
    key: VcpuKey,
    p: &VcpuPlacement,
    budget: (u32, u32),
    now: u64,
) -> Result<(), SchedError> {
    rq.add(key, p.priority, p.exclusive)?;
    let Some(ticks) = super::migrate::budget_ticks(budget) else {
        return Ok(());
    };
    rq.set_budget(key, Some(ticks), now).inspect_err(|_| {
        let _ = rq.remove(key);
    })
}
