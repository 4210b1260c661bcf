//! The device tree a Linux guest boots with, describing it as a Xen on ARM DomU: the same
//! nodes, addresses and interrupts Xen's toolstack (libxl) gives a guest, so a stock arm64
//! kernel finds its GIC, timer, PSCI, RAM and the `hypervisor` node that turns on its Xen
//! drivers (event channels on PPI 31, grant table in the grant window).
//!
//! The GIC node describes the one the domain gets ([`GicVersion`]): a GICv3 (distributor and
//! one redistributor per vCPU), or a GICv2 as libxl describes it (`arm,cortex-a15-gic`,
//! distributor and CPU interface).
//!
//! Everything but RAM, vCPU count, GIC version, command line and initrd comes from
//! `protocol::layout`; the generator only validates its inputs and writes the tree.

use alloc::format;
use alloc::vec::Vec;

pub use protocol::layout::GicVersion;
use protocol::layout::{
    EVTCHN_PPI, GUEST_GICD_BASE, GUEST_GICD_SIZE, GUEST_GICR_BASE, GUEST_GICR_SIZE,
    GUEST_GICR_STRIDE, GUEST_GICV2_GICC_BASE, GUEST_GICV2_GICC_SIZE, GUEST_GICV2_GICD_SIZE,
    GUEST_GNTTAB_BASE, MAX_VCPUS, VTIMER_PPI,
};
use vm_fdt::FdtWriter;

/// Size of the grant-table window at `GUEST_GNTTAB_BASE` (Xen's `GUEST_GNTTAB_SIZE`:
/// 16 MiB, room for 4096 grant frames).
pub const GUEST_GNTTAB_SIZE: u64 = 0x0100_0000;
/// Phandle of the interrupt controller (Xen's `GUEST_PHANDLE_GIC`).
pub const GIC_PHANDLE: u32 = protocol::layout::GUEST_PHANDLE_GIC;
/// Secure physical timer PPI.
pub const TIMER_PHYS_S_PPI: u32 = 29;
/// Non-secure physical timer PPI.
pub const TIMER_PHYS_NS_PPI: u32 = 30;
/// EL2 (hypervisor) physical timer PPI.
pub const TIMER_HYP_PPI: u32 = 26;
/// Longest command line, terminator included (arm64 Linux's `COMMAND_LINE_SIZE`).
pub const MAX_BOOTARGS: usize = 2048;

/// Model string of the root node.
const MODEL: &str = "Bulkhead XENVM-4.17";
/// Root `compatible`: the Xen version the guest believes it runs on, then the generic one.
const ROOT_COMPAT: &[u8] = b"xen,xenvm-4.17\0xen,xenvm\0";
/// `hypervisor` node `compatible`; Linux reads the version from the first entry.
const XEN_COMPAT: &[u8] = b"xen,xen-4.17\0xen,xen\0";
const PSCI_COMPAT: &[u8] = b"arm,psci-1.0\0arm,psci-0.2\0";

/// GICv2 node `compatible`, as libxl writes it for a vGICv2.
const GICV2_COMPAT: &[u8] = b"arm,cortex-a15-gic\0arm,cortex-a9-gic\0";

/// First cell of a GIC interrupt specifier for a PPI.
const GIC_PPI: u32 = 1;
/// Trigger bits of the third cell: level-sensitive, active-low (the timers, as on Xen).
const LEVEL_LOW: u32 = 8;
/// Third cell on a GICv3, as Xen writes it: level-sensitive active-low, CPU mask 0xf (the
/// mask is a GICv2 notion; the GICv3 binding and driver ignore it).
const PPI_FLAGS_V3: u32 = (0xf << 8) | LEVEL_LOW;

/// What differs between one Linux guest and the next.
#[derive(Clone, Copy, Debug)]
pub struct GuestDtParams<'a> {
    /// Start of guest RAM (guest-physical).
    pub ram_base: u64,
    /// Bytes of guest RAM.
    pub ram_size: u64,
    /// Number of vCPUs; vCPU N is `cpu@N` with `reg = N` (its MPIDR Aff0).
    pub vcpus: u32,
    /// The GIC architecture the domain gets (the host's).
    pub gic: GicVersion,
    /// Kernel command line (`/chosen/bootargs`).
    pub bootargs: &'a str,
    /// `(start, end)` of the initrd, end exclusive, guest-physical, if there is one.
    pub initrd: Option<(u64, u64)>,
    /// A device-tree fragment whose root's children are added to the guest's root (xl
    /// `device_tree`, see [`crate::guest_dt_extra`]); empty for none.
    pub extra: &'a [u8],
    /// `/chosen/rng-seed` and `kaslr-seed` ([`crate::seeds`]); `None`: neither.
    pub seed: Option<crate::seeds::GuestSeed>,
}

