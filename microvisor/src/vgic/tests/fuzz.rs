//! Deterministic fuzzing: random MMIO, injections, SGIs and guest-side LR changes must never
//! panic and must keep the LR invariants, on a GICv3 and on a GICv2.

use super::*;

pub(super) use crate::test_rng::Rng;

/// An address near the GIC windows of `version`, biased toward registers that exist.
fn random_addr(r: &mut Rng, version: GicVersion) -> u64 {
    if version == GicVersion::V2 && r.below(2) == 0 {
        return random_addr_v2(r);
    }
    let interesting = [
        0x0u64, 0x4, 0x80, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380, 0x400, 0xC00, 0x6100, 0xFFE8,
    ];
    let off = match r.below(4) {
        0 => r.below(0x1_0000),
        1 => interesting[r.below(interesting.len() as u64) as usize] + r.below(0x100),
        2 => r.below(0x100),
        _ => r.bits(),
    };
    match r.below(5) {
        0 => GICD.wrapping_add(off),
        1 => GICD.wrapping_sub(off & 0xFFF),
        2 => rd_frame(r.below(9) as usize).wrapping_add(off % 0x2_0000),
        3 => sgi_frame(r.below(MAX_VCPUS as u64) as usize).wrapping_add(off & 0xFFFF),
        _ => r.bits(),
    }
}

/// An address in or near a GICv2 distributor, biased toward its own registers (banked
/// ranges, ITARGETSR, SGIR and the SGI pending registers).
fn random_addr_v2(r: &mut Rng) -> u64 {
    let interesting = [
        0x0u64, 0x4, 0x80, 0x100, 0x200, 0x380, 0x400, 0x800, 0x820, 0xC00, 0xF00, 0xF10, 0xFE8,
    ];
    let off = match r.below(3) {
        0 => r.below(0x1000),
        1 => interesting[r.below(interesting.len() as u64) as usize] + r.below(0x40),
        _ => r.below(0x2000),
    };
    if r.below(8) == 0 {
        GICD.wrapping_sub(off)
    } else {
        GICD + off
    }
}

/// A value for a write at `addr`: mostly random, sometimes a well-formed `GICD_SGIR`.
fn random_val(r: &mut Rng, addr: u64) -> u64 {
    if addr == GICD + 0xF00 && r.below(2) == 0 {
        r.below(4) << 24 | r.below(0x100) << 16 | r.below(16)
    } else {
        r.bits()
    }
}

/// Checks that each of `v`'s LRs this model owns names a distinct INTID.
fn assert_lr_invariants(g: &VgicDomain, v: usize, lrs: &[u64]) {
    let mut seen = IrqSet::EMPTY;
    for &l in lrs
        .iter()
        .filter(|&&l| lr::state(l) != lr::LrState::Invalid && !lr::is_hw(l))
    {
        let intid = lr::intid(l);
        if (intid as usize) < NR_IRQS {
            assert!(
                !seen.contains(intid),
                "INTID {intid} twice in vCPU {v}'s LRs: {lrs:x?}"
            );
            seen.insert(intid);
        }
    }
    // Every SPI is owned by at most one vCPU, which really tracks it.
    for (i, irq) in g.spis.iter().enumerate() {
        if irq.owner != state::NO_OWNER {
            let o = irq.owner as usize;
            assert!(o < g.nr_vcpus());
            assert!(g.lrs[o].in_lr.contains(FIRST_SPI + i as u32));
        }
    }
}

/// Delivers private `intid` to `v` with [`VgicDomain::deliver_direct`] if it takes it, and
/// checks that the model and LRs are then exactly what an inject and a flush make;
/// otherwise injects and flushes.
pub(super) fn direct_matches_inject_and_flush(
    g: &mut VgicDomain,
    v: usize,
    intid: u32,
    lrs: &mut [u64],
) {
    let (mut want, mut want_lrs) = (g.clone(), lrs.to_vec());
    want.inject(v, intid);
    want.flush_lrs(v, &mut want_lrs);
    let before = lrs.to_vec();
    match g.deliver_direct(v, intid, lrs) {
        Some(slot) => {
            assert_eq!(*g, want, "model after direct delivery of {intid} to {v}");
            assert_eq!(
                lrs,
                &want_lrs[..],
                "LRs after direct delivery of {intid} to {v}"
            );
            assert_eq!(lr::intid(lrs[slot]), intid);
            assert!(!g.needs_flush(v), "nothing left for the flush");
        }
        None => {
            assert_eq!(lrs, &before[..], "refused, yet the LRs changed");
            *g = want;
            lrs.copy_from_slice(&want_lrs);
        }
    }
}

/// Every interrupt pending or active in the model is in the live sets the flush scans (else
/// the flush would never place it).
fn assert_live_covers(g: &VgicDomain) {
    for v in 0..MAX_VCPUS {
        for (i, irq) in g.private[v].iter().enumerate() {
            if irq.pending || irq.active {
                assert_ne!(
                    g.live_private[v] & (1 << i),
                    0,
                    "vCPU {v} INTID {i} not live"
                );
            }
        }
    }
    for (i, irq) in g.spis.iter().enumerate() {
        let intid = FIRST_SPI + i as u32;
        if irq.pending || irq.active {
            assert!(g.live_spis.contains(intid), "SPI {intid} not live");
        }
    }
}

#[test]
fn random_mmio_never_panics() {
    random_mmio(GicVersion::V3);
}

