//! Guest driver for the domain's interrupt controller, GICv3 or GICv2 behind one API.
//!
//! A domain sees the host's GIC architecture (`protocol::layout::GicVersion`): on a GICv3
//! host an emulated distributor and redistributors plus the system-register CPU interface
//! ([`v3`]); on a GICv2 host (GIC-400) an emulated GICv2 distributor plus the hardware
//! virtual CPU interface mapped as MMIO ([`v2`]). Which one is read once from
//! `ID_AA64PFR0_EL1.GIC` ([`version`]) and cached; every entry point below dispatches on it.
//!
//! Everything runs at one priority ([`PRIORITY`]); the priority mask lets all of it through,
//! and EOImode is 0 on both, so [`eoi`] both drops the priority and deactivates. SGIs and
//! PPIs (INTID < 32) are banked per vCPU, so [`init_cpu`], [`enable`] and [`disable`] act on
//! the calling vCPU; SPIs (passed-through devices) are routed to vCPU 0.

use protocol::layout::GicVersion;
#[cfg(not(feature = "native"))]
use protocol::layout::GUEST_GICD_BASE;

pub mod v2;
pub mod v3;

/// Priority of every interrupt we configure.
pub const PRIORITY: u8 = 0xA0;
/// INTIDs at and above this are special (1022 = group-1 not acknowledged, 1023 = spurious).
pub const SPECIAL_INTID: u32 = 1020;
/// Offset of `IPRIORITYR0`, the same in a GICv3 SGI frame and in either distributor.
pub const IPRIORITYR: u64 = 0x400;
/// First SPI.
pub const FIRST_SPI: u32 = 32;
/// `GICD_CTLR`, the same offset in both distributors.
pub const GICD_CTLR: u64 = 0;
/// `GICD_ISENABLER<n>`, the same offset in both distributors (and a GICv3 SGI frame).
pub const GICD_ISENABLER: u64 = 0x100;
/// `GICD_ICENABLER<n>`, likewise.
pub const GICD_ICENABLER: u64 = 0x180;

/// Both distributors (GICv3 and GICv2) sit at the same guest address.
#[cfg(not(feature = "native"))]
const GICD: u64 = GUEST_GICD_BASE.as_u64();
#[cfg(feature = "native")]
const GICD: u64 = crate::board::GICD_BASE;

/// Distributor register address.
pub const fn gicd(offset: u64) -> u64 {
    GICD + offset
}

/// The GIC architecture that `ID_AA64PFR0_EL1` (its GIC field, bits [27:24]) announces:
/// nonzero is a GICv3 (or v4) system-register CPU interface, zero none, that is a GICv2
/// with a memory-mapped CPU interface.
pub const fn version_from_pfr0(pfr0: u64) -> GicVersion {
    if (pfr0 >> 24) & 0xF != 0 {
        GicVersion::V3
    } else {
        GicVersion::V2
    }
}

/// The 32-bit IPRIORITYR word covering `intid` with its byte set to [`PRIORITY`], given
/// the word's old value: (byte offset of the word from the frame, new value).
pub const fn priority_word(intid: u32, old: u32) -> (u64, u32) {
    let shift = (intid % 4) * 8;
    let word = IPRIORITYR + (intid as u64 / 4) * 4;
    (
        word,
        (old & !(0xFF << shift)) | ((PRIORITY as u32) << shift),
    )
}

/// The set/clear-enable word and bit of `intid`, given the offset of the register array
/// (`ISENABLER` or `ICENABLER`): (byte offset of the word, bit to write).
pub const fn enable_bit(array: u64, intid: u32) -> (u64, u32) {
    (array + 4 * (intid as u64 / 32), 1 << (intid % 32))
}

/// Whether `intid` is an SPI the driver may configure.
pub const fn is_spi(intid: u32) -> bool {
    intid >= FIRST_SPI && intid < SPECIAL_INTID
}

/// An acknowledged interrupt: its INTID, plus what must be written back to end it (on a
/// GICv2 the whole IAR value, whose CPUID field names an SGI's sender).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acked {
    intid: u32,
    eoi_value: u32,
}

impl Acked {
    /// Decodes an `ICC_IAR1_EL1` value (INTID in bits [23:0]); `None` if special.
    pub const fn from_icc_iar1(iar: u64) -> Option<Self> {
        let intid = (iar & 0xFF_FFFF) as u32;
        if intid < SPECIAL_INTID {
            Some(Self {
                intid,
                eoi_value: intid,
            })
        } else {
            None
        }
    }

