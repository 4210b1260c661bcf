//! Per-interrupt virtual state and the fixed-size INTID bitmap used for LR bookkeeping.
//!
//! Invariants:
//! - An [`Irq`]'s `pending`/`active` flags describe the interrupt only while it is *not*
//!   held in a list register; once [`super::VgicDomain::flush_lrs`] places it in an LR, the
//!   LR is authoritative and the flags are cleared (a later `pending` means "pended again").
//! - `owner` is meaningful for SPIs only: the vCPU whose LRs hold the SPI, or [`NO_OWNER`].
//!   Private interrupts (SGIs/PPIs) live in one vCPU's bank, so their owner is implicit.

use super::NR_IRQS;

/// Words in an [`IrqSet`]: one bit per INTID the emulated GIC implements.
const SET_WORDS: usize = NR_IRQS / 32;

/// `owner` value meaning "not in any vCPU's list registers".
pub(crate) const NO_OWNER: u8 = u8::MAX;

/// Reset value of a route register: Aff0 = 0, i.e. vCPU 0 (what a guest expects before it
/// programs `GICD_IROUTER`).
pub(crate) const ROUTE_RESET: u64 = 0;

/// The emulated state of one interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Irq {
    /// 8-bit priority as the guest wrote it (lower is more urgent); copied into the LR.
    pub priority: u8,
    /// `GICD_ICFGR` field (2 bits; only bit 1, edge, is writable). Stored for read-back
    /// only: every interrupt is modelled as edge-triggered.
    pub cfg: u8,
    /// Forwarding enabled (`ISENABLER`).
    pub enabled: bool,
    /// Pending and not yet in an LR.
    pub pending: bool,
    /// Active and not in an LR (only reachable through `ISACTIVER`).
    pub active: bool,
    /// Request a maintenance interrupt when the guest deactivates it (LR EOI bit).
    pub eoi_notify: bool,
    /// SPIs only: the vCPU whose LRs hold it, or [`NO_OWNER`].
    pub owner: u8,
}

impl Irq {
    /// Reset state. There is no group field: every interrupt of a (non-secure) guest is
    /// Group 1 (see the module doc of `vgic`).
    pub const RESET: Self = Self {
        priority: 0,
        cfg: 0,
        enabled: false,
        pending: false,
        active: false,
        eoi_notify: false,
        owner: NO_OWNER,
    };

    /// Reset state of an SGI: its `ICFGR0` field reads as edge (0b10).
    pub const RESET_SGI: Self = Self {
        cfg: 0b10,
        ..Self::RESET
    };
}

/// A set of INTIDs in `0..NR_IRQS`, as a fixed bitmap. Out-of-range INTIDs are never members
/// and inserting one is a no-op, so guest-supplied numbers cannot index out of bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqSet {
    words: [u32; SET_WORDS],
}

/// INTIDs whose deactivation the guest performed and that had EOI notification enabled; what
/// [`super::VgicDomain::sync_lrs`] returns.
pub type CompletedSet = IrqSet;

impl IrqSet {
    /// The empty set.
    pub const EMPTY: Self = Self {
        words: [0; SET_WORDS],
    };

    /// Whether `intid` is a member.
    pub fn contains(&self, intid: u32) -> bool {
        match self.words.get((intid / 32) as usize) {
            Some(w) => w & (1 << (intid % 32)) != 0,
            None => false,
        }
    }

    /// Adds `intid` (ignored if out of range).
    pub fn insert(&mut self, intid: u32) {
        if let Some(w) = self.words.get_mut((intid / 32) as usize) {
            *w |= 1 << (intid % 32);
        }
    }

    /// Removes `intid`.
    pub fn remove(&mut self, intid: u32) {
        if let Some(w) = self.words.get_mut((intid / 32) as usize) {
            *w &= !(1 << (intid % 32));
        }
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Adds every member of `other`.
    pub fn union_with(&mut self, other: &Self) {
        for (a, b) in self.words.iter_mut().zip(other.words.iter()) {
            *a |= *b;
        }
    }

    /// Members in ascending INTID order (a word's set bits at a time: the exit path walks
    /// these sets, and most words are empty).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(i, &w)| bits(w).map(move |b| i as u32 * 32 + b))
    }
}

/// The set bits of `word`, lowest first.
pub(crate) fn bits(word: u32) -> impl Iterator<Item = u32> {
    let mut rest = word;
    core::iter::from_fn(move || {
        let b = rest.trailing_zeros();
        (rest != 0).then(|| {
            rest &= rest - 1;
            b
        })
    })
}

/// What the microvisor knows about one vCPU's list registers between a flush and a sync.
///
/// Invariant: `in_lr` holds exactly the INTIDs this model placed in one of the vCPU's LRs and
/// has not yet seen leave them; `lr_pending`/`lr_active` are the states those LRs had when
/// last observed (for `ISPENDR`/`ISACTIVER` reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LrTrack {
    /// INTIDs held in an LR.
    pub in_lr: IrqSet,
    /// Of those, the ones whose LR state had the pending bit.
    pub lr_pending: IrqSet,
    /// Of those, the ones whose LR state had the active bit.
    pub lr_active: IrqSet,
    /// Guest `ICPENDR` writes to apply to the LR at the next flush.
    pub unpend_req: IrqSet,
    /// Guest `ICACTIVER` writes to apply to the LR at the next flush.
    pub deact_req: IrqSet,
    /// Completions noticed during a flush, handed out by the next sync.
    pub completed_carry: IrqSet,
    /// The last flush left deliverable interrupts out for lack of free LRs.
    pub overflow: bool,
}

impl LrTrack {
    /// Nothing in any LR.
    pub const RESET: Self = Self {
        in_lr: IrqSet::EMPTY,
        lr_pending: IrqSet::EMPTY,
        lr_active: IrqSet::EMPTY,
        unpend_req: IrqSet::EMPTY,
        deact_req: IrqSet::EMPTY,
        completed_carry: IrqSet::EMPTY,
        overflow: false,
    };

    /// Records `intid` as held in an LR with value `lr` that the caller filled (the model
    /// taking over an LR it did not place), with that LR's pending and active bits. Out of
    /// line: inlined, it changed how the fast path's loop was compiled (`bench micro`'s
    /// round trips 6 instructions slower).
    #[inline(never)]
    pub fn take_over(&mut self, intid: u32, lr: u64) {
        self.in_lr.insert(intid);
        if lr & super::lr::PENDING != 0 {
            self.lr_pending.insert(intid);
        }
        if lr & super::lr::ACTIVE != 0 {
            self.lr_active.insert(intid);
        }
    }
}

/// The Redistributor's `GICR_WAKER`: bit 1 ProcessorSleep (writable), bit 2 ChildrenAsleep
/// (mirrors it, since our "wake-up" is instantaneous).
pub(crate) const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
/// See [`WAKER_PROCESSOR_SLEEP`].
pub(crate) const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
