//! Console lines waiting for the UART. Writers (exits, under whatever lock they hold) only
//! copy a line in; a drainer copies bytes out in small pieces and writes them to the UART
//! with no lock held, so a slow UART delays nothing but the log. The queue is bounded: a
//! line that does not fit is dropped whole and counted, and the count is reported as its
//! own line as soon as there is room.

/// Bytes of console output that may wait for the UART.
pub const QUEUE_BYTES: usize = 32 * 1024;

/// A bounded FIFO of whole lines.
pub struct LineQueue {
    buf: [u8; QUEUE_BYTES],
    /// Next byte to drain (a count of bytes ever queued; index = value % QUEUE_BYTES).
    head: u64,
    /// Next byte to write.
    tail: u64,
    /// Where the line being written started (rolled back to if it does not fit).
    line_start: u64,
    /// The line being written did not fit.
    overflow: bool,
    /// A line is being written (between `begin_line` and `end_line`).
    open: bool,
    /// Lines dropped and not yet reported.
    dropped: u64,
}

impl LineQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            buf: [0; QUEUE_BYTES],
            head: 0,
            tail: 0,
            line_start: 0,
            overflow: false,
            open: false,
            dropped: 0,
        }
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        (self.tail - self.head) as usize
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.tail == self.head
    }

    /// Lines dropped and not yet reported.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Starts a line (reporting earlier drops first once the UART has caught up to half
    /// the queue, so the report itself does not crowd out the lines that follow).
    pub fn begin_line(&mut self) {
        if self.dropped > 0 && self.len() <= QUEUE_BYTES / 2 {
            let mut note = [0u8; 64];
            let n = format_dropped(self.dropped, &mut note);
            {
                self.dropped = 0;
                self.raw_push(&note[..n]);
            }
        }
        self.line_start = self.tail;
        self.overflow = false;
        self.open = true;
    }

    /// Appends to the current line (nothing, once it has overflowed).
    pub fn push(&mut self, bytes: &[u8]) {
        // One byte stays reserved for the newline.
        if self.overflow || QUEUE_BYTES - self.len() < bytes.len() + 1 {
            self.overflow = true;
            return;
        }
        self.raw_push(bytes);
    }

    /// Ends the current line: queued whole, or dropped whole and counted.
    pub fn end_line(&mut self) {
        if self.overflow {
            self.tail = self.line_start;
            self.dropped += 1;
        } else {
            self.raw_push(b"\n");
        }
        self.overflow = false;
        self.open = false;
    }

    /// Moves up to `out.len()` waiting bytes into `out`; returns how many.
    pub fn pop(&mut self, out: &mut [u8]) -> usize {
        // Bytes of a line still being written are not complete yet.
        let limit = if self.open {
            self.line_start
        } else {
            self.tail
        };
        let n = ((limit.saturating_sub(self.head)) as usize).min(out.len());
        for (i, slot) in out[..n].iter_mut().enumerate() {
            *slot = self.buf[((self.head + i as u64) % QUEUE_BYTES as u64) as usize];
        }
        self.head += n as u64;
        n
    }

    fn raw_push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.buf[(self.tail % QUEUE_BYTES as u64) as usize] = b;
            self.tail += 1;
        }
    }
}

impl Default for LineQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes "bulkhead: N console lines dropped (UART behind)\n" into `out`; returns its length.
fn format_dropped(n: u64, out: &mut [u8; 64]) -> usize {
    let mut digits = [0u8; 20];
    let mut v = n;
    let mut d = 0;
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut len = 0;
    let mut put = |b: &[u8]| {
        out[len..len + b.len()].copy_from_slice(b);
        len += b.len();
    };
    put(b"bulkhead: ");
    for i in (0..d).rev() {
        put(&digits[i..=i]);
    }
    put(b" console lines dropped (UART behind)\n");
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;
    use std::vec::Vec;

    fn line(q: &mut LineQueue, text: &[u8]) {
        q.begin_line();
        q.push(text);
        q.end_line();
    }

    fn drain(q: &mut LineQueue) -> Vec<u8> {
        let mut all = Vec::new();
        let mut piece = [0u8; 7];
        loop {
            let n = q.pop(&mut piece);
            if n == 0 {
                return all;
            }
            all.extend_from_slice(&piece[..n]);
        }
    }

    #[test]
    fn lines_come_out_whole_and_in_order() {
        let mut q = Box::new(LineQueue::new());
        line(&mut q, b"one");
        line(&mut q, b"two");
        assert_eq!(drain(&mut q), b"one\ntwo\n");
        assert!(q.is_empty());
    }

    #[test]
    fn a_line_in_progress_is_not_drained() {
        let mut q = Box::new(LineQueue::new());
        line(&mut q, b"done");
        q.begin_line();
        q.push(b"half");
        assert_eq!(drain(&mut q), b"done\n");
        q.end_line();
        assert_eq!(drain(&mut q), b"half\n");
    }

    #[test]
    fn overflow_drops_whole_lines_and_reports_them() {
        let mut q = Box::new(LineQueue::new());
        let big = std::vec![b'x'; 1000];
        let mut kept = 0;
        for _ in 0..40 {
            line(&mut q, &big);
            kept += usize::from(q.dropped() == 0);
        }
        assert_eq!(kept, QUEUE_BYTES / 1001);
        assert_eq!(q.dropped(), 40 - kept as u64);
        let out = drain(&mut q);
        assert_eq!(out.len(), kept * 1001, "only whole lines");
        assert!(out
            .split(|&b| b == b'\n')
            .all(|l| l.is_empty() || l.len() == 1000));
        // With room again, the loss is reported before the next line.
        line(&mut q, b"after");
        let text = std::string::String::from_utf8(drain(&mut q)).unwrap();
        assert_eq!(
            text,
            std::format!(
                "bulkhead: {} console lines dropped (UART behind)\nafter\n",
                40 - kept
            )
        );
        assert_eq!(q.dropped(), 0);
    }

    #[test]
    fn indices_wrap_around_the_buffer() {
        let mut q = Box::new(LineQueue::new());
        let chunk = std::vec![b'y'; 999];
        for _ in 0..100 {
            line(&mut q, &chunk);
            assert_eq!(drain(&mut q).len(), 1000);
        }
        assert_eq!(q.dropped(), 0);
    }
}
