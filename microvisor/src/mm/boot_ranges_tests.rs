//! Host tests for the frame allocator.

use super::*;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn pa(x: u64) -> PhysAddr {
    PhysAddr::new(x)
}

/// Sorted, page-aligned, non-empty, non-touching: the invariants in the module docs.
fn check_invariants(a: &BootRanges) {
    let rs = &a.ranges[..a.count];
    for r in rs {
        assert!(r.start < r.end, "empty range {r:?}");
        assert_eq!(r.start % PAGE_SIZE, 0);
        assert_eq!(r.end % PAGE_SIZE, 0);
    }
    for w in rs.windows(2) {
        assert!(w[0].end < w[1].start, "unsorted or unmerged {w:?}");
    }
    assert!(a.ranges[a.count..].iter().all(|r| *r == Range::EMPTY));
}

fn with_ram(base: u64, size: u64) -> BootRanges {
    let mut a = BootRanges::new();
    a.add_free(pa(base), size).unwrap();
    a
}

#[test]
fn add_free_shrinks_inward_and_merges() {
    let mut a = BootRanges::new();
    a.add_free(pa(0x4000_0800), 0x3000).unwrap();
    // 0x4000_0800..0x4000_3800 shrinks to 0x4000_1000..0x4000_3000.
    assert_eq!(a.ranges().collect::<Vec<_>>(), [(pa(0x4000_1000), 2)]);
    a.add_free(pa(0x4000_3000), 0x1000).unwrap();
    a.add_free(pa(0x4000_0000), 0x1000).unwrap();
    assert_eq!(a.ranges().collect::<Vec<_>>(), [(pa(0x4000_0000), 4)]);
    // Less than a page after shrinking: nothing to add, not an error.
    a.add_free(pa(0x5000_0010), 0x1000).unwrap();
    assert_eq!(a.free_pages(), 4);
    assert_eq!(
        a.add_free(pa(0x4000_2000), 0x1000),
        Err(FrameError::BadRange)
    );
    assert_eq!(a.add_free(pa(u64::MAX - 5), 10), Err(FrameError::BadRange));
    check_invariants(&a);
}

#[test]
fn alloc_takes_highest_first_and_free_merges_back() {
    let mut a = with_ram(0x4000_0000, 16 * PAGE_SIZE);
    let x = a.alloc(1, PAGE_SIZE).unwrap();
    let y = a.alloc(2, PAGE_SIZE).unwrap();
    assert_eq!(x, pa(0x4000_f000));
    assert_eq!(y, pa(0x4000_d000));
    assert_eq!(a.free_pages(), 13);
    a.free(x, 1).unwrap();
    check_invariants(&a);
    assert_eq!(a.ranges().count(), 2);
    a.free(y, 2).unwrap();
    assert_eq!(a.ranges().collect::<Vec<_>>(), [(pa(0x4000_0000), 16)]);
}

#[test]
fn two_mib_aligned_allocations() {
    // Deliberately unaligned RAM: 0x4010_0000 .. 0x4090_0000 (8 MiB).
    let mut a = with_ram(0x4010_0000, 8 * MIB);
    let mut got = Vec::new();
    while let Ok(p) = a.alloc(512, 2 * MIB) {
        assert!(p.is_aligned(2 * MIB));
        got.push(p);
        check_invariants(&a);
    }
    // Only 0x4020_0000, 0x4040_0000, 0x4060_0000 fit whole; 0x4080_0000 would end past 0x4090_0000.
    assert_eq!(got, [pa(0x4060_0000), pa(0x4040_0000), pa(0x4020_0000)]);
    assert_eq!(a.free_pages(), 2 * 256);
    assert_eq!(a.alloc(512, 2 * MIB), Err(FrameError::OutOfMemory));
    // Small allocations still come from the leftovers.
    assert!(a.alloc(256, PAGE_SIZE).is_ok());
}

