//! Decodes a synchronous exception from a lower EL, once, into a typed [`Exit`].
//!
//! [`decode`] is the only place that takes `ESR_EL2`, `FAR_EL2` and `HPFAR_EL2` apart
//! (ARM ARM D24.2.41 ESR_ELx); handlers match on [`Exit`] and never shift syndrome bits.
//!
//! Advancing the guest PC is the caller's job and depends on the exit: after an HVC,
//! `ELR_EL2` already points past the instruction; after a trapped SMC, WFI/WFE, system
//! register access or an emulated data abort it points *at* the instruction, which must be
//! skipped by [`esr_il`] bytes (always 4 for an AArch64 guest).
#![forbid(unsafe_code)]

use protocol::addr::{GuestPhysAddr, GuestVirtAddr};

/// Exception classes (ESR_EL2.EC) that [`decode`] understands.
mod ec {
    pub const WFX: u8 = 0x01;
    pub const FP_ACCESS: u8 = 0x07;
    pub const HVC64: u8 = 0x16;
    pub const SMC64: u8 = 0x17;
    pub const SYSREG: u8 = 0x18;
    pub const IABT_LOWER: u8 = 0x20;
    pub const DABT_LOWER: u8 = 0x24;
}

/// Why the guest left, decoded from its syndrome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `HVC #imm` (EC 0x16). `ELR_EL2` already points at the next instruction.
    Hvc {
        /// The instruction's 16-bit immediate.
        imm: u16,
    },
    /// `SMC #imm` trapped by `HCR_EL2.TSC` (EC 0x17). Unlike HVC, `ELR_EL2` points at the
    /// SMC itself: the caller must advance the PC by 4.
    Smc {
        /// The instruction's 16-bit immediate.
        imm: u16,
    },
    /// `WFI` or `WFIT` (EC 0x01, TI = 0 or 2). The caller advances the PC.
    Wfi,
    /// `WFE` or `WFET` (EC 0x01, TI = 1 or 3). The caller advances the PC.
    Wfe,
    /// A trapped `MSR`/`MRS` (EC 0x18). The caller advances the PC.
    SysReg(SysRegAccess),
    /// A stage-2 data abort (EC 0x24). The caller advances the PC by
    /// [`Abort::instr_len`] if it emulates the access.
    DataAbort(Abort),
    /// A stage-2 instruction abort (EC 0x20).
    InstructionAbort(Abort),
    /// An FP/SIMD access trapped by `CPTR_EL2` (EC 0x07).
    FpAccess,
    /// Any other exception class, kept raw for logging.
    Unknown {
        /// ESR_EL2.EC.
        ec: u8,
        /// ESR_EL2.ISS.
        iss: u32,
    },
}

/// A system register's encoding, `(op0, op1, CRn, CRm, op2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SysReg {
    /// op0 (2 bits).
    pub op0: u8,
    /// op1 (3 bits).
    pub op1: u8,
    /// CRn (4 bits).
    pub crn: u8,
    /// CRm (4 bits).
    pub crm: u8,
    /// op2 (3 bits).
    pub op2: u8,
}

impl SysReg {
    /// A register encoding, in the argument order of the ARM ARM's `S<op0>_<op1>_C<n>_C<m>_<op2>`.
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        Self {
            op0,
            op1,
            crn,
            crm,
            op2,
        }
    }

    /// The encoding packed as in the ISS (`op0:op2:op1:CRn:CRm` at their ISS bit positions,
    /// Rt and direction zero), for use as a map key or in logs.
    pub const fn id(self) -> u32 {
        ((self.op0 as u32) << 20)
            | ((self.op2 as u32) << 17)
            | ((self.op1 as u32) << 14)
            | ((self.crn as u32) << 10)
            | ((self.crm as u32) << 1)
    }
}

