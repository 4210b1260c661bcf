//! Synchronous exits: decoded once by `trap::decode`, then routed here.

use super::domain::cause;
use super::{key_parts, Hyp};
use crate::arch::context::GuestRegs;
use crate::arch::sysreg::*;
use crate::sched::VcpuKey;
use crate::trap::{self, Abort, Exit, SysRegAccess};
use crate::vgic::MmioOutcome;
use protocol::addr::GuestPhysAddr;
use protocol::control::{CapOp, StopReason, SMCCC_NOT_SUPPORTED};
use protocol::layout::GicVersion;
use protocol::psci::PsciFn;

use crate::fastpath::XEN_HVC_IMM;

impl Hyp {
    /// Handles a synchronous exit of the vCPU `key` whose registers are `regs`.
    pub fn handle_sync(&mut self, cpu: usize, key: VcpuKey, regs: &mut GuestRegs) {
        let esr = read_esr_el2();
        let exit = trap::decode(esr, read_far_el2(), read_hpfar_el2());
        let (id, _) = key_parts(key);
        if self.domain(id).is_some_and(|d| d.hung) && hang_in_place(&exit, regs) {
            return;
        }
        match exit {
            Exit::Hvc { imm: 0 } => self.hypercall(cpu, key, regs),
            Exit::Hvc { imm: XEN_HVC_IMM } => self.xen_hypercall(cpu, key, regs),
            Exit::Hvc { .. } => {
                // F16: any other immediate is an undefined instruction for the guest, as on
                // Xen; the exception returns to the HVC itself (the trap's PC is after it).
                regs.rewind_hvc();
                inject_undef(regs);
            }
            Exit::Smc { .. } => {
                // SMC traps before executing: step over it, then serve it like HVC #0.
                regs.pc += 4;
                self.hypercall(cpu, key, regs);
            }
            Exit::Wfi => {
                regs.pc += 4;
                self.wfi(cpu, key);
            }
            Exit::Wfe => {
                regs.pc += 4;
                self.resched[cpu] = true;
            }
            Exit::SysReg(access) => self.sysreg(cpu, key, regs, access),
            Exit::DataAbort(abort) => self.data_abort(cpu, key, regs, abort, esr),
            Exit::InstructionAbort(abort) => {
                if !self.lazy_fault(id, abort.ipa.as_u64(), abort.fault, cpu) {
                    let ipa = abort.ipa.as_u64();
                    self.stop_domain(id, StopReason::Stage2Fault { ipa, esr }, cpu);
                }
            }
            Exit::FpAccess | Exit::Unknown { .. } => {
                self.stop_domain(id, StopReason::UnhandledTrap { esr, pc: regs.pc }, cpu)
            }
        }
    }

    /// Routes `HVC #0`: PSCI, then our capability protocol, else SMCCC "not supported".
    fn hypercall(&mut self, cpu: usize, key: VcpuKey, regs: &mut GuestRegs) {
        let fid = regs.x[0];
        if let Some(f) = PsciFn::from_id(fid) {
            self.psci(cpu, key, regs, f);
            return;
        }
        match CapOp::from_function_id(fid) {
            Some(Ok(op)) => self.cap_call(cpu, key, regs, op),
            Some(Err(e)) => regs.x[0] = e as u64,
            None => {
                let (id, _) = key_parts(key);
                if let Some(d) = self.domain_mut(id) {
                    d.log_once(
                        cause::UNKNOWN_HVC,
                        format_args!("unknown SMCCC function {fid:#x}"),
                    );
                }
                regs.x[0] = SMCCC_NOT_SUPPORTED;
            }
        }
    }

    /// A trapped WFI: block unless an interrupt is already deliverable.
    pub(super) fn wfi(&mut self, cpu: usize, key: VcpuKey) {
        let (id, v) = key_parts(key);
        let n = self.nr_lrs;
        let Some(d) = self.domain_mut(id) else { return };
        if d.vgic.has_deliverable(v, &d.vcpus[v].lrs[..n]) {
            return;
        }
        // The interface state is live in hardware until the vCPU is switched out.
        d.vgic.note_wait(v, crate::arch::gic::read_vmcr());
        d.report_vgic_warnings();
        d.vcpus[v].blocked = true;
        let _ = self.runqueues[cpu].set_runnable(key, false);
        self.resched[cpu] = true;
    }

