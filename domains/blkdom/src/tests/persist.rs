//! Persistent grants: the kept-map table itself, and batches that use it (maps kept for
//! the connection, the limit, refusals falling back, release on disconnect and replace).

use super::fakes::*;
use crate::persist::{PersistentGrants, Refused};
use crate::{Config, Kept, VbdConfig};
use protocol::xen::blkif::*;

const OK: i16 = BlkifStatus::Okay as i16;
const ERR: i16 = BlkifStatus::Error as i16;

fn kept(n: u32) -> Kept {
    Kept {
        handle: n,
        addr: u64::from(n) << 12,
    }
}

#[test]
fn table_lookup_limit_and_drain() {
    let (mut a, mut b) = (PersistentGrants::new(), PersistentGrants::new());
    let mut total = 0;
    assert_eq!(a.insert(10, kept(1), &mut total, 3), Ok(()));
    assert_eq!(a.insert(10, kept(2), &mut total, 3), Err(Refused::Known));
    assert_eq!(
        b.insert(10, kept(3), &mut total, 3),
        Ok(()),
        "refs are per table"
    );
    assert_eq!(b.insert(11, kept(4), &mut total, 3), Ok(()));
    // The limit is shared through `total`.
    assert_eq!(a.insert(12, kept(5), &mut total, 3), Err(Refused::Full));
    assert_eq!(
        (a.get(10), a.get(11), b.get(11)),
        (Some(1 << 12), None, Some(4 << 12))
    );
    let mut out = Vec::new();
    b.drain_into(&mut out, &mut total);
    out.sort_by_key(|k| k.handle);
    assert_eq!(b.get(10), None, "drained");
    assert_eq!(
        (out, total, b.is_empty()),
        (vec![kept(3), kept(4)], 1, true)
    );
    assert_eq!(a.insert(12, kept(5), &mut total, 3), Ok(()));
    assert_eq!((a.len(), total), (2, 2));
}

#[test]
fn table_grows_and_finds_every_ref_among_colliding_ones() {
    // Consecutive refs (as blkfront allocates them), strided ones that share low bits,
    // and large ones: every one is found after the table grew past several sizes.
    let refs: Vec<u32> = (0..200)
        .chain((0..200).map(|i| 1000 + i * 1024))
        .chain((0..112).map(|i| u32::MAX - i * 7))
        .collect();
    let mut t = PersistentGrants::new();
    let mut total = 0;
    for (n, &g) in refs.iter().enumerate() {
        assert_eq!(
            t.insert(g, kept(n as u32), &mut total, 512),
            Ok(()),
            "ref {g}"
        );
        assert_eq!(t.get(g), Some(u64::from(n as u32) << 12));
    }
    assert_eq!((t.len(), total), (512, 512));
    for (n, &g) in refs.iter().enumerate() {
        assert_eq!(t.get(g), Some(u64::from(n as u32) << 12), "ref {g}");
    }
    for g in [200, 1001, 1000 + 200 * 1024, u32::MAX - 1] {
        assert_eq!(t.get(g), None, "never inserted: {g}");
    }
    assert_eq!(t.insert(5, kept(9), &mut total, 512), Err(Refused::Known));
    assert_eq!(
        t.insert(7_000_000, kept(9), &mut total, 512),
        Err(Refused::Full)
    );
    let mut out = Vec::new();
    t.drain_into(&mut out, &mut total);
    let mut handles: Vec<u32> = out.iter().map(|k| k.handle).collect();
    handles.sort_unstable();
    assert_eq!(
        handles,
        (0..512).collect::<Vec<_>>(),
        "every map handed back once"
    );
    assert_eq!((t.len(), total, t.get(5)), (0, 0, None));
    // Usable again after the drain.
    assert_eq!(t.insert(5, kept(1), &mut total, 512), Ok(()));
    assert_eq!(t.get(5), Some(1 << 12));
}

/// A persistent rig over a 512-sector disk with writable data pages 100..100+n.
fn rig(n: u32, cfg: Config) -> Rig {
    let mut r = Rig::with(0, 0, FakeDisk::new(512), false, cfg).persistent();
    for i in 0..n {
        r.grants.grant(100 + i, page(i as u8), false);
    }
    r
}

