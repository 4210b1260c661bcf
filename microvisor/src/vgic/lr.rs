//! List registers: the `ICH_LR<n>_EL2` format, and moving interrupts between the model and a
//! vCPU's LRs around each guest entry ([`VgicDomain::flush_lrs`]) and exit
//! ([`VgicDomain::sync_lrs`]).
//!
//! Invariants:
//! - This module only touches LRs it filled itself (valid, INTID in the vCPU's `in_lr`
//!   set, and HW = 0 unless an SPI: a hardware-linked SPI's LR is the model's, see the
//!   `vgic` module doc). Other LRs (the caller's hardware-linked timer, an unknown INTID)
//!   belong to the caller and are left alone; they still occupy their slot.
//! - An INTID is in at most one LR of one vCPU.
//! - An LR leaving (state 00) is the guest deactivating the interrupt; only then, or when a
//!   guest `ICPENDR`/`ICACTIVER` write retires it, is an EOI-notified INTID reported as
//!   completed. Evicting a pending-only LR (to make room, or because the interrupt was
//!   disabled) returns its pending state to the model and is not a completion.

use super::candidates::Candidates;
use super::state::{IrqSet, NO_OWNER};
use super::{CompletedSet, GicVersion, VgicDomain, FIRST_SPI};

/// LR state bit: pending.
pub const PENDING: u64 = 1 << 62;
/// LR state bit: active.
pub const ACTIVE: u64 = 1 << 63;
/// Both state bits (`State`, bits [63:62]).
pub const STATE_MASK: u64 = PENDING | ACTIVE;
/// `HW`: the virtual interrupt is tied to a physical one (set by this module only for a
/// hardware-linked SPI).
pub const HW: u64 = 1 << 61;
/// Shift of the `pINTID` field (HW = 1).
pub const PINTID_SHIFT: u32 = 32;
/// The `pINTID` field [44:32] (HW = 1; overlaps `EOI`, which is valid only when HW = 0).
pub const PINTID_MASK: u64 = 0x1fff << PINTID_SHIFT;
/// `Group`: Group 1 when set.
pub const GROUP1: u64 = 1 << 60;
/// `EOI` (valid when HW = 0): maintenance interrupt when the guest deactivates it.
pub const EOI: u64 = 1 << 41;
/// Shift of the 8-bit `Priority` field.
pub const PRIORITY_SHIFT: u32 = 48;
const PRIORITY_MASK: u64 = 0xFF << PRIORITY_SHIFT;
const VINTID_MASK: u64 = 0xFFFF_FFFF;

/// The `State` field of an LR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrState {
    /// 00: the LR is free.
    Invalid,
    /// 01: pending, not yet acknowledged.
    Pending,
    /// 10: acknowledged, not yet deactivated.
    Active,
    /// 11: active and pending again.
    PendingActive,
}

impl LrState {
    /// The field's bits in LR position.
    pub const fn bits(self) -> u64 {
        match self {
            Self::Invalid => 0,
            Self::Pending => PENDING,
            Self::Active => ACTIVE,
            Self::PendingActive => PENDING | ACTIVE,
        }
    }
}

/// A Group 1, pending, software (HW = 0) LR for `intid` at `priority`, with the EOI
/// maintenance bit if `eoi_notify`.
pub const fn make(intid: u32, priority: u8, eoi_notify: bool) -> u64 {
    build(intid, priority, true, eoi_notify, LrState::Pending)
}

/// A software (HW = 0) LR with every field given.
pub const fn build(intid: u32, priority: u8, group1: bool, eoi_notify: bool, st: LrState) -> u64 {
    (intid as u64)
        | ((priority as u64) << PRIORITY_SHIFT)
        | if group1 { GROUP1 } else { 0 }
        | if eoi_notify { EOI } else { 0 }
        | st.bits()
}

/// A hardware-linked Group 1 (or 0) LR: virtual `intid` at `priority` in state `st`, whose
/// deactivation by the guest deactivates physical `pintid`. Never pending+active (the
/// physical interrupt is active while the LR is, so it cannot be pending too).
pub const fn build_hw(intid: u32, pintid: u32, priority: u8, group1: bool, st: LrState) -> u64 {
    build(intid, priority, group1, false, st)
        | HW
        | (((pintid as u64) << PINTID_SHIFT) & PINTID_MASK)
}

