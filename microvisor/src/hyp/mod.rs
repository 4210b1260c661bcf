//! The hardware-driving half of the microvisor: global state, boot, the per-CPU run loop,
//! exit handling, the capability protocol and guest PSCI. Built only for the board; the
//! logic it leans on (`mm`, `trap`, `sched`, `captable`, `vgic`, `platform`) is host-tested.
//!
//! # Concurrency
//!
//! State lives at one of these levels:
//! - **CPU-private** ([`percpu::Local`], a local of the CPU's run loop): the loaded vCPU's
//!   list-register shadow, whether it is pinned exclusive, its cached virtual-timer
//!   priority and private-interrupt configuration, the LRs its fast path filled with posted
//!   interrupts, and exit/IRQ/run-time counts not yet folded into its domain record. Never
//!   shared, so never locked; handed to the domain record while the CPU holds [`HYP`].
//! - **Cross-CPU, lock-free** (atomics): each CPU's [`percpu::MAILBOX`] (requests from
//!   other CPUs — `RESCHED`, `POSTED`, `POLL` — announced with the kick SGI only on the
//!   empty-to-non-empty edge); each vCPU's [`percpu::POSTED_IRQS`] word (private interrupts
//!   posted to it, [`crate::posted`]); each vCPU's [`percpu::VCPU_HOME`] (its pCPU if pinned
//!   exclusive, written at build) and [`percpu::VCPU_CPU`] (its pCPU, either kind, 0 while
//!   it moves), and each CPU's [`percpu::CPU_MPIDR`] (written at boot);
//!   and each domain's [`percpu::VGIC_EPOCH`] (bumped under [`HYP`] when its vGIC
//!   configuration is written, read by the fast path to know its cached timer priority and
//!   private-interrupt configuration are still good); and each CPU's [`percpu::UNFOLDED`]
//!   (its loaded vCPU's counts not yet folded into the record, published by that CPU's
//!   fast path while the vCPU waits out its WFIs at EL2, [`crate::unfolded`]).
//! - **Per domain, behind its own small lock** ([`fast_slots`]): its debug console's line
//!   assembly, rate limit and unread input, its heartbeats, its vCPUs' reported idle time
//!   and the sub-page device windows it mapped, so `ConsoleWrite`, `ConsoleRead`,
//!   `Heartbeat`, `IdleReport` and its accesses to its own trapped device registers finish
//!   on the fast path; whether a slot serves its domain is set under [`HYP`].
//! - **Event channels, behind their own lock** ([`xen::event_state`]): every domain's
//!   port table, the windows onto its shared_info and vcpu_infos, a copy of its RAM
//!   map and which of its vCPUs are blocked in `SCHEDOP_poll` ([`xen::poll`]), so an
//!   `EVTCHNOP_send` to any vCPU and an `EVTCHNOP_unmask` finish on the
//!   caller's fast path (one that makes a port of a domain with pollers pending asks the
//!   pollers' CPUs to look, `POLL`); the rest of `event_channel_op` takes this lock inside
//!   [`HYP`].
//! - **Grant tables, behind their own lock** ([`xen::grant_state`]): every domain's grant
//!   table and maptrack, and a mirror of each domain's physmap (RAM map, shared_info and
//!   magic pages, whether it is live), so a `GNTTABOP_copy` finishes on the caller's fast
//!   path; maps, unmaps, setup and teardown take this lock inside [`HYP`] for the grant
//!   core's part (their stage-2 edits stay under [`HYP`]).
//! - **Global, behind [`HYP`]** (a test-and-set lock with bounded unfairness,
//!   [`crate::sync`]): everything in [`Hyp`] — domain table, run queues, the vGIC models,
//!   stage 2, capability tables, frames.
//!
//! The exits that concern only the running vCPU finish on the fast path ([`fastpath`])
//! without the global lock: capability `NullCall`/`WhoAmI`,
//! `ConsoleWrite`/`ConsoleRead`/`Heartbeat`/`IdleReport` (the domain's slot lock only),
//! `xen_version(XENVER_version)`, WFI with an interrupt pending in an LR (and the WFI of a
//! pinned-exclusive vCPU, or of a shared one with nothing else runnable on its pCPU, waited
//! out at EL2 with it loaded), spurious interrupts, the kick SGI, the virtual timer of a
//! loaded vCPU, a passthrough SPI of the loaded vCPU's domain that is idle in its vGIC model
//! (into a hardware-linked LR the model takes over at the CPU's next locked pass,
//! [`crate::vgic::FastSpi`]), and posted interrupts. Cross-CPU interrupts to a
//! pinned-exclusive vCPU (and event-channel upcalls to any vCPU) are *posted*: the sender ORs
//! the INTID into the target's word and posts `POSTED` to its CPU's mailbox; the target CPU's
//! fast path puts them in free LRs (a shared target's only while it is alone on its pCPU;
//! otherwise its CPU's next locked pass puts them in the model), and the vGIC model adopts
//! those LRs at that CPU's next locked pass. A guest's `ICC_SGI1R_EL1` (or GICv2 `GICD_SGIR`)
//! write is emulated on the sender's fast path, with no lock when its targets are all
//! pinned exclusive (on other CPUs or the sender itself), else under the event lock (which
//! a move waits for), posted to each target wherever it is placed as an upcall is; and so
//! is an `EVTCHNOP_send` to any vCPU,
//! exclusive or shared, on another pCPU or the sender's own (its bits raised under the
//! event lock, PPI 31 posted to its word; a shared target's CPU places it as above, and a
//! target switched out on the sender's own pCPU is woken by the sender's CPU's next
//! locked pass, the scheduling decision its wake needs), an `EVTCHNOP_unmask` the same way, and
//! a `GNTTABOP_copy` (under the grant lock); a posted upcall whose vCPU's LRs hold one
//! already is dropped rather than left for a locked pass
//! ([`crate::fastpath::drop_held_upcall`]); event-channel upcalls and SGIs raised
//! under [`HYP`] post the same way when the target is exclusive, loaded elsewhere and
//! runnable. Every other exit takes [`HYP`] once for both its handling and the scheduling
//! decision.
//!
//! Work under [`HYP`] is kept short (issue 12): memory scrubs and image copies are
//! [`bulk`] jobs done outside it (a Linux guest's RAM block by block as it first touches
//! it, [`lazy`]), and the frame bitmap and table walks go a word and a
//! table page at a time. Every locked pass is timed; its CPU's longest hold and what it was
//! for are in [`Hyp::holds`], and long ones are logged ([`crate::lock_holds`]).
//!
//! # Lock order
//!
//! 1. [`HYP`], taken only by the run loop ([`fastpath`]) and boot, never while another
//!    lock is held; released before entering a guest, waiting, or writing the UART.
//! 2. A domain's slot lock ([`fast_slots`]), held to assemble its line, take its input or
//!    record a beat or an idle report; may be taken inside [`HYP`], and by the fast path
//!    without it.
//! 3. The event lock ([`xen::event_state`]), held to look a port up, raise or clear its
//!    bits, or change a table or a domain's event pages; may be taken inside [`HYP`], and
//!    by the fast path without it; never together with a slot lock.
//! 4. The grant lock ([`xen::grant_state`]), held to serve a grant operation's table part
//!    (a whole copy of up to 32 operations, bytes included) or to open, mirror, retire or
//!    close a domain's grant state; may be taken inside [`HYP`], and by the fast path
//!    without it; never together with a slot lock or the event lock.
//! 5. The log lock (`log::LOG`), held only to copy a line in or a piece out; may be taken
//!    inside [`HYP`] or a slot lock.
//! 6. The heap allocator's lock, innermost (any allocation).
//!
//! A first-touch scrub of a guest's RAM block ([`crate::mm::lazy_ram`]) holds no lock: a
//! CPU that finds one in progress waits for it, under whatever lock it holds, and the
//! scrubbing CPU needs none of them to finish.
//!
//! The console drain token (`log::DRAINING`) is only ever tried, never waited for, and is
//! held while the UART is written with neither [`HYP`] nor the log lock held. Mailboxes,
//! posted words, homes and epochs are atomics, written under any lock or none; every locked
//! pass takes its loaded vCPU's posted word after the mailbox (see [`crate::posted`]).

