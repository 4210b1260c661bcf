//! Event-channel attacks: bad ports, foreign and missing domains, port exhaustion; then the
//! positive loopback channel (alloc_unbound + bind_interdomain to ourselves, send, and the
//! port shows up pending in our shared_info).

use super::{addr, op, Ctx};
use alloc::format;
use alloc::vec::Vec;
use bulkhead_runtime::{arch, timer};
use protocol::xen::structs::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindVcpu, EvtchnClose, EvtchnSend,
    EvtchnStatus, EvtchnUnmask, SchedPoll, XenHvmParam, DOMID_INVALID, DOMID_SELF,
};
use protocol::xen::{EvtchnOp, EvtchnStat, HvmOp, HvmParam, Hypercall as H, SchedOp, XenErrno};
use testguest::xencheck::Want;

const EINVAL: XenErrno = XenErrno::EINVAL;
/// Ports the microvisor gives each domain (`MAX_PORTS` in its hyp/xen/events.rs).
const PORTS: u32 = 1024;

fn ev<T>(cmd: EvtchnOp, x: &mut T) -> u64 {
    op(H::EventChannelOp, cmd as u32, x)
}

fn alloc_unbound(dom: u16, remote_dom: u16) -> (u64, u32) {
    let mut a = EvtchnAllocUnbound {
        dom,
        remote_dom,
        port: 0,
    };
    (ev(EvtchnOp::AllocUnbound, &mut a), a.port)
}

fn bind(remote_dom: u16, remote_port: u32) -> (u64, u32) {
    let mut b = EvtchnBindInterdomain {
        remote_dom,
        _pad0: 0,
        remote_port,
        local_port: 0,
    };
    (ev(EvtchnOp::BindInterdomain, &mut b), b.local_port)
}

fn send(port: u32) -> u64 {
    ev(EvtchnOp::Send, &mut EvtchnSend { port })
}

fn close(port: u32) -> u64 {
    ev(EvtchnOp::Close, &mut EvtchnClose { port })
}

fn status(dom: u16, port: u32) -> (u64, EvtchnStatus) {
    let mut s = EvtchnStatus {
        dom,
        _pad0: 0,
        port,
        status: u32::MAX,
        vcpu: u32::MAX,
        u: [u32::MAX; 2],
    };
    (ev(EvtchnOp::Status, &mut s), s)
}

/// Our console channel's port (unbound or bound for dom0, never for us).
fn console_port() -> u32 {
    let mut p = XenHvmParam {
        domid: DOMID_SELF,
        pad: 0,
        index: HvmParam::ConsoleEvtchn as u32,
        value: 0,
    };
    op(H::HvmOp, HvmOp::GetParam as u32, &mut p);
    p.value as u32
}

/// Ports that are reserved, never allocated or out of range.
pub fn bad_ports(cx: &mut Ctx) {
    let ports = [
        ("port 0", 0),
        ("unallocated port 1000", 1000),
        ("port 1024", PORTS),
        ("port 4096", 4096),
        ("port u32::MAX", u32::MAX),
    ];
    for (what, port) in ports {
        cx.err(&format!("evtchn send {what}"), send(port), EINVAL);
        cx.err(&format!("evtchn close {what}"), close(port), EINVAL);
        let mut b = EvtchnBindVcpu { port, vcpu: 0 };
        let x0 = ev(EvtchnOp::BindVcpu, &mut b);
        cx.err(&format!("evtchn bind_vcpu {what}"), x0, EINVAL);
        // Unmasking works on any port in range (free ones too: only our own mask bit
        // changes); Xen also answers 0 for port 0.
        let want = if port < PORTS {
            Want::Ok(0)
        } else {
            Want::Err(EINVAL)
        };
        let x0 = ev(EvtchnOp::Unmask, &mut EvtchnUnmask { port });
        cx.ret(&format!("evtchn unmask {what}"), x0, want);
        let (x0, s) = status(DOMID_SELF, port);
        cx.ret(&format!("evtchn status {what}"), x0, want);
        if port < PORTS {
            let closed = EvtchnStat::Closed as u32;
            cx.truth(
                &format!("{what} reads closed"),
                s.status == closed,
                s.status,
                closed,
            );
        }
    }
    let mut b = EvtchnBindVcpu { port: 0, vcpu: 1 };
    let x0 = ev(EvtchnOp::BindVcpu, &mut b);
    cx.err("evtchn bind_vcpu to vcpu 1", x0, XenErrno::ENOENT);

    let allocs = [
        ("for dom0", 0, DOMID_SELF, XenErrno::EPERM),
        ("for d100", 100, DOMID_SELF, XenErrno::ESRCH),
        (
            "for DOMID_INVALID",
            DOMID_INVALID,
            DOMID_SELF,
            XenErrno::ESRCH,
        ),
    ];
    for (what, dom, remote, e) in allocs {
        cx.err(
            &format!("evtchn alloc_unbound {what}"),
            alloc_unbound(dom, remote).0,
            e,
        );
    }
    let console = console_port();
    let binds = [
        ("d100", 100, 1, XenErrno::ESRCH),
        ("DOMID_INVALID", DOMID_INVALID, 1, XenErrno::ESRCH),
        ("dom0 port 0", 0, 0, EINVAL),
        ("dom0 port 1 (not ours)", 0, 1, EINVAL),
        ("dom0 port 4096", 0, 4096, EINVAL),
        ("own console port (dom0's)", DOMID_SELF, console, EINVAL),
        ("own port 0", DOMID_SELF, 0, EINVAL),
    ];
    for (what, dom, port, e) in binds {
        cx.err(
            &format!("evtchn bind_interdomain {what}"),
            bind(dom, port).0,
            e,
        );
    }
    let x0 = status(0, 1).0;
    cx.err("evtchn status of dom0's port", x0, XenErrno::EPERM);
    let x0 = status(100, 1).0;
    cx.err("evtchn status of d100", x0, XenErrno::ESRCH);
}

