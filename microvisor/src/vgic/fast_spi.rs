//! Passthrough SPIs the per-CPU fast path delivers without the lock (`hyp::fastpath`).
//!
//! At the end of each locked pass the CPU asks the model which of the loaded vCPU's linked
//! SPIs are idle ([`VgicDomain::fast_spis`]): enabled, routed to that vCPU, and neither
//! pending, active, held nor in any vCPU's LRs. For one of those, an [`VgicDomain::inject_hw`]
//! and a flush would place exactly a pending hardware-linked LR in a free slot, so when its
//! physical interrupt fires on this CPU the fast path writes that LR itself
//! (`crate::fastpath::spi_lr`) and the model takes it over at the CPU's next locked pass
//! ([`VgicDomain::adopt_hw`]). Nothing else can change an idle SPI meanwhile: its physical
//! interrupt fires only here (routed to the holder's vCPU 0, which this is) and stays
//! active until the guest deactivates it, and every guest write to the vGIC makes the CPU's
//! view stale (`hyp::percpu::VGIC_EPOCH`).
//!
//! An SPI the model itself put into one of the loaded vCPU's LRs, hardware-linked, is offered
//! too, as already placed in that LR ([`FastSpi::placed`]): the fast path finishing that LR
//! (the guest's deactivation, which ends the physical interrupt) makes it idle, exactly as
//! for an LR the fast path filled, and the next locked pass retires that LR from the model
//! (`VgicDomain::retire_freed`) before any take-over (`crate::fastpath::spi_lrs_freed`
//! returns the slot, which joins the CPU's `retired` LRs). Without this, an SPI the model
//! delivered once stayed off the fast path until some other exit took the lock between its
//! deactivation and its next firing, and a driver domain whose only locked exits were its
//! device's interrupts (blkdom waiting for its disk) took the lock for every one of them.

use super::lr::{self, LrState};
use super::state::NO_OWNER;
use super::{VgicDomain, FIRST_SPI};

/// How many linked SPIs of one vCPU the fast path is offered: a driver domain holds a device
/// or two; further ones take the locked path.
pub const FAST_SPIS: usize = 4;

/// An idle hardware-linked SPI the fast path may put into an LR of the loaded vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastSpi {
    /// The guest's INTID.
    pub intid: u32,
    /// The physical INTID it is linked to.
    pub pintid: u32,
    /// The priority the guest gave it.
    pub priority: u8,
    /// The LR it is in (the fast path put it there and the model has not taken it over, or
    /// [`Self::by_model`]): it is not idle then.
    pub placed: Option<u8>,
    /// The model placed it in that LR: when the guest finishes it the model must be told
    /// (it retires the LR) before it takes over another LR holding the SPI.
    pub by_model: bool,
}

impl VgicDomain {
    /// Fills `out` with `vcpu`'s linked SPIs the fast path may deliver itself (see the
    /// module doc), lowest INTID first, and returns how many; `lrs` are the vCPU's LRs as
    /// the model last saw them (its saved copy). Costs one check in a domain without a
    /// linked SPI.
    #[inline]
    pub fn fast_spis(&self, vcpu: usize, lrs: &[u64], out: &mut [FastSpi]) -> usize {
        if self.linked.is_empty() || vcpu >= self.nr_vcpus {
            return 0;
        }
        self.collect_fast_spis(vcpu, lrs, out)
    }

    /// [`Self::fast_spis`] for a domain with linked SPIs. Out of line: every locked pass
    /// asks, and the passes of domains without a device stay as short as they were.
    #[inline(never)]
    fn collect_fast_spis(&self, vcpu: usize, lrs: &[u64], out: &mut [FastSpi]) -> usize {
        let mut n = 0;
        for intid in self.linked.iter() {
            let Some(slot) = out.get_mut(n) else { break };
            if let Some(spi) = self.offered_spi(vcpu, intid, lrs) {
                *slot = spi;
                n += 1;
            }
        }
        n
    }

    /// Linked SPI `intid` as a [`FastSpi`] if the fast path may deliver it to `vcpu`: it is
    /// enabled, routed to `vcpu`, neither pending nor active in the model, its physical
    /// interrupt neither held nor unlinked, and no other vCPU's LRs hold it; and either it is
    /// idle (no owner, in no LR) or the model put it hardware-linked into one of `vcpu`'s
    /// LRs `lrs`, with no register write waiting to be applied to it (placed there, see the
    /// module doc).
    fn offered_spi(&self, vcpu: usize, intid: u32, lrs: &[u64]) -> Option<FastSpi> {
        let pintid = self.hw_link(intid)?;
        let irq = self.irq(vcpu, intid)?;
        let spi = intid.checked_sub(FIRST_SPI)? as usize;
        let own = self.lrs.get(vcpu)?;
        let elsewhere = self
            .lrs
            .iter()
            .take(self.nr_vcpus)
            .enumerate()
            .any(|(v, t)| v != vcpu && t.in_lr.contains(intid));
        let quiet = irq.enabled
            && !irq.pending
            && !irq.active
            && !elsewhere
            && !self.hw_held.contains(intid)
            && !self.unlinked.contains(pintid)
            && self.spi_route_target(spi) == Some(vcpu);
        if !quiet {
            return None;
        }
        let offer = |placed: Option<u8>| FastSpi {
            intid,
            pintid,
            priority: irq.priority,
            placed,
            by_model: placed.is_some(),
        };
        if !own.in_lr.contains(intid) {
            return (irq.owner == NO_OWNER).then(|| offer(None));
        }
        let settled = usize::from(irq.owner) == vcpu
            && !own.unpend_req.contains(intid)
            && !own.deact_req.contains(intid);
        if !settled {
            return None;
        }
        let slot = lrs.iter().position(|&l| {
            lr::state(l) != LrState::Invalid
                && lr::intid(l) == intid
                && lr::is_hw(l)
                && lr::pintid(l) == pintid
        })?;
        Some(offer(Some(u8::try_from(slot).ok()?)))
    }

    /// Takes over hardware-linked LR `lr` of `vcpu`, which the fast path filled with an SPI
    /// [`Self::fast_spis`] offered: from now on it is the model's, as if its flush had
    /// placed it. False, changing nothing, if `lr` is not a valid hardware-linked LR of a
    /// linked SPI, or the SPI is no longer idle (never expected: see the module doc); the
    /// caller then empties the LR and hands the interrupt back ([`Self::inject_hw`]), so
    /// it is never in two LRs and its physical interrupt is still ended exactly once.
    pub fn adopt_hw(&mut self, vcpu: usize, lr: u64) -> bool {
        let intid = lr::intid(lr);
        let st = lr::state(lr);
        let linked = lr::is_hw(lr) && self.hw_link(intid) == Some(lr::pintid(lr));
        if vcpu >= self.nr_vcpus || st == LrState::Invalid || !linked {
            return false;
        }
        let in_any_lr = self
            .lrs
            .iter()
            .take(self.nr_vcpus)
            .any(|t| t.in_lr.contains(intid));
        let taken = self
            .irq(vcpu, intid)
            .is_none_or(|irq| irq.owner != NO_OWNER || irq.active);
        if taken || in_any_lr {
            return false;
        }
        let Some(t) = self.lrs.get_mut(vcpu) else {
            return false;
        };
        t.take_over(intid, lr);
        if let Some(irq) = self.irq_mut(vcpu, intid) {
            irq.owner = vcpu as u8;
        }
        self.note_delivery(vcpu, intid);
        true
    }
}
