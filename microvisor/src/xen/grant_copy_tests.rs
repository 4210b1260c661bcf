//! Host tests for `GNTTABOP_copy`.

use super::fake::{host, ram, Env};
use super::*;
use protocol::xen::structs::DOMID_SELF;
use protocol::xen::structs::{gntcopy, GnttabCopy, GnttabCopyPtr};

/// A grant side: `gref` of `dom`.
fn gref(dom: DomId, gref: GrantRef, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: u64::from(gref),
        domid: dom,
        offset,
        _pad0: 0,
    }
}

/// A frame side: the caller's `gfn`.
fn local(gfn: u64, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: gfn,
        domid: DOMID_SELF,
        offset,
        _pad0: 0,
    }
}

fn op(source: GnttabCopyPtr, dest: GnttabCopyPtr, len: u16, flags: u16) -> GnttabCopy {
    GnttabCopy {
        source,
        dest,
        len,
        flags,
        status: 0,
        _pad0: 0,
    }
}

fn copy(env: &mut Env, caller: DomId, op: &GnttabCopy) -> i16 {
    env.gt.copy(&mut env.mem, caller, op, ram)
}

fn page(dom: DomId, gfn: u64) -> PhysAddr {
    ram(dom, gfn).unwrap()
}

fn at(pa: PhysAddr, off: u64) -> PhysAddr {
    pa.checked_add(off).unwrap()
}

#[test]
fn copy_from_a_grant_into_own_ram() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 4, 0, 10, true);
    env.mem.write(at(page(1, 10), 100), b"hello grant");
    let o = op(gref(1, 4, 100), local(3, 4000), 11, gntcopy::SOURCE_GREF);
    assert_eq!(copy(&mut env, 0, &o), gntst::OKAY);
    assert_eq!(env.mem.read(at(page(0, 3), 4000), 11), b"hello grant");
    assert_eq!(
        env.flags(1, 4),
        gtf::PERMIT_ACCESS | gtf::READONLY,
        "pin released"
    );
}

#[test]
fn copy_from_own_ram_into_a_writable_grant() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 4, 0, 10, false);
    env.mem.write(page(0, 2), b"response");
    let o = op(local(2, 0), gref(1, 4, 4088), 8, gntcopy::DEST_GREF);
    assert_eq!(copy(&mut env, 0, &o), gntst::OKAY);
    assert_eq!(env.mem.read(at(page(1, 10), 4088), 8), b"response");
    assert_eq!(env.flags(1, 4), gtf::PERMIT_ACCESS);
}

#[test]
fn copy_between_two_granters() {
    let mut env = Env::new(&[0, 1, 2]);
    env.grant(1, 1, 0, 10, true);
    env.grant(2, 1, 0, 20, false);
    env.mem.write(page(1, 10), b"xyz");
    let o = op(
        gref(1, 1, 0),
        gref(2, 1, 1),
        3,
        gntcopy::SOURCE_GREF | gntcopy::DEST_GREF,
    );
    assert_eq!(copy(&mut env, 0, &o), gntst::OKAY);
    assert_eq!(env.mem.read(at(page(2, 20), 1), 3), b"xyz");
}

#[test]
fn copy_within_one_grant_behaves_like_memmove() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 10, false);
    env.mem.write(page(1, 10), b"abcdef");
    let both = gntcopy::SOURCE_GREF | gntcopy::DEST_GREF;
    assert_eq!(
        copy(&mut env, 0, &op(gref(1, 1, 0), gref(1, 1, 2), 4, both)),
        gntst::OKAY
    );
    assert_eq!(env.mem.read(page(1, 10), 6), b"ababcd");
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS);
}

#[test]
fn copy_with_domid_self_names_own_grants() {
    let mut env = Env::new(&[0]);
    env.grant(0, 1, 0, 10, false);
    env.mem.write(page(0, 4), b"q");
    let o = op(local(4, 0), gref(DOMID_SELF, 1, 0), 1, gntcopy::DEST_GREF);
    assert_eq!(copy(&mut env, 0, &o), gntst::OKAY);
    assert_eq!(env.mem.read(page(0, 10), 1), b"q");
}

#[test]
fn zero_length_copy_succeeds_without_checks() {
    let mut env = Env::new(&[0]);
    let o = op(
        gref(7, 9999, 4095),
        local(9999, 4095),
        0,
        gntcopy::SOURCE_GREF,
    );
    assert_eq!(copy(&mut env, 0, &o), gntst::OKAY);
}

#[test]
fn copy_bounds() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 10, false);
    let src = gntcopy::SOURCE_GREF;
    let dst = gntcopy::DEST_GREF;
    // Exactly to the end of the page is fine.
    assert_eq!(
        copy(&mut env, 0, &op(gref(1, 1, 4000), local(1, 0), 96, src)),
        gntst::OKAY
    );
    assert_eq!(
        copy(&mut env, 0, &op(gref(1, 1, 0), local(1, 0), 4096, src)),
        gntst::OKAY
    );
    let bad = [
        op(gref(1, 1, 4000), local(1, 0), 97, src),
        op(local(1, 0), gref(1, 1, 4095), 2, dst),
        op(gref(1, 1, 0), local(1, 1), 4096, src),
        op(gref(1, 1, u16::MAX), local(1, 0), u16::MAX, src),
    ];
    for (i, o) in bad.iter().enumerate() {
        assert_eq!(copy(&mut env, 0, o), gntst::BAD_COPY_ARG, "case {i}");
        assert_eq!(
            env.flags(1, 1),
            gtf::PERMIT_ACCESS,
            "case {i}: pins released"
        );
    }
}

