//! Access to physical memory. EL2 identity-maps RAM, so a physical address is also the
//! microvisor's virtual address; this is the one place where such an address becomes a
//! pointer.

use core::arch::asm;

/// Zeroes `[pa, pa + len)`.
///
/// Whole blocks go through `DC ZVA`, which zeroes a block (64 bytes on QEMU's `-cpu max`,
/// `DCZID_EL0`) per instruction, as Linux's `clear_page` does: scrubbing a 512 MiB guest
/// is then a quarter of the instructions of a store loop, and under `-icount` instructions
/// are boot time (DESIGN §8). Edges, and CPUs that prohibit it, use plain stores.
///
/// # Safety
/// The range must be RAM the microvisor owns (from its frame allocator) and that no
/// reference currently covers.
pub unsafe fn zero(pa: u64, len: u64) {
    let Some(block) = zva_block() else {
        // SAFETY: per the contract the range is owned, mapped RAM.
        return unsafe { core::ptr::write_bytes(pa as *mut u8, 0, len as usize) };
    };
    // SAFETY: per the contract.
    unsafe { zero_blocks::<false>(pa, len, block) };
}

/// Zeroes `[pa, pa + len)` and cleans it to the point of coherency in one pass: each
/// `DC ZVA` block is cleaned (`DC CVAC`) right after it is zeroed, so a guest reading its
/// new RAM with caches off sees zeroes, not what DRAM held before. One pass instead of
/// [`zero`] then `cpu::clean_dcache_range` over a whole domain's RAM: under `-icount` the
/// second loop was a fifth of a 512 MiB Linux guest's build. Where the block is not one
/// cache line (64 bytes assumed, as by `clean_dcache_range`), it does exactly that pair.
///
/// # Safety
/// As [`zero`].
pub unsafe fn zero_to_poc(pa: u64, len: u64) {
    const LINE: u64 = 64;
    match zva_block() {
        // SAFETY: per the contract.
        Some(LINE) => unsafe { zero_blocks::<true>(pa, len, LINE) },
        _ => {
            // SAFETY: per the contract.
            unsafe { zero(pa, len) };
            super::cpu::clean_dcache_range(pa, len);
        }
    }
}

/// Blocks per round of [`zero_blocks`]'s unrolled loop (its `.rept` count).
const ROUND: u64 = 16;

/// [`zero`]'s body for a `DC ZVA` block of `block` bytes: the unaligned head and tail with
/// plain stores, whole blocks with `DC ZVA`, [`ROUND`] per round while they fit, then one.
/// `CLEAN`: each block, and the head and tail, also cleaned to the point of coherency
/// ([`zero_to_poc`], whose caller made sure a block is one cache line).
///
/// # Safety
/// As [`zero`].
unsafe fn zero_blocks<const CLEAN: bool>(pa: u64, len: u64, block: u64) {
    let end = pa.saturating_add(len);
    let first = pa.next_multiple_of(block).min(end);
    let last = (end & !(block - 1)).max(first);
    // SAFETY: per the contract `[pa, end)` is owned, mapped RAM; the head `[pa, first)` and
    // tail `[last, end)` lie inside it.
    unsafe {
        core::ptr::write_bytes(pa as *mut u8, 0, (first - pa) as usize);
        core::ptr::write_bytes(last as *mut u8, 0, (end - last) as usize);
    }
    if CLEAN {
        super::cpu::clean_dcache_range(pa, first - pa);
        super::cpu::clean_dcache_range(last, end - last);
    }
    let mut at = first;
    // Sixteen blocks per round: the loop's own compare and branch were a fifth of a
    // 512 MiB scrub's instructions at four per round (under `-icount`, boot time).
    while at + ROUND * block <= last {
        // SAFETY: `ROUND` whole blocks inside the owned range (RAM is Normal memory in the
        // EL2 map, which DC ZVA requires); cleaning a line writes back data, never changes
        // it.
        unsafe {
            if CLEAN {
                asm!(
                    ".rept {n}",
                    "dc zva, {a}", "dc cvac, {a}", "add {a}, {a}, {b}",
                    ".endr",
                    n = const ROUND,
                    a = inout(reg) at,
                    b = in(reg) block,
                    options(nostack, preserves_flags),
                );
            } else {
                asm!(
                    ".rept {n}",
                    "dc zva, {a}", "add {a}, {a}, {b}",
                    ".endr",
                    n = const ROUND,
                    a = inout(reg) at,
                    b = in(reg) block,
                    options(nostack, preserves_flags),
                );
            }
        }
    }
    while at < last {
        // SAFETY: one whole block inside the owned range, as above.
        unsafe {
            asm!("dc zva, {a}", a = in(reg) at, options(nostack, preserves_flags));
            if CLEAN {
                asm!("dc cvac, {a}", a = in(reg) at, options(nostack, preserves_flags));
            }
        }
        at += block;
    }
    if CLEAN {
        super::cpu::dsb_sy();
    }
}

