//! The vbd table: every virtual block device blkdom serves, its ring and its counters.
//!
//! Each vbd is independent: a halted ring stops only its own vbd, and [`VbdTable::poll`]
//! serves one vbd per call, at most one ring's worth of requests, so the shell can round-
//! robin over vbds with pending events. Requests are performed in batches (see
//! [`crate::exec`]) and answered strictly in ring order, which is what makes restart replay
//! exact (see [`crate::ring`]).

use crate::counters::count;
pub use crate::counters::Counters;
use crate::exec::{Keep, Scratch};
use crate::io::{Disk, DiskInfo, Grants, Kept, RingMem};
use crate::persist::PersistentGrants;
use crate::request::{Limits, Malformed};
use crate::ring::{BackRing, RingError, Slot};
use crate::xenbus::{Handshake, Published, Step};
use alloc::vec::Vec;
use protocol::xen::blkif::{
    BlkifResponse, BlkifStatus, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST,
    BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_SEGMENTS_PER_INDIRECT_PAGE, MAX_RING_PAGE_ORDER,
    RING_SLOT_BYTES,
};
use protocol::xen::structs::DomId;
use protocol::xen::xenbus::XenbusState;

/// `feature-max-indirect-segments` unless configured otherwise: Linux's blkfront uses at
/// most 32 by default, i.e. 128 KiB requests.
pub const DEFAULT_MAX_INDIRECT_SEGMENTS: u16 = 32;

/// Persistent grant maps kept at once by a whole table unless configured otherwise. The
/// shell's maptrack (1024 maps) also holds the rings and the per-batch maps of requests
/// that do not fit (up to a batch's segments); Linux's blkfront pool for a one-page ring is
/// 32 requests of 33 pages, of which a steady stream of 1 MiB reads uses about 264.
pub const DEFAULT_MAX_PERSISTENT_GRANTS: usize = 512;

/// Backend-wide limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// `max-ring-page-order` offered (clamped to [`MAX_RING_PAGE_ORDER`]).
    pub max_ring_page_order: u32,
    /// `feature-max-indirect-segments` offered (0: no indirect requests; clamped to what
    /// eight descriptor pages hold).
    pub max_indirect_segments: u16,
    /// Persistent grant maps kept at once, over every vbd (0: `feature-persistent` is not
    /// offered).
    pub max_persistent_grants: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_ring_page_order: MAX_RING_PAGE_ORDER,
            max_indirect_segments: DEFAULT_MAX_INDIRECT_SEGMENTS,
            max_persistent_grants: DEFAULT_MAX_PERSISTENT_GRANTS,
        }
    }
}

/// What the toolstack configured for one vbd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VbdConfig {
    /// The frontend domain.
    pub frontend: DomId,
    /// The device id (`devid`, the `virtual-device` number, e.g. 51712 for xvda).
    pub devid: u32,
    /// Index of the disk in the shell's disk list.
    pub disk: usize,
    /// Configured read-only (`mode` "r"); a read-only disk makes the vbd read-only too.
    pub read_only: bool,
}

/// Index of a vbd in its [`VbdTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VbdId(pub usize);

/// Why a vbd's ring was halted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HaltReason {
    /// the frontend sent a malformed request
    Malformed(Malformed),
    /// the ring's indexes are corrupt
    Ring(RingError),
}

impl core::fmt::Display for HaltReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "malformed request: {m}"),
            Self::Ring(RingError::Corrupt { req_prod, rsp_prod }) => write!(
                f,
                "ring indexes are corrupt (req_prod {req_prod:#x}, rsp_prod {rsp_prod:#x})"
            ),
            Self::Ring(RingError::BadOrder(o)) => write!(f, "ring page order {o} not supported"),
        }
    }
}

/// Where a vbd is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VbdState {
    /// No ring mapped.
    Disconnected,
    /// Serving its ring.
    Connected,
    /// Ring stopped after a frontend fault; waits for the frontend to close.
    Halted(HaltReason),
}

