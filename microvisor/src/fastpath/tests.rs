//! The fast path's choices: exactly the calls that touch only the caller's registers, and
//! the timer LR only where the slow path would also use a hardware-linked one.

use super::*;
use protocol::control::FN_BASE;
use protocol::layout::GicVersion;

/// ESR_EL2 of `HVC #imm` from AArch64.
fn hvc(imm: u16) -> u64 {
    (0x16 << 26) | (1 << 25) | u64::from(imm)
}

/// ESR_EL2 of a trapped WFI (or WFE if `wfe`).
fn wfx(wfe: bool) -> u64 {
    (0x01 << 26) | (1 << 25) | u64::from(wfe)
}

#[test]
fn only_register_only_calls_are_fast() {
    let null = u64::from(FN_BASE) + 12;
    let who = u64::from(FN_BASE) + 13;
    assert_eq!(classify_sync(hvc(0), null, 0, &[]), SyncAction::NullCall);
    assert_eq!(classify_sync(hvc(0), who, 0, &[]), SyncAction::WhoAmI);
    for (n, op) in [
        (1, CapOp::ConsoleWrite),
        (14, CapOp::ConsoleRead),
        (26, CapOp::Heartbeat),
        (33, CapOp::IdleReport),
    ] {
        let fid = u64::from(FN_BASE) + n;
        assert_eq!(classify_sync(hvc(0), fid, 0, &[]), SyncAction::SlotCall(op));
    }
    // Other capability calls, PSCI, unknown SMCCC ids and other immediates are slow.
    for fid in [
        u64::from(FN_BASE),
        u64::from(FN_BASE) + 2,
        0x8400_0000,
        0xC400_0003,
        7,
    ] {
        assert_eq!(
            classify_sync(hvc(0), fid, 0, &[]),
            SyncAction::Slow,
            "{fid:#x}"
        );
    }
    assert_eq!(classify_sync(hvc(1), null, 0, &[]), SyncAction::Slow);
    // SMC serves the same protocol but traps before the instruction: the slow path steps.
    assert_eq!(
        classify_sync((0x17 << 26) | (1 << 25), null, 0, &[]),
        SyncAction::Slow
    );
}

#[test]
fn xen_version_is_fast_only_for_the_register_only_subop() {
    assert_eq!(
        classify_sync(hvc(XEN_HVC_IMM), 0, 17, &[]),
        SyncAction::XenVersion
    );
    // Extraversion and get_features write guest memory; another hypercall number is slow.
    for (x0, x16) in [(1, 17), (6, 17), (1 << 32, 17), (0, 18), (0, 0)] {
        assert_eq!(
            classify_sync(hvc(XEN_HVC_IMM), x0, x16, &[]),
            SyncAction::Slow,
            "x0={x0} x16={x16}"
        );
    }
}

#[test]
fn wfi_returns_with_a_pending_lr_and_waits_otherwise() {
    let pending = lr::PENDING | 40;
    let active = lr::STATE_MASK & !lr::PENDING | 41;
    assert_eq!(
        classify_sync(wfx(false), 0, 0, &[0, pending]),
        SyncAction::WfiReturn
    );
    assert_eq!(
        classify_sync(wfx(false), 0, 0, &[0, active]),
        SyncAction::WfiWait
    );
    assert_eq!(classify_sync(wfx(false), 0, 0, &[]), SyncAction::WfiWait);
    assert_eq!(classify_sync(wfx(true), 0, 0, &[pending]), SyncAction::Slow);
}

#[test]
fn timer_goes_to_a_free_hw_lr() {
    let busy = lr::PENDING | 33;
    let (slot, value) = vtimer_lr(&[busy, 0, 0], Some(0xa0), lr::GROUP1).unwrap();
    assert_eq!(slot, 1);
    assert_eq!(value & 0xffff_ffff, 27, "virtual INTID");
    assert_eq!((value >> 32) & 0x1fff, 27, "physical INTID");
    assert_ne!(value & lr::HW, 0);
    assert_ne!(value & lr::PENDING, 0);
    assert_eq!((value >> lr::PRIORITY_SHIFT) & 0xff, 0xa0);
    // An invalid slot whose other bits are stale still counts as free.
    assert_eq!(
        vtimer_lr(&[busy, 27], Some(0), lr::GROUP1).map(|r| r.0),
        Some(1)
    );
}