/// The physical INTID of a hardware-linked LR.
pub const fn pintid(lr: u64) -> u32 {
    ((lr & PINTID_MASK) >> PINTID_SHIFT) as u32
}

/// `lr` without its hardware link (HW and pINTID cleared): an ordinary software LR.
pub const fn unlinked(lr: u64) -> u64 {
    lr & !(HW | PINTID_MASK)
}

/// Whether a hardware-linked LR in flight stays linked, its physical interrupt active,
/// while its vCPU is switched out (`hyp::run`'s `unload`): a passthrough SPI's does, until
/// the guest ends it once loaded again. The SPI is its domain's alone, and a level-triggered
/// device still asserting its line would fire again at once if it were deactivated there,
/// interrupting whoever runs next only to pend what the vCPU already has pending. A private
/// interrupt's (the virtual timer's PPI) does not: it is banked per CPU, and the next vCPU
/// here needs it, so it is deactivated and the LR kept as an ordinary one ([`unlinked`]).
pub const fn stays_linked_switched_out(lr: u64) -> bool {
    intid(lr) >= 32
}

/// [`unlinked`] with the EOI-maintenance bit, so the guest's finishing it is reported. The
/// bit is set after the unlink: it lies inside the pINTID field the unlink clears.
pub const fn unlinked_notified(lr: u64) -> u64 {
    unlinked(lr) | EOI
}

/// The LR's state.
pub const fn state(lr: u64) -> LrState {
    match (lr & PENDING != 0, lr & ACTIVE != 0) {
        (false, false) => LrState::Invalid,
        (true, false) => LrState::Pending,
        (false, true) => LrState::Active,
        (true, true) => LrState::PendingActive,
    }
}

/// `lr` with its state replaced by `st`.
pub const fn with_state(lr: u64, st: LrState) -> u64 {
    (lr & !STATE_MASK) | st.bits()
}

/// The virtual INTID.
pub const fn intid(lr: u64) -> u32 {
    (lr & VINTID_MASK) as u32
}

/// The priority field.
pub const fn priority(lr: u64) -> u8 {
    ((lr & PRIORITY_MASK) >> PRIORITY_SHIFT) as u8
}

/// Whether the HW bit is set.
pub const fn is_hw(lr: u64) -> bool {
    lr & HW != 0
}

/// Whether the EOI-maintenance bit is set (meaningful only when HW = 0).
pub const fn eoi_notify(lr: u64) -> bool {
    lr & EOI != 0 && !is_hw(lr)
}

/// The Group bit every LR of a domain with a GIC of `version` carries: Group 1 on a GICv3
/// (what a non-secure kernel enables with `ICC_IGRPEN1_EL1`), Group 0 on a GICv2 (whose
/// `IGROUPR` reads 0 and whose guests enable only `GICC_CTLR.EnableGrp0`). Callers that
/// build LRs themselves (hardware-linked timer, posted interrupts) use it too.
pub const fn group_bit(version: GicVersion) -> u64 {
    match version {
        GicVersion::V3 => GROUP1,
        GicVersion::V2 => 0,
    }
}

/// Whether the Group bit says Group 1.
pub const fn group1(lr: u64) -> bool {
    lr & GROUP1 != 0
}

