//! The locked half of the per-CPU run loop (the loop itself and its fast path are in
//! [`super::fastpath`]): pick a vCPU, load it, flush its list registers, handle the exits
//! the fast path could not. A vCPU's state stays in the hardware (is "loaded") until
//! another vCPU needs this CPU, so a pinned vCPU is never saved or restored.

use super::percpu::MAILBOX;
use super::vtimer::CNTV_IMASK;
use super::{key_parts, vcpu_key, Hyp};
use crate::arch::context::GuestRegs;
use crate::arch::gic::{self, read_lrs, write_lrs, HYP_TIMER_PPI, KICK_SGI, SPURIOUS, VTIMER_PPI};
use crate::arch::sysreg::{read_cntv_ctl_el0, write_cntv_ctl_el0};
use crate::arch::vectors::ExitKind;
use crate::arch::{self, cpu::hcr};
use crate::mailbox::{POLL, POSTED, RESCHED};
use crate::sched::VcpuKey;
use crate::vgic::lr;
use protocol::control::StopReason;

/// Whether a vCPU's WFI traps (`HCR_EL2.TWI`). A shared CPU must get control back when its
/// guest idles. A pinned-exclusive vCPU's WFI is left to the hardware unless its domain
/// boots a Linux image (an `Image` with Linux's header: Linux, and other Xen-ABI guests
/// such as Zephyr's xenvm): those cannot report their idle time as our runtime's domains
/// do (`CapOp::IdleReport`), so their WFI traps and the fast path waits at EL2 with the
/// vCPU still loaded until an interrupt is pending (`SyncAction::WfiWait`), leaving that
/// time out of its CPU time. Decided by the image kind, known when the domain is built,
/// rather than by whether it has reported idle yet: an RTOS's first second of WFIs would
/// otherwise trap too.
const fn traps_wfi(exclusive: bool, linux: bool) -> bool {
    !exclusive || linux
}

impl Hyp {
    /// Chooses what this CPU runs next and loads it; `None` means idle.
    pub(super) fn schedule(&mut self, cpu: usize, regs: &mut GuestRegs) -> Option<VcpuKey> {
        let requests = MAILBOX[cpu].take();
        if requests & RESCHED != 0 {
            self.resched[cpu] = true;
        }
        let current = self.loaded[cpu];
        // After the mailbox (see `crate::posted`): interrupts posted to the loaded vCPU since
        // the hand-over go into the model now, so none waits for another exit. Only a
        // pinned-exclusive vCPU is ever posted to, and only its CPU's queue is exclusive.
        if let Some(k) = current.filter(|_| self.runqueues[cpu].is_exclusive()) {
            self.drain_posted(k, cpu);
        }
        if requests & POSTED != 0 {
            // A sibling's fast path may post to a vCPU pinned here that is not loaded (it
            // blocked in CPU_SUSPEND and was switched out), and another domain's fast
            // event-channel send to any vCPU placed here: the model wakes it.
            self.drain_homed(cpu);
        }
        if requests & POLL != 0 {
            // A fast send made a port pending in a domain with a poller placed here.
            self.wake_ready_pollers(cpu);
        }
        let repick = self.resched[cpu];
        let keep = current.filter(|&k| {
            let (id, v) = key_parts(k);
            !self.resched[cpu] && self.domain(id).is_some_and(|d| d.vcpu_runnable(v))
        });
        let next = match keep {
            Some(k) => Some(k),
            None => {
                self.resched[cpu] = false;
                let rq = &mut self.runqueues[cpu];
                let now = if rq.needs_clock() {
                    arch::counter_now()
                } else {
                    0
                };
                rq.pick(now)
            }
        };
        let next = next.filter(|&k| {
            let (id, v) = key_parts(k);
            self.domain(id).is_some_and(|d| d.vcpu_runnable(v))
        });
        if next != current {
            if let Some(old) = current {
                self.unload(cpu, old, regs);
            }
            if let Some(new) = next {
                self.load(cpu, new, regs);
            }
        }
        // Deadlines and slices only move when the choice or the queue changed.
        if repick || next != current {
            self.arm_hyp_timer(cpu, next);
        }
        let key = next?;
        self.deliver_fault(key, regs);
        self.flush_lrs(key);
        Some(key)
    }

