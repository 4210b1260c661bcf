//! `SCHEDOP_poll` as Xen defines it: it ends at its timeout (absolute system time in ns,
//! which on Bulkhead is the virtual counter in ns), at once for a timeout already past,
//! and when a port it names becomes pending even while that port is masked (how a guest
//! waits for one event without taking an upcall for it). Every wait here is bounded by our
//! own virtual timer 5 s out: a poll that ignored its wake would end there instead, and
//! the check reports it.

use super::{addr, op, Ctx};
use alloc::format;
use bulkhead_runtime::timer;
use bulkhead_runtime::xen::{self, MappedPage};
use protocol::xen::ring::{xs_message, xs_string, XsType, XsdSockmsg, XS_HEADER_LEN};
use protocol::xen::ring_io::{XS_REQ, XS_RSP};
use protocol::xen::structs::{SchedPoll, DOMID_SELF};
use protocol::xen::{HvmParam, Hypercall as H, SchedOp};

/// How long the timed poll waits.
const TIMEOUT_MS: u64 = 30;
/// The bound on every wait here (our own timer), and the verdict's limit below it.
const BOUND_MS: u64 = 5000;
const LIMIT_MS: u64 = 4000;

/// Polls `ports` until Xen timeout `timeout_ns`, bounded by our own timer; the call's `x0`
/// and how long it took in ms.
fn poll(ports: &mut [u32], timeout_ns: u64) -> (u64, u64) {
    let hz = timer::freq();
    let t0 = timer::now();
    timer::set_deadline(t0 + BOUND_MS * hz / 1000);
    let mut p = SchedPoll {
        ports: addr(&mut ports[0]),
        nr_ports: ports.len() as u32,
        _pad0: 0,
        timeout: timeout_ns,
    };
    let x0 = op(H::SchedOp, SchedOp::Poll as u32, &mut p);
    timer::stop();
    (x0, (timer::now() - t0) * 1000 / hz)
}

/// Bulkhead's system time in ns: the counter every domain reads.
fn now_ns() -> u64 {
    (u128::from(timer::now()) * 1_000_000_000 / u128::from(timer::freq())) as u64
}

/// Runs the poll checks on the xenstore channel (dom0 serves the other end).
pub fn run(cx: &mut Ctx) {
    let store = (
        xen::hvm_get_param(DOMID_SELF, HvmParam::StorePfn),
        xen::hvm_get_param(DOMID_SELF, HvmParam::StoreEvtchn),
    );
    let (Ok(pfn), Ok(port)) = store else {
        cx.truth(
            "poll: store channel",
            false,
            format!("{store:?}"),
            "a channel",
        );
        return;
    };
    let port = port as u32;
    xen::set_port_masked(port, true);
    xen::clear_port_pending(port);
    timed(cx, port);
    past(cx, port);
    masked_wake(cx, MappedPage::new(pfn * 4096), port);
    xen::clear_port_pending(port);
    xen::set_port_masked(port, false);
}

/// Nobody sends: the poll ends at its timeout, not before and not at our 5 s bound.
fn timed(cx: &mut Ctx, port: u32) {
    let hz = timer::freq();
    let start = timer::now();
    let deadline_ns = now_ns() + TIMEOUT_MS * 1_000_000;
    // A poll may end early for an interrupt (as a WFI may): poll again until the timeout.
    let mut polls = 0;
    let mut x0 = 0;
    while now_ns() < deadline_ns && polls < 100 {
        x0 = poll(&mut [port], deadline_ns).0;
        polls += 1;
    }
    let ms = (timer::now() - start) * 1000 / hz;
    cx.ret(
        "sched_op poll with a timeout",
        x0,
        testguest::xencheck::Want::Ok(0),
    );
    cx.truth(
        "poll ends at its timeout",
        (TIMEOUT_MS..LIMIT_MS).contains(&ms) && polls <= 8,
        format!("{ms}ms in {polls} polls"),
        format!("{TIMEOUT_MS}..{LIMIT_MS}ms in at most 8 polls"),
    );
}

/// A timeout already past: the poll returns at once.
fn past(cx: &mut Ctx, port: u32) {
    let (x0, ms) = poll(&mut [port], 1);
    cx.ret(
        "sched_op poll, timeout past",
        x0,
        testguest::xencheck::Want::Ok(0),
    );
    cx.truth(
        "poll with a past timeout returns",
        ms < LIMIT_MS,
        format!("{ms}ms"),
        format!("<{LIMIT_MS}ms"),
    );
}

/// Tries of [`masked_wake`] before it gives up on a reply that does not beat the poll. A
/// full test run once saw all of 3 tries raced (not under `-icount`, so timing is the
/// host's). The likely reason: this guest shares its pCPU with the `smp` guest's vCPU 0,
/// which its sibling's IPIs wake, and a wake right after our send switches us out while
/// dom0 answers.
const MASKED_TRIES: u32 = 10;

/// We ask xenstore for our name with the store's port masked and poll it without a
/// timeout: dom0's reply raises the masked port, which must end the poll.
fn masked_wake(cx: &mut Ctx, mut page: MappedPage, port: u32) {
    let mut woken = None;
    for attempt in 0..MASKED_TRIES {
        let req_id = 0x9011_0000 + attempt;
        let msg = xs_message(XsType::Read, req_id, 0, &xs_string(b"name"));
        if XS_REQ.produce(&mut page, &msg) != Ok(msg.len()) {
            cx.truth("poll: store request written", false, "ring full", "written");
            return;
        }
        let sent = xen::evtchn_send(port);
        // The reply may beat the poll (then it returns at once and proves nothing).
        let raced = xen::port_pending(port);
        let (x0, ms) = poll(&mut [port], 0);
        let raised = xen::port_pending(port);
        drain_reply(&mut page, req_id);
        xen::clear_port_pending(port);
        if sent.is_ok() && x0 == 0 && !raced {
            woken = Some((raised, ms));
            break;
        }
    }
    let Some((raised, ms)) = woken else {
        cx.truth(
            "poll on a masked port waited",
            false,
            "every reply raced it",
            "a wait",
        );
        return;
    };
    cx.truth(
        "poll woken by its masked port",
        raised && ms < LIMIT_MS,
        format!("pending {raised} after {ms}ms"),
        format!("pending true before {LIMIT_MS}ms"),
    );
}

/// Reads the store's reply to `req_id` off the response ring (within our 5 s bound), so
/// the runtime's own client later finds the ring as it left it.
fn drain_reply(page: &mut MappedPage, req_id: u32) {
    let end = timer::now() + BOUND_MS * timer::freq() / 1000;
    let mut got = alloc::vec::Vec::new();
    while timer::now() < end {
        let mut buf = [0u8; 256];
        let n = XS_RSP.consume(page, &mut buf).unwrap_or(0);
        got.extend_from_slice(&buf[..n]);
        if let Some(h) = XsdSockmsg::decode(&got) {
            let whole = XS_HEADER_LEN + h.len as usize;
            if got.len() >= whole {
                if h.req_id == req_id {
                    return;
                }
                got.drain(..whole);
            }
        }
        core::hint::spin_loop();
    }
}