    /// A trapped system-register access: SGI generation is emulated (on a virtual GICv3;
    /// a vGICv2 has no GIC system registers), ID registers sanitised, debug and PMU
    /// registers served by [`Self::monitor_sysreg`]; anything else is undefined for the
    /// guest.
    fn sysreg(&mut self, cpu: usize, key: VcpuKey, regs: &mut GuestRegs, a: SysRegAccess) {
        let (id, v) = key_parts(key);
        let value = if a.rt == 31 {
            0
        } else {
            regs.x[usize::from(a.rt)]
        };
        let Some((gic, pmu)) = self.domain(id).map(|d| (d.vgic.version(), d.spec.pmu)) else {
            return;
        };
        let features = crate::idregs::Features { gic, pmu };
        let v3 = gic == GicVersion::V3;
        if v3 && a.encoding() == trap::ICC_SGI1R_EL1 && !a.read {
            regs.pc += 4;
            let Some(d) = self.domain(id) else { return };
            let (intid, targets) = crate::vgic::sgi_targets(d.vgic.nr_vcpus(), v, value);
            self.send_sgi(id, intid, targets, cpu);
            return;
        }
        if a.read && crate::idregs::is_id_group3(a.op0, a.op1, a.crn, a.crm) {
            regs.pc += 4;
            if a.rt != 31 {
                let raw = crate::arch::sysreg::read_id_group3(a.crm, a.op2);
                regs.x[usize::from(a.rt)] = crate::idregs::sanitise(a.crm, a.op2, raw, features);
            }
            return;
        }
        if v3 && (a.encoding() == trap::ICC_ASGI1R_EL1 || a.encoding() == trap::ICC_SGI0R_EL1) {
            // Group-0 / alternate-group SGIs do not exist for our guests: ignore.
            regs.pc += 4;
            return;
        }
        if self.monitor_sysreg(key, regs, a) {
            return;
        }
        if let Some(d) = self.domain_mut(id) {
            d.log_once(
                cause::SYSREG,
                format_args!("undefined system register access {a:?}"),
            );
        }
        inject_undef(regs);
    }

    /// Sends SGI `intid` from a vCPU of domain `id` to its vCPUs in `targets` (a write of
    /// `ICC_SGI1R_EL1` on a vGICv3, of `GICD_SGIR` on a vGICv2, taking the locked path): a
    /// pinned-exclusive sibling loaded on another CPU gets it posted, as the fast path would
    /// have done ([`crate::posted`]); anyone else through the vGIC model.
    fn send_sgi(&mut self, id: protocol::ids::DomainId, intid: u32, targets: u32, cpu: usize) {
        let Some(nr_vcpus) = self.domain(id).map(|d| d.vgic.nr_vcpus()) else {
            return;
        };
        let mut mask = 0;
        for t in (0..nr_vcpus).filter(|&t| targets & (1 << t) != 0) {
            if self.post_irq(id, t, intid, cpu) {
                continue;
            }
            if let Some(d) = self.domain_mut(id) {
                mask |= d.vgic.inject(t, intid);
                if let Some(c) = d.vcpus.get_mut(t) {
                    c.stats.irqs += 1;
                }
            }
        }
        self.wake_mask(id, mask, cpu);
    }

