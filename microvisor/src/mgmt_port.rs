//! Which UART is dom0's management port on a board (DESIGN §3.3): the one
//! `/chosen/bulkhead,mgmt-port` names (a path or an alias, read like `stdout-path`), which
//! the tools write for machines whose port is a UART (the ZCU102's second Cadence UART,
//! `serial1`). Nothing is guessed: without the property there is no management UART (QEMU
//! `virt`'s port is a virtio console, found with the other virtio transports).
//!
//! The UART becomes a Device capability for dom0 under the passthrough rules (DESIGN §6.1):
//! never the microvisor's own console UART, nor anything else it keeps (GIC, RAM), nor an
//! interrupt it uses ([`crate::passthrough::clear_of`]); a sub-page window is trapped.

use crate::console_uart::{self, ConsoleUart, UartKind};
use crate::platform::{gic_intid, DeviceNode, Region};
use crate::{dt_addr, passthrough};
use protocol::addr::PhysAddr;

/// The `/chosen` property naming the management UART.
pub use protocol::boot::MGMT_PORT_PROP;

/// Why the named management UART is not handed out (logged at boot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The property names no node, or its address does not translate.
    NoSuchNode,
    /// Not a UART kind the system knows.
    NotAUart,
    /// It overlaps what the microvisor keeps (its console UART, the GIC, RAM) or uses an
    /// interrupt that is not a guest SPI or that the microvisor uses.
    Kept,
}

/// The management UART of `fdt`: `Ok(None)` when the tree names none; `kept` and
/// `kept_irqs` are what the microvisor keeps for itself.
pub fn find(
    fdt: &fdt::Fdt<'_>,
    kept: &[Region],
    kept_irqs: &[u32],
) -> Result<Option<ConsoleUart>, Refused> {
    let named = fdt
        .find_node("/chosen")
        .is_some_and(|c| c.property(MGMT_PORT_PROP).is_some());
    if !named {
        return Ok(None);
    }
    let node = dt_addr::chosen_node(fdt, MGMT_PORT_PROP).ok_or(Refused::NoSuchNode)?;
    let kind = console_uart::kind_of(node.node()).ok_or(Refused::NotAUart)?;
    let (base, size) = node.reg(0).ok_or(Refused::NoSuchNode)?;
    let irq = node
        .node()
        .property("interrupts")
        .and_then(|p| gic_intid(p.value));
    let uart = ConsoleUart {
        kind,
        region: Region {
            base: PhysAddr::new(base),
            size: if size == 0 { 0x1000 } else { size },
        },
        irq,
    };
    if !passthrough::clear_of(device_node(&uart), kept, kept_irqs) {
        return Err(Refused::Kept);
    }
    Ok(Some(uart))
}

/// The UART as a passthrough device.
pub fn device_node(uart: &ConsoleUart) -> DeviceNode {
    DeviceNode {
        region: uart.region,
        irq: uart.irq,
    }
}

/// The label of its Device capability, by which dom0 picks its driver.
pub fn label(kind: UartKind) -> &'static str {
    match kind {
        UartKind::Cadence => protocol::cap::MGMT_UART_CADENCE,
        UartKind::Pl011 => protocol::cap::MGMT_UART_PL011,
        UartKind::Ns16550 { .. } => protocol::cap::MGMT_UART_16550,
    }
}

#[cfg(test)]
#[path = "mgmt_port_tests.rs"]
mod tests;
