//! Grant tables, v1: each domain's table frames, its pinned (active) entries, and the
//! maptrack of grants it has mapped from others.
//!
//! A domain's table is a list of microvisor-owned, zeroed 4 KiB frames of
//! [`GrantEntryV1`]s that the guest maps into its physmap (`add_to_physmap`, space
//! `grant_table`) and writes to grant access. The microvisor only sets and clears
//! `GTF_reading`/`GTF_writing`, through [`GrantMemory`], by compare-and-swap on the
//! 32-bit `(flags, domid)` word, because the granter may rewrite the entry at any time.
//!
//! Invariants (checked by the randomized test):
//! - an entry is in `active` iff it is pinned (`readers + writers > 0`), and then the
//!   microvisor has set `GTF_reading` on it, plus `GTF_writing` iff `writers > 0`; the last
//!   unpin of each kind clears the flag, so flags drop exactly when the pins do;
//! - `readers`/`writers` count the live maptrack slots (read-only/writable) naming the
//!   entry, plus copies in progress and unmaps awaiting their TLB invalidation inside one
//!   call (none between calls);
//! - a pinned entry's frame is the one resolved at the first pin: later pins reuse it even
//!   if the granter rewrites `frame`, as Xen does;
//! - a `Live` maptrack slot's granter is open; closing a granter turns the slots naming it
//!   into `Revoked` tombstones, which only their owner's unmap removes.
//!
//! Statuses are Xen's `GNTST_*` codes ([`gntst`]), as `i16`, written back per operation.
#![forbid(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use protocol::addr::{GuestPhysAddr, PhysAddr};
use protocol::xen::structs::{
    gntst, gtf, DomId, GrantEntryV1, GrantHandle, GrantRef, GRANT_ENTRIES_PER_FRAME,
};
use protocol::xen::XenErrno;

use super::{domain_slot, resolve, PerDomain, SetupError};

#[path = "grant_batch.rs"]
mod batch;
#[path = "grant_copy.rs"]
mod copy;
#[path = "grant_map.rs"]
mod map;
#[path = "grant_pin.rs"]
mod pin;

pub use batch::{split, Split, Stage2Batch, GRANT_CHUNK};
pub use map::PendingUnpin;
use pin::Maptrack;

/// Most frames a table may be given at open (4 MiB of entries; Xen's default is 64).
pub const MAX_GRANT_FRAMES: u32 = 1024;

/// Access to grant-table entries and guest frames in host-physical memory.
///
/// `frame` is always a table frame this module was given by `alloc`, and `index` below
/// [`GRANT_ENTRIES_PER_FRAME`]. On the target every entry access is a single atomic
/// operation, because the granting guest writes the same words concurrently.
pub trait GrantMemory {
    /// Entry `index` of `frame`, as one 8-byte load.
    fn read_entry(&self, frame: PhysAddr, index: usize) -> GrantEntryV1;
    /// Compare-and-swap of the entry's first 32-bit word (`flags | domid << 16`): writes
    /// `new` if the word is `old`. Returns the value found (equal to `old` on success).
    fn cas_flags_domid(&mut self, frame: PhysAddr, index: usize, old: u32, new: u32) -> u32;
    /// Atomically clears `bits` in the entry's `flags`.
    fn clear_flags(&mut self, frame: PhysAddr, index: usize, bits: u16);
    /// Writes a whole entry (zeroing new frames, and the builder's reserved entries before
    /// the domain runs).
    fn write_entry(&mut self, frame: PhysAddr, index: usize, entry: GrantEntryV1);
    /// Copies `len` bytes; both ranges lie within one page each and may be the same page
    /// (overlapping ranges must behave like `memmove`).
    fn copy(&mut self, src: PhysAddr, dst: PhysAddr, len: usize);
}

/// A successful map: the glue maps `frame_pa` at `host_addr` in the mapper's stage 2
/// (read-only if `readonly`). If that fails it must undo with `unmap(handle, host_addr)`
/// and report `GNTST_general_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a mapping that is recorded but not installed leaks a pin"]
pub struct Mapped {
    /// The handle for `unmap` (the hypercall's `handle`).
    pub handle: GrantHandle,
    /// The requested address, rounded down to its page (Xen ignores the low bits).
    pub host_addr: GuestPhysAddr,
    /// The granted frame, host-physical.
    pub frame_pa: PhysAddr,
    /// Map without write permission.
    pub readonly: bool,
    /// Install the page in stage 2 (`GNTMAP_host_map`); else `host_addr` is 0.
    pub host: bool,
    /// Tell the mapper `frame_pa` as its `dev_bus_addr` (`GNTMAP_device_map`).
    pub device: bool,
}

/// A successful unmap: the glue removes the stage-2 page at `host_addr` and flushes the
/// mapper's TLB for it — unless `revoked`, or not `host` (a device-only map).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "the stage-2 page must be removed"]
pub struct Unmapped {
    /// The page the grant was mapped at.
    pub host_addr: GuestPhysAddr,
    /// The frame that was mapped.
    pub frame_pa: PhysAddr,
    /// The mapping was read-only.
    pub readonly: bool,
    /// A stage-2 page was installed for it.
    pub host: bool,
    /// The granter was closed while this was mapped ([`GrantTables::close_domain`] reported
    /// it in [`Closed::revoked`]); the stage-2 side is whatever the glue did then.
    pub revoked: bool,
}

