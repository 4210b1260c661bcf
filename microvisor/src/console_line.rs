//! A domain's debug console: bytes become whole, printable lines, and a flood is dropped
//! (counted) rather than slowing the shared UART for every other domain.

use crate::ratelimit::TokenBucket;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use protocol::boot::MAX_NAME_LEN;
use protocol::control::{CONSOLE_READ_BYTES, CONSOLE_REG_BYTES};

/// Longest line; a longer one is split.
pub const MAX_LINE: usize = 200;
/// Lines a domain may print per second on average.
pub const LINES_PER_SEC: u64 = 200;
/// Lines a domain may print in a burst.
pub const BURST: u64 = 400;

/// What the console produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Output<'a> {
    /// `n` lines were dropped before this point (printed once, before the next line).
    Dropped(u64),
    /// A complete line (without its newline).
    Line(&'a [u8]),
}

/// One domain's console state.
pub struct DomainConsole {
    line: Vec<u8>,
    budget: TokenBucket,
    dropped: u64,
}

impl Default for DomainConsole {
    fn default() -> Self {
        Self::new()
    }
}

impl DomainConsole {
    /// An empty console with a full burst budget.
    pub const fn new() -> Self {
        Self {
            line: Vec::new(),
            budget: TokenBucket::new(LINES_PER_SEC, BURST),
            dropped: 0,
        }
    }

    /// Takes bytes written at counter value `now` (counter at `hz`); `emit` gets every
    /// line that completes and is within budget, preceded by a drop count if lines were lost.
    pub fn write(&mut self, bytes: &[u8], now: u64, hz: u64, mut emit: impl FnMut(Output<'_>)) {
        for &b in bytes {
            if b == b'\n' || self.line.len() >= MAX_LINE {
                if self.budget.allow(now, hz) {
                    if self.dropped > 0 {
                        emit(Output::Dropped(core::mem::take(&mut self.dropped)));
                    }
                    emit(Output::Line(&self.line));
                } else {
                    self.dropped += 1;
                }
                self.line.clear();
                if b == b'\n' {
                    continue;
                }
            }
            // Carriage returns (terminal-style "\r\n" line ends, as Linux's tty layer
            // sends) carry nothing for a line-based log.
            if b == b'\r' {
                continue;
            }
            // Keep the log readable: control characters other than tab become '.'.
            let printable = b == b'\t' || (0x20..0x7f).contains(&b);
            self.line.push(if printable { b } else { b'.' });
        }
    }
}

/// Most unread input kept per domain; older bytes are dropped first.
pub const INPUT_LIMIT: usize = 4096;

/// Everything one domain id's console holds between calls: its name, line assembly and
/// rate limit ([`DomainConsole`]), unread input, and whether the domain in the slot may use
/// it without asking the global state (see `hyp::consoles`).
pub struct ConsoleSlot {
    /// The domain holds WRITE on its Console capability and is not hung on purpose.
    open: bool,
    /// It has negotiated the protocol (reading input needs that; writing does not).
    negotiated: bool,
    name: [u8; MAX_NAME_LEN],
    name_len: usize,
    lines: DomainConsole,
    input: VecDeque<u8>,
}

impl Default for ConsoleSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleSlot {
    /// A closed, empty slot.
    pub const fn new() -> Self {
        Self {
            open: false,
            negotiated: false,
            name: [0; MAX_NAME_LEN],
            name_len: 0,
            lines: DomainConsole::new(),
            input: VecDeque::new(),
        }
    }

    /// A new incarnation called `name` (cut to [`MAX_NAME_LEN`] bytes at a character
    /// boundary): fresh lines and input, `open` as given, not negotiated.
    pub fn reset(&mut self, name: &str, open: bool) {
        *self = Self::new();
        let mut n = name.len().min(MAX_NAME_LEN);
        while !name.is_char_boundary(n) {
            n -= 1;
        }
        self.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        self.name_len = n;
        self.open = open;
    }

    /// Its calls go to the global path from now on.
    pub fn close(&mut self) {
        self.open = false;
    }

    /// The domain negotiated the protocol.
    pub fn set_negotiated(&mut self) {
        self.negotiated = true;
    }

    /// Whether a `ConsoleWrite` may be served from the slot alone.
    pub fn may_write(&self) -> bool {
        self.open
    }

    /// Whether a `ConsoleRead` may be served from the slot alone.
    pub fn may_read(&self) -> bool {
        self.open && self.negotiated
    }

