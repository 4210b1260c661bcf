//! The boot DTB: QEMU's own device tree for the chosen `-smp`/`-m`, re-emitted with one
//! `/chosen/module@<addr>` node per boot module (Xen's `multiboot,module` binding).

use anyhow::{anyhow, bail, Context, Result};
use fdt::node::FdtNode;
use fdt::Fdt;
use protocol::boot::{LABEL_PROP, MGMT_PORT_PROP, MODULE_COMPATIBLE};
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

/// `blob` without `FDT_NOP` tokens. QEMU edits a `-dtb` it is given in place (it NOPs the
/// board's `/memory` and `/psci` and adds its own), and the `fdt` crate stops walking a node's
/// children at a NOP, losing every node after it. The microvisor compacts what it boots
/// with for the same reason (`microvisor::fdt_compact`); the tools read the tree QEMU dumps.
pub fn without_nops(blob: &[u8]) -> Result<Vec<u8>> {
    const BEGIN_NODE: u32 = 1;
    const END_NODE: u32 = 2;
    const PROP: u32 = 3;
    const NOP: u32 = 4;
    const END: u32 = 9;
    let bad = || anyhow!("the DTB is malformed (its structure block does not parse)");
    let be32 = |off: usize| -> Result<u32> {
        let b = blob.get(off..off + 4).ok_or_else(bad)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if be32(0)? != 0xd00d_feed {
        bail!("not a flattened device tree (bad magic)");
    }
    let off_struct = be32(8)? as usize;
    let size_struct = be32(36)? as usize;
    let end = off_struct.checked_add(size_struct).ok_or_else(bad)?;
    let mut tokens = Vec::new();
    let mut at = off_struct;
    loop {
        let token = be32(at)?;
        let len = match token {
            BEGIN_NODE => {
                let name = blob.get(at + 4..end).ok_or_else(bad)?;
                let nul = name.iter().position(|&c| c == 0).ok_or_else(bad)?;
                4 + (nul + 1).next_multiple_of(4)
            }
            PROP => 12 + (be32(at + 4)? as usize).next_multiple_of(4),
            END_NODE | END | NOP => 4,
            _ => return Err(bad()),
        };
        let bytes = blob.get(at..at + len).filter(|_| at + len <= end);
        let bytes = bytes.ok_or_else(bad)?;
        if token != NOP {
            tokens.extend_from_slice(bytes);
        }
        at += len;
        if token == END {
            break;
        }
    }
    // Same header, reserve map and strings; only the structure block shrank. Rebuilt as
    // header, reserve map, structure, strings (the order dtc writes).
    let off_rsv = be32(16)? as usize;
    let off_strings = be32(12)? as usize;
    let size_strings = be32(32)? as usize;
    let mut rsv_end = off_rsv;
    while blob.get(rsv_end..rsv_end + 16).ok_or_else(bad)? != [0u8; 16] {
        rsv_end += 16;
    }
    let rsv = &blob[off_rsv..rsv_end + 16];
    let strings = blob
        .get(off_strings..off_strings + size_strings)
        .ok_or_else(bad)?;
    let header_len = 40;
    let mut out = blob.get(..header_len).ok_or_else(bad)?.to_vec();
    let put = |out: &mut Vec<u8>, off: usize, v: usize| {
        out[off..off + 4].copy_from_slice(&(v as u32).to_be_bytes());
    };
    let new_struct = header_len + rsv.len();
    let new_strings = new_struct + tokens.len();
    put(&mut out, 4, new_strings + strings.len());
    put(&mut out, 8, new_struct);
    put(&mut out, 12, new_strings);
    put(&mut out, 16, header_len);
    put(&mut out, 36, tokens.len());
    out.extend_from_slice(rsv);
    out.extend_from_slice(&tokens);
    out.extend_from_slice(strings);
    Ok(out)
}

/// A writer for a tree that keeps `fdt`'s memory reservations (the re-emitted tree's
/// reserve map).
pub fn writer_like(fdt: &Fdt<'_>) -> Result<FdtWriter> {
    let reserved: Vec<FdtReserveEntry> = fdt
        .memory_reservations()
        .map(|r| FdtReserveEntry::new(r.address() as usize as u64, r.size() as u64))
        .collect::<Result<_, _>>()
        .map_err(fdt_err)?;
    FdtWriter::new_with_mem_reserv(&reserved).map_err(fdt_err)
}

/// A DTB writer error as ours.
pub fn fdt_err(e: vm_fdt::Error) -> anyhow::Error {
    anyhow!("writing the DTB: {e}")
}

/// The property marking a host DT node as given to a guest (Xen's binding); the microvisor
/// makes a `Device` capability of each node that has it.
pub const PASSTHROUGH_PROP: &str = "xen,passthrough";

/// Re-emits `base` with `modules` added under `/chosen` (created if absent), whose
/// `#address-cells` and `#size-cells` become 2, the nodes named in
/// `passthrough` (full paths, e.g. `/pl031@9010000`, `/axi/serial@ff010000`) marked
/// [`PASSTHROUGH_PROP`], and
/// `/chosen/bulkhead,mgmt-port` set to `mgmt_port` (a path or alias of the UART dom0
/// serves the management port on) when given, dropped otherwise.
pub fn add_modules(
    base: &[u8],
    modules: &[Module],
    passthrough: &[String],
    mgmt_port: Option<&str>,
) -> Result<Vec<u8>> {
    rewrite(
        base,
        passthrough,
        |w| {
            if let Some(port) = mgmt_port {
                w.property_string(MGMT_PORT_PROP, port).map_err(fdt_err)?;
            }
            Ok(())
        },
        |w| write_modules(w, modules),
    )
}

/// Re-emits `base` with `/chosen` (created if absent) given `#address-cells` and
/// `#size-cells` 2 and whatever `extra` writes into it (properties first, then nodes);
/// module nodes of an earlier packing are dropped.
pub fn with_chosen(base: &[u8], extra: impl Fn(&mut FdtWriter) -> Result<()>) -> Result<Vec<u8>> {
    rewrite(base, &[], |_| Ok(()), extra)
}

/// [`with_chosen`], also marking the nodes named in `passthrough`
/// [`PASSTHROUGH_PROP`]; `props` writes `/chosen`'s own properties (before its nodes: a
/// property after a subnode is not a valid tree).
fn rewrite(
    base: &[u8],
    passthrough: &[String],
    props: impl Fn(&mut FdtWriter) -> Result<()>,
    extra: impl Fn(&mut FdtWriter) -> Result<()>,
) -> Result<Vec<u8>> {
    let fdt = Fdt::new(base).map_err(|e| anyhow!("QEMU's DTB does not parse: {e:?}"))?;
    let mut w = writer_like(&fdt)?;
    let root = fdt.find_node("/").context("DTB has no root node")?;
    let has_chosen = root.children().any(|c| c.name == "chosen");
    let top = w.begin_node("").map_err(fdt_err)?;
    copy_props(&mut w, root, false)?;
    for child in root.children() {
        copy_node(&mut w, child, "", &props, &extra, passthrough)?;
    }
    if !has_chosen {
        let chosen = w.begin_node("chosen").map_err(fdt_err)?;
        write_cells(&mut w)?;
        props(&mut w)?;
        extra(&mut w)?;
        w.end_node(chosen).map_err(fdt_err)?;
    }
    w.end_node(top).map_err(fdt_err)?;
    w.finish().map_err(fdt_err)
}

/// The longest property name the devicetree specification allows (and `vm-fdt` writes).
const MAX_PROPERTY_NAME: usize = 31;

/// Whether `vm-fdt` can write a property called `name`. Linux's board trees break the
/// specification's 31-character limit here and there (the ZCU102's USB controller has
/// `snps,quirk-frame-length-adjustment`); such a property is left out of the trees we write.
/// None is one the microvisor reads; a guest given that device gets its own partial tree.
fn writable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_PROPERTY_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ",._+?#-".contains(c))
}

