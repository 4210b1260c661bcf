//! A tiny memo of guest-frame translations for one batch of grant operations.
//!
//! A `GNTTABOP_copy` batch names the same few frames over and over (a driver domain's
//! bounce buffer, a frontend's consecutive pages), and each translation walks the domain
//! table and the RAM extents. While the glue serves one chunk it holds the domain table
//! borrowed, so no domain's memory can change under it: a translation found once stays
//! true until the chunk ends, and this cache lives no longer than that.
#![forbid(unsafe_code)]

use core::cell::Cell;

use protocol::addr::PhysAddr;
use protocol::xen::structs::DomId;

/// Entries kept: one per side of a copy (the caller's buffer and the granter's page).
const SLOTS: usize = 2;

/// Remembers the last [`SLOTS`] successful `(domain, gfn) → host page` translations.
/// Failures are not remembered (they end the operation anyway, and re-asking is safe).
/// Interior mutability, because the grant core takes the translator as `Fn`.
#[derive(Default)]
pub struct FrameCache {
    slots: [Cell<Option<(DomId, u64, PhysAddr)>>; SLOTS],
    /// The slot the next miss replaces (round-robin).
    next: Cell<usize>,
}

impl FrameCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The translation of `gfn` of `dom`: remembered, or `miss()` (remembered if `Some`).
    pub fn get(
        &self,
        dom: DomId,
        gfn: u64,
        miss: impl FnOnce() -> Option<PhysAddr>,
    ) -> Option<PhysAddr> {
        for slot in &self.slots {
            if let Some((d, g, pa)) = slot.get() {
                if d == dom && g == gfn {
                    return Some(pa);
                }
            }
        }
        let pa = miss()?;
        let i = self.next.get() % SLOTS;
        if let Some(slot) = self.slots.get(i) {
            slot.set(Some((dom, gfn, pa)));
        }
        self.next.set((i + 1) % SLOTS);
        Some(pa)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pa(n: u64) -> Option<PhysAddr> {
        Some(PhysAddr::new(n * 4096))
    }

    #[test]
    fn hits_do_not_ask_again_and_keys_include_the_domain() {
        let c = FrameCache::new();
        let asked = Cell::new(0);
        let ask = |n| {
            asked.set(asked.get() + 1);
            pa(n)
        };
        assert_eq!(c.get(1, 10, || ask(100)), pa(100));
        assert_eq!(c.get(1, 10, || ask(999)), pa(100));
        assert_eq!(asked.get(), 1);
        // Same gfn, other domain: a different frame.
        assert_eq!(c.get(2, 10, || ask(200)), pa(200));
        assert_eq!(c.get(1, 10, || ask(999)), pa(100));
        assert_eq!(c.get(2, 10, || ask(999)), pa(200));
        assert_eq!(asked.get(), 2);
    }

    #[test]
    fn failures_are_not_remembered() {
        let c = FrameCache::new();
        assert_eq!(c.get(1, 5, || None), None);
        assert_eq!(c.get(1, 5, || pa(7)), pa(7));
        assert_eq!(c.get(1, 5, || None), pa(7));
    }

    #[test]
    fn a_third_frame_evicts_the_oldest() {
        let c = FrameCache::new();
        assert_eq!(c.get(1, 1, || pa(11)), pa(11));
        assert_eq!(c.get(1, 2, || pa(12)), pa(12));
        assert_eq!(c.get(1, 3, || pa(13)), pa(13));
        // gfn 1 was evicted: asked again; gfns 3 (newest) still remembered.
        assert_eq!(c.get(1, 1, || pa(21)), pa(21));
        assert_eq!(c.get(1, 3, || None), pa(13));
    }
}
