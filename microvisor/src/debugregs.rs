//! The self-hosted debug registers as guests see them.
//!
//! Every vCPU runs with `MDCR_EL2.TDA`, `TDOSA` and `TDRA` set ([`crate::pmu::mdcr_el2`]),
//! so its debug-register accesses trap and are answered here:
//! - breakpoint and watchpoint registers (`DBGBVR/BCR/WVR/WCR<n>_EL1`) read back what the
//!   guest wrote into a per-vCPU [`DebugShadow`] that is never loaded into the hardware:
//!   a guest may program them, but they never fire. Hardware-assisted debugging inside a
//!   guest is not supported yet; the hardware's own are cleared at boot, so no domain can
//!   leave one armed for the next domain on its CPU, nor watch the microvisor.
//! - `MDSCR_EL1` is the vCPU's own (switched with its EL1 context); only its software-step
//!   and enable bits are writable ([`MDSCR_WRITABLE`]).
//! - the OS lock reads "implemented, unlocked" and ignores writes; the OS double lock and
//!   everything else in the space (debug communications channel, claim tags, `MDRAR_EL1`,
//!   `DBGPRCR_EL1`, `OSECCR_EL1`, authentication status) reads as zero, writes ignored.
//!
//! Linux touches these once per CPU at boot (`__cpu_setup`, the OS lock, the hw_breakpoint
//! reset), and afterwards only when a task is debugged, so no hot path traps.
#![forbid(unsafe_code)]

use crate::trap::SysReg;

/// Breakpoint and watchpoint register slots (CRm is the index, 0..=15).
pub const SLOTS: usize = 16;

/// `MDSCR_EL1` bits a guest may set: SS (software step), TDCC (trap EL0 DCC), KDE (debug
/// exceptions at EL1), MDE (breakpoints and watchpoints; none is ever armed in hardware).
pub const MDSCR_WRITABLE: u64 = (1 << 0) | (1 << 12) | (1 << 13) | (1 << 15);

/// `OSLSR_EL1` with the OS lock implemented (OSLM = 0b10: bit 3) and unlocked (OSLK = 0).
pub const OSLSR_UNLOCKED: u64 = 1 << 3;

/// Which of the four breakpoint/watchpoint register arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// `DBGBVR<n>_EL1`: breakpoint value.
    Bvr,
    /// `DBGBCR<n>_EL1`: breakpoint control.
    Bcr,
    /// `DBGWVR<n>_EL1`: watchpoint value.
    Wvr,
    /// `DBGWCR<n>_EL1`: watchpoint control.
    Wcr,
}

/// A trapped debug register, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugReg {
    /// `MDSCR_EL1`: the vCPU's own, live in hardware while it runs.
    Mdscr,
    /// `OSLSR_EL1`: reads [`OSLSR_UNLOCKED`].
    OsLockStatus,
    /// A breakpoint or watchpoint register, shadowed.
    Shadowed(Slot, u8),
    /// Reads as zero, writes ignored (`OSLAR_EL1`, `OSDLR_EL1` and the rest).
    RazWi,
}

/// Classifies an access trapped by `TDA`/`TDOSA`/`TDRA`; `None` for anything else.
pub const fn classify(r: SysReg) -> Option<DebugReg> {
    if r.op0 != 2 {
        return None;
    }
    let reg = match (r.op1, r.crn, r.crm, r.op2) {
        (0, 0, n, 4) => DebugReg::Shadowed(Slot::Bvr, n),
        (0, 0, n, 5) => DebugReg::Shadowed(Slot::Bcr, n),
        (0, 0, n, 6) => DebugReg::Shadowed(Slot::Wvr, n),
        (0, 0, n, 7) => DebugReg::Shadowed(Slot::Wcr, n),
        (0, 0, 2, 2) => DebugReg::Mdscr,
        (0, 1, 1, 4) => DebugReg::OsLockStatus,
        // OSDTRRX, MDCCINT, OSDTRTX, OSECCR.
        (0, 0, 0, 2) | (0, 0, 2, 0) | (0, 0, 3, 2) | (0, 0, 6, 2) => DebugReg::RazWi,
        // MDRAR, OSLAR, OSDLR, DBGPRCR.
        (0, 1, 0, 0) | (0, 1, 0, 4) | (0, 1, 3, 4) | (0, 1, 4, 4) => DebugReg::RazWi,
        // DBGCLAIMSET, DBGCLAIMCLR, DBGAUTHSTATUS.
        (0, 7, 8, 6) | (0, 7, 9, 6) | (0, 7, 14, 6) => DebugReg::RazWi,
        // MDCCSR_EL0, DBGDTR_EL0, DBGDTRRX/TX_EL0.
        (3, 0, 1, 0) | (3, 0, 4, 0) | (3, 0, 5, 0) => DebugReg::RazWi,
        _ => return None,
    };
    Some(reg)
}

