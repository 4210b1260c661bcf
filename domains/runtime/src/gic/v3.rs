//! GICv3: the emulated distributor and redistributors (32-bit MMIO accesses only) plus the
//! system-register CPU interface, all in group 1.

use super::gicd;
#[cfg(not(feature = "native"))]
use protocol::layout::GUEST_GICR_BASE;
use protocol::layout::GUEST_GICR_STRIDE;

/// GICD_CTLR value: ARE_NS | EnableGrp1NS.
pub const GICD_CTLR_VALUE: u32 = 0x12;
/// GICR_WAKER (RD frame).
pub const GICR_WAKER: u64 = 0x14;
/// GICR_WAKER.ProcessorSleep.
pub const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
/// GICR_WAKER.ChildrenAsleep.
pub const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// GICR_IGROUPR0 (SGI frame).
pub const GICR_IGROUPR0: u64 = 0x80;
/// GICR_ISENABLER0 (SGI frame).
pub const GICR_ISENABLER0: u64 = 0x100;
/// GICR_ICENABLER0 (SGI frame).
pub const GICR_ICENABLER0: u64 = 0x180;
/// `GICD_IROUTER<n>`.
pub const GICD_IROUTER: u64 = 0x6000;

#[cfg(not(feature = "native"))]
const GICR: u64 = GUEST_GICR_BASE.as_u64();
#[cfg(feature = "native")]
const GICR: u64 = crate::board::GICR_BASE;

/// Redistributor RD-frame register address of `vcpu`.
pub const fn gicr_rd(vcpu: usize, offset: u64) -> u64 {
    GICR + vcpu as u64 * GUEST_GICR_STRIDE + offset
}

/// Redistributor SGI-frame register address of `vcpu`.
pub const fn gicr_sgi(vcpu: usize, offset: u64) -> u64 {
    gicr_rd(vcpu, 0x1_0000 + offset)
}

/// Distributor address of SPI `intid`'s `GICD_IROUTER` (a 64-bit register, written as two
/// 32-bit halves).
pub const fn irouter(intid: u32) -> u64 {
    gicd(GICD_IROUTER + 8 * intid as u64)
}

/// The ICC_SGI1R_EL1 value sending SGI `intid` to vCPU `target` (Aff1..3 = 0), or `None`
/// if `intid` is not an SGI or `target` is beyond the 16-entry target list.
pub const fn sgi1r(intid: u32, target: usize) -> Option<u64> {
    if intid >= 16 || target >= 16 {
        return None;
    }
    Some(((intid as u64) << 24) | (1 << target))
}

#[cfg(target_os = "none")]
pub(super) use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use super::*;
    use crate::arch::{self, gic_read32, gic_write32};
    use crate::gic::GICD_CTLR;
    use crate::gic::{hw::spi_set_enable, hw::spi_set_priority, priority_word, Acked};

    pub fn init_distributor() {
        gic_write32(gicd(GICD_CTLR), GICD_CTLR_VALUE);
    }

    /// Wakes the calling vCPU's redistributor, puts its SGIs/PPIs in group 1 and enables
    /// the CPU interface.
    pub fn init_cpu() {
        let v = crate::smp::current_vcpu();
        let waker = gic_read32(gicr_rd(v, GICR_WAKER));
        gic_write32(gicr_rd(v, GICR_WAKER), waker & !WAKER_PROCESSOR_SLEEP);
        for _ in 0..1_000_000 {
            if gic_read32(gicr_rd(v, GICR_WAKER)) & WAKER_CHILDREN_ASLEEP == 0 {
                break;
            }
        }
        gic_write32(gicr_sgi(v, GICR_IGROUPR0), 0xFFFF_FFFF);
        arch::set_icc_sre(arch::icc_sre() | 1);
        arch::isb();
        arch::set_icc_pmr(0xFF);
        arch::set_icc_bpr1(0);
        // EOImode 0: writing EOIR both drops priority and deactivates.
        arch::set_icc_ctlr(arch::icc_ctlr() & !(1 << 1));
        arch::set_icc_igrpen1(1);
        arch::isb();
    }

    pub fn enable(intid: u32) {
        let v = crate::smp::current_vcpu();
        let (off, _) = priority_word(intid, 0);
        let (_, word) = priority_word(intid, gic_read32(gicr_sgi(v, off)));
        gic_write32(gicr_sgi(v, off), word);
        gic_write32(gicr_sgi(v, GICR_ISENABLER0), 1 << intid);
    }

    pub fn disable(intid: u32) {
        gic_write32(
            gicr_sgi(crate::smp::current_vcpu(), GICR_ICENABLER0),
            1 << intid,
        );
    }

    /// Routes SPI `intid` to Aff0.Aff1.Aff2.Aff3 = 0, that is vCPU 0.
    pub fn enable_spi(intid: u32) {
        spi_set_priority(intid);
        gic_write32(irouter(intid), 0);
        gic_write32(irouter(intid) + 4, 0);
        spi_set_enable(intid);
    }

    pub fn send_sgi(intid: u32, target: usize) {
        let v = sgi1r(intid, target).expect("SGI intid < 16 and target < 16");
        arch::set_icc_sgi1r(v);
        arch::isb();
    }

    pub fn ack() -> Option<Acked> {
        Acked::from_icc_iar1(arch::icc_iar1())
    }

    pub fn eoi(irq: Acked) {
        arch::set_icc_eoir1(u64::from(irq.eoi_value()));
    }
}

#[cfg(all(test, not(feature = "native")))]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(gicd(0), 0x0300_1000);
        assert_eq!(gicr_rd(0, GICR_WAKER), 0x0302_0014);
        assert_eq!(
            gicr_sgi(1, GICR_ISENABLER0),
            0x0302_0000 + 0x2_0000 + 0x1_0100
        );
        assert_eq!(irouter(32), 0x0300_1000 + 0x6100);
    }

    #[test]
    fn sgi_values() {
        assert_eq!(sgi1r(1, 0), Some(0x0100_0001));
        assert_eq!(sgi1r(15, 3), Some(0x0F00_0008));
        assert_eq!(sgi1r(16, 0), None);
        assert_eq!(sgi1r(1, 16), None);
    }
}
