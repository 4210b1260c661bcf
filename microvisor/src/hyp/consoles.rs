//! Each domain's debug console ([`ConsoleSlot`]: line assembly, rate limit, unread input)
//! kept outside the global lock, one small lock per domain id, so a domain's
//! `ConsoleWrite` and `ConsoleRead` are served on its CPU's fast path (DESIGN §5: console
//! output leaves the exit path). A pinned RTOS printing a line then never waits behind
//! other CPUs' exits, and its interrupts are never held off for that wait.
//!
//! Lock order: [`HYP`](super::HYP) (if held), then a console's lock, then the log's, then
//! the heap's. The fast path takes only the console's (and the log's inside it).
//!
//! Whether the domain in a slot may use it is decided under [`HYP`](super::HYP): [`open`]
//! when the domain is built (from its capabilities), [`set_negotiated`] when it negotiates
//! the protocol, [`close`] when it is hung on purpose or freed. The fast path serves a call
//! only while the slot allows it; anything else takes the lock, whose handler refuses the
//! call or hangs the caller.

use super::MAX_DOMAINS;
use crate::console_line::{register_text, ConsoleSlot, Output};
use crate::sync::Mutex;
use protocol::ids::DomainId;

static CONSOLES: [Mutex<ConsoleSlot>; MAX_DOMAINS] =
    [const { Mutex::new(ConsoleSlot::new()) }; MAX_DOMAINS];

/// Domain `id`'s console slot (`None` for an id out of range).
pub fn slot(id: DomainId) -> Option<&'static Mutex<ConsoleSlot>> {
    CONSOLES.get(usize::from(id.0))
}

/// Writes `bytes` as domain `id`'s console output: whole lines, sanitised, rate-limited,
/// each printed as `[name] text`.
pub fn write(id: DomainId, bytes: &[u8]) {
    if let Some(s) = slot(id) {
        print(&mut s.lock(), id, bytes);
    }
}

/// [`write`] with the slot's lock held.
fn print(c: &mut ConsoleSlot, id: DomainId, bytes: &[u8]) {
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

/// The fast path's `ConsoleWrite` for domain `id`: `len` bytes packed little-endian in
/// `words`. Returns the reply (`[written, 0, 0]`), or `None` if the locked path must
/// answer (slot closed, or a length the locked path refuses).
pub fn fast_write(id: DomainId, len: u64, words: &[u64; 5]) -> Option<[u64; 3]> {
    let (bytes, n) = register_text(len, words)?;
    let mut c = slot(id)?.lock();
    if !c.may_write() {
        return None;
    }
    print(&mut c, id, &bytes[..n]);
    Some([len, 0, 0])
}

/// The fast path's `ConsoleRead` for domain `id` (up to `want` bytes), or `None` if the
/// locked path must answer.
pub fn fast_read(id: DomainId, want: u64) -> Option<[u64; 3]> {
    let mut c = slot(id)?.lock();
    c.may_read().then(|| c.take_input(want))
}
