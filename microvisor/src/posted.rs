//! Posted interrupts: how a private virtual interrupt (an SGI, or the event-channel PPI)
//! reaches a pinned-exclusive vCPU running on another physical CPU without that CPU taking
//! the global lock. (A fast event-channel send also posts to a vCPU on a shared pCPU: that
//! CPU's fast path leaves the mailbox alone and its next locked pass takes the word of
//! every vCPU placed there into the vGIC model.)
//!
//! The sender ORs the INTID's bit into the target vCPU's [`PostedIrqs`] word, then posts
//! [`crate::mailbox::POSTED`] to the target's CPU (kicking it with the SGI on the mailbox's
//! empty-to-non-empty edge). The target CPU's fast path, finding only `POSTED` in its
//! mailbox, clears that bit, takes the word, and places each interrupt straight into a free
//! list register ([`place_posted`]) using the vCPU's private-interrupt configuration as it
//! cached it under the lock ([`PrivateCfg`]). Whatever it cannot place (disabled, already
//! in an LR, no free LR, a stale cache) it puts back and takes the slow path, which empties
//! the word into the vGIC model (`Hyp::take_local` and `schedule` always do). The LRs the
//! fast path filled are handed to the model (`VgicDomain::adopt`) at the next locked pass,
//! so from then on they are the model's like any other.
//!
//! Why nothing is stranded: the sender writes the word before posting, the target clears
//! the mailbox bit before taking the word, and every locked pass takes the loaded vCPU's
//! word after the mailbox; `posted/tests.rs` checks it over every interleaving.
#![forbid(unsafe_code)]

use crate::vgic::lr;
use core::sync::atomic::{AtomicU32, Ordering};

/// The private INTIDs (SGIs 0-15, PPIs 16-31) posted to one vCPU and not yet taken.
#[derive(Debug, Default)]
pub struct PostedIrqs {
    bits: AtomicU32,
}

impl PostedIrqs {
    /// Nothing posted.
    pub const fn new() -> Self {
        Self {
            bits: AtomicU32::new(0),
        }
    }

    /// Adds `bits` (bit n = INTID n). Release: the target that takes them (Acquire) sees
    /// what the sender wrote before (e.g. event bits in the target's shared page).
    pub fn post(&self, bits: u32) {
        self.bits.fetch_or(bits, Ordering::AcqRel);
    }

    /// Whether anything is posted, without taking it.
    pub fn is_empty(&self) -> bool {
        self.bits.load(Ordering::Acquire) == 0
    }

    /// Empties the word and returns what was in it.
    pub fn take(&self) -> u32 {
        self.bits.swap(0, Ordering::AcqRel)
    }
}

/// A vCPU's private-interrupt configuration as the fast path caches it under the lock.
/// Aligned to 8 so that writing one whole (every switch of a shared CPU resets it) is a few
/// doubleword stores rather than a `memcpy` call (the target requires aligned accesses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(align(8))]
pub struct PrivateCfg {
    /// Bit n: INTID n is enabled.
    pub enabled: u32,
    /// Bit n: INTID n asks for EOI notification (its LR carries the EOI bit).
    pub eoi: u32,
    /// Priority of each INTID.
    pub priority: [u8; 32],
}

/// Places the posted INTIDs `bits` into free LRs of `lrs` (the vCPU's LRs, equal to the
/// hardware's), lowest INTID first. An INTID is placed only if it is enabled, no valid LR
/// already holds it (the model coalesces those) and an LR is free. Returns the slots filled
/// (bit n = LR n) and the INTIDs left for the slow path. `group` is the domain's Group bit
/// ([`lr::group_bit`]).
pub fn place_posted(bits: u32, lrs: &mut [u64], cfg: &PrivateCfg, group: u64) -> (u16, u32) {
    let mut placed = 0u16;
    let mut left = 0u32;
    let mut rest = bits;
    while rest != 0 {
        let intid = rest.trailing_zeros();
        rest &= rest - 1;
        let bit = 1u32 << intid;
        let in_lr = lrs
            .iter()
            .any(|&l| l & lr::STATE_MASK != 0 && lr::intid(l) == intid);
        let free = lrs.iter().position(|&l| l & lr::STATE_MASK == 0);
        match free {
            Some(slot) if cfg.enabled & bit != 0 && !in_lr && slot < 16 => {
                let priority = cfg.priority[intid as usize];
                lrs[slot] = (lr::make(intid, priority, cfg.eoi & bit != 0) & !lr::GROUP1) | group;
                placed |= 1 << slot;
            }
            _ => left |= bit,
        }
    }
    (placed, left)
}

#[cfg(test)]
mod tests;
