//! Passthrough SPIs delivered by the per-CPU fast path: which linked SPIs the model offers
//! it (idle ones only), that the LR it writes is the one the model's own delivery would
//! have placed, that the model takes it over as its own, and, in a randomized run beside
//! guest register writes, routing, flushes and switch-outs, that every active physical
//! interrupt still has exactly one holder and none is ended twice or left active.

use super::hwlink::{assert_one_holder, drain, switch_out_all, Phys};
use super::*;
use crate::fastpath::{spi_lr, spi_lrs_freed};

const SPI: u32 = 48;
const BIT: u64 = 1 << (SPI % 32);
const WORD: u64 = 4 * (SPI as u64 / 32);

/// A GIC of `n` vCPUs with `SPI` enabled at 0xa0, routed to vCPU 0 and linked.
fn linked(n: usize) -> VgicDomain {
    let mut g = gic(n);
    enable_spi(&mut g, SPI, 0xa0);
    assert!(g.link_hw(SPI, SPI));
    g
}

/// The idle SPIs offered to vCPU `v` (its LRs not given: none offered as placed).
fn offered(g: &VgicDomain, v: usize) -> Vec<u32> {
    offered_with(g, v, &[]).iter().map(|s| s.0).collect()
}

/// The SPIs offered to vCPU `v` whose LRs are `lrs`, with the LR each is placed in.
fn offered_with(g: &VgicDomain, v: usize, lrs: &[u64]) -> Vec<(u32, Option<u8>)> {
    let mut out = [FastSpi::default(); FAST_SPIS];
    let n = g.fast_spis(v, lrs, &mut out);
    out[..n].iter().map(|s| (s.intid, s.placed)).collect()
}

#[test]
fn the_fast_lr_is_the_one_the_model_places_and_the_model_takes_it_over() {
    let mut fast = linked(1);
    let mut out = [FastSpi::default(); FAST_SPIS];
    assert_eq!(fast.fast_spis(0, &[], &mut out), 1);
    let mut lrs = [0u64; NR_LRS];
    let (slot, value) = spi_lr(&mut out[..1], &lrs, SPI, lr::GROUP1).unwrap();
    lrs[slot] = value;
    assert!(fast.adopt_hw(0, value));

    let mut model = linked(1);
    model.inject_hw(SPI);
    let mut model_lrs = [0u64; NR_LRS];
    model.flush_lrs(0, &mut model_lrs);
    assert_eq!(lrs, model_lrs, "the same LR in the same slot");

    // From here the two are driven alike and must look alike to the guest.
    for (g, l) in [(&mut fast, &mut lrs), (&mut model, &mut model_lrs)] {
        g.sync_lrs(0, l);
        assert_eq!(rd32(g, GICD + 0x200 + WORD) & BIT, BIT, "ISPENDR");
        assert!(offered(g, 0).is_empty(), "in an LR: not idle");
        ack(&mut l[0]);
        assert!(g.sync_lrs(0, l).is_empty());
        assert_eq!(rd32(g, GICD + 0x300 + WORD) & BIT, BIT, "ISACTIVER");
        eoi(&mut l[0]);
        assert!(g.sync_lrs(0, l).is_empty(), "nothing reported");
        g.flush_lrs(0, l);
        assert!(
            g.take_unlinked().is_empty(),
            "the guest ended the physical one"
        );
        assert_eq!(rd32(g, GICD + 0x300 + WORD) & BIT, 0);
        assert_eq!(offered(g, 0), [SPI], "idle again");
    }
}

