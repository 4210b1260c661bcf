//! Register reset values, access widths and RAZ/WI rules.

use super::*;

#[test]
fn distributor_reset_values() {
    let mut g = VgicDomain::new(GicVersion::V3, 2);
    let typer = rd32(&mut g, GICD + 0x4);
    assert_eq!(typer & 0x1F, 2, "ITLinesNumber: 96 INTIDs");
    assert_eq!((typer >> 5) & 0x7, 0, "CPUNumber is 0 with ARE");
    assert_eq!((typer >> 19) & 0x1F, 9, "IDbits: 10-bit INTIDs");
    assert_eq!(typer & (1 << 17 | 1 << 16), 0, "no LPIs, no MBIS");
    assert_eq!(
        rd32(&mut g, GICD),
        1 << 4,
        "ARE_NS set, DS clear (the Non-secure view), EnableGrp1A off"
    );
    assert_eq!(rd32(&mut g, GICD + 0x8) & 0xFFF, 0x43B);
    assert_eq!(rd32(&mut g, GICD + 0xC), 0, "TYPER2");
    assert_eq!(rd32(&mut g, GICD + 0xFFE8), 0x3B);
    assert_eq!(
        (rd32(&mut g, GICD + 0xFFE8) >> 4) & 0xF,
        3,
        "ArchRev = GICv3"
    );
    // SPIs reset disabled, not pending, priority 0, routed to vCPU 0; IGROUPR is RAZ to a
    // Non-secure guest.
    assert_eq!(rd32(&mut g, GICD + 0x84), 0);
    assert_eq!(rd32(&mut g, GICD + 0x104), 0);
    assert_eq!(rd32(&mut g, GICD + 0x204), 0);
    assert_eq!(rd32(&mut g, GICD + 0x420), 0);
    assert_eq!(read(&mut g, GICD + 0x6000 + 8 * 32, 8), 0);
}

#[test]
fn redistributor_reset_values_and_last_bit() {
    let mut g = VgicDomain::new(GicVersion::V3, 3);
    for v in 0..3 {
        let typer = read(&mut g, rd_frame(v) + 0x8, 8);
        assert_eq!(typer >> 32, v as u64, "affinity = Aff0 = index");
        assert_eq!((typer >> 8) & 0xFFFF, v as u64, "processor number");
        assert_eq!(typer & 1, 0, "no PLPIS");
        assert_eq!(
            typer & (1 << 4) != 0,
            v == 2,
            "Last only on the final frame"
        );
        // 32-bit halves are allowed too.
        assert_eq!(rd32(&mut g, rd_frame(v) + 0x8), typer & 0xFFFF_FFFF);
        assert_eq!(rd32(&mut g, rd_frame(v) + 0xC), typer >> 32);
        assert_eq!(rd32(&mut g, rd_frame(v) + 0xFFE8), 0x3B);
        assert_eq!(rd32(&mut g, sgi_frame(v) + 0xFFE8), 0x3B);
        assert_eq!(rd32(&mut g, rd_frame(v) + 0x4) & 0xFFF, 0x43B);
        assert_eq!(rd32(&mut g, sgi_frame(v) + 0x80), 0, "IGROUPR0 is RAZ");
        assert_eq!(rd32(&mut g, sgi_frame(v) + 0xC00), 0xAAAA_AAAA, "SGIs edge");
    }
    // Frames past the last vCPU exist in the window but read as zero (PIDR2 = 0 stops a scan).
    assert_eq!(rd32(&mut g, rd_frame(3) + 0xFFE8), 0);
    assert_eq!(read(&mut g, rd_frame(7) + 0x8, 8), 0);
    assert_eq!(wr32(&mut g, sgi_frame(5) + 0x200, u64::MAX), 0);
}

#[test]
fn single_vcpu_has_last_set() {
    let mut g = VgicDomain::new(GicVersion::V3, 1);
    assert_ne!(read(&mut g, rd_frame(0) + 0x8, 8) & (1 << 4), 0);
}

#[test]
fn gicd_ctlr_only_enable_grp1a_is_writable() {
    let mut g = VgicDomain::new(GicVersion::V3, 1);
    wr32(&mut g, GICD, 0xFFFF_FFFF);
    assert_eq!(
        rd32(&mut g, GICD),
        0b10 | 1 << 4,
        "RWP, EnableGrp1S, DS read 0; ARE_NS fixed"
    );
    wr32(&mut g, GICD, 0);
    assert_eq!(rd32(&mut g, GICD), 1 << 4, "ARE_NS is RAO/WI");
}