impl VgicDomain {
    /// Before guest entry: refreshes the LRs this model owns in `lrs` (the vCPU's current
    /// `ICH_LR<n>_EL2` values) and fills free ones with the most urgent deliverable
    /// interrupts (lowest priority value, then lowest INTID). A pending-only LR is evicted
    /// for a more urgent interrupt when no LR is free. Afterwards [`Self::needs_refill`]
    /// says whether anything was left out. Returns the slots whose value it changed (bit n
    /// = `lrs[n]`), so the caller writes only those to the hardware.
    pub fn flush_lrs(&mut self, vcpu: usize, lrs: &mut [u64]) -> u32 {
        if vcpu >= self.nr_vcpus {
            return 0;
        }
        let mut changed = 0u32;
        self.stale &= !(1 << vcpu);
        // With none of ours in the LRs (a vCPU coming back after its last interrupt was
        // finished) there is nothing to retire or refresh.
        if self.lrs.get(vcpu).is_some_and(|t| !t.in_lr.is_empty()) {
            // Anything that left since the last sync is retired first, so a skipped sync
            // cannot strand an INTID as "in an LR" forever.
            let done = self.retire(vcpu, lrs);
            if let Some(t) = self.lrs.get_mut(vcpu) {
                t.completed_carry.union_with(&done);
            }
            for (i, slot) in lrs.iter_mut().enumerate() {
                if let Some(intid) = self.owned_intid(vcpu, *slot) {
                    let new = self.refresh(vcpu, intid, *slot);
                    if new != *slot {
                        *slot = new;
                        changed |= 1 << i;
                    }
                }
            }
        }

        // Only a pending or active interrupt can be a candidate, and those are live. Each
        // LR takes at most one candidate per flush (a slot refilled by eviction holds a more
        // urgent interrupt than every later candidate), so only the most urgent
        // `MAX_PLACED` are kept, sorted, plus how many there were in all.
        // The common case, at most one private interrupt live and no SPI (a timer tick, an
        // IPI): that one is the only candidate, with no list to gather or order.
        let private = self.live_private.get(vcpu).copied().unwrap_or(0);
        let single;
        let mut top;
        let (cands, total): (&[(u8, u32)], usize) =
            if private & private.wrapping_sub(1) == 0 && self.live_spis.is_empty() {
                single = self.single_candidate(vcpu, private);
                (single.as_slice(), usize::from(single.is_some()))
            } else {
                top = Candidates::new();
                self.candidates(vcpu, &mut top);
                (top.best(), top.total)
            };

        let mut next = 0;
        for (i, slot) in lrs.iter_mut().enumerate() {
            if state(*slot) == LrState::Invalid {
                if let Some(&(_, intid)) = cands.get(next) {
                    let new = self.place(vcpu, intid);
                    if new != *slot {
                        *slot = new;
                        changed |= 1 << i;
                    }
                    next += 1;
                }
            }
        }
        let mut evicted = false;
        while let Some(&(prio, intid)) = cands.get(next) {
            match self.worst_pending_lr(vcpu, lrs) {
                Some((i, worst)) if worst > (prio, intid) => {
                    if let Some(slot) = lrs.get_mut(i) {
                        self.evict(vcpu, worst.1, is_hw(*slot));
                        *slot = self.place(vcpu, intid);
                        changed |= 1 << i;
                        evicted = true;
                    }
                    next += 1;
                }
                _ => break,
            }
        }
        let overflow = next < total || evicted;
        self.snapshot(vcpu, lrs);
        if let Some(t) = self.lrs.get_mut(vcpu) {
            t.overflow = overflow;
        }
        changed
    }

    /// The live interrupts that should go into one of `vcpu`'s LRs, the most urgent first;
    /// the ones no longer pending or active in the model leave the live sets on the way.
    fn candidates(&mut self, vcpu: usize, top: &mut Candidates) {
        let private = self.live_private.get(vcpu).copied().unwrap_or(0);
        let mut still = 0u32;
        for intid in super::state::bits(private) {
            if self.consider(vcpu, intid, top) {
                still |= 1 << intid;
            }
        }
        if let Some(w) = self.live_private.get_mut(vcpu) {
            *w = still;
        }
        let spis = self.live_spis;
        for intid in spis.iter() {
            self.drop_idle_link(intid);
            if !self.consider(vcpu, intid, top) {
                self.live_spis.remove(intid);
            }
        }
    }

    /// A held physical interrupt (see `VgicDomain::hw_held`) whose virtual one is
    /// no longer pending (the guest's `ICPENDR`) is ended: nothing will deliver it now.
    fn drop_idle_link(&mut self, intid: u32) {
        let pending = self.irq(0, intid).is_some_and(|irq| irq.pending);
        if let Some(link) = self.held_link(intid).filter(|_| !pending) {
            self.hw_held.remove(intid);
            self.unlinked.insert(link);
        }
    }

    /// The physical INTID `intid` is linked to, if the model holds it active
    /// (`VgicDomain::hw_held`).
    fn held_link(&self, intid: u32) -> Option<u32> {
        self.hw_held
            .contains(intid)
            .then(|| self.hw_link(intid))
            .flatten()
    }

    /// [`Self::candidates`] when `private` (the vCPU's live private interrupts) has at most
    /// one member and no SPI is live: that interrupt as a candidate, if it is one.
    fn single_candidate(&mut self, vcpu: usize, private: u32) -> Option<(u8, u32)> {
        if private == 0 {
            return None;
        }
        let intid = private.trailing_zeros();
        let mut top = None;
        if !self.consider_with(vcpu, intid, &mut |p, i| top = Some((p, i))) {
            if let Some(w) = self.live_private.get_mut(vcpu) {
                *w = 0;
            }
        }
        top
    }

