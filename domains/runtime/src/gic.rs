//! Guest driver for the emulated GICv3: distributor and redistributor MMIO (32-bit
//! accesses only) plus the system-register CPU interface.
//!
//! Everything runs in group 1 at one priority ([`PRIORITY`]); the priority mask lets all of
//! it through. Only SGIs and PPIs (INTID < 32) are configured here: they live in each vCPU's
//! own redistributor, so [`init_cpu`] and [`enable`] act on the calling vCPU.

use protocol::layout::GUEST_GICR_STRIDE;
#[cfg(not(feature = "native"))]
use protocol::layout::{GUEST_GICD_BASE, GUEST_GICR_BASE};

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
/// GICR_IPRIORITYR0 (SGI frame), one byte per INTID.
pub const GICR_IPRIORITYR: u64 = 0x400;
/// Priority of every interrupt we configure.
pub const PRIORITY: u8 = 0xA0;
/// `GICD_ISENABLER<n>`.
pub const GICD_ISENABLER: u64 = 0x100;
/// `GICD_ICENABLER<n>`.
pub const GICD_ICENABLER: u64 = 0x180;
/// `GICD_IROUTER<n>`.
pub const GICD_IROUTER: u64 = 0x6000;
/// INTIDs at and above this are special (1023 = spurious).
pub const SPECIAL_INTID: u32 = 1020;

#[cfg(not(feature = "native"))]
const GICD: u64 = GUEST_GICD_BASE.as_u64();
#[cfg(not(feature = "native"))]
const GICR: u64 = GUEST_GICR_BASE.as_u64();
#[cfg(feature = "native")]
const GICD: u64 = crate::board::GICD_BASE;
#[cfg(feature = "native")]
const GICR: u64 = crate::board::GICR_BASE;

/// Distributor register address.
pub const fn gicd(offset: u64) -> u64 {
    GICD + offset
}

/// Redistributor RD-frame register address of `vcpu`.
pub const fn gicr_rd(vcpu: usize, offset: u64) -> u64 {
    GICR + vcpu as u64 * GUEST_GICR_STRIDE + offset
}

/// Redistributor SGI-frame register address of `vcpu`.
pub const fn gicr_sgi(vcpu: usize, offset: u64) -> u64 {
    gicr_rd(vcpu, 0x1_0000 + offset)
}

/// The ICC_SGI1R_EL1 value sending SGI `intid` to vCPU `target` (Aff1..3 = 0), or `None`
/// if `intid` is not an SGI or `target` is beyond the 16-entry target list.
pub const fn sgi1r(intid: u32, target: usize) -> Option<u64> {
    if intid >= 16 || target >= 16 {
        return None;
    }
    Some(((intid as u64) << 24) | (1 << target))
}

/// The 32-bit IPRIORITYR word covering `intid` with its byte set to [`PRIORITY`], given
/// the word's old value: (byte offset of the word, new value).
pub const fn priority_word(intid: u32, old: u32) -> (u64, u32) {
    let shift = (intid % 4) * 8;
    let word = GICR_IPRIORITYR + (intid as u64 / 4) * 4;
    (
        word,
        (old & !(0xFF << shift)) | ((PRIORITY as u32) << shift),
    )
}

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use super::*;
    use crate::arch::{self, gic_read32, gic_write32};

    /// Enables the distributor (once per domain, from any vCPU).
    pub fn init_distributor() {
        gic_write32(gicd(0), GICD_CTLR_VALUE);
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

    /// Sets the priority of and enables SGI/PPI `intid` (< 32) on the calling vCPU.
    pub fn enable(intid: u32) {
        assert!(intid < 32, "only SGIs and PPIs are configured per vCPU");
        let v = crate::smp::current_vcpu();
        let (off, _) = priority_word(intid, 0);
        let (_, word) = priority_word(intid, gic_read32(gicr_sgi(v, off)));
        gic_write32(gicr_sgi(v, off), word);
        gic_write32(gicr_sgi(v, GICR_ISENABLER0), 1 << intid);
    }

    /// Sets the priority of, routes to vCPU 0 and enables SPI `intid` (a passed-through
    /// device's interrupt). Out-of-range ids are ignored.
    pub fn enable_spi(intid: u32) {
        if !(32..1020).contains(&intid) {
            return;
        }
        let (off, _) = priority_word(intid, 0);
        // The IPRIORITYR offset is the same in the distributor as in the SGI frame.
        let (_, word) = priority_word(intid, gic_read32(gicd(off)));
        gic_write32(gicd(off), word);
        let irouter = GICD_IROUTER + 8 * u64::from(intid);
        gic_write32(gicd(irouter), 0);
        gic_write32(gicd(irouter + 4), 0);
        gic_write32(
            gicd(GICD_ISENABLER + 4 * u64::from(intid / 32)),
            1 << (intid % 32),
        );
    }

    /// Unmasks SPI `intid` that [`enable_spi`] set up and [`disable_spi`] masked: one
    /// distributor write (each is a trap to the microvisor), for a loop that unmasks after
    /// every service.
    pub fn unmask_spi(intid: u32) {
        if (32..1020).contains(&intid) {
            gic_write32(
                gicd(GICD_ISENABLER + 4 * u64::from(intid / 32)),
                1 << (intid % 32),
            );
        }
    }

    /// Masks SPI `intid` at the distributor (a threaded handler masks a level-triggered
    /// device interrupt until the device has been serviced outside interrupt context).
    pub fn disable_spi(intid: u32) {
        if (32..1020).contains(&intid) {
            gic_write32(
                gicd(GICD_ICENABLER + 4 * u64::from(intid / 32)),
                1 << (intid % 32),
            );
        }
    }

    /// Disables SGI/PPI `intid` (< 32) on the calling vCPU.
    pub fn disable(intid: u32) {
        assert!(intid < 32, "only SGIs and PPIs are configured per vCPU");
        gic_write32(
            gicr_sgi(crate::smp::current_vcpu(), GICR_ICENABLER0),
            1 << intid,
        );
    }

    /// Sends SGI `intid` to vCPU `target`. Panics on an out-of-range argument.
    pub fn send_sgi(intid: u32, target: usize) {
        let v = sgi1r(intid, target).expect("SGI intid < 16 and target < 16");
        arch::set_icc_sgi1r(v);
        arch::isb();
    }

    /// Acknowledges the highest-priority pending interrupt; `None` if spurious.
    pub fn ack() -> Option<u32> {
        let intid = (arch::icc_iar1() & 0xFF_FFFF) as u32;
        (intid < SPECIAL_INTID).then_some(intid)
    }

    /// Ends (and, with EOImode 0, deactivates) `intid`.
    pub fn eoi(intid: u32) {
        arch::set_icc_eoir1(u64::from(intid));
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
    }

    #[test]
    fn sgi_values() {
        assert_eq!(sgi1r(1, 0), Some(0x0100_0001));
        assert_eq!(sgi1r(15, 3), Some(0x0F00_0008));
        assert_eq!(sgi1r(16, 0), None);
        assert_eq!(sgi1r(1, 16), None);
    }

    #[test]
    fn priorities() {
        assert_eq!(priority_word(27, 0xFFFF_FFFF), (0x418, 0xA0FF_FFFF));
        assert_eq!(priority_word(1, 0), (0x400, 0x0000_A000));
    }
}