/// A grant table's size, for `GNTTABOP_query_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSize {
    /// Frames in use.
    pub nr_frames: u32,
    /// Frames the table may grow to.
    pub max_frames: u32,
}

/// A mapping, as reported by [`GrantTables::close_domain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldMapping {
    /// The domain that mapped the grant.
    pub mapper: DomId,
    /// Its handle in the mapper's maptrack.
    pub handle: GrantHandle,
    /// The granting domain.
    pub granter: DomId,
    /// The grant reference.
    pub gref: GrantRef,
    /// Where the mapper has it.
    pub host_addr: GuestPhysAddr,
    /// The granted frame.
    pub frame_pa: PhysAddr,
    /// Read-only mapping.
    pub readonly: bool,
    /// Installed in the mapper's stage 2 (else `host_addr` means nothing).
    pub host: bool,
    /// A device map.
    pub device: bool,
}

/// What [`GrantTables::close_domain`] leaves for the glue.
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use = "the frames must be freed and the revoked mappings handled"]
pub struct Closed {
    /// The closed domain's table frames: remove them from its stage 2, then free them.
    pub frames: Vec<PhysAddr>,
    /// Mappings the closed domain held. Already released: their granters' pins dropped
    /// and `GTF_reading`/`GTF_writing` cleared where the last pin went (DESIGN §6). The
    /// glue only has to drop them from the closed domain's stage 2.
    pub released: Vec<HeldMapping>,
    /// Mappings other domains hold of the closed domain's grants. Their maptrack slots are
    /// now tombstones (a later unmap succeeds with `revoked`). Before the closed domain's
    /// RAM is scrubbed or reused, the glue must remove each from the mapper's stage 2 (or
    /// otherwise keep the frame away from reuse while it is mapped).
    pub revoked: Vec<HeldMapping>,
}

/// A pinned entry.
#[derive(Clone, Copy, Debug)]
struct Active {
    /// The domain the pins belong to; the entry's `domid` when first pinned.
    pinner: DomId,
    readers: u32,
    writers: u32,
    /// The granted frame, resolved at the first pin.
    frame_pa: PhysAddr,
}

/// One domain's grant state.
struct Table {
    id: DomId,
    frames: Vec<PhysAddr>,
    max_frames: u32,
    active: BTreeMap<GrantRef, Active>,
    maptrack: Maptrack,
}

impl Table {
    /// The frame and index of `gref`, if it is within the table.
    fn locate(&self, gref: GrantRef) -> Option<(PhysAddr, usize)> {
        let gref = usize::try_from(gref).ok()?;
        let frame = self.frames.get(gref / GRANT_ENTRIES_PER_FRAME)?;
        Some((*frame, gref % GRANT_ENTRIES_PER_FRAME))
    }
}

/// Every domain's grant table and maptrack, indexed by domain id.
pub struct GrantTables {
    domains: PerDomain<Table>,
}

impl GrantTables {
    /// Tables for domain ids `0..max_domains`, all closed.
    pub fn new(max_domains: usize) -> Self {
        Self {
            domains: PerDomain::new(max_domains),
        }
    }

    /// Opens `dom` with an empty table that may grow to `max_frames` (at most
    /// [`MAX_GRANT_FRAMES`]) and room for `max_maptrack` simultaneous mappings of others'
    /// grants (Xen's `max_maptrack_frames`, counted in handles).
    pub fn open_domain(
        &mut self,
        dom: DomId,
        max_frames: u32,
        max_maptrack: u32,
    ) -> Result<(), SetupError> {
        domain_slot(dom, usize::MAX)?;
        if max_frames == 0 || max_frames > MAX_GRANT_FRAMES {
            return Err(SetupError::BadLimit);
        }
        self.domains.open(
            dom,
            Table {
                id: dom,
                frames: Vec::new(),
                max_frames,
                active: BTreeMap::new(),
                maptrack: Maptrack::new(max_maptrack),
            },
        )
    }

    /// The host-physical address of frame `idx` of `dom`'s table, growing the table to
    /// `idx + 1` frames first if needed (for `add_to_physmap(grant_table, idx)` and for the
    /// builder). `alloc` returns 4 KiB-aligned frames; each new one is zeroed here through
    /// `mem`, so stale entries can never grant anything. Frames allocated before a failure
    /// stay in the table.
    ///
    /// Errors: `ESRCH` `dom` is not open; `EINVAL` `idx` is at or beyond the table's maximum
    /// (Xen's choice); `ENOMEM` `alloc` failed (Xen reports `EINVAL` there too).
    pub fn frame(
        &mut self,
        mem: &mut impl GrantMemory,
        dom: DomId,
        idx: u32,
        mut alloc: impl FnMut() -> Option<PhysAddr>,
    ) -> Result<PhysAddr, XenErrno> {
        let t = self.table_mut(dom).ok_or(XenErrno::ESRCH)?;
        if idx >= t.max_frames {
            return Err(XenErrno::EINVAL);
        }
        let want = idx as usize;
        while t.frames.len() <= want {
            let pa = alloc().ok_or(XenErrno::ENOMEM)?;
            for i in 0..GRANT_ENTRIES_PER_FRAME {
                mem.write_entry(pa, i, ZERO_ENTRY);
            }
            t.frames.push(pa);
        }
        t.frames.get(want).copied().ok_or(XenErrno::EINVAL)
    }

