//! The EL2 vector table and the guest entry/exit path.
//!
//! `enter_guest` saves the host's callee-saved registers, loads a vCPU's general registers
//! and `eret`s. Any exception from the lower ELs lands in a vector that stores the guest
//! registers back, restores the host stack and returns from `enter_guest` with the exit kind,
//! so the run loop is ordinary Rust. EL2 itself runs with interrupts masked; an exception
//! taken at EL2 is a microvisor bug and ends in `el2_panic`.

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

/// Per-CPU block reached through `TPIDR_EL2` by the exit path.
#[repr(C)]
pub struct ArchPerCpu {
    /// Host stack pointer saved by `enter_guest`.
    pub host_sp: u64,
    /// Guest register block being run.
    pub guest: *mut GuestRegs,
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
    mrs     x1, esr_el2
    mrs     x2, elr_el2
    mrs     x3, far_el2
    bl      el2_panic
9:  wfe
    b       9b

    .global enter_guest
enter_guest:
    /* x0 = *mut GuestRegs */
    stp     x29, x30, [sp, #-96]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    mrs     x1, tpidr_el2
    mov     x2, sp
    str     x2, [x1, #0]
    str     x0, [x1, #8]
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
    /* x0 = exit kind; guest x0/x1 on the stack */
    mrs     x1, tpidr_el2
    ldr     x1, [x1, #8]
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
    ldr     x2, [x1, #0]
    mov     sp, x2
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #96
    ret
"#
);

unsafe extern "C" {
    static el2_vectors: u8;
    fn enter_guest(regs: *mut GuestRegs) -> u64;
}

/// Address of the vector table, for `VBAR_EL2`.
pub fn vector_table_addr() -> u64 {
    core::ptr::addr_of!(el2_vectors) as u64
}

/// Runs the loaded vCPU until it exits; `regs` is loaded before and stored after.
///
/// # Safety
/// `TPIDR_EL2` must point to this CPU's [`ArchPerCpu`], and the vCPU's EL1 context, stage-2
/// table (`VTTBR_EL2`) and `HCR_EL2` must be loaded for the domain that owns `regs`.
pub unsafe fn run_guest(regs: &mut GuestRegs) -> ExitKind {
    // SAFETY: per the contract, EL2 is configured for this vCPU; `regs` stays borrowed for the
    // whole call, so the vectors' stores through the per-CPU pointer hit a live object.
    let kind = unsafe { enter_guest(regs as *mut GuestRegs) };
    match kind {
        0 => ExitKind::Sync,
        1 => ExitKind::Irq,
        2 => ExitKind::Fiq,
        _ => ExitKind::SError,
    }
}

/// Called by the vectors on an exception taken at EL2: a microvisor bug.
#[unsafe(no_mangle)]
extern "C" fn el2_panic(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    panic!("exception at EL2: vector {kind} ESR {esr:#x} ELR {elr:#x} FAR {far:#x}");
}
