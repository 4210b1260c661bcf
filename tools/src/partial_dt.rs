//! xl's `device_tree` (Xen's `docs/misc/arm/passthrough.txt`): a partial device tree whose
//! `/passthrough` node describes the devices as the guest sees them. The tools read it with
//! the `fdt` crate and write, with `vm-fdt`, the fragment the microvisor adds to the guest's
//! generated tree (`microvisor::guest_dt_extra`): a root holding the `passthrough` node and
//! its subtree, fixed up for the guest's tree:
//!
//! - `#address-cells`/`#size-cells` of `passthrough` become the guest root's (2 and 2) and
//!   each child's `reg` is re-encoded from the partial tree's cells to those;
//! - a node with `interrupts` gets `interrupt-parent` = the guest GIC's phandle, unless it
//!   names a node inside `/passthrough` (a passed-through GPIO controller, say): the
//!   partial tree's own GIC does not exist in the guest.
//!
//! Only `/passthrough` is copied (as libxl does, less `/aliases`): a phandle a device uses
//! (a clock, say) must be defined inside it. `ranges` on `passthrough` must be empty (the
//! guest-physical addresses are the children's own).

use crate::system::{Image, System};
use fdt::node::FdtNode;
use fdt::Fdt;
use protocol::layout::GUEST_PHANDLE_GIC;
use protocol::manifest::SystemManifest;
use vm_fdt::FdtWriter;

/// The guest root's `#address-cells` and `#size-cells` (`microvisor::guest_dt`).
pub const GUEST_CELLS: (u32, u32) = (2, 2);

/// Why a partial device tree cannot be used; each message names what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartialDtError {
    /// Not a flattened device tree.
    Malformed(String),
    /// No `/passthrough` node.
    NoPassthrough,
    /// `ranges` on `/passthrough` translates addresses.
    Ranges,
    /// A `reg` whose length is not a whole number of (address, size) pairs, or in cells
    /// wider than 64 bits.
    BadReg(String),
    /// A node defines the phandle the guest's GIC has.
    PhandleClash(String),
    /// The writer refused the tree.
    Writer(String),
}

impl std::fmt::Display for PartialDtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "not a device tree blob ({e}); compile the .dts with `dtc -I dts -O dtb`"),
            Self::NoPassthrough => f.write_str("it has no /passthrough node (Xen's convention: the guest's devices are its children)"),
            Self::Ranges => f.write_str("/passthrough has a non-empty `ranges`; give the children guest-physical addresses and an empty `ranges;`"),
            Self::BadReg(n) => write!(f, "{n}: `reg` is not whole (address, size) pairs of the parent's #address-cells/#size-cells"),
            Self::PhandleClash(n) => write!(f, "{n}: phandle {GUEST_PHANDLE_GIC} is the guest GIC's; pick another"),
            Self::Writer(e) => write!(f, "cannot write the guest's fragment: {e}"),
        }
    }
}

impl std::error::Error for PartialDtError {}

/// The fragment for the guest, and the `reg` windows `(node, base, size)` of the devices
/// directly under `/passthrough`, guest-physical (the caller checks them against `iomem`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The fragment (a DTB whose root holds `passthrough`).
    pub blob: Vec<u8>,
    /// The devices' registers as the guest sees them.
    pub regs: Vec<(String, u64, u64)>,
}

fn cells(node: &FdtNode<'_, '_>, name: &str, default: u32) -> u32 {
    node.property(name)
        .and_then(|p| p.as_usize())
        .map_or(default, |v| v as u32)
}

fn be_cells(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(4).fold(0u64, |acc, c| {
        (acc << 32) | u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    })
}

/// `(address, size)` pairs of a `reg` in `ac`/`sc` cells.
fn decode_reg(
    value: &[u8],
    ac: u32,
    sc: u32,
    node: &str,
) -> Result<Vec<(u64, u64)>, PartialDtError> {
    let (a, s) = (ac as usize * 4, sc as usize * 4);
    if ac > 2 || sc > 2 || a + s == 0 || !value.len().is_multiple_of(a + s) {
        return Err(PartialDtError::BadReg(node.into()));
    }
    Ok(value
        .chunks_exact(a + s)
        .map(|c| (be_cells(&c[..a]), be_cells(&c[a..])))
        .collect())
}

/// Every phandle defined in `node`'s subtree.
fn phandles(node: FdtNode<'_, '_>, out: &mut Vec<(u32, String)>) {
    for name in ["phandle", "linux,phandle"] {
        if let Some(v) = node.property(name).and_then(|p| p.as_usize()) {
            out.push((v as u32, node.name.to_string()));
        }
    }
    for c in node.children() {
        phandles(c, out);
    }
}

