//! What each physical CPU keeps to itself: the loaded vCPU's list-register shadow and the
//! facts its fast path needs, plus the statics other CPUs may touch (the mailboxes, the
//! per-vCPU posted-interrupt words and the per-domain vGIC configuration epochs), which are
//! atomics.
//!
//! [`Local`] is a local variable of the CPU's run loop, never shared: while the CPU runs
//! its fast path it is the authority for the loaded vCPU's LR shadow and pending
//! statistics; whenever the CPU takes [`HYP`](super::HYP) it hands them to the domain
//! record first ([`Hyp::take_local`]) and takes them back before it lets go
//! ([`Hyp::give_local`]), so the lock-holding code sees the same state as before.
//!
//! [`Local::guest`] is the CPU's [`GuestLoaded`], the proof that its hardware is set up to
//! enter the loaded vCPU (see `arch::vectors`), which the fast path needs to enter the
//! guest. `Hyp::load` makes a new one under the lock and leaves it in
//! [`Hyp::guest_loaded`]; `give_local` moves it into `Local`, dropping the old one, or drops
//! the old one if the pass left nothing loaded. During the pass the old proof may describe
//! a vCPU just unloaded (and a stage 2 about to be freed), but nothing can use it: `Local`
//! is mutably borrowed by the run loop's `locked` for the whole pass, and the code under
//! the lock never sees it. Only this CPU's run loop moves it (its own index,
//! `Local::cpu`), so it never vouches for another CPU's registers.

use super::domain::VcpuStats;
use super::{key_parts, Hyp, MAX_DOMAINS};
use crate::arch::boot::MAX_CPUS;
use crate::arch::context::MAX_LRS;
use crate::arch::gic::VTIMER_PPI;
use crate::arch::vectors::GuestLoaded;
use crate::fastpath::home_entry;
use crate::mailbox::Mailbox;
use crate::posted::{PostedIrqs, PrivateCfg};
use crate::sched::VcpuKey;
use crate::unfolded::Unfolded;
use crate::vgic::{FastSpi, FAST_SPIS};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use protocol::ids::DomainId;
use protocol::layout::MAX_VCPUS;

/// Each CPU's incoming requests (see [`crate::mailbox`]).
pub static MAILBOX: [Mailbox; MAX_CPUS] = [const { Mailbox::new() }; MAX_CPUS];

/// Bumped (under the lock) whenever a domain's vGIC configuration is written through its
/// distributor or redistributors, so a CPU's cached view of its loaded vCPU's timer
/// priority goes stale without that CPU taking the lock to find out.
pub static VGIC_EPOCH: [AtomicU32; MAX_DOMAINS] = [const { AtomicU32::new(0) }; MAX_DOMAINS];

/// Private interrupts posted to each vCPU (by domain id, then vCPU index) and not yet taken
/// by its CPU (see [`crate::posted`]).
pub static POSTED_IRQS: [[PostedIrqs; MAX_VCPUS]; MAX_DOMAINS] =
    [const { [const { PostedIrqs::new() }; MAX_VCPUS] }; MAX_DOMAINS];

/// The posted-interrupt word of vCPU `key`, if the key is in range.
pub fn posted_irqs(key: VcpuKey) -> Option<&'static PostedIrqs> {
    let (id, v) = key_parts(key);
    POSTED_IRQS.get(usize::from(id.0))?.get(v)
}

/// Where each vCPU (by domain id, then vCPU index) may be posted to without the lock:
/// [`crate::fastpath::home_entry`] of its placement (`pCPU + 1` if pinned exclusive, else 0). Written when
/// the domain is built, before any of its vCPUs runs; read by its siblings' fast paths.
pub static VCPU_HOME: [[AtomicU32; MAX_VCPUS]; MAX_DOMAINS] =
    [const { [const { AtomicU32::new(0) }; MAX_VCPUS] }; MAX_DOMAINS];

