//! Randomized sequences of grant operations (deterministic PRNG) checking the invariants:
//! `GTF_reading` is set iff an entry is pinned, `GTF_writing` iff it has a writable pin,
//! and the pin counts equal the live mappings naming the entry.

use super::fake::{host, ram, Env, RAM_PAGES};
use super::pin::Slot;
use super::*;
use protocol::xen::structs::DOMID_SELF;
use protocol::xen::structs::{gntcopy, GnttabCopy, GnttabCopyPtr};

const DOMS: [DomId; 3] = [0, 1, 2];
/// Grant references in play per domain (all in frame 0).
const GREFS: u32 = 6;

use crate::test_rng::Rng;

/// One of [`DOMS`] at random.
fn dom(rng: &mut Rng) -> DomId {
    DOMS[rng.below(DOMS.len() as u64) as usize]
}

/// A mapping the test believes exists.
struct Held {
    mapper: DomId,
    granter: DomId,
    handle: GrantHandle,
    host: u64,
    revoked: bool,
}

fn check_invariants(env: &Env, step: usize) {
    for t in env.gt.domains.iter() {
        for gref in 0..GREFS {
            let flags = env.flags(t.id, gref);
            let a = t.active.get(&gref);
            let (mut ro, mut rw, mut mappers) = (0u32, 0u32, Vec::new());
            for m in env.gt.domains.iter() {
                for s in &m.maptrack.slots {
                    if let Slot::Live(x) = s {
                        if x.granter == t.id && x.gref == gref {
                            *(if x.readonly { &mut ro } else { &mut rw }) += 1;
                            mappers.push(m.id);
                        }
                    }
                }
            }
            let at = format!("step {step}: d{} gref {gref} flags {flags:#x}", t.id);
            assert_eq!(flags & gtf::READING != 0, a.is_some(), "{at}");
            assert_eq!(
                flags & gtf::WRITING != 0,
                a.is_some_and(|a| a.writers > 0),
                "{at}"
            );
            assert_eq!(
                a.map_or((0, 0), |a| (a.readers, a.writers)),
                (ro, rw),
                "{at}"
            );
            if let Some(a) = a {
                assert!(mappers.iter().all(|&m| m == a.pinner), "{at}");
            }
        }
    }
}

fn grant_or_end(env: &mut Env, rng: &mut Rng) {
    let (g, gref) = (dom(rng), rng.below(u64::from(GREFS)) as GrantRef);
    if env.gt.table(g).is_none() {
        return;
    }
    // Like Linux's gnttab_end_foreign_access: only entries not in use are rewritten.
    if env.flags(g, gref) & (gtf::READING | gtf::WRITING) != 0 {
        return;
    }
    if rng.chance(25) {
        env.set(
            g,
            gref,
            GrantEntryV1 {
                flags: 0,
                domid: 0,
                frame: 0,
            },
        );
    } else {
        let gfn = rng.below(RAM_PAGES + 4) as u32; // sometimes not RAM
        let (grantee, ro) = (dom(rng), rng.chance(30));
        env.grant(g, gref, grantee, gfn, ro);
    }
}

fn random_copy(env: &mut Env, rng: &mut Rng) {
    let caller = dom(rng);
    let side = |rng: &mut Rng| -> (GnttabCopyPtr, bool) {
        let is_gref = rng.chance(70);
        let ptr = GnttabCopyPtr {
            u: if is_gref {
                rng.below(u64::from(GREFS) + 1)
            } else {
                rng.below(RAM_PAGES + 2)
            },
            domid: if is_gref { dom(rng) } else { DOMID_SELF },
            offset: rng.below(4200) as u16,
            _pad0: 0,
        };
        (ptr, is_gref)
    };
    let (source, sg) = side(rng);
    let (dest, dg) = side(rng);
    let flags = if sg { gntcopy::SOURCE_GREF } else { 0 } | if dg { gntcopy::DEST_GREF } else { 0 };
    let op = GnttabCopy {
        source,
        dest,
        len: rng.below(200) as u16,
        flags,
        status: 0,
        _pad0: 0,
    };
    let _ = env.gt.copy(&mut env.mem, caller, &op, ram);
}

fn close_and_reopen(env: &mut Env, held: &mut Vec<Held>, rng: &mut Rng) {
    let d = dom(rng);
    let closed = env.gt.close_domain(&mut env.mem, d).unwrap();
    let mine = held.iter().filter(|h| h.mapper == d && !h.revoked).count();
    assert_eq!(closed.released.len(), mine);
    held.retain(|h| h.mapper != d);
    let mut revoked = 0;
    for h in held.iter_mut().filter(|h| h.granter == d && !h.revoked) {
        h.revoked = true;
        revoked += 1;
    }
    assert_eq!(closed.revoked.len(), revoked);
    env.gt.open_domain(d, 4, 8).unwrap();
    env.grow(d, 0).unwrap();
}

fn run(seed: u64, steps: usize) {
    let mut env = Env::new(&DOMS);
    let mut rng = Rng(seed);
    let mut held: Vec<Held> = Vec::new();
    let mut next_host = 0;
    let mut mapped = 0;
    for step in 0..steps {
        if rng.chance(10) {
            env.mem.flip_pwt = rng.below(7) as usize;
        }
        match rng.below(100) {
            0..=24 => grant_or_end(&mut env, &mut rng),
            25..=59 => {
                let granter = dom(&mut rng);
                let gref = rng.below(u64::from(GREFS) + 1) as GrantRef;
                // Mostly the grantee (so maps succeed often enough), sometimes anyone.
                let grantee = (gref < GREFS).then(|| env.entry(granter, gref).domid);
                let mapper = match grantee {
                    Some(d) if DOMS.contains(&d) && rng.chance(80) => d,
                    _ => dom(&mut rng),
                };
                next_host += 1;
                let at = host(next_host).as_u64();
                if let Ok(m) = env.map(mapper, granter, gref, rng.chance(40), at) {
                    held.push(Held {
                        mapper,
                        granter,
                        handle: m.handle,
                        host: at,
                        revoked: false,
                    });
                    mapped += 1;
                }
            }
            60..=84 if !held.is_empty() => {
                let i = rng.below(held.len() as u64) as usize;
                if rng.chance(10) {
                    let h = &held[i];
                    let wrong = h.host + 0x1000;
                    assert_eq!(
                        env.unmap(h.mapper, h.handle, wrong),
                        Err(gntst::GENERAL_ERROR)
                    );
                } else {
                    let h = held.swap_remove(i);
                    let u = env.unmap(h.mapper, h.handle, h.host).unwrap();
                    assert_eq!(u.revoked, h.revoked, "step {step}");
                }
            }
            85..=96 => random_copy(&mut env, &mut rng),
            97..=99 => close_and_reopen(&mut env, &mut held, &mut rng),
            _ => {}
        }
        check_invariants(&env, step);
    }
    assert!(
        mapped > steps / 20,
        "seed {seed}: only {mapped} maps succeeded"
    );
    // Unmapping everything leaves no pin and no flag anywhere.
    for h in held.drain(..) {
        let _ = env.unmap(h.mapper, h.handle, h.host).unwrap();
    }
    for t in env.gt.domains.iter() {
        assert!(t.active.is_empty());
    }
    check_invariants(&env, steps);
}

#[test]
fn random_sequences_keep_flags_and_pins_consistent() {
    for seed in [1, 0x9E37_79B9_7F4A_7C15, 42, 7_777_777] {
        run(seed, 3000);
    }
}
