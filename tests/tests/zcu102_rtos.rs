//! The RTOS meets every deadline on QEMU's ZCU102 model (`--machine zcu102`: four
//! Cortex-A53, a GIC-400, the board's own DTB) as on `virt` (`rtos_realtime`), its shell
//! answering through the Cadence UART. Under `-icount` (see [`bulkhead_tests::rtos_load`]).

use bulkhead_tests::{rtos_load::rtos_meets_deadlines_under_load, Machine};

#[test]
#[ignore = "known regression (issue 12): on GICv2 hosts the RTOS under load misses releases in its first seconds (one ~15 ms timer stall, cause not found yet); run with --ignored"]
fn rtos_meets_deadlines_on_the_zcu102() {
    rtos_meets_deadlines_under_load(Machine::Zcu102, Some(r"^bulkhead: GICv2: distributor"));
}
