use super::*;

/// QEMU virt's GICv3 node (distributor and redistributors).
fn gicv3(w: &mut vm_fdt::FdtWriter) {
    let g = w.begin_node("intc@8000000").unwrap();
    w.property_string("compatible", "arm,gic-v3").unwrap();
    w.property_array_u64("reg", &[0x800_0000, 0x1_0000, 0x80a_0000, 0xf6_0000])
        .unwrap();
    w.end_node(g).unwrap();
}

/// 1 GiB of RAM at 0x4000_0000 (two-cell addresses).
fn ram_1g(w: &mut vm_fdt::FdtWriter) {
    let mem = w.begin_node("memory@40000000").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0x4000_0000, 0x4000_0000])
        .unwrap();
    w.end_node(mem).unwrap();
}

/// A tree begun with its root (two-cell addresses and sizes), 1 GiB of RAM and a GICv3:
/// what every board needs; the caller adds the rest and ends `root`.
fn root_with_ram_and_gic() -> (vm_fdt::FdtWriter, vm_fdt::FdtWriterNode) {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    ram_1g(&mut w);
    gicv3(&mut w);
    (w, root)
}

/// A QEMU-virt-like board: 2 CPUs, 1 GiB RAM, GICv3, a PL011 and two boot modules.
fn board(with_gic: bool) -> std::vec::Vec<u8> {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    ram_1g(&mut w);
    let cpus = w.begin_node("cpus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 0).unwrap();
    for i in 0..2u32 {
        let c = w.begin_node(&format!("cpu@{i}")).unwrap();
        w.property_string("device_type", "cpu").unwrap();
        w.property_u32("reg", i).unwrap();
        w.end_node(c).unwrap();
    }
    w.end_node(cpus).unwrap();
    if with_gic {
        gicv3(&mut w);
    }
    let u = w.begin_node("pl011@9000000").unwrap();
    w.property_string_list(
        "compatible",
        vec!["arm,pl011".into(), "arm,primecell".into()],
    )
    .unwrap();
    w.property_array_u64("reg", &[0x900_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 1, 4]).unwrap();
    w.property_null(PASSTHROUGH_PROP).unwrap();
    w.end_node(u).unwrap();
    // Given to a guest: taken. The UART marked too: never (the microvisor's own).
    let rtc = w.begin_node("pl031@9010000").unwrap();
    w.property_string("compatible", "arm,pl031").unwrap();
    w.property_array_u64("reg", &[0x901_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 2, 4]).unwrap();
    w.property_null(PASSTHROUGH_PROP).unwrap();
    w.end_node(rtc).unwrap();
    let gpio = w.begin_node("pl061@9030000").unwrap();
    w.property_array_u64("reg", &[0x903_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 7, 4]).unwrap();
    w.end_node(gpio).unwrap();
    let v = w.begin_node("virtio_mmio@a003e00").unwrap();
    w.property_string("compatible", "virtio,mmio").unwrap();
    w.property_array_u64("reg", &[0xa00_3e00, 0x200]).unwrap();
    w.property_array_u32("interrupts", &[0, 0x2f, 1]).unwrap();
    w.end_node(v).unwrap();
    let chosen = w.begin_node("chosen").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_string("stdout-path", "/pl011@9000000").unwrap();
    for (addr, label) in [(0x5000_0000u64, "dom0"), (0x5020_0000, "manifest")] {
        let m = w.begin_node(&format!("module@{addr:x}")).unwrap();
        w.property_string("compatible", MODULE_COMPATIBLE).unwrap();
        w.property_array_u64("reg", &[addr, 0x1234]).unwrap();
        w.property_string(LABEL_PROP, label).unwrap();
        w.end_node(m).unwrap();
    }
    w.end_node(chosen).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

/// Passthrough nodes below buses: `/axi` (identity `ranges`, a Cadence UART) and `/soc`
/// (1-cell, translating 0x7e00_0000 to 0xfe00_0000, a PL061); one below a bus without
/// `ranges` is not a device the microvisor can give.
#[test]
fn passthrough_nodes_below_buses_are_translated() {
    let (mut w, root) = root_with_ram_and_gic();
    let axi = w.begin_node("axi").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_null("ranges").unwrap();
    let u = w.begin_node("serial@ff010000").unwrap();
    w.property_string_list(
        "compatible",
        vec!["xlnx,zynqmp-uart".into(), "cdns,uart-r1p12".into()],
    )
    .unwrap();
    w.property_array_u64("reg", &[0xff01_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 22, 4]).unwrap();
    w.property_null(PASSTHROUGH_PROP).unwrap();
    w.end_node(u).unwrap();
    w.end_node(axi).unwrap();
    let soc = w.begin_node("soc").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_array_u32("ranges", &[0x7e00_0000, 0, 0xfe00_0000, 0x0100_0000])
        .unwrap();
    let gpio = w.begin_node("gpio@7e200000").unwrap();
    w.property_string("compatible", "arm,pl061").unwrap();
    w.property_array_u32("reg", &[0x7e20_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 7, 4]).unwrap();
    w.property_null(PASSTHROUGH_PROP).unwrap();
    w.end_node(gpio).unwrap();
    w.end_node(soc).unwrap();
    let closed = w.begin_node("closed").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    let x = w.begin_node("dev@0").unwrap();
    w.property_array_u32("reg", &[0, 0x1000]).unwrap();
    w.property_null(PASSTHROUGH_PROP).unwrap();
    w.end_node(x).unwrap();
    w.end_node(closed).unwrap();
    w.end_node(root).unwrap();
    let p = Platform::from_fdt(&w.finish().unwrap()).unwrap();
    let node = |base: u64, irq: u32, reset| PassthroughNode {
        node: DeviceNode {
            region: Region {
                base: PhysAddr::new(base),
                size: 0x1000,
            },
            irq: Some(irq),
        },
        reset: Some(reset),
    };
    assert_eq!(
        p.passthrough.as_slice(),
        &[
            node(0xff01_0000, 54, crate::device_reset::Kind::Cadence),
            node(0xfe20_0000, 39, crate::device_reset::Kind::Pl061),
        ]
    );
}

#[test]
fn discovers_the_board() {
    let p = Platform::from_fdt(&board(true)).unwrap();
    assert_eq!(
        p.ram.as_slice(),
        &[Region {
            base: PhysAddr::new(0x4000_0000),
            size: 0x4000_0000
        }]
    );
    assert_eq!(p.cpus.as_slice(), &[0, 1]);
    assert_eq!(p.gicd.base, PhysAddr::new(0x800_0000));
    assert_eq!(
        p.gicr,
        Region {
            base: PhysAddr::new(0x80a_0000),
            size: 0xf6_0000
        }
    );
    assert_eq!(p.uart.map(|u| u.base), Some(PhysAddr::new(0x900_0000)));
    assert_eq!(p.uart_irq, Some(33));
    assert_eq!(
        p.virtio.as_slice(),
        &[DeviceNode {
            region: Region {
                base: PhysAddr::new(0xa00_3e00),
                size: 0x200
            },
            irq: Some(79),
        }]
    );
    // The marked RTC only: the unmarked GPIO stays with nobody, the UART with us.
    assert_eq!(
        p.passthrough.as_slice(),
        &[PassthroughNode {
            node: DeviceNode {
                region: Region {
                    base: PhysAddr::new(0x901_0000),
                    size: 0x1000
                },
                irq: Some(34),
            },
            reset: Some(crate::device_reset::Kind::Pl031),
        }]
    );
    let dom0 = p.module("dom0").unwrap();
    assert_eq!(
        dom0.region,
        Region {
            base: PhysAddr::new(0x5000_0000),
            size: 0x1234
        }
    );
    assert!(p.module("manifest").is_some());
    assert!(p.module("rtos").is_none());
}

#[test]
fn device_pages_cover_the_registers() {
    let node = |base: u64, size: u64| DeviceNode {
        region: Region {
            base: PhysAddr::new(base),
            size,
        },
        irq: None,
    };
    assert_eq!(
        node(0xa00_3e00, 0x200).page_span(),
        (PhysAddr::new(0xa00_3000), 0x1000)
    );
    assert_eq!(
        node(0xa00_0f00, 0x200).page_span(),
        (PhysAddr::new(0xa00_0000), 0x2000)
    );
    assert_eq!(
        node(0x900_0000, 0x1000).page_span(),
        (PhysAddr::new(0x900_0000), 0x1000)
    );
}

#[test]
fn interrupt_specifiers() {
    let spec = |t: u32, n: u32| [t.to_be_bytes(), n.to_be_bytes(), 4u32.to_be_bytes()].concat();
    assert_eq!(gic_intid(&spec(0, 1)), Some(33));
    assert_eq!(gic_intid(&spec(1, 11)), Some(27));
    assert_eq!(gic_intid(&spec(1, 16)), None);
    assert_eq!(gic_intid(&spec(7, 1)), None);
    assert_eq!(gic_intid(&[0, 0]), None);
}

#[test]
fn missing_gic_is_a_typed_error() {
    assert_eq!(
        Platform::from_fdt(&board(false)).err(),
        Some(PlatformError::NoGic)
    );
}

/// A board with DRAM at 0 (like a ZCU102 or a Pi 4): two banks, a `/memreserve/`, three
/// `/reserved-memory` children (fixed, fixed `no-map`, dynamic) and a disabled one.
fn board_with_reservations(extra_reserved: usize) -> std::vec::Vec<u8> {
    let rsv = [vm_fdt::FdtReserveEntry::new(0x7ff0_0000, 0x1_0000).unwrap()];
    let mut w = vm_fdt::FdtWriter::new_with_mem_reserv(&rsv).unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let mem = w.begin_node("memory@0").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0, 0x8000_0000, 0x8_0000_0000, 0x8000_0000])
        .unwrap();
    w.end_node(mem).unwrap();
    let cpus = w.begin_node("cpus").unwrap();
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 0).unwrap();
    let c = w.begin_node("cpu@0").unwrap();
    w.property_string("device_type", "cpu").unwrap();
    w.property_u32("reg", 0).unwrap();
    w.end_node(c).unwrap();
    w.end_node(cpus).unwrap();
    let res = w.begin_node("reserved-memory").unwrap();
    // One cell each, as many boards write it: the reader must use these, not the root's.
    w.property_u32("#address-cells", 1).unwrap();
    w.property_u32("#size-cells", 1).unwrap();
    w.property_null("ranges").unwrap();
    let fw = w.begin_node("firmware@100000").unwrap();
    w.property_array_u32("reg", &[0x10_0000, 0x2_0000]).unwrap();
    w.end_node(fw).unwrap();
    let tee = w.begin_node("tee@60000000").unwrap();
    w.property_array_u32("reg", &[0x6000_0000, 0x20_0000])
        .unwrap();
    w.property_null("no-map").unwrap();
    w.end_node(tee).unwrap();
    let cma = w.begin_node("linux,cma").unwrap();
    w.property_array_u32("size", &[0x400_0000]).unwrap();
    w.end_node(cma).unwrap();
    let off = w.begin_node("unused@70000000").unwrap();
    w.property_array_u32("reg", &[0x7000_0000, 0x1000]).unwrap();
    w.property_string("status", "disabled").unwrap();
    w.end_node(off).unwrap();
    for i in 0..extra_reserved {
        let n = w.begin_node(&format!("more@{i:x}000")).unwrap();
        w.property_array_u32("reg", &[i as u32 * 0x1000, 0x1000])
            .unwrap();
        w.end_node(n).unwrap();
    }
    w.end_node(res).unwrap();
    gicv3(&mut w);
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

