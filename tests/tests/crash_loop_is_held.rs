//! A guest that crashes at once (`mode=crash`, `on_crash = "restart"`) is restarted in
//! place with the same domain id, the handle to its previous incarnation is refused as
//! stale, and after the crash-loop limit it is held; the RTOS and an SMP guest carry on.
//! The first restart is immediate, the crash loop's later ones back off.

use bulkhead_tests::{boot_expect, Expect};

#[test]
fn crash_loop_is_held() {
    // dom0's lines come from one vCPU, so they are matched in order; the guests' own
    // lines interleave freely and are checked in the log afterwards.
    let crashy = r"\[dom0\] crashy \(d3\)";
    let steps = [
        r"\[dom0\] started crashy \(d3\)".to_string(),
        r"\[dom0\] all domains started".to_string(),
        // The first crash in the window restarts at once; an incarnation that crashes
        // again before it ran `settle` (1 s) is in a crash loop and backs off. (A host that
        // stalls the machine for a second makes even a crash at once look settled.)
        format!(r"{crashy}: crashed \(code 0xdead\) -> restart in 0 ms"),
        format!(r"{crashy}: restarted \(restart 1, 1 within 30 s\)"),
        r"\[dom0\] old handle of crashy is stale: ok".to_string(),
        format!(r"{crashy}: crashed \(code 0xdead\) -> restart in (100|0) ms"),
        format!(r"{crashy}: restarted \(restart 2, 2 within 30 s\)"),
        format!(r"{crashy}: crashed \(code 0xdead\) -> restart in (200|0) ms"),
        format!(r"{crashy}: restarted \(restart 3, 3 within 30 s\)"),
        format!(r"{crashy}: crash loop, held after 3 restarts"),
        // Time keeps flowing for the RTOS after the hold.
        r"\[rtos\] uptime \d+s ticks \d+".to_string(),
        r"\[rtos\] uptime \d+s ticks \d+".to_string(),
    ];
    let mut expect = Expect::new();
    for s in &steps {
        expect = expect.then(s).expect("marker");
    }
    let expect = expect
        .forbid(r"FAIL")
        .and_then(|e| e.forbid(r"\[dom0\] crashy \(d\d+\): restarted \(restart 4"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|smp)\) stopped: (stage-2|unhandled|crash)"))
        .and_then(|e| e.forbid(r"could not be rebuilt"))
        .expect("markers");
    let out = boot_expect("crash_loop", expect);
    assert!(
        out.log.contains("[smp] PASS"),
        "no [smp] PASS in {}",
        out.log_path.display()
    );
    let crashes = out.log.matches("[crashy] crashing on purpose").count();
    assert_eq!(
        crashes,
        4,
        "one first run and three restarts: {}",
        out.log_path.display()
    );
}
