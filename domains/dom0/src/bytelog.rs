//! A bounded log of a child's raw PV console output, addressed by byte offset since it was
//! attached, so `ctl console` can follow it as a terminal (prompts without a newline, escape
//! sequences, carriage returns), which the microvisor's line-based history cannot give.
//! The oldest bytes are dropped when it is full; a reader that fell behind is told where
//! the kept part starts.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Bytes kept per child.
pub const KEPT: usize = 32 * 1024;

/// The log.
#[derive(Debug, Default)]
pub struct ByteLog {
    bytes: VecDeque<u8>,
    /// Bytes ever written.
    total: u64,
}

impl ByteLog {
    /// Appends output, dropping the oldest bytes beyond [`KEPT`].
    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let tail = &bytes[bytes.len().saturating_sub(KEPT)..];
        let excess = (self.bytes.len() + tail.len()).saturating_sub(KEPT);
        self.bytes.drain(..excess);
        self.bytes.extend(tail);
    }

    /// Up to `max` bytes from offset `from` (later if those were dropped; `u64::MAX`: none,
    /// just where the end is): the bytes, the offset of the first, and the total written.
    /// An offset past the end is a reader of an earlier incarnation (the log starts anew
    /// when the domain restarts): it gets everything kept.
    pub fn read(&self, from: u64, max: usize) -> (Vec<u8>, u64, u64) {
        let first = self.total - self.bytes.len() as u64;
        let start = match from {
            u64::MAX => self.total,
            f if f > self.total => first,
            f => f.max(first),
        };
        let skip = (start - first) as usize;
        let out: Vec<u8> = self.bytes.iter().skip(skip).take(max).copied().collect();
        (out, start, self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_by_offset_and_says_where_a_late_reader_resumes() {
        let mut log = ByteLog::default();
        log.push(b"login: ");
        assert_eq!(log.read(0, 100), (b"login: ".to_vec(), 0, 7));
        assert_eq!(log.read(3, 2), (b"in".to_vec(), 3, 7));
        assert_eq!(log.read(u64::MAX, 100), (Vec::new(), 7, 7));
        // A reader from before a restart (offset past the end) gets everything kept.
        assert_eq!(log.read(1000, 100), (b"login: ".to_vec(), 0, 7));
        // Overflow: only the last KEPT bytes stay, and a reader at 0 resumes there.
        log.push(&alloc::vec![b'x'; KEPT]);
        let (bytes, start, end) = log.read(0, usize::MAX);
        assert_eq!((bytes.len(), start, end), (KEPT, 7, KEPT as u64 + 7));
        // A push larger than the log keeps its own tail.
        let big: Vec<u8> = (0..KEPT + 10).map(|i| i as u8).collect();
        log.push(&big);
        let (bytes, _, _) = log.read(0, usize::MAX);
        assert_eq!(bytes, big[10..]);
    }
}
