//! Host tests for the guest device tree: every blob is read back with the `fdt` crate (the
//! parser the microvisor itself uses) and each node Linux needs is checked cell by cell.

use super::*;
use fdt::node::FdtNode;
use fdt::Fdt;
use protocol::layout::GUEST_RAM_BASE;

const MIB: u64 = 1 << 20;
const LEVEL_LOW_ALL_CPUS: u32 = 0xf08;

fn params(vcpus: u32, initrd: Option<(u64, u64)>) -> GuestDtParams<'static> {
    GuestDtParams {
        ram_base: GUEST_RAM_BASE.as_u64(),
        ram_size: 512 * MIB,
        vcpus,
        gic: GicVersion::V3,
        bootargs: "console=hvc0 earlycon=xenboot root=/dev/xvda rw",
        initrd,
        extra: &[],
        seed: None,
    }
}

fn node<'b, 'a>(fdt: &'b Fdt<'a>, path: &str) -> FdtNode<'b, 'a> {
    fdt.find_node(path)
        .unwrap_or_else(|| panic!("no node {path}"))
}

fn raw<'a>(n: FdtNode<'_, 'a>, prop: &str) -> &'a [u8] {
    n.property(prop)
        .unwrap_or_else(|| panic!("{} has no {prop}", n.name))
        .value
}

