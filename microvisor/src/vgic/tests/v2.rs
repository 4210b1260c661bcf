//! The emulated GICv2 distributor: register map and widths, per-vCPU banking of INTIDs
//! 0-31, SPI routing through `ITARGETSR`, SGIs through `SGIR`, Group 0 LRs and the GICv2
//! diagnostics.

use super::*;
use protocol::layout::GUEST_GICV2_GICC_BASE;

const CTLR: u64 = GICD;
const TYPER: u64 = GICD + 0x004;
const IIDR: u64 = GICD + 0x008;
const IGROUPR: u64 = GICD + 0x080;
const ISENABLER: u64 = GICD + 0x100;
const ICENABLER: u64 = GICD + 0x180;
const ISPENDR: u64 = GICD + 0x200;
const ICPENDR: u64 = GICD + 0x280;
const ISACTIVER: u64 = GICD + 0x300;
const ICACTIVER: u64 = GICD + 0x380;
const IPRIORITYR: u64 = GICD + 0x400;
const ITARGETSR: u64 = GICD + 0x800;
const ICFGR: u64 = GICD + 0xC00;
const SGIR: u64 = GICD + 0xF00;
const CPENDSGIR: u64 = GICD + 0xF10;
const SPENDSGIR: u64 = GICD + 0xF20;
const PIDR2: u64 = GICD + 0xFE8;

/// A GICv2 for `n` vCPUs with both groups enabled.
pub(super) fn gic_v2(n: usize) -> VgicDomain {
    let mut g = VgicDomain::new(GicVersion::V2, n);
    write_as(&mut g, 0, CTLR, 4, 0b11);
    g
}

/// A pending, Group 0 LR as the model places it for a GICv2 guest.
fn v2_lr(intid: u32, prio: u8) -> u64 {
    lr::build(intid, prio, false, false, lr::LrState::Pending)
}

/// Enables SPI `intid` at `prio`, as vCPU 0.
fn enable_spi_v2(g: &mut VgicDomain, intid: u32, prio: u8) {
    write_as(g, 0, IPRIORITYR + u64::from(intid), 1, u64::from(prio));
    write_as(
        g,
        0,
        ISENABLER + u64::from(intid / 32) * 4,
        4,
        1 << (intid % 32),
    );
}

#[test]
fn identification_registers() {
    for (n, cpus) in [(1, 0), (2, 1), (4, 3), (8, 7), (0, 0)] {
        let mut g = VgicDomain::new(GicVersion::V2, n);
        assert_eq!(g.version(), GicVersion::V2);
        let typer = read_as(&mut g, 0, TYPER, 4);
        assert_eq!(typer & 0x1F, u64::from(GUEST_SPIS / 32), "ITLinesNumber");
        assert_eq!((typer >> 5) & 0x7, cpus, "CPUNumber for {n} vCPUs");
        assert_eq!(typer & (1 << 10), 0, "no Security Extensions");
    }
    let mut g = gic_v2(1);
    assert_eq!(read_as(&mut g, 0, PIDR2, 4) >> 4 & 0xF, 2, "ArchRev 2");
    assert_eq!(read_as(&mut g, 0, IIDR, 4), 0x4200_043B);
    assert_eq!(read_as(&mut g, 0, GICD + 0xFE0, 4), 0);
    assert_eq!(g.ignored_accesses(), 0);
}

#[test]
fn ctlr_keeps_both_group_enables_only() {
    let mut g = VgicDomain::new(GicVersion::V2, 1);
    assert_eq!(read_as(&mut g, 0, CTLR, 4), 0);
    write_as(&mut g, 0, CTLR, 4, 0xFFFF_FFFF);
    assert_eq!(read_as(&mut g, 0, CTLR, 4), 0b11, "no ARE on a GICv2");
    write_as(&mut g, 0, CTLR, 4, 1);
    assert_eq!(read_as(&mut g, 0, CTLR, 4), 1);
}

