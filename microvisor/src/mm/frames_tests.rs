//! Host tests for the bitmap frame allocator, including a randomized comparison against a
//! plain set-of-pages model.

use super::*;
use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

const MIB: u64 = 1 << 20;
const BASE: u64 = 0x4000_0000;

fn pa(x: u64) -> PhysAddr {
    PhysAddr::new(x)
}

fn empty(base: u64, size: u64) -> FrameAllocator {
    let words = FrameAllocator::storage_words(pa(base), pa(base + size));
    let storage = Box::leak(vec![0u64; words].into_boxed_slice());
    FrameAllocator::new(pa(base), pa(base + size), storage).unwrap()
}

fn with_ram(base: u64, size: u64) -> FrameAllocator {
    let mut a = empty(base, size);
    a.add_free(pa(base), size).unwrap();
    a
}

/// The module invariants: counts match the bitmap, `free` matches the counts.
fn check_invariants(a: &FrameAllocator) {
    let mut total = 0;
    for b in 0..a.blocks {
        let bits: u64 = a.words[b * WORDS_PER_BLOCK..(b + 1) * WORDS_PER_BLOCK]
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum();
        assert_eq!(a.count(b), bits, "block {b} count");
        total += bits;
    }
    assert_eq!(a.free_pages(), total);
}

#[test]
fn add_free_shrinks_inward() {
    let mut a = empty(BASE, 4 * MIB);
    a.add_free(pa(BASE + 0x800), 0x3000).unwrap();
    assert_eq!(a.ranges().collect::<Vec<_>>(), [(pa(BASE + 0x1000), 2)]);
    a.add_free(pa(BASE + 0x3000), 0x1000).unwrap();
    a.add_free(pa(BASE), 0x1000).unwrap();
    assert_eq!(a.ranges().collect::<Vec<_>>(), [(pa(BASE), 4)]);
    // Overlap with free memory and leaving the span are refused.
    assert_eq!(a.add_free(pa(BASE), 0x2000), Err(FrameError::BadRange));
    assert_eq!(
        a.add_free(pa(BASE + 4 * MIB), 0x1000),
        Err(FrameError::BadRange)
    );
    check_invariants(&a);
}

#[test]
fn storage_too_small_is_refused() {
    let storage = Box::leak(vec![0u64; 8].into_boxed_slice());
    let r = FrameAllocator::new(pa(BASE), pa(BASE + 4 * MIB), storage);
    assert_eq!(r.err(), Some(FrameError::StorageTooSmall));
}

#[test]
fn alloc_takes_highest_first_and_free_restores() {
    let mut a = with_ram(BASE, 4 * MIB);
    let p = a.alloc(1, PAGE_SIZE).unwrap();
    assert_eq!(p, pa(BASE + 4 * MIB - PAGE_SIZE));
    let q = a.alloc(3, PAGE_SIZE).unwrap();
    assert_eq!(q, pa(BASE + 4 * MIB - 4 * PAGE_SIZE));
    a.free(p, 1).unwrap();
    a.free(q, 3).unwrap();
    assert_eq!(a.ranges().collect::<Vec<_>>(), [(pa(BASE), 1024)]);
    check_invariants(&a);
}

#[test]
fn single_pages_come_from_partly_used_blocks() {
    let mut a = with_ram(BASE, 6 * MIB);
    // Use one page of the lowest block; the next single page must come from that block
    // rather than break a whole block above it.
    let low = a.alloc(BLOCK_PAGES, BLOCK_SIZE).unwrap();
    let low2 = a.alloc(BLOCK_PAGES, BLOCK_SIZE).unwrap();
    a.free(low2, BLOCK_PAGES).unwrap();
    a.free(low.checked_add(PAGE_SIZE).unwrap(), BLOCK_PAGES - 1)
        .unwrap();
    let p = a.alloc(1, PAGE_SIZE).unwrap();
    assert!(p.as_u64() >= low.as_u64() && p.as_u64() < low.as_u64() + BLOCK_SIZE);
    check_invariants(&a);
}

#[test]
fn two_mib_aligned_runs() {
    let mut a = with_ram(BASE + PAGE_SIZE, 8 * MIB - PAGE_SIZE);
    let p = a.alloc(BLOCK_PAGES * 2, BLOCK_SIZE).unwrap();
    assert_eq!(p, pa(BASE + 4 * MIB));
    // The lowest block lacks its first page, so one whole block is left, then none.
    let q = a.alloc(BLOCK_PAGES, BLOCK_SIZE).unwrap();
    assert_eq!(q, pa(BASE + 2 * MIB));
    assert_eq!(
        a.alloc(BLOCK_PAGES, BLOCK_SIZE),
        Err(FrameError::OutOfMemory)
    );
    assert_eq!(
        a.alloc(BLOCK_PAGES - 1, PAGE_SIZE).unwrap(),
        pa(BASE + PAGE_SIZE)
    );
    check_invariants(&a);
}

