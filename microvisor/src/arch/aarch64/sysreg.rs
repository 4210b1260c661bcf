//! System-register accessors. Reads are safe (they have no side effects on the registers we
//! read); writes to registers that shape EL2's own execution are `unsafe fn`s whose callers
//! state why the value is right. Writes to EL1/EL0 or virtual-interface state only affect the
//! guest about to run and are safe.

/// Defines `read_<name>()` for a system register.
macro_rules! read_sysreg {
    ($fn:ident, $reg:literal) => {
        #[doc = concat!("Reads `", $reg, "`.")]
        #[inline(always)]
        pub fn $fn() -> u64 {
            let v: u64;
            // SAFETY: reading this system register at EL2 has no side effects and touches no
            // memory.
            unsafe { core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags)) };
            v
        }
    };
}

/// Defines a safe `write_<name>(v)` for a register that only affects guest (EL1/EL0) state.
macro_rules! write_guest_sysreg {
    ($fn:ident, $reg:literal) => {
        #[doc = concat!("Writes `", $reg, "` (guest-visible state only).")]
        #[inline(always)]
        pub fn $fn(v: u64) {
            // SAFETY: this register shapes only the execution of the lower ELs, which run
            // guest code under stage 2; no value can affect EL2's memory safety.
            unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nomem, nostack, preserves_flags)) };
        }
    };
}

/// Defines both for a guest-state register.
macro_rules! guest_sysreg {
    ($read:ident, $write:ident, $reg:literal) => {
        read_sysreg!($read, $reg);
        write_guest_sysreg!($write, $reg);
    };
}

// Identification and EL2 state (read-only here; writes live where their contract is).
read_sysreg!(read_mpidr_el1, "mpidr_el1");
read_sysreg!(read_midr_el1, "midr_el1");
read_sysreg!(read_currentel, "CurrentEL");
read_sysreg!(read_esr_el2, "esr_el2");
read_sysreg!(read_far_el2, "far_el2");
read_sysreg!(read_hpfar_el2, "hpfar_el2");
read_sysreg!(read_elr_el2, "elr_el2");
read_sysreg!(read_cntfrq_el0, "cntfrq_el0");
read_sysreg!(read_cntpct_el0, "cntpct_el0");
read_sysreg!(read_ich_vtr_el2, "ich_vtr_el2");
read_sysreg!(read_ich_eisr_el2, "ich_eisr_el2");
read_sysreg!(read_ich_misr_el2, "ich_misr_el2");
read_sysreg!(read_id_aa64mmfr0_el1, "id_aa64mmfr0_el1");
read_sysreg!(read_id_aa64dfr0_el1, "id_aa64dfr0_el1");
read_sysreg!(read_ctr_el0, "ctr_el0");