#[test]
fn waker_children_asleep_follows_processor_sleep() {
    let mut g = VgicDomain::new(GicVersion::V3, 2);
    let waker = rd_frame(1) + 0x14;
    assert_eq!(rd32(&mut g, waker), 0b110, "asleep out of reset");
    wr32(&mut g, waker, 0);
    assert_eq!(
        rd32(&mut g, waker),
        0,
        "awake: ChildrenAsleep clears at once"
    );
    assert_eq!(rd32(&mut g, rd_frame(0) + 0x14), 0b110, "banked per vCPU");
    wr32(&mut g, waker, 0b10);
    assert_eq!(rd32(&mut g, waker), 0b110);
}

#[test]
fn icfgr_stores_only_the_edge_bit() {
    let mut g = VgicDomain::new(GicVersion::V3, 1);
    wr32(&mut g, sgi_frame(0) + 0xC04, 0xFFFF_FFFF);
    assert_eq!(rd32(&mut g, sgi_frame(0) + 0xC04), 0xAAAA_AAAA);
    wr32(&mut g, sgi_frame(0) + 0xC00, 0);
    assert_eq!(
        rd32(&mut g, sgi_frame(0) + 0xC00),
        0xAAAA_AAAA,
        "ICFGR0 is read-only"
    );
    wr32(&mut g, GICD + 0xC08, 0x5555_AAAA);
    assert_eq!(rd32(&mut g, GICD + 0xC08), 0x0000_AAAA);
    wr32(&mut g, GICD + 0xC04, 0xFFFF_FFFF);
    assert_eq!(
        rd32(&mut g, GICD + 0xC04),
        0,
        "PPI config lives in the redistributor"
    );
}

#[test]
fn priority_registers_are_byte_accessible() {
    let mut g = VgicDomain::new(GicVersion::V3, 2);
    write(&mut g, GICD + 0x400 + 41, 1, 0xA0);
    write(&mut g, GICD + 0x400 + 42, 1, 0x1B0);
    assert_eq!(
        rd32(&mut g, GICD + 0x428),
        0x00B0_A000,
        "byte write masks to 8 bits"
    );
    wr32(&mut g, GICD + 0x42C, 0x4433_2211);
    assert_eq!(read(&mut g, GICD + 0x42E, 1), 0x33);
    // Redistributor priorities are banked per vCPU.
    write(&mut g, sgi_frame(1) + 0x400 + 27, 1, 0x80);
    assert_eq!(rd32(&mut g, sgi_frame(1) + 0x418), 0x8000_0000);
    assert_eq!(rd32(&mut g, sgi_frame(0) + 0x418), 0);
    // The distributor's view of SGI/PPI priorities is RAZ/WI with ARE.
    wr32(&mut g, GICD + 0x418, 0xFFFF_FFFF);
    assert_eq!(rd32(&mut g, GICD + 0x418), 0);
    assert_eq!(rd32(&mut g, sgi_frame(0) + 0x418), 0);
    // Past the last SPI: RAZ/WI.
    write(&mut g, GICD + 0x400 + 96, 1, 0xFF);
    assert_eq!(read(&mut g, GICD + 0x400 + 96, 1), 0);
}

#[test]
fn distributor_private_ranges_are_raz_wi() {
    let mut g = gic(1);
    for bank in [0x080u64, 0x100, 0x200, 0x300] {
        assert_eq!(wr32(&mut g, GICD + bank, 0xFFFF_FFFF), 0);
        assert_eq!(rd32(&mut g, GICD + bank), 0);
    }
    assert_eq!(
        rd32(&mut g, sgi_frame(0) + 0x100),
        0,
        "GICD write did not enable SGIs"
    );
    assert_eq!(rd32(&mut g, sgi_frame(0) + 0x200), 0, "nor pend them");
    assert_eq!(g.take_warning(), None, "nor count as a Group 0 request");
}

#[test]
fn set_and_clear_enable_registers() {
    let mut g = VgicDomain::new(GicVersion::V3, 1);
    wr32(&mut g, GICD + 0x104, 0b1011);
    assert_eq!(rd32(&mut g, GICD + 0x104), 0b1011);
    assert_eq!(
        rd32(&mut g, GICD + 0x184),
        0b1011,
        "ICENABLER reads the same state"
    );
    wr32(&mut g, GICD + 0x184, 0b0010);
    assert_eq!(rd32(&mut g, GICD + 0x104), 0b1001);
    wr32(&mut g, GICD + 0x104, 0);
    assert_eq!(rd32(&mut g, GICD + 0x104), 0b1001, "zero bits are ignored");
    // IGROUPR is RAZ/WI.
    wr32(&mut g, GICD + 0x88, 0x0F0F_0F0F);
    assert_eq!(rd32(&mut g, GICD + 0x88), 0);
    wr32(&mut g, sgi_frame(0) + 0x80, 0x8000_0001);
    assert_eq!(rd32(&mut g, sgi_frame(0) + 0x80), 0);
}

