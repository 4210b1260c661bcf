use super::{Invalidation, TlbReach};

#[test]
fn one_cpu_until_another_loads_it_or_a_swap_spreads_it() {
    let mut r = TlbReach::default();
    assert!(!r.local_suffices(true), "never ran: nothing says which CPU");
    r.loaded_on(2);
    r.loaded_on(2);
    assert_eq!(r, TlbReach::One(2));
    assert!(r.local_suffices(true));
    assert!(
        !r.local_suffices(false),
        "not loaded here: another CPU's entries"
    );
    r.loaded_on(3);
    assert_eq!(r, TlbReach::Many);
    r.loaded_on(2);
    assert_eq!(r, TlbReach::Many, "the set never shrinks");
    assert!(!r.local_suffices(true));

    let mut s = TlbReach::default();
    s.loaded_on(0);
    s.spread();
    assert!(!s.local_suffices(true));
}

#[test]
fn a_broadcast_from_a_cpu_not_running_the_domain_spreads_the_set() {
    let mut r = TlbReach::default();
    assert_eq!(r.invalidation(false), Invalidation::Broadcast);
    assert_eq!(r, TlbReach::Many, "the swap loaded its VTTBR on this CPU");
    let mut r = TlbReach::default();
    r.loaded_on(1);
    assert_eq!(r.invalidation(true), Invalidation::Local);
    assert_eq!(r, TlbReach::One(1), "a local invalidation changes nothing");
    assert_eq!(r.invalidation(false), Invalidation::Broadcast);
    assert_eq!(r, TlbReach::Many);
    assert_eq!(
        r.invalidation(true),
        Invalidation::Broadcast,
        "once spread, always"
    );
    // Never ran, but loaded here (cannot happen: loading records the CPU): broadcast.
    assert_eq!(
        TlbReach::default().invalidation(true),
        Invalidation::Broadcast
    );
}
