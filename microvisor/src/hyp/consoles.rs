//! Each domain's debug console — its line assembly, rate limit and unread input — kept
//! outside the global lock, one small lock per domain id, so a domain's `ConsoleWrite` and
//! `ConsoleRead` are served on its CPU's fast path (DESIGN §5: console output leaves the
//! exit path). A pinned RTOS printing a line then never waits behind other CPUs' exits, and
//! its interrupts are never held off for that wait.
//!
//! Lock order: [`HYP`](super::HYP) (if held), then a console's lock, then the log's, then
//! the heap's. The fast path takes only the console's (and the log's inside it).
//!
//! Which domain may use its slot is decided under [`HYP`](super::HYP): [`open`] when the
//! domain is built (from its capabilities), [`set_negotiated`] when it negotiates the
//! protocol, [`close`] when it is hung on purpose or freed. The fast path serves a call only
//! while the slot is open; anything else takes the lock, whose handler refuses or hangs it.

use super::MAX_DOMAINS;
use crate::console_line::{DomainConsole, Output};
use crate::sync::Mutex;
use alloc::collections::VecDeque;
use protocol::boot::MAX_NAME_LEN;
use protocol::control::{CONSOLE_READ_BYTES, CONSOLE_REG_BYTES};
use protocol::ids::DomainId;

/// Most unread input kept per domain; older bytes are dropped first.
const INPUT_LIMIT: usize = 4096;

/// One domain's console.
pub struct Console {
    /// The domain holds WRITE on its Console capability and is not hung on purpose.
    open: bool,
    /// It has negotiated the protocol (`ConsoleRead` needs that; `ConsoleWrite` does not).
    negotiated: bool,
    name: [u8; MAX_NAME_LEN],
    name_len: usize,
    lines: DomainConsole,
    input: VecDeque<u8>,
}

impl Console {
    const fn new() -> Self {
        Self {
            open: false,
            negotiated: false,
            name: [0; MAX_NAME_LEN],
            name_len: 0,
            lines: DomainConsole::new(),
            input: VecDeque::new(),
        }
    }

    /// Writes `bytes` as domain `id`'s console output: whole lines, sanitised, rate-limited,
    /// each printed as `[name] text`.
    pub fn write(&mut self, id: DomainId, bytes: &[u8]) {
        let (now, hz) = (crate::arch::counter_now(), crate::arch::counter_hz());
        let Self {
            name,
            name_len,
            lines,
            ..
        } = self;
        let name = core::str::from_utf8(&name[..*name_len]).unwrap_or("?");
        lines.write(bytes, now, hz, |out| match out {
            Output::Dropped(n) => {
                crate::info!("{id} ({name}): {n} console lines dropped (rate limit)")
            }
            Output::Line(line) => crate::log::print_domain_line(name, line),
        });
    }

    /// Queues one byte of input, dropping the oldest if full.
    pub fn push_input(&mut self, b: u8) {
        if self.input.len() >= INPUT_LIMIT {
            self.input.pop_front();
        }
        self.input.push_back(b);
    }

    /// Takes up to `want` bytes of input: `[count, bytes 0..8, 8..16]` (the call's reply).
    pub fn take_input(&mut self, want: u64) -> [u64; 3] {
        let want = usize::try_from(want).map_or(CONSOLE_READ_BYTES, |w| w.min(CONSOLE_READ_BYTES));
        let mut bytes = [0u8; CONSOLE_READ_BYTES];
        let mut n = 0;
        while n < want {
            let Some(b) = self.input.pop_front() else {
                break;
            };
            bytes[n] = b;
            n += 1;
        }
        let (lo, hi) = bytes.split_at(8);
        let word = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or_default());
        [n as u64, word(lo), word(hi)]
    }
}

static CONSOLES: [Mutex<Console>; MAX_DOMAINS] =
    [const { Mutex::new(Console::new()) }; MAX_DOMAINS];

/// Domain `id`'s console slot (`None` for an id out of range).
pub fn slot(id: DomainId) -> Option<&'static Mutex<Console>> {
    CONSOLES.get(usize::from(id.0))
}

/// A new incarnation of domain `id` called `name` (fresh lines and input); `writable` if
/// it holds WRITE on its Console capability. Under [`HYP`](super::HYP), before its vCPUs run.
pub fn open(id: DomainId, name: &str, writable: bool) {
    if let Some(s) = slot(id) {
        let mut c = s.lock();
        *c = Console::new();
        let n = name.len().min(MAX_NAME_LEN);
        c.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        c.name_len = n;
        c.open = writable;
    }
}

/// Domain `id` negotiated the protocol.
pub fn set_negotiated(id: DomainId) {
    if let Some(s) = slot(id) {
        s.lock().negotiated = true;
    }
}

/// Domain `id`'s calls go to the locked path from now on (hung on purpose, or freed).
pub fn close(id: DomainId) {
    if let Some(s) = slot(id) {
        s.lock().open = false;
    }
}

/// The fast path's `ConsoleWrite` for domain `id`: `len` bytes packed little-endian in
/// `words`. Returns the reply (`[written, 0, 0]`), or `None` if the locked path must
/// answer (slot closed, or a length the locked path refuses).
pub fn fast_write(id: DomainId, len: u64, words: &[u64; 5]) -> Option<[u64; 3]> {
    let n = usize::try_from(len)
        .ok()
        .filter(|&n| n <= words.len() * 8)?;
    let mut c = slot(id)?.lock();
    if !c.open {
        return None;
    }
    let mut bytes = [0u8; CONSOLE_REG_BYTES];
    for (chunk, w) in bytes.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    c.write(id, &bytes[..n]);
    Some([len, 0, 0])
}

/// The fast path's `ConsoleRead` for domain `id` (up to `want` bytes), or `None` if the
/// locked path must answer.
pub fn fast_read(id: DomainId, want: u64) -> Option<[u64; 3]> {
    let mut c = slot(id)?.lock();
    if !(c.open && c.negotiated) {
        return None;
    }
    Some(c.take_input(want))
}
