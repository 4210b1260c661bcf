//! Event channels, 2-level ABI: every domain's port table, held in the microvisor.
//!
//! A port is [`PortState::Free`], [`PortState::Reserved`] (port 0, never allocated, as in
//! Xen), [`PortState::Unbound`] (allocated, waiting for one named remote domain to bind it)
//! or [`PortState::Interdomain`] (connected). Each port also has the vCPU its upcalls go to
//! (vCPU 0 until `bind_vcpu`; reset to 0 when the port is freed).
//!
//! Invariants:
//! - `Interdomain { remote, remote_port }` at `(d, p)` holds exactly when `(remote,
//!   remote_port)` is `Interdomain { remote: d, remote_port: p }`: bind sets both ends, and
//!   close / [`EventChannels::close_domain`] revert the peer to `Unbound { remote: d }`, so a
//!   restarted domain (same id) can bind again;
//! - a port's vCPU is below its domain's vCPU count;
//! - no open domain has an id from `DOMID_SELF` up, so special ids never alias a domain.
//!
//! The pending/mask bits are guest memory, reached through [`EventBits`] ([`raise`],
//! [`unmask`]). The glue holds the `EventChannels` lock across an operation and the
//! [`raise`] it implies, so a port cannot be closed (and its pending bit cleared) between the
//! table lookup and the delivery.
//!
//! Errors are Xen's: `ESRCH` unknown domain, `EPERM` another domain without privilege,
//! `ENOSPC` no free port, `EINVAL` a port out of range or in the wrong state, `ENOENT` a
//! vCPU the domain does not have.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use protocol::xen::structs::{DomId, EvtchnPort, EVTCHN_2L_NR_CHANNELS};
use protocol::xen::XenErrno;

use super::{domain_slot, resolve, PerDomain, SetupError};

#[path = "evtchn_bits.rs"]
mod bits;
#[path = "evtchn_ports.rs"]
mod ports;
#[path = "evtchn_types.rs"]
mod types;

use ports::Ports;

pub use bits::{raise, unmask, EventBits, Raised};
pub use types::{Bound, Notify, PortRef, PortState, Status};

/// Every domain's event-channel ports, indexed by domain id.
pub struct EventChannels {
    domains: PerDomain<Ports>,
}

impl EventChannels {
    /// A table for domain ids `0..max_domains`, all closed.
    pub fn new(max_domains: usize) -> Self {
        Self {
            domains: PerDomain::new(max_domains),
        }
    }

    /// Opens `dom` (at domain build) with `nvcpus` vCPUs and ports `0..max_ports`, port 0
    /// reserved. `max_ports` is at most `EVTCHN_2L_NR_CHANNELS` (what the 2-level bitmaps
    /// address).
    pub fn open_domain(
        &mut self,
        dom: DomId,
        nvcpus: u32,
        max_ports: u32,
    ) -> Result<(), SetupError> {
        domain_slot(dom, usize::MAX)?;
        if nvcpus == 0 || max_ports == 0 || max_ports as usize > EVTCHN_2L_NR_CHANNELS {
            return Err(SetupError::BadLimit);
        }
        self.domains.open(dom, Ports::new(nvcpus, max_ports))
    }

    /// Closes `dom` (destroy or restart): every interdomain peer in another domain reverts
    /// to `Unbound { remote: dom }`, as Xen's close does, so the peer keeps its port and a
    /// new instance of `dom` can bind it again; then all of `dom`'s ports are dropped.
    /// Returns the peer ports that reverted. The dying domain's own pending bits are not
    /// touched: its shared_info goes with it.
    pub fn close_domain(&mut self, dom: DomId) -> Result<Vec<PortRef>, SetupError> {
        let ports = self.domains.close(dom)?;
        let mut reverted = Vec::new();
        for (port, p) in (0u32..).zip(ports.slots.iter()) {
            if let PortState::Interdomain {
                remote,
                remote_port,
            } = p.state
            {
                // Loopback peers are in the table just dropped.
                if remote != dom && self.revert_peer(dom, port, remote, remote_port) {
                    reverted.push(PortRef {
                        dom: remote,
                        port: remote_port,
                    });
                }
            }
        }
        Ok(reverted)
    }