#[test]
fn timer_lr_carries_the_domain_s_group() {
    let (_, v3) = vtimer_lr(&[0], Some(0xa0), lr::group_bit(GicVersion::V3)).unwrap();
    assert!(lr::group1(v3));
    let (_, v2) = vtimer_lr(&[0], Some(0xa0), lr::group_bit(GicVersion::V2)).unwrap();
    assert!(!lr::group1(v2), "a GICv2 guest enables only Group 0");
    assert_eq!(v2, v3 & !lr::GROUP1);
}

#[test]
fn timer_is_slow_when_disabled_already_in_flight_or_lrs_full() {
    let busy = lr::PENDING | 33;
    assert_eq!(vtimer_lr(&[0, 0], None, lr::GROUP1), None, "PPI disabled");
    let timer_active = (lr::STATE_MASK & !lr::PENDING) | 27;
    assert_eq!(
        vtimer_lr(&[timer_active, 0], Some(0), lr::GROUP1),
        None,
        "in flight"
    );
    assert_eq!(
        vtimer_lr(&[busy; 4], Some(0), lr::GROUP1),
        None,
        "no free LR"
    );
}

/// A fast-path view holding passthrough SPI 48 (linked to physical 48) at 0xa0.
fn spi48() -> [crate::vgic::FastSpi; 1] {
    [crate::vgic::FastSpi {
        intid: 48,
        pintid: 48,
        priority: 0xa0,
        placed: None,
        by_model: false,
    }]
}

#[test]
fn an_spi_the_model_placed_is_idle_once_freed_and_its_slot_is_retired() {
    let mut spis = spi48();
    spis[0].placed = Some(2);
    spis[0].by_model = true;
    let lrs = [0, 0, lr::build_hw(48, 48, 0xa0, true, lr::LrState::Active)];
    assert_eq!(spi_lr(&mut spis, &lrs, 48, lr::GROUP1), None, "in its LR");
    assert_eq!(spi_lrs_freed(&mut spis, 0b011), 0, "other slots");
    assert_eq!(
        spi_lrs_freed(&mut spis, 0b100),
        0b100,
        "the model's slot, to retire"
    );
    assert_eq!((spis[0].placed, spis[0].by_model), (None, false));
    // Placed again by the fast path: its own from now on.
    let (slot, _) = spi_lr(&mut spis, &[0, 0, 0], 48, lr::GROUP1).unwrap();
    assert_eq!(spi_lrs_freed(&mut spis, 1 << slot), 0);
}

#[test]
fn a_passthrough_spi_goes_to_a_free_hw_lr_once_until_it_is_freed() {
    let mut spis = spi48();
    let busy = lr::PENDING | 33;
    let mut lrs = [busy, 0, 0];
    let (slot, value) = spi_lr(&mut spis, &lrs, 48, lr::GROUP1).unwrap();
    assert_eq!(slot, 1);
    assert_eq!(
        value,
        lr::build_hw(48, 48, 0xa0, true, lr::LrState::Pending),
        "what the vGIC's flush places for a fired linked SPI"
    );
    assert_eq!(spis[0].placed, Some(1));
    lrs[1] = value;
    // Placed: not again (its physical interrupt cannot fire before the guest ends it, but a
    // second delivery must not be possible from a stale view either).
    assert_eq!(spi_lr(&mut spis, &lrs, 48, lr::GROUP1), None);
    assert_eq!(spi_lr(&mut spis, &[0, 0, 0], 48, lr::GROUP1), None);
    // Another slot freed: still placed.
    assert_eq!(spi_lrs_freed(&mut spis, 1 << 2), 0);
    assert_eq!(spis[0].placed, Some(1));
    // Its own slot freed by the guest: idle again, and nothing for the model to retire.
    assert_eq!(spi_lrs_freed(&mut spis, 1 << 1), 0);
    assert_eq!(spis[0].placed, None);
    assert_eq!(
        spi_lr(&mut spis, &[busy, 0, 0], 48, lr::GROUP1).map(|r| r.0),
        Some(1)
    );
}

