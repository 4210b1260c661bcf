//! `mode=timeroff`: vCPU 0's virtual timer expires while its timer PPI (27) is disabled in
//! its redistributor, and vCPU 0 then waits in WFI. The microvisor must neither deliver the
//! timer nor let its physical interrupt fire again and again: it masks the timer and keeps
//! it pending in the vGIC model. vCPU 0 counts its wakes from WFI until vCPU 1 wakes it
//! with an SGI [`WAKE_MS`] later (a storm would wake it thousands of times), then enables
//! the PPI: the timer, pending all along, must arrive at once, and only once.
//!
//! Run shared (vCPU 0 alone on its pCPU: its WFI traps and is waited out at EL2) and pinned
//! exclusive (our runtime's WFI does not trap: the timer's interrupt ends it in hardware).

use bulkhead_runtime::{arch, gic, irq, println, smp, timer};
use core::sync::atomic::{AtomicU32, Ordering};
use protocol::layout::VTIMER_PPI;
use testguest::SMP_SGI;

/// When vCPU 1 wakes vCPU 0.
const WAKE_MS: u64 = 100;
/// Most wakes vCPU 0 may see before the SGI: the masked timer's one exit, the SGI's, and
/// room for a spurious one or two.
const WAKES_MAX: u32 = 8;

/// vCPU 0's virtual-timer interrupts taken.
static TIMER_IRQS: AtomicU32 = AtomicU32::new(0);
/// SGIs vCPU 0 took.
static SGIS: AtomicU32 = AtomicU32::new(0);

fn on_irq(intid: u32) {
    // One handler for both vCPUs; vCPU 1 uses its own timer only to sleep.
    let mine = smp::current_vcpu() == 0;
    match intid {
        VTIMER_PPI => {
            if mine {
                TIMER_IRQS.fetch_add(1, Ordering::AcqRel);
            }
            timer::stop();
        }
        SMP_SGI if mine => {
            SGIS.fetch_add(1, Ordering::AcqRel);
        }
        _ => {}
    }
}

fn vcpu1() {
    irq::init_secondary();
    gic::enable(VTIMER_PPI);
    irq::enable_irqs();
    timer::sleep_ms(WAKE_MS);
    gic::send_sgi(SMP_SGI, 0);
    loop {
        arch::wfi();
    }
}

/// Ticks in `ms` milliseconds.
fn ms(ms: u64) -> u64 {
    timer::ms_to_ticks(ms, timer::freq())
}

/// Runs the mode on vCPU 0.
pub fn run() {
    irq::init_primary();
    gic::enable(SMP_SGI);
    gic::disable(VTIMER_PPI);
    irq::set_handler(on_irq);
    irq::enable_irqs();
    timer::set_deadline(timer::now().saturating_add(ms(1)));
    if let Err(e) = smp::start_vcpu(1, vcpu1) {
        println!("FAIL: CPU_ON vcpu1: {e:?}");
        return;
    }
    let limit = timer::now().saturating_add(ms(5_000));
    let mut wakes = 0u32;
    while SGIS.load(Ordering::Acquire) == 0 && timer::now() < limit {
        irq::without_interrupts(|| {
            if SGIS.load(Ordering::Acquire) == 0 {
                arch::wfi();
            }
        });
        wakes = wakes.saturating_add(1);
    }
    let early = TIMER_IRQS.load(Ordering::Acquire);
    println!("timeroff: {wakes} wakes before the SGI, {early} timer interrupts while disabled");
    if SGIS.load(Ordering::Acquire) == 0 {
        println!("FAIL: no SGI from vcpu1 in 5 s");
        return;
    }
    if early != 0 || wakes > WAKES_MAX {
        println!("FAIL: a disabled timer was delivered or kept waking the vCPU");
        return;
    }
    // Enabled now: the timer expired 100 ms ago and is still pending.
    gic::enable(VTIMER_PPI);
    let limit = timer::now().saturating_add(ms(1_000));
    while TIMER_IRQS.load(Ordering::Acquire) == 0 && timer::now() < limit {
        core::hint::spin_loop();
    }
    // And no second one: the guest's handler stopped the timer.
    let settle = timer::now().saturating_add(ms(50));
    while timer::now() < settle {
        core::hint::spin_loop();
    }
    let late = TIMER_IRQS.load(Ordering::Acquire);
    println!("timeroff: {late} timer interrupt(s) once enabled");
    if late != 1 {
        println!("FAIL: the pending timer was not delivered exactly once when enabled");
        return;
    }
    println!("PASS");
}
