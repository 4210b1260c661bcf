use super::{
    emergency_slot, guard, guard_holding, overflowed, top, GUARD_BYTES, STACK_BYTES, STRIDE,
};

const BASE: u64 = 0x4050_0000;
const CPUS: usize = 8;

#[test]
fn slots_are_a_guard_under_a_stack_and_page_aligned() {
    assert_eq!(STRIDE, GUARD_BYTES + STACK_BYTES);
    assert_eq!(STRIDE % 4096, 0);
    assert_eq!(guard(BASE, 0), (BASE, GUARD_BYTES));
    assert_eq!(guard(BASE, 3), (BASE + 3 * STRIDE, GUARD_BYTES));
    assert_eq!(top(BASE, 0), BASE + STRIDE);
    // A stack's lowest byte is just above its own guard; its top is the next slot's guard.
    assert_eq!(top(BASE, 2) - STACK_BYTES, guard(BASE, 2).0 + GUARD_BYTES);
    assert_eq!(top(BASE, 2), guard(BASE, 3).0);
}

#[test]
fn guard_holding_names_only_guard_bytes() {
    let (g5, len) = guard(BASE, 5);
    assert_eq!(guard_holding(BASE, CPUS, g5), Some(5));
    assert_eq!(guard_holding(BASE, CPUS, g5 + len - 1), Some(5));
    // The stack's lowest byte and the byte below the guard (CPU 4's stack top) are not.
    assert_eq!(guard_holding(BASE, CPUS, g5 + len), None);
    assert_eq!(guard_holding(BASE, CPUS, g5 - 1), None);
    // Below the array, past its last CPU, and at the far end of the address space.
    assert_eq!(guard_holding(BASE, CPUS, BASE - 1), None);
    assert_eq!(guard_holding(BASE, CPUS, guard(BASE, CPUS).0), None);
    assert_eq!(guard_holding(BASE, CPUS, u64::MAX), None);
    assert_eq!(guard_holding(BASE, 2, guard(BASE, 2).0), None);
}

#[test]
fn an_overflow_is_named_by_the_fault_address_or_the_stack_pointer() {
    let (g1, _) = guard(BASE, 1);
    let in_stack = top(BASE, 1) - 64;
    // A push into the guard: both point into it.
    assert_eq!(overflowed(BASE, CPUS, g1 + 8, g1 + 16), Some(1));
    // A large frame whose first store was still above the guard: SP tells.
    assert_eq!(overflowed(BASE, CPUS, in_stack, g1 + 100), Some(1));
    // Some other fault at EL2 on a healthy stack is not an overflow.
    assert_eq!(overflowed(BASE, CPUS, 0x10, in_stack), None);
}

#[test]
fn the_emergency_slot_is_the_stack_sp_is_in_or_the_last() {
    assert_eq!(emergency_slot(BASE, CPUS, top(BASE, 0) - 1), 0);
    assert_eq!(emergency_slot(BASE, CPUS, guard(BASE, 6).0), 6);
    assert_eq!(emergency_slot(BASE, CPUS, top(BASE, 6) - 16), 6);
    // An SP outside the array, below or above it, takes the last slot.
    assert_eq!(emergency_slot(BASE, CPUS, BASE - 16), CPUS - 1);
    assert_eq!(
        emergency_slot(BASE, CPUS, top(BASE, CPUS - 1) + 4096),
        CPUS - 1
    );
    assert_eq!(emergency_slot(BASE, CPUS, u64::MAX), CPUS - 1);
}
