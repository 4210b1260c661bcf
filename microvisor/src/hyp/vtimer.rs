//! The virtual timers of a pCPU's vCPUs, seen from the locked pass: the loaded vCPU's timer
//! firing, the EL2 timer standing in for the timers of the vCPUs switched out (DESIGN §5:
//! a descheduled vCPU's timer is armed on the EL2 timer), and delivering those when due.
//!
//! **Switching ahead of a timer.** A vCPU switched out because it waits (a trapped WFI) for
//! its own timer is switched back in [`TIMER_LEAD_US`] before that timer is due rather than
//! when it is due: the switch (saving one vCPU, loading the other, about 1,900
//! instructions) then happens before the deadline instead of after it, and the vCPU, back
//! in its WFI, waits out the rest at EL2 with its timer loaded, so the interrupt reaches it
//! as a loaded vCPU's does. It returns from the WFI it was in once without an interrupt,
//! which the architecture allows (a WFI may complete for no reason; guests wait in a
//! loop). The vCPU it displaces loses at most the lead, once per such timer. Wakes nobody
//! can foresee (an event channel, an IPI) still pay the switch after the fact.

use super::domain::Power;
use super::{domain_slots, key_parts, vcpu_key, Hyp};
use crate::arch::gic::{self, VTIMER_PPI};
use crate::arch::sysreg::{read_cntv_ctl_el0, write_cntv_ctl_el0};
use crate::arch::{self};
use crate::sched::{VcpuKey, TIME_SLICE_US};
use crate::timer_earliest::{armed, switched_out, wake_at, SwitchedOut};
use crate::vgic::lr;
use core::sync::atomic::{AtomicU64, Ordering};

pub(super) use crate::timer_earliest::CNTV_IMASK;

/// The deadline of a vCPU's saved virtual timer if it is armed (enabled, not masked) and
/// the vCPU is powered on: what the EL2 timer stands in for while it is switched out.
pub(super) fn saved_deadline(vcpu: &super::domain::Vcpu) -> Option<u64> {
    (armed(vcpu.el1.cntv_ctl) && vcpu.power == Power::On).then_some(vcpu.el1.cntv_cval)
}

/// How long before a waiting vCPU's timer is due its pCPU switches it back in (see the
/// module docs): a little more than a switch and the guest's return to its WFI cost
/// (about 2 µs under `-icount`, where an instruction is a nanosecond), so the switch is
/// over before the deadline.
pub const TIMER_LEAD_US: u64 = 5;

/// The time at which the EL2 timer must stand in for a switched-out vCPU's timer: its
/// deadline ([`saved_deadline`]), [`TIMER_LEAD_US`] earlier while it waits for it, which it
/// does only if its vGIC has the timer's interrupt enabled ([`waits_for_timer`]): a vCPU that
/// waits with it disabled is not woken by its timer, so switching it in ahead would only
/// see it block again.
pub(super) fn wake_time(
    vcpu: &super::domain::Vcpu,
    vgic: &crate::vgic::VgicDomain,
    v: usize,
) -> Option<u64> {
    let deadline = saved_deadline(vcpu)?;
    Some(wake_at(
        deadline,
        waits_for_timer(vcpu, vgic, v),
        lead_ticks(),
    ))
}

/// Whether switched-out vCPU `v` waits for its timer: blocked, and its vGIC has the
/// timer's interrupt enabled (see [`wake_time`]). The vGIC is asked only for a blocked one.
fn waits_for_timer(vcpu: &super::domain::Vcpu, vgic: &crate::vgic::VgicDomain, v: usize) -> bool {
    vcpu.blocked && vgic.enabled_priority(v, VTIMER_PPI).is_some()
}

/// [`TIMER_LEAD_US`] in ticks, divided each call: caching it moved the round trips' codegen.
pub(super) fn lead_ticks() -> u64 {
    (arch::counter_hz() * TIMER_LEAD_US / 1_000_000).max(1)
}

/// [`TIME_SLICE_US`] in counter ticks, worked out on first use (0: not yet). The counter's
/// frequency is fixed at boot; the division it takes is not worth repeating on every
/// switch of a shared CPU.
static SLICE_TICKS: AtomicU64 = AtomicU64::new(0);

