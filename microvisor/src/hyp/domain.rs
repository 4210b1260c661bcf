//! Domains and vCPUs: starting, stopping, restarting and freeing them (building one is in
//! [`super::build`]).

use super::tables::TableBudget;
use super::{vcpu_key, Hyp};
use crate::arch;
use crate::arch::context::{El1Context, GuestRegs, VgicHwState, MAX_LRS, PSTATE_EL1H_MASKED};
use crate::captable::{CapTable, Capability, Object};
use crate::mm::charged::FrameBudget;
use crate::mm::pagetable::{PageTable, Vttbr};
use crate::mm::ram::RamMap;
use crate::vgic::VgicDomain;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::cap::CapHandle;
use protocol::control::{CapError, DomainState, StopReason, VcpuPlacement};
use protocol::ids::DomainId;
use protocol::layout::GUEST_RAM_BASE;

/// Power state of a vCPU (PSCI's view).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// Not started, or CPU_OFF.
    Off,
    /// Started.
    On,
}

/// Counters shown by `DomainQuery` and `top`.
#[derive(Clone, Copy, Debug, Default)]
pub struct VcpuStats {
    /// Traps to EL2.
    pub exits: u64,
    /// Virtual interrupts injected.
    pub irqs: u64,
    /// Counter ticks spent in the guest.
    pub run_ticks: u64,
}

impl VcpuStats {
    /// Time it spent running guest code: for a pinned-exclusive vCPU (its WFI is not
    /// trapped, so its idle time is inside `run_ticks`) less `idle_reported`, the idle time
    /// it reported (`CapOp::IdleReport`, kept in its domain's fast slot). Only our runtime's
    /// domains report it: their WFI is not trapped (a Linux guest's is, see
    /// `run::traps_wfi`, and it reports nothing).
    pub fn busy_ticks(&self, exclusive: bool, idle_reported: u64) -> u64 {
        if exclusive {
            self.run_ticks.saturating_sub(idle_reported)
        } else {
            self.run_ticks
        }
    }
}

/// One virtual CPU.
pub struct Vcpu {
    /// General registers while not loaded on a CPU.
    pub regs: GuestRegs,
    /// EL1 system registers and virtual timer while not loaded.
    pub el1: El1Context,
    /// GIC virtual interface state while not loaded.
    pub vgic_hw: VgicHwState,
    /// FP/SIMD registers while not loaded.
    pub fp: crate::arch::fpsimd::FpState,
    /// PMU registers while not loaded (used only if its domain has the PMU).
    pub pmu: crate::arch::monitors::PmuState,
    /// Its breakpoint and watchpoint registers, never loaded into the hardware.
    pub debug: crate::debugregs::DebugShadow,
    /// List registers (kept in sync on every exit).
    pub lrs: [u64; MAX_LRS],
    /// PSCI power state.
    pub power: Power,
    /// Waiting in a trapped WFI for an interrupt.
    pub blocked: bool,
    /// Where it runs.
    pub placement: VcpuPlacement,
    /// Message page (host physical), if registered.
    pub msg_page: Option<PhysAddr>,
    /// The microvisor masked the virtual timer while its interrupt is in flight.
    pub vtimer_masked: bool,
    /// Counters.
    pub stats: VcpuStats,
    /// `DomainFault` asked for an Undefined Instruction exception, delivered the next time
    /// this vCPU is scheduled ([`Hyp::deliver_fault`]).
    pub fault_pending: bool,
    /// Re-pinned while loaded on its old CPU: it joins its new CPU's run queue when that
    /// CPU lets go of it ([`Hyp::pin_vcpu`]).
    pub migrating: bool,
    /// Its budget and period in microseconds (`CapOp::DomainVcpuBudget`), `(0, 0)` for
    /// none: kept here so a re-pin can give it to the vCPU's new run queue.
    pub budget_us: (u32, u32),
    /// The `SCHEDOP_poll` it is blocked in, if any: cleared whenever it is woken
    /// ([`Hyp::wake_mask`](super::Hyp::wake_mask)).
    pub poll: Option<crate::poll_wait::PollWait>,
}

