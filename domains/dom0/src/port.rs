//! dom0's management port: the virtio console that QEMU exposes on the host as the unix
//! socket `target/bulkhead/mgmt.sock` (a UART on boards). Bytes go through
//! [`dom0::mgmt::Server`], which answers each framed request.

use bulkhead_runtime::arch::virtio::{self, Console};
use bulkhead_runtime::{cap, gic, println, StartInfo};
use dom0::mgmt::{DomainOps, Server};
use protocol::cap::{CapDetail, CapInfo, CapKind};
use protocol::control::CapOp;

/// virtio device type of a console.
const VIRTIO_CONSOLE: &str = "virtio-mmio type 3";

/// The open port.
pub struct Port {
    console: Console,
    server: Server,
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
            server: Server::new(),
            irq,
        })
    }

    /// Serves every complete request waiting on the port; returns how many bytes it read.
    pub fn poll(&mut self, ops: &mut impl DomainOps) -> usize {
        self.console.ack_interrupt();
        let mut input = alloc::vec::Vec::new();
        while let Some(b) = self.console.read_byte() {
            input.push(b);
        }
        if input.is_empty() {
            return 0;
        }
        let reply = self.server.input(&input, ops);
        if !reply.is_empty() && self.console.write(&reply).is_err() {
            // The host side went away mid-reply: drop the session state with it.
            self.server.reset();
        }
        input.len()
    }
}