/// Copies `node`'s properties; `chosen`: `/chosen`'s, less those [`rewrite`] writes anew.
fn copy_props(w: &mut FdtWriter, node: FdtNode<'_, '_>, chosen: bool) -> Result<()> {
    for p in node.properties() {
        let rewritten = ["#address-cells", "#size-cells", MGMT_PORT_PROP];
        if chosen && rewritten.contains(&p.name) {
            continue;
        }
        if !writable(p.name) {
            continue;
        }
        w.property(p.name, p.value).map_err(fdt_err)?;
    }
    Ok(())
}

/// Copies `node` (a child of the node at `parent`, `""` for the root) and its subtree,
/// marking [`PASSTHROUGH_PROP`] each node whose full path is in `passthrough`.
fn copy_node(
    w: &mut FdtWriter,
    node: FdtNode<'_, '_>,
    parent: &str,
    props: &impl Fn(&mut FdtWriter) -> Result<()>,
    extra: &impl Fn(&mut FdtWriter) -> Result<()>,
    passthrough: &[String],
) -> Result<()> {
    let path = format!("{parent}/{}", node.name);
    let mark = passthrough.contains(&path);
    let chosen = parent.is_empty() && node.name == "chosen";
    let handle = w.begin_node(node.name).map_err(fdt_err)?;
    copy_props(w, node, chosen)?;
    if chosen {
        write_cells(w)?;
        props(w)?;
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
        copy_node(w, child, &path, props, extra, passthrough)?;
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

    /// `blob` with a NOP token inserted `at` bytes into its structure block (header fixed).
    fn with_nop(blob: &[u8], at: usize) -> Vec<u8> {
        let be = |off: usize| u32::from_be_bytes(blob[off..off + 4].try_into().unwrap()) as usize;
        let pos = be(8) + at;
        let mut out = blob[..pos].to_vec();
        out.extend_from_slice(&4u32.to_be_bytes());
        out.extend_from_slice(&blob[pos..]);
        let put = |out: &mut Vec<u8>, off: usize, v: usize| {
            out[off..off + 4].copy_from_slice(&(v as u32).to_be_bytes());
        };
        put(&mut out, 4, be(4) + 4);
        put(&mut out, 36, be(36) + 4);
        if be(12) > be(8) {
            put(&mut out, 12, be(12) + 4);
        }
        out
    }

    #[test]
    fn property_names_vm_fdt_cannot_write_are_left_out() {
        assert!(writable("snps,quirk-frame-length-adj"));
        assert!(writable("#address-cells"));
        assert!(!writable("snps,quirk-frame-length-adjustment"));
        assert!(!writable("bad name"));
        assert!(!writable(""));
    }

    #[test]
    fn nops_from_an_edited_dtb_are_dropped() {
        let clean = board();
        // Where QEMU leaves one: between two of the root's children (before `chosen`); the
        // fdt crate stops listing the root's children there.
        let struct_off = u32::from_be_bytes(clean[8..12].try_into().unwrap()) as usize;
        let chosen = clean.windows(7).position(|w| w == b"chosen\0").unwrap();
        let nopped = with_nop(&clean, chosen - 4 - struct_off);
        let fdt = Fdt::new(&nopped).unwrap();
        assert!(fdt.find_node("/chosen").is_none(), "the fdt crate's limit");
        let fixed = without_nops(&nopped).unwrap();
        assert_eq!(fixed, clean);
        let fdt = Fdt::new(&fixed).unwrap();
        assert!(fdt.find_node("/chosen").is_some());
        assert_eq!(fdt.memory_reservations().count(), 1);
        assert!(without_nops(&clean[..60]).is_err());
        assert!(without_nops(&[0u8; 64]).is_err());
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
        let out = add_modules(&board(), &mods, &["/memory@40000000".into()], None).unwrap();
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
        let again = add_modules(&out, &mods[..1], &[], None).unwrap();
        assert_eq!(modules(&again).unwrap(), mods[..1]);
        // The mark is kept once there (a host tree may carry it itself), never added.
        assert!(marked(&again));
        assert!(!marked(&add_modules(&board(), &mods, &[], None).unwrap()));
    }

    #[test]
    fn the_management_uart_is_named_in_chosen_once() {
        let port = |dtb: &[u8]| {
            let fdt = Fdt::new(dtb).unwrap();
            let chosen = fdt.find_node("/chosen").unwrap();
            chosen
                .property(MGMT_PORT_PROP)
                .and_then(|p| p.as_str())
                .map(str::to_string)
        };
        let mods = [Module {
            label: "dom0".into(),
            addr: 0x5000_0000,
            size: 0x1000,
        }];
        let out = add_modules(&board(), &mods, &[], Some("serial1")).unwrap();
        assert_eq!(port(&out).as_deref(), Some("serial1"));
        assert_eq!(modules(&out).unwrap(), mods);
        // Packing again (over a tree with modules, i.e. with subnodes in /chosen) replaces
        // it, and packing for a machine without one drops it.
        let again = add_modules(&out, &mods, &[], Some("/axi/serial@ff010000")).unwrap();
        assert_eq!(port(&again).as_deref(), Some("/axi/serial@ff010000"));
        assert_eq!(port(&add_modules(&out, &mods, &[], None).unwrap()), None);
    }
}

#[cfg(test)]
#[path = "dtb_boards_tests.rs"]
pub(crate) mod boards_tests;