    /// Drains the posted-interrupt words of every vCPU placed on `cpu` (its run queue,
    /// runnable or not). Slot by slot rather than through a copied list of keys: this runs
    /// on every wake a sibling posts, and most words are empty (only a non-empty one is
    /// taken and reaches the model).
    fn drain_homed(&mut self, cpu: usize) {
        let slots = self
            .runqueues
            .get(cpu)
            .map_or(0, crate::sched::RunQueue::slots);
        for slot in 0..slots {
            let key = self.runqueues.get(cpu).and_then(|rq| rq.key_in(slot));
            let posted = key.and_then(super::percpu::posted_irqs);
            if let (Some(key), Some(false)) = (key, posted.map(|w| w.is_empty())) {
                self.drain_posted(key, cpu);
            }
        }
    }

    /// Saves the loaded vCPU's hardware state into its slot (or drops it if its domain is
    /// going away).
    fn unload(&mut self, cpu: usize, key: VcpuKey, regs: &GuestRegs) {
        let (id, v) = key_parts(key);
        // While its context is still in the hardware (the area is a guest VA).
        self.runstate_leave(id, v);
        self.loaded[cpu] = None;
        let n = self.nr_lrs;
        let Some(d) = self.domain_mut(id) else { return };
        let vcpu = &mut d.vcpus[v];
        vcpu.regs.copy_from(regs);
        vcpu.el1.save();
        vcpu.vgic_hw.save();
        vcpu.fp.save();
        arch::monitors::save(d.spec.pmu, &mut vcpu.pmu);
        let vcpu = &mut d.vcpus[v];
        let lrs = &mut vcpu.lrs[..n];
        read_lrs(lrs);
        // Each LR is cleared for the next vCPU here (an empty one is already clear).
        gic::clear_lrs(lrs);
        // The virtual timer's hardware-linked LR still in flight: deactivate the physical
        // interrupt now (the next vCPU here needs it) and keep only the virtual one. A
        // passthrough SPI's stays linked until the guest ends it (`stays_linked_switched_out`):
        // deactivated here, a level-triggered line still asserted fired again at once, and a
        // driver domain switched out before it took its interrupt could be kept from
        // running by that storm for seconds.
        let mut unlinked = 0u16;
        let mut timer_unlinked = false;
        for (i, slot) in lrs.iter_mut().enumerate() {
            if *slot & lr::HW != 0 && !lr::stays_linked_switched_out(*slot) {
                let in_flight = *slot & lr::STATE_MASK != 0;
                if in_flight {
                    gic::deactivate(lr::pintid(*slot));
                    unlinked |= 1 << i;
                }
                if in_flight && lr::intid(*slot) == VTIMER_PPI {
                    // Now a software LR whose completion is reported (see below).
                    *slot = lr::unlinked_notified(*slot);
                    timer_unlinked = true;
                } else {
                    *slot = lr::unlinked(*slot);
                }
            }
        }
        if timer_unlinked {
            // Its timer still fires until the guest re-arms it; with the physical interrupt
            // deactivated that would deliver it again. Masked as the locked path masks a
            // timer it injects, and unmasked when the guest finishes this one.
            vcpu.el1.cntv_ctl |= CNTV_IMASK;
            vcpu.vtimer_masked = true;
        }
        // Switched out here: the EL2 timer stands in for its timer from now on.
        let joined = (usize::from(vcpu.placement.pcpu) == cpu)
            .then(|| super::vtimer::wake_time(vcpu, &d.vgic, v))
            .flatten();
        // The fast path's timer LR was never the model's; now that it is an ordinary LR the
        // model takes it over, so a timer that expires again while the vCPU is switched out
        // is not placed in a second LR beside it. (Bit by bit: usually there is none.)
        let mut rest = unlinked;
        while rest != 0 {
            let i = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            d.adopt_lr(v, i);
        }
        let migrating = d.vcpus[v].migrating;
        // Read here rather than looked up again: nothing below makes a domain die.
        let dying = d.dying;
        self.timer_earliest[cpu].joined(joined);
        if migrating {
            // Re-pinned while it ran here: now that its state is saved it may run there.
            self.enqueue_moved(key, cpu);
        }
        if dying {
            self.free_if_unloaded(id, cpu);
        }
    }

