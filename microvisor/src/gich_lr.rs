//! The GICv2 list-register format (`GICH_LR<n>`, 32 bits) and its conversion to and from
//! the `ICH_LR<n>_EL2` format (64 bits) that the vGIC model, the fast path and every vCPU's
//! LR shadow use on both GIC versions. Only the GICv2 driver calls these, at the hardware
//! boundary.
//!
//! `GICH_LR`: VirtualID [9:0]; PhysicalID [19:10] when HW = 1, else EOI [19] (and the SGI
//! source CPUID [12:10], which the microvisor leaves 0); Priority [27:23] (the top five bits
//! of the 8-bit priority); State [29:28]; Grp1 [30]; HW [31].
//!
//! A GICv2 LR holds less than a GICv3 one (10-bit INTIDs, 5 priority bits), so converting
//! back loses bits. [`from_gich`] therefore takes the value last written to the slot: while
//! the hardware LR still names the same interrupt, only its state (the one field the
//! hardware changes) is taken from the hardware and everything else from that value, so a
//! round trip is exact and the "did the LRs change?" comparisons stay true to the hardware.

#![forbid(unsafe_code)]

use crate::vgic::lr::{EOI as ICH_EOI, GROUP1 as ICH_GROUP1, HW as ICH_HW};
use crate::vgic::lr::{PRIORITY_SHIFT as ICH_PRIORITY_SHIFT, STATE_MASK as ICH_STATE_MASK};

/// `ICH_LR` state bits [63:62].
const ICH_STATE_SHIFT: u32 = ICH_STATE_MASK.trailing_zeros();
/// `ICH_LR.pINTID` [44:32] (HW = 1); the model's encoder never sets it, so it lives here.
const ICH_PINTID_SHIFT: u32 = 32;
const ICH_PINTID_MASK: u64 = 0x1fff;

/// `GICH_LR.VirtualID` [9:0].
const GICH_VID_MASK: u32 = 0x3ff;
/// `GICH_LR.PhysicalID` [19:10] (HW = 1).
const GICH_PID_SHIFT: u32 = 10;
/// `GICH_LR.EOI` (HW = 0).
const GICH_EOI: u32 = 1 << 19;
/// `GICH_LR.Priority` [27:23].
const GICH_PRIORITY_SHIFT: u32 = 23;
/// `GICH_LR.State` [29:28].
const GICH_STATE_SHIFT: u32 = 28;
const GICH_STATE_MASK: u32 = 0b11 << GICH_STATE_SHIFT;
/// `GICH_LR.Grp1`.
const GICH_GROUP1: u32 = 1 << 30;
/// `GICH_LR.HW`.
const GICH_HW: u32 = 1 << 31;

/// The `GICH_LR` value for the `ICH_LR` value `lr`. A free LR (state 00) is written as 0.
/// INTIDs above 1023 cannot be expressed and do not occur: the model's INTIDs stop at 1019.
pub const fn to_gich(lr: u64) -> u32 {
    let state = ((lr >> ICH_STATE_SHIFT) & 0b11) as u32;
    if state == 0 {
        return 0;
    }
    let priority = ((lr >> ICH_PRIORITY_SHIFT) & 0xff) as u32;
    let mut v = (lr as u32 & GICH_VID_MASK)
        | ((priority >> 3) << GICH_PRIORITY_SHIFT)
        | (state << GICH_STATE_SHIFT);
    if lr & ICH_GROUP1 != 0 {
        v |= GICH_GROUP1;
    }
    if lr & ICH_HW != 0 {
        let pintid = ((lr >> ICH_PINTID_SHIFT) & ICH_PINTID_MASK) as u32;
        v |= GICH_HW | ((pintid & GICH_VID_MASK) << GICH_PID_SHIFT);
    } else if lr & ICH_EOI != 0 {
        v |= GICH_EOI;
    }
    v
}