    /// Offers live `intid` to `top` if it is a candidate for `vcpu`; whether it is still
    /// live (pending or active in the model).
    fn consider(&self, vcpu: usize, intid: u32, top: &mut Candidates) -> bool {
        self.consider_with(vcpu, intid, &mut |p, i| top.offer(p, i))
    }

    /// [`Self::consider`], offering to `offer`.
    #[inline(always)]
    fn consider_with(&self, vcpu: usize, intid: u32, offer: &mut impl FnMut(u8, u32)) -> bool {
        if !self.irq(vcpu, intid).is_some_and(|i| i.pending || i.active) {
            return false;
        }
        if let Some(p) = self.candidate_priority(vcpu, intid) {
            offer(p, intid);
        }
        true
    }

    /// After guest exit: notes which interrupts left `lrs` (state 00: the guest deactivated
    /// them) and returns those that had EOI notification on, plus any completions noticed
    /// since the last sync.
    pub fn sync_lrs(&mut self, vcpu: usize, lrs: &[u64]) -> CompletedSet {
        if vcpu >= self.nr_vcpus {
            return CompletedSet::EMPTY;
        }
        let before = self.lrs.get(vcpu).map(|t| t.in_lr);
        let mut done = self.retire(vcpu, lrs);
        self.snapshot(vcpu, lrs);
        // Only an interrupt of ours leaving the LRs frees a slot for waiting ones; a state
        // change inside an LR, or an LR we do not own, needs no flush.
        if before != self.lrs.get(vcpu).map(|t| t.in_lr) {
            self.stale |= 1 << vcpu;
        }
        if let Some(t) = self.lrs.get_mut(vcpu) {
            done.union_with(&t.completed_carry);
            t.completed_carry = IrqSet::EMPTY;
        }
        done
    }

    /// The caller freed LRs of `vcpu` this model placed without a sync (the per-CPU fast
    /// path retiring a private interrupt the guest finished, one without EOI notification,
    /// or a hardware-linked SPI the guest finished, so that the guest's completion alone
    /// does not need the lock; see `super::fast_spi`): forgets every INTID
    /// of `in_lr` that no LR in `lrs` holds any more, as [`Self::sync_lrs`] would, and
    /// carries any completion to the next sync. Must run before [`Self::adopt`] takes an
    /// LR the fast path filled since, which may hold the same INTID again; `lrs` must not
    /// hold such LRs yet (the caller zeroes them).
    pub fn retire_freed(&mut self, vcpu: usize, lrs: &[u64]) {
        if vcpu >= self.nr_vcpus {
            return;
        }
        let before = self.lrs.get(vcpu).map(|t| t.in_lr);
        let done = self.retire(vcpu, lrs);
        self.snapshot(vcpu, lrs);
        if before != self.lrs.get(vcpu).map(|t| t.in_lr) {
            // Something waiting for a free LR may go in at the next flush.
            self.stale |= 1 << vcpu;
        }
        if let Some(t) = self.lrs.get_mut(vcpu) {
            t.completed_carry.union_with(&done);
        }
    }

    /// Whether `vcpu` has anything to take: an LR with the pending bit, or a deliverable
    /// interrupt not yet in an LR. Used to wake a vCPU blocked in WFI (over-approximates:
    /// the guest's priority mask is not considered).
    pub fn has_deliverable(&self, vcpu: usize, lrs: &[u64]) -> bool {
        vcpu < self.nr_vcpus
            && (lrs.iter().any(|&l| l & PENDING != 0) || self.model_deliverable(vcpu))
    }

    /// The INTID of `lr` if it is a valid LR this model placed on `vcpu`: a software one, or
    /// a hardware-linked SPI (the caller's own hardware LRs are private interrupts).
    fn owned_intid(&self, vcpu: usize, lr: u64) -> Option<u32> {
        let intid = intid(lr);
        let ours = state(lr) != LrState::Invalid
            && (!is_hw(lr) || intid >= FIRST_SPI)
            && self.lrs.get(vcpu).is_some_and(|t| t.in_lr.contains(intid));
        ours.then_some(intid)
    }