#[test]
fn bad_arguments_and_double_free() {
    let mut a = with_ram(BASE, 2 * MIB);
    assert_eq!(a.alloc(0, PAGE_SIZE), Err(FrameError::BadRange));
    assert_eq!(a.alloc(1, 3 * PAGE_SIZE), Err(FrameError::BadRange));
    assert_eq!(a.alloc(1, 16), Err(FrameError::BadRange));
    let p = a.alloc(2, PAGE_SIZE).unwrap();
    assert_eq!(a.free(pa(p.as_u64() + 1), 1), Err(FrameError::BadRange));
    a.free(p, 1).unwrap();
    // The second page is still allocated, but the first is free again: refused whole.
    assert_eq!(a.free(p, 2), Err(FrameError::BadRange));
    assert_eq!(a.free(pa(BASE - PAGE_SIZE), 1), Err(FrameError::BadRange));
    assert_eq!(a.free(pa(BASE + 2 * MIB), 1), Err(FrameError::BadRange));
    check_invariants(&a);
}

/// F11: with the old 64-range list, a free that touched no free range after 64 holes was
/// silently lost. A bitmap has no such limit: 200 holes, then a 64 MiB block comes back.
#[test]
fn many_holes_never_lose_a_free() {
    let mut a = with_ram(BASE, 256 * MIB);
    let big = a.alloc(64 * MIB / PAGE_SIZE, BLOCK_SIZE).unwrap();
    let pages: Vec<_> = (0..400).map(|_| a.alloc(1, PAGE_SIZE).unwrap()).collect();
    for p in pages.iter().step_by(2) {
        a.free(*p, 1).unwrap();
    }
    let before = a.free_pages();
    a.free(big, 64 * MIB / PAGE_SIZE).unwrap();
    assert_eq!(a.free_pages(), before + 64 * MIB / PAGE_SIZE);
    check_invariants(&a);
}

#[test]
fn scattered_ram_uses_blocks_then_pages() {
    let mut a = with_ram(BASE, 8 * MIB);
    // Punch a page out of every block: no whole block is left.
    for b in 0..4 {
        a.alloc(1, PAGE_SIZE).unwrap();
        let _ = b;
    }
    let holes: Vec<_> = a.ranges().collect();
    assert!(!holes.is_empty());
    let mut runs = Vec::new();
    a.alloc_scattered(BLOCK_PAGES + 10, |p, n| runs.push((p, n)))
        .unwrap();
    assert_eq!(runs.iter().map(|r| r.1).sum::<u64>(), BLOCK_PAGES + 10);
    // Nothing fits when asking for more than is free, and nothing is taken.
    let free = a.free_pages();
    assert_eq!(
        a.alloc_scattered(free + 1, |_, _| panic!("took pages")),
        Err(FrameError::OutOfMemory)
    );
    assert_eq!(a.free_pages(), free);
    check_invariants(&a);

    let mut b = with_ram(BASE, 8 * MIB);
    let mut runs = Vec::new();
    b.alloc_scattered(2 * BLOCK_PAGES + 3, |p, n| runs.push((p, n)))
        .unwrap();
    // The top two whole blocks, adjacent, as one run from the lower one; then a 3-page
    // run.
    assert_eq!(runs[0], (pa(BASE + 4 * MIB), 2 * BLOCK_PAGES));
    assert_eq!(runs[1].1, 3);
    assert_eq!(runs.len(), 2);
    // Runs of whole blocks split by a taken one: the top run first, then the next, each no
    // longer than still wanted.
    let mut c = with_ram(BASE, 12 * MIB);
    let mut top = Vec::new();
    c.alloc_scattered(2 * BLOCK_PAGES, |p, n| top.push((p, n)))
        .unwrap();
    assert_eq!(top, [(pa(BASE + 8 * MIB), 2 * BLOCK_PAGES)]);
    c.free(pa(BASE + 10 * MIB), BLOCK_PAGES).unwrap(); // block 5 back, 4 still taken
    let mut runs = Vec::new();
    c.alloc_scattered(3 * BLOCK_PAGES, |p, n| runs.push((p, n)))
        .unwrap();
    assert_eq!(
        runs,
        [
            (pa(BASE + 10 * MIB), BLOCK_PAGES),
            (pa(BASE + 4 * MIB), 2 * BLOCK_PAGES)
        ],
        "block 5, then blocks 2-3"
    );
    check_invariants(&c);
}