// Guest EL1/EL0 context.
guest_sysreg!(read_sctlr_el1, write_sctlr_el1, "sctlr_el1");
guest_sysreg!(read_cpacr_el1, write_cpacr_el1, "cpacr_el1");
guest_sysreg!(read_ttbr0_el1, write_ttbr0_el1, "ttbr0_el1");
guest_sysreg!(read_ttbr1_el1, write_ttbr1_el1, "ttbr1_el1");
guest_sysreg!(read_tcr_el1, write_tcr_el1, "tcr_el1");
guest_sysreg!(read_esr_el1, write_esr_el1, "esr_el1");
guest_sysreg!(read_afsr0_el1, write_afsr0_el1, "afsr0_el1");
guest_sysreg!(read_afsr1_el1, write_afsr1_el1, "afsr1_el1");
guest_sysreg!(read_far_el1, write_far_el1, "far_el1");
guest_sysreg!(read_mair_el1, write_mair_el1, "mair_el1");
guest_sysreg!(read_amair_el1, write_amair_el1, "amair_el1");
guest_sysreg!(read_vbar_el1, write_vbar_el1, "vbar_el1");
guest_sysreg!(read_contextidr_el1, write_contextidr_el1, "contextidr_el1");
guest_sysreg!(read_cntkctl_el1, write_cntkctl_el1, "cntkctl_el1");
guest_sysreg!(read_par_el1, write_par_el1, "par_el1");
guest_sysreg!(read_tpidr_el1, write_tpidr_el1, "tpidr_el1");
guest_sysreg!(read_sp_el1, write_sp_el1, "sp_el1");
guest_sysreg!(read_elr_el1, write_elr_el1, "elr_el1");
guest_sysreg!(read_spsr_el1, write_spsr_el1, "spsr_el1");
guest_sysreg!(read_sp_el0, write_sp_el0, "sp_el0");
guest_sysreg!(read_tpidr_el0, write_tpidr_el0, "tpidr_el0");
guest_sysreg!(read_tpidrro_el0, write_tpidrro_el0, "tpidrro_el0");
guest_sysreg!(read_csselr_el1, write_csselr_el1, "csselr_el1");
guest_sysreg!(read_mdscr_el1, write_mdscr_el1, "mdscr_el1");
guest_sysreg!(read_actlr_el1, write_actlr_el1, "actlr_el1");
guest_sysreg!(read_vmpidr_el2, write_vmpidr_el2, "vmpidr_el2");
guest_sysreg!(read_vpidr_el2, write_vpidr_el2, "vpidr_el2");
guest_sysreg!(read_cntv_ctl_el0, write_cntv_ctl_el0, "cntv_ctl_el0");
guest_sysreg!(read_cntv_cval_el0, write_cntv_cval_el0, "cntv_cval_el0");
guest_sysreg!(read_ich_vmcr_el2, write_ich_vmcr_el2, "ich_vmcr_el2");
guest_sysreg!(read_ich_ap0r0_el2, write_ich_ap0r0_el2, "ich_ap0r0_el2");
guest_sysreg!(read_ich_ap1r0_el2, write_ich_ap1r0_el2, "ich_ap1r0_el2");

// The PMU: a domain given it owns these (saved and restored by `monitors`); writing them
// changes what the counters count, never what EL2 executes or touches.
guest_sysreg!(read_pmcr_el0, write_pmcr_el0, "pmcr_el0");
guest_sysreg!(read_pmcntenset_el0, write_pmcntenset_el0, "pmcntenset_el0");
write_guest_sysreg!(write_pmcntenclr_el0, "pmcntenclr_el0");
guest_sysreg!(read_pmintenset_el1, write_pmintenset_el1, "pmintenset_el1");
write_guest_sysreg!(write_pmintenclr_el1, "pmintenclr_el1");
guest_sysreg!(read_pmovsset_el0, write_pmovsset_el0, "pmovsset_el0");
write_guest_sysreg!(write_pmovsclr_el0, "pmovsclr_el0");
guest_sysreg!(read_pmselr_el0, write_pmselr_el0, "pmselr_el0");
guest_sysreg!(read_pmuserenr_el0, write_pmuserenr_el0, "pmuserenr_el0");
guest_sysreg!(read_pmccntr_el0, write_pmccntr_el0, "pmccntr_el0");
guest_sysreg!(read_pmccfiltr_el0, write_pmccfiltr_el0, "pmccfiltr_el0");
guest_sysreg!(read_pmxevcntr_el0, write_pmxevcntr_el0, "pmxevcntr_el0");
guest_sysreg!(read_pmxevtyper_el0, write_pmxevtyper_el0, "pmxevtyper_el0");
// The OS lock: cleared once at boot so that a guest's software step works (its own
// accesses are trapped and emulated, see `crate::debugregs`).
write_guest_sysreg!(write_oslar_el1, "oslar_el1");