#[test]
fn alignment_split_leaves_both_sides_free() {
    let mut a = with_ram(0x4000_0000, GIB);
    // From the top: the highest 1 GiB-aligned base inside is 0x4000_0000 itself.
    assert_eq!(a.alloc(1, GIB), Ok(pa(0x4000_0000)));
    // A 64 KiB aligned page below the top leaves a hole above it.
    let mut b = with_ram(0x4000_0000, 0x1_8000);
    assert_eq!(b.alloc(1, 0x1_0000), Ok(pa(0x4001_0000)));
    assert_eq!(
        b.ranges().collect::<Vec<_>>(),
        [(pa(0x4000_0000), 16), (pa(0x4001_1000), 7)]
    );
    check_invariants(&b);
}

#[test]
fn bad_arguments() {
    let mut a = with_ram(0x4000_0000, MIB);
    assert_eq!(a.alloc(0, PAGE_SIZE), Err(FrameError::BadRange));
    assert_eq!(a.alloc(1, 3 * PAGE_SIZE), Err(FrameError::BadRange));
    assert_eq!(a.alloc(1, 512), Err(FrameError::BadRange));
    assert_eq!(a.alloc(u64::MAX, PAGE_SIZE), Err(FrameError::BadRange));
    assert_eq!(a.free(pa(0x1234), 1), Err(FrameError::BadRange));
    assert_eq!(a.free(pa(0x1000), 0), Err(FrameError::BadRange));
    assert_eq!(a.free(pa(!0xfff), 2), Err(FrameError::BadRange));
}

#[test]
fn exhaustion() {
    let mut a = with_ram(0x4000_0000, 4 * PAGE_SIZE);
    assert_eq!(a.alloc(5, PAGE_SIZE), Err(FrameError::OutOfMemory));
    for _ in 0..4 {
        a.alloc(1, PAGE_SIZE).unwrap();
    }
    assert_eq!(a.free_pages(), 0);
    assert_eq!(a.alloc(1, PAGE_SIZE), Err(FrameError::OutOfMemory));
    assert_eq!(
        BootRanges::new().alloc(1, PAGE_SIZE),
        Err(FrameError::OutOfMemory)
    );
}

#[test]
fn double_free_is_rejected() {
    let mut a = with_ram(0x4000_0000, 8 * PAGE_SIZE);
    let p = a.alloc(2, PAGE_SIZE).unwrap();
    a.free(p, 2).unwrap();
    let before = a.clone();
    assert_eq!(a.free(p, 2), Err(FrameError::BadRange));
    // Partial overlap with free memory is also a double free.
    assert_eq!(a.free(pa(0x3fff_f000), 2), Err(FrameError::BadRange));
    assert_eq!(a.ranges, before.ranges);
    assert_eq!(a.count, before.count);
}

#[test]
fn reserve_splits_and_rounds_outward() {
    let mut a = with_ram(0x4000_0000, 16 * PAGE_SIZE);
    // 0x4000_4800 + 0x1000 rounds outward to 0x4000_4000..0x4000_6000.
    a.reserve(pa(0x4000_4800), 0x1000).unwrap();
    assert_eq!(
        a.ranges().collect::<Vec<_>>(),
        [(pa(0x4000_0000), 4), (pa(0x4000_6000), 10)]
    );
    // Spanning a gap and the head of the next range; already-reserved parts are fine.
    a.reserve(pa(0x4000_3000), 0x4000).unwrap();
    assert_eq!(
        a.ranges().collect::<Vec<_>>(),
        [(pa(0x4000_0000), 3), (pa(0x4000_7000), 9)]
    );
    // Memory that was never free.
    a.reserve(pa(0x8000_0000), GIB).unwrap();
    // Whole ranges vanish.
    a.reserve(pa(0x3000_0000), 0x1000_8000).unwrap();
    assert_eq!(a.ranges().collect::<Vec<_>>(), [(pa(0x4000_8000), 8)]);
    a.reserve(pa(0x4000_8000), 0).unwrap();
    assert_eq!(a.free_pages(), 8);
    a.reserve(pa(0), u64::MAX).unwrap();
    assert_eq!(a.free_pages(), 0);
    check_invariants(&a);
}

