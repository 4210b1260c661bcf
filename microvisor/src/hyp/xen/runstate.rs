//! vCPU runstate areas (`VCPUOP_register_runstate_memory_area`): how long each vCPU spent
//! running, runnable but waiting, blocked or offline, which Linux reads as steal time.
//!
//! The area is a guest virtual address, so it is written only while that vCPU's EL1
//! context is in the hardware: when it is loaded on a CPU (it becomes running) and just
//! before it is unloaded (it becomes runnable or blocked). A pinned-exclusive vCPU is never
//! unloaded, so its area says "running" all along, which is the truth.

use super::guest::Loaded;
use crate::guestcopy;
use crate::hyp::Hyp;
use protocol::ids::DomainId;
use protocol::xen::structs::runstate;

pub use crate::xen::RunstateAcct;

impl Hyp {
    /// vCPU `v` of `id`, whose context is in this CPU's hardware, enters `state`; its
    /// registered area (if any) is updated.
    pub fn runstate_enter(&mut self, id: DomainId, v: usize, state: i32) {
        let Some(d) = self.domain_mut(id) else { return };
        let Some(va) = d.xen.runstate.get(v).copied().flatten() else {
            return;
        };
        // Only now: the clock's 128-bit scaling is not free, and every switch of a vCPU
        // without an area (most) comes through here.
        let now = super::basic::system_time_ns();
        let info = d.xen.runstate_acct[v].enter(state, now);
        // An area the guest unmapped is its own loss, as in Xen.
        let _ = guestcopy::write_struct(&mut Loaded(d), va, &info);
    }

    /// vCPU `v` of `id` leaves its CPU: runnable, or blocked if it is waiting. Inlined: the
    /// test for an area is all most switches do here.
    #[inline]
    pub fn runstate_leave(&mut self, id: DomainId, v: usize) {
        let Some(d) = self.domain(id) else { return };
        // Most vCPUs registered no area: every switch of a shared CPU comes through here.
        if d.xen.runstate.get(v).copied().flatten().is_none() {
            return;
        }
        let blocked = d.vcpus.get(v).is_some_and(|c| c.blocked);
        let state = if blocked {
            runstate::BLOCKED
        } else {
            runstate::RUNNABLE
        };
        self.runstate_enter(id, v, state);
    }
}