    /// `EVTCHNOP_alloc_unbound`: a new port in `dom` (`DOMID_SELF` = the caller) that
    /// `remote` (`DOMID_SELF` = the caller, not `dom`, as in Xen) may bind. Returns the lowest
    /// free port, bound to vCPU 0. `remote` need not exist yet: a toolstack allocates ports
    /// for domains it is about to build.
    ///
    /// Errors: `ESRCH` `dom` is not open; `EPERM` `dom` is another domain and the caller is
    /// not `privileged`; `ENOSPC` no free port. (Xen looks for a port before checking
    /// permission; refusing first tells an unprivileged caller nothing about the table.)
    pub fn alloc_unbound(
        &mut self,
        caller: DomId,
        dom: DomId,
        remote: DomId,
        privileged: bool,
    ) -> Result<EvtchnPort, XenErrno> {
        let dom = resolve(caller, dom);
        let remote = resolve(caller, remote);
        let ports = self.ports_mut(dom).ok_or(XenErrno::ESRCH)?;
        if dom != caller && !privileged {
            return Err(XenErrno::EPERM);
        }
        let port = ports.alloc()?;
        ports.set(port, PortState::Unbound { remote });
        Ok(port)
    }

    /// `EVTCHNOP_bind_interdomain`: connects a new port of `caller` to `remote_port` of
    /// `remote` (`DOMID_SELF` = the caller: loopback is allowed, as in Xen). The remote port
    /// must be `Unbound { remote: caller }`; it keeps its vCPU, the new port gets vCPU 0.
    /// The caller must deliver [`Bound::notify`].
    ///
    /// Errors: `ESRCH` either domain is not open; `ENOSPC` the caller has no free port;
    /// `EINVAL` the remote port is out of range, not unbound, or meant for another domain.
    pub fn bind_interdomain(
        &mut self,
        caller: DomId,
        remote: DomId,
        remote_port: EvtchnPort,
    ) -> Result<Bound, XenErrno> {
        let remote = resolve(caller, remote);
        if self.ports(caller).is_none() {
            return Err(XenErrno::ESRCH);
        }
        let rstate = self
            .ports(remote)
            .ok_or(XenErrno::ESRCH)?
            .get(remote_port)
            .map(|p| p.state);
        let lports = self.ports_mut(caller).ok_or(XenErrno::ESRCH)?;
        // Xen allocates the local port first, so a full table is ENOSPC even when the
        // remote port is also wrong.
        let port = lports.alloc()?;
        if rstate != Some(PortState::Unbound { remote: caller }) {
            return Err(XenErrno::EINVAL);
        }
        lports.set(
            port,
            PortState::Interdomain {
                remote,
                remote_port,
            },
        );
        if let Some(rports) = self.ports_mut(remote) {
            rports.set(
                remote_port,
                PortState::Interdomain {
                    remote: caller,
                    remote_port: port,
                },
            );
        }
        Ok(Bound {
            port,
            notify: Notify {
                dom: caller,
                port,
                vcpu: 0,
            },
        })
    }

    /// `EVTCHNOP_send`: who to raise for a send on `port` of `caller`. An unbound port has
    /// nobody to notify; the event is dropped silently (`Ok(None)`), as in Xen.
    ///
    /// Errors: `ESRCH` the caller is not open; `EINVAL` the port is out of range, free or
    /// reserved.
    pub fn send(&self, caller: DomId, port: EvtchnPort) -> Result<Option<Notify>, XenErrno> {
        let p = self
            .ports(caller)
            .ok_or(XenErrno::ESRCH)?
            .get(port)
            .ok_or(XenErrno::EINVAL)?;
        match p.state {
            PortState::Free | PortState::Reserved => Err(XenErrno::EINVAL),
            PortState::Unbound { .. } => Ok(None),
            PortState::Interdomain {
                remote,
                remote_port,
            } => Ok(self.notify_vcpu(remote, remote_port).map(|vcpu| Notify {
                dom: remote,
                port: remote_port,
                vcpu,
            })),
        }
    }

