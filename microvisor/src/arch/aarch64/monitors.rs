//! The performance monitors and debug hardware around a vCPU: the `MDCR_EL2` it runs with
//! and, for a domain given the PMU, the counter state saved and restored with it. The
//! policy (which value, which registers) is [`crate::pmu`] and [`crate::debugregs`].

use super::sysreg::*;
use crate::pmu::{mdcr_el2, PmuHw};
use protocol::control::PmuAccess;

/// `PMCR_EL0.E`: counters enabled.
const PMCR_E: u64 = 1 << 0;
/// Every counter's bit in the set/clear registers (event counters 0..=30, cycle counter 31).
const ALL_COUNTERS: u64 = 0xffff_ffff;
/// Most event counters the architecture allows.
const MAX_EVENT_COUNTERS: usize = 31;

/// What this CPU's PMU can do. Read afresh on every vCPU load (a CPU's own registers need
/// no per-CPU cache), with `ID_AA64DFR0_EL1` named directly: through
/// [`read_id_group3`]'s dispatch on `(crm, op2)` it cost a dozen more instructions.
#[inline(always)]
pub fn pmu_hw() -> PmuHw {
    let dfr0 = read_id_aa64dfr0_el1();
    // PMCR_EL0 is undefined without an architected PMU.
    let pmcr = if PmuHw::from_regs(dfr0, 0).present {
        read_pmcr_el0()
    } else {
        0
    };
    PmuHw::from_regs(dfr0, pmcr)
}

/// One vCPU's PMU registers while it is not loaded (a domain with [`PmuAccess::Guest`] or
/// [`PmuAccess::El2`]). All zero at creation: a new vCPU's counters are off and start at 0,
/// whatever an earlier domain left in the hardware.
#[derive(Clone, Copy, Debug, Default)]
pub struct PmuState {
    pmcr: u64,
    cntenset: u64,
    intenset: u64,
    ovsset: u64,
    selr: u64,
    userenr: u64,
    ccntr: u64,
    ccfiltr: u64,
    evcntr: [u64; MAX_EVENT_COUNTERS],
    evtyper: [u64; MAX_EVENT_COUNTERS],
}

impl PmuState {
    /// Captures the loaded vCPU's counters and leaves the PMU stopped, its interrupts and
    /// overflow flags clear and EL0 access off, for whoever runs next.
    pub fn save_and_stop(&mut self) {
        self.pmcr = read_pmcr_el0();
        write_pmcr_el0(self.pmcr & !PMCR_E);
        self.selr = read_pmselr_el0();
        self.cntenset = read_pmcntenset_el0();
        self.intenset = read_pmintenset_el1();
        self.ovsset = read_pmovsset_el0();
        self.userenr = read_pmuserenr_el0();
        self.ccntr = read_pmccntr_el0();
        self.ccfiltr = read_pmccfiltr_el0();
        let n = usize::from(pmu_hw().counters).min(MAX_EVENT_COUNTERS);
        for i in 0..n {
            write_pmselr_el0(i as u64);
            super::cpu::isb();
            self.evtyper[i] = read_pmxevtyper_el0();
            self.evcntr[i] = read_pmxevcntr_el0();
        }
        write_pmcntenclr_el0(ALL_COUNTERS);
        write_pmintenclr_el1(ALL_COUNTERS);
        write_pmovsclr_el0(ALL_COUNTERS);
        write_pmuserenr_el0(0);
        super::cpu::isb();
    }

    /// Loads this vCPU's counters into the stopped PMU, enabling them last.
    pub fn restore(&self) {
        write_pmcr_el0(self.pmcr & !PMCR_E);
        let n = usize::from(pmu_hw().counters).min(MAX_EVENT_COUNTERS);
        for i in 0..n {
            write_pmselr_el0(i as u64);
            super::cpu::isb();
            write_pmxevtyper_el0(self.evtyper[i]);
            write_pmxevcntr_el0(self.evcntr[i]);
        }
        write_pmselr_el0(self.selr);
        write_pmccfiltr_el0(self.ccfiltr);
        write_pmccntr_el0(self.ccntr);
        write_pmuserenr_el0(self.userenr);
        write_pmintenclr_el1(ALL_COUNTERS);
        write_pmintenset_el1(self.intenset);
        write_pmovsclr_el0(ALL_COUNTERS);
        write_pmovsset_el0(self.ovsset);
        write_pmcntenclr_el0(ALL_COUNTERS);
        write_pmcntenset_el0(self.cntenset);
        write_pmcr_el0(self.pmcr);
        super::cpu::isb();
    }
}

/// Sets `MDCR_EL2` for a vCPU of a domain with `access` about to run, and loads its PMU
/// state if it has the PMU. Inlined into every switch: usually only the first test runs.
#[inline]
pub fn load(access: PmuAccess, pmu: &PmuState) {
    // A domain without the PMU after another (most switches): nothing to do. `MDCR_EL2`
    // is written only here and by `init`, and only `mdcr_el2(Off, hw)` sets TPM, so with
    // TPM set it holds exactly that value for this CPU already.
    if access == PmuAccess::Off && read_mdcr_el2() & crate::pmu::mdcr::TPM != 0 {
        return;
    }
    let hw = pmu_hw();
    // The new MDCR_EL2 first: counters enabled under the previous vCPU's (an "el2" domain's
    // counts EL2) would count the microvisor's last instructions before the guest runs.
    // SAFETY: `mdcr_el2` always sets TDA/TDOSA/TDRA, never TDE, and clears TPM/TPMCR only
    // for an `access` other than `Off`, i.e. a domain given the PMU.
    unsafe { write_mdcr_el2(mdcr_el2(access, hw)) };
    super::cpu::isb();
    if access != PmuAccess::Off && hw.present {
        pmu.restore();
    }
}

/// Saves the PMU state of the loaded vCPU (of a domain with `access`) and stops the PMU.
#[inline]
pub fn save(access: PmuAccess, pmu: &mut PmuState) {
    if access != PmuAccess::Off && pmu_hw().present {
        pmu.save_and_stop();
    }
}

/// This CPU's debug hardware at boot: every breakpoint and watchpoint disarmed (guests
/// program only shadows, see [`crate::debugregs`]) and the OS lock clear; `MDCR_EL2` as
/// for a domain without the PMU until a vCPU is loaded.
pub fn init() {
    let dfr0 = read_id_aa64dfr0_el1();
    let breakpoints = ((dfr0 >> 12) & 0xf) as usize + 1;
    let watchpoints = ((dfr0 >> 20) & 0xf) as usize + 1;
    (0..breakpoints).for_each(disarm_breakpoint);
    (0..watchpoints).for_each(disarm_watchpoint);
    write_oslar_el1(0);
    // SAFETY: as in `load`, for a domain without the PMU.
    unsafe { write_mdcr_el2(mdcr_el2(PmuAccess::Off, pmu_hw())) };
    super::cpu::isb();
}
