//! GICv2 (IHI 0048B): the emulated distributor at `GUEST_GICD_BASE` (4 KiB, banked
//! registers for INTID 0-31) and the host's virtual CPU interface (GICV) mapped at
//! `GUEST_GICV2_GICC_BASE`, both through 32-bit MMIO accesses.
//!
//! On a vGICv2, vCPU n is CPU interface n: an SPI targets bit n of its `GICD_ITARGETSR`
//! byte and an SGI names bit n of `GICD_SGIR`'s target list, so at most 8 vCPUs are
//! reachable.
//!
//! Groups: a hypervisor may present virtual interrupts as group 0 (what Xen and KVM do
//! for a GICv2 guest, which enables only group 0) or group 1. The CPU interface enables
//! both, signals group 0 as IRQ (FIQEn = 0) and sets AckCtl, so `GICC_IAR` acknowledges
//! and `GICC_EOIR` ends either group (with AckCtl = 0 a group-1 interrupt would read as
//! 1022 from `GICC_IAR`). The interrupt groups themselves (`GICD_IGROUPR`) are left as
//! the hypervisor presents them.

#[cfg(not(feature = "native"))]
use protocol::layout::GUEST_GICV2_GICC_BASE;

/// `GICD_CTLR` value: EnableGrp0 | EnableGrp1 (bit 0 alone is "Enable" for a non-secure
/// view; either way both groups are forwarded).
pub const GICD_CTLR_VALUE: u32 = 0x3;
/// `GICD_ITARGETSR<n>`, one byte per INTID (read-only for INTID 0-31).
pub const GICD_ITARGETSR: u64 = 0x800;
/// `GICD_SGIR`, write-only.
pub const GICD_SGIR: u64 = 0xF00;
/// `GICC_CTLR`.
pub const GICC_CTLR: u64 = 0x0;
/// `GICC_PMR`, the priority mask.
pub const GICC_PMR: u64 = 0x4;
/// `GICC_BPR`, the binary point.
pub const GICC_BPR: u64 = 0x8;
/// `GICC_IAR`, interrupt acknowledge.
pub const GICC_IAR: u64 = 0xC;
/// `GICC_EOIR`, end of interrupt.
pub const GICC_EOIR: u64 = 0x10;
/// `GICC_CTLR` value: EnableGrp0 | EnableGrp1 | AckCtl; FIQEn = 0 (group 0 is an IRQ),
/// CBPR = 0, EOImode = 0 (an `GICC_EOIR` write both drops priority and deactivates).
pub const GICC_CTLR_VALUE: u32 = 0x7;
/// Number of CPU interfaces a GICv2 can address.
pub const MAX_CPU_INTERFACES: usize = 8;

#[cfg(not(feature = "native"))]
const GICC: u64 = GUEST_GICV2_GICC_BASE.as_u64();
#[cfg(feature = "native")]
const GICC: u64 = crate::board::GICC_BASE;

/// CPU interface register address.
pub const fn gicc(offset: u64) -> u64 {
    GICC + offset
}

/// The `GICD_SGIR` value sending SGI `intid` to CPU interface (vCPU) `target` alone
/// (TargetListFilter = 0, "use the list"), or `None` if `intid` is not an SGI or `target`
/// is beyond the 8-bit target list.
pub const fn sgir(intid: u32, target: usize) -> Option<u32> {
    if intid >= 16 || target >= MAX_CPU_INTERFACES {
        return None;
    }
    Some((1 << (16 + target)) | intid)
}

/// The 32-bit `GICD_ITARGETSR` word covering SPI `intid` with its byte set to CPU
/// interface `cpu` alone, given the word's old value: (byte offset of the word, new
/// value). `None` for a non-SPI (whose targets are fixed) or a CPU beyond 8.
pub const fn targets_word(intid: u32, cpu: usize, old: u32) -> Option<(u64, u32)> {
    if !super::is_spi(intid) || cpu >= MAX_CPU_INTERFACES {
        return None;
    }
    let shift = (intid % 4) * 8;
    let word = GICD_ITARGETSR + (intid as u64 / 4) * 4;
    Some((word, (old & !(0xFF << shift)) | ((1 << cpu) << shift)))
}

