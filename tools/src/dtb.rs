//! The boot DTB: QEMU's own device tree for the chosen `-smp`/`-m`, re-emitted with one
//! `/chosen/module@<addr>` node per boot module (Xen's `multiboot,module` binding).

use anyhow::{anyhow, bail, Context, Result};
use fdt::node::FdtNode;
use fdt::Fdt;
use protocol::boot::{LABEL_PROP, MODULE_COMPATIBLE};
use std::path::Path;
use std::process::Command;
use vm_fdt::{FdtReserveEntry, FdtWriter};

/// A boot module as the DTB describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// `bulkhead,label`.
    pub label: String,
    /// Load address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Asks QEMU for the virt board's DTB with `smp` CPUs and `mem_mib` MiB.
pub fn dump_qemu_dtb(smp: u16, mem_mib: u32, out: &Path) -> Result<Vec<u8>> {
    let machine = format!(
        "virt,virtualization=on,gic-version=3,dumpdtb={}",
        out.display()
    );
    let output = Command::new(crate::deps::QEMU)
        .args(["-M", &machine, "-cpu", "max", "-smp", &smp.to_string()])
        .args(["-m", &mem_mib.to_string(), "-display", "none"])
        .output()
        .with_context(|| format!("cannot run {}", crate::deps::QEMU))?;
    let bytes = std::fs::read(out).ok().filter(|b| !b.is_empty());
    match bytes {
        Some(bytes) => Ok(bytes),
        None => bail!(
            "{} did not write a DTB ({}): {}",
            crate::deps::QEMU,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    }
}

/// A DTB writer error as ours.
pub fn fdt_err(e: vm_fdt::Error) -> anyhow::Error {
    anyhow!("writing the DTB: {e}")
}

/// The property marking a host DT node as given to a guest (Xen's binding); the microvisor
/// makes a `Device` capability of each node that has it.
pub const PASSTHROUGH_PROP: &str = "xen,passthrough";

/// Re-emits `base` with `modules` added under `/chosen` (created if absent), whose
/// `#address-cells` and `#size-cells` become 2, and the root's children named in
/// `passthrough` (e.g. `/pl031@9010000`) marked [`PASSTHROUGH_PROP`].
pub fn add_modules(base: &[u8], modules: &[Module], passthrough: &[String]) -> Result<Vec<u8>> {
    rewrite(base, passthrough, |w| write_modules(w, modules))
}

/// Re-emits `base` with `/chosen` (created if absent) given `#address-cells` and
/// `#size-cells` 2 and whatever `extra` writes into it (properties first, then nodes);
/// module nodes of an earlier packing are dropped.
pub fn with_chosen(base: &[u8], extra: impl Fn(&mut FdtWriter) -> Result<()>) -> Result<Vec<u8>> {
    rewrite(base, &[], extra)
}

/// [`with_chosen`], also marking the root's children named in `passthrough`
/// [`PASSTHROUGH_PROP`].
fn rewrite(
    base: &[u8],
    passthrough: &[String],
    extra: impl Fn(&mut FdtWriter) -> Result<()>,
) -> Result<Vec<u8>> {
    let fdt = Fdt::new(base).map_err(|e| anyhow!("QEMU's DTB does not parse: {e:?}"))?;
    let reserved: Vec<FdtReserveEntry> = fdt
        .memory_reservations()
        .map(|r| FdtReserveEntry::new(r.address() as usize as u64, r.size() as u64))
        .collect::<Result<_, _>>()
        .map_err(fdt_err)?;
    let mut w = FdtWriter::new_with_mem_reserv(&reserved).map_err(fdt_err)?;
    let root = fdt.find_node("/").context("DTB has no root node")?;
    let has_chosen = root.children().any(|c| c.name == "chosen");
    let top = w.begin_node("").map_err(fdt_err)?;
    copy_props(&mut w, root, false)?;
    for child in root.children() {
        let mark = passthrough
            .iter()
            .any(|p| p.strip_prefix('/') == Some(child.name));
        copy_node(&mut w, child, &extra, mark)?;
    }
    if !has_chosen {
        let chosen = w.begin_node("chosen").map_err(fdt_err)?;
        write_cells(&mut w)?;
        extra(&mut w)?;
        w.end_node(chosen).map_err(fdt_err)?;
    }
    w.end_node(top).map_err(fdt_err)?;
    w.finish().map_err(fdt_err)
}

fn copy_props(w: &mut FdtWriter, node: FdtNode<'_, '_>, skip_cells: bool) -> Result<()> {
    for p in node.properties() {
        if skip_cells && (p.name == "#address-cells" || p.name == "#size-cells") {
            continue;
        }
        w.property(p.name, p.value).map_err(fdt_err)?;
    }
    Ok(())
}

fn copy_node(
    w: &mut FdtWriter,
    node: FdtNode<'_, '_>,
    extra: &impl Fn(&mut FdtWriter) -> Result<()>,
    mark: bool,
) -> Result<()> {
    let chosen = node.name == "chosen";
    let handle = w.begin_node(node.name).map_err(fdt_err)?;
    copy_props(w, node, chosen)?;
    if chosen {
        write_cells(w)?;
    }
    if mark && node.property(PASSTHROUGH_PROP).is_none() {
        w.property_null(PASSTHROUGH_PROP).map_err(fdt_err)?;
    }
    for child in node.children() {
        if chosen
            && child
                .compatible()
                .is_some_and(|c| c.all().any(|s| s == MODULE_COMPATIBLE))
        {
            continue; // a stale module from an earlier packing
        }
        copy_node(w, child, extra, false)?;
    }
    if chosen {
        extra(w)?;
    }
    w.end_node(handle).map_err(fdt_err)
}

/// `/chosen`'s cells: modules are addressed with 64-bit addresses and sizes.
fn write_cells(w: &mut FdtWriter) -> Result<()> {
    w.property_u32("#address-cells", 2).map_err(fdt_err)?;
    w.property_u32("#size-cells", 2).map_err(fdt_err)
}

fn write_modules(w: &mut FdtWriter, modules: &[Module]) -> Result<()> {
    for m in modules {
        let node = w
            .begin_node(&format!("module@{:x}", m.addr))
            .map_err(fdt_err)?;
        w.property_string("compatible", MODULE_COMPATIBLE)
            .map_err(fdt_err)?;
        w.property_array_u64("reg", &[m.addr, m.size])
            .map_err(fdt_err)?;
        w.property_string(LABEL_PROP, &m.label).map_err(fdt_err)?;
        w.end_node(node).map_err(fdt_err)?;
    }
    Ok(())
}

/// A RAM bank of a board, from its DTB's `/memory` nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamBank {
    /// First byte.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl RamBank {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

/// The RAM banks of a DTB (`device_type = "memory"` nodes), lowest first: where the boot
/// modules go is computed from them, not assumed.
pub fn ram_banks(dtb: &[u8]) -> Result<Vec<RamBank>> {
    let fdt = Fdt::new(dtb).map_err(|e| anyhow!("DTB does not parse: {e:?}"))?;
    let mut banks: Vec<RamBank> = fdt
        .all_nodes()
        .filter(|n| n.property("device_type").and_then(|d| d.as_str()) == Some("memory"))
        .flat_map(|n| n.reg().into_iter().flatten())
        .filter_map(|r| {
            let size = r.size? as u64;
            (size > 0).then_some(RamBank {
                base: r.starting_address as u64,
                size,
            })
        })
        .collect();
    if banks.is_empty() {
        bail!("the DTB describes no RAM (no /memory node with a reg)");
    }
    banks.sort_by_key(|b| b.base);
    Ok(banks)
}

/// Reads back the modules of a DTB (for checks and tests).
pub fn modules(dtb: &[u8]) -> Result<Vec<Module>> {
    let fdt = Fdt::new(dtb).map_err(|e| anyhow!("DTB does not parse: {e:?}"))?;
    let chosen = fdt.find_node("/chosen").context("DTB has no /chosen")?;
    let mut out = Vec::new();
    for node in chosen.children() {
        if !node
            .compatible()
            .is_some_and(|c| c.all().any(|s| s == MODULE_COMPATIBLE))
        {
            continue;
        }
        let reg = node.property("reg").context("module without reg")?.value;
        if reg.len() != 16 {
            bail!("{}: reg is {} bytes, expected 16", node.name, reg.len());
        }
        let cell = |i: usize| u64::from_be_bytes(reg[i..i + 8].try_into().unwrap_or([0; 8]));
        let label = node
            .property(LABEL_PROP)
            .and_then(|p| p.as_str())
            .with_context(|| format!("{}: no {LABEL_PROP}", node.name))?;
        out.push(Module {
            label: label.into(),
            addr: cell(0),
            size: cell(8),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small board tree: root with cells, a memory node, a /chosen with stdout-path.
    fn board() -> Vec<u8> {
        let mut w =
            FdtWriter::new_with_mem_reserv(&[FdtReserveEntry::new(0x4000_0000, 0x1000).unwrap()])
                .unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_string("compatible", "linux,dummy-virt").unwrap();
        let mem = w.begin_node("memory@40000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u64("reg", &[0x4000_0000, 0x4000_0000])
            .unwrap();
        w.end_node(mem).unwrap();
        let chosen = w.begin_node("chosen").unwrap();
        w.property_string("stdout-path", "/pl011@9000000").unwrap();
        w.end_node(chosen).unwrap();
        w.end_node(root).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn ram_banks_come_from_the_memory_nodes() {
        assert_eq!(
            ram_banks(&board()).unwrap(),
            [RamBank {
                base: 0x4000_0000,
                size: 0x4000_0000
            }]
        );
        // DRAM at 0 in two banks, listed high first, as on a ZCU102: sorted, both kept.
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        let mem = w.begin_node("memory@0").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u64("reg", &[0x8_0000_0000, 0x8000_0000, 0, 0x7ff0_0000])
            .unwrap();
        w.end_node(mem).unwrap();
        w.end_node(root).unwrap();
        let zcu = w.finish().unwrap();
        let banks = ram_banks(&zcu).unwrap();
        assert_eq!(
            banks[0],
            RamBank {
                base: 0,
                size: 0x7ff0_0000
            }
        );
        assert_eq!(banks[1].end(), 0x8_8000_0000);
        let mut w = FdtWriter::new().unwrap();
        let root = w.begin_node("").unwrap();
        w.end_node(root).unwrap();
        let err = ram_banks(&w.finish().unwrap()).unwrap_err().to_string();
        assert!(err.contains("no RAM"), "{err}");
    }

    #[test]
    fn modules_are_added_and_the_rest_is_kept() {
        let mods = vec![
            Module {
                label: "dom0".into(),
                addr: 0x5000_0000,
                size: 0x1234,
            },
            Module {
                label: "manifest".into(),
                addr: 0x5020_0000,
                size: 42,
            },
        ];
        let out = add_modules(&board(), &mods, &["/memory@40000000".into()]).unwrap();
        assert_eq!(modules(&out).unwrap(), mods);
        let fdt = Fdt::new(&out).unwrap();
        let chosen = fdt.find_node("/chosen").unwrap();
        let stdout = chosen.property("stdout-path").and_then(|p| p.as_str());
        assert_eq!(stdout, Some("/pl011@9000000"));
        assert_eq!(
            chosen.property("#address-cells").unwrap().as_usize(),
            Some(2)
        );
        assert_eq!(fdt.memory_reservations().count(), 1);
        assert_eq!(
            fdt.memory().regions().next().unwrap().size,
            Some(0x4000_0000)
        );
        // Packing again replaces the modules instead of duplicating them.
        let marked = |dtb: &[u8]| {
            let fdt = Fdt::new(dtb).unwrap();
            let mem = fdt.find_node("/memory@40000000").unwrap();
            mem.property(PASSTHROUGH_PROP).is_some()
        };
        assert!(marked(&out));
        let again = add_modules(&out, &mods[..1], &[]).unwrap();
        assert_eq!(modules(&again).unwrap(), mods[..1]);
        // The mark is kept once there (a host tree may carry it itself), never added.
        assert!(marked(&again));
        assert!(!marked(&add_modules(&board(), &mods, &[]).unwrap()));
    }
}
