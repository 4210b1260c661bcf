//! SGI routing (`ICC_SGI1R_EL1`) and SPI routing (`GICD_IROUTER`).

use super::*;

/// An `ICC_SGI1R_EL1` value.
fn sgi1r(intid: u64, targets: u64) -> u64 {
    intid << 24 | targets
}

/// A GIC for `n` vCPUs with SGI `intid` enabled on all of them.
fn gic_with_sgi(n: usize, intid: u32) -> VgicDomain {
    let mut g = gic(n);
    for v in 0..n {
        enable_private(&mut g, v, intid, 0);
    }
    g
}

fn sgi_pending(g: &mut VgicDomain, v: usize) -> u64 {
    rd32(g, sgi_frame(v) + 0x200) & 0xFFFF
}

#[test]
fn sgi_target_list() {
    let mut g = gic_with_sgi(4, 3);
    assert_eq!(g.send_sgi(0, sgi1r(3, 0b1010)), 0b1010);
    assert_eq!(sgi_pending(&mut g, 1), 1 << 3);
    assert_eq!(sgi_pending(&mut g, 3), 1 << 3);
    assert_eq!(sgi_pending(&mut g, 0), 0);
    assert_eq!(sgi_pending(&mut g, 2), 0);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(3, &mut lrs);
    assert_eq!(lrs[0], lr::make(3, 0, false));
}

#[test]
fn sgi_to_self_works() {
    let mut g = gic_with_sgi(2, 0);
    assert_eq!(g.send_sgi(1, sgi1r(0, 0b10)), 0b10);
}

#[test]
fn sgi_irm_targets_all_but_self() {
    let mut g = gic_with_sgi(4, 7);
    let kick = g.send_sgi(2, sgi1r(7, 0) | 1 << 40);
    assert_eq!(kick, 0b1011);
    assert_eq!(sgi_pending(&mut g, 2), 0);
    assert_eq!(sgi_pending(&mut g, 0), 1 << 7);
}

#[test]
fn sgi_to_absent_targets_is_ignored() {
    let mut g = gic_with_sgi(4, 1);
    let before = g.clone();
    assert_eq!(
        g.send_sgi(0, sgi1r(1, 0b1111_0000)),
        0,
        "Aff0 4..7 do not exist"
    );
    assert_eq!(g.send_sgi(0, sgi1r(1, 0b1) | 1 << 16), 0, "Aff1 = 1");
    assert_eq!(g.send_sgi(0, sgi1r(1, 0b1) | 1 << 32), 0, "Aff2 = 1");
    assert_eq!(g.send_sgi(0, sgi1r(1, 0b1) | 1 << 48), 0, "Aff3 = 1");
    assert_eq!(
        g.send_sgi(0, sgi1r(1, 0b1) | 1 << 44),
        0,
        "RS = 1: Aff0 16..31"
    );
    assert_eq!(g, before);
    // Mixed: present targets still get it.
    assert_eq!(g.send_sgi(0, sgi1r(1, 0xFFFF)), 0b1111);
}

#[test]
fn sgi_to_disabled_target_pends_without_kick() {
    let mut g = gic(2);
    enable_private(&mut g, 0, 2, 0);
    assert_eq!(g.send_sgi(0, sgi1r(2, 0b11)), 0b01);
    assert_eq!(sgi_pending(&mut g, 1), 1 << 2, "pending on vCPU 1 anyway");
}

#[test]
fn spi_follows_irouter() {
    let mut g = gic(4);
    enable_spi(&mut g, 40, 0x20);
    route_spi(&mut g, 40, 2);
    assert_eq!(g.inject(0, 40), 1 << 2, "vcpu argument is ignored for SPIs");
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs, [0; NR_LRS], "not vCPU 0's");
    assert!(!g.has_deliverable(0, &lrs));
    assert!(g.has_deliverable(2, &lrs));
    g.flush_lrs(2, &mut lrs);
    assert_eq!(lrs[0], lr::make(40, 0x20, false));
}

