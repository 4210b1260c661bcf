//! The values the event-channel table hands out: port states, who to notify, status.
#![forbid(unsafe_code)]

use protocol::xen::structs::{DomId, EvtchnPort, EvtchnStatus};
use protocol::xen::EvtchnStat;

/// The state of one port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not in use.
    Free,
    /// Port 0: never allocated, reported as closed.
    Reserved,
    /// Allocated; `remote` may bind it with `bind_interdomain`.
    Unbound {
        /// The only domain allowed to bind this port.
        remote: DomId,
    },
    /// Connected to `(remote, remote_port)`.
    Interdomain {
        /// The peer domain (may be the owner itself: loopback).
        remote: DomId,
        /// The peer's port.
        remote_port: EvtchnPort,
    },
}

/// Who to raise after a successful `send`: pass these to [`raise`](super::raise) on
/// `dom`'s event bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notify {
    /// Domain owning the port to raise.
    pub dom: DomId,
    /// The port to set pending.
    pub port: EvtchnPort,
    /// The vCPU whose selector and upcall flag to set (and to inject PPI 31 on).
    pub vcpu: u32,
}

/// The result of `bind_interdomain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "Xen always raises the new local port; drop this and an early event is lost"]
pub struct Bound {
    /// The new local port (the hypercall's `local_port`).
    pub port: EvtchnPort,
    /// Raise this on the caller's own bits: notifications sent while the remote port was
    /// unbound were dropped, so Xen conservatively marks the new port pending.
    pub notify: Notify,
}

/// One end of a connection, as reported by
/// [`EventChannels::close_domain`](super::EventChannels::close_domain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRef {
    /// The domain owning the port.
    pub dom: DomId,
    /// The port.
    pub port: EvtchnPort,
}

/// What `EVTCHNOP_status` reports about a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The port's state.
    pub state: PortState,
    /// The vCPU its upcalls go to.
    pub vcpu: u32,
}

impl Status {
    /// The wire state (`Free` and `Reserved` both read as closed, as in Xen).
    pub fn stat(&self) -> EvtchnStat {
        match self.state {
            PortState::Free | PortState::Reserved => EvtchnStat::Closed,
            PortState::Unbound { .. } => EvtchnStat::Unbound,
            PortState::Interdomain { .. } => EvtchnStat::Interdomain,
        }
    }

    /// Writes the output fields (`status`, `vcpu`, `u`) of the hypercall argument.
    pub fn fill(&self, out: &mut EvtchnStatus) {
        out.status = self.stat() as u32;
        out.vcpu = self.vcpu;
        match self.state {
            PortState::Free | PortState::Reserved => out.u = [0, 0],
            PortState::Unbound { remote } => out.set_unbound(remote),
            PortState::Interdomain {
                remote,
                remote_port,
            } => out.set_interdomain(remote, remote_port),
        }
    }
}
