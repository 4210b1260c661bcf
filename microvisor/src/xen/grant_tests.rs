//! Host tests for grant tables: setup, map/unmap statuses, pins, CAS races, close.
// These tests look at the grant entries; the stage-2 half of `Mapped`/`Unmapped` that the
// lint guards belongs to the glue.
#![allow(unused_must_use)]

use super::fake::{host, ram, Env, FakeMem};
use super::*;
use protocol::xen::structs::gntmap;
use protocol::xen::structs::DOMID_SELF;

const RW: u16 = gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING;
const RO: u16 = gtf::PERMIT_ACCESS | gtf::READING;

fn h(n: u64) -> u64 {
    host(n).as_u64()
}

#[test]
fn open_domain_validates() {
    let mut gt = GrantTables::new(2);
    assert_eq!(gt.open_domain(2, 4, 8), Err(SetupError::DomainOutOfRange));
    assert_eq!(gt.open_domain(0, 0, 8), Err(SetupError::BadLimit));
    assert_eq!(
        gt.open_domain(0, MAX_GRANT_FRAMES + 1, 8),
        Err(SetupError::BadLimit)
    );
    gt.open_domain(0, MAX_GRANT_FRAMES, 8).unwrap();
    assert_eq!(gt.open_domain(0, 4, 8), Err(SetupError::AlreadyOpen));
    let mut mem = FakeMem::default();
    assert_eq!(gt.close_domain(&mut mem, 1), Err(SetupError::NotOpen));
}

#[test]
fn frames_grow_on_demand_zeroed_and_bounded() {
    let mut env = Env::new(&[0]);
    assert_eq!(
        env.gt.query_size(0, DOMID_SELF, false),
        Ok(TableSize {
            nr_frames: 1,
            max_frames: 4
        })
    );
    let f2 = env.grow(0, 2).unwrap();
    assert_eq!(env.gt.query_size(0, 0, false).unwrap().nr_frames, 3);
    // Unwritten fake memory reads 0xAA: these entries were zeroed by `frame`.
    for gref in [512, 1023, 1024, 1535] {
        assert_eq!(
            env.entry(0, gref),
            GrantEntryV1 {
                flags: 0,
                domid: 0,
                frame: 0
            }
        );
    }
    // Asking again returns the same frame without allocating.
    assert_eq!(env.grow(0, 2), Ok(f2));
    assert_eq!(env.gt.query_size(0, 0, false).unwrap().nr_frames, 3);
    assert_eq!(env.grow(0, 4), Err(XenErrno::EINVAL));
    assert_eq!(env.grow(0, u32::MAX), Err(XenErrno::EINVAL));
    assert_eq!(env.grow(5, 0), Err(XenErrno::ESRCH));
    let failed = env.gt.frame(&mut env.mem, 0, 3, || None);
    assert_eq!(failed, Err(XenErrno::ENOMEM));
    assert_eq!(env.gt.query_size(0, 0, false).unwrap().nr_frames, 3);
}

#[test]
fn query_size_of_others_needs_privilege() {
    let env = Env::new(&[0, 1]);
    assert_eq!(
        env.gt.query_size(1, 0, false),
        Err(gntst::PERMISSION_DENIED)
    );
    assert_eq!(env.gt.query_size(0, 1, true).map(|s| s.nr_frames), Ok(1));
    assert_eq!(env.gt.query_size(0, 5, true), Err(gntst::BAD_DOMAIN));
}

#[test]
fn writable_map_and_unmap() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 7, 0, 12, false);
    let m = env.map(0, 1, 7, false, h(3) + 0x123).unwrap();
    assert_eq!(
        m,
        Mapped {
            handle: 0,
            host_addr: host(3),
            frame_pa: ram(1, 12).unwrap(),
            readonly: false,
            host: true,
            device: false,
        }
    );
    assert_eq!(env.flags(1, 7), RW);
    let u = env.unmap(0, m.handle, h(3)).unwrap();
    assert_eq!(
        u,
        Unmapped {
            host_addr: host(3),
            frame_pa: ram(1, 12).unwrap(),
            readonly: false,
            host: true,
            revoked: false
        }
    );
    assert_eq!(env.flags(1, 7), gtf::PERMIT_ACCESS);
    assert_eq!(env.unmap(0, m.handle, h(3)), Err(gntst::BAD_HANDLE));
}

#[test]
fn readonly_maps_and_readonly_grants() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 5, true);
    assert_eq!(env.map(0, 1, 1, false, h(0)), Err(gntst::GENERAL_ERROR));
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS | gtf::READONLY);
    let m = env.map(0, 1, 1, true, h(0)).unwrap();
    assert!(m.readonly);
    assert_eq!(env.flags(1, 1), RO | gtf::READONLY);
    // A writable map of a grant already pinned read-only still checks GTF_readonly.
    assert_eq!(env.map(0, 1, 1, false, h(1)), Err(gntst::GENERAL_ERROR));
    env.unmap(0, m.handle, h(0)).unwrap();
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS | gtf::READONLY);
    // A writable grant mapped read-only sets only GTF_reading.
    env.grant(1, 2, 0, 6, false);
    env.map(0, 1, 2, true, h(2)).unwrap();
    assert_eq!(env.flags(1, 2), RO);
}

