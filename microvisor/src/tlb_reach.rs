//! Which CPUs may hold a domain's stage-2 translations in their TLBs, so that an edit of its
//! stage 2 invalidates on this CPU alone when no other CPU can have cached them (DESIGN §5:
//! no broadcast TLB invalidation where a VMID-scoped local one is enough).
//!
//! A CPU caches a guest's translations only while that guest's `VTTBR_EL2` is loaded in
//! it: when one of its vCPUs is loaded there (`Hyp::load`), or for the instant a CPU
//! invalidates on behalf of a domain it is not running (`arch::tlb_flush_guest`'s swap).
//! The first is recorded with the CPU's index, the second only as "somewhere else". The
//! set only grows while the domain lives: switching a vCPU out leaves its entries cached
//! (VMID-tagged), and freeing a domain invalidates every guest's entries before its VMID
//! is reused, so a new domain starts with none.
//!
//! A local invalidation is enough exactly when the set is one CPU and this CPU has the
//! domain's `VTTBR_EL2` loaded: no CPU loads it without joining the set, so that one CPU
//! is this one.
#![forbid(unsafe_code)]

/// The CPUs that may cache a domain's translations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlbReach {
    /// None yet (the domain never ran).
    #[default]
    Nowhere,
    /// Only this CPU.
    One(usize),
    /// More than one, or one not recorded by index.
    Many,
}

impl TlbReach {
    /// A vCPU of the domain is being loaded on `cpu`.
    pub fn loaded_on(&mut self, cpu: usize) {
        *self = match *self {
            Self::Nowhere => Self::One(cpu),
            Self::One(c) if c == cpu => Self::One(cpu),
            _ => Self::Many,
        };
    }

    /// The domain's `VTTBR_EL2` was loaded on some CPU without [`Self::loaded_on`] (the
    /// invalidation swap): from now on every invalidation is broadcast.
    pub fn spread(&mut self) {
        *self = Self::Many;
    }

    /// Whether invalidating on this CPU alone drops every cached translation of the domain,
    /// given whether this CPU has the domain's `VTTBR_EL2` loaded (`loaded_here`).
    pub fn local_suffices(self, loaded_here: bool) -> bool {
        loaded_here && matches!(self, Self::One(_))
    }

    /// How to invalidate after an edit of the domain's stage 2, from a CPU that has its
    /// `VTTBR_EL2` loaded or not (`loaded_here`). A broadcast from a CPU that does not have
    /// it loaded borrows it for the instant it takes, so the set spreads.
    pub fn invalidation(&mut self, loaded_here: bool) -> Invalidation {
        if self.local_suffices(loaded_here) {
            return Invalidation::Local;
        }
        if !loaded_here {
            self.spread();
        }
        Invalidation::Broadcast
    }
}

/// How an edit of a domain's stage 2 is invalidated ([`TlbReach::invalidation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// On this CPU alone (`TLBI VMALLS12E1`).
    Local,
    /// On every CPU, scoped to the domain's VMID.
    Broadcast,
}

#[cfg(test)]
#[path = "tlb_reach_tests.rs"]
mod tests;
