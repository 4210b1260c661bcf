//! The microvisor's own log on the UART: `bulkhead: …` lines, and domains' debug console
//! lines prefixed with the domain name. Every line is kept in a ring that dom0 reads back
//! (`CapOp::LogRead`, `ctl dmesg`) and queued for the UART ([`queue`]).
//!
//! Writing a line only copies it, under the short `LOG` lock; the UART is written by
//! [`drain`], which whichever CPU is idle or at a safe point calls, holding no lock but the
//! drain token (which nobody waits for). So a slow UART costs log lines (counted), never
//! another CPU's exit latency. Until the CPUs start running guests ([`defer_output`]), and
//! for a panic, lines are written out at once.

pub mod queue;

use crate::sync::Mutex;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};
use queue::LineQueue;

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

/// The history ring and the UART queue, one lock for both so they agree on order.
struct Log {
    history: LogRing,
    queue: LineQueue,
}

static LOG: Mutex<Log> = Mutex::new(Log {
    history: LogRing::new(),
    queue: LineQueue::new(),
});

/// Held by the one CPU writing queued lines to the UART.
static DRAINING: AtomicBool = AtomicBool::new(false);

/// Whether the queue may hold lines: set (under `LOG`) with every line queued and cleared
/// (under `LOG`) when the queue is found empty, so it is set whenever a line waits. A drain
/// that finds it clear needs no lock: a shared CPU drains before every guest entry, and
/// taking `LOG` just to find the queue empty was a tenth of its way back into the guest.
static QUEUED: AtomicBool = AtomicBool::new(false);

/// Set once CPUs run guests: from then on lines wait for [`drain`].
static DEFERRED: AtomicBool = AtomicBool::new(false);

/// Lines now go through the queue (called by each CPU's run loop before its first guest).
pub fn defer_output() {
    DEFERRED.store(true, Ordering::Release);
}

/// Writes queued lines to the UART unless another CPU is already doing it. Holds `LOG` only
/// to copy a piece out, never while the UART is written.
pub fn drain() {
    // A shared CPU calls this before every guest entry, and there is usually nothing to
    // write: one look, without the token or a buffer.
    if !QUEUED.load(Ordering::Acquire) || queue_empty() {
        return;
    }
    loop {
        if DRAINING
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let mut piece = [0u8; 256];
        loop {
            let n = LOG.lock().queue.pop(&mut piece);
            if n == 0 {
                break;
            }
            crate::arch::write_console(&piece[..n]);
        }
        DRAINING.store(false, Ordering::Release);
        // A line queued while we held the token and its writer skipped draining: go again.
        if queue_empty() {
            return;
        }
    }
}

/// Whether the queue is empty (noting it in [`QUEUED`]).
fn queue_empty() -> bool {
    let log = LOG.lock();
    let empty = log.queue.is_empty();
    if empty {
        // Under the lock, as every line queued sets it: no line can be missed.
        QUEUED.store(false, Ordering::Release);
    }
    empty
}

/// Writes one line (built by `f`) to the ring and the queue, then to the UART at once if
/// output is not deferred.
fn write_line(f: impl FnOnce(&mut Sink<'_>)) {
    {
        let mut log = LOG.lock();
        let log = &mut *log;
        log.queue.begin_line();
        let mut sink = Sink(log);
        f(&mut sink);
        sink.0.history.push(b"\n");
        sink.0.queue.end_line();
        QUEUED.store(true, Ordering::Release);
    }
    if !DEFERRED.load(Ordering::Acquire) {
        drain();
    }
}

/// Writes to the ring and the UART queue.
struct Sink<'a>(&'a mut Log);

impl Sink<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.0.history.push(b);
        self.0.queue.push(b);
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
    write_line(|sink| {
        let _ = sink.write_fmt(args);
    });
}

/// Prints a domain's console line as `[name] text`.
pub fn print_domain_line(name: &str, text: &[u8]) {
    write_line(|sink| {
        sink.bytes(b"[");
        sink.bytes(name.as_bytes());
        sink.bytes(b"] ");
        sink.bytes(text);
    });
}

/// Prints a line and writes it out now, even once output is deferred (a panic).
pub fn print_line_now(args: fmt::Arguments<'_>) {
    print_line(args);
    // Another CPU may hold the drain token: give it a bounded while to finish.
    for _ in 0..1_000_000 {
        drain();
        if LOG.lock().queue.is_empty() {
            return;
        }
        core::hint::spin_loop();
    }
}

/// Reads console history (see [`LogRing::read`]).
pub fn read_history(from: u64, out: &mut [u8]) -> (u64, usize, u64) {
    LOG.lock().history.read(from, out)
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