/// One domain.
pub struct Domain {
    /// Its id.
    pub id: DomainId,
    /// Its name.
    pub name: String,
    /// Incarnation number, so capabilities to an earlier incarnation are stale.
    pub instance: u32,
    /// Lifecycle state.
    pub state: DomainState,
    /// Its RAM: host-physical extents behind the guest's contiguous RAM range.
    pub ram: RamMap,
    /// Stage-2 table.
    pub stage2: Option<PageTable>,
    /// Stage-2 table pages it holds and may hold (charged to it, see [`super::tables`]).
    pub tables: TableBudget,
    /// Frames the microvisor allocated for it (shared_info, magic pages, grant-table
    /// frames), charged to it like its tables ([`super::xen::setup::XEN_FRAME_PAGES`]).
    pub xen_frames: FrameBudget,
    /// VMID (tags its TLB entries).
    pub vmid: u16,
    /// The CPUs that may cache its translations (see [`crate::tlb_reach`]).
    pub tlb_reach: crate::tlb_reach::TlbReach,
    /// vCPUs.
    pub vcpus: Vec<Vcpu>,
    /// Emulated GIC.
    pub vgic: VgicDomain,
    /// Capabilities it holds.
    pub caps: CapTable,
    /// Whether it has negotiated the protocol version.
    pub negotiated: bool,
    /// The domain controlling it and the Memory cap its RAM came from.
    pub parent: Option<(DomainId, CapHandle)>,
    /// Where vCPU 0 starts.
    pub entry: super::loader::Entry,
    /// Xen-ABI state: shared_info, vcpu_info, magic pages, HVM parameters.
    pub xen: super::xen::XenDomain,
    /// Destroyed; freed once no CPU holds one of its vCPUs.
    pub dying: bool,
    /// Causes already logged (rate limiting: one line per cause).
    pub logged: u32,
    /// Times it was restarted in place.
    pub restarts: u32,
    /// What it was built from, so it can be rebuilt in place.
    pub spec: OwnedSpec,
    /// Rebuild (same id, instance `restart_pending`) once no CPU holds its vCPUs.
    pub restart_pending: Option<u32>,
    /// Children whose state changed since it last asked (bit n = domain n).
    pub child_events: u64,
    /// A clean shutdown its controller asked for, not yet acted on.
    pub shutdown_request: Option<protocol::control::ShutdownKind>,
    /// The CPU still copying its image in (outside the lock); not runnable until done.
    pub loading: Option<usize>,
    /// Hung on purpose (`DomainFault` with [`protocol::control::FaultKind::Hang`]): each of
    /// its vCPUs spins on its next HVC or WFI with interrupts masked
    /// (`exits::hang_in_place`), though its state still says running. A rebuild clears it.
    pub hung: bool,
}

/// A build request with owned data, kept for restarts.
#[derive(Clone, Debug)]
pub struct OwnedSpec {
    /// Boot module index of the image (`None`: the image was not a module).
    pub module: Option<u16>,
    /// Boot module index of the initramfs, if any.
    pub ramdisk_module: Option<u16>,
    /// RAM in MiB.
    pub mem_mib: u32,
    /// vCPU placements.
    pub vcpus: Vec<VcpuPlacement>,
    /// Start-info arguments.
    pub cmdline: String,
    /// Its access to the performance monitors.
    pub pmu: protocol::control::PmuAccess,
    /// Each vCPU's configured budget per period in µs (empty: none), given again at each
    /// restart in place.
    pub budgets: Vec<(u32, u32)>,
    /// Capabilities it was granted at creation.
    pub caps: Vec<Capability>,
}

impl Domain {
    /// Translates a guest-physical range inside RAM to host-physical, or `Fault`.
    pub fn ram_to_phys(&self, ipa: u64, len: u64) -> Result<PhysAddr, CapError> {
        let off = ipa
            .checked_sub(GUEST_RAM_BASE.as_u64())
            .ok_or(CapError::Fault)?;
        self.ram.to_phys(off, len).ok_or(CapError::Fault)
    }

    /// Whether `ipa` is inside this domain's RAM.
    pub fn in_ram(&self, ipa: u64) -> bool {
        // Asking is not touching: no block is scrubbed for it (`RamMap::contains`).
        ipa.checked_sub(GUEST_RAM_BASE.as_u64())
            .is_some_and(|off| self.ram.contains(off, 1))
    }

    /// Logs `msg` once per `cause` bit for this domain.
    pub fn log_once(&mut self, cause: u32, args: core::fmt::Arguments<'_>) {
        if self.logged & cause == 0 {
            self.logged |= cause;
            crate::info!("{} ({}): {}", self.id, self.name, args);
        }
    }

    /// Prints what the vGIC noticed about this guest's interrupt setup (each kind once per
    /// domain; the vGIC does the rate limiting).
    pub fn report_vgic_warnings(&mut self) {
        // Almost always nothing (each kind is raised once per domain): testing is a few
        // loads, a take moves every slot (about 190 instructions on each blocking WFI).
        if !self.vgic.has_warning() {
            return;
        }
        while let Some(w) = self.vgic.take_warning() {
            crate::info!("{} ({}): warning: {}", self.id, self.name, w);
        }
    }

