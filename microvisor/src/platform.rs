//! What the board is, read once from the host device tree: RAM banks and the ranges inside
//! them that are not ours (`/memreserve/`, `/reserved-memory`), CPUs, the GIC (v3, or a
//! GICv2 such as the GIC-400), UART, timer and the boot modules. Nothing platform-specific
//! is hard-coded elsewhere.

use crate::mm::boot_ranges::{BootRanges, FrameError};
use protocol::addr::PhysAddr;
use protocol::boot::{LABEL_PROP, MODULE_COMPATIBLE};
use protocol::layout::GicVersion;

/// Most RAM banks recorded.
pub const MAX_RAM_BANKS: usize = 4;
/// Most CPUs recorded.
pub const MAX_CPUS: usize = 8;
/// Most virtio-mmio transports recorded.
pub const MAX_DEVICES: usize = 32;
/// Most reserved-memory ranges recorded (a DT with more is refused rather than have one
/// handed out as free RAM).
pub const MAX_RESERVED: usize = 16;
/// Most boot modules recorded.
pub const MAX_MODULES: usize = 16;
/// Longest module label kept.
pub const MAX_LABEL: usize = 32;

/// A physical range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    /// Start.
    pub base: PhysAddr,
    /// Size in bytes.
    pub size: u64,
}

/// RAM that is not the microvisor's to hand out: a `/memreserve/` entry or a
/// `/reserved-memory` child with a fixed `reg` (firmware, secure-world carve-outs, …).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reserved {
    /// The range.
    pub region: Region,
    /// `no-map`: not even mapped at EL2 (speculative accesses to it may fault the system).
    pub no_map: bool,
}

/// A boot module from `/chosen/module@…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootModule {
    /// Where the boot loader put it.
    pub region: Region,
    label: [u8; MAX_LABEL],
    label_len: usize,
}

impl BootModule {
    /// Its `bulkhead,label`.
    pub fn label(&self) -> &str {
        core::str::from_utf8(&self.label[..self.label_len]).unwrap_or("?")
    }
}

/// Why the device tree could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlatformError {
    /// The blob is not a valid flattened device tree.
    BadDeviceTree,
    /// No `memory` node.
    NoMemory,
    /// No `arm,gic-v3` node with distributor and redistributor ranges, nor a GICv2 node
    /// (`arm,gic-400`, `arm,cortex-a15-gic`, `arm,cortex-a7-gic`) with distributor, CPU
    /// interface, virtual interface control and virtual CPU interface ranges.
    NoGic,
    /// More than [`MAX_RESERVED`] reserved-memory ranges.
    TooManyReserved,
}

/// The board.
#[derive(Clone, Debug, Default)]
pub struct Platform {
    /// RAM banks.
    pub ram: heapless_vec::Vec<Region, MAX_RAM_BANKS>,
    /// Reserved ranges: never handed out (and unmapped when `no_map`).
    pub reserved: heapless_vec::Vec<Reserved, MAX_RESERVED>,
    /// CPU affinities (`reg` of each cpu node), in DT order; index = physical CPU number.
    pub cpus: heapless_vec::Vec<u64, MAX_CPUS>,
    /// GIC distributor.
    pub gicd: Region,
    /// GICv3 redistributor region (empty on a GICv2).
    pub gicr: Region,
    /// The GICv2's other frames; `None` on a GICv3.
    pub gicv2: Option<GicV2>,
    /// The UART the microvisor logs to, if it can drive the one the DT names
    /// ([`crate::console_uart`]).
    pub console: Option<crate::console_uart::ConsoleUart>,
    /// That UART's registers.
    pub uart: Option<Region>,
    /// That UART's interrupt (GIC INTID), if the DT gives one.
    pub uart_irq: Option<u32>,
    /// Boot modules.
    pub modules: heapless_vec::Vec<BootModule, MAX_MODULES>,
    /// virtio-mmio transports (present or not: probe `DeviceID` to know).
    pub virtio: heapless_vec::Vec<DeviceNode, MAX_DEVICES>,
    /// Other nodes marked `xen,passthrough` that may be given to a guest
    /// ([`crate::passthrough::may_pass`]).
    pub passthrough: heapless_vec::Vec<PassthroughNode, MAX_DEVICES>,
    /// dom0's management UART, if the tree names one ([`crate::mgmt_port`]).
    pub mgmt_uart: Option<crate::console_uart::ConsoleUart>,
    /// Why the tree's management UART was refused, if it was.
    pub mgmt_refused: Option<crate::mgmt_port::Refused>,
    /// The boot loader's randomness (`/chosen/rng-seed` and `kaslr-seed`, folded into 32
    /// bytes), if it gave any: keys the seeds each Linux guest's tree gets
    /// ([`crate::seeds`]).
    pub boot_entropy: Option<[u8; 32]>,
    /// Where those properties' values lie in the tree (offset, length), for the boot CPU to
    /// wipe once they are read ([`crate::seeds::wipe`]).
    pub seed_spans: [Option<(usize, usize)>; 2],
}

