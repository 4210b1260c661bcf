//! The host device tree's devices as the CPU sees them (issue 16): every node with
//! registers or interrupts, wherever it sits, its `reg` translated to CPU physical
//! addresses through the `ranges` of every bus above it, and whether a guest may have it.
//!
//! A node's `reg` is written in its parent's address space (the parent's `#address-cells`
//! and `#size-cells`); each bus maps its children's space into its own parent's with
//! `ranges`: empty is the identity (the ZynqMP's `/axi`), entries translate (a Raspberry
//! Pi's `/soc`), and no `ranges` at all means the children are not CPU-addressable (an I2C
//! or SPI bus, whose `reg` is a bus address): such a node is listed but kept, naming the
//! bus. The microvisor reads the same tree the same way (`microvisor/src/dt_addr.rs`).

use crate::xlcfg::passthru::PAGE;
use anyhow::{anyhow, Result};
use fdt::node::FdtNode;
use fdt::Fdt;
use protocol::dt::{read_cells, translate_ranges};

/// One node of the host's device tree with registers or interrupts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    /// Full path, e.g. `/pl031@9010000` or `/axi/serial@ff010000`.
    pub path: String,
    /// `reg` windows `(CPU physical base, size)`.
    pub regs: Vec<(u64, u64)>,
    /// GIC INTIDs of its `interrupts`.
    pub irqs: Vec<u32>,
    /// Compatible strings, for the device-reset table and messages.
    pub compatible: Vec<String>,
    /// Why no guest may have it, if so.
    pub kept: Option<String>,
}

/// Deepest node visited (root = 0): real trees are a handful deep; this only bounds a
/// malformed one.
const MAX_DEPTH: usize = 16;
/// `#address-cells` when a node does not say (the devicetree specification's default).
const DEFAULT_ADDRESS_CELLS: usize = 2;
/// `#size-cells` when a node does not say.
const DEFAULT_SIZE_CELLS: usize = 1;

/// GIC implementations (the microvisor owns the GIC; a node's interrupts count only if
/// they are the GIC's).
const GIC_COMPATIBLE: [&str; 4] = [
    "arm,gic-v3",
    "arm,cortex-a15-gic",
    "arm,gic-400",
    "arm,cortex-a7-gic",
];

/// Nodes that describe the machine rather than a device: listed if they have `reg`, never
/// descended into.
const NOT_DEVICES: [&str; 5] = [
    "chosen",
    "cpus",
    "aliases",
    "reserved-memory",
    "__symbols__",
];

/// A bus between the root and a node (the root included): how its children's addresses
/// read and map to its own parent's.
#[derive(Clone)]
struct Bus<'a> {
    path: String,
    address_cells: usize,
    size_cells: usize,
    /// `None`: no `ranges` (children not CPU-addressable); empty: identity.
    ranges: Option<&'a [u8]>,
}

/// What the walk carries down the tree.
struct Walk<'a> {
    fdt: &'a Fdt<'a>,
    /// The node the microvisor logs on (`stdout-path`), by path.
    uart: Option<String>,
    /// dom0's management UART and the `[system] mgmt_port` value that names it.
    mgmt: Option<(String, String)>,
    out: Vec<HostDevice>,
}

/// Every node of `dtb` with registers or interrupts, and whether a guest may have it.
/// `mgmt_port` is the alias or path of dom0's management UART, if the system has one.
pub fn host_devices(dtb: &[u8], mgmt_port: Option<&str>) -> Result<Vec<HostDevice>> {
    let fdt = Fdt::new(dtb).map_err(|e| anyhow!("the host DTB does not parse: {e:?}"))?;
    let root = fdt
        .find_node("/")
        .ok_or_else(|| anyhow!("the host DTB has no root"))?;
    // The microvisor logs on the UART `stdout-path` names; without one, on the first PL011.
    let uart = chosen_path(&fdt, "stdout-path").or_else(|| first_compatible(root, "", "arm,pl011"));
    let mgmt = mgmt_port.and_then(|p| Some((resolve(&fdt, p)?, p.to_string())));
    let mut walk = Walk {
        fdt: &fdt,
        uart,
        mgmt,
        out: Vec::new(),
    };
    let top = Bus {
        path: String::new(),
        address_cells: cells(root, "#address-cells").unwrap_or(DEFAULT_ADDRESS_CELLS),
        size_cells: cells(root, "#size-cells").unwrap_or(DEFAULT_SIZE_CELLS),
        ranges: Some(&[]),
    };
    let parent = interrupt_parent(root);
    walk.children(root, &mut vec![top], parent, None);
    Ok(walk.out)
}

