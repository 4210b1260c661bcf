//! dom0's management port: the virtio console that QEMU exposes on the host as the unix
//! socket `target/bulkhead/mgmt.sock` (a UART on boards). Bytes go through
//! [`dom0::mgmt::link::Link`], which reads a bounded amount per poll, answers each framed
//! request and queues the replies in a bounded buffer.
//!
//! Known gap: `virtio-drivers` 0.13's console only transmits synchronously (it waits for the
//! device to use each buffer), so [`Device::try_write`] here still waits while QEMU holds
//! the transmit queue (a host client that stops reading with a full socket buffer). Each
//! write is at most [`WRITE_CHUNK`] bytes. The runtime's console needs a non-blocking
//! transmit (add, notify, reclaim used buffers on a later poll) for the port to stop
//! waiting altogether; the link's bounds and stall policy are ready for it.

use bulkhead_runtime::arch::virtio::{self, Console};
use bulkhead_runtime::{cap, gic, println, StartInfo};
use dom0::mgmt::link::{Device, Link};
use dom0::mgmt::DomainOps;
use protocol::cap::{CapDetail, CapInfo, CapKind};
use protocol::control::CapOp;

/// virtio device type of a console.
const VIRTIO_CONSOLE: &str = "virtio-mmio type 3";

/// Most bytes handed to the console in one transmit.
const WRITE_CHUNK: usize = 512;

/// The console as the link's device.
struct Dev<'a>(&'a mut Console);

impl Device for Dev<'_> {
    fn read_byte(&mut self) -> Option<u8> {
        self.0.read_byte()
    }

    fn try_write(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(WRITE_CHUNK);
        match self.0.write(&bytes[..n]) {
            Ok(()) => n,
            Err(_) => 0,
        }
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
    pub fn open(caps: &[CapInfo], info: &StartInfo) -> Option<Port> {
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
            Ok(r) => (r[0], r[1]),
            Err(e) => {
                println!("management port: cannot map {}: {e}", dev.label);
                return None;
            }
        };
        virtio::set_phys_offset(info.phys_offset);
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