fn batch(r: &mut Rig, reqs: &[(BlkifOp, u64, u32)]) -> Vec<(u64, u8, i16)> {
    for (k, &(op, sector, gref)) in reqs.iter().enumerate() {
        r.front
            .queue(&mut r.ring, &rw(op, k as u64, sector, &[seg(gref, 0, 7)]));
    }
    r.front.push(&mut r.ring);
    r.poll();
    r.front.responses(&mut r.ring)
}

#[test]
fn refs_are_mapped_once_per_connection_and_released_on_disconnect() {
    let mut r = rig(4, Config::default());
    let reads: Vec<_> = (0..4)
        .map(|i| (BlkifOp::Read, u64::from(i) * 8, 100 + i))
        .collect();
    r.disk.data[..4 * 4096].fill(0x5a);
    assert!(batch(&mut r, &reads).iter().all(|x| x.2 == OK));
    // The same refs again, now writes (kept maps are writable): no map at all.
    let writes: Vec<_> = (0..4)
        .map(|i| (BlkifOp::Write, 64 + u64::from(i) * 8, 103 - i))
        .collect();
    assert!(batch(&mut r, &writes).iter().all(|x| x.2 == OK));
    {
        let bus = r.grants.bus.borrow();
        assert_eq!(
            (bus.keep_calls, bus.keep_refs),
            (1, 4),
            "one batch, four refs"
        );
        assert_eq!(
            (bus.map_calls, bus.unmap_calls, bus.unkeep_calls),
            (0, 0, 0)
        );
        assert_eq!(bus.mapped.len(), 4, "kept across batches");
    }
    assert_eq!(r.grants.calls, 0, "no grant copy");
    assert!(
        r.disk.log.iter().all(|l| l.starts_with("direct")),
        "{:?}",
        r.disk.log
    );
    // The reads landed in the pages, the writes took them back out.
    assert_eq!(r.grants.page(100), vec![0x5a; 4096]);
    assert_eq!(&r.disk.data[64 * 512..65 * 512], &[0x5a; 512]);
    assert_eq!(r.table.kept_grants(), 4);
    assert_eq!(r.table.get(r.id).unwrap().kept_grants(), 4);
    // The frontend closes: the shell unmaps the ring and releases the kept maps.
    r.table
        .frontend_changed(r.id, protocol::xen::xenbus::XenbusState::Closed, |_| None);
    r.table.release_grants(r.id, &mut r.grants);
    let bus = r.grants.bus.borrow();
    assert!(bus.mapped.is_empty() && bus.kept.is_empty());
    assert_eq!(bus.unkeep_calls, 1);
    drop(bus);
    assert_eq!(r.table.kept_grants(), 0);
    // Nothing left: a second release undoes nothing.
    r.table.release_grants(r.id, &mut r.grants);
    assert_eq!(r.grants.bus.borrow().unkeep_calls, 1);
}

#[test]
fn past_the_limit_requests_move_with_per_batch_maps() {
    let cfg = Config {
        max_persistent_grants: 2,
        ..Config::default()
    };
    let mut r = rig(3, cfg);
    let segs: Vec<_> = (0..3).map(|i| seg(100 + i, 0, 7)).collect();
    assert_eq!(r.one(&rw(BlkifOp::Read, 1, 0, &segs)).1, [(1, 0, OK)]);
    {
        let bus = r.grants.bus.borrow();
        // Two kept; the request needed a third, so it moved by a per-batch map of all
        // three, undone after the batch.
        assert_eq!((bus.keep_refs, bus.map_calls, bus.unmap_calls), (2, 1, 1));
        assert_eq!(bus.mapped.len(), 2);
    }
    assert_eq!(r.table.kept_grants(), 2);
    assert_eq!(r.disk.log, ["direct read 0 24"]);
    // A request within the kept refs needs no map at all.
    let two = [seg(101, 0, 7), seg(100, 0, 7)];
    assert_eq!(r.one(&rw(BlkifOp::Write, 2, 64, &two)).1, [(2, 1, OK)]);
    let bus = r.grants.bus.borrow();
    assert_eq!(
        (bus.keep_calls, bus.map_calls),
        (1, 1),
        "nothing new to keep or map"
    );
}

