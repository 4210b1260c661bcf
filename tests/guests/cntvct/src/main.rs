//! `cntvct`: a static aarch64 Linux program that prints the virtual counter (`CNTVCT_EL0`,
//! which Linux lets EL0 read for the vDSO) in decimal and exits. `bench boot` puts it in the
//! initramfs: under `-icount` the counter since reset measures the instructions a boot took.
//!
//! No libc: `_start` reads the counter first, then calls `write(1, ..)` and `exit_group(0)`
//! through `svc #0`. Host builds only compile the formatting, for its unit tests.
#![cfg_attr(target_os = "none", no_std, no_main)]

/// Longest decimal `u64` plus the newline.
const BUF_LEN: usize = 21;

/// `value` in decimal followed by `\n`, right-aligned in the buffer; returns the buffer and
/// where the text starts.
fn decimal_line(mut value: u64) -> ([u8; BUF_LEN], usize) {
    let mut buf = [0u8; BUF_LEN];
    let mut at = BUF_LEN - 1;
    buf[at] = b'\n';
    loop {
        at -= 1;
        // Infallible: a remainder of 10 fits in a u8.
        buf[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return (buf, at);
        }
    }
}

#[cfg(target_os = "none")]
mod linux {
    use super::decimal_line;
    use core::arch::asm;

    /// `write` on arm64 Linux.
    const SYS_WRITE: u64 = 64;
    /// `exit_group` on arm64 Linux.
    const SYS_EXIT_GROUP: u64 = 94;

    /// Reads the virtual counter after all earlier instructions completed.
    fn cntvct() -> u64 {
        let value: u64;
        // SAFETY: `isb` and reading CNTVCT_EL0 have no memory effects; Linux sets
        // CNTKCTL_EL1.EL0VCTEN (the vDSO relies on it), so the read does not trap.
        unsafe {
            asm!("isb", "mrs {}, cntvct_el0", out(reg) value, options(nomem, nostack, preserves_flags));
        }
        value
    }

    /// Writes `bytes` to stdout, retrying short writes; gives up on an error.
    fn write_stdout(mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let ret: i64;
            // SAFETY: `write` only reads `bytes.len()` bytes from `bytes.as_ptr()`, which is a
            // live slice; the kernel preserves every register but x0.
            unsafe {
                asm!("svc #0", in("x8") SYS_WRITE, inlateout("x0") 1u64 => ret,
                     in("x1") bytes.as_ptr(), in("x2") bytes.len(), options(nostack, readonly));
            }
            match usize::try_from(ret) {
                Ok(n) if n > 0 && n <= bytes.len() => bytes = &bytes[n..],
                _ => return,
            }
        }
    }

    /// Ends the process with `code`.
    fn exit(code: u64) -> ! {
        // SAFETY: `exit_group` does not return and touches no memory of ours.
        unsafe {
            asm!("svc #0", in("x8") SYS_EXIT_GROUP, in("x0") code, options(noreturn, nostack, nomem));
        }
    }

    /// The ELF entry point: Linux enters at EL0 with `sp` 16-byte aligned at `argc`; the
    /// environment and arguments are not needed.
    #[no_mangle]
    #[link_section = ".text._start"]
    extern "C" fn _start() -> ! {
        let (buf, at) = decimal_line(cntvct());
        write_stdout(&buf[at..]);
        exit(0)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        exit(1)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    let (buf, at) = decimal_line(0);
    assert_eq!(&buf[at..], b"0\n");
}

#[cfg(test)]
mod tests {
    use super::decimal_line;

    fn text(v: u64) -> String {
        let (buf, at) = decimal_line(v);
        String::from_utf8(buf[at..].to_vec()).unwrap()
    }

    #[test]
    fn formats_decimal_lines() {
        assert_eq!(text(0), "0\n");
        assert_eq!(text(7), "7\n");
        assert_eq!(text(1_234_567_890), "1234567890\n");
        assert_eq!(text(u64::MAX), "18446744073709551615\n");
    }
}
