//! Which UART the microvisor logs to: the one `/chosen/stdout-path` names (an alias and a
//! `:options` suffix allowed), if it is a kind the microvisor can drive: an Arm PL011 (QEMU
//! virt) or SBSA UART, a Cadence UART (Xilinx Zynq and ZynqMP) or a 16550-compatible one (a PC-style
//! 16550 or a Synopsys DesignWare APB UART with `reg-shift` and `reg-io-width`, as on
//! Kunpeng and Rockchip boards). Anything else, or no `stdout-path`, and the microvisor is
//! silent: it never guesses a UART that firmware did not name (only a tree without
//! `stdout-path` falls back to the first PL011, QEMU virt's without `/chosen`).
//!
//! Baud rates and line settings are firmware's: the driver ([`crate::arch`]'s `uart`) only
//! transmits, receives and turns on what it needs to.

use crate::dt_addr::{self, Located};
use crate::platform::{gic_intid, Region};
use protocol::addr::PhysAddr;

/// How to drive a UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartKind {
    /// Arm PrimeCell PL011.
    Pl011,
    /// Cadence UART (Xilinx `xuartps`): channel status TXFULL, one FIFO register.
    Cadence,
    /// 16550-compatible: registers `1 << reg_shift` bytes apart, accessed `io_width` bytes
    /// wide (1 or 4).
    Ns16550 {
        /// `reg-shift` (0 to 3).
        reg_shift: u8,
        /// `reg-io-width` in bytes.
        io_width: u8,
    },
}

/// The microvisor's console UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsoleUart {
    /// Its kind.
    pub kind: UartKind,
    /// Its registers (CPU physical address, translated through the buses above it).
    pub region: Region,
    /// Its interrupt (GIC INTID), if the DT gives one in a form we read.
    pub irq: Option<u32>,
}

/// Compatible strings of the Cadence UART.
pub const CADENCE: [&str; 4] = [
    "cdns,uart-r1p12",
    "cdns,uart-r1p8",
    "xlnx,xuartps",
    "xlnx,zynqmp-uart",
];
/// Compatible strings of 16550-compatible UARTs.
pub const NS16550: [&str; 3] = ["ns16550a", "ns16550", "snps,dw-apb-uart"];
/// Compatible strings of the PL011 and of the SBSA generic UART (a PL011 subset with the
/// same data, flag and interrupt registers: Kunpeng and other server boards).
pub const PL011: [&str; 2] = ["arm,pl011", "arm,sbsa-uart"];

/// Register window assumed when `reg` gives no size (one page).
const DEFAULT_SIZE: u64 = 0x1000;

/// The kind of UART `node` is, if the microvisor can drive it.
pub fn kind_of(node: fdt::node::FdtNode<'_, '_>) -> Option<UartKind> {
    let compatible = node.compatible()?;
    let is = |list: &[&str]| compatible.all().any(|c| list.contains(&c));
    if is(&PL011) {
        return Some(UartKind::Pl011);
    }
    if is(&CADENCE) {
        return Some(UartKind::Cadence);
    }
    if is(&NS16550) {
        let u32_prop = |name: &str, default: u32| match node.property(name) {
            None => Some(default),
            Some(p) => Some(u32::from_be_bytes(p.value.get(..4)?.try_into().ok()?)),
        };
        let reg_shift = u32_prop("reg-shift", 0)?;
        let io_width = u32_prop("reg-io-width", 1)?;
        // Registers spaced more than 8 bytes apart, or 2- and 8-byte accesses: no board we
        // know uses them, and a wrong guess would write to the wrong register.
        if reg_shift > 3 || !matches!(io_width, 1 | 4) {
            return None;
        }
        return Some(UartKind::Ns16550 {
            reg_shift: reg_shift as u8,
            io_width: io_width as u8,
        });
    }
    None
}

/// The console UART of a device tree (see the module doc), or `None` for a silent
/// microvisor.
pub fn find(fdt: &fdt::Fdt<'_>) -> Option<ConsoleUart> {
    let has_stdout = fdt
        .find_node("/chosen")
        .is_some_and(|c| c.property("stdout-path").is_some());
    let node = if has_stdout {
        dt_addr::stdout_node(fdt)?
    } else {
        dt_addr::find_compatible(fdt, &PL011)?
    };
    console_of(&node)
}

/// [`find`] on a flattened device tree; `None` for a blob that is not one.
pub fn find_in(blob: &[u8]) -> Option<ConsoleUart> {
    find(&fdt::Fdt::new(blob).ok()?)
}

impl core::fmt::Display for ConsoleUart {
    /// `cadence UART at 0xff000000`: the log's first line names it.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let kind = match self.kind {
            UartKind::Pl011 => "PL011",
            UartKind::Cadence => "Cadence",
            UartKind::Ns16550 { .. } => "16550",
        };
        write!(f, "{kind} UART at {:#x}", self.region.base.as_u64())
    }
}

/// `node` as a console UART, if it is a kind we drive and its registers translate.
fn console_of(node: &Located<'_, '_>) -> Option<ConsoleUart> {
    let kind = kind_of(node.node())?;
    let (base, size) = node.reg(0)?;
    let irq = node
        .node()
        .property("interrupts")
        .and_then(|p| gic_intid(p.value));
    Some(ConsoleUart {
        kind,
        region: Region {
            base: PhysAddr::new(base),
            size: if size == 0 { DEFAULT_SIZE } else { size },
        },
        irq,
    })
}

#[cfg(test)]
#[path = "console_uart_tests.rs"]
mod tests;
