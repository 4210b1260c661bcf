//! What a domain's own calls about itself touch, kept per domain id outside the global
//! state so its CPU's fast path can serve them under this slot's lock alone
//! (`hyp::fast_slots`): its debug console (line assembly, rate limit, unread input), its
//! heartbeats and the idle time its vCPUs report. A pinned RTOS printing a line, beating
//! or reporting idle time then never waits behind other CPUs' exits.
//!
//! It also holds the sub-page device windows a driver domain mapped (its virtio-mmio
//! transports, DESIGN §6.1; dom0's management port is left to the locked path). Their
//! accesses trap, and its CPU's fast path performs one that falls inside such a window on
//! the device under this lock alone ([`FastSlot::trapped_access`]), as the locked path
//! would.
//!
//! Whether the slot serves a call is decided by the global state and recorded here:
//! `running` from the domain's build until it is hung on purpose or freed (a hung domain's
//! next call must reach the locked path, which hangs it), `writable` if it holds WRITE on
//! its Console capability, `negotiated` once it negotiated the protocol.
#![forbid(unsafe_code)]

use crate::console_line::{DomainConsole, Output};
use crate::passthrough::check_access;
use crate::platform::Region;
use alloc::collections::VecDeque;
use protocol::boot::MAX_NAME_LEN;
use protocol::control::{Beats, CONSOLE_READ_BYTES};
use protocol::layout::MAX_VCPUS;

/// Most unread input kept per domain; older bytes are dropped first.
pub const INPUT_LIMIT: usize = 4096;

/// Most trapped device windows a slot serves; a domain holding more has the rest served by
/// the locked path.
pub const MAX_TRAPPED_WINDOWS: usize = 8;

/// One domain id's slot.
pub struct FastSlot {
    /// Built, and neither hung on purpose nor freed.
    running: bool,
    /// It holds WRITE on its Console capability.
    writable: bool,
    /// It has negotiated the protocol (reading input needs that; writing does not).
    negotiated: bool,
    name: [u8; MAX_NAME_LEN],
    name_len: usize,
    lines: DomainConsole,
    input: VecDeque<u8>,
    /// Its heartbeats in this incarnation (`CapOp::Heartbeat`).
    beats: Beats,
    /// Per vCPU: counter ticks it says it spent idle in WFI (`CapOp::IdleReport`, a
    /// running total that only moves forward).
    idle: [u64; MAX_VCPUS],
    /// Sub-page device windows it mapped (direct-mapped: guest and host addresses agree).
    windows: [Option<Region>; MAX_TRAPPED_WINDOWS],
}

impl Default for FastSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl FastSlot {
    /// A closed, empty slot.
    pub const fn new() -> Self {
        Self {
            running: false,
            writable: false,
            negotiated: false,
            name: [0; MAX_NAME_LEN],
            name_len: 0,
            lines: DomainConsole::new(),
            input: VecDeque::new(),
            beats: Beats {
                count: 0,
                first: 0,
                last: 0,
            },
            idle: [0; MAX_VCPUS],
            windows: [None; MAX_TRAPPED_WINDOWS],
        }
    }

    /// A new incarnation called `name` (cut to [`MAX_NAME_LEN`] bytes at a character
    /// boundary): running, console `writable` as given, nothing carried over.
    pub fn reset(&mut self, name: &str, writable: bool) {
        *self = Self::new();
        let mut n = name.len().min(MAX_NAME_LEN);
        while !name.is_char_boundary(n) {
            n -= 1;
        }
        self.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        self.name_len = n;
        self.running = true;
        self.writable = writable;
    }

    /// Its calls go to the locked path from now on (hung on purpose, or freed).
    pub fn close(&mut self) {
        self.running = false;
    }

    /// It mapped the trapped device window `w`; false if the slot has no room (its
    /// accesses there then take the locked path, which serves them as well).
    pub fn add_window(&mut self, w: Region) -> bool {
        if self.windows.contains(&Some(w)) {
            return true;
        }
        let Some(free) = self.windows.iter_mut().find(|s| s.is_none()) else {
            return false;
        };
        *free = Some(w);
        true
    }

