//! Entry points: the arm64 Image header, the boot CPU's entry and secondary CPUs' entry.
//!
//! The boot loader (QEMU's `-kernel`, U-Boot's `booti`) enters `_start` at EL2 with the MMU
//! off and `x0` = the device tree, wherever it chose to load the image (header flags bit 3:
//! any 2 MiB-aligned base + `text_offset`). The image is linked at 0 as a position-independent
//! executable: the boot CPU first applies its own relocations ([`crate::reloc`]), then zeroes
//! BSS. Secondary CPUs enter `secondary_entry` through PSCI `CPU_ON` with `x0` = their index.
//! Each CPU gets a fixed stack with an unmapped guard below it ([`crate::el2_stack`]).

use crate::el2_stack;
use crate::reloc::Rela;

/// Most physical CPUs the microvisor drives.
pub const MAX_CPUS: usize = 8;

core::arch::global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    /* arm64 Image header (Documentation/arm64/booting.rst layout) */
    b       1f                  /* code0 */
    .long   0                   /* code1 */
    .quad   0                   /* text_offset: at a 2 MiB boundary (QEMU adds 2 MiB) */
    .quad   __image_size        /* image_size, including BSS */
    .quad   0xa                 /* flags: little endian, 4 KiB pages, placed anywhere */
    .quad   0, 0, 0             /* reserved */
    .ascii  "ARM\x64"           /* magic */
    .long   0                   /* reserved */
1:
    mov     x19, x0
    /* Everything here is PC-relative (adr/adrp), so it works before relocation. */
    adrp    x1, {stacks}
    add     x1, x1, :lo12:{stacks}
    movz    x2, #{stride_lo}
    movk    x2, #{stride_hi}, lsl #16
    add     sp, x1, x2
    adr     x0, _start          /* where the boot loader put us */
    adrp    x1, __rela_start
    add     x1, x1, :lo12:__rela_start
    adrp    x2, __rela_end
    add     x2, x2, :lo12:__rela_end
    adrp    x3, __bss_start
    add     x3, x3, :lo12:__bss_start
    bl      rust_relocate_self
    cbnz    x0, 4f              /* cannot relocate: stop here, silently (no log yet) */
    /* Relocation may have written words the instruction side fetches or prefetched. */
    dsb     ish
    ic      iallu
    dsb     ish
    isb
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
    /* 64 bytes a round while they fit (BSS is 1.3 MiB, and under -icount every
       instruction is boot time), then 8 at a time: BSS is 8-byte aligned and sized. */