/// Disarms hardware breakpoint `n` (`DBGBCR<n>_EL1` = 0); `n` must be below
/// `ID_AA64DFR0_EL1.BRPs + 1` (a missing one is undefined at EL2), larger `n` are ignored.
pub fn disarm_breakpoint(n: usize) {
    macro_rules! wr {
        ($($i:literal),*) => {
            match n {
                $($i => {
                    // SAFETY: clearing a breakpoint's control register only disarms it; the
                    // caller checked that it exists.
                    unsafe { core::arch::asm!(concat!("msr dbgbcr", stringify!($i), "_el1, xzr"), options(nomem, nostack, preserves_flags)) }
                })*
                _ => {}
            }
        };
    }
    wr!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// Disarms hardware watchpoint `n` (`DBGWCR<n>_EL1` = 0), as [`disarm_breakpoint`].
pub fn disarm_watchpoint(n: usize) {
    macro_rules! wr {
        ($($i:literal),*) => {
            match n {
                $($i => {
                    // SAFETY: clearing a watchpoint's control register only disarms it; the
                    // caller checked that it exists.
                    unsafe { core::arch::asm!(concat!("msr dbgwcr", stringify!($i), "_el1, xzr"), options(nomem, nostack, preserves_flags)) }
                })*
                _ => {}
            }
        };
    }
    wr!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// Reads list register `n` (0..16).
pub fn read_ich_lr(n: usize) -> u64 {
    macro_rules! rd {
        ($($i:literal),*) => {
            match n {
                $($i => { let v: u64;
                    // SAFETY: reading a list register has no side effects.
                    unsafe { core::arch::asm!(concat!("mrs {}, ich_lr", stringify!($i), "_el2"), out(reg) v, options(nomem, nostack)) };
                    v })*
                _ => 0,
            }
        };
    }
    rd!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// Writes list register `n` (0..16); out-of-range `n` is ignored.
pub fn write_ich_lr(n: usize, v: u64) {
    macro_rules! wr {
        ($($i:literal),*) => {
            match n {
                $($i => {
                    // SAFETY: a list register describes a virtual interrupt for the guest;
                    // it cannot affect EL2.
                    unsafe { core::arch::asm!(concat!("msr ich_lr", stringify!($i), "_el2, {}"), in(reg) v, options(nomem, nostack)) }
                })*
                _ => {}
            }
        };
    }
    wr!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
}

/// Defines an `unsafe fn` writer for a register that shapes EL2 itself.
macro_rules! write_el2_sysreg {
    ($fn:ident, $reg:literal, $contract:literal) => {
        #[doc = concat!("Writes `", $reg, "`.")]
        ///
        /// # Safety
        #[doc = $contract]
        #[inline(always)]
        pub unsafe fn $fn(v: u64) {
            // SAFETY: the caller upholds this function's contract.
            unsafe { core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nostack, preserves_flags)) };
        }
    };
}

write_el2_sysreg!(write_hcr_el2, "hcr_el2", "The value must keep EL2 in control: IMO/FMO routing and stage 2 must be consistent with the vCPU about to run.");
read_sysreg!(read_vttbr_el2, "vttbr_el2");
read_sysreg!(read_mdcr_el2, "mdcr_el2");
write_el2_sysreg!(write_vttbr_el2, "vttbr_el2", "The base must point to a valid stage-2 table that maps only memory owned by the vCPU's domain.");
write_el2_sysreg!(
    write_vtcr_el2,
    "vtcr_el2",
    "Must describe the format of every stage-2 table installed afterwards."
);
write_el2_sysreg!(
    write_mdcr_el2,
    "mdcr_el2",
    "Must keep the debug traps (TDA, TDOSA, TDRA) set and TDE clear, and leave the PMU untrapped (TPM, TPMCR clear) only for a vCPU whose domain was given it."
);
write_el2_sysreg!(
    write_cnthctl_el2,
    "cnthctl_el2",
    "Must keep EL1 physical-timer accesses trapped unless the guest owns the physical timer."
);
write_el2_sysreg!(
    write_cntvoff_el2,
    "cntvoff_el2",
    "Any value is memory-safe; it changes the guest's view of time."
);
write_el2_sysreg!(
    write_cnthp_ctl_el2,
    "cnthp_ctl_el2",
    "Any value is memory-safe; the caller must handle the interrupt it enables."
);
write_el2_sysreg!(
    write_cnthp_cval_el2,
    "cnthp_cval_el2",
    "Any value is memory-safe."
);
write_el2_sysreg!(
    write_ich_hcr_el2,
    "ich_hcr_el2",
    "Must enable the virtual CPU interface only with list registers in a consistent state."
);
write_el2_sysreg!(
    write_icc_sre_el2,
    "icc_sre_el2",
    "Must keep the system-register interface enabled once the GIC driver relies on it."
);
write_el2_sysreg!(
    write_icc_pmr_el1,
    "icc_pmr_el1",
    "Any priority mask; the caller accepts which interrupts it lets through."
);
write_el2_sysreg!(
    write_icc_igrpen1_el1,
    "icc_igrpen1_el1",
    "Enables group-1 interrupts at this CPU; the caller must be ready to take them."
);
write_el2_sysreg!(
    write_icc_ctlr_el1,
    "icc_ctlr_el1",
    "EOI mode must match how the caller deactivates interrupts."
);
write_el2_sysreg!(
    write_icc_eoir1_el1,
    "icc_eoir1_el1",
    "Must name an interrupt this CPU acknowledged and has not yet EOIed."
);
write_el2_sysreg!(
    write_icc_dir_el1,
    "icc_dir_el1",
    "Must name an interrupt this CPU acknowledged (or an inactive one)."
);
write_el2_sysreg!(
    write_icc_sgi1r_el1,
    "icc_sgi1r_el1",
    "Sends an SGI; the targets must expect it."
);
write_el2_sysreg!(
    write_vbar_el2,
    "vbar_el2",
    "Must point to a valid, 2 KiB-aligned EL2 vector table."
);
write_el2_sysreg!(
    write_mair_el2,
    "mair_el2",
    "Must match the attribute indices used in the EL2 tables."
);
write_el2_sysreg!(
    write_tcr_el2,
    "tcr_el2",
    "Must describe the EL2 stage-1 tables."
);
write_el2_sysreg!(
    write_ttbr0_el2,
    "ttbr0_el2",
    "Must point to valid EL2 tables that identity-map the microvisor."
);
write_el2_sysreg!(
    write_sctlr_el2,
    "sctlr_el2",
    "Turning on the MMU requires valid tables that identity-map the running code."
);
write_el2_sysreg!(
    write_cptr_el2,
    "cptr_el2",
    "Trap configuration for FP/SIMD; must match whether FP state is switched."
);

/// Acknowledges the highest-priority pending group-1 interrupt (`ICC_IAR1_EL1`).
pub fn icc_ack() -> u32 {
    let v: u64;
    // SAFETY: acknowledging changes only GIC state the caller then owns (it must EOI).
    unsafe { core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) v, options(nomem, nostack)) };
    v as u32
}

