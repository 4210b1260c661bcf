//! A guest printing as fast as it can cannot take the shared console from the others: the
//! microvisor drops its excess lines (and says how many), and the RTOS keeps ticking.

use bulkhead_tests::{boot_expect, Expect};

#[test]
fn console_flood_is_rate_limited() {
    let expect = Expect::new()
        .then(r"bulkhead: d\d+ \(flood\): \d+ console lines dropped \(rate limit\)")
        // Any report after the flood began: the tick count at a report may be one over
        // the second (a tick lands just before it on a loaded host).
        .and_then(|e| e.then(r"\[rtos\] uptime \d+s ticks \d+"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|flood)\) stopped"))
        .expect("markers");
    boot_expect("flood", expect);
}
