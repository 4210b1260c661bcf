//! Each domain id's [`FastSlot`] (its console, heartbeats, reported idle time and trapped
//! device windows) behind a small lock of its own, so a domain's `ConsoleWrite`,
//! `ConsoleRead`, `Heartbeat` and `IdleReport`, and its accesses to its own sub-page device
//! windows, are served on its CPU's fast path (DESIGN §5: console output leaves the
//! exit path; a pinned vCPU's calls about itself take no global lock).
//!
//! Lock order: [`HYP`](super::HYP) (if held), then a slot's lock, then the log's, then the
//! heap's. The fast path takes only the slot's (and the log's inside it).
//!
//! Whether a slot serves a call is decided under [`HYP`](super::HYP): [`open`] when the
//! domain is built (from its capabilities), [`set_negotiated`] when it negotiates the
//! protocol, [`close`] when it is hung on purpose or freed. Anything the slot does not serve
//! takes the lock, whose handler refuses the call or hangs the caller.

use super::MAX_DOMAINS;
use crate::console_line::{register_text, Output};
use crate::fast_slot::FastSlot;
use crate::sync::Mutex;
use protocol::control::{Beats, CapOp};
use protocol::ids::DomainId;

static SLOTS: [Mutex<FastSlot>; MAX_DOMAINS] = [const { Mutex::new(FastSlot::new()) }; MAX_DOMAINS];

/// Domain `id`'s slot (`None` for an id out of range).
pub fn slot(id: DomainId) -> Option<&'static Mutex<FastSlot>> {
    SLOTS.get(usize::from(id.0))
}

/// Writes `bytes` as domain `id`'s console output: whole lines, sanitised, rate-limited,
/// each printed as `[name] text`.
pub fn write(id: DomainId, bytes: &[u8]) {
    if let Some(s) = slot(id) {
        print(&mut s.lock(), id, bytes);
    }
}

/// [`write`] with the slot's lock held.
fn print(c: &mut FastSlot, id: DomainId, bytes: &[u8]) {
    let (now, hz) = (crate::arch::counter_now(), crate::arch::counter_hz());
    c.write(bytes, now, hz, |name, out| match out {
        Output::Dropped(n) => {
            crate::info!("{id} ({name}): {n} console lines dropped (rate limit)")
        }
        Output::Line(line) => crate::log::print_domain_line(name, line),
    });
}

/// A new incarnation of domain `id` called `name`; `writable` if it holds WRITE on its
/// Console capability. Under [`HYP`](super::HYP), before its vCPUs run.
pub fn open(id: DomainId, name: &str, writable: bool) {
    if let Some(s) = slot(id) {
        s.lock().reset(name, writable);
    }
}

/// Domain `id` negotiated the protocol.
pub fn set_negotiated(id: DomainId) {
    if let Some(s) = slot(id) {
        s.lock().set_negotiated();
    }
}

/// Domain `id`'s calls go to the locked path from now on (hung on purpose, or freed).
pub fn close(id: DomainId) {
    if let Some(s) = slot(id) {
        s.lock().close();
    }
}

/// Domain `id` mapped the sub-page device window `w` (served by [`trapped_access`]).
pub fn add_window(id: DomainId, w: crate::platform::Region) {
    if let Some(s) = slot(id) {
        let _ = s.lock().add_window(w);
    }
}

/// Domain `id` holds no device any more (its devices are about to be reset).
pub fn clear_windows(id: DomainId) {
    if let Some(s) = slot(id) {
        s.lock().clear_windows();
    }
}

/// Performs a `width`-byte access of domain `id` at `addr` (`write`: the value to store)
/// on the device if it falls inside one of the domain's trapped windows: the value read
/// (0 for a write), or `None` for the locked path. Under the slot's lock, so a release
/// ([`clear_windows`]) waits for an access under way.
pub fn trapped_access(id: DomainId, addr: u64, width: u8, write: Option<u64>) -> Option<u64> {
    let s = slot(id)?.lock();
    let pa = s.trapped_access(addr, width)?;
    // Inside a virtio-mmio or management-UART window that EL2 mapped as device memory at
    // probe time, naturally aligned, of a width the device accepts (as `Hyp::device_mmio`).
    crate::arch::phys::Registers::new(protocol::addr::PhysAddr::new(pa), u64::from(width))?
        .access(0, width, write)
        .ok()
}

/// Domain `id`'s heartbeats in this incarnation.
pub fn beats(id: DomainId) -> Beats {
    slot(id).map_or_else(Beats::default, |s| s.lock().beats())
}

/// The idle time vCPU `v` of domain `id` reported.
pub fn idle(id: DomainId, v: usize) -> u64 {
    slot(id).map_or(0, |s| s.lock().idle(v))
}

/// Serves capability call `op` of vCPU `v` of domain `id` with arguments `x1..x6` from the
/// slot alone: the reply (`x1..x3`), or `None` if the locked path must answer (a call the
/// slot does not serve now, or arguments the locked path refuses).
pub fn serve(id: DomainId, v: usize, op: CapOp, x: &[u64; 6]) -> Option<[u64; 3]> {
    let mut c = slot(id)?.lock();
    match op {
        CapOp::ConsoleWrite if c.may_write() => {
            let (bytes, n) = register_text(x[0], &x[1..6])?;
            print(&mut c, id, &bytes[..n]);
            Some([x[0], 0, 0])
        }
        CapOp::ConsoleRead if c.may_read() => Some(c.take_input(x[0])),
        CapOp::Heartbeat if c.may_serve() => {
            c.beat(crate::arch::counter_now());
            Some([0; 3])
        }
        CapOp::IdleReport if c.may_serve() => {
            c.report_idle(v, x[0]);
            Some([0; 3])
        }
        _ => None,
    }
}