#[test]
fn range_table_full() {
    let mut a = BootRanges::new();
    for i in 0..MAX_RANGES as u64 {
        a.add_free(pa(i * 2 * PAGE_SIZE), PAGE_SIZE).unwrap();
    }
    let top = MAX_RANGES as u64 * 2 * PAGE_SIZE;
    assert_eq!(
        a.add_free(pa(top), PAGE_SIZE),
        Err(FrameError::TooManyRanges)
    );
    // Touching an existing range merges instead of needing a slot.
    a.add_free(pa(PAGE_SIZE), PAGE_SIZE).unwrap();
    assert_eq!(a.ranges().count(), MAX_RANGES - 1);
    a.add_free(pa(top), 4 * PAGE_SIZE).unwrap();
    // A hole in the middle of the last range needs a slot that does not exist.
    let before = a.free_pages();
    assert_eq!(
        a.reserve(pa(top + PAGE_SIZE), 1),
        Err(FrameError::TooManyRanges)
    );
    assert_eq!(a.free_pages(), before);
    // An aligned alloc that would split the top range takes a lower fit instead.
    assert_eq!(a.alloc(1, 2 * PAGE_SIZE), Ok(pa(top - 2 * PAGE_SIZE)));
    check_invariants(&a);

    // When every fit would split, the full table is the reason.
    let mut b = BootRanges::new();
    for i in 0..MAX_RANGES as u64 {
        b.add_free(pa((4 * i + 1) * PAGE_SIZE), 3 * PAGE_SIZE)
            .unwrap();
    }
    assert_eq!(b.alloc(1, 2 * PAGE_SIZE), Err(FrameError::TooManyRanges));
    assert_eq!(b.alloc(4, PAGE_SIZE), Err(FrameError::OutOfMemory));
    assert_eq!(b.free_pages(), 3 * MAX_RANGES as u64);
}

use crate::test_rng::Rng as XorShift;

#[test]
fn random_alloc_free_conserves_pages() {
    for seed in 1..=20u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut a = BootRanges::new();
        // Several discontiguous banks with reserved holes, like a real memory map.
        a.add_free(pa(0x4000_0000), 64 * MIB).unwrap();
        a.add_free(pa(0x8000_0000), 32 * MIB).unwrap();
        a.reserve(pa(0x4100_0000), 3 * MIB + 5).unwrap();
        let total = a.free_pages();
        let mut live: Vec<(PhysAddr, u64)> = Vec::new();
        for _ in 0..2000 {
            // At most 48 live allocations: each cuts at most one extra gap, so with three
            // banks the free list stays under MAX_RANGES and `free` can always merge back.
            if live.is_empty() || (live.len() < 48 && rng.below(3) != 0) {
                let pages = 1 + rng.below(600);
                let align = PAGE_SIZE << rng.below(10);
                match a.alloc(pages, align) {
                    Ok(p) => {
                        assert!(p.is_aligned(align));
                        // Never overlaps another live allocation.
                        let end = p.as_u64() + pages * PAGE_SIZE;
                        for &(q, n) in &live {
                            assert!(end <= q.as_u64() || q.as_u64() + n * PAGE_SIZE <= p.as_u64());
                        }
                        live.push((p, pages));
                    }
                    Err(e) => assert_eq!(e, FrameError::OutOfMemory),
                }
            } else {
                let i = rng.below(live.len() as u64) as usize;
                let (p, n) = live.swap_remove(i);
                a.free(p, n).unwrap();
                assert_eq!(a.free(p, n), Err(FrameError::BadRange));
            }
            check_invariants(&a);
            let used: u64 = live.iter().map(|&(_, n)| n).sum();
            assert_eq!(a.free_pages() + used, total);
        }
        for (p, n) in live.drain(..) {
            a.free(p, n).unwrap();
        }
        assert_eq!(a.free_pages(), total);
        assert_eq!(a.ranges().count(), 3);
    }
}
