//! Re-pinning a vCPU at run time (`xl vcpu-pin`, `CapOp::DomainVcpuPin`): a shared vCPU
//! moves to another pCPU's run queue, or changes priority on its own; and its budget per
//! period (`CapOp::DomainVcpuBudget`, see [`crate::sched`]), which follows it when it moves.
//!
//! A vCPU's state may still be in its old CPU's hardware (it is "loaded" there until that
//! CPU needs to run something else). It must never be loaded on two CPUs, so a loaded vCPU
//! leaves its old queue at once but joins the new one only when the old CPU unloads it: the
//! old CPU is kicked, finds it gone from its queue and switches it out ([`Hyp::unload`]
//! then calls [`Hyp::enqueue_moved`]). A vCPU not loaded anywhere moves at once.
//!
//! An exclusive vCPU moves only to a pCPU no vCPU uses, and stays exclusive there: its new
//! run queue is reserved for it at once (so nothing is created there meanwhile), but it is
//! not runnable while it is moving ([`super::domain::Domain::vcpu_runnable`]), and its
//! posted-interrupt home is cleared until it arrives, so siblings deliver through the vGIC
//! model meanwhile.
//!
//! Not moved: shared vCPUs onto exclusive pCPUs (an exclusive placement is the RTOS's
//! guarantee), and vCPUs of a domain holding passthrough devices (their physical interrupts
//! are routed to its pCPU).

use super::{key_parts, vcpu_key, Hyp};
use crate::sched::{VcpuKey, QUEUE_CAPACITY};
use protocol::control::{CapError, VcpuPlacement};
use protocol::ids::DomainId;

impl Hyp {
    /// Moves vCPU `v` of `target` to `pcpu` with `priority`.
    pub(super) fn pin_vcpu(
        &mut self,
        target: DomainId,
        v: usize,
        pcpu: usize,
        priority: u8,
        this_cpu: usize,
    ) -> Result<(), CapError> {
        let cpus = self.platform.cpus.as_slice().len();
        if pcpu >= cpus || pcpu >= self.runqueues.len() {
            return Err(CapError::CpuUnavailable);
        }
        let holds_devices = self
            .devices
            .iter()
            .any(|dev| dev.holding.assigned == Some(target));
        let d = self.domain(target).ok_or(CapError::Stale)?;
        let vcpu = d.vcpus.get(v).ok_or(CapError::InvalidArgument)?;
        if d.dying || vcpu.migrating || holds_devices {
            return Err(CapError::WrongState);
        }
        let exclusive = vcpu.placement.exclusive;
        let old = usize::from(vcpu.placement.pcpu);
        let moves = old != pcpu;
        let key = vcpu_key(target, v);
        if exclusive && moves {
            // Reserve the new pCPU: it must be unused, and stays its own from now on.
            self.runqueues[pcpu]
                .add(key, priority, true)
                .map_err(|_| CapError::CpuUnavailable)?;
            let _ = self.runqueues[pcpu].set_runnable(key, false);
            super::percpu::set_home(target, v, 0);
        } else if !exclusive && self.runqueues[pcpu].is_exclusive() {
            return Err(CapError::CpuUnavailable);
        } else if moves && self.runqueues[pcpu].len() >= QUEUE_CAPACITY {
            return Err(CapError::NoSlots);
        }
        if moves {
            // No fast event-channel send posts to it until it has arrived (see
            // `enqueue_moved`), and none still under way holds its old CPU.
            super::percpu::set_cpu(target, v, None);
            super::xen::event_state::quiesce();
        }
        let _ = self.runqueues[old].remove(key);
        let loaded_on = self.loaded.iter().position(|l| *l == Some(key));
        self.note_placed(target, pcpu);
        let d = self.domain_mut(target).ok_or(CapError::Stale)?;
        d.vcpus[v].placement = VcpuPlacement {
            pcpu: pcpu as u16,
            priority,
            exclusive,
        };
        let how = if exclusive { "exclusive" } else { "priority" };
        crate::info!(
            "{} ({}) vCPU {v}: pinned to pCPU {pcpu}, {how} {priority}",
            target,
            d.name
        );
        match loaded_on {
            Some(cpu) if cpu != pcpu => {
                d.vcpus[v].migrating = true;
                self.kick_cpu(cpu, this_cpu);
            }
            _ => self.enqueue_moved(key, this_cpu),
        }
        self.kick_cpu(old, this_cpu);
        Ok(())
    }

