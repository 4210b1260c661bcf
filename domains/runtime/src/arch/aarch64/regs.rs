//! System-register accessors, barriers and the `HVC #0` call.
//!
//! None of these can break Rust's memory safety: they touch timer, GIC CPU-interface, PMU
//! and identification registers, never translation or exception-level state (that is set
//! once by the boot asm). So they are safe functions; each `unsafe` block says why.

use core::arch::asm;

macro_rules! read_sysreg {
    ($(#[$doc:meta])* $name:ident, $reg:literal) => {
        $(#[$doc])*
        #[inline]
        pub fn $name() -> u64 {
            let v: u64;
            // SAFETY: reading this register has no side effects on memory.
            unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack)) };
            v
        }
    };
}

macro_rules! write_sysreg {
    ($(#[$doc:meta])* $name:ident, $reg:literal) => {
        $(#[$doc])*
        #[inline]
        pub fn $name(v: u64) {
            // SAFETY: this register controls timer, GIC CPU-interface or PMU state only; no
            // memory the compiler knows about changes.
            unsafe { asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nomem, nostack)) };
        }
    };
}

read_sysreg!(
    /// MPIDR_EL1 (the microvisor sets Aff0 = vCPU index).
    mpidr, "mpidr_el1");
read_sysreg!(
    /// ID_AA64PFR0_EL1 (its GIC field says which CPU interface this vCPU has).
    id_aa64pfr0, "id_aa64pfr0_el1");
read_sysreg!(
    /// CNTFRQ_EL0, the counter frequency in Hz.
    cntfrq, "cntfrq_el0");
read_sysreg!(
    /// CNTV_CTL_EL0.
    cntv_ctl, "cntv_ctl_el0");
write_sysreg!(
    /// CNTV_CTL_EL0 (bit 0 ENABLE, bit 1 IMASK).
    set_cntv_ctl, "cntv_ctl_el0");
write_sysreg!(
    /// CNTV_CVAL_EL0, the virtual timer's absolute deadline.
    set_cntv_cval, "cntv_cval_el0");
read_sysreg!(
    /// DAIF (bit 7 = IRQs masked).
    daif, "daif");
read_sysreg!(
    /// PMCCNTR_EL0, the cycle counter.
    pmccntr, "pmccntr_el0");
write_sysreg!(
    /// PMCCFILTR_EL0, the cycle counter's filter.
    set_pmccfiltr, "pmccfiltr_el0");
read_sysreg!(
    /// ESR_EL1.
    esr, "esr_el1");
read_sysreg!(
    /// ELR_EL1.
    elr, "elr_el1");
read_sysreg!(
    /// FAR_EL1.
    far, "far_el1");
read_sysreg!(
    /// ICC_SRE_EL1.
    icc_sre, "S3_0_C12_C12_5");
write_sysreg!(
    /// ICC_SRE_EL1.
    set_icc_sre, "S3_0_C12_C12_5");
write_sysreg!(
    /// ICC_PMR_EL1, the priority mask.
    set_icc_pmr, "S3_0_C4_C6_0");
write_sysreg!(
    /// ICC_BPR1_EL1, the group-1 binary point.
    set_icc_bpr1, "S3_0_C12_C12_3");
read_sysreg!(
    /// ICC_CTLR_EL1.
    icc_ctlr, "S3_0_C12_C12_4");
write_sysreg!(
    /// ICC_CTLR_EL1.
    set_icc_ctlr, "S3_0_C12_C12_4");
write_sysreg!(
    /// ICC_IGRPEN1_EL1, group-1 enable.
    set_icc_igrpen1, "S3_0_C12_C12_7");
write_sysreg!(
    /// ICC_EOIR1_EL1, end of interrupt.
    set_icc_eoir1, "S3_0_C12_C12_1");
write_sysreg!(
    /// ICC_SGI1R_EL1, sends a group-1 SGI.
    set_icc_sgi1r, "S3_0_C12_C11_5");
write_sysreg!(
    /// PMCR_EL0.
    set_pmcr, "pmcr_el0");
write_sysreg!(
    /// PMCNTENSET_EL0.
    set_pmcntenset, "pmcntenset_el0");
write_sysreg!(
    /// PMEVTYPER0_EL0.
    set_pmevtyper0, "pmevtyper0_el0");
write_sysreg!(
    /// PMEVTYPER1_EL0.
    set_pmevtyper1, "pmevtyper1_el0");