/// The `ICH_LR` value for the `GICH_LR` value `raw` read from a slot last written with
/// `prev` (in `ICH_LR` format). See the module docs for why `prev` is needed.
pub const fn from_gich(raw: u32, prev: u64) -> u64 {
    let state = ((raw & GICH_STATE_MASK) >> GICH_STATE_SHIFT) as u64;
    let written = to_gich(prev);
    if written & !GICH_STATE_MASK == raw & !GICH_STATE_MASK {
        // Same interrupt (or still free): the hardware only moved its state.
        return (prev & !ICH_STATE_MASK) | (state << ICH_STATE_SHIFT);
    }
    let priority = ((raw >> GICH_PRIORITY_SHIFT) & 0x1f) << 3;
    let mut v = (raw & GICH_VID_MASK) as u64
        | ((priority as u64) << ICH_PRIORITY_SHIFT)
        | (state << ICH_STATE_SHIFT);
    if raw & GICH_GROUP1 != 0 {
        v |= ICH_GROUP1;
    }
    if raw & GICH_HW != 0 {
        let pintid = ((raw >> GICH_PID_SHIFT) & GICH_VID_MASK) as u64;
        v |= ICH_HW | (pintid << ICH_PINTID_SHIFT);
    } else if raw & GICH_EOI != 0 {
        v |= ICH_EOI;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vgic::lr;

    #[test]
    fn software_lr_fields_land_where_gicv2_wants_them() {
        // INTID 42, priority 0xa0, group 1, EOI maintenance, pending.
        let ich = lr::PENDING | lr::GROUP1 | lr::EOI | (0xa0 << lr::PRIORITY_SHIFT) | 42;
        let gich = to_gich(ich);
        assert_eq!(gich & 0x3ff, 42);
        assert_eq!((gich >> 23) & 0x1f, 0xa0 >> 3);
        assert_eq!((gich >> 28) & 3, 0b01);
        assert_ne!(gich & (1 << 30), 0, "group 1");
        assert_ne!(gich & (1 << 19), 0, "EOI");
        assert_eq!(gich & (1 << 31), 0, "not HW");
        assert_eq!(gich, 0x5000_0000 | (0x14 << 23) | (1 << 19) | 42);
    }

    #[test]
    fn hardware_lr_carries_the_physical_id() {
        let ich =
            lr::PENDING | lr::HW | lr::GROUP1 | (0x80 << lr::PRIORITY_SHIFT) | (27 << 32) | 27;
        let gich = to_gich(ich);
        assert_eq!(
            gich,
            (1 << 31) | (1 << 30) | (1 << 28) | (0x10 << 23) | (27 << 10) | 27
        );
        // A hardware LR has no EOI bit: bit 19 is PhysicalID's top bit, here clear.
        assert_eq!(gich & (1 << 19), 0);
    }

    #[test]
    fn free_lr_is_zero_both_ways() {
        assert_eq!(to_gich(0), 0);
        // A finished LR keeps stale fields in the model's shadow; on GICv2 it is written 0.
        assert_eq!(to_gich(lr::GROUP1 | (0xa0 << lr::PRIORITY_SHIFT) | 42), 0);
        assert_eq!(from_gich(0, 0), 0);
        // Such a shadow reads back as itself, so it does not look changed on every exit.
        let stale = lr::GROUP1 | (0xa0 << lr::PRIORITY_SHIFT) | 42;
        assert_eq!(from_gich(0, stale), stale);
    }

    #[test]
    fn round_trip_is_exact_while_the_lr_holds_the_same_interrupt() {
        // Priority 0xa4 has low bits GICv2 cannot hold; the INTID fits.
        let prev = lr::PENDING | lr::GROUP1 | (0xa4 << lr::PRIORITY_SHIFT) | 33;
        assert_eq!(from_gich(to_gich(prev), prev), prev);
        // The guest acknowledged it: only the state moves.
        let active = (to_gich(prev) & !(3 << 28)) | (2 << 28);
        assert_eq!(
            from_gich(active, prev),
            (prev & !lr::STATE_MASK) | lr::ACTIVE
        );
        // And deactivated it: state 00, the rest as written (as ICH_LR reads back).
        let done = to_gich(prev) & !(3 << 28);
        assert_eq!(from_gich(done, prev), prev & !lr::STATE_MASK);
        let hw = lr::ACTIVE | lr::HW | (0x80 << lr::PRIORITY_SHIFT) | (27 << 32) | 27;
        assert_eq!(from_gich(to_gich(hw), hw), hw);
    }

    #[test]
    fn an_unknown_hardware_value_is_decoded_field_by_field() {
        let raw = (1u32 << 31) | (1 << 30) | (3 << 28) | (0x1f << 23) | (30 << 10) | 30;
        let want =
            lr::STATE_MASK | lr::HW | lr::GROUP1 | (0xf8 << lr::PRIORITY_SHIFT) | (30 << 32) | 30;
        assert_eq!(from_gich(raw, 0), want);
        // Written for another INTID: the hardware value wins.
        let other = lr::PENDING | (0xa0 << lr::PRIORITY_SHIFT) | 99;
        assert_eq!(from_gich(raw, other), want);
        let sw = (1 << 28) | (1 << 19) | (0x14 << 23) | 5;
        assert_eq!(
            from_gich(sw, 0),
            lr::PENDING | lr::EOI | (0xa0 << lr::PRIORITY_SHIFT) | 5
        );
    }

    #[test]
    fn conversion_agrees_with_the_model_encoder() {
        for intid in [0u32, 15, 16, 31, 32, 1019] {
            for prio in [0u8, 0x08, 0x78, 0xa0, 0xf8] {
                for eoi in [false, true] {
                    let ich = lr::make(intid, prio, eoi);
                    assert_eq!(from_gich(to_gich(ich), 0), ich, "{intid} {prio:#x} {eoi}");
                }
            }
        }
    }
}
