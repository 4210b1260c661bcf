//! Entry points: the arm64 Image header, the boot CPU's entry and secondary CPUs' entry.
//!
//! The boot loader (QEMU's `-kernel`, U-Boot's `booti`) enters `_start` at EL2 with the MMU
//! off and `x0` = the device tree, wherever it chose to load the image (header flags bit 3:
//! any 2 MiB-aligned base + `text_offset`). The image is linked at 0 as a position-independent
//! executable: the boot CPU first applies its own relocations ([`crate::reloc`]), then zeroes
//! BSS. Secondary CPUs enter `secondary_entry` through PSCI `CPU_ON` with `x0` = their index.
//! Each CPU gets a fixed stack.

use crate::reloc::Rela;

/// Bytes of stack per physical CPU. The deepest path known, a driver domain's restart in
/// place on CPU 0 under the boot CPU's start-up frames, once reached 64,832 bytes (traced by
/// painting the stack); frame cuts since left about 9 KiB of a 64 KiB stack unused. The
/// stacks are adjacent with no guard page, so an overflow corrupts the next CPU's stack
/// silently: 128 KiB keeps the margin at about 73 KiB for 512 KiB more BSS. (Raising it was
/// tried twice before and dropped because `rtos_beside_linux` then missed a release; that
/// was QEMU starving the RTOS's CPU behind a busy one, `check_rtos_placement` in
/// tests/src/systems.rs, not the stack.)
pub const STACK_SIZE: usize = 128 * 1024;
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
    mov     x2, #{stack_size}
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
