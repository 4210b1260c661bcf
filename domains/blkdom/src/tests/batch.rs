//! Batches: several requests in flight on the disk at once, one grant copy per phase,
//! answers in ring order whatever order the disk completes in, and the cases that end a
//! batch early (a flush, a malformed indirect request, a failed grant).

use super::fakes::*;
use crate::io::RingMem;
use crate::{HaltReason, Malformed};
use proptest::prelude::*;
use protocol::xen::blkif::*;

const OK: i16 = BlkifStatus::Okay as i16;
const ERR: i16 = BlkifStatus::Error as i16;

/// Grants data pages 100.. (writable) for `n` one-page requests.
fn pages(r: &mut Rig, n: u32) {
    for i in 0..n {
        r.grants.grant(100 + i, page(i as u8), false);
    }
}

#[test]
fn a_drain_keeps_the_disk_busy_and_copies_once_per_phase() {
    let mut r = Rig::new(0, FakeDisk::new(256), false);
    pages(&mut r, 8);
    for i in 0..8u32 {
        let op = if i % 2 == 0 {
            BlkifOp::Read
        } else {
            BlkifOp::Write
        };
        let s = rw(op, u64::from(i), u64::from(i) * 8, &[seg(100 + i, 0, 7)]);
        r.front.queue(&mut r.ring, &s);
    }
    r.front.push(&mut r.ring);
    let p = r.poll();
    assert!(p.notify && !p.more && p.halted.is_none());
    // The fake completes newest first; the answers still come in ring order.
    let ids: Vec<u64> = r.front.responses(&mut r.ring).iter().map(|x| x.0).collect();
    assert_eq!(ids, (0..8).collect::<Vec<_>>());
    assert_eq!(r.disk.max_in_flight, 8);
    // One copy in (the writes' data), one copy out (the reads').
    assert_eq!(r.grants.calls, 2);
    for i in (0..8u32).step_by(2) {
        let at = i as usize * 8 * 512;
        assert_eq!(r.grants.page(100 + i), &r.disk.data[at..at + 4096]);
    }
    for i in (1..8u32).step_by(2) {
        let at = i as usize * 8 * 512;
        assert_eq!(&r.disk.data[at..at + 4096], &page(i as u8)[..]);
    }
}

#[test]
fn the_disk_depth_bounds_a_batch() {
    let mut d = FakeDisk::new(256);
    d.depth = 3;
    let mut r = Rig::new(0, d, false);
    pages(&mut r, 10);
    for i in 0..10u32 {
        r.front.queue(
            &mut r.ring,
            &rw(BlkifOp::Read, u64::from(i), 0, &[seg(100 + i, 0, 0)]),
        );
    }
    r.front.push(&mut r.ring);
    r.poll();
    assert_eq!(r.front.responses(&mut r.ring).len(), 10);
    assert_eq!(r.disk.max_in_flight, 3);
    // Four batches of at most three reads, one copy out each.
    assert_eq!(r.grants.calls, 4);
}

#[test]
fn a_flush_waits_for_the_writes_before_it_and_ends_the_batch() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    pages(&mut r, 4);
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::Write, 1, 0, &[seg(100, 0, 7)]));
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::Write, 2, 8, &[seg(101, 0, 7)]));
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::FlushDiskcache, 3, 0, &[]));
    r.front.queue(
        &mut r.ring,
        &rw(BlkifOp::WriteBarrier, 4, 16, &[seg(102, 0, 7)]),
    );
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::Read, 5, 16, &[seg(103, 0, 7)]));
    r.front.push(&mut r.ring);
    r.poll();
    let rsp = r.front.responses(&mut r.ring);
    assert_eq!(
        rsp.iter().map(|x| (x.0, x.2)).collect::<Vec<_>>(),
        [(1, OK), (2, OK), (3, OK), (4, OK), (5, OK)]
    );
    // The fake asserts that nothing is in flight at a flush. A barrier write flushes before
    // and after itself.
    assert_eq!(
        r.disk.log,
        [
            "write 0 8",
            "write 8 8",
            "flush",
            "flush",
            "write 16 8",
            "flush",
            "read 16 8"
        ]
    );
    assert_eq!(
        r.grants.page(103),
        &page(2)[..],
        "the read sees the barrier's data"
    );
}

