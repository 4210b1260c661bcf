//! Injecting a private interrupt straight into a list register of a vCPU that is not
//! loaded (the shared-pCPU timer: the EL2 timer found its deadline passed while another
//! vCPU ran), when that gives exactly what [`VgicDomain::inject`] followed by
//! [`VgicDomain::flush_lrs`] would: the model state and the LRs come out the same, so the
//! flush before the vCPU's entry has nothing left to do and is skipped.

use super::lr::{state, LrState, PENDING};
use super::state::IrqSet;
use super::{VgicDomain, FIRST_SPI};

impl VgicDomain {
    /// Makes private interrupt `intid` of `vcpu` pending in the first free slot of `lrs`
    /// (the vCPU's saved list registers) and returns that slot, if nothing else would
    /// differ from an [`Self::inject`] and a [`Self::flush_lrs`]: `vcpu` has no flush
    /// owed (nothing changed since its last one, nothing left out of its LRs), none of its
    /// LRs holds an interrupt of the model, and `intid` is enabled and neither pending nor
    /// active in the model. Then the flush would have had this one candidate and put it in
    /// that slot. `None` (nothing changed) otherwise: the caller injects as usual.
    pub fn deliver_direct(&mut self, vcpu: usize, intid: u32, lrs: &mut [u64]) -> Option<usize> {
        if intid >= FIRST_SPI || self.needs_flush(vcpu) {
            return None;
        }
        if !self.lrs.get(vcpu)?.in_lr.is_empty() {
            return None;
        }
        let irq = self.irq(vcpu, intid)?;
        if !irq.enabled || irq.pending || irq.active {
            return None;
        }
        let slot = lrs.iter().position(|&l| state(l) == LrState::Invalid)?;
        // As `inject` leaves it for the flush...
        self.irq_mut(vcpu, intid)?.pending = true;
        self.mark_live(vcpu, intid);
        // ...and as the flush places it and snapshots the LR (pending, so `lr_pending`).
        let value = self.place(vcpu, intid);
        let t = self.lrs.get_mut(vcpu)?;
        t.lr_pending = IrqSet::EMPTY;
        t.lr_pending.insert(intid);
        t.lr_active = IrqSet::EMPTY;
        t.overflow = false;
        *lrs.get_mut(slot)? = value;
        debug_assert!(value & PENDING != 0);
        Some(slot)
    }
}
