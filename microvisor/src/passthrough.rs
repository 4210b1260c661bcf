//! Device passthrough policy (DESIGN §6.1), host-tested: how a device's MMIO window reaches
//! its owner, which trapped accesses the microvisor performs for it, and who may hold it.
//!
//! A window that fills whole pages is mapped into the owner's stage 2. A window smaller
//! than a page (QEMU packs eight 0x200-byte virtio-mmio transports into one 4 KiB page) is
//! never mapped: the owner's accesses trap and are performed on the device only when they
//! fall entirely inside the owner's own window, naturally aligned, 1/2/4/8 bytes wide.
//! Anything else is a fault charged to the owner, so no domain reaches a neighbour's
//! registers.
//!
//! A device given to an ordinary guest (xl `dtdev`/`iomem`, issue 16) is a host node the
//! boot DTB marks `xen,passthrough`: it must be whole pages clear of everything the
//! microvisor keeps ([`may_pass`]), and each window a guest sees must be whole pages of it
//! placed where nothing of the guest's own layout is ([`check_window`]).

use crate::platform::{DeviceNode, Region};
use protocol::addr::PAGE_SIZE;
use protocol::ids::DomainId;
use protocol::layout::{
    GUEST_GICD_BASE, GUEST_GICD_SIZE, GUEST_GICR_BASE, GUEST_GICR_SIZE, GUEST_GNTTAB_BASE,
    GUEST_MAGIC_BASE, GUEST_RAM_BASE, GUEST_RAM_MAX, GUEST_SPIS,
};

/// Bytes of the guest's grant-table window and of its magic pages (Xen's sizes).
const GUEST_WINDOW_16M: u64 = 0x0100_0000;

fn overlaps(a: Region, b: Region) -> bool {
    let (a0, b0) = (a.base.as_u64(), b.base.as_u64());
    a0 < b0.saturating_add(b.size) && b0 < a0.saturating_add(a.size)
}

/// Whether a host node marked `xen,passthrough` may become a Device capability for an
/// ordinary guest: whole pages (a guest's window is mapped, never trapped), clear of the
/// microvisor's own devices (`kept`: GIC, its UART) and of RAM, and with no interrupt but
/// an SPI a guest's vGIC has, other than one the microvisor uses (`kept_irqs`).
pub fn may_pass(node: DeviceNode, kept: &[Region], kept_irqs: &[u32]) -> bool {
    exposure(node.region) == Exposure::Mapped && clear_of(node, kept, kept_irqs)
}

/// Whether a device may be handed to a domain that maps it itself (dom0's management
/// UART): [`may_pass`] without the whole-page rule, since such a holder's sub-page window
/// is trapped and checked like a virtio transport's.
pub fn clear_of(node: DeviceNode, kept: &[Region], kept_irqs: &[u32]) -> bool {
    node.region.size != 0
        && !kept.iter().any(|&k| overlaps(node.region, k))
        && node
            .irq
            .is_none_or(|i| (32..32 + GUEST_SPIS).contains(&i) && !kept_irqs.contains(&i))
}

/// Why a guest window of a passed-through device is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowError {
    /// Not whole pages, or empty.
    Unaligned,
    /// Not inside the device's registers.
    OutsideDevice,
    /// On the guest's RAM, GIC, grant-table window or magic pages.
    GuestLayout,
}

