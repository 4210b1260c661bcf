//! Host tests of management-UART discovery on a ZCU102-like tree: two Cadence UARTs under
//! `/axi` (with a translating `ranges`, so an untranslated address would be caught), the
//! first the console.

use super::*;
use crate::platform::Platform;

/// The tree, with `/chosen/bulkhead,mgmt-port` = `mgmt` when given. `/axi` maps its child
/// address 0 to 0xff00_0000, so `serial@10000` is at 0xff01_0000.
fn board(mgmt: Option<&str>) -> std::vec::Vec<u8> {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let mem = w.begin_node("memory@0").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0, 0x8000_0000]).unwrap();
    w.end_node(mem).unwrap();
    let gic = w.begin_node("interrupt-controller@f9010000").unwrap();
    w.property_string("compatible", "arm,gic-400").unwrap();
    w.property_array_u64(
        "reg",
        &[
            0xf901_0000,
            0x1_0000,
            0xf902_0000,
            0x2_0000,
            0xf904_0000,
            0x2_0000,
            0xf906_0000,
            0x2_0000,
        ],
    )
    .unwrap();
    w.end_node(gic).unwrap();
    let aliases = w.begin_node("aliases").unwrap();
    w.property_string("serial0", "/axi/serial@0").unwrap();
    w.property_string("serial1", "/axi/serial@10000").unwrap();
    w.property_string("rtc0", "/axi/rtc@20000").unwrap();
    w.end_node(aliases).unwrap();
    let axi = w.begin_node("axi").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_array_u32("ranges", &[0, 0, 0xff00_0000, 0x100_0000])
        .unwrap();
    for (name, irq) in [("serial@0", 0x15), ("serial@10000", 0x16)] {
        let n = w.begin_node(name).unwrap();
        w.property_string_list(
            "compatible",
            vec!["xlnx,zynqmp-uart".into(), "cdns,uart-r1p12".into()],
        )
        .unwrap();
        let at = u32::from_str_radix(name.split('@').nth(1).unwrap(), 16).unwrap();
        w.property_array_u32("reg", &[at, 0x1000]).unwrap();
        w.property_array_u32("interrupts", &[0, irq, 4]).unwrap();
        w.end_node(n).unwrap();
    }
    let rtc = w.begin_node("rtc@20000").unwrap();
    w.property_string("compatible", "xlnx,zynqmp-rtc").unwrap();
    w.property_array_u32("reg", &[0x2_0000, 0x100]).unwrap();
    w.end_node(rtc).unwrap();
    w.end_node(axi).unwrap();
    let chosen = w.begin_node("chosen").unwrap();
    w.property_string("stdout-path", "serial0:115200n8")
        .unwrap();
    if let Some(m) = mgmt {
        w.property_string(MGMT_PORT_PROP, m).unwrap();
    }
    w.end_node(chosen).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

fn platform(mgmt: Option<&str>) -> Platform {
    Platform::from_fdt(&board(mgmt)).unwrap()
}

#[test]
fn the_named_uart_translated_through_its_bus() {
    for name in ["serial1", "/axi/serial@10000"] {
        let p = platform(Some(name));
        assert_eq!(p.mgmt_refused, None, "{name}");
        let m = p.mgmt_uart.expect(name);
        assert_eq!(m.kind, UartKind::Cadence);
        assert_eq!(m.region.base, PhysAddr::new(0xff01_0000));
        assert_eq!(m.region.size, 0x1000);
        assert_eq!(m.irq, Some(32 + 0x16));
        assert_eq!(label(m.kind), protocol::cap::MGMT_UART_CADENCE);
        // The console is the other one.
        assert_eq!(p.uart.unwrap().base, PhysAddr::new(0xff00_0000));
    }
}

#[test]
fn none_unless_named() {
    let p = platform(None);
    assert_eq!((p.mgmt_uart, p.mgmt_refused), (None, None));
}

#[test]
fn never_the_console_nor_a_stranger() {
    for console in ["serial0", "/axi/serial@0"] {
        let p = platform(Some(console));
        assert_eq!(p.mgmt_uart, None);
        assert_eq!(p.mgmt_refused, Some(Refused::Kept), "{console}");
    }
    let p = platform(Some("rtc0"));
    assert_eq!(p.mgmt_refused, Some(Refused::NotAUart));
    for missing in ["serial7", "/axi/serial@30000", ""] {
        let p = platform(Some(missing));
        assert_eq!(p.mgmt_uart, None);
        assert_eq!(p.mgmt_refused, Some(Refused::NoSuchNode), "{missing:?}");
    }
}