fn region(base: u64, size: u64) -> Region {
    Region {
        base: PhysAddr::new(base),
        size,
    }
}

fn ranges(r: &BootRanges) -> std::vec::Vec<(u64, u64)> {
    r.ranges()
        .map(|(b, pages)| (b.as_u64(), b.as_u64() + pages * 4096))
        .collect()
}

#[test]
fn reserved_memory_comes_from_the_device_tree() {
    let p = Platform::from_fdt(&board_with_reservations(0)).unwrap();
    assert_eq!(
        p.ram.as_slice(),
        &[region(0, 0x8000_0000), region(0x8_0000_0000, 0x8000_0000)]
    );
    assert_eq!(
        p.reserved.as_slice(),
        &[
            Reserved {
                region: region(0x7ff0_0000, 0x1_0000),
                no_map: false
            },
            Reserved {
                region: region(0x10_0000, 0x2_0000),
                no_map: false
            },
            Reserved {
                region: region(0x6000_0000, 0x20_0000),
                no_map: true
            },
        ]
    );
    // The image at 0x20_0000 (where booti puts a bit-3 Image on DRAM at 0), the DT and a
    // module in the second bank.
    let taken = [
        region(0x20_0000, 0xcb000),
        region(0x7000_0000, 0x1_2345),
        region(0x8_0000_0000, 0x20_0000),
    ];
    assert_eq!(
        ranges(&p.free_ram(&taken).unwrap()),
        [
            (0, 0x10_0000),
            (0x12_0000, 0x20_0000),
            (0x2c_b000, 0x6000_0000),
            (0x6020_0000, 0x7000_0000),
            (0x7001_3000, 0x7ff0_0000),
            (0x7ff1_0000, 0x8000_0000),
            (0x8_0020_0000, 0x8_8000_0000),
        ]
    );
    // Only no-map ranges are left out of the EL2 map.
    assert_eq!(
        ranges(&p.mapped_ram().unwrap()),
        [
            (0, 0x6000_0000),
            (0x6020_0000, 0x8000_0000),
            (0x8_0000_0000, 0x8_8000_0000)
        ]
    );
    assert!(p.is_mapped_ram(PhysAddr::new(0x20_0000), 0xcb000));
    assert!(p.is_mapped_ram(PhysAddr::new(0x8_4000_0000), 0x1000));
    assert!(!p.is_mapped_ram(PhysAddr::new(0x5ff0_0000), 0x20_0000));
    assert!(!p.is_mapped_ram(PhysAddr::new(0x7ff0_0000), 0x20_0000));
    assert!(!p.is_mapped_ram(PhysAddr::new(u64::MAX - 1), 2));
}

