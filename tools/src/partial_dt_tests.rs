//! Host tests of the partial-DT merge on fixtures written as a user would with dtc: Xen's
//! documented example (`docs/misc/arm/passthrough.txt`: a device under a 2/2 `passthrough`
//! bus with no `interrupt-parent`), a PL031 in 1/1 cells naming the partial tree's own GIC,
//! and a PL061 that is itself an interrupt parent inside `/passthrough`.

use super::*;

const ETH_IRQS: [u32; 9] = [0, 80, 4, 0, 81, 4, 0, 82, 4];

/// Xen's example: an ethernet controller, cells 2/2.
fn xen_example() -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let bus = w.begin_node("passthrough").unwrap();
    w.property_string("compatible", "simple-bus").unwrap();
    w.property_null("ranges").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let eth = w.begin_node("ethernet@f7000000").unwrap();
    w.property_string("compatible", "calxeda,hb-xgmac").unwrap();
    w.property_array_u64("reg", &[0xf700_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &ETH_IRQS).unwrap();
    w.property_null("dma-coherent").unwrap();
    w.end_node(eth).unwrap();
    w.end_node(bus).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

/// A PL031 and its clock in 1/1 cells, its interrupts routed to the partial tree's GIC
/// (phandle 1), which the guest does not have.
pub(crate) fn rtc_one_cell(bus_ranges: &[u8], reg: &[u32], clock_phandle: u32) -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let gic = w.begin_node("gic").unwrap();
    w.property_u32("phandle", 1).unwrap();
    w.end_node(gic).unwrap();
    let bus = w.begin_node("passthrough").unwrap();
    w.property_string("compatible", "simple-bus").unwrap();
    w.property("ranges", bus_ranges).unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let clk = w.begin_node("apb-pclk").unwrap();
    w.property_string("compatible", "fixed-clock").unwrap();
    w.property_u32("#clock-cells", 0).unwrap();
    w.property_u32("clock-frequency", 24_000_000).unwrap();
    w.property_u32("phandle", clock_phandle).unwrap();
    w.end_node(clk).unwrap();
    let rtc = w.begin_node("pl031@9010000").unwrap();
    w.property_string_list(
        "compatible",
        vec!["arm,pl031".into(), "arm,primecell".into()],
    )
    .unwrap();
    w.property_array_u32("reg", reg).unwrap();
    w.property_array_u32("interrupts", &[0, 2, 4]).unwrap();
    w.property_u32("interrupt-parent", 1).unwrap();
    w.property_u32("clocks", clock_phandle).unwrap();
    w.property_string("clock-names", "apb_pclk").unwrap();
    w.end_node(rtc).unwrap();
    w.end_node(bus).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

fn u32_prop(n: &FdtNode<'_, '_>, name: &str) -> Option<u32> {
    n.property(name)
        .and_then(|p| p.as_usize())
        .map(|v| v as u32)
}

fn u32s(value: &[u8]) -> Vec<u32> {
    value
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn xens_example_gets_the_guest_gic() {
    let m = merge(&xen_example()).unwrap();
    assert_eq!(
        m.regs,
        [("/passthrough/ethernet@f7000000".into(), 0xf700_0000, 0x1000)]
    );
    let fdt = Fdt::new(&m.blob).unwrap();
    let eth = fdt.find_node("/passthrough/ethernet@f7000000").unwrap();
    assert_eq!(u32_prop(&eth, "interrupt-parent"), Some(GUEST_PHANDLE_GIC));
    assert_eq!(u32s(eth.property("interrupts").unwrap().value), ETH_IRQS);
    assert_eq!(
        u32s(eth.property("reg").unwrap().value),
        [0, 0xf700_0000, 0, 0x1000]
    );
    assert!(eth.property("dma-coherent").is_some());
    let bus = fdt.find_node("/passthrough").unwrap();
    assert_eq!(u32_prop(&bus, "#address-cells"), Some(2));
    assert!(bus.property("ranges").is_some());
}

#[test]
fn one_cell_regs_and_a_foreign_gic_are_fixed_up() {
    let m = merge(&rtc_one_cell(&[], &[0x0901_0000, 0x1000], 3)).unwrap();
    assert_eq!(
        m.regs,
        [("/passthrough/pl031@9010000".into(), 0x0901_0000, 0x1000)]
    );
    let fdt = Fdt::new(&m.blob).unwrap();
    // Nothing outside /passthrough comes along (the partial tree's GIC stays behind).
    assert!(fdt.find_node("/gic").is_none());
    let root = fdt.find_node("/").unwrap();
    assert_eq!(u32_prop(&root, "#address-cells"), Some(2));
    assert_eq!(u32_prop(&root, "#size-cells"), Some(2));
    let bus = fdt.find_node("/passthrough").unwrap();
    assert_eq!(u32_prop(&bus, "#address-cells"), Some(2));
    assert_eq!(u32_prop(&bus, "#size-cells"), Some(2));
    let rtc = fdt.find_node("/passthrough/pl031@9010000").unwrap();
    assert_eq!(
        u32s(rtc.property("reg").unwrap().value),
        [0, 0x0901_0000, 0, 0x1000]
    );
    assert_eq!(u32_prop(&rtc, "interrupt-parent"), Some(GUEST_PHANDLE_GIC));
    // Phandles inside /passthrough stay: the clock is found.
    assert_eq!(u32_prop(&rtc, "clocks"), Some(3));
    let clk = fdt.find_node("/passthrough/apb-pclk").unwrap();
    assert_eq!(u32_prop(&clk, "phandle"), Some(3));
    // A device without interrupts gets no interrupt-parent it did not ask for.
    assert_eq!(u32_prop(&clk, "interrupt-parent"), None);
}

#[test]
fn an_interrupt_parent_inside_passthrough_is_kept() {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    let bus = w.begin_node("passthrough").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let gpio = w.begin_node("pl061@9030000").unwrap();
    w.property_array_u64("reg", &[0x0903_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 7, 4]).unwrap();
    w.property_null("interrupt-controller").unwrap();
    w.property_u32("phandle", 9).unwrap();
    w.end_node(gpio).unwrap();
    let keys = w.begin_node("gpio-keys").unwrap();
    w.property_u32("interrupt-parent", 9).unwrap();
    let key = w.begin_node("poweroff").unwrap();
    w.property_array_u32("interrupts", &[3, 1]).unwrap();
    w.end_node(key).unwrap();
    w.end_node(keys).unwrap();
    w.end_node(bus).unwrap();
    w.end_node(root).unwrap();
    let m = merge(&w.finish().unwrap()).unwrap();
    let fdt = Fdt::new(&m.blob).unwrap();
    let gpio = fdt.find_node("/passthrough/pl061@9030000").unwrap();
    assert_eq!(u32_prop(&gpio, "interrupt-parent"), Some(GUEST_PHANDLE_GIC));
    let keys = fdt.find_node("/passthrough/gpio-keys").unwrap();
    assert_eq!(u32_prop(&keys, "interrupt-parent"), Some(9));
    let key = fdt.find_node("/passthrough/gpio-keys/poweroff").unwrap();
    assert_eq!(
        u32_prop(&key, "interrupt-parent"),
        None,
        "inherits the PL061"
    );
}

#[test]
fn every_refusal_says_what_to_change() {
    let e = merge(b"not a dtb").unwrap_err();
    assert!(matches!(e, PartialDtError::Malformed(_)));
    assert!(e.to_string().contains("dtc"), "{e}");

    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    let other = w.begin_node("devices").unwrap();
    w.end_node(other).unwrap();
    w.end_node(root).unwrap();
    assert_eq!(
        merge(&w.finish().unwrap()),
        Err(PartialDtError::NoPassthrough)
    );

    let ranges = [0u8, 0, 0, 0, 0x09, 0, 0, 0, 0, 0x10, 0, 0];
    let e = merge(&rtc_one_cell(&ranges, &[0x0901_0000, 0x1000], 3)).unwrap_err();
    assert_eq!(e, PartialDtError::Ranges);

    let e = merge(&rtc_one_cell(&[], &[0x0901_0000, 0x1000, 0x5], 3)).unwrap_err();
    assert_eq!(
        e,
        PartialDtError::BadReg("/passthrough/pl031@9010000".into())
    );
    assert!(e.to_string().contains("pl031@9010000"));

    let e = merge(&rtc_one_cell(
        &[],
        &[0x0901_0000, 0x1000],
        GUEST_PHANDLE_GIC,
    ))
    .unwrap_err();
    assert_eq!(e, PartialDtError::PhandleClash("apb-pclk".into()));
    assert!(e.to_string().contains("65000"));
}

/// A domain whose partial tree puts the PL031 at `rtc_at`, given the page at `gfn`.
fn fragments_for(rtc_at: u32, gfn: u64) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    use crate::system::Overrides;
    use protocol::manifest::{ManifestDevice, ManifestWindow};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rtc.dtb"),
        rtc_one_cell(&[], &[rtc_at, 0x1000], 3),
    )
    .unwrap();
    let cfg = "name = \"rtc\"\nkernel = \"rtos\"\nmemory = 8\ndevice_tree = \"rtc.dtb\"\n";
    std::fs::write(dir.path().join("rtc.cfg"), cfg).unwrap();
    let toml = "[[domain]]\nconfig = \"rtc.cfg\"\n";
    let system = System::parse(&dir.path().join("s.toml"), toml, Overrides::default()).unwrap();
    let (mut manifest, images) = crate::image::manifest(&system).unwrap();
    manifest.domains[0].devices = vec![ManifestDevice {
        path: "/pl031@9010000".into(),
        mmio_base: 0x0901_0000,
        windows: vec![ManifestWindow {
            host: 0x0901_0000,
            guest: gfn << 12,
            size: 0x1000,
        }],
        irqs: vec![34],
    }];
    let out = device_trees(&system, &mut manifest, &images)?;
    assert_eq!(manifest.domains[0].device_tree.as_deref(), Some("rtc-dt"));
    Ok(out)
}

#[test]
fn the_partial_trees_devices_must_be_in_the_domains_windows() {
    let got = fragments_for(0x0901_0000, 0x9010).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "rtc-dt");
    assert_eq!(
        got[0].1,
        merge(&rtc_one_cell(&[], &[0x0901_0000, 0x1000], 3))
            .unwrap()
            .blob
    );
    // The tree says 0x9010000, `iomem` put the page at 0x20000000: the guest's driver would
    // find nothing there.
    let e = fragments_for(0x0901_0000, 0x20000).unwrap_err().to_string();
    assert!(
        e.contains("rtc.cfg:4: key `device_tree`: /passthrough/pl031@9010000 is at guest 0x9010000..0x9011000, which is not a window this domain is given (it has 0x20000000..0x20001000)"),
        "{e}"
    );
}
