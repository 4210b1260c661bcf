//! Per-vCPU hardware context: general registers, EL1 system registers, the virtual timer and
//! the GIC virtual CPU interface. Saved when a vCPU leaves a CPU and restored when it comes
//! back; a vCPU that stays on its CPU (pinned exclusive) is never switched.

use super::sysreg::*;

/// General-purpose registers, PC and PSTATE. Layout is fixed by `vectors.rs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestRegs {
    /// x0..x30.
    pub x: [u64; 31],
    /// Guest PC (`ELR_EL2`).
    pub pc: u64,
    /// Guest PSTATE (`SPSR_EL2`).
    pub pstate: u64,
}

// A vCPU switch copies the 264 bytes of general registers out of and into the run loop's
// frame. The compiler's copy is a call to the soft `memcpy`, five instructions per register;
// these paired loads and stores take one.
core::arch::global_asm!(
    r#"
    .global guest_regs_copy
guest_regs_copy:
    ldp     x2, x3, [x1, #0]
    stp     x2, x3, [x0, #0]
    ldp     x2, x3, [x1, #16]
    stp     x2, x3, [x0, #16]
    ldp     x2, x3, [x1, #32]
    stp     x2, x3, [x0, #32]
    ldp     x2, x3, [x1, #48]
    stp     x2, x3, [x0, #48]
    ldp     x2, x3, [x1, #64]
    stp     x2, x3, [x0, #64]
    ldp     x2, x3, [x1, #80]
    stp     x2, x3, [x0, #80]
    ldp     x2, x3, [x1, #96]
    stp     x2, x3, [x0, #96]
    ldp     x2, x3, [x1, #112]
    stp     x2, x3, [x0, #112]
    ldp     x2, x3, [x1, #128]
    stp     x2, x3, [x0, #128]
    ldp     x2, x3, [x1, #144]
    stp     x2, x3, [x0, #144]
    ldp     x2, x3, [x1, #160]
    stp     x2, x3, [x0, #160]
    ldp     x2, x3, [x1, #176]
    stp     x2, x3, [x0, #176]
    ldp     x2, x3, [x1, #192]
    stp     x2, x3, [x0, #192]
    ldp     x2, x3, [x1, #208]
    stp     x2, x3, [x0, #208]
    ldp     x2, x3, [x1, #224]
    stp     x2, x3, [x0, #224]
    ldp     x2, x3, [x1, #240]
    stp     x2, x3, [x0, #240]
    ldr     x2, [x1, #256]
    str     x2, [x0, #256]
    ret
"#
);

unsafe extern "C" {
    fn guest_regs_copy(dst: *mut GuestRegs, src: *const GuestRegs);
}

// The asm above hard-codes the size.
const _: () = assert!(core::mem::size_of::<GuestRegs>() == 264);

impl GuestRegs {
    /// `*self = *src`, in paired loads and stores (see `guest_regs_copy`).
    #[inline(always)]
    pub fn copy_from(&mut self, src: &Self) {
        // SAFETY: reads exactly `size_of::<GuestRegs>()` bytes from `src` and writes as many
        // to `self`; distinct references cannot overlap, and the routine touches only x2/x3,
        // which the C ABI lets it clobber.
        unsafe { guest_regs_copy(self, src) };
    }

    /// Steps the PC back over the HVC that trapped (its ELR points after the instruction),
    /// so the guest executes it again or takes an exception at it.
    pub fn rewind_hvc(&mut self) {
        self.pc = self.pc.wrapping_sub(4);
    }
}

/// PSTATE of a vCPU at reset: EL1h, D/A/I/F masked.
pub const PSTATE_EL1H_MASKED: u64 = 0x3c5;
/// `SCTLR_EL1` at reset: MMU and caches off, RES1 bits set.
pub const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

/// EL1/EL0 system registers a guest owns.
#[allow(missing_docs)] // Field names are the architectural register names.
#[derive(Clone, Copy, Debug, Default)]
pub struct El1Context {
    pub sctlr: u64,
    pub cpacr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub tcr: u64,
    pub esr: u64,
    pub afsr0: u64,
    pub afsr1: u64,
    pub far: u64,
    pub mair: u64,
    pub amair: u64,
    pub vbar: u64,
    pub contextidr: u64,
    pub cntkctl: u64,
    pub par: u64,
    pub tpidr_el1: u64,
    pub sp_el1: u64,
    pub elr_el1: u64,
    pub spsr_el1: u64,
    pub sp_el0: u64,
    pub tpidr_el0: u64,
    pub tpidrro_el0: u64,
    pub csselr: u64,
    pub mdscr: u64,
    /// Implementation-defined EL1 controls: a guest may write them (HCR_EL2.TACR is
    /// clear), so the next domain on this CPU must not inherit them.
    pub actlr: u64,
    pub vmpidr: u64,
    pub cntv_ctl: u64,
    pub cntv_cval: u64,
}

impl El1Context {
    /// State of a freshly reset vCPU with the given `MPIDR_EL1` value.
    pub fn reset(vmpidr: u64) -> Self {
        Self {
            sctlr: SCTLR_EL1_RESET,
            vmpidr,
            ..Self::default()
        }
    }

    /// Captures the registers of the vCPU that just ran on this CPU.
    pub fn save(&mut self) {
        self.sctlr = read_sctlr_el1();
        self.cpacr = read_cpacr_el1();
        self.ttbr0 = read_ttbr0_el1();
        self.ttbr1 = read_ttbr1_el1();
        self.tcr = read_tcr_el1();
        self.esr = read_esr_el1();
        self.afsr0 = read_afsr0_el1();
        self.afsr1 = read_afsr1_el1();
        self.far = read_far_el1();
        self.mair = read_mair_el1();
        self.amair = read_amair_el1();
        self.vbar = read_vbar_el1();
        self.contextidr = read_contextidr_el1();
        self.cntkctl = read_cntkctl_el1();
        self.par = read_par_el1();
        self.tpidr_el1 = read_tpidr_el1();
        self.sp_el1 = read_sp_el1();
        self.elr_el1 = read_elr_el1();
        self.spsr_el1 = read_spsr_el1();
        self.sp_el0 = read_sp_el0();
        self.tpidr_el0 = read_tpidr_el0();
        self.tpidrro_el0 = read_tpidrro_el0();
        self.csselr = read_csselr_el1();
        self.mdscr = read_mdscr_el1();
        self.actlr = read_actlr_el1();
        self.vmpidr = read_vmpidr_el2();
        self.cntv_ctl = read_cntv_ctl_el0();
        self.cntv_cval = read_cntv_cval_el0();
        // Stop this vCPU's timer from firing while another vCPU owns the CPU.
        write_cntv_ctl_el0(0);
    }

    /// Loads the registers of the vCPU about to run on this CPU.
    pub fn restore(&self) {
        write_sctlr_el1(self.sctlr);
        write_cpacr_el1(self.cpacr);
        write_ttbr0_el1(self.ttbr0);
        write_ttbr1_el1(self.ttbr1);
        write_tcr_el1(self.tcr);
        write_esr_el1(self.esr);
        write_afsr0_el1(self.afsr0);
        write_afsr1_el1(self.afsr1);
        write_far_el1(self.far);
        write_mair_el1(self.mair);
        write_amair_el1(self.amair);
        write_vbar_el1(self.vbar);
        write_contextidr_el1(self.contextidr);
        write_cntkctl_el1(self.cntkctl);
        write_par_el1(self.par);
        write_tpidr_el1(self.tpidr_el1);
        write_sp_el1(self.sp_el1);
        write_elr_el1(self.elr_el1);
        write_spsr_el1(self.spsr_el1);
        write_sp_el0(self.sp_el0);
        write_tpidr_el0(self.tpidr_el0);
        write_tpidrro_el0(self.tpidrro_el0);
        write_csselr_el1(self.csselr);
        write_mdscr_el1(self.mdscr);
        write_actlr_el1(self.actlr);
        write_vmpidr_el2(self.vmpidr);
        write_cntv_cval_el0(self.cntv_cval);
        write_cntv_ctl_el0(self.cntv_ctl);
    }
}

/// Most list registers the architecture allows.
pub const MAX_LRS: usize = 16;

/// The GIC virtual CPU interface state of one vCPU, in the GICv3 layout on both versions
/// (`GICH_VMCR` has `ICH_VMCR_EL2`'s layout for the enables, EOI mode, binary points and
/// the priority mask's implemented top five bits).
#[derive(Clone, Copy, Debug, Default)]
pub struct VgicHwState {
    /// `ICH_VMCR_EL2` / `GICH_VMCR`: the guest's priority mask, group enables, EOI mode.
    pub vmcr: u64,
    /// `ICH_AP0R0_EL2` / `GICH_APR` (a GICv2 has one active-priorities register).
    pub ap0r0: u64,
    /// `ICH_AP1R0_EL2` (unused on a GICv2).
    pub ap1r0: u64,
}

impl VgicHwState {
    /// Captures the interface state (not the LRs, which the run loop syncs on every exit).
    pub fn save(&mut self) {
        super::gic::save_hw(self);
    }
    /// Loads the interface state.
    pub fn restore(&self) {
        super::gic::restore_hw(self);
    }
}
