//! Host tests for the per-domain frame budget, alone and behind a growing grant table.

use super::*;
use crate::xen::{GrantMemory, GrantTables};
use alloc::boxed::Box;
use alloc::vec;
use protocol::xen::structs::GrantEntryV1;
use protocol::xen::XenErrno;

const BASE: u64 = 0x4000_0000;
const SIZE: u64 = 4 << 20;

fn pool() -> FrameAllocator {
    let (start, end) = (PhysAddr::new(BASE), PhysAddr::new(BASE + SIZE));
    let words = FrameAllocator::storage_words(start, end);
    let storage = Box::leak(vec![0u64; words].into_boxed_slice());
    let mut a = FrameAllocator::new(start, end, storage).unwrap();
    a.add_free(start, SIZE).unwrap();
    a
}

#[test]
fn allocations_stop_at_the_limit_without_touching_the_pool() {
    let mut frames = pool();
    let all = frames.free_pages();
    let mut b = FrameBudget::new(3);
    let one = b.alloc(&mut frames, 1).unwrap();
    let two = b.alloc(&mut frames, 2).unwrap();
    assert_eq!((b.used, frames.free_pages()), (3, all - 3));
    assert_eq!(b.alloc(&mut frames, 1), None);
    assert_eq!(b.alloc(&mut frames, u64::MAX), None);
    assert_eq!((b.used, frames.free_pages()), (3, all - 3));
    // What is given back can be taken again; a double free changes nothing.
    b.free(&mut frames, one, 1).unwrap();
    assert_eq!((b.used, frames.free_pages()), (2, all - 2));
    assert!(b.free(&mut frames, one, 1).is_err());
    assert_eq!(b.used, 2);
    assert!(b.alloc(&mut frames, 1).is_some());
    assert_eq!(b.alloc(&mut frames, 1), None);
    b.free(&mut frames, two, 2).unwrap();
    assert_eq!(b.used, 1);
}

/// Grant-table memory that keeps nothing: growing and closing a table only writes fresh
/// frames' entries, which this test does not read back.
struct Mem;

impl GrantMemory for Mem {
    fn read_entry(&self, _: PhysAddr, _: usize) -> GrantEntryV1 {
        GrantEntryV1 {
            flags: 0,
            domid: 0,
            frame: 0,
        }
    }
    fn cas_flags_domid(&mut self, _: PhysAddr, _: usize, old: u32, _: u32) -> u32 {
        old
    }
    fn clear_flags(&mut self, _: PhysAddr, _: usize, _: u16) {}
    fn write_entry(&mut self, _: PhysAddr, _: usize, _: GrantEntryV1) {}
    fn copy(&mut self, _: PhysAddr, _: PhysAddr, _: usize) {}
}

#[test]
fn a_grant_table_grows_only_as_far_as_its_domains_budget() {
    let mut frames = pool();
    let all = frames.free_pages();
    let mut gt = GrantTables::new(4);
    let mut mem = Mem;
    gt.open_domain(1, 32, 8).unwrap();
    // The budget covers 4 grant frames; the table itself would allow 32.
    let mut budget = FrameBudget::new(4);
    for idx in 0..4 {
        gt.frame(&mut mem, 1, idx, || budget.alloc(&mut frames, 1))
            .unwrap();
    }
    assert_eq!(
        gt.frame(&mut mem, 1, 31, || budget.alloc(&mut frames, 1)),
        Err(XenErrno::ENOMEM)
    );
    assert_eq!((budget.used, frames.free_pages()), (4, all - 4));
    // Closing the table hands its frames back; freed through the budget they return to both.
    let closed = gt.close_domain(&mut mem, 1).unwrap();
    assert_eq!(closed.frames.len(), 4);
    for f in closed.frames {
        budget.free(&mut frames, f, 1).unwrap();
    }
    assert_eq!((budget.used, frames.free_pages()), (0, all));
}