#[test]
fn a_passthrough_spi_is_slow_when_unknown_already_in_an_lr_or_lrs_full() {
    let busy = lr::PENDING | 33;
    assert_eq!(
        spi_lr(&mut spi48(), &[0], 49, lr::GROUP1),
        None,
        "not in the view"
    );
    assert_eq!(spi_lr(&mut [], &[0], 48, lr::GROUP1), None, "empty view");
    let in_lr = lr::ACTIVE | 48;
    assert_eq!(
        spi_lr(&mut spi48(), &[in_lr, 0], 48, lr::GROUP1),
        None,
        "in an LR"
    );
    assert_eq!(
        spi_lr(&mut spi48(), &[busy; 4], 48, lr::GROUP1),
        None,
        "no free LR"
    );
    let mut spis = spi48();
    assert_eq!(spi_lr(&mut spis, &[busy; 4], 48, lr::GROUP1), None);
    assert_eq!(spis[0].placed, None, "a refusal records nothing");
    let (_, v2) = spi_lr(&mut spis, &[0], 48, lr::group_bit(GicVersion::V2)).unwrap();
    assert!(!lr::group1(v2), "a GICv2 guest's LRs are Group 0");
}

/// Register values around every boundary the decoders care about.
fn probes() -> std::vec::Vec<u64> {
    let mut v = std::vec::Vec::new();
    for base in [0u64, u64::from(FN_BASE), 0x8400_0000, 0xC400_0000, 1 << 32] {
        for off in 0..40 {
            v.push(base + off);
            v.push(base | (off << 16));
        }
    }
    v.extend([
        u64::MAX,
        u64::from(FN_BASE) | (1 << 32) | 12,
        17 | (1 << 32),
    ]);
    v
}

#[test]
fn agrees_with_the_slow_path_decoders() {
    use protocol::xen::Hypercall;
    for x0 in probes() {
        let cap = CapOp::from_function_id(x0);
        let want = match cap {
            Some(Ok(CapOp::NullCall)) => SyncAction::NullCall,
            Some(Ok(CapOp::WhoAmI)) => SyncAction::WhoAmI,
            Some(Ok(
                op @ (CapOp::ConsoleWrite
                | CapOp::ConsoleRead
                | CapOp::Heartbeat
                | CapOp::IdleReport),
            )) => SyncAction::SlotCall(op),
            _ => SyncAction::Slow,
        };
        assert_eq!(classify_sync(hvc(0), x0, 0, &[]), want, "x0={x0:#x}");
        if want != SyncAction::Slow {
            assert!(protocol::psci::PsciFn::from_id(x0).is_none());
        }
        for x16 in probes() {
            let version = Hypercall::from_reg(x16) == Some(Hypercall::XenVersion)
                && u32::try_from(x0)
                    .ok()
                    .and_then(|c| XenVersionOp::try_from(c).ok())
                    == Some(XenVersionOp::Version);
            let send = Hypercall::from_reg(x16) == Some(Hypercall::EventChannelOp)
                && u32::try_from(x0)
                    .ok()
                    .and_then(|c| protocol::xen::EvtchnOp::try_from(c).ok())
                    == Some(protocol::xen::EvtchnOp::Send);
            let unmask = Hypercall::from_reg(x16) == Some(Hypercall::EventChannelOp)
                && u32::try_from(x0)
                    .ok()
                    .and_then(|c| protocol::xen::EvtchnOp::try_from(c).ok())
                    == Some(protocol::xen::EvtchnOp::Unmask);
            let copy = Hypercall::from_reg(x16) == Some(Hypercall::GrantTableOp)
                && u32::try_from(x0)
                    .ok()
                    .and_then(|c| protocol::xen::GnttabOp::try_from(c).ok())
                    == Some(protocol::xen::GnttabOp::Copy);
            let want = if version {
                SyncAction::XenVersion
            } else if send {
                SyncAction::EvtchnSend
            } else if unmask {
                SyncAction::EvtchnUnmask
            } else if copy {
                SyncAction::GrantCopy
            } else {
                SyncAction::Slow
            };
            assert_eq!(classify_sync(hvc(XEN_HVC_IMM), x0, x16, &[]), want);
        }
    }
}