/// One vCPU's breakpoint and watchpoint registers, as it last wrote them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DebugShadow {
    bvr: [u64; SLOTS],
    bcr: [u64; SLOTS],
    wvr: [u64; SLOTS],
    wcr: [u64; SLOTS],
}

impl DebugShadow {
    /// Performs an access to `reg` (`write`: the value of an `MSR`, `None` for an `MRS`)
    /// with `mdscr` the vCPU's live `MDSCR_EL1`; returns what an `MRS` reads (0 after a
    /// write) and the new `MDSCR_EL1`, if the access changed it.
    pub fn access(&mut self, reg: DebugReg, write: Option<u64>, mdscr: u64) -> (u64, Option<u64>) {
        match (reg, write) {
            (DebugReg::Mdscr, None) => (mdscr, None),
            (DebugReg::Mdscr, Some(v)) => (0, Some(v & MDSCR_WRITABLE)),
            (DebugReg::OsLockStatus, None) => (OSLSR_UNLOCKED, None),
            (DebugReg::Shadowed(slot, n), w) => {
                let array = match slot {
                    Slot::Bvr => &mut self.bvr,
                    Slot::Bcr => &mut self.bcr,
                    Slot::Wvr => &mut self.wvr,
                    Slot::Wcr => &mut self.wcr,
                };
                // CRm is four bits, so `n` < SLOTS; `get_mut` keeps it total anyway.
                let Some(cell) = array.get_mut(usize::from(n)) else {
                    return (0, None);
                };
                match w {
                    Some(v) => {
                        *cell = v;
                        (0, None)
                    }
                    None => (*cell, None),
                }
            }
            (DebugReg::OsLockStatus | DebugReg::RazWi, _) => (0, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_classified() {
        let cases = [
            (
                "DBGBVR0_EL1",
                SysReg::new(2, 0, 0, 0, 4),
                Some(DebugReg::Shadowed(Slot::Bvr, 0)),
            ),
            (
                "DBGBCR5_EL1",
                SysReg::new(2, 0, 0, 5, 5),
                Some(DebugReg::Shadowed(Slot::Bcr, 5)),
            ),
            (
                "DBGWVR15_EL1",
                SysReg::new(2, 0, 0, 15, 6),
                Some(DebugReg::Shadowed(Slot::Wvr, 15)),
            ),
            (
                "DBGWCR1_EL1",
                SysReg::new(2, 0, 0, 1, 7),
                Some(DebugReg::Shadowed(Slot::Wcr, 1)),
            ),
            (
                "MDSCR_EL1",
                SysReg::new(2, 0, 0, 2, 2),
                Some(DebugReg::Mdscr),
            ),
            (
                "OSLSR_EL1",
                SysReg::new(2, 0, 1, 1, 4),
                Some(DebugReg::OsLockStatus),
            ),
            (
                "OSLAR_EL1",
                SysReg::new(2, 0, 1, 0, 4),
                Some(DebugReg::RazWi),
            ),
            (
                "OSDLR_EL1",
                SysReg::new(2, 0, 1, 3, 4),
                Some(DebugReg::RazWi),
            ),
            (
                "DBGPRCR_EL1",
                SysReg::new(2, 0, 1, 4, 4),
                Some(DebugReg::RazWi),
            ),
            (
                "MDRAR_EL1",
                SysReg::new(2, 0, 1, 0, 0),
                Some(DebugReg::RazWi),
            ),
            (
                "MDCCINT_EL1",
                SysReg::new(2, 0, 0, 2, 0),
                Some(DebugReg::RazWi),
            ),
            (
                "OSECCR_EL1",
                SysReg::new(2, 0, 0, 6, 2),
                Some(DebugReg::RazWi),
            ),
            (
                "DBGCLAIMSET_EL1",
                SysReg::new(2, 0, 7, 8, 6),
                Some(DebugReg::RazWi),
            ),
            (
                "DBGAUTHSTATUS_EL1",
                SysReg::new(2, 0, 7, 14, 6),
                Some(DebugReg::RazWi),
            ),
            (
                "MDCCSR_EL0",
                SysReg::new(2, 3, 0, 1, 0),
                Some(DebugReg::RazWi),
            ),
            (
                "DBGDTR_EL0",
                SysReg::new(2, 3, 0, 4, 0),
                Some(DebugReg::RazWi),
            ),
            (
                "DBGDTRRX_EL0",
                SysReg::new(2, 3, 0, 5, 0),
                Some(DebugReg::RazWi),
            ),
            // Not debug registers, or not ones a guest can reach.
            ("trace TRCPRGCTLR", SysReg::new(2, 1, 0, 1, 0), None),
            ("DBGVCR32_EL2", SysReg::new(2, 4, 0, 7, 0), None),
            ("op0 2 hole", SysReg::new(2, 0, 0, 1, 0), None),
            ("PMCR_EL0", SysReg::new(3, 3, 9, 12, 0), None),
            ("SCTLR_EL1", SysReg::new(3, 0, 1, 0, 0), None),
        ];
        for (name, r, want) in cases {
            assert_eq!(classify(r), want, "{name}");
        }
    }

    #[test]
    fn breakpoints_read_back_per_register_and_never_leak_between_arrays() {
        let mut s = DebugShadow::default();
        let bcr3 = DebugReg::Shadowed(Slot::Bcr, 3);
        assert_eq!(s.access(bcr3, Some(0x1e7), 0), (0, None));
        assert_eq!(s.access(bcr3, None, 0), (0x1e7, None));
        assert_eq!(
            s.access(DebugReg::Shadowed(Slot::Wcr, 3), None, 0),
            (0, None)
        );
        assert_eq!(
            s.access(DebugReg::Shadowed(Slot::Bcr, 2), None, 0),
            (0, None)
        );
        let wvr15 = DebugReg::Shadowed(Slot::Wvr, 15);
        s.access(wvr15, Some(0xffff_0000_1234_0000), 0);
        assert_eq!(s.access(wvr15, None, 0).0, 0xffff_0000_1234_0000);
        assert_eq!(
            s.access(DebugReg::Shadowed(Slot::Bvr, 16), Some(1), 0),
            (0, None),
            "an index past the array is ignored"
        );
    }

    #[test]
    fn mdscr_is_the_vcpus_own_with_only_known_bits_writable() {
        let mut s = DebugShadow::default();
        assert_eq!(s.access(DebugReg::Mdscr, None, 0x9001), (0x9001, None));
        assert_eq!(
            s.access(DebugReg::Mdscr, Some(u64::MAX), 0),
            (0, Some(MDSCR_WRITABLE))
        );
        assert_eq!(
            s.access(DebugReg::Mdscr, Some(1 << 12), 0),
            (0, Some(1 << 12)),
            "Linux's __cpu_setup writes TDCC"
        );
    }

    #[test]
    fn os_lock_reads_unlocked_and_the_rest_is_raz_wi() {
        let mut s = DebugShadow::default();
        assert_eq!(s.access(DebugReg::OsLockStatus, None, 0), (8, None));
        assert_eq!(s.access(DebugReg::OsLockStatus, Some(2), 0), (0, None));
        assert_eq!(s.access(DebugReg::RazWi, Some(1), 0), (0, None));
        assert_eq!(s.access(DebugReg::RazWi, None, 0), (0, None));
        assert_eq!(s, DebugShadow::default(), "no write reached the shadow");
    }
}
