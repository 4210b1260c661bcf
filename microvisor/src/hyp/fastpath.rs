//! The per-CPU run loop and its fast path. After each exit the CPU first tries to finish
//! it alone, touching only the guest's registers, its own list registers and [`Local`]:
//! the capability null call and `WhoAmI`, the calls about the caller itself
//! (`ConsoleWrite`, `ConsoleRead`, `Heartbeat`, `IdleReport`, under its domain's own slot
//! lock, [`super::fast_slots`]), `xen_version(XENVER_version)`, `EVTCHNOP_send`,
//! `EVTCHNOP_unmask` and `GNTTABOP_copy` (each under a lock of its own,
//! [`super::xen::event_state`], [`super::xen::grant_state`]), a WFI with an interrupt
//! already pending in an LR, the trapped WFI of a pinned-exclusive vCPU or of a
//! shared one with nothing else runnable on its pCPU ([`LoadedVcpu::alone`]; waited out at
//! EL2 with the vCPU loaded, the wait left out of its CPU time), a spurious interrupt, the
//! kick SGI, the virtual timer of the loaded vCPU and a passthrough SPI of its domain (each
//! straight into a free hardware-linked LR; the SPI only while the vGIC model has it idle,
//! and the model takes its LR over at the next locked pass). If nothing is in its mailbox
//! it re-enters the guest at once: no lock, no scheduler. If the mailbox holds only
//! [`POSTED`], it places the interrupts posted to its vCPU (pinned exclusive, or shared and
//! alone) into free LRs itself ([`crate::posted`]) and re-enters. Everything else takes
//! [`HYP`] once: the exit is handled, `schedule` runs, and the CPU goes back in.
//!
//! A vCPU's exits, interrupts and CPU time stay in [`Local`] until the next locked pass
//! folds them into its record; meanwhile the fast path publishes them for listings now and
//! then ([`crate::unfolded`]): at a wake from a WFI waited out here or at every 256th
//! interrupt exit, once 100 ms have passed since the last publication; or at each idle
//! report of a vCPU that reports its idle time.
//!
//! The fast path never runs while the LRs differ from their shadow (the guest finished or
//! took an interrupt the vGIC model must hear about first), so the slow path sees the same
//! state it always did; the model LRs it freed itself (`Local::retired`) are retired in the
//! model first thing under the lock.
//!
//! It is compiled once per GIC version ([`Hot`]); [`run_until_slow`] picks the host's copy,
//! so a GICv3 host's exits pay no version check.

use super::bulk::Bulk;
use super::percpu::{posted_irqs, LoadedVcpu, Local, MAILBOX, POSTED_IRQS, UNFOLDED, VCPU_HOME};
use super::{key_parts, Hyp, HYP};
use crate::arch::context::GuestRegs;
use crate::arch::context::MAX_LRS;
use crate::arch::gic::{self, Hot, KICK_SGI, SPURIOUS, VTIMER_PPI};
use crate::arch::sysreg::{read_esr_el2, read_far_el2, read_hpfar_el2};
use crate::arch::vectors::ExitKind;
use crate::arch::{self};
use crate::fastpath::{
    absorb_hw_lr_progress, absorb_lr_progress, classify_sync, deferred_serror, drop_held_upcall,
    sgi_homes, spi_lr, spi_lrs_freed, upcall_in_lr, vtimer_lr, SyncAction, XEN_VERSION,
};
use crate::lock_holds::Pass;
use crate::mailbox::{Mailbox, POSTED};
use crate::posted::place_posted;
use crate::sched::VcpuKey;
use crate::trap::Exit;
use crate::unfolded::{self, Counts};
use crate::vgic::FAST_SPIS;
use core::sync::atomic::Ordering;
use protocol::control::CapOp;
use protocol::layout::{GicVersion, EVTCHN_PPI};

/// How an exit ended on the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Finished; the guest may re-enter.
    Done,
    /// Needs the lock; `first_irq` is an interrupt the fast path already acknowledged,
    /// `serror` an SError syndrome the exit's error barrier found (the guest's).
    Slow {
        first_irq: Option<u32>,
        serror: Option<u64>,
    },
    /// A WFI the fast path waited out at EL2 is complete, and the interrupt `first_irq`
    /// (acknowledged) that ended the wait needs the lock: handled as an interrupt exit.
    SlowIrq { first_irq: u32 },
}

/// At an interrupt exit that is a multiple of this many exits since the last fold, a CPU
/// asks whether its publication is due (a counter read); a vCPU waiting out its WFIs at
/// EL2 asks at every wake as well. Rare enough that the ask stays out of `bench micro`'s
/// p99 (one exit in 256), often enough for a guest ticking at 250 Hz or more: a busy
/// vCPU's listing is about 256 interrupts' worth stale (a second at 250 Hz).
const PUBLISH_EXITS: u64 = 256;

