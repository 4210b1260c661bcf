//! The Xen-compatible data plane the microvisor keeps: 2-level event channels and v1 grant
//! tables (DESIGN §3.2), as host-testable state machines.
//!
//! The hypercall glue (argument copying, stage-2 mapping, PPI 31 injection) lives in
//! `hyp/xen/` and drives two objects, both meant to sit behind one lock each:
//!
//! - [`EventChannels`]: every domain's port table. Only the pending/mask bits and the
//!   per-vCPU selector/upcall flags live in guest memory; they are reached through the
//!   [`EventBits`] trait by [`raise`] and [`unmask`].
//! - [`GrantTables`]: every domain's grant-table frames (microvisor-owned 4 KiB pages the
//!   guest maps into its physmap), the active (pinned) entries, and each mapper's maptrack.
//!   Entries are read and updated through the [`GrantMemory`] trait, since the granting
//!   guest writes them concurrently.
//!
//! Semantics follow Xen's `common/event_channel.c`, `event_2l.c` and `grant_table.c`
//! (read as a specification); every deliberate difference is stated on the item concerned.
//!
//! Lock order: `EventChannels` and `GrantTables` are independent and never held together
//! by these modules. Guest memory behind the traits is never locked: the traits perform
//! single atomic operations, which is what the guest-visible protocols are designed for.
#![forbid(unsafe_code)]

mod evtchn;
mod frame_cache;
mod grant;
pub mod physmap;
mod runstate;

pub use evtchn::{
    raise, unmask, Bound, EventBits, EventChannels, Notify, PortRef, PortState, Raised, Status,
};
pub use frame_cache::FrameCache;
pub use grant::{
    split, Closed, GrantMemory, GrantTables, HeldMapping, Mapped, PendingUnpin, Split, Stage2Batch,
    TableSize, Unmapped, GRANT_CHUNK, MAX_GRANT_FRAMES,
};
pub use runstate::RunstateAcct;

use alloc::vec::Vec;
use protocol::xen::structs::{DomId, DOMID_SELF};

/// Why setting up or tearing down a domain's Xen state failed. These come from the
/// microvisor's own domain lifecycle, never from a guest's hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupError {
    /// the domain id is beyond the table given to `new`, or one of Xen's reserved ids
    DomainOutOfRange,
    /// the domain is already open
    AlreadyOpen,
    /// the domain is not open
    NotOpen,
    /// a limit given at open is zero or beyond what the ABI can address
    BadLimit,
    /// the grant reference is beyond the domain's current grant table
    BadRef,
    /// the frame number does not fit a v1 grant entry (32 bits)
    FrameTooLarge,
    /// the grant entry is mapped or being copied, so it cannot be rewritten
    EntryInUse,
}

/// One `T` per open domain, indexed by domain id: the shape both cores keep.
pub(crate) struct PerDomain<T> {
    slots: Vec<Option<T>>,
}

impl<T> PerDomain<T> {
    /// Slots for domain ids `0..max_domains`, all closed.
    pub(crate) fn new(max_domains: usize) -> Self {
        let mut slots = Vec::new();
        slots.resize_with(max_domains, || None);
        Self { slots }
    }

    /// Opens `dom` with `value`.
    pub(crate) fn open(&mut self, dom: DomId, value: T) -> Result<(), SetupError> {
        let idx = domain_slot(dom, self.slots.len())?;
        let slot = &mut self.slots[idx];
        if slot.is_some() {
            return Err(SetupError::AlreadyOpen);
        }
        *slot = Some(value);
        Ok(())
    }

    /// Closes `dom`, returning what it held.
    pub(crate) fn close(&mut self, dom: DomId) -> Result<T, SetupError> {
        let idx = domain_slot(dom, self.slots.len())?;
        self.slots[idx].take().ok_or(SetupError::NotOpen)
    }

    /// The open domain `dom` (special ids such as `DOMID_SELF` never match).
    pub(crate) fn get(&self, dom: DomId) -> Option<&T> {
        if dom >= DOMID_SELF {
            return None;
        }
        self.slots.get(usize::from(dom))?.as_ref()
    }

    /// The open domain `dom`, mutably.
    pub(crate) fn get_mut(&mut self, dom: DomId) -> Option<&mut T> {
        if dom >= DOMID_SELF {
            return None;
        }
        self.slots.get_mut(usize::from(dom))?.as_mut()
    }

    /// Every open domain.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    /// Every open domain, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().flatten()
    }
}

/// The table index of `dom`, if it can name a real domain in a table of `max` slots.
///
/// Ids from `DOMID_SELF` (Xen's `DOMID_FIRST_RESERVED`) up are special values a guest may
/// pass; refusing to open them means a special id can never alias a real domain.
fn domain_slot(dom: DomId, max: usize) -> Result<usize, SetupError> {
    let idx = usize::from(dom);
    if dom >= DOMID_SELF || idx >= max {
        return Err(SetupError::DomainOutOfRange);
    }
    Ok(idx)
}

/// `dom` with `DOMID_SELF` replaced by the caller.
fn resolve(caller: DomId, dom: DomId) -> DomId {
    if dom == DOMID_SELF {
        caller
    } else {
        dom
    }
}
