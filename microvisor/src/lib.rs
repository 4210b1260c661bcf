//! The Bulkhead microvisor: the EL2 core. It owns CPUs, stage-2 memory, the GICv3 and the
//! timers, and enforces capabilities; everything else runs in domains.
//!
//! Logic lives in host-testable modules (`mm`, `trap`, `sched`, `captable`, `vgic`); the
//! `arch` module is the only place that touches hardware, with `arch/host.rs` standing in
//! for it in host tests.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod arch;
pub mod boot_options;
pub mod captable;
pub mod console_line;
pub mod console_uart;
pub mod debugregs;
pub mod device_reset;
pub mod domid;
pub mod dt_addr;
pub mod el2_stack;
pub mod fast_slot;
pub mod fastpath;
pub mod fdt_compact;
pub mod gich_lr;
pub mod guest_dt;
pub mod guest_dt_extra;
pub mod guestcopy;
#[cfg(target_os = "none")]
pub mod hyp;
pub mod idle_wake;
pub mod idregs;
pub mod linux_image;
pub mod lock_holds;
pub mod log;
pub mod mailbox;
pub mod mgmt_port;
pub mod mm;
pub mod passthrough;
pub mod platform;
pub mod pmu;
pub mod poll_wait;
pub mod posted;
pub mod ratelimit;
pub mod reloc;
pub mod sched;
pub mod seeds;
pub mod sync;
#[cfg(test)]
pub mod test_explore;
#[cfg(test)]
pub mod test_rng;
pub mod timer_earliest;
pub mod tlb_reach;
pub mod trap;
pub mod unfolded;
pub mod uploads;
pub mod vgic;
pub mod xen;