    /// `GNTTABOP_query_size` for `dom` (`DOMID_SELF` = the caller); another domain's table
    /// only for a `privileged` caller.
    ///
    /// Errors: `GNTST_bad_domain` not open; `GNTST_permission_denied` not allowed.
    pub fn query_size(
        &self,
        caller: DomId,
        dom: DomId,
        privileged: bool,
    ) -> Result<TableSize, i16> {
        let dom = resolve(caller, dom);
        let t = self.table(dom).ok_or(gntst::BAD_DOMAIN)?;
        if dom != caller && !privileged {
            return Err(gntst::PERMISSION_DENIED);
        }
        Ok(TableSize {
            nr_frames: u32::try_from(t.frames.len()).unwrap_or(u32::MAX),
            max_frames: t.max_frames,
        })
    }

    /// Builder helper: writes entry `gref` of `dom`'s table as a permit-access grant of
    /// `gfn` to `grantee` (e.g. the console and xenstore pages to dom0, as entries
    /// `GNTTAB_RESERVED_CONSOLE` = 0 and `GNTTAB_RESERVED_XENSTORE` = 1). The table must
    /// already have the frame holding `gref` (see [`GrantTables::frame`]).
    pub fn reserve(
        &mut self,
        mem: &mut impl GrantMemory,
        dom: DomId,
        gref: GrantRef,
        grantee: DomId,
        gfn: u64,
        readonly: bool,
    ) -> Result<(), SetupError> {
        let t = self.table(dom).ok_or(SetupError::NotOpen)?;
        let (frame, index) = t.locate(gref).ok_or(SetupError::BadRef)?;
        if t.active.contains_key(&gref) {
            return Err(SetupError::EntryInUse);
        }
        let gfn = u32::try_from(gfn).map_err(|_| SetupError::FrameTooLarge)?;
        let flags = gtf::PERMIT_ACCESS | if readonly { gtf::READONLY } else { 0 };
        mem.write_entry(
            frame,
            index,
            GrantEntryV1 {
                flags,
                domid: grantee,
                frame: gfn,
            },
        );
        Ok(())
    }

    /// Closes `dom` (destroy or restart):
    /// 1. every mapping `dom` holds is released, clearing the granters'
    ///    `GTF_reading`/`GTF_writing` where the last pin goes ([`Closed::released`]);
    /// 2. every mapping another domain holds of `dom`'s grants becomes a tombstone in its
    ///    maptrack and is reported ([`Closed::revoked`]);
    /// 3. `dom`'s table frames are handed back ([`Closed::frames`]).
    pub fn close_domain(
        &mut self,
        mem: &mut impl GrantMemory,
        dom: DomId,
    ) -> Result<Closed, SetupError> {
        domain_slot(dom, usize::MAX)?;
        let held = self
            .domains
            .get_mut(dom)
            .ok_or(SetupError::NotOpen)?
            .maptrack
            .drain();
        let mut closed = Closed::default();
        for (handle, m) in held {
            if let Some(g) = self.table_mut(m.granter) {
                g.unpin(mem, m.gref, m.readonly);
            }
            closed.released.push(m.report(dom, handle));
        }
        for other in self.domains.iter_mut() {
            if other.id != dom {
                other
                    .maptrack
                    .revoke_granter(dom, other.id, &mut closed.revoked);
            }
        }
        if let Ok(t) = self.domains.close(dom) {
            closed.frames = t.frames;
        }
        Ok(closed)
    }

    fn table(&self, dom: DomId) -> Option<&Table> {
        self.domains.get(dom)
    }

    fn table_mut(&mut self, dom: DomId) -> Option<&mut Table> {
        self.domains.get_mut(dom)
    }
}

const ZERO_ENTRY: GrantEntryV1 = GrantEntryV1 {
    flags: 0,
    domid: 0,
    frame: 0,
};

#[cfg(test)]
#[path = "grant_batch_tests.rs"]
mod batch_tests;
#[cfg(test)]
#[path = "grant_close_tests.rs"]
mod close_tests;
#[cfg(test)]
#[path = "grant_copy_tests.rs"]
mod copy_tests;
#[cfg(test)]
#[path = "grant_device_tests.rs"]
mod device_tests;
#[cfg(test)]
#[path = "grant_fake.rs"]
mod fake;
#[cfg(test)]
#[path = "grant_random_tests.rs"]
mod random_tests;
#[cfg(test)]
#[path = "grant_tests.rs"]
mod tests;