/// Reads `partial` and writes the guest's fragment.
pub fn merge(partial: &[u8]) -> Result<Merged, PartialDtError> {
    let fdt = Fdt::new(partial).map_err(|e| PartialDtError::Malformed(format!("{e:?}")))?;
    let bus = fdt
        .find_node("/passthrough")
        .ok_or(PartialDtError::NoPassthrough)?;
    if bus.property("ranges").is_some_and(|r| !r.value.is_empty()) {
        return Err(PartialDtError::Ranges);
    }
    let mut local = Vec::new();
    phandles(bus, &mut local);
    if let Some((_, n)) = local.iter().find(|(p, _)| *p == GUEST_PHANDLE_GIC) {
        return Err(PartialDtError::PhandleClash(n.clone()));
    }
    let local: Vec<u32> = local.into_iter().map(|(p, _)| p).collect();
    // The children's `reg` is in the bus's cells (the spec's defaults when absent).
    let (ac, sc) = (
        cells(&bus, "#address-cells", 2),
        cells(&bus, "#size-cells", 1),
    );
    let w = |e: vm_fdt::Error| PartialDtError::Writer(format!("{e:?}"));
    let mut out = FdtWriter::new().map_err(w)?;
    let root = out.begin_node("").map_err(w)?;
    out.property_u32("#address-cells", GUEST_CELLS.0)
        .map_err(w)?;
    out.property_u32("#size-cells", GUEST_CELLS.1).map_err(w)?;
    let node = out.begin_node("passthrough").map_err(w)?;
    for p in bus.properties() {
        if !matches!(p.name, "#address-cells" | "#size-cells") {
            out.property(p.name, p.value).map_err(w)?;
        }
    }
    out.property_u32("#address-cells", GUEST_CELLS.0)
        .map_err(w)?;
    out.property_u32("#size-cells", GUEST_CELLS.1).map_err(w)?;
    let mut regs = Vec::new();
    for child in bus.children() {
        let path = format!("/passthrough/{}", child.name);
        let mut reg = None;
        if let Some(r) = child.property("reg") {
            let pairs = decode_reg(r.value, ac, sc, &path)?;
            regs.extend(pairs.iter().map(|&(b, s)| (path.clone(), b, s)));
            reg = Some(
                pairs
                    .iter()
                    .flat_map(|&(b, s)| [b, s])
                    .collect::<Vec<u64>>(),
            );
        }
        let bus_local = bus
            .property("interrupt-parent")
            .and_then(|p| p.as_usize())
            .is_some_and(|p| local.contains(&(p as u32)));
        copy(&mut out, child, reg.as_deref(), &local, bus_local).map_err(w)?;
    }
    out.end_node(node).map_err(w)?;
    out.end_node(root).map_err(w)?;
    let blob = out.finish().map_err(w)?;
    Ok(Merged { blob, regs })
}

/// Copies `n` and its subtree; `reg`, if given, replaces its `reg` (already in the guest's
/// cells); `interrupt-parent` is fixed as the module says, `local` being the phandles
/// defined inside `/passthrough` and `inherited_local` whether an ancestor inside it
/// already names one of them (then `n` inherits that).
fn copy(
    out: &mut FdtWriter,
    n: FdtNode<'_, '_>,
    reg: Option<&[u64]>,
    local: &[u32],
    inherited_local: bool,
) -> Result<(), vm_fdt::Error> {
    let node = out.begin_node(n.name)?;
    let own = n.property("interrupt-parent").and_then(|p| p.as_usize());
    let parent_is_local = match own {
        Some(p) => local.contains(&(p as u32)),
        None => inherited_local,
    };
    for p in n.properties() {
        match p.name {
            "reg" if reg.is_some() => {}
            "interrupt-parent" if !parent_is_local => {}
            _ => out.property(p.name, p.value)?,
        }
    }
    if let Some(reg) = reg {
        out.property_array_u64("reg", reg)?;
    }
    if (n.property("interrupts").is_some() || own.is_some()) && !parent_is_local {
        out.property_u32("interrupt-parent", GUEST_PHANDLE_GIC)?;
    }
    for c in n.children() {
        copy(out, c, None, local, parent_is_local)?;
    }
    out.end_node(node)
}

/// Each domain's `device_tree` merged into the fragment its guest tree gets
/// ([`crate::partial_dt`]), as `(label, bytes)` boot modules; the manifest names them. Every
/// device the partial tree describes must lie in a window the domain is given (`iomem` or
/// `dtdev`): an error naming the `device_tree` line otherwise.
pub fn device_trees(
    system: &System,
    manifest: &mut SystemManifest,
    images: &[(String, Image)],
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for d in &system.domains {
        let Some(at) = &d.passthrough.device_tree else {
            continue;
        };
        let err = |problem: String| system.error_at(at, "device_tree", problem);
        let bytes = std::fs::read(&at.value)
            .map_err(|e| err(format!("cannot read {}: {e}", at.value.display())))?;
        let merged = crate::partial_dt::merge(&bytes)
            .map_err(|e| err(format!("{}: {e}", at.value.display())))?;
        let Some(m) = manifest.domains.iter_mut().find(|m| m.name == d.name.value) else {
            continue;
        };
        for (node, base, size) in &merged.regs {
            let inside = m
                .devices
                .iter()
                .flat_map(|dev| &dev.windows)
                .any(|w| w.guest <= *base && base.saturating_add(*size) <= w.guest + w.size);
            if !inside {
                let given: Vec<String> = m
                    .devices
                    .iter()
                    .flat_map(|dev| &dev.windows)
                    .map(|w| format!("{:#x}..{:#x}", w.guest, w.guest + w.size))
                    .collect();
                return Err(err(format!(
                    "{node} is at guest {base:#x}..{:#x}, which is not a window this domain is given (it has {}); give its pages with `iomem` (@GFN) or `dtdev`",
                    base + size,
                    if given.is_empty() { "none".to_string() } else { given.join(", ") }
                ))
                .into());
            }
        }
        let mut taken: Vec<(String, Image)> = images.to_vec();
        taken.extend(out.iter().map(|(l, _)| (l.clone(), Image::File(l.into()))));
        let label =
            crate::image::fresh_label(&Image::File(format!("{}-dt", d.name.value).into()), &taken);
        m.device_tree = Some(label.clone());
        out.push((label, merged.blob));
    }
    Ok(out)
}

#[cfg(test)]
#[path = "partial_dt_tests.rs"]
pub(crate) mod tests;
