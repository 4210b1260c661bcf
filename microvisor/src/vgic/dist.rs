//! Distributor (`GICD_*`) offset decoding: which register an access of a given width at an
//! offset from `GUEST_GICD_BASE` names.
//!
//! Invariants: with affinity routing on, every per-interrupt register that covers INTIDs
//! 0..31 is RAZ/WI here (those live in the redistributors), and INTIDs past `NR_IRQS` are
//! RAZ/WI. `None` means "no register of that width here" and is counted by the caller.

use super::regs::{BitReg, Reg};
use super::{FIRST_SPI, NR_IRQS};

/// `GICD_TYPER`: ITLinesNumber = NR_IRQS/32 - 1, CPUNumber 0 (ARE), no security
/// extension, IDbits = 9 (10-bit INTIDs), no LPIs, no MBIS, 1-of-N supported.
pub(crate) const GICD_TYPER: u32 = (9 << 19) | ((NR_IRQS as u32 / 32) - 1);
/// `GICD_IIDR` / `GICR_IIDR`: implementer 0x43B (Arm), product 0x42 ('B'ulkhead), rev 0.
pub(crate) const GIC_IIDR: u32 = 0x4200_043B;
/// `GICD_PIDR2` / `GICR_PIDR2`: ArchRev 3 (GICv3) in bits [7:4], JEDEC bits as Arm's.
pub(crate) const GIC_PIDR2: u32 = 0x3B;
/// Offset of `PIDR2` in both frames.
pub(crate) const PIDR2_OFFSET: u64 = 0xFFE8;
/// The CoreSight ID block at the top of each 64 KiB frame (only `PIDR2` is implemented).
pub(crate) const ID_BLOCK: core::ops::Range<u64> = 0xFFD0..0x1_0000;

/// Bit-per-interrupt register banks: (base offset, kind).
pub(crate) const BIT_BANKS: [(u64, BitReg); 7] = [
    (0x0080, BitReg::Group),
    (0x0100, BitReg::SetEnable),
    (0x0180, BitReg::ClearEnable),
    (0x0200, BitReg::SetPend),
    (0x0280, BitReg::ClearPend),
    (0x0300, BitReg::SetActive),
    (0x0380, BitReg::ClearActive),
];

/// Decodes a distributor access (already checked aligned and 1/2/4/8 bytes wide).
pub(crate) fn decode(off: u64, width: u8) -> Option<Reg> {
    let word = width == 4;
    match off {
        0x0000 if word => Some(Reg::DistCtlr),
        0x0004 if word => Some(Reg::Const(u64::from(GICD_TYPER))),
        0x0008 if word => Some(Reg::Const(u64::from(GIC_IIDR))),
        // TYPER2 (no extended features), STATUSR, and the message-based SPI registers (no
        // MBIS): all RAZ/WI.
        0x000C | 0x0010 if word => Some(Reg::Raz),
        0x0040..=0x005C if word => Some(Reg::Raz),
        0x0080..=0x03FF if word => {
            let (base, kind) = BIT_BANKS
                .iter()
                .copied()
                .find(|&(b, _)| off >= b && off < b + 0x80)?;
            let first = ((off - base) / 4 * 32) as u32;
            Some(spi_only(
                first,
                32,
                Reg::Bits {
                    kind,
                    vcpu: 0,
                    first,
                },
            ))
        }
        0x0400..=0x07FF if word || width == 1 => {
            let intid = (off - 0x0400) as u32;
            Some(spi_only(
                intid,
                u32::from(width),
                Reg::Prio {
                    vcpu: 0,
                    intid,
                    len: width,
                },
            ))
        }
        // ITARGETSR (ignored with ARE), IGRPMODR and NSACR (RAZ/WI with DS = 1), SGIR and the
        // SGI pending registers (ignored with ARE).
        0x0800..=0x0BFF if word || width == 1 => Some(Reg::Raz),
        0x0D00..=0x0EFF | 0x0F00 | 0x0F10..=0x0F2F if word => Some(Reg::Raz),
        0x0F10..=0x0F2F if width == 1 => Some(Reg::Raz),
        0x0C00..=0x0CFF if word => {
            let first = ((off - 0x0C00) / 4 * 16) as u32;
            Some(spi_only(first, 16, Reg::Cfg { vcpu: 0, first }))
        }
        0x6000..=0x7FDF if width == 8 || word => {
            let intid = ((off - 0x6000) / 8) as u32;
            let (shift, mask) = match (width, off % 8) {
                (8, _) => (0, u64::MAX),
                (_, 0) => (0, 0xFFFF_FFFF),
                _ => (32, 0xFFFF_FFFF_0000_0000),
            };
            Some(spi_only(intid, 1, Reg::Router { intid, shift, mask }))
        }
        PIDR2_OFFSET if word => Some(Reg::Const(u64::from(GIC_PIDR2))),
        o if ID_BLOCK.contains(&o) && word => Some(Reg::Raz),
        _ => None,
    }
}

/// `reg` if INTIDs `first .. first + count` are all implemented SPIs, else RAZ/WI.
fn spi_only(first: u32, count: u32, reg: Reg) -> Reg {
    if first >= FIRST_SPI && first + count <= NR_IRQS as u32 {
        reg
    } else {
        Reg::Raz
    }
}