/// The model delivered the SPI (it fired while the vCPU was switched out): it is offered as
/// placed in that LR, the guest finishing the LR on the fast path makes it idle, its next
/// firing is delivered by the fast path, and the next locked pass retires the old LR
/// before taking over the new one, which it accepts.
#[test]
fn an_spi_the_model_placed_is_fast_again_once_the_guest_finishes_it() {
    let mut g = linked(1);
    assert!(g.inject_hw(SPI).is_some());
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr_intids(&lrs), [SPI]);
    assert!(offered(&g, 0).is_empty(), "not idle");
    assert_eq!(offered_with(&g, 0, &lrs), [(SPI, Some(0))]);
    let mut out = [FastSpi::default(); FAST_SPIS];
    let n = g.fast_spis(0, &lrs, &mut out);
    let view = &mut out[..n];
    // Still in the LR: the fast path will not place it a second time.
    assert_eq!(spi_lr(view, &lrs, SPI, lr::GROUP1), None);
    // The guest acknowledges and deactivates it (ending the physical interrupt); the fast
    // path absorbs that, freeing the slot, and the device fires again.
    ack(&mut lrs[0]);
    eoi(&mut lrs[0]);
    lrs[0] = 0;
    assert_eq!(spi_lrs_freed(view, 1), 1, "to retire");
    let (slot, value) = spi_lr(view, &lrs, SPI, lr::GROUP1).expect("fast again");
    lrs[slot] = value;
    // The next locked pass: the freed LR is retired (with the posted one hidden), then the
    // posted one is taken over as the model's own.
    let mut model = lrs;
    model[slot] = 0;
    g.retire_freed(0, &model);
    assert!(g.adopt_hw(0, value), "taken over");
    assert!(g.sync_lrs(0, &lrs).is_empty());
    assert_eq!(
        rd32(&mut g, GICD + 0x200 + WORD) & BIT,
        BIT,
        "pending in the LR"
    );
    assert_eq!(offered_with(&g, 0, &lrs), [(SPI, Some(slot as u8))]);
    // Not offered while a register write waits to be applied to it, nor from another
    // vCPU's LR.
    let mut two = linked(2);
    assert!(two.inject_hw(SPI).is_some());
    let mut lrs0 = [0u64; NR_LRS];
    two.flush_lrs(0, &mut lrs0);
    assert!(offered_with(&two, 1, &lrs0).is_empty(), "vCPU 0's LR");
    wr32(&mut two, GICD + 0x280 + WORD, BIT);
    assert!(offered_with(&two, 0, &lrs0).is_empty(), "ICPENDR waits");
}

#[test]
fn only_idle_enabled_spis_routed_to_the_vcpu_are_offered() {
    let mut g = linked(2);
    assert_eq!(offered(&g, 0), [SPI]);
    assert!(offered(&g, 1).is_empty(), "routed to vCPU 0");
    assert!(offered(&g, 7).is_empty(), "no such vCPU");
    route_spi(&mut g, SPI, 1);
    assert_eq!(offered(&g, 1), [SPI]);
    route_spi(&mut g, SPI, 0);

    // Disabled.
    wr32(&mut g, GICD + 0x180 + WORD, BIT);
    assert!(offered(&g, 0).is_empty());
    wr32(&mut g, GICD + 0x100 + WORD, BIT);

    // Pending by the guest's own ISPENDR.
    wr32(&mut g, GICD + 0x200 + WORD, BIT);
    assert!(offered(&g, 0).is_empty());
    wr32(&mut g, GICD + 0x280 + WORD, BIT);
    assert_eq!(offered(&g, 0), [SPI]);

    // Fired and held by the model (the CPU it fired on was running someone else).
    g.inject_hw(SPI);
    assert!(offered(&g, 0).is_empty());
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert!(offered(&g, 0).is_empty(), "in vCPU 0's LRs");

    // Not linked: never.
    let mut plain = gic(1);
    enable_spi(&mut plain, SPI, 0xa0);
    assert!(offered(&plain, 0).is_empty());
    assert!(linked(1).unlink_hw(SPI).is_none());
    let mut gone = linked(1);
    gone.unlink_hw(SPI);
    assert!(offered(&gone, 0).is_empty());
}

#[test]
fn an_lr_the_model_cannot_take_over_is_refused() {
    let mut g = linked(2);
    let hw = lr::build_hw(SPI, SPI, 0xa0, true, lr::LrState::Pending);
    assert!(!g.adopt_hw(0, lr::unlinked(hw)), "not hardware-linked");
    assert!(!g.adopt_hw(0, lr::build_hw(SPI, 50, 0xa0, true, lr::LrState::Pending)));
    assert!(!g.adopt_hw(0, lr::with_state(hw, lr::LrState::Invalid)));
    assert!(!g.adopt_hw(5, hw), "no such vCPU");
    // The model placed it on vCPU 1 meanwhile (the guest moved it there).
    route_spi(&mut g, SPI, 1);
    g.inject_hw(SPI);
    let mut lrs1 = [0u64; NR_LRS];
    g.flush_lrs(1, &mut lrs1);
    assert_eq!(lr_intids(&lrs1), [SPI]);
    let before = g.clone();
    assert!(!g.adopt_hw(0, hw), "it is in vCPU 1's LRs");
    assert_eq!(g, before, "a refusal changes nothing");
}

