//! The guest's only assembly: the arm64 `Image` header and entry (x0 = device tree), the
//! secondary vCPU entry for PSCI `CPU_ON`, the EL1 vector table whose IRQ entry reads
//! `CNTVCT_EL0` before anything else, and the system registers the benchmarks use.
//!
//! The guest runs with the MMU off (as it starts under both hypervisors), so every access is
//! Device-nGnRnE: the softfloat target compiles with `+strict-align`, and shared state is
//! plain loads and stores (no exclusives).

use core::arch::{asm, global_asm};

// The Image header (booting.rst): branch, text_offset 0, image_size (BSS included, so the
// loader reserves it), flags = little-endian with 4 KiB pages, magic "ARM\x64".
global_asm!(
    r#"
    .section .text.head, "ax"
    .global _head
_head:
    b       micro_entry
    .word   0
    .quad   0
    .quad   __image_size
    .quad   2
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .word   0

micro_entry:
    mov     x19, x0
    ldr     x1, =__bss_start
    ldr     x2, =__bss_end
1:  cmp     x1, x2
    b.hs    2f
    str     xzr, [x1], #8
    b       1b
2:  ldr     x1, =micro_stack0_top
    mov     sp, x1
    ldr     x1, =micro_vectors
    msr     vbar_el1, x1
    isb
    adr     x1, _head
    mov     x0, x19
    bl      micro_main
3:  wfi
    b       3b

    .global micro_secondary_entry
micro_secondary_entry:
    mov     sp, x0
    ldr     x1, =micro_vectors
    msr     vbar_el1, x1
    isb
    bl      micro_secondary
4:  wfi
    b       4b

    .section .text.vectors, "ax"
    .balign 2048
micro_vectors:
    // Current EL with SP_EL0 (never used).
    .rept 4
    .balign 128
    b       micro_fault
    .endr
    // Current EL with SP_ELx: synchronous, IRQ, FIQ, SError.
    .balign 128
    b       micro_fault
    .balign 128
    sub     sp, sp, #176
    stp     x0, x1, [sp, #0]
    mrs     x0, cntvct_el0
    b       micro_irq_entry
    .balign 128
    b       micro_fault
    .balign 128
    b       micro_fault
    // Lower EL, AArch64 and AArch32 (the guest never leaves EL1).
    .rept 8
    .balign 128
    b       micro_fault
    .endr

micro_irq_entry:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    str     x30, [sp, #160]
    bl      micro_irq
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x29, [sp, #144]
    ldr     x30, [sp, #160]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #176
    eret

    .section .bss.stacks, "aw", %nobits
    .balign 16
    .space  65536
micro_stack0_top:
    .space  16384
    .global micro_stack1_top
micro_stack1_top:

    .section .text.vectors, "ax"
micro_fault:
    mrs     x0, esr_el1
    mrs     x1, elr_el1
    mrs     x2, far_el1
    bl      micro_fault_report
5:  wfi
    b       5b
"#
);

/// Where vCPU 1 starts after PSCI `CPU_ON` (x0 = its stack top).
pub fn secondary_entry() -> u64 {
    extern "C" {
        fn micro_secondary_entry();
    }
    micro_secondary_entry as *const () as u64
}

/// The top of vCPU 1's stack.
pub fn secondary_stack() -> u64 {
    extern "C" {
        static micro_stack1_top: u8;
    }
    core::ptr::addr_of!(micro_stack1_top) as u64
}

/// `CNTVCT_EL0` after every earlier instruction completed.
#[inline(always)]
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: `isb` and reading the virtual counter have no memory effects.
    unsafe {
        asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Arms the virtual timer at absolute counter value `cval`, interrupt unmasked.
pub fn timer_arm(cval: u64) {
    // SAFETY: the EL1 virtual timer is the guest's own; writing it has no memory effects.
    unsafe {
        asm!("msr cntv_cval_el0, {}", "mov {t}, #1", "msr cntv_ctl_el0, {t}", "isb",
             in(reg) cval, t = out(reg) _, options(nomem, nostack, preserves_flags));
    }
}

/// Disables the virtual timer (drops its interrupt line).
pub fn timer_stop() {
    // SAFETY: as in `timer_arm`.
    unsafe {
        asm!(
            "msr cntv_ctl_el0, xzr",
            "isb",
            options(nomem, nostack, preserves_flags)
        )
    };
}

/// The programmed `CNTV_CVAL_EL0`.
pub fn timer_cval() -> u64 {
    let v: u64;
    // SAFETY: reading a timer register has no memory effects.
    unsafe { asm!("mrs {}, cntv_cval_el0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// `MPIDR_EL1` affinity 0: this vCPU's index under both hypervisors.
pub fn cpu_index() -> usize {
    let v: u64;
    // SAFETY: reading MPIDR_EL1 has no memory effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    (v & 0xff) as usize
}

/// Unmasks IRQs at this vCPU.
pub fn irq_enable() {
    // SAFETY: the vector table is installed before any caller runs.
    unsafe { asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
}

/// Makes instructions this guest (or its hypervisor) wrote visible to its fetches.
pub fn sync_icache() {
    // SAFETY: invalidating the instruction cache and barriers have no memory effects.
    unsafe {
        asm!(
            "dsb ish",
            "ic iallu",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Waits for an interrupt (the hypervisor deschedules the vCPU; under `sleep=off` an idle
/// QEMU skips virtual time to the next deadline).
pub fn wfi() {
    // SAFETY: `wfi` only waits.
    unsafe { asm!("dsb sy", "wfi", options(nomem, nostack, preserves_flags)) };
}

/// `ID_AA64PFR0_EL1` (its GIC field says whether a GICv3 CPU interface is there).
pub fn id_aa64pfr0() -> u64 {
    let v: u64;
    // SAFETY: reading an ID register has no effects.
    unsafe {
        asm!("mrs {}, id_aa64pfr0_el1", out(reg) v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// GICv3 CPU interface: system-register access, priority mask open, group 1 on.
pub fn gic_cpu_init() {
    // SAFETY: the ICC_* registers are this vCPU's own virtual CPU interface.
    unsafe {
        asm!(
            "mov {t}, #7", "msr icc_sre_el1, {t}", "isb",
            "mov {t}, #0xff", "msr icc_pmr_el1, {t}",
            "msr icc_bpr1_el1, xzr",
            "msr icc_ctlr_el1, xzr",
            "mov {t}, #1", "msr icc_igrpen1_el1, {t}", "isb",
            t = out(reg) _, options(nomem, nostack, preserves_flags)
        );
    }
}

/// Acknowledges the highest-priority pending group-1 interrupt; returns its INTID.
pub fn gic_ack() -> u32 {
    let v: u64;
    // SAFETY: reading IAR acknowledges an interrupt of this vCPU only.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) v, options(nomem, nostack, preserves_flags)) };
    (v & 0xff_ffff) as u32
}

/// Ends interrupt `intid` (priority drop and deactivation: EOImode 0).
pub fn gic_eoi(intid: u32) {
    // SAFETY: EOI of an interrupt this vCPU acknowledged.
    unsafe {
        asm!("msr icc_eoir1_el1, {}", "isb", in(reg) u64::from(intid), options(nomem, nostack, preserves_flags))
    };
}

/// Sends SGI `intid` to the vCPU with affinity 0 `target` (affinities 1-3 zero).
pub fn send_sgi(intid: u32, target: usize) {
    let v = (u64::from(intid & 0xf) << 24) | (1u64 << (target & 0xf));
    // SAFETY: an SGI only raises an interrupt at a vCPU of this domain.
    unsafe {
        asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) v, options(nomem, nostack, preserves_flags))
    };
}

/// A 32-bit MMIO write.
///
/// # Safety
/// `addr` is a device register of this guest that accepts a 32-bit write.
pub unsafe fn mmio_write32(addr: u64, v: u32) {
    // SAFETY: the caller vouches for `addr`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) };
}

/// A 32-bit MMIO read.
///
/// # Safety
/// `addr` is a device register of this guest that accepts a 32-bit read.
pub unsafe fn mmio_read32(addr: u64) -> u32 {
    // SAFETY: the caller vouches for `addr`.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

/// A raw Xen hypercall: `hvc #0xEA1`, number in x16, arguments x0-x4, result x0.
pub fn xen_hypercall(nr: u64, a: [u64; 5]) -> i64 {
    let r: i64;
    // SAFETY: the hypervisor reads or writes only the guest memory the arguments name,
    // which the callers own (they pass pointers to live locals or statics).
    unsafe {
        asm!("hvc #0xea1", in("x16") nr, inlateout("x0") a[0] => r, inlateout("x1") a[1] => _,
             inlateout("x2") a[2] => _, inlateout("x3") a[3] => _, inlateout("x4") a[4] => _,
             options(nostack));
    }
    r
}

/// A raw SMCCC call over `hvc #0` (PSCI, Bulkhead's capability calls): x0-x3 in, x0 out.
pub fn smccc(fid: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let r: i64;
    // SAFETY: the calls made here (PSCI CPU_ON, the capability null call) read no guest
    // memory; x0-x17 may be clobbered by an SMCCC 1.0 callee.
    unsafe {
        asm!("hvc #0", inlateout("x0") fid => r, inlateout("x1") a1 => _, inlateout("x2") a2 => _,
             inlateout("x3") a3 => _, out("x4") _, out("x5") _, out("x6") _, out("x7") _,
             out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
             out("x14") _, out("x15") _, out("x16") _, out("x17") _, options(nostack));
    }
    r
}

/// Counter ticks for `batch` back-to-back `xen_version(XENVER_version)` calls.
pub fn batch_xen_version(batch: u32) -> u64 {
    let t0 = counter();
    for _ in 0..batch {
        let _ = xen_hypercall(17, [0; 5]);
    }
    counter() - t0
}

/// Counter ticks for `batch` back-to-back SMCCC calls of `fid` (no arguments).
pub fn batch_smccc(fid: u64, batch: u32) -> u64 {
    let t0 = counter();
    for _ in 0..batch {
        let _ = smccc(fid, 0, 0, 0);
    }
    counter() - t0
}

/// Counter ticks for `batch` turns of the same loop with the `hvc` replaced by a `nop` and
/// the same register set-up: the guest's own cost, subtracted from the hypercall batches.
pub fn batch_empty(batch: u32) -> u64 {
    let t0 = counter();
    for _ in 0..batch {
        // SAFETY: a `nop` with the hypercall's register constraints, so the loop matches.
        unsafe {
            asm!("nop", in("x16") 17u64, inlateout("x0") 0u64 => _, inlateout("x1") 0u64 => _,
                 inlateout("x2") 0u64 => _, inlateout("x3") 0u64 => _, inlateout("x4") 0u64 => _,
                 options(nostack, nomem));
        }
    }
    counter() - t0
}
