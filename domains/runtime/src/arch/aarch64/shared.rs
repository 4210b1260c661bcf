//! Pages shared with the microvisor or another domain: our shared_info page (event-channel
//! bits) and pages mapped from other domains by grant. Every access is volatile or atomic:
//! the other side writes them concurrently.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use protocol::xen::structs::SharedInfo;

/// A 4 KiB page-aligned page in our RAM, given to the microvisor to put shared_info at.
#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// The page whose frame `XENMEM_add_to_physmap` replaces with our shared_info. Never
/// accessed as a Rust object: only through the raw pointers below.
static mut SHARED_INFO_PAGE: Page = Page([0; 4096]);

/// Address of the page to hand to `add_to_physmap(shared_info)`.
pub fn shared_info_addr() -> u64 {
    core::ptr::addr_of!(SHARED_INFO_PAGE) as u64
}

fn word(offset: usize) -> &'static AtomicU64 {
    let addr = shared_info_addr() as usize + offset;
    // SAFETY: `offset` is inside the shared_info page (callers index fixed arrays of it), it
    // is 8-byte aligned, and the page is only ever accessed atomically.
    unsafe { AtomicU64::from_ptr(addr as *mut u64) }
}

/// The bit of event-channel `port` in shared_info's `evtchn_pending` or `evtchn_mask`
/// (`array` is that array's offset): its word and mask, `None` past the 2-level ABI's
/// 4,096 ports.
fn port_bit(array: usize, port: u32) -> Option<(&'static AtomicU64, u64)> {
    let w = usize::try_from(port / 64).ok().filter(|&w| w < 64)?;
    Some((word(array + w * 8), 1 << (port % 64)))
}

/// Masks (`true`) or unmasks event-channel `port` in our shared_info, as a guest does
/// before and after it polls a port it handles without an upcall. Unmasking here delivers
/// nothing that became pending meanwhile (`EVTCHNOP_unmask` does).
pub fn set_port_masked(port: u32, masked: bool) {
    if let Some((w, bit)) = port_bit(core::mem::offset_of!(SharedInfo, evtchn_mask), port) {
        if masked {
            w.fetch_or(bit, Ordering::AcqRel);
        } else {
            w.fetch_and(!bit, Ordering::AcqRel);
        }
    }
}

/// Whether event-channel `port` is pending in our shared_info, masked or not.
pub fn port_pending(port: u32) -> bool {
    port_bit(core::mem::offset_of!(SharedInfo, evtchn_pending), port)
        .is_some_and(|(w, bit)| w.load(Ordering::Acquire) & bit != 0)
}

/// Clears event-channel `port`'s pending bit in our shared_info.
pub fn clear_port_pending(port: u32) {
    if let Some((w, bit)) = port_bit(core::mem::offset_of!(SharedInfo, evtchn_pending), port) {
        w.fetch_and(!bit, Ordering::AcqRel);
    }
}

/// Takes every pending, unmasked event-channel port of vCPU 0 (2-level ABI): clears
/// `evtchn_upcall_pending`, then each word flagged in `evtchn_pending_sel`, and calls `f`
/// with each port found. The shared_info page must have been registered.
pub fn take_pending_ports(mut f: impl FnMut(u32)) {
    let upcall = core::mem::offset_of!(SharedInfo, vcpu_info);
    let sel_off = upcall + 8;
    let pending = core::mem::offset_of!(SharedInfo, evtchn_pending);
    let mask = core::mem::offset_of!(SharedInfo, evtchn_mask);
    // SAFETY: byte 0 of vcpu_info[0] is evtchn_upcall_pending, inside the page.
    let flag = unsafe { AtomicU8::from_ptr((shared_info_addr() as usize + upcall) as *mut u8) };
    flag.store(0, Ordering::SeqCst);
    let mut sel = word(sel_off).swap(0, Ordering::AcqRel);
    while sel != 0 {
        let w = sel.trailing_zeros() as usize;
        sel &= sel - 1;
        let bits = word(pending + w * 8).load(Ordering::Acquire)
            & !word(mask + w * 8).load(Ordering::Acquire);
        if bits == 0 {
            continue;
        }
        word(pending + w * 8).fetch_and(!bits, Ordering::AcqRel);
        let mut b = bits;
        while b != 0 {
            let bit = b.trailing_zeros();
            b &= b - 1;
            f((w as u32) * 64 + bit);
        }
    }
}

/// A page another domain granted us, mapped at `addr` (inside our grant-map window).
#[derive(Clone, Copy, Debug)]
pub struct MappedPage {
    addr: u64,
}

impl MappedPage {
    /// Wraps the mapping at `addr`.
    ///
    /// The caller promises `addr` is a page mapped in our address space (one it just
    /// mapped with `GNTTABOP_map_grant_ref`, or a page of our own RAM it shares with
    /// another domain) and keeps mapped while this value (or a copy) is used.
    pub fn new(addr: u64) -> Self {
        Self { addr }
    }

    /// Its address.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Volatile byte read at `off` (< 4096; larger offsets wrap into the page).
    pub fn read_u8(&self, off: usize) -> u8 {
        // SAFETY: the page is mapped (constructor contract) and `off` is masked into it.
        unsafe { core::ptr::read_volatile((self.addr as usize + (off & 0xFFF)) as *const u8) }
    }

    /// Volatile byte write at `off` (< 4096).
    pub fn write_u8(&self, off: usize, v: u8) {
        // SAFETY: as in `read_u8`.
        unsafe { core::ptr::write_volatile((self.addr as usize + (off & 0xFFF)) as *mut u8, v) }
    }

    /// Acquire load of the 32-bit index at `off` (4-byte aligned, < 4096).
    pub fn load_u32(&self, off: usize) -> u32 {
        let p = (self.addr as usize + (off & 0xFFC)) as *mut u32;
        // SAFETY: aligned, inside the mapped page; the peer updates indexes atomically.
        unsafe { core::sync::atomic::AtomicU32::from_ptr(p) }.load(Ordering::Acquire)
    }

    /// Release store of the 32-bit index at `off` (4-byte aligned, < 4096).
    pub fn store_u32(&self, off: usize, v: u32) {
        let p = (self.addr as usize + (off & 0xFFC)) as *mut u32;
        // SAFETY: as in `load_u32`.
        unsafe { core::sync::atomic::AtomicU32::from_ptr(p) }.store(v, Ordering::Release)
    }
}
