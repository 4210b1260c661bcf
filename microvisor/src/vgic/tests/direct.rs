//! [`VgicDomain::deliver_direct`] against what it stands for, an inject and a flush, over
//! random runs shaped like a shared vCPU's life (interrupts arrive, are flushed, taken and
//! finished, the vCPU waits with nothing in its LRs), on a GICv3 and a GICv2.

use super::fuzz::{direct_matches_inject_and_flush, Rng};
use super::*;

#[test]
fn direct_delivery_is_an_inject_and_a_flush() {
    random_lives(GicVersion::V3);
}

#[test]
fn direct_delivery_is_an_inject_and_a_flush_v2() {
    random_lives(GicVersion::V2);
}

fn random_lives(version: GicVersion) {
    let mut hits = 0;
    for seed in 1..=8u64 {
        let mut r = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
        let n = 1 + r.below(4) as usize;
        let mut g = VgicDomain::new(version, n);
        let enable = match version {
            GicVersion::V3 => 0b10,
            GicVersion::V2 => 0b01,
        };
        wr32(&mut g, GICD, enable);
        for v in 0..n {
            for intid in 0..32u32 {
                if r.below(3) != 0 {
                    let prio = (r.below(8) as u8) << 5;
                    match version {
                        GicVersion::V3 => enable_private(&mut g, v, intid, prio),
                        GicVersion::V2 => {
                            write_as(&mut g, v, GICD + 0x400 + u64::from(intid), 1, prio.into());
                            write_as(&mut g, v, GICD + 0x100, 4, 1 << intid);
                        }
                    }
                }
                g.set_eoi_notify(v, intid, r.below(4) == 0);
            }
        }
        let mut lrs = vec![[0u64; NR_LRS]; n];
        for _ in 0..4_000 {
            let v = r.below(n as u64) as usize;
            let intid = r.below(32) as u32;
            let l = &mut lrs[v];
            match r.below(8) {
                0 => {
                    g.inject(v, intid);
                }
                1 => {
                    g.flush_lrs(v, l);
                }
                2 | 3 => {
                    // The guest takes and finishes everything, and the exit syncs.
                    for slot in l.iter_mut() {
                        *slot = lr::with_state(*slot, lr::LrState::Invalid);
                    }
                    g.sync_lrs(v, l);
                    g.flush_lrs(v, l);
                }
                4 => {
                    // The guest takes one.
                    let slot = &mut l[r.below(NR_LRS as u64) as usize];
                    if lr::state(*slot) == lr::LrState::Pending {
                        *slot = lr::with_state(*slot, lr::LrState::Active);
                    }
                    g.sync_lrs(v, l);
                }
                _ => {
                    let owed = g.needs_flush(v);
                    let empty = g.lrs[v].in_lr.is_empty();
                    direct_matches_inject_and_flush(&mut g, v, intid, l);
                    if !owed && empty && g.lrs[v].in_lr.contains(intid) {
                        hits += 1;
                    }
                }
            }
        }
    }
    assert!(
        hits > 200,
        "only {hits} direct deliveries: the runs miss the case"
    );
}
