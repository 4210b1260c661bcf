//! The direct path: data pages device-mapped in one batch, the disk transferring straight
//! to and from them, every map undone after the batch; and the grant-copy fallback for the
//! requests whose pages could not be mapped.

use super::fakes::*;
use protocol::xen::blkif::*;

const OK: i16 = BlkifStatus::Okay as i16;
const ERR: i16 = BlkifStatus::Error as i16;

/// A direct rig over a 256-sector disk with data pages 100..100+n granted (writable).
fn rig(n: u32) -> Rig {
    let mut r = Rig::new(0, FakeDisk::new(256), false).direct();
    for i in 0..n {
        r.grants.grant(100 + i, page(i as u8), false);
    }
    r
}

#[test]
fn reads_and_writes_move_without_a_copy_and_every_map_goes() {
    let mut r = rig(8);
    for i in 0..8u32 {
        let op = if i % 2 == 0 {
            BlkifOp::Read
        } else {
            BlkifOp::Write
        };
        // Partial pages too: sectors 1..=6 of each page.
        let s = rw(op, u64::from(i), u64::from(i) * 8, &[seg(100 + i, 1, 6)]);
        r.front.queue(&mut r.ring, &s);
    }
    r.front.push(&mut r.ring);
    r.poll();
    let rsp = r.front.responses(&mut r.ring);
    assert_eq!(
        rsp.iter().map(|x| x.0).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    assert!(rsp.iter().all(|x| x.2 == OK));
    assert_eq!(r.grants.calls, 0, "no grant copy at all");
    let bus = r.grants.bus.borrow();
    assert_eq!((bus.map_calls, bus.unmap_calls), (1, 1));
    assert_eq!(bus.most_mapped, 8);
    assert!(bus.mapped.is_empty(), "every device map undone");
    drop(bus);
    assert_eq!(r.disk.max_in_flight, 8);
    for i in 0..8u32 {
        let at = i as usize * 8 * 512;
        let (pg, disk) = (r.grants.page(100 + i), &r.disk.data[at..at + 6 * 512]);
        // Read: sectors 1..=6 of the page now hold the disk's; write: the disk holds them.
        assert_eq!(&pg[512..7 * 512], disk, "request {i}");
        if i % 2 == 0 {
            assert_eq!(
                &pg[..512],
                &page(i as u8)[..512],
                "outside the segment untouched"
            );
        }
    }
    assert!(
        r.disk.log.iter().all(|l| l.starts_with("direct")),
        "{:?}",
        r.disk.log
    );
}

#[test]
fn a_refused_map_sends_only_that_request_by_copy() {
    let mut r = rig(3);
    r.grants.bus.borrow_mut().refuse.insert(101);
    for i in 0..3u32 {
        let s = rw(
            BlkifOp::Read,
            u64::from(i),
            u64::from(i) * 8,
            &[seg(100 + i, 0, 7)],
        );
        r.front.queue(&mut r.ring, &s);
    }
    r.front.push(&mut r.ring);
    r.poll();
    let rsp = r.front.responses(&mut r.ring);
    assert!(rsp.iter().all(|x| x.2 == OK), "{rsp:?}");
    // The refused one went through the staging buffer and one copy out.
    assert_eq!(r.grants.calls, 1);
    assert_eq!(
        r.disk.log,
        ["direct read 0 8", "read 8 8", "direct read 16 8"]
    );
    for i in 0..3u32 {
        let at = i as usize * 8 * 512;
        assert_eq!(r.grants.page(100 + i), &r.disk.data[at..at + 4096]);
    }
    assert!(r.grants.bus.borrow().mapped.is_empty());
}

#[test]
fn writes_map_read_only_and_a_read_into_a_read_only_grant_fails() {
    let mut r = rig(0);
    r.grants.grant(5, page(9), true);
    // A write only needs the device to read the page: a read-only grant maps.
    assert_eq!(
        r.one(&rw(BlkifOp::Write, 1, 8, &[seg(5, 0, 7)])).1,
        [(1, 1, OK)]
    );
    assert_eq!(&r.disk.data[8 * 512..16 * 512], &page(9)[..]);
    assert_eq!(r.disk.log, ["direct write 8 8"]);
    // A read must write it: the map is refused, the copy too, the answer is an error.
    assert_eq!(
        r.one(&rw(BlkifOp::Read, 2, 0, &[seg(5, 0, 7)])).1,
        [(2, 0, ERR)]
    );
    assert_eq!(r.grants.page(5), page(9), "the read-only page is unchanged");
    assert!(r.grants.bus.borrow().mapped.is_empty());
}

#[test]
fn a_request_with_more_segments_than_the_disk_takes_is_copied() {
    let mut r = rig(15);
    r.disk.direct_segments = 4;
    let segs: Vec<_> = (0..11).map(|i| seg(100 + i, 0, 7)).collect();
    let segs4: Vec<_> = (11..15).map(|i| seg(100 + i, 0, 7)).collect();
    r.front.queue(&mut r.ring, &rw(BlkifOp::Read, 1, 0, &segs));
    r.front
        .queue(&mut r.ring, &rw(BlkifOp::Read, 2, 128, &segs4));
    r.front.push(&mut r.ring);
    r.poll();
    assert!(r.front.responses(&mut r.ring).iter().all(|x| x.2 == OK));
    assert_eq!(r.disk.log, ["read 0 88", "direct read 128 32"]);
    assert_eq!(r.grants.page(110), &r.disk.data[10 * 4096..11 * 4096]);
    assert_eq!(
        r.grants.page(114),
        &r.disk.data[(128 + 24) * 512..(128 + 32) * 512]
    );
}

#[test]
fn barrier_writes_and_flushes_stay_on_the_copy_path() {
    let mut r = rig(1);
    let s = rw(BlkifOp::WriteBarrier, 1, 8, &[seg(100, 0, 7)]);
    assert_eq!(r.one(&s).1[0].2, OK);
    assert_eq!(r.disk.log, ["flush", "write 8 8", "flush"]);
    assert_eq!(r.grants.bus.borrow().map_calls, 0);
}

#[test]
fn a_failed_direct_transfer_is_an_error_and_its_maps_still_go() {
    let mut r = rig(1);
    r.disk.fail_io = true;
    assert_eq!(
        r.one(&rw(BlkifOp::Read, 1, 0, &[seg(100, 0, 7)])).1,
        [(1, 0, ERR)]
    );
    let bus = r.grants.bus.borrow();
    assert_eq!((bus.map_calls, bus.unmap_calls), (1, 1));
    assert!(bus.mapped.is_empty());
}
