//! Entry points: the arm64 Image header, the boot CPU's entry and secondary CPUs' entry.
//!
//! The boot loader (QEMU's `-kernel`, U-Boot's `booti`) enters `_start` at EL2 with the MMU
//! off and `x0` = the device tree. Secondary CPUs enter `secondary_entry` through PSCI
//! `CPU_ON` with `x0` = their index. Each CPU gets a fixed stack; the boot CPU zeroes BSS
//! before anything else uses it.

/// Bytes of stack per physical CPU.
pub const STACK_SIZE: usize = 64 * 1024;
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
    .quad   0x200000            /* text_offset: load at a 2 MiB boundary + 2 MiB */
    .quad   __image_size        /* image_size, including BSS */
    .quad   0x2                 /* flags: little endian, 4 KiB pages */
    .quad   0, 0, 0             /* reserved */
    .ascii  "ARM\x64"           /* magic */
    .long   0                   /* reserved */
1:
    mov     x19, x0
    adrp    x1, {stacks}
    add     x1, x1, :lo12:{stacks}
    mov     x2, #{stack_size}
    add     sp, x1, x2
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
2:  cmp     x1, x2
    b.hs    3f
    str     xzr, [x1], #8
    b       2b
3:  mov     x0, x19
    bl      rust_boot_primary
4:  wfe
    b       4b

    .global secondary_entry
secondary_entry:
    /* x0 = CPU index; stack = stacks + (index + 1) * STACK_SIZE */
    adrp    x1, {stacks}
    add     x1, x1, :lo12:{stacks}
    mov     x2, #{stack_size}
    madd    x1, x0, x2, x1
    add     sp, x1, x2
    bl      rust_boot_secondary
5:  wfe
    b       5b
"#,
    stacks = sym STACKS,
    stack_size = const STACK_SIZE,
);

/// One stack per CPU, used from entry until the CPU stops.
#[repr(C, align(16))]
pub struct Stacks([u8; STACK_SIZE * MAX_CPUS]);

/// The CPUs' stacks (in BSS; touched only through `sp`).
#[unsafe(no_mangle)]
pub static mut STACKS: Stacks = Stacks([0; STACK_SIZE * MAX_CPUS]);

unsafe extern "C" {
    static secondary_entry: u8;
    static __image_end: u8;
}

/// Physical address where secondary CPUs enter.
pub fn secondary_entry_addr() -> u64 {
    core::ptr::addr_of!(secondary_entry) as u64
}

/// The end of the microvisor image, BSS included (identity-mapped, so PA = VA).
pub fn image_end() -> u64 {
    core::ptr::addr_of!(__image_end) as u64
}
