//! Boot code, secondary-vCPU entry and the EL1 vector table.
//!
//! Invariants the asm establishes before any Rust runs on a vCPU: IRQs masked, stage-1 MMU
//! and caches on (identity map from [`crate::mmu`]), SP = top of that vCPU's own stack in
//! `.bss`, VBAR_EL1 = our vectors. vCPU 0 additionally zeroes `.bss` (its stack lives there,
//! so it zeroes before its first push). vCPUs whose MPIDR Aff0 is not below `MAX_VCPUS` park.

use crate::mmu;
use core::arch::global_asm;
use core::cell::UnsafeCell;
use protocol::layout::MAX_VCPUS;

/// Bytes of stack per vCPU (a power of two: the asm shifts by [`STACK_SHIFT`]).
const STACK_SHIFT: u32 = 16;
const STACK_SIZE: usize = 1 << STACK_SHIFT;

#[repr(C, align(16))]
struct Stacks(UnsafeCell<[u8; STACK_SIZE * MAX_VCPUS]>);

// SAFETY: Rust never touches the stacks as data; each vCPU's asm points SP at its own slice.
unsafe impl Sync for Stacks {}

static STACKS: Stacks = Stacks(UnsafeCell::new([0; STACK_SIZE * MAX_VCPUS]));

#[repr(C, align(4096))]
struct Table([u64; 512]);

/// The identity map every vCPU's TTBR0_EL1 points at (read-only: it never changes).
static BOOT_L1: Table = Table(mmu::identity_l1());

const _: () = assert!(mmu::TCR < 1 << 32);
const _: () = assert!(mmu::MAIR < 1 << 16);

global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    msr     daifset, #0xf
    mov     x19, x0
    mov     x20, x1
    mov     x21, x2
    bl      __bulkhead_enable_mmu
    adrp    x9, {stacks}
    add     x9, x9, :lo12:{stacks}
    mov     x10, #1
    lsl     x10, x10, #{stack_shift}
    add     sp, x9, x10
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
1:  cmp     x9, x10
    b.hs    2f
    str     xzr, [x9], #8
    b       1b
2:  adrp    x9, __bulkhead_vectors
    add     x9, x9, :lo12:__bulkhead_vectors
    msr     vbar_el1, x9
    isb
    mov     x0, x19
    mov     x1, x20
    mov     x2, x21
    adrp    x3, __heap_start
    add     x3, x3, :lo12:__heap_start
    bl      {primary}
3:  wfe
    b       3b

    .section .text, "ax"
    .global __bulkhead_secondary_entry
    .balign 4
__bulkhead_secondary_entry:
    msr     daifset, #0xf
    mrs     x19, mpidr_el1
    and     x19, x19, #0xff
    cmp     x19, #{max_vcpus}
    b.hs    9f
    bl      __bulkhead_enable_mmu
    adrp    x9, {stacks}
    add     x9, x9, :lo12:{stacks}
    add     x10, x19, #1
    lsl     x10, x10, #{stack_shift}
    add     sp, x9, x10
    adrp    x9, __bulkhead_vectors
    add     x9, x9, :lo12:__bulkhead_vectors
    msr     vbar_el1, x9
    isb
    mov     x0, x19
    bl      {secondary}
9:  wfe
    b       9b

    // Clobbers x9 only; uses no stack (it runs before SP is valid).
    .balign 4
__bulkhead_enable_mmu:
    movz    x9, #{mair}
    msr     mair_el1, x9
    movz    x9, #{tcr_lo}
    movk    x9, #{tcr_hi}, lsl #16
    msr     tcr_el1, x9
    adrp    x9, {l1}
    add     x9, x9, :lo12:{l1}
    msr     ttbr0_el1, x9
    isb
    tlbi    vmalle1
    ic      iallu
    dsb     nsh
    isb
    mrs     x9, sctlr_el1
    orr     x9, x9, #{sctlr_m}
    orr     x9, x9, #{sctlr_c}
    orr     x9, x9, #{sctlr_i}
    bic     x9, x9, #{sctlr_a}
    bic     x9, x9, #{sctlr_wxn}
    msr     sctlr_el1, x9
    isb
    ret

    // Exception vectors. We run at EL1h, so only the "current EL with SPx" IRQ entry is
    // expected; every other entry is fatal and reports its index.
    .section .text.vectors, "ax"
    .balign 2048
