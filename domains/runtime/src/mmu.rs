//! The runtime's stage-1 translation: a constant identity map of the low 4 GiB.
//!
//! One level-1 table with four 1 GiB blocks (TTBR0_EL1, T0SZ = 32, 4 KiB granule, walks start
//! at level 1): `[0, 1G)` holds the emulated GIC and any passthrough MMIO and is
//! Device-nGnRE, never executable; `[1G, 4G)` is guest RAM and is Normal write-back, inner
//! shareable. Everything is EL1 read/write. The table is computed at compile time, so the
//! boot code only points TTBR0_EL1 at it. Without the MMU every access would be Device
//! memory, which faults on unaligned accesses and breaks exclusives.

/// MAIR_EL1: attribute 0 = Device-nGnRE (0x04), attribute 1 = Normal WB RA/WA (0xFF).
pub const MAIR: u64 = 0x04 | (0xFF << 8);

/// TCR_EL1: T0SZ = 32, IRGN0/ORGN0 = WB-WA, SH0 = inner, TG0 = 4 KiB, EPD1 (no TTBR1
/// walks), IPS = 32 bits.
pub const TCR: u64 = 32 | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) | (1 << 23);

/// SCTLR_EL1 bits the boot code sets: M (MMU), C (data cache), I (instruction cache).
pub const SCTLR_SET: u64 = (1 << 0) | (1 << 2) | (1 << 12);
/// SCTLR_EL1 bits the boot code clears: A (alignment checks), WXN.
pub const SCTLR_CLEAR: u64 = (1 << 1) | (1 << 19);

const BLOCK: u64 = 0b01;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const GIB: u64 = 1 << 30;

/// The level-1 block descriptor mapping 1 GiB block `index` onto itself.
pub const fn l1_block(index: u64) -> u64 {
    let out = index * GIB;
    if index == 0 {
        out | BLOCK | ATTR_DEVICE | AF | PXN | UXN
    } else {
        out | BLOCK | ATTR_NORMAL | SH_INNER | AF
    }
}

/// The whole level-1 table (512 entries, only the first four valid).
pub const fn identity_l1() -> [u64; 512] {
    let mut t = [0u64; 512];
    let mut i = 0;
    while i < 4 {
        t[i] = l1_block(i as u64);
        i += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors() {
        let t = identity_l1();
        assert_eq!(t[0], 0x0060_0000_0000_0401);
        assert_eq!(t[1], 0x4000_0705);
        assert_eq!(t[3], 0xC000_0705);
        assert!(t[4..].iter().all(|&d| d == 0));
    }

    #[test]
    fn control_values() {
        assert_eq!(MAIR, 0xFF04);
        assert_eq!(TCR, 0x80_3520);
        // The boot code loads TCR with one movz + one movk.
        const { assert!(TCR < 1 << 32) };
    }
}
