//! Host tests for grant batches: how calls split into continuations, how many TLB
//! invalidations an unmap batch causes, and that pins drop only after the invalidation.

use super::fake::{host, Env, FakeMem};
use super::*;
use protocol::addr::PhysAddr;
use protocol::xen::structs::GnttabUnmapGrantRef;

/// What the batch did, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    /// A stage-2 page came out (`gpa`).
    Remove(u64),
    /// The mapper's TLBs were invalidated.
    Invalidate,
    /// A granter's `GTF_reading`/`GTF_writing` were cleared (its last pin went).
    Release,
}

/// Fake memory plus a fake stage 2 holding the pages in `mapped`, logging every step.
struct BatchEnv<'a> {
    mem: &'a mut FakeMem,
    mapped: std::collections::BTreeSet<u64>,
    log: Vec<Ev>,
}

impl GrantMemory for BatchEnv<'_> {
    fn read_entry(&self, frame: PhysAddr, index: usize) -> GrantEntryV1 {
        self.mem.read_entry(frame, index)
    }
    fn cas_flags_domid(&mut self, frame: PhysAddr, index: usize, old: u32, new: u32) -> u32 {
        self.mem.cas_flags_domid(frame, index, old, new)
    }
    fn clear_flags(&mut self, frame: PhysAddr, index: usize, bits: u16) {
        self.log.push(Ev::Release);
        self.mem.clear_flags(frame, index, bits)
    }
    fn write_entry(&mut self, frame: PhysAddr, index: usize, entry: GrantEntryV1) {
        self.mem.write_entry(frame, index, entry)
    }
    fn copy(&mut self, src: PhysAddr, dst: PhysAddr, len: usize) {
        self.mem.copy(src, dst, len)
    }
}

impl Stage2Batch for BatchEnv<'_> {
    fn remove(&mut self, gpa: u64) -> bool {
        self.log.push(Ev::Remove(gpa));
        self.mapped.remove(&gpa)
    }
    fn invalidate(&mut self) {
        self.log.push(Ev::Invalidate);
    }
}

fn unmap_op(handle: u32, n: u64) -> GnttabUnmapGrantRef {
    GnttabUnmapGrantRef {
        host_addr: host(n).as_u64(),
        dev_bus_addr: 0,
        handle,
        status: i16::MIN,
        _pad0: 0,
    }
}

/// Domain 1 grants domain 0 refs `0..n`; domain 0 maps ref i at page i. Returns the env,
/// the unmap operations and the stage-2 pages now mapped.
fn mapped(
    n: u32,
) -> (
    Env,
    Vec<GnttabUnmapGrantRef>,
    std::collections::BTreeSet<u64>,
) {
    let mut env = Env::new(&[0, 1]);
    env.gt = GrantTables::new(8);
    env.gt.open_domain(0, 4, 64).unwrap();
    env.gt.open_domain(1, 4, 64).unwrap();
    env.grow(1, 0).unwrap();
    let (mut ops, mut pages) = (Vec::new(), std::collections::BTreeSet::new());
    for i in 0..n {
        env.grant(1, i, 0, i, false);
        let m = env
            .map(0, 1, i, false, host(u64::from(i)).as_u64())
            .unwrap();
        ops.push(unmap_op(m.handle, u64::from(i)));
        pages.insert(m.host_addr.as_u64());
    }
    (env, ops, pages)
}

#[test]
fn split_continues_after_a_chunk() {
    assert_eq!(split(0x1000, 3, 24), Some(Split { now: 3, rest: None }));
    assert_eq!(split(0x1000, 0, 24), Some(Split { now: 0, rest: None }));
    let c = GRANT_CHUNK as u64;
    assert_eq!(split(0x1000, c, 24), Some(Split { now: c, rest: None }));
    // 256 operations: 32 now, then the HVC re-executes with the handle moved past them.
    assert_eq!(
        split(0x1000, 256, 24),
        Some(Split {
            now: c,
            rest: Some((0x1000 + c * 24, 256 - c))
        })
    );
    // A call covering 256 ops takes exactly 8 entries, and the last one ends the array.
    let (mut uop, mut count, mut entries) = (0x1000, 256, 0);
    loop {
        let s = split(uop, count, 24).unwrap();
        entries += 1;
        match s.rest {
            Some((u, n)) => (uop, count) = (u, n),
            None => {
                assert_eq!(uop + s.now * 24, 0x1000 + 256 * 24);
                break;
            }
        }
    }
    assert_eq!(entries, 256 / GRANT_CHUNK);
    // An array wrapping the address space is refused, not split.
    assert_eq!(split(u64::MAX - 8, 1, 24), None);
    assert_eq!(split(0, u64::MAX, 24), None);
}