/// An exit handed from the fast path to the next locked pass.
#[derive(Clone, Copy, Debug)]
struct SlowExit {
    key: VcpuKey,
    kind: ExitKind,
    first_irq: Option<u32>,
    serror: Option<u64>,
}

/// Takes the global lock with this CPU's private state handed over for the duration, and
/// notes how long it waited for it and held it for `pass` ([`crate::lock_holds`]).
fn locked<R>(local: &mut Local, pass: Pass, f: impl FnOnce(&mut Hyp) -> R) -> R {
    let asked = arch::counter_now();
    let mut guard = HYP.lock();
    let start = arch::counter_now();
    let hyp = guard
        .as_mut()
        .expect("HYP is built before any CPU runs guests");
    hyp.take_local(local);
    let result = f(hyp);
    hyp.give_local(local);
    let held = arch::counter_now().saturating_sub(start);
    let waited = start.saturating_sub(asked);
    if let Some(line) = hyp.holds.note(local.cpu, held, waited, pass) {
        crate::info!("{}", line);
    }
    result
}

/// What the locked pass after `exit` (if any) is for.
fn pass_of(exit: Option<&SlowExit>, regs: &GuestRegs) -> Pass {
    let Some(e) = exit else {
        return Pass::Schedule;
    };
    let (id, v) = key_parts(e.key);
    let vcpu = u8::try_from(v).unwrap_or(u8::MAX);
    match e.kind {
        // No exception has been taken at EL2 since the exit: ESR_EL2 (and, for a stage-2
        // data abort, FAR_EL2 and HPFAR_EL2) still describe it.
        ExitKind::Sync if e.serror.is_none() => {
            let esr = read_esr_el2();
            let data_abort = esr >> 26 == 0x24;
            Pass::Sync {
                domid: id.0,
                vcpu,
                esr: esr as u32,
                x0: regs.x[0],
                x16: regs.x[16],
                ipa: if data_abort {
                    crate::trap::abort_ipa(read_far_el2(), read_hpfar_el2())
                } else {
                    0
                },
            }
        }
        _ => Pass::Async {
            domid: id.0,
            vcpu,
            intid: e
                .first_irq
                .and_then(|i| u16::try_from(i).ok())
                .unwrap_or(crate::lock_holds::NO_INTID),
        },
    }
}

/// Runs guests on this CPU forever.
pub fn run_cpu(cpu: usize, regs: &mut GuestRegs) -> ! {
    let nr_lrs = HYP.lock().as_ref().map_or(0, |h| h.nr_lrs);
    let mut local = Local::new(cpu, nr_lrs);
    crate::log::defer_output();
    let mut exit: Option<SlowExit> = None;
    // Woken from idle: the interrupts that woke the CPU are handled in the same locked pass
    // as the scheduling decision they lead to (one lock round trip, not two).
    let mut woke = false;
    loop {
        let pass = if woke {
            Pass::Idle
        } else {
            pass_of(exit.as_ref(), regs)
        };
        // Taken out of the lock only when there is some: moving the (usually empty) queue
        // out and back through the closure's result cost two `memcpy` calls a pass.
        let mut work = Bulk::default();
        // Read before the pass folds the exit count (see `crate::idle_wake`).
        let idle = match (local.idle_wake.take(local.exits), &local.loaded) {
            (true, Some(lv)) if !lv.exclusive => Some(lv.key),
            _ => None,
        };
        let next = locked(&mut local, pass, |hyp| {
            if core::mem::take(&mut woke) {
                hyp.handle_physical_irqs(cpu, None);
            }
            if let Some(e) = exit.take() {
                hyp.after_exit(cpu, e.key, e.kind, regs, e.first_irq, e.serror);
            }
            if let Some(key) = idle {
                // A shared vCPU whose WFI was waited out here, then the lock was needed: it
                // is blocked as a trapped WFI is, unless something is deliverable to it now
                // (the wake was its own, or the exit just handled made one).
                hyp.wfi(cpu, key);
            }
            let next = hyp.schedule(cpu, regs);
            if let Some(queued) = hyp.bulk.get_mut(cpu).filter(|b| !b.is_empty()) {
                core::mem::swap(&mut work, queued);
            }
            next
        });
        if !work.is_empty() {
            // Building or freeing a domain left memory work: do it without the lock so the
            // other CPUs (a pinned RTOS) never wait for it, then decide again.
            work.execute();
            locked(&mut local, Pass::BulkFinish, |hyp| {
                hyp.finish_bulk(work, cpu)
            });
            continue;
        }
        let Some(key) = next else {
            // Idle: a safe point to write queued console lines out.
            crate::log::drain();
            arch::wait_for_interrupt();
            woke = true;
            continue;
        };
        // A shared CPU drains the console before going back in; a pinned-exclusive one
        // never does (its guest's latency must not depend on the UART).
        if !local.loaded.is_some_and(|l| l.exclusive) {
            crate::log::drain();
        }
        exit = run_until_slow(&mut local, key, regs);
    }
}

