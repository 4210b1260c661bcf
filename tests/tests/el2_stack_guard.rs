//! An EL2 stack that overflows faults on its guard page and the microvisor says so, instead
//! of silently writing over the stack below it (the next CPU's) and failing later.
//!
//! The boot asks for the `el2-stack-overflow` self-test on the command line (QEMU's
//! `-append` becomes `/chosen/bootargs`): CPU 0 recurses, with the EL2 MMU on, until its
//! stack reaches the guard. The vectors must then switch to the emergency stack and panic
//! with a message naming the overflow; a hang, a different panic or the self-test's own
//! "grew without a fault" all fail the test.

use bulkhead_tests::{boot_edited_expect, Expect};

#[test]
fn an_el2_stack_overflow_faults_on_its_guard_and_is_named() {
    let expect = Expect::new()
        .then(r"bulkhead: self-test: overflowing CPU 0's EL2 stack into its guard")
        .and_then(|e| e.then(r"bulkhead: PANIC: panicked at .*vectors\.rs"))
        .and_then(|e| {
            e.then(r"EL2 stack overflow on CPU 0: SP 0x[0-9a-f]+ reached the guard at 0x[0-9a-f]+")
        })
        .and_then(|e| e.forbid(r"self-test failed"))
        .and_then(|e| e.forbid(r"boot option .* not understood"))
        .expect("markers");
    boot_edited_expect("badcap", expect, |_, args| {
        args.extend([
            "-append".to_string(),
            "bulkhead.selftest=el2-stack-overflow".to_string(),
        ]);
    });
}