#[test]
fn a_batch_invalidates_once_after_every_removal_and_before_any_release() {
    let (mut env, mut ops, pages) = mapped(5);
    let mut be = BatchEnv {
        mem: &mut env.mem,
        mapped: pages,
        log: Vec::new(),
    };
    assert_eq!(env.gt.unmap_batch(&mut be, 0, &mut ops), 1);
    let mut want: Vec<Ev> = (0..5).map(|i| Ev::Remove(host(i).as_u64())).collect();
    want.push(Ev::Invalidate);
    want.extend([Ev::Release; 5]);
    assert_eq!(be.log, want);
    assert!(be.mapped.is_empty());
    assert!(ops.iter().all(|o| o.status == gntst::OKAY));
    for i in 0..5 {
        assert_eq!(env.flags(1, i), gtf::PERMIT_ACCESS, "ref {i} still pinned");
    }
}

#[test]
fn a_long_batch_invalidates_once_per_chunk() {
    let n = GRANT_CHUNK as u32 + 3;
    let (mut env, mut ops, pages) = mapped(n);
    let mut be = BatchEnv {
        mem: &mut env.mem,
        mapped: pages,
        log: Vec::new(),
    };
    assert_eq!(env.gt.unmap_batch(&mut be, 0, &mut ops), 2);
    // Each chunk: its removals, one invalidation, its releases; never a release before the
    // invalidation that follows its removal.
    let inv: Vec<usize> = (0..be.log.len())
        .filter(|&i| be.log[i] == Ev::Invalidate)
        .collect();
    assert_eq!(inv, [GRANT_CHUNK, 2 * GRANT_CHUNK + 1 + 3]);
    let mut pending = 0;
    for ev in &be.log {
        match ev {
            Ev::Remove(_) => pending += 1,
            Ev::Invalidate => pending = 0,
            Ev::Release => assert_eq!(pending, 0, "released with a removal not invalidated"),
        }
    }
    assert_eq!(be.log.last(), Some(&Ev::Release));
    assert!(be.mapped.is_empty());
}

#[test]
fn a_batch_that_removes_nothing_does_not_invalidate() {
    let (mut env, ops, pages) = mapped(2);
    // Bad handles, a wrong address and a double unmap of one handle.
    let mut bad = vec![
        unmap_op(40, 0),
        unmap_op(ops[0].handle, 7),
        unmap_op(u32::MAX, 1),
    ];
    let mut be = BatchEnv {
        mem: &mut env.mem,
        mapped: pages.clone(),
        log: Vec::new(),
    };
    assert_eq!(env.gt.unmap_batch(&mut be, 0, &mut bad), 0);
    assert!(be.log.is_empty());
    let st: Vec<i16> = bad.iter().map(|o| o.status).collect();
    assert_eq!(
        st,
        [gntst::BAD_HANDLE, gntst::GENERAL_ERROR, gntst::BAD_HANDLE]
    );
    // One good unmap followed by the same handle again: one removal, one invalidation, and
    // the repeat is a bad handle (the handle went with the first).
    let mut twice = vec![ops[1], ops[1]];
    assert_eq!(env.gt.unmap_batch(&mut be, 0, &mut twice), 1);
    assert_eq!(twice[0].status, gntst::OKAY);
    assert_eq!(twice[1].status, gntst::BAD_HANDLE);
    assert_eq!(
        be.log,
        [Ev::Remove(host(1).as_u64()), Ev::Invalidate, Ev::Release]
    );
    assert_eq!(env.flags(1, 0), RW_PINNED);
    assert_eq!(env.flags(1, 1), gtf::PERMIT_ACCESS);
}

#[test]
fn revoked_mappings_need_no_invalidation() {
    let (mut env, mut ops, pages) = mapped(2);
    let closed = env.gt.close_domain(&mut env.mem, 1).unwrap();
    assert_eq!(closed.revoked.len(), 2);
    let mut be = BatchEnv {
        mem: &mut env.mem,
        mapped: pages,
        log: Vec::new(),
    };
    // The glue replaced those pages when the granter closed; the unmaps only free handles.
    assert_eq!(env.gt.unmap_batch(&mut be, 0, &mut ops), 0);
    assert!(be.log.is_empty());
    assert!(ops.iter().all(|o| o.status == gntst::OKAY));
}

/// A writable mapping's flags.
const RW_PINNED: u16 = gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING;

#[test]
fn device_only_unmaps_touch_no_stage2_and_need_no_invalidation() {
    let mut env = Env::new(&[0, 1]);
    let mut ops = Vec::new();
    for i in 0..3 {
        env.grant(1, i, 0, i, false);
        let op = protocol::xen::structs::GnttabMapGrantRef {
            host_addr: 0,
            flags: protocol::xen::structs::gntmap::DEVICE_MAP,
            gref: i,
            dom: 1,
            status: 0,
            handle: 0,
            dev_bus_addr: 0,
        };
        let m = env
            .gt
            .map_dma(&mut env.mem, 0, &op, true, super::fake::ram)
            .unwrap();
        ops.push(unmap_op(m.handle, 0));
    }
    let mut be = BatchEnv {
        mem: &mut env.mem,
        mapped: Default::default(),
        log: Vec::new(),
    };
    assert_eq!(env.gt.unmap_batch(&mut be, 0, &mut ops), 0);
    assert_eq!(be.log, [Ev::Release, Ev::Release, Ev::Release]);
    assert!(ops.iter().all(|o| o.status == gntst::OKAY));
    assert!(!env.gt.device_mapped(1));
}