/// `ICC_SGI1R_EL1`: generate a Group 1 SGI for the current security state.
pub const ICC_SGI1R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 5);
/// `ICC_ASGI1R_EL1`: generate a Group 1 SGI for the other security state.
pub const ICC_ASGI1R_EL1: SysReg = SysReg::new(3, 1, 12, 11, 6);
/// `ICC_SGI0R_EL1`: generate a Group 0 SGI.
pub const ICC_SGI0R_EL1: SysReg = SysReg::new(3, 2, 12, 11, 7);
/// `CNTP_CTL_EL0`: EL1 physical timer control.
pub const CNTP_CTL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 1);
/// `CNTP_CVAL_EL0`: EL1 physical timer compare value.
pub const CNTP_CVAL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 2);
/// `CNTP_TVAL_EL0`: EL1 physical timer value.
pub const CNTP_TVAL_EL0: SysReg = SysReg::new(3, 3, 14, 2, 0);

/// A trapped `MSR`/`MRS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysRegAccess {
    /// op0.
    pub op0: u8,
    /// op1.
    pub op1: u8,
    /// CRn.
    pub crn: u8,
    /// CRm.
    pub crm: u8,
    /// op2.
    pub op2: u8,
    /// The general-purpose register transferred; 31 means XZR.
    pub rt: u8,
    /// `true` for `MRS` (a read into Rt), `false` for `MSR`.
    pub read: bool,
}

impl SysRegAccess {
    /// Which register was accessed, comparable with the constants in this module.
    pub const fn encoding(&self) -> SysReg {
        SysReg::new(self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

/// A stage-2 abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abort {
    /// The faulting intermediate physical address (HPFAR page plus the FAR page offset).
    /// Meaningful for translation, access-flag and permission faults and for `s1ptw`.
    pub ipa: GuestPhysAddr,
    /// The faulting guest virtual address (FAR_EL2).
    pub far: GuestVirtAddr,
    /// How to emulate the access; `None` when the syndrome is not valid (ISV = 0), e.g. for
    /// load/store pair or writeback forms, which cannot be emulated from the syndrome.
    pub access: Option<MmioAccess>,
    /// The access was a write (WnR). Always `false` for instruction aborts.
    pub write: bool,
    /// The fault happened on the guest's own stage-1 table walk.
    pub s1ptw: bool,
    /// What kind of fault it was.
    pub fault: FaultKind,
    /// Length of the faulting instruction in bytes: 4, or 2 for a T32 instruction (IL).
    pub instr_len: u8,
}

/// An emulatable load or store, from a data abort's valid instruction syndrome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// Access size in bytes: 1, 2, 4 or 8 (SAS).
    pub width: u8,
    /// The transfer register (SRT); 31 means XZR/WZR, i.e. a store of zero or a discarded load.
    pub reg: u8,
    /// A load must sign-extend to the register width (SSE).
    pub sign_extend: bool,
    /// The register is 64-bit Xn rather than 32-bit Wn (SF).
    pub sixty_four: bool,
}

impl MmioAccess {
    /// The value a store writes, from the transfer register's contents `raw` (ignored for
    /// XZR/WZR, which store zero): cut to the access width.
    pub const fn store_value(&self, raw: u64) -> u64 {
        let raw = if self.reg == 31 { 0 } else { raw };
        if self.width >= 8 {
            raw
        } else {
            raw & ((1u64 << (self.width as u32 * 8)) - 1)
        }
    }

    /// What a load of `value` leaves in the transfer register: sign-extended if SSE, cut
    /// to 32 bits for a Wn register.
    pub const fn load_value(&self, value: u64) -> u64 {
        let bits = self.width as u32 * 8;
        let v = if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            (((value << shift) as i64) >> shift) as u64
        } else {
            value
        };
        if self.sixty_four {
            v
        } else {
            v & 0xffff_ffff
        }
    }
}

