//! `mode=pmu expect=off|guest|el2`: what a domain sees of the PMU and the debug registers
//! (crate `microvisor`'s `pmu` and `debugregs`).
//!
//! Every domain: breakpoint and watchpoint registers read back what it wrote, the OS lock
//! reads "unlocked", `MDSCR_EL1` keeps its writable bits, and an armed breakpoint never
//! fires (the registers are a shadow). Then by `expect`:
//! - `off`: `ID_AA64DFR0_EL1.PMUVer` reads 0 and reading `PMEVCNTR0_EL0` is an Undefined
//!   Instruction: the runtime reports the exception (ESR 0x2000000) and the domain crashes.
//! - `guest`: the counters count its own cycles but none at EL2 over null hypercalls
//!   (`MDCR_EL2.HPMD` for the event counters, `HCCD` for the cycle counter), and its PMU
//!   state survives sharing its pCPU with another PMU domain for many time slices.
//! - `el2`: as `guest`, but the EL2 filters count the microvisor's work.

use bulkhead_runtime::{self as rt, arch, cap, pmu, println};
use core::arch::asm;
use protocol::control::CapOp;

macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a debug, PMU or ID register touches no memory; an access the
        // microvisor refuses is an exception the runtime reports.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

macro_rules! msr {
    ($reg:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: as for `mrs!`: debug and PMU registers only shape debug events and counts.
        unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nomem, nostack)) };
    }};
}

/// Null hypercalls per measurement.
const CALLS: u32 = 1000;
/// Event CPU_CYCLES. (QEMU counts INST_RETIRED only under `-icount`, which tests do not use.)
const CPU_CYCLES: u64 = 0x11;
/// PMCCFILTR_EL0 / PMEVTYPER: P (no EL1), U (no EL0), NSH (count EL2).
const EL2_ONLY: u64 = pmu::FILTER_P | pmu::FILTER_U | pmu::FILTER_NSH;
/// The cycle counter's bit in PMCNTENSET_EL0.
const CYCLE_COUNTER: u64 = 1 << 31;
/// PMCR_EL0.C: reset the cycle counter.
const PMCR_C: u64 = 1 << 2;

/// Runs the mode; prints `PASS` or `FAIL: …` (or crashes, for `expect=off`).
pub fn run(cmdline: &str) {
    let expect = rt::cmdline::get(cmdline, "expect").unwrap_or("");
    if !matches!(expect, "off" | "guest" | "el2") {
        println!("FAIL: expect={expect:?}, expected off, guest or el2");
        return;
    }
    if let Err(e) = debug_registers() {
        println!("FAIL: {e}");
        return;
    }
    let pmuver = (mrs!("id_aa64dfr0_el1") >> 8) & 0xf;
    println!("pmu: PMUVer={pmuver}");
    let verdict = if expect == "off" {
        if pmuver != 0 {
            Err("PMUVer is not 0 without the PMU")
        } else {
            println!("pmu: reading PMEVCNTR0_EL0, expecting an Undefined Instruction");
            let v = mrs!("pmevcntr0_el0");
            println!("FAIL: PMEVCNTR0_EL0 read {v} without the PMU");
            return;
        }
    } else if pmuver == 0 {
        Err("PMUVer is 0 although the PMU was given")
    } else {
        counts(expect == "el2").and_then(|()| state_survives_sharing(expect))
    };
    match verdict {
        Ok(()) => println!("PASS"),
        Err(e) => println!("FAIL: {e}"),
    }
}