/// Where each vCPU (by domain id, then vCPU index) is placed, pinned exclusive or shared:
/// [`crate::fastpath::home_entry`]`(true, pCPU)`, or 0 while it moves to another pCPU.
/// An event-channel send on another CPU's fast path posts PPI 31 to a vCPU placed
/// anywhere and notifies this CPU, whose next locked pass takes the word of every vCPU
/// placed there ([`Hyp::drain_posted`]); see `xen::event_state::send_fast`.
pub static VCPU_CPU: [[AtomicU32; MAX_VCPUS]; MAX_DOMAINS] =
    [const { [const { AtomicU32::new(0) }; MAX_VCPUS] }; MAX_DOMAINS];

/// Each CPU's snapshot of its loaded vCPU's counts not yet folded into the vCPU's record
/// (see [`crate::unfolded`]): written by that CPU only, read by listings under the lock.
pub static UNFOLDED: [Unfolded; MAX_CPUS] = [const { Unfolded::new() }; MAX_CPUS];

/// Each physical CPU's MPIDR (affinity), for the kick SGI; written once at boot.
pub static CPU_MPIDR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Posts `bits` to the mailbox of each CPU in `cpus` (bit n = CPU n), kicking another CPU
/// with `kick(mpidr)` on the empty-to-non-empty edge (this CPU's own run loop looks right
/// after the exit). Lock-free: callers on the fast path and under the event lock alike.
#[inline]
pub fn post_to_cpus(cpus: u64, bits: u32, this_cpu: usize, kick: impl Fn(u64)) {
    for (cpu, (mailbox, mpidr)) in MAILBOX.iter().zip(&CPU_MPIDR).enumerate() {
        if cpus & (1 << cpu) != 0 && mailbox.post(bits) && cpu != this_cpu {
            kick(mpidr.load(Ordering::Acquire));
        }
    }
}

/// Publishes the CPUs' affinities (boot, before any secondary CPU runs).
pub fn publish_cpus(mpidrs: &[u64]) {
    for (slot, &m) in CPU_MPIDR.iter().zip(mpidrs) {
        slot.store(m, Ordering::Release);
    }
}

/// A new domain takes id `index` with vCPUs placed as `placements` (pinned exclusive,
/// pCPU): nothing may be left posted to its vCPUs, its siblings learn where each vCPU
/// lives, and every CPU's cached view of a vCPU with that id is stale. Called under the
/// lock before any of its vCPUs runs and before its event channels open (the previous
/// holder of the id had none loaded anywhere and its channels closed, so nobody reads or
/// posts to these words meanwhile).
pub fn domain_created(index: usize, placements: impl Iterator<Item = (bool, usize)>) {
    if let Some(words) = POSTED_IRQS.get(index) {
        for w in words {
            w.take();
        }
    }
    if let (Some(homes), Some(cpus)) = (VCPU_HOME.get(index), VCPU_CPU.get(index)) {
        let mut placements = placements;
        for (home, cpu) in homes.iter().zip(cpus) {
            let (h, c) = placements.next().map_or((0, 0), |(exclusive, pcpu)| {
                (home_entry(exclusive, pcpu), home_entry(true, pcpu))
            });
            home.store(h, Ordering::Release);
            cpu.store(c, Ordering::Release);
        }
    }
    vgic_changed(index);
}

/// vCPU `v` of domain `id` now lives at `home` ([`crate::fastpath::home_entry`]; 0 while
/// it moves to another pCPU, so siblings' fast paths do not post to it). Under the lock.
pub fn set_home(id: protocol::ids::DomainId, v: usize, home: u32) {
    if let Some(slot) = VCPU_HOME.get(usize::from(id.0)).and_then(|t| t.get(v)) {
        slot.store(home, Ordering::Release);
    }
}

