//! Host tests for [`super`]: synthetic buses (identity, translating, none, three levels,
//! 1-cell), interrupts routed elsewhere than the GIC, and the real ZCU102 tree from
//! Debian's kernel package (when the tools' cache has it).

use super::*;
use vm_fdt::FdtWriter;

/// A root (2/2 cells, GIC phandle 1, a PL011 console) with the buses `buses` writes.
fn tree(buses: impl Fn(&mut FdtWriter)) -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_u32("interrupt-parent", 1).unwrap();
    let gic = w.begin_node("intc@8000000").unwrap();
    w.property_string("compatible", "arm,gic-400").unwrap();
    w.property_array_u64("reg", &[0x0800_0000, 0x1000]).unwrap();
    w.property_u32("phandle", 1).unwrap();
    w.end_node(gic).unwrap();
    let uart = w.begin_node("pl011@9000000").unwrap();
    w.property_string("compatible", "arm,pl011").unwrap();
    w.property_array_u64("reg", &[0x0900_0000, 0x1000]).unwrap();
    w.end_node(uart).unwrap();
    buses(&mut w);
    let chosen = w.begin_node("chosen").unwrap();
    w.property_string("stdout-path", "/pl011@9000000").unwrap();
    w.end_node(chosen).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

/// A device `name` with 1-cell or 2-cell `reg` (`cells`) and an SPI.
fn device(w: &mut FdtWriter, name: &str, cells: u32, reg: [u64; 2], spi: u32) {
    let n = w.begin_node(name).unwrap();
    w.property_string("compatible", "arm,pl061").unwrap();
    if cells == 1 {
        w.property_array_u32("reg", &[reg[0] as u32, reg[1] as u32])
            .unwrap();
    } else {
        w.property_array_u64("reg", &reg).unwrap();
    }
    w.property_array_u32("interrupts", &[0, spi, 4]).unwrap();
    w.end_node(n).unwrap();
}

fn find<'a>(host: &'a [HostDevice], path: &str) -> &'a HostDevice {
    host.iter()
        .find(|h| h.path == path)
        .unwrap_or_else(|| panic!("no {path} in {host:#?}"))
}

#[test]
fn an_identity_bus_keeps_addresses() {
    let dtb = tree(|w| {
        let axi = w.begin_node("axi").unwrap();
        w.property_u32("#address-cells", 2).unwrap();
        w.property_u32("#size-cells", 2).unwrap();
        w.property_null("ranges").unwrap();
        device(w, "gpio@ff0a0000", 2, [0xff0a_0000, 0x1000], 16);
        w.end_node(axi).unwrap();
    });
    let host = host_devices(&dtb, None).unwrap();
    let gpio = find(&host, "/axi/gpio@ff0a0000");
    assert_eq!(gpio.regs, [(0xff0a_0000, 0x1000)]);
    assert_eq!(gpio.irqs, [48]);
    assert_eq!(gpio.kept, None);
    assert_eq!(gpio.compatible, ["arm,pl061"]);
    // The bus itself (no reg, no interrupts) is not a device.
    assert!(host.iter().all(|h| h.path != "/axi"));
}

#[test]
fn translating_buses_nest_with_their_own_cells() {
    // /soc: 1-cell children at 0x7e000000 appear at 0xfe000000 (a Raspberry Pi 4's shape);
    // /soc/sub: a second translation, +0x10000, from 0 in its own space.
    let dtb = tree(|w| {
        let soc = w.begin_node("soc").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        w.property_array_u32("ranges", &[0x7e00_0000, 0, 0xfe00_0000, 0x0180_0000])
            .unwrap();
        device(w, "gpio@7e200000", 1, [0x7e20_0000, 0x1000], 20);
        let sub = w.begin_node("sub@7e300000").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        w.property_array_u32("ranges", &[0, 0x7e30_0000, 0x10000])
            .unwrap();
        device(w, "gpio@2000", 1, [0x2000, 0x1000], 21);
        w.end_node(sub).unwrap();
        // Outside every `ranges` entry.
        device(w, "gpio@10000000", 1, [0x1000_0000, 0x1000], 22);
        w.end_node(soc).unwrap();
    });
    let host = host_devices(&dtb, None).unwrap();
    assert_eq!(
        find(&host, "/soc/gpio@7e200000").regs,
        [(0xfe20_0000, 0x1000)]
    );
    let deep = find(&host, "/soc/sub@7e300000/gpio@2000");
    assert_eq!(deep.regs, [(0xfe30_2000, 0x1000)]);
    assert_eq!(deep.kept, None);
    let outside = find(&host, "/soc/gpio@10000000");
    assert_eq!(
        outside.kept.as_deref(),
        Some("its registers are not CPU addresses: no entry of /soc's `ranges` covers 0x10000000")
    );
}