#[test]
fn map_flag_statuses() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 5, false);
    let cases = [
        (0, gntst::BAD_GNTREF),
        (gntmap::READONLY, gntst::BAD_GNTREF),
        (gntmap::DEVICE_MAP, gntst::GENERAL_ERROR),
        (gntmap::HOST_MAP | gntmap::DEVICE_MAP, gntst::GENERAL_ERROR),
        (
            gntmap::HOST_MAP | gntmap::CONTAINS_PTE,
            gntst::GENERAL_ERROR,
        ),
        (
            gntmap::HOST_MAP | gntmap::APPLICATION_MAP,
            gntst::GENERAL_ERROR,
        ),
        (gntmap::HOST_MAP | 1 << 9, gntst::GENERAL_ERROR),
    ];
    for (flags, status) in cases {
        assert_eq!(
            env.map_flags(0, 1, 1, flags, h(0)),
            Err(status),
            "flags {flags:#x}"
        );
    }
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS);
}

#[test]
fn map_entry_statuses() {
    let mut env = Env::new(&[0, 1, 2]);
    assert_eq!(env.map(0, 3, 1, false, h(0)), Err(gntst::BAD_DOMAIN));
    assert_eq!(
        env.map(0, DOMID_SELF, 1, false, h(0)),
        Err(gntst::BAD_DOMAIN)
    );
    assert_eq!(env.map(0, 1, 512, false, h(0)), Err(gntst::BAD_GNTREF));
    assert_eq!(env.map(0, 1, u32::MAX, false, h(0)), Err(gntst::BAD_GNTREF));
    // Granted to someone else, not granted, wrong types, sub-page.
    env.grant(1, 1, 2, 5, false);
    env.set(
        1,
        3,
        GrantEntryV1 {
            flags: gtf::ACCEPT_TRANSFER,
            domid: 0,
            frame: 5,
        },
    );
    env.set(
        1,
        4,
        GrantEntryV1 {
            flags: gtf::TRANSITIVE,
            domid: 0,
            frame: 5,
        },
    );
    let sub = gtf::PERMIT_ACCESS | gtf::SUB_PAGE;
    env.set(
        1,
        5,
        GrantEntryV1 {
            flags: sub,
            domid: 0,
            frame: 5,
        },
    );
    for gref in [1, 2, 3, 4, 5] {
        assert_eq!(
            env.map(0, 1, gref, false, h(0)),
            Err(gntst::GENERAL_ERROR),
            "gref {gref}"
        );
    }
    // A frame outside the granter's RAM: flags set for the attempt are cleared again.
    env.grant(1, 6, 0, 1000, false);
    assert_eq!(env.map(0, 1, 6, false, h(0)), Err(gntst::BAD_PAGE));
    assert_eq!(env.flags(1, 6), gtf::PERMIT_ACCESS);
    // No failure consumed a handle.
    env.grant(1, 7, 0, 1, false);
    assert_eq!(env.map(0, 1, 7, false, h(0)).unwrap().handle, 0);
}

#[test]
fn granting_to_oneself_works() {
    let mut env = Env::new(&[1]);
    env.grant(1, 2, 1, 9, false);
    let m = env.map(1, 1, 2, false, h(0)).unwrap();
    assert_eq!(m.frame_pa, ram(1, 9).unwrap());
    env.unmap(1, m.handle, h(0)).unwrap();
    assert_eq!(env.flags(1, 2), gtf::PERMIT_ACCESS);
}

#[test]
fn pins_count_mappings() {
    let mut env = Env::new(&[0, 1, 2]);
    env.grant(1, 1, 0, 5, false);
    let r = env.map(0, 1, 1, true, h(0)).unwrap();
    let w1 = env.map(0, 1, 1, false, h(1)).unwrap();
    let w2 = env.map(0, 1, 1, false, h(2)).unwrap();
    assert_eq!(env.flags(1, 1), RW);
    env.unmap(0, w1.handle, h(1)).unwrap();
    assert_eq!(env.flags(1, 1), RW, "one writer left");
    env.unmap(0, w2.handle, h(2)).unwrap();
    assert_eq!(env.flags(1, 1), RO, "last writer gone");
    // Another domain cannot pin an entry pinned for domain 0, even if regranted to it.
    env.grant(1, 1, 2, 5, false);
    assert_eq!(env.map(2, 1, 1, true, h(0)), Err(gntst::GENERAL_ERROR));
    env.unmap(0, r.handle, h(0)).unwrap();
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS);
    assert!(env.map(2, 1, 1, true, h(0)).is_ok());
}

#[test]
fn pinned_frame_is_kept_when_the_granter_rewrites_it() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 5, false);
    let a = env.map(0, 1, 1, true, h(0)).unwrap();
    let e = env.entry(1, 1);
    env.set(1, 1, GrantEntryV1 { frame: 6, ..e });
    let b = env.map(0, 1, 1, false, h(1)).unwrap();
    assert_eq!(a.frame_pa, b.frame_pa);
}

