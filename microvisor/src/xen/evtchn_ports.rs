//! One domain's port slots: lowest-free allocation up to the domain's port limit.
#![forbid(unsafe_code)]

use alloc::vec;
use alloc::vec::Vec;

use protocol::xen::structs::EvtchnPort;
use protocol::xen::XenErrno;

use super::PortState;

#[derive(Clone, Copy, Debug)]
pub(super) struct Port {
    pub(super) state: PortState,
    pub(super) vcpu: u32,
}

pub(super) const FREE: Port = Port {
    state: PortState::Free,
    vcpu: 0,
};

/// One domain's ports. `slots` grows on demand up to `max_ports`; ports at or beyond its
/// length but below `max_ports` are free, which keeps an idle domain's table small.
pub(super) struct Ports {
    pub(super) nvcpus: u32,
    pub(super) max_ports: u32,
    pub(super) slots: Vec<Port>,
}

impl Ports {
    /// A table with only port 0, reserved.
    pub(super) fn new(nvcpus: u32, max_ports: u32) -> Self {
        Self {
            nvcpus,
            max_ports,
            slots: vec![Port {
                state: PortState::Reserved,
                vcpu: 0,
            }],
        }
    }

    pub(super) fn get(&self, port: EvtchnPort) -> Option<Port> {
        if port >= self.max_ports {
            return None;
        }
        Some(self.slots.get(port as usize).copied().unwrap_or(FREE))
    }

    pub(super) fn slot_mut(&mut self, port: EvtchnPort) -> Option<&mut Port> {
        self.slots.get_mut(port as usize)
    }

    /// The lowest free port, made addressable in `slots`. Leaving it `Free` is harmless if the
    /// caller then fails, so the caller sets its state only once it has validated everything.
    pub(super) fn alloc(&mut self) -> Result<EvtchnPort, XenErrno> {
        if let Some(i) = self.slots.iter().position(|p| p.state == PortState::Free) {
            return u32::try_from(i).map_err(|_| XenErrno::ENOSPC);
        }
        let next = u32::try_from(self.slots.len()).map_err(|_| XenErrno::ENOSPC)?;
        if next >= self.max_ports {
            return Err(XenErrno::ENOSPC);
        }
        self.slots.push(FREE);
        Ok(next)
    }

    pub(super) fn set(&mut self, port: EvtchnPort, state: PortState) {
        if let Some(p) = self.slot_mut(port) {
            p.state = state;
        }
    }

    pub(super) fn free(&mut self, port: EvtchnPort) {
        if let Some(p) = self.slot_mut(port) {
            *p = FREE;
        }
    }
}