/// One virtual block device.
#[derive(Clone, Debug)]
pub struct Vbd {
    /// Its configuration.
    pub config: VbdConfig,
    /// Limits requests are checked against.
    pub limits: Limits,
    /// Its xenbus state machine.
    pub handshake: Handshake,
    /// Request counters.
    pub counters: Counters,
    /// The last halt, kept across reconnection for reporting.
    pub last_halt: Option<HaltReason>,
    state: VbdState,
    ring: Option<BackRing>,
    /// The connection's persistent grant maps (see [`crate::persist`]).
    kept: PersistentGrants,
    /// Picked up after a restart in place: the first poll notifies the frontend whatever
    /// the ring's event index says. The dead instance may have published responses and
    /// died before notifying; the frontend then still waits on an event index below
    /// everything published since, and the index test alone would never wake it.
    kick: bool,
}

impl Vbd {
    /// Its state.
    pub fn state(&self) -> VbdState {
        self.state
    }
    /// Capacity in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.limits.disk.sectors
    }
    /// Logical sector size in bytes.
    pub fn sector_size(&self) -> u32 {
        self.limits.disk.sector_size
    }
    /// Whether the vbd refuses writes.
    pub fn read_only(&self) -> bool {
        self.limits.read_only
    }
    /// The ring's private indexes, when connected.
    pub fn ring(&self) -> Option<&BackRing> {
        self.ring.as_ref()
    }
    /// Persistent grant maps kept for the connection.
    pub fn kept_grants(&self) -> usize {
        self.kept.len()
    }
}

/// The outcome of one [`VbdTable::poll`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Poll {
    /// Send an event to the frontend (it asked to hear of a response we published).
    pub notify: bool,
    /// Requests are still waiting (the per-call budget ran out): poll again.
    pub more: bool,
    /// The ring was halted by this call (reported once): log it and perform `step`.
    pub halted: Option<HaltReason>,
    /// Xenbus actions caused by a halt (the move to Closing).
    pub step: Step,
}

/// Every vbd, plus the buffers they share.
#[derive(Debug)]
pub struct VbdTable {
    config: Config,
    vbds: Vec<Vbd>,
    scratch: Scratch,
    /// Persistent grant maps kept over every vbd.
    kept_total: usize,
    /// Kept maps of replaced vbds, undone at the next [`VbdTable::release_grants`].
    stale: Vec<Kept>,
}

impl VbdTable {
    /// An empty table.
    pub fn new(config: Config) -> Self {
        let max_ind = BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BLKIF_SEGMENTS_PER_INDIRECT_PAGE;
        let config = Config {
            max_ring_page_order: config.max_ring_page_order.min(MAX_RING_PAGE_ORDER),
            max_indirect_segments: config.max_indirect_segments.min(max_ind as u16),
            max_persistent_grants: config.max_persistent_grants,
        };
        let segs = usize::from(config.max_indirect_segments).max(BLKIF_MAX_SEGMENTS_PER_REQUEST);
        Self {
            config,
            vbds: Vec::new(),
            scratch: Scratch::new(segs),
            kept_total: 0,
            stale: Vec::new(),
        }
    }

    /// The effective configuration.
    pub fn config(&self) -> Config {
        self.config
    }

    /// Bytes of a disk's staging buffer one request may need at most: a disk serves
    /// `staging / max_request_bytes` requests at a time (at most its depth).
    pub fn max_request_bytes(&self) -> usize {
        self.scratch.max_request_bytes()
    }

    /// Adds a vbd over a disk with properties `disk`.
    pub fn add(&mut self, config: VbdConfig, disk: DiskInfo) -> VbdId {
        let read_only = config.read_only || disk.read_only;
        let publish = Published {
            sectors: disk.sectors,
            sector_size: disk.sector_size,
            physical_sector_size: disk.physical_sector_size,
            read_only,
            flush: disk.flush,
            discard: disk.discard.map(|d| (d.granularity, d.alignment, d.secure)),
            max_ring_page_order: self.config.max_ring_page_order,
            max_indirect_segments: self.config.max_indirect_segments,
            persistent: self.config.max_persistent_grants != 0,
        };
        self.vbds.push(Vbd {
            config,
            limits: Limits {
                disk,
                read_only,
                max_indirect: self.config.max_indirect_segments,
            },
            handshake: Handshake::new(publish),
            counters: Counters::default(),
            last_halt: None,
            state: VbdState::Disconnected,
            ring: None,
            kept: PersistentGrants::new(),
            kick: false,
        });
        VbdId(self.vbds.len() - 1)
    }

