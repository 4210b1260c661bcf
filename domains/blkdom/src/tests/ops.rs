//! Every operation, end to end through the ring, disk and grants.

use super::fakes::*;
use crate::io::DiscardInfo;
use crate::{Config, VbdState};
use protocol::xen::blkif::*;

const OK: i16 = BlkifStatus::Okay as i16;
const ERR: i16 = BlkifStatus::Error as i16;
const NOTSUPP: i16 = BlkifStatus::EOpNotSupp as i16;

#[test]
fn read_copies_disk_sectors_into_the_granted_pages() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    r.grants.grant(10, vec![0; 4096], false);
    r.grants.grant(11, vec![0; 4096], false);
    let segs = [seg(10, 2, 7), seg(11, 0, 1)];
    let (p, rsp) = r.one(&rw(BlkifOp::Read, 42, 8, &segs));
    assert_eq!(rsp, vec![(42, 0, OK)]);
    assert!(p.notify && !p.more && p.halted.is_none());
    // Sectors 8..14 land in page 10 at sector 2.., sectors 14..16 in page 11.
    assert_eq!(
        &r.grants.page(10)[1024..4096],
        &r.disk.data[8 * 512..14 * 512]
    );
    assert_eq!(&r.grants.page(11)[..1024], &r.disk.data[14 * 512..16 * 512]);
    assert!(r.grants.page(10)[..1024].iter().all(|&b| b == 0));
    assert_eq!(r.disk.log, ["read 8 8"]);
    let c = r.table.get(r.id).unwrap().counters;
    assert_eq!((c.read, c.sectors_read, c.errors), (1, 8, 0));
}

#[test]
fn write_copies_granted_pages_onto_the_disk() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    r.grants.grant(3, page(0x40), true); // a write's data may be granted read-only
    let (_, rsp) = r.one(&rw(BlkifOp::Write, 9, 60, &[seg(3, 4, 7)]));
    assert_eq!(rsp, vec![(9, 1, OK)]);
    assert_eq!(&r.disk.data[60 * 512..64 * 512], &page(0x40)[2048..]);
    assert_eq!(r.disk.log, ["write 60 4"]);
    assert_eq!(r.table.get(r.id).unwrap().counters.sectors_written, 4);
}

#[test]
fn flush_and_barrier_follow_their_ordering_rules() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    r.grants.grant(1, page(1), false);
    let (_, rsp) = r.one(&rw(BlkifOp::FlushDiskcache, 1, 0, &[]));
    assert_eq!(rsp, vec![(1, 3, OK)]);
    let (_, rsp) = r.one(&rw(BlkifOp::FlushDiskcache, 2, 0, &[seg(1, 0, 0)]));
    assert_eq!(rsp, vec![(2, 3, OK)]);
    let (_, rsp) = r.one(&rw(BlkifOp::WriteBarrier, 3, 5, &[seg(1, 0, 1)]));
    assert_eq!(rsp, vec![(3, 2, OK)]);
    let (_, rsp) = r.one(&rw(BlkifOp::WriteBarrier, 4, 0, &[]));
    assert_eq!(rsp, vec![(4, 2, OK)]);
    assert_eq!(
        r.disk.log,
        [
            "flush",
            "flush",
            "write 0 1",
            "flush",
            "write 5 2",
            "flush",
            "flush"
        ]
    );
    let c = r.table.get(r.id).unwrap().counters;
    assert_eq!((c.flush, c.write), (4, 2));
}

#[test]
fn flush_on_a_disk_without_flush_is_not_supported() {
    let mut d = FakeDisk::new(8);
    d.info.flush = false;
    let mut r = Rig::new(0, d, false);
    let (p, rsp) = r.one(&rw(BlkifOp::FlushDiskcache, 1, 0, &[]));
    assert_eq!(rsp, vec![(1, 3, NOTSUPP)]);
    assert!(p.halted.is_none() && r.disk.log.is_empty());
}

#[test]
fn discard_when_offered_and_refused_when_not() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    let (p, rsp) = r.one(&discard(5, 0, 8, 0));
    assert_eq!(rsp, vec![(5, 5, NOTSUPP)]);
    assert!(p.halted.is_none());

    let mut d = FakeDisk::new(64);
    d.info.discard = Some(DiscardInfo {
        granularity: 4096,
        alignment: 0,
        secure: false,
    });
    let mut r = Rig::new(0, d, false);
    let (_, rsp) = r.one(&discard(6, 8, 16, BLKIF_DISCARD_SECURE));
    assert_eq!(rsp, vec![(6, 5, OK)]);
    // Secure was asked for but not offered: a plain discard.
    assert_eq!(r.disk.log, ["discard 8 16 false"]);
    assert!(r.disk.data[8 * 512..24 * 512].iter().all(|&b| b == 0));
    assert_eq!(r.table.get(r.id).unwrap().counters.discard, 1);
}

