use super::{deadline_ticks, earlier, PollWait};
use alloc::vec;

#[test]
fn no_timeout_is_no_deadline() {
    assert_eq!(deadline_ticks(0, 62_500_000), None);
    assert!(!PollWait::new(vec![3], None).expired(u64::MAX));
}

#[test]
fn a_timeout_becomes_a_counter_value_rounded_up() {
    // QEMU virt's 62.5 MHz counter: 16 ns a tick.
    assert_eq!(deadline_ticks(16, 62_500_000), Some(1));
    assert_eq!(deadline_ticks(17, 62_500_000), Some(2));
    assert_eq!(deadline_ticks(1_000_000_000, 62_500_000), Some(62_500_000));
    // A 1 GHz counter: one tick a nanosecond.
    assert_eq!(deadline_ticks(12_345, 1_000_000_000), Some(12_345));
    // Never before the timeout: the tick found, turned back into time, is not earlier.
    for ns in [1u64, 999, 1_000_001, 7_777_777_777] {
        for hz in [1_000_000u64, 24_000_000, 62_500_000, 100_000_000] {
            let t = deadline_ticks(ns, hz).unwrap();
            assert!(u128::from(t) * 1_000_000_000 >= u128::from(ns) * u128::from(hz));
            assert!((u128::from(t) - 1) * 1_000_000_000 < u128::from(ns) * u128::from(hz));
        }
    }
}

#[test]
fn a_timeout_past_the_counter_never_ends() {
    assert_eq!(deadline_ticks(u64::MAX, 100_000_000_000), Some(u64::MAX));
}

#[test]
fn a_wait_ends_at_its_deadline_and_for_its_own_ports() {
    let w = PollWait::new(vec![5, 9], Some(100));
    assert!(!w.expired(99));
    assert!(w.expired(100));
    assert!(w.wants(5) && w.wants(9) && !w.wants(6));
    assert_eq!(w.deadline(), Some(100));
}

#[test]
fn earlier_of_optional_deadlines() {
    assert_eq!(earlier(None, None), None);
    assert_eq!(earlier(Some(3), None), Some(3));
    assert_eq!(earlier(None, Some(4)), Some(4));
    assert_eq!(earlier(Some(7), Some(4)), Some(4));
}
