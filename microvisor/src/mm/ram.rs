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
}

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
    /// one extent (a page never straddles two).
    pub fn to_phys(&self, offset: u64, len: u64) -> Option<PhysAddr> {
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

    /// Splits `[offset, offset + len)` of the RAM at extent boundaries: `(host address,
    /// position inside the requested range, length)` for each piece, in order. Empty if the
    /// range is not wholly inside the RAM.
    pub fn pieces(&self, offset: u64, len: u64) -> Vec<(PhysAddr, u64, u64)> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