#[test]
fn too_many_reservations_is_an_error_not_free_ram() {
    assert!(Platform::from_fdt(&board_with_reservations(MAX_RESERVED - 3)).is_ok());
    assert_eq!(
        Platform::from_fdt(&board_with_reservations(MAX_RESERVED - 2)).err(),
        Some(PlatformError::TooManyReserved)
    );
}

#[test]
fn garbage_is_a_typed_error() {
    assert_eq!(
        Platform::from_fdt(&[0u8; 64]).err(),
        Some(PlatformError::BadDeviceTree)
    );
}

/// The boot loader's `rng-seed` and `kaslr-seed` are read (folded) and located, so the boot
/// CPU can wipe them from the tree it keeps; the wiped tree reads the same otherwise.
#[test]
fn boot_loader_seeds_are_read_then_wiped_in_place() {
    let (mut w, root) = root_with_ram_and_gic();
    let chosen = w.begin_node("chosen").unwrap();
    w.property("rng-seed", &[0x5a; 32]).unwrap();
    w.property_u64("kaslr-seed", 0x0102_0304_0506_0708).unwrap();
    w.property_string("bootargs", "console=ttyAMA0").unwrap();
    w.end_node(chosen).unwrap();
    w.end_node(root).unwrap();
    let mut blob = w.finish().unwrap();

    let p = Platform::from_fdt(&blob).unwrap();
    let mut want = [0x5a; 32];
    for (b, k) in want.iter_mut().zip([1u8, 2, 3, 4, 5, 6, 7, 8]) {
        *b ^= k;
    }
    assert_eq!(p.boot_entropy, Some(want));
    let [Some((rng_at, 32)), Some((kaslr_at, 8))] = p.seed_spans else {
        panic!("both values located: {:?}", p.seed_spans);
    };
    assert_eq!(blob[rng_at..rng_at + 32], [0x5a; 32]);
    assert_eq!(blob[kaslr_at..kaslr_at + 8], [1, 2, 3, 4, 5, 6, 7, 8]);

    crate::seeds::wipe(&mut blob, &p.seed_spans);
    let fdt = fdt::Fdt::new(&blob).unwrap();
    let chosen = fdt.find_node("/chosen").unwrap();
    assert_eq!(chosen.property("rng-seed").unwrap().value, &[0; 32]);
    assert_eq!(chosen.property("kaslr-seed").unwrap().value, &[0; 8]);
    assert_eq!(
        chosen.property("bootargs").and_then(|b| b.as_str()),
        Some("console=ttyAMA0"),
        "nothing else is touched"
    );
    assert_eq!(
        Platform::from_fdt(&blob).unwrap().ram.as_slice(),
        p.ram.as_slice()
    );
}
