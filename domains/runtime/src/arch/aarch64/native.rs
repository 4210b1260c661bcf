//! Bare-metal devices of the `native` build: the PL011 UART of the fallback board.

use crate::board::{NATIVE_CMDLINE_ADDR, NATIVE_CMDLINE_MAX, PL011_BASE};
use alloc::string::String;

const DR: u64 = 0x00;
const FR: u64 = 0x18;
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;

fn read(offset: u64) -> u32 {
    // SAFETY: an aligned PL011 register, mapped Device by the identity map (block 0) and
    // owned by no Rust object; a single 32-bit load.
    unsafe { core::ptr::read_volatile((PL011_BASE + offset) as *const u32) }
}

fn write(offset: u64, v: u32) {
    // SAFETY: as for `read`; a single 32-bit store.
    unsafe { core::ptr::write_volatile((PL011_BASE + offset) as *mut u32, v) }
}

/// Sends one byte (waits while the transmit FIFO is full).
pub fn uart_putc(b: u8) {
    while read(FR) & FR_TXFF != 0 {}
    write(DR, u32::from(b));
}

/// One received byte, if any.
pub fn uart_getc() -> Option<u8> {
    (read(FR) & FR_RXFE == 0).then(|| read(DR) as u8)
}

/// The command line the tools placed at [`NATIVE_CMDLINE_ADDR`] (empty if none).
pub fn native_cmdline() -> String {
    let mut bytes = alloc::vec::Vec::new();
    for i in 0..NATIVE_CMDLINE_MAX as u64 {
        // SAFETY: the range lies in RAM past the native heap (`NATIVE_RAM`), identity-mapped
        // Normal memory that no Rust object uses; single byte loads.
        let b = unsafe { core::ptr::read_volatile((NATIVE_CMDLINE_ADDR + i) as *const u8) };
        if b == 0 {
            break;
        }
        bytes.push(b);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