#[test]
fn quick_decode_agrees_with_decode() {
    use crate::trap::{decode, Exit, QuickExit};
    for ec in 0..64u64 {
        let sgi1r = u64::from(crate::trap::ICC_SGI1R_EL1.id());
        for iss in [
            0u64,
            1,
            2,
            3,
            0xEA1,
            0x1ff_ffff,
            sgi1r,
            sgi1r | 1,
            sgi1r | (7 << 5),
        ] {
            let esr = (ec << 26) | (1 << 25) | iss;
            let want = match decode(esr, 0, 0) {
                Exit::Hvc { imm } => QuickExit::Hvc(imm),
                Exit::Wfi => QuickExit::Wfi,
                _ => QuickExit::Other,
            };
            assert_eq!(crate::trap::quick(esr), want, "esr={esr:#x}");
            let sgi = match decode(esr, 0, 0) {
                Exit::SysReg(a) if a.encoding() == crate::trap::ICC_SGI1R_EL1 && !a.read => {
                    Some(a.rt)
                }
                _ => None,
            };
            assert_eq!(crate::trap::sgi1r_write(esr), sgi, "esr={esr:#x}");
        }
    }
}

#[test]
fn hw_lr_progress_is_absorbed_and_anything_else_is_not() {
    let (slot, timer) = vtimer_lr(&[0, 0], Some(0x80), lr::GROUP1).unwrap();
    assert_eq!(slot, 0);
    let soft = lr::PENDING | 40;
    let active = |v: u64| (v & !lr::STATE_MASK) | (lr::STATE_MASK & !lr::PENDING);
    let finished = |v: u64| v & !lr::STATE_MASK;

    // Pending -> active: copied; nothing freed.
    let mut shadow = [timer, soft];
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[active(timer), soft], &mut 0, &mut 0),
        Some(0)
    );
    assert_eq!(shadow, [active(timer), soft]);
    // Active -> finished: the slot is freed (zeroed), as the slow path would.
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[finished(timer), soft], &mut 0, &mut 0),
        Some(1)
    );
    assert_eq!(shadow, [0, soft]);

    // A software LR the vGIC model tracks, acknowledged by the guest: copied (the model
    // reads the state from the shadow later); finished or otherwise changed: slow, shadow
    // untouched.
    let mut shadow = [timer, soft];
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[timer, active(soft)], &mut 0, &mut 0),
        Some(0)
    );
    assert_eq!(shadow, [timer, active(soft)]);
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[timer, finished(soft)], &mut 0, &mut 0),
        None
    );
    assert_eq!(shadow, [timer, active(soft)]);
    let both = active(soft) | lr::PENDING;
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[timer, both], &mut 0, &mut 0),
        None,
        "active to pending+active is never the guest's doing"
    );
    let mut shadow = [timer, soft];
    // A HW LR whose INTID or priority changed is not the guest's progress.
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[timer ^ 1, soft], &mut 0, &mut 0),
        None
    );
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[timer ^ (1 << 50), soft], &mut 0, &mut 0),
        None
    );
    // Equal: nothing to do.
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[timer, soft], &mut 0, &mut 0),
        Some(0)
    );
}

#[test]
fn a_deferred_serror_is_charged_with_an_serror_syndrome() {
    assert_eq!(deferred_serror(0), None, "nothing deferred");
    assert_eq!(
        deferred_serror(0x1234),
        None,
        "syndrome bits without A are stale"
    );
    let esr = deferred_serror(DISR_A | (1 << 24) | 0x11).unwrap();
    assert_eq!(crate::trap::esr_ec(esr), 0x2f);
    assert_eq!(
        crate::trap::esr_iss(esr),
        (1 << 24) | 0x11,
        "IDS and ISS kept"
    );
}

#[test]
fn serrors_are_charged_to_the_vcpu_whose_exit_found_them() {
    // One CPU runs A, then B, then A again. A's access raises an SError that is still
    // pending when A exits; the exit's barrier defers it into DISR. The run loop charges
    // whatever the barrier finds to the vCPU that just exited, then clears DISR, so B's
    // exits find nothing.
    let mut disr = 0u64;
    let mut charged = std::vec::Vec::new();
    for (running, raises) in [("A", true), ("B", false), ("A", false)] {
        if raises {
            disr = DISR_A | 0x11; // the pending SError, deferred at this exit
        }
        if let Some(esr) = deferred_serror(disr) {
            charged.push((running, esr));
            disr = 0; // cleared as it is read
        }
    }
    assert_eq!(charged.len(), 1);
    assert_eq!(charged[0].0, "A");
}