impl<'a> Walk<'a> {
    /// Lists `node`'s children and their descendants; `buses` runs from the root to `node`,
    /// `irq_parent` is the phandle of the interrupt parent they inherit, `inside` the kept
    /// device above them, if any (its children are part of it).
    fn children(
        &mut self,
        node: FdtNode<'_, 'a>,
        buses: &mut Vec<Bus<'a>>,
        irq_parent: Option<u32>,
        inside: Option<&str>,
    ) {
        let parent_path = buses.last().map(|b| b.path.clone()).unwrap_or_default();
        for child in node.children() {
            let path = format!("{parent_path}/{}", child.name);
            // `memory@…` is RAM; `memory-controller@…` (the ZynqMP's DDR controller) is a
            // device like any other.
            let not_device =
                NOT_DEVICES.contains(&child.name) || child.name.split('@').next() == Some("memory");
            let irq_parent = interrupt_parent(child).or(irq_parent);
            let kept = self.visit(child, &path, buses, irq_parent, not_device, inside);
            let is_pci = child.property("device_type").and_then(|p| p.as_str()) == Some("pci");
            if not_device || is_pci || buses.len() >= MAX_DEPTH {
                continue;
            }
            buses.push(Bus {
                path: path.clone(),
                address_cells: cells(child, "#address-cells").unwrap_or(DEFAULT_ADDRESS_CELLS),
                size_cells: cells(child, "#size-cells").unwrap_or(DEFAULT_SIZE_CELLS),
                ranges: child.property("ranges").map(|p| p.value),
            });
            let below =
                kept.map(|why| format!("it is part of {path}, which a guest cannot have ({why})"));
            self.children(child, buses, irq_parent, below.as_deref().or(inside));
            buses.pop();
        }
    }

