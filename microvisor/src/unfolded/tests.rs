use super::{due, published, Counts, Unfolded};
use crate::sched::VcpuKey;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

fn counts(n: u64) -> Counts {
    Counts {
        exits: n,
        irqs: n / 2,
        run_ticks: n * 10,
    }
}

#[test]
fn a_snapshot_is_read_only_for_its_own_vcpu_and_not_after_a_fold() {
    let u = Unfolded::new();
    assert_eq!(u.of(0), None, "nothing published yet");
    u.publish(0x0102, counts(4));
    assert_eq!(u.of(0x0102), Some(counts(4)));
    assert_eq!(u.of(0x0103), None, "another vCPU's record gets nothing");
    u.publish(0x0102, counts(9));
    assert_eq!(
        u.of(0x0102),
        Some(counts(9)),
        "a later snapshot replaces it"
    );
    u.clear();
    assert_eq!(u.of(0x0102), None, "folded: the record has it now");
}

#[test]
fn key_zero_and_the_largest_key_are_told_apart_from_nothing() {
    let u = Unfolded::new();
    u.publish(0, counts(1));
    assert_eq!(u.of(0), Some(counts(1)));
    assert_eq!(u.of(u32::MAX), None);
    u.publish(u32::MAX, counts(2));
    assert_eq!(u.of(u32::MAX), Some(counts(2)));
    assert_eq!(u.of(0), None);
}

/// The owner (a CPU) counts, publishes and now and then folds into the record under the
/// lock; a reader under the same lock adds the snapshot to the record. Every reading is at
/// least the last (nothing counted twice, then taken away) and at most what was counted.
#[test]
fn a_listing_never_counts_twice_nor_goes_backwards() {
    const KEY: u32 = 0x0300;
    struct Shared {
        record: u64,
        counted: u64,
    }
    let lock = Mutex::new(Shared {
        record: 0,
        counted: 0,
    });
    let u = Unfolded::new();
    let done = AtomicBool::new(false);
    let saw_snapshot = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut local = 0u64;
            for step in 1..=200_000u64 {
                local += 1;
                lock.lock().unwrap().counted += 1;
                if step % 7 == 0 {
                    u.publish(KEY, counts(local));
                }
                if step % 1_000 == 0 {
                    let mut g = lock.lock().unwrap();
                    g.record += local;
                    local = 0;
                    u.clear();
                }
            }
            // One snapshot left unfolded, kept until the reader has added one to the record.
            lock.lock().unwrap().counted += 5;
            u.publish(KEY, counts(local + 5));
            while !saw_snapshot.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            done.store(true, Ordering::Release);
        });
        s.spawn(|| {
            let mut last = 0u64;
            while !done.load(Ordering::Acquire) {
                let g = lock.lock().unwrap();
                let published = u.of(KEY);
                let seen = g.record + published.map_or(0, |c| c.exits);
                assert!(seen >= last, "went backwards: {seen} after {last}");
                assert!(seen <= g.counted, "counted twice: {seen} of {}", g.counted);
                if published.is_some() {
                    saw_snapshot.store(true, Ordering::Release);
                }
                last = seen;
            }
        });
    });
}

#[test]
fn due_after_the_period_at_the_counters_rate() {
    let hz = 62_500_000; // 100 ms = 6,250,000 ticks
    assert!(!due(6_250_000, 0, hz), "exactly the period: not yet");
    assert!(due(6_250_001, 0, hz));
    assert!(!due(5, 10, hz), "a counter behind the start is no time");
    assert!(
        due(1, 0, 0) && !due(0, 0, 0),
        "no counter frequency: a period of 0 ticks"
    );
    assert!(
        !due(1 << 40, 0, u64::MAX),
        "a huge frequency does not overflow"
    );
}

#[test]
fn a_listing_reads_the_cpu_that_has_the_vcpu_loaded() {
    let cpus = [Unfolded::new(), Unfolded::new(), Unfolded::new()];
    let (a, b) = (VcpuKey(0x0100), VcpuKey(0x0201));
    cpus[1].publish(a.0, counts(3));
    // A stale snapshot of `a` on a CPU that no longer has it loaded is not read.
    cpus[2].publish(a.0, counts(99));
    let loaded = [None, Some(a), Some(b)];
    assert_eq!(published(&loaded, &cpus, a), Some(counts(3)));
    assert_eq!(
        published(&loaded, &cpus, b),
        None,
        "loaded, nothing published"
    );
    assert_eq!(
        published(&loaded, &cpus, VcpuKey(7)),
        None,
        "loaded nowhere"
    );
}
