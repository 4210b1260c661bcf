//! Interrupt-controller setups of real guests, replayed register by register, and the
//! diagnostics for setups that cannot deliver.
//!
//! `ZEPHYR_XENVM_INIT` is what the unmodified Zephyr v3.1.0 `xenvm_gicv3` image (see
//! `../shared/guests/README.md`) wrote and read, in order, on one vCPU: recorded from a
//! boot on Bulkhead by logging every vGIC access. That kernel believes it runs in the
//! Secure world: it sets every `IGROUPR` to 0 (with `IGRPMODR` = 1, Secure Group 1) and
//! enables only `GICD_CTLR` bit 2 (EnableGrp1S). On Xen it runs; here it used to get no
//! interrupt after its first greeting.

use super::*;

/// Which window an access of a replayed sequence is in.
#[derive(Clone, Copy)]
enum Win {
    /// The distributor.
    Dist,
    /// vCPU 0's redistributor (RD frame at 0, SGI frame at 0x1_0000).
    Rd,
}
use Win::{Dist, Rd};

/// (window, offset, width, value written or `None` for a read) in the order the guest made
/// them.
const ZEPHYR_XENVM_INIT: &[(Win, u64, u8, Option<u64>)] = &[
    (Dist, 0x0004, 4, None),
    (Dist, 0x0000, 4, Some(0x0)),
    (Dist, 0x0000, 4, None),
    (Dist, 0x0184, 4, Some(0xFFFF_FFFF)),
    (Dist, 0x0284, 4, Some(0xFFFF_FFFF)),
    (Dist, 0x0084, 4, Some(0x0)),
    (Dist, 0x0D04, 4, Some(0xFFFF_FFFF)),
    (Dist, 0x0188, 4, Some(0xFFFF_FFFF)),
    (Dist, 0x0288, 4, Some(0xFFFF_FFFF)),
    (Dist, 0x0088, 4, Some(0x0)),
    (Dist, 0x0D08, 4, Some(0xFFFF_FFFF)),
    (Dist, 0x0000, 4, None),
    (Dist, 0x0420, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0424, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0428, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x042C, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0430, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0434, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0438, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x043C, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0440, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0444, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0448, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x044C, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0450, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0454, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0458, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x045C, 4, Some(0xA0A0_A0A0)),
    (Dist, 0x0C08, 4, Some(0x0)),
    (Dist, 0x0C0C, 4, Some(0x0)),
    (Dist, 0x0C10, 4, Some(0x0)),
    (Dist, 0x0C14, 4, Some(0x0)),
    (Dist, 0x0000, 4, None),
    // Read-modify-write setting bit 2 (EnableGrp1S) of what it read (ARE_NS now; the
    // recording, made before the fix, read 0x50 and wrote 0x54).
    (Dist, 0x0000, 4, Some(0x14)),
    (Rd, 0x0014, 4, None),
    (Rd, 0x0014, 4, None),
    (Rd, 0x0014, 4, Some(0x4)),
    (Rd, 0x0014, 4, None),
    (Rd, 0x1_0180, 4, Some(0xFFFF_FFFF)),
    (Rd, 0x0000, 4, None),
    (Rd, 0x1_0280, 4, Some(0xFFFF_FFFF)),
    (Rd, 0x1_0080, 4, Some(0x0)),
    (Rd, 0x1_0D00, 4, Some(0xFFFF_FFFF)),
    (Rd, 0x1_0400, 4, Some(0xA0A0_A0A0)),
    (Rd, 0x1_0404, 4, Some(0xA0A0_A0A0)),
    (Rd, 0x1_0408, 4, Some(0xA0A0_A0A0)),
    (Rd, 0x1_040C, 4, Some(0xA0A0_A0A0)),
    (Rd, 0x1_0410, 4, Some(0xA0A0_A0A0)),
    (Rd, 0x1_0414, 4, Some(0xA0A0_A0A0)),
    (Rd, 0x1_0418, 4, Some(0xA0A0_A0A0)),
    (Rd, 0x1_041C, 4, Some(0xA0A0_A0A0)),
    (Rd, 0x1_0C04, 4, Some(0x0)),
    (Rd, 0x1_0180, 4, Some(0x8000_0000)),
    (Rd, 0x0000, 4, None),
    (Rd, 0x1_041F, 1, Some(0xA0)),
    (Rd, 0x1_0C04, 4, None),
    (Rd, 0x1_0C04, 4, Some(0x8000_0000)),
    (Rd, 0x1_0100, 4, Some(0x8000_0000)),
    (Rd, 0x1_0180, 4, Some(0x0800_0000)),
    (Rd, 0x0000, 4, None),
    (Rd, 0x1_041B, 1, Some(0xA0)),
    (Rd, 0x1_0C04, 4, None),
    (Rd, 0x1_0C04, 4, Some(0x8000_0000)),
    (Rd, 0x1_0100, 4, Some(0x0800_0000)),
];