/// Allocating until the table is full ends in ENOSPC, and closing gives every port back.
pub fn exhaustion(cx: &mut Ctx) {
    let mut held = Vec::new();
    let end = loop {
        let (x0, port) = alloc_unbound(DOMID_SELF, DOMID_SELF);
        if x0 != 0 || held.len() > 2 * PORTS as usize {
            break x0;
        }
        held.push(port);
    };
    cx.err("evtchn exhaustion ends in ENOSPC", end, XenErrno::ENOSPC);
    let n = held.len();
    let sane = (PORTS as usize - 8..PORTS as usize).contains(&n);
    cx.truth(
        "evtchn ports allocated before ENOSPC",
        sane,
        n,
        "1016..1023",
    );
    if let Some(&first) = held.first() {
        let x0 = bind(DOMID_SELF, first).0;
        cx.err(
            "evtchn bind_interdomain with a full table",
            x0,
            XenErrno::ENOSPC,
        );
    }
    let failed = held.iter().filter(|&&p| close(p) != 0).count();
    cx.truth("evtchn every exhausted port closes", failed == 0, failed, 0);
    let (x0, port) = alloc_unbound(DOMID_SELF, DOMID_SELF);
    cx.ret("evtchn alloc_unbound after exhaustion", x0, Want::Ok(0));
    cx.ret("evtchn close it again", close(port), Want::Ok(0));
}

/// The ports pending in our shared_info (cleared as they are taken).
fn pending() -> Vec<u32> {
    let mut v = Vec::new();
    arch::take_pending_ports(|p| v.push(p));
    v
}

/// A bound channel from us to ourselves (the port we send on), for the event storm.
pub(crate) fn loopback_port() -> Option<u32> {
    let (x0, a) = alloc_unbound(DOMID_SELF, DOMID_SELF);
    if x0 != 0 {
        return None;
    }
    let (x0, b) = bind(DOMID_SELF, a);
    (x0 == 0).then_some(b)
}

/// A channel from us to ourselves carries events both ways.
pub fn loopback(cx: &mut Ctx) {
    pending();
    let (x0, a) = alloc_unbound(DOMID_SELF, DOMID_SELF);
    cx.ret("loopback alloc_unbound", x0, Want::Ok(0));
    let (x0, s) = status(DOMID_SELF, a);
    let unbound = (EvtchnStat::Unbound as u32, cx.me);
    let got = (s.status, s.remote_dom());
    cx.ret("loopback status", x0, Want::Ok(0));
    cx.truth(
        "loopback port unbound for us",
        got == unbound,
        format!("{got:?}"),
        format!("{unbound:?}"),
    );
    let (x0, b) = bind(DOMID_SELF, a);
    cx.ret("loopback bind_interdomain", x0, Want::Ok(0));
    let (_, s) = status(DOMID_SELF, a);
    let want = (EvtchnStat::Interdomain as u32, cx.me, b);
    let got = (s.status, s.remote_dom(), s.remote_port());
    cx.truth(
        "loopback ports connected",
        got == want,
        format!("{got:?}"),
        format!("{want:?}"),
    );
    cx.err("loopback bind twice", bind(DOMID_SELF, a).0, EINVAL);

    // The new port starts pending (as in Xen), so a poll on it returns at once; the timer
    // only bounds the damage if it does not.
    let hz = timer::freq();
    let t0 = timer::now();
    timer::set_deadline(t0 + 5 * hz);
    let mut ports = [b];
    let mut poll = SchedPoll {
        ports: addr(&mut ports),
        nr_ports: 1,
        _pad0: 0,
        timeout: 0,
    };
    let x0 = op(H::SchedOp, SchedOp::Poll as u32, &mut poll);
    timer::stop();
    let ms = (timer::now() - t0) * 1000 / hz;
    cx.ret("sched_op poll on a pending port", x0, Want::Ok(0));
    // Blocking would end at the 5 s deadline; anything well below is a slow host.
    cx.truth(
        "poll did not block",
        ms < 4000,
        format!("{ms}ms"),
        "<4000ms",
    );
    let p = pending();
    cx.truth(
        "bound port starts pending",
        p.contains(&b),
        format!("{p:?}"),
        b,
    );

    cx.ret("loopback send", send(b), Want::Ok(0));
    let p = pending();
    let ok = p.contains(&a) && !p.contains(&b);
    cx.truth("loopback event", ok, format!("{p:?}"), format!("[{a}]"));
    cx.ret("loopback send back", send(a), Want::Ok(0));
    let p = pending();
    let ok = p.contains(&b) && !p.contains(&a);
    cx.truth(
        "loopback event back",
        ok,
        format!("{p:?}"),
        format!("[{b}]"),
    );

    cx.ret("loopback close", close(b), Want::Ok(0));
    let (_, s) = status(DOMID_SELF, a);
    let got = (s.status, s.remote_dom());
    cx.truth(
        "peer reverts to unbound",
        got == unbound,
        format!("{got:?}"),
        format!("{unbound:?}"),
    );
    cx.ret("send on unbound port is dropped", send(a), Want::Ok(0));
    let p = pending();
    cx.truth(
        "nothing raised by it",
        !p.contains(&a) && !p.contains(&b),
        format!("{p:?}"),
        "[]",
    );
    cx.ret("close the other end", close(a), Want::Ok(0));
    cx.err("close it twice", close(a), EINVAL);
}