    /// `EVTCHNOP_close`: frees `port` of `caller`; an interdomain peer reverts to
    /// `Unbound { remote: caller }`. The freed port is back on vCPU 0.
    ///
    /// Xen also clears the closed port's pending bit so a later re-bind does not fire a stale
    /// event: on success the glue must call `pending_clear(port)` on the caller's bits (if
    /// its shared_info is mapped).
    ///
    /// Errors: `ESRCH` the caller is not open; `EINVAL` the port is out of range, free or
    /// reserved.
    pub fn close(&mut self, caller: DomId, port: EvtchnPort) -> Result<(), XenErrno> {
        let p = self
            .ports(caller)
            .ok_or(XenErrno::ESRCH)?
            .get(port)
            .ok_or(XenErrno::EINVAL)?;
        match p.state {
            PortState::Free | PortState::Reserved => return Err(XenErrno::EINVAL),
            PortState::Unbound { .. } => {}
            PortState::Interdomain {
                remote,
                remote_port,
            } => {
                self.revert_peer(caller, port, remote, remote_port);
            }
        }
        if let Some(ports) = self.ports_mut(caller) {
            ports.free(port);
        }
        Ok(())
    }

    /// `EVTCHNOP_bind_vcpu`: future upcalls for `port` go to `vcpu`. Only unbound and
    /// interdomain ports can be re-bound.
    ///
    /// Errors: `ESRCH` the caller is not open; `ENOENT` no such vCPU (checked first, as in
    /// Xen); `EINVAL` the port is out of range, free or reserved.
    pub fn bind_vcpu(
        &mut self,
        caller: DomId,
        port: EvtchnPort,
        vcpu: u32,
    ) -> Result<(), XenErrno> {
        let ports = self.ports_mut(caller).ok_or(XenErrno::ESRCH)?;
        if vcpu >= ports.nvcpus {
            return Err(XenErrno::ENOENT);
        }
        let state = ports.get(port).ok_or(XenErrno::EINVAL)?.state;
        match state {
            PortState::Unbound { .. } | PortState::Interdomain { .. } => {
                if let Some(p) = ports.slot_mut(port) {
                    p.vcpu = vcpu;
                }
                Ok(())
            }
            PortState::Free | PortState::Reserved => Err(XenErrno::EINVAL),
        }
    }

    /// `EVTCHNOP_status`: the state of `port` in `dom` (`DOMID_SELF` = the caller). Another
    /// domain's ports are visible only to a `privileged` caller.
    ///
    /// Errors: `ESRCH` `dom` is not open; `EPERM` not allowed; `EINVAL` the port is out of
    /// range. (Xen checks the port before permission; checking permission first reveals
    /// nothing about another domain's table.)
    pub fn status(
        &self,
        caller: DomId,
        dom: DomId,
        port: EvtchnPort,
        privileged: bool,
    ) -> Result<Status, XenErrno> {
        let dom = resolve(caller, dom);
        let ports = self.ports(dom).ok_or(XenErrno::ESRCH)?;
        if dom != caller && !privileged {
            return Err(XenErrno::EPERM);
        }
        let p = ports.get(port).ok_or(XenErrno::EINVAL)?;
        Ok(Status {
            state: p.state,
            vcpu: p.vcpu,
        })
    }

    /// The vCPU `port` of `dom` notifies, for any port in range (free ones included), or
    /// `None` if `dom` is not open or the port is out of range. `EVTCHNOP_unmask` uses this:
    /// `None` is its `EINVAL`, otherwise pass the vCPU to [`unmask`].
    pub fn notify_vcpu(&self, dom: DomId, port: EvtchnPort) -> Option<u32> {
        self.ports(dom)?.get(port).map(|p| p.vcpu)
    }

    /// The state of `port` of `dom`, or `None` if `dom` is not open or the port is out of
    /// range.
    pub fn state(&self, dom: DomId, port: EvtchnPort) -> Option<PortState> {
        self.ports(dom)?.get(port).map(|p| p.state)
    }

    fn ports(&self, dom: DomId) -> Option<&Ports> {
        self.domains.get(dom)
    }

    fn ports_mut(&mut self, dom: DomId) -> Option<&mut Ports> {
        self.domains.get_mut(dom)
    }

    /// Reverts `(remote, remote_port)` to `Unbound { remote: dom }` if it is connected to
    /// `(dom, port)`; returns whether it was.
    fn revert_peer(
        &mut self,
        dom: DomId,
        port: EvtchnPort,
        remote: DomId,
        remote_port: EvtchnPort,
    ) -> bool {
        let Some(peer) = self.ports_mut(remote).and_then(|p| p.slot_mut(remote_port)) else {
            return false;
        };
        if peer.state
            != (PortState::Interdomain {
                remote: dom,
                remote_port: port,
            })
        {
            return false;
        }
        peer.state = PortState::Unbound { remote: dom };
        true
    }
}

#[cfg(test)]
#[path = "evtchn_tests.rs"]
mod tests;