/// `compatible` strings of the GICv2 implementations the microvisor drives.
pub const GICV2_COMPATIBLE: &[&str] = &["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic"];

/// A GICv2's frames besides the distributor (the DT's `reg` entries 1 to 3, as given: see
/// [`GicV2::cpu_interface_window`] for the GIC-400's 64 KiB aliasing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GicV2 {
    /// The physical CPU interface (`GICC`).
    pub gicc: Region,
    /// The virtual interface control (`GICH`), EL2's.
    pub gich: Region,
    /// The virtual CPU interface (`GICV`), handed to guests.
    pub gicv: Region,
    /// The maintenance interrupt (the node's `interrupts`), if given as a PPI.
    pub maintenance_irq: Option<u32>,
}

/// Offset of the last 4 KiB alias of a GIC-400 CPU-interface page inside its 64 KiB
/// window: from there, the first page and the next window's (which holds `GICC_DIR` /
/// `GICV_DIR`) are contiguous.
pub const GICV2_ALIAS_OFFSET: u64 = 0xf000;
/// Size of a GICv2 CPU interface (`GICC` or `GICV`): two 4 KiB pages.
pub const GICV2_CPU_IF_SIZE: u64 = 0x2000;
/// `GICC_IIDR` / `GICV_IIDR` offset in a CPU-interface page.
pub const GICV2_IIDR: u64 = 0xfc;

impl GicV2 {
    /// The 8 KiB window holding a CPU interface (`GICC` or `GICV`) whose DT range is
    /// `region`, given the interface's IIDR read at the range's start (`iidr_low`) and at
    /// [`GICV2_ALIAS_OFFSET`] + [`GICV2_IIDR`] (`iidr_high`, only meaningful for a 128 KiB
    /// range). A GIC-400 wired with each 4 KiB page aliased over 64 KiB (the ZCU102's, and
    /// QEMU's model of it) shows the same GICv2 IIDR at both: its second page then follows
    /// at the alias offset (as Linux's `gic_check_eoimode` and Xen's GICv2 driver
    /// conclude). Like Linux, only the architecture version and implementer are checked:
    /// QEMU's GICv2 reports ProductID 0, a real GIC-400 0x02.
    pub fn cpu_interface_window(region: Region, iidr_low: u32, iidr_high: u32) -> Region {
        // ArchitectureVersion 2 [19:16], implementer Arm [11:0]; product and revision aside.
        let gicv2 = iidr_low & 0x000f_0fff == 0x0002_043b;
        if region.size == 0x2_0000 && gicv2 && iidr_low == iidr_high {
            Region {
                base: PhysAddr::new(region.base.as_u64() + GICV2_ALIAS_OFFSET),
                size: GICV2_CPU_IF_SIZE,
            }
        } else {
            Region {
                base: region.base,
                size: GICV2_CPU_IF_SIZE,
            }
        }
    }
}

/// The property marking a host node given to a guest (Xen's binding).
pub const PASSTHROUGH_PROP: &str = "xen,passthrough";

/// A node marked `xen,passthrough` that may be given to a guest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassthroughNode {
    /// Its window and interrupt.
    pub node: DeviceNode,
    /// How to quiesce it between owners, if the microvisor knows
    /// ([`crate::device_reset`]).
    pub reset: Option<crate::device_reset::Kind>,
}

/// A device node that can be handed to a domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceNode {
    /// Its MMIO registers.
    pub region: Region,
    /// Its interrupt (GIC INTID), if any.
    pub irq: Option<u32>,
}

impl DeviceNode {
    /// Its MMIO registers rounded out to whole pages, the unit stage 2 maps: `(base, size)`.
    pub fn page_span(&self) -> (PhysAddr, u64) {
        let page = protocol::addr::PAGE_SIZE;
        let base = self.region.base.align_down(page);
        let end =
            (self.region.base.as_u64().saturating_add(self.region.size)).next_multiple_of(page);
        (base, end - base.as_u64())
    }
}

