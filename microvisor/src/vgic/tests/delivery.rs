//! Delivery through list registers: flush, sync, priorities, re-pending, EOI notification.

use super::*;

#[test]
fn lr_helpers_round_trip() {
    let l = lr::make(27, 0xA0, true);
    assert_eq!(lr::intid(l), 27);
    assert_eq!(lr::priority(l), 0xA0);
    assert_eq!(lr::state(l), lr::LrState::Pending);
    assert!(lr::group1(l) && lr::eoi_notify(l) && !lr::is_hw(l));
    assert_eq!(l, 27 | 0xA0 << 48 | 1 << 60 | 1 << 41 | 1 << 62);
    let a = lr::with_state(l, lr::LrState::PendingActive);
    assert_eq!(a >> 62, 0b11);
    assert_eq!(
        lr::state(lr::with_state(a, lr::LrState::Invalid)),
        lr::LrState::Invalid
    );
}

#[test]
fn enabled_pending_ppi_is_flushed_with_its_priority() {
    let mut g = gic(2);
    enable_private(&mut g, 1, 27, 0xA0);
    assert_eq!(
        wr32(&mut g, sgi_frame(1) + 0x200, 1 << 27),
        1 << 1,
        "ISPENDR kicks vCPU 1"
    );
    assert_eq!(rd32(&mut g, sgi_frame(1) + 0x200), 1 << 27);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(1, &mut lrs);
    assert_eq!(
        lrs[0],
        lr::make(27, 0xA0, false),
        "Group 1, pending, HW = 0"
    );
    assert_eq!(&lrs[1..], &[0; 3]);
    assert!(!g.needs_refill(1));
    assert_eq!(
        rd32(&mut g, sgi_frame(1) + 0x200),
        1 << 27,
        "still reads pending while in the LR"
    );
    // A second flush neither duplicates it nor changes it.
    g.flush_lrs(1, &mut lrs);
    assert_eq!(lr_intids(&lrs), [27]);
    // Nothing went to vCPU 0.
    let mut other = [0u64; NR_LRS];
    g.flush_lrs(0, &mut other);
    assert_eq!(other, [0; NR_LRS]);
}

#[test]
fn disabled_interrupts_wait_and_the_distributor_enable_does_not_gate() {
    let mut g = VgicDomain::new(GicVersion::V3, 1);
    write(&mut g, sgi_frame(0) + 0x400 + 20, 1, 0x40);
    assert_eq!(g.inject(0, 20), 0, "not enabled");
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs, [0; NR_LRS]);
    assert!(!g.has_deliverable(0, &lrs));
    // As on Xen, GICD_CTLR.EnableGrp1A being off (as here) does not hold it back.
    assert_eq!(
        wr32(&mut g, sgi_frame(0) + 0x100, 1 << 20),
        1,
        "enabling a pending interrupt kicks"
    );
    assert!(g.has_deliverable(0, &lrs));
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs[0], lr::make(20, 0x40, false));
}

#[test]
fn a_group0_request_still_delivers_group1() {
    let mut g = gic(1);
    wr32(&mut g, sgi_frame(0) + 0x80, !(1 << 5));
    enable_private(&mut g, 0, 5, 0x10);
    assert_eq!(g.inject(0, 5), 1);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr::intid(lrs[0]), 5);
    assert!(
        lr::group1(lrs[0]),
        "a Non-secure guest has only Group 1: a Group 0 LR would be a vFIQ it never takes"
    );
}

#[test]
fn enabling_a_pending_interrupt_kicks() {
    let mut g = gic(2);
    assert_eq!(g.inject(1, 31), 0);
    assert_eq!(wr32(&mut g, sgi_frame(1) + 0x100, 1 << 31), 1 << 1);
    assert_eq!(g.inject(1, 1000), 0, "out-of-range INTID");
    assert_eq!(g.inject(2, 3), 0, "out-of-range vCPU");
}

