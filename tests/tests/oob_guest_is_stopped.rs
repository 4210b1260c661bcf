//! A guest touching memory it does not own is stopped with a stage-2 fault; its neighbours
//! (one of them sharing its physical CPU) keep running afterwards.

use bulkhead_tests::{boot_expect, Expect};

#[test]
fn oob_guest_is_stopped() {
    // The SMP guest runs concurrently on other CPUs: its verdict may come before or after
    // the fault (or the oob guest's own `touching` line), but it must come.
    let expect = Expect::new()
        .all(&[
            r"bulkhead: d\d+ \(oob\) stopped: stage-2 fault",
            r"\[smp\] PASS",
        ])
        // Time keeps flowing for the RTOS after the fault.
        .and_then(|e| e.then(r"\[rtos\] uptime \d+s ticks \d+"))
        .and_then(|e| e.forbid(r"\[oob\] FAIL"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(rtos\) stopped"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(smp\) stopped: (stage-2|unhandled)"))
        .expect("markers");
    boot_expect("oob", expect);
}
