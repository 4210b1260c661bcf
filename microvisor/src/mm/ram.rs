//! A domain's RAM as a list of host-physical extents behind one contiguous guest-physical
//! range.
//!
//! The guest sees `[GUEST_RAM_BASE, GUEST_RAM_BASE + size)`; extent `i` backs the offsets
//! `[extents[i].offset, extents[i].offset + extents[i].pages * 4 KiB)` of that range, in
//! order and without gaps. Whole 2 MiB blocks come first (so their guest offsets are 2 MiB
//! aligned too and stage 2 maps them as blocks), then smaller runs.
//!
//! Which domains get a single extent (physically contiguous RAM) is decided in one place,
//! [`crate::hyp::loader::needs_contiguous_ram`].
#![forbid(unsafe_code)]

use super::frames::BLOCK_SIZE;
use super::lazy_ram::{LazyRam, ScrubFn};
use alloc::sync::Arc;
use alloc::vec::Vec;
use protocol::addr::{PhysAddr, PAGE_SIZE};

/// One host-physical run of a domain's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Offset of its first byte in the guest's RAM.
    pub offset: u64,
    /// Host-physical base.
    pub pa: PhysAddr,
    /// Length in pages.
    pub pages: u64,
}

impl Extent {
    /// Length in bytes.
    pub fn bytes(&self) -> u64 {
        self.pages * PAGE_SIZE
    }
}

/// A domain's RAM: extents in guest order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RamMap {
    extents: Vec<Extent>,
    size: u64,
    lazy: Lazy,
}

/// The first-touch scrub state of a map's RAM, shared by every copy of the map (the grant
/// and event mirrors resolve frames too): `None` if the build scrubbed all of it.
#[derive(Clone, Debug, Default)]
struct Lazy(Option<Arc<LazyRam>>);

impl PartialEq for Lazy {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Lazy {}

impl RamMap {
    /// No RAM.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `pages` pages at `pa` after the RAM mapped so far.
    pub fn push(&mut self, pa: PhysAddr, pages: u64) {
        // Runs handed out in a row are often adjacent: keep them as one extent.
        if let Some(last) = self.extents.last_mut() {
            if last.pa.checked_add(last.bytes()) == Some(pa) {
                last.pages += pages;
                self.size += pages * PAGE_SIZE;
                return;
            }
        }
        self.extents.push(Extent {
            offset: self.size,
            pa,
            pages,
        });
        self.size += pages * PAGE_SIZE;
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The extents, in guest order.
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    /// The host-physical base if the RAM is one physically contiguous run.
    pub fn contiguous_base(&self) -> Option<PhysAddr> {
        match self.extents.as_slice() {
            [only] => Some(only.pa),
            _ => None,
        }
    }

    /// Host-physical address of RAM offset `offset`, if `[offset, offset + len)` lies inside
    /// one extent (a page never straddles two). A block not yet scrubbed
    /// ([`crate::mm::lazy_ram`]) is scrubbed first: whoever gets the address may read it
    /// or write it, and neither may meet an earlier owner's data or be wiped afterwards.
    /// `None` also once the domain's frames are being freed and the block was never
    /// scrubbed.
    #[inline]
    pub fn to_phys(&self, offset: u64, len: u64) -> Option<PhysAddr> {
        let pa = self.raw_phys(offset, len)?;
        self.ensure_clean(offset, len).then_some(pa)
    }

    /// [`Self::to_phys`] without the scrub.
    fn raw_phys(&self, offset: u64, len: u64) -> Option<PhysAddr> {
        let end = offset.checked_add(len)?;
        if end > self.size {
            return None;
        }
        let i = self.extents.partition_point(|e| e.offset <= offset);
        let e = self.extents.get(i.checked_sub(1)?)?;
        if end > e.offset + e.bytes() {
            return None;
        }
        e.pa.checked_add(offset - e.offset)
    }

    /// Whether `[offset, offset + len)` lies inside the RAM (nothing is scrubbed).
    pub fn contains(&self, offset: u64, len: u64) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.size)
    }