/// Runs the loaded vCPU `key`, finishing exits on the fast path, until one needs the lock
/// (returned) or the mailbox asks for a new decision (`None`).
fn run_until_slow(local: &mut Local, key: VcpuKey, regs: &mut GuestRegs) -> Option<SlowExit> {
    match gic::version() {
        GicVersion::V3 => stay::<gic::V3>(local, key, regs),
        GicVersion::V2 => stay::<gic::V2>(local, key, regs),
    }
}

/// [`run_until_slow`] for the host's GIC `G`.
fn stay<G: Hot>(local: &mut Local, key: VcpuKey, regs: &mut GuestRegs) -> Option<SlowExit> {
    let mailbox = &MAILBOX[local.cpu];
    // The fast path's own few instructions count as the guest's time: one pair of counter
    // reads per stay instead of per exit.
    local.stay_start = arch::counter_now();
    local.waited = 0;
    let result = loop {
        let exit = run_until_mail::<G>(local, key, regs, mailbox);
        // Mail that is only posted interrupts is served here, and the guest goes back in.
        if exit.is_some() || !deliver_posted::<G>(local, mailbox) || mailbox.pending() {
            break exit;
        }
    };
    // Less the time its CPU waited at EL2 for a WFI of its own (both since the stay began,
    // or since a publication counted the stay so far: `publish_counts`).
    let ran = arch::counter_now().saturating_sub(local.stay_start);
    local.run_ticks += ran.saturating_sub(local.waited);
    result
}

/// The inner loop of [`run_until_slow`]: runs the guest, finishing exits on the fast path,
/// until one needs the lock (returned) or the mailbox has something (`None`).
fn run_until_mail<G: Hot>(
    local: &mut Local,
    key: VcpuKey,
    regs: &mut GuestRegs,
    mailbox: &Mailbox,
) -> Option<SlowExit> {
    // Held for the stay (the last locked pass loaded `key` here and left the proof in
    // `local`), and put back for the next pass, which drops it if it unloads the vCPU.
    let Some(loaded) = local.guest.take() else {
        panic!("a vCPU runs without its guest configuration loaded");
    };
    loop {
        let kind = arch::vectors::run_guest(&loaded, regs);
        local.exits += 1;
        let exit = match handle::<G>(local, kind, regs) {
            Outcome::Done if !mailbox.pending() => continue,
            Outcome::Done => None,
            Outcome::Slow { first_irq, serror } => Some(SlowExit {
                key,
                kind,
                first_irq,
                serror,
            }),
            Outcome::SlowIrq { first_irq } => Some(SlowExit {
                key,
                kind: ExitKind::Irq,
                first_irq: Some(first_irq),
                serror: None,
            }),
        };
        local.guest = Some(loaded);
        return exit;
    }
}

