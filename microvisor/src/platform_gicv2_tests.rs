//! GICv2 host discovery: QEMU virt's `gic-version=2` device tree (dumped by QEMU) and a
//! ZCU102-shaped GIC-400 whose CPU-interface pages are aliased over 64 KiB.

use super::*;

fn region(base: u64, size: u64) -> Region {
    Region {
        base: PhysAddr::new(base),
        size,
    }
}

/// `qemu-system-aarch64 -M virt,virtualization=on,gic-version=2,dumpdtb=… -cpu max -m 1G
/// -smp 2`, recompiled by dtc without QEMU's padding (`.fdt`: the repository ignores `*.dtb`).
const QEMU_VIRT_GICV2: &[u8] = include_bytes!("../testdata/qemu-virt-gicv2.fdt");

#[test]
fn qemu_virt_gicv2_is_read() {
    let p = Platform::from_fdt(QEMU_VIRT_GICV2).unwrap();
    assert_eq!(p.gic_version(), GicVersion::V2);
    assert_eq!(p.gicd, region(0x800_0000, 0x1_0000));
    assert_eq!(p.gicr, Region::default());
    assert_eq!(
        p.gicv2,
        Some(GicV2 {
            gicc: region(0x801_0000, 0x1_0000),
            gich: region(0x803_0000, 0x1_0000),
            gicv: region(0x804_0000, 0x1_0000),
            maintenance_irq: Some(25),
        })
    );
    assert_eq!(p.cpus.as_slice(), &[0, 1]);
    assert_eq!(p.uart.map(|u| u.base), Some(PhysAddr::new(0x900_0000)));
}

/// The ZCU102's interrupt controller as its DT gives it: under the `axi` bus, no
/// `#address-cells` of its own use, 128 KiB CPU-interface ranges, a CPU-masked PPI flag.
fn zcu102_like() -> std::vec::Vec<u8> {
    let mut w = vm_fdt::FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    let mem = w.begin_node("memory@0").unwrap();
    w.property_string("device_type", "memory").unwrap();
    w.property_array_u64("reg", &[0, 0x7ff0_0000]).unwrap();
    w.end_node(mem).unwrap();
    let axi = w.begin_node("axi").unwrap();
    w.property_string("compatible", "simple-bus").unwrap();
    w.property_u32("#address-cells", 2).unwrap();
    w.property_u32("#size-cells", 2).unwrap();
    w.property_null("ranges").unwrap();
    let g = w.begin_node("interrupt-controller@f9010000").unwrap();
    w.property_string("compatible", "arm,gic-400").unwrap();
    w.property_u32("#address-cells", 0).unwrap();
    w.property_u32("#interrupt-cells", 3).unwrap();
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
    w.property_null("interrupt-controller").unwrap();
    w.property_array_u32("interrupts", &[1, 9, 0xf04]).unwrap();
    w.end_node(g).unwrap();
    w.end_node(axi).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

#[test]
fn zcu102_gic400_is_read() {
    let p = Platform::from_fdt(&zcu102_like()).unwrap();
    assert_eq!(p.gic_version(), GicVersion::V2);
    assert_eq!(p.gicd, region(0xf901_0000, 0x1_0000));
    let v2 = p.gicv2.unwrap();
    assert_eq!(v2.gicc, region(0xf902_0000, 0x2_0000));
    assert_eq!(v2.gich, region(0xf904_0000, 0x2_0000));
    assert_eq!(v2.gicv, region(0xf906_0000, 0x2_0000));
    assert_eq!(v2.maintenance_irq, Some(25));
}

#[test]
fn the_cpu_interface_window_follows_the_gic400_alias() {
    // GIC-400 r0p1's IIDR.
    let gic400 = 0x0202_143b;
    let aliased = region(0xf902_0000, 0x2_0000);
    assert_eq!(
        GicV2::cpu_interface_window(aliased, gic400, gic400),
        region(0xf902_f000, 0x2000)
    );
    // The same 128 KiB range but the page at 0xf000 is not the first one again.
    assert_eq!(
        GicV2::cpu_interface_window(aliased, gic400, 0),
        region(0xf902_0000, 0x2000)
    );
    // QEMU's model of the ZCU102's GIC reports ProductID 0: still a GICv2 by Arm.
    let qemu = 0x0002_043b;
    assert_eq!(
        GicV2::cpu_interface_window(aliased, qemu, qemu),
        region(0xf902_f000, 0x2000)
    );
    // Not a GICv2 (architecture version 1), or not Arm's: left alone.
    for other in [0x0201_143b, 0x0202_1070] {
        assert_eq!(
            GicV2::cpu_interface_window(aliased, other, other),
            region(0xf902_0000, 0x2000)
        );
    }
    // A 64 KiB range is never aliased.
    assert_eq!(
        GicV2::cpu_interface_window(region(0x801_0000, 0x1_0000), gic400, gic400),
        region(0x801_0000, 0x2000)
    );
}

#[test]
fn gicv2_frames_are_never_passed_through() {
    // A node over the GICV frame marked for passthrough is refused like the distributor.
    let p = Platform::from_fdt(QEMU_VIRT_GICV2).unwrap();
    let v2 = p.gicv2.unwrap();
    let kept = [p.gicd, v2.gicc, v2.gich, v2.gicv];
    let dev = DeviceNode {
        region: region(0x804_0000, 0x1000),
        irq: None,
    };
    assert!(!crate::passthrough::may_pass(dev, &kept, &[]));
}