/// The `DC ZVA` block size in bytes, or `None` if the instruction is prohibited.
fn zva_block() -> Option<u64> {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack, preserves_flags)) };
    // DZP (bit 4) prohibits DC ZVA; BS (bits 3:0) is log2 of the block size in words.
    (dczid & (1 << 4) == 0).then(|| 4u64 << (dczid & 0xf))
}

/// From this many bytes on, [`copy_to`] and [`copy_from`] take [`move_bytes`]'s unrolled
/// loop (one round is 128 bytes).
const LARGE_COPY: usize = 128;

/// From this many bytes on (a domain's kernel or initramfs), [`copy_to`] copies through
/// the vector registers: 128 bytes per 10 instructions instead of 18, for 128 bytes of
/// saving and restoring them (the microvisor is soft-float; they hold a guest's values).
const VECTOR_COPY: usize = 64 * 1024;

core::arch::global_asm!(
    r#"
    .arch_extension fp
    .arch_extension simd
    .global bulkhead_copy_vectors
bulkhead_copy_vectors:
    /* x0 = destination, x1 = source, x2 = length, a non-zero multiple of 128. q0-q7 are
       a guest's (SVE is trapped, so there are no wider registers to lose): kept. */
    sub     sp, sp, #128
    stp     q0, q1, [sp]
    stp     q2, q3, [sp, #32]
    stp     q4, q5, [sp, #64]
    stp     q6, q7, [sp, #96]
1:  ldp     q0, q1, [x1], #128
    ldp     q2, q3, [x1, #-96]
    ldp     q4, q5, [x1, #-64]
    ldp     q6, q7, [x1, #-32]
    stp     q0, q1, [x0], #128
    stp     q2, q3, [x0, #-96]
    stp     q4, q5, [x0, #-64]
    stp     q6, q7, [x0, #-32]
    subs    x2, x2, #128
    b.ne    1b
    ldp     q0, q1, [sp]
    ldp     q2, q3, [sp, #32]
    ldp     q4, q5, [sp, #64]
    ldp     q6, q7, [sp, #96]
    add     sp, sp, #128
    ret
"#
);

unsafe extern "C" {
    fn bulkhead_copy_vectors(dst: u64, src: u64, len: u64);
}

/// Copies `src` to `[pa, pa + src.len())`.
///
/// # Safety
/// The destination must be RAM owned by the microvisor or a guest, not overlapping `src`.
pub unsafe fn copy_to(pa: u64, src: &[u8]) {
    // Three sizes. A small copy of a known size (a hypercall's structure) stays the
    // compiler's: inlined, it is a load and a store or two. Larger ones take `move_bytes`
    // (18 instructions per 128 bytes where the compiler's memcpy spends four per 8), and
    // a domain's kernel or initramfs the vector loop: under `-icount` the compiler's copy
    // was 18 ms of a Linux guest's build.
    if src.len() < LARGE_COPY {
        // SAFETY: per the contract.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), pa as *mut u8, src.len()) };
    } else if src.len() >= VECTOR_COPY {
        let bulk = src.len() & !127;
        let (from, to) = (src.as_ptr() as u64, pa);
        // SAFETY: per the contract both ranges are RAM (Normal memory in the EL2 map, so
        // the vector loads and stores need no alignment) and disjoint; `bulk` is a non-zero
        // multiple of 128 inside both; FP/SIMD is not trapped at EL2 (CPTR_EL2.TFP = 0) and
        // the routine restores the registers it uses. The rest goes as below.
        unsafe {
            bulkhead_copy_vectors(to, from, bulk as u64);
            move_bytes(from + bulk as u64, to + bulk as u64, src.len() - bulk);
        }
    } else {
        // SAFETY: per the contract (disjoint, so `move_bytes` takes its unrolled loop).
        unsafe { move_bytes(src.as_ptr() as u64, pa, src.len()) };
    }
}

/// Copies `[pa, pa + dst.len())` into `dst` (one copy, so a guest that keeps writing the
/// source cannot change what the microvisor validates afterwards).
///
/// # Safety
/// The source must be mapped RAM (a guest's or the microvisor's own), not overlapping `dst`.
pub unsafe fn copy_from(pa: u64, dst: &mut [u8]) {
    // SAFETY: per the contract; volatile-free copy is fine because the result is only
    // used after the copy completes (sizes: as in `copy_to`).
    unsafe {
        if dst.len() < LARGE_COPY {
            core::ptr::copy_nonoverlapping(pa as *const u8, dst.as_mut_ptr(), dst.len());
        } else {
            move_bytes(pa, dst.as_mut_ptr() as u64, dst.len());
        }
    }
}

/// Reads a 64-bit word of a translation table.
///
/// # Safety
/// `pa` must be an 8-byte aligned address inside a table page the microvisor allocated.
pub unsafe fn read_u64(pa: u64) -> u64 {
    // SAFETY: per the contract.
    unsafe { core::ptr::read_volatile(pa as *const u64) }
}

/// Writes a 64-bit word of a translation table.
///
/// # Safety
/// As [`read_u64`]; the table must not be in use in a way this write would break.
pub unsafe fn write_u64(pa: u64, value: u64) {
    // SAFETY: per the contract.
    unsafe { core::ptr::write_volatile(pa as *mut u64, value) };
}

/// Reads a 32-bit device register.
///
/// # Safety
/// `pa` must be a 4-byte aligned register of a device owned by the microvisor.
pub unsafe fn mmio_read32(pa: u64) -> u32 {
    // SAFETY: per the contract.
    unsafe { core::ptr::read_volatile(pa as *const u32) }
}

/// Writes a 32-bit device register.
///
/// # Safety
/// As [`mmio_read32`].
pub unsafe fn mmio_write32(pa: u64, value: u32) {
    // SAFETY: per the contract.
    unsafe { core::ptr::write_volatile(pa as *mut u32, value) };
}

/// Reads a 64-bit device register.
///
/// # Safety
/// As [`mmio_read32`], 8-byte aligned.
pub unsafe fn mmio_read64(pa: u64) -> u64 {
    // SAFETY: per the contract.
    unsafe { core::ptr::read_volatile(pa as *const u64) }
}

/// Performs one device-register access of `width` bytes (1, 2, 4 or 8) on behalf of a
/// domain whose access trapped: a write of `write`'s low bytes, or a read whose value is
/// returned zero-extended (0 for writes).
///
/// # Safety
/// As [`mmio_read32`], with `pa` aligned to `width`.
pub unsafe fn mmio_access(pa: u64, width: u8, write: Option<u64>) -> u64 {
    // SAFETY: per the contract (all arms); each access is one volatile load or store of
    // the exact width the guest used, as devices require.
    unsafe {
        match (width, write) {
            (1, None) => u64::from(core::ptr::read_volatile(pa as *const u8)),
            (2, None) => u64::from(core::ptr::read_volatile(pa as *const u16)),
            (4, None) => u64::from(core::ptr::read_volatile(pa as *const u32)),
            (_, None) => core::ptr::read_volatile(pa as *const u64),
            (1, Some(v)) => {
                core::ptr::write_volatile(pa as *mut u8, v as u8);
                0
            }
            (2, Some(v)) => {
                core::ptr::write_volatile(pa as *mut u16, v as u16);
                0
            }
            (4, Some(v)) => {
                core::ptr::write_volatile(pa as *mut u32, v as u32);
                0
            }
            (_, Some(v)) => {
                core::ptr::write_volatile(pa as *mut u64, v);
                0
            }
        }
    }
}

/// Borrows `len` bytes of boot-loader-provided memory (device tree, modules) for reading.
///
/// # Safety
/// The range must be RAM the microvisor reserved at boot and never hands out or writes.
pub unsafe fn boot_blob(pa: u64, len: usize) -> &'static [u8] {
    // SAFETY: per the contract the range is reserved, mapped and immutable.
    unsafe { core::slice::from_raw_parts(pa as *const u8, len) }
}

/// Borrows boot-loader-provided memory (the device tree) for in-place editing.
///
/// # Safety
/// The range must be RAM handed to the microvisor by the boot loader, referenced nowhere
/// else, and reserved from the frame allocator afterwards.
pub unsafe fn boot_blob_mut(pa: u64, len: usize) -> &'static mut [u8] {
    // SAFETY: per the contract.
    unsafe { core::slice::from_raw_parts_mut(pa as *mut u8, len) }
}

/// Atomically ORs `mask` into the 64-bit word at `pa`; returns the previous value.
///
/// # Safety
/// `pa` must be an 8-byte aligned address in RAM owned by a live domain or the microvisor,
/// mapped Normal cacheable at EL2 (shared pages a guest updates with atomics too).
pub unsafe fn atomic_or_u64(pa: u64, mask: u64) -> u64 {
    // SAFETY: per the contract the word is valid, aligned RAM; the guest may access it
    // concurrently only through atomics or plain accesses it synchronises itself.
    let word = unsafe { core::sync::atomic::AtomicU64::from_ptr(pa as *mut u64) };
    word.fetch_or(mask, core::sync::atomic::Ordering::AcqRel)
}

/// Atomically ANDs `mask` into the 64-bit word at `pa`; returns the previous value.
///
/// # Safety
/// As [`atomic_or_u64`].
pub unsafe fn atomic_and_u64(pa: u64, mask: u64) -> u64 {
    // SAFETY: as in `atomic_or_u64`.
    let word = unsafe { core::sync::atomic::AtomicU64::from_ptr(pa as *mut u64) };
    word.fetch_and(mask, core::sync::atomic::Ordering::AcqRel)
}

/// Atomically loads the 64-bit word at `pa`.
///
/// # Safety
/// As [`atomic_or_u64`].
pub unsafe fn atomic_load_u64(pa: u64) -> u64 {
    // SAFETY: as in `atomic_or_u64`.
    let word = unsafe { core::sync::atomic::AtomicU64::from_ptr(pa as *mut u64) };
    word.load(core::sync::atomic::Ordering::Acquire)
}

/// Atomically swaps the byte at `pa` with `value`; returns the previous byte.
///
/// # Safety
/// `pa` must be in RAM as for [`atomic_or_u64`] (any alignment).
pub unsafe fn atomic_swap_u8(pa: u64, value: u8) -> u8 {
    // SAFETY: as in `atomic_or_u64`.
    let byte = unsafe { core::sync::atomic::AtomicU8::from_ptr(pa as *mut u8) };
    byte.swap(value, core::sync::atomic::Ordering::AcqRel)
}

/// Atomically loads the byte at `pa`.
///
/// # Safety
/// As [`atomic_swap_u8`].
pub unsafe fn atomic_load_u8(pa: u64) -> u8 {
    // SAFETY: as in `atomic_or_u64`.
    let byte = unsafe { core::sync::atomic::AtomicU8::from_ptr(pa as *mut u8) };
    byte.load(core::sync::atomic::Ordering::Acquire)
}

/// Compare-and-swap of the 32-bit word at `pa`; returns the value found.
///
/// # Safety
/// `pa` must be 4-byte aligned, otherwise as [`atomic_or_u64`].
pub unsafe fn atomic_cas_u32(pa: u64, old: u32, new: u32) -> u32 {
    // SAFETY: as in `atomic_or_u64`.
    let word = unsafe { core::sync::atomic::AtomicU32::from_ptr(pa as *mut u32) };
    match word.compare_exchange(
        old,
        new,
        core::sync::atomic::Ordering::AcqRel,
        core::sync::atomic::Ordering::Acquire,
    ) {
        Ok(v) | Err(v) => v,
    }
}

/// Atomically clears `bits` in the 16-bit word at `pa`.
///
/// # Safety
/// `pa` must be 2-byte aligned, otherwise as [`atomic_or_u64`].
pub unsafe fn atomic_clear_u16(pa: u64, bits: u16) {
    // SAFETY: as in `atomic_or_u64`.
    let word = unsafe { core::sync::atomic::AtomicU16::from_ptr(pa as *mut u16) };
    word.fetch_and(!bits, core::sync::atomic::Ordering::AcqRel);
}

/// Copies `len` bytes from `src` to `dst` (the ranges may overlap).
///
/// # Safety
/// Both ranges must be RAM owned by live domains or the microvisor, validated by the caller.
pub unsafe fn move_bytes(src: u64, dst: u64, len: usize) {
    // Grant copies move packets and pages between distinct frames: the compiler's memmove
    // spends four instructions per 8 bytes aligned and about twenty when the source is not
    // 8-byte aligned (it assembles words from bytes), and under `-icount` instructions are
    // the cost of a copy (DESIGN §8). Disjoint ranges of 16 bytes or more take 128 bytes
    // per 18 instructions at any alignment: RAM is Normal memory in the EL2 map and
    // SCTLR_EL2.A is clear, so LDP/STP need no alignment. The last partial block is copied
    // as a whole block ending at the range's end, overlapping bytes already copied; the
    // ranges being disjoint, that only writes the same source bytes again.
    let disjoint = src.wrapping_add(len as u64) <= dst || dst.wrapping_add(len as u64) <= src;
    if len < 16 || !disjoint {
        // SAFETY: per the contract; `copy` handles overlap.
        return unsafe { core::ptr::copy(src as *const u8, dst as *mut u8, len) };
    }
    let bulk = len & !127;
    if bulk != 0 {
        // SAFETY: per the contract both ranges are valid Normal RAM and do not overlap
        // (checked); the loop touches exactly the first `bulk` bytes of each (a non-zero
        // multiple of 128: the first load and store of a round advance the pointers, the rest
        // address back from there).
        unsafe {
            asm!(
                "2:",
                "ldp {a}, {b}, [{s}], #128",
                "ldp {c}, {d}, [{s}, #-112]",
                "ldp {e}, {f}, [{s}, #-96]",
                "ldp {g}, {h}, [{s}, #-80]",
                "stp {a}, {b}, [{t}], #128",
                "stp {c}, {d}, [{t}, #-112]",
                "stp {e}, {f}, [{t}, #-96]",
                "stp {g}, {h}, [{t}, #-80]",
                "ldp {a}, {b}, [{s}, #-64]",
                "ldp {c}, {d}, [{s}, #-48]",
                "ldp {e}, {f}, [{s}, #-32]",
                "ldp {g}, {h}, [{s}, #-16]",
                "stp {a}, {b}, [{t}, #-64]",
                "stp {c}, {d}, [{t}, #-48]",
                "stp {e}, {f}, [{t}, #-32]",
                "stp {g}, {h}, [{t}, #-16]",
                "subs {n}, {n}, #128",
                "b.ne 2b",
                s = inout(reg) src => _,
                t = inout(reg) dst => _,
                n = inout(reg) bulk => _,
                a = out(reg) _,
                b = out(reg) _,
                c = out(reg) _,
                d = out(reg) _,
                e = out(reg) _,
                f = out(reg) _,
                g = out(reg) _,
                h = out(reg) _,
                options(nostack),
            );
        }
    }
    // The rest (< 128 bytes) in 16-byte blocks from `bulk`, the last one ending exactly at
    // `len` (so it may overlap the block before it). `len >= 16`, so every block is inside
    // both ranges.
    let mut at = bulk;
    while at < len {
        let from = at.min(len - 16) as u64;
        // SAFETY: `[from, from + 16)` lies inside both validated, disjoint ranges.
        unsafe {
            asm!(
                "ldp {a}, {b}, [{s}]",
                "stp {a}, {b}, [{t}]",
                s = in(reg) src + from,
                t = in(reg) dst + from,
                a = out(reg) _,
                b = out(reg) _,
                options(nostack),
            );
        }
        at += 16;
    }
}