#[cfg(target_os = "none")]
pub(super) use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use super::*;
    use crate::arch::{gic_read32, gic_write32};
    use crate::gic::{enable_bit, gicd, priority_word, Acked};
    use crate::gic::{hw::spi_set_enable, hw::spi_set_priority, GICD_CTLR};
    use crate::gic::{GICD_ICENABLER, GICD_ISENABLER};
    use core::sync::atomic::{fence, Ordering};

    pub fn init_distributor() {
        gic_write32(gicd(GICD_CTLR), GICD_CTLR_VALUE);
    }

    /// Opens the calling vCPU's CPU interface: every priority through, no preemption
    /// grouping, both groups enabled (see the module doc).
    pub fn init_cpu() {
        gic_write32(gicc(GICC_PMR), 0xFF);
        gic_write32(gicc(GICC_BPR), 0);
        gic_write32(gicc(GICC_CTLR), GICC_CTLR_VALUE);
    }

    /// SGI/PPI `intid` (< 32): the distributor banks their priority and enable registers
    /// per CPU interface, so these writes reach the calling vCPU's copies.
    pub fn enable(intid: u32) {
        let (off, _) = priority_word(intid, 0);
        let (_, word) = priority_word(intid, gic_read32(gicd(off)));
        gic_write32(gicd(off), word);
        let (off, bit) = enable_bit(GICD_ISENABLER, intid);
        gic_write32(gicd(off), bit);
    }

    pub fn disable(intid: u32) {
        let (off, bit) = enable_bit(GICD_ICENABLER, intid);
        gic_write32(gicd(off), bit);
    }

    /// Targets SPI `intid` at CPU interface 0, that is vCPU 0 (as the GICv3 path routes it).
    pub fn enable_spi(intid: u32) {
        spi_set_priority(intid);
        if let Some((off, _)) = targets_word(intid, 0, 0) {
            if let Some((_, word)) = targets_word(intid, 0, gic_read32(gicd(off))) {
                gic_write32(gicd(off), word);
            }
        }
        spi_set_enable(intid);
    }

    pub fn send_sgi(intid: u32, target: usize) {
        let v = sgir(intid, target).expect("SGI intid < 16 and target < 8");
        // The receiver reads what we wrote before the SGI once it has acknowledged it
        // (see `ack`): make those stores visible before the SGIR write.
        fence(Ordering::Release);
        gic_write32(gicd(GICD_SGIR), v);
    }

    pub fn ack() -> Option<Acked> {
        let irq = Acked::from_gicc_iar(gic_read32(gicc(GICC_IAR)));
        // Pairs with the fence in `send_sgi`: the handler's reads come after the ack.
        fence(Ordering::Acquire);
        irq
    }

    pub fn eoi(irq: Acked) {
        gic_write32(gicc(GICC_EOIR), irq.eoi_value());
    }
}

#[cfg(all(test, not(feature = "native")))]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(crate::gic::gicd(GICD_SGIR), 0x0300_1F00);
        assert_eq!(gicc(GICC_IAR), 0x0300_200C);
        assert_eq!(gicc(GICC_EOIR), 0x0300_2010);
    }

    #[test]
    fn sgi_values() {
        assert_eq!(sgir(1, 0), Some(0x0001_0001));
        assert_eq!(sgir(15, 7), Some(0x0080_000F));
        assert_eq!(sgir(0, 3), Some(0x0008_0000));
        assert_eq!(sgir(16, 0), None);
        assert_eq!(sgir(1, 8), None);
    }

    #[test]
    fn targets() {
        // SPI 32 is byte 0 of ITARGETSR8.
        assert_eq!(targets_word(32, 0, 0xFFFF_FFFF), Some((0x820, 0xFFFF_FF01)));
        // SPI 35 to CPU 2: byte 3 of the same word, other bytes kept.
        assert_eq!(targets_word(35, 2, 0x0102_0304), Some((0x820, 0x0402_0304)));
        assert_eq!(targets_word(1019, 7, 0), Some((0xBF8, 0x8000_0000)));
        assert_eq!(targets_word(31, 0, 0), None);
        assert_eq!(targets_word(1020, 0, 0), None);
        assert_eq!(targets_word(40, 8, 0), None);
    }
}