    /// Decodes a `GICC_IAR` value (INTID in bits [9:0], an SGI's source CPU in [12:10]);
    /// `None` if special. The whole value is kept for `GICC_EOIR`.
    pub const fn from_gicc_iar(iar: u32) -> Option<Self> {
        let intid = iar & 0x3FF;
        if intid < SPECIAL_INTID {
            Some(Self {
                intid,
                eoi_value: iar,
            })
        } else {
            None
        }
    }

    /// The interrupt's INTID.
    pub const fn intid(self) -> u32 {
        self.intid
    }

    /// The value the end-of-interrupt register takes for this interrupt.
    pub const fn eoi_value(self) -> u32 {
        self.eoi_value
    }
}

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use super::{enable_bit, gicd, priority_word, v2, v3, version_from_pfr0, Acked};
    use super::{GICD_ICENABLER, GICD_ISENABLER};
    use crate::arch::{gic_read32, gic_write32};
    use core::sync::atomic::{AtomicU8, Ordering};
    use protocol::layout::GicVersion;

    /// The detected version: 0 until the first [`version`] call, then 2 or 3.
    static VERSION: AtomicU8 = AtomicU8::new(0);

    /// The GIC this domain has. Read from `ID_AA64PFR0_EL1` on the first call (a trap to
    /// the microvisor under virtualisation) and cached: every vCPU of a domain sees the
    /// same value, so a race between two first calls stores the same answer twice. (The
    /// `native` build reads the real register: QEMU `virt` sets the field only when it
    /// has a GICv3.)
    pub fn version() -> GicVersion {
        match VERSION.load(Ordering::Relaxed) {
            2 => GicVersion::V2,
            3 => GicVersion::V3,
            _ => {
                let v = version_from_pfr0(crate::arch::id_aa64pfr0());
                VERSION.store(
                    match v {
                        GicVersion::V2 => 2,
                        GicVersion::V3 => 3,
                    },
                    Ordering::Relaxed,
                );
                v
            }
        }
    }

    /// Enables the distributor (once per domain, from any vCPU).
    pub fn init_distributor() {
        match version() {
            GicVersion::V2 => v2::init_distributor(),
            GicVersion::V3 => v3::init_distributor(),
        }
    }

    /// Prepares the calling vCPU's banked interrupts and enables its CPU interface.
    pub fn init_cpu() {
        match version() {
            GicVersion::V2 => v2::init_cpu(),
            GicVersion::V3 => v3::init_cpu(),
        }
    }

    /// Sets the priority of and enables SGI/PPI `intid` (< 32) on the calling vCPU.
    /// Panics on an SPI (a runtime or domain bug: SPIs go through [`enable_spi`]).
    pub fn enable(intid: u32) {
        assert!(intid < 32, "only SGIs and PPIs are configured per vCPU");
        match version() {
            GicVersion::V2 => v2::enable(intid),
            GicVersion::V3 => v3::enable(intid),
        }
    }

    /// Disables SGI/PPI `intid` (< 32) on the calling vCPU. Panics on an SPI.
    pub fn disable(intid: u32) {
        assert!(intid < 32, "only SGIs and PPIs are configured per vCPU");
        match version() {
            GicVersion::V2 => v2::disable(intid),
            GicVersion::V3 => v3::disable(intid),
        }
    }

    /// Sets the priority of, routes to vCPU 0 and enables SPI `intid` (a passed-through
    /// device's interrupt). Out-of-range ids are ignored.
    pub fn enable_spi(intid: u32) {
        if !super::is_spi(intid) {
            return;
        }
        match version() {
            GicVersion::V2 => v2::enable_spi(intid),
            GicVersion::V3 => v3::enable_spi(intid),
        }
    }

    /// Masks SPI `intid` at the distributor (a threaded handler masks a level-triggered
    /// device interrupt until the device has been serviced outside interrupt context).
    /// Out-of-range ids are ignored.
    pub fn disable_spi(intid: u32) {
        if super::is_spi(intid) {
            let (off, bit) = enable_bit(GICD_ICENABLER, intid);
            gic_write32(gicd(off), bit);
        }
    }

    /// Unmasks SPI `intid` that [`disable_spi`] masked: one distributor write, where
    /// [`enable_spi`] also sets its priority and routing again (four accesses more, each a
    /// trap to the microvisor). Out-of-range ids are ignored.
    pub fn unmask_spi(intid: u32) {
        if super::is_spi(intid) {
            spi_set_enable(intid);
        }
    }

    /// Sets SPI `intid`'s priority byte in the distributor (same layout in both versions).
    pub(super) fn spi_set_priority(intid: u32) {
        let (off, _) = priority_word(intid, 0);
        let (_, word) = priority_word(intid, gic_read32(gicd(off)));
        gic_write32(gicd(off), word);
    }

    /// Enables SPI `intid` at the distributor (same layout in both versions).
    pub(super) fn spi_set_enable(intid: u32) {
        let (off, bit) = enable_bit(GICD_ISENABLER, intid);
        gic_write32(gicd(off), bit);
    }

    /// Sends SGI `intid` to vCPU `target`. Panics on an out-of-range argument (intid ≥ 16,
    /// or a target beyond the 16 (GICv3) or 8 (GICv2) CPUs an SGI can name).
    pub fn send_sgi(intid: u32, target: usize) {
        match version() {
            GicVersion::V2 => v2::send_sgi(intid, target),
            GicVersion::V3 => v3::send_sgi(intid, target),
        }
    }

    /// Acknowledges the highest-priority pending interrupt; `None` if spurious.
    pub fn ack() -> Option<Acked> {
        match version() {
            GicVersion::V2 => v2::ack(),
            GicVersion::V3 => v3::ack(),
        }
    }

    /// Ends (and, with EOImode 0, deactivates) an interrupt [`ack`] returned.
    pub fn eoi(irq: Acked) {
        match version() {
            GicVersion::V2 => v2::eoi(irq),
            GicVersion::V3 => v3::eoi(irq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_field() {
        // QEMU's `max` CPU with a GICv3: GIC = 1 among other nonzero fields.
        assert_eq!(version_from_pfr0(0x1100_0000_0101_1111), GicVersion::V3);
        assert_eq!(version_from_pfr0(0x0300_0000), GicVersion::V3);
        // The same register with the GIC field cleared (a vGICv2).
        assert_eq!(version_from_pfr0(0x1100_0000_0001_1111), GicVersion::V2);
        assert_eq!(version_from_pfr0(0xF0FF_FFFF), GicVersion::V2);
    }

    #[test]
    fn priorities() {
        assert_eq!(priority_word(27, 0xFFFF_FFFF), (0x418, 0xA0FF_FFFF));
        assert_eq!(priority_word(1, 0), (0x400, 0x0000_A000));
        assert_eq!(priority_word(34, 0x1122_3344), (0x420, 0x11A0_3344));
    }

    #[test]
    fn enable_bits() {
        assert_eq!(enable_bit(0x100, 0), (0x100, 1));
        assert_eq!(enable_bit(0x100, 31), (0x100, 1 << 31));
        assert_eq!(enable_bit(0x180, 33), (0x184, 1 << 1));
        assert_eq!(enable_bit(0x100, 1019), (0x17C, 1 << 27));
    }

    #[test]
    fn spi_range() {
        assert!(!is_spi(31));
        assert!(is_spi(32));
        assert!(is_spi(1019));
        assert!(!is_spi(1020));
    }

    #[test]
    fn iar_v3() {
        let a = Acked::from_icc_iar1(27).unwrap();
        assert_eq!((a.intid(), a.eoi_value()), (27, 27));
        // Bits above INTID[23:0] are RES0 and not part of the INTID.
        assert_eq!(Acked::from_icc_iar1(0x1_0000_0021).unwrap().intid(), 33);
        assert_eq!(Acked::from_icc_iar1(1023), None);
        assert_eq!(Acked::from_icc_iar1(1020), None);
    }

    #[test]
    fn iar_v2_keeps_the_source_cpu() {
        // SGI 3 sent by CPU 5: CPUID in [12:10].
        let a = Acked::from_gicc_iar((5 << 10) | 3).unwrap();
        assert_eq!(a.intid(), 3);
        assert_eq!(a.eoi_value(), 0x1403);
        let b = Acked::from_gicc_iar(27).unwrap();
        assert_eq!((b.intid(), b.eoi_value()), (27, 27));
        assert_eq!(Acked::from_gicc_iar(1019).unwrap().intid(), 1019);
        // Spurious and "group 1, not acknowledged".
        assert_eq!(Acked::from_gicc_iar(1023), None);
        assert_eq!(Acked::from_gicc_iar(1022), None);
        // A spurious read with stray CPUID bits is still spurious.
        assert_eq!(Acked::from_gicc_iar((7 << 10) | 1023), None);
    }
}
