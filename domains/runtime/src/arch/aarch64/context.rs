//! Thread contexts for a domain that runs several threads on one vCPU (the RTOS): each
//! thread has its own stack; a switch saves the callee-saved registers (x19-x30) and SP of
//! the running thread and loads those of the next.
//!
//! Invariants: switches happen only on the vCPU that made the first one (the table's
//! owner) and only with IRQs masked, so the table is never accessed concurrently; a slot
//! is switched to only once it holds a valid context (created, or saved by a switch away
//! from it). Caller-saved registers need no saving: `switch_to` is an ordinary call, and
//! a thread preempted by an interrupt has them in the IRQ frame on its own stack. FP/SIMD
//! state is not switched (domains are built soft-float).

use super::regs::daif;
use core::arch::global_asm;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Most thread slots (slot 0 is the context that first calls [`switch_to`]).
pub const MAX_THREADS: usize = 32;
const NO_OWNER: usize = usize::MAX;

#[repr(C)]
#[derive(Clone, Copy)]
struct Context {
    /// x19..x30 (x29 = FP, x30 = LR: where the switch returns to).
    regs: [u64; 12],
    sp: u64,
}

impl Context {
    const EMPTY: Self = Self {
        regs: [0; 12],
        sp: 0,
    };
}

/// A thread's entry function and its argument.
type Entry = (fn(usize) -> !, usize);

struct Table {
    ctx: UnsafeCell<[Context; MAX_THREADS]>,
    entries: UnsafeCell<[Option<Entry>; MAX_THREADS]>,
}

// SAFETY: every access happens with IRQs masked on the owner vCPU (checked by `guard`),
// so there is never more than one accessor.
unsafe impl Sync for Table {}

static TABLE: Table = Table {
    ctx: UnsafeCell::new([Context::EMPTY; MAX_THREADS]),
    entries: UnsafeCell::new([None; MAX_THREADS]),
};
static VALID: [AtomicBool; MAX_THREADS] = [const { AtomicBool::new(false) }; MAX_THREADS];
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static OWNER: AtomicUsize = AtomicUsize::new(NO_OWNER);

global_asm!(
    r#"
    .section .text, "ax"
    .balign 4
    // x0 = context to save into, x1 = context to load.
__bulkhead_ctx_switch:
    stp     x19, x20, [x0, #0]
    stp     x21, x22, [x0, #16]
    stp     x23, x24, [x0, #32]
    stp     x25, x26, [x0, #48]
    stp     x27, x28, [x0, #64]
    stp     x29, x30, [x0, #80]
    mov     x9, sp
    str     x9, [x0, #96]
    ldp     x19, x20, [x1, #0]
    ldp     x21, x22, [x1, #16]
    ldp     x23, x24, [x1, #32]
    ldp     x25, x26, [x1, #48]
    ldp     x27, x28, [x1, #64]
    ldp     x29, x30, [x1, #80]
    ldr     x9, [x1, #96]
    mov     sp, x9
    ret

    // First return of a new thread's context: x19 = its slot.
    .balign 4
__bulkhead_thread_start:
    mov     x0, x19
    mov     x29, xzr
    bl      {main}
1:  wfe
    b       1b
    "#,
    main = sym thread_main,
);

unsafe extern "C" {
    fn __bulkhead_ctx_switch(save: *mut Context, load: *const Context);
    fn __bulkhead_thread_start();
}

extern "C" fn thread_main(slot: usize) -> ! {
    // SAFETY: we run right after a switch, IRQs still masked, on the owner vCPU.
    let entry = unsafe { (*TABLE.entries.get())[slot] };
    match entry {
        Some((f, arg)) => f(arg),
        None => panic!("thread slot {slot} started without an entry"),
    }
}

/// Checks the calling vCPU owns the table (claiming it on first use) and IRQs are masked.
fn guard() {
    assert!(daif() & (1 << 7) != 0, "thread switch with IRQs unmasked");
    let me = crate::smp::current_vcpu();
    if OWNER
        .compare_exchange(NO_OWNER, me, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        assert_eq!(
            OWNER.load(Ordering::Acquire),
            me,
            "threads are switched on one vCPU only"
        );
    }
}

/// Prepares slot `slot` (1..MAX_THREADS) to run `entry(arg)` on `stack` when first
/// switched to, with IRQs still masked (the entry unmasks them). Must be called with IRQs
/// masked on the vCPU that switches. Panics on slot 0, an out-of-range or live slot, or a
/// stack under 1 KiB.
pub fn thread_create(slot: usize, stack: &'static mut [u8], entry: fn(usize) -> !, arg: usize) {
    guard();
    assert!(
        slot != 0 && slot < MAX_THREADS && !VALID[slot].load(Ordering::Acquire),
        "bad thread slot {slot}"
    );
    assert!(stack.len() >= 1024, "thread stack too small");
    let top = (stack.as_mut_ptr() as u64 + stack.len() as u64) & !0xF;
    let mut c = Context::EMPTY;
    c.regs[0] = slot as u64;
    c.regs[11] = __bulkhead_thread_start as *const () as usize as u64;
    c.sp = top;
    // SAFETY: guard() holds (IRQs masked, owner vCPU): nobody else accesses the table, and
    // the slot is not live, so no switch is using it.
    unsafe {
        (*TABLE.ctx.get())[slot] = c;
        (*TABLE.entries.get())[slot] = Some((entry, arg));
    }
    VALID[slot].store(true, Ordering::Release);
}

/// The running thread's slot.
pub fn thread_current() -> usize {
    CURRENT.load(Ordering::Acquire)
}

/// Saves the running thread (slot [`thread_current`]) and runs slot `to`; returns when
/// some thread switches back to the caller. Must be called with IRQs masked. Panics if
/// `to` was never created.
pub fn switch_to(to: usize) {
    guard();
    let from = CURRENT.load(Ordering::Acquire);
    if from == to {
        return;
    }
    assert!(
        to < MAX_THREADS && VALID[to].load(Ordering::Acquire),
        "switch to dead thread slot {to}"
    );
    // The caller's slot becomes valid once its context is saved below.
    VALID[from].store(true, Ordering::Release);
    CURRENT.store(to, Ordering::Release);
    let base = TABLE.ctx.get().cast::<Context>();
    // SAFETY: `from` and `to` are distinct in-range slots of the table, which only this
    // vCPU touches with IRQs masked (guard); `to` holds a context created by
    // `thread_create` or saved by an earlier switch away from it, whose stack is still
    // allocated (stacks are 'static), so resuming it is sound.
    unsafe { __bulkhead_ctx_switch(base.add(from), base.add(to)) };
}
