//! What guests see of the CPU's feature ID registers.
//!
//! `HCR_EL2.TID3` traps reads of the ID register group (op0 3, op1 0, CRn 0, CRm 1..7) so
//! the microvisor can hide features whose state it does not switch between vCPUs, or whose
//! use would trap to EL2 with nothing to serve it: SVE and SME (register files the
//! microvisor does not save; `CPTR_EL2` traps them), pointer authentication (keys not
//! switched), MTE (tags not switched), the activity monitors, statistical profiling, trace,
//! branch records, MPAM and FEAT_NMI. A stock kernel probing `-cpu max` then runs with the
//! features the microvisor really virtualises. A domain on a virtual GICv2 also reads
//! `ID_AA64PFR0_EL1.GIC` as 0: it has no GIC system-register interface (see
//! [`protocol::layout::GicVersion`]). A domain without the PMU ([`PmuAccess::Off`], see
//! [`crate::pmu`]) reads `ID_AA64DFR0_EL1.PMUVer` and `ID_DFR0_EL1.PerfMon` as 0.

use protocol::control::PmuAccess;
use protocol::layout::GicVersion;

/// A 4-bit ID field: its lowest bit.
#[derive(Clone, Copy, Debug)]
struct Field(u8);

/// Fields that read as zero ("not implemented"), per register `(crm, op2)`.
const HIDDEN: &[((u8, u8), &[Field])] = &[
    // ID_AA64PFR0_EL1: SVE [35:32], MPAM [43:40], AMU [47:44].
    ((4, 0), &[Field(32), Field(40), Field(44)]),
    // ID_AA64PFR1_EL1: MTE [11:8], SME [27:24], RAS_frac [15:12], MPAM_frac [19:16],
    // NMI [39:36], MTE_frac [43:40], MTEX [55:52].
    (
        (4, 1),
        &[
            Field(8),
            Field(12),
            Field(16),
            Field(24),
            Field(36),
            Field(40),
            Field(52),
        ],
    ),
    // ID_AA64DFR0_EL1: TraceVer [7:4], PMSVer [35:32], TraceFilt [43:40], TraceBuffer
    // [47:44], BRBE [55:52].
    (
        (5, 0),
        &[Field(4), Field(32), Field(40), Field(44), Field(52)],
    ),
    // ID_AA64ISAR1_EL1: APA [7:4], API [11:8], GPA [27:24], GPI [31:28].
    ((6, 1), &[Field(4), Field(8), Field(24), Field(28)]),
    // ID_AA64ISAR2_EL1: GPA3 [11:8], APA3 [15:12].
    ((6, 2), &[Field(8), Field(12)]),
];

/// Registers that read as zero entirely: ID_AA64ZFR0_EL1 (SVE) and ID_AA64SMFR0_EL1 (SME).
const ZEROED: &[(u8, u8)] = &[(4, 4), (4, 5)];

/// Whether `(op0, op1, crn, crm)` names the trapped ID register group.
pub const fn is_id_group3(op0: u8, op1: u8, crn: u8, crm: u8) -> bool {
    op0 == 3 && op1 == 0 && crn == 0 && crm >= 1 && crm <= 7
}

/// `ID_AA64PFR0_EL1.GIC` [27:24].
const PFR0_GIC: Field = Field(24);

/// Fields that read as zero for a domain without the PMU: `ID_AA64DFR0_EL1.PMUVer` [11:8]
/// and the AArch32 view's `ID_DFR0_EL1.PerfMon` [27:24].
const PMU_FIELDS: &[((u8, u8), Field)] = &[((5, 0), Field(8)), ((1, 2), Field(24))];

/// What a domain's vCPU is given, as far as the ID registers tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// Its virtual GIC's version.
    pub gic: GicVersion,
    /// Its access to the PMU.
    pub pmu: PmuAccess,
}