#[test]
fn spi_irm_goes_to_vcpu0_and_absent_targets_hold_it() {
    let mut g = gic(2);
    enable_spi(&mut g, 33, 0);
    route_spi(&mut g, 33, 1 << 31 | 1);
    assert_eq!(g.inject(1, 33), 1);
    let mut g = gic(2);
    enable_spi(&mut g, 33, 0);
    route_spi(&mut g, 33, 5);
    assert_eq!(g.inject(0, 33), 0, "no vCPU 5");
    for v in 0..2 {
        let mut lrs = [0u64; NR_LRS];
        g.flush_lrs(v, &mut lrs);
        assert_eq!(lrs, [0; NR_LRS]);
    }
    route_spi(&mut g, 33, 1 << 8); // Aff1 = 1: no such cluster either
    assert!(!g.has_deliverable(0, &[]));
    assert_eq!(
        route_spi(&mut g, 33, 1),
        1 << 1,
        "rerouting a pending SPI kicks its new target"
    );
}

#[test]
fn spi_in_an_lr_stays_with_its_owner() {
    let mut g = gic(2);
    enable_spi(&mut g, 70, 0);
    g.inject(0, 70);
    let mut lrs0 = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs0);
    ack(&mut lrs0[0]);
    g.sync_lrs(0, &lrs0);
    // Rerouted and pended again while vCPU 0 is still handling it.
    route_spi(&mut g, 70, 1);
    assert_eq!(g.inject(1, 70), 1 << 0, "the owner gets it next");
    let mut lrs1 = [0u64; NR_LRS];
    g.flush_lrs(1, &mut lrs1);
    assert_eq!(lrs1, [0; NR_LRS]);
    g.flush_lrs(0, &mut lrs0);
    assert_eq!(lr::state(lrs0[0]), lr::LrState::PendingActive);
    // Once finished on vCPU 0, the route applies again.
    lrs0[0] = 0;
    g.sync_lrs(0, &lrs0);
    g.inject(0, 70);
    g.flush_lrs(1, &mut lrs1);
    assert_eq!(lr_intids(&lrs1), [70]);
}

#[test]
fn spi_pending_reads_include_other_vcpus_lrs() {
    let mut g = gic(2);
    enable_spi(&mut g, 64, 0);
    route_spi(&mut g, 64, 1);
    g.inject(0, 64);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(1, &mut lrs);
    assert_eq!(
        rd32(&mut g, GICD + 0x208),
        1,
        "INTID 64 pending in vCPU 1's LR"
    );
    ack(&mut lrs[0]);
    g.sync_lrs(1, &lrs);
    assert_eq!(rd32(&mut g, GICD + 0x208), 0);
    assert_eq!(rd32(&mut g, GICD + 0x308), 1, "active");
}

#[test]
fn sgi_targets_decodes_what_send_sgi_delivers() {
    use crate::vgic::sgi_targets;
    assert_eq!(sgi_targets(4, 0, sgi1r(3, 0b1010)), (3, 0b1010));
    // IRM: everyone but the sender; absent PEs and other clusters: nobody.
    assert_eq!(sgi_targets(4, 2, sgi1r(7, 0) | 1 << 40), (7, 0b1011));
    assert_eq!(sgi_targets(4, 0, sgi1r(1, 0xFFFF)), (1, 0b1111));
    assert_eq!(sgi_targets(4, 0, sgi1r(1, 1) | 1 << 16), (1, 0));
    assert_eq!(sgi_targets(4, 0, sgi1r(1, 1) | 1 << 44), (1, 0), "RS = 1");
    assert_eq!(
        sgi_targets(4, 0, sgi1r(1, 1) | 0xF << 44),
        (1, 0),
        "RS = 15"
    );
    // Whatever the value, the targets are the vCPUs send_sgi made it pending on.
    let mut r = 0x1234_5678_9abc_def0u64;
    for _ in 0..2000 {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        let mut g = gic_with_sgi(4, ((r >> 24) & 0xF) as u32);
        let (intid, targets) = sgi_targets(4, 1, r);
        assert_eq!(g.send_sgi(1, r), targets, "{r:#x}");
        for v in 0..4 {
            let want = if targets & (1 << v) != 0 {
                1 << intid
            } else {
                0
            };
            assert_eq!(sgi_pending(&mut g, v), want, "{r:#x} vCPU {v}");
        }
    }
}

