//! What "reset" means for each passthrough device the microvisor knows (DESIGN §6.1,
//! issue 16): when a guest that held a device is destroyed or restarts, the device is
//! quiesced before its next owner gets it, so no interrupt the old owner enabled fires
//! into the new one and no line it drove keeps being driven.
//!
//! The table is deliberately small: a device is recognised by its `compatible`, and only
//! registers that stop it are written (interrupts masked and cleared, outputs released,
//! FIFOs reset); state a new owner reads as data (the RTC's time, a UART's baud rate) is
//! left alone. A device not in the table is returned as it is; the next owner's driver
//! initialises it. The register writes go through [`Regs`], which the EL2 shell implements
//! on the device's mapped registers and host tests implement on a fake register file.

/// A device whose reset the microvisor knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Arm PrimeCell PL061 GPIO controller.
    Pl061,
    /// Arm PrimeCell PL031 real-time clock.
    Pl031,
    /// Cadence UART (Xilinx `xuartps`, the ZynqMP's).
    Cadence,
}

/// 32-bit register writes at a byte offset inside one device's window (a reset only
/// writes: it must not depend on what the old owner left to read).
pub trait Regs {
    /// Writes `value` to the register at `offset`.
    fn write(&mut self, offset: u32, value: u32);
}

/// The `compatible` strings of each kind (any one of a node's strings may match).
const TABLE: [(Kind, &[&str]); 3] = [
    (Kind::Pl061, &["arm,pl061"]),
    (Kind::Pl031, &["arm,pl031"]),
    (
        Kind::Cadence,
        &[
            "cdns,uart-r1p12",
            "cdns,uart-r1p8",
            "xlnx,xuartps",
            "xlnx,zynqmp-uart",
        ],
    ),
];

/// The kind of a node whose `compatible` strings are `compatible` (most specific first: the
/// first one the table knows decides), if the table has it.
pub fn kind_of<'a>(compatible: impl IntoIterator<Item = &'a str>) -> Option<Kind> {
    compatible.into_iter().find_map(|c| {
        TABLE
            .iter()
            .find(|(_, names)| names.contains(&c))
            .map(|(kind, _)| *kind)
    })
}

/// PL061 registers (PrimeCell PL061 TRM, table 3-1).
mod pl061 {
    /// Data direction: 1 = output.
    pub const DIR: u32 = 0x400;
    /// Interrupt sense: 1 = level.
    pub const IS: u32 = 0x404;
    /// Interrupt on both edges.
    pub const IBE: u32 = 0x408;
    /// Interrupt event: 1 = rising edge / high level.
    pub const IEV: u32 = 0x40c;
    /// Interrupt mask: 1 = the line's interrupt is enabled.
    pub const IE: u32 = 0x410;
    /// Interrupt clear (write 1s).
    pub const IC: u32 = 0x41c;
    /// All eight lines.
    pub const LINES: u32 = 0xff;
}

/// PL031 registers (PrimeCell PL031 TRM, table 3-1).
mod pl031 {
    /// Match register.
    pub const MR: u32 = 0x04;
    /// Interrupt mask set/clear: 1 = enabled.
    pub const IMSC: u32 = 0x10;
    /// Interrupt clear.
    pub const ICR: u32 = 0x1c;
}

/// Cadence UART registers (Zynq UltraScale+ TRM UG1085, UART register summary).
mod cadence {
    /// Control.
    pub const CR: u32 = 0x00;
    /// Interrupt disable (write 1s).
    pub const IDR: u32 = 0x0c;
    /// Channel interrupt status (write 1s to clear).
    pub const ISR: u32 = 0x14;
    /// Every interrupt source (bits 0..=13).
    pub const ALL: u32 = 0x3fff;
    /// `CR`: reset the receive and transmit paths (self-clearing), disable both, and stop
    /// any break the old owner was sending. The same bits as the register's reset value
    /// (RX and TX disabled, STOPBRK) plus the two FIFO resets.
    pub const CR_QUIESCE: u32 = RXRST | TXRST | RX_DIS | TX_DIS | STOPBRK;
    const RXRST: u32 = 1 << 0;
    const TXRST: u32 = 1 << 1;
    const RX_DIS: u32 = 1 << 3;
    const TX_DIS: u32 = 1 << 5;
    const STOPBRK: u32 = 1 << 8;
}

/// Quiesces a device of `kind` through `regs`.
pub fn quiesce(kind: Kind, regs: &mut impl Regs) {
    match kind {
        Kind::Pl061 => {
            // Mask first, so nothing fires while the rest changes; then clear what is
            // latched, make every line an input (no longer driven) and level/edge
            // selection back to its reset values.
            regs.write(pl061::IE, 0);
            regs.write(pl061::IC, pl061::LINES);
            regs.write(pl061::DIR, 0);
            regs.write(pl061::IS, 0);
            regs.write(pl061::IBE, 0);
            regs.write(pl061::IEV, 0);
        }
        Kind::Pl031 => {
            // The time keeps counting (it is the next owner's clock); the alarm goes.
            regs.write(pl031::IMSC, 0);
            regs.write(pl031::ICR, 1);
            regs.write(pl031::MR, 0);
        }
        Kind::Cadence => {
            regs.write(cadence::IDR, cadence::ALL);
            regs.write(cadence::CR, cadence::CR_QUIESCE);
            regs.write(cadence::ISR, cadence::ALL);
        }
    }
}

#[cfg(test)]
#[path = "device_reset_tests.rs"]
mod tests;