#[test]
fn random_mmio_never_panics_v2() {
    random_mmio(GicVersion::V2);
}

fn random_mmio(version: GicVersion) {
    let widths = [0u8, 1, 2, 3, 4, 5, 7, 8, 16, 255];
    for seed in 1..=8u64 {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut g = VgicDomain::new(version, r.below(MAX_VCPUS as u64 + 2) as usize);
        for _ in 0..20_000 {
            let addr = random_addr(&mut r, version);
            let width = widths[r.below(widths.len() as u64) as usize];
            let val = if r.below(2) == 0 {
                None
            } else {
                Some(random_val(&mut r, addr))
            };
            let v = r.below(12) as usize;
            let outcome = g.mmio(v, GuestPhysAddr::new(addr), width, val);
            assert_live_covers(&g);
            match outcome {
                MmioOutcome::Write { kick } => {
                    assert!(val.is_some());
                    assert_eq!(kick >> g.nr_vcpus(), 0, "kick names an absent vCPU");
                }
                MmioOutcome::Read(x) => {
                    assert!(val.is_none());
                    if matches!(width, 1 | 2 | 4) {
                        assert_eq!(x >> (8 * u32::from(width)), 0, "read wider than access");
                    }
                }
                MmioOutcome::NotGic => {
                    let in_gicd = addr
                        .checked_sub(GICD)
                        .is_some_and(|o| o < GUEST_GICV2_GICD_SIZE);
                    assert!(!in_gicd, "{addr:#x} is in the distributor");
                }
            }
        }
        let ctlr = read(&mut g, GICD, 4);
        match version {
            GicVersion::V3 => assert_ne!(ctlr & (1 << 4), 0, "ARE stays set"),
            GicVersion::V2 => assert_eq!(ctlr & !0b11, 0, "only the two enables"),
        }
    }
}

#[test]
fn random_guest_activity_keeps_lr_invariants() {
    random_activity(GicVersion::V3);
}

#[test]
fn random_guest_activity_keeps_lr_invariants_v2() {
    random_activity(GicVersion::V2);
}

fn random_activity(version: GicVersion) {
    for seed in 1..=6u64 {
        let mut r = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
        let n = 1 + r.below(MAX_VCPUS as u64) as usize;
        let mut g = VgicDomain::new(version, n);
        let mut lrs = [[0u64; NR_LRS]; MAX_VCPUS];
        for _ in 0..20_000 {
            let v = r.below(n as u64 + 1) as usize; // sometimes absent
            let intid = r.below(NR_IRQS as u64 + 8) as u32;
            match r.below(10) {
                0 => {
                    g.inject(v, intid);
                }
                1 => {
                    g.send_sgi(v, r.bits());
                }
                2 => {
                    let addr = random_addr(&mut r, version);
                    let val = random_val(&mut r, addr);
                    g.mmio(v, GuestPhysAddr::new(addr), 4, Some(val));
                }
                3 => g.set_eoi_notify(v, intid, r.below(2) == 0),
                4 | 5 => {
                    if let Some(l) = lrs.get_mut(v) {
                        g.flush_lrs(v, l);
                        assert_lr_invariants(&g, v, l);
                    }
                }
                6 | 7 => {
                    // The guest acknowledges or deactivates something, as hardware would.
                    if let Some(l) = lrs.get_mut(v) {
                        let slot = &mut l[r.below(NR_LRS as u64) as usize];
                        *slot = match lr::state(*slot) {
                            lr::LrState::Pending => lr::with_state(*slot, lr::LrState::Active),
                            lr::LrState::Active => lr::with_state(*slot, lr::LrState::Invalid),
                            lr::LrState::PendingActive => {
                                lr::with_state(*slot, lr::LrState::Pending)
                            }
                            lr::LrState::Invalid => *slot,
                        };
                    }
                }
                8 => {
                    if let Some(l) = lrs.get(v) {
                        let done = g.sync_lrs(v, l);
                        assert!(done.iter().all(|i| (i as usize) < NR_IRQS));
                    }
                }
                9 if r.below(2) == 0 => {
                    if let Some(l) = lrs.get_mut(v) {
                        direct_matches_inject_and_flush(&mut g, v, intid % 32, l);
                    }
                }
                _ => {
                    let l = lrs.get(v).map_or(&[][..], |l| &l[..]);
                    g.has_deliverable(v, l);
                    g.needs_refill(v);
                }
            }
            assert_live_covers(&g);
        }
        // Drain: keep completing everything; the model must not keep stuck interrupts.
        wr32(&mut g, GICD, 0b11);
        for _ in 0..(NR_IRQS * 2) {
            for (v, l) in lrs.iter_mut().enumerate().take(n) {
                for slot in l.iter_mut() {
                    *slot = lr::with_state(*slot, lr::LrState::Invalid);
                }
                g.sync_lrs(v, l);
                g.flush_lrs(v, l);
                assert_lr_invariants(&g, v, l);
            }
        }
        for (v, l) in lrs.iter_mut().enumerate().take(n) {
            for slot in l.iter_mut() {
                *slot = lr::with_state(*slot, lr::LrState::Invalid);
            }
            g.sync_lrs(v, l);
            assert!(g.lrs[v].in_lr.is_empty());
            assert!(
                !g.model_deliverable(v),
                "vCPU {v} still has work after draining"
            );
        }
    }
}