    /// A stage-2 data abort: emulate the GIC, or stop the domain for touching memory it
    /// does not have.
    fn data_abort(
        &mut self,
        cpu: usize,
        key: VcpuKey,
        regs: &mut GuestRegs,
        abort: Abort,
        esr: u64,
    ) {
        let (id, v) = key_parts(key);
        if self.lazy_fault(id, abort.ipa.as_u64(), abort.fault, cpu) {
            // Its first touch of a RAM block: retried once the block is scrubbed and mapped.
            return;
        }
        let stop = StopReason::Stage2Fault {
            ipa: abort.ipa.as_u64(),
            esr,
        };
        let Some(access) = abort.access else {
            // No syndrome (e.g. a load pair): we cannot emulate it.
            self.stop_domain(id, stop, cpu);
            return;
        };
        let Some(d) = self.domain_mut(id) else { return };
        let reg = usize::from(access.reg);
        let sgir = trap::abort_sgir_write(&abort).filter(|_| d.vgic.version() == GicVersion::V2);
        if let Some(rt) = sgir {
            // As a vGICv3's ICC_SGI1R: posted where it can be. Through the model, an SGI to
            // a pinned-exclusive vCPU would make its completion, and with it that vCPU's
            // next posted interrupt, take the locked path, round after round. Nor is the
            // vGIC configuration changed, so no CPU's cached view goes stale.
            let raw = regs.x.get(usize::from(rt)).copied().unwrap_or(0);
            let (intid, targets) = crate::vgic::sgir_targets(d.vgic.nr_vcpus(), v, raw as u32);
            regs.pc += u64::from(abort.instr_len);
            self.send_sgi(id, intid, targets, cpu);
            return;
        }
        let write = abort
            .write
            .then(|| access.store_value(regs.x.get(reg).copied().unwrap_or(0)));
        let outcome = d.vgic.mmio(
            v,
            GuestPhysAddr::new(abort.ipa.as_u64()),
            access.width,
            write,
        );
        d.report_vgic_warnings();
        match outcome {
            MmioOutcome::Read(value) => {
                if reg != 31 {
                    regs.x[reg] = access.load_value(value);
                }
                regs.pc += u64::from(abort.instr_len);
            }
            MmioOutcome::Write { kick } => {
                regs.pc += u64::from(abort.instr_len);
                // Other CPUs cache their loaded vCPU's timer priority and private
                // configuration: make them stale (a vGICv2's GICD_SGIR, which changes
                // none of it, was sent above).
                super::percpu::vgic_changed(usize::from(id.0));
                self.wake_mask(id, kick, cpu);
            }
            MmioOutcome::NotGic => {
                let ipa = abort.ipa.as_u64();
                match self.device_mmio(id, ipa, access.width, write) {
                    Some(value) => {
                        if write.is_none() && reg != 31 {
                            regs.x[reg] = access.load_value(value);
                        }
                        regs.pc += u64::from(abort.instr_len);
                    }
                    None if self.revoked_map(id, ipa) => {
                        // A grant mapping whose granter died: reads as zeros, writes vanish.
                        if write.is_none() && reg != 31 {
                            regs.x[reg] = 0;
                        }
                        regs.pc += u64::from(abort.instr_len);
                    }
                    // Outside every window it holds: a neighbour's registers, or nothing.
                    None => self.stop_domain(id, stop, cpu),
                }
            }
        }
    }
}

/// A hung domain (`DomainFault` with `FaultKind::Hang`) spins on the instruction that
/// trapped, with every interrupt masked: an HVC (the trap's PC is after it) or a WFI/WFE
/// (the trap's PC is at it) is executed again and again and never completes, so the domain
/// keeps its vCPU busy and never gets back to its loop, as a domain wedged in a busy-wait
/// does. Returns whether `exit` was such an instruction.
fn hang_in_place(exit: &Exit, regs: &mut GuestRegs) -> bool {
    /// PSTATE.{D,A,I,F}.
    const DAIF: u64 = 0xf << 6;
    match exit {
        Exit::Hvc { .. } => regs.rewind_hvc(),
        Exit::Wfi | Exit::Wfe => {}
        _ => return false,
    }
    regs.pstate |= DAIF;
    true
}

/// Delivers an Undefined Instruction exception to the loaded vCPU's EL1.
pub fn inject_undef(regs: &mut GuestRegs) {
    let mode = regs.pstate & 0xf;
    let offset = match mode {
        0b0101 => 0x200, // EL1h
        0b0100 => 0x000, // EL1t
        _ => 0x400,      // from EL0 (AArch64)
    };
    write_esr_el1(1 << 25); // EC 0 (unknown), IL = 32-bit instruction
    write_elr_el1(regs.pc);
    write_spsr_el1(regs.pstate);
    regs.pc = read_vbar_el1() + offset;
    regs.pstate = crate::arch::context::PSTATE_EL1H_MASKED;
}

impl Hyp {
    /// Whether `ipa` is a page where domain `id` lost a grant mapping to its granter's death
    /// (logged once per domain).
    fn revoked_map(&mut self, id: protocol::ids::DomainId, ipa: u64) -> bool {
        let page = ipa & !(protocol::addr::PAGE_SIZE - 1);
        let Some(d) = self.domain_mut(id) else {
            return false;
        };
        if !d.xen.revoked_maps.contains(&page) {
            return false;
        }
        d.log_once(
            cause::REVOKED_GRANT,
            format_args!("touched a grant mapping whose granter is gone (reads as zeros)"),
        );
        true
    }
}