/// vCPU `v` of domain `id` is now placed on `pcpu` (`None` while it moves: no fast
/// event-channel send posts to it). Under the lock.
pub fn set_cpu(id: protocol::ids::DomainId, v: usize, pcpu: Option<usize>) {
    if let Some(slot) = VCPU_CPU.get(usize::from(id.0)).and_then(|t| t.get(v)) {
        slot.store(pcpu.map_or(0, |c| home_entry(true, c)), Ordering::Release);
    }
}

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
    /// Its private-interrupt configuration, for posted interrupts: all of it read from its
    /// vGIC if its fast path places what is posted to it ([`Self::places_posts`]; kept
    /// across passes while that stays so and the key and the vGIC epoch stay the same),
    /// else none (everything reads as disabled, so what is posted is left for the locked
    /// pass).
    pub private: PrivateCfg,
    /// [`VGIC_EPOCH`] of its domain when `vtimer_priority` and `private` were read.
    pub epoch: u32,
    /// vCPUs in its domain.
    pub nr_vcpus: usize,
    /// Its domain's idle passthrough SPIs the fast path may deliver to it (the first
    /// `nr_spis`; [`crate::vgic::VgicDomain::fast_spis`]), valid while `epoch` is fresh.
    pub spis: [FastSpi; FAST_SPIS],
    /// How many of `spis` there are.
    pub nr_spis: usize,
    /// Placed shared, and no other vCPU queued on its CPU was runnable at the last locked
    /// pass: its trapped WFI is waited out at EL2 with it loaded, as an exclusive vCPU's
    /// is, and interrupts posted to it are placed by the fast path. Anything that makes
    /// another vCPU runnable here either runs on this CPU's locked path or kicks this CPU
    /// (`Hyp::wake_mask`, a posted interrupt), which ends the wait.
    pub alone: bool,
    /// The other vCPUs queued on its CPU (the first `nr_neighbours`; `None` if more than
    /// fit): a post to one of them is left for the locked pass.
    pub neighbours: [VcpuKey; NEIGHBOURS],
    /// How many of `neighbours` there are, if all fit.
    pub nr_neighbours: Option<usize>,
    /// The microvisor masked its virtual timer until the guest finishes the timer's list
    /// register (the record's `vtimer_masked`, read at each hand-back). The fast path
    /// unmasks it when it frees that list register, and the hand-over writes it back.
    pub vtimer_masked: bool,
}

/// How many other vCPUs queued on a shared CPU [`LoadedVcpu::neighbours`] holds.
pub const NEIGHBOURS: usize = 8;

impl LoadedVcpu {
    /// Whether the cached timer priority and private configuration still describe the
    /// domain's vGIC.
    pub fn priority_fresh(&self) -> bool {
        let (id, _) = key_parts(self.key);
        VGIC_EPOCH
            .get(usize::from(id.0))
            .is_some_and(|e| e.load(Ordering::Acquire) == self.epoch)
    }