/// Tries to finish one exit without the lock.
fn handle<G: Hot>(local: &mut Local, kind: ExitKind, regs: &mut GuestRegs) -> Outcome {
    const SLOW: Outcome = Outcome::Slow {
        first_irq: None,
        serror: None,
    };
    // First, before this CPU does anything else: an SError the guest's own accesses left
    // pending is found now and charged to it (DESIGN §5), not to the next vCPU here.
    if let Some(serror) = arch::take_deferred_serror().and_then(deferred_serror) {
        return Outcome::Slow {
            first_irq: None,
            serror: Some(serror),
        };
    }
    let n = local.nr_lrs;
    let Some(lv) = local.loaded.as_mut() else {
        return SLOW;
    };
    if !G::lrs_match(&lv.lrs[..n]) {
        match absorb_progress::<G>(lv, n, &mut local.posted, &mut local.retired) {
            None => return SLOW,
            Some(0) => {}
            Some(done) => {
                if done & (1 << VTIMER_PPI) != 0 {
                    timer_finished(lv);
                }
                let upcall = done & (1 << EVTCHN_PPI) != 0;
                if upcall
                    && !reraise_upcall::<G>(lv, n, &mut local.posted, &mut local.irqs, local.cpu)
                {
                    return SLOW;
                }
            }
        }
    }
    match kind {
        ExitKind::Sync => {
            match classify_sync(read_esr_el2(), regs.x[0], regs.x[16], &lv.lrs[..n]) {
                SyncAction::NullCall => regs.x[..4].fill(0),
                SyncAction::WhoAmI => {
                    let (id, v) = key_parts(lv.key);
                    regs.x[..4].copy_from_slice(&[0, u64::from(id.0), v as u64, 0]);
                }
                SyncAction::XenVersion => regs.x[0] = XEN_VERSION,
                SyncAction::SlotCall(op) => {
                    if !slot_call(lv.key, op, regs) {
                        return SLOW;
                    }
                    if op == CapOp::IdleReport {
                        idle_reported(local);
                    }
                }
                SyncAction::EvtchnSend => {
                    let (key, cpu) = (lv.key, local.cpu);
                    let serve = |ipa| super::xen::event_state::send_fast(key, cpu, ipa);
                    if !evtchn_fast::<G>(cpu, regs, serve) {
                        return SLOW;
                    }
                }
                SyncAction::EvtchnUnmask => {
                    let (key, cpu) = (lv.key, local.cpu);
                    let held = upcall_in_lr(&lv.lrs[..n]);
                    let serve = |ipa| super::xen::event_state::unmask_fast(key, ipa, held);
                    if !evtchn_fast::<G>(cpu, regs, serve) {
                        return SLOW;
                    }
                }
                SyncAction::GrantCopy => {
                    if !super::xen::grant_state::copy_fast(key_parts(lv.key).0, regs) {
                        return SLOW;
                    }
                }
                SyncAction::WfiReturn => regs.pc += 4,
                SyncAction::WfiWait => {
                    if !(lv.exclusive || lv.alone || own_timer_due_soon(lv)) {
                        return SLOW;
                    }
                    // An exclusive vCPU whose WFI traps (`run::traps_wfi`), or a shared one
                    // with nothing else runnable on its CPU: the CPU has nothing else to
                    // run, so it waits here with the vCPU loaded, and the wait is not the
                    // guest's time. What woke it is taken at once, as if it had arrived
                    // just after the guest's WFI completed. A shared CPU writes queued
                    // console lines out first, as it would before idling. A shared vCPU
                    // whose own timer is due within the lead waits here too, others
                    // runnable or not (see `super::vtimer`): the wait is shorter than
                    // switching it out and back.
                    if !lv.exclusive {
                        crate::log::drain();
                    }
                    let t = arch::counter_now();
                    arch::wait_for_interrupt();
                    let woke = arch::counter_now();
                    local.waited += woke.saturating_sub(t);
                    regs.pc += 4;
                    // If the lock is next, its pass blocks this vCPU unless the wake was
                    // for it (see `crate::idle_wake`).
                    local.idle_wake.note(local.exits);
                    return match take_irqs::<G>(lv, n, &mut local.irqs, &mut local.posted) {
                        Outcome::Slow {
                            first_irq: Some(first_irq),
                            ..
                        } => Outcome::SlowIrq { first_irq },
                        Outcome::Done
                            if unfolded::due(woke, local.stay_start, arch::counter_hz()) =>
                        {
                            publish_counts(local, woke);
                            Outcome::Done
                        }
                        other => other,
                    };
                }
                // Out of line, re-reading the syndrome: the hypercall round trip keeps its
                // registers.
                SyncAction::Slow if send_sgi::<G>(lv.key, lv.nr_vcpus, local.cpu, regs) => {}
                SyncAction::Slow if device_access(lv.key, regs) => {}
                SyncAction::Slow => return SLOW,
            }
            Outcome::Done
        }
        ExitKind::Irq | ExitKind::Fiq => {
            let outcome = take_irqs::<G>(lv, n, &mut local.irqs, &mut local.posted);
            // A vCPU whose exits all finish here (a busy exclusive one, taking only its
            // timer) would otherwise show no CPU time until its CPU next takes the lock.
            if outcome == Outcome::Done && local.exits.is_multiple_of(PUBLISH_EXITS) {
                publish_if_due(local);
            }
            outcome
        }
        ExitKind::SError => SLOW,
    }
}

/// Publishes the loaded vCPU's counts ([`publish_counts`]) if the last publication, or the
/// stay's start, is more than [`unfolded::PUBLISH_US`] ago. Out of line: asked every
/// [`PUBLISH_EXITS`] exits.
#[cold]
#[inline(never)]
fn publish_if_due(local: &mut Local) {
    // One that reports its idle time publishes with each report instead (see below).
    let loaded = local.loaded.as_ref().map(|l| l.key);
    if loaded.is_some() && local.reports_idle == loaded {
        return;
    }
    let now = arch::counter_now();
    if unfolded::due(now, local.stay_start, arch::counter_hz()) {
        publish_counts(local, now);
    }
}

