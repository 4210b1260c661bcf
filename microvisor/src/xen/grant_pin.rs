//! Pinning grant entries (setting `GTF_reading`/`GTF_writing` by bounded compare-and-swap,
//! Xen's `_set_status_v1`) and the per-mapper maptrack of handles.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

use protocol::addr::{GuestPhysAddr, PhysAddr};
use protocol::xen::structs::{gntst, gtf, DomId, GrantHandle, GrantRef};

use super::{Active, GrantMemory, HeldMapping, Table};

/// Compare-and-swap attempts before an entry the granter keeps changing is refused. The
/// guest can rewrite its entry faster than we can retry, so an unbounded loop would be a
/// livelock it controls; a few retries allow the legitimate races (Xen allows five).
const CAS_ATTEMPTS: usize = 5;

/// What a pin is for.
#[derive(Clone, Copy, Debug)]
pub(super) struct PinReq {
    pub(super) gref: GrantRef,
    /// The domain the entry must be granted to.
    pub(super) pinner: DomId,
    /// Read-only access (a read-only map, or a copy source).
    pub(super) readonly: bool,
    /// A mapping rather than a copy: the v1 entry must also not claim `GTF_sub_page`.
    pub(super) map: bool,
}

impl Table {
    /// Pins `req.gref` and returns its frame: on the first pin the entry must be a
    /// permit-access grant to `req.pinner`, and its frame must be RAM of this domain
    /// (`gfn_to_pa`); a writable pin needs an entry not granted read-only.
    pub(super) fn pin(
        &mut self,
        mem: &mut impl GrantMemory,
        req: PinReq,
        gfn_to_pa: &impl Fn(DomId, u64) -> Option<PhysAddr>,
    ) -> Result<PhysAddr, i16> {
        let (frame, index) = self.locate(req.gref).ok_or(gntst::BAD_GNTREF)?;
        let active = self.active.get(&req.gref).copied();
        if active.is_some_and(|a| a.pinner != req.pinner) {
            return Err(gntst::GENERAL_ERROR);
        }
        // Flags change only on the first pin and on the first writable one.
        let set_flags = active.is_none_or(|a| !req.readonly && a.writers == 0);
        if set_flags {
            set_status(mem, frame, index, &req)?;
        }
        let mut a = match active {
            Some(a) => a,
            None => {
                // Read after the flags are set: from then on the granter may not change it.
                let gfn = mem.read_entry(frame, index).frame;
                let Some(frame_pa) = gfn_to_pa(self.id, u64::from(gfn)) else {
                    mem.clear_flags(frame, index, set_bits(req.readonly));
                    return Err(gntst::BAD_PAGE);
                };
                Active {
                    pinner: req.pinner,
                    readers: 0,
                    writers: 0,
                    frame_pa,
                }
            }
        };
        let count = if req.readonly {
            &mut a.readers
        } else {
            &mut a.writers
        };
        // Unreachable while the maptrack is bounded, but a wrap would free a pinned frame.
        *count = count.checked_add(1).ok_or(gntst::GENERAL_ERROR)?;
        self.active.insert(req.gref, a);
        Ok(a.frame_pa)
    }

    /// Pins `req.gref` for one copy, which the caller releases with [`Table::unpin_copy`]
    /// before it gives up the lock. An entry nobody holds yet is pinned by its flags alone:
    /// the same checks and flags as [`Table::pin`], but no active-table record to create and
    /// drop for every 4 KiB copied. An entry already held (mapped) is pinned as usual.
    /// Returns the frame and whether the pin is recorded.
    pub(super) fn pin_copy(
        &mut self,
        mem: &mut impl GrantMemory,
        req: PinReq,
        gfn_to_pa: &impl Fn(DomId, u64) -> Option<PhysAddr>,
    ) -> Result<(PhysAddr, bool), i16> {
        if self.active.contains_key(&req.gref) {
            return self.pin(mem, req, gfn_to_pa).map(|pa| (pa, true));
        }
        let (frame, index) = self.locate(req.gref).ok_or(gntst::BAD_GNTREF)?;
        set_status(mem, frame, index, &req)?;
        // Read after the flags are set: from then on the granter may not change it.
        let gfn = mem.read_entry(frame, index).frame;
        match gfn_to_pa(self.id, u64::from(gfn)) {
            Some(pa) => Ok((pa, false)),
            None => {
                mem.clear_flags(frame, index, set_bits(req.readonly));
                Err(gntst::BAD_PAGE)
            }
        }
    }

