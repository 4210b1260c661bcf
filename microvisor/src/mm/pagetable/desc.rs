//! Bit-level encodings for the table builder: descriptors of both stages and the register
//! values (`VTCR_EL2`, `TCR_EL2`, `MAIR_EL2`) under which hardware reads them. Kept apart so
//! the walk logic in the parent reads without bit masks.
#![forbid(unsafe_code)]

use super::{Attrs, MemType, Stage, ENTRIES, INPUT_BITS};

/// `MAIR_EL2` for [`Stage::El2Stage1`]: Attr0 = 0x04 Device-nGnRE (MMIO), Attr1 = 0xFF
/// Normal, inner and outer write-back read/write-allocate non-transient (RAM).
pub const MAIR_EL2_VALUE: u64 = 0x04 | (0xFF << 8);

// Translation-control fields shared by VTCR_EL2 and TCR_EL2 (same positions in both).
/// T0SZ\[5:0\]: size offset of the input region, 64 - 39.
const TCR_T0SZ: u64 = 64 - INPUT_BITS as u64;
/// IRGN0\[9:8\] = 0b01: table walks are inner write-back read/write-allocate cacheable.
const TCR_IRGN0_WBWA: u64 = 0b01 << 8;
/// ORGN0\[11:10\] = 0b01: table walks are outer write-back read/write-allocate cacheable.
const TCR_ORGN0_WBWA: u64 = 0b01 << 10;
/// SH0\[13:12\] = 0b11: table walks are inner shareable.
const TCR_SH0_INNER: u64 = 0b11 << 12;
/// TG0\[15:14\] = 0b00: 4 KiB granule (the value is zero; named for the record).
const TCR_TG0_4K: u64 = 0;
/// PS\[18:16\] = 0b010: 40-bit output addresses ([`super::OUTPUT_BITS`]).
const TCR_PS_40_BITS: u64 = 0b010 << 16;
/// VTCR_EL2.SL0\[7:6\] = 0b01: with a 4 KiB granule, the stage-2 walk starts at level 1.
const VTCR_SL0_LEVEL1: u64 = 0b01 << 6;
/// Bit 31 is RES1 in VTCR_EL2 and in the non-VHE TCR_EL2.
const RES1_BIT31: u64 = 1 << 31;
/// Bit 23 is RES1 in the non-VHE TCR_EL2.
const TCR_RES1_BIT23: u64 = 1 << 23;

/// `VTCR_EL2` for these stage-2 tables, field by field:
/// - T0SZ\[5:0\] = 25: 39-bit IPA space;
/// - SL0\[7:6\] = 0b01: with a 4 KiB granule and T0SZ = 25 the walk starts at level 1,
///   with a single (not concatenated) root table;
/// - IRGN0\[9:8\] = 0b01, ORGN0\[11:10\] = 0b01: walks are write-back cacheable;
/// - SH0\[13:12\] = 0b11: walks are inner shareable;
/// - TG0\[15:14\] = 0b00: 4 KiB granule;
/// - PS\[18:16\] = 0b010: 40-bit output addresses;
/// - bit 31: RES1.
///
/// VMID size (VS, bit 19) stays 0: 8-bit VMIDs.
pub const VTCR_EL2_VALUE: u64 = TCR_T0SZ
    | VTCR_SL0_LEVEL1
    | TCR_IRGN0_WBWA
    | TCR_ORGN0_WBWA
    | TCR_SH0_INNER
    | TCR_TG0_4K
    | TCR_PS_40_BITS
    | RES1_BIT31;

/// `TCR_EL2` (non-VHE layout) for the EL2 stage-1 identity map, field by field:
/// - T0SZ\[5:0\] = 25: 39-bit VA space, so the walk starts at level 1;
/// - IRGN0\[9:8\] = 0b01, ORGN0\[11:10\] = 0b01: walks are write-back cacheable;
/// - SH0\[13:12\] = 0b11: walks are inner shareable;
/// - TG0\[15:14\] = 0b00: 4 KiB granule;
/// - PS\[18:16\] = 0b010: 40-bit physical addresses;
/// - bits 23 and 31: RES1.
pub const TCR_EL2_VALUE: u64 = TCR_T0SZ
    | TCR_IRGN0_WBWA
    | TCR_ORGN0_WBWA
    | TCR_SH0_INNER
    | TCR_TG0_4K
    | TCR_PS_40_BITS
    | TCR_RES1_BIT23
    | RES1_BIT31;

// Descriptor bits common to both stages (ARM ARM D8.3).
pub(super) const VALID: u64 = 1 << 0;
/// Table descriptor at levels 1-2, page descriptor at level 3.
pub(super) const TABLE_OR_PAGE: u64 = 1 << 1;
const AF: u64 = 1 << 10;
const SH_INNER: u64 = 0b11 << 8;
/// Output address bits \[47:12\]; blocks additionally clear the bits below their size.
pub(super) const OA_MASK: u64 = 0x0000_FFFF_FFFF_F000;