/// The loaded vCPU reported its idle time (a running total, `CapOp::IdleReport`), served
/// here. Its listed CPU time is its run time less that total, so its counts are published
/// now, as of the same instant, and only at its reports from now on: a run time newer than
/// the idle total would count the idle since the last report (up to a second for our
/// runtime) as busy.
#[cold]
#[inline(never)]
fn idle_reported(local: &mut Local) {
    local.reports_idle = local.loaded.as_ref().map(|l| l.key);
    publish_counts(local, arch::counter_now());
}

/// Publishes the loaded vCPU's counts not yet folded into its record, as of `now`, for
/// listings to read without this CPU taking the lock ([`crate::unfolded`]). Out of line:
/// only a long stay publishes.
#[cold]
#[inline(never)]
fn publish_counts(local: &mut Local, now: u64) {
    let Some(key) = local.loaded.as_ref().map(|lv| lv.key) else {
        return;
    };
    // The stay so far is counted now, less its waits, and the stay goes on from here.
    let ran = now.saturating_sub(local.stay_start);
    local.run_ticks += ran.saturating_sub(local.waited);
    local.stay_start = now;
    local.waited = 0;
    let counts = Counts {
        exits: local.exits,
        irqs: local.irqs,
        run_ticks: local.run_ticks,
    };
    if let Some(u) = UNFOLDED.get(local.cpu) {
        u.publish(key.0, counts);
    }
    local.published = true;
}

/// Whether the loaded vCPU's own virtual timer is armed, enabled in its vGIC and due within
/// [`super::vtimer::TIMER_LEAD_US`]: then a trapped WFI is waited out at EL2 even on a
/// pCPU where others are runnable (it was switched in ahead of this timer, or its WFI
/// came just before it), because switching it out and back in would take longer. Out of
/// line: only a shared vCPU's WFI with others runnable asks.
#[inline(never)]
fn own_timer_due_soon(lv: &LoadedVcpu) -> bool {
    use crate::timer_earliest::{armed, due_within};
    lv.vtimer_priority.is_some()
        && armed(arch::sysreg::read_cntv_ctl_el0())
        && due_within(
            arch::sysreg::read_cntv_cval_el0(),
            arch::counter_now(),
            super::vtimer::lead_ticks(),
        )
}

/// The LRs differ from their shadow: usually the guest finishing the timer's or a
/// passthrough SPI's hardware-linked LR ([`absorb_hw_lr_progress`]), else perhaps an
/// upcall this CPU placed ([`absorb_lr_progress`]); the LRs it frees are zeroed in the
/// hardware. Returns the upcall completions the caller must follow up ([`reraise_upcall`]),
/// or `None` if the vGIC model must see the change under the lock. The upcall's rule is
/// asked second, only when the first finds something else. Out of line: inlined, the round
/// trips kept their registers no better, and the build moved `rtos_beside_linux`'s start-up
/// lateness into a miss (see the README, "Global-lock holds").
#[inline(never)]
fn absorb_progress<G: Hot>(
    lv: &mut LoadedVcpu,
    n: usize,
    posted: &mut u16,
    retired: &mut u16,
) -> Option<u32> {
    let mut hw = [0u64; MAX_LRS];
    if G::VERSION == GicVersion::V2 {
        // A GICv2 LR is read against what was last written to it (see `gic::read_lrs`).
        hw = lv.lrs;
    }
    G::read_lrs(&mut hw[..n]);
    let absorbed = match absorb_hw_lr_progress(&mut lv.lrs[..n], &hw[..n], posted, retired) {
        Some(freed) => Some((freed, 0)),
        None => {
            let own_eoi = (1 << EVTCHN_PPI) | (1 << VTIMER_PPI);
            absorb_lr_progress(&mut lv.lrs[..n], &hw[..n], posted, retired, own_eoi)
        }
    };
    let (freed, completed) = absorbed?;
    for slot in (0..n).filter(|&i| freed & (1 << i) != 0) {
        G::write_lr(slot, 0);
    }
    // Asked only with SPIs in the view: without the check the event channel's and the
    // IPI's paths (no device) paid a counter tick for the call.
    if lv.nr_spis != 0 {
        *retired |= spi_lrs_freed(&mut lv.spis[..lv.nr_spis.min(FAST_SPIS)], freed);
    }
    Some(completed)
}