#[test]
fn only_the_4k_distributor_is_emulated() {
    let mut g = gic_v2(2);
    for addr in [
        GICD + GUEST_GICV2_GICD_SIZE, // the CPU interface (GICV frame), never emulated
        GUEST_GICV2_GICC_BASE.as_u64(),
        GICD + 0x6100, // a GICv3 IROUTER
        rd_frame(0),
        sgi_frame(1) + 0x100,
        GICD - 4,
    ] {
        assert_not_gic(&mut g, addr);
    }
    assert_eq!(g.ignored_accesses(), 0);
    // And a GICv3 keeps its redistributors.
    let mut v3 = gic(1);
    assert_eq!(rd32(&mut v3, rd_frame(0) + 0xFFE8), 0x3B);
}

#[test]
fn widths_follow_the_spec_and_the_rest_is_counted() {
    let mut g = gic_v2(2);
    enable_spi_v2(&mut g, 40, 0x80);
    assert_eq!(
        read_as(&mut g, 0, IPRIORITYR + 40, 1),
        0x80,
        "IPRIORITYR by byte"
    );
    assert_eq!(read_as(&mut g, 0, IPRIORITYR + 40, 4), 0x80, "and by word");
    assert_eq!(
        read_as(&mut g, 0, ITARGETSR + 40, 1),
        1,
        "ITARGETSR by byte"
    );
    assert_eq!(g.ignored_accesses(), 0);
    let before = g.clone();
    // Half-words anywhere, doublewords anywhere, bytes on word-only registers.
    let bad: [(u64, u8); 6] = [
        (IPRIORITYR + 40, 2),
        (ISENABLER + 4, 8),
        (ISENABLER + 4, 1),
        (CTLR, 1),
        (ICFGR + 8, 2),
        (SGIR, 1),
    ];
    for &(addr, width) in &bad {
        assert_eq!(read_as(&mut g, 0, addr, width), 0, "{addr:#x}/{width}");
        write_as(&mut g, 0, addr, width, u64::MAX);
    }
    assert_eq!(g.ignored_accesses(), 2 * bad.len() as u64);
    // Misaligned, reserved.
    assert_eq!(read_as(&mut g, 0, ISENABLER + 2, 4), 0);
    assert_eq!(read_as(&mut g, 0, GICD + 0x00C, 4), 0);
    assert_eq!(g.ignored_accesses(), 2 * bad.len() as u64 + 2);
    assert_eq!(g.spis, before.spis, "nothing written");
    assert_eq!(g.private, before.private);
}

#[test]
fn igroupr_is_raz_wi_and_no_group_warning() {
    let mut g = gic_v2(1);
    write_as(&mut g, 0, IGROUPR, 4, 0);
    write_as(&mut g, 0, IGROUPR + 4, 4, u64::from(u32::MAX));
    assert_eq!(read_as(&mut g, 0, IGROUPR + 4, 4), 0, "all Group 0");
    assert_eq!(g.take_warning(), None, "Group 0 is what a GICv2 guest has");
    assert_eq!(g.ignored_accesses(), 0);
}

#[test]
fn sgi_pending_by_source_registers_are_raz_wi_and_counted() {
    let mut g = gic_v2(2);
    let before = g.clone();
    for addr in [CPENDSGIR, SPENDSGIR, SPENDSGIR + 0xC] {
        write_as(&mut g, 0, addr, 4, u64::from(u32::MAX));
        write_as(&mut g, 0, addr + 1, 1, 0xFF);
        assert_eq!(read_as(&mut g, 0, addr, 4), 0);
    }
    assert_eq!(g.ignored_accesses(), 9);
    assert_eq!(g.private, before.private, "no SGI pended");
}

