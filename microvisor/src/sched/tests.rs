//! Host tests of the run-queue policy: priorities, round-robin, exclusivity and budgets.

use super::*;

const A: VcpuKey = VcpuKey(1);
const B: VcpuKey = VcpuKey(2);
const C: VcpuKey = VcpuKey(3);

#[test]
fn highest_priority_first() {
    let mut q = RunQueue::new();
    q.add(A, 1, false).unwrap();
    q.add(B, 5, false).unwrap();
    q.add(C, 3, false).unwrap();
    for _ in 0..5 {
        assert_eq!(q.pick(0), Some(B));
    }
    q.set_runnable(B, false).unwrap();
    assert_eq!(q.pick(0), Some(C));
    q.set_runnable(C, false).unwrap();
    assert_eq!(q.pick(0), Some(A));
    q.set_runnable(A, false).unwrap();
    assert_eq!(q.pick(0), None);
}

#[test]
fn round_robin_among_equals_is_fair() {
    let mut q = RunQueue::new();
    let keys: Vec<VcpuKey> = (10..15).map(VcpuKey).collect();
    for &k in &keys {
        q.add(k, 4, false).unwrap();
    }
    q.add(A, 2, false).unwrap();
    let mut counts = [0usize; 5];
    let mut prev = Vec::new();
    for round in 0..100 {
        let mut seen = Vec::new();
        for _ in 0..5 {
            let k = q.pick(0).unwrap();
            seen.push(k);
            counts[(k.0 - 10) as usize] += 1;
        }
        // Each round runs everyone once, in the same order every time.
        let mut sorted = seen.clone();
        sorted.sort_by_key(|k| k.0);
        assert_eq!(sorted, keys);
        if round > 0 {
            assert_eq!(seen, prev);
        }
        prev = seen;
    }
    assert!(counts.iter().all(|&c| c == 100));
}

#[test]
fn woken_higher_priority_preempts() {
    let mut q = RunQueue::new();
    q.add(A, 1, false).unwrap();
    q.add(B, 9, false).unwrap();
    q.set_runnable(B, false).unwrap();
    assert_eq!(q.pick(0), Some(A));
    assert_eq!(q.pick(0), Some(A));
    q.set_runnable(B, true).unwrap();
    assert_eq!(q.pick(0), Some(B));
}

#[test]
fn blocked_entries_are_skipped_and_rejoin() {
    let mut q = RunQueue::new();
    q.add(A, 3, false).unwrap();
    q.add(B, 3, false).unwrap();
    q.add(C, 3, false).unwrap();
    q.set_runnable(B, false).unwrap();
    let picks: Vec<_> = (0..4).map(|_| q.pick(0).unwrap()).collect();
    assert!(!picks.contains(&B));
    assert_eq!(picks[0..2], picks[2..4]);
    // B has waited longest, so it goes next once woken.
    q.set_runnable(B, true).unwrap();
    assert_eq!(q.pick(0), Some(B));
}

#[test]
fn exclusive_rules() {
    let mut q = RunQueue::new();
    q.add(A, 0, true).unwrap();
    assert!(q.is_exclusive());
    assert_eq!(q.add(B, 9, false), Err(SchedError::ExclusiveConflict));
    assert_eq!(q.add(B, 9, true), Err(SchedError::ExclusiveConflict));
    assert_eq!(q.add(A, 0, true), Err(SchedError::Duplicate));
    assert!(!q.contended(A));
    assert_eq!(q.pick(0), Some(A));
    q.remove(A).unwrap();
    assert!(!q.is_exclusive());
    q.add(B, 1, false).unwrap();
    assert_eq!(q.add(A, 0, true), Err(SchedError::ExclusiveConflict));
    assert!(!q.is_exclusive());
    assert_eq!(q.len(), 1);
}

#[test]
fn capacity_and_bookkeeping() {
    let mut q = RunQueue::new();
    assert!(q.is_empty());
    for i in 0..QUEUE_CAPACITY as u32 {
        q.add(VcpuKey(100 + i), 1, false).unwrap();
    }
    assert_eq!(q.add(A, 1, false), Err(SchedError::Full));
    assert_eq!(q.add(VcpuKey(100), 1, false), Err(SchedError::Duplicate));
    assert_eq!(q.len(), QUEUE_CAPACITY);
    q.remove(VcpuKey(105)).unwrap();
    assert!(!q.contains(VcpuKey(105)));
    q.add(A, 1, false).unwrap();
    assert!(q.contains(A));
    assert_eq!(q.remove(B), Err(SchedError::NotQueued));
    assert_eq!(q.set_runnable(B, true), Err(SchedError::NotQueued));
}

