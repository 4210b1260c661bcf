//! The guest-physical memory map every domain sees. It follows Xen's public `arch-arm.h`
//! so guests built for Xen on ARM run unchanged.

use crate::addr::GuestPhysAddr;

/// Base of guest RAM (Xen's GUEST_RAM0_BASE).
pub const GUEST_RAM_BASE: GuestPhysAddr = GuestPhysAddr::new(0x4000_0000);
/// Largest RAM bank a guest can have here (Xen's GUEST_RAM0_SIZE).
pub const GUEST_RAM_MAX: u64 = 0xC000_0000;
/// Emulated GICv3 distributor (Xen's GUEST_GICV3_GICD_BASE).
pub const GUEST_GICD_BASE: GuestPhysAddr = GuestPhysAddr::new(0x0300_1000);
/// Size of the distributor frame.
pub const GUEST_GICD_SIZE: u64 = 0x1_0000;
/// Size of the emulated GICv2 distributor frame (Xen's GUEST_GICD_SIZE for a vGICv2).
pub const GUEST_GICV2_GICD_SIZE: u64 = 0x1000;
/// Where a domain on a GICv2 host finds its CPU interface: the host's GICV frame, mapped
/// by stage 2 (Xen's GUEST_GICC_BASE).
pub const GUEST_GICV2_GICC_BASE: GuestPhysAddr = GuestPhysAddr::new(0x0300_2000);
/// Size of the GICv2 CPU interface (two 4 KiB pages; Xen's GUEST_GICC_SIZE).
pub const GUEST_GICV2_GICC_SIZE: u64 = 0x2000;
/// First emulated redistributor (Xen's GUEST_GICV3_RDIST_BASE).
pub const GUEST_GICR_BASE: GuestPhysAddr = GuestPhysAddr::new(0x0302_0000);
/// Bytes per redistributor (RD frame + SGI frame).
pub const GUEST_GICR_STRIDE: u64 = 0x2_0000;
/// Size of the whole redistributor region (Xen's GUEST_GICV3_RDIST_SIZE).
pub const GUEST_GICR_SIZE: u64 = 0x100_0000;
/// Grant-table window (Xen's GUEST_GNTTAB_BASE).
pub const GUEST_GNTTAB_BASE: GuestPhysAddr = GuestPhysAddr::new(0x3800_0000);
/// Magic pages: xenstore, console (Xen's GUEST_MAGIC_BASE).
pub const GUEST_MAGIC_BASE: GuestPhysAddr = GuestPhysAddr::new(0x3900_0000);
/// Where our Rust domains map pages granted to them (one 4 KiB slot per mapping, up to
/// 1 GiB): above any RAM they have (their RAM must stay below this), inside the range the
/// runtime's stage 1 maps as Normal memory. Not part of Xen's map: Linux picks its own.
pub const PV_MAP_BASE: GuestPhysAddr = GuestPhysAddr::new(0xC000_0000);
/// Virtual timer PPI.
pub const VTIMER_PPI: u32 = 27;
/// Event-channel upcall PPI.
pub const EVTCHN_PPI: u32 = 31;
/// Phandle of the guest's interrupt controller in a Linux guest's device tree (Xen's
/// `GUEST_PHANDLE_GIC`): a partial device tree's nodes name it as `interrupt-parent`.
pub const GUEST_PHANDLE_GIC: u32 = 65000;
/// SPIs each emulated distributor exposes (INTIDs 32 .. 32 + GUEST_SPIS).
pub const GUEST_SPIS: u32 = 64;
/// Most vCPUs one domain can have.
pub const MAX_VCPUS: usize = 8;
/// PPI the microvisor raises on a controller (dom0) when a child domain changes state
/// (see `CapOp::DomainEvents`). Unused by Xen's guest ABI.
pub const CONTROL_EVENT_PPI: u32 = 22;
/// PPI the microvisor raises on a domain asked to shut down (see `CapOp::DomainShutdown`).
/// Unused by Xen's guest ABI.
pub const SHUTDOWN_PPI: u32 = 21;

/// The interrupt controller architecture a domain sees. It is the host's: a GICv3 host gives
/// every domain a virtual GICv3 (distributor and redistributors emulated, system-register
/// CPU interface); a GICv2 host (GIC-400) a virtual GICv2 (distributor emulated at
/// [`GUEST_GICD_BASE`], the hardware GICV frame as CPU interface at
/// [`GUEST_GICV2_GICC_BASE`]). A domain learns which from `ID_AA64PFR0_EL1.GIC` (bits
/// [27:24]): the microvisor shows 0 ("no system-register interface") on a vGICv2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GicVersion {
    /// GICv2: memory-mapped CPU interface.
    V2,
    /// GICv3: system-register CPU interface, affinity routing.
    V3,
}
