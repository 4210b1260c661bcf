//! The performance monitors (PMU) as guests see them: which trapped system registers
//! belong to the PMU, and the `MDCR_EL2` a vCPU runs with.
//!
//! A domain gets the PMU only if its system entry says so ([`PmuAccess`]). Without it,
//! `MDCR_EL2.TPM`/`TPMCR` trap every PMU register access to EL2, which answers with an
//! Undefined Instruction exception, and `ID_AA64DFR0_EL1.PMUVer` reads 0
//! ([`crate::idregs`]). With it, the counters are the hardware's, saved and restored with
//! the vCPU (`arch::aarch64::monitors`), and `HPMD` (and `HCCD` where the CPU has
//! FEAT_PMUv3p5) keeps them from counting the microvisor unless the domain has
//! [`PmuAccess::El2`]. Every vCPU runs with the debug traps on (`TDA`, `TDOSA`, `TDRA`,
//! see [`crate::debugregs`]). `HPMN` hands the guest every counter the CPU has: EL2 itself
//! counts nothing.
#![forbid(unsafe_code)]

use crate::trap::SysReg;
use protocol::control::PmuAccess;

/// `MDCR_EL2` fields (ARM ARM D19.2 MDCR_EL2).
pub mod mdcr {
    /// Event counters accessible below EL2 (`HPMN`, bits [4:0]).
    pub const HPMN_MASK: u64 = 0x1f;
    /// Trap `PMCR_EL0` accesses.
    pub const TPMCR: u64 = 1 << 5;
    /// Trap every PMU register access.
    pub const TPM: u64 = 1 << 6;
    /// Trap debug register accesses (breakpoints, watchpoints, `MDSCR_EL1`, DCC, claim tags).
    pub const TDA: u64 = 1 << 9;
    /// Trap the OS lock and power-down registers (`OSLAR`, `OSLSR`, `OSDLR`, `DBGPRCR`).
    pub const TDOSA: u64 = 1 << 10;
    /// Trap `MDRAR_EL1` (the memory-mapped debug ROM address).
    pub const TDRA: u64 = 1 << 11;
    /// Event counters do not count at EL2 (FEAT_PMUv3p1).
    pub const HPMD: u64 = 1 << 17;
    /// The cycle counter does not count at EL2 (FEAT_PMUv3p5).
    pub const HCCD: u64 = 1 << 23;
    /// The debug traps every vCPU runs with.
    pub const DEBUG_TRAPS: u64 = TDA | TDOSA | TDRA;
}

/// `ID_AA64DFR0_EL1.PMUVer` values.
mod pmuver {
    /// FEAT_PMUv3p1: `MDCR_EL2.HPMD`.
    pub const V3P1: u64 = 4;
    /// FEAT_PMUv3p5: `MDCR_EL2.HCCD`.
    pub const V3P5: u64 = 6;
    /// An IMPLEMENTATION DEFINED PMU, not the architected one.
    pub const IMPDEF: u64 = 0xf;
}

/// What the CPU's PMU can do, read once at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmuHw {
    /// An architected PMU exists (its registers may be accessed at all).
    pub present: bool,
    /// Event counters (`PMCR_EL0.N`).
    pub counters: u8,
    /// `MDCR_EL2.HPMD` exists.
    pub hpmd: bool,
    /// `MDCR_EL2.HCCD` exists.
    pub hccd: bool,
}

impl PmuHw {
    /// From `ID_AA64DFR0_EL1` and `PMCR_EL0` as EL2 reads them (`pmcr` is ignored, and
    /// need not be read, when `dfr0` says there is no architected PMU).
    pub const fn from_regs(dfr0: u64, pmcr: u64) -> Self {
        let ver = (dfr0 >> 8) & 0xf;
        let architected = ver != 0 && ver != pmuver::IMPDEF;
        Self {
            present: architected,
            counters: if architected {
                ((pmcr >> 11) & mdcr::HPMN_MASK) as u8
            } else {
                0
            },
            hpmd: architected && ver >= pmuver::V3P1,
            hccd: architected && ver >= pmuver::V3P5,
        }
    }
}

/// The `MDCR_EL2` a vCPU of a domain with `access` runs with on a CPU with `hw`.
pub const fn mdcr_el2(access: PmuAccess, hw: PmuHw) -> u64 {
    let hpmn = hw.counters as u64 & mdcr::HPMN_MASK;
    let no_el2 = if hw.hpmd { mdcr::HPMD } else { 0 } | if hw.hccd { mdcr::HCCD } else { 0 };
    let pmu = match access {
        PmuAccess::Off => mdcr::TPM | mdcr::TPMCR | no_el2,
        PmuAccess::Guest => no_el2,
        PmuAccess::El2 => 0,
    };
    mdcr::DEBUG_TRAPS | pmu | hpmn
}

