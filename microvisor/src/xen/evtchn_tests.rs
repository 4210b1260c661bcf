//! Host tests for the event-channel port tables.

use super::*;
use protocol::xen::structs::EvtchnStatus;
use protocol::xen::structs::DOMID_SELF;
use protocol::xen::EvtchnStat;

/// d0: 2 vCPUs, 16 ports; d1: 1 vCPU, 16 ports; d2: 4 vCPUs, 8 ports.
fn chans() -> EventChannels {
    let mut ec = EventChannels::new(4);
    ec.open_domain(0, 2, 16).unwrap();
    ec.open_domain(1, 1, 16).unwrap();
    ec.open_domain(2, 4, 8).unwrap();
    ec
}

/// Connects `a`'s new unbound port to a new port of `b`; returns `(a_port, b_port)`.
fn connect(ec: &mut EventChannels, a: DomId, b: DomId) -> (EvtchnPort, EvtchnPort) {
    let pa = ec.alloc_unbound(a, DOMID_SELF, b, false).unwrap();
    let bound = ec.bind_interdomain(b, a, pa).unwrap();
    (pa, bound.port)
}

#[test]
fn open_domain_validates() {
    let mut ec = EventChannels::new(4);
    assert_eq!(ec.open_domain(4, 1, 16), Err(SetupError::DomainOutOfRange));
    assert_eq!(
        EventChannels::new(0x8000).open_domain(DOMID_SELF, 1, 16),
        Err(SetupError::DomainOutOfRange)
    );
    assert_eq!(ec.open_domain(0, 0, 16), Err(SetupError::BadLimit));
    assert_eq!(ec.open_domain(0, 1, 0), Err(SetupError::BadLimit));
    assert_eq!(
        ec.open_domain(0, 1, EVTCHN_2L_NR_CHANNELS as u32 + 1),
        Err(SetupError::BadLimit)
    );
    ec.open_domain(0, 1, EVTCHN_2L_NR_CHANNELS as u32).unwrap();
    assert_eq!(ec.open_domain(0, 1, 16), Err(SetupError::AlreadyOpen));
    assert_eq!(ec.close_domain(1), Err(SetupError::NotOpen));
}

#[test]
fn port_zero_is_reserved() {
    let mut ec = chans();
    assert_eq!(ec.state(0, 0), Some(PortState::Reserved));
    assert_eq!(
        ec.status(0, DOMID_SELF, 0, false).unwrap().stat(),
        EvtchnStat::Closed
    );
    assert_eq!(ec.close(0, 0), Err(XenErrno::EINVAL));
    assert_eq!(ec.send(0, 0), Err(XenErrno::EINVAL));
    assert_eq!(ec.bind_vcpu(0, 0, 1), Err(XenErrno::EINVAL));
    assert_eq!(ec.alloc_unbound(0, 0, 1, false), Ok(1));
}

#[test]
fn alloc_takes_lowest_free_port_and_exhausts() {
    let mut ec = chans();
    // d2 has ports 1..=7.
    for want in 1..8 {
        assert_eq!(ec.alloc_unbound(2, DOMID_SELF, 0, false), Ok(want));
    }
    assert_eq!(
        ec.alloc_unbound(2, DOMID_SELF, 0, false),
        Err(XenErrno::ENOSPC)
    );
    ec.close(2, 3).unwrap();
    assert_eq!(ec.alloc_unbound(2, 2, 1, false), Ok(3));
    assert_eq!(ec.state(2, 3), Some(PortState::Unbound { remote: 1 }));
    assert_eq!(
        ec.alloc_unbound(2, DOMID_SELF, 0, false),
        Err(XenErrno::ENOSPC)
    );
}