    /// Splits `[offset, offset + len)` of the RAM at extent boundaries: `(host address,
    /// position inside the requested range, length)` for each piece, in order. Empty if the
    /// range is not wholly inside the RAM, or (as for [`Self::to_phys`]) if a block of it
    /// could not be scrubbed.
    pub fn pieces(&self, offset: u64, len: u64) -> Vec<(PhysAddr, u64, u64)> {
        if !self.contains(offset, len) || !self.ensure_clean(offset, len) {
            return Vec::new();
        }
        self.raw_pieces(offset, len)
    }

    fn raw_pieces(&self, offset: u64, len: u64) -> Vec<(PhysAddr, u64, u64)> {
        let mut out = Vec::new();
        let Some(end) = offset.checked_add(len).filter(|&e| e <= self.size) else {
            return out;
        };
        for e in &self.extents {
            let (lo, hi) = (offset.max(e.offset), end.min(e.offset + e.bytes()));
            if lo < hi {
                out.push((
                    PhysAddr::new(e.pa.as_u64() + (lo - e.offset)),
                    lo - offset,
                    hi - lo,
                ));
            }
        }
        out
    }

    /// Makes the RAM scrubbed on first touch, 2 MiB block by block, with `scrub`: every
    /// block starts pending (the build marks what it scrubs itself,
    /// [`LazyRam::set_built`]). Call before the map is copied anywhere.
    pub fn make_lazy(&mut self, scrub: ScrubFn) -> Arc<LazyRam> {
        let blocks = self.size.div_ceil(BLOCK_SIZE) as usize;
        let lazy = Arc::new(LazyRam::new(blocks, scrub));
        self.lazy = Lazy(Some(lazy.clone()));
        lazy
    }

    /// Its first-touch scrub state, if it has one.
    pub fn lazy(&self) -> Option<&Arc<LazyRam>> {
        self.lazy.0.as_ref()
    }

    /// The RAM offset and length of block `b` (the last may be short).
    pub fn block_range(&self, b: usize) -> (u64, u64) {
        let start = b as u64 * BLOCK_SIZE;
        (start, BLOCK_SIZE.min(self.size.saturating_sub(start)))
    }

    /// The host pieces `(address, length)` of block `b`.
    pub fn block_pieces(&self, b: usize) -> Vec<(PhysAddr, u64)> {
        let (start, len) = self.block_range(b);
        self.raw_pieces(start, len)
            .into_iter()
            .map(|(pa, _, n)| (pa, n))
            .collect()
    }

    /// The parts of the RAM its build scrubs and maps, as `(guest offset, host address,
    /// length)`: every extent, or for RAM scrubbed on first touch every block that a host
    /// range in `written` (`(address, length)`, what the load writes) overlaps, whole,
    /// each recorded as built ([`LazyRam::set_built`]).
    pub fn built_spans(&self, written: &[(u64, u64)]) -> Vec<(u64, PhysAddr, u64)> {
        let Some(lazy) = self.lazy() else {
            return self
                .extents
                .iter()
                .map(|e| (e.offset, e.pa, e.bytes()))
                .collect();
        };
        // Each written range against each extent (a load is split at extents, so both
        // lists can be long; no block-by-block rescan of either).
        let mut hit = alloc::vec![false; lazy.len()];
        for &(w, n) in written {
            let w_end = w.saturating_add(n);
            for e in &self.extents {
                let (pa, end) = (e.pa.as_u64(), e.pa.as_u64() + e.bytes());
                let (lo, hi) = (w.max(pa), w_end.min(end));
                if lo < hi {
                    let first = (e.offset + (lo - pa)) / BLOCK_SIZE;
                    let last = (e.offset + (hi - pa) - 1) / BLOCK_SIZE;
                    for b in first..=last {
                        if let Some(h) = hit.get_mut(b as usize) {
                            *h = true;
                        }
                    }
                }
            }
        }
        let mut spans = Vec::new();
        for (b, _) in hit.iter().enumerate().filter(|(_, &h)| h) {
            lazy.set_built(b);
            let (mut offset, _) = self.block_range(b);
            for (pa, n) in self.block_pieces(b) {
                spans.push((offset, pa, n));
                offset += n;
            }
        }
        spans
    }

