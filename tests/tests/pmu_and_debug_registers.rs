//! The PMU and the debug registers per domain (crate `microvisor`'s `pmu` and `debugregs`):
//! a domain without `pmu` reads `PMUVer` 0 and takes an Undefined Instruction on a PMU
//! register; one with `pmu = "guest"` counts its own cycles but not the microvisor's
//! (`MDCR_EL2.HPMD`/`HCCD`), one with `pmu = "el2"` counts both, and the two keep their
//! own PMU state while sharing a pCPU. Every domain's breakpoint registers are a shadow
//! that never fires. The guest is the testguest's `mode=pmu`.

use bulkhead_tests::{boot_expect, Expect};

#[test]
fn pmu_and_debug_registers() {
    let expect = Expect::new()
        .all(&[
            r"\[pmuoff\] pmu: debug registers emulated, breakpoint did not fire",
            r"\[pmuoff\] pmu: PMUVer=0",
            // EC 0 (unknown reason), IL: the Undefined Instruction the microvisor injects.
            r"\[pmuoff\] vcpu0: unexpected sync exception from EL1h: ESR=0x2000000 ",
            r"\[pmuguest\] pmu: debug registers emulated, breakpoint did not fire",
            r"\[pmuguest\] pmu: n=1000 el2_events=0 el2_cycles=0 guest_events=[1-9]",
            r"\[pmuguest\] PASS",
            r"\[pmuel2\] pmu: n=1000 el2_events=[1-9]\d* el2_cycles=[1-9]",
            r"\[pmuel2\] PASS",
        ])
        .and_then(|e| e.forbid(r"\] FAIL"))
        .expect("markers");
    boot_expect("pmu", expect);
}
