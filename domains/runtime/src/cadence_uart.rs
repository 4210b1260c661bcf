//! Cadence UART (Xilinx `xuartps`; Zynq UltraScale+ TRM, "UART Controller") as a
//! non-blocking byte stream: dom0's management port on the ZCU102. Host-testable: the
//! registers are reached through [`Regs`] (MMIO on the target: `arch::cadence_mmio`).
//!
//! Only what a byte stream needs is touched: the receiver and transmitter are enabled (QEMU
//! and the hardware leave both disabled after reset) and their FIFOs reset; the mode
//! register and the baud-rate generator are firmware's and never written.
//!
//! Receive is interrupt-driven: the RX FIFO trigger level is 1, so the (level) interrupt
//! stands while any byte waits. [`CadenceUart::rearm`] runs after each service: if bytes
//! are left because the reader stopped taking them (its reply queue is full), the RX
//! interrupt is masked so a stalled reader cannot keep its holder in the interrupt handler;
//! the holder's periodic poll reads them later. If the TX FIFO filled during a write, the
//! TX-empty interrupt is enabled, so the holder is woken as soon as there is room again.

/// Access to the UART's 32-bit registers by byte offset.
pub trait Regs {
    /// Reads the register at `offset`.
    fn read(&mut self, offset: usize) -> u32;
    /// Writes `value` to the register at `offset`.
    fn write(&mut self, offset: usize, value: u32);
}

/// Control register.
pub const CR: usize = 0x00;
/// Mode register (character format, clock source: never written here).
pub const MR: usize = 0x04;
/// Interrupt enable (write 1 to set a mask bit).
pub const IER: usize = 0x08;
/// Interrupt disable (write 1 to clear a mask bit).
pub const IDR: usize = 0x0C;
/// Interrupt mask (read-only).
pub const IMR: usize = 0x10;
/// Channel interrupt status (sticky; write 1 to clear).
pub const ISR: usize = 0x14;
/// Receiver timeout.
pub const RXTOUT: usize = 0x1C;
/// Receiver FIFO trigger level.
pub const RXWM: usize = 0x20;
/// Channel status.
pub const SR: usize = 0x2C;
/// TX/RX FIFO.
pub const FIFO: usize = 0x30;

/// CR: reset the RX data path (self-clearing).
pub const CR_RXRST: u32 = 1 << 0;
/// CR: reset the TX data path (self-clearing).
pub const CR_TXRST: u32 = 1 << 1;
/// CR: receiver enable.
pub const CR_RX_EN: u32 = 1 << 2;
/// CR: receiver disable (wins over enable).
pub const CR_RX_DIS: u32 = 1 << 3;
/// CR: transmitter enable.
pub const CR_TX_EN: u32 = 1 << 4;
/// CR: transmitter disable (wins over enable).
pub const CR_TX_DIS: u32 = 1 << 5;
/// CR: stop transmitting a break.
pub const CR_STOPBRK: u32 = 1 << 8;

/// SR: the RX FIFO is empty.
pub const SR_RXEMPTY: u32 = 1 << 1;
/// SR: the TX FIFO is empty.
pub const SR_TXEMPTY: u32 = 1 << 3;
/// SR: the TX FIFO is full.
pub const SR_TXFULL: u32 = 1 << 4;

/// Interrupt bit (IER/IDR/IMR/ISR): RX FIFO at or above the trigger level.
pub const INT_RXTRIG: u32 = 1 << 0;
/// Interrupt bit: TX FIFO empty.
pub const INT_TXEMPTY: u32 = 1 << 3;
/// Every interrupt bit (the TRM's 14 sources).
pub const INT_ALL: u32 = 0x3FFF;

/// The UART, opened.
pub struct CadenceUart<R: Regs> {
    regs: R,
    /// A write found the TX FIFO full since the last [`CadenceUart::rearm`].
    tx_blocked: bool,
}

impl<R: Regs> CadenceUart<R> {
    /// Takes the UART: every interrupt masked and cleared, FIFOs reset, receiver and
    /// transmitter enabled, RX trigger level 1 with its interrupt enabled.
    pub fn open(mut regs: R) -> Self {
        regs.write(IDR, INT_ALL);
        let cr = regs.read(CR) & !(CR_RX_DIS | CR_TX_DIS | CR_RXRST | CR_TXRST);
        regs.write(
            CR,
            cr | CR_RXRST | CR_TXRST | CR_RX_EN | CR_TX_EN | CR_STOPBRK,
        );
        // No receiver timeout: the trigger level of 1 reports every byte.
        regs.write(RXTOUT, 0);
        regs.write(RXWM, 1);
        regs.write(ISR, INT_ALL);
        regs.write(IER, INT_RXTRIG);
        Self {
            regs,
            tx_blocked: false,
        }
    }

    /// The next received byte, if any; never waits.
    pub fn read_byte(&mut self) -> Option<u8> {
        if self.regs.read(SR) & SR_RXEMPTY != 0 {
            return None;
        }
        Some(self.regs.read(FIFO) as u8)
    }

    /// Puts as many of `bytes` in the TX FIFO as it has room for; never waits.
    pub fn try_write(&mut self, bytes: &[u8]) -> usize {
        for (i, &b) in bytes.iter().enumerate() {
            if self.regs.read(SR) & SR_TXFULL != 0 {
                self.tx_blocked = true;
                return i;
            }
            self.regs.write(FIFO, u32::from(b));
        }
        bytes.len()
    }

    /// After a service of the device: acknowledges its interrupts and chooses which may
    /// fire next (see the module doc).
    pub fn rearm(&mut self) {
        let pending = self.regs.read(ISR);
        self.regs.write(ISR, pending);
        let backlog = self.regs.read(SR) & SR_RXEMPTY == 0;
        let (rx_on, rx_off) = if backlog {
            (0, INT_RXTRIG)
        } else {
            (INT_RXTRIG, 0)
        };
        let (tx_on, tx_off) = if self.tx_blocked {
            (INT_TXEMPTY, 0)
        } else {
            (0, INT_TXEMPTY)
        };
        self.tx_blocked = false;
        if rx_off | tx_off != 0 {
            self.regs.write(IDR, rx_off | tx_off);
        }
        if rx_on | tx_on != 0 {
            self.regs.write(IER, rx_on | tx_on);
        }
    }
}

#[cfg(test)]
#[path = "cadence_uart/tests.rs"]
mod tests;
