//! The microvisor's own log on the UART: `bulkhead: …` lines, and domains' debug console
//! lines prefixed with the domain name. One lock keeps lines whole across CPUs.

use crate::sync::Mutex;
use core::fmt::{self, Write};

static LOG_LOCK: Mutex<()> = Mutex::new(());

struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        crate::arch::write_console(s.as_bytes());
        Ok(())
    }
}

/// Prints one formatted log line atomically with respect to other CPUs.
pub fn print_line(args: fmt::Arguments<'_>) {
    let _guard = LOG_LOCK.lock();
    let _ = Uart.write_fmt(args);
    let _ = Uart.write_str("\n");
}

/// Prints a domain's console line as `[name] text`.
pub fn print_domain_line(name: &str, text: &[u8]) {
    let _guard = LOG_LOCK.lock();
    crate::arch::write_console(b"[");
    crate::arch::write_console(name.as_bytes());
    crate::arch::write_console(b"] ");
    crate::arch::write_console(text);
    crate::arch::write_console(b"\n");
}

/// `info!("…")` prints `bulkhead: …`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        $crate::log::print_line(format_args!("bulkhead: {}", format_args!($($arg)*)))
    };
}
