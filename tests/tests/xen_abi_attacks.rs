//! An XTF-style guest attacks the Xen-compatible ABI (DESIGN §7): every misuse gets the
//! errno or `GNTST_*` status the microvisor defines, the attacker is never stopped for it,
//! and nobody else notices (the RTOS keeps ticking, the SMP guest sharing the attacker's
//! CPU passes, dom0 keeps serving).

use bulkhead_tests::{boot_expect, Expect};

#[test]
fn xen_abi_attacks_get_defined_errors() {
    let uptime = r"\[rtos\] uptime \d+s ticks \d+";
    let expect = Expect::new()
        // In any order: the positive checks ran (so the run is not vacuous), the SMP guest
        // sharing the attacker's CPU passed, and the verdict: at least 200 checks, none
        // failed.
        .all(&[
            r"\[xenbad\] xenbad: attacking as d\d+",
            r"\[xenbad\] xenbad: loopback event ok",
            r"\[xenbad\] xenbad: poll ends at its timeout ok",
            r"\[xenbad\] xenbad: poll woken by its masked port ok",
            r"\[xenbad\] xenbad: gnttab map own grant ok",
            r"\[xenbad\] xenbad: no pin left behind ok",
            r"\[smp\] PASS",
            r"\[xenbad\] xenbad: done [2-9]\d\d checks, 0 failures",
        ])
        // After the attack the neighbours still run, and so does the attacker.
        .and_then(|e| e.then(uptime))
        .and_then(|e| e.then(r"\[xenbad\] xenbad: still alive 2 "))
        .and_then(|e| e.then(uptime))
        .and_then(|e| e.forbid(r"\[xenbad\] xenbad: .* FAIL "))
        .and_then(|e| e.forbid(r"\[xenbad\] xenbad: done \d+ checks, [1-9]"))
        .and_then(|e| e.forbid(r"\[(xenbad|smp|rtos|dom0)\] (FAIL|.*panic)"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((xenbad|rtos|dom0)\) stopped"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(smp\) stopped: (stage-2|unhandled)"))
        .and_then(|e| e.forbid(r"bulkhead: PANIC"))
        .expect("markers");
    boot_expect("xenbad", expect);
}
