//! A guest touching memory it does not own is stopped with a stage-2 fault; its neighbours
//! keep running afterwards.

use bulkhead_tests::{boot_expect, Expect};

#[test]
fn oob_guest_is_stopped() {
    let expect = Expect::new()
        .then(r"\[oob\] touching")
        .and_then(|e| e.then(r"bulkhead: d\d+ \(oob\) stopped: stage-2 fault"))
        .and_then(|e| e.all(&[r"\[rtos\] uptime \d+s ticks \d+", r"\[smp\] PASS"]))
        .and_then(|e| e.forbid(r"\[oob\] FAIL"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|smp)\) stopped"))
        .expect("markers");
    boot_expect("oob", expect);
}