#[test]
fn most_urgent_interrupts_win_the_lrs() {
    let mut g = gic(1);
    let prios = [
        (40, 0x80),
        (41, 0x20),
        (42, 0x60),
        (43, 0x20),
        (44, 0xF0),
        (45, 0x10),
    ];
    for (intid, p) in prios {
        enable_spi(&mut g, intid, p);
        assert_eq!(g.inject(0, intid), 1);
    }
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    // 45 (0x10), then 41 and 43 (0x20, lower INTID first), then 42 (0x60).
    assert_eq!(lr_intids(&lrs), [45, 41, 43, 42]);
    assert_eq!(lr::priority(lrs[1]), 0x20);
    assert!(g.needs_refill(0), "40 and 44 did not fit");

    // The guest takes 41 and finishes it; its slot frees and 40 (0x80) moves in.
    ack(&mut lrs[1]);
    eoi(&mut lrs[1]);
    assert!(
        g.sync_lrs(0, &lrs).is_empty(),
        "no EOI notification requested"
    );
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr_intids(&lrs), [45, 40, 43, 42]);
    assert!(g.needs_refill(0));
    for l in lrs.iter_mut() {
        ack(l);
        eoi(l);
    }
    g.sync_lrs(0, &lrs);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr_intids(&lrs), [44]);
    assert!(!g.needs_refill(0));
}

#[test]
fn urgent_interrupt_evicts_a_waiting_one() {
    let mut g = gic(1);
    for intid in 40..44 {
        enable_spi(&mut g, intid, 0x80);
        g.inject(0, intid);
    }
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    ack(&mut lrs[0]); // 40 is being handled: it cannot be evicted.
    g.sync_lrs(0, &lrs);
    enable_spi(&mut g, 50, 0x10);
    g.inject(0, 50);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(
        lr_intids(&lrs),
        [40, 41, 42, 50],
        "43, the least urgent waiting one, went"
    );
    assert!(g.needs_refill(0));
    assert_ne!(rd32(&mut g, GICD + 0x104) & (1 << (43 - 32)), 0);
    assert_ne!(
        rd32(&mut g, GICD + 0x204) & (1 << (43 - 32)),
        0,
        "43 is still pending"
    );
    eoi(&mut lrs[0]);
    g.sync_lrs(0, &lrs);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr_intids(&lrs), [43, 41, 42, 50]);
}

#[test]
fn repend_while_active_becomes_pending_active() {
    let mut g = gic(1);
    enable_private(&mut g, 0, 27, 0x50);
    g.inject(0, 27);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    ack(&mut lrs[0]);
    g.sync_lrs(0, &lrs);
    assert_eq!(
        rd32(&mut g, sgi_frame(0) + 0x300),
        1 << 27,
        "ISACTIVER sees the LR"
    );
    assert_eq!(rd32(&mut g, sgi_frame(0) + 0x200), 0);
    assert_eq!(g.inject(0, 27), 1);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr::state(lrs[0]), lr::LrState::PendingActive);
    assert_eq!(lr_intids(&lrs), [27], "not placed twice");
    eoi(&mut lrs[0]);
    g.sync_lrs(0, &lrs);
    assert_eq!(lr::state(lrs[0]), lr::LrState::Pending);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr_intids(&lrs), [27]);
}

#[test]
fn repend_while_pending_coalesces() {
    let mut g = gic(1);
    enable_private(&mut g, 0, 31, 0);
    g.inject(0, 31);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    g.inject(0, 31);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs[0], lr::make(31, 0, false));
    assert_eq!(lr_intids(&lrs), [31]);
    ack(&mut lrs[0]);
    eoi(&mut lrs[0]);
    g.sync_lrs(0, &lrs);
    g.flush_lrs(0, &mut lrs);
    assert!(lr_intids(&lrs).is_empty(), "edge: one pend, one delivery");
}