fn cells(n: FdtNode<'_, '_>, prop: &str) -> Vec<u32> {
    raw(n, prop)
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn u64s(n: FdtNode<'_, '_>, prop: &str) -> Vec<u64> {
    raw(n, prop)
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn strings<'a>(n: FdtNode<'_, 'a>, prop: &str) -> Vec<&'a str> {
    let v = raw(n, prop);
    assert_eq!(v.last(), Some(&0), "{prop} is NUL-terminated");
    core::str::from_utf8(&v[..v.len() - 1])
        .unwrap()
        .split('\0')
        .collect()
}

fn cell(n: FdtNode<'_, '_>, prop: &str) -> u32 {
    let c = cells(n, prop);
    assert_eq!(c.len(), 1, "{prop} is one cell");
    c[0]
}

#[test]
fn root_describes_a_xen_4_17_guest() {
    let blob = build(&params(2, None)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let root = node(&fdt, "/");
    assert_eq!(strings(root, "compatible"), ["xen,xenvm-4.17", "xen,xenvm"]);
    assert!(fdt.root().model().contains("XENVM-4.17"));
    assert_eq!(cell(root, "interrupt-parent"), GIC_PHANDLE);
    assert_eq!(cell(root, "#address-cells"), 2);
    assert_eq!(cell(root, "#size-cells"), 2);
}

#[test]
fn chosen_carries_bootargs_and_optional_initrd() {
    let p = params(1, None);
    let blob = build(&p).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!(fdt.chosen().bootargs(), Some(p.bootargs));
    let chosen = node(&fdt, "/chosen");
    assert!(chosen.property("linux,initrd-start").is_none());
    assert!(chosen.property("linux,initrd-end").is_none());

    let (start, end) = (0x5e00_0000, 0x5f80_1234);
    let blob = build(&params(1, Some((start, end)))).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let chosen = node(&fdt, "/chosen");
    assert_eq!(u64s(chosen, "linux,initrd-start"), [start]);
    assert_eq!(u64s(chosen, "linux,initrd-end"), [end]);
}

#[test]
fn memory_node_has_the_ram_bank() {
    let p = params(1, None);
    let blob = build(&p).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let mem = node(&fdt, "/memory@40000000");
    assert_eq!(
        mem.property("device_type").unwrap().as_str(),
        Some("memory")
    );
    assert_eq!(u64s(mem, "reg"), [p.ram_base, p.ram_size]);
    let region = fdt.memory().regions().next().unwrap();
    assert_eq!(region.starting_address as u64, p.ram_base);
    assert_eq!(region.size, Some(p.ram_size as usize));
}

#[test]
fn one_psci_cpu_node_per_vcpu() {
    for vcpus in 1..=MAX_VCPUS as u32 {
        let blob = build(&params(vcpus, None)).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let cpus = node(&fdt, "/cpus");
        assert_eq!(cell(cpus, "#address-cells"), 1);
        assert_eq!(cell(cpus, "#size-cells"), 0);
        let children: Vec<_> = cpus.children().collect();
        assert_eq!(children.len(), vcpus as usize);
        for (n, cpu) in children.into_iter().enumerate() {
            assert_eq!(cpu.name, format!("cpu@{n:x}"));
            assert_eq!(strings(cpu, "device_type"), ["cpu"]);
            assert_eq!(strings(cpu, "compatible"), ["arm,armv8"]);
            assert_eq!(strings(cpu, "enable-method"), ["psci"]);
            assert_eq!(cells(cpu, "reg"), [n as u32]);
        }
    }
}

#[test]
fn psci_uses_hvc() {
    let blob = build(&params(1, None)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let psci = node(&fdt, "/psci");
    assert_eq!(
        strings(psci, "compatible"),
        ["arm,psci-1.0", "arm,psci-0.2"]
    );
    assert_eq!(strings(psci, "method"), ["hvc"]);
}

#[test]
fn gic_v3_distributor_and_one_redistributor_per_vcpu() {
    for vcpus in [1, 3, 8] {
        let blob = build(&params(vcpus, None)).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let gic = node(&fdt, "/interrupt-controller@3001000");
        assert_eq!(strings(gic, "compatible"), ["arm,gic-v3"]);
        assert_eq!(cell(gic, "#interrupt-cells"), 3);
        assert_eq!(cell(gic, "#address-cells"), 2);
        assert_eq!(cell(gic, "#size-cells"), 2);
        assert!(raw(gic, "interrupt-controller").is_empty());
        assert_eq!(
            u64s(gic, "reg"),
            [
                GUEST_GICD_BASE.as_u64(),
                GUEST_GICD_SIZE,
                GUEST_GICR_BASE.as_u64(),
                u64::from(vcpus) * GUEST_GICR_STRIDE,
            ]
        );
        assert_eq!(cell(gic, "phandle"), GIC_PHANDLE);
        assert_eq!(fdt.find_phandle(GIC_PHANDLE).unwrap().name, gic.name);
        assert_eq!(gic.children().count(), 0, "no ITS");
    }
}

#[test]
fn timer_has_secure_nonsecure_virtual_and_hyp_ppis() {
    let blob = build(&params(1, None)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let timer = node(&fdt, "/timer");
    assert_eq!(strings(timer, "compatible"), ["arm,armv8-timer"]);
    let f = LEVEL_LOW_ALL_CPUS;
    assert_eq!(
        cells(timer, "interrupts"),
        [1, 13, f, 1, 14, f, 1, 11, f, 1, 10, f]
    );
    assert_eq!(cells(timer, "interrupts")[7] + 16, VTIMER_PPI);
    assert_eq!(
        timer.interrupt_parent().unwrap().name,
        "interrupt-controller@3001000"
    );
}

#[test]
fn hypervisor_node_has_grant_window_and_event_ppi() {
    let blob = build(&params(4, None)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let hyp = node(&fdt, "/hypervisor");
    assert_eq!(strings(hyp, "compatible"), ["xen,xen-4.17", "xen,xen"]);
    assert_eq!(
        u64s(hyp, "reg"),
        [GUEST_GNTTAB_BASE.as_u64(), GUEST_GNTTAB_SIZE]
    );
    assert_eq!(GUEST_GNTTAB_SIZE, 0x0100_0000);
    assert_eq!(cells(hyp, "interrupts"), [1, 15, LEVEL_LOW_ALL_CPUS]);
    assert_eq!(cells(hyp, "interrupts")[1] + 16, EVTCHN_PPI);
    assert_eq!(
        fdt.find_compatible(&["xen,xen"]).unwrap().name,
        "hypervisor"
    );
    assert_eq!(cell(hyp, "interrupt-parent"), GIC_PHANDLE);
}

#[test]
fn eight_vcpus_fit_well_below_64k() {
    let mut p = params(MAX_VCPUS as u32, Some((0x5000_0000, 0x5800_0000)));
    let long = "x".repeat(MAX_BOOTARGS - 1);
    p.bootargs = &long;
    let blob = build(&p).unwrap();
    assert!(blob.len() < 16 << 10, "{} bytes", blob.len());
    let fdt = Fdt::new(&blob).unwrap();
    assert_eq!(fdt.total_size(), blob.len());
    assert_eq!(fdt.cpus().count(), MAX_VCPUS);
}

#[test]
fn bad_vcpu_counts_are_refused() {
    for vcpus in [0, MAX_VCPUS as u32 + 1, u32::MAX] {
        assert_eq!(build(&params(vcpus, None)), Err(GuestDtError::BadVcpuCount));
    }
}

#[test]
fn bad_ram_is_refused() {
    let mut p = params(1, None);
    p.ram_size = 0;
    assert_eq!(build(&p), Err(GuestDtError::BadRam));
    p.ram_base = u64::MAX - MIB;
    p.ram_size = 2 * MIB;
    assert_eq!(build(&p), Err(GuestDtError::BadRam));
    // RAM over the grant window or the redistributors.
    for base in [GUEST_GNTTAB_BASE.as_u64() - MIB, GUEST_GICR_BASE.as_u64()] {
        p.ram_base = base;
        assert_eq!(build(&p), Err(GuestDtError::BadRam), "{base:#x}");
    }
}

#[test]
fn bad_initrds_are_refused() {
    let base = GUEST_RAM_BASE.as_u64();
    let end = base + 512 * MIB;
    for r in [
        (base + MIB, base + MIB),
        (base + 2 * MIB, base + MIB),
        (base - 4096, base + MIB),
        (end - MIB, end + 1),
        (u64::MAX - 1, u64::MAX),
    ] {
        assert_eq!(
            build(&params(1, Some(r))),
            Err(GuestDtError::BadInitrd),
            "{r:x?}"
        );
    }
    // Ending exactly at the end of RAM is fine.
    assert!(build(&params(1, Some((end - MIB, end)))).is_ok());
}

#[test]
fn bad_bootargs_are_refused() {
    let mut p = params(1, None);
    p.bootargs = "console=hvc0\0root=/dev/xvda";
    assert_eq!(build(&p), Err(GuestDtError::BootargsNul));
    let long = "y".repeat(MAX_BOOTARGS);
    p.bootargs = &long;
    assert_eq!(build(&p), Err(GuestDtError::BootargsTooLong));
    p.bootargs = "";
    let blob = build(&p).unwrap();
    assert_eq!(Fdt::new(&blob).unwrap().chosen().bootargs(), Some(""));
}

#[test]
fn blob_is_deterministic() {
    let p = params(4, Some((0x5000_0000, 0x5100_0000)));
    assert_eq!(build(&p).unwrap(), build(&p).unwrap());
}

/// A fragment as the tools write it: a `passthrough` bus holding one node named `name`.
fn fragment(name: &str) -> Vec<u8> {
    let mut w = FdtWriter::new().unwrap();
    let root = w.begin_node("").unwrap();
    let bus = w.begin_node(name).unwrap();
    w.property_string("compatible", "simple-bus").unwrap();
    let rtc = w.begin_node("rtc@9010000").unwrap();
    w.property_array_u64("reg", &[0x901_0000, 0x1000]).unwrap();
    w.property_array_u32("interrupts", &[0, 2, 4]).unwrap();
    w.property_u32("interrupt-parent", GIC_PHANDLE).unwrap();
    w.end_node(rtc).unwrap();
    w.end_node(bus).unwrap();
    w.end_node(root).unwrap();
    w.finish().unwrap()
}

#[test]
fn a_fragment_joins_the_root() {
    let extra = fragment("passthrough");
    let mut p = params(1, None);
    p.extra = &extra;
    let blob = build(&p).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let rtc = fdt.find_node("/passthrough/rtc@9010000").unwrap();
    let irqs = rtc.property("interrupts").unwrap().value;
    assert_eq!(irqs, [0u8, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 4]);
    // The generated nodes are all still there.
    assert!(fdt.find_node("/hypervisor").is_some());
    // One that clashes with a generated node, or garbage, is refused.
    let clash = fragment("hypervisor");
    p.extra = &clash;
    assert_eq!(build(&p), Err(GuestDtError::BadFragment));
    p.extra = &[1, 2, 3];
    assert_eq!(build(&p), Err(GuestDtError::BadFragment));
}

#[path = "guest_dt_v2_tests.rs"]
mod v2;

#[test]
fn a_seed_goes_into_chosen_and_none_leaves_it_out() {
    let seed = crate::seeds::GuestSeed {
        rng: [0xa5; 32],
        kaslr: 0x0123_4567_89ab_cdef,
    };
    let blob = build(&GuestDtParams {
        seed: Some(seed),
        ..params(1, None)
    })
    .unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let chosen = node(&fdt, "/chosen");
    assert_eq!(chosen.property("rng-seed").unwrap().value, &[0xa5; 32]);
    assert_eq!(
        chosen.property("kaslr-seed").unwrap().value,
        0x0123_4567_89ab_cdef_u64.to_be_bytes()
    );
    let plain = build(&params(1, None)).unwrap();
    let fdt = Fdt::new(&plain).unwrap();
    assert!(node(&fdt, "/chosen").property("rng-seed").is_none());
    assert!(node(&fdt, "/chosen").property("kaslr-seed").is_none());
}