    /// Puts a vCPU's state into this CPU's hardware.
    fn load(&mut self, cpu: usize, key: VcpuKey, regs: &mut GuestRegs) {
        let (id, v) = key_parts(key);
        let n = self.nr_lrs;
        let d = self.domain_mut(id).expect("a picked vCPU's domain exists");
        let vttbr = d
            .stage2
            .as_ref()
            .and_then(|s| s.vttbr(d.vmid))
            .expect("a picked vCPU's domain has its stage 2");
        // Before its VTTBR is loaded here: this CPU may cache its translations from now on.
        d.tlb_reach.loaded_on(cpu);
        let vcpu = &d.vcpus[v];
        // No longer switched out (if it was counted here). It may have been counted early
        // (waiting when switched out: `vtimer::wake_time`), so the earlier of the two.
        let left = super::vtimer::saved_deadline(vcpu)
            .map(|t| crate::timer_earliest::wake_at(t, true, super::vtimer::lead_ticks()));
        regs.copy_from(&vcpu.regs);
        vcpu.el1.restore();
        vcpu.vgic_hw.restore();
        vcpu.fp.restore();
        arch::monitors::load(d.spec.pmu, &vcpu.pmu);
        write_lrs(&vcpu.lrs[..n]);
        let mut hcr_value = hcr::GUEST_BASE;
        if traps_wfi(vcpu.placement.exclusive, d.entry.linux) {
            hcr_value |= hcr::TWI;
        }
        self.guest_loaded[cpu] = Some(arch::load_guest_config(hcr_value, vttbr));
        self.timer_earliest[cpu].left(left);
        self.loaded[cpu] = Some(key);
        self.runstate_enter(id, v, protocol::xen::structs::runstate::RUNNING);
        // Posted while it was not loaded here: into the model before the LRs are flushed.
        if self.runqueues[cpu].is_exclusive() {
            self.drain_posted(key, cpu);
        }
    }

    /// Moves deliverable virtual interrupts into the list registers.
    fn flush_lrs(&mut self, key: VcpuKey) {
        let (id, v) = key_parts(key);
        let n = self.nr_lrs;
        let Some(d) = self.domain_mut(id) else { return };
        if !d.vgic.needs_flush(v) {
            return;
        }
        let Some(vcpu) = d.vcpus.get_mut(v) else {
            return;
        };
        let lrs = &mut vcpu.lrs[..n];
        let changed = d.vgic.flush_lrs(v, lrs);
        // Only the LRs the flush changed (usually one, the interrupt it placed).
        for slot in (0..n).filter(|&i| changed & (1 << i) != 0) {
            gic::write_lr(slot, lrs[slot]);
        }
        // Hardware links the model dropped (the guest ended the interrupt by register).
        if d.vgic.has_unlinked() {
            for pintid in d.vgic.take_unlinked().iter() {
                gic::deactivate(pintid);
            }
        }
        // More deliverable interrupts than LRs: ask for a maintenance interrupt when the
        // LRs drain so the rest get their turn.
        arch::gic::set_underflow_irq(d.vgic.needs_refill(v));
    }

