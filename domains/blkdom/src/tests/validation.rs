//! The validation table: one test per reason a request halts its ring, and that a halt
//! stops only that ring.

use super::fakes::*;
use crate::io::RingMem;
use crate::{Config, HaltReason, Malformed, RingError, VbdConfig, VbdState, VbdTable};
use protocol::xen::blkif::*;
use protocol::xen::xenbus::XenbusState;

/// Sends `slot` after one good request; expects the good one answered, then a halt for
/// `why`, reported once, with the vbd moved to Closing and nothing more consumed.
fn halts(r: Rig, slot: [u8; RING_SLOT_BYTES], why: Malformed) {
    halts_taking(r, slot, why, 2);
}

/// [`halts`] for a request found malformed only when its batch runs (an indirect
/// request's descriptors): the slot after it was already copied out with the batch
/// (`taken` slots in all), but it is neither performed nor answered.
fn halts_taking(mut r: Rig, slot: [u8; RING_SLOT_BYTES], why: Malformed, taken: u32) {
    r.table.get_mut(r.id).unwrap().handshake.start();
    r.grants.grant(1, vec![0; 4096], false);
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::Read, 1, 0, &[seg(1, 0, 0)]));
    r.front.queue(&mut r.ring, &slot);
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::Read, 3, 0, &[seg(1, 0, 0)]));
    r.front.push(&mut r.ring);
    let p = r.poll();
    assert_eq!(p.halted, Some(HaltReason::Malformed(why)));
    assert_eq!(
        p.step.actions,
        [crate::Action::SetState(XenbusState::Closing)]
    );
    assert!(p.notify, "the good request's response is still announced");
    assert_eq!(r.front.responses(&mut r.ring), [(1, 0, 0)]);
    let v = r.table.get(r.id).unwrap();
    assert_eq!(v.state(), VbdState::Halted(HaltReason::Malformed(why)));
    assert_eq!(v.last_halt, Some(HaltReason::Malformed(why)));
    assert_eq!(
        v.ring().unwrap().req_cons(),
        taken,
        "the request after it is not read"
    );
    // Polling again does nothing and does not report again.
    let again = r.poll();
    assert_eq!(
        (again.halted, again.notify, again.more),
        (None, false, false)
    );
    assert_eq!(r.disk.log, ["read 0 1"]);
}

fn rig() -> Rig {
    Rig::new(0, FakeDisk::new(64), false)
}

#[test]
fn unknown_operation() {
    let mut s = rw(BlkifOp::Read, 2, 0, &[seg(1, 0, 0)]);
    s[0] = 7;
    halts(rig(), s, Malformed::UnknownOp(7));
    let mut s = rw(BlkifOp::Read, 2, 0, &[seg(1, 0, 0)]);
    s[0] = 0xFF;
    halts(rig(), s, Malformed::UnknownOp(0xFF));
}

#[test]
fn reserved_operation() {
    let s = rw(BlkifOp::Reserved1, 2, 0, &[seg(1, 0, 0)]);
    halts(rig(), s, Malformed::UnknownOp(4));
}

#[test]
fn read_or_write_without_segments() {
    halts(
        rig(),
        rw(BlkifOp::Read, 2, 0, &[]),
        Malformed::SegmentCount(0),
    );
    halts(
        rig(),
        rw(BlkifOp::Write, 2, 0, &[]),
        Malformed::SegmentCount(0),
    );
}

#[test]
fn too_many_direct_segments() {
    let mut s = rw(BlkifOp::Write, 2, 0, &[seg(1, 0, 0)]);
    s[1] = 12;
    halts(rig(), s, Malformed::SegmentCount(12));
    let mut s = rw(BlkifOp::FlushDiskcache, 2, 0, &[]);
    s[1] = 200;
    halts(rig(), s, Malformed::SegmentCount(200));
}

#[test]
fn segment_sectors_reversed() {
    let s = rw(BlkifOp::Read, 2, 0, &[seg(1, 0, 7), seg(1, 5, 4)]);
    let why = Malformed::Segment {
        index: 1,
        first: 5,
        last: 4,
    };
    halts(rig(), s, why);
}

#[test]
fn segment_past_its_page() {
    let s = rw(BlkifOp::Write, 2, 0, &[seg(1, 3, 8)]);
    let why = Malformed::Segment {
        index: 0,
        first: 3,
        last: 8,
    };
    halts(rig(), s, why);
}

#[test]
fn sectors_past_the_end_of_the_vbd() {
    let s = rw(BlkifOp::Read, 2, 60, &[seg(1, 0, 4)]);
    let why = Malformed::OutOfRange {
        sector: 60,
        count: 5,
    };
    halts(rig(), s, why);
    let s = rw(BlkifOp::Write, 2, u64::MAX, &[seg(1, 0, 0)]);
    let why = Malformed::OutOfRange {
        sector: u64::MAX,
        count: 1,
    };
    halts(rig(), s, why);
}

#[test]
fn discard_past_the_end_of_the_vbd() {
    let why = Malformed::OutOfRange {
        sector: 1,
        count: 64,
    };
    halts(rig(), discard(2, 1, 64, 0), why);
    let why = Malformed::OutOfRange {
        sector: 2,
        count: u64::MAX,
    };
    halts(rig(), discard(2, 2, u64::MAX, 0), why);
}

#[test]
fn indirect_with_a_bad_inner_operation() {
    for op in [BlkifOp::FlushDiskcache, BlkifOp::Indirect, BlkifOp::Discard] {
        let s = indirect(op, 2, 0, 1, &[5]);
        halts(rig(), s, Malformed::IndirectOp(op as u8));
    }
}

