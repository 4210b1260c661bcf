//! Ring mechanics: wrap-around, multi-page rings, ordering, notify and event rules, budget,
//! restart attach.

use super::fakes::*;
use crate::io::RingMem;
use crate::{BackRing, Config, RingError};
use protocol::xen::blkif::*;

fn reads(r: &mut Rig, n: u64, first_id: u64) {
    for i in 0..n {
        let s = rw(BlkifOp::Read, first_id + i, i % 64, &[seg(1, 0, 0)]);
        r.front.queue(&mut r.ring, &s);
    }
    r.front.push(&mut r.ring);
}

#[test]
fn indexes_wrap_past_u32_max() {
    for start in [u32::MAX - 3, u32::MAX, u32::MAX - 40, 0u32.wrapping_sub(32)] {
        let mut r = Rig::with(0, start, FakeDisk::new(64), false, Config::default());
        r.grants.grant(1, vec![0; 4096], false);
        let mut next = 0;
        for batch in [5u64, 32, 1, 20, 32] {
            reads(&mut r, batch, next);
            let p = r.poll();
            assert!(p.halted.is_none() && !p.more);
            let got: Vec<u64> = r.front.responses(&mut r.ring).iter().map(|x| x.0).collect();
            assert_eq!(
                got,
                (next..next + batch).collect::<Vec<_>>(),
                "start {start:#x}"
            );
            next += batch;
        }
        let ring = *r.table.get(r.id).unwrap().ring().unwrap();
        assert_eq!(ring.req_cons(), start.wrapping_add(next as u32));
        assert_eq!(ring.rsp_prod_pvt(), ring.req_cons());
    }
}

#[test]
fn multi_page_rings_serve_slots_that_straddle_pages() {
    for order in 1..=MAX_RING_PAGE_ORDER {
        let mut r = Rig::new(order, FakeDisk::new(64), false);
        r.grants.grant(1, vec![0; 4096], false);
        let n = u64::from(ring_entries(order).unwrap());
        // Fill the whole ring twice; FakeRing panics if an access crosses a page.
        for round in 0..2 {
            reads(&mut r, n, round * n);
            let p = r.poll();
            assert!(!p.more && p.halted.is_none(), "order {order}");
            assert_eq!(r.front.responses(&mut r.ring).len() as u64, n);
        }
    }
}

#[test]
fn responses_come_back_in_ring_order() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    r.grants.grant(1, vec![0; 4096], false);
    let mut bad_write = rw(BlkifOp::Write, 11, 0, &[seg(99, 0, 0)]);
    bad_write[2] = 0; // handle is ignored
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::Read, 10, 0, &[seg(1, 0, 0)]));
    r.front.queue(&mut r.ring, &bad_write);
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::FlushDiskcache, 12, 0, &[]));
    r.front.queue(&mut r.ring, &discard(13, 0, 1, 0));
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::Write, 14, 3, &[seg(1, 0, 0)]));
    r.front.push(&mut r.ring);
    r.poll();
    assert_eq!(
        r.front.responses(&mut r.ring),
        [(10, 0, 0), (11, 1, -1), (12, 3, 0), (13, 5, -2), (14, 1, 0)]
    );
    assert_eq!(r.disk.log, ["read 0 1", "flush", "write 3 1"]);
}

#[test]
fn notify_follows_rsp_event() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    r.grants.grant(1, vec![0; 4096], false);
    // The frontend wants to hear at response 3 (rsp_event = 3): two responses, no event.
    r.ring.store_index(RING_RSP_EVENT, 3);
    reads(&mut r, 2, 0);
    assert!(!r.poll().notify);
    // The third response crosses rsp_event.
    reads(&mut r, 1, 2);
    assert!(r.poll().notify);
    // rsp_event left behind (frontend not waiting): no event.
    reads(&mut r, 2, 3);
    assert!(!r.poll().notify);
    // Nothing new: no event.
    assert!(!r.poll().notify);
}