    /// Forgets INTIDs in `vcpu`'s `in_lr` that no valid LR holds any more; returns those
    /// with EOI notification.
    fn retire(&mut self, vcpu: usize, lrs: &[u64]) -> IrqSet {
        let mut live = IrqSet::EMPTY;
        for &l in lrs {
            if let Some(intid) = self.owned_intid(vcpu, l) {
                live.insert(intid);
            }
        }
        let gone = match self.lrs.get(vcpu) {
            Some(t) => t.in_lr,
            None => return IrqSet::EMPTY,
        };
        let mut done = IrqSet::EMPTY;
        for intid in gone.iter().filter(|&i| !live.contains(i)) {
            if self.release(vcpu, intid) {
                done.insert(intid);
            }
        }
        done
    }

    /// Drops `intid` from `vcpu`'s LR bookkeeping; returns its EOI-notify flag.
    fn release(&mut self, vcpu: usize, intid: u32) -> bool {
        if let Some(t) = self.lrs.get_mut(vcpu) {
            for set in [
                &mut t.in_lr,
                &mut t.lr_pending,
                &mut t.lr_active,
                &mut t.unpend_req,
                &mut t.deact_req,
            ] {
                set.remove(intid);
            }
        }
        match self.irq_mut(vcpu, intid) {
            Some(irq) => {
                if intid >= FIRST_SPI && irq.owner as usize == vcpu {
                    irq.owner = NO_OWNER;
                }
                irq.eoi_notify
            }
            None => false,
        }
    }

    /// Applies guest register writes and new pend requests to an owned LR; returns its new
    /// value (0 if the interrupt left it).
    fn refresh(&mut self, vcpu: usize, intid: u32, lr: u64) -> u64 {
        let had_active = lr & ACTIVE != 0;
        let mut lr = lr;
        let mut st = lr & STATE_MASK;
        if let Some(t) = self.lrs.get_mut(vcpu) {
            let unpend = t.unpend_req.contains(intid);
            let deact = t.deact_req.contains(intid);
            if (unpend || deact) && is_hw(lr) {
                // The guest changes by register what its deactivation would have ended:
                // the physical interrupt is ended here instead, and the LR goes on as an
                // ordinary one.
                self.unlinked.insert(pintid(lr));
                lr = unlinked(lr);
            }
            if unpend {
                st &= !PENDING;
            }
            if deact {
                st &= !ACTIVE;
            }
            t.unpend_req.remove(intid);
            t.deact_req.remove(intid);
        }
        let irq = match self.irq(vcpu, intid) {
            Some(irq) => *irq,
            None => return lr,
        };
        let forwardable = irq.enabled;
        if st == PENDING && !forwardable {
            // Disabled while waiting in the LR: take it back so the guest cannot see it
            // until re-enabled.
            self.evict(vcpu, intid, is_hw(lr));
            return 0;
        }
        if irq.pending && forwardable {
            if is_hw(lr) {
                // The physical interrupt is active, so this is the guest's own `ISPENDR`:
                // it waits in the model until the hardware LR is done (a hardware LR is
                // never pending+active).
            } else if let Some(link) = self.held_link(intid) {
                // The physical interrupt fired again after the link was dropped (a vCPU
                // switched out with it in flight). Still only pending: the same delivery,
                // now linked. Already taken: it waits for the guest to finish this one.
                if st == PENDING {
                    lr = build_hw(intid, link, priority(lr), group1(lr), LrState::Pending);
                    self.hw_held.remove(intid);
                    if let Some(m) = self.irq_mut(vcpu, intid) {
                        m.pending = false;
                    }
                }
            } else {
                st |= PENDING;
                if let Some(m) = self.irq_mut(vcpu, intid) {
                    m.pending = false;
                }
            }
        }
        if st == 0 {
            let notify = self.release(vcpu, intid);
            if notify && had_active {
                if let Some(t) = self.lrs.get_mut(vcpu) {
                    t.completed_carry.insert(intid);
                }
            }
            return 0;
        }
        if is_hw(lr) {
            // No EOI bit: its position is part of the physical INTID.
            return (lr & !STATE_MASK) | st;
        }
        (lr & !(STATE_MASK | EOI)) | st | if irq.eoi_notify { EOI } else { 0 }
    }