/// Fault status (DFSC/IFSC) of an abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// No translation at `level` (0b0001LL).
    Translation {
        /// Lookup level 0-3.
        level: u8,
    },
    /// Access flag clear at `level` (0b0010LL).
    AccessFlag {
        /// Lookup level 0-3.
        level: u8,
    },
    /// Permissions denied at `level` (0b0011LL).
    Permission {
        /// Lookup level 0-3.
        level: u8,
    },
    /// Alignment fault (0b100001).
    Alignment,
    /// Synchronous external abort, not on a table walk (0b010000).
    External,
    /// Any other status code, raw.
    Other(u8),
}

impl FaultKind {
    /// Decodes a 6-bit DFSC/IFSC.
    pub const fn from_fsc(fsc: u8) -> Self {
        let level = fsc & 0b11;
        match fsc & 0b11_1111 {
            0b00_0100..=0b00_0111 => Self::Translation { level },
            0b00_1000..=0b00_1011 => Self::AccessFlag { level },
            0b00_1100..=0b00_1111 => Self::Permission { level },
            0b10_0001 => Self::Alignment,
            0b01_0000 => Self::External,
            other => Self::Other(other),
        }
    }
}

/// The exits the per-CPU fast path looks at, told apart without building an [`Exit`]
/// (`decode` agrees: tested).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuickExit {
    /// `HVC #imm`.
    Hvc(u16),
    /// A trapped WFI.
    Wfi,
    /// Anything else.
    Other,
}

/// Classifies `esr` as cheaply as possible for the fast path.
#[inline]
pub const fn quick(esr: u64) -> QuickExit {
    let iss = esr_iss(esr);
    match esr_ec(esr) {
        ec::HVC64 => QuickExit::Hvc(iss as u16),
        ec::WFX if iss & 1 == 0 => QuickExit::Wfi,
        _ => QuickExit::Other,
    }
}

/// If `esr` is a write of `ICC_SGI1R_EL1`, its source register (31: XZR), told apart
/// without building an [`Exit`] (`decode` agrees: tested). Separate from [`quick`] so the
/// hypercall round trip pays nothing for it.
#[inline]
pub const fn sgi1r_write(esr: u64) -> Option<u8> {
    let iss = esr_iss(esr);
    // Direction bit 0 is a write; Rt is bits [9:5].
    if esr_ec(esr) == ec::SYSREG && iss & !(0x1f << 5) == ICC_SGI1R_EL1.id() {
        Some(((iss >> 5) & 0x1f) as u8)
    } else {
        None
    }
}

/// If `esr` is a 32-bit write of a vGICv2's `GICD_SGIR` (a stage-2 data abort with a valid
/// syndrome at that address; `far` and `hpfar` locate it), its source register (31: XZR),
/// told apart without building an [`Exit`] (`decode` agrees: tested). The fast path's
/// GICv2 counterpart of [`sgi1r_write`].
#[inline]
pub const fn sgir_write(esr: u64, far: u64, hpfar: u64) -> Option<u8> {
    const ISV: u32 = 1 << 24;
    const WORD: u32 = 2 << 22;
    const SAS: u32 = 3 << 22;
    const WNR: u32 = 1 << 6;
    let iss = esr_iss(esr);
    if esr_ec(esr) != ec::DABT_LOWER || iss & (ISV | SAS | WNR) != ISV | WORD | WNR {
        return None;
    }
    let ipa = (((hpfar >> 4) & ((1 << 40) - 1)) << 12) | (far & 0xfff);
    if !is_gicd_sgir(ipa) {
        return None;
    }
    Some(((iss >> 16) & 0x1f) as u8)
}

/// If the decoded stage-2 abort `a` is a 32-bit write of a vGICv2's `GICD_SGIR`, its
/// source register (31: XZR): the locked path's counterpart of [`sgir_write`], with which
/// it agrees (tested), so an SGI is sent the same way whichever path the write takes.
pub fn abort_sgir_write(a: &Abort) -> Option<u8> {
    let access = a.access?;
    (a.write && access.width == 4 && is_gicd_sgir(a.ipa.as_u64())).then_some(access.reg)
}