#[test]
fn irouter_full_and_half_accesses() {
    let mut g = VgicDomain::new(GicVersion::V3, 4);
    let r40 = GICD + 0x6000 + 8 * 40;
    write(&mut g, r40, 8, 0xFFFF_FFFF_FFFF_FFFF);
    assert_eq!(
        read(&mut g, r40, 8),
        0xFF_80FF_FFFF,
        "only Aff3, IRM, Aff2..0 stick"
    );
    write(&mut g, r40, 8, 3);
    assert_eq!(read(&mut g, r40, 8), 3);
    wr32(&mut g, r40 + 4, 0x12);
    assert_eq!(read(&mut g, r40, 8), 0x12_0000_0003);
    assert_eq!(rd32(&mut g, r40), 3);
    assert_eq!(rd32(&mut g, r40 + 4), 0x12);
    // IROUTER<n> for n < 32 does not exist.
    write(&mut g, GICD + 0x6000 + 8 * 27, 8, 2);
    assert_eq!(read(&mut g, GICD + 0x6000 + 8 * 27, 8), 0);
}

#[test]
fn unknown_offsets_are_raz_wi() {
    let mut g = gic(2);
    let before = g.clone();
    let junk = [
        GICD + 0x14,
        GICD + 0x1000,
        GICD + 0x5000,
        GICD + 0x8000,
        GICD + 0xFFFC,
        GICD + 0xF000,
        rd_frame(0) + 0x20,
        rd_frame(1) + 0x8000,
        sgi_frame(0) + 0x500,
        sgi_frame(1) + 0xC08,
        sgi_frame(1) + 0xF000,
    ];
    for addr in junk {
        assert_eq!(rd32(&mut g, addr), 0, "{addr:#x}");
        assert_eq!(wr32(&mut g, addr, 0xFFFF_FFFF), 0, "{addr:#x}");
    }
    assert!(g.ignored_accesses() > 0);
    g.ignored = 0;
    assert_eq!(g, before, "no state changed");
}

#[test]
fn wrong_width_and_misaligned_are_raz_wi() {
    let mut g = VgicDomain::new(GicVersion::V3, 1);
    let before = g.ignored_accesses();
    assert_eq!(read(&mut g, GICD, 2), 0, "16-bit CTLR");
    assert_eq!(read(&mut g, GICD + 0x4, 8), 0, "64-bit TYPER");
    assert_eq!(read(&mut g, GICD + 0x2, 4), 0, "misaligned");
    assert_eq!(read(&mut g, GICD + 0x104, 1), 0, "byte access to ISENABLER");
    assert_eq!(read(&mut g, GICD + 0x4, 3), 0, "3-byte access");
    assert_eq!(read(&mut g, GICD + 0x4, 0), 0, "0-byte access");
    write(&mut g, GICD, 1, 0xFF);
    write(&mut g, GICD + 0x1, 1, 0xFF);
    assert_eq!(rd32(&mut g, GICD) & 0b11, 0, "byte writes to CTLR ignored");
    write(&mut g, GICD + 0x6000 + 8 * 40 + 2, 2, 0xFFFF);
    assert_eq!(read(&mut g, GICD + 0x6000 + 8 * 40, 8), 0);
    assert_eq!(g.ignored_accesses() - before, 9);
}

#[test]
fn outside_the_windows_is_not_gic() {
    let mut g = VgicDomain::new(GicVersion::V3, 2);
    let gicr_end = GUEST_GICR_BASE.as_u64() + GUEST_GICR_SIZE;
    for addr in [
        0,
        GICD - 4,
        GICD + GUEST_GICD_SIZE,
        GUEST_GICR_BASE.as_u64() - 8,
        gicr_end,
        u64::MAX,
    ] {
        assert_not_gic(&mut g, addr);
    }
    assert_eq!(
        g.mmio(0, GuestPhysAddr::new(gicr_end - 4), 4, None),
        MmioOutcome::Read(0)
    );
    assert_eq!(
        g.mmio(0, GuestPhysAddr::new(GICD + GUEST_GICD_SIZE - 4), 4, None),
        MmioOutcome::Read(0)
    );
}

#[test]
fn construction_is_const_and_clamped() {
    static G: VgicDomain = VgicDomain::new(GicVersion::V3, 4);
    assert_eq!(G.nr_vcpus(), 4);
    assert_eq!(VgicDomain::new(GicVersion::V3, 100).nr_vcpus(), MAX_VCPUS);
    let mut none = VgicDomain::new(GicVersion::V3, 0);
    assert_eq!(rd32(&mut none, rd_frame(0) + 0xFFE8), 0);
    assert_eq!(none.inject(0, 27), 0);
    assert_eq!(none.inject(0, 40), 0, "SPI with no vCPU to route to");
}
