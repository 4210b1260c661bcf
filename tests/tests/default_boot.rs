//! The default system boots: dom0 starts every domain, the RTOS ticks, and the stock Linux
//! guest reaches userspace with both vCPUs.

use bulkhead_tests::{boot_expect, default_system_boots, Expect};

#[test]
fn default_boot() {
    boot_expect("default_boot", default_system_boots(Expect::new(), 2));
}