    /// Records `node` at `path` if it has registers or interrupts; why a guest may not have
    /// it (`None`: it may, or it is not recorded).
    fn visit(
        &mut self,
        node: FdtNode<'_, 'a>,
        path: &str,
        buses: &[Bus<'a>],
        irq_parent: Option<u32>,
        not_device: bool,
        inside: Option<&str>,
    ) -> Option<String> {
        let (regs, untranslated) = match translated_regs(node, buses) {
            Ok(regs) => (regs, None),
            Err(why) => (Vec::new(), Some(why)),
        };
        let has_reg = node.property("reg").is_some();
        let interrupts = node.property("interrupts").map(|p| p.value);
        let gic_parent = match irq_parent {
            None => true,
            Some(ph) => self.fdt.find_phandle(ph).is_some_and(|p| is_gic(&p)),
        };
        let irqs = match interrupts {
            Some(v) if gic_parent => intids(v),
            _ => Vec::new(),
        };
        let compatible: Vec<String> = node
            .compatible()
            .map(|c| c.all().map(String::from).collect())
            .unwrap_or_default();
        let compat = |any: &[&str]| compatible.iter().any(|c| any.contains(&c.as_str()));
        let kept: Option<String> = if not_device {
            Some("it is not a device".into())
        } else if let Some(why) = inside {
            Some(why.to_string())
        } else if compat(&GIC_COMPATIBLE) {
            Some("the microvisor owns the GIC".into())
        } else if compat(&["arm,armv8-timer", "arm,armv7-timer"]) {
            Some("the microvisor owns the CPU timers".into())
        } else if self.uart.as_deref() == Some(path) {
            Some("it is the microvisor's UART (the console `/chosen/stdout-path` names)".into())
        } else if let Some((_, port)) = self.mgmt.as_ref().filter(|(p, _)| p == path) {
            Some(format!("it is dom0's management port (`[system] mgmt_port = \"{port}\"`); set `mgmt_port = \"none\"` in the system description to give it to a guest"))
        } else if node.property("device_type").and_then(|p| p.as_str()) == Some("pci") {
            Some("PCI passthrough is not implemented (its devices could DMA anywhere without an SMMU)".into())
        } else if let Some(why) = untranslated {
            Some(why)
        } else if interrupts.is_some() && !gic_parent {
            Some("its interrupts go to another interrupt controller than the GIC, which the microvisor cannot forward".into())
        } else if regs.is_empty() {
            Some("it has no registers to map (per-CPU interrupts stay with the microvisor)".into())
        } else if compat(&["virtio,mmio"]) {
            Some("virtio-mmio transports go to driver domains (use `disk`)".into())
        } else if regs
            .iter()
            .any(|&(b, s)| b % PAGE != 0 || s % PAGE != 0 || s == 0)
        {
            Some(
                "its registers do not fill whole pages, so mapping them would expose a neighbour's"
                    .into(),
            )
        } else if regs.len() > 1 || irqs.len() > 1 {
            // One Device capability is one register window and one SPI (the microvisor's
            // `platform::DeviceNode`); a node with more is not made one.
            Some("it has more than one register window or interrupt, and the microvisor gives only devices with one of each".into())
        } else {
            None
        };
        // A bus without registers or interrupts (`/axi`) is not listed, and its children
        // are judged on their own.
        if !(has_reg || !irqs.is_empty() || interrupts.is_some()) {
            return None;
        }
        self.out.push(HostDevice {
            path: path.to_string(),
            regs,
            irqs,
            compatible,
            kept: kept.clone(),
        });
        kept
    }
}

/// `node`'s `reg` as CPU addresses, or why it has none: read with its parent's cells and
/// translated through every bus from its parent up to the root.
fn translated_regs(node: FdtNode<'_, '_>, buses: &[Bus<'_>]) -> Result<Vec<(u64, u64)>, String> {
    let Some(reg) = node.property("reg") else {
        return Ok(Vec::new());
    };
    let parent = buses.last().ok_or("the root has no `reg`")?;
    let (ac, sc) = (parent.address_cells, parent.size_cells);
    if ac == 0 || ac > 2 || sc > 2 {
        return Err(format!(
            "its `reg` is in {}'s {ac}-cell addresses and {sc}-cell sizes, which are not CPU addresses",
            shown(&parent.path)
        ));
    }
    let entry = (ac + sc) * 4;
    if reg.value.len() % entry != 0 {
        return Err(format!("its `reg` is not whole ({ac}+{sc})-cell entries"));
    }
    reg.value
        .chunks_exact(entry)
        .map(|e| {
            let addr = read_cells(&e[..ac * 4], ac).ok_or("its `reg` does not read")?;
            let size = read_cells(&e[ac * 4..], sc).ok_or("its `reg` does not read")?;
            Ok((translate(buses, addr)?, size))
        })
        .collect()
}

/// `addr` in the address space of the last bus of `buses` as a CPU address.
fn translate(buses: &[Bus<'_>], mut addr: u64) -> Result<u64, String> {
    for i in (1..buses.len()).rev() {
        let (bus, above) = (&buses[i], &buses[i - 1]);
        let Some(ranges) = bus.ranges else {
            return Err(format!(
                "its registers are not CPU addresses: {} has no `ranges`, so its children's `reg` is a bus address",
                bus.path
            ));
        };
        addr = translate_ranges(
            ranges,
            bus.address_cells,
            above.address_cells,
            bus.size_cells,
            addr,
        )
        .ok_or_else(|| {
            format!(
                "its registers are not CPU addresses: no entry of {}'s `ranges` covers {addr:#x}",
                bus.path
            )
        })?;
    }
    Ok(addr)
}

/// A cell-count property (`#address-cells`), if readable.
fn cells(node: FdtNode<'_, '_>, name: &str) -> Option<usize> {
    let b: [u8; 4] = node.property(name)?.value.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b) as usize)
}

/// `node`'s own `interrupt-parent` phandle.
fn interrupt_parent(node: FdtNode<'_, '_>) -> Option<u32> {
    let b: [u8; 4] = node
        .property("interrupt-parent")?
        .value
        .get(..4)?
        .try_into()
        .ok()?;
    Some(u32::from_be_bytes(b))
}

fn is_gic(node: &FdtNode<'_, '_>) -> bool {
    node.compatible()
        .is_some_and(|c| c.all().any(|s| GIC_COMPATIBLE.contains(&s)))
}

/// The GIC INTIDs of a GIC `interrupts` property (three cells each: type, number, flags).
fn intids(value: &[u8]) -> Vec<u32> {
    value
        .chunks_exact(12)
        .filter_map(|c| {
            let cell = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
            match (cell(0), cell(4)) {
                (0, n) => Some(n + 32),
                (1, n) => Some(n + 16),
                _ => None,
            }
        })
        .collect()
}

/// The path `/chosen`'s string property `prop` names (`:options` dropped, an alias
/// resolved through `/aliases`).
fn chosen_path(fdt: &Fdt<'_>, prop: &str) -> Option<String> {
    let value = fdt.find_node("/chosen")?.property(prop)?.as_str()?;
    resolve(fdt, value.split(':').next()?)
}

/// A path, or an alias resolved to one.
fn resolve(fdt: &Fdt<'_>, name: &str) -> Option<String> {
    if name.starts_with('/') {
        return Some(name.to_string());
    }
    let full = fdt.find_node("/aliases")?.property(name)?.as_str()?;
    full.starts_with('/').then(|| full.to_string())
}

/// The path of the first node (depth first) below `node` (at `path`) compatible with `with`.
fn first_compatible(node: FdtNode<'_, '_>, path: &str, with: &str) -> Option<String> {
    node.children().find_map(|c| {
        let p = format!("{path}/{}", c.name);
        if c.compatible().is_some_and(|x| x.all().any(|s| s == with)) {
            Some(p)
        } else {
            first_compatible(c, &p, with)
        }
    })
}

/// A bus path for messages (the root is `/`).
fn shown(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

#[cfg(test)]
#[path = "host_tree_tests.rs"]
mod tests;
