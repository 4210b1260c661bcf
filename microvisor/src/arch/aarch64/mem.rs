//! Access to physical memory. EL2 identity-maps RAM, so a physical address is also the
//! microvisor's virtual address; this is the one place where such an address becomes a
//! pointer.

/// Zeroes `[pa, pa + len)`.
///
/// # Safety
/// The range must be RAM the microvisor owns (from its frame allocator) and that no
/// reference currently covers.
pub unsafe fn zero(pa: u64, len: u64) {
    // SAFETY: per the contract the range is owned, mapped RAM.
    unsafe { core::ptr::write_bytes(pa as *mut u8, 0, len as usize) };
}

/// Copies `src` to `[pa, pa + src.len())`.
///
/// # Safety
/// The destination must be RAM owned by the microvisor or a guest, not overlapping `src`.
pub unsafe fn copy_to(pa: u64, src: &[u8]) {
    // SAFETY: per the contract.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), pa as *mut u8, src.len()) };
}

/// Copies `[pa, pa + dst.len())` into `dst` (one copy, so a guest that keeps writing the
/// source cannot change what the microvisor validates afterwards).
///
/// # Safety
/// The source must be mapped RAM (a guest's or the microvisor's own), not overlapping `dst`.
pub unsafe fn copy_from(pa: u64, dst: &mut [u8]) {
    // SAFETY: per the contract; volatile-free byte copy is fine because the result is only
    // used after the copy completes.
    unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, dst.as_mut_ptr(), dst.len()) };
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
