//! PSCI CPU hotplug: a guest turns its second vCPU off and on 1000 times, each round at the
//! other of two entry points with a new context id, issuing CPU_ON while the vCPU is still
//! on its way out of CPU_OFF on another pCPU. Every round must start the vCPU fresh where
//! and as it was told (review finding F14: a CPU_ON racing the off vCPU's unload was lost).

use bulkhead_tests::{boot_expect, Expect};

#[test]
fn vcpu_hotplug_starts_fresh_every_round() {
    let expect = Expect::new()
        .then(r"\[hotplug\] hotplug: 1000 rounds, CPU_ON refused \d+ times")
        .and_then(|e| e.then(r"\[hotplug\] PASS"))
        .and_then(|e| e.forbid(r"\[hotplug\] FAIL"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(hotplug\) stopped"))
        .expect("markers");
    boot_expect("hotplug", expect);
}
