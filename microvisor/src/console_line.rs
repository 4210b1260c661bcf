//! A domain's debug console: bytes become whole, printable lines, and a flood is dropped
//! (counted) rather than slowing the shared UART for every other domain.

use crate::ratelimit::TokenBucket;
use alloc::vec::Vec;
use protocol::control::CONSOLE_REG_BYTES;

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
