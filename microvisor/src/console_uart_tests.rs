//! Host tests of console-UART discovery: synthetic trees for each kind and each way it can
//! go wrong, and the real board DTBs Debian's kernel package ships when the tools' cache
//! has them (skipped, with a note on stderr, when it does not: no test downloads anything).

use super::*;
use std::path::PathBuf;

/// A UART node's properties.
struct Uart<'a> {
    name: &'a str,
    compatible: &'a [&'a str],
    reg: u64,
    extra: &'a [(&'a str, u32)],
}

/// Root 2/2 with `/aliases` (serial0 = the first UART), `/axi` (identity ranges) holding
/// `uarts`, and `/chosen/stdout-path` = `stdout` when given.
fn board(uarts: &[Uart<'_>], stdout: Option<&str>) -> std::vec::Vec<u8> {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let aliases = w.begin_node("aliases").unwrap();
    for (i, u) in uarts.iter().enumerate() {
        w.property_string(&format!("serial{i}"), &format!("/axi/{}", u.name))
            .unwrap();
    }
    w.end_node(aliases).unwrap();
    let axi = w.begin_node("axi").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_null("ranges").unwrap();
    for u in uarts {
        let n = w.begin_node(u.name).unwrap();
        let list: std::vec::Vec<String> = u.compatible.iter().map(|c| c.to_string()).collect();
        w.property_string_list("compatible", list).unwrap();
        w.property_array_u64("reg", &[u.reg, 0x1000]).unwrap();
        w.property_array_u32("interrupts", &[0, 0x15, 4]).unwrap();
        for (k, v) in u.extra {
            w.property_u32(k, *v).unwrap();
        }
        w.end_node(n).unwrap();
    }
    w.end_node(axi).unwrap();
    let chosen = w.begin_node("chosen").unwrap();
    if let Some(s) = stdout {
        w.property_string("stdout-path", s).unwrap();
    }
    w.end_node(chosen).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

fn console(blob: &[u8]) -> Option<ConsoleUart> {
    find(&fdt::Fdt::new(blob).unwrap())
}

const CDNS0: Uart<'static> = Uart {
    name: "serial@ff000000",
    compatible: &["xlnx,zynqmp-uart", "cdns,uart-r1p12"],
    reg: 0xff00_0000,
    extra: &[],
};
const CDNS1: Uart<'static> = Uart {
    name: "serial@ff010000",
    compatible: &["cdns,uart-r1p8"],
    reg: 0xff01_0000,
    extra: &[],
};

#[test]
fn the_zynqmp_console_is_the_cadence_uart_stdout_names() {
    let c = console(&board(&[CDNS0, CDNS1], Some("serial0:115200n8"))).unwrap();
    assert_eq!(
        c,
        ConsoleUart {
            kind: UartKind::Cadence,
            region: Region {
                base: PhysAddr::new(0xff00_0000),
                size: 0x1000
            },
            irq: Some(53),
        }
    );
    let c = console(&board(&[CDNS0, CDNS1], Some("/axi/serial@ff010000"))).unwrap();
    assert_eq!(c.region.base, PhysAddr::new(0xff01_0000));
    let xuartps = Uart {
        compatible: &["xlnx,xuartps"],
        ..CDNS0
    };
    assert_eq!(
        console(&board(&[xuartps], Some("serial0"))).map(|c| c.kind),
        Some(UartKind::Cadence)
    );
}

#[test]
fn sixteen_550_kinds_and_their_register_layout() {
    let dw = Uart {
        name: "serial@ff1a0000",
        compatible: &["rockchip,rk3399-uart", "snps,dw-apb-uart"],
        reg: 0xff1a_0000,
        extra: &[("reg-shift", 2), ("reg-io-width", 4)],
    };
    assert_eq!(
        console(&board(&[dw], Some("serial0:1500000n8"))).map(|c| c.kind),
        Some(UartKind::Ns16550 {
            reg_shift: 2,
            io_width: 4
        })
    );
    let plain = Uart {
        name: "uart@3f8",
        compatible: &["ns16550a"],
        reg: 0x3f8,
        extra: &[],
    };
    assert_eq!(
        console(&board(&[plain], Some("serial0"))).map(|c| c.kind),
        Some(UartKind::Ns16550 {
            reg_shift: 0,
            io_width: 1
        })
    );
    // Layouts we would have to guess at are not driven.
    for extra in [&[("reg-io-width", 2)][..], &[("reg-shift", 4)][..]] {
        let odd = Uart {
            name: "uart@3f8",
            compatible: &["ns16550"],
            reg: 0x3f8,
            extra,
        };
        assert_eq!(console(&board(&[odd], Some("serial0"))), None);
    }
}