    /// Whether vCPU `v` may run now. Not while it moves to another pCPU: its old CPU may
    /// still hold its state, and a vCPU is never loaded on two CPUs.
    pub fn vcpu_runnable(&self, v: usize) -> bool {
        self.state == DomainState::Running
            && !self.dying
            && self.loading.is_none()
            && self
                .vcpus
                .get(v)
                .is_some_and(|c| c.power == Power::On && !c.blocked && !c.migrating)
    }
}

pub use super::build::BuildRequest;

/// Log-once cause bits.
pub mod cause {
    /// Unknown hypercall.
    pub const UNKNOWN_HVC: u32 = 1 << 0;
    /// Xen hypercall before the Xen ABI exists.
    pub const XEN_HVC: u32 = 1 << 1;
    /// Trapped system register not emulated.
    pub const SYSREG: u32 = 1 << 2;
    /// Capability error returned.
    pub const CAP_ERROR: u32 = 1 << 3;
    /// Unexpected physical interrupt.
    pub const SPURIOUS_IRQ: u32 = 1 << 4;
    /// Access to a grant mapping its granter's death revoked.
    pub const REVOKED_GRANT: u32 = 1 << 5;
    /// PMU register access by a domain not given the PMU.
    pub const PMU: u32 = 1 << 6;
}

impl Hyp {
    /// Starts vCPU 0 of a created domain at the start of its RAM.
    pub fn start_domain(&mut self, id: DomainId, this_cpu: usize) -> Result<(), CapError> {
        let d = self.domain_mut(id).ok_or(CapError::Stale)?;
        if d.state != DomainState::Created {
            return Err(CapError::WrongState);
        }
        let entry = d.entry;
        let v0 = &mut d.vcpus[0];
        v0.regs = GuestRegs::default();
        v0.regs.pc = entry.pc;
        v0.regs.pstate = PSTATE_EL1H_MASKED;
        v0.regs.x[..3].copy_from_slice(&entry.args);
        v0.power = Power::On;
        d.state = DomainState::Running;
        self.refresh_runnable(id, this_cpu);
        Ok(())
    }

    /// Re-derives every vCPU's runnable flag in its run queue and kicks affected CPUs.
    pub fn refresh_runnable(&mut self, id: DomainId, this_cpu: usize) {
        let Some(d) = self.domain(id) else { return };
        let updates: Vec<(usize, usize, bool)> = (0..d.vcpus.len())
            .map(|v| {
                (
                    v,
                    usize::from(d.vcpus[v].placement.pcpu),
                    d.vcpu_runnable(v),
                )
            })
            .collect();
        for (v, cpu, runnable) in updates {
            let _ = self.runqueues[cpu].set_runnable(vcpu_key(id, v), runnable);
            self.kick_cpu(cpu, this_cpu);
        }
    }

    /// Stops a domain for `reason` (its memory stays until it is destroyed).
    pub fn stop_domain(&mut self, id: DomainId, reason: StopReason, this_cpu: usize) {
        let Some(d) = self.domain_mut(id) else { return };
        if matches!(d.state, DomainState::Stopped(_)) {
            return;
        }
        d.state = DomainState::Stopped(reason);
        crate::info!("{} ({}) stopped: {}", id, d.name, DisplayReason(reason));
        self.refresh_runnable(id, this_cpu);
        self.notify_controller(id, this_cpu);
    }

    /// Tells the domain controlling `id` that its state changed (DomainEvents + PPI).
    pub fn notify_controller(&mut self, id: DomainId, this_cpu: usize) {
        let Some(parent) = self.domain(id).and_then(|d| d.parent).map(|(p, _)| p) else {
            return;
        };
        let Some(p) = self.domain_mut(parent) else {
            return;
        };
        if id.0 < 64 {
            p.child_events |= 1 << id.0;
        }
        self.inject(parent, 0, protocol::layout::CONTROL_EVENT_PPI, this_cpu);
    }