#[test]
fn contention() {
    let mut q = RunQueue::new();
    q.add(A, 5, false).unwrap();
    assert!(!q.contended(A), "alone");
    q.add(B, 1, false).unwrap();
    assert!(!q.contended(A), "only lower priority waiting");
    assert!(q.contended(B), "a higher priority is runnable");
    q.add(C, 5, false).unwrap();
    assert!(q.contended(A), "an equal shares the CPU");
    q.set_runnable(C, false).unwrap();
    assert!(!q.contended(A), "blocked equals do not count");
    assert!(!q.contended(VcpuKey(77)));
}

/// Runs the queue from `from` to `until` as the microvisor does: pick, run until the
/// slice ends (if contended) or a budget event, charge. Returns each key's run time.
fn simulate(q: &mut RunQueue, from: u64, until: u64, slice: u64) -> Vec<(VcpuKey, u64)> {
    let mut ran: Vec<(VcpuKey, u64)> = Vec::new();
    let mut now = from;
    while now < until {
        let Some(k) = q.pick(now) else { break };
        let mut end = if q.contended(k) { now + slice } else { until };
        if let Some(e) = q.next_event(Some(k), now) {
            end = end.min(e);
        }
        let end = end.min(until).max(now + 1);
        q.charge(k, end - now);
        match ran.iter_mut().find(|(key, _)| *key == k) {
            Some((_, t)) => *t += end - now,
            None => ran.push((k, end - now)),
        }
        now = end;
    }
    ran
}

fn share(ran: &[(VcpuKey, u64)], k: VcpuKey) -> u64 {
    ran.iter().find(|(key, _)| *key == k).map_or(0, |r| r.1)
}

#[test]
fn exhausted_budget_yields_to_lower_priorities() {
    let mut q = RunQueue::new();
    q.add(A, 9, false).unwrap();
    q.add(B, 1, false).unwrap();
    q.set_budget(A, Some((20, 100)), 0).unwrap();
    assert_eq!(q.budget(A), Some((20, 100)));
    // Window by window: A first for its 20, then B for the other 80.
    for w in 0..50u64 {
        let ran = simulate(&mut q, w * 100, (w + 1) * 100, 10);
        assert_eq!(share(&ran, A), 20, "window {w}: {ran:?}");
        assert_eq!(share(&ran, B), 80, "window {w}: {ran:?}");
    }
    // Refilled at the window's start, A preempts B at once.
    assert_eq!(q.pick(5000), Some(A));
}

#[test]
fn exhausted_vcpu_runs_in_the_background_and_returns_at_refill() {
    let mut q = RunQueue::new();
    q.add(A, 9, false).unwrap();
    q.add(B, 1, false).unwrap();
    q.set_budget(A, Some((30, 100)), 0).unwrap();
    q.set_runnable(B, false).unwrap();
    // Alone, an exhausted vCPU still gets the whole CPU: budgets do not idle it.
    let ran = simulate(&mut q, 0, 100, 10);
    assert_eq!(share(&ran, A), 100);
    // B wakes at 50 while A is exhausted: B runs until A's refill at 100.
    let mut q2 = q.clone();
    q2.set_budget(A, Some((30, 100)), 0).unwrap();
    q2.charge(A, 30);
    q2.set_runnable(B, true).unwrap();
    assert_eq!(q2.pick(50), Some(B));
    assert_eq!(q2.next_event(Some(B), 50), Some(100));
    assert!(
        !q2.contended(B),
        "an exhausted higher priority does not contend"
    );
    assert_eq!(q2.pick(99), Some(B));
    assert_eq!(q2.pick(100), Some(A));
    assert_eq!(q2.next_event(Some(A), 100), Some(130));
}