/// The guest finished the virtual timer's list register that the vGIC model placed (a
/// switched-out vCPU's expired timer, delivered into its saved list registers with EOI
/// notification and the timer masked until then): does what the model's completion report
/// leads to under the lock, unmasking the timer if the microvisor masked it. Without this,
/// each such completion sent the vCPU's next exit to the locked path (a "no INTID"
/// interrupt pass after every timer a switched-out vCPU got).
#[inline(never)]
fn timer_finished(lv: &mut LoadedVcpu) {
    if core::mem::take(&mut lv.vtimer_masked) {
        let ctl = arch::sysreg::read_cntv_ctl_el0();
        arch::sysreg::write_cntv_ctl_el0(ctl & !crate::timer_earliest::CNTV_IMASK);
    }
}

/// The guest finished an event-channel upcall this CPU's fast path had placed (so the vGIC
/// model never saw it): does what the model's completion report leads to
/// (`Hyp::evtchn_eoi`): if events are still pending for the vCPU, the upcall goes into an
/// LR again. False if it cannot be placed here (a stale configuration, no LR): it is then
/// posted to the vCPU's word and this CPU's mailbox, for the locked pass to deliver.
#[inline(never)]
fn reraise_upcall<G: Hot>(
    lv: &mut LoadedVcpu,
    n: usize,
    posted: &mut u16,
    irqs: &mut u64,
    cpu: usize,
) -> bool {
    if !super::xen::event_state::upcall_pending_fast(lv.key) {
        return true;
    }
    let bit = 1u32 << EVTCHN_PPI;
    if lv.priority_fresh() {
        let group = crate::vgic::lr::group_bit(G::VERSION);
        let (placed, left) = place_posted(bit, &mut lv.lrs[..n], &lv.private, group);
        for slot in (0..n).filter(|&i| placed & (1 << i) != 0) {
            G::write_lr(slot, lv.lrs[slot]);
        }
        *posted |= placed;
        *irqs += u64::from(placed.count_ones());
        if left == 0 {
            return true;
        }
    }
    if let Some(word) = posted_irqs(lv.key) {
        word.post(bit);
    }
    if let Some(mailbox) = MAILBOX.get(cpu) {
        mailbox.post(POSTED);
    }
    false
}

/// Serves capability call `op` about the caller itself from its domain's slot (see
/// [`super::fast_slots`]); false (nothing done) if the locked path must answer it.
#[inline(never)]
fn slot_call(key: VcpuKey, op: protocol::control::CapOp, regs: &mut GuestRegs) -> bool {
    let (id, v) = key_parts(key);
    let x = &regs.x;
    let args = [x[1], x[2], x[3], x[4], x[5], x[6]];
    let Some(reply) = super::fast_slots::serve(id, v, op, &args) else {
        return false;
    };
    regs.x[0] = 0;
    regs.x[1..4].copy_from_slice(&reply);
    true
}

/// If the exit is a load or store inside one of the caller's trapped device windows (a
/// driver domain's virtio-mmio transport), performs it on the
/// device under the domain's slot lock ([`super::fast_slots::trapped_access`]), sets the
/// transfer register and steps over the instruction, as the locked path would; false
/// (nothing done) otherwise. The vGIC's windows never hold a device (they are checked
/// first, and a device window is host MMIO clear of them).
#[inline(never)]
#[cold]
fn device_access(key: VcpuKey, regs: &mut GuestRegs) -> bool {
    let esr = read_esr_el2();
    let Exit::DataAbort(abort) = crate::trap::decode(esr, read_far_el2(), read_hpfar_el2()) else {
        return false;
    };
    let Some(access) = abort.access else {
        return false;
    };
    let ipa = abort.ipa.as_u64();
    if crate::fastpath::in_vgic_window(ipa) {
        return false;
    }
    let reg = usize::from(access.reg);
    let write = abort
        .write
        .then(|| access.store_value(regs.x.get(reg).copied().unwrap_or(0)));
    let id = key_parts(key).0;
    let Some(value) = super::fast_slots::trapped_access(id, ipa, access.width, write) else {
        return false;
    };
    if write.is_none() {
        if let Some(x) = regs.x.get_mut(reg) {
            *x = access.load_value(value);
        }
    }
    regs.pc += u64::from(abort.instr_len);
    true
}

/// Serves an `event_channel_op` whose argument is at guest VA `x1` with `serve`, which
/// gets its guest-physical address and, under the event channels' own lock
/// ([`super::xen::event_state::send_fast`], [`super::xen::event_state::unmask_fast`]),
/// returns the CPUs to notify; then notifies them as [`post_sgi`] does. False (nothing
/// done) if the locked path must serve it.
#[inline(never)]
fn evtchn_fast<G: Hot>(
    this_cpu: usize,
    regs: &mut GuestRegs,
    serve: impl FnOnce(u64) -> Option<u64>,
) -> bool {
    // Translated with the caller's EL1 context, loaded here.
    let Some(ipa) = arch::translate_guest_va(regs.x[1], false) else {
        return false;
    };
    let Some(cpus) = serve(ipa) else {
        return false;
    };
    notify_cpus::<G>(cpus, this_cpu);
    regs.x[0] = 0;
    true
}