    /// It no longer holds any device (released before the devices are reset).
    pub fn clear_windows(&mut self) {
        self.windows = [None; MAX_TRAPPED_WINDOWS];
    }

    /// The host address of a `width`-byte access at `addr`, if the slot is open and the
    /// access lies wholly inside one of its windows, naturally aligned, 1/2/4/8 bytes wide
    /// ([`check_access`], the locked path's rule); `None` leaves it to the locked path.
    pub fn trapped_access(&self, addr: u64, width: u8) -> Option<u64> {
        if !self.running {
            return None;
        }
        self.windows
            .iter()
            .flatten()
            .find_map(|&w| check_access(w, addr, width).ok())
    }

    /// The domain negotiated the protocol.
    pub fn set_negotiated(&mut self) {
        self.negotiated = true;
    }

    /// Whether its `Heartbeat` and `IdleReport` may be served from the slot alone.
    pub fn may_serve(&self) -> bool {
        self.running
    }

    /// Whether a `ConsoleWrite` may be served from the slot alone.
    pub fn may_write(&self) -> bool {
        self.running && self.writable
    }

    /// Whether a `ConsoleRead` may be served from the slot alone.
    pub fn may_read(&self) -> bool {
        self.may_write() && self.negotiated
    }

    /// Takes console bytes written at counter `now` (at `hz`): `emit` gets the name and
    /// each output (see [`DomainConsole::write`]).
    pub fn write(
        &mut self,
        bytes: &[u8],
        now: u64,
        hz: u64,
        mut emit: impl FnMut(&str, Output<'_>),
    ) {
        // Fields, not `self.name()`: the line assembly below borrows `self.lines` mutably.
        let name = as_name(&self.name[..self.name_len]);
        self.lines.write(bytes, now, hz, |out| emit(name, out));
    }

    /// The domain's name.
    pub fn name(&self) -> &str {
        as_name(&self.name[..self.name_len])
    }

    /// Queues one byte of input, dropping the oldest if [`INPUT_LIMIT`] are waiting.
    pub fn push_input(&mut self, b: u8) {
        if self.input.len() >= INPUT_LIMIT {
            self.input.pop_front();
        }
        self.input.push_back(b);
    }

    /// Takes up to `want` bytes of input as a `ConsoleRead` reply: `[count, bytes 0..8,
    /// 8..16]` (little-endian).
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

    /// Records a heartbeat at counter `now`.
    pub fn beat(&mut self, now: u64) {
        self.beats.beat(now);
    }

    /// Its heartbeats in this incarnation.
    pub fn beats(&self) -> Beats {
        self.beats
    }

    /// vCPU `v` reports `total` ticks idle so far (ignored if it goes backwards or `v` is
    /// out of range).
    pub fn report_idle(&mut self, v: usize, total: u64) {
        if let Some(t) = self.idle.get_mut(v) {
            *t = (*t).max(total);
        }
    }

    /// The idle time vCPU `v` reported (0 if none or out of range).
    pub fn idle(&self, v: usize) -> u64 {
        self.idle.get(v).copied().unwrap_or(0)
    }
}

/// A name stored as bytes (always cut at a character boundary by [`FastSlot::reset`]).
fn as_name(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec as StdVec;

    #[test]
    fn a_slot_serves_per_incarnation_and_reads_only_once_negotiated() {
        let mut s = FastSlot::new();
        assert!(!s.may_serve() && !s.may_write() && !s.may_read());
        s.reset("rtos", true);
        assert!(s.may_serve() && s.may_write() && !s.may_read());
        s.set_negotiated();
        assert!(s.may_read());
        s.push_input(b'x');
        s.beat(5);
        s.report_idle(0, 100);
        s.close();
        assert!(!s.may_serve() && !s.may_write() && !s.may_read());
        // The next incarnation starts with nothing carried over.
        s.reset("rtos", true);
        assert!(!s.may_read());
        s.set_negotiated();
        assert_eq!(s.take_input(16), [0, 0, 0]);
        assert_eq!(s.beats().count, 0);
        assert_eq!(s.idle(0), 0);
        // No Console WRITE right: heartbeats yes, console no.
        s.reset("nocons", false);
        assert!(s.may_serve() && !s.may_write() && !s.may_read());
    }

    #[test]
    fn names_are_cut_at_a_character_boundary() {
        let mut s = FastSlot::new();
        let long = "é".repeat(MAX_NAME_LEN);
        s.reset(&long, true);
        assert!(s.name().len() <= MAX_NAME_LEN && !s.name().is_empty());
        assert!(s.name().chars().all(|c| c == 'é'));
        let mut seen = StdVec::new();
        s.reset("blkdom", true);
        s.write(b"up\n", 0, 1_000, |name, o| {
            if let Output::Line(l) = o {
                seen.push(std::format!("[{name}] {}", String::from_utf8_lossy(l)));
            }
        });
        assert_eq!(seen, ["[blkdom] up"]);
    }

    #[test]
    fn input_is_taken_in_order_packed_and_bounded() {
        let mut s = FastSlot::new();
        for b in b"0123456789abcdefXYZ" {
            s.push_input(*b);
        }
        let [n, lo, hi] = s.take_input(u64::MAX);
        assert_eq!(n, 16);
        assert_eq!(lo.to_le_bytes(), *b"01234567");
        assert_eq!(hi.to_le_bytes(), *b"89abcdef");
        assert_eq!(
            s.take_input(2),
            [2, u64::from(b'X') | u64::from(b'Y') << 8, 0]
        );
        assert_eq!(s.take_input(0)[0], 0);
        // A full queue drops its oldest bytes.
        for i in 0..INPUT_LIMIT + 3 {
            s.push_input((i % 251) as u8);
        }
        let [n, lo, _] = s.take_input(1);
        assert_eq!(n, 1);
        assert_eq!(lo, 3, "Z and the first three pushed were dropped");
    }

    #[test]
    fn beats_and_idle_reports_only_move_forward() {
        let mut s = FastSlot::new();
        s.reset("blkdom", false);
        s.beat(0);
        s.beat(70);
        assert_eq!(
            s.beats(),
            Beats {
                count: 2,
                first: 1,
                last: 70
            }
        );
        s.report_idle(1, 500);
        s.report_idle(1, 400);
        assert_eq!(s.idle(1), 500, "a running total never goes back");
        s.report_idle(MAX_VCPUS, 9);
        assert_eq!(s.idle(MAX_VCPUS), 0);
    }

    #[test]
    fn trapped_windows_are_served_only_inside_while_running_and_until_released() {
        use protocol::addr::PhysAddr;
        let transport = |i: u64| Region {
            base: PhysAddr::new(0x0a00_0000 + i * 0x200),
            size: 0x200,
        };
        let mut s = FastSlot::new();
        assert!(s.add_window(transport(1)));
        // Not open yet: the locked path.
        assert_eq!(s.trapped_access(0x0a00_0200, 4), None);
        s.reset("blkdom", false);
        assert!(s.add_window(transport(1)));
        assert!(s.add_window(transport(1)), "mapping twice keeps one");
        assert_eq!(s.trapped_access(0x0a00_0200, 4), Some(0x0a00_0200));
        assert_eq!(s.trapped_access(0x0a00_03fc, 4), Some(0x0a00_03fc));
        // The neighbour's transport, straddling the end, misaligned, odd widths: refused.
        for (addr, width) in [
            (0x0a00_0000, 4),
            (0x0a00_0400, 4),
            (0x0a00_03fe, 4),
            (0x0a00_0202, 4),
            (0x0a00_0200, 3),
        ] {
            assert_eq!(s.trapped_access(addr, width), None, "{addr:#x}/{width}");
        }
        for i in 2..(MAX_TRAPPED_WINDOWS as u64 + 1) {
            assert!(s.add_window(transport(i)));
        }
        assert!(
            !s.add_window(transport(40)),
            "full: left to the locked path"
        );
        s.close();
        assert_eq!(s.trapped_access(0x0a00_0200, 4), None, "hung or freed");
        s.reset("blkdom", false);
        assert_eq!(
            s.trapped_access(0x0a00_0200, 4),
            None,
            "a new incarnation maps its own"
        );
        assert!(s.add_window(transport(1)));
        s.clear_windows();
        assert_eq!(s.trapped_access(0x0a00_0200, 4), None, "released");
    }
}