    /// Releases a [`Table::pin_copy`]: a recorded pin as [`Table::unpin`] does; an unrecorded
    /// one by clearing the flags it set, unless a pin recorded since (the other side of the
    /// same copy naming the same entry) still needs them.
    pub(super) fn unpin_copy(
        &mut self,
        mem: &mut impl GrantMemory,
        gref: GrantRef,
        readonly: bool,
        recorded: bool,
    ) {
        if recorded {
            return self.unpin(mem, gref, readonly);
        }
        let Some((frame, index)) = self.locate(gref) else {
            return;
        };
        let mut clear = set_bits(readonly);
        if let Some(a) = self.active.get(&gref) {
            if a.writers != 0 {
                clear &= !gtf::WRITING;
            }
            clear &= !gtf::READING;
        }
        if clear != 0 {
            mem.clear_flags(frame, index, clear);
        }
    }

    /// Drops one pin of `gref`, clearing `GTF_writing` with the last writable pin and
    /// `GTF_reading` with the last pin (Xen's `reduce_status_for_pin`).
    pub(super) fn unpin(&mut self, mem: &mut impl GrantMemory, gref: GrantRef, readonly: bool) {
        let Some((frame, index)) = self.locate(gref) else {
            return;
        };
        let Some(a) = self.active.get_mut(&gref) else {
            return;
        };
        let count = if readonly {
            &mut a.readers
        } else {
            &mut a.writers
        };
        *count = count.saturating_sub(1);
        let mut clear = 0;
        if !readonly && a.writers == 0 {
            clear |= gtf::WRITING;
        }
        if a.readers == 0 && a.writers == 0 {
            clear |= gtf::READING;
            self.active.remove(&gref);
        }
        if clear != 0 {
            mem.clear_flags(frame, index, clear);
        }
    }
}

/// The flags a pin of this kind sets.
fn set_bits(readonly: bool) -> u16 {
    if readonly {
        gtf::READING
    } else {
        gtf::READING | gtf::WRITING
    }
}

/// Sets the pin's flags on the entry by compare-and-swap of its `(flags, domid)` word,
/// re-validating whatever value the granter left each time a swap fails. The type and
/// grantee are checked on every flag change, an upgrade of an existing pin included (F12,
/// as Xen's `_set_status_v1`): the granter may have rewritten the entry since the first pin.
fn set_status(
    mem: &mut impl GrantMemory,
    frame: PhysAddr,
    index: usize,
    req: &PinReq,
) -> Result<(), i16> {
    let entry = mem.read_entry(frame, index);
    let mut cur = u32::from(entry.flags) | (u32::from(entry.domid) << 16);
    let type_mask = if req.map {
        gtf::TYPE_MASK | gtf::SUB_PAGE
    } else {
        gtf::TYPE_MASK
    };
    for _ in 0..CAS_ATTEMPTS {
        let flags = cur as u16;
        let domid = (cur >> 16) as u16;
        if flags & type_mask != gtf::PERMIT_ACCESS || domid != req.pinner {
            return Err(gntst::GENERAL_ERROR);
        }
        if !req.readonly && flags & gtf::READONLY != 0 {
            return Err(gntst::GENERAL_ERROR);
        }
        let new = (cur & 0xFFFF_0000) | u32::from(flags | set_bits(req.readonly));
        let found = mem.cas_flags_domid(frame, index, cur, new);
        if found == cur {
            return Ok(());
        }
        cur = found;
    }
    Err(gntst::GENERAL_ERROR)
}