#[test]
fn alloc_unbound_permissions_and_domids() {
    let mut ec = chans();
    assert_eq!(ec.alloc_unbound(1, 3, 0, true), Err(XenErrno::ESRCH));
    assert_eq!(ec.alloc_unbound(1, 0, 1, false), Err(XenErrno::EPERM));
    // A privileged caller allocates in another domain; remote DOMID_SELF is the caller.
    let p = ec.alloc_unbound(0, 1, DOMID_SELF, true).unwrap();
    assert_eq!(ec.state(1, p), Some(PortState::Unbound { remote: 0 }));
    // The remote need not exist (yet).
    let q = ec.alloc_unbound(1, DOMID_SELF, 3, false).unwrap();
    assert_eq!(ec.state(1, q), Some(PortState::Unbound { remote: 3 }));
    assert_eq!(
        ec.alloc_unbound(9, DOMID_SELF, 0, false),
        Err(XenErrno::ESRCH)
    );
}

#[test]
fn bind_interdomain_connects_both_ends_and_notifies_locally() {
    let mut ec = chans();
    let pa = ec.alloc_unbound(0, DOMID_SELF, 1, false).unwrap();
    let bound = ec.bind_interdomain(1, 0, pa).unwrap();
    assert_eq!(bound.port, 1);
    assert_eq!(
        bound.notify,
        Notify {
            dom: 1,
            port: 1,
            vcpu: 0
        }
    );
    assert_eq!(
        ec.state(0, pa),
        Some(PortState::Interdomain {
            remote: 1,
            remote_port: 1
        })
    );
    assert_eq!(
        ec.state(1, 1),
        Some(PortState::Interdomain {
            remote: 0,
            remote_port: pa
        })
    );
}

#[test]
fn bind_interdomain_refuses_wrong_ports() {
    let mut ec = chans();
    let for_d2 = ec.alloc_unbound(0, DOMID_SELF, 2, false).unwrap();
    // Unbound, but for another domain.
    assert_eq!(ec.bind_interdomain(1, 0, for_d2), Err(XenErrno::EINVAL));
    // Free, reserved, out of range.
    assert_eq!(ec.bind_interdomain(1, 0, 9), Err(XenErrno::EINVAL));
    assert_eq!(ec.bind_interdomain(1, 0, 0), Err(XenErrno::EINVAL));
    assert_eq!(ec.bind_interdomain(1, 0, 16), Err(XenErrno::EINVAL));
    assert_eq!(ec.bind_interdomain(1, 0, u32::MAX), Err(XenErrno::EINVAL));
    // Already connected.
    let _ = ec.bind_interdomain(2, 0, for_d2).unwrap();
    assert_eq!(ec.bind_interdomain(2, 0, for_d2), Err(XenErrno::EINVAL));
    // Unknown remote, unknown caller.
    assert_eq!(ec.bind_interdomain(1, 3, 1), Err(XenErrno::ESRCH));
    assert_eq!(ec.bind_interdomain(3, 0, 1), Err(XenErrno::ESRCH));
    // Failed binds leave the caller's ports free.
    assert_eq!(ec.alloc_unbound(1, DOMID_SELF, 0, false), Ok(1));
}

#[test]
fn bind_interdomain_full_caller_is_enospc() {
    let mut ec = chans();
    while ec.alloc_unbound(2, DOMID_SELF, 0, false).is_ok() {}
    let pa = ec.alloc_unbound(0, DOMID_SELF, 2, false).unwrap();
    assert_eq!(ec.bind_interdomain(2, 0, pa), Err(XenErrno::ENOSPC));
    // Xen allocates first, so even a wrong remote port reports ENOSPC.
    assert_eq!(ec.bind_interdomain(2, 0, 15), Err(XenErrno::ENOSPC));
}

#[test]
fn loopback_connects_two_ports_of_one_domain() {
    let mut ec = chans();
    let a = ec.alloc_unbound(1, DOMID_SELF, DOMID_SELF, false).unwrap();
    let b = ec.bind_interdomain(1, DOMID_SELF, a).unwrap().port;
    assert_ne!(a, b);
    let to_a = ec.send(1, b).unwrap().unwrap();
    assert_eq!((to_a.dom, to_a.port), (1, a));
    let to_b = ec.send(1, a).unwrap().unwrap();
    assert_eq!((to_b.dom, to_b.port), (1, b));
    ec.close(1, b).unwrap();
    assert_eq!(ec.state(1, a), Some(PortState::Unbound { remote: 1 }));
    // Closing the domain with a loopback pair reports no foreign peer.
    let b2 = ec.bind_interdomain(1, DOMID_SELF, a).unwrap().port;
    assert_eq!(b2, b);
    assert_eq!(ec.close_domain(1), Ok(Vec::new()));
}