/// Reads the ID register `S3_0_C0_C<crm>_<op2>` (`crm` 1..=7), or 0 for anything else.
pub fn read_id_group3(crm: u8, op2: u8) -> u64 {
    macro_rules! id_regs {
        ($( ($m:literal, $o:literal) ),* $(,)?) => {
            match (crm, op2) {
                $( ($m, $o) => {
                    let v: u64;
                    // SAFETY: reading an ID register has no side effects.
                    unsafe {
                        core::arch::asm!(
                            concat!("mrs {}, S3_0_C0_C", $m, "_", $o),
                            out(reg) v,
                            options(nomem, nostack, preserves_flags)
                        )
                    };
                    v
                } )*
                _ => 0,
            }
        };
    }
    id_regs!(
        (1, 0),
        (1, 1),
        (1, 2),
        (1, 3),
        (1, 4),
        (1, 5),
        (1, 6),
        (1, 7),
        (2, 0),
        (2, 1),
        (2, 2),
        (2, 3),
        (2, 4),
        (2, 5),
        (2, 6),
        (2, 7),
        (3, 0),
        (3, 1),
        (3, 2),
        (3, 3),
        (3, 4),
        (3, 5),
        (3, 6),
        (3, 7),
        (4, 0),
        (4, 1),
        (4, 2),
        (4, 3),
        (4, 4),
        (4, 5),
        (4, 6),
        (4, 7),
        (5, 0),
        (5, 1),
        (5, 2),
        (5, 3),
        (5, 4),
        (5, 5),
        (5, 6),
        (5, 7),
        (6, 0),
        (6, 1),
        (6, 2),
        (6, 3),
        (6, 4),
        (6, 5),
        (6, 6),
        (6, 7),
        (7, 0),
        (7, 1),
        (7, 2),
        (7, 3),
        (7, 4),
        (7, 5),
        (7, 6),
        (7, 7),
    )
}
