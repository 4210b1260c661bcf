//! AArch64 EL1: boot code and vectors ([`boot`]), system registers ([`regs`]), raw memory
//! (heap, message pages, start info, probes: [`mem`]) and the GIC's MMIO frames.

mod boot;
pub mod cadence_mmio;
mod context;
mod gnttab;
mod mem;
#[cfg(feature = "native")]
mod native;
mod regs;
mod shared;
pub mod virtio;
mod virtio_blk;
pub mod virtio_console;
pub mod virtio_irq;
pub mod virtio_net;
mod virtio_net_transport;

pub(crate) use boot::call_domain_main;
pub use boot::secondary_entry_ipa;
pub use context::{switch_to, thread_create, thread_current, MAX_THREADS};
pub use gnttab::{grant_entry_write, grant_table_addr};
#[cfg(not(feature = "native"))]
pub(crate) use mem::copy_start_info;
pub use mem::{gic_read32, gic_write32, msg_page_ipa, msg_read, msg_write, probe_read32, Heap};
#[cfg(feature = "native")]
pub use native::{native_cmdline, uart_getc, uart_putc};
pub use regs::*;
pub use shared::{
    clear_port_pending, port_pending, set_port_masked, shared_info_addr, take_pending_ports,
    MappedPage,
};