#[test]
fn a_failed_grant_fails_only_its_own_request_of_the_batch() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    pages(&mut r, 2);
    let before = r.disk.data.clone();
    // Writes 1 and 3 are fine; write 2 names a grant the frontend never made. Read 4's page
    // is read-only, so its copy out fails.
    r.grants.grant(104, page(9), true);
    for (id, gref, sector) in [(1, 100, 0), (2, 555, 8), (3, 101, 16)] {
        r.front.queue(
            &mut r.ring,
            &rw(BlkifOp::Write, id, sector, &[seg(gref, 0, 7)]),
        );
    }
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::Read, 4, 0, &[seg(104, 0, 7)]));
    r.front.push(&mut r.ring);
    let p = r.poll();
    assert!(p.halted.is_none());
    let rsp = r.front.responses(&mut r.ring);
    assert_eq!(
        rsp.iter().map(|x| (x.0, x.2)).collect::<Vec<_>>(),
        [(1, OK), (2, ERR), (3, OK), (4, ERR)]
    );
    assert_eq!(r.disk.log, ["write 0 8", "write 16 8", "read 0 8"]);
    assert_eq!(&r.disk.data[8 * 512..16 * 512], &before[8 * 512..16 * 512]);
    assert_eq!(r.table.get(r.id).unwrap().counters.errors, 2);
}

#[test]
fn a_malformed_indirect_request_cuts_its_batch_after_the_earlier_ones() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    pages(&mut r, 2);
    // Descriptor page 5: a segment whose sectors run backwards.
    let mut pg = vec![0u8; 4096];
    pg[..8].copy_from_slice(zerocopy::IntoBytes::as_bytes(&seg(100, 3, 1)));
    r.grants.grant(5, pg, true);
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::Read, 1, 0, &[seg(100, 0, 7)]));
    r.front
        .queue(&mut r.ring, &indirect(BlkifOp::Read, 2, 8, 1, &[5]));
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::Write, 3, 16, &[seg(101, 0, 7)]));
    r.front.push(&mut r.ring);
    let p = r.poll();
    let why = Malformed::Segment {
        index: 0,
        first: 3,
        last: 1,
    };
    assert_eq!(p.halted, Some(HaltReason::Malformed(why)));
    assert_eq!(r.front.responses(&mut r.ring), [(1, 0, OK)]);
    assert_eq!(
        r.disk.log,
        ["read 0 8"],
        "the write after it is not performed"
    );
    assert_eq!(r.ring.load_index(RING_RSP_PROD), 1);
}

#[test]
fn replay_after_dying_mid_batch_answers_every_request_once_in_order() {
    for die_after in 0..40 {
        let mut r = Rig::new(0, FakeDisk::new(64), false);
        pages(&mut r, 4);
        for i in 0..4u32 {
            let s = rw(
                BlkifOp::Read,
                10 + u64::from(i),
                u64::from(i) * 8,
                &[seg(100 + i, 0, 7)],
            );
            r.front.queue(&mut r.ring, &s);
        }
        r.front.push(&mut r.ring);
        r.ring.die_after = Some(r.ring.writes + die_after);
        r.poll();
        // A new instance attaches to what the old one left.
        r.ring.die_after = None;
        r.table.connect(r.id, 0, &mut r.ring).unwrap();
        r.poll();
        let ids: Vec<u64> = r.front.responses(&mut r.ring).iter().map(|x| x.0).collect();
        assert_eq!(ids, [10, 11, 12, 13], "died after {die_after} stores");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any mix of reads, writes (to distinct places), flushes and bad grants, at any disk
    /// depth: every request is answered once, in ring order, with its own outcome, and
    /// the disk ends up as if the requests had run one by one.
    #[test]
    fn batches_answer_in_ring_order(
        ops in proptest::collection::vec((0u8..4, any::<bool>()), 1..=32),
        depth in 1usize..10,
        start in any::<u32>(),
    ) {
        let mut d = FakeDisk::new(512);
        d.depth = depth;
        let mut r = Rig::with(0, start, d, false, crate::Config::default());
        let mut model = r.disk.data.clone();
        let mut expect = Vec::new();
        for (i, &(kind, bad)) in ops.iter().enumerate() {
            let i = i as u32;
            let gref = if bad { 9_000 + i } else { 100 + i };
            if !bad {
                r.grants.grant(gref, page(i as u8), false);
            }
            // Each request has its own 4 KiB of disk, so batch order cannot matter.
            let sector = u64::from(i) * 8;
            let slot = match kind {
                0 => rw(BlkifOp::Read, u64::from(i), sector, &[seg(gref, 0, 7)]),
                1 | 2 => rw(BlkifOp::Write, u64::from(i), sector, &[seg(gref, 0, 7)]),
                _ => rw(BlkifOp::FlushDiskcache, u64::from(i), 0, &[]),
            };
            if matches!(kind, 1 | 2) && !bad {
                let at = sector as usize * 512;
                model[at..at + 4096].copy_from_slice(&page(i as u8));
            }
            let fails = bad && kind != 3;
            expect.push((u64::from(i), if fails { ERR } else { OK }));
            r.front.send(&mut r.ring, &slot);
        }
        let mut got = Vec::new();
        for _ in 0..4 {
            let p = r.poll();
            prop_assert!(p.halted.is_none());
            got.extend(r.front.responses(&mut r.ring).iter().map(|x| (x.0, x.2)));
        }
        prop_assert_eq!(got, expect);
        prop_assert!(r.disk.max_in_flight <= depth);
        prop_assert!(r.disk.data == model);
    }
}