    /// Puts a vCPU that left its old CPU (or changed priority) on the run queue of its
    /// placement, runnable or not as it is.
    pub(super) fn enqueue_moved(&mut self, key: VcpuKey, this_cpu: usize) {
        let (id, v) = key_parts(key);
        let Some(d) = self.domain_mut(id) else { return };
        d.vcpus[v].migrating = false;
        if d.dying {
            return;
        }
        let p = d.vcpus[v].placement;
        let runnable = d.vcpu_runnable(v);
        let budget = budget_ticks(d.vcpus[v].budget_us);
        let cpu = usize::from(p.pcpu);
        // Room was checked when the move was asked for (an exclusive vCPU's new queue was
        // reserved then, so it is there already): this cannot fail unless a shared queue
        // filled meanwhile, which the log would show.
        let rq = &mut self.runqueues[cpu];
        let joined = if rq.contains(key) {
            Ok(())
        } else {
            rq.add(key, p.priority, p.exclusive)
        };
        match joined {
            Ok(()) => {
                let _ = rq.set_runnable(key, runnable);
                if !p.exclusive {
                    // Its windows restart on the new pCPU (its old one kept the old clock).
                    let now = crate::arch::counter_now();
                    let _ = rq.set_budget(key, budget, now);
                }
            }
            Err(e) => crate::info!("{id} vCPU {v}: cannot join pCPU {cpu}: {e:?}"),
        }
        super::percpu::set_home(id, v, crate::fastpath::home_entry(p.exclusive, cpu));
        super::percpu::set_cpu(id, v, Some(cpu));
        // Blocked in `SCHEDOP_poll`: a fast send that made one of its ports pending before
        // the move (before `pin_vcpu`'s `quiesce`) asked its old CPU to look (`POLL`), which
        // looks only at the vCPUs placed there now. Sends from now on ask this CPU; the
        // ports are looked at here for the ones before.
        let polled = self.domain(id).and_then(|d| d.vcpus.get(v)?.poll.as_ref());
        if polled.is_some_and(|poll| Self::poll_ready(id, poll)) {
            self.wake_mask(id, 1u32.checked_shl(v as u32).unwrap_or(0), this_cpu);
        }
        // Whatever was posted to it before it left went to its old CPU, which no longer
        // drains its word: into the model now.
        self.drain_posted(key, this_cpu);
        self.kick_cpu(cpu, this_cpu);
    }

    /// Gives vCPU `v` of `target` a budget of `budget_us.0` µs per `budget_us.1` µs (`0`/`0`:
    /// none), effective at once: its CPU is kicked to decide again.
    pub(super) fn set_vcpu_budget(
        &mut self,
        target: DomainId,
        v: usize,
        budget_us: (u32, u32),
        this_cpu: usize,
    ) -> Result<(), CapError> {
        if !protocol::control::budget_valid(budget_us.0, budget_us.1) {
            return Err(CapError::InvalidArgument);
        }
        let d = self.domain(target).ok_or(CapError::Stale)?;
        let vcpu = d.vcpus.get(v).ok_or(CapError::InvalidArgument)?;
        if d.dying || vcpu.placement.exclusive {
            return Err(CapError::WrongState);
        }
        let key = vcpu_key(target, v);
        let cpu = usize::from(vcpu.placement.pcpu);
        let migrating = vcpu.migrating;
        let name = d.name.clone();
        // A vCPU on its way to another queue gets it when it joins (`enqueue_moved`).
        if !migrating {
            let now = crate::arch::counter_now();
            self.runqueues[cpu]
                .set_budget(key, budget_ticks(budget_us), now)
                .map_err(|_| CapError::WrongState)?;
        }
        let d = self.domain_mut(target).ok_or(CapError::Stale)?;
        d.vcpus[v].budget_us = budget_us;
        match budget_us {
            (0, 0) => crate::info!("{target} ({name}) vCPU {v}: no budget"),
            (b, p) => crate::info!("{target} ({name}) vCPU {v}: budget {b} us per {p} us"),
        }
        // Its CPU decides again (the timer it needs changed even if its choice did not).
        self.kick_cpu(cpu, this_cpu);
        Ok(())
    }
}

/// A budget in microseconds as counter ticks for [`crate::sched::RunQueue::set_budget`]
/// (`None` for `0`/`0`).
pub(super) fn budget_ticks((budget_us, period_us): (u32, u32)) -> Option<(u64, u64)> {
    if period_us == 0 {
        return None;
    }
    let hz = crate::arch::counter_hz();
    let ticks = |us: u32| (u64::from(us) * hz / 1_000_000).max(1);
    Some((ticks(budget_us), ticks(period_us)))
}