    /// Destroys a domain: revokes capabilities to it, and frees it now or, if a CPU still
    /// holds one of its vCPUs, as soon as that CPU lets go.
    pub fn destroy_domain(&mut self, id: DomainId, this_cpu: usize) {
        let Some(d) = self.domain_mut(id) else { return };
        d.dying = true;
        super::xen::grant_state::with_grants(|g| g.retire(id));
        let instance = d.instance;
        // Destroying a domain whose restart is pending cancels the rebuild.
        let pending = d.restart_pending.take();
        let parent = d.parent;
        let pages = d.ram.size() / PAGE_SIZE + d.tables.limit + d.xen_frames.limit;
        let nvcpus = d.vcpus.len();
        let placements: Vec<usize> = d
            .vcpus
            .iter()
            .map(|v| usize::from(v.placement.pcpu))
            .collect();
        for slot in self.domains.iter_mut().flatten() {
            slot.caps.revoke(|c| matches!(c.object, Object::Domain { domid, instance: i } if domid == id && (i == instance || Some(i) == pending)));
        }
        // Give the RAM quota back to the memory cap it came from.
        if let Some((pid, mcap)) = parent {
            if let Some(p) = self.domain_mut(pid) {
                if let Ok(cap) = p.caps.get_mut(mcap) {
                    if let Object::Memory { quota_pages } = &mut cap.object {
                        *quota_pages = quota_pages.saturating_add(pages);
                    }
                }
            }
        }
        for (v, cpu) in placements.iter().enumerate().take(nvcpus) {
            let _ = self.runqueues[*cpu].remove(vcpu_key(id, v));
            self.kick_cpu(*cpu, this_cpu);
        }
        self.free_if_unloaded(id, this_cpu);
    }

    /// Restarts a domain in place: stops it, revokes capabilities to this incarnation and
    /// rebuilds it from its spec (same id) as soon as no CPU holds one of its vCPUs.
    /// Returns the new incarnation number. Its RAM quota stays charged to the controller.
    pub fn restart_domain(&mut self, id: DomainId, this_cpu: usize) -> Result<u32, CapError> {
        let d = self.domain(id).ok_or(CapError::Stale)?;
        if d.dying || d.spec.module.is_none() || d.state == DomainState::Created {
            return Err(CapError::WrongState);
        }
        let old = d.instance;
        let placements: Vec<usize> = d
            .vcpus
            .iter()
            .map(|v| usize::from(v.placement.pcpu))
            .collect();
        let new = self.next_instance(id);
        let d = self.domain_mut(id).ok_or(CapError::Stale)?;
        if !matches!(d.state, DomainState::Stopped(_)) {
            d.state = DomainState::Stopped(StopReason::Reboot);
        }
        d.dying = true;
        super::xen::grant_state::with_grants(|g| g.retire(id));
        d.restart_pending = Some(new);
        for slot in self.domains.iter_mut().flatten() {
            slot.caps.revoke(|c| matches!(c.object, Object::Domain { domid, instance: i } if domid == id && i == old));
        }
        for (v, cpu) in placements.iter().enumerate() {
            let _ = self.runqueues[*cpu].remove(vcpu_key(id, v));
            self.kick_cpu(*cpu, this_cpu);
        }
        self.free_if_unloaded(id, this_cpu);
        Ok(new)
    }

    /// `DomainFault` (a test capability, `ctl crash`): vCPU 0 of a running domain takes an
    /// Undefined Instruction exception the next time it is scheduled. It is woken for it
    /// (a WFI may end early), so a domain idling in WFI faults promptly.
    pub fn fault_domain(&mut self, id: DomainId, this_cpu: usize) -> Result<(), CapError> {
        let d = self.domain_mut(id).ok_or(CapError::Stale)?;
        if d.dying || d.state != DomainState::Running || d.vcpus.is_empty() {
            return Err(CapError::WrongState);
        }
        d.vcpus[0].fault_pending = true;
        crate::info!(
            "{} ({}): fault injected on vCPU 0 (DomainFault)",
            id,
            d.name
        );
        self.wake_mask(id, 1, this_cpu);
        Ok(())
    }

    /// `DomainFault` with `FaultKind::Hang` (a test capability, `ctl crash --hang`): from
    /// its next hypercall or WFI on, each vCPU of a running domain spins on that instruction
    /// with interrupts masked, busy and going nowhere (`exits::hang_in_place`). Its state
    /// stays `Running` and its controller gets no event: a hang is only noticed by what
    /// stops happening (heartbeats, ring service). Its vCPUs are woken so that one idling
    /// in WFI hangs at once.
    pub fn hang_domain(&mut self, id: DomainId, this_cpu: usize) -> Result<(), CapError> {
        let d = self.domain_mut(id).ok_or(CapError::Stale)?;
        if d.dying || d.state != DomainState::Running {
            return Err(CapError::WrongState);
        }
        d.hung = true;
        // Its console calls must reach the locked path, where they hang.
        super::fast_slots::close(id);
        let all = u32::try_from((1u64 << d.vcpus.len().min(32)) - 1).unwrap_or(u32::MAX);
        crate::info!(
            "{} ({}): hung: vCPUs spin with interrupts masked (DomainFault)",
            id,
            d.name
        );
        self.wake_mask(id, all, this_cpu);
        Ok(())
    }

