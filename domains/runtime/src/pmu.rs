//! PMU instruction counting for the benchmark guest.
//!
//! Counter 0 counts instructions retired at EL2 only (the microvisor's work on our behalf),
//! counter 1 those at EL0/EL1 (ours). Only meaningful under QEMU `-icount`; the guest owns
//! every counter.

/// ARMv8 PMU event INST_RETIRED.
pub const INST_RETIRED: u64 = 0x08;
/// PMEVTYPER.P: do not count EL1.
pub const FILTER_P: u64 = 1 << 31;
/// PMEVTYPER.U: do not count EL0.
pub const FILTER_U: u64 = 1 << 30;
/// PMEVTYPER.NSH: count non-secure EL2.
pub const FILTER_NSH: u64 = 1 << 27;
/// Counter 0's type: instructions at EL2 only.
pub const EL2_INSTRUCTIONS: u64 = INST_RETIRED | FILTER_P | FILTER_U | FILTER_NSH;
/// Counter 1's type: instructions at EL0 and EL1 only.
pub const GUEST_INSTRUCTIONS: u64 = INST_RETIRED;
/// PMCR_EL0.E.
pub const PMCR_E: u64 = 1 << 0;
/// PMCR_EL0.P (reset event counters).
pub const PMCR_P: u64 = 1 << 1;

/// Difference of two readings of a 32-bit event counter (one wrap tolerated).
pub const fn delta32(before: u64, after: u64) -> u64 {
    (after as u32).wrapping_sub(before as u32) as u64
}

/// One reading of both counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Instructions retired at EL2.
    pub el2: u64,
    /// Instructions retired at EL0/EL1.
    pub guest: u64,
}

impl Sample {
    /// Counts between `self` and a later sample.
    pub const fn until(self, later: Sample) -> Sample {
        Sample {
            el2: delta32(self.el2, later.el2),
            guest: delta32(self.guest, later.guest),
        }
    }
}

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use super::*;
    use crate::arch;

    /// Resets and starts counters 0 and 1.
    pub fn start() {
        arch::set_pmcr(PMCR_P);
        arch::isb();
        arch::set_pmevtyper0(EL2_INSTRUCTIONS);
        arch::set_pmevtyper1(GUEST_INSTRUCTIONS);
        arch::set_pmcntenset(0b11);
        arch::set_pmcr(PMCR_E);
        arch::isb();
    }

    /// Reads both counters (ISB-fenced).
    pub fn sample() -> Sample {
        arch::isb();
        let s = Sample {
            el2: arch::pmevcntr0(),
            guest: arch::pmevcntr1(),
        };
        arch::isb();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types() {
        assert_eq!(EL2_INSTRUCTIONS, 0xC800_0008);
        assert_eq!(delta32(10, 25), 15);
        assert_eq!(delta32(0xFFFF_FFF0, 0x10), 0x20);
        let a = Sample { el2: 1, guest: 2 };
        assert_eq!(
            a.until(Sample { el2: 11, guest: 7 }),
            Sample { el2: 10, guest: 5 }
        );
    }
}