fn replay(g: &mut VgicDomain, seq: &[(Win, u64, u8, Option<u64>)]) {
    for &(win, off, width, val) in seq {
        let addr = match win {
            Dist => GICD + off,
            Rd => rd_frame(0) + off,
        };
        match val {
            Some(v) => {
                write(g, addr, width, v);
            }
            None => {
                read(g, addr, width);
            }
        }
    }
}

/// `ICH_VMCR_EL2` with group 1 on (`eng1`) and priority mask `pmr`.
fn vmcr(eng1: bool, pmr: u8) -> u64 {
    u64::from(pmr) << VMCR_VPMR_SHIFT | if eng1 { VMCR_VENG1 } else { 0 }
}

fn all_warnings(g: &mut VgicDomain) -> Vec<VgicWarning> {
    core::iter::from_fn(|| g.take_warning()).collect()
}

#[test]
fn zephyr_xenvm_gets_its_timer_and_event_interrupts_as_group1() {
    let mut g = VgicDomain::new(GicVersion::V3, 1);
    replay(&mut g, ZEPHYR_XENVM_INIT);
    assert_eq!(
        rd32(&mut g, GICD),
        1 << 4,
        "bit 2 is not a Non-secure bit; EnableGrp1A stays off"
    );
    assert_eq!(g.inject(0, 27), 1, "the virtual timer is deliverable");
    assert_eq!(g.inject(0, 31), 1, "so is the event-channel PPI");
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs[0], lr::make(27, 0xA0, false));
    assert_eq!(lrs[1], lr::make(31, 0xA0, false));
    assert!(
        lr::group1(lrs[0]) && lr::group1(lrs[1]),
        "read through IAR1"
    );
}

#[test]
fn zephyr_xenvm_setup_is_reported_once_per_kind() {
    let mut g = VgicDomain::new(GicVersion::V3, 1);
    replay(&mut g, ZEPHYR_XENVM_INIT);
    assert_eq!(
        all_warnings(&mut g),
        [VgicWarning::Group0Requested { intid: 32 }]
    );
    g.inject(0, 27);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(
        all_warnings(&mut g),
        [VgicWarning::DistributorGroupOff {
            intid: 27,
            ctlr: 0x14
        }],
        "the redistributor was woken, so only the distributor enable is reported"
    );
    // The same setup again, and more deliveries: nothing new.
    replay(&mut g, ZEPHYR_XENVM_INIT);
    g.inject(0, 31);
    g.flush_lrs(0, &mut lrs);
    assert!(!g.has_warning());
    assert_eq!(all_warnings(&mut g), []);
    // Its timer is enabled, group 1 is on and the mask is open: waiting is fine.
    g.note_wait(0, vmcr(true, 0xFF));
    assert_eq!(all_warnings(&mut g), []);
}

#[test]
fn linux_style_setup_raises_nothing() {
    let mut g = VgicDomain::new(GicVersion::V3, 2);
    wr32(&mut g, GICD, 0x13);
    wr32(&mut g, GICD + 0x84, 0xFFFF_FFFF);
    for v in 0..2 {
        wr32(&mut g, rd_frame(v) + 0x14, 0);
        wr32(&mut g, sgi_frame(v) + 0x80, 0xFFFF_FFFF);
        enable_private(&mut g, v, 27, 0xA0);
        g.inject(v, 27);
        let mut lrs = [0u64; NR_LRS];
        g.flush_lrs(v, &mut lrs);
        assert_eq!(lr_intids(&lrs), [27]);
        g.note_wait(v, vmcr(true, 0xF0));
    }
    assert_eq!(all_warnings(&mut g), []);
}