#[test]
fn eoi_notify_sets_the_lr_bit_and_reports_completion() {
    let mut g = gic(2);
    enable_private(&mut g, 1, 27, 0xA0);
    g.set_eoi_notify(1, 27, true);
    g.inject(1, 27);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(1, &mut lrs);
    assert_eq!(lrs[0], lr::make(27, 0xA0, true));
    ack(&mut lrs[0]);
    assert!(
        !g.sync_lrs(1, &lrs).contains(27),
        "acknowledged is not complete"
    );
    eoi(&mut lrs[0]);
    let done = g.sync_lrs(1, &lrs);
    assert!(done.contains(27));
    assert_eq!(done.iter().collect::<Vec<_>>(), [27]);
    assert!(g.sync_lrs(1, &lrs).is_empty(), "reported once");

    // Turned off: the bit goes away, also from an LR already holding it.
    g.inject(1, 27);
    g.flush_lrs(1, &mut lrs);
    assert!(lr::eoi_notify(lrs[0]));
    g.set_eoi_notify(1, 27, false);
    g.flush_lrs(1, &mut lrs);
    assert!(!lr::eoi_notify(lrs[0]));
    ack(&mut lrs[0]);
    eoi(&mut lrs[0]);
    assert!(g.sync_lrs(1, &lrs).is_empty());
}

#[test]
fn guest_icpendr_and_icactiver_reach_the_lr() {
    let mut g = gic(1);
    enable_private(&mut g, 0, 27, 0);
    g.set_eoi_notify(0, 27, true);
    g.inject(0, 27);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    wr32(&mut g, sgi_frame(0) + 0x280, 1 << 27);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs, [0; NR_LRS], "unpended before the guest took it");
    assert!(
        g.sync_lrs(0, &lrs).is_empty(),
        "never active: nothing completed"
    );

    g.inject(0, 27);
    g.flush_lrs(0, &mut lrs);
    ack(&mut lrs[0]);
    g.sync_lrs(0, &lrs);
    wr32(&mut g, sgi_frame(0) + 0x380, 1 << 27);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs, [0; NR_LRS]);
    assert!(
        g.sync_lrs(0, &lrs).contains(27),
        "deactivated through ICACTIVER"
    );
}

#[test]
fn clearing_a_queued_notified_interrupt_completes_it() {
    let mut g = VgicDomain::new(GicVersion::V3, 1); // groups off: the PPI stays queued in the model
    g.set_eoi_notify(0, 27, true);
    g.inject(0, 27);
    wr32(&mut g, sgi_frame(0) + 0x280, 1 << 27);
    assert!(g.sync_lrs(0, &[0; NR_LRS]).contains(27));
}

#[test]
fn disabling_takes_a_waiting_interrupt_back() {
    let mut g = gic(1);
    enable_spi(&mut g, 60, 0x30);
    g.inject(0, 60);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr_intids(&lrs), [60]);
    wr32(&mut g, GICD + 0x180 + 4, 1 << (60 - 32));
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs, [0; NR_LRS]);
    assert!(!g.has_deliverable(0, &lrs));
    assert_ne!(
        rd32(&mut g, GICD + 0x204) & (1 << (60 - 32)),
        0,
        "still pending"
    );
    assert_eq!(wr32(&mut g, GICD + 0x100 + 4, 1 << (60 - 32)), 1);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr_intids(&lrs), [60]);
}

#[test]
fn isactiver_on_a_queued_interrupt_is_placed_active() {
    let mut g = gic(1);
    wr32(&mut g, sgi_frame(0) + 0x300, 1 << 3);
    assert_eq!(rd32(&mut g, sgi_frame(0) + 0x300), 1 << 3);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr::state(lrs[0]), lr::LrState::Active);
    assert_eq!(lr::intid(lrs[0]), 3);
}