#[test]
fn a_notified_completion_the_caller_owns_is_absorbed_and_returned() {
    let evt = lr::make(31, 0xa0, true);
    let timer_ppi = lr::make(27, 0xa0, true);
    let finished = |v: u64| v & !lr::STATE_MASK;
    let own = 1 << 31;
    // A posted event-channel upcall the guest finished: freed, and reported to the caller.
    let mut shadow = [evt, 0];
    let mut posted = 0b01;
    assert_eq!(
        absorb_lr_progress(&mut shadow, &[finished(evt), 0], &mut posted, &mut 0, own),
        Some((0b01, own))
    );
    assert_eq!((shadow, posted), ([0, 0], 0));
    // The same LR placed by the model (not posted): freed and reported to the caller too,
    // and retired, so the model forgets it at the next locked pass.
    let mut shadow = [evt, 0];
    let mut retired = 0;
    assert_eq!(
        absorb_lr_progress(&mut shadow, &[finished(evt), 0], &mut 0, &mut retired, own),
        Some((0b01, own))
    );
    assert_eq!((shadow, retired), ([0, 0], 0b01));
    // Without `own_eoi` a notified completion of the model's is still the model's.
    let mut shadow = [evt, 0];
    assert_eq!(
        absorb_lr_progress(&mut shadow, &[finished(evt), 0], &mut 0, &mut 0, 0),
        None
    );
    // Another notified INTID, posted: not the caller's.
    let mut shadow = [timer_ppi];
    assert_eq!(
        absorb_lr_progress(&mut shadow, &[finished(timer_ppi)], &mut 1, &mut 0, own),
        None
    );
    // Without `own_eoi` it is the old rule.
    let mut shadow = [evt];
    assert_eq!(
        absorb_lr_progress(&mut shadow, &[finished(evt)], &mut 1, &mut 0, 0),
        None
    );
    // The run loop owns the timer's too: the model's timer LR and an upcall finished in
    // the same exit are both freed, retired and reported.
    let both = (1 << 31) | (1 << 27);
    let mut shadow = [timer_ppi, evt];
    let mut retired = 0;
    assert_eq!(
        absorb_lr_progress(
            &mut shadow,
            &[finished(timer_ppi), finished(evt)],
            &mut 0,
            &mut retired,
            both
        ),
        Some((0b11, both))
    );
    assert_eq!((shadow, retired), ([0, 0], 0b11));
}

#[test]
fn posted_lr_progress_is_absorbed_but_a_notified_completion_is_not() {
    let sgi = lr::make(1, 0xa0, false);
    let evt = lr::make(31, 0xa0, true);
    let active = |v: u64| (v & !lr::STATE_MASK) | lr::ACTIVE;
    let finished = |v: u64| v & !lr::STATE_MASK;
    // Slots 0 and 1 were filled by this CPU's fast path.
    let mut shadow = [sgi, evt, 0];
    let mut posted = 0b011;
    assert_eq!(
        absorb_hw_lr_progress(
            &mut shadow,
            &[active(sgi), active(evt), 0],
            &mut posted,
            &mut 0
        ),
        Some(0)
    );
    assert_eq!(shadow, [active(sgi), active(evt), 0]);
    // The SGI finishing frees its slot, which stops being a posted one; the event PPI
    // finishing (EOI notification) is the model's to report: slow, nothing changed.
    assert_eq!(
        absorb_hw_lr_progress(
            &mut shadow,
            &[finished(sgi), active(evt), 0],
            &mut posted,
            &mut 0
        ),
        Some(0b001)
    );
    assert_eq!(posted, 0b010, "a freed slot is no longer posted");
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[0, finished(evt), 0], &mut posted, &mut 0),
        None
    );
    assert_eq!((shadow, posted), ([0, active(evt), 0], 0b010));
    // The same change in a slot the fast path did not fill, with EOI notification, is the
    // model's to report: slow. (Without notification it is retired: see
    // `a_finished_model_lr_is_retired_only_without_notification`.)
    let mut shadow = [evt, 0];
    let mut posted = 0b10;
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[finished(evt), 0], &mut posted, &mut 0),
        None
    );
    // A posted slot freed alone leaves `posted` at once, so the timer's hardware-linked LR
    // that may fill it next is never handed to the model as a posted one.
    let mut shadow = [sgi];
    let mut posted = 0b1;
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[finished(sgi)], &mut posted, &mut 0),
        Some(0b1)
    );
    assert_eq!(posted, 0);
    let mut shadow = [sgi, 0];
    let mut posted = 0b01;
    // Nor may a posted slot change INTID.
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[sgi ^ 2, 0], &mut posted, &mut 0),
        None
    );
}

