//! Hardware-linked passthrough SPIs: the LR carries HW and the physical INTID and no EOI
//! bit, the guest's own deactivation ends it (nothing reported, nothing to deactivate),
//! read-back sees the LR, and every way the link is dropped early with the physical
//! interrupt still active hands it to the caller to deactivate exactly once. A randomized
//! run (device fires, guest register writes, routing, acknowledge/deactivate, switch-outs)
//! checks against a model of the physical interrupt's active state that each active one
//! has exactly one holder and none is ended twice or left active.

use super::*;

/// A virtio-mmio transport's SPI on QEMU's `virt` (the guest sees the same INTID).
const SPI: u32 = 48;
const BIT: u64 = 1 << (SPI % 32);
const WORD: u64 = 4 * (SPI as u64 / 32);

/// A one-vCPU GIC with `SPI` enabled at 0xa0 and linked to the physical `SPI`.
fn linked() -> VgicDomain {
    let mut g = gic(1);
    enable_spi(&mut g, SPI, 0xa0);
    assert!(g.link_hw(SPI, SPI));
    g
}

/// [`linked`] after the device fired once and vCPU 0's LRs were flushed.
fn fired_and_flushed() -> (VgicDomain, [u64; NR_LRS]) {
    let mut g = linked();
    g.inject_hw(SPI);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    (g, lrs)
}

fn unlinked(g: &mut VgicDomain) -> Vec<u32> {
    g.take_unlinked().iter().collect()
}

#[test]
fn a_linked_spi_goes_into_a_hardware_lr_and_the_guest_ends_it() {
    let mut g = linked();
    assert_eq!(g.hw_link(SPI), Some(SPI));
    assert_eq!(g.inject_hw(SPI), Some(1));
    let mut lrs = [0u64; NR_LRS];
    assert_eq!(g.flush_lrs(0, &mut lrs), 1);
    assert_eq!(
        lrs[0],
        lr::build_hw(SPI, SPI, 0xa0, true, lr::LrState::Pending)
    );
    assert!(lr::is_hw(lrs[0]));
    assert_eq!(lr::pintid(lrs[0]), SPI);
    assert_eq!(lr::intid(lrs[0]), SPI);
    assert!(!lr::eoi_notify(lrs[0]), "no maintenance interrupt asked");
    assert_eq!(lrs[0] & (1 << 41), 0, "the EOI bit is not set either");
    // Read back: pending while in the LR, then active, then neither.
    g.sync_lrs(0, &lrs);
    assert_eq!(rd32(&mut g, GICD + 0x200 + WORD) & BIT, BIT, "ISPENDR");
    ack(&mut lrs[0]);
    assert!(g.sync_lrs(0, &lrs).is_empty());
    assert_eq!(rd32(&mut g, GICD + 0x200 + WORD) & BIT, 0);
    assert_eq!(rd32(&mut g, GICD + 0x300 + WORD) & BIT, BIT, "ISACTIVER");
    // The guest's EOI deactivates the physical interrupt itself: nothing to report.
    eoi(&mut lrs[0]);
    assert!(g.sync_lrs(0, &lrs).is_empty(), "no completion to handle");
    assert_eq!(rd32(&mut g, GICD + 0x300 + WORD) & BIT, 0);
    g.flush_lrs(0, &mut lrs);
    assert!(lr_intids(&lrs).is_empty());
    assert!(unlinked(&mut g).is_empty(), "the hardware ended it");
    // A level line still asserted fires again: delivered again, linked again.
    assert_eq!(g.inject_hw(SPI), Some(1));
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr_intids(&lrs), [SPI]);
    assert!(lr::is_hw(lrs[0]));
}

#[test]
fn only_a_linked_spi_is_taken_and_only_representable_links_are_made() {
    let mut g = gic(1);
    enable_spi(&mut g, SPI, 0);
    assert_eq!(g.inject_hw(SPI), None, "not linked: the caller ends it");
    assert!(!g.has_deliverable(0, &[0; NR_LRS]));
    assert!(!g.link_hw(27, 27), "a PPI");
    assert!(!g.link_hw(SPI, 27), "to a PPI");
    assert!(!g.link_hw(SPI, NR_IRQS as u32));
    assert!(!g.link_hw(NR_IRQS as u32, SPI));
    assert_eq!(g.hw_link(SPI), None);
    // Linking turns off EOI notification (the old mask-and-unmask forwarding).
    g.set_eoi_notify(0, SPI, true);
    assert!(g.link_hw(SPI, SPI));
    assert!(!g.eoi_notify(0, SPI));
}

