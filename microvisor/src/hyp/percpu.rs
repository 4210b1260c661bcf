//! What each physical CPU keeps to itself: the loaded vCPU's list-register shadow and the
//! facts its fast path needs, plus the statics other CPUs may touch (the mailboxes and the
//! per-domain vGIC configuration epochs), which are atomics.
//!
//! [`Local`] is a local variable of the CPU's run loop, never shared: while the CPU runs
//! its fast path it is the authority for the loaded vCPU's LR shadow and pending
//! statistics; whenever the CPU takes [`HYP`](super::HYP) it hands them to the domain
//! record first ([`Hyp::take_local`]) and takes them back before it lets go
//! ([`Hyp::give_local`]), so the lock-holding code sees the same state as before.

use super::{key_parts, Hyp, MAX_DOMAINS};
use crate::arch::boot::MAX_CPUS;
use crate::arch::context::MAX_LRS;
use crate::arch::gic::VTIMER_PPI;
use crate::mailbox::Mailbox;
use crate::sched::VcpuKey;
use core::sync::atomic::{AtomicU32, Ordering};

/// Each CPU's incoming requests (see [`crate::mailbox`]).
pub static MAILBOX: [Mailbox; MAX_CPUS] = [const { Mailbox::new() }; MAX_CPUS];

/// Bumped (under the lock) whenever a domain's vGIC configuration is written through its
/// distributor or redistributors, so a CPU's cached view of its loaded vCPU's timer
/// priority goes stale without that CPU taking the lock to find out.
pub static VGIC_EPOCH: [AtomicU32; MAX_DOMAINS] = [const { AtomicU32::new(0) }; MAX_DOMAINS];

/// Marks domain `index`'s vGIC configuration as changed.
pub fn vgic_changed(index: usize) {
    if let Some(e) = VGIC_EPOCH.get(index) {
        e.fetch_add(1, Ordering::Release);
    }
}

/// The loaded vCPU as its CPU's fast path sees it.
#[derive(Clone, Copy, Debug)]
pub struct LoadedVcpu {
    /// Which vCPU.
    pub key: VcpuKey,
    /// Its list-register shadow (equal to the hardware whenever the fast path runs).
    pub lrs: [u64; MAX_LRS],
    /// Pinned exclusive (the virtual timer goes straight into a hardware-linked LR).
    pub exclusive: bool,
    /// The priority its guest gave the virtual timer PPI, if enabled.
    pub vtimer_priority: Option<u8>,
    /// [`VGIC_EPOCH`] of its domain when `vtimer_priority` was read.
    pub epoch: u32,
}

impl LoadedVcpu {
    /// Whether the cached timer priority still describes the domain's vGIC.
    pub fn priority_fresh(&self) -> bool {
        let (id, _) = key_parts(self.key);
        VGIC_EPOCH
            .get(usize::from(id.0))
            .is_some_and(|e| e.load(Ordering::Acquire) == self.epoch)
    }
}

/// One CPU's private state.
#[derive(Debug)]
pub struct Local {
    /// This CPU's index.
    pub cpu: usize,
    /// List registers this GIC implements.
    pub nr_lrs: usize,
    /// The loaded vCPU, if any.
    pub loaded: Option<LoadedVcpu>,
    /// Exits handled on the fast path since the last hand-over.
    pub exits: u64,
    /// Virtual interrupts injected on the fast path since the last hand-over.
    pub irqs: u64,
    /// Counter ticks the loaded vCPU ran since the last hand-over.
    pub run_ticks: u64,
}

impl Local {
    /// A CPU with nothing loaded.
    pub fn new(cpu: usize, nr_lrs: usize) -> Self {
        Self {
            cpu,
            nr_lrs: nr_lrs.min(MAX_LRS),
            loaded: None,
            exits: 0,
            irqs: 0,
            run_ticks: 0,
        }
    }
}

impl Hyp {
    /// Hands the fast path's state to the domain record (called right after taking the lock).
    pub fn take_local(&mut self, local: &mut Local) {
        let (exits, irqs, ticks) = (local.exits, local.irqs, local.run_ticks);
        local.exits = 0;
        local.irqs = 0;
        local.run_ticks = 0;
        let Some(lv) = local.loaded else { return };
        let (id, v) = key_parts(lv.key);
        if let Some(vcpu) = self.domain_mut(id).and_then(|d| d.vcpus.get_mut(v)) {
            vcpu.lrs = lv.lrs;
            vcpu.stats.exits += exits;
            vcpu.stats.irqs += irqs;
            vcpu.stats.run_ticks += ticks;
        }
    }

    /// Refreshes the fast path's view of the loaded vCPU (called right before unlocking).
    pub fn give_local(&mut self, local: &mut Local) {
        let cpu = local.cpu;
        local.loaded = self.loaded[cpu].and_then(|key| {
            let (id, v) = key_parts(key);
            let epoch = VGIC_EPOCH.get(usize::from(id.0))?.load(Ordering::Acquire);
            let d = self.domain(id)?;
            let vcpu = d.vcpus.get(v)?;
            Some(LoadedVcpu {
                key,
                lrs: vcpu.lrs,
                exclusive: vcpu.placement.exclusive,
                vtimer_priority: d.vgic.enabled_priority(v, VTIMER_PPI),
                epoch,
            })
        });
    }
}