#[test]
fn sgi_writes_are_recognised_only_for_icc_sgi1r_writes() {
    use crate::trap::{sgi1r_write, ICC_ASGI1R_EL1, ICC_SGI1R_EL1};
    let sysreg = |id: u32, rt: u32, read: bool| {
        (0x18u64 << 26) | (1 << 25) | u64::from(id | (rt << 5) | u32::from(read))
    };
    for rt in [0u8, 5, 30, 31] {
        let esr = sysreg(ICC_SGI1R_EL1.id(), u32::from(rt), false);
        assert_eq!(sgi1r_write(esr), Some(rt));
        // The hypercall classifier leaves it to the SGI check.
        assert_eq!(classify_sync(esr, 0, 0, &[]), SyncAction::Slow);
    }
    // A read of it, or the other SGI register, is not.
    assert_eq!(sgi1r_write(sysreg(ICC_SGI1R_EL1.id(), 1, true)), None);
    assert_eq!(sgi1r_write(sysreg(ICC_ASGI1R_EL1.id(), 1, false)), None);
}

#[test]
fn an_sgi_is_posted_only_when_every_target_is_exclusive_elsewhere() {
    // vCPU 0 shared, 1 exclusive on CPU 1, 2 exclusive on CPU 2.
    let homes = [
        home_entry(false, 0),
        home_entry(true, 1),
        home_entry(true, 2),
    ];
    assert_eq!(homes, [0, 2, 3]);
    // From CPU 1 (vCPU 1) to vCPU 2: notify CPU 2.
    assert_eq!(sgi_homes(0b100, &homes), Some(0b100));
    // To itself (pinned exclusive on this CPU): this CPU's bit, taken on its own fast path.
    assert_eq!(sgi_homes(0b010, &homes), Some(0b010));
    assert_eq!(sgi_homes(0b110, &homes), Some(0b110));
    // To a shared vCPU, or to one that does not exist: slow.
    assert_eq!(sgi_homes(0b101, &homes), None);
    assert_eq!(sgi_homes(0b1000, &homes), None);
    // Nobody named: nothing to do.
    assert_eq!(sgi_homes(0, &homes), Some(0));
}

#[test]
fn only_the_copy_subop_of_grant_table_op_is_tried_without_the_lock() {
    assert_eq!(
        classify_sync(hvc(XEN_HVC_IMM), 5, 20, &[]),
        SyncAction::GrantCopy
    );
    // Map, unmap, setup, query and the rest change stage 2 or read tables: slow. So is a
    // copy with another immediate, or the upper half of x0 set.
    for (x0, x16) in [
        (0, 20),
        (1, 20),
        (2, 20),
        (6, 20),
        (5 | (1 << 32), 20),
        (5, 32),
    ] {
        assert_ne!(
            classify_sync(hvc(XEN_HVC_IMM), x0, x16, &[]),
            SyncAction::GrantCopy
        );
    }
    assert_eq!(classify_sync(hvc(0), 5, 20, &[]), SyncAction::Slow);
}

#[test]
fn only_send_and_unmask_of_event_channel_op_are_tried_without_the_lock() {
    assert_eq!(
        classify_sync(hvc(XEN_HVC_IMM), 4, 32, &[]),
        SyncAction::EvtchnSend
    );
    assert_eq!(
        classify_sync(hvc(XEN_HVC_IMM), 9, 32, &[]),
        SyncAction::EvtchnUnmask
    );
    // Alloc, bind, close, status and the rest change tables: slow. So is a send or an
    // unmask with another immediate, or the upper half of x0 set.
    for (x0, x16) in [
        (0, 32),
        (1, 32),
        (3, 32),
        (5, 32),
        (8, 32),
        (4 | (1 << 32), 32),
        (9 | (1 << 32), 32),
    ] {
        assert_eq!(
            classify_sync(hvc(XEN_HVC_IMM), x0, x16, &[]),
            SyncAction::Slow,
            "x0={x0:#x}"
        );
    }
    assert_eq!(classify_sync(hvc(0), 4, 32, &[]), SyncAction::Slow);
    assert_eq!(classify_sync(hvc(0), 9, 32, &[]), SyncAction::Slow);
}