#[test]
fn final_check_arms_req_event_and_sees_late_requests() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    r.grants.grant(1, vec![0; 4096], false);
    reads(&mut r, 3, 0);
    r.poll();
    assert_eq!(
        r.ring.load_index(RING_REQ_EVENT),
        4,
        "req_event = req_cons + 1"
    );
    // A ring left with requests after the budget is not re-armed but says `more`.
    let mut ring = BackRing::new(0).unwrap();
    let mut mem = FakeRing::new(0);
    mem.store_index(RING_REQ_PROD, 2);
    assert_eq!(ring.final_check(&mut mem), Ok(2));
    assert_eq!(
        mem.load_index(RING_REQ_EVENT),
        1,
        "untouched while work is waiting"
    );
}

#[test]
fn budget_is_one_ring_per_poll() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    r.grants.grant(1, vec![0; 4096], false);
    reads(&mut r, 32, 0);
    // The frontend keeps producing as responses appear: 10 more arrive during the poll.
    r.ring.refill = Some((rw(BlkifOp::Read, 99, 0, &[seg(1, 0, 0)]), 10));
    let p = r.poll();
    assert!(p.more && p.halted.is_none());
    assert_eq!(r.front.responses(&mut r.ring).len(), 32);
    r.front.req_prod_pvt = r.ring.load_index(RING_REQ_PROD);
    let p = r.poll();
    assert!(!p.more);
    assert_eq!(r.front.responses(&mut r.ring).len(), 10);
}

#[test]
fn attach_replays_from_the_published_response_index() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    r.grants.grant(1, vec![0; 4096], false);
    reads(&mut r, 4, 0);
    r.poll();
    assert_eq!(r.front.responses(&mut r.ring).len(), 4);
    // Three more requests arrive; the backend dies before answering them.
    reads(&mut r, 3, 4);
    // A new instance attaches to the same ring: rsp_prod = 4, req_prod = 7.
    let ring = BackRing::attach(0, &mut r.ring).unwrap();
    assert_eq!((ring.req_cons(), ring.rsp_prod_pvt()), (4, 4));
    assert_eq!(ring.pending(&r.ring), Ok(3));
    r.table.connect(r.id, 0, &mut r.ring).unwrap();
    r.disk.log.clear();
    r.poll();
    assert_eq!(
        r.front
            .responses(&mut r.ring)
            .iter()
            .map(|x| x.0)
            .collect::<Vec<_>>(),
        [4, 5, 6]
    );
    assert_eq!(r.disk.log.len(), 3);
    // A published rsp_prod that is more than a ring behind req_prod is corruption.
    r.ring.store_index(RING_RSP_PROD, 100);
    let ring = BackRing::attach(0, &mut r.ring).unwrap();
    assert!(matches!(
        ring.pending(&r.ring),
        Err(RingError::Corrupt { .. })
    ));
    assert_eq!(BackRing::new(5), Err(RingError::BadOrder(5)));
}

#[test]
fn replay_is_exact_whichever_store_the_old_instance_died_at() {
    // id 0x105 makes a response's first bytes read as a one-segment discard: replaying a
    // half-overwritten slot without the journal would discard sector 8.
    let req = rw(BlkifOp::Read, 0x105, 8, &[seg(1, 0, 0)]);
    let disk = || {
        let mut d = FakeDisk::new(64);
        d.info.discard = Some(crate::DiscardInfo {
            granularity: 512,
            alignment: 0,
            secure: false,
        });
        d
    };
    let mut died_unpublished = 0;
    for die_after in 0..12 {
        let mut r = Rig::new(0, disk(), false);
        r.grants.grant(1, vec![0; 4096], false);
        reads(&mut r, 2, 0);
        r.poll();
        r.front.responses(&mut r.ring);
        r.front.send(&mut r.ring, &req);
        r.ring.die_after = Some(r.ring.writes + die_after);
        r.poll();
        let published = r.ring.load_index(RING_RSP_PROD);
        died_unpublished += usize::from(published == 2);
        // The new instance: the stores are back, the ring is attached afresh.
        r.ring.die_after = None;
        r.table.connect(r.id, 0, &mut r.ring).unwrap();
        r.disk.log.clear();
        r.poll();
        let rsp = r.front.responses(&mut r.ring);
        assert_eq!(rsp, [(0x105, 0, 0)], "died after {die_after} stores");
        assert!(r.disk.log.iter().all(|l| !l.starts_with("discard")));
        assert_eq!(&r.grants.page(1)[..512], &r.disk.data[8 * 512..9 * 512]);
    }
    assert!(died_unpublished >= 4, "the crash window was exercised");
}