#[test]
fn overruns_are_repaid_from_the_following_windows() {
    let mut q = RunQueue::new();
    q.add(A, 9, false).unwrap();
    q.add(B, 1, false).unwrap();
    q.set_budget(A, Some((20, 100)), 0).unwrap();
    assert_eq!(q.pick(0), Some(A));
    // Its timer fired 5 late.
    q.charge(A, 25);
    assert_eq!(q.pick(25), Some(B));
    q.charge(B, 75);
    assert_eq!(q.pick(100), Some(A));
    assert_eq!(
        q.next_event(Some(A), 100),
        Some(115),
        "15 left: 5 were owed"
    );
    q.charge(A, 15);
    assert_eq!(q.pick(115), Some(B));
    // Background time is not owed.
    q.set_runnable(B, false).unwrap();
    assert_eq!(q.pick(150), Some(A));
    q.charge(A, 50);
    assert_eq!(q.pick(200), Some(A));
    assert_eq!(q.next_event(Some(A), 200), Some(220), "a full window");
    // Held up for 50 past its 20: the next two windows repay 20 each, the third 10.
    q.charge(A, 70);
    q.set_runnable(B, true).unwrap();
    for (at, left) in [(300, 0), (400, 0), (500, 10), (600, 20)] {
        let ran = simulate(&mut q, at, at + 100, 10);
        assert_eq!(share(&ran, A), left, "window at {at}: {ran:?}");
    }
    // Owed at most one period; windows slept through repay too.
    q.set_runnable(B, false).unwrap();
    assert_eq!(q.pick(700), Some(A));
    q.charge(A, 1000);
    q.set_runnable(A, false).unwrap();
    q.set_runnable(B, true).unwrap();
    // 100 owed: the windows from 800 to 1100 repay 80 while it sleeps, 1200 the last 20.
    simulate(&mut q, 700, 1150, 10);
    q.set_runnable(A, true).unwrap();
    let ran = simulate(&mut q, 1150, 1300, 10);
    assert_eq!(share(&ran, A), 0, "{ran:?}");
    let ran = simulate(&mut q, 1300, 1400, 10);
    assert_eq!(share(&ran, A), 20, "{ran:?}");
    assert_eq!(q.budget(A), Some((20, 100)));
}

#[test]
fn exhausted_vcpus_share_the_background_by_priority() {
    let mut q = RunQueue::new();
    q.add(A, 9, false).unwrap();
    q.add(B, 5, false).unwrap();
    q.add(C, 1, false).unwrap();
    q.set_budget(A, Some((10, 100)), 0).unwrap();
    q.set_budget(B, Some((10, 100)), 0).unwrap();
    q.set_runnable(C, false).unwrap();
    let ran = simulate(&mut q, 0, 100, 10);
    // A's 10, B's 10, then the background: A (higher) for the remaining 80.
    assert_eq!((share(&ran, A), share(&ran, B)), (90, 10), "{ran:?}");
}

#[test]
fn unused_budget_is_not_carried_over() {
    let mut q = RunQueue::new();
    q.add(A, 9, false).unwrap();
    q.add(B, 1, false).unwrap();
    q.set_budget(A, Some((20, 100)), 0).unwrap();
    q.set_runnable(A, false).unwrap();
    // A sleeps through ten windows, then wakes mid-window: it gets one budget, not ten.
    let ran = simulate(&mut q, 0, 1050, 10);
    assert_eq!(share(&ran, B), 1050);
    q.set_runnable(A, true).unwrap();
    let ran = simulate(&mut q, 1050, 1100, 10);
    assert_eq!((share(&ran, A), share(&ran, B)), (20, 30), "{ran:?}");
    // The next window is a full one again.
    let ran = simulate(&mut q, 1100, 1200, 10);
    assert_eq!((share(&ran, A), share(&ran, B)), (20, 80), "{ran:?}");
}

#[test]
fn budgets_are_checked_and_refused_to_exclusive_vcpus() {
    let mut q = RunQueue::new();
    q.add(A, 0, true).unwrap();
    assert_eq!(
        q.set_budget(A, Some((10, 100)), 0),
        Err(SchedError::ExclusiveConflict)
    );
    assert_eq!(q.budget(A), None);
    let mut q = RunQueue::new();
    q.add(B, 3, false).unwrap();
    assert_eq!(
        q.set_budget(B, Some((0, 100)), 0),
        Err(SchedError::BadBudget)
    );
    assert_eq!(
        q.set_budget(B, Some((101, 100)), 0),
        Err(SchedError::BadBudget)
    );
    assert_eq!(
        q.set_budget(C, Some((1, 100)), 0),
        Err(SchedError::NotQueued)
    );
    q.set_budget(B, Some((100, 100)), 0).unwrap();
    assert!(q.needs_clock());
    q.set_budget(B, None, 0).unwrap();
    assert_eq!(q.budget(B), None);
    assert!(!q.needs_clock());
    assert_eq!(q.next_event(Some(B), 0), None);
    // Removing and re-adding forgets it (the caller re-applies a vCPU's budget).
    q.set_budget(B, Some((5, 10)), 0).unwrap();
    q.remove(B).unwrap();
    assert!(!q.needs_clock());
    q.add(B, 3, false).unwrap();
    assert_eq!(q.budget(B), None);
}