#[test]
fn a_fast_send_reads_its_argument_only_from_one_page_of_plain_ram() {
    use protocol::layout::{GUEST_MAGIC_BASE, GUEST_RAM_BASE};
    let ram = GUEST_RAM_BASE.as_u64();
    let magic = GUEST_MAGIC_BASE.as_u64();
    assert_eq!(plain_ram_offset(ram + 0x1234, 4, None), Some(0x1234));
    assert_eq!(plain_ram_offset(ram + 0x1ffc, 4, None), Some(0x1ffc));
    // Across a page boundary, or below the RAM: the locked path.
    assert_eq!(plain_ram_offset(ram + 0x1ffe, 4, None), None);
    assert_eq!(plain_ram_offset(ram - 8, 4, None), None);
    // Where the caller put its shared_info, and the magic pages: the locked path (which
    // reads microvisor frames there, not the RAM they hide).
    let shared = (ram + 0x5000) / 4096;
    assert_eq!(plain_ram_offset(ram + 0x5010, 4, Some(shared)), None);
    assert_eq!(
        plain_ram_offset(ram + 0x6010, 4, Some(shared)),
        Some(0x6010)
    );
    assert_eq!(plain_ram_offset(magic, 4, None), None);
    assert_eq!(plain_ram_offset(magic + 4096 + 8, 4, None), None);
}

#[test]
fn only_an_exclusive_home_names_a_cpu() {
    assert_eq!(exclusive_home(home_entry(false, 3)), None);
    assert_eq!(exclusive_home(home_entry(true, 0)), Some(0));
    assert_eq!(exclusive_home(home_entry(true, 3)), Some(3));
    // A CPU beyond a 64-bit mask is never posted to.
    assert_eq!(exclusive_home(home_entry(true, 64)), None);
}

#[test]
fn a_finished_model_lr_is_retired_only_without_notification() {
    let sgi = lr::make(1, 0xa0, false);
    let other = lr::make(2, 0xa0, false);
    let evt = lr::make(31, 0xa0, true);
    let spi = lr::make(40, 0xa0, false);
    let active = |v: u64| (v & !lr::STATE_MASK) | lr::ACTIVE;
    let finished = |v: u64| v & !lr::STATE_MASK;
    // The model filled slot 0 (an SGI the guest acknowledged and finished) and slot 2; the
    // fast path filled slot 1. The SGI's slot is freed and reported as retired, not as
    // posted.
    let (mut shadow, mut posted, mut retired) = ([active(sgi), other, spi], 0b010, 0);
    assert_eq!(
        absorb_hw_lr_progress(
            &mut shadow,
            &[finished(sgi), active(other ^ 1), spi],
            &mut posted,
            &mut retired
        ),
        None,
        "a posted LR may not change INTID"
    );
    assert_eq!((posted, retired), (0b010, 0), "refused: nothing noted");
    assert_eq!(
        absorb_hw_lr_progress(
            &mut shadow,
            &[finished(sgi), active(other), spi],
            &mut posted,
            &mut retired
        ),
        Some(0b001)
    );
    assert_eq!(shadow, [0, active(other), spi]);
    assert_eq!((posted, retired), (0b010, 0b001));
    // Straight from pending (acknowledged and finished between two exits) too; the marks
    // accumulate until the locked pass takes them.
    let mut shadow = [0, active(other), spi, sgi ^ 3];
    assert_eq!(
        absorb_hw_lr_progress(
            &mut shadow,
            &[0, active(other), spi, finished(sgi ^ 3)],
            &mut posted,
            &mut retired
        ),
        Some(0b1000)
    );
    assert_eq!(retired, 0b1001);
    // A completion the model must report (EOI notification), or an SPI's (the model also
    // gives up its ownership), still needs the lock, and nothing is noted.
    for s in [evt, spi] {
        let (mut shadow, mut posted, mut retired) = ([active(s), 0], 0, 0);
        assert_eq!(
            absorb_hw_lr_progress(&mut shadow, &[finished(s), 0], &mut posted, &mut retired),
            None,
            "{s:#x}"
        );
        assert_eq!((shadow, posted, retired), ([active(s), 0], 0, 0));
    }
    // Nor is a finished LR whose fields changed the guest's doing.
    let mut shadow = [active(sgi)];
    assert_eq!(
        absorb_hw_lr_progress(&mut shadow, &[finished(sgi) ^ (1 << 50)], &mut 0, &mut 0),
        None
    );
    // A hardware-linked or posted LR finishing is freed but not retired (the model never
    // owned it; a hardware-linked SPI the model placed is retired through
    // `spi_lrs_freed`).
    let (_, timer) = vtimer_lr(&[0], Some(0x80), lr::GROUP1).unwrap();
    let (mut shadow, mut posted, mut retired) = ([timer, sgi], 0b10, 0);
    assert_eq!(
        absorb_hw_lr_progress(
            &mut shadow,
            &[finished(timer), finished(sgi)],
            &mut posted,
            &mut retired
        ),
        Some(0b11)
    );
    assert_eq!((posted, retired), (0, 0));
}