2:  sub     x3, x2, x1
    cmp     x3, #64
    b.lo    5f
    stp     xzr, xzr, [x1]
    stp     xzr, xzr, [x1, #16]
    stp     xzr, xzr, [x1, #32]
    stp     xzr, xzr, [x1, #48]
    add     x1, x1, #64
    b       2b
5:  cmp     x1, x2
    b.hs    3f
    str     xzr, [x1], #8
    b       5b
3:  mov     x0, x19
    bl      rust_boot_primary
4:  wfe
    b       4b

    .global secondary_entry
secondary_entry:
    /* x0 = CPU index; stack top = stacks + (index + 1) * stride (el2_stack::top) */
    adrp    x1, {stacks}
    add     x1, x1, :lo12:{stacks}
    movz    x2, #{stride_lo}
    movk    x2, #{stride_hi}, lsl #16
    madd    x1, x0, x2, x1
    add     sp, x1, x2
    bl      rust_boot_secondary
5:  wfe
    b       5b
"#,
    stacks = sym STACKS,
    stride_lo = const el2_stack::STRIDE & 0xffff,
    stride_hi = const el2_stack::STRIDE >> 16,
);

const _: () = assert!(
    el2_stack::STRIDE >> 32 == 0,
    "the stride is loaded as 32 bits"
);

/// One slot per CPU, a guard under a stack ([`crate::el2_stack`]), used from entry until
/// the CPU stops. Page-aligned, so that each guard is whole pages the EL2 map can leave out.
#[repr(C, align(4096))]
pub struct Stacks([u8; el2_stack::STRIDE as usize * MAX_CPUS]);

/// The CPUs' stacks (in BSS; touched only through `sp`).
#[unsafe(no_mangle)]
pub static mut STACKS: Stacks = Stacks([0; el2_stack::STRIDE as usize * MAX_CPUS]);

/// One emergency stack per CPU: the vectors switch to it for an exception taken at EL2,
/// whose own stack may be what failed ([`crate::el2_stack::emergency_slot`]).
#[repr(C, align(16))]
pub struct EmergencyStacks([u8; el2_stack::EMERGENCY_BYTES as usize * MAX_CPUS]);

/// The emergency stacks (in BSS; touched only through `sp`, by the vectors).
#[unsafe(no_mangle)]
pub static mut EMERGENCY_STACKS: EmergencyStacks =
    EmergencyStacks([0; el2_stack::EMERGENCY_BYTES as usize * MAX_CPUS]);

/// Where the stack array starts (identity-mapped, so PA = VA).
pub fn stacks_base() -> u64 {
    core::ptr::addr_of!(STACKS) as u64
}

/// Each CPU's guard range (start, length), for the EL2 map to leave unmapped.
pub fn stack_guards() -> impl Iterator<Item = (u64, u64)> {
    let base = stacks_base();
    (0..MAX_CPUS).map(move |cpu| el2_stack::guard(base, cpu))
}

/// Recurses until this CPU's stack runs into its guard (the `el2-stack-overflow`
/// self-test, [`crate::boot_options::SelfTest`]): each level keeps 1 KiB live across the
/// call, so the compiler can neither drop the frames nor turn the recursion into a loop.
/// Returns only if the stack never faulted within two slots' depth, which the caller
/// reports as a failure.
#[inline(never)]
pub fn overflow_stack(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    frame[0] = depth as u8;
    core::hint::black_box(&mut frame);
    if depth >= 2 * el2_stack::STRIDE / 1024 {
        return depth;
    }
    let deeper = overflow_stack(depth + 1);
    core::hint::black_box(&frame);
    deeper + u64::from(frame[0])
}

unsafe extern "C" {
    static _start: u8;
    static secondary_entry: u8;
    static __image_end: u8;
}

/// Applies the image's relocations for load address `base` (called from `_start` with the
/// MMU off, before BSS is zeroed): `[rela_start, rela_end)` is `.rela.dyn`, `loaded_end`
/// the end of the file-backed image. Returns 0 on success; anything else stops the CPU.
#[unsafe(no_mangle)]
extern "C" fn rust_relocate_self(
    base: u64,
    rela_start: u64,
    rela_end: u64,
    loaded_end: u64,
) -> u64 {
    let count = (rela_end.saturating_sub(rela_start) / size_of::<Rela>() as u64) as usize;
    // SAFETY: the linker script puts `.rela.dyn` (24-byte, 8-aligned entries) between these
    // two symbols inside the loaded image; nothing writes it (targets inside it are refused
    // below).
    let rela = unsafe { core::slice::from_raw_parts(rela_start as *const Rela, count) };
    let (lo, hi) = (rela_start.wrapping_sub(base), rela_end.wrapping_sub(base));
    let image_len = loaded_end.saturating_sub(base);
    let result = crate::reloc::apply(base, image_len, rela, |offset, value| {
        if offset < hi && offset + 8 > lo {
            return false;
        }
        // SAFETY: `apply` checked that the word is 8-byte aligned and inside the loaded
        // image, which the boot loader gave us; it is not part of `.rela.dyn` (above).
        unsafe { core::ptr::write_volatile((base + offset) as *mut u64, value) };
        true
    });
    u64::from(result.is_err())
}

/// Physical address where secondary CPUs enter.
pub fn secondary_entry_addr() -> u64 {
    core::ptr::addr_of!(secondary_entry) as u64
}

/// Where the microvisor image starts: where the boot loader put it (identity-mapped, so
/// PA = VA).
pub fn image_start() -> u64 {
    core::ptr::addr_of!(_start) as u64
}

/// The end of the microvisor image, BSS included (identity-mapped, so PA = VA).
pub fn image_end() -> u64 {
    core::ptr::addr_of!(__image_end) as u64
}
