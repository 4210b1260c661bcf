//! The EL2 vector table and the guest entry/exit path.
//!
//! `enter_guest` saves the host's callee-saved registers, loads a vCPU's general registers
//! and `eret`s. Any exception from the lower ELs lands in a vector that stores the guest
//! registers back, restores the host stack and returns from `enter_guest` with the exit kind,
//! so the run loop is ordinary Rust. EL2 itself runs with interrupts masked; an exception
//! taken at EL2 is a microvisor bug and ends in `el2_panic`,
//! on the CPU's emergency stack (its own may be what failed: [`crate::el2_stack`]).
//!
//! # Why [`run_guest`] is safe
//!
//! Entering a guest is sound for the microvisor when two things hold, and each is carried
//! by something the caller cannot fake:
//! - **The exit comes back here, to a live frame.** `enter_guest` points `TPIDR_EL2` at its
//!   own stack frame (which holds the host stack pointer and the register block being run)
//!   on every entry, and the vectors find both through it; the frame lives until
//!   `enter_guest` returns, and `regs` stays mutably borrowed for the whole call. Nothing
//!   here depends on what boot left in `TPIDR_EL2`.
//! - **The guest is confined.** `HCR_EL2` has stage 2 on and the traps and routing EL2
//!   relies on (`hcr::GUEST_BASE`), and `VTTBR_EL2` holds a table the stage-2 builder
//!   made. The proof is a [`GuestLoaded`], which only [`super::load_guest_config`] makes,
//!   right after writing both. It is zero-sized and neither `Clone` nor `Copy`, so one
//!   exists per load. The run loop keeps it only while the vCPU stays loaded: the locked
//!   pass that unloads the vCPU (and may free its domain's stage 2, which happens only once
//!   no CPU has one of its vCPUs loaded) replaces or drops it before the pass ends, and
//!   during the pass nothing can reach it (`hyp::percpu`). So every use of a proof comes
//!   while the table it vouches for is live.
//! - **Boot set the rest.** `VBAR_EL2` (these vectors) and `VTCR_EL2` (the stage-2 format)
//!   are written once per CPU by `init_el2`, which bring-up runs on each CPU before that
//!   CPU builds or runs anything of `hyp`; only `hyp`'s `load`, a method of the `Hyp` that
//!   exists only after that, calls `load_guest_config`. (Writing them again with every
//!   load would cost two register writes per vCPU switch, about 16 instructions on the
//!   shared-pCPU path, for a fact that never changes.)
//!
//! The guest's own EL1 context, vGIC and FP state are the guest's correctness, not the
//! microvisor's safety: whatever they hold, the guest runs confined by stage 2 and every
//! exception it takes to EL2 lands in these vectors.

use super::context::GuestRegs;

/// Why `enter_guest` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ExitKind {
    /// Synchronous exception (trap, abort, HVC).
    Sync = 0,
    /// Physical IRQ while the guest ran.
    Irq = 1,
    /// Physical FIQ while the guest ran.
    Fiq = 2,
    /// SError while the guest ran.
    SError = 3,
}

/// Proof that this CPU's EL2 is configured to run a guest confined to a live stage-2 table
/// (see the module docs): made only by [`super::load_guest_config`], required by
/// [`run_guest`]. Zero-sized; neither `Clone` nor `Copy`, so dropping it (at the end of
/// the pass that unloads the vCPU) is the end of that configuration's use. `Send`, so the
/// global state can hold it from `load` to the end of that pass; only the CPU that made it
/// takes it from there (`hyp::percpu`).
#[derive(Debug)]
#[must_use = "a guest configuration nobody can enter"]
pub struct GuestLoaded(());

impl GuestLoaded {
    /// The proof; only for [`super::load_guest_config`], once it has written the registers.
    pub(super) const fn new() -> Self {
        Self(())
    }
}

