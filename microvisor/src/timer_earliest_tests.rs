use super::{
    armed, due_within, switched_out, wake_at, EarliestTimer, SwitchedOut, CNTV_ENABLE, CNTV_IMASK,
};

use crate::test_rng::Rng;

fn exact(set: &[Option<u64>]) -> Option<u64> {
    set.iter().flatten().copied().min()
}

#[test]
fn starts_unknown_and_forgets() {
    let mut e = EarliestTimer::UNKNOWN;
    assert_eq!(e.get(), None);
    e.found(Some(5));
    assert_eq!(e.get(), Some(Some(5)));
    e.forget();
    assert_eq!(e.get(), None);
    // Nothing learnt from a join while unknown.
    e.joined(Some(3));
    assert_eq!(e.get(), None);
}

#[test]
fn joins_lower_the_answer() {
    let mut e = EarliestTimer::UNKNOWN;
    e.found(None);
    e.joined(None);
    assert_eq!(e.get(), Some(None));
    e.joined(Some(9));
    assert_eq!(e.get(), Some(Some(9)));
    e.joined(Some(12));
    assert_eq!(e.get(), Some(Some(9)));
    e.joined(Some(4));
    assert_eq!(e.get(), Some(Some(4)));
}

#[test]
fn leaving_keeps_the_answer_only_when_later() {
    let mut e = EarliestTimer::UNKNOWN;
    e.found(Some(10));
    e.left(None);
    assert_eq!(e.get(), Some(Some(10)));
    e.left(Some(11));
    assert_eq!(e.get(), Some(Some(10)));
    // Equal: it may have been the earliest.
    e.left(Some(10));
    assert_eq!(e.get(), None);
    e.found(None);
    e.left(Some(1));
    assert_eq!(e.get(), None);
}

/// Random joins, leaves, scans and forgets against a model of the set: whenever an answer
/// is given it is exactly the earliest armed deadline (never later, never earlier).
#[test]
fn answers_are_exact_over_random_runs() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut answered = 0u32;
    for _ in 0..2_000 {
        let mut set: Vec<Option<u64>> = Vec::new();
        let mut e = EarliestTimer::UNKNOWN;
        for _ in 0..64 {
            match rng.below(10) {
                0 | 1 => e.found(exact(&set)),
                2 => e.forget(),
                3..=5 => {
                    let t = (rng.below(3) != 0).then(|| rng.below(20));
                    set.push(t);
                    e.joined(t);
                }
                _ => {
                    if !set.is_empty() {
                        let i = rng.below(set.len() as u64) as usize;
                        let t = set.swap_remove(i);
                        e.left(t);
                    }
                }
            }
            if let Some(known) = e.get() {
                assert_eq!(known, exact(&set), "set {set:?}");
                answered += 1;
            }
        }
    }
    // The property was exercised, not vacuously true.
    assert!(answered > 10_000, "only {answered} answers");
}

#[test]
fn a_waiting_vcpu_is_woken_ahead_by_the_lead_and_a_runnable_one_at_its_deadline() {
    let lead = 10;
    // (armed, powered, blocked, deadline, now) -> what happens
    let cases = [
        ((true, true, true, 100, 100), SwitchedOut::Due),
        ((true, true, false, 100, 150), SwitchedOut::Due),
        // Powered off and armed: still injected once due, never woken ahead.
        ((true, false, true, 100, 100), SwitchedOut::Due),
        ((true, false, true, 100, 95), SwitchedOut::Idle),
        ((false, true, true, 100, 200), SwitchedOut::Idle),
        // Waiting: woken from `deadline - lead` on.
        ((true, true, true, 100, 90), SwitchedOut::WakeAhead),
        ((true, true, true, 100, 99), SwitchedOut::WakeAhead),
        ((true, true, true, 100, 89), SwitchedOut::Later(90)),
        // Runnable (not waiting for it): only at its deadline.
        ((true, true, false, 100, 95), SwitchedOut::Later(100)),
        // A lead longer than the time since zero does not wrap.
        ((true, true, true, 5, 0), SwitchedOut::WakeAhead),
    ];
    for ((armed, powered, blocked, deadline, now), want) in cases {
        assert_eq!(
            switched_out(armed, powered, blocked, deadline, now, lead),
            want,
            "armed {armed} powered {powered} blocked {blocked} deadline {deadline} now {now}"
        );
    }
    assert_eq!(wake_at(100, true, 10), 90);
    assert_eq!(wake_at(100, false, 10), 100);
}

#[test]
fn a_timer_is_armed_only_enabled_and_unmasked_and_due_within_the_lead_counts_from_it() {
    assert!(armed(CNTV_ENABLE));
    // ISTATUS (bit 2) is the hardware's, not part of the question.
    assert!(armed(CNTV_ENABLE | 1 << 2));
    assert!(!armed(CNTV_ENABLE | CNTV_IMASK));
    assert!(!armed(0));
    assert!(!armed(CNTV_IMASK));
    assert!(due_within(100, 90, 10));
    assert!(due_within(100, 150, 10));
    assert!(!due_within(100, 89, 10));
    assert!(due_within(5, 0, 10));
}