#[test]
fn a_guest_pend_while_the_hardware_lr_is_active_waits_for_a_software_lr() {
    let (mut g, mut lrs) = fired_and_flushed();
    ack(&mut lrs[0]);
    g.sync_lrs(0, &lrs);
    wr32(&mut g, GICD + 0x200 + WORD, BIT); // ISPENDR
    g.flush_lrs(0, &mut lrs);
    assert_eq!(
        lr::state(lrs[0]),
        lr::LrState::Active,
        "never pending+active with HW"
    );
    assert!(lr::is_hw(lrs[0]));
    assert_eq!(lr_intids(&lrs), [SPI]);
    eoi(&mut lrs[0]);
    g.sync_lrs(0, &lrs);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr_intids(&lrs), [SPI], "the guest's pend is delivered");
    assert!(
        !lr::is_hw(lrs[0]),
        "as a software interrupt: nothing physical"
    );
    assert!(unlinked(&mut g).is_empty());
}

#[test]
fn a_guest_icactiver_on_a_hardware_lr_ends_the_physical_interrupt() {
    let (mut g, mut lrs) = fired_and_flushed();
    ack(&mut lrs[0]);
    g.sync_lrs(0, &lrs);
    wr32(&mut g, GICD + 0x380 + WORD, BIT); // ICACTIVER
    g.flush_lrs(0, &mut lrs);
    assert!(lr_intids(&lrs).is_empty());
    assert_eq!(unlinked(&mut g), [SPI]);
    assert!(unlinked(&mut g).is_empty(), "handed over once");
}

#[test]
fn a_guest_icpendr_on_a_waiting_hardware_lr_ends_the_physical_interrupt() {
    let (mut g, mut lrs) = fired_and_flushed();
    wr32(&mut g, GICD + 0x280 + WORD, BIT); // ICPENDR
    g.flush_lrs(0, &mut lrs);
    assert!(lr_intids(&lrs).is_empty());
    assert_eq!(unlinked(&mut g), [SPI]);
}

#[test]
fn a_guest_icpendr_on_a_held_spi_ends_the_physical_interrupt() {
    let mut g = gic(1);
    assert!(g.link_hw(SPI, SPI)); // left disabled: held in the model
    assert_eq!(g.inject_hw(SPI), Some(0));
    assert_eq!(
        rd32(&mut g, GICD + 0x200 + WORD) & BIT,
        BIT,
        "reads pending"
    );
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert!(unlinked(&mut g).is_empty(), "still held while pending");
    wr32(&mut g, GICD + 0x280 + WORD, BIT);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(unlinked(&mut g), [SPI]);
    enable_spi(&mut g, SPI, 0);
    g.flush_lrs(0, &mut lrs);
    assert!(lr_intids(&lrs).is_empty(), "nothing left to deliver");
}

#[test]
fn disabling_a_waiting_hardware_lr_keeps_the_physical_interrupt_held() {
    let (mut g, mut lrs) = fired_and_flushed();
    wr32(&mut g, GICD + 0x180 + WORD, BIT); // ICENABLER
    g.flush_lrs(0, &mut lrs);
    assert!(lr_intids(&lrs).is_empty());
    assert!(unlinked(&mut g).is_empty(), "held, not ended");
    wr32(&mut g, GICD + 0x100 + WORD, BIT);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(
        lrs[0],
        lr::build_hw(SPI, SPI, 0xa0, true, lr::LrState::Pending)
    );
}

#[test]
fn isactiver_on_a_held_spi_places_a_software_lr_and_ends_the_physical() {
    let mut g = linked();
    g.inject_hw(SPI);
    wr32(&mut g, GICD + 0x300 + WORD, BIT); // ISACTIVER
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr::state(lrs[0]), lr::LrState::PendingActive);
    assert!(!lr::is_hw(lrs[0]));
    assert_eq!(unlinked(&mut g), [SPI]);
}

