//! Where each physical CPU's EL2 stack and the guard page below it lie in the one stack
//! array, and which CPU's stack a fault address says overflowed.
//!
//! The array is `MAX_CPUS` slots of [`STRIDE`] bytes, each a guard of [`GUARD_BYTES`] under
//! a stack of [`STACK_BYTES`]; a stack grows down from its slot's end towards its guard. The
//! EL2 identity map leaves every guard unmapped, so a stack that outgrows its slot takes a
//! translation fault at EL2 instead of silently overwriting the CPU below it. The vectors
//! then switch to a small per-CPU emergency stack (the faulting one cannot take a push) and
//! panic, naming the CPU through [`overflowed`].
//!
//! Why a guard of 16 KiB when one page would do for compiled code: this target has inline
//! stack probes (rustc touches each 4 KiB of a frame larger than a page as it allocates
//! it), so no compiled frame steps over a page-sized guard. The rest is margin for
//! assembly that moves SP by hand (today only pushes of at most 112 bytes).
#![forbid(unsafe_code)]

use protocol::addr::PAGE_SIZE;

/// Bytes of stack each CPU may use. The deepest path known, a driver domain's restart in
/// place on CPU 0 under the boot CPU's start-up frames, used about 55 KiB (traced by
/// painting the stack).
pub const STACK_BYTES: u64 = 128 * 1024;
/// Bytes of unmapped guard below each stack.
pub const GUARD_BYTES: u64 = 4 * PAGE_SIZE;
/// Bytes from one CPU's slot to the next: its guard and its stack.
pub const STRIDE: u64 = GUARD_BYTES + STACK_BYTES;
/// Bytes of each CPU's emergency stack, which only the panic that reports an exception at
/// EL2 runs on (formatting the message and writing it out).
pub const EMERGENCY_BYTES: u64 = 16 * 1024;

/// The guard of `cpu`'s slot in an array at `base`: its start and length.
pub const fn guard(base: u64, cpu: usize) -> (u64, u64) {
    (base + cpu as u64 * STRIDE, GUARD_BYTES)
}

/// The initial stack pointer of `cpu`: the end of its slot.
pub const fn top(base: u64, cpu: usize) -> u64 {
    base + (cpu as u64 + 1) * STRIDE
}

/// The CPU (below `cpus`) whose guard holds `addr`, in an array at `base`.
pub fn guard_holding(base: u64, cpus: usize, addr: u64) -> Option<usize> {
    let offset = addr.checked_sub(base)?;
    let cpu = usize::try_from(offset / STRIDE).ok()?;
    (cpu < cpus && offset % STRIDE < GUARD_BYTES).then_some(cpu)
}

/// Which CPU's stack overflowed, if an exception taken at EL2 with fault address `far` and
/// stack pointer `sp` says one did: either lies in a guard. The fault address of a push into
/// a guard is in it; the stack pointer is too unless a frame's first store was above it.
pub fn overflowed(base: u64, cpus: usize, far: u64, sp: u64) -> Option<usize> {
    guard_holding(base, cpus, far).or_else(|| guard_holding(base, cpus, sp))
}

/// Which emergency stack the vectors use for an exception taken with stack pointer `sp`:
/// the slot `sp` lies in (a stack or its guard), or the last one for an `sp` outside them
/// all. The vectors compute the same in assembly; this is its statement, host-tested.
pub fn emergency_slot(base: u64, cpus: usize, sp: u64) -> usize {
    let last = cpus.saturating_sub(1);
    sp.checked_sub(base)
        .and_then(|offset| usize::try_from(offset / STRIDE).ok())
        .map_or(last, |slot| slot.min(last))
}

#[cfg(test)]
#[path = "el2_stack_tests.rs"]
mod tests;
