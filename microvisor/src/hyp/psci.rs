//! PSCI for guests: vCPU power management and system off/reset of the calling domain.

use super::domain::Power;
use super::{key_parts, Hyp};
use crate::arch::context::{El1Context, GuestRegs, PSTATE_EL1H_MASKED};
use crate::sched::VcpuKey;
use protocol::control::StopReason;
use protocol::psci::{PsciFn, PsciStatus, PSCI_VERSION_1_1};

impl Hyp {
    /// Serves one PSCI call from vCPU `key`.
    pub fn psci(&mut self, cpu: usize, key: VcpuKey, regs: &mut GuestRegs, f: PsciFn) {
        let (id, v) = key_parts(key);
        let status = match f {
            PsciFn::Version => {
                regs.x[0] = PSCI_VERSION_1_1;
                return;
            }
            PsciFn::Features => {
                let supported = PsciFn::from_id(regs.x[1]).is_some();
                if supported {
                    PsciStatus::Success
                } else {
                    PsciStatus::NotSupported
                }
            }
            PsciFn::MigrateInfoType => {
                regs.x[0] = 2; // Trusted OS not present: no migration needed.
                return;
            }
            PsciFn::CpuSuspend => {
                // A power-down request degrades to standby: wait for an interrupt.
                self.handle_wfi_like(cpu, key);
                PsciStatus::Success
            }
            PsciFn::CpuOff => {
                if let Some(d) = self.domain_mut(id) {
                    d.vcpus[v].power = Power::Off;
                }
                self.refresh_runnable(id, cpu);
                PsciStatus::Success
            }
            PsciFn::CpuOn => self.cpu_on(cpu, id, regs.x[1], regs.x[2], regs.x[3]),
            PsciFn::AffinityInfo => match self.target_vcpu(id, regs.x[1]) {
                Some(t) => {
                    let on = self
                        .domain(id)
                        .is_some_and(|d| d.vcpus[t].power == Power::On);
                    regs.x[0] = if on { 0 } else { 1 };
                    return;
                }
                None => PsciStatus::InvalidParameters,
            },
            PsciFn::SystemOff => {
                self.stop_domain(id, StopReason::PowerOff, cpu);
                PsciStatus::Success
            }
            PsciFn::SystemReset => {
                self.stop_domain(id, StopReason::Reboot, cpu);
                PsciStatus::Success
            }
            _ => PsciStatus::NotSupported,
        };
        regs.x[0] = status.to_reg();
    }

    fn handle_wfi_like(&mut self, cpu: usize, key: VcpuKey) {
        let (id, v) = key_parts(key);
        let n = self.nr_lrs;
        let Some(d) = self.domain_mut(id) else { return };
        let lrs = d.vcpus[v].lrs;
        if !d.vgic.has_deliverable(v, &lrs[..n]) {
            d.vcpus[v].blocked = true;
            let _ = self.runqueues[cpu].set_runnable(key, false);
            self.resched[cpu] = true;
        }
    }

    /// The vCPU index an MPIDR names in domain `id` (Aff0 = index, higher levels zero).
    fn target_vcpu(&self, id: protocol::ids::DomainId, mpidr: u64) -> Option<usize> {
        let d = self.domain(id)?;
        if mpidr & !0xff != 0 {
            return None;
        }
        let t = (mpidr & 0xff) as usize;
        (t < d.vcpus.len()).then_some(t)
    }

    fn cpu_on(
        &mut self,
        cpu: usize,
        id: protocol::ids::DomainId,
        mpidr: u64,
        entry: u64,
        ctx: u64,
    ) -> PsciStatus {
        let Some(t) = self.target_vcpu(id, mpidr) else {
            return PsciStatus::InvalidParameters;
        };
        let Some(d) = self.domain_mut(id) else {
            return PsciStatus::InternalFailure;
        };
        if !d.in_ram(entry) || entry & 3 != 0 {
            return PsciStatus::InvalidAddress;
        }
        let vcpu = &mut d.vcpus[t];
        if vcpu.power == Power::On {
            return PsciStatus::AlreadyOn;
        }
        vcpu.regs = GuestRegs::default();
        vcpu.regs.pc = entry;
        vcpu.regs.pstate = PSTATE_EL1H_MASKED;
        vcpu.regs.x[0] = ctx;
        vcpu.el1 = El1Context::reset((1 << 31) | t as u64);
        vcpu.debug = crate::debugregs::DebugShadow::default();
        vcpu.power = Power::On;
        vcpu.blocked = false;
        self.refresh_runnable(id, cpu);
        PsciStatus::Success
    }
}