/// Posts [`POSTED`] to the CPUs in `cpus` ([`super::percpu::post_to_cpus`]).
fn notify_cpus<G: Hot>(cpus: u64, this_cpu: usize) {
    super::percpu::post_to_cpus(cpus, POSTED, this_cpu, G::kick);
}

/// Acknowledges and finishes this CPU's pending physical interrupts without the lock: the
/// kick SGI, the loaded vCPU's virtual timer into a free hardware-linked LR, and a
/// passthrough SPI of its domain into one ([`take_spi`]; its LR goes into `posted` for the
/// model to adopt). Both are counted in `irqs`. The first it cannot finish goes to the slow
/// path, acknowledged.
#[inline(always)]
fn take_irqs<G: Hot>(lv: &mut LoadedVcpu, n: usize, irqs: &mut u64, posted: &mut u16) -> Outcome {
    loop {
        let intid = G::ack();
        if intid == SPURIOUS {
            return Outcome::Done;
        }
        if intid == KICK_SGI {
            // Only ever sent with a mailbox post, which the caller looks at next.
            G::eoi(intid);
            continue;
        }
        let lr = (intid == VTIMER_PPI && lv.priority_fresh())
            .then(|| {
                let group = crate::vgic::lr::group_bit(G::VERSION);
                vtimer_lr(&lv.lrs[..n], lv.vtimer_priority, group)
            })
            .flatten()
            .or_else(|| {
                (intid >= 32)
                    .then(|| take_spi::<G>(lv, n, intid, posted))
                    .flatten()
            });
        let Some((slot, value)) = lr else {
            return Outcome::Slow {
                first_irq: Some(intid),
                serror: None,
            };
        };
        lv.lrs[slot] = value;
        G::write_lr(slot, value);
        *irqs += 1;
        // Hardware-linked: the guest's EOI deactivates the physical interrupt.
        G::drop_priority(intid);
    }
}

/// Where physical interrupt `intid` goes if it is one of the loaded vCPU's idle passthrough
/// SPIs ([`spi_lr`]); its slot is added to `posted`, so the next locked pass hands the LR
/// to the vGIC model. Out of line: the timer's path above stays as short as it was.
#[inline(never)]
fn take_spi<G: Hot>(
    lv: &mut LoadedVcpu,
    n: usize,
    intid: u32,
    posted: &mut u16,
) -> Option<(usize, u64)> {
    if lv.nr_spis == 0 || !lv.priority_fresh() {
        return None;
    }
    let group = crate::vgic::lr::group_bit(G::VERSION);
    let spis = &mut lv.spis[..lv.nr_spis.min(FAST_SPIS)];
    let (slot, value) = spi_lr(spis, &lv.lrs[..n], intid, group)?;
    *posted |= 1 << slot;
    Some((slot, value))
}

/// Serves a mailbox holding only [`POSTED`]: clears it, then places the interrupts posted
/// to the loaded vCPU into free list registers. Returns false if the slow path must run
/// (another request, a stale configuration cache, or something it could not place, which
/// goes back into the vCPU's word for the locked pass to put in the vGIC model).
///
/// On a shared pCPU the loaded vCPU must be alone ([`LoadedVcpu::alone`]), and a post may
/// be for another vCPU queued here: if any of their words holds something, or something
/// is left over, `POSTED` goes back into the mailbox, and the locked pass drains every
/// vCPU placed here.
#[inline(never)]
fn deliver_posted<G: Hot>(local: &mut Local, mailbox: &Mailbox) -> bool {
    if mailbox.peek() != POSTED {
        return false;
    }
    let Some(exclusive) = local
        .loaded
        .as_ref()
        .filter(|lv| lv.places_posts())
        .map(|lv| lv.exclusive)
    else {
        return false;
    };
    // Before taking the word (see `crate::posted`); a post after this sets it again.
    mailbox.clear(POSTED);
    if place_own_posts::<G>(local) {
        return true;
    }
    if !exclusive {
        // An exclusive vCPU's word is drained by every locked pass; a shared CPU drains
        // its vCPUs' words when it finds POSTED.
        mailbox.post(POSTED);
    }
    false
}