/// The fast path's view of vCPU 0, loaded on its CPU: the SPIs the last locked pass
/// offered, the LRs it filled since (`posted`), and the model's LRs it freed since.
struct Loaded {
    view: Option<Vec<FastSpi>>,
    posted: u16,
    /// The model's hardware-linked SPI LRs the fast path freed since (`retired`).
    retired: u16,
    /// The SPIs the view offered as placed in an LR the model filled.
    from_lr: Vec<u32>,
}

impl Loaded {
    /// The start of a locked pass on vCPU 0's CPU (`Hyp::take_local`): the model takes over
    /// the LRs the fast path filled, or, refused, the LR is emptied and the interrupt held
    /// by the model (`Domain::adopt_lr`).
    fn take(&mut self, g: &mut VgicDomain, lrs: &mut [u64; NR_LRS]) {
        if self.retired != 0 {
            // The model's LRs the fast path freed, before any take-over (the posted LRs
            // are not the model's yet).
            let mut model = *lrs;
            for (slot, l) in model.iter_mut().enumerate() {
                if self.posted & (1 << slot) != 0 {
                    *l = 0;
                }
            }
            g.retire_freed(0, &model);
            self.retired = 0;
        }
        for (slot, l) in lrs.iter_mut().enumerate() {
            if self.posted & (1 << slot) != 0 && !g.adopt_hw(0, *l) {
                let intid = lr::intid(*l);
                *l = 0;
                assert!(g.inject_hw(intid).is_some());
            }
        }
        self.posted = 0;
    }

    /// The end of that pass (`Hyp::give_local`).
    fn give(&mut self, g: &VgicDomain, lrs: &[u64]) {
        let mut out = [FastSpi::default(); FAST_SPIS];
        let n = g.fast_spis(0, lrs, &mut out);
        self.view = Some(out[..n].to_vec());
        self.from_lr = out[..n]
            .iter()
            .filter(|s| s.placed.is_some())
            .map(|s| s.intid)
            .collect();
    }
}

/// No SPI is in more than one valid LR, across all vCPUs: true after every pass on vCPU
/// 0's CPU (a fast-path LR not yet taken over may meet one the model placed elsewhere
/// meanwhile, when the guest re-routes and re-pends it by register; the take-over
/// resolves that).
fn assert_in_one_lr(lrs: &[[u64; NR_LRS]]) {
    for spi in FIRST_SPI..FIRST_SPI + 8 {
        let holders = lrs
            .iter()
            .flatten()
            .filter(|&&l| lr::state(l) != lr::LrState::Invalid && lr::intid(l) == spi)
            .count();
        assert!(holders <= 1, "SPI {spi} in {holders} LRs: {lrs:x?}");
    }
}