/// A live mapping in a mapper's maptrack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Mapping {
    pub(super) granter: DomId,
    pub(super) gref: GrantRef,
    pub(super) host_addr: GuestPhysAddr,
    pub(super) frame_pa: PhysAddr,
    pub(super) readonly: bool,
    /// Installed in the mapper's stage 2 at `host_addr` (`GNTMAP_host_map`).
    pub(super) host: bool,
    /// The mapper was given the frame's device address (`GNTMAP_device_map`).
    pub(super) device: bool,
}

impl Mapping {
    pub(super) fn report(&self, mapper: DomId, handle: GrantHandle) -> HeldMapping {
        HeldMapping {
            mapper,
            handle,
            granter: self.granter,
            gref: self.gref,
            host_addr: self.host_addr,
            frame_pa: self.frame_pa,
            readonly: self.readonly,
            host: self.host,
            device: self.device,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slot {
    Free,
    Live(Mapping),
    /// The granter was closed while mapped; kept until the mapper unmaps it.
    Revoked(Mapping),
}

/// One domain's mapping handles: slots grow on demand up to `limit`; freed handles are
/// reused last-in first-out, as Xen's free list does.
pub(super) struct Maptrack {
    pub(super) slots: Vec<Slot>,
    free: Vec<GrantHandle>,
    limit: u32,
}

impl Maptrack {
    pub(super) fn new(limit: u32) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            limit,
        }
    }

    /// Reserves a handle (its slot stays `Free` until [`Maptrack::fill`]).
    pub(super) fn take(&mut self) -> Option<GrantHandle> {
        if let Some(h) = self.free.pop() {
            return Some(h);
        }
        let next = u32::try_from(self.slots.len()).ok()?;
        if next >= self.limit {
            return None;
        }
        self.slots.push(Slot::Free);
        Some(next)
    }

    pub(super) fn fill(&mut self, handle: GrantHandle, m: Mapping) {
        if let Some(s) = self.slots.get_mut(handle as usize) {
            *s = Slot::Live(m);
        }
    }

    /// Frees a handle taken with [`Maptrack::take`] or holding a mapping.
    pub(super) fn put(&mut self, handle: GrantHandle) {
        if let Some(s) = self.slots.get_mut(handle as usize) {
            *s = Slot::Free;
            self.free.push(handle);
        }
    }

    pub(super) fn get(&self, handle: GrantHandle) -> Slot {
        self.slots
            .get(handle as usize)
            .copied()
            .unwrap_or(Slot::Free)
    }

    /// Empties the maptrack, returning its live mappings (tombstones just go).
    pub(super) fn drain(&mut self) -> Vec<(GrantHandle, Mapping)> {
        self.free.clear();
        let slots = core::mem::take(&mut self.slots);
        (0u32..)
            .zip(slots)
            .filter_map(|(h, s)| match s {
                Slot::Live(m) => Some((h, m)),
                Slot::Free | Slot::Revoked(_) => None,
            })
            .collect()
    }

    /// Whether a live device map of `granter`'s grants is in here.
    pub(super) fn holds_device_map_of(&self, granter: DomId) -> bool {
        self.slots
            .iter()
            .any(|s| matches!(s, Slot::Live(m) if m.device && m.granter == granter))
    }

    /// Turns every live mapping of `granter`'s grants into a tombstone, reporting each.
    pub(super) fn revoke_granter(
        &mut self,
        granter: DomId,
        mapper: DomId,
        out: &mut Vec<HeldMapping>,
    ) {
        for (h, s) in (0u32..).zip(self.slots.iter_mut()) {
            if let Slot::Live(m) = *s {
                if m.granter == granter {
                    *s = Slot::Revoked(m);
                    out.push(m.report(mapper, h));
                }
            }
        }
    }
}
