use super::{Census, LazyRam, State};
use protocol::addr::PhysAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

fn pieces() -> Vec<(PhysAddr, u64)> {
    vec![
        (PhysAddr::new(0x8000_0000), 0x10_0000),
        (PhysAddr::new(0x9000_0000), 0x10_0000),
    ]
}

static FORWARD_CALLS: AtomicU32 = AtomicU32::new(0);
fn forward_scrub(_: PhysAddr, _: u64) {
    FORWARD_CALLS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn a_block_is_scrubbed_once_piece_by_piece_and_its_state_only_moves_forwards() {
    let lazy = LazyRam::new(4, forward_scrub);
    assert_eq!(lazy.len(), 4);
    assert_eq!(lazy.state(0), State::Pending);
    assert_eq!(lazy.state(9), State::Mapped, "past the end nothing is lazy");
    assert!(!lazy.set_mapped(0), "a pending block cannot be mapped");
    assert!(lazy.ensure_clean(0, pieces));
    assert_eq!(
        FORWARD_CALLS.load(Ordering::SeqCst),
        2,
        "one call per host piece"
    );
    assert_eq!(lazy.state(0), State::Clean);
    assert!(lazy.ensure_clean(0, || panic!("a clean block is not scrubbed again")));
    assert!(lazy.set_mapped(0));
    assert!(!lazy.set_mapped(0), "mapped once");
    assert!(lazy.ensure_clean(0, || panic!("nor a mapped one")));
    lazy.set_built(1);
    assert_eq!(lazy.state(1), State::Mapped);
    assert!(lazy.ensure_clean(1, || panic!("the build scrubbed it")));
    assert_eq!(
        lazy.scrubbed(),
        1,
        "only block 0 was scrubbed on first touch"
    );
    assert_eq!(lazy.state(2), State::Pending, "the others are untouched");
    assert_eq!(
        lazy.census(),
        Census {
            built: 1,
            touched: 1,
            resolved: 0,
            never: 2
        }
    );
}

static RACE_CALLS: AtomicU32 = AtomicU32::new(0);
static RACE_DONE: AtomicBool = AtomicBool::new(false);
fn race_scrub(_: PhysAddr, _: u64) {
    RACE_CALLS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(20));
    RACE_DONE.store(true, Ordering::SeqCst);
}

#[test]
fn cpus_racing_for_one_block_scrub_it_once_and_all_return_after_the_scrub() {
    let lazy = LazyRam::new(1, race_scrub);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                assert!(lazy.ensure_clean(0, || vec![(PhysAddr::new(0x8000_0000), 0x20_0000)]));
                assert!(
                    RACE_DONE.load(Ordering::SeqCst),
                    "returned before the block was zeroed"
                );
            });
        }
    });
    assert_eq!(RACE_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(lazy.state(0), State::Clean);
}

static RETIRE_RELEASE: AtomicBool = AtomicBool::new(false);
static RETIRE_IN_SCRUB: AtomicBool = AtomicBool::new(false);
static RETIRE_SCRUB_OVER: AtomicBool = AtomicBool::new(false);
static RETIRE_CALLS: AtomicU32 = AtomicU32::new(0);
fn retire_scrub(_: PhysAddr, _: u64) {
    RETIRE_CALLS.fetch_add(1, Ordering::SeqCst);
    RETIRE_IN_SCRUB.store(true, Ordering::SeqCst);
    while !RETIRE_RELEASE.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    RETIRE_SCRUB_OVER.store(true, Ordering::SeqCst);
}

#[test]
fn retiring_waits_for_a_scrub_in_progress_and_no_scrub_starts_after_it() {
    let lazy = LazyRam::new(2, retire_scrub);
    std::thread::scope(|s| {
        s.spawn(|| assert!(lazy.ensure_clean(0, pieces)));
        while !RETIRE_IN_SCRUB.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let retired = s.spawn(|| {
            lazy.retire();
            assert!(
                RETIRE_SCRUB_OVER.load(Ordering::SeqCst),
                "retire returned while a scrub still wrote the frames"
            );
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(!retired.is_finished(), "retire must wait for the scrub");
        RETIRE_RELEASE.store(true, Ordering::SeqCst);
    });
    let calls = RETIRE_CALLS.load(Ordering::SeqCst);
    assert!(
        !lazy.ensure_clean(1, pieces),
        "a retired domain's block is refused"
    );
    assert_eq!(
        RETIRE_CALLS.load(Ordering::SeqCst),
        calls,
        "and not scrubbed"
    );
    assert_eq!(lazy.state(1), State::Pending);
}
