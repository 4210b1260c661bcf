//! dom0's management port: the virtio console that QEMU exposes on the host as the unix
//! socket `target/bulkhead/mgmt.sock` (a UART on boards). Bytes go through
//! [`dom0::mgmt::link::Link`], which reads a bounded amount per poll, answers each framed
//! request and queues the replies in a bounded buffer.
//!
//! Transmit never waits for the host: the console queues one buffer and reclaims it on a
//! later poll, so a client that stops reading stalls only its own replies (which the link
//! drops after a while), never dom0.

use bulkhead_runtime::arch::virtio;
use bulkhead_runtime::arch::virtio_console::Console;
use bulkhead_runtime::{cap, gic, println};
use dom0::mgmt::link::{Device, Link};
use dom0::mgmt::DomainOps;
use protocol::cap::{CapDetail, CapInfo, CapKind};
use protocol::control::CapOp;

/// virtio device type of a console.
const VIRTIO_CONSOLE: &str = "virtio-mmio type 3";

/// The console as the link's device.
struct Dev<'a>(&'a mut Console);

impl Device for Dev<'_> {
    fn read_byte(&mut self) -> Option<u8> {
        self.0.read_byte()
    }

    fn try_write(&mut self, bytes: &[u8]) -> usize {
        self.0.try_write(bytes)
    }
}

/// The open port.
pub struct Port {
    console: Console,
    link: Link,
    /// Its interrupt (a forwarded SPI), if any.
    pub irq: Option<u32>,
}

impl Port {
    /// Maps the first virtio console among our Device capabilities and opens it. `None`
    /// (with a line saying why) when there is none: the system then has no host link.
    pub fn open(caps: &[CapInfo]) -> Option<Port> {
        let Some(dev) = caps
            .iter()
            .find(|c| c.kind == CapKind::Device && c.label == VIRTIO_CONSOLE)
        else {
            let devices = caps.iter().filter(|c| c.kind == CapKind::Device).count();
            println!("no management port: none of {devices} devices is a virtio console");
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
        let console = match Console::open(base, size) {
            Ok(c) => c,
            Err(e) => {
                println!("management port: cannot open the virtio console at {base:#x}: {e:?}");
                return None;
            }
        };
        if let Some(irq) = irq {
            gic::enable_spi(irq);
        }
        println!("management port ready (virtio console at {base:#x})");
        Some(Port {
            console,
            link: Link::new(),
            irq,
        })
    }

    /// Serves what the port holds, within the link's bounds; returns how many bytes it
    /// read.
    pub fn poll(&mut self, ops: &mut impl DomainOps) -> usize {
        self.console.ack_interrupt();
        let polled = self.link.poll(&mut Dev(&mut self.console), ops);
        if polled.dropped {
            println!("management port: the client stopped reading; its replies were dropped");
        }
        polled.read
    }
}