    /// Handles a guest exit the fast path passed on (`first_irq`: an interrupt it already
    /// acknowledged; `serror`: an SError its error barrier found). The exit itself was
    /// counted there.
    pub(super) fn after_exit(
        &mut self,
        cpu: usize,
        key: VcpuKey,
        kind: ExitKind,
        regs: &mut GuestRegs,
        first_irq: Option<u32>,
        serror: Option<u64>,
    ) {
        let (id, v) = key_parts(key);
        if let Some(esr) = serror {
            // The exiting vCPU's accesses raised it: its domain stops, as for an SError
            // exit. The trapped instruction is not completed; pending interrupts still are.
            self.stop_domain(id, StopReason::UnhandledTrap { esr, pc: regs.pc }, cpu);
            if matches!(kind, ExitKind::Irq | ExitKind::Fiq) {
                self.handle_physical_irqs(cpu, first_irq);
            }
            return;
        }
        let n = self.nr_lrs;
        if let Some(d) = self.domain_mut(id) {
            let vcpu = &mut d.vcpus[v];
            // Checked against the shadow register by register, as the fast path does,
            // before anything is copied: most locked exits find nothing changed.
            if gic::lrs_match(&vcpu.lrs[..n]) {
                // The guest took or finished no interrupt: nothing to sync.
                return self.dispatch_exit(cpu, key, kind, regs, first_irq);
            }
            let mut lrs = vcpu.lrs;
            read_lrs(&mut lrs[..n]);
            let done = d.vgic.sync_lrs(v, &lrs[..n]);
            // Free slots the guest finished with (this also clears their EOI-maintenance
            // bits, which would otherwise keep the maintenance interrupt asserted).
            for lr in lrs[..n].iter_mut() {
                if *lr >> 62 == 0 {
                    *lr = 0;
                }
            }
            d.vcpus[v].lrs = lrs;
            write_lrs(&lrs[..n]);
            if done.contains(VTIMER_PPI) && d.vcpus[v].vtimer_masked {
                d.vcpus[v].vtimer_masked = false;
                write_cntv_ctl_el0(read_cntv_ctl_el0() & !CNTV_IMASK);
            }
            // Passthrough SPIs are hardware-linked: the guest's deactivation ended them.
            if done.contains(protocol::layout::EVTCHN_PPI) {
                self.evtchn_eoi(id, v, cpu);
            }
        }
        self.dispatch_exit(cpu, key, kind, regs, first_irq);
    }

    fn dispatch_exit(
        &mut self,
        cpu: usize,
        key: VcpuKey,
        kind: ExitKind,
        regs: &mut GuestRegs,
        first_irq: Option<u32>,
    ) {
        let (id, _) = key_parts(key);
        match kind {
            ExitKind::Irq | ExitKind::Fiq => self.handle_physical_irqs(cpu, first_irq),
            ExitKind::Sync => self.handle_sync(cpu, key, regs),
            ExitKind::SError => {
                let esr = crate::arch::sysreg::read_esr_el2();
                self.stop_domain(id, StopReason::UnhandledTrap { esr, pc: regs.pc }, cpu);
            }
        }
    }

    /// Handles `first` (already acknowledged), then acknowledges and handles every pending
    /// physical interrupt on this CPU.
    pub fn handle_physical_irqs(&mut self, cpu: usize, mut first: Option<u32>) {
        loop {
            let intid = first.take().unwrap_or_else(gic::ack);
            if intid == SPURIOUS {
                break;
            }
            match intid {
                VTIMER_PPI => {
                    if self.vtimer_fired(cpu) {
                        // Handed over with a hardware-linked LR: the guest's EOI deactivates.
                        gic::drop_priority(intid);
                        continue;
                    }
                }
                HYP_TIMER_PPI => {
                    arch::set_hyp_timer(None);
                    self.resched[cpu] = true;
                    self.deliver_expired_timers(cpu);
                    if self.poll_timed != 0 {
                        self.end_expired_polls(cpu);
                    }
                }
                KICK_SGI => self.resched[cpu] = true,
                other if other == gic::maintenance_irq() => {}
                other if Some(other) == self.platform.uart_irq => self.console_input(cpu),
                // Forwarded: ended there (left active for a hardware-linked LR).
                other if self.forward_spi(other, cpu) => continue,
                other => crate::info!("unexpected physical interrupt {other} on CPU {cpu}"),
            }
            gic::eoi(intid);
        }
    }