#[test]
fn indirect_segment_count_zero_or_above_the_advertised_max() {
    halts(
        rig(),
        indirect(BlkifOp::Read, 2, 0, 0, &[5]),
        Malformed::SegmentCount(0),
    );
    let over = crate::DEFAULT_MAX_INDIRECT_SEGMENTS + 1;
    halts(
        rig(),
        indirect(BlkifOp::Read, 2, 0, over, &[5]),
        Malformed::SegmentCount(over),
    );
}

#[test]
fn indirect_not_offered() {
    let cfg = Config {
        max_ring_page_order: 0,
        max_indirect_segments: 0,
        ..Config::default()
    };
    let r = Rig::with(0, 0, FakeDisk::new(64), false, cfg);
    halts(
        r,
        indirect(BlkifOp::Read, 2, 0, 1, &[5]),
        Malformed::SegmentCount(1),
    );
}

#[test]
fn malformed_descriptor_in_an_indirect_page() {
    let mut r = rig();
    let mut pg = vec![0u8; 4096];
    pg[..8].copy_from_slice(zerocopy::IntoBytes::as_bytes(&seg(1, 0, 7)));
    pg[8..16].copy_from_slice(zerocopy::IntoBytes::as_bytes(&seg(1, 2, 9)));
    r.grants.grant(5, pg, true);
    let why = Malformed::Segment {
        index: 1,
        first: 2,
        last: 9,
    };
    halts_taking(r, indirect(BlkifOp::Read, 2, 0, 2, &[5]), why, 3);
}

#[test]
fn indirect_range_past_the_end() {
    let mut r = rig();
    let mut pg = vec![0u8; 4096];
    for i in 0..9 {
        pg[i * 8..i * 8 + 8].copy_from_slice(zerocopy::IntoBytes::as_bytes(&seg(1, 0, 7)));
    }
    r.grants.grant(5, pg, true);
    let why = Malformed::OutOfRange {
        sector: 0,
        count: 72,
    };
    halts_taking(r, indirect(BlkifOp::Read, 2, 0, 9, &[5]), why, 3);
}

#[test]
fn corrupt_request_index_halts_before_reading_any_slot() {
    let mut r = rig();
    r.table.get_mut(r.id).unwrap().handshake.start();
    r.ring.store_index(RING_REQ_PROD, 33);
    let p = r.poll();
    let why = HaltReason::Ring(RingError::Corrupt {
        req_prod: 33,
        rsp_prod: 0,
    });
    assert_eq!(p.halted, Some(why));
    assert_eq!(r.table.get(r.id).unwrap().ring().unwrap().req_cons(), 0);
    assert!(r.disk.log.is_empty());
    // Index moving backwards is corruption too.
    let mut r = rig();
    r.ring.store_index(RING_REQ_PROD, u32::MAX);
    assert!(matches!(r.poll().halted, Some(HaltReason::Ring(_))));
}

#[test]
fn halting_one_vbd_leaves_the_others_serving() {
    let mut table = VbdTable::new(Config::default());
    let mut disks = [FakeDisk::new(64), FakeDisk::new(64)];
    let ids: Vec<_> = (0..2)
        .map(|i| {
            let cfg = VbdConfig {
                frontend: FRONT,
                devid: 51712 + 16 * i as u32,
                disk: i,
                read_only: false,
            };
            table.add(cfg, disks[i].info)
        })
        .collect();
    let mut rings = [FakeRing::new(0), FakeRing::new(0)];
    let mut fronts = [Front::new(0), Front::new(0)];
    for i in 0..2 {
        table.connect(ids[i], 0, &mut rings[i]).unwrap();
    }
    let mut grants = FakeGrants::default();
    grants.grant(1, vec![0; 4096], false);
    let mut bad = rw(BlkifOp::Read, 1, 0, &[seg(1, 0, 0)]);
    bad[0] = 9;
    fronts[0].send(&mut rings[0], &bad);
    fronts[1].send(&mut rings[1], &rw(BlkifOp::Read, 2, 0, &[seg(1, 0, 0)]));
    let p0 = table.poll(ids[0], &mut rings[0], &mut disks[0], &mut grants);
    assert!(p0.halted.is_some());
    let p1 = table.poll(ids[1], &mut rings[1], &mut disks[1], &mut grants);
    assert!(p1.halted.is_none());
    assert_eq!(fronts[1].responses(&mut rings[1]), [(2, 0, 0)]);
    fronts[1].send(&mut rings[1], &rw(BlkifOp::Read, 3, 8, &[seg(1, 0, 0)]));
    let p1 = table.poll(ids[1], &mut rings[1], &mut disks[1], &mut grants);
    assert!(p1.notify);
    assert_eq!(fronts[1].responses(&mut rings[1]), [(3, 0, 0)]);
    assert_eq!(table.get(ids[1]).unwrap().state(), VbdState::Connected);
    assert_eq!(table.find(FRONT, 51712 + 16), Some(ids[1]));
    assert_eq!(table.iter().count(), 2);
}

#[test]
fn halt_reasons_read_as_one_log_line() {
    let m = HaltReason::Malformed(Malformed::Segment {
        index: 2,
        first: 3,
        last: 9,
    });
    assert_eq!(
        m.to_string(),
        "malformed request: segment 2 covers sectors 3..=9 of its page"
    );
    let r = HaltReason::Ring(RingError::Corrupt {
        req_prod: 0x40,
        rsp_prod: 0,
    });
    assert_eq!(
        r.to_string(),
        "ring indexes are corrupt (req_prod 0x40, rsp_prod 0x0)"
    );
    let e = crate::HandshakeError::Protocol("x86_32-abi".into());
    assert_eq!(
        e.to_string(),
        "frontend protocol x86_32-abi is not supported"
    );
}
