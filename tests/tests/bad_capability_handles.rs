//! Forged, stale and wrong-kind capability handles get typed errors, not crashes.

use bulkhead_tests::{boot_expect, Expect};

#[test]
fn bad_capability_handles() {
    let expect = Expect::new()
        .then(r"\[badcap\] PASS")
        .and_then(|e| e.forbid(r"\[badcap\] FAIL"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(badcap\) stopped"))
        .expect("markers");
    boot_expect("badcap", expect);
}