    /// Reinitialises entry `id` for a new vbd (the old one's guest went away and the
    /// toolstack wrote it again): fresh handshake, counters and ring, same id.
    /// Maps the old vbd still kept are undone at the next [`VbdTable::release_grants`].
    pub fn replace(&mut self, id: VbdId, config: VbdConfig, disk: DiskInfo) {
        self.add(config, disk);
        if let Some(v) = self.vbds.pop() {
            match self.vbds.get_mut(id.0) {
                Some(slot) => {
                    slot.kept.drain_into(&mut self.stale, &mut self.kept_total);
                    *slot = v;
                }
                None => self.vbds.push(v),
            }
        }
    }

    /// Persistent grant maps kept over every vbd.
    pub fn kept_grants(&self) -> usize {
        self.kept_total
    }

    /// Undoes every persistent grant map of vbd `id` (and of vbds replaced earlier). The
    /// shell calls it when it unmaps the vbd's ring (the connection ends, the vbd is
    /// removed or rewritten): nothing is in flight then, since [`VbdTable::poll`] leaves
    /// nothing in flight.
    pub fn release_grants<G: Grants>(&mut self, id: VbdId, grants: &mut G) {
        if let Some(v) = self.vbds.get_mut(id.0) {
            v.kept.drain_into(&mut self.stale, &mut self.kept_total);
        }
        if !self.stale.is_empty() {
            grants.unmap_persistent(&self.stale);
            self.stale.clear();
        }
    }

    /// Whether vbd `id`'s own `state` key reading `found` means the toolstack wrote the vbd
    /// afresh (its guest was restarted in place, same domain id): the key reads
    /// `Initialising`, which only the toolstack writes, while our handshake is past it. The
    /// old ring and channel belong to the guest's previous life; the shell drops them and
    /// starts the vbd over ([`VbdTable::replace`], [`VbdTable::start`]).
    pub fn rewritten(&self, id: VbdId, found: XenbusState) -> bool {
        self.vbds.get(id.0).is_some_and(|v| {
            found == XenbusState::Initialising && v.handshake.state() != XenbusState::Initialising
        })
    }

    /// The vbd `id`.
    pub fn get(&self, id: VbdId) -> Option<&Vbd> {
        self.vbds.get(id.0)
    }

    /// The vbd `id`, mutably (its handshake is driven through this).
    pub fn get_mut(&mut self, id: VbdId) -> Option<&mut Vbd> {
        self.vbds.get_mut(id.0)
    }

    /// The vbd serving `devid` of `frontend`.
    pub fn find(&self, frontend: DomId, devid: u32) -> Option<VbdId> {
        self.vbds
            .iter()
            .position(|v| v.config.frontend == frontend && v.config.devid == devid)
            .map(VbdId)
    }

    /// Every vbd with its id.
    pub fn iter(&self) -> impl Iterator<Item = (VbdId, &Vbd)> {
        self.vbds.iter().enumerate().map(|(i, v)| (VbdId(i), v))
    }

    /// The shell mapped the ring of `1 << order` pages ([`crate::Action::MapRing`]): start
    /// serving it from its published response index.
    pub fn connect<M: RingMem + ?Sized>(
        &mut self,
        id: VbdId,
        order: u32,
        mem: &mut M,
    ) -> Result<(), RingError> {
        let v = &mut self.vbds[id.0];
        v.ring = Some(BackRing::attach(order, mem)?);
        v.state = VbdState::Connected;
        Ok(())
    }

    /// The shell could not map the ring or bind the port: close the vbd.
    pub fn connect_failed(&mut self, id: VbdId) -> Step {
        let v = &mut self.vbds[id.0];
        v.ring = None;
        v.state = VbdState::Disconnected;
        v.handshake.halt()
    }

    /// Starts vbd `id`'s handshake: publish features, enter InitWait.
    pub fn start(&mut self, id: VbdId) -> Step {
        self.vbds[id.0].handshake.start()
    }