#[test]
fn cas_retries_after_a_benign_change() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 5, false);
    // The granter sets a cache attribute between our read and our CAS.
    env.mem
        .interfere
        .push_back(Env::word(gtf::PERMIT_ACCESS | gtf::PCD, 0));
    env.map(0, 1, 1, false, h(0)).unwrap();
    assert_eq!(env.mem.cas_calls, 2);
    assert_eq!(env.flags(1, 1), RW | gtf::PCD);
}

#[test]
fn cas_revalidates_what_the_granter_changed() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 5, false);
    // Made read-only under a writable map.
    env.mem
        .interfere
        .push_back(Env::word(gtf::PERMIT_ACCESS | gtf::READONLY, 0));
    assert_eq!(env.map(0, 1, 1, false, h(0)), Err(gntst::GENERAL_ERROR));
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS | gtf::READONLY);
    // Revoked, or regranted to another domain.
    env.grant(1, 1, 0, 5, false);
    env.mem.interfere.push_back(0);
    assert_eq!(env.map(0, 1, 1, true, h(0)), Err(gntst::GENERAL_ERROR));
    env.grant(1, 1, 0, 5, false);
    env.mem
        .interfere
        .push_back(Env::word(gtf::PERMIT_ACCESS, 2));
    assert_eq!(env.map(0, 1, 1, true, h(0)), Err(gntst::GENERAL_ERROR));
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS);
}

/// The granter's `i`-th rewrite of an entry granted to d0: alternately with and without
/// `GTF_PWT`, starting with it, so each differs from the value before it and every CAS
/// meeting one fails.
fn flapping(i: u16) -> u32 {
    let pwt = if i.is_multiple_of(2) { gtf::PWT } else { 0 };
    Env::word(gtf::PERMIT_ACCESS | pwt, 0)
}

#[test]
fn cas_gives_up_on_an_unstable_entry() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 5, false);
    // Four changes: the fifth CAS succeeds.
    env.mem.interfere.extend((0..4).map(flapping));
    env.map(0, 1, 1, true, h(0)).unwrap();
    assert_eq!(env.mem.cas_calls, 5);
    // Five changes: refused after the fifth failed CAS.
    env.grant(1, 2, 0, 5, false);
    env.mem.cas_calls = 0;
    env.mem.interfere.extend((0..5).map(flapping));
    assert_eq!(env.map(0, 1, 2, true, h(1)), Err(gntst::GENERAL_ERROR));
    assert_eq!(env.mem.cas_calls, 5);
    assert_eq!(env.flags(1, 2) & (gtf::READING | gtf::WRITING), 0);
}

#[test]
fn unmap_checks_handle_and_address() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 5, false);
    let m = env.map(0, 1, 1, false, h(4)).unwrap();
    assert_eq!(env.unmap(0, 1, h(4)), Err(gntst::BAD_HANDLE));
    assert_eq!(env.unmap(0, u32::MAX, h(4)), Err(gntst::BAD_HANDLE));
    assert_eq!(env.unmap(5, m.handle, h(4)), Err(gntst::BAD_HANDLE));
    assert_eq!(env.unmap(0, m.handle, h(5)), Err(gntst::GENERAL_ERROR));
    assert_eq!(env.flags(1, 1), RW, "a refused unmap changes nothing");
    // Low bits are ignored, as on map.
    env.unmap(0, m.handle, h(4) + 0xfff).unwrap();
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS);
}

#[test]
fn maptrack_is_bounded_and_handles_are_reused() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 5, true);
    let maps: Vec<Mapped> = (0..8)
        .map(|i| env.map(0, 1, 1, true, h(i)).unwrap())
        .collect();
    assert_eq!(env.map(0, 1, 1, true, h(8)), Err(gntst::NO_SPACE));
    // Checked before the grant reference, as in Xen.
    assert_eq!(env.map(0, 1, 9999, true, h(8)), Err(gntst::NO_SPACE));
    env.unmap(0, maps[3].handle, h(3)).unwrap();
    assert_eq!(env.map(0, 1, 1, true, h(8)).unwrap().handle, maps[3].handle);
}

/// F12: a writable pin added to an entry already pinned read-only re-checks the entry's type
/// and grantee. The granter revoked (or re-granted elsewhere) after the read-only map, so
/// the upgrade must fail and set no GTF_writing.
#[test]
fn upgrade_pin_rechecks_a_rewritten_entry() {
    for rewritten in [
        GrantEntryV1 {
            flags: 0,
            domid: 0,
            frame: 12,
        },
        GrantEntryV1 {
            flags: gtf::PERMIT_ACCESS | gtf::READING,
            domid: 2,
            frame: 12,
        },
    ] {
        let mut env = Env::new(&[0, 1, 2]);
        env.grant(1, 7, 0, 12, false);
        let m = env.map(0, 1, 7, true, h(0)).unwrap();
        assert!(m.readonly);
        env.set(1, 7, rewritten);
        assert_eq!(env.map(0, 1, 7, false, h(1)), Err(gntst::GENERAL_ERROR));
        assert_eq!(env.flags(1, 7) & gtf::WRITING, 0);
    }
}
