//! The RTOS under load on QEMU `virt` (GICv3): its periodic tasks meet every deadline for
//! five seconds of releases while a 2-vCPU guest loads the other CPUs with busy loops, timer
//! interrupts and SGIs, and its shell answers `threads` and `stats` typed on the console.
//! Under `-icount` (see [`bulkhead_tests::rtos_load`]).

use bulkhead_tests::{rtos_load::rtos_meets_deadlines_under_load, Machine};

#[test]
fn rtos_meets_deadlines_under_load_and_shell_answers() {
    rtos_meets_deadlines_under_load(Machine::Virt, None);
}