/// Why a guest device tree could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GuestDtError {
    /// The vCPU count is zero or above `protocol::layout::MAX_VCPUS`.
    BadVcpuCount,
    /// Guest RAM is empty, wraps the address space, or overlaps the GIC or grant window.
    BadRam,
    /// The initrd is empty, reversed, or not inside guest RAM.
    BadInitrd,
    /// The command line contains a NUL byte.
    BootargsNul,
    /// The command line is longer than Linux accepts (`MAX_BOOTARGS - 1` bytes).
    BootargsTooLong,
    /// The device-tree fragment is malformed, too deep, or names a node the tree has.
    BadFragment,
    /// The FDT writer refused the tree: a bug in this generator, not in its inputs.
    Writer,
}

/// Builds the flattened device tree for one Linux guest.
pub fn build(p: &GuestDtParams<'_>) -> Result<Vec<u8>, GuestDtError> {
    validate(p)?;
    write(p)
}

impl From<vm_fdt::Error> for GuestDtError {
    fn from(_: vm_fdt::Error) -> Self {
        Self::Writer
    }
}

/// Whether `[a, a + a_len)` and `[b, b + b_len)` share a byte (no overflow: both ends exist).
fn overlaps(a: u64, a_len: u64, b: u64, b_len: u64) -> bool {
    a < b.saturating_add(b_len) && b < a.saturating_add(a_len)
}

fn validate(p: &GuestDtParams<'_>) -> Result<(), GuestDtError> {
    if p.vcpus == 0 || p.vcpus as usize > MAX_VCPUS {
        return Err(GuestDtError::BadVcpuCount);
    }
    let ram_end = p.ram_base.checked_add(p.ram_size);
    let devices = match p.gic {
        GicVersion::V3 => [
            (GUEST_GICD_BASE.as_u64(), GUEST_GICD_SIZE),
            (GUEST_GICR_BASE.as_u64(), GUEST_GICR_SIZE),
            (GUEST_GNTTAB_BASE.as_u64(), GUEST_GNTTAB_SIZE),
        ],
        GicVersion::V2 => [
            (GUEST_GICD_BASE.as_u64(), GUEST_GICV2_GICD_SIZE),
            (GUEST_GICV2_GICC_BASE.as_u64(), GUEST_GICV2_GICC_SIZE),
            (GUEST_GNTTAB_BASE.as_u64(), GUEST_GNTTAB_SIZE),
        ],
    };
    if p.ram_size == 0
        || ram_end.is_none()
        || devices
            .iter()
            .any(|&(base, size)| overlaps(p.ram_base, p.ram_size, base, size))
    {
        return Err(GuestDtError::BadRam);
    }
    if let Some((start, end)) = p.initrd {
        if start >= end || start < p.ram_base || Some(end) > ram_end {
            return Err(GuestDtError::BadInitrd);
        }
    }
    if p.bootargs.contains('\0') {
        return Err(GuestDtError::BootargsNul);
    }
    if p.bootargs.len() >= MAX_BOOTARGS {
        return Err(GuestDtError::BootargsTooLong);
    }
    if !p.extra.is_empty() && crate::guest_dt_extra::check(p.extra).is_err() {
        return Err(GuestDtError::BadFragment);
    }
    Ok(())
}

/// The third cell of a PPI's specifier in a tree for `p`. On a GICv2, bits [15:8] name the
/// CPU interfaces the PPI is wired to (the `arm,gic` binding): every vCPU. (libxl writes
/// 0xf whatever the vCPU count; Linux ignores the mask, so naming exactly the vCPUs there
/// are only matters to a reader following the binding.)
fn ppi_flags(p: &GuestDtParams<'_>) -> u32 {
    match p.gic {
        GicVersion::V3 => PPI_FLAGS_V3,
        GicVersion::V2 => {
            let cpus = (1u32 << p.vcpus.min(MAX_VCPUS as u32)) - 1;
            (cpus << 8) | LEVEL_LOW
        }
    }
}

/// A PPI as a three-cell GIC interrupt specifier (PPIs are numbered from INTID 16).
fn ppi(intid: u32, flags: u32) -> [u32; 3] {
    [GIC_PPI, intid - 16, flags]
}