#[test]
fn has_deliverable_sees_lrs_and_model() {
    let mut g = gic(1);
    let mut lrs = [0u64; NR_LRS];
    assert!(!g.has_deliverable(0, &lrs));
    enable_private(&mut g, 0, 1, 0);
    g.inject(0, 1);
    assert!(g.has_deliverable(0, &lrs), "in the model");
    g.flush_lrs(0, &mut lrs);
    assert!(g.has_deliverable(0, &lrs), "pending in an LR");
    ack(&mut lrs[0]);
    assert!(
        !g.has_deliverable(0, &lrs),
        "active only: nothing new to take"
    );
    assert!(!g.has_deliverable(5, &lrs), "absent vCPU");
}

#[test]
fn caller_owned_lrs_are_left_alone() {
    let mut g = gic(1);
    let hw = lr::make(48, 0, false) | lr::HW | (48u64 << 32);
    let foreign = lr::make(90, 0, false);
    let mut lrs = [hw, 0, foreign, 0];
    for intid in [16, 17, 18] {
        enable_private(&mut g, 0, intid, 0);
        g.inject(0, intid);
    }
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lrs[0], hw);
    assert_eq!(lrs[2], foreign);
    assert_eq!(lr_intids(&lrs), [48, 16, 90, 17]);
    assert!(g.needs_refill(0));
    assert!(g.sync_lrs(0, &lrs).is_empty());
    g.flush_lrs(9, &mut lrs);
    assert!(g.sync_lrs(9, &lrs).is_empty(), "absent vCPU: no-op");
}

#[test]
fn skipped_sync_does_not_strand_an_interrupt() {
    let mut g = gic(1);
    enable_private(&mut g, 0, 9, 0);
    g.set_eoi_notify(0, 9, true);
    g.inject(0, 9);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    ack(&mut lrs[0]);
    eoi(&mut lrs[0]);
    g.inject(0, 9);
    g.flush_lrs(0, &mut lrs); // no sync in between
    assert_eq!(lrs[0], lr::make(9, 0, true));
    assert!(
        g.sync_lrs(0, &lrs).contains(9),
        "completion carried to the next sync"
    );
}

#[test]
fn a_timer_goes_straight_into_a_free_lr_of_a_vcpu_with_nothing_owed() {
    let mut g = gic(2);
    enable_private(&mut g, 1, 27, 0xA0);
    enable_private(&mut g, 1, 20, 0x80);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(1, &mut lrs);
    // Not in the LRs of a vCPU whose flush is owed: refused, nothing changed.
    g.inject(1, 20);
    let before = g.clone();
    assert_eq!(g.deliver_direct(1, 27, &mut lrs), None);
    assert_eq!(g, before);
    g.flush_lrs(1, &mut lrs);
    // An interrupt of the model in an LR: refused too.
    assert_eq!(g.deliver_direct(1, 27, &mut lrs), None);
    // Nothing in the LRs (an HW LR is not the model's) and nothing owed: taken.
    let mut lrs = [0u64; NR_LRS];
    lrs[0] = lr::HW | lr::PENDING | 30;
    let mut g = gic(2);
    enable_private(&mut g, 1, 27, 0xA0);
    g.flush_lrs(1, &mut lrs);
    assert_eq!(g.deliver_direct(1, 27, &mut lrs), Some(1));
    assert_eq!(lrs[1], lr::make(27, 0xA0, false));
    assert!(!g.needs_flush(1));
    assert_eq!(rd32(&mut g, sgi_frame(1) + 0x200), 1 << 27, "reads pending");
    // Already in an LR now: a second one is refused (no INTID in two LRs).
    assert_eq!(g.deliver_direct(1, 27, &mut lrs), None);
    // Disabled: refused.
    let mut g = gic(2);
    let mut lrs = [0u64; NR_LRS];
    assert_eq!(g.deliver_direct(0, 27, &mut lrs), None);
    // No free LR: refused.
    let mut g = gic(2);
    enable_private(&mut g, 0, 27, 0xA0);
    g.flush_lrs(0, &mut lrs);
    let mut full = [lr::HW | lr::PENDING | 30; NR_LRS];
    assert_eq!(g.deliver_direct(0, 27, &mut full), None);
}