/// [`TIME_SLICE_US`] in counter ticks.
fn slice_ticks() -> u64 {
    let known = SLICE_TICKS.load(Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    let ticks = arch::counter_hz() * TIME_SLICE_US / 1_000_000;
    SLICE_TICKS.store(ticks, Ordering::Relaxed);
    ticks
}

impl Hyp {
    /// Arms the EL2 timer for the earliest of: the end of this vCPU's time slice (if
    /// others share its rank), the moment a budget changes what runs here (this vCPU's
    /// running out, an exhausted one's refill: see [`crate::sched`]), the
    /// [`wake_time`] of any vCPU queued here but not loaded, and the timeout of any
    /// `SCHEDOP_poll` a vCPU placed here is blocked in.
    pub(super) fn arm_hyp_timer(&mut self, cpu: usize, running: Option<VcpuKey>) {
        let now = arch::counter_now();
        let mut deadline = self.runqueues[cpu].next_event(running, now);
        if running.is_some_and(|key| self.runqueues[cpu].contended(key)) {
            let slice = now + slice_ticks();
            deadline = Some(deadline.map_or(slice, |d: u64| d.min(slice)));
        }
        // Found by this pass's expired-timer scan and kept exact since, or scanned for.
        let saved = match self.timer_earliest[cpu].get() {
            Some(known) => known,
            None => self.earliest_wake_time(cpu),
        };
        if let Some(t) = saved {
            deadline = Some(deadline.map_or(t, |d: u64| d.min(t)));
        }
        if self.poll_timed != 0 {
            // A vCPU blocked in a poll with a timeout, loaded here or not (`xen::poll`).
            deadline = crate::poll_wait::earlier(deadline, self.earliest_poll_deadline(cpu));
        }
        arch::set_hyp_timer(deadline);
    }

    /// The earliest [`wake_time`] of the powered-on vCPUs placed on `cpu` and not loaded
    /// there (a full scan).
    fn earliest_wake_time(&self, cpu: usize) -> Option<u64> {
        let mut earliest: Option<u64> = None;
        for slot in domain_slots(self.placed_on(cpu)) {
            let Some(d) = self.domains.get(slot).and_then(|d| d.as_deref()) else {
                continue;
            };
            for (v, vcpu) in d.vcpus.iter().enumerate() {
                let here = usize::from(vcpu.placement.pcpu) == cpu;
                if here && self.loaded[cpu] != Some(vcpu_key(d.id, v)) {
                    if let Some(t) = wake_time(vcpu, &d.vgic, v) {
                        earliest = Some(earliest.map_or(t, |e| e.min(t)));
                    }
                }
            }
        }
        earliest
    }

    /// The loaded vCPU's virtual timer expired. It goes into a free hardware-linked list
    /// register (returns true: the caller only drops priority and the guest's EOI
    /// deactivates the physical interrupt, so no second exit). Without one (the PPI
    /// disabled, the timer already in an LR, no LR free) the timer is masked until the
    /// guest finishes with the virtual interrupt.
    pub(super) fn vtimer_fired(&mut self, cpu: usize) -> bool {
        let Some(key) = self.loaded[cpu] else {
            write_cntv_ctl_el0(read_cntv_ctl_el0() | CNTV_IMASK);
            return false;
        };
        let (id, v) = key_parts(key);
        let n = self.nr_lrs;
        if let Some(d) = self.domain_mut(id) {
            let priority = d.vgic.enabled_priority(v, VTIMER_PPI);
            let group = lr::group_bit(d.vgic.version());
            let vcpu = &mut d.vcpus[v];
            // The fast path's rule, for an exit that came here anyway.
            if let Some((slot, lr)) = crate::fastpath::vtimer_lr(&vcpu.lrs[..n], priority, group) {
                vcpu.lrs[slot] = lr;
                vcpu.stats.irqs += 1;
                gic::write_lr(slot, lr);
                return true;
            }
            vcpu.vtimer_masked = true;
        }
        write_cntv_ctl_el0(read_cntv_ctl_el0() | CNTV_IMASK);
        self.inject(id, v, VTIMER_PPI, cpu);
        false
    }

    /// Puts the expired virtual timer of vCPU `v` of `id`, powered on and loaded on no CPU,
    /// straight into its saved list registers if the vGIC model says that is all an
    /// injection and the flush at its next entry would do
    /// ([`crate::vgic::VgicDomain::deliver_direct`]), and wakes it (`cpu` is this CPU);
    /// false (nothing done) if the caller must inject it. The usual case of a shared vCPU
    /// waiting for its tick: the flush at its entry is then skipped.
    fn timer_into_lr(&mut self, id: protocol::ids::DomainId, v: usize, cpu: usize) -> bool {
        let key = vcpu_key(id, v);
        // Its saved LRs are the authority only while no CPU holds it (one re-pinned here
        // may still run where it was).
        if self.loaded.contains(&Some(key)) {
            return false;
        }
        let n = self.nr_lrs;
        let Some(d) = self.domain_mut(id) else {
            return false;
        };
        let Some(vcpu) = d.vcpus.get_mut(v).filter(|c| c.power == Power::On) else {
            return false;
        };
        if d.vgic
            .deliver_direct(v, VTIMER_PPI, &mut vcpu.lrs[..n])
            .is_none()
        {
            return false;
        }
        vcpu.stats.irqs += 1;
        // Enabled and pending, so deliverable to it: as `inject_model` wakes it.
        self.wake_mask(id, 1 << v, cpu);
        true
    }

    /// Injects the virtual timer into every unloaded vCPU on this CPU whose deadline passed,
    /// and wakes (without an interrupt) every one waiting for a timer due within the lead
    /// (see the module docs), so this pass's decision can switch it in ahead of it.
    pub(super) fn deliver_expired_timers(&mut self, cpu: usize) {
        let now = arch::counter_now();
        let lead = lead_ticks();
        // In batches on the stack rather than a heap list (this is a shared vCPU's timer
        // path): a vCPU taken is masked (or, woken ahead, no longer waiting), so the next
        // scan skips it, and a scan that found less than a full batch found them all.
        loop {
            // (domain, vCPU, due now rather than woken ahead)
            let mut taken = [(protocol::ids::DomainId(0), 0usize, false); 8];
            let mut found = 0;
            // The earliest wake time not yet reached, for the re-arm (valid if the scan ends).
            let mut earliest: Option<u64> = None;
            'scan: for slot in domain_slots(self.placed_on(cpu)) {
                let Some(d) = self.domains.get_mut(slot).and_then(|d| d.as_deref_mut()) else {
                    continue;
                };
                for (v, vcpu) in d.vcpus.iter_mut().enumerate() {
                    let here = usize::from(vcpu.placement.pcpu) == cpu;
                    if !here || self.loaded[cpu] == Some(vcpu_key(d.id, v)) {
                        continue;
                    }
                    let on = armed(vcpu.el1.cntv_ctl);
                    let powered = vcpu.power == Power::On;
                    let cval = vcpu.el1.cntv_cval;
                    let waits = waits_for_timer(vcpu, &d.vgic, v);
                    let due = match switched_out(on, powered, waits, cval, now, lead) {
                        SwitchedOut::Due => true,
                        SwitchedOut::WakeAhead => false,
                        SwitchedOut::Later(t) => {
                            earliest = Some(earliest.map_or(t, |e| e.min(t)));
                            continue;
                        }
                        SwitchedOut::Idle => continue,
                    };
                    let Some(entry) = taken.get_mut(found) else {
                        break 'scan;
                    };
                    *entry = (d.id, v, due);
                    found += 1;
                    if due {
                        vcpu.el1.cntv_ctl |= CNTV_IMASK;
                        vcpu.vtimer_masked = true;
                    } else {
                        // Runnable from here on, so its timer counts at its deadline.
                        earliest = Some(earliest.map_or(cval, |e| e.min(cval)));
                    }
                }
            }
            for &(id, v, due) in &taken[..found] {
                if !due {
                    self.wake_mask(id, 1 << v, cpu);
                } else if !self.timer_into_lr(id, v, cpu) {
                    self.inject(id, v, VTIMER_PPI, cpu);
                }
            }
            if found < taken.len() {
                // A complete scan: every timer due was masked above (so no longer armed),
                // every vCPU woken ahead counted at its deadline, and `earliest` covers all
                // the others (injecting and waking them above changed no saved timer).
                self.timer_earliest[cpu].found(earliest);
                return;
            }
        }
    }
}
