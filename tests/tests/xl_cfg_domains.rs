//! Domains defined by Xen xl.cfg files (`config = "x.cfg"` in the system description) boot
//! and get their xl policies: `on_poweroff = "destroy"` destroys, `"preserve"` keeps.

use bulkhead_tests::{boot_expect, Expect};

#[test]
fn xl_cfg_domains() {
    let expect = Expect::new()
        .all(&[
            r"\[dom0\] started xlsmp \(d\d+\)",
            r"\[dom0\] started kept \(d\d+\)",
            r"\[xlsmp\] PASS",
            r"\[kept\] PASS",
            r"\[dom0\] xlsmp \(d\d+\): powered off -> destroy",
            r"\[dom0\] kept \(d\d+\): powered off -> preserve",
        ])
        .and_then(|e| e.then(r"\[rtos\] uptime \d+s ticks \d+"))
        .and_then(|e| e.forbid(r"FAIL"))
        .and_then(|e| e.forbid(r"destroy failed"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \(rtos\) stopped"))
        .expect("markers");
    boot_expect("xl_domains", expect);
}