read_sysreg!(
    /// PMEVCNTR0_EL0.
    pmevcntr0, "pmevcntr0_el0");
read_sysreg!(
    /// PMEVCNTR1_EL0.
    pmevcntr1, "pmevcntr1_el0");

/// ICC_IAR1_EL1: acknowledges the highest-priority pending group-1 interrupt.
#[inline]
pub fn icc_iar1() -> u64 {
    let v: u64;
    // SAFETY: acknowledging changes GIC state only, not memory; not `nomem` so it is not
    // reordered around the handler's memory accesses.
    unsafe { asm!("mrs {}, S3_0_C12_C12_0", out(reg) v, options(nostack)) };
    v
}

/// CNTVCT_EL0, read after an ISB so it is not speculated early.
#[inline]
pub fn cntvct() -> u64 {
    let v: u64;
    // SAFETY: a barrier and a counter read; no memory effects.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// Instruction synchronization barrier.
#[inline]
pub fn isb() {
    // SAFETY: a barrier has no memory-safety effects.
    unsafe { asm!("isb", options(nostack)) };
}

/// Waits for an interrupt (returns on any pending interrupt, masked or not).
#[inline]
pub fn wfi() {
    // SAFETY: waiting has no memory-safety effects; not `nomem` so memory written by an
    // interrupt handler is re-read afterwards.
    unsafe { asm!("wfi", options(nostack)) };
}

/// Waits for an event (parking loops).
#[inline]
pub fn wfe() {
    // SAFETY: as for `wfi`.
    unsafe { asm!("wfe", options(nostack)) };
}

/// Unmasks IRQs on this vCPU.
#[inline]
pub fn enable_irqs() {
    // SAFETY: our vector table is installed before any Rust runs, so an IRQ is handled.
    unsafe { asm!("msr daifclr, #2", options(nostack)) };
}

/// Runs `f` with IRQs masked on this vCPU, restoring the previous mask afterwards.
#[inline]
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let daif: u64;
    // SAFETY: reads and sets the interrupt mask; no memory effects beyond ordering.
    unsafe { asm!("mrs {}, daif", "msr daifset, #2", out(reg) daif, options(nostack)) };
    let r = f();
    // SAFETY: restores exactly the mask we read.
    unsafe { asm!("msr daif, {}", in(reg) daif, options(nostack)) };
    r
}

/// `HVC #0` with SMCCC registers: `x0` = `fid`, `x1..x6` = `args`; returns `x0..x3`.
/// x4..x17 are treated as clobbered (SMCCC 1.0 allows it).
#[inline]
pub fn hvc(fid: u64, args: [u64; 6]) -> [u64; 4] {
    let (r0, r1, r2, r3);
    // SAFETY: the microvisor only writes guest memory we registered (message pages) or that
    // the call designates, never Rust objects behind our back; `asm!` without `nomem` tells
    // the compiler memory may change, so message pages are re-read afterwards.
    unsafe {
        asm!(
            "hvc #0",
            inlateout("x0") fid => r0,
            inlateout("x1") args[0] => r1,
            inlateout("x2") args[1] => r2,
            inlateout("x3") args[2] => r3,
            inlateout("x4") args[3] => _,
            inlateout("x5") args[4] => _,
            inlateout("x6") args[5] => _,
            lateout("x7") _, lateout("x8") _, lateout("x9") _, lateout("x10") _,
            lateout("x11") _, lateout("x12") _, lateout("x13") _, lateout("x14") _,
            lateout("x15") _, lateout("x16") _, lateout("x17") _,
            options(nostack),
        );
    }
    [r0, r1, r2, r3]
}

/// A Xen-ABI hypercall: `HVC #0xEA1`, number in `x16`, arguments in `x0..x4`; returns `x0`
/// (zero or positive, or a negated errno). Pointer arguments are our (identity-mapped)
/// addresses.
#[inline]
pub fn xen_hvc(number: u64, args: [u64; 5]) -> u64 {
    let r0;
    // SAFETY: the microvisor writes only the argument structures we pass by address (live
    // objects of the caller, which hands them over for the duration of the call) and pages
    // we registered with it; `asm!` without `nomem` makes the compiler re-read memory.
    unsafe {
        asm!(
            "hvc #0xEA1",
            inlateout("x0") args[0] => r0,
            inlateout("x1") args[1] => _,
            inlateout("x2") args[2] => _,
            inlateout("x3") args[3] => _,
            inlateout("x4") args[4] => _,
            in("x16") number,
            options(nostack),
        );
    }
    r0
}
