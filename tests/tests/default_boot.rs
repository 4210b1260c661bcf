//! The default system boots: dom0 starts every domain, the RTOS ticks, SMP works.

use bulkhead_tests::{boot_expect, Expect};

#[test]
fn default_boot() {
    let uptime = r"\[rtos\] uptime \d+s ticks \d+";
    let expect = Expect::new()
        .then("bulkhead: microvisor up")
        .and_then(|e| {
            e.all(&[
                r"\[dom0\] all domains started",
                r"\[rtos\] ready",
                r"\[smp\] PASS",
            ])
        })
        .and_then(|e| e.then(uptime))
        .and_then(|e| e.then(uptime))
        .and_then(|e| e.forbid(r"\[smp\] FAIL"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(rtos\) stopped"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(smp\) stopped: (stage-2|unhandled)"))
        .expect("markers");
    boot_expect("default_boot", expect);
}