__bulkhead_vectors:
    .set    __bv_index, 0
    .rept   16
    .balign 0x80
    .if     __bv_index == 5
    b       __bulkhead_irq
    .else
    mov     x0, #__bv_index
    b       __bulkhead_fatal
    .endif
    .set    __bv_index, __bv_index + 1
    .endr

__bulkhead_fatal:
    bl      {fatal}
4:  wfe
    b       4b

    // Saves the caller-saved state (AAPCS64 x0-x18, x29, x30, ELR, SPSR), dispatches,
    // restores and returns. IRQs stay masked throughout (no nesting).
__bulkhead_irq:
    sub     sp, sp, #192
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    mrs     x0, elr_el1
    mrs     x1, spsr_el1
    stp     x30, x0, [sp, #160]
    str     x1, [sp, #176]
    bl      {irq}
    ldr     x1, [sp, #176]
    ldp     x30, x0, [sp, #160]
    msr     elr_el1, x0
    msr     spsr_el1, x1
    ldp     x18, x29, [sp, #144]
    ldp     x16, x17, [sp, #128]
    ldp     x14, x15, [sp, #112]
    ldp     x12, x13, [sp, #96]
    ldp     x10, x11, [sp, #80]
    ldp     x8, x9, [sp, #64]
    ldp     x6, x7, [sp, #48]
    ldp     x4, x5, [sp, #32]
    ldp     x2, x3, [sp, #16]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #192
    eret
    "#,
    stacks = sym STACKS,
    l1 = sym BOOT_L1,
    primary = sym primary_entry,
    secondary = sym secondary_entry,
    irq = sym irq_entry,
    fatal = sym fatal_entry,
    stack_shift = const STACK_SHIFT,
    max_vcpus = const MAX_VCPUS,
    mair = const mmu::MAIR,
    tcr_lo = const mmu::TCR & 0xFFFF,
    tcr_hi = const (mmu::TCR >> 16) & 0xFFFF,
    sctlr_m = const 1 << 0,
    sctlr_c = const 1 << 2,
    sctlr_i = const 1 << 12,
    sctlr_a = const 1 << 1,
    sctlr_wxn = const 1 << 19,
);

const _: () = assert!(mmu::SCTLR_SET == (1 << 0) | (1 << 2) | (1 << 12));
const _: () = assert!(mmu::SCTLR_CLEAR == (1 << 1) | (1 << 19));

unsafe extern "C" {
    fn __bulkhead_secondary_entry();
}

unsafe extern "Rust" {
    /// Defined by the domain binary through [`crate::entry!`].
    fn __bulkhead_main(info: &'static protocol::boot::StartInfo);
}

/// Guest-physical (= virtual: identity map) address where secondary vCPUs must enter.
pub fn secondary_entry_ipa() -> u64 {
    __bulkhead_secondary_entry as *const () as usize as u64
}

/// Runs the domain's main function.
pub(crate) fn call_domain_main(info: &'static protocol::boot::StartInfo) {
    // SAFETY: `entry!` defines this symbol with exactly this signature; a binary without it
    // fails to link rather than calling garbage.
    unsafe { __bulkhead_main(info) }
}

extern "C" fn primary_entry(info_ipa: u64, info_len: u64, ram_size: u64, heap_start: u64) {
    crate::start::primary(info_ipa, info_len, ram_size, heap_start)
}

extern "C" fn secondary_entry(vcpu: u64) {
    crate::smp::secondary_main(vcpu as usize)
}

extern "C" fn irq_entry() {
    crate::irq::dispatch()
}

extern "C" fn fatal_entry(vector: u64) {
    crate::start::fatal_exception(vector)
}