#[test]
fn an_unknown_or_missing_uart_means_silence() {
    let aux = Uart {
        name: "serial@7e215040",
        compatible: &["brcm,bcm2835-aux-uart"],
        reg: 0x7e21_5040,
        extra: &[],
    };
    let pl011 = Uart {
        name: "pl011@9000000",
        compatible: &["arm,pl011", "arm,primecell"],
        reg: 0x900_0000,
        extra: &[],
    };
    // stdout names an unknown UART: silent, even with a PL011 elsewhere in the tree.
    assert_eq!(console(&board(&[aux, pl011], Some("serial0"))), None);
    // stdout names nothing that exists: silent.
    assert_eq!(console(&board(&[CDNS0], Some("serial5"))), None);
    assert_eq!(console(&board(&[CDNS0], Some("/axi/serial@1"))), None);
    // No stdout-path at all: QEMU virt's fallback, the first PL011 (and only a PL011).
    let pl011 = Uart {
        name: "pl011@9000000",
        compatible: &["arm,pl011", "arm,primecell"],
        reg: 0x900_0000,
        extra: &[],
    };
    assert_eq!(
        console(&board(&[CDNS0, pl011], None)).map(|c| (c.kind, c.region.base)),
        Some((UartKind::Pl011, PhysAddr::new(0x900_0000)))
    );
    assert_eq!(console(&board(&[CDNS0], None)), None);
}

/// A board DTB from Debian's kernel package in the tools' cache
/// (`extract/linux-image-*/usr/lib/linux-image-*/<rel>`), found the way the tools find
/// the cache; `None` (and a note) when it is not there.
fn cached_dtb(rel: &str) -> Option<std::vec::Vec<u8>> {
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let root = absolute(std::env::var_os("BULKHEAD_CACHE"))
        .or_else(|| absolute(std::env::var_os("XDG_CACHE_HOME")).map(|d| d.join("bulkhead")))
        .or_else(|| absolute(std::env::var_os("HOME")).map(|h| h.join(".cache/bulkhead")))?;
    let subdirs = |dir: PathBuf, prefix: &str| -> std::vec::Vec<PathBuf> {
        let mut v: std::vec::Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        v
    };
    let found = subdirs(root.join("extract"), "linux-image-")
        .into_iter()
        .flat_map(|pkg| subdirs(pkg.join("usr/lib"), "linux-image-"))
        .map(|dir| dir.join(rel))
        .find(|p| p.is_file());
    match found {
        Some(p) => std::fs::read(p).ok(),
        None => {
            eprintln!(
                "note: {rel} not in the bulkhead cache under {} (`cargo bulkhead fetch` puts Debian's kernel package there); skipped",
                root.display()
            );
            None
        }
    }
}

#[test]
fn real_board_trees() {
    // ZCU102: stdout-path "serial0:115200n8" -> /axi/serial@ff000000, Cadence, SPI 21.
    if let Some(blob) = cached_dtb("xilinx/zynqmp-zcu102-rev1.0.dtb") {
        let c = console(&blob).unwrap();
        assert_eq!(c.kind, UartKind::Cadence);
        assert_eq!(c.region.base, PhysAddr::new(0xff00_0000));
        assert_eq!(c.irq, Some(53));
        assert_eq!(c.to_string(), "Cadence UART at 0xff000000");
        // The GIC-400 sits under /axi too: its frames translate through the same helper.
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let gic = crate::dt_addr::find_compatible(&fdt, &["arm,gic-400"]).unwrap();
        assert_eq!(gic.reg_count(), 4);
        assert_eq!(gic.reg(0), Some((0xf901_0000, 0x1_0000)));
        assert_eq!(gic.reg(1), Some((0xf902_0000, 0x2_0000)));
    }
    // RockPro64 (RK3399): serial2 is a DesignWare UART with 32-bit registers 4 bytes apart.
    if let Some(blob) = cached_dtb("rockchip/rk3399-rockpro64.dtb") {
        let c = console(&blob).unwrap();
        assert_eq!(
            c.kind,
            UartKind::Ns16550 {
                reg_shift: 2,
                io_width: 4
            }
        );
        assert_eq!(c.region.base, PhysAddr::new(0xff1a_0000));
    }
    // Hisilicon D05 (Kunpeng's predecessor): an SBSA UART under /soc.
    if let Some(blob) = cached_dtb("hisilicon/hip07-d05.dtb") {
        let c = console(&blob).unwrap();
        assert_eq!(c.kind, UartKind::Pl011);
        assert_eq!(c.region.base, PhysAddr::new(0x602b_0000));
    }
    // Raspberry Pi 4: stdout is the mini UART (not driven: silent); its PL011, serial0, sits
    // under /soc whose ranges move 0x7e00_0000 to 0xfe00_0000.
    if let Some(blob) = cached_dtb("broadcom/bcm2711-rpi-4-b.dtb") {
        assert_eq!(console(&blob), None);
        let fdt = fdt::Fdt::new(&blob).unwrap();
        let pl011 = crate::dt_addr::find_path(&fdt, "/soc/serial@7e201000").unwrap();
        assert_eq!(kind_of(pl011.node()), Some(UartKind::Pl011));
        assert_eq!(pl011.reg(0).map(|r| r.0), Some(0xfe20_1000));
    }
}