#[test]
fn private_registers_are_banked_per_accessing_vcpu() {
    let mut g = gic_v2(2);
    // ISENABLER0 by vCPU 1 enables vCPU 1's PPI 27 only.
    write_as(&mut g, 1, ISENABLER, 4, 1 << 27);
    assert_eq!(read_as(&mut g, 1, ISENABLER, 4), 1 << 27);
    assert_eq!(read_as(&mut g, 0, ISENABLER, 4), 0);
    // IPRIORITYR0-7, by byte and word.
    write_as(&mut g, 1, IPRIORITYR + 27, 1, 0x40);
    write_as(&mut g, 0, IPRIORITYR + 24, 4, 0xA0A0_A0A0);
    assert_eq!(read_as(&mut g, 1, IPRIORITYR + 24, 4), 0x4000_0000);
    assert_eq!(read_as(&mut g, 0, IPRIORITYR + 27, 1), 0xA0);
    // ICFGR0 is fixed edge for SGIs, ICFGR1 (PPIs) banked.
    assert_eq!(read_as(&mut g, 0, ICFGR, 4), 0xAAAA_AAAA);
    write_as(&mut g, 0, ICFGR, 4, 0);
    assert_eq!(read_as(&mut g, 0, ICFGR, 4), 0xAAAA_AAAA);
    write_as(&mut g, 1, ICFGR + 4, 4, 0b10 << 22);
    assert_eq!(read_as(&mut g, 1, ICFGR + 4, 4), 0b10 << 22);
    assert_eq!(read_as(&mut g, 0, ICFGR + 4, 4), 0);
    // ISPENDR0 by vCPU 1 pends on vCPU 1 and kicks it.
    assert_eq!(write_as(&mut g, 1, ISPENDR, 4, 1 << 27), 0b10);
    assert_eq!(read_as(&mut g, 0, ISPENDR, 4), 0);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(1, &mut lrs);
    assert_eq!(lrs[0], v2_lr(27, 0x40));
    assert_eq!(read_as(&mut g, 1, ISPENDR, 4), 1 << 27, "pending in the LR");
    write_as(&mut g, 1, ICPENDR, 4, 1 << 27);
    g.flush_lrs(1, &mut lrs);
    assert_eq!(lr_intids(&lrs), [] as [u32; 0]);
    // I[SC]ACTIVER0.
    write_as(&mut g, 0, ISACTIVER, 4, 1 << 5);
    assert_eq!(read_as(&mut g, 0, ISACTIVER, 4), 1 << 5);
    assert_eq!(read_as(&mut g, 1, ISACTIVER, 4), 0);
    write_as(&mut g, 0, ICACTIVER, 4, u64::from(u32::MAX));
    assert_eq!(read_as(&mut g, 0, ISACTIVER, 4), 0);
    // ICENABLER0 by vCPU 0 leaves vCPU 1's enable alone.
    write_as(&mut g, 0, ICENABLER, 4, u64::from(u32::MAX));
    assert_eq!(read_as(&mut g, 1, ICENABLER, 4), 1 << 27);
}

#[test]
fn an_absent_vcpu_sees_nothing_of_the_banked_registers() {
    let mut g = gic_v2(2);
    let before = g.clone();
    assert_eq!(write_as(&mut g, 5, ISENABLER, 4, u64::from(u32::MAX)), 0);
    write_as(&mut g, 5, IPRIORITYR, 4, u64::from(u32::MAX));
    assert_eq!(read_as(&mut g, 5, ITARGETSR, 4), 0);
    assert_eq!(read_as(&mut g, 5, IPRIORITYR, 4), 0);
    assert_eq!(write_as(&mut g, 5, SGIR, 4, 1 << 24), 0);
    assert_eq!(g.private, before.private);
}

#[test]
fn itargetsr_of_private_interrupts_names_the_reader() {
    let mut g = gic_v2(4);
    for v in 0..4 {
        let own = 1u64 << v;
        for word in 0..8 {
            assert_eq!(
                read_as(&mut g, v, ITARGETSR + 4 * word, 4),
                own * 0x0101_0101,
                "vCPU {v}, ITARGETSR{word}"
            );
        }
        assert_eq!(read_as(&mut g, v, ITARGETSR + 27, 1), own);
    }
    write_as(&mut g, 0, ITARGETSR + 24, 4, 0x0808_0808);
    assert_eq!(
        read_as(&mut g, 0, ITARGETSR + 24, 4),
        0x0101_0101,
        "read-only"
    );
    assert_eq!(g.ignored_accesses(), 0);
}