/// A caller that ends a hardware-linked LR in flight itself: deactivates the physical
/// interrupt, clears HW and pINTID, and hands the LR to the model (`hyp::run::unload` did
/// so for SPIs until they stayed linked, `lr::stays_linked_switched_out`; it still does
/// for the virtual timer's PPI). The model must cope with either.
fn switch_out(g: &mut VgicDomain, l: &mut u64) {
    assert!(lr::is_hw(*l));
    *l = lr::unlinked(*l);
    assert!(g.adopt(0, *l), "already the model's");
}

#[test]
fn switched_out_while_active_the_virtual_one_finishes_and_a_refire_waits() {
    let (mut g, mut lrs) = fired_and_flushed();
    ack(&mut lrs[0]);
    switch_out(&mut g, &mut lrs[0]);
    g.sync_lrs(0, &lrs);
    assert_eq!(rd32(&mut g, GICD + 0x300 + WORD) & BIT, BIT, "still active");
    // The line is still asserted: the physical interrupt fires again at once.
    g.inject_hw(SPI);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(lr::state(lrs[0]), lr::LrState::Active, "waits, unlinked");
    assert!(!lr::is_hw(lrs[0]));
    assert_eq!(lr_intids(&lrs), [SPI]);
    eoi(&mut lrs[0]);
    assert!(g.sync_lrs(0, &lrs).is_empty());
    g.flush_lrs(0, &mut lrs);
    assert_eq!(
        lrs[0],
        lr::build_hw(SPI, SPI, 0xa0, true, lr::LrState::Pending),
        "then delivered linked"
    );
    assert!(unlinked(&mut g).is_empty());
}

#[test]
fn a_passthrough_spi_stays_linked_across_a_switch_and_the_guest_ends_it_after() {
    let (mut g, mut lrs) = fired_and_flushed();
    assert!(lr::stays_linked_switched_out(lrs[0]));
    let timer = lr::build_hw(27, 27, 0xa0, true, lr::LrState::Pending);
    assert!(
        !lr::stays_linked_switched_out(timer),
        "a banked PPI is ended"
    );
    // Switched out and back in: the LR is saved and restored as it was, the physical
    // interrupt active all along, so it cannot fire again meanwhile.
    g.sync_lrs(0, &lrs);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(
        lrs[0],
        lr::build_hw(SPI, SPI, 0xa0, true, lr::LrState::Pending)
    );
    ack(&mut lrs[0]);
    eoi(&mut lrs[0]);
    g.sync_lrs(0, &lrs);
    g.flush_lrs(0, &mut lrs);
    assert!(lr_intids(&lrs).is_empty());
    assert!(
        unlinked(&mut g).is_empty(),
        "the guest's EOI ended the physical one"
    );
}

#[test]
fn switched_out_while_pending_a_refire_relinks_the_same_lr() {
    let (mut g, mut lrs) = fired_and_flushed();
    switch_out(&mut g, &mut lrs[0]);
    g.sync_lrs(0, &lrs);
    g.inject_hw(SPI);
    g.flush_lrs(0, &mut lrs);
    assert_eq!(
        lrs[0],
        lr::build_hw(SPI, SPI, 0xa0, true, lr::LrState::Pending)
    );
    assert_eq!(lr_intids(&lrs), [SPI], "one delivery, one LR");
    ack(&mut lrs[0]);
    eoi(&mut lrs[0]);
    g.sync_lrs(0, &lrs);
    g.flush_lrs(0, &mut lrs);
    assert!(lr_intids(&lrs).is_empty());
}

#[test]
fn releasing_the_device_hands_back_a_held_physical_interrupt() {
    let mut g = gic(1);
    assert!(g.link_hw(SPI, SPI));
    assert_eq!(
        g.unlink_hw(SPI),
        None,
        "nothing held: nothing to deactivate"
    );
    assert!(g.link_hw(SPI, SPI));
    g.inject_hw(SPI); // disabled by the guest: held in the model
    assert_eq!(g.unlink_hw(SPI), Some(SPI), "the caller deactivates it");
    assert_eq!(g.hw_link(SPI), None);
    assert_eq!(g.inject_hw(SPI), None, "no longer linked");
    assert_eq!(g.unlink_hw(SPI), None);
}