#[test]
fn send_notifies_the_remote_ports_vcpu() {
    let mut ec = chans();
    let (p0, p2) = connect(&mut ec, 0, 2);
    ec.bind_vcpu(2, p2, 3).unwrap();
    assert_eq!(
        ec.send(0, p0),
        Ok(Some(Notify {
            dom: 2,
            port: p2,
            vcpu: 3
        }))
    );
    assert_eq!(
        ec.send(2, p2),
        Ok(Some(Notify {
            dom: 0,
            port: p0,
            vcpu: 0
        }))
    );
}

#[test]
fn send_to_unbound_is_dropped_and_bad_ports_are_einval() {
    let mut ec = chans();
    let p = ec.alloc_unbound(0, DOMID_SELF, 1, false).unwrap();
    assert_eq!(ec.send(0, p), Ok(None));
    assert_eq!(ec.send(0, 5), Err(XenErrno::EINVAL));
    assert_eq!(ec.send(0, 16), Err(XenErrno::EINVAL));
    assert_eq!(ec.send(0, u32::MAX), Err(XenErrno::EINVAL));
    assert_eq!(ec.send(3, 1), Err(XenErrno::ESRCH));
    assert_eq!(ec.send(DOMID_SELF, 1), Err(XenErrno::ESRCH));
}

#[test]
fn close_reverts_the_peer_and_resets_the_port() {
    let mut ec = chans();
    let (p0, p1) = connect(&mut ec, 0, 1);
    ec.bind_vcpu(0, p0, 1).unwrap();
    ec.close(0, p0).unwrap();
    assert_eq!(ec.state(0, p0), Some(PortState::Free));
    assert_eq!(ec.notify_vcpu(0, p0), Some(0));
    assert_eq!(ec.state(1, p1), Some(PortState::Unbound { remote: 0 }));
    assert_eq!(ec.send(1, p1), Ok(None));
    assert_eq!(ec.close(0, p0), Err(XenErrno::EINVAL));
    // The reverted port can be bound again by the closer.
    let again = ec.bind_interdomain(0, 1, p1).unwrap().port;
    assert_eq!(again, p0);
    assert_eq!(ec.send(1, p1).unwrap().map(|n| n.port), Some(p0));
    // Closing an unbound port just frees it.
    let u = ec.alloc_unbound(1, DOMID_SELF, 2, false).unwrap();
    ec.close(1, u).unwrap();
    assert_eq!(ec.state(1, u), Some(PortState::Free));
    assert_eq!(ec.close(1, 16), Err(XenErrno::EINVAL));
}

#[test]
fn close_domain_reverts_peers_and_allows_rebinding_after_restart() {
    let mut ec = chans();
    let (p0, p1) = connect(&mut ec, 0, 1);
    let (p2, p1b) = connect(&mut ec, 2, 1);
    let waiting = ec.alloc_unbound(0, DOMID_SELF, 1, false).unwrap();
    ec.bind_vcpu(2, p2, 2).unwrap();
    let mut reverted = ec.close_domain(1).unwrap();
    reverted.sort_by_key(|r| r.dom);
    assert_eq!(
        reverted,
        vec![PortRef { dom: 0, port: p0 }, PortRef { dom: 2, port: p2 }]
    );
    assert_eq!(ec.state(0, p0), Some(PortState::Unbound { remote: 1 }));
    assert_eq!(ec.state(2, p2), Some(PortState::Unbound { remote: 1 }));
    assert_eq!(ec.state(0, waiting), Some(PortState::Unbound { remote: 1 }));
    assert_eq!(ec.notify_vcpu(2, p2), Some(2));
    assert_eq!(ec.send(1, p1), Err(XenErrno::ESRCH));
    assert_eq!(ec.state(1, p1b), None);
    // Restart in place: same id, fresh table, re-bind the peers' ports.
    ec.open_domain(1, 1, 16).unwrap();
    assert_eq!(ec.bind_interdomain(1, 0, p0).unwrap().port, 1);
    assert_eq!(ec.bind_interdomain(1, 2, p2).unwrap().port, 2);
    assert_eq!(
        ec.send(1, 2).unwrap().map(|n| (n.dom, n.port, n.vcpu)),
        Some((2, p2, 2))
    );
}