// Raw memory and device access goes through `arch::phys`'s checked windows, guest entry
// through `arch::vectors::run_guest` with the proof `load` made (DESIGN §2).
#![forbid(unsafe_code)]

pub mod beats;
pub mod boot;
pub mod build;
pub mod bulk;
pub mod capcall;
pub mod console;
pub mod devices;
pub mod domain;
pub mod exits;
pub mod fast_slots;
pub mod fastpath;
pub mod lazy;
pub mod loader;
pub mod migrate;
pub mod monitors;
pub mod percpu;
pub mod psci;
pub mod run;
pub mod tables;
pub mod upload;
pub mod vtimer;
pub mod xen;

use crate::arch::boot::MAX_CPUS;
use crate::mm::frames::FrameAllocator;
use crate::platform::{Platform, Region};
use crate::sched::{RunQueue, VcpuKey};
use crate::sync::Mutex;
use crate::timer_earliest::EarliestTimer;
use alloc::boxed::Box;
use alloc::vec::Vec;
use domain::Domain;
use protocol::addr::PhysAddr;
use protocol::ids::DomainId;

/// Most domains alive at once (domain ids 0..MAX_DOMAINS).
pub const MAX_DOMAINS: usize = 32;

// [`Hyp::placed`] has one bit per domain id.
const _: () = assert!(MAX_DOMAINS <= 32);

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
    /// Per CPU, the proof that its hardware is set up to enter the vCPU its pass just
    /// loaded (made by `load`, taken into the CPU's [`percpu::Local`] at the end of the
    /// pass).
    pub guest_loaded: [Option<crate::arch::vectors::GuestLoaded>; MAX_CPUS],
    /// Per CPU, the domain ids (bit n = id n) that may have a vCPU placed on it: set when a
    /// vCPU is placed there (built or re-pinned), cleared when the domain is freed. A
    /// superset, so the per-CPU scans for unloaded vCPUs' timers visit these domains rather
    /// than every slot of [`Self::domains`] (most are empty).
    pub placed: [u32; MAX_CPUS],
    /// Per-CPU "pick again" flags, each set only by its own CPU (a block, an expired
    /// slice); other CPUs post to [`percpu::MAILBOX`] instead.
    pub resched: [bool; MAX_CPUS],
    /// Per CPU, the earliest virtual-timer deadline of its switched-out vCPUs as the
    /// expired-timer scan found it, for the re-arm later in the same locked pass (see
    /// [`crate::timer_earliest`]; unknown outside a pass).
    pub timer_earliest: [EarliestTimer; MAX_CPUS],
    /// The domain ids (bit n = id n) that may have a vCPU blocked in a `SCHEDOP_poll` with
    /// a timeout: set when one starts, cleared when a scan finds none left (see
    /// [`xen::poll`]). A superset, so the EL2 timer's passes look for poll deadlines only while
    /// some domain polls with one (never, for a stock arm64 Linux).
    pub poll_timed: u32,
    /// Incarnation counters per domain id.
    pub instances: [u32; MAX_DOMAINS],
    /// The id given to the last new domain (ids are handed out round-robin after it).
    pub last_domid: u16,
    /// The microvisor's own identity map (devices are added to it as they are probed).
    pub el2_map: crate::mm::pagetable::PageTable,
    /// Devices that can be passed through (virtio-mmio transports with a device, and nodes
    /// the boot DTB marks `xen,passthrough`).
    pub devices: Vec<devices::Device>,
    /// Per domain id: the boot module holding its device-tree fragment (xl `device_tree`),
    /// kept across restarts in place like its devices.
    pub guest_dts: [Option<u16>; MAX_DOMAINS],
    /// Domain receiving console input.
    pub focus: DomainId,
    /// Consecutive Ctrl-A typed (three switch the focus).
    pub switch_presses: u8,
    /// Number of list registers this GIC implements.
    pub nr_lrs: usize,
    /// On a GICv2 host: the virtual CPU interface window (alias-corrected, 8 KiB) every
    /// domain gets at `GUEST_GICV2_GICC_BASE`.
    pub guest_gicc: Option<Region>,
    /// Per-CPU memory work to do outside the lock (see [`bulk`]).
    pub bulk: [bulk::Bulk; MAX_CPUS],
    /// Modules uploaded at run time, with the memory doorway's seal of each sealed one
    /// (see [`upload`]).
    pub uploads: crate::uploads::Uploads<crate::arch::phys::Sealed>,
    /// The longest hold of this lock per CPU, and what it was for (noted by the run loop;
    /// a new longest and each domain build's longest are logged: see
    /// [`crate::lock_holds`]).
    pub holds: crate::lock_holds::Record<MAX_CPUS>,
    /// The key Linux guests' `rng-seed`/`kaslr-seed` are drawn from, if there was any
    /// randomness to key it with ([`crate::seeds`]).
    pub seeds: Option<crate::seeds::Seeds>,
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
    /// The bytes of boot module `index`, if there is such a module.
    pub fn module(&self, index: usize) -> Option<&'static [u8]> {
        let (pa, size) = self.module_region(index)?;
        // A boot module, or an upload once sealed (see `upload` for why the slice stays good).
        crate::arch::phys::module_bytes(PhysAddr::new(pa), size)
    }

    /// Where module `index` (a boot module or an upload) lies: base and length in bytes.
    pub fn module_region(&self, index: usize) -> Option<(u64, u64)> {
        if let Some(u) = self.uploads.get(index) {
            return Some((u.base.as_u64(), u.size));
        }
        let m = self.platform.modules.as_slice().get(index)?;
        Some((m.region.base.as_u64(), m.region.size))
    }

    /// The domain with id `id`, if alive.
    pub fn domain(&self, id: DomainId) -> Option<&Domain> {
        self.domains.get(usize::from(id.0))?.as_deref()
    }

    /// The domain with id `id`, if alive.
    pub fn domain_mut(&mut self, id: DomainId) -> Option<&mut Domain> {
        self.domains.get_mut(usize::from(id.0))?.as_deref_mut()
    }

    /// Notes that domain `id` has a vCPU placed on `cpu` (see [`Self::placed`]).
    pub fn note_placed(&mut self, id: DomainId, cpu: usize) {
        if let (Some(m), Some(bit)) = (self.placed.get_mut(cpu), 1u32.checked_shl(id.0.into())) {
            *m |= bit;
        }
    }

    /// The domains that may have a vCPU on `cpu`, by id (see [`Self::placed`]), as a mask
    /// for [`domain_slots`].
    pub fn placed_on(&self, cpu: usize) -> u32 {
        self.placed.get(cpu).copied().unwrap_or(0)
    }

    /// Marks `cpu` for a new scheduling decision: this CPU's own flag, or another CPU's
    /// mailbox, interrupting it if its mailbox was empty (see [`crate::mailbox`]).
    pub fn kick_cpu(&mut self, cpu: usize, this_cpu: usize) {
        if cpu == this_cpu {
            if let Some(flag) = self.resched.get_mut(cpu) {
                *flag = true;
            }
            return;
        }
        self.post_to_cpu(cpu, crate::mailbox::RESCHED);
    }

    /// Posts `bits` to another CPU's mailbox, interrupting it if the mailbox was empty.
    pub fn post_to_cpu(&self, cpu: usize, bits: u32) {
        let one = 1u64.checked_shl(cpu as u32).unwrap_or(0);
        percpu::post_to_cpus(one, bits, usize::MAX, crate::arch::gic::kick);
    }
}

/// The domain slots (ids) in `mask`, lowest first.
pub fn domain_slots(mask: u32) -> impl Iterator<Item = usize> {
    let mut rest = mask;
    core::iter::from_fn(move || {
        (rest != 0).then(|| {
            let slot = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            slot
        })
    })
}