#[test]
fn read_only_vbd_answers_modifications_with_an_error_and_keeps_serving() {
    let mut d = FakeDisk::new(64);
    d.info.discard = Some(DiscardInfo {
        granularity: 512,
        alignment: 0,
        secure: false,
    });
    let mut r = Rig::new(0, d, true);
    r.grants.grant(1, page(1), false);
    let before = r.disk.data.clone();
    for (slot, op) in [
        (rw(BlkifOp::Write, 1, 0, &[seg(1, 0, 7)]), 1),
        (rw(BlkifOp::WriteBarrier, 2, 0, &[seg(1, 0, 7)]), 2),
        (rw(BlkifOp::FlushDiskcache, 3, 0, &[seg(1, 0, 7)]), 3),
        (discard(4, 0, 1, 0), 5),
        // An indirect response names its inner operation (Linux checks it).
        (indirect(BlkifOp::Write, 5, 0, 1, &[99]), 1),
    ] {
        let (p, rsp) = r.one(&slot);
        assert_eq!(rsp, vec![(rsp[0].0, op, ERR)]);
        assert!(p.halted.is_none());
    }
    assert_eq!(r.disk.data, before);
    // A pure flush and reads still work.
    assert_eq!(r.one(&rw(BlkifOp::FlushDiskcache, 6, 0, &[])).1[0].2, OK);
    assert_eq!(r.one(&rw(BlkifOp::Read, 7, 0, &[seg(1, 0, 0)])).1[0].2, OK);
    let v = r.table.get(r.id).unwrap();
    assert_eq!((v.counters.errors, v.state()), (5, VbdState::Connected));
}

#[test]
fn grant_and_disk_failures_fail_only_that_request() {
    let mut r = Rig::new(0, FakeDisk::new(64), false);
    r.grants.grant(1, page(1), true);
    let before = r.disk.data.clone();
    // Unknown grant on a write: nothing reaches the disk.
    let (p, rsp) = r.one(&rw(BlkifOp::Write, 1, 0, &[seg(1, 0, 7), seg(77, 0, 7)]));
    assert_eq!((rsp, p.halted), (vec![(1, 1, ERR)], None));
    assert_eq!(r.disk.data, before);
    // A read into a read-only grant.
    assert_eq!(
        r.one(&rw(BlkifOp::Read, 2, 0, &[seg(1, 0, 0)])).1,
        [(2, 0, ERR)]
    );
    // Bad indirect descriptor page.
    let (p, rsp) = r.one(&indirect(BlkifOp::Read, 3, 0, 4, &[55]));
    assert_eq!((rsp, p.halted), (vec![(3, 0, ERR)], None));
    r.disk.fail_io = true;
    assert_eq!(
        r.one(&rw(BlkifOp::Write, 4, 0, &[seg(1, 0, 0)])).1,
        [(4, 1, ERR)]
    );
    r.disk.fail_io = false;
    r.grants.grant(2, vec![0; 4096], false);
    assert_eq!(
        r.one(&rw(BlkifOp::Read, 5, 0, &[seg(2, 0, 0)])).1,
        [(5, 0, OK)]
    );
    assert_eq!(r.table.get(r.id).unwrap().counters.errors, 4);
}

/// Lays out `n` indirect segments over data pages 100.. in descriptor pages 1000...
fn indirect_setup(r: &mut Rig, n: usize) -> Vec<u32> {
    let descs: Vec<BlkifSegment> = (0..n).map(|i| seg(100 + i as u32, 0, 7)).collect();
    let mut grefs = Vec::new();
    for (p, chunk) in descs.chunks(BLKIF_SEGMENTS_PER_INDIRECT_PAGE).enumerate() {
        let mut pg = vec![0xEE; 4096];
        for (i, s) in chunk.iter().enumerate() {
            pg[i * 8..i * 8 + 8].copy_from_slice(zerocopy::IntoBytes::as_bytes(s));
        }
        r.grants.grant(1000 + p as u32, pg, true);
        grefs.push(1000 + p as u32);
    }
    grefs
}

#[test]
fn indirect_write_then_read_round_trips_many_pages() {
    let cfg = Config {
        max_ring_page_order: 0,
        max_indirect_segments: 600,
        ..Config::default()
    };
    let mut r = Rig::with(0, 0, FakeDisk::new(600 * 8 + 8), false, cfg);
    let grefs = indirect_setup(&mut r, 600);
    assert_eq!(grefs.len(), 2);
    for i in 0..600u32 {
        r.grants.grant(100 + i, page(i as u8), false);
    }
    let (_, rsp) = r.one(&indirect(BlkifOp::Write, 1, 8, 600, &grefs));
    assert_eq!(rsp, vec![(1, 1, OK)]);
    assert_eq!(r.disk.log, ["write 8 4800"]);
    assert_eq!(
        &r.disk.data[(8 + 599 * 8) * 512..][..4096],
        &page((599 % 256) as u8) as &[u8]
    );
    for i in 0..600u32 {
        r.grants.grant(100 + i, vec![0; 4096], false);
    }
    let (_, rsp) = r.one(&indirect(BlkifOp::Read, 2, 8, 600, &grefs));
    assert_eq!(rsp, vec![(2, 0, OK)]);
    assert_eq!(r.grants.page(100 + 17), &page(17)[..]);
    let c = r.table.get(r.id).unwrap().counters;
    assert_eq!(
        (c.indirect, c.read, c.write, c.sectors_read),
        (2, 1, 1, 4800)
    );
}

#[test]
fn misaligned_io_on_a_4k_disk_is_an_error_not_a_halt() {
    let mut d = FakeDisk::new(64);
    d.info.sector_size = 4096;
    let mut r = Rig::new(0, d, false);
    r.grants.grant(1, vec![0; 4096], false);
    assert_eq!(r.one(&rw(BlkifOp::Read, 1, 8, &[seg(1, 0, 7)])).1[0].2, OK);
    for (sector, s) in [(1, seg(1, 0, 7)), (8, seg(1, 0, 3)), (8, seg(1, 1, 7))] {
        let (p, rsp) = r.one(&rw(BlkifOp::Read, 2, sector, &[s]));
        assert_eq!((rsp[0].2, p.halted), (ERR, None));
    }
}