/// The value a guest given `features` reads for ID register `(crm, op2)` whose hardware
/// value is `value`.
pub fn sanitise(crm: u8, op2: u8, value: u64, features: Features) -> u64 {
    if ZEROED.contains(&(crm, op2)) {
        return 0;
    }
    let mut value = value;
    if (crm, op2) == (4, 0) && features.gic == GicVersion::V2 {
        value &= !(0xF << PFR0_GIC.0);
    }
    if features.pmu == PmuAccess::Off {
        for (_, f) in PMU_FIELDS.iter().filter(|(reg, _)| *reg == (crm, op2)) {
            value &= !(0xF << f.0);
        }
    }
    HIDDEN
        .iter()
        .filter(|(reg, _)| *reg == (crm, op2))
        .flat_map(|(_, fields)| fields.iter())
        .fold(value, |v, f| v & !(0xF << f.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vGICv3 domain with the PMU (the PMU fields pass through).
    const V3: Features = Features {
        gic: GicVersion::V3,
        pmu: PmuAccess::Guest,
    };
    /// A vGICv2 domain with the PMU.
    const V2: Features = Features {
        gic: GicVersion::V2,
        pmu: PmuAccess::Guest,
    };

    #[test]
    fn a_domain_without_the_pmu_reads_pmuver_0() {
        let off = Features {
            pmu: PmuAccess::Off,
            ..V3
        };
        let dfr0 = 0x1010_5605_u64; // PMUVer 6 [11:8], DebugVer [3:0], BRPs/WRPs/CTX_CMPs
        assert_eq!((sanitise(5, 0, dfr0, off) >> 8) & 0xF, 0, "PMUVer");
        assert_eq!(
            sanitise(5, 0, dfr0, off),
            dfr0 & !(0xF << 8),
            "nothing else"
        );
        assert_eq!((sanitise(5, 0, dfr0, V3) >> 8) & 0xF, 6, "granted: kept");
        let el2 = Features {
            pmu: PmuAccess::El2,
            ..V3
        };
        assert_eq!((sanitise(5, 0, dfr0, el2) >> 8) & 0xF, 6);
        assert_eq!(sanitise(1, 2, 0x0F00_0000, off), 0, "ID_DFR0_EL1.PerfMon");
        assert_eq!(sanitise(1, 2, 0x0F00_0000, V3), 0x0F00_0000);
        assert_eq!(
            sanitise(4, 0, 0xF00, off),
            0xF00,
            "PFR0 [11:8] is EL2, not PMU"
        );
    }

    #[test]
    fn sve_sme_and_pauth_are_hidden() {
        let all = u64::MAX;
        let pfr0 = sanitise(4, 0, all, V3);
        assert_eq!((pfr0 >> 32) & 0xF, 0, "SVE");
        assert_eq!((pfr0 >> 24) & 0xF, 0xF, "GIC system registers stay");
        let pfr1 = sanitise(4, 1, all, V3);
        assert_eq!((pfr1 >> 24) & 0xF, 0, "SME");
        assert_eq!((pfr1 >> 8) & 0xF, 0, "MTE");
        assert_eq!((pfr1 >> 4) & 0xF, 0xF, "SSBS stays");
        let isar1 = sanitise(6, 1, all, V3);
        for shift in [4, 8, 24, 28] {
            assert_eq!((isar1 >> shift) & 0xF, 0, "pauth field at {shift}");
        }
        assert_eq!(isar1 & 0xF, 0xF, "DPB stays");
        assert_eq!(sanitise(4, 4, all, V3), 0, "ZFR0");
        assert_eq!(sanitise(4, 5, all, V3), 0, "SMFR0");
    }

    #[test]
    fn a_vgicv2_hides_the_gic_system_registers() {
        let pfr0 = sanitise(4, 0, u64::MAX, V2);
        assert_eq!((pfr0 >> 24) & 0xF, 0, "GIC");
        assert_eq!((pfr0 >> 32) & 0xF, 0, "SVE still hidden");
        assert_eq!(pfr0 & 0xF, 0xF, "EL0 stays");
        assert_eq!(sanitise(4, 1, 1 << 24, V2), 0, "PFR1 SME, not GIC");
        assert_eq!(sanitise(7, 0, 0xF << 24, V2), 0xF << 24, "MMFR0 untouched");
    }

    #[test]
    fn other_registers_pass_through() {
        assert_eq!(sanitise(7, 0, 0x1234_5678, V3), 0x1234_5678, "MMFR0");
        assert_eq!(sanitise(1, 0, 7, V3), 7, "AArch32 ID_PFR0");
    }

    #[test]
    fn the_group_is_crn0_crm1_to_7() {
        assert!(is_id_group3(3, 0, 0, 4));
        assert!(
            !is_id_group3(3, 0, 0, 0),
            "MIDR/MPIDR are not in TID3's group"
        );
        assert!(!is_id_group3(3, 0, 1, 4));
        assert!(!is_id_group3(3, 3, 0, 4));
    }
}