/// Whether `r` is a PMU register (op0 3): what `MDCR_EL2.TPM` traps.
pub const fn is_pmu_register(r: SysReg) -> bool {
    if r.op0 != 3 {
        return false;
    }
    match (r.op1, r.crn, r.crm) {
        // PMCR, PMCNTEN{SET,CLR}, PMOVSCLR, PMSWINC, PMSELR, PMCEID0/1 (CRm 12);
        // PMCCNTR, PMXEVTYPER, PMXEVCNTR (CRm 13); PMUSERENR, PMOVSSET (CRm 14).
        (3, 9, 12..=14) => true,
        // PMINTEN{SET,CLR}_EL1, PMMIR_EL1.
        (0, 9, 14) => true,
        // PMEVCNTR<n>_EL0 (CRm 8..=11), PMEVTYPER<n>_EL0 and PMCCFILTR_EL0 (CRm 12..=15).
        (3, 14, 8..=15) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `-cpu max` on QEMU 7.2: PMUv3p5 with 6 event counters (PMCR.N = 6 at [15:11]).
    const MAX: PmuHw = PmuHw::from_regs(6 << 8, 6 << 11);

    #[test]
    fn hardware_is_read_from_dfr0_and_pmcr() {
        assert_eq!(
            MAX,
            PmuHw {
                present: true,
                counters: 6,
                hpmd: true,
                hccd: true
            }
        );
        let v3 = PmuHw::from_regs(1 << 8, 4 << 11);
        assert_eq!((v3.counters, v3.hpmd, v3.hccd), (4, false, false));
        let v3p4 = PmuHw::from_regs(5 << 8, 31 << 11);
        assert_eq!((v3p4.counters, v3p4.hpmd, v3p4.hccd), (31, true, false));
        for none in [0, 0xf << 8] {
            let hw = PmuHw::from_regs(none, u64::MAX);
            assert_eq!((hw.counters, hw.hpmd, hw.hccd), (0, false, false));
            assert!(!hw.present);
        }
    }

    #[test]
    fn off_traps_the_pmu_and_hides_el2() {
        let v = mdcr_el2(PmuAccess::Off, MAX);
        assert_eq!(v & mdcr::HPMN_MASK, 6, "HPMN: every counter");
        for (bit, name) in [
            (mdcr::TPM, "TPM"),
            (mdcr::TPMCR, "TPMCR"),
            (mdcr::HPMD, "HPMD"),
            (mdcr::HCCD, "HCCD"),
            (mdcr::TDA, "TDA"),
            (mdcr::TDOSA, "TDOSA"),
            (mdcr::TDRA, "TDRA"),
        ] {
            assert_ne!(v & bit, 0, "{name}");
        }
    }

    #[test]
    fn guest_counts_only_itself_and_el2_counts_everything() {
        let guest = mdcr_el2(PmuAccess::Guest, MAX);
        assert_eq!(guest & (mdcr::TPM | mdcr::TPMCR), 0, "PMU not trapped");
        assert_eq!(guest & (mdcr::HPMD | mdcr::HCCD), mdcr::HPMD | mdcr::HCCD);
        assert_eq!(guest & mdcr::DEBUG_TRAPS, mdcr::DEBUG_TRAPS);
        let el2 = mdcr_el2(PmuAccess::El2, MAX);
        assert_eq!(
            el2,
            mdcr::DEBUG_TRAPS | 6,
            "EL2 counted, debug still trapped"
        );
    }

    #[test]
    fn res0_bits_stay_clear_on_older_pmus() {
        let v3 = PmuHw::from_regs(1 << 8, 4 << 11);
        let v = mdcr_el2(PmuAccess::Guest, v3);
        assert_eq!(v & (mdcr::HPMD | mdcr::HCCD), 0);
        let v3p1 = PmuHw::from_regs(4 << 8, 4 << 11);
        assert_eq!(mdcr_el2(PmuAccess::Off, v3p1) & mdcr::HCCD, 0);
        assert_ne!(mdcr_el2(PmuAccess::Off, v3p1) & mdcr::HPMD, 0);
    }

    #[test]
    fn pmu_register_encodings() {
        let pmu = [
            ("PMCR_EL0", SysReg::new(3, 3, 9, 12, 0)),
            ("PMCNTENSET_EL0", SysReg::new(3, 3, 9, 12, 1)),
            ("PMSELR_EL0", SysReg::new(3, 3, 9, 12, 5)),
            ("PMCEID1_EL0", SysReg::new(3, 3, 9, 12, 7)),
            ("PMCCNTR_EL0", SysReg::new(3, 3, 9, 13, 0)),
            ("PMXEVCNTR_EL0", SysReg::new(3, 3, 9, 13, 2)),
            ("PMUSERENR_EL0", SysReg::new(3, 3, 9, 14, 0)),
            ("PMOVSSET_EL0", SysReg::new(3, 3, 9, 14, 3)),
            ("PMINTENSET_EL1", SysReg::new(3, 0, 9, 14, 1)),
            ("PMINTENCLR_EL1", SysReg::new(3, 0, 9, 14, 2)),
            ("PMEVCNTR0_EL0", SysReg::new(3, 3, 14, 8, 0)),
            ("PMEVCNTR30_EL0", SysReg::new(3, 3, 14, 11, 6)),
            ("PMEVTYPER0_EL0", SysReg::new(3, 3, 14, 12, 0)),
            ("PMCCFILTR_EL0", SysReg::new(3, 3, 14, 15, 7)),
        ];
        for (name, r) in pmu {
            assert!(is_pmu_register(r), "{name}");
        }
        let other = [
            ("CNTV_CTL_EL0", SysReg::new(3, 3, 14, 3, 1)),
            ("CNTP_CVAL_EL0", SysReg::new(3, 3, 14, 2, 2)),
            ("CNTKCTL_EL1", SysReg::new(3, 0, 14, 1, 0)),
            ("MAIR_EL1", SysReg::new(3, 0, 10, 2, 0)),
            ("PMSCR_EL1 (SPE)", SysReg::new(3, 0, 9, 9, 0)),
            ("MDSCR_EL1", SysReg::new(2, 0, 0, 2, 2)),
            ("TPIDR_EL0", SysReg::new(3, 3, 13, 0, 2)),
        ];
        for (name, r) in other {
            assert!(!is_pmu_register(r), "{name}");
        }
    }
}