#[test]
fn a_gicv2_guest_gets_a_group0_hardware_lr() {
    let mut g = VgicDomain::new(GicVersion::V2, 1);
    write(&mut g, GICD + 0x400 + u64::from(SPI), 1, 0xa0);
    wr32(&mut g, GICD + 0x100 + WORD, BIT);
    write(&mut g, GICD + 0x800 + u64::from(SPI), 1, 1); // ITARGETSR: CPU 0
    assert!(g.link_hw(SPI, SPI));
    g.inject_hw(SPI);
    let mut lrs = [0u64; NR_LRS];
    g.flush_lrs(0, &mut lrs);
    assert_eq!(
        lrs[0],
        lr::build_hw(SPI, SPI, 0xa0, false, lr::LrState::Pending)
    );
    let gich = crate::gich_lr::to_gich(lrs[0]);
    assert_eq!(gich >> 31, 1, "HW");
    assert_eq!((gich >> 10) & 0x3ff, SPI, "PhysicalID");
}

/// The physical side of [`random_links_never_strand_or_double_end_a_physical_interrupt`]:
/// which linked physical SPIs are active (acknowledged at EL2, not yet deactivated).
pub(super) struct Phys {
    pub(super) active: IrqSet,
}

impl Phys {
    /// Deactivation of `p`, which must be active (else something ended it twice).
    pub(super) fn end(&mut self, p: u32, why: &str) {
        assert!(self.active.contains(p), "{why}: {p} ended while not active");
        self.active.remove(p);
    }
}

/// Checks that each active physical interrupt has exactly one holder: the model
/// (`hw_held`) or one hardware LR; and that no hardware LR is pending+active.
pub(super) fn assert_one_holder(g: &VgicDomain, lrs: &[[u64; NR_LRS]], phys: &Phys) {
    for p in FIRST_SPI..FIRST_SPI + 8 {
        let in_lrs = lrs
            .iter()
            .flatten()
            .filter(|&&l| lr::is_hw(l) && lr::state(l) != lr::LrState::Invalid)
            .filter(|&&l| lr::pintid(l) == p)
            .count();
        let held = usize::from(g.hw_held.contains(p));
        let holders = in_lrs + held;
        if phys.active.contains(p) {
            assert_eq!(holders, 1, "physical {p} active: LRs {in_lrs}, held {held}");
        } else {
            assert_eq!(holders, 0, "physical {p} inactive yet held: {lrs:x?}");
        }
    }
    for &l in lrs.iter().flatten().filter(|&&l| lr::is_hw(l)) {
        assert_ne!(lr::state(l), lr::LrState::PendingActive, "{l:#x}");
    }
}

/// vCPU `v` switched out (`Hyp::unload`): a hardware LR in flight that does not stay
/// linked (`lr::stays_linked_switched_out`) has its physical interrupt ended and its link
/// stripped, and the model keeps the LR as an ordinary one; a passthrough SPI's stays as
/// it is, its physical interrupt active, until the guest ends it.
pub(super) fn switch_out_all(g: &mut VgicDomain, v: usize, l: &mut [u64; NR_LRS], phys: &mut Phys) {
    for slot in l.iter_mut() {
        let ends = !lr::stays_linked_switched_out(*slot);
        if lr::is_hw(*slot) && lr::state(*slot) != lr::LrState::Invalid && ends {
            phys.end(lr::pintid(*slot), "switch-out");
            *slot = lr::unlinked(*slot);
            assert!(g.adopt(v, *slot));
        }
    }
}

/// The end of a randomized run: with the first eight SPIs enabled and routed to vCPU 0
/// and every LR of the `n` vCPUs finished by the guest (a hardware LR's deactivation
/// ending its physical interrupt), flush after flush until all settle, no physical
/// interrupt stays active.
pub(super) fn drain(g: &mut VgicDomain, lrs: &mut [[u64; NR_LRS]; 3], n: usize, phys: &mut Phys) {
    fn finish_all(l: &mut [u64; NR_LRS], phys: &mut Phys) {
        for slot in l.iter_mut() {
            if lr::is_hw(*slot) && lr::state(*slot) != lr::LrState::Invalid {
                phys.end(lr::pintid(*slot), "drain");
            }
            *slot = 0;
        }
    }
    for spi in FIRST_SPI..FIRST_SPI + 8 {
        route_spi(g, spi, 0);
    }
    wr32(g, GICD + 0x104, 0xFF);
    for _ in 0..64 {
        for (v, l) in lrs.iter_mut().enumerate().take(n) {
            finish_all(l, phys);
            g.sync_lrs(v, l);
            g.flush_lrs(v, l);
            for p in g.take_unlinked().iter() {
                phys.end(p, "take_unlinked");
            }
        }
        assert_one_holder(g, lrs, phys);
    }
    for (v, l) in lrs.iter_mut().enumerate().take(n) {
        finish_all(l, phys);
        g.sync_lrs(v, l);
    }
    assert!(phys.active.is_empty(), "stranded: {:?}", phys.active);
}