#[test]
fn random_fast_deliveries_never_strand_or_double_end_a_physical_interrupt() {
    let spis = FIRST_SPI..FIRST_SPI + 8;
    for seed in 1..=6u64 {
        let mut r = fuzz::Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let n = 1 + r.below(3) as usize;
        let mut g = gic(n);
        let mut lrs = [[0u64; NR_LRS]; 3];
        let mut phys = Phys {
            active: IrqSet::EMPTY,
        };
        for spi in spis.clone() {
            assert!(g.link_hw(spi, spi));
            enable_spi(&mut g, spi, 0xa0);
        }
        let mut cpu0 = Loaded {
            view: None,
            posted: 0,
            retired: 0,
            from_lr: Vec::new(),
        };
        let mut fast = 0;
        // Fast deliveries of an SPI last offered as placed in a model's LR.
        let mut refast = 0;
        for _ in 0..20_000 {
            let v = r.below(n as u64) as usize;
            let spi = FIRST_SPI + r.below(8) as u32;
            let bit = 1u64 << (spi % 32);
            // Register writes and routing are a fifth as frequent as the rest, so that views
            // live long enough for the fast path to be exercised often.
            let action = r.below(13);
            if matches!(action, 3 | 4) && r.below(5) != 0 {
                continue;
            }
            match action {
                0..=2 => {
                    // The device fires: on vCPU 0's CPU, through the fast path if its view
                    // has the SPI, else through the model.
                    if !phys.active.contains(spi) {
                        let was_model_lr = cpu0.view.is_some() && cpu0.from_lr.contains(&spi);
                        let placed = cpu0
                            .view
                            .as_mut()
                            .and_then(|view| spi_lr(view, &lrs[0], spi, lr::GROUP1));
                        if placed.is_some() && was_model_lr {
                            refast += 1;
                        }
                        match placed {
                            Some((slot, value)) => {
                                lrs[0][slot] = value;
                                cpu0.posted |= 1 << slot;
                                fast += 1;
                            }
                            None => assert!(g.inject_hw(spi).is_some()),
                        }
                        phys.active.insert(spi);
                    }
                }
                3 => {
                    // A guest register write on any vCPU: every view goes stale.
                    let reg = [0x100u64, 0x180, 0x200, 0x280, 0x300, 0x380][r.below(6) as usize];
                    wr32(&mut g, GICD + reg + 4, bit);
                    cpu0.view = None;
                }
                4 => {
                    route_spi(&mut g, spi, r.below(n as u64 + 1));
                    cpu0.view = None;
                }
                5 | 6 => {
                    // A locked pass on v's CPU.
                    if v == 0 {
                        cpu0.take(&mut g, &mut lrs[0]);
                    }
                    g.sync_lrs(v, &lrs[v]);
                    g.flush_lrs(v, &mut lrs[v]);
                    for p in g.take_unlinked().iter() {
                        phys.end(p, "take_unlinked");
                    }
                    if v == 0 {
                        cpu0.give(&g, &lrs[0]);
                        assert_in_one_lr(&lrs);
                    }
                }
                7..=9 => {
                    // The guest acknowledges or deactivates; a hardware LR's deactivation
                    // ends the physical interrupt. On vCPU 0 the fast path absorbs a freed
                    // LR it filled itself at the next exit.
                    let i = r.below(NR_LRS as u64) as usize;
                    let slot = &mut lrs[v][i];
                    *slot = match lr::state(*slot) {
                        lr::LrState::Pending => lr::with_state(*slot, lr::LrState::Active),
                        lr::LrState::Active => {
                            if lr::is_hw(*slot) {
                                phys.end(lr::pintid(*slot), "guest deactivation");
                            }
                            if v == 0 {
                                cpu0.posted &= !(1 << i);
                                if let Some(view) = cpu0.view.as_mut() {
                                    cpu0.retired |= spi_lrs_freed(view, 1 << i);
                                }
                            }
                            0
                        }
                        lr::LrState::PendingActive => lr::with_state(*slot, lr::LrState::Pending),
                        lr::LrState::Invalid => *slot,
                    };
                }
                10 => {
                    // Switched out (`Hyp::unload`, inside a locked pass).
                    if v == 0 {
                        cpu0.take(&mut g, &mut lrs[0]);
                        cpu0.view = None;
                    }
                    switch_out_all(&mut g, v, &mut lrs[v], &mut phys);
                }
                _ => {
                    g.sync_lrs(v, &lrs[v]);
                }
            }
            assert_one_holder(&g, &lrs, &phys);
        }
        assert!(
            fast >= 10 && refast >= 3,
            "seed {seed}: the fast path delivered only {fast}, {refast} after the model's LR"
        );
        // Drain: one last pass on vCPU 0, everything enabled and routed to vCPU 0, every
        // LR finished by the guest: no physical interrupt stays active.
        cpu0.take(&mut g, &mut lrs[0]);
        drain(&mut g, &mut lrs, n, &mut phys);
        assert_eq!(
            offered(&g, 0).len(),
            4,
            "idle again, as many as a view holds"
        );
    }
}