/// A tiny fixed-capacity vector, so the platform needs no heap.
pub mod heapless_vec {
    /// Up to `N` `Copy` items.
    #[derive(Clone, Debug)]
    pub struct Vec<T: Copy + Default, const N: usize> {
        items: [T; N],
        len: usize,
    }
    impl<T: Copy + Default, const N: usize> Default for Vec<T, N> {
        fn default() -> Self {
            Self {
                items: [T::default(); N],
                len: 0,
            }
        }
    }
    impl<T: Copy + Default, const N: usize> Vec<T, N> {
        /// Appends; returns false (dropping the item) when full.
        pub fn push(&mut self, item: T) -> bool {
            if self.len == N {
                return false;
            }
            self.items[self.len] = item;
            self.len += 1;
            true
        }
        /// The items.
        pub fn as_slice(&self) -> &[T] {
            &self.items[..self.len]
        }
        /// Number of items.
        pub fn len(&self) -> usize {
            self.len
        }
        /// Whether empty.
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }
    }
}

impl Default for BootModule {
    fn default() -> Self {
        Self {
            region: Region::default(),
            label: [0; MAX_LABEL],
            label_len: 0,
        }
    }
}

/// The GIC INTID named by a three-cell GIC `interrupts` specifier (type, number, flags).
pub fn gic_intid(cells: &[u8]) -> Option<u32> {
    let cell = |i: usize| -> Option<u32> {
        let b = cells.get(i * 4..i * 4 + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match (cell(0)?, cell(1)?) {
        (0, n) if n < 988 => Some(n + 32), // SPI
        (1, n) if n < 16 => Some(n + 16),  // PPI
        _ => None,
    }
}

/// Fills `p.reserved` from `/memreserve/` and the fixed (`reg`) children of
/// `/reserved-memory`; dynamically placed children (`size` only) are a request to the OS,
/// which the microvisor does not serve, so they reserve nothing.
fn read_reserved(
    fdt: &fdt::Fdt<'_>,
    p: &mut Platform,
    reserved_named: bool,
) -> Result<(), PlatformError> {
    let mut push = |base: u64, size: u64, no_map: bool| {
        if size == 0 {
            return Ok(());
        }
        let region = Region {
            base: PhysAddr::new(base),
            size,
        };
        if p.reserved.push(Reserved { region, no_map }) {
            Ok(())
        } else {
            Err(PlatformError::TooManyReserved)
        }
    };
    for r in fdt.memory_reservations() {
        push(r.address() as u64, r.size() as u64, false)?;
    }
    if let Some(node) = reserved_named
        .then(|| fdt.find_node("/reserved-memory"))
        .flatten()
    {
        for child in node.children() {
            let disabled = child.property("status").and_then(|s| s.as_str()) == Some("disabled");
            if disabled {
                continue;
            }
            let no_map = child.property("no-map").is_some();
            for r in child.reg().into_iter().flatten() {
                push(
                    r.starting_address as u64,
                    r.size.unwrap_or(0) as u64,
                    no_map,
                )?;
            }
        }
    }
    Ok(())
}

/// Fills the GIC fields from the first GICv3 or GICv2 node.
fn read_gic(fdt: &fdt::Fdt<'_>, p: &mut Platform) -> Result<(), PlatformError> {
    let region = |r: fdt::standard_nodes::MemoryRegion, default: u64| Region {
        base: PhysAddr::new(r.starting_address as u64),
        size: r.size.map_or(default, |s| s as u64),
    };
    if let Some(gic) = fdt.find_compatible(&["arm,gic-v3"]) {
        let mut regs = gic.reg().ok_or(PlatformError::NoGic)?;
        let d = regs.next().ok_or(PlatformError::NoGic)?;
        let r = regs.next().ok_or(PlatformError::NoGic)?;
        p.gicd = region(d, 0x1_0000);
        p.gicr = region(r, 0);
        return Ok(());
    }
    let gic = fdt
        .find_compatible(GICV2_COMPATIBLE)
        .ok_or(PlatformError::NoGic)?;
    let mut regs = gic.reg().ok_or(PlatformError::NoGic)?;
    let mut next = |default| {
        regs.next()
            .map(|r| region(r, default))
            .ok_or(PlatformError::NoGic)
    };
    p.gicd = next(0x1000)?;
    let gicc = next(GICV2_CPU_IF_SIZE)?;
    let gich = next(0x1000)?;
    let gicv = next(GICV2_CPU_IF_SIZE)?;
    p.gicv2 = Some(GicV2 {
        gicc,
        gich,
        gicv,
        // A PPI, or none (then the driver assumes the usual PPI 9).
        maintenance_irq: gic
            .property("interrupts")
            .and_then(|i| gic_intid(i.value))
            .filter(|i| (16..32).contains(i)),
    });
    Ok(())
}

impl Platform {
    /// The GIC architecture of the host (and so of every domain's virtual GIC).
    pub fn gic_version(&self) -> GicVersion {
        if self.gicv2.is_some() {
            GicVersion::V2
        } else {
            GicVersion::V3
        }
    }

    /// Reads the board from a flattened device tree.
    pub fn from_fdt(blob: &[u8]) -> Result<Self, PlatformError> {
        Self::from_fdt_with(blob, crate::console_uart::find)
    }

    /// [`Self::from_fdt`], the console UART found by `console` (the boot CPU found it
    /// already, to log with: each lookup is a walk of the tree, which under `-icount` is
    /// boot time).
    pub fn from_fdt_with(
        blob: &[u8],
        console: impl FnOnce(&fdt::Fdt<'_>) -> Option<crate::console_uart::ConsoleUart>,
    ) -> Result<Self, PlatformError> {
        let fdt = fdt::Fdt::new(blob).map_err(|_| PlatformError::BadDeviceTree)?;
        let mut p = Platform::default();
        // Whether a node of each name exists anywhere: a lookup of one that does not walks
        // the whole tree for nothing (under `-icount` each walk is 0.1-0.2 ms of boot).
        let (mut cpus_named, mut reserved_named) = (false, false);
        for node in fdt.all_nodes() {
            cpus_named |= node.name == "cpus";
            reserved_named |= node.name == "reserved-memory";
            let is_memory = node.name.starts_with("memory")
                && node.property("device_type").and_then(|d| d.as_str()) == Some("memory");
            if is_memory {
                for r in node.reg().into_iter().flatten() {
                    let size = r.size.unwrap_or(0) as u64;
                    if size > 0 {
                        p.ram.push(Region {
                            base: PhysAddr::new(r.starting_address as u64),
                            size,
                        });
                    }
                }
            }
        }
        if p.ram.is_empty() {
            return Err(PlatformError::NoMemory);
        }
        read_reserved(&fdt, &mut p, reserved_named)?;
        // The fdt crate's `cpus()` and `chosen()` panic when the node is missing: ask first.
        if cpus_named && fdt.find_node("/cpus").is_some() {
            for cpu in fdt.cpus() {
                p.cpus.push(cpu.ids().first() as u64);
            }
        }
        read_gic(&fdt, &mut p)?;
        p.console = console(&fdt);
        p.uart = p.console.map(|c| c.region);
        p.uart_irq = p.console.and_then(|c| c.irq);
        // Everything the microvisor keeps, and RAM: no device it hands out may overlap it.
        let mut kept: heapless_vec::Vec<Region, { 7 + MAX_RAM_BANKS }> =
            heapless_vec::Vec::default();
        let v2 = p.gicv2.unwrap_or_default();
        let gic = [p.gicd, p.gicr, v2.gicc, v2.gich, v2.gicv];
        for r in gic.into_iter().chain(p.uart).filter(|r| r.size != 0) {
            kept.push(r);
        }
        for &r in p.ram.as_slice() {
            kept.push(r);
        }
        let mut kept_irqs: heapless_vec::Vec<u32, 2> = heapless_vec::Vec::default();
        if let Some(i) = p.uart_irq {
            kept_irqs.push(i);
        }
        match crate::mgmt_port::find(&fdt, kept.as_slice(), kept_irqs.as_slice()) {
            Ok(m) => p.mgmt_uart = m,
            Err(e) => p.mgmt_refused = Some(e),
        }
        // Nor may a passthrough node be the management UART, or share its interrupt.
        if let Some(m) = p.mgmt_uart {
            kept.push(m.region);
            if let Some(i) = m.irq {
                kept_irqs.push(i);
            }
        }
        // Device nodes wherever they sit, their `reg` translated through the buses above
        // them (the ZynqMP's devices are under `/axi`).
        crate::dt_addr::for_each(&fdt, &mut |at| {
            let node = at.node();
            let compatible = node.compatible();
            let is_virtio = compatible.is_some_and(|c| c.all().any(|s| s == "virtio,mmio"));
            let Some((base, size)) = at.reg(0) else {
                return;
            };
            let irq = node.property("interrupts").and_then(|i| gic_intid(i.value));
            if is_virtio {
                p.virtio.push(DeviceNode {
                    region: Region {
                        base: PhysAddr::new(base),
                        size: if size == 0 { 0x200 } else { size },
                    },
                    irq,
                });
            } else if node.property(PASSTHROUGH_PROP).is_some() {
                let dev = DeviceNode {
                    region: Region {
                        base: PhysAddr::new(base),
                        size,
                    },
                    irq,
                };
                // One window and one interrupt make a Device capability: a node with more
                // is not one the microvisor can give whole, so it gives none of it.
                let single = at.reg_count() == 1
                    && node
                        .property("interrupts")
                        .is_none_or(|i| i.value.len() == 12);
                if single
                    && crate::passthrough::may_pass(dev, kept.as_slice(), kept_irqs.as_slice())
                {
                    let reset = compatible.and_then(|c| crate::device_reset::kind_of(c.all()));
                    p.passthrough.push(PassthroughNode { node: dev, reset });
                }
            }
        });
        if let Some(chosen) = fdt.find_node("/chosen") {
            let seeds = ["rng-seed", "kaslr-seed"].map(|n| chosen.property(n).map(|p| p.value));
            p.boot_entropy = crate::seeds::fold(seeds.iter().flatten().copied());
            // Each value is a slice of `blob`: its offset cannot underflow, but is checked.
            let start = blob.as_ptr() as usize;
            let at = |v: &[u8]| Some(((v.as_ptr() as usize).checked_sub(start)?, v.len()));
            p.seed_spans = seeds.map(|v| v.and_then(at));
            for child in chosen.children() {
                let is_module = child
                    .compatible()
                    .is_some_and(|c| c.all().any(|s| s == MODULE_COMPATIBLE));
                if !is_module {
                    continue;
                }
                let Some(reg) = child.reg().and_then(|mut r| r.next()) else {
                    continue;
                };
                let mut m = BootModule {
                    region: Region {
                        base: PhysAddr::new(reg.starting_address as u64),
                        size: reg.size.unwrap_or(0) as u64,
                    },
                    ..BootModule::default()
                };
                let label = child
                    .property(LABEL_PROP)
                    .and_then(|l| l.as_str())
                    .unwrap_or("");
                let n = label.len().min(MAX_LABEL);
                m.label[..n].copy_from_slice(&label.as_bytes()[..n]);
                m.label_len = n;
                p.modules.push(m);
            }
        }
        Ok(p)
    }

    /// RAM the microvisor may hand out: every bank minus the reserved ranges and `taken`
    /// (its own image, the device tree, the boot modules), in whole pages.
    pub fn free_ram(&self, taken: &[Region]) -> Result<BootRanges, FrameError> {
        let mut free = BootRanges::new();
        for r in self.ram.as_slice() {
            free.add_free(r.base, r.size)?;
        }
        let reserved = self.reserved.as_slice().iter().map(|r| &r.region);
        for r in reserved.chain(taken) {
            free.reserve(r.base, r.size)?;
        }
        Ok(free)
    }

    /// RAM the EL2 identity map covers: every bank minus the `no-map` reserved ranges.
    pub fn mapped_ram(&self) -> Result<BootRanges, FrameError> {
        let mut mapped = BootRanges::new();
        for r in self.ram.as_slice() {
            mapped.add_free(r.base, r.size)?;
        }
        for r in self.reserved.as_slice().iter().filter(|r| r.no_map) {
            mapped.reserve(r.region.base, r.region.size)?;
        }
        Ok(mapped)
    }

    /// Whether `[base, base + size)` lies inside one range of [`Self::mapped_ram`] (the
    /// microvisor's own image must, or it could not run with the MMU on).
    pub fn is_mapped_ram(&self, base: PhysAddr, size: u64) -> bool {
        let Some(end) = base.as_u64().checked_add(size) else {
            return false;
        };
        self.mapped_ram().is_ok_and(|m| {
            m.ranges().any(|(start, pages)| {
                start <= base && end <= start.as_u64() + pages * protocol::addr::PAGE_SIZE
            })
        })
    }

    /// The module labelled `label`.
    pub fn module(&self, label: &str) -> Option<&BootModule> {
        self.modules.as_slice().iter().find(|m| m.label() == label)
    }
}

#[cfg(test)]
#[path = "platform_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "platform_gicv2_tests.rs"]
mod gicv2_tests;
