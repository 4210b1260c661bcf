//! Frames the microvisor allocates on a domain's behalf (its shared_info frame, magic
//! pages, grant-table frames), counted against a budget that was charged to the domain's
//! controller when it was created, like its stage-2 table pages (F4).
//!
//! Without the budget those frames came from the shared pool uncharged: a domain growing
//! its grant table took pages other domains' quotas had promised them. With it a domain
//! runs out of its own allowance (an allocation is refused before the pool is touched),
//! and what it gives back returns to the pool and to its allowance.
//!
//! Invariant: `used` is the number of pages allocated through the budget and not yet
//! freed through it, and never exceeds `limit`.
#![forbid(unsafe_code)]

use super::frames::{FrameAllocator, FrameError};
use protocol::addr::{PhysAddr, PAGE_SIZE};

/// A domain's allowance of microvisor-allocated frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameBudget {
    /// Pages held now.
    pub used: u64,
    /// Most it may hold (what its controller was charged for).
    pub limit: u64,
}

impl FrameBudget {
    /// An unused budget of `limit` pages.
    pub const fn new(limit: u64) -> Self {
        Self { used: 0, limit }
    }

    /// Takes `pages` contiguous pages from `frames` if the budget has room for them; `None`
    /// (and the pool untouched) if it has not or the pool is empty.
    pub fn alloc(&mut self, frames: &mut FrameAllocator, pages: u64) -> Option<PhysAddr> {
        let used = self.used.checked_add(pages)?;
        if used > self.limit {
            return None;
        }
        let pa = frames.alloc(pages, PAGE_SIZE).ok()?;
        self.used = used;
        Some(pa)
    }

    /// Gives `pages` pages at `pa`, allocated through this budget, back to `frames` and to
    /// the budget. A free the allocator refuses (a double free) leaves the budget alone.
    pub fn free(
        &mut self,
        frames: &mut FrameAllocator,
        pa: PhysAddr,
        pages: u64,
    ) -> Result<(), FrameError> {
        frames.free(pa, pages)?;
        self.used = self.used.saturating_sub(pages);
        Ok(())
    }
}

#[cfg(test)]
#[path = "charged_tests.rs"]
mod tests;
