//! The default system boots: dom0 starts every domain, the RTOS ticks, and the stock Linux
//! guest reaches userspace with both vCPUs.

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
                r"\[linux\] BULKHEAD-LINUX-USERSPACE kernel=\S+ cpus=2",
            ])
        })
        .and_then(|e| e.then(uptime))
        .and_then(|e| e.then(uptime))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(rtos\) stopped"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(linux\) stopped"))
        .expect("markers");
    boot_expect("default_boot", expect);
}