#[test]
fn a_bus_without_ranges_is_not_cpu_addressable() {
    let dtb = tree(|w| {
        let i2c = w.begin_node("i2c@ff020000").unwrap();
        w.property_string("compatible", "cdns,i2c-r1p14").unwrap();
        w.property_array_u64("reg", &[0xff02_0000, 0x1000]).unwrap();
        w.property_array_u32("interrupts", &[0, 17, 4]).unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 0).unwrap();
        let eeprom = w.begin_node("eeprom@54").unwrap();
        w.property_u32("reg", 0x54).unwrap();
        w.end_node(eeprom).unwrap();
        w.end_node(i2c).unwrap();
    });
    let host = host_devices(&dtb, None).unwrap();
    assert_eq!(find(&host, "/i2c@ff020000").kept, None);
    let eeprom = find(&host, "/i2c@ff020000/eeprom@54");
    assert!(eeprom.regs.is_empty());
    assert_eq!(
        eeprom.kept.as_deref(),
        Some("its registers are not CPU addresses: /i2c@ff020000 has no `ranges`, so its children's `reg` is a bus address")
    );
}

#[test]
fn interrupts_of_another_controller_are_not_spis() {
    let dtb = tree(|w| {
        let gpio = w.begin_node("gpio@9030000").unwrap();
        w.property_string("compatible", "arm,pl061").unwrap();
        w.property_array_u64("reg", &[0x0903_0000, 0x1000]).unwrap();
        w.property_array_u32("interrupts", &[0, 7, 4]).unwrap();
        w.property_u32("phandle", 2).unwrap();
        w.end_node(gpio).unwrap();
        let dev = w.begin_node("sensor@9040000").unwrap();
        w.property_array_u64("reg", &[0x0904_0000, 0x1000]).unwrap();
        w.property_u32("interrupt-parent", 2).unwrap();
        w.property_array_u32("interrupts", &[3, 4]).unwrap();
        w.end_node(dev).unwrap();
    });
    let host = host_devices(&dtb, None).unwrap();
    assert_eq!(find(&host, "/gpio@9030000").irqs, [39]);
    let sensor = find(&host, "/sensor@9040000");
    assert!(sensor.irqs.is_empty());
    assert!(sensor
        .kept
        .as_deref()
        .unwrap()
        .contains("another interrupt controller"));
    // Parts of a device nobody may have are kept with it.
    assert!(find(&host, "/intc@8000000")
        .kept
        .as_deref()
        .unwrap()
        .contains("GIC"));
}

/// The ZCU102's tree as Debian ships it, if the tools' cache has it.
fn zcu102() -> Option<Vec<u8>> {
    crate::dtb::boards_tests::cached_dtb(crate::machine::ZCU102_DTB)
}

#[test]
fn the_zcu102_devices_under_axi_are_found_and_translated() {
    let Some(dtb) = zcu102() else {
        return;
    };
    let host = host_devices(&dtb, Some("serial1")).unwrap();
    let uart1 = find(&host, "/axi/serial@ff010000");
    assert_eq!(uart1.regs, [(0xff01_0000, 0x1000)]);
    assert_eq!(uart1.irqs, [54], "SPI 22");
    assert!(uart1.compatible.iter().any(|c| c == "cdns,uart-r1p12"));
    // The management port while it is one; the microvisor's console always.
    assert!(
        uart1
            .kept
            .as_deref()
            .unwrap()
            .starts_with("it is dom0's management port (`[system] mgmt_port = \"serial1\"`)"),
        "{uart1:?}"
    );
    assert!(find(&host, "/axi/serial@ff000000")
        .kept
        .as_deref()
        .unwrap()
        .contains("microvisor's UART"));
    assert!(find(&host, "/axi/interrupt-controller@f9010000")
        .kept
        .as_deref()
        .unwrap()
        .contains("GIC"));
    // Freed (`mgmt_port = "none"`), the second UART may go to a guest.
    let host = host_devices(&dtb, None).unwrap();
    assert_eq!(find(&host, "/axi/serial@ff010000").kept, None);
    // A whole-page device with one SPI on the same bus: the GPIO controller.
    let gpio = find(&host, "/axi/gpio@ff0a0000");
    assert_eq!(gpio.regs, [(0xff0a_0000, 0x1000)]);
    assert_eq!(gpio.irqs, [48]);
}

#[test]
fn ram_is_not_a_device_but_a_memory_controller_is() {
    let dtb = tree(|w| {
        let mem = w.begin_node("memory@40000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u64("reg", &[0x4000_0000, 0x4000_0000])
            .unwrap();
        w.end_node(mem).unwrap();
        let ddrc = w.begin_node("memory-controller@fd070000").unwrap();
        w.property_string("compatible", "xlnx,zynqmp-ddrc-2.40a")
            .unwrap();
        w.property_array_u64("reg", &[0xfd07_0000, 0x3_0000])
            .unwrap();
        w.property_array_u32("interrupts", &[0, 112, 4]).unwrap();
        w.end_node(ddrc).unwrap();
    });
    let host = host_devices(&dtb, None).unwrap();
    assert_eq!(
        find(&host, "/memory@40000000").kept.as_deref(),
        Some("it is not a device")
    );
    let ddrc = find(&host, "/memory-controller@fd070000");
    assert_eq!(ddrc.kept, None);
    assert_eq!(ddrc.irqs, [144]);
}
