//! The RTOS meets every deadline on QEMU's ZCU102 model (`--machine zcu102`: four
//! Cortex-A53, a GIC-400, the board's own DTB) as on `virt` (`rtos_realtime`,
//! `virt_gicv2_rtos`): five seconds of releases without a miss or an overrun, while a
//! 2-vCPU guest loads the other CPUs with busy loops, timer interrupts and SGIs (through
//! its virtual GICv2's `GICD_SGIR`), and the RTOS shell answers on the console.
//!
//! Runs under `-icount` so time is virtual and deterministic.

use bulkhead_tests::{system, Expect, Machine, BOOT_TIMEOUT, TAIL_LINES};
use bulkhead_tools::qemu::{self, Outcome, RunOptions};

#[test]
fn rtos_meets_deadlines_on_the_zcu102() {
    let expect = Expect::new()
        .then(r"^bulkhead: GICv2: distributor")
        .and_then(|e| {
            e.all(&[
                r"\[rtos\] ready",
                r"\[load\] load vcpu1 running",
                r"console input now goes to d\d+ \(rtos\)",
                r"\[rtos\] stats: task control releases=\d+ completed=\d+ misses=0 overruns=0",
                r"\[rtos\] uptime 5s ticks 5000 late_max_ticks \d+ misses 0 overruns 0",
            ])
        })
        .and_then(|e| e.send_when(r"\[rtos\] shell: commands", b"\x01\x01\x01"))
        .and_then(|e| e.send_when(r"console input now goes to d\d+ \(rtos\)", b"stats\r"))
        .and_then(|e| e.forbid(r"\[rtos\] uptime .* misses [1-9]"))
        .and_then(|e| e.forbid(r"\[rtos\] uptime .* overruns [1-9]"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|load)\) stopped"))
        .and_then(|e| e.forbid(r"\[(rtos|load)\] (FAIL|.*panic)"))
        .expect("markers");
    let mut opts = RunOptions::test(system("rtos_load"), expect, BOOT_TIMEOUT);
    opts.icount = true;
    opts.overrides.machine = Machine::Zcu102;
    let out = qemu::run(&opts).expect("boot rtos_load");
    assert!(
        out.outcome == Outcome::Matched,
        "system `rtos_load` on --machine zcu102: {}",
        out.report(TAIL_LINES)
    );
}