use crate::test_rng::Rng;

/// Random alloc / scattered alloc / free sequences against a set-of-free-pages model: the
/// allocator never hands out a page that is not free in the model (no double allocation),
/// every free is accepted and restores exactly its pages (no lost free), and a double free
/// is refused without change.
#[test]
fn random_sequences_match_a_model() {
    for seed in 1..=6u64 {
        let size = 16 * MIB;
        let base = BASE + 3 * PAGE_SIZE; // not block-aligned: partial blocks at both ends
        let mut a = with_ram(base, size);
        let mut model: BTreeSet<u64> = (0..size / PAGE_SIZE)
            .map(|i| base + i * PAGE_SIZE)
            .collect();
        let mut held: Vec<(PhysAddr, u64)> = Vec::new();
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        for step in 0..3000 {
            let take = |model: &mut BTreeSet<u64>, p: PhysAddr, n: u64| {
                for i in 0..n {
                    assert!(
                        model.remove(&(p.as_u64() + i * PAGE_SIZE)),
                        "seed {seed} step {step}: page {:#x} handed out twice",
                        p.as_u64() + i * PAGE_SIZE
                    );
                }
            };
            match rng.below(10) {
                0..=3 => {
                    let pages = [1, 1, 2, 7, BLOCK_PAGES, 600][rng.below(6) as usize];
                    let align =
                        [PAGE_SIZE, PAGE_SIZE, 16 * PAGE_SIZE, BLOCK_SIZE][rng.below(4) as usize];
                    if let Ok(p) = a.alloc(pages, align) {
                        assert_eq!(p.as_u64() % align, 0);
                        take(&mut model, p, pages);
                        held.push((p, pages));
                    }
                }
                4 => {
                    let pages = 1 + rng.below(1500);
                    let mut got = Vec::new();
                    match a.alloc_scattered(pages, |p, n| got.push((p, n))) {
                        Ok(()) => {
                            assert_eq!(got.iter().map(|g| g.1).sum::<u64>(), pages);
                            for (p, n) in got {
                                take(&mut model, p, n);
                                held.push((p, n));
                            }
                        }
                        Err(_) => assert!((model.len() as u64) < pages),
                    }
                }
                5..=8 if !held.is_empty() => {
                    let (p, n) = held.swap_remove(rng.below(held.len() as u64) as usize);
                    a.free(p, n).unwrap();
                    for i in 0..n {
                        model.insert(p.as_u64() + i * PAGE_SIZE);
                    }
                }
                _ => {
                    // A double free of a free page is refused and changes nothing.
                    if let Some(&f) = model
                        .iter()
                        .nth(rng.below(model.len().max(1) as u64) as usize)
                    {
                        let before = a.free_pages();
                        assert_eq!(a.free(pa(f), 1), Err(FrameError::BadRange));
                        assert_eq!(a.free_pages(), before);
                    }
                }
            }
            assert_eq!(
                a.free_pages(),
                model.len() as u64,
                "seed {seed} step {step}"
            );
            if step % 100 == 0 {
                check_invariants(&a);
                let listed: BTreeSet<u64> = a
                    .ranges()
                    .flat_map(|(p, n)| (0..n).map(move |i| p.as_u64() + i * PAGE_SIZE))
                    .collect();
                assert_eq!(listed, model, "seed {seed} step {step}");
                // Runs are maximal (never two touching), and the largest is the model's.
                let runs: Vec<(PhysAddr, u64)> = a.ranges().collect();
                for pair in runs.windows(2) {
                    assert!(pair[0].0.as_u64() + pair[0].1 * PAGE_SIZE < pair[1].0.as_u64());
                }
                let mut longest = 0u64;
                let mut run = 0u64;
                let mut prev: Option<u64> = None;
                for &f in &model {
                    run = if prev == Some(f - PAGE_SIZE) {
                        run + 1
                    } else {
                        1
                    };
                    longest = longest.max(run);
                    prev = Some(f);
                }
                assert_eq!(a.largest_free_run(), longest, "seed {seed} step {step}");
            }
        }
        for (p, n) in held {
            a.free(p, n).unwrap();
        }
        assert_eq!(a.free_pages(), size / PAGE_SIZE);
        assert_eq!(a.largest_free_run(), size / PAGE_SIZE);
    }
}
