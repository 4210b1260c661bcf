//! The guest device tree of a domain on a GICv2 host: the GIC node libxl writes for a
//! vGICv2, and PPI specifiers whose CPU mask names the vCPUs.

use super::*;
use protocol::layout::{GUEST_GICV2_GICC_BASE, GUEST_GICV2_GICC_SIZE, GUEST_GICV2_GICD_SIZE};

fn params_v2(vcpus: u32) -> GuestDtParams<'static> {
    GuestDtParams {
        gic: GicVersion::V2,
        ..params(vcpus, None)
    }
}

#[test]
fn gic_v2_distributor_and_cpu_interface() {
    for vcpus in [1, 2, 8] {
        let blob = build(&params_v2(vcpus)).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let gic = node(&fdt, "/interrupt-controller@3001000");
        assert_eq!(
            strings(gic, "compatible"),
            ["arm,cortex-a15-gic", "arm,cortex-a9-gic"]
        );
        assert_eq!(cell(gic, "#interrupt-cells"), 3);
        assert_eq!(cell(gic, "#address-cells"), 0);
        assert!(gic.property("#size-cells").is_none());
        assert!(raw(gic, "interrupt-controller").is_empty());
        assert_eq!(
            u64s(gic, "reg"),
            [GUEST_GICD_BASE.as_u64(), 0x1000, 0x0300_2000, 0x2000,]
        );
        assert_eq!(GUEST_GICV2_GICD_SIZE, 0x1000);
        assert_eq!(GUEST_GICV2_GICC_BASE.as_u64(), 0x0300_2000);
        assert_eq!(GUEST_GICV2_GICC_SIZE, 0x2000);
        // Read through the root's address and size cells, as Linux's of_iomap does.
        let regions: Vec<_> = gic
            .reg()
            .unwrap()
            .map(|r| (r.starting_address as u64, r.size))
            .collect();
        assert_eq!(
            regions,
            [(0x0300_1000, Some(0x1000)), (0x0300_2000, Some(0x2000))]
        );
        assert_eq!(cell(gic, "phandle"), GIC_PHANDLE);
        assert_eq!(fdt.find_phandle(GIC_PHANDLE).unwrap().name, gic.name);
        assert_eq!(
            fdt.find_compatible(&["arm,cortex-a15-gic"]).unwrap().name,
            gic.name
        );
        assert!(fdt.find_compatible(&["arm,gic-v3"]).is_none());
        assert_eq!(gic.children().count(), 0);
    }
}

#[test]
fn gic_v2_ppis_name_every_vcpu_in_their_cpu_mask() {
    for (vcpus, mask) in [(1, 0x1), (2, 0x3), (4, 0xf), (8, 0xff)] {
        let blob = build(&params_v2(vcpus)).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let f = mask << 8 | 8;
        let timer = node(&fdt, "/timer");
        assert_eq!(
            cells(timer, "interrupts"),
            [1, 13, f, 1, 14, f, 1, 11, f, 1, 10, f],
            "{vcpus} vCPUs"
        );
        assert_eq!(
            timer.interrupt_parent().unwrap().name,
            "interrupt-controller@3001000"
        );
        let hyp = node(&fdt, "/hypervisor");
        assert_eq!(cells(hyp, "interrupts"), [1, 15, f]);
        // Linux's irq-gic keeps only the trigger bits: level, active-low, as on a GICv3.
        assert_eq!(f & 0xF, LEVEL_LOW_ALL_CPUS & 0xF);
    }
}

#[test]
fn gic_v2_tree_differs_from_the_v3_one_only_in_the_gic() {
    let v3 = build(&params(2, None)).unwrap();
    let v2 = build(&params_v2(2)).unwrap();
    let (v3, v2) = (Fdt::new(&v3).unwrap(), Fdt::new(&v2).unwrap());
    for path in ["/chosen", "/cpus", "/psci", "/memory@40000000"] {
        let (a, b) = (node(&v3, path), node(&v2, path));
        let props = |n: FdtNode<'_, '_>| {
            n.properties()
                .map(|p| (p.name.to_string(), p.value.to_vec()))
                .collect::<Vec<_>>()
        };
        assert_eq!(props(a), props(b), "{path}");
    }
    assert_eq!(
        cells(node(&v3, "/timer"), "interrupts")[2],
        LEVEL_LOW_ALL_CPUS,
        "a GICv3 tree keeps Xen's 0xf mask"
    );
}

#[test]
fn gic_v2_ram_must_not_cover_the_cpu_interface() {
    let mut p = params_v2(1);
    p.ram_base = GUEST_GICV2_GICC_BASE.as_u64() + 0x1000;
    p.ram_size = MIB;
    assert_eq!(build(&p), Err(GuestDtError::BadRam));
    p.ram_base = GUEST_GICD_BASE.as_u64() - MIB;
    assert!(build(&p).is_ok(), "ending where the distributor starts");
    p.ram_size = MIB + 4;
    assert_eq!(build(&p), Err(GuestDtError::BadRam), "nor the distributor");
    p.ram_size = MIB;
    // No redistributors on a GICv2: their range is not reserved.
    p.ram_base = GUEST_GICR_BASE.as_u64();
    assert!(build(&p).is_ok());
    p.gic = GicVersion::V3;
    assert_eq!(build(&p), Err(GuestDtError::BadRam));
}