    /// Makes `intid` pending for vCPU `v` of domain `id` and wakes whoever can now take an
    /// interrupt: posted to the vCPU if that is possible ([`Self::post_irq`]), else through
    /// the vGIC model.
    pub fn inject(&mut self, id: protocol::ids::DomainId, v: usize, intid: u32, this_cpu: usize) {
        if !self.post_irq(id, v, intid, this_cpu) {
            self.inject_model(id, v, intid, this_cpu);
        }
    }

    /// Posts private interrupt `intid` to vCPU `v` of domain `id` if that vCPU is pinned
    /// exclusive, runnable and loaded on another CPU: that CPU's fast path delivers it
    /// without the lock (see [`crate::posted`]). Returns whether it did. A vCPU in this
    /// state stays in it until its CPU takes the lock, and the hand-over there takes the
    /// word, so nothing posted here can be left behind.
    pub fn post_irq(
        &mut self,
        id: protocol::ids::DomainId,
        v: usize,
        intid: u32,
        this_cpu: usize,
    ) -> bool {
        let key = vcpu_key(id, v);
        let Some(d) = self.domain(id) else {
            return false;
        };
        let Some(vcpu) = d.vcpus.get(v) else {
            return false;
        };
        let cpu = usize::from(vcpu.placement.pcpu);
        let postable = intid < 32
            && vcpu.placement.exclusive
            && cpu != this_cpu
            && self.loaded.get(cpu) == Some(&Some(key))
            && d.vcpu_runnable(v);
        let Some(word) = postable.then(|| super::percpu::posted_irqs(key)).flatten() else {
            return false;
        };
        word.post(1 << intid);
        self.post_to_cpu(cpu, crate::mailbox::POSTED);
        true
    }

    /// [`Self::inject`] through the vGIC model.
    pub fn inject_model(
        &mut self,
        id: protocol::ids::DomainId,
        v: usize,
        intid: u32,
        this_cpu: usize,
    ) {
        let Some(d) = self.domain_mut(id) else { return };
        let mask = d.vgic.inject(v, intid);
        if let Some(vcpu) = d.vcpus.get_mut(v) {
            vcpu.stats.irqs += 1;
        }
        self.wake_mask(id, mask, this_cpu);
    }

    /// Unblocks and kicks the vCPUs in `mask` (bit n = vCPU n).
    pub fn wake_mask(&mut self, id: protocol::ids::DomainId, mask: u32, this_cpu: usize) {
        // Bit by bit, without a list: this runs on every interrupt injected under the lock
        // (a heap allocation here was a tenth of a shared vCPU's timer latency).
        let mut rest = mask;
        while rest != 0 {
            let v = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let Some(d) = self.domain_mut(id) else { return };
            let Some(vcpu) = d.vcpus.get_mut(v) else {
                break;
            };
            vcpu.blocked = false;
            if vcpu.poll.is_some() {
                // Whatever woke it ended its `SCHEDOP_poll` (see `xen::poll`). Tested
                // before it is cleared: this is every injection's path.
                vcpu.poll = None;
                Self::poll_withdraw(id, v);
            }
            let cpu = usize::from(vcpu.placement.pcpu);
            let runnable = d.vcpu_runnable(v);
            let key = vcpu_key(id, v);
            let Some(rq) = self.runqueues.get_mut(cpu) else {
                continue;
            };
            let _ = rq.set_runnable(key, runnable);
            // The vCPU this CPU is running needs no new decision: its LRs are flushed before
            // it re-enters. Anyone else gets a scheduling pass (and an IPI if remote).
            if !(cpu == this_cpu && self.loaded[cpu] == Some(key)) {
                self.kick_cpu(cpu, this_cpu);
            }
        }
    }
}
