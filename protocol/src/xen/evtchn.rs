//! `event_channel_op` argument structures (2-level ABI), re-exported from [`super::structs`].

use super::structs::{DomId, EvtchnPort};

wire! {
    /// `evtchn_alloc_unbound`: allocate a port in `dom` that `remote_dom` may bind.
    pub struct EvtchnAllocUnbound {
        /// Domain to allocate in ([`super::structs::DOMID_SELF`] for a guest).
        pub dom: DomId,
        /// Domain allowed to bind it.
        pub remote_dom: DomId,
        /// Out: the new port.
        pub port: EvtchnPort,
    }
}
layout!(EvtchnAllocUnbound, 8, dom = 0, remote_dom = 2, port = 4);

wire! {
    /// `evtchn_bind_interdomain`: connect a new local port to a remote unbound port.
    pub struct EvtchnBindInterdomain {
        /// Remote domain.
        pub remote_dom: DomId,
        /// Padding.
        pub _pad0: u16,
        /// Remote port, unbound and allocated for us.
        pub remote_port: EvtchnPort,
        /// Out: the new local port.
        pub local_port: EvtchnPort,
    }
}
layout!(
    EvtchnBindInterdomain,
    12,
    remote_dom = 0,
    remote_port = 4,
    local_port = 8
);

wire! {
    /// `evtchn_send`: notify the other end of a port.
    pub struct EvtchnSend {
        /// Local port.
        pub port: EvtchnPort,
    }
}
layout!(EvtchnSend, 4, port = 0);

wire! {
    /// `evtchn_close`: close a local port.
    pub struct EvtchnClose {
        /// Local port.
        pub port: EvtchnPort,
    }
}
layout!(EvtchnClose, 4, port = 0);

wire! {
    /// `evtchn_unmask`: clear a port's mask bit and re-deliver it if pending.
    pub struct EvtchnUnmask {
        /// Local port.
        pub port: EvtchnPort,
    }
}
layout!(EvtchnUnmask, 4, port = 0);

wire! {
    /// `evtchn_bind_vcpu`: deliver a port's upcalls to another vCPU.
    pub struct EvtchnBindVcpu {
        /// Local port.
        pub port: EvtchnPort,
        /// Target vCPU.
        pub vcpu: u32,
    }
}
layout!(EvtchnBindVcpu, 8, port = 0, vcpu = 4);

wire! {
    /// `evtchn_status`: query a port. `u` is a C union whose meaning depends on `status`; use
    /// the accessors rather than its raw words.
    pub struct EvtchnStatus {
        /// Domain owning the port.
        pub dom: DomId,
        /// Padding.
        pub _pad0: u16,
        /// Port to query.
        pub port: EvtchnPort,
        /// Out: an [`super::EvtchnStat`].
        pub status: u32,
        /// Out: vCPU the port is bound to.
        pub vcpu: u32,
        /// Out: state detail (unbound: remote domid; interdomain: domid, port; virq/pirq).
        pub u: [u32; 2],
    }
}
layout!(
    EvtchnStatus,
    24,
    dom = 0,
    port = 4,
    status = 8,
    vcpu = 12,
    u = 16
);

impl EvtchnStatus {
    /// Fills `u` for [`super::EvtchnStat::Unbound`]: the domain allowed to bind.
    pub fn set_unbound(&mut self, remote_dom: DomId) {
        self.u = [u32::from(remote_dom), 0];
    }
    /// Fills `u` for [`super::EvtchnStat::Interdomain`]: the connected remote end.
    pub fn set_interdomain(&mut self, remote_dom: DomId, remote_port: EvtchnPort) {
        self.u = [u32::from(remote_dom), remote_port];
    }
    /// Fills `u` for [`super::EvtchnStat::Virq`] or [`super::EvtchnStat::Pirq`].
    pub fn set_irq(&mut self, irq: u32) {
        self.u = [irq, 0];
    }
    /// The remote domain, for the unbound and interdomain states.
    pub fn remote_dom(&self) -> DomId {
        self.u[0] as DomId
    }
    /// The remote port, for the interdomain state.
    pub fn remote_port(&self) -> EvtchnPort {
        self.u[1]
    }
}
