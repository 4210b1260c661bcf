//! Trapped debug and PMU register accesses (`MDCR_EL2`, see [`crate::pmu`] and
//! [`crate::debugregs`]): debug registers are emulated for every domain; a PMU register
//! traps only for a domain not given the PMU, and is an Undefined Instruction for it.

use super::domain::cause;
use super::exits::inject_undef;
use super::{key_parts, Hyp};
use crate::arch::context::GuestRegs;
use crate::arch::sysreg::{read_mdscr_el1, write_mdscr_el1};
use crate::sched::VcpuKey;
use crate::trap::SysRegAccess;

impl Hyp {
    /// Serves `a` if it is a debug or PMU register; returns whether it was one.
    pub(super) fn monitor_sysreg(
        &mut self,
        key: VcpuKey,
        regs: &mut GuestRegs,
        a: SysRegAccess,
    ) -> bool {
        let (id, v) = key_parts(key);
        let Some(d) = self.domain_mut(id) else {
            return false;
        };
        if let Some(reg) = crate::debugregs::classify(a.encoding()) {
            let rt = usize::from(a.rt);
            let write = (!a.read).then(|| if rt == 31 { 0 } else { regs.x[rt] });
            let Some(vcpu) = d.vcpus.get_mut(v) else {
                return false;
            };
            // The vCPU is loaded: its MDSCR_EL1 is the hardware's.
            let (value, mdscr) = vcpu.debug.access(reg, write, read_mdscr_el1());
            if let Some(m) = mdscr {
                write_mdscr_el1(m);
            }
            if a.read && rt != 31 {
                regs.x[rt] = value;
            }
            regs.pc += 4;
            return true;
        }
        if crate::pmu::is_pmu_register(a.encoding()) {
            // Only trapped (MDCR_EL2.TPM) for a domain without the PMU.
            d.log_once(
                cause::PMU,
                format_args!("PMU register access {a:?} without `pmu` in its system entry"),
            );
            inject_undef(regs);
            return true;
        }
        false
    }
}