/// Where a vGICv2's `GICD_SGIR` sits in the guest's physical address space.
const GICD_SGIR_IPA: u64 = protocol::layout::GUEST_GICD_BASE.as_u64() + 0xF00;

/// Whether guest physical address `ipa` is a vGICv2's `GICD_SGIR`.
pub const fn is_gicd_sgir(ipa: u64) -> bool {
    ipa == GICD_SGIR_IPA
}

/// ESR_EL2.EC, bits \[31:26\].
pub const fn esr_ec(esr: u64) -> u8 {
    ((esr >> 26) & 0x3f) as u8
}

/// ESR_EL2.ISS, bits \[24:0\].
pub const fn esr_iss(esr: u64) -> u32 {
    (esr & 0x1ff_ffff) as u32
}

/// Bytes to advance the PC past the trapped instruction: 4 if ESR_EL2.IL (bit 25) is set,
/// else 2 (a 16-bit T32 instruction, which an AArch64 guest never has).
pub const fn esr_il(esr: u64) -> u64 {
    if esr & (1 << 25) != 0 {
        4
    } else {
        2
    }
}

/// Decodes a lower-EL synchronous exception from `ESR_EL2`, `FAR_EL2` and `HPFAR_EL2`.
pub fn decode(esr: u64, far: u64, hpfar: u64) -> Exit {
    let iss = esr_iss(esr);
    match esr_ec(esr) {
        ec::HVC64 => Exit::Hvc { imm: iss as u16 },
        ec::SMC64 => Exit::Smc { imm: iss as u16 },
        // TI bit 0 separates WFI from WFE; bit 1 marks the timeout variants (FEAT_WFxT),
        // which a plain WFI/WFE emulation serves correctly, only waking earlier than needed.
        ec::WFX if iss & 1 == 0 => Exit::Wfi,
        ec::WFX => Exit::Wfe,
        ec::SYSREG => Exit::SysReg(SysRegAccess {
            op0: field(iss, 20, 2),
            op2: field(iss, 17, 3),
            op1: field(iss, 14, 3),
            crn: field(iss, 10, 4),
            rt: field(iss, 5, 5),
            crm: field(iss, 1, 4),
            read: iss & 1 != 0,
        }),
        ec::DABT_LOWER => Exit::DataAbort(abort(esr, far, hpfar, true)),
        ec::IABT_LOWER => Exit::InstructionAbort(abort(esr, far, hpfar, false)),
        ec::FP_ACCESS => Exit::FpAccess,
        ec => Exit::Unknown { ec, iss },
    }
}

/// `bits` bits of `iss` starting at `shift`.
const fn field(iss: u32, shift: u32, bits: u32) -> u8 {
    ((iss >> shift) & ((1 << bits) - 1)) as u8
}

/// The faulting IPA of a stage-2 abort: HPFAR_EL2.FIPA (bits [43:4]) holds IPA bits
/// [51:12]; the page offset is FAR's.
pub const fn abort_ipa(far: u64, hpfar: u64) -> u64 {
    (((hpfar >> 4) & ((1 << 40) - 1)) << 12) | (far & 0xfff)
}

fn abort(esr: u64, far: u64, hpfar: u64, data: bool) -> Abort {
    let iss = esr_iss(esr);
    let ipa = abort_ipa(far, hpfar);
    let isv = data && iss & (1 << 24) != 0;
    Abort {
        ipa: GuestPhysAddr::new(ipa),
        far: GuestVirtAddr::new(far),
        access: isv.then(|| MmioAccess {
            width: 1 << field(iss, 22, 2),
            reg: field(iss, 16, 5),
            sign_extend: iss & (1 << 21) != 0,
            sixty_four: iss & (1 << 15) != 0,
        }),
        write: data && iss & (1 << 6) != 0,
        s1ptw: iss & (1 << 7) != 0,
        fault: FaultKind::from_fsc(field(iss, 0, 6)),
        instr_len: esr_il(esr) as u8,
    }
}

#[cfg(test)]
#[path = "trap_tests.rs"]
mod tests;