    /// Scrubs every not yet scrubbed block `[offset, offset + len)` touches; false if one
    /// could not be (its domain's frames are being freed).
    #[inline]
    pub fn ensure_clean(&self, offset: u64, len: u64) -> bool {
        let Some(lazy) = self.lazy() else {
            return true;
        };
        let first = (offset / BLOCK_SIZE) as usize;
        let last = ((offset.saturating_add(len.max(1)) - 1) / BLOCK_SIZE) as usize;
        // Every resolved frame asks (an event-channel send's argument, each time): one
        // load when its block is clean, the scrub out of line.
        (first == last && lazy.is_clean(first)) || self.scrub_blocks(lazy, first, last)
    }

    #[cold]
    #[inline(never)]
    fn scrub_blocks(&self, lazy: &LazyRam, first: usize, last: usize) -> bool {
        (first..=last).all(|b| lazy.ensure_clean_resolving(b, || self.block_pieces(b)))
    }
}

/// `[start, start + len)` less every range `(start, length)` of `holes`: what is left, as
/// `(start, length)` ranges in address order.
pub fn subtract(start: u64, len: u64, holes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut left = alloc::vec![(start, start.saturating_add(len))];
    for &(h, n) in holes {
        let he = h.saturating_add(n);
        left = left
            .into_iter()
            .flat_map(|(s, e)| {
                if he <= s || e <= h {
                    return [Some((s, e)), None];
                }
                [(s < h).then_some((s, h)), (he < e).then_some((he, e))]
            })
            .flatten()
            .collect();
    }
    left.into_iter()
        .filter(|&(s, e)| e > s)
        .map(|(s, e)| (s, e - s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::lazy_ram::State;

    fn pa(x: u64) -> PhysAddr {
        PhysAddr::new(x)
    }

    #[test]
    fn translation_and_pieces_follow_the_extents() {
        let mut m = RamMap::new();
        m.push(pa(0x8000_0000), 512);
        m.push(pa(0x4000_0000), 2);
        m.push(pa(0x4000_2000), 1); // adjacent: merged
        m.push(pa(0x5000_0000), 1);
        assert_eq!(m.extents().len(), 3);
        assert_eq!(m.size(), 516 * PAGE_SIZE);
        assert_eq!(m.contiguous_base(), None);
        assert_eq!(m.to_phys(0x1000, 8), Some(pa(0x8000_1000)));
        assert_eq!(m.to_phys(0x20_0000, PAGE_SIZE), Some(pa(0x4000_0000)));
        assert_eq!(m.to_phys(0x20_2000, PAGE_SIZE), Some(pa(0x4000_2000)));
        assert_eq!(m.to_phys(0x20_3000, PAGE_SIZE), Some(pa(0x5000_0000)));
        // Straddling two extents, or past the end: no single address.
        assert_eq!(m.to_phys(0x1f_f800, PAGE_SIZE), None);
        assert_eq!(m.to_phys(0x20_4000, 1), None);
        let p = m.pieces(0x1f_f000, 0x5000);
        assert_eq!(
            p,
            [
                (pa(0x801f_f000), 0, 0x1000),
                (pa(0x4000_0000), 0x1000, 0x3000),
                (pa(0x5000_0000), 0x4000, 0x1000)
            ]
        );
        assert!(m.pieces(0x20_3000, 0x2000).is_empty());
        let mut one = RamMap::new();
        one.push(pa(0x4020_0000), 4);
        assert_eq!(one.contiguous_base(), Some(pa(0x4020_0000)));
    }

    static SCRUBBED: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());
    fn record(pa: PhysAddr, len: u64) {
        SCRUBBED.lock().unwrap().push((pa.as_u64(), len));
    }

    /// Block 0 in one extent, block 1 in two, block 2 of `last` pages.
    fn three_blocks(last: u64) -> RamMap {
        let mut m = RamMap::new();
        m.push(pa(0x8000_0000), 512);
        m.push(pa(0x9000_0000), 256);
        m.push(pa(0xa000_0000), 256);
        m.push(pa(0xb000_0000), last);
        m
    }

    #[test]
    fn a_lazy_map_scrubs_a_block_before_handing_out_any_address_in_it() {
        let mut m = three_blocks(16); // block 2 short
        let lazy = m.make_lazy(record);
        assert_eq!(lazy.len(), 3);
        let copy = m.clone();
        assert_eq!(copy, m, "copies share the scrub state");
        assert!(m.contains(0x40_0000, 0x1000));
        assert!(
            SCRUBBED.lock().unwrap().is_empty(),
            "asking is not touching"
        );
        assert_eq!(copy.to_phys(0x30_1000, 8), Some(pa(0xa000_1000)));
        assert_eq!(
            *SCRUBBED.lock().unwrap(),
            [(0x9000_0000, 0x10_0000), (0xa000_0000, 0x10_0000)],
            "block 1, every piece of it, scrubbed through the copy"
        );
        assert_eq!(m.to_phys(0x20_0000, 8), Some(pa(0x9000_0000)), "not twice");
        assert_eq!(SCRUBBED.lock().unwrap().len(), 2);
        assert_eq!(m.block_range(2), (0x40_0000, 0x1_0000));
        let p = m.pieces(0x1f_f000, 0x2000);
        assert_eq!(p.len(), 2);
        assert_eq!(
            SCRUBBED.lock().unwrap()[2],
            (0x8000_0000, 0x20_0000),
            "block 0 too"
        );
        assert_eq!(
            lazy.census().resolved,
            2,
            "both scrubbed resolving a frame, not by a guest's fault"
        );
        lazy.retire();
        assert_eq!(
            m.to_phys(0x40_0000, 8),
            None,
            "a retired block is never handed out"
        );
        assert_eq!(
            m.to_phys(0x10, 8),
            Some(pa(0x8000_0010)),
            "a clean one still is"
        );
        assert_eq!(SCRUBBED.lock().unwrap().len(), 3);
    }

    #[test]
    fn the_build_takes_whole_blocks_the_load_writes_and_every_extent_otherwise() {
        let mut m = three_blocks(512);
        let eager = m.built_spans(&[]);
        assert_eq!(eager.len(), 4, "not lazy: every extent");
        let lazy = m.make_lazy(record_nothing);
        // A write straddling the two extents of block 1's second half and block 2's start
        // is not possible (they are apart); one ending in block 1's second extent and one
        // a byte into block 2 take both blocks, whole.
        let spans = m.built_spans(&[(0xa000_0ff0, 0x20), (0xb000_0000, 1)]);
        assert_eq!(
            spans,
            [
                (0x20_0000, pa(0x9000_0000), 0x10_0000),
                (0x30_0000, pa(0xa000_0000), 0x10_0000),
                (0x40_0000, pa(0xb000_0000), 0x20_0000),
            ]
        );
        let states: Vec<State> = (0..3).map(|b| lazy.state(b)).collect();
        assert_eq!(
            states,
            [State::Pending, State::Mapped, State::Mapped],
            "what the build maps is recorded"
        );
        assert!(
            m.built_spans(&[(0xc000_0000, 0x1000)]).is_empty(),
            "not RAM: nothing"
        );
    }

    fn record_nothing(_: PhysAddr, _: u64) {}

    #[test]
    fn subtracting_leaves_what_no_hole_covers_in_order() {
        assert_eq!(subtract(0x1000, 0x1000, &[]), [(0x1000, 0x1000)]);
        assert_eq!(
            subtract(0x1000, 0x1000, &[(0x1100, 0x100), (0x1800, 0x10)]),
            [(0x1000, 0x100), (0x1200, 0x600), (0x1810, 0x7f0)]
        );
        assert_eq!(
            subtract(0x1000, 0x1000, &[(0x800, 0x900), (0x1f00, 0x1000)]),
            [(0x1100, 0xe00)],
            "holes over either end"
        );
        assert!(
            subtract(0x1000, 0x1000, &[(0, 0x3000)]).is_empty(),
            "all covered"
        );
        assert_eq!(
            subtract(0x1000, 0x1000, &[(0x3000, 0x10), (0x1000, 0)]),
            [(0x1000, 0x1000)],
            "outside or empty: nothing taken"
        );
    }
}