#[test]
fn the_vgic_windows_are_never_taken_for_a_device() {
    use protocol::layout::{GUEST_GICD_BASE, GUEST_GICR_BASE, GUEST_GICR_SIZE};
    let gicd = GUEST_GICD_BASE.as_u64();
    let gicr = GUEST_GICR_BASE.as_u64();
    assert!(in_vgic_window(gicd));
    assert!(in_vgic_window(gicd + 0x100));
    assert!(in_vgic_window(gicr + GUEST_GICR_SIZE - 4));
    assert!(!in_vgic_window(gicr + GUEST_GICR_SIZE));
    assert!(!in_vgic_window(gicd - 4));
    // QEMU virt's virtio-mmio transports and its UART are clear of them.
    assert!(!in_vgic_window(0x0a00_0000));
    assert!(!in_vgic_window(0x0900_0000));
}

#[test]
fn an_upcall_in_an_lr_is_one_that_will_be_asked_about_again() {
    use crate::vgic::lr::{build, LrState};
    use protocol::layout::EVTCHN_PPI;
    let up = |st, notify| build(EVTCHN_PPI, 0xa0, true, notify, st);
    assert!(!upcall_in_lr(&[]));
    assert!(!upcall_in_lr(&[0, 0]));
    // Pending: the guest takes it and reads every pending port.
    assert!(upcall_in_lr(&[0, up(LrState::Pending, false)]));
    assert!(upcall_in_lr(&[up(LrState::PendingActive, true)]));
    // Active: only if its EOI is notified, so its completion asks again.
    assert!(upcall_in_lr(&[up(LrState::Active, true)]));
    assert!(!upcall_in_lr(&[up(LrState::Active, false)]));
    // A finished LR, or another interrupt: no.
    assert!(!upcall_in_lr(&[up(LrState::Invalid, true)]));
    assert!(!upcall_in_lr(&[build(
        30,
        0xa0,
        true,
        true,
        LrState::Pending
    )]));
}

#[test]
fn a_posted_upcall_already_held_in_an_lr_is_not_left_for_the_lock() {
    use crate::vgic::lr::{build, LrState};
    use protocol::layout::EVTCHN_PPI;
    let up = 1u32 << EVTCHN_PPI;
    let held = [build(EVTCHN_PPI, 0xa0, true, true, LrState::Active)];
    let not_notified = [build(EVTCHN_PPI, 0xa0, true, false, LrState::Active)];
    assert_eq!(drop_held_upcall(up, &held), 0);
    assert_eq!(drop_held_upcall(up | 1 << 3, &held), 1 << 3);
    // Not held (or held without its completion noticed), or not an upcall: left.
    assert_eq!(drop_held_upcall(up, &[0; 4]), up);
    assert_eq!(drop_held_upcall(up, &not_notified), up);
    assert_eq!(drop_held_upcall(1 << 3, &held), 1 << 3);
    assert_eq!(drop_held_upcall(0, &held), 0);
}
