//! dom0's management port: the host's unix socket `target/bulkhead/mgmt.sock`, reached
//! through whichever device the microvisor gave dom0 for it: a virtio console on QEMU
//! `virt`, or the UART the boot device tree names as the port (`bulkhead,mgmt-port`) on a
//! board (the ZCU102's second Cadence UART). Bytes go through [`dom0::mgmt::link::Link`],
//! which reads a bounded amount per poll, answers each framed request and queues the
//! replies in a bounded buffer; the link's framing copes with any byte stream.
//!
//! Transmit never waits for the host: the console queues one buffer and reclaims it on a
//! later poll, the UART takes what fits in its FIFO, so a client that stops reading stalls
//! only its own replies (which the link drops after a while), never dom0.

use bulkhead_runtime::arch::cadence_mmio::Mmio;
use bulkhead_runtime::arch::virtio;
use bulkhead_runtime::arch::virtio_console::Console;
use bulkhead_runtime::cadence_uart::CadenceUart;
use bulkhead_runtime::{cap, gic, println};
use dom0::mgmt::link::{Device, Link};
use dom0::mgmt::DomainOps;
use protocol::cap::{
    CapDetail, CapInfo, CapKind, MGMT_UART_16550, MGMT_UART_CADENCE, MGMT_UART_PL011,
};
use protocol::control::CapOp;

/// virtio device type of a console.
const VIRTIO_CONSOLE: &str = "virtio-mmio type 3";
/// Labels of a management UART's Device capability, one per kind (only the Cadence UART
/// has a driver here; another kind is reported as such).
const MGMT_UARTS: [&str; 3] = [MGMT_UART_CADENCE, MGMT_UART_PL011, MGMT_UART_16550];

/// Why the mapped management device could not be opened.
enum OpenError {
    /// The virtio console's transport refused.
    Virtio(virtio::DeviceError),
    /// The Cadence UART's window is too small for its registers or misaligned.
    UartWindow,
    /// A management UART kind dom0 has no driver for.
    NoDriver,
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::Virtio(e) => write!(f, "the virtio transport refused: {e:?}"),
            OpenError::UartWindow => f.write_str("the window is too small or misaligned"),
            OpenError::NoDriver => f.write_str("dom0 has no driver for it"),
        }
    }
}

/// The device the port runs over.
enum Dev {
    /// QEMU virt's virtio console (boxed: it holds its queues, the UART a base address).
    Virtio(alloc::boxed::Box<Console>),
    /// A board's Cadence UART.
    Cadence(CadenceUart<Mmio>),
}

impl Device for Dev {
    fn read_byte(&mut self) -> Option<u8> {
        match self {
            Dev::Virtio(c) => c.read_byte(),
            Dev::Cadence(u) => u.read_byte(),
        }
    }

    fn try_write(&mut self, bytes: &[u8]) -> usize {
        match self {
            Dev::Virtio(c) => c.try_write(bytes),
            Dev::Cadence(u) => u.try_write(bytes),
        }
    }
}

/// The open port.
pub struct Port {
    dev: Dev,
    link: Link,
    /// Its interrupt (a forwarded SPI), if any.
    pub irq: Option<u32>,
}

impl Port {
    /// Maps the management device among our Device capabilities (the management UART if
    /// the microvisor named one, else the first virtio console) and opens it. `None` (with
    /// a line saying why) when there is none: the system then has no host link.
    pub fn open(caps: &[CapInfo]) -> Option<Port> {
        let devices = || caps.iter().filter(|c| c.kind == CapKind::Device);
        let uart = devices().find(|c| MGMT_UARTS.contains(&c.label.as_str()));
        let Some(dev) = uart.or_else(|| devices().find(|c| c.label == VIRTIO_CONSOLE)) else {
            let n = devices().count();
            println!(
                "no management port: none of {n} devices is a virtio console or a management UART"
            );
            return None;
        };
        let irq = match &dev.detail {
            CapDetail::Device { irqs, .. } => irqs.first().copied(),
            _ => None,
        };
        let (base, size) = match cap::call(CapOp::DeviceMap, [dev.handle.to_raw(), 0, 0, 0, 0, 0]) {
            Ok(r) => {
                // The same RAM for every device: the last answer is as good as any.
                virtio::set_phys_offset(r[2]);
                (r[0], r[1])
            }
            Err(e) => {
                println!("management port: cannot map {}: {e}", dev.label);
                return None;
            }
        };
        let opened = if dev.label == VIRTIO_CONSOLE {
            Console::open(base, size)
                .map(|c| Dev::Virtio(alloc::boxed::Box::new(c)))
                .map_err(OpenError::Virtio)
        } else if dev.label == MGMT_UART_CADENCE {
            // SAFETY: DeviceMap just mapped this Cadence UART's window at `base` for us
            // alone (the microvisor refuses a second holder); nothing else in dom0 uses it.
            unsafe { Mmio::new(base, size) }
                .map(|regs| Dev::Cadence(CadenceUart::open(regs)))
                .ok_or(OpenError::UartWindow)
        } else {
            Err(OpenError::NoDriver)
        };
        let dev = match opened {
            Ok(d) => d,
            Err(e) => {
                println!(
                    "management port: cannot open the {} at {base:#x} ({size:#x} bytes): {e}",
                    dev.label
                );
                return None;
            }
        };
        if let Some(irq) = irq {
            gic::enable_spi(irq);
        }
        let what = match dev {
            Dev::Virtio(_) => "virtio console",
            Dev::Cadence(_) => "Cadence UART",
        };
        println!("management port ready ({what} at {base:#x})");
        Some(Port {
            dev,
            link: Link::new(),
            irq,
        })
    }

    /// Reply bytes still waiting for the device (the host is not reading, or a reply is
    /// larger than one transmit).
    pub fn pending(&self) -> usize {
        self.link.pending()
    }

    /// Serves what the port holds, within the link's bounds; returns how many bytes it
    /// read. `interrupted`: its interrupt fired (or input was left behind), so a virtio
    /// console's interrupt status is acknowledged. A safety poll without one leaves the
    /// device's registers alone (each access traps to the microvisor's lock) and looks
    /// only at the queues in RAM: an unacknowledged status holds the level interrupt
    /// asserted, so its handler still runs.
    pub fn poll(&mut self, ops: &mut impl DomainOps, interrupted: bool) -> usize {
        if let Dev::Virtio(c) = &mut self.dev {
            if interrupted {
                c.ack_interrupt();
            }
        }
        let polled = self.link.poll(&mut self.dev, ops);
        if let Dev::Cadence(u) = &mut self.dev {
            u.rearm();
        }
        if polled.dropped {
            println!("management port: the client stopped reading; its replies were dropped");
        }
        polled.read
    }
}