    /// Whether its fast path places what is posted to it (pinned exclusive, or shared and
    /// alone on its pCPU), so that [`Self::private`] holds its configuration.
    pub fn places_posts(&self) -> bool {
        self.exclusive || self.alone
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
    /// The proof that the hardware is set up to enter the loaded vCPU (between locked
    /// passes, present exactly when one is loaded; see the module docs).
    pub guest: Option<GuestLoaded>,
    /// Exits handled on the fast path since the last hand-over.
    pub exits: u64,
    /// Virtual interrupts injected on the fast path since the last hand-over.
    pub irqs: u64,
    /// Counter ticks the loaded vCPU ran since the last hand-over.
    pub run_ticks: u64,
    /// Counter ticks this CPU waited at EL2 in the current stay for a WFI of the loaded
    /// vCPU (see the fast path's `SyncAction::WfiWait`): not the guest's time.
    pub waited: u64,
    /// When the current stay in the fast path began, or its time up to then was last
    /// counted into `run_ticks` for a publication (counter ticks).
    pub stay_start: u64,
    /// Whether [`UNFOLDED`] holds a snapshot of this CPU's, to clear at the next fold.
    pub published: bool,
    /// The vCPU whose idle report this CPU's fast path served last: while it is the loaded
    /// one, its counts are published at its reports only (see the fast path's
    /// `idle_reported`).
    pub reports_idle: Option<VcpuKey>,
    /// List registers the fast path filled with posted interrupts since the last hand-over
    /// (bit n = LR n), for the vGIC model to adopt.
    pub posted: u16,
    /// List registers the vGIC model filled that the fast path freed since the last
    /// hand-over (the guest finished a private interrupt without EOI notification; bit n =
    /// LR n), for the model to retire before it adopts anything.
    pub retired: u16,
    /// The exit at which the loaded vCPU's WFI, waited out at EL2, ended: a locked pass
    /// right after it blocks a shared vCPU that has nothing to take (see
    /// [`crate::idle_wake`]).
    pub idle_wake: crate::idle_wake::IdleWake,
}

impl Local {
    /// A CPU with nothing loaded.
    pub fn new(cpu: usize, nr_lrs: usize) -> Self {
        Self {
            cpu,
            nr_lrs: nr_lrs.min(MAX_LRS),
            loaded: None,
            guest: None,
            exits: 0,
            irqs: 0,
            run_ticks: 0,
            waited: 0,
            stay_start: 0,
            published: false,
            reports_idle: None,
            posted: 0,
            retired: 0,
            idle_wake: crate::idle_wake::IdleWake::default(),
        }
    }
}

impl Hyp {
    /// Hands the fast path's state to the domain record (called right after taking the
    /// lock): its LR shadow, with the model's LRs it freed retired in the vGIC model and
    /// then the LRs it filled adopted, its counts, and whatever is still posted to the
    /// vCPU.
    pub fn take_local(&mut self, local: &mut Local) {
        // Known only within a pass (see `crate::timer_earliest`).
        if let Some(e) = self.timer_earliest.get_mut(local.cpu) {
            e.forget();
        }
        let (exits, irqs, ticks) = (local.exits, local.irqs, local.run_ticks);
        local.exits = 0;
        local.irqs = 0;
        local.run_ticks = 0;
        // Folded below: a listing must not add the snapshot to the record as well.
        if core::mem::take(&mut local.published) {
            if let Some(u) = UNFOLDED.get(local.cpu) {
                u.clear();
            }
        }
        let posted = core::mem::take(&mut local.posted);
        let retired = core::mem::take(&mut local.retired);
        let Some(lv) = local.loaded.as_ref() else {
            return;
        };
        let (id, v) = key_parts(lv.key);
        let n = self.nr_lrs;
        if let Some(d) = self.domain_mut(id) {
            if let Some(vcpu) = d.vcpus.get_mut(v) {
                // The implemented ones (the rest stay zero in both copies).
                copy_lrs(&mut vcpu.lrs[..local.nr_lrs], &lv.lrs);
                // Only this CPU changes a loaded vCPU's: the fast path may have unmasked it.
                vcpu.vtimer_masked = lv.vtimer_masked;
                vcpu.stats.exits += exits;
                vcpu.stats.irqs += irqs;
                vcpu.stats.run_ticks += ticks;
            }
            if retired != 0 {
                // First: a posted LR may hold an INTID the model still counts as in the LR
                // the fast path freed. The posted ones are not the model's yet.
                let mut lrs = lv.lrs;
                for (i, l) in lrs.iter_mut().enumerate().take(16) {
                    if posted & (1 << i) != 0 {
                        *l = 0;
                    }
                }
                d.vgic.retire_freed(v, &lrs[..n.min(lrs.len())]);
            }
            if posted != 0 {
                for slot in (0..n.min(16)).filter(|&i| posted & (1 << i) != 0) {
                    d.adopt_posted_lr(v, slot);
                }
            }
        }
        // What it ran counts against its budget, if it has one (see `crate::sched`).
        self.runqueues[local.cpu].charge(lv.key, ticks);
        // Only pinned-exclusive vCPUs are posted to.
        if lv.exclusive {
            self.drain_posted(lv.key, local.cpu);
        }
    }

    /// The counts of vCPU `v` of domain `id` whose record holds `record`: the record plus
    /// whatever the CPU that has it loaded published and has not folded in yet
    /// ([`UNFOLDED`]; a vCPU waiting out its WFIs at EL2 may not fold for minutes).
    pub fn live_stats(&self, id: DomainId, v: usize, record: VcpuStats) -> VcpuStats {
        match crate::unfolded::published(&self.loaded, &UNFOLDED, super::vcpu_key(id, v)) {
            Some(c) => VcpuStats {
                exits: record.exits + c.exits,
                irqs: record.irqs + c.irqs,
                run_ticks: record.run_ticks + c.run_ticks,
            },
            None => record,
        }
    }

