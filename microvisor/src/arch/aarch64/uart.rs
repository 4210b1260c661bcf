//! Polled PL011 transmitter for the microvisor's own log.

use super::mem;
use core::sync::atomic::{AtomicU64, Ordering};

/// Base of the PL011 found in the device tree (0 until discovered).
static BASE: AtomicU64 = AtomicU64::new(0);

const DR: u64 = 0x00;
const FR: u64 = 0x18;
const IMSC: u64 = 0x38;
const ICR: u64 = 0x44;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;
/// Receive and receive-timeout interrupts.
const RX_IRQS: u32 = (1 << 4) | (1 << 6);

/// Enables the receive interrupts (the microvisor routes console input to domains).
pub fn enable_rx_irq() {
    let base = BASE.load(Ordering::Acquire);
    if base != 0 {
        // SAFETY: `init` established that `base` is our PL011.
        unsafe { mem::mmio_write32(base + IMSC, mem::mmio_read32(base + IMSC) | RX_IRQS) };
    }
}

/// Takes one received byte, if any (and acknowledges the receive interrupts).
pub fn read_byte() -> Option<u8> {
    let base = BASE.load(Ordering::Acquire);
    if base == 0 {
        return None;
    }
    // SAFETY: `init` established that `base` is our PL011.
    unsafe {
        mem::mmio_write32(base + ICR, RX_IRQS);
        if mem::mmio_read32(base + FR) & FR_RXFE != 0 {
            return None;
        }
        Some(mem::mmio_read32(base + DR) as u8)
    }
}

/// Uses the PL011 at `base` from now on.
///
/// # Safety
/// `base` must be a PL011's MMIO base, mapped for EL2, owned by the microvisor.
pub unsafe fn init(base: u64) {
    BASE.store(base, Ordering::Release);
}

/// Writes bytes, translating `\n` to `\r\n`; drops them if no UART is known.
pub fn write_bytes(bytes: &[u8]) {
    let base = BASE.load(Ordering::Acquire);
    if base == 0 {
        return;
    }
    for &b in bytes {
        if b == b'\n' {
            put(base, b'\r');
        }
        put(base, b);
    }
}

fn put(base: u64, b: u8) {
    // SAFETY: `init` established that `base` is our PL011 and it stays mapped.
    unsafe {
        while mem::mmio_read32(base + FR) & FR_TXFF != 0 {}
        mem::mmio_write32(base + DR, u32::from(b));
    }
}
