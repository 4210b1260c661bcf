//! Polled UART driver for the microvisor's own log and console input: PL011 (and SBSA),
//! Cadence (ZynqMP) and 16550-compatible, whichever [`crate::console_uart`] found. Baud
//! rate and framing stay as firmware left them; only the transmitter/receiver enables and
//! the receive interrupts are touched.

use super::mem;
use crate::console_uart::{ConsoleUart, UartKind};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Base of the console UART (0 until [`init`]).
static BASE: AtomicU64 = AtomicU64::new(0);
/// Its kind: one of the `KIND_*` values.
static KIND: AtomicU8 = AtomicU8::new(KIND_NONE);
/// 16550 only: `reg-shift` and `reg-io-width`.
static SHIFT: AtomicU8 = AtomicU8::new(0);
static WIDTH: AtomicU8 = AtomicU8::new(1);

const KIND_NONE: u8 = 0;
const KIND_PL011: u8 = 1;
const KIND_CADENCE: u8 = 2;
const KIND_16550: u8 = 3;

mod pl011 {
    pub const DR: u64 = 0x00;
    pub const FR: u64 = 0x18;
    pub const IMSC: u64 = 0x38;
    pub const ICR: u64 = 0x44;
    pub const FR_TXFF: u32 = 1 << 5;
    pub const FR_RXFE: u32 = 1 << 4;
    /// Receive and receive-timeout interrupts.
    pub const RX_IRQS: u32 = (1 << 4) | (1 << 6);
}

/// Cadence UART (Zynq UltraScale+ TRM, "UART" register set).
mod cadence {
    /// Control: enables and disables of receiver and transmitter.
    pub const CR: u64 = 0x00;
    pub const IER: u64 = 0x08;
    pub const ISR: u64 = 0x14;
    /// Receiver FIFO trigger level.
    pub const RXWM: u64 = 0x20;
    /// Channel status.
    pub const SR: u64 = 0x2c;
    /// Transmit and receive FIFO.
    pub const FIFO: u64 = 0x30;
    pub const CR_RX_EN: u32 = 1 << 2;
    pub const CR_RX_DIS: u32 = 1 << 3;
    pub const CR_TX_EN: u32 = 1 << 4;
    pub const CR_TX_DIS: u32 = 1 << 5;
    pub const SR_RXEMPTY: u32 = 1 << 1;
    pub const SR_TXFULL: u32 = 1 << 4;
    /// Receive FIFO trigger and receive timeout interrupts.
    pub const RX_IRQS: u32 = (1 << 0) | (1 << 8);
}

/// 16550 register indices (scaled by `reg-shift`).
mod ns16550 {
    pub const RBR_THR: u64 = 0;
    pub const IER: u64 = 1;
    pub const LCR: u64 = 3;
    pub const MCR: u64 = 4;
    pub const LSR: u64 = 5;
    pub const IER_RX: u32 = 1 << 0;
    /// Divisor latch access: while set, offsets 0 and 1 are the baud divisor.
    pub const LCR_DLAB: u32 = 1 << 7;
    /// Gates the interrupt line on PC-style 16550s; ignored by DesignWare UARTs.
    pub const MCR_OUT2: u32 = 1 << 3;
    pub const LSR_DR: u32 = 1 << 0;
    pub const LSR_THRE: u32 = 1 << 5;
}

/// Uses `uart` from now on: makes sure its transmitter and receiver are on (a Cadence
/// UART comes out of reset with both disabled and direct boots have no firmware to enable
/// them) and that a 16550's data register is not hidden behind the divisor latch.
///
/// # Safety
/// `uart.region` must be that UART's registers, reachable at EL2 now and for ever (identity
/// mapped as device memory once the MMU is on), and owned by the microvisor.
pub unsafe fn init(uart: ConsoleUart) {
    let base = uart.region.base.as_u64();
    let kind = match uart.kind {
        UartKind::Pl011 => KIND_PL011,
        UartKind::Cadence => {
            // SAFETY: per the contract `base` is this Cadence UART's.
            unsafe {
                let cr = mem::mmio_read32(base + cadence::CR);
                let on = (cr & !(cadence::CR_TX_DIS | cadence::CR_RX_DIS))
                    | cadence::CR_TX_EN
                    | cadence::CR_RX_EN;
                if on != cr {
                    mem::mmio_write32(base + cadence::CR, on);
                }
            }
            KIND_CADENCE
        }
        UartKind::Ns16550 {
            reg_shift,
            io_width,
        } => {
            SHIFT.store(reg_shift, Ordering::Relaxed);
            WIDTH.store(io_width, Ordering::Relaxed);
            // SAFETY: per the contract; the layout was just recorded.
            unsafe {
                let lcr = reg16550(base, ns16550::LCR, None);
                if lcr & ns16550::LCR_DLAB != 0 {
                    reg16550(base, ns16550::LCR, Some(lcr & !ns16550::LCR_DLAB));
                }
            }
            KIND_16550
        }
    };
    KIND.store(kind, Ordering::Relaxed);
    BASE.store(base, Ordering::Release);
}

