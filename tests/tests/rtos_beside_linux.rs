//! The RTOS keeps every deadline while a stock Linux kernel boots to userspace beside it
//! (Linux on pCPUs 2-3 with 2 vCPUs, the RTOS pinned alone on pCPU 1).
//!
//! Runs under `-icount` so time is virtual and deterministic: a slow or busy host cannot
//! make a task miss its deadline, only the system under test can.

use bulkhead_tests::{system, Expect, BOOT_TIMEOUT, TAIL_LINES};
use bulkhead_tools::qemu::{self, Outcome, RunOptions};

#[test]
fn rtos_meets_deadlines_while_linux_boots() {
    let uptime = r"\[rtos\] uptime \d+s ticks \d+000 late_max_ticks \d+ misses 0 overruns 0";
    let expect = Expect::new()
        .all(&[
            r"\[rtos\] ready",
            r"\[linux\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2",
        ])
        // Two more whole seconds of releases once Linux is up.
        .and_then(|e| e.then(uptime))
        .and_then(|e| e.then(uptime))
        .and_then(|e| e.forbid(r"\[rtos\] uptime .* misses [1-9]"))
        .and_then(|e| e.forbid(r"\[rtos\] uptime .* overruns [1-9]"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|linux)\) stopped"))
        .expect("markers");
    let mut opts = RunOptions::test(system("rtos_linux"), expect, BOOT_TIMEOUT * 3);
    opts.icount = true;
    let out = qemu::run(&opts).expect("boot rtos_linux");
    assert!(
        out.outcome == Outcome::Matched,
        "system `rtos_linux`: {}",
        out.report(TAIL_LINES)
    );
}