core::arch::global_asm!(
    r#"
    .section .text
    .balign 2048
    .global el2_vectors
el2_vectors:
    /* current EL, SP0 */
    .balign 128; mov x0, #0; b el2_unexpected
    .balign 128; mov x0, #1; b el2_unexpected
    .balign 128; mov x0, #2; b el2_unexpected
    .balign 128; mov x0, #3; b el2_unexpected
    /* current EL, SPx */
    .balign 128; mov x0, #4; b el2_unexpected
    .balign 128; mov x0, #5; b el2_unexpected
    .balign 128; mov x0, #6; b el2_unexpected
    .balign 128; mov x0, #7; b el2_unexpected
    /* lower EL, AArch64 */
    .balign 128; stp x0, x1, [sp, #-16]!; mov x0, #0; b guest_exit
    .balign 128; stp x0, x1, [sp, #-16]!; mov x0, #1; b guest_exit
    .balign 128; stp x0, x1, [sp, #-16]!; mov x0, #2; b guest_exit
    .balign 128; stp x0, x1, [sp, #-16]!; mov x0, #3; b guest_exit
    /* lower EL, AArch32 (EL0 only; EL1 is AArch64) */
    .balign 128; stp x0, x1, [sp, #-16]!; mov x0, #0; b guest_exit
    .balign 128; stp x0, x1, [sp, #-16]!; mov x0, #1; b guest_exit
    .balign 128; stp x0, x1, [sp, #-16]!; mov x0, #2; b guest_exit
    .balign 128; stp x0, x1, [sp, #-16]!; mov x0, #3; b guest_exit

el2_unexpected:
    /* The stack may be what failed (a push into its guard): report on this CPU's
       emergency stack, the slot SP is in or the last (el2_stack::emergency_slot). */
    mov     x4, sp
    adrp    x5, {stacks}
    add     x5, x5, :lo12:{stacks}
    sub     x5, x4, x5
    movz    x6, #{stride_lo}
    movk    x6, #{stride_hi}, lsl #16
    udiv    x5, x5, x6
    mov     x6, #{last_cpu}
    cmp     x5, x6
    csel    x5, x5, x6, lo
    adrp    x6, {emergency}
    add     x6, x6, :lo12:{emergency}
    mov     x7, #{emergency_bytes}
    madd    x6, x5, x7, x6
    add     sp, x6, x7
    mrs     x1, esr_el2
    mrs     x2, elr_el2
    mrs     x3, far_el2
    bl      el2_panic
9:  wfe
    b       9b

    .global enter_guest
enter_guest:
    /* x0 = *mut GuestRegs. The frame holds the host's callee-saved registers and, at
       #96, the block being run; TPIDR_EL2 points at the frame until the exit. */
    stp     x29, x30, [sp, #-112]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    str     x0, [sp, #96]
    mov     x1, sp
    msr     tpidr_el2, x1
    ldp     x2, x3, [x0, #248]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret
    dsb     nsh
    isb

guest_exit:
    /* x0 = exit kind; guest x0/x1 on the stack, just below enter_guest's frame */
    mrs     x1, tpidr_el2
    ldr     x1, [x1, #96]
    stp     x2, x3, [x1, #16]
    stp     x4, x5, [x1, #32]
    stp     x6, x7, [x1, #48]
    stp     x8, x9, [x1, #64]
    stp     x10, x11, [x1, #80]
    stp     x12, x13, [x1, #96]
    stp     x14, x15, [x1, #112]
    stp     x16, x17, [x1, #128]
    stp     x18, x19, [x1, #144]
    stp     x20, x21, [x1, #160]
    stp     x22, x23, [x1, #176]
    stp     x24, x25, [x1, #192]
    stp     x26, x27, [x1, #208]
    stp     x28, x29, [x1, #224]
    str     x30, [x1, #240]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x1, #0]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [x1, #248]
    mrs     x1, tpidr_el2
    mov     sp, x1
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #112
    ret
"#,
    stacks = sym super::boot::STACKS,
    emergency = sym super::boot::EMERGENCY_STACKS,
    stride_lo = const crate::el2_stack::STRIDE & 0xffff,
    stride_hi = const crate::el2_stack::STRIDE >> 16,
    last_cpu = const super::boot::MAX_CPUS - 1,
    emergency_bytes = const crate::el2_stack::EMERGENCY_BYTES,
);

unsafe extern "C" {
    static el2_vectors: u8;
    fn enter_guest(regs: *mut GuestRegs) -> u64;
}

/// Address of the vector table, for `VBAR_EL2`.
pub fn vector_table_addr() -> u64 {
    core::ptr::addr_of!(el2_vectors) as u64
}

/// Runs the guest `loaded` vouches for until it exits; `regs` is loaded before and stored
/// after. Which vCPU's registers `regs` holds is the caller's business: any values are
/// sound (see the module docs).
pub fn run_guest(loaded: &GuestLoaded, regs: &mut GuestRegs) -> ExitKind {
    let _ = loaded;
    // SAFETY: `loaded` proves EL2 confines the guest to a live stage-2 table and sends its
    // exceptions to our vectors; `enter_guest` points `TPIDR_EL2` at its own frame, and
    // `regs` stays mutably borrowed for the whole call, so the vectors' stores through it
    // hit a live object no one else is using (module docs).
    let kind = unsafe { enter_guest(regs as *mut GuestRegs) };
    match kind {
        0 => ExitKind::Sync,
        1 => ExitKind::Irq,
        2 => ExitKind::Fiq,
        _ => ExitKind::SError,
    }
}

/// Called by the vectors, on the CPU's emergency stack, on an exception taken at EL2: a
/// microvisor bug. `sp` is the stack pointer the exception was taken with; an overflow
/// into a guard page is named as such.
#[unsafe(no_mangle)]
extern "C" fn el2_panic(kind: u64, esr: u64, elr: u64, far: u64, sp: u64) -> ! {
    let base = super::boot::stacks_base();
    if let Some(cpu) = crate::el2_stack::overflowed(base, super::boot::MAX_CPUS, far, sp) {
        panic!(
            "EL2 stack overflow on CPU {cpu}: SP {sp:#x} reached the guard at {:#x} (ESR {esr:#x} ELR {elr:#x} FAR {far:#x})",
            crate::el2_stack::guard(base, cpu).0
        );
    }
    panic!("exception at EL2: vector {kind} ESR {esr:#x} ELR {elr:#x} FAR {far:#x} SP {sp:#x}");
}