/// [`deliver_posted`] after the mailbox was cleared: places what was posted to the loaded
/// vCPU; false if the locked pass must (see there).
#[inline(always)]
fn place_own_posts<G: Hot>(local: &mut Local) -> bool {
    let n = local.nr_lrs;
    let Some(lv) = local.loaded.as_mut().filter(|lv| lv.priority_fresh()) else {
        return false;
    };
    if !lv.exclusive && !neighbours_quiet(lv) {
        return false;
    }
    let Some(word) = posted_irqs(lv.key) else {
        return false;
    };
    let group = crate::vgic::lr::group_bit(G::VERSION);
    let (placed, left) = place_posted(word.take(), &mut lv.lrs[..n], &lv.private, group);
    for slot in (0..n).filter(|&i| placed & (1 << i) != 0) {
        G::write_lr(slot, lv.lrs[slot]);
    }
    local.posted |= placed;
    local.irqs += u64::from(placed.count_ones());
    // Only when something was left: the placed path pays nothing for this.
    let left = if left != 0 {
        drop_held_upcall(left, &lv.lrs[..n])
    } else {
        0
    };
    if left != 0 {
        word.post(left);
        return false;
    }
    true
}

/// Whether nothing is posted to the other vCPUs queued on the loaded vCPU's CPU (a post to
/// one of them needs the locked pass, which wakes it). False if they are not all known.
#[inline(never)]
fn neighbours_quiet(lv: &LoadedVcpu) -> bool {
    let Some(count) = lv.nr_neighbours else {
        return false;
    };
    lv.neighbours
        .iter()
        .take(count)
        .all(|&k| posted_irqs(k).is_none_or(|w| w.is_empty()))
}

/// If the exit sends an SGI that [`post_sgi`] can deliver — a write of `ICC_SGI1R_EL1` on
/// a vGICv3, of the emulated `GICD_SGIR` on a vGICv2 — does so and steps over the
/// instruction; false (nothing done) otherwise.
#[inline(never)]
fn send_sgi<G: Hot>(key: VcpuKey, nr_vcpus: usize, this_cpu: usize, regs: &mut GuestRegs) -> bool {
    let esr = read_esr_el2();
    let v = key_parts(key).1;
    let value = |rt: u8| regs.x.get(usize::from(rt)).copied().unwrap_or(0);
    let (intid, targets) = match G::VERSION {
        GicVersion::V3 => {
            let Some(rt) = crate::trap::sgi1r_write(esr) else {
                return false;
            };
            crate::vgic::sgi_targets(nr_vcpus, v, value(rt))
        }
        GicVersion::V2 => {
            let Some(rt) = crate::trap::sgir_write(esr, read_far_el2(), read_hpfar_el2()) else {
                return false;
            };
            crate::vgic::sgir_targets(nr_vcpus, v, value(rt) as u32)
        }
    };
    if !post_sgi::<G>(key, nr_vcpus, this_cpu, intid, targets) {
        return false;
    }
    regs.pc += crate::trap::esr_il(esr);
    true
}

/// Delivers SGI `intid` from vCPU `key` to the vCPUs in `targets` without the global
/// lock: posts the SGI to each target's word, then [`POSTED`] to each target CPU's
/// mailbox, kicking another CPU on the empty-to-non-empty edge (see [`crate::posted`]).
/// When every target is pinned exclusive (on another CPU, or the sender itself on this
/// one) no lock at all; otherwise under the event lock, which a move waits for
/// ([`super::xen::event_state::post_private`]): a shared target's CPU places it on its fast
/// path if the target is loaded there and alone, and otherwise wakes it at its next locked
/// pass (the sender's own CPU too, for a sibling sharing its pCPU). Returns false, having
/// done nothing, if a target is moving.
fn post_sgi<G: Hot>(
    key: VcpuKey,
    nr_vcpus: usize,
    this_cpu: usize,
    intid: u32,
    targets: u32,
) -> bool {
    let index = usize::from(key_parts(key).0 .0);
    let (Some(homes), Some(words)) = (VCPU_HOME.get(index), POSTED_IRQS.get(index)) else {
        return false;
    };
    let mut entries = [0u32; protocol::layout::MAX_VCPUS];
    for (e, h) in entries.iter_mut().zip(homes) {
        *e = h.load(Ordering::Acquire);
    }
    let cpus = match sgi_homes(targets, &entries[..nr_vcpus.min(entries.len())]) {
        Some(cpus) => {
            for w in words
                .iter()
                .enumerate()
                .filter(|&(t, _)| targets & (1 << t) != 0)
            {
                w.1.post(1 << intid);
            }
            cpus
        }
        // A target placed shared: posted wherever it is, under the event lock.
        None => match super::xen::event_state::post_private(key_parts(key).0, targets, intid) {
            Some(cpus) => cpus,
            None => return false,
        },
    };
    notify_cpus::<G>(cpus, this_cpu);
    true
}
