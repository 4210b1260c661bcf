//! Our own grant table (v1, one frame). The microvisor places frame 0 of a domain's table
//! at the start of the grant window (Xen's `GUEST_GNTTAB_BASE`) when asked with
//! `XENMEM_add_to_physmap(grant_table, 0)`; our stage 1 maps that window as Device memory,
//! so entries are written with plain volatile stores (no exclusives, which Device memory
//! does not support). Entries are only ever filled: a granted page stays granted for the
//! domain's life (frontend rings and buffers are never freed), so no revoke races with the
//! microvisor's `GTF_reading`/`GTF_writing` updates.

use core::sync::atomic::{fence, Ordering};
use protocol::layout::GUEST_GNTTAB_BASE;
use protocol::xen::structs::{gtf, GRANT_ENTRIES_PER_FRAME};

/// Guest-physical (= our virtual) address of our grant-table frame 0.
pub fn grant_table_addr() -> u64 {
    GUEST_GNTTAB_BASE.as_u64()
}

/// Fills entry `gref` (< 512): `domid` may access frame `frame` (read-only if `readonly`).
/// The domid and frame are written before the flags make the entry valid, as the ABI
/// requires. The table frame must have been placed first.
pub fn grant_entry_write(gref: u32, domid: u16, frame: u32, readonly: bool) {
    let entry = grant_table_addr() as usize + (gref as usize % GRANT_ENTRIES_PER_FRAME) * 8;
    let ro = if readonly { gtf::READONLY } else { 0 };
    // SAFETY: the entry lies inside the table frame the microvisor placed at the grant
    // window (index reduced modulo the entries per frame), which our stage 1 maps; the
    // fields are naturally aligned (domid at +2, frame at +4, flags at +0).
    unsafe {
        core::ptr::write_volatile((entry + 2) as *mut u16, domid);
        core::ptr::write_volatile((entry + 4) as *mut u32, frame);
    }
    fence(Ordering::Release);
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(entry as *mut u16, gtf::PERMIT_ACCESS | ro) };
}
