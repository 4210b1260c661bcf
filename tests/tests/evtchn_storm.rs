//! A guest that sends events back to back on every channel it has (two to dom0, one to
//! itself) from the moment it starts cannot slow anyone else down: a stock Linux guest on
//! another pCPU boots to userspace and answers commands, the RTOS keeps ticking, dom0 keeps
//! answering `ctl`, and the storm itself keeps being served (no send is refused).
//!
//! The storm's only lever is the hypercall path and the lock behind it. This is the case
//! that once stalled a Linux guest for minutes (the ticket lock's hand-offs to descheduled
//! QEMU CPU threads, see microvisor/src/sync.rs).

use bulkhead_tests::{
    connect, ctl, history, linux_failures, system, type_line, value_after, wait_count,
    wait_for_text, wait_until, Boot, Expect, BOOT_TIMEOUT,
};
use bulkhead_tools::qemu::RunOptions;

/// The storm's progress in a console history: its last `evtstorm: N sends` (0 before any).
fn sends(h: &str) -> u64 {
    value_after(h, "[storm] evtstorm: ").parse().unwrap_or(0)
}

#[test]
fn an_event_channel_storm_does_not_slow_the_neighbours() {
    let expect = Expect::new()
        .then(r"\[storm\] evtstorm: storming ports \d+ \d+ \d+")
        .and_then(|e| e.then(r"\[linux\] BULKHEAD-LINUX-USERSPACE"))
        .and_then(|e| e.then(r"\[dom0\] linux \(d\d+\): powered off -> destroy"))
        .and_then(|e| e.forbid(r"\[storm\] evtstorm: FAIL"))
        .and_then(|e| e.forbid(&linux_failures("linux", &[])))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|storm|dom0)\) stopped"))
        .and_then(|e| e.forbid(r"bulkhead: PANIC"))
        .expect("markers");
    let boot = Boot::start(RunOptions::test(
        system("evtstorm"),
        expect,
        BOOT_TIMEOUT * 4,
    ));
    let mut c = connect();
    wait_for_text(&mut c, "[storm] evtstorm: storming", "storm start", 120);
    wait_for_text(
        &mut c,
        "[linux] BULKHEAD-LINUX-USERSPACE",
        "Linux boot beside the storm",
        300,
    );
    type_line(&mut c, "linux", "echo ANSWER=$((6*7))");
    wait_for_text(
        &mut c,
        "[linux] ANSWER=42",
        "Linux shell beside the storm",
        120,
    );
    // The RTOS ticked through it (a fresh report after Linux's answer).
    let before = history(&mut c).matches("[rtos] uptime").count();
    wait_count(&mut c, "[rtos] uptime", before + 2, "RTOS ticks", 60);
    // dom0 answers, and the storm is still running and still being served.
    let listed = ctl(&mut c, &["list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("storm") && l.contains("running")),
        "ctl list:\n{listed}"
    );
    let first = sends(&history(&mut c));
    wait_until(
        &mut c,
        |h| sends(h) > first,
        "a later `evtstorm: N sends`",
        "storm still served",
        60,
    );
    type_line(&mut c, "linux", "poweroff -f");
    boot.finish("system `evtstorm`");
}
