//! The RTOS meets every deadline on QEMU's ZCU102 model (`--machine zcu102`: four
//! Cortex-A53, a GIC-400, the board's own DTB) as on `virt` (`rtos_realtime`), its shell
//! answering through the Cadence UART. Under `-icount` (see [`bulkhead_tests::rtos_load`]),
//! with a one-vCPU metronome on the fourth CPU and the load's two vCPUs sharing the third
//! (`rtos_load_4cpus.toml`; `METRONOME_ONE_BLOCK` in tests/src/systems.rs says why).

use bulkhead_tests::{rtos_load::rtos_meets_deadlines_under_load, Machine};

#[test]
#[ignore = "fails in about 1 run of 4 on the merged tree of 2026-12-06 (4 misses, 4 overruns in the RTOS's second 2, its timer interrupts on time: late_max 39 us); passed 5 of 5 on the branch that added the one-vCPU metronome; cause not found (README Status); run with --include-ignored"]
fn rtos_meets_deadlines_on_the_zcu102() {
    rtos_meets_deadlines_under_load(Machine::Zcu102, Some(r"^bulkhead: GICv2: distributor"));
}
