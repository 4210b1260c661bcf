//! Threads on one vCPU for a domain's own scheduler (the RTOS): stacks from the heap and
//! context switches. Scheduling policy is the domain's; this only saves and restores.
//!
//! Slot 0 is the context that first switches (usually the domain's main function, which
//! becomes its idle thread). Every call needs IRQs masked and must come from one vCPU.

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use crate::arch;
    use alloc::vec;

    pub use crate::arch::{switch_to, thread_current as current, MAX_THREADS};

    /// Creates thread slot `slot` with a `stack_bytes` stack (never freed) that runs
    /// `entry(arg)` with IRQs masked when first switched to. Panics on a bad slot.
    pub fn create(slot: usize, stack_bytes: usize, entry: fn(usize) -> !, arg: usize) {
        let stack = vec![0u8; stack_bytes].leak();
        arch::thread_create(slot, stack, entry, arg);
    }
}