#[test]
fn random_links_never_strand_or_double_end_a_physical_interrupt() {
    for seed in 1..=6u64 {
        let mut r = fuzz::Rng(seed.wrapping_mul(0xA076_1D64_78BD_642F) | 1);
        let n = 1 + r.below(3) as usize;
        let mut g = gic(n);
        let mut lrs = [[0u64; NR_LRS]; 3];
        let mut phys = Phys {
            active: IrqSet::EMPTY,
        };
        for spi in FIRST_SPI..FIRST_SPI + 8 {
            assert!(g.link_hw(spi, spi));
        }
        for _ in 0..20_000 {
            let v = r.below(n as u64) as usize;
            let spi = FIRST_SPI + r.below(8) as u32;
            let bit = 1u64 << (spi % 32);
            match r.below(12) {
                0 | 1 => {
                    // The device fires: only an inactive physical interrupt can.
                    if !phys.active.contains(spi) {
                        assert!(g.inject_hw(spi).is_some());
                        phys.active.insert(spi);
                    }
                }
                2 => {
                    let reg = [0x100u64, 0x180, 0x200, 0x280, 0x300, 0x380][r.below(6) as usize];
                    wr32(&mut g, GICD + reg + 4, bit);
                }
                3 => {
                    route_spi(&mut g, spi, r.below(n as u64 + 1));
                }
                4 | 5 => {
                    g.flush_lrs(v, &mut lrs[v]);
                    for p in g.take_unlinked().iter() {
                        phys.end(p, "take_unlinked");
                    }
                }
                6 | 7 => {
                    // The guest acknowledges or deactivates; a hardware LR's
                    // deactivation ends the physical interrupt.
                    let slot = &mut lrs[v][r.below(NR_LRS as u64) as usize];
                    *slot = match lr::state(*slot) {
                        lr::LrState::Pending => lr::with_state(*slot, lr::LrState::Active),
                        lr::LrState::Active => {
                            if lr::is_hw(*slot) {
                                phys.end(lr::pintid(*slot), "guest deactivation");
                            }
                            lr::with_state(*slot, lr::LrState::Invalid)
                        }
                        lr::LrState::PendingActive => lr::with_state(*slot, lr::LrState::Pending),
                        lr::LrState::Invalid => *slot,
                    };
                }
                8 => {
                    g.sync_lrs(v, &lrs[v]);
                }
                9 => {
                    // Switched out (`unload`).
                    switch_out_all(&mut g, v, &mut lrs[v], &mut phys);
                }
                _ => {
                    g.sync_lrs(v, &lrs[v]);
                    g.flush_lrs(v, &mut lrs[v]);
                    for p in g.take_unlinked().iter() {
                        phys.end(p, "take_unlinked");
                    }
                }
            }
            assert_one_holder(&g, &lrs, &phys);
        }
        drain(&mut g, &mut lrs, n, &mut phys);
    }
}

#[test]
fn an_unlinked_lr_asking_for_eoi_keeps_the_bit_and_loses_the_link() {
    let hw = lr::build_hw(27, 27, 0xa0, true, lr::LrState::Active);
    let soft = lr::unlinked_notified(hw);
    assert!(!lr::is_hw(soft));
    assert!(
        lr::eoi_notify(soft),
        "{soft:#x}: the EOI bit lies in the pINTID field"
    );
    assert_eq!(lr::intid(soft), 27);
    assert_eq!(lr::state(soft), lr::LrState::Active);
    assert_eq!(lr::unlinked(hw), soft & !lr::EOI);
}