#[test]
fn an_adopted_lr_is_the_models_from_then_on() {
    let mut g = gic_with_sgi(2, 5);
    // The fast path put SGI 5 in LR 1 of vCPU 1; the guest has acknowledged it.
    let mut lrs = [0u64; NR_LRS];
    lrs[1] = lr::make(5, 0, false) | lr::ACTIVE;
    lrs[1] &= !lr::PENDING;
    assert!(g.adopt(1, lrs[1]));
    assert_eq!(
        rd32(&mut g, sgi_frame(1) + 0x300) & 0xFFFF,
        1 << 5,
        "reads active"
    );
    // Twice, a hardware-linked LR, an SPI, an empty LR or an absent vCPU: refused.
    assert!(!g.adopt(1, lrs[1]));
    assert!(!g.adopt(1, lr::make(6, 0, false) | lr::HW));
    assert!(!g.adopt(1, lr::make(40, 0, false)));
    assert!(!g.adopt(1, 0));
    assert!(!g.adopt(2, lr::make(6, 0, false)));
    // Sent again while active: the model makes the adopted LR pending and active instead
    // of using a second LR.
    g.send_sgi(0, sgi1r(5, 0b10));
    g.flush_lrs(1, &mut lrs);
    assert_eq!(lr::state(lrs[1]), lr::LrState::PendingActive);
    assert!(lrs.iter().enumerate().all(|(i, &l)| i == 1 || l == 0));
    // The guest finishes it: the LR is retired like one the model placed.
    lrs[1] = 0;
    g.sync_lrs(1, &lrs);
    assert_eq!(rd32(&mut g, sgi_frame(1) + 0x300) & 0xFFFF, 0);
}

#[test]
fn an_lr_the_fast_path_retired_is_forgotten_before_a_posted_one_is_adopted() {
    let mut g = gic_with_sgi(2, 5);
    let finished = |v: u64| v & !lr::STATE_MASK;
    // The model delivers SGI 5 to vCPU 1 in LR 0.
    g.send_sgi(0, sgi1r(5, 0b10));
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(1, &mut lrs);
    assert_eq!(lrs[0], lr::make(5, 0, false));
    // The guest finished it and the fast path freed the slot without the lock, then put
    // the next posted SGI 5 into LR 1. Before the model has heard of the first, the posted
    // one cannot be adopted (SGI 5 would be in two LRs).
    assert_eq!(finished(lrs[0]) & !lr::STATE_MASK, lrs[0] & !lr::STATE_MASK);
    lrs[0] = 0;
    lrs[1] = lr::make(5, 0, false);
    assert!(!g.adopt(1, lrs[1]));
    // The locked pass retires first, the posted LR not yet included.
    let mut seen = lrs;
    seen[1] = 0;
    g.retire_freed(1, &seen);
    assert!(g.adopt(1, lrs[1]));
    assert_eq!(sgi_pending(&mut g, 1), 1 << 5, "reads pending, from LR 1");
    // The model's next flush leaves it there, in one LR.
    g.flush_lrs(1, &mut lrs);
    assert_eq!(lrs[1], lr::make(5, 0, false));
    assert!(lrs.iter().enumerate().all(|(i, &l)| i == 1 || l == 0));
}

#[test]
fn a_retired_lr_frees_its_intid_for_the_model_and_keeps_its_completion() {
    let mut g = gic_with_sgi(2, 5);
    g.set_eoi_notify(1, 5, true);
    g.send_sgi(0, sgi1r(5, 0b10));
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(1, &mut lrs);
    assert_eq!(lrs[0], lr::make(5, 0, true));
    // Sent again while in the LR: pending in the model, waiting for the LR.
    g.send_sgi(0, sgi1r(5, 0b10));
    // Freed by the caller (the fast path never frees a notified one; the model must
    // still report it if the configuration changed under the LR), then retired.
    lrs[0] = 0;
    g.retire_freed(1, &lrs);
    assert!(g.needs_flush(1), "the waiting SGI may go in now");
    g.flush_lrs(1, &mut lrs);
    assert_eq!(lr::intid(lrs[0]), 5);
    assert_eq!(lr::state(lrs[0]), lr::LrState::Pending);
    // The completion is reported at the next sync.
    let done = g.sync_lrs(1, &lrs);
    assert!(done.contains(5));
    // Absent vCPUs are ignored.
    g.retire_freed(7, &lrs);
}
