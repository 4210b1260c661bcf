//! Host tests of device-tree address translation on synthetic trees.

use super::*;

fn cells(values: &[u32]) -> std::vec::Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// Root 2/2; `/axi` 2/2 with identity `ranges`; `/soc` 1/1 mapping 0x7e00_0000 (16 MiB) to
/// 0xfe00_0000; inside it `/soc/bridge` 1/1 mapping 0x1000 (0x1000) to 0x7e20_0000; and
/// `/closed` 1/1 without `ranges`.
fn tree() -> std::vec::Vec<u8> {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let axi = w.begin_node("axi").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_null("ranges").unwrap();
    let s = w.begin_node("serial@ff000000").unwrap();
    w.property_string("compatible", "cdns,uart-r1p12").unwrap();
    w.property_array_u64("reg", &[0xff00_0000, 0x1000, 0xff01_0000, 0x1000])
        .unwrap();
    w.end_node(s).unwrap();
    w.end_node(axi).unwrap();
    let soc = w.begin_node("soc").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property("ranges", &cells(&[0x7e00_0000, 0, 0xfe00_0000, 0x100_0000]))
        .unwrap();
    let u = w.begin_node("serial@7e201000").unwrap();
    w.property_string("compatible", "arm,pl011").unwrap();
    w.property_array_u32("reg", &[0x7e20_1000, 0x200]).unwrap();
    w.end_node(u).unwrap();
    let b = w.begin_node("bridge@7e200000").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property("ranges", &cells(&[0x1000, 0x7e20_0000, 0x1000]))
        .unwrap();
    let d = w.begin_node("dev@1040").unwrap();
    w.property_string("compatible", "test,deep").unwrap();
    w.property_array_u32("reg", &[0x1040, 0x40, 0x2000, 0x40])
        .unwrap();
    w.end_node(d).unwrap();
    w.end_node(b).unwrap();
    w.end_node(soc).unwrap();
    let closed = w.begin_node("closed").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let x = w.begin_node("dev@10").unwrap();
    w.property_string("compatible", "test,closed").unwrap();
    w.property_array_u32("reg", &[0x10, 0x10]).unwrap();
    w.end_node(x).unwrap();
    w.end_node(closed).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

#[test]
fn identity_ranges_keep_the_address() {
    let blob = tree();
    let fdt = Fdt::new(&blob).unwrap();
    let s = find_path(&fdt, "/axi/serial@ff000000").unwrap();
    assert_eq!(s.reg(0), Some((0xff00_0000, 0x1000)));
    assert_eq!(s.reg(1), Some((0xff01_0000, 0x1000)));
    assert_eq!(s.reg(2), None);
    assert_eq!(s.reg_count(), 2);
    // A component without a unit address matches by name.
    assert!(find_path(&fdt, "/axi/serial").is_some());
    assert!(find_path(&fdt, "/axi/serial@ff020000").is_none());
}

#[test]
fn ranges_translate_with_their_own_cell_sizes() {
    let blob = tree();
    let fdt = Fdt::new(&blob).unwrap();
    let u = find_path(&fdt, "/soc/serial@7e201000").unwrap();
    assert_eq!(u.reg(0), Some((0xfe20_1000, 0x200)));
    // Two buses: 0x1040 -> 0x7e20_0040 -> 0xfe20_0040; the second entry is outside the
    // bridge's window, so it has no CPU address.
    let d = find_compatible(&fdt, &["test,deep"]).unwrap();
    assert_eq!(d.node().name, "dev@1040");
    assert_eq!(d.reg(0), Some((0xfe20_0040, 0x40)));
    assert_eq!(d.reg(1), None);
    // A bus without `ranges` maps nothing.
    let c = find_compatible(&fdt, &["test,closed"]).unwrap();
    assert_eq!(c.reg(0), None);
    assert!(find_compatible(&fdt, &["test,absent"]).is_none());
}

/// `/chosen/stdout-path` as given, plus an alias table.
fn with_stdout(stdout: Option<&[u8]>) -> std::vec::Vec<u8> {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let a = w.begin_node("aliases").unwrap();
    w.property_string("serial0", "/uart@1000").unwrap();
    w.property_string("loop", "serial0").unwrap();
    w.end_node(a).unwrap();
    let u = w.begin_node("uart@1000").unwrap();
    w.property_array_u32("reg", &[0x1000, 0x100]).unwrap();
    w.end_node(u).unwrap();
    let c = w.begin_node("chosen").unwrap();
    if let Some(s) = stdout {
        w.property("stdout-path", s).unwrap();
    }
    w.end_node(c).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

#[test]
fn stdout_path_forms() {
    let name = |stdout: &[u8]| {
        let blob = with_stdout(Some(stdout));
        let fdt = Fdt::new(&blob).unwrap();
        stdout_node(&fdt).map(|n| (n.node().name.to_string(), n.reg(0)))
    };
    let uart = Some(("uart@1000".to_string(), Some((0x1000, 0x100))));
    assert_eq!(name(b"/uart@1000\0"), uart);
    assert_eq!(name(b"/uart@1000:115200n8\0"), uart);
    assert_eq!(name(b"serial0:115200n8\0"), uart);
    assert_eq!(name(b"serial0\0"), uart);
    // Unknown alias, alias to an alias, missing node, empty or garbage property: none, and
    // no panic (the fdt crate's own `stdout()` panics on an empty property).
    assert_eq!(name(b"serial1\0"), None);
    assert_eq!(name(b"loop\0"), None);
    assert_eq!(name(b"/uart@2000\0"), None);
    assert_eq!(name(b""), None);
    assert_eq!(name(b"\0"), None);
    assert_eq!(name(&[0xff, 0xfe, 0]), None);
    let blob = with_stdout(None);
    assert!(stdout_node(&Fdt::new(&blob).unwrap()).is_none());
}

#[test]
fn every_node_is_visited_with_its_buses() {
    let blob = tree();
    let fdt = Fdt::new(&blob).unwrap();
    let mut seen = std::vec::Vec::new();
    for_each(&fdt, &mut |at| seen.push((at.node().name, at.reg(0))));
    assert!(seen.contains(&("axi", None)));
    assert!(seen.contains(&("serial@ff000000", Some((0xff00_0000, 0x1000)))));
    assert!(seen.contains(&("serial@7e201000", Some((0xfe20_1000, 0x200)))));
    assert!(seen.contains(&("dev@1040", Some((0xfe20_0040, 0x40)))));
    // Below a bus without `ranges`: visited, but no CPU address.
    assert!(seen.contains(&("dev@10", None)));
    assert_eq!(seen.len(), 8, "{seen:?}");
}