#[test]
fn bind_vcpu_bounds_and_states() {
    let mut ec = chans();
    let p = ec.alloc_unbound(0, DOMID_SELF, 1, false).unwrap();
    assert_eq!(ec.bind_vcpu(0, p, 2), Err(XenErrno::ENOENT));
    assert_eq!(
        ec.bind_vcpu(0, 9, 2),
        Err(XenErrno::ENOENT),
        "vCPU checked first"
    );
    assert_eq!(ec.bind_vcpu(0, 9, 1), Err(XenErrno::EINVAL));
    assert_eq!(ec.bind_vcpu(0, 99, 1), Err(XenErrno::EINVAL));
    ec.bind_vcpu(0, p, 1).unwrap();
    assert_eq!(ec.notify_vcpu(0, p), Some(1));
    // The binding survives the connection.
    let q = ec.bind_interdomain(1, 0, p).unwrap().port;
    assert_eq!(ec.send(1, q).unwrap().map(|n| n.vcpu), Some(1));
    assert_eq!(ec.bind_vcpu(1, q, u32::MAX), Err(XenErrno::ENOENT));
    assert_eq!(ec.bind_vcpu(3, q, 0), Err(XenErrno::ESRCH));
}

#[test]
fn status_reports_each_state() {
    let mut ec = chans();
    let (p0, p1) = connect(&mut ec, 0, 1);
    let u = ec.alloc_unbound(0, DOMID_SELF, 2, false).unwrap();
    ec.bind_vcpu(0, u, 1).unwrap();

    let mut wire = EvtchnStatus {
        dom: DOMID_SELF,
        _pad0: 0,
        port: u,
        status: 0xdead,
        vcpu: 0xdead,
        u: [7, 7],
    };
    ec.status(0, DOMID_SELF, u, false).unwrap().fill(&mut wire);
    assert_eq!(wire.status, EvtchnStat::Unbound as u32);
    assert_eq!((wire.vcpu, wire.remote_dom()), (1, 2));

    ec.status(0, 0, p0, false).unwrap().fill(&mut wire);
    assert_eq!(wire.status, EvtchnStat::Interdomain as u32);
    assert_eq!(
        (wire.vcpu, wire.remote_dom(), wire.remote_port()),
        (0, 1, p1)
    );

    ec.status(0, 0, 9, false).unwrap().fill(&mut wire);
    assert_eq!((wire.status, wire.u), (EvtchnStat::Closed as u32, [0, 0]));
}

#[test]
fn status_of_other_domains_needs_privilege() {
    let mut ec = chans();
    let (_, p1) = connect(&mut ec, 0, 1);
    assert_eq!(ec.status(0, 1, p1, false), Err(XenErrno::EPERM));
    let s = ec.status(0, 1, p1, true).unwrap();
    assert_eq!(s.stat(), EvtchnStat::Interdomain);
    assert_eq!(ec.status(0, 3, 1, true), Err(XenErrno::ESRCH));
    assert_eq!(ec.status(0, DOMID_SELF, 16, false), Err(XenErrno::EINVAL));
    // Permission is decided before the port is looked at.
    assert_eq!(ec.status(0, 1, 16, false), Err(XenErrno::EPERM));
}

#[test]
fn notify_vcpu_covers_every_port_in_range() {
    let ec = chans();
    assert_eq!(ec.notify_vcpu(0, 15), Some(0));
    assert_eq!(ec.notify_vcpu(0, 16), None);
    assert_eq!(ec.notify_vcpu(3, 1), None);
    assert_eq!(ec.notify_vcpu(DOMID_SELF, 1), None);
}