fn write(p: &GuestDtParams<'_>) -> Result<Vec<u8>, GuestDtError> {
    let mut w = FdtWriter::new()?;
    let root = w.begin_node("")?;
    w.property_string("model", MODEL)?;
    w.property("compatible", ROOT_COMPAT)?;
    w.property_u32("interrupt-parent", GIC_PHANDLE)?;
    w.property_u32("#address-cells", 2)?;
    w.property_u32("#size-cells", 2)?;

    let chosen = w.begin_node("chosen")?;
    w.property_string("bootargs", p.bootargs)?;
    if let Some((start, end)) = p.initrd {
        w.property_u64("linux,initrd-start", start)?;
        w.property_u64("linux,initrd-end", end)?;
    }
    if let Some(seed) = p.seed {
        w.property("rng-seed", &seed.rng)?;
        w.property_u64("kaslr-seed", seed.kaslr)?;
    }
    w.end_node(chosen)?;

    let cpus = w.begin_node("cpus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 0)?;
    for n in 0..p.vcpus {
        let cpu = w.begin_node(&format!("cpu@{n:x}"))?;
        w.property_string("device_type", "cpu")?;
        w.property_string("compatible", "arm,armv8")?;
        w.property_u32("reg", n)?;
        w.property_string("enable-method", "psci")?;
        w.end_node(cpu)?;
    }
    w.end_node(cpus)?;

    let psci = w.begin_node("psci")?;
    w.property("compatible", PSCI_COMPAT)?;
    w.property_string("method", "hvc")?;
    w.end_node(psci)?;

    let memory = w.begin_node(&format!("memory@{:x}", p.ram_base))?;
    w.property_string("device_type", "memory")?;
    w.property_array_u64("reg", &[p.ram_base, p.ram_size])?;
    w.end_node(memory)?;

    match p.gic {
        GicVersion::V3 => write_gicv3(&mut w, p)?,
        GicVersion::V2 => write_gicv2(&mut w)?,
    }

    // Order fixed by the arm,armv8-timer binding: secure, non-secure, virtual, hypervisor.
    // Nodes with interrupts name their parent themselves too (as libxl does), for parsers
    // that do not inherit it from the root.
    let timer = w.begin_node("timer")?;
    w.property_string("compatible", "arm,armv8-timer")?;
    let mut irqs = Vec::with_capacity(12);
    for intid in [
        TIMER_PHYS_S_PPI,
        TIMER_PHYS_NS_PPI,
        VTIMER_PPI,
        TIMER_HYP_PPI,
    ] {
        irqs.extend_from_slice(&ppi(intid, ppi_flags(p)));
    }
    w.property_array_u32("interrupts", &irqs)?;
    w.property_u32("interrupt-parent", GIC_PHANDLE)?;
    w.end_node(timer)?;

    let hyp = w.begin_node("hypervisor")?;
    w.property("compatible", XEN_COMPAT)?;
    w.property_array_u64("reg", &[GUEST_GNTTAB_BASE.as_u64(), GUEST_GNTTAB_SIZE])?;
    w.property_array_u32("interrupts", &ppi(EVTCHN_PPI, ppi_flags(p)))?;
    w.property_u32("interrupt-parent", GIC_PHANDLE)?;
    w.end_node(hyp)?;

    if !p.extra.is_empty() {
        // Parsed by `validate`; a failure here is a name clash with the nodes above.
        let taken = [
            "chosen",
            "cpus",
            "psci",
            "memory",
            "interrupt-controller",
            "timer",
            "hypervisor",
        ];
        crate::guest_dt_extra::splice(&mut w, p.extra, &taken)
            .map_err(|_| GuestDtError::BadFragment)?;
    }
    w.end_node(root)?;
    Ok(w.finish()?)
}

/// The GICv3 node: distributor, then one redistributor region per vCPU.
fn write_gicv3(w: &mut FdtWriter, p: &GuestDtParams<'_>) -> Result<(), GuestDtError> {
    write_gic_node(
        w,
        b"arm,gic-v3\0",
        &[("#address-cells", 2), ("#size-cells", 2)],
        &[
            GUEST_GICD_BASE.as_u64(),
            GUEST_GICD_SIZE,
            GUEST_GICR_BASE.as_u64(),
            u64::from(p.vcpus) * GUEST_GICR_STRIDE,
        ],
    )
}

/// The GICv2 node as libxl writes it: the emulated distributor, then the CPU interface
/// (the host's GICV frame, mapped by stage 2). No child nodes, so `#address-cells` 0.
fn write_gicv2(w: &mut FdtWriter) -> Result<(), GuestDtError> {
    write_gic_node(
        w,
        GICV2_COMPAT,
        &[("#address-cells", 0)],
        &[
            GUEST_GICD_BASE.as_u64(),
            GUEST_GICV2_GICD_SIZE,
            GUEST_GICV2_GICC_BASE.as_u64(),
            GUEST_GICV2_GICC_SIZE,
        ],
    )
}

/// The interrupt-controller node both GIC versions share: `compatible` (a NUL-terminated
/// string list), three interrupt cells, the version's `cells` properties, `reg`, and the
/// phandle every `interrupt-parent` names. The node is named after the distributor.
fn write_gic_node(
    w: &mut FdtWriter,
    compatible: &[u8],
    cells: &[(&str, u32)],
    reg: &[u64],
) -> Result<(), GuestDtError> {
    let gic = w.begin_node(&format!(
        "interrupt-controller@{:x}",
        GUEST_GICD_BASE.as_u64()
    ))?;
    w.property("compatible", compatible)?;
    w.property_u32("#interrupt-cells", 3)?;
    for &(name, value) in cells {
        w.property_u32(name, value)?;
    }
    w.property_null("interrupt-controller")?;
    w.property_array_u64("reg", reg)?;
    w.property_phandle(GIC_PHANDLE)?;
    Ok(w.end_node(gic)?)
}

#[cfg(test)]
#[path = "guest_dt_tests.rs"]
mod tests;