#[test]
fn budgets_never_starve_lower_priorities_under_random_wakeups() {
    // A cheap deterministic LCG: A (budget 25/100, prio 9) blocks and wakes at random;
    // B (prio 1) is always busy. In every window B gets at least the 75 A leaves.
    let mut q = RunQueue::new();
    q.add(A, 9, false).unwrap();
    q.add(B, 1, false).unwrap();
    q.set_budget(A, Some((25, 100)), 0).unwrap();
    let mut seed = 12345u64;
    for w in 0..200u64 {
        let mut b_ran = 0;
        for part in 0..4u64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            q.set_runnable(A, seed >> 63 == 1).unwrap();
            let from = w * 100 + part * 25;
            b_ran += share(&simulate(&mut q, from, from + 25, 10), B);
        }
        assert!(b_ran >= 75, "window {w}: B ran {b_ran}");
    }
}

/// A xorshift generator from `seed`: each call gives a number below its argument.
fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}

/// Random adds and removes leave holes: the scans stop at `used`, so it must stay one past
/// the highest occupied slot, and every queued vCPU must still be found and picked.
#[test]
fn scans_bounded_by_the_highest_slot_see_every_entry() {
    let mut rand = xorshift(0x2545_f491_4f6c_dd1du64);
    let mut q = RunQueue::new();
    let mut queued: Vec<VcpuKey> = Vec::new();
    for _ in 0..20_000 {
        let key = VcpuKey(rand(24) as u32);
        if queued.contains(&key) {
            q.remove(key).unwrap();
            queued.retain(|&k| k != key);
        } else if q.add(key, rand(3) as u8, false).is_ok() {
            queued.push(key);
        }
        let highest = q
            .entries
            .iter()
            .rposition(|e| e.is_some())
            .map_or(0, |i| i + 1);
        assert_eq!(q.used, highest);
        assert_eq!(q.len(), queued.len());
        for &k in &queued {
            assert!(q.contains(k));
        }
        // Each pick takes a queued vCPU of the highest priority present.
        if let Some(top) = queued
            .iter()
            .filter_map(|&k| q.entries.iter().flatten().find(|e| e.key == k))
            .map(|e| e.priority)
            .max()
        {
            let picked = q.pick(0).unwrap();
            let e = q
                .entries
                .iter()
                .flatten()
                .find(|e| e.key == picked)
                .unwrap();
            assert_eq!(e.priority, top);
        } else {
            assert_eq!(q.pick(0), None);
        }
    }
}

#[test]
fn a_walk_by_slot_finds_every_queued_vcpu_runnable_or_not() {
    let queued = |q: &RunQueue| -> Vec<u32> {
        let mut keys: Vec<u32> = (0..q.slots())
            .filter_map(|s| q.key_in(s))
            .map(|k| k.0)
            .collect();
        keys.sort_unstable();
        keys
    };
    let mut q = RunQueue::new();
    let k = VcpuKey;
    assert_eq!(q.slots(), 0);
    for n in [1, 2, 3, 4] {
        q.add(k(n), 1, false).unwrap();
    }
    q.set_runnable(k(3), false).unwrap();
    q.remove(k(2)).unwrap();
    assert_eq!(queued(&q), [1, 3, 4]);
    assert_eq!(q.key_in(q.slots()), None);
    assert_eq!(q.key_in(usize::MAX), None);
    q.remove(k(4)).unwrap();
    q.add(k(9), 1, false).unwrap();
    assert_eq!(queued(&q), [1, 3, 9]);
}

