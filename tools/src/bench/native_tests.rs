use super::*;

/// A tree shaped like the ZCU102's: the console UART under `/axi`, its clocks, power domain
/// and pins from a firmware node, a second UART left alone.
fn board() -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    let a = w.begin_node("aliases").unwrap();
    w.property_string("serial0", "/axi/serial@ff000000")
        .unwrap();
    w.end_node(a).unwrap();
    let fw = w.begin_node("firmware").unwrap();
    w.property_u32("phandle", 7).unwrap();
    w.end_node(fw).unwrap();
    let axi = w.begin_node("axi").unwrap();
    for name in ["serial@ff000000", "serial@ff010000"] {
        let s = w.begin_node(name).unwrap();
        w.property_string("compatible", "cdns,uart-r1p12").unwrap();
        w.property_array_u32("clocks", &[7, 0x38, 7, 0x1f]).unwrap();
        w.property_array_u32("power-domains", &[7, 0x21]).unwrap();
        w.property_array_u32("pinctrl-0", &[7]).unwrap();
        w.property_string("pinctrl-names", "default").unwrap();
        w.end_node(s).unwrap();
    }
    w.end_node(axi).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

#[test]
fn the_console_uart_gets_a_fixed_clock_and_nothing_else_changes() {
    let out = fixed_uart_clock(&board()).unwrap();
    let fdt = Fdt::new(&out).unwrap();
    let clk = fdt.find_node(&format!("/{UART_CLOCK_NODE}")).unwrap();
    assert_eq!(
        clk.compatible().unwrap().first(),
        "fixed-clock",
        "the clock node"
    );
    let ph = clk.property("phandle").unwrap().as_usize().unwrap();
    assert_eq!(ph, 8, "one past the largest phandle");
    assert_eq!(
        clk.property("clock-frequency").unwrap().as_usize(),
        Some(UART_CLOCK_HZ as usize)
    );
    let uart = fdt.find_node("/axi/serial@ff000000").unwrap();
    let clocks = uart.property("clocks").unwrap().value;
    assert_eq!(clocks, [0, 0, 0, 8, 0, 0, 0, 8]);
    for gone in ["power-domains", "pinctrl-0", "pinctrl-names"] {
        assert!(uart.property(gone).is_none(), "{gone}");
    }
    assert!(uart.property("compatible").is_some());
    // The other UART keeps its firmware wiring.
    let other = fdt.find_node("/axi/serial@ff010000").unwrap();
    assert_eq!(other.property("clocks").unwrap().value.len(), 16);
    assert!(other.property("power-domains").is_some());
}

#[test]
fn a_tree_without_a_serial0_alias_is_an_error() {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.end_node(root).unwrap();
    let blob = w.finish().unwrap();
    assert!(fixed_uart_clock(&blob)
        .unwrap_err()
        .to_string()
        .contains("serial0"));
}

#[test]
fn native_machines_boot_at_el1_on_the_same_board() {
    let join = |m, d: Option<&Path>| machine_args(m, d).join(" ");
    assert_eq!(join(Machine::Virt, None), "-M virt,gic-version=3 -cpu max");
    assert_eq!(
        join(Machine::VirtGicv2, None),
        "-M virt,gic-version=2 -cpu max"
    );
    assert_eq!(
        join(Machine::Zcu102, Some(Path::new("/t/z.dtb"))),
        "-M xlnx-zcu102 -dtb /t/z.dtb"
    );
    for m in [Machine::Virt, Machine::VirtGicv2, Machine::Zcu102] {
        assert!(!join(m, None).contains("virtualization"), "{m:?}");
    }
    assert_eq!(console(Machine::Zcu102), "ttyPS0");
    assert_eq!(console(Machine::VirtGicv2), "ttyAMA0");
    let all = linux_args(
        Machine::Zcu102,
        Some(Path::new("z.dtb")),
        Path::new("Image"),
        Path::new("i.cpio"),
        "console=ttyPS0 quiet",
        1,
        512,
    )
    .join(" ");
    assert!(all.ends_with(
        "-smp 1 -m 512 -nographic -kernel Image -initrd i.cpio -append console=ttyPS0 quiet"
    ));
}

#[test]
fn the_native_virt_tree_keeps_only_what_a_guest_is_given() {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_string("compatible", "linux,dummy-virt").unwrap();
    for name in [
        "cpus",
        "memory@40000000",
        "pl011@9000000",
        "timer",
        "psci",
        "pcie@10000000",
        "virtio_mmio@a000000",
        "fw-cfg@9020000",
        "flash@0",
        "pl031@9010000",
        "pl061@9030000",
        "gpio-keys",
        "platform-bus@c000000",
    ] {
        let n = w.begin_node(name).unwrap();
        w.property_u32("marker", 1).unwrap();
        w.end_node(n).unwrap();
    }
    let gic = w.begin_node("intc@8000000").unwrap();
    let its = w.begin_node("its@8080000").unwrap();
    w.end_node(its).unwrap();
    w.end_node(gic).unwrap();
    w.end_node(root).unwrap();
    let blob = w.finish().unwrap();
    let out = guest_view(&blob).unwrap();
    let fdt = Fdt::new(&out).unwrap();
    let names: Vec<&str> = fdt
        .find_node("/")
        .unwrap()
        .children()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names,
        [
            "cpus",
            "memory@40000000",
            "pl011@9000000",
            "timer",
            "psci",
            "intc@8000000"
        ]
    );
    let gic = fdt.find_node("/intc@8000000").unwrap();
    assert_eq!(gic.children().count(), 0, "the ITS is not a guest's");
    assert!(fdt
        .find_node("/pl011@9000000")
        .unwrap()
        .property("marker")
        .is_some());
    let root = fdt.find_node("/").unwrap();
    assert_eq!(
        root.property("compatible").and_then(|p| p.as_str()),
        Some("linux,dummy-virt")
    );
}