/// The debug registers as the microvisor emulates them.
fn debug_registers() -> Result<(), &'static str> {
    let target = armed_target as *const () as usize as u64;
    msr!("dbgbvr0_el1", target);
    // E, PMC = EL1 and EL0, BAS = all four bytes.
    msr!("dbgbcr0_el1", 0x1e7);
    msr!("dbgwvr1_el1", 0x4000_0000);
    if mrs!("dbgbvr0_el1") != target || mrs!("dbgbcr0_el1") != 0x1e7 {
        return Err("DBGBVR0/DBGBCR0 do not read back");
    }
    if mrs!("dbgwvr1_el1") != 0x4000_0000 || mrs!("dbgwvr0_el1") != 0 {
        return Err("DBGWVR1 does not read back or DBGWVR0 is not 0");
    }
    if mrs!("oslsr_el1") != 0b1000 {
        return Err("OSLSR_EL1 does not read \"implemented, unlocked\"");
    }
    // KDE and MDE with debug exceptions unmasked: an armed hardware breakpoint would fire.
    msr!("mdscr_el1", (1 << 13) | (1 << 15));
    if mrs!("mdscr_el1") != (1 << 13) | (1 << 15) {
        return Err("MDSCR_EL1 does not keep KDE|MDE");
    }
    // SAFETY: unmasking debug exceptions only; none is armed in the hardware.
    unsafe { asm!("msr daifclr, #8", "isb", options(nomem, nostack)) };
    let x = armed_target(41);
    // SAFETY: masks them again.
    unsafe { asm!("msr daifset, #8", "isb", options(nomem, nostack)) };
    msr!("mdscr_el1", 0);
    msr!("dbgbcr0_el1", 0);
    if x != 42 {
        return Err("the breakpoint target returned the wrong value");
    }
    println!("pmu: debug registers emulated, breakpoint did not fire");
    Ok(())
}

/// The function the guest's breakpoint 0 points at.
#[inline(never)]
extern "C" fn armed_target(x: u64) -> u64 {
    core::hint::black_box(x) + 1
}

/// Counts cycles over null hypercalls: event counter 0 and the cycle counter at EL2 only,
/// event counter 1 at EL0/EL1. The guest's own always count; EL2's only if `el2`.
fn counts(el2: bool) -> Result<(), &'static str> {
    let null = u64::from(CapOp::NullCall.function_id());
    if cap::null_call().is_err() {
        return Err("NullCall failed");
    }
    arch::set_pmcr(pmu::PMCR_P | PMCR_C);
    arch::isb();
    arch::set_pmevtyper0(CPU_CYCLES | EL2_ONLY);
    arch::set_pmevtyper1(CPU_CYCLES);
    msr!("pmccfiltr_el0", EL2_ONLY);
    arch::set_pmcntenset(0b11 | CYCLE_COUNTER);
    arch::set_pmcr(pmu::PMCR_E);
    arch::isb();
    let (before, cycles) = (pmu::sample(), mrs!("pmccntr_el0"));
    for _ in 0..CALLS {
        rt::hvc(null, [0; 6]);
    }
    let d = before.until(pmu::sample());
    let el2_cycles = mrs!("pmccntr_el0").wrapping_sub(cycles);
    println!(
        "pmu: n={CALLS} el2_events={} el2_cycles={el2_cycles} guest_events={}",
        d.el2, d.guest
    );
    if d.guest == 0 {
        return Err("the guest's own cycles were not counted");
    }
    match (el2, d.el2, el2_cycles) {
        (false, 0, 0) | (true, 1.., 1..) => Ok(()),
        (false, _, _) => Err("counted the microvisor without `pmu = \"el2\"`"),
        (true, _, _) => Err("counted no EL2 cycle with `pmu = \"el2\"`"),
    }
}

/// Writes an event type and counter-enable pattern of its own, then checks them again and
/// again over at least 300 ms of busy hypercalls (30 time slices), while another PMU domain
/// on the same pCPU does the same with its own values.
fn state_survives_sharing(expect: &str) -> Result<(), &'static str> {
    let (evtype, enabled) = if expect == "guest" {
        (0x11 | pmu::FILTER_U, 0b0100)
    } else {
        (0x08 | pmu::FILTER_P, 0b1000)
    };
    msr!("pmevtyper2_el0", evtype);
    msr!("pmcntenclr_el0", 0b1100);
    arch::set_pmcntenset(enabled);
    let null = u64::from(CapOp::NullCall.function_id());
    let hz = arch::cntfrq();
    let start = arch::cntvct();
    let mut rounds = 0u32;
    while arch::cntvct().wrapping_sub(start) < hz * 3 / 10 || rounds < 10 {
        for _ in 0..100 {
            rt::hvc(null, [0; 6]);
        }
        if mrs!("pmevtyper2_el0") != evtype || mrs!("pmcntenset_el0") & 0b1100 != enabled {
            return Err("PMU state changed under it (another domain's?)");
        }
        rounds += 1;
    }
    println!("pmu: state kept over {rounds} rounds");
    Ok(())
}
