//! Console output through `CapOp::ConsoleWrite`: per-vCPU line buffers and the unbuffered
//! emergency path used by panics and fatal exceptions.
//!
//! The microvisor prefixes every line with `[<domain name>] `, so a buffer is flushed on
//! `'\n'` or when it holds the 40 bytes one call carries. Buffers are per vCPU and taken
//! with IRQs masked, so an interrupt handler that prints cannot deadlock its own vCPU.

use core::fmt;
use protocol::control::CONSOLE_REG_BYTES;

/// Packs up to [`CONSOLE_REG_BYTES`] bytes into the five registers `x2..x6`, little-endian.
/// Extra bytes are ignored.
pub fn pack(bytes: &[u8]) -> [u64; 5] {
    let mut regs = [0u64; 5];
    for (i, &b) in bytes.iter().take(CONSOLE_REG_BYTES).enumerate() {
        regs[i / 8] |= u64::from(b) << ((i % 8) * 8);
    }
    regs
}

/// One vCPU's pending console bytes.
pub struct LineBuf {
    buf: [u8; CONSOLE_REG_BYTES],
    len: usize,
}

impl LineBuf {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: [0; CONSOLE_REG_BYTES],
            len: 0,
        }
    }

    /// Appends `bytes`, handing each complete chunk (a line or a full buffer) to `flush`.
    pub fn push(&mut self, bytes: &[u8], flush: &mut impl FnMut(&[u8])) {
        for &b in bytes {
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' || self.len == CONSOLE_REG_BYTES {
                flush(&self.buf[..self.len]);
                self.len = 0;
            }
        }
    }
}

impl Default for LineBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// A fixed-size `fmt::Write` sink that silently truncates (for the emergency path, which
/// must not allocate).
pub struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }
    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for StackBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    #[cfg(not(feature = "native"))]
    use super::pack;
    use super::{LineBuf, StackBuf};
    use crate::arch;
    use core::fmt::{self, Write};
    #[cfg(not(feature = "native"))]
    use protocol::control::{CapOp, CONSOLE_REG_BYTES};
    use protocol::layout::MAX_VCPUS;

    static LINES: [spin::Mutex<LineBuf>; MAX_VCPUS] =
        [const { spin::Mutex::new(LineBuf::new()) }; MAX_VCPUS];

    /// Writes bytes straight to the PL011, prefixing each line with `[native] ` as the
    /// microvisor prefixes a domain's lines with its name.
    #[cfg(feature = "native")]
    pub fn write_raw(bytes: &[u8]) {
        use core::sync::atomic::{AtomicBool, Ordering};
        static LINE_START: AtomicBool = AtomicBool::new(true);
        for &b in bytes {
            if LINE_START.swap(false, Ordering::Relaxed) {
                b"[native] ".iter().for_each(|&c| arch::uart_putc(c));
            }
            arch::uart_putc(b);
            if b == b'\n' {
                LINE_START.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Writes bytes straight to the console, 40 at a time, ignoring errors (there is
    /// nowhere to report them).
    #[cfg(not(feature = "native"))]
    pub fn write_raw(bytes: &[u8]) {
        for chunk in bytes.chunks(CONSOLE_REG_BYTES) {
            let r = pack(chunk);
            arch::hvc(
                u64::from(CapOp::ConsoleWrite.function_id()),
                [chunk.len() as u64, r[0], r[1], r[2], r[3], r[4]],
            );
        }
    }

    struct Line<'a>(&'a mut LineBuf);

    impl Write for Line<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.push(s.as_bytes(), &mut |chunk| write_raw(chunk));
            Ok(())
        }
    }

    /// Backend of [`crate::print!`].
    #[doc(hidden)]
    pub fn _print(args: fmt::Arguments<'_>) {
        arch::without_interrupts(|| {
            let mut line = LINES[crate::smp::current_vcpu()].lock();
            let _ = Line(&mut line).write_fmt(args);
        })
    }

    /// Formats into a stack buffer and writes it unbuffered and without locks: usable from
    /// panics and exception handlers even if the interrupted code held a console lock.
    pub fn emergency(args: fmt::Arguments<'_>) {
        let mut buf = StackBuf::<320>::new();
        let _ = buf.write_fmt(args);
        write_raw(buf.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    #[test]
    fn packs_little_endian() {
        let r = pack(b"abcdefghi");
        assert_eq!(r[0], u64::from_le_bytes(*b"abcdefgh"));
        assert_eq!(r[1], u64::from(b'i'));
        assert_eq!(r[2..], [0, 0, 0]);
        // 41 bytes: the 41st is dropped.
        let long = [0xFFu8; 41];
        assert_eq!(pack(&long), [u64::MAX; 5]);
    }

    #[test]
    fn flushes_on_newline_and_when_full() {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut lb = LineBuf::new();
        lb.push(b"hello\nwor", &mut |c| out.push(c.to_vec()));
        assert_eq!(out, vec![b"hello\n".to_vec()]);
        lb.push(b"ld\n", &mut |c| out.push(c.to_vec()));
        assert_eq!(out[1], b"world\n");
        let long = [b'x'; 45];
        lb.push(&long, &mut |c| out.push(c.to_vec()));
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].len(), 40);
        lb.push(b"\n", &mut |c| out.push(c.to_vec()));
        assert_eq!(out[3], b"xxxxx\n");
    }

    #[test]
    fn stack_buf_truncates() {
        let mut b = StackBuf::<4>::new();
        write!(b, "{}", 123456).unwrap();
        assert_eq!(b.as_bytes(), b"1234");
    }
}