// Stage 2.
const S2_MEMATTR_SHIFT: u64 = 2;
const S2_MEMATTR_MASK: u64 = 0b1111 << S2_MEMATTR_SHIFT;
const S2_MEMATTR_NORMAL_WB: u64 = 0b1111 << S2_MEMATTR_SHIFT;
const S2_MEMATTR_DEVICE_NGNRE: u64 = 0b0001 << S2_MEMATTR_SHIFT;
/// With `HCR_EL2.FWB` set (FEAT_S2FWB), MemAttr 0b0110: Normal write-back whatever stage 1
/// says. Device-nGnRE keeps its encoding.
const S2_MEMATTR_FWB_NORMAL_WB: u64 = 0b0110 << S2_MEMATTR_SHIFT;
const S2AP_READ: u64 = 1 << 6;
const S2AP_WRITE: u64 = 1 << 7;
const S2_XN_MASK: u64 = 0b11 << 53;
const S2_XN_NEVER: u64 = 0b10 << 53;

// EL2 stage 1.
const S1_ATTRINDX_SHIFT: u64 = 2;
const S1_ATTRINDX_MASK: u64 = 0b111 << S1_ATTRINDX_SHIFT;
const S1_ATTR_DEVICE: u64 = 0 << S1_ATTRINDX_SHIFT;
const S1_ATTR_NORMAL: u64 = 1 << S1_ATTRINDX_SHIFT;
const S1_AP_RO: u64 = 0b10 << 6;
const S1_XN: u64 = 1 << 54;

/// Bytes one entry at `level` covers.
pub(super) const fn level_size(level: u8) -> u64 {
    1 << level_shift(level)
}

const fn level_shift(level: u8) -> u32 {
    12 + 9 * (3 - level as u32)
}

pub(super) const fn index_of(input: u64, level: u8) -> usize {
    ((input >> level_shift(level)) as usize) & (ENTRIES - 1)
}

pub(super) const fn is_table(desc: u64, level: u8) -> bool {
    level < 3 && desc & (VALID | TABLE_OR_PAGE) == VALID | TABLE_OR_PAGE
}

/// A valid leaf: a block at levels 1-2, a page at level 3 (0b01 there is reserved).
pub(super) const fn is_leaf(desc: u64, level: u8) -> bool {
    if level == 3 {
        desc & (VALID | TABLE_OR_PAGE) == VALID | TABLE_OR_PAGE
    } else {
        desc & (VALID | TABLE_OR_PAGE) == VALID
    }
}

/// A stage-2 table's encoding of normal (write-back) memory.
fn s2_normal(stage: Stage) -> u64 {
    if stage == Stage::Stage2ForcedWb {
        S2_MEMATTR_FWB_NORMAL_WB
    } else {
        S2_MEMATTR_NORMAL_WB
    }
}

/// Leaf descriptor bits for `a` in `stage`, other than the address and the type bits.
pub(super) fn encode_leaf(stage: Stage, a: Attrs) -> u64 {
    let mut d = AF;
    match stage {
        Stage::Stage2 | Stage::Stage2ForcedWb => {
            d |= match a.mem {
                MemType::Normal => s2_normal(stage) | SH_INNER,
                MemType::Device => S2_MEMATTR_DEVICE_NGNRE,
            };
            if a.read {
                d |= S2AP_READ;
            }
            if a.write {
                d |= S2AP_WRITE;
            }
            if !a.exec {
                d |= S2_XN_NEVER;
            }
        }
        Stage::El2Stage1 => {
            d |= match a.mem {
                MemType::Normal => S1_ATTR_NORMAL | SH_INNER,
                MemType::Device => S1_ATTR_DEVICE,
            };
            if !a.write {
                d |= S1_AP_RO;
            }
            if !a.exec {
                d |= S1_XN;
            }
        }
    }
    d
}

/// The attributes a leaf descriptor of `stage` grants.
pub(super) fn decode_leaf(stage: Stage, d: u64) -> Attrs {
    match stage {
        Stage::Stage2 | Stage::Stage2ForcedWb => Attrs {
            mem: if d & S2_MEMATTR_MASK == s2_normal(stage) {
                MemType::Normal
            } else {
                MemType::Device
            },
            read: d & S2AP_READ != 0,
            write: d & S2AP_WRITE != 0,
            exec: d & S2_XN_MASK == 0,
        },
        Stage::El2Stage1 => Attrs {
            mem: if d & S1_ATTRINDX_MASK == S1_ATTR_NORMAL {
                MemType::Normal
            } else {
                MemType::Device
            },
            read: true,
            write: d & S1_AP_RO == 0,
            exec: d & S1_XN == 0,
        },
    }
}
