//! The hardware-driving half of the microvisor: global state, boot, the per-CPU run loop,
//! exit handling, the capability protocol and guest PSCI. Built only for the board; the
//! logic it leans on (`mm`, `trap`, `sched`, `captable`, `vgic`, `platform`) is host-tested.
//!
//! Lock order: there is one lock, [`HYP`], taken by a CPU for each exit it handles and
//! released before it enters a guest or waits. The log lock may be taken inside it.

pub mod boot;
pub mod build;
pub mod bulk;
pub mod capcall;
pub mod console;
pub mod devices;
pub mod domain;
pub mod exits;
pub mod loader;
pub mod psci;
pub mod run;
pub mod tables;
pub mod xen;

use crate::arch::boot::MAX_CPUS;
use crate::mm::frames::FrameAllocator;
use crate::platform::Platform;
use crate::sched::{RunQueue, VcpuKey};
use crate::sync::Mutex;
use alloc::boxed::Box;
use alloc::vec::Vec;
use domain::Domain;
use protocol::ids::DomainId;

/// Most domains alive at once (domain ids 0..MAX_DOMAINS).
pub const MAX_DOMAINS: usize = 32;

/// Everything the microvisor knows, behind one lock.
pub struct Hyp {
    /// The board.
    pub platform: Platform,
    /// Free physical memory.
    pub frames: FrameAllocator,
    /// Domains by id.
    pub domains: Vec<Option<Box<Domain>>>,
    /// Per-CPU run queues.
    pub runqueues: [RunQueue; MAX_CPUS],
    /// The vCPU whose state each CPU's hardware holds (run lazily: kept while idle).
    pub loaded: [Option<VcpuKey>; MAX_CPUS],
    /// Per-CPU "pick again" flags (a wake-up, a kick, an expired slice).
    pub resched: [bool; MAX_CPUS],
    /// Incarnation counters per domain id.
    pub instances: [u32; MAX_DOMAINS],
    /// The id given to the last new domain (ids are handed out round-robin after it).
    pub last_domid: u16,
    /// The microvisor's own identity map (devices are added to it as they are probed).
    pub el2_map: crate::mm::pagetable::PageTable,
    /// Devices that can be passed through (virtio-mmio transports with a device).
    pub devices: Vec<devices::Device>,
    /// Domain receiving console input.
    pub focus: DomainId,
    /// Consecutive Ctrl-A typed (three switch the focus).
    pub switch_presses: u8,
    /// Number of list registers this GIC implements.
    pub nr_lrs: usize,
    /// Every domain's event-channel ports (Xen ABI).
    pub evtchn: crate::xen::EventChannels,
    /// Every domain's grant table and grant mappings (Xen ABI).
    pub grants: crate::xen::GrantTables,
    /// Per-CPU memory work to do outside the lock (see [`bulk`]).
    pub bulk: [bulk::Bulk; MAX_CPUS],
}

/// The global state; `None` until the boot CPU has built it.
pub static HYP: Mutex<Option<Hyp>> = Mutex::new(None);

/// Packs a vCPU's identity into a run-queue key.
pub fn vcpu_key(domid: DomainId, vcpu: usize) -> VcpuKey {
    VcpuKey((u32::from(domid.0) << 8) | vcpu as u32)
}

/// Unpacks a run-queue key.
pub fn key_parts(key: VcpuKey) -> (DomainId, usize) {
    (DomainId((key.0 >> 8) as u16), (key.0 & 0xff) as usize)
}

impl Hyp {
    /// The domain with id `id`, if alive.
    pub fn domain(&self, id: DomainId) -> Option<&Domain> {
        self.domains.get(usize::from(id.0))?.as_deref()
    }

    /// The domain with id `id`, if alive.
    pub fn domain_mut(&mut self, id: DomainId) -> Option<&mut Domain> {
        self.domains.get_mut(usize::from(id.0))?.as_deref_mut()
    }

    /// Marks `cpu` for a new scheduling decision and interrupts it if it is another CPU.
    pub fn kick_cpu(&mut self, cpu: usize, this_cpu: usize) {
        if let Some(flag) = self.resched.get_mut(cpu) {
            *flag = true;
        }
        if cpu != this_cpu {
            if let Some(&mpidr) = self.platform.cpus.as_slice().get(cpu) {
                crate::arch::gic::kick(mpidr);
            }
        }
    }
}
