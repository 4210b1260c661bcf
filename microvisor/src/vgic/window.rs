//! Which register a guest access names: the GIC's MMIO windows for each version, and the
//! access rules (width, alignment) common to all of them.
//!
//! Invariant: an access outside every window of the domain's GIC is [`Decoded::NotGic`]
//! (left to the caller); inside one, it always decodes to a register, [`Decoded::Unknown`]
//! standing for "RAZ/WI and counted".

use protocol::addr::GuestPhysAddr;
use protocol::layout::{
    GUEST_GICD_BASE, GUEST_GICD_SIZE, GUEST_GICR_BASE, GUEST_GICR_SIZE, GUEST_GICR_STRIDE,
    GUEST_GICV2_GICD_SIZE,
};

use super::{dist, dist_v2, redist, regs, VgicDomain};

/// What an address decodes to, before the access is performed.
pub(crate) enum Decoded {
    /// Outside every window of this GIC.
    NotGic,
    /// A register (possibly RAZ/WI by design).
    Reg(regs::Reg),
    /// Inside a window but no register of that width there: RAZ/WI and counted.
    Unknown,
}

impl From<Option<regs::Reg>> for Decoded {
    fn from(r: Option<regs::Reg>) -> Self {
        r.map_or(Self::Unknown, Self::Reg)
    }
}

impl VgicDomain {
    /// Which GICv3 register (distributor or redistributor) an access names.
    pub(crate) fn decode_v3(&self, ipa: GuestPhysAddr, width: u8) -> Decoded {
        if let Some(off) = ipa
            .offset_from(GUEST_GICD_BASE)
            .filter(|&o| o < GUEST_GICD_SIZE)
        {
            Decoded::from(
                valid_access(off, width)
                    .then(|| dist::decode(off, width))
                    .flatten(),
            )
        } else if let Some(off) = ipa
            .offset_from(GUEST_GICR_BASE)
            .filter(|&o| o < GUEST_GICR_SIZE)
        {
            let frame = (off / GUEST_GICR_STRIDE) as usize;
            let inner = off % GUEST_GICR_STRIDE;
            Decoded::from(if !valid_access(off, width) {
                None
            } else if frame >= self.nr_vcpus {
                // No redistributor here: RAZ makes PIDR2 read 0, which ends a guest's scan.
                Some(regs::Reg::Raz)
            } else {
                redist::decode(frame, frame + 1 == self.nr_vcpus, inner, width)
            })
        } else {
            Decoded::NotGic
        }
    }

    /// Which GICv2 distributor register an access by `vcpu` names.
    pub(crate) fn decode_v2(&self, vcpu: usize, ipa: GuestPhysAddr, width: u8) -> Decoded {
        match ipa
            .offset_from(GUEST_GICD_BASE)
            .filter(|&o| o < GUEST_GICV2_GICD_SIZE)
        {
            Some(off) => Decoded::from(
                valid_access(off, width)
                    .then(|| dist_v2::decode(off, width, vcpu, self.nr_vcpus))
                    .flatten(),
            ),
            None => Decoded::NotGic,
        }
    }
}

/// An access must be 1, 2, 4 or 8 bytes and naturally aligned; anything else is RAZ/WI.
fn valid_access(off: u64, width: u8) -> bool {
    matches!(width, 1 | 2 | 4 | 8) && off.is_multiple_of(u64::from(width))
}

/// The bits an access of `width` bytes carries (a written value is truncated to them).
pub(crate) fn width_mask(width: u8) -> u64 {
    match width {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}