/// The plain scans `pick` and `contended` replace: the runnable entry first by rank, then
/// least recently picked (the first of equals), and whether another runnable entry ranks
/// as high. Reads a copy of the queue with the budgets moved to `now`, as `pick` does.
fn model_pick(q: &RunQueue, now: u64) -> Option<VcpuKey> {
    let mut q = q.clone();
    for b in q
        .entries
        .iter_mut()
        .flatten()
        .filter_map(|e| e.budget.as_mut())
    {
        b.refresh(now);
    }
    q.iter()
        .filter(|e| e.runnable)
        .min_by(|a, b| b.rank().cmp(&a.rank()).then(a.last_run.cmp(&b.last_run)))
        .map(|e| e.key)
}

fn model_contended(q: &RunQueue, key: VcpuKey) -> bool {
    let Some(me) = q.iter().find(|e| e.key == key) else {
        return false;
    };
    q.iter()
        .any(|e| e.key != key && e.runnable && e.rank() >= me.rank())
}

/// Random adds, removes, wake-ups, budgets, charges and picks: every pick chooses what the
/// plain scan would, and `contended` (remembered from the pick or scanned) and `alone`
/// always answer as the plain scans do, for every key, queued or not.
#[test]
fn pick_and_contention_match_the_plain_scans() {
    let mut rand = xorshift(0x9e37_79b9_7f4a_7c15u64);
    let mut q = RunQueue::new();
    let mut now = 0u64;
    let mut contended_picks = 0;
    for _ in 0..50_000 {
        let key = VcpuKey(rand(6) as u32);
        match rand(8) {
            0 => {
                let _ = q.add(key, rand(3) as u8, false);
            }
            1 if rand(4) == 0 => {
                let _ = q.remove(key);
            }
            2 | 3 => {
                let _ = q.set_runnable(key, rand(3) != 0);
            }
            4 => {
                let budget = (rand(3) != 0).then(|| (1 + rand(50), 50 + rand(50)));
                let _ = q.set_budget(key, budget, now);
            }
            5 => q.charge(key, rand(60)),
            _ => {
                now += rand(40);
                let want = model_pick(&q, now);
                let got = q.pick(now);
                assert_eq!(got, want);
                if got.is_some_and(|k| q.contended(k)) {
                    contended_picks += 1;
                }
            }
        }
        for k in 0..7 {
            let key = VcpuKey(k);
            assert_eq!(q.contended(key), model_contended(&q, key));
            // The runnable count behind `alone` agrees with a scan of the others.
            assert_eq!(q.alone(key), !q.others(key).any(|(_, runnable)| runnable));
        }
    }
    assert!(contended_picks > 1000, "the contended case was exercised");
}

/// `contended` right after a pick (the answer the pick remembered) follows every later
/// change to the queue.
#[test]
fn remembered_contention_follows_changes() {
    let mut q = RunQueue::new();
    q.add(A, 5, false).unwrap();
    q.add(B, 5, false).unwrap();
    assert_eq!(q.pick(0), Some(A));
    assert!(q.contended(A));
    q.set_runnable(B, false).unwrap();
    assert!(!q.contended(A), "its equal blocked");
    q.set_runnable(B, true).unwrap();
    assert!(q.contended(A), "and woke");
    q.remove(B).unwrap();
    assert!(!q.contended(A), "removed");
    q.add(C, 5, false).unwrap();
    assert!(q.contended(A), "an equal added");
    q.set_budget(C, Some((10, 100)), 0).unwrap();
    assert_eq!(q.pick(0), Some(C));
    assert!(q.contended(C));
    q.charge(C, 10);
    assert!(q.contended(C), "exhausted, A still ranks above it");
    assert!(!q.contended(A), "A now outranks the exhausted C");
}

#[test]
fn others_lists_the_rest_of_the_queue_with_whether_each_is_runnable() {
    let mut q = RunQueue::new();
    q.add(A, 1, false).unwrap();
    q.add(B, 5, false).unwrap();
    q.add(C, 3, false).unwrap();
    q.set_runnable(C, false).unwrap();
    assert_eq!(q.others(A).collect::<Vec<_>>(), [(B, true), (C, false)]);
    q.remove(B).unwrap();
    assert_eq!(q.others(A).collect::<Vec<_>>(), [(C, false)]);
    assert_eq!(q.others(C).collect::<Vec<_>>(), [(A, true)]);
    assert_eq!(
        q.others(VcpuKey(9)).count(),
        2,
        "a key not queued: everyone"
    );
    assert!(q.alone(A));
    assert!(!q.alone(C), "A is runnable");
    q.set_runnable(A, false).unwrap();
    assert!(q.alone(C) && q.alone(A), "nobody runnable");
}
