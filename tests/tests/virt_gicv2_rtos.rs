//! The RTOS meets every deadline on a GICv2 host (`--machine virt-gicv2`) as on a GICv3
//! one (`rtos_realtime`): the load guest's SGIs go through its virtual GICv2's `GICD_SGIR`.
//! Under `-icount` (see [`bulkhead_tests::rtos_load`]).

use bulkhead_tests::{rtos_load::rtos_meets_deadlines_under_load, Machine};

#[test]
fn rtos_meets_deadlines_on_a_gicv2() {
    rtos_meets_deadlines_under_load(Machine::VirtGicv2, Some(r"^bulkhead: GICv2: distributor"));
}