/// One access to 16550 register `index` (a write of `write`, else a read) at the recorded
/// spacing and width.
///
/// # Safety
/// `base` must be the 16550 recorded by [`init`].
unsafe fn reg16550(base: u64, index: u64, write: Option<u32>) -> u32 {
    let shift = SHIFT.load(Ordering::Relaxed);
    let width = WIDTH.load(Ordering::Relaxed);
    let at = base + (index << shift);
    // SAFETY: per the contract; `console_uart` allows only widths 1 and 4 and shifts up to
    // 3, so `at` is inside the UART's window and aligned to `width`.
    unsafe { mem::mmio_access(at, width, write.map(u64::from)) as u32 }
}

/// The console UART, if one is known: `(base, KIND_*)`.
fn current() -> Option<(u64, u8)> {
    let base = BASE.load(Ordering::Acquire);
    (base != 0).then(|| (base, KIND.load(Ordering::Relaxed)))
}

/// Enables the receive interrupts (the microvisor routes console input to domains).
pub fn enable_rx_irq() {
    let Some((base, kind)) = current() else {
        return;
    };
    // SAFETY: `init` established that `base` is a UART of this kind.
    unsafe {
        match kind {
            KIND_PL011 => mem::mmio_write32(
                base + pl011::IMSC,
                mem::mmio_read32(base + pl011::IMSC) | pl011::RX_IRQS,
            ),
            KIND_CADENCE => {
                // Interrupt from the first byte on, not from firmware's trigger level.
                mem::mmio_write32(base + cadence::RXWM, 1);
                mem::mmio_write32(base + cadence::IER, cadence::RX_IRQS);
            }
            KIND_16550 => {
                let mcr = reg16550(base, ns16550::MCR, None);
                reg16550(base, ns16550::MCR, Some(mcr | ns16550::MCR_OUT2));
                let ier = reg16550(base, ns16550::IER, None);
                reg16550(base, ns16550::IER, Some(ier | ns16550::IER_RX));
            }
            _ => {}
        }
    }
}

/// Takes one received byte, if any (and acknowledges the receive interrupts).
pub fn read_byte() -> Option<u8> {
    let (base, kind) = current()?;
    // SAFETY: `init` established that `base` is a UART of this kind.
    unsafe {
        match kind {
            KIND_PL011 => {
                mem::mmio_write32(base + pl011::ICR, pl011::RX_IRQS);
                if mem::mmio_read32(base + pl011::FR) & pl011::FR_RXFE != 0 {
                    return None;
                }
                Some(mem::mmio_read32(base + pl011::DR) as u8)
            }
            KIND_CADENCE => {
                // Write-one-to-clear; the level condition comes back while bytes remain.
                mem::mmio_write32(base + cadence::ISR, cadence::RX_IRQS);
                if mem::mmio_read32(base + cadence::SR) & cadence::SR_RXEMPTY != 0 {
                    return None;
                }
                Some(mem::mmio_read32(base + cadence::FIFO) as u8)
            }
            // A 16550's receive interrupt clears when the FIFO is read empty.
            KIND_16550 => {
                if reg16550(base, ns16550::LSR, None) & ns16550::LSR_DR == 0 {
                    return None;
                }
                Some(reg16550(base, ns16550::RBR_THR, None) as u8)
            }
            _ => None,
        }
    }
}

/// Writes bytes, translating `\n` to `\r\n`; drops them if no UART is known.
pub fn write_bytes(bytes: &[u8]) {
    let Some((base, kind)) = current() else {
        return;
    };
    for &b in bytes {
        if b == b'\n' {
            put(base, kind, b'\r');
        }
        put(base, kind, b);
    }
}

fn put(base: u64, kind: u8, b: u8) {
    // SAFETY: `init` established that `base` is a UART of this kind and it stays mapped.
    unsafe {
        match kind {
            KIND_PL011 => {
                while mem::mmio_read32(base + pl011::FR) & pl011::FR_TXFF != 0 {}
                mem::mmio_write32(base + pl011::DR, u32::from(b));
            }
            KIND_CADENCE => {
                while mem::mmio_read32(base + cadence::SR) & cadence::SR_TXFULL != 0 {}
                mem::mmio_write32(base + cadence::FIFO, u32::from(b));
            }
            KIND_16550 => {
                while reg16550(base, ns16550::LSR, None) & ns16550::LSR_THRE == 0 {}
                reg16550(base, ns16550::RBR_THR, Some(u32::from(b)));
            }
            _ => {}
        }
    }
}