#[test]
fn a_ref_used_twice_in_a_batch_is_kept_once() {
    let mut r = rig(1, Config::default());
    let reqs = [(BlkifOp::Read, 0, 100), (BlkifOp::Read, 8, 100)];
    assert!(batch(&mut r, &reqs).iter().all(|x| x.2 == OK));
    assert_eq!(r.grants.bus.borrow().keep_refs, 1);
    assert_eq!(r.table.kept_grants(), 1);
}

#[test]
fn refused_keeps_fall_back_to_the_old_paths() {
    let mut r = rig(2, Config::default());
    r.grants.grant(5, page(9), true);
    r.grants.bus.borrow_mut().refuse.insert(101);
    // A write from a read-only grant cannot be kept (kept maps are writable), but maps
    // read-only for its batch.
    assert_eq!(
        r.one(&rw(BlkifOp::Write, 1, 8, &[seg(5, 0, 7)])).1,
        [(1, 1, OK)]
    );
    assert_eq!(&r.disk.data[8 * 512..16 * 512], &page(9)[..]);
    // A read into it fails, as without the feature.
    assert_eq!(
        r.one(&rw(BlkifOp::Read, 2, 0, &[seg(5, 0, 7)])).1,
        [(2, 0, ERR)]
    );
    // A ref the grant table refuses goes by copy; its neighbour is kept.
    let reqs = [(BlkifOp::Read, 0, 100), (BlkifOp::Read, 8, 101)];
    assert!(batch(&mut r, &reqs).iter().all(|x| x.2 == OK));
    assert_eq!(r.table.kept_grants(), 1);
    assert!(
        r.disk.log.contains(&"read 8 8".to_string()),
        "{:?}",
        r.disk.log
    );
    // Every map but the kept one is gone.
    assert_eq!(r.grants.bus.borrow().mapped.len(), 1);
}

#[test]
fn barriers_and_closing_keep_nothing() {
    let mut r = rig(2, Config::default());
    let s = rw(BlkifOp::WriteBarrier, 1, 8, &[seg(100, 0, 7)]);
    assert_eq!(r.one(&s).1[0].2, OK);
    assert_eq!(r.grants.bus.borrow().keep_calls, 0);
    // Once the frontend is closing it is ending its grants: nothing new is kept.
    r.table
        .frontend_changed(r.id, protocol::xen::xenbus::XenbusState::Closing, |_| None);
    assert_eq!(
        r.one(&rw(BlkifOp::Read, 2, 0, &[seg(101, 0, 7)])).1,
        [(2, 0, OK)]
    );
    let bus = r.grants.bus.borrow();
    assert_eq!((bus.keep_calls, bus.map_calls), (0, 1));
    assert!(bus.mapped.is_empty());
}

#[test]
fn a_replaced_vbds_maps_are_released_with_the_next_release() {
    let mut r = rig(2, Config::default());
    let reqs = [(BlkifOp::Read, 0, 100), (BlkifOp::Read, 8, 101)];
    assert!(batch(&mut r, &reqs).iter().all(|x| x.2 == OK));
    let config = VbdConfig {
        frontend: FRONT,
        devid: 51712,
        disk: 0,
        read_only: false,
    };
    r.table.replace(r.id, config, r.disk.info);
    assert_eq!(
        r.table.get(r.id).unwrap().kept_grants(),
        0,
        "the new vbd starts empty"
    );
    assert_eq!(
        r.grants.bus.borrow().kept.len(),
        2,
        "still mapped until released"
    );
    r.table.release_grants(r.id, &mut r.grants);
    assert!(r.grants.bus.borrow().kept.is_empty());
    assert_eq!(r.table.kept_grants(), 0);
}

#[test]
fn not_offered_means_not_kept() {
    let cfg = Config {
        max_persistent_grants: 0,
        ..Config::default()
    };
    let mut r = Rig::with(0, 0, FakeDisk::new(64), false, cfg).direct();
    r.grants.grant(100, page(1), false);
    assert!(r.table.start(r.id).actions.contains(&crate::Action::Write {
        key: "feature-persistent",
        value: "0".into()
    }));
    assert_eq!(
        r.one(&rw(BlkifOp::Read, 1, 0, &[seg(100, 0, 7)])).1,
        [(1, 0, OK)]
    );
    let bus = r.grants.bus.borrow();
    assert_eq!((bus.keep_calls, bus.map_calls, bus.unmap_calls), (0, 1, 1));
}