    /// The domain's name.
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?")
    }

    /// Takes bytes written at counter `now` (at `hz`): `emit` gets the name and each
    /// output (see [`DomainConsole::write`]).
    pub fn write(
        &mut self,
        bytes: &[u8],
        now: u64,
        hz: u64,
        mut emit: impl FnMut(&str, Output<'_>),
    ) {
        let name = core::str::from_utf8(&self.name[..self.name_len]).unwrap_or("?");
        self.lines.write(bytes, now, hz, |out| emit(name, out));
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
}

/// The text of a call that carries `len` bytes little-endian in `words` (`ConsoleWrite`:
/// x2..x6): the bytes and their count, or `None` if `len` is more than the words hold.
pub fn register_text(len: u64, words: &[u64]) -> Option<([u8; CONSOLE_REG_BYTES], usize)> {
    let n = usize::try_from(len)
        .ok()
        .filter(|&n| n <= (words.len() * 8).min(CONSOLE_REG_BYTES))?;
    let mut bytes = [0u8; CONSOLE_REG_BYTES];
    for (chunk, w) in bytes.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    Some((bytes, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec as StdVec;

    fn run(c: &mut DomainConsole, bytes: &[u8], now: u64) -> StdVec<String> {
        let mut out = StdVec::new();
        c.write(bytes, now, 1_000, |o| match o {
            Output::Line(l) => out.push(String::from_utf8_lossy(l).into_owned()),
            Output::Dropped(n) => out.push(std::format!("<{n} dropped>")),
        });
        out
    }

    #[test]
    fn lines_are_whole_and_printable() {
        let mut c = DomainConsole::default();
        assert!(run(&mut c, b"hel", 0).is_empty());
        assert_eq!(run(&mut c, b"lo\x1b[1m\tx\nnext", 0), ["hello.[1m\tx"]);
        let long = [b'a'; MAX_LINE + 5];
        assert_eq!(
            run(&mut c, &long, 0),
            [String::from("next") + &"a".repeat(MAX_LINE - 4)]
        );
    }

    #[test]
    fn carriage_returns_vanish() {
        let mut c = DomainConsole::default();
        assert_eq!(run(&mut c, b"one\r\ntwo\r\n", 0), ["one", "two"]);
    }

    #[test]
    fn a_flood_is_dropped_and_counted_once() {
        let mut c = DomainConsole::default();
        let flood: StdVec<u8> = b"x\n".repeat(BURST as usize + 50);
        let out = run(&mut c, &flood, 0);
        assert_eq!(out.len(), BURST as usize, "only the burst gets through");
        // A second later the budget is back and the loss is reported before the next line.
        assert_eq!(run(&mut c, b"y\n", 1_000), ["<50 dropped>", "y"]);
    }

    #[test]
    fn a_slot_opens_per_incarnation_and_reads_only_once_negotiated() {
        let mut s = ConsoleSlot::new();
        assert!(!s.may_write() && !s.may_read());
        s.reset("rtos", true);
        assert!(s.may_write() && !s.may_read());
        s.set_negotiated();
        assert!(s.may_read());
        s.push_input(b'x');
        s.close();
        assert!(!s.may_write() && !s.may_read());
        // The next incarnation starts closed to reading, with no input left over.
        s.reset("rtos", true);
        assert!(!s.may_read());
        s.set_negotiated();
        assert_eq!(s.take_input(16), [0, 0, 0]);
        // No Console WRITE right: the slot stays closed.
        s.reset("nocons", false);
        assert!(!s.may_write());
    }

    #[test]
    fn names_are_cut_at_a_character_boundary() {
        let mut s = ConsoleSlot::new();
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
        let mut s = ConsoleSlot::new();
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
    fn register_text_takes_exactly_len_bytes() {
        let words = [
            u64::from_le_bytes(*b"hello wo"),
            u64::from_le_bytes(*b"rld\n\0\0\0\0"),
            0,
            0,
            0,
        ];
        let (b, n) = register_text(12, &words).unwrap();
        assert_eq!(&b[..n], b"hello world\n");
        assert_eq!(register_text(40, &words).map(|t| t.1), Some(40));
        assert!(register_text(41, &words).is_none());
        assert!(register_text(u64::MAX, &words).is_none());
        // Fewer words (ConsoleWriteFor's four): at most 32 bytes.
        assert!(register_text(33, &words[..4]).is_none());
        assert_eq!(register_text(32, &words[..4]).map(|t| t.1), Some(32));
    }
}