#[test]
fn itargetsr_routes_an_spi_to_the_lowest_existing_vcpu_named() {
    let mut g = gic_v2(4);
    enable_spi_v2(&mut g, 40, 0x10);
    assert_eq!(read_as(&mut g, 0, ITARGETSR + 40, 1), 0b1, "reset: vCPU 0");
    write_as(&mut g, 0, ITARGETSR + 40, 1, 0b0100);
    assert_eq!(read_as(&mut g, 3, ITARGETSR + 40, 1), 0b0100);
    // Several targets: the lowest wins; bits of absent CPU interfaces do not count.
    write_as(&mut g, 0, ITARGETSR + 40, 1, 0b1010);
    assert_eq!(read_as(&mut g, 0, ITARGETSR + 40, 1), 0b0010);
    write_as(&mut g, 0, ITARGETSR + 40, 1, 0b1001_0000 | 0b1000);
    assert_eq!(read_as(&mut g, 0, ITARGETSR + 40, 1), 0b1000);
    // Only absent vCPUs, or none: ignored, the old route stays (as on Xen).
    write_as(&mut g, 0, ITARGETSR + 40, 1, 0b1111_0000);
    assert_eq!(read_as(&mut g, 0, ITARGETSR + 40, 1), 0b1000);
    write_as(&mut g, 0, ITARGETSR + 40, 1, 0);
    assert_eq!(read_as(&mut g, 0, ITARGETSR + 40, 1), 0b1000);
    // It is delivered there.
    assert_eq!(g.inject(0, 40), 0b1000);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr_intids(&lrs), [] as [u32; 0]);
    g.flush_lrs(3, &mut lrs);
    assert_eq!(lrs[0], v2_lr(40, 0x10));
}

#[test]
fn itargetsr_word_writes_route_four_spis() {
    let mut g = gic_v2(3);
    write_as(&mut g, 0, ITARGETSR + 44, 4, 0x0402_0104);
    assert_eq!(read_as(&mut g, 1, ITARGETSR + 44, 4), 0x0402_0104);
    // Byte 3 names vCPU 2, byte 2 vCPU 1, byte 1 vCPU 0, byte 0 vCPU 2.
    for (intid, target) in [(44, 2), (45, 0), (46, 1), (47, 2)] {
        enable_spi_v2(&mut g, intid, 0);
        assert_eq!(g.inject(0, intid), 1 << target, "SPI {intid}");
    }
}

#[test]
fn rerouting_a_pending_spi_kicks_its_new_target() {
    let mut g = gic_v2(2);
    enable_spi_v2(&mut g, 33, 0);
    write_as(&mut g, 0, CTLR, 4, 0b11);
    let mut lrs0 = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs0);
    // Pending while vCPU 0 has not taken it: moving it kicks vCPU 1.
    assert_eq!(g.inject(0, 33), 0b01);
    assert_eq!(write_as(&mut g, 0, ITARGETSR + 33, 1, 0b10), 0b10);
    let mut lrs1 = [0u64; NR_LRS];
    g.flush_lrs(1, &mut lrs1);
    assert_eq!(lrs1[0], v2_lr(33, 0));
}

#[test]
fn sgir_target_list_filter() {
    let mut g = gic_v2(4);
    for v in 0..4 {
        write_as(&mut g, v, ISENABLER, 4, 0xFFFF);
    }
    let pending = |g: &mut VgicDomain, v: usize| read_as(g, v, ISPENDR, 4) & 0xFFFF;
    // Filter 0: the list; absent CPU interfaces (bits 4-7) are dropped.
    assert_eq!(write_as(&mut g, 1, SGIR, 4, 0b1111_0101 << 16 | 3), 0b0101);
    assert_eq!(pending(&mut g, 0), 1 << 3);
    assert_eq!(pending(&mut g, 2), 1 << 3);
    assert_eq!(pending(&mut g, 1), 0);
    assert_eq!(pending(&mut g, 3), 0);
    // Filter 1: everybody but the sender, whatever the list says.
    assert_eq!(
        write_as(&mut g, 2, SGIR, 4, 1 << 24 | 0xFF << 16 | 7),
        0b1011
    );
    assert_eq!(pending(&mut g, 2), 1 << 3);
    assert_eq!(pending(&mut g, 3), 1 << 7);
    // Filter 2: the sender only.
    assert_eq!(
        write_as(&mut g, 3, SGIR, 4, 2 << 24 | 0b1 << 16 | 15),
        0b1000
    );
    assert_eq!(pending(&mut g, 3), 1 << 7 | 1 << 15);
    assert_eq!(pending(&mut g, 0), 1 << 3 | 1 << 7);
    // Filter 3 is reserved: nothing.
    let before = g.clone();
    assert_eq!(write_as(&mut g, 0, SGIR, 4, 3 << 24 | 0xF << 16 | 1), 0);
    assert_eq!(g.private, before.private);
    // SGIR is write-only.
    assert_eq!(read_as(&mut g, 0, SGIR, 4), 0);
    // What reaches the LRs: Group 0, source CPUID 0.
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(3, &mut lrs);
    assert_eq!(lrs[0], v2_lr(7, 0));
    assert_eq!(lrs[1], v2_lr(15, 0));
}

