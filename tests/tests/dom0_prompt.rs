//! dom0's console prompt: the management verbs typed on the board's console (no host link
//! needed). Console input goes to dom0 first.

use bulkhead_tests::{boot_expect, Expect};

#[test]
fn dom0_prompt_answers_management_verbs() {
    let expect = Expect::new()
        .send_when(r"\[dom0\] all domains started", b"list\r")
        .and_then(|e| e.then(r"\[dom0\] Name +ID +Mem VCPUs State"))
        .and_then(|e| e.then(r"\[dom0\] rtos +1 +8 +1 running"))
        .and_then(|e| e.send_when(r"\[dom0\] rtos +1 ", b"pause nosuch\r"))
        .and_then(|e| e.then(r"\[dom0\] pause: no such domain"))
        .expect("markers");
    boot_expect("default_boot", expect);
}