    /// After a restart in place: picks vbd `id` up from the states found in xenstore (see
    /// [`Handshake::resume`]); a returned `MapRing` is followed by [`VbdTable::connect`] as
    /// usual, which replays the unanswered requests.
    pub fn resume<F: FnMut(&str) -> Option<alloc::string::String>>(
        &mut self,
        id: VbdId,
        backend: XenbusState,
        fe: XenbusState,
        read: F,
    ) -> Step {
        let v = &mut self.vbds[id.0];
        let step = v.handshake.resume(backend, fe, read);
        v.kick = step
            .actions
            .iter()
            .any(|a| matches!(a, crate::Action::MapRing { .. }));
        step
    }

    /// The frontend's `state` changed to `fe`; `read` reads its keys. A disconnect in the
    /// returned actions also stops serving the ring here.
    pub fn frontend_changed<F: FnMut(&str) -> Option<alloc::string::String>>(
        &mut self,
        id: VbdId,
        fe: XenbusState,
        read: F,
    ) -> Step {
        let v = &mut self.vbds[id.0];
        let step = v.handshake.frontend_changed(fe, read);
        if step.actions.contains(&crate::Action::Disconnect) {
            v.ring = None;
            v.state = VbdState::Disconnected;
        }
        step
    }

    /// Serves vbd `id`'s ring: takes waiting requests in batches, performs each batch
    /// together ([`Scratch::run`]), answers its requests in ring order, and re-arms
    /// `req_event` when the ring is empty. `disk` must be the vbd's disk; nothing is left in
    /// flight on it when this returns.
    pub fn poll<M: RingMem + ?Sized, D: Disk, G: Grants>(
        &mut self,
        id: VbdId,
        mem: &mut M,
        disk: &mut D,
        grants: &mut G,
    ) -> Poll {
        let mut out = Poll::default();
        let v = &mut self.vbds[id.0];
        let (VbdState::Connected, Some(ring)) = (v.state, v.ring.as_mut()) else {
            return out;
        };
        out.notify = core::mem::take(&mut v.kick);
        let scratch = &mut self.scratch;
        // Only while connected: a frontend closing ends its grants.
        let persistent = v.handshake.persistent() && v.handshake.state() == XenbusState::Connected;
        let depth = scratch.depth(disk);
        let mut budget = ring.entries();
        let mut slot: Slot = [0; RING_SLOT_BYTES];
        let halt = loop {
            scratch.clear();
            let mut halt = None;
            while scratch.entries().len() < depth {
                let waiting = match ring.final_check(mem) {
                    Ok(n) => n,
                    Err(e) => {
                        halt = Some(HaltReason::Ring(e));
                        break;
                    }
                };
                if waiting == 0 {
                    break;
                }
                if budget == 0 {
                    out.more = true;
                    break;
                }
                budget -= 1;
                ring.take_request(mem, &mut slot);
                match scratch.push(&slot, &v.limits) {
                    Ok(false) => {}
                    // It runs after everything before it: the batch ends here.
                    Ok(true) => break,
                    Err(m) => {
                        halt = Some(HaltReason::Malformed(m));
                        break;
                    }
                }
            }
            if scratch.entries().is_empty() {
                break halt;
            }
            let keep = persistent.then_some(Keep {
                table: &mut v.kept,
                total: &mut self.kept_total,
                limit: self.config.max_persistent_grants,
            });
            if let Some(m) = scratch.run(v.config.frontend, &v.limits, disk, grants, keep) {
                // Earlier in the ring than anything the gathering stopped at.
                halt = Some(HaltReason::Malformed(m));
            }
            for e in scratch.entries() {
                let status = e.answer();
                match (status, e.kind) {
                    (BlkifStatus::Okay, Ok(kind)) => {
                        count(&mut v.counters, kind, scratch.segments(e))
                    }
                    _ => v.counters.errors += 1,
                }
                let rsp = BlkifResponse {
                    id: e.id,
                    operation: e.op,
                    _pad0: 0,
                    status: status as i16,
                    _pad1: [0; 4],
                };
                out.notify |= ring.respond(mem, &rsp, &e.head);
            }
            if halt.is_some() || out.more {
                break halt;
            }
        };
        if let Some(reason) = halt {
            v.state = VbdState::Halted(reason);
            v.last_halt = Some(reason);
            out.halted = Some(reason);
            out.more = false;
            out.step = v.handshake.halt();
        }
        out
    }
}
