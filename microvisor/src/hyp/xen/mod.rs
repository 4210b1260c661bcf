//! The Xen-compatible guest ABI (DESIGN §3.2): `HVC #0xEA1`, hypercall number in `x16`,
//! arguments in `x0..x4`, result in `x0` (zero or positive, or a negated errno).
//!
//! Pointer arguments are guest virtual addresses, copied once through [`guest::Loaded`]
//! (a bad pointer is -EFAULT). Each call is served under the global lock, except the
//! event-channel send and unmask ([`event_state::send_fast`], [`event_state::unmask_fast`])
//! and the grant copy ([`grant_state::copy_fast`]), each under a lock of its own.
//! The event-channel and grant-table state machines live in the host-tested
//! [`crate::xen`] module; this module copies arguments, applies results to stage 2 and the
//! vGIC, and keeps each domain's Xen-facing pages.

pub mod basic;
pub mod bits;
pub mod event_state;
pub mod events;
pub mod grant_state;
pub mod grants;
pub mod guest;
pub mod memory;
pub mod poll;
pub mod runstate;
pub mod setup;

use super::domain::cause;
use super::{key_parts, Hyp};
use crate::arch::context::GuestRegs;
use crate::sched::VcpuKey;
use protocol::addr::PhysAddr;
use protocol::layout::MAX_VCPUS;
use protocol::xen::{Hypercall, XenErrno};

/// A hypercall's outcome: the value for `x0`, or an errno.
pub type XenResult = Result<u64, XenErrno>;

/// `HVM_PARAM_*` values the builder set for a domain.
#[derive(Clone, Copy, Debug, Default)]
pub struct HvmParams {
    /// Guest frame of the xenstore ring page.
    pub store_pfn: u64,
    /// Port of the xenstore event channel (unbound, remote dom0).
    pub store_evtchn: u64,
    /// Guest frame of the PV console ring page.
    pub console_pfn: u64,
    /// Port of the console event channel (unbound, remote dom0).
    pub console_evtchn: u64,
}

/// One domain's Xen-facing state beyond event channels (and the windows onto its
/// shared_info and vcpu_infos, [`event_state`]) and grants.
#[derive(Debug, Default)]
pub struct XenDomain {
    /// Microvisor-owned shared_info frame (allocated at build; mapped where the guest asks).
    pub shared_info: Option<PhysAddr>,
    /// Guest frame the shared_info page is currently mapped at.
    pub shared_info_gfn: Option<u64>,
    /// Guest virtual address of each vCPU's runstate area.
    pub runstate: [Option<u64>; MAX_VCPUS],
    /// Each vCPU's runstate accounting.
    pub runstate_acct: [runstate::RunstateAcct; MAX_VCPUS],
    /// Magic pages (console, xenstore), microvisor-owned, consecutive.
    pub magic: Option<PhysAddr>,
    /// Parameters the guest reads with `HVMOP_get_param`.
    pub params: HvmParams,
    /// Grant-table frames mapped into the guest: (frame index, guest frame).
    pub grant_gfns: alloc::vec::Vec<(u32, u64)>,
    /// Pages where it mapped another domain's grant and lost the mapping because the
    /// granter was destroyed first (bounded by its maptrack size). Its accesses there read
    /// zeros and drop writes, as a dead granter's page would under Xen, instead of stopping
    /// it: a backend must survive its frontend's death.
    pub revoked_maps: alloc::vec::Vec<u64>,
}

/// The window onto the `vcpu_info` at `pa` (checked to lie in one page of the domain's
/// own memory by the caller).
pub fn vcpu_info_window(pa: PhysAddr) -> Option<crate::arch::phys::Window> {
    let size = core::mem::size_of::<protocol::xen::structs::VcpuInfo>() as u64;
    crate::arch::phys::Window::new(pa, size)
}

impl super::domain::Domain {
    /// Host address of guest-physical `ipa` if it is in memory the domain owns as seen
    /// through its physmap: its shared_info frame where it put it, its magic pages, else
    /// its RAM. Never a device, a page another domain granted it, its grant-table frames
    /// (mapped outside its RAM), or anything of the microvisor's.
    pub fn own_page(&self, ipa: u64) -> Option<PhysAddr> {
        crate::xen::physmap::own_page(&self.ram, self.xen.own_pages(), ipa)
    }
}

impl XenDomain {
    /// The pages that sit on top of its RAM in its physmap.
    pub fn own_pages(&self) -> crate::xen::physmap::OwnPages {
        crate::xen::physmap::OwnPages {
            shared_info: self.shared_info,
            shared_info_gfn: self.shared_info_gfn,
            magic: self.magic,
        }
    }
}

impl Hyp {
    /// Serves one Xen hypercall from vCPU `key`.
    pub fn xen_hypercall(&mut self, cpu: usize, key: VcpuKey, regs: &mut GuestRegs) {
        let (id, _) = key_parts(key);
        let a = [regs.x[0], regs.x[1], regs.x[2], regs.x[3], regs.x[4]];
        let result = match Hypercall::from_reg(regs.x[16]) {
            Some(Hypercall::XenVersion) => self.xen_version(id, a),
            Some(Hypercall::ConsoleIo) => self.xen_console_io(id, a),
            Some(Hypercall::HvmOp) => self.xen_hvm_op(id, a),
            Some(Hypercall::VcpuOp) => self.xen_vcpu_op(cpu, key, a),
            Some(Hypercall::SchedOp) => self.xen_sched_op(cpu, key, a),
            Some(Hypercall::MemoryOp) => self.xen_memory_op(id, a),
            Some(Hypercall::EventChannelOp) => self.xen_evtchn_op(cpu, id, a),
            Some(Hypercall::GrantTableOp) => match self.xen_grant_op(cpu, id, a) {
                grants::GrantCall::Done(r) => r,
                grants::GrantCall::Continue { uop, count } => {
                    // Xen's continuation: the trap's PC is after the HVC, so stepping back
                    // re-executes it with the rest of the array; x0 (the command) and x16
                    // stay. The lock is released in between, and an interrupt pending for
                    // the guest is taken first if it has interrupts unmasked.
                    regs.x[1] = uop;
                    regs.x[2] = count;
                    regs.rewind_hvc();
                    return;
                }
            },
            Some(Hypercall::VmAssist) => Err(XenErrno::ENOSYS),
            Some(Hypercall::PhysdevOp) | None => {
                if let Some(d) = self.domain_mut(id) {
                    d.log_once(
                        cause::XEN_HVC,
                        format_args!("Xen hypercall {} not implemented", regs.x[16]),
                    );
                }
                Err(XenErrno::ENOSYS)
            }
        };
        // A blocking call has already parked the vCPU; its result is still reported.
        regs.x[0] = match result {
            Ok(v) => v,
            Err(e) => e.to_ret(),
        };
    }
}

/// `DOMID_SELF` or the caller's own id means the caller; anything else is refused unless
/// `privileged`.
pub fn resolve_domid(
    caller: protocol::ids::DomainId,
    domid: u16,
    privileged: bool,
) -> Result<protocol::ids::DomainId, XenErrno> {
    if domid == protocol::xen::structs::DOMID_SELF || domid == caller.0 {
        return Ok(caller);
    }
    if privileged {
        Ok(protocol::ids::DomainId(domid))
    } else {
        Err(XenErrno::EPERM)
    }
}
