//! The `printk` ring: formatted log lines are appended from any context (threads or
//! interrupt handlers, never blocking, never calling the console) and drained by a
//! low-priority thread, so a high-priority task pays for a memory copy, not for the
//! console hypercall. When the ring is full whole lines are dropped and counted.

use alloc::collections::VecDeque;

/// A bounded byte ring of complete lines.
#[derive(Clone, Debug)]
pub struct LogRing {
    buf: VecDeque<u8>,
    cap: usize,
    dropped: u64,
}

impl LogRing {
    /// A ring of `cap` bytes (allocated now).
    pub fn new(cap: usize) -> Self {
        Self {
            buf: VecDeque::with_capacity(cap),
            cap,
            dropped: 0,
        }
    }

    /// Appends `line` plus a newline, or drops it whole if it does not fit.
    pub fn push_line(&mut self, line: &[u8]) -> bool {
        if self.buf.len() + line.len() + 1 > self.cap {
            self.dropped += 1;
            return false;
        }
        self.buf.extend(line);
        self.buf.push_back(b'\n');
        true
    }

    /// Removes the oldest complete line into `out` (up to its capacity); its length.
    pub fn pop_line(&mut self, out: &mut [u8]) -> Option<usize> {
        let end = self.buf.iter().position(|&b| b == b'\n')?;
        let n = end.min(out.len());
        for (i, b) in self.buf.drain(..=end).enumerate() {
            if i < n {
                out[i] = b;
            }
        }
        Some(n)
    }

    /// Lines dropped because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// A fixed-size `fmt::Write` buffer for formatting one line without allocating (the
/// runtime's truncating stack buffer).
pub use bulkhead_runtime::console::StackBuf as LineBuf;

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn lines_in_order_and_drop_when_full() {
        let mut r = LogRing::new(12);
        assert!(r.push_line(b"hello"));
        assert!(r.push_line(b"world"));
        assert!(!r.push_line(b"x"));
        assert_eq!(r.dropped(), 1);
        let mut out = [0u8; 3];
        assert_eq!(r.pop_line(&mut out), Some(3));
        assert_eq!(&out, b"hel");
        let mut out = [0u8; 16];
        assert_eq!(r.pop_line(&mut out), Some(5));
        assert_eq!(&out[..5], b"world");
        assert_eq!(r.pop_line(&mut out), None);
        let mut l = LineBuf::<4>::new();
        write!(l, "{}", 123456).unwrap();
        assert_eq!(l.as_bytes(), b"1234");
    }
}
