//! Where a domain's guest frames are, as the Xen ABI's memory calls see them: its RAM, with
//! the microvisor-owned pages the Xen ABI puts on top (its shared_info frame where it
//! mapped it, its console and xenstore rings), for the grant path and for pointer
//! arguments. Kept here, host-tested, because two places resolve frames this way: the
//! locked path (from the domain's own record) and the grant copy served under the grant
//! lock (from a mirror of it, `hyp::xen::grant_state`), and they must agree.
#![forbid(unsafe_code)]

use crate::mm::ram::RamMap;
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::layout::{GUEST_MAGIC_BASE, GUEST_RAM_BASE};

/// Guest frame of the PV console ring (Xen's CONSOLE_PFN_OFFSET 0).
pub const CONSOLE_GFN: u64 = GUEST_MAGIC_BASE.as_u64() / PAGE_SIZE;
/// Guest frame of the xenstore ring (Xen's XENSTORE_PFN_OFFSET 1).
pub const XENSTORE_GFN: u64 = CONSOLE_GFN + 1;

/// The microvisor-owned pages that sit on top of a domain's RAM in its physmap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnPages {
    /// Its shared_info frame.
    pub shared_info: Option<PhysAddr>,
    /// The guest frame it mapped shared_info at.
    pub shared_info_gfn: Option<u64>,
    /// Its magic pages (console, xenstore), consecutive.
    pub magic: Option<PhysAddr>,
}

/// Host address of guest-physical `ipa` of a domain with RAM `ram` and pages `pages`: its
/// shared_info frame where it put it, its magic pages, else its RAM. Never a device, a page
/// another domain granted it, its grant-table frames (mapped outside its RAM), or anything
/// of the microvisor's.
pub fn own_page(ram: &RamMap, pages: OwnPages, ipa: u64) -> Option<PhysAddr> {
    let gfn = ipa / PAGE_SIZE;
    let offset = ipa % PAGE_SIZE;
    let frame = if pages.shared_info_gfn == Some(gfn) {
        pages.shared_info
    } else if let Some(magic) = pages
        .magic
        .filter(|_| (CONSOLE_GFN..=XENSTORE_GFN).contains(&gfn))
    {
        magic.checked_add((gfn - CONSOLE_GFN) * PAGE_SIZE)
    } else {
        return ram.to_phys(ipa.checked_sub(GUEST_RAM_BASE.as_u64())?, 1);
    };
    frame.and_then(|f| f.checked_add(offset))
}

/// One domain's frames as the grant path reaches them: a copy of what [`own_page`] needs,
/// and whether the domain may still be reached at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainFrames {
    /// Built and not dying.
    live: bool,
    ram: RamMap,
    pages: OwnPages,
}

impl DomainFrames {
    /// The frames of a domain with RAM `ram` and pages `pages`; `live` unless it is dying.
    pub fn new(ram: RamMap, pages: OwnPages, live: bool) -> Self {
        Self { live, ram, pages }
    }

    /// Whether its frames may be reached.
    pub fn live(&self) -> bool {
        self.live
    }

    /// It started dying: nothing reaches its frames any more.
    pub fn retire(&mut self) {
        self.live = false;
    }

    /// Host address of its guest-physical `ipa` ([`own_page`]), while it is live.
    pub fn page(&self, ipa: u64) -> Option<PhysAddr> {
        self.live
            .then(|| own_page(&self.ram, self.pages, ipa))
            .flatten()
    }

    /// Host page of its guest frame `gfn`, while it is live.
    pub fn frame(&self, gfn: u64) -> Option<PhysAddr> {
        self.page(gfn.checked_mul(PAGE_SIZE)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = GUEST_RAM_BASE.as_u64();

    /// Two extents: 2 pages at 0x8000_0000, then 1 page at 0x9000_0000.
    fn ram() -> RamMap {
        let mut r = RamMap::new();
        r.push(PhysAddr::new(0x8000_0000), 2);
        r.push(PhysAddr::new(0x9000_0000), 1);
        r
    }

    fn pages() -> OwnPages {
        OwnPages {
            shared_info: Some(PhysAddr::new(0x7000_0000)),
            shared_info_gfn: Some(RAM / PAGE_SIZE + 1),
            magic: Some(PhysAddr::new(0x7100_0000)),
        }
    }

    #[test]
    fn ram_resolves_through_its_extents_with_the_offset_kept() {
        let r = ram();
        let none = OwnPages::default();
        assert_eq!(
            own_page(&r, none, RAM + 0x10),
            Some(PhysAddr::new(0x8000_0010))
        );
        assert_eq!(
            own_page(&r, none, RAM + PAGE_SIZE + 8),
            Some(PhysAddr::new(0x8000_1008))
        );
        assert_eq!(
            own_page(&r, none, RAM + 2 * PAGE_SIZE + 0xff8),
            Some(PhysAddr::new(0x9000_0ff8))
        );
        // Past its RAM, below it, and the magic frames without magic pages: nothing.
        assert_eq!(own_page(&r, none, RAM + 3 * PAGE_SIZE), None);
        assert_eq!(own_page(&r, none, RAM - 1), None);
        assert_eq!(own_page(&r, none, CONSOLE_GFN * PAGE_SIZE), None);
        assert_eq!(own_page(&r, none, u64::MAX), None);
    }

    #[test]
    fn shared_info_and_magic_pages_sit_on_top() {
        let r = ram();
        let p = pages();
        // The RAM page shared_info was put over is shared_info now.
        assert_eq!(
            own_page(&r, p, RAM + PAGE_SIZE + 4),
            Some(PhysAddr::new(0x7000_0004))
        );
        assert_eq!(own_page(&r, p, RAM), Some(PhysAddr::new(0x8000_0000)));
        assert_eq!(
            own_page(&r, p, CONSOLE_GFN * PAGE_SIZE + 1),
            Some(PhysAddr::new(0x7100_0001))
        );
        assert_eq!(
            own_page(&r, p, XENSTORE_GFN * PAGE_SIZE),
            Some(PhysAddr::new(0x7100_1000))
        );
        assert_eq!(own_page(&r, p, (XENSTORE_GFN + 1) * PAGE_SIZE), None);
    }

    #[test]
    fn a_retired_domain_reaches_nothing() {
        let mut d = DomainFrames::new(ram(), pages(), true);
        assert_eq!(d.frame(RAM / PAGE_SIZE), Some(PhysAddr::new(0x8000_0000)));
        assert_eq!(d.frame(CONSOLE_GFN), Some(PhysAddr::new(0x7100_0000)));
        assert_eq!(d.frame(u64::MAX), None);
        d.retire();
        assert!(!d.live());
        assert_eq!(d.frame(RAM / PAGE_SIZE), None);
        assert_eq!(d.page(CONSOLE_GFN * PAGE_SIZE), None);
        // Not yet built: the same.
        let d = DomainFrames::new(ram(), pages(), false);
        assert_eq!(d.frame(RAM / PAGE_SIZE), None);
        assert_eq!(DomainFrames::default().frame(RAM / PAGE_SIZE), None);
    }
}