    /// Priority of `intid` if it should be placed in one of `vcpu`'s free LRs.
    fn candidate_priority(&self, vcpu: usize, intid: u32) -> Option<u8> {
        if self.lrs.get(vcpu)?.in_lr.contains(intid) {
            return None;
        }
        let irq = self.irq(vcpu, intid)?;
        if intid >= FIRST_SPI {
            let spi = (intid - FIRST_SPI) as usize;
            let ours = match irq.owner {
                NO_OWNER => self.spi_route_target(spi) == Some(vcpu),
                o => o as usize == vcpu,
            };
            if !ours {
                return None;
            }
        }
        (self.wants_lr(irq) || irq.active).then_some(irq.priority)
    }

    /// Moves `intid` from the model into a new LR value for `vcpu`.
    pub(super) fn place(&mut self, vcpu: usize, intid: u32) -> u64 {
        let wants = self.irq(vcpu, intid).is_some_and(|irq| self.wants_lr(irq));
        // Every interrupt of a non-secure GICv3 guest is Group 1, of a GICv2 guest Group 0
        // (see the module doc).
        let group1 = group_bit(self.version) != 0;
        let irq = match self.irq_mut(vcpu, intid) {
            Some(irq) => irq,
            None => return 0,
        };
        let st = match (wants, irq.active) {
            (true, true) => LrState::PendingActive,
            (true, false) => LrState::Pending,
            (false, true) => LrState::Active,
            (false, false) => return 0,
        };
        irq.pending = false;
        irq.active = false;
        let spi = intid >= FIRST_SPI;
        if spi {
            irq.owner = vcpu as u8;
        }
        let (priority, notify) = (irq.priority, irq.eoi_notify);
        // Private interrupts are never linked: their path stays as it was.
        let lr = match spi.then(|| self.held_link(intid)).flatten() {
            Some(link) => self.place_held(intid, link, priority, group1, st),
            None => build(intid, priority, group1, notify, st),
        };
        if let Some(t) = self.lrs.get_mut(vcpu) {
            t.in_lr.insert(intid);
        }
        if wants {
            self.note_delivery(vcpu, intid);
        }
        lr
    }

    /// The LR for SPI `intid`, which the model holds linked to active physical `link`:
    /// hardware-linked if only pending. Made active by the guest's `ISACTIVER` meanwhile, it
    /// goes in as an ordinary LR and the physical interrupt is handed to the caller to end
    /// (a hardware LR cannot be pending+active).
    #[cold]
    #[inline(never)]
    fn place_held(
        &mut self,
        intid: u32,
        link: u32,
        priority: u8,
        group1: bool,
        st: LrState,
    ) -> u64 {
        self.hw_held.remove(intid);
        if st == LrState::Pending {
            return build_hw(intid, link, priority, group1, st);
        }
        self.unlinked.insert(link);
        build(intid, priority, group1, false, st)
    }

    /// Takes a pending-only `intid` out of `vcpu`'s LRs, keeping it pending in the model
    /// (and, if its LR was hardware-linked, `hw` = true, its physical interrupt held).
    fn evict(&mut self, vcpu: usize, intid: u32, hw: bool) {
        self.release(vcpu, intid);
        if let Some(irq) = self.irq_mut(vcpu, intid) {
            irq.pending = true;
        }
        if hw {
            self.hw_held.insert(intid);
        }
        self.mark_live(vcpu, intid);
    }

    /// The owned pending-only LR with the least urgent (priority, INTID), as (index, key).
    fn worst_pending_lr(&self, vcpu: usize, lrs: &[u64]) -> Option<(usize, (u8, u32))> {
        lrs.iter()
            .enumerate()
            .filter(|&(_, &l)| state(l) == LrState::Pending && self.owned_intid(vcpu, l).is_some())
            .map(|(i, &l)| (i, (priority(l), intid(l))))
            .max_by_key(|&(_, key)| key)
    }

    /// Records the pending/active bits of `vcpu`'s owned LRs for register reads.
    fn snapshot(&mut self, vcpu: usize, lrs: &[u64]) {
        let (mut pend, mut act) = (IrqSet::EMPTY, IrqSet::EMPTY);
        for &l in lrs {
            if let Some(intid) = self.owned_intid(vcpu, l) {
                if l & PENDING != 0 {
                    pend.insert(intid);
                }
                if l & ACTIVE != 0 {
                    act.insert(intid);
                }
            }
        }
        if let Some(t) = self.lrs.get_mut(vcpu) {
            t.lr_pending = pend;
            t.lr_active = act;
        }
    }
}