#[test]
fn sgir_decoding_matches_the_v3_path() {
    // A GICv2 SGI pends and kicks exactly as ICC_SGI1R_EL1 naming the same vCPUs does.
    let mut a = gic_v2(3);
    let mut b = gic_v2(3);
    for v in 0..3 {
        write_as(&mut a, v, ISENABLER, 4, 1 << 9);
        write_as(&mut b, v, ISENABLER, 4, 1 << 9);
    }
    let k = write_as(&mut a, 0, SGIR, 4, 0b110 << 16 | 9);
    assert_eq!(k, b.send_sgi(0, 9 << 24 | 0b110));
    assert_eq!(a, b);
    assert_eq!(sgir_targets(3, 0, 1 << 24), (0, 0b110));
    assert_eq!(sgir_targets(3, 3, 2 << 24), (0, 0), "absent sender");
    assert_eq!(sgir_targets(100, 7, 1 << 24 | 4), (4, 0x7F));
}

#[test]
fn lrs_of_a_gicv2_guest_are_group0() {
    let mut g = gic_v2(1);
    write_as(&mut g, 0, ISENABLER, 4, 1 << 27);
    write_as(&mut g, 0, IPRIORITYR + 27, 1, 0xA0);
    g.inject(0, 27);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert!(!lr::group1(lrs[0]));
    assert_eq!(lrs[0], v2_lr(27, 0xA0));
    assert_eq!(lr::group_bit(GicVersion::V2), 0);
    assert_eq!(lr::group_bit(GicVersion::V3), lr::GROUP1);
}

#[test]
fn gicv2_diagnostics_name_group0() {
    let mut g = VgicDomain::new(GicVersion::V2, 1);
    write_as(&mut g, 0, CTLR, 4, 0b10); // EnableGrp1 only: the group nothing is in
    write_as(&mut g, 0, ISENABLER, 4, 1 << 27);
    g.inject(0, 27);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    let w = g.take_warning();
    assert_eq!(
        w,
        Some(VgicWarning::DistributorDisabled {
            intid: 27,
            ctlr: 0b10
        }),
        "no redistributor to be asleep, so nothing else"
    );
    assert_eq!(g.take_warning(), None);
    assert!(w.is_some_and(|w| w.to_string().contains("GICD_CTLR.EnableGrp0 (bit 0)")));
    // Waiting with only VMGrp1En: nothing can reach it.
    let mut g = gic_v2(1);
    write_as(&mut g, 0, ISENABLER, 4, 1 << 27);
    g.note_wait(0, VMCR_VENG1 | 0xF8 << VMCR_VPMR_SHIFT);
    assert_eq!(
        g.take_warning(),
        Some(VgicWarning::CpuInterfaceGroup0Off { vcpu: 0 })
    );
    let mut g = gic_v2(1);
    write_as(&mut g, 0, ISENABLER, 4, 1 << 27);
    g.note_wait(0, VMCR_VENG0 | 0xF8 << VMCR_VPMR_SHIFT);
    assert_eq!(g.take_warning(), None, "EnableGrp0 and a mask above 0");
    let mut g = gic_v2(1);
    g.inject(0, 27);
    write_as(&mut g, 0, ISENABLER, 4, 1 << 27);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr_intids(&lrs), [27], "delivered");
    assert_eq!(
        g.take_warning(),
        None,
        "a well-set-up guest gets no warning"
    );
}

#[test]
fn construction_is_const() {
    static G: VgicDomain = VgicDomain::new(GicVersion::V2, 2);
    assert_eq!(G.version(), GicVersion::V2);
    assert_eq!(G.nr_vcpus(), 2);
    assert_eq!(gic(1).version(), GicVersion::V3);
}