    /// Delivers a pending [`Hyp::fault_domain`] to `key`, loaded on this CPU with `regs`.
    pub(super) fn deliver_fault(&mut self, key: crate::sched::VcpuKey, regs: &mut GuestRegs) {
        let (id, v) = super::key_parts(key);
        let Some(vcpu) = self.domain_mut(id).and_then(|d| d.vcpus.get_mut(v)) else {
            return;
        };
        if core::mem::take(&mut vcpu.fault_pending) {
            super::exits::inject_undef(regs);
        }
    }

    /// Frees a dying domain once no CPU holds one of its vCPUs and no device may still
    /// write its memory: while another domain holds a device map of one of its grants
    /// (`GNTMAP_device_map`), its memory stays, and the unmap (or the mapper's own death,
    /// after its devices were reset) frees it ([`Hyp::free_dma_waiters`]).
    pub fn free_if_unloaded(&mut self, id: DomainId, this_cpu: usize) {
        // Whether it is dying first: that is the cheap test, and every switch of a shared
        // CPU comes through here.
        if !self.domain(id).is_some_and(|d| d.dying) {
            return;
        }
        let held = self
            .loaded
            .iter()
            .flatten()
            .any(|k| super::key_parts(*k).0 == id);
        if held || device_mapped(id) {
            return;
        }
        self.release_devices(id);
        if let Some(mut d) = self.domains[usize::from(id.0)].take() {
            super::fast_slots::close(id);
            for m in &mut self.placed {
                *m &= !1u32.checked_shl(id.0.into()).unwrap_or(0);
            }
            self.xen_release(&mut d);
            let d = *d;
            // A load still in flight on some CPU finishes before the scrub: queue it there.
            let scrubber = d.loading.unwrap_or(this_cpu);
            if let Some(c) = d.ram.lazy().map(|l| l.census()) {
                crate::info!(
                    "{} ({}): RAM blocks (2 MiB) scrubbed at build {}, on first touch {}, never touched {} (first touches the microvisor's own, under a lock: {})",
                    d.id,
                    d.name,
                    c.built,
                    c.touched,
                    c.never,
                    c.resolved
                );
            }
            self.release_memory(&d.ram, d.stage2, scrubber);
            // The VMID will be reused: drop every cached translation tagged with it.
            arch::tlb_flush_all_guests();
            if let Some(instance) = d.restart_pending {
                self.rebuild(
                    id,
                    instance,
                    d.name,
                    d.spec,
                    d.parent,
                    d.restarts + 1,
                    this_cpu,
                );
            } else {
                // Gone for good: uploads only it was keeping go back (scrubbed behind its
                // load, if one is still in flight).
                self.reclaim_uploads(scrubber);
            }
            // Its device maps went with its grant state.
            self.free_dma_waiters(this_cpu);
        }
    }

    /// Frees every dying domain that was only waiting for device maps of its grants to go
    /// ([`Hyp::free_if_unloaded`]). Dying domains are rare and few, so a scan is enough.
    pub fn free_dma_waiters(&mut self, this_cpu: usize) {
        let waiting: Vec<DomainId> = self
            .domains
            .iter()
            .flatten()
            .filter(|d| d.dying)
            .map(|d| d.id)
            .collect();
        for id in waiting {
            if !device_mapped(id) {
                self.free_if_unloaded(id, this_cpu);
            }
        }
    }

    /// `VTTBR_EL2` value of a domain.
    pub fn vttbr(&self, id: DomainId) -> Option<Vttbr> {
        let d = self.domain(id)?;
        d.stage2.as_ref()?.vttbr(d.vmid)
    }
}

/// Whether another domain holds a device map of one of `id`'s grants.
fn device_mapped(id: DomainId) -> bool {
    super::xen::grant_state::with_grants(|g| g.tables.device_mapped(id.0)).unwrap_or(false)
}

/// Formats a stop reason for logs.
pub struct DisplayReason(pub StopReason);

impl core::fmt::Display for DisplayReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            StopReason::PowerOff => write!(f, "powered off"),
            StopReason::Reboot => write!(f, "asked to reboot"),
            StopReason::Stage2Fault { ipa, esr } => {
                write!(f, "stage-2 fault at IPA {ipa:#x} (ESR {esr:#x})")
            }
            StopReason::Crashed { code } => write!(f, "crashed (code {code:#x})"),
            StopReason::UnhandledTrap { esr, pc } => {
                write!(f, "unhandled trap ESR {esr:#x} at PC {pc:#x}")
            }
            _ => write!(f, "{:?}", self.0),
        }
    }
}