    /// Refreshes the fast path's view of the loaded vCPU (called right before unlocking).
    /// Written field by field into the existing view rather than rebuilt and copied whole:
    /// this runs on every locked pass.
    pub fn give_local(&mut self, local: &mut Local) {
        let cpu = local.cpu;
        // A vCPU this pass loaded comes with a new proof (the old one goes with it).
        if let Some(new) = self.guest_loaded.get_mut(cpu).and_then(Option::take) {
            local.guest = Some(new);
        }
        // Other CPUs' passes may change this CPU's switched-out timers before its next one.
        if let Some(e) = self.timer_earliest.get_mut(cpu) {
            e.forget();
        }
        let found = self.loaded.get(cpu).copied().flatten().and_then(|key| {
            let (id, v) = key_parts(key);
            let epoch = VGIC_EPOCH.get(usize::from(id.0))?.load(Ordering::Acquire);
            let d = self.domain(id)?;
            Some((key, epoch, d, v, d.vcpus.get(v)?))
        });
        let Some((key, epoch, d, v, vcpu)) = found else {
            local.loaded = None;
            // Nothing loaded: nothing to enter.
            local.guest = None;
            return;
        };
        // The private configuration is 64 lookups: kept while it cannot have changed, and
        // only wanted where interrupts are posted to the loaded vCPU on the fast path
        // (pinned exclusive, or shared and alone).
        let kept = local
            .loaded
            .as_ref()
            .is_some_and(|old| old.key == key && old.epoch == epoch && old.places_posts());
        let lv = local.loaded.get_or_insert_with(|| LoadedVcpu {
            key,
            lrs: [0; MAX_LRS],
            exclusive: false,
            vtimer_priority: None,
            private: PrivateCfg::default(),
            epoch,
            nr_vcpus: 0,
            spis: [FastSpi::default(); FAST_SPIS],
            nr_spis: 0,
            alone: false,
            neighbours: [VcpuKey(0); NEIGHBOURS],
            nr_neighbours: None,
            vtimer_masked: false,
        });
        lv.alone = !vcpu.placement.exclusive
            && self.alone_on(cpu, key, &mut lv.neighbours, &mut lv.nr_neighbours);
        if vcpu.placement.exclusive || lv.alone {
            if !kept {
                lv.private = private_cfg(d, v);
            }
        } else {
            // Shared with others runnable: what is posted to it waits for a locked pass
            // (`neighbours_quiet`), so nothing reads as enabled (the priorities are then
            // never read), and a CPU switching between its vCPUs pays no lookups for it.
            lv.private.enabled = 0;
            lv.private.eoi = 0;
        }
        lv.key = key;
        copy_lrs(&mut lv.lrs[..local.nr_lrs], &vcpu.lrs);
        lv.exclusive = vcpu.placement.exclusive;
        lv.vtimer_masked = vcpu.vtimer_masked;
        lv.vtimer_priority = d.vgic.enabled_priority(v, VTIMER_PPI);
        lv.epoch = epoch;
        lv.nr_vcpus = d.vgic.nr_vcpus();
        // Every pass: whether an SPI is idle changes with each delivery.
        lv.nr_spis = d.vgic.fast_spis(v, &vcpu.lrs, &mut lv.spis);
    }

    /// Whether no vCPU queued on `cpu` other than `key` is runnable (as its run queue sees
    /// it: what the scheduler would pick); if so, the others go into `neighbours` and
    /// their count into `count` (`None` if more than fit), which only an alone vCPU's fast
    /// path reads.
    fn alone_on(
        &self,
        cpu: usize,
        key: VcpuKey,
        neighbours: &mut [VcpuKey; NEIGHBOURS],
        count: &mut Option<usize>,
    ) -> bool {
        let Some(rq) = self.runqueues.get(cpu) else {
            *count = None;
            return false;
        };
        if !rq.alone(key) {
            return false;
        }
        let mut n = 0usize;
        for (other, _) in rq.others(key) {
            if let Some(slot) = neighbours.get_mut(n) {
                *slot = other;
            }
            n += 1;
        }
        *count = (n <= NEIGHBOURS).then_some(n);
        true
    }