/// Checks that `size` bytes of `device` from host address `host` may appear in a guest with
/// `ram` bytes of RAM at `guest`: whole pages of the device, not over anything the guest's
/// layout places. Only the RAM the guest has counts (its RAM never grows after creation),
/// so a device high in the 32-bit space (the ZCU102's UARTs at 0xff000000) may sit 1:1
/// above a small guest's RAM, as with Xen.
pub fn check_window(
    device: Region,
    host: u64,
    guest: u64,
    size: u64,
    ram: u64,
) -> Result<(), WindowError> {
    let whole = |a: u64| a.is_multiple_of(PAGE_SIZE);
    if size == 0 || !whole(host) || !whole(guest) || !whole(size) {
        return Err(WindowError::Unaligned);
    }
    let end = host.checked_add(size).ok_or(WindowError::OutsideDevice)?;
    let dev_end = device.base.as_u64().saturating_add(device.size);
    if host < device.base.as_u64() || end > dev_end {
        return Err(WindowError::OutsideDevice);
    }
    let window = Region {
        base: protocol::addr::PhysAddr::new(guest),
        size,
    };
    let at = |base: u64, size: u64| Region {
        base: protocol::addr::PhysAddr::new(base),
        size,
    };
    let layout = [
        at(GUEST_GICD_BASE.as_u64(), GUEST_GICD_SIZE),
        at(GUEST_GICR_BASE.as_u64(), GUEST_GICR_SIZE),
        at(GUEST_GNTTAB_BASE.as_u64(), GUEST_WINDOW_16M),
        at(GUEST_MAGIC_BASE.as_u64(), GUEST_WINDOW_16M),
        at(GUEST_RAM_BASE.as_u64(), ram.min(GUEST_RAM_MAX)),
    ];
    if guest.checked_add(size).is_none() || layout.iter().any(|&r| overlaps(window, r)) {
        return Err(WindowError::GuestLayout);
    }
    Ok(())
}

/// How a device window is given to its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exposure {
    /// Mapped in stage 2 at the same address (the window is whole pages).
    Mapped,
    /// Not mapped: each access traps and is checked against the window.
    Trapped,
}

/// The exposure a window gets.
pub fn exposure(window: Region) -> Exposure {
    let base = window.base.as_u64();
    if base.is_multiple_of(PAGE_SIZE) && window.size.is_multiple_of(PAGE_SIZE) && window.size != 0 {
        Exposure::Mapped
    } else {
        Exposure::Trapped
    }
}

/// Why a trapped access to a device window is refused (a fault for the accessing domain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessFault {
    /// Not 1, 2, 4 or 8 bytes.
    Width,
    /// Not naturally aligned.
    Alignment,
    /// Not entirely inside the window (e.g. a neighbour's transport in the same page).
    Outside,
}

/// Checks a trapped access of `width` bytes at `addr` against `window`; the physical
/// address to perform it at (windows are mapped 1:1) if allowed.
pub fn check_access(window: Region, addr: u64, width: u8) -> Result<u64, AccessFault> {
    if !matches!(width, 1 | 2 | 4 | 8) {
        return Err(AccessFault::Width);
    }
    if !addr.is_multiple_of(u64::from(width)) {
        return Err(AccessFault::Alignment);
    }
    let base = window.base.as_u64();
    let end = base.saturating_add(window.size);
    let last = addr
        .checked_add(u64::from(width))
        .ok_or(AccessFault::Outside)?;
    if addr < base || last > end {
        return Err(AccessFault::Outside);
    }
    Ok(addr)
}

/// Who a device belongs to at the moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Holding {
    /// The domain it was delegated to (`DomainCreate`), kept across restarts in place.
    pub assigned: Option<DomainId>,
    /// The domain that mapped it (`DeviceMap`) and so may touch its registers.
    pub mapped_by: Option<DomainId>,
}

/// Why a device cannot be delegated or mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldError {
    /// It is assigned to, or mapped by, another domain.
    Busy,
}

impl Holding {
    /// Nobody holds or uses it: it may be delegated.
    pub fn is_free(&self) -> bool {
        self.assigned.is_none() && self.mapped_by.is_none()
    }

    /// May `to` receive this device by delegation? Not if another domain holds or uses it
    /// (the delegator itself must not have mapped it: two users of one device is no
    /// isolation).
    pub fn delegate(&mut self, to: DomainId) -> Result<(), HoldError> {
        if self.assigned.is_some_and(|a| a != to) || self.mapped_by.is_some_and(|m| m != to) {
            return Err(HoldError::Busy);
        }
        self.assigned = Some(to);
        Ok(())
    }

