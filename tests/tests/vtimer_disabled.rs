//! A virtual timer that expires while its PPI is disabled in the guest's redistributor (or,
//! on GICv2, its distributor's banked enable) is neither delivered nor left firing: the
//! microvisor masks it and keeps it pending in the vGIC model, and the vCPU's WFI waits on
//! (a storm would wake it without end, or spin its CPU at EL2). Once the guest enables the
//! PPI the timer arrives, once. Run for a vCPU alone on a shared pCPU (WFI trapped and
//! waited out at EL2 by the fast path) and for a pinned-exclusive one (WFI left to the
//! hardware), on both GIC versions (the fast path is built once per version); see the
//! guest's `timeroff` mode.

use bulkhead_tests::{boot_expect, boot_machine_expect, system, Expect, Machine};

fn markers() -> Expect {
    Expect::new()
        .all(&[r"\[toff_shared\] PASS", r"\[toff_excl\] PASS"])
        .and_then(|e| e.forbid(r"\[toff_(shared|excl)\] FAIL"))
        .and_then(|e| {
            e.forbid(r"bulkhead: d\d+ \(toff_(shared|excl)\) stopped: (stage-2|unhandled|crash)")
        })
        .expect("markers")
}

#[test]
fn a_timer_expiring_with_its_ppi_disabled_waits_until_enabled() {
    boot_expect("timeroff", markers());
}

#[test]
fn the_same_on_a_gicv2() {
    boot_machine_expect(Machine::VirtGicv2, &system("timeroff"), markers());
}
