//! The microvisor's own log on the UART: `bulkhead: …` lines, and domains' debug console
//! lines prefixed with the domain name. One lock keeps lines whole across CPUs, and every
//! line is also kept in a ring that dom0 reads back (`CapOp::LogRead`, `ctl dmesg`).

use crate::sync::Mutex;
use core::fmt::{self, Write};

/// Bytes of console history kept.
pub const RING_BYTES: usize = 16 * 1024;

/// The last [`RING_BYTES`] bytes written to the console.
pub struct LogRing {
    buf: [u8; RING_BYTES],
    /// Bytes ever written; byte `n` lives at `buf[n % RING_BYTES]` while `n >= total - RING_BYTES`.
    total: u64,
}

impl LogRing {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            buf: [0; RING_BYTES],
            total: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.buf[(self.total % RING_BYTES as u64) as usize] = b;
            self.total += 1;
        }
    }

    /// Copies bytes from offset `from` (clamped to the oldest byte still kept) into `out`;
    /// returns `(first offset copied, bytes copied, total written)`.
    pub fn read(&self, from: u64, out: &mut [u8]) -> (u64, usize, u64) {
        let oldest = self.total.saturating_sub(RING_BYTES as u64);
        let start = from.clamp(oldest, self.total);
        let n = ((self.total - start) as usize).min(out.len());
        for (i, slot) in out[..n].iter_mut().enumerate() {
            *slot = self.buf[((start + i as u64) % RING_BYTES as u64) as usize];
        }
        (start, n, self.total)
    }
}

impl Default for LogRing {
    fn default() -> Self {
        Self::new()
    }
}

static LOG: Mutex<LogRing> = Mutex::new(LogRing::new());

/// Writes to the UART and the ring.
struct Sink<'a>(&'a mut LogRing);

impl Sink<'_> {
    fn bytes(&mut self, b: &[u8]) {
        crate::arch::write_console(b);
        self.0.push(b);
    }
}

impl Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints one formatted log line atomically with respect to other CPUs.
pub fn print_line(args: fmt::Arguments<'_>) {
    let mut ring = LOG.lock();
    let mut sink = Sink(&mut ring);
    let _ = sink.write_fmt(args);
    sink.bytes(b"\n");
}

/// Prints a domain's console line as `[name] text`.
pub fn print_domain_line(name: &str, text: &[u8]) {
    let mut ring = LOG.lock();
    let mut sink = Sink(&mut ring);
    sink.bytes(b"[");
    sink.bytes(name.as_bytes());
    sink.bytes(b"] ");
    sink.bytes(text);
    sink.bytes(b"\n");
}

/// Reads console history (see [`LogRing::read`]).
pub fn read_history(from: u64, out: &mut [u8]) -> (u64, usize, u64) {
    LOG.lock().read(from, out)
}

/// `info!("…")` prints `bulkhead: …`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        $crate::log::print_line(format_args!("bulkhead: {}", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest_bytes_and_clamps_offsets() {
        let mut r = LogRing::new();
        r.push(b"hello ");
        let mut out = [0u8; 64];
        assert_eq!(r.read(0, &mut out), (0, 6, 6));
        assert_eq!(&out[..6], b"hello ");
        assert_eq!(r.read(4, &mut out), (4, 2, 6));
        assert_eq!(r.read(99, &mut out), (6, 0, 6));
        let big = [b'x'; RING_BYTES + 10];
        r.push(&big);
        let total = 6 + RING_BYTES as u64 + 10;
        // Offset 0 was overwritten: reading starts at the oldest byte kept.
        let (start, n, t) = r.read(0, &mut out);
        assert_eq!((start, n, t), (total - RING_BYTES as u64, 64, total));
        assert!(out.iter().all(|&b| b == b'x'));
    }
}