#[test]
fn copy_statuses() {
    let mut env = Env::new(&[0, 1, 2]);
    env.grant(1, 1, 0, 10, true);
    env.grant(1, 2, 2, 11, false);
    env.grant(1, 3, 0, 1000, false);
    let src = gntcopy::SOURCE_GREF;
    let dst = gntcopy::DEST_GREF;
    let cases = [
        // Frames must be named with DOMID_SELF, even the caller's own id.
        (
            op(
                GnttabCopyPtr {
                    domid: 0,
                    ..local(1, 0)
                },
                local(2, 0),
                8,
                0,
            ),
            gntst::PERMISSION_DENIED,
        ),
        (
            op(
                local(1, 0),
                GnttabCopyPtr {
                    domid: 1,
                    ..local(2, 0)
                },
                8,
                0,
            ),
            gntst::PERMISSION_DENIED,
        ),
        (op(gref(5, 1, 0), local(2, 0), 8, src), gntst::BAD_DOMAIN),
        (op(local(2, 0), gref(5, 1, 0), 8, dst), gntst::BAD_DOMAIN),
        (op(gref(1, 512, 0), local(2, 0), 8, src), gntst::BAD_GNTREF),
        // Read-only grant as a destination; a grant for someone else; a frame not RAM.
        (op(local(2, 0), gref(1, 1, 0), 8, dst), gntst::GENERAL_ERROR),
        (op(gref(1, 2, 0), local(2, 0), 8, src), gntst::GENERAL_ERROR),
        (op(gref(1, 3, 0), local(2, 0), 8, src), gntst::BAD_PAGE),
        (op(local(500, 0), local(2, 0), 8, 0), gntst::BAD_PAGE),
        (op(gref(1, 1, 0), local(500, 0), 8, src), gntst::BAD_PAGE),
    ];
    for (i, (o, status)) in cases.iter().enumerate() {
        assert_eq!(copy(&mut env, 0, o), *status, "case {i}");
    }
    // The same operations as one batch, each failing one between two good copies, with
    // translations memoised across the batch: every element gets its own status and the
    // good ones all land.
    env.mem.write(at(page(1, 10), 0), b"granted!");
    let good = op(gref(1, 1, 0), local(2, 0), 8, src);
    let mut batch = alloc::vec![good];
    for (o, _) in &cases {
        batch.extend([*o, good]);
    }
    let cache = crate::xen::FrameCache::new();
    env.mem.write(page(0, 2), &[0; 8]);
    env.gt.copy_batch(&mut env.mem, 0, &mut batch, |d, g| {
        cache.get(d, g, || ram(d, g))
    });
    let mut want = alloc::vec![gntst::OKAY];
    for (_, status) in &cases {
        want.extend([*status, gntst::OKAY]);
    }
    let got: alloc::vec::Vec<i16> = batch.iter().map(|o| o.status).collect();
    assert_eq!(got, want);
    assert_eq!(env.mem.read(page(0, 2), 8), b"granted!");
    for g in [1, 2, 3] {
        assert_eq!(
            env.flags(1, g) & (gtf::READING | gtf::WRITING),
            0,
            "gref {g}"
        );
    }
}

#[test]
fn copy_alongside_a_mapping_keeps_the_mappings_flags() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 10, false);
    let m = env.map(0, 1, 1, true, host(0).as_u64()).unwrap();
    let o = op(local(2, 0), gref(1, 1, 0), 4, gntcopy::DEST_GREF);
    assert_eq!(copy(&mut env, 0, &o), gntst::OKAY);
    assert_eq!(
        env.flags(1, 1),
        gtf::PERMIT_ACCESS | gtf::READING,
        "writer gone, reader stays"
    );
    let _ = env.unmap(0, m.handle, host(0).as_u64()).unwrap();
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS);
}

#[test]
fn failed_destination_releases_the_source() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 10, false);
    env.grant(1, 2, 0, 11, true);
    let both = gntcopy::SOURCE_GREF | gntcopy::DEST_GREF;
    let o = op(gref(1, 1, 0), gref(1, 2, 0), 4, both);
    assert_eq!(copy(&mut env, 0, &o), gntst::GENERAL_ERROR);
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS);
    assert!(env.gt.table(1).unwrap().active.is_empty());
}

#[test]
fn copies_pin_by_flags_alone_and_leave_the_entry_as_found() {
    let mut env = Env::new(&[0, 1]);
    env.grant(1, 1, 0, 10, false);
    env.grant(1, 2, 0, 11, false);
    let both = gntcopy::SOURCE_GREF | gntcopy::DEST_GREF;
    for o in [
        op(gref(1, 1, 0), local(3, 0), 4096, gntcopy::SOURCE_GREF),
        op(local(3, 0), gref(1, 2, 0), 4096, gntcopy::DEST_GREF),
        op(gref(1, 1, 0), gref(1, 1, 2048), 2048, both),
    ] {
        assert_eq!(copy(&mut env, 0, &o), gntst::OKAY);
        assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS);
        assert_eq!(env.flags(1, 2), gtf::PERMIT_ACCESS);
        assert!(env.gt.table(1).unwrap().active.is_empty(), "no record kept");
    }
    // A writable mapping made meanwhile keeps both flags through a copy into the entry
    // and out of it, and drops them when unmapped.
    let m = env.map(0, 1, 1, false, host(0).as_u64()).unwrap();
    assert_eq!(
        copy(&mut env, 0, &op(gref(1, 1, 0), gref(1, 1, 8), 8, both)),
        gntst::OKAY
    );
    assert_eq!(
        env.flags(1, 1),
        gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING
    );
    let _ = env.unmap(0, m.handle, host(0).as_u64()).unwrap();
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS);
    assert!(env.gt.table(1).unwrap().active.is_empty());
}