    /// Moves everything posted to vCPU `key` into its domain's vGIC model, waking it if
    /// that made something deliverable (under the lock; `this_cpu` is the caller's CPU).
    pub fn drain_posted(&mut self, key: VcpuKey, this_cpu: usize) {
        let Some(word) = posted_irqs(key) else { return };
        let mut bits = word.take();
        let (id, v) = key_parts(key);
        while bits != 0 {
            let intid = bits.trailing_zeros();
            bits &= bits - 1;
            self.inject_model(id, v, intid, this_cpu);
        }
    }
}

/// Copies list-register values from `src` into `dst` (as many as `dst` holds), storing only
/// those that differ: a handful of words, which a plain copy of run-time length turns into
/// a `memcpy` call costing more than the copy (this runs twice every locked pass).
fn copy_lrs(dst: &mut [u64], src: &[u64]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        if *d != s {
            *d = s;
        }
    }
}

/// vCPU `v`'s private-interrupt configuration as the fast path caches it.
fn private_cfg(d: &super::domain::Domain, v: usize) -> PrivateCfg {
    let mut cfg = PrivateCfg::default();
    for intid in 0..32u32 {
        if let Some(p) = d.vgic.enabled_priority(v, intid) {
            cfg.enabled |= 1 << intid;
            cfg.priority[intid as usize] = p;
        }
        if d.vgic.eoi_notify(v, intid) {
            cfg.eoi |= 1 << intid;
        }
    }
    cfg
}

impl super::domain::Domain {
    /// The vGIC model takes over LR `slot` of vCPU `v`, which the fast path filled with a
    /// posted interrupt (loaded on this CPU). If it cannot (never expected: the fast path
    /// only uses an LR when no other holds the same INTID), the LR is emptied, in the
    /// hardware too (see [`Self::adopt_lr`]).
    fn adopt_posted_lr(&mut self, v: usize, slot: usize) {
        if !self.adopt_lr(v, slot) {
            crate::arch::gic::write_lr(slot, 0);
        }
    }

    /// Clears every switched-out vCPU's hardware-linked LR in flight for physical
    /// interrupt `pintid` (they stay linked while switched out: see `run.rs`'s `unload`);
    /// whether there was one, for the caller to deactivate it. Only for a domain whose
    /// vCPUs are all switched out, giving its device up.
    pub(super) fn end_linked_lrs(&mut self, pintid: u32) -> bool {
        use crate::vgic::lr;
        let mut found = false;
        for slot in self.vcpus.iter_mut().flat_map(|c| c.lrs.iter_mut()) {
            let linked = lr::is_hw(*slot) && lr::pintid(*slot) == pintid;
            if linked && *slot & lr::STATE_MASK != 0 {
                *slot = 0;
                found = true;
            }
        }
        found
    }

    /// The vGIC model takes over LR `slot` of vCPU `v`'s saved copy, which it does not track
    /// yet: a posted interrupt, a passthrough SPI the fast path delivered, or the timer's LR
    /// once it is no longer hardware-linked. False if it could not and the saved LR was
    /// emptied instead, its interrupt made pending in the model if it still was (a
    /// passthrough SPI's with its physical interrupt held): no INTID is ever in two LRs.
    pub(super) fn adopt_lr(&mut self, v: usize, slot: usize) -> bool {
        use crate::vgic::lr;
        let Some(lr) = self.vcpus.get_mut(v).and_then(|c| c.lrs.get_mut(slot)) else {
            return true;
        };
        let value = *lr;
        let intid = lr::intid(value);
        // Free, or the timer's hardware-linked LR (never the model's): nothing to adopt.
        if value & lr::STATE_MASK == 0 || (lr::is_hw(value) && intid < 32) {
            return true;
        }
        if lr::is_hw(value) {
            if self.vgic.adopt_hw(v, value) {
                return true;
            }
            *lr = 0;
            if self.vgic.inject_hw(intid).is_none() {
                // No longer linked: nobody else would end the physical interrupt.
                crate::arch::gic::deactivate(lr::pintid(value));
            }
            return false;
        }
        if self.vgic.adopt(v, value) {
            return true;
        }
        *lr = 0;
        if value & lr::PENDING != 0 {
            self.vgic.inject(v, intid);
        }
        false
    }
}