    /// May `by` map this device? Only its assignee, or anyone holding a cap to an
    /// unassigned device that nobody else mapped.
    pub fn map(&mut self, by: DomainId) -> Result<(), HoldError> {
        if self.assigned.is_some_and(|a| a != by) || self.mapped_by.is_some_and(|m| m != by) {
            return Err(HoldError::Busy);
        }
        self.mapped_by = Some(by);
        Ok(())
    }

    /// Domain `id` is being freed: forget its mapping and, unless it is about to be
    /// rebuilt in place (same id, same devices), its assignment. True if the device was
    /// in its hands and so must be reset before anyone else uses it.
    pub fn release(&mut self, id: DomainId, restarting: bool) -> bool {
        let held = self.assigned == Some(id) || self.mapped_by == Some(id);
        if self.mapped_by == Some(id) {
            self.mapped_by = None;
        }
        if self.assigned == Some(id) && !restarting {
            self.assigned = None;
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::addr::PhysAddr;

    fn transport(i: u64) -> Region {
        Region {
            base: PhysAddr::new(0x0a00_0000 + i * 0x200),
            size: 0x200,
        }
    }

    #[test]
    fn sub_page_windows_trap_and_page_windows_map() {
        assert_eq!(exposure(transport(3)), Exposure::Trapped);
        let page = Region {
            base: PhysAddr::new(0x0901_0000),
            size: 0x1000,
        };
        assert_eq!(exposure(page), Exposure::Mapped);
        let odd = Region {
            base: PhysAddr::new(0x0901_0000),
            size: 0x1200,
        };
        assert_eq!(exposure(odd), Exposure::Trapped);
    }

    #[test]
    fn accesses_stay_inside_the_window() {
        let w = transport(1);
        let base = w.base.as_u64();
        assert_eq!(check_access(w, base, 4), Ok(base));
        assert_eq!(check_access(w, base + 0x1fc, 4), Ok(base + 0x1fc));
        assert_eq!(check_access(w, base + 0x100, 8), Ok(base + 0x100));
        assert_eq!(check_access(w, base + 0x101, 1), Ok(base + 0x101));
        // The neighbours in the same page.
        assert_eq!(check_access(w, base + 0x200, 4), Err(AccessFault::Outside));
        assert_eq!(check_access(w, base - 4, 4), Err(AccessFault::Outside));
        assert_eq!(
            check_access(w, base + 0x1fc, 8),
            Err(AccessFault::Alignment)
        );
        assert_eq!(check_access(w, base + 0x1f8, 16), Err(AccessFault::Width));
        assert_eq!(check_access(w, base + 2, 4), Err(AccessFault::Alignment));
        assert_eq!(check_access(w, u64::MAX - 3, 4), Err(AccessFault::Outside));
    }

    #[test]
    fn one_holder_at_a_time() {
        let (d0, d1, d2) = (DomainId(0), DomainId(1), DomainId(2));
        let mut h = Holding::default();
        assert!(h.is_free());
        h.delegate(d1).unwrap();
        assert!(!h.is_free());
        assert_eq!(h.delegate(d2), Err(HoldError::Busy));
        assert_eq!(
            h.map(d0),
            Err(HoldError::Busy),
            "dom0 keeps no assigned device"
        );
        h.map(d1).unwrap();
        // A restart in place keeps the assignment, drops the mapping.
        assert!(h.release(d1, true));
        assert_eq!(h.assigned, Some(d1));
        assert_eq!(h.mapped_by, None);
        h.map(d1).unwrap();
        // Destroyed for good: back to the pool.
        assert!(h.release(d1, false));
        assert_eq!(h, Holding::default());
        h.delegate(d2).unwrap();
        assert!(!h.release(d1, false));
    }

    fn region(base: u64, size: u64) -> Region {
        Region {
            base: PhysAddr::new(base),
            size,
        }
    }

    #[test]
    fn only_whole_page_devices_clear_of_the_microvisor_pass() {
        let rtc = DeviceNode {
            region: region(0x0901_0000, 0x1000),
            irq: Some(34),
        };
        let kept = [region(0x0800_0000, 0x1_0000), region(0x0900_0000, 0x1000)];
        assert!(may_pass(rtc, &kept, &[33]));
        let uart = DeviceNode {
            region: region(0x0900_0000, 0x1000),
            irq: Some(33),
        };
        assert!(!may_pass(uart, &kept, &[]), "the microvisor's UART");
        assert!(!may_pass(rtc, &kept, &[34]), "an interrupt it uses");
        let sub_page = DeviceNode {
            region: region(0x0a00_0000, 0x200),
            irq: Some(48),
        };
        assert!(!may_pass(sub_page, &kept, &[]));
        assert!(
            clear_of(sub_page, &kept, &[]),
            "trapped for a holder that maps it itself"
        );
        assert!(!clear_of(uart, &kept, &[]), "the microvisor's UART");
        let ppi = DeviceNode {
            irq: Some(27),
            ..rtc
        };
        assert!(!may_pass(ppi, &kept, &[]));
        let beyond = DeviceNode {
            irq: Some(32 + GUEST_SPIS),
            ..rtc
        };
        assert!(
            !may_pass(beyond, &kept, &[]),
            "no such SPI in a guest's vGIC"
        );
    }

    #[test]
    fn guest_windows_are_whole_device_pages_off_the_guest_layout() {
        const RAM: u64 = 256 << 20;
        let dev = region(0x0901_0000, 0x1000);
        assert_eq!(
            check_window(dev, 0x0901_0000, 0x0901_0000, 0x1000, RAM),
            Ok(())
        );
        assert_eq!(
            check_window(dev, 0x0901_0000, 0x2000_0000, 0x1000, RAM),
            Ok(())
        );
        assert_eq!(
            check_window(dev, 0x0901_0000, 0x0901_0000, 0x2000, RAM),
            Err(WindowError::OutsideDevice)
        );
        assert_eq!(
            check_window(dev, 0x0900_f000, 0x0900_f000, 0x1000, RAM),
            Err(WindowError::OutsideDevice)
        );
        assert_eq!(
            check_window(dev, 0x0901_0000, 0x0901_0800, 0x1000, RAM),
            Err(WindowError::Unaligned)
        );
        assert_eq!(
            check_window(dev, 0x0901_0000, 0x0901_0000, 0, RAM),
            Err(WindowError::Unaligned)
        );
        for guest in [
            0x0300_1000,
            0x0302_0000,
            0x3800_0000,
            0x3900_0000,
            0x4000_0000,
            0x4fff_f000,
        ] {
            assert_eq!(
                check_window(dev, 0x0901_0000, guest, 0x1000, RAM),
                Err(WindowError::GuestLayout),
                "{guest:#x}"
            );
        }
        assert_eq!(
            check_window(dev, 0x0901_0000, !0xfff, 0x1000, RAM),
            Err(WindowError::GuestLayout)
        );
        // Above the guest's RAM (256 MiB from 0x40000000): a ZCU102 UART placed 1:1.
        let uart = region(0xff01_0000, 0x1000);
        assert_eq!(
            check_window(uart, 0xff01_0000, 0xff01_0000, 0x1000, RAM),
            Ok(())
        );
        assert_eq!(
            check_window(uart, 0xff01_0000, 0xff01_0000, 0x1000, 0xc000_0000),
            Err(WindowError::GuestLayout),
            "inside 3 GiB of RAM"
        );
    }

    #[test]
    fn a_mapped_device_is_not_delegated_away() {
        let mut h = Holding::default();
        h.map(DomainId(0)).unwrap();
        assert_eq!(h.delegate(DomainId(3)), Err(HoldError::Busy));
        assert!(h.release(DomainId(0), false));
        h.delegate(DomainId(3)).unwrap();
    }
}