#[test]
fn a_sleeping_redistributor_is_reported_but_delivers() {
    let mut g = gic(2);
    wr32(&mut g, rd_frame(0) + 0x14, 0);
    enable_private(&mut g, 1, 27, 0x80);
    assert_eq!(g.inject(1, 27), 1 << 1);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(1, &mut lrs);
    assert_eq!(lr_intids(&lrs), [27]);
    assert_eq!(
        all_warnings(&mut g),
        [VgicWarning::RedistributorAsleep { vcpu: 1, intid: 27 }]
    );
}

#[test]
fn waiting_with_group1_off_or_everything_masked_is_reported() {
    let mut g = gic(2);
    wr32(&mut g, rd_frame(0) + 0x14, 0);
    g.note_wait(0, vmcr(false, 0xFF));
    assert_eq!(
        all_warnings(&mut g),
        [],
        "nothing enabled: not waiting on us"
    );
    enable_private(&mut g, 0, 27, 0xA0);
    g.note_wait(0, vmcr(true, 0xA0));
    assert_eq!(
        all_warnings(&mut g),
        [VgicWarning::PriorityMasked {
            vcpu: 0,
            pmr: 0xA0,
            best: 0xA0
        }],
        "an equal priority is masked too"
    );
    g.note_wait(0, vmcr(false, 0xFF));
    assert_eq!(
        all_warnings(&mut g),
        [VgicWarning::CpuInterfaceOff { vcpu: 0 }]
    );
    g.note_wait(1, vmcr(false, 0));
    assert_eq!(all_warnings(&mut g), [], "each kind once per domain");
}

#[test]
fn an_spi_counts_for_the_vcpu_it_is_routed_to() {
    let mut g = gic(2);
    enable_spi(&mut g, 40, 0x20);
    route_spi(&mut g, 40, 1);
    g.note_wait(0, vmcr(true, 0x10));
    assert_eq!(all_warnings(&mut g), [], "vCPU 0 has nothing enabled");
    g.note_wait(1, vmcr(true, 0x10));
    assert_eq!(
        all_warnings(&mut g),
        [VgicWarning::PriorityMasked {
            vcpu: 1,
            pmr: 0x10,
            best: 0x20
        }]
    );
}

#[test]
fn warning_texts_name_the_register_and_the_consequence() {
    assert_eq!(
        VgicWarning::DistributorGroupOff {
            intid: 27,
            ctlr: 0x14
        }
        .to_string(),
        "vGIC: INTID 27 delivered while GICD_CTLR.EnableGrp1 (bit 1) is off (GICD_CTLR last \
         written 0x14; its bit 2, EnableGrp1S, exists only in the Secure world); a GIC would \
         never deliver it, Bulkhead delivers it as Xen does"
    );
    assert_eq!(
        VgicWarning::CpuInterfaceOff { vcpu: 3 }.to_string(),
        "vGIC: vCPU 3 waits for interrupts with ICC_IGRPEN1_EL1 = 0; no interrupt will ever \
         reach it"
    );
    let masked = VgicWarning::PriorityMasked {
        vcpu: 0,
        pmr: 0x80,
        best: 0xA0,
    }
    .to_string();
    assert!(masked.contains("ICC_PMR_EL1 = 0x80") && masked.contains("0xa0"));
}

#[test]
fn the_wait_check_sees_a_route_changed_after_it_last_ran() {
    let mut g = gic(2);
    enable_spi(&mut g, 40, 0x20);
    route_spi(&mut g, 40, 1);
    g.note_wait(0, vmcr(true, 0x10));
    assert_eq!(all_warnings(&mut g), [], "vCPU 0 has nothing enabled yet");
    route_spi(&mut g, 40, 0);
    g.note_wait(0, vmcr(true, 0x10));
    assert_eq!(
        all_warnings(&mut g),
        [VgicWarning::PriorityMasked {
            vcpu: 0,
            pmr: 0x10,
            best: 0x20
        }],
        "the check ran again after the route moved"
    );
}
