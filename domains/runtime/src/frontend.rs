//! What a Rust domain needs to be a PV *frontend* (the side that owns the memory): its own
//! grant table to grant pages to a backend, page-aligned pages to grant, and unbound event
//! channels for the backend to bind. The ring logic itself lives with each device
//! ([`crate::netfront`]).

use crate::arch;
use crate::xen::XenError;
use alloc::vec::Vec;
use protocol::xen::structs::GRANT_ENTRIES_PER_FRAME;
use protocol::xen::structs::{EvtchnAllocUnbound, XenAddToPhysmap, DOMID_SELF};
use protocol::xen::{EvtchnOp, Hypercall, MapSpace, MemoryOp, XenErrno};
use spin::Mutex;

/// Grant references Xen reserves for the toolstack (`GNTTAB_NR_RESERVED_ENTRIES`): the
/// console and xenstore rings' well-known refs. Never handed out here.
const RESERVED_REFS: u32 = 8;

/// The grant references still free, once the table frame is registered.
static FREE_REFS: Mutex<Option<Vec<u32>>> = Mutex::new(None);

fn call(h: Hypercall, args: [u64; 5]) -> Result<u64, XenError> {
    let r = arch::xen_hvc(h as u64, args);
    if (r as i64) < 0 {
        return Err(XenErrno::from_ret(r).map_or(XenError::Raw(r as i64), XenError::Errno));
    }
    Ok(r)
}

/// Registers our grant-table frame with the microvisor (once; later calls do nothing).
fn ensure_table() -> Result<(), XenError> {
    let mut free = FREE_REFS.lock();
    if free.is_some() {
        return Ok(());
    }
    let mut x = XenAddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space: MapSpace::GrantTable as u32,
        idx: 0,
        gpfn: arch::grant_table_addr() / 4096,
    };
    call(
        Hypercall::MemoryOp,
        [
            MemoryOp::AddToPhysmap as u64,
            &mut x as *mut _ as u64,
            0,
            0,
            0,
        ],
    )?;
    // Handed out from the end, so the lowest refs go first.
    *free = Some(
        (RESERVED_REFS..GRANT_ENTRIES_PER_FRAME as u32)
            .rev()
            .collect(),
    );
    Ok(())
}

/// A page of our RAM granted to another domain, for the domain's life (see
/// [`crate::arch`]'s grant table: entries are never revoked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granted {
    /// The grant reference to give the backend.
    pub gref: u32,
    /// Our address of the page (identity-mapped: also its guest-physical address).
    pub addr: u64,
}

/// Grants `domid` access to our page at `addr` (page-aligned), read-only if `readonly`.
/// Fails with `ENOSPC` when all grant references are in use.
pub fn grant(domid: u16, addr: u64, readonly: bool) -> Result<Granted, XenError> {
    ensure_table()?;
    let gref = FREE_REFS
        .lock()
        .as_mut()
        .and_then(Vec::pop)
        .ok_or(XenError::Errno(XenErrno::ENOSPC))?;
    let frame = u32::try_from(addr / 4096).map_err(|_| XenError::Errno(XenErrno::EINVAL))?;
    arch::grant_entry_write(gref, domid, frame, readonly);
    Ok(Granted { gref, addr })
}

/// A page-aligned page, as the heap hands it out.
#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// A zeroed, page-aligned page from the heap, never freed (frontend rings and buffers live
/// as long as the domain). Aborts like any allocation when the heap is exhausted.
pub fn alloc_page() -> u64 {
    let page: &'static mut Page = alloc::boxed::Box::leak(alloc::boxed::Box::new(Page([0; 4096])));
    page.0.as_mut_ptr() as u64
}

/// A new port of ours that `remote_dom` may bind (`EVTCHNOP_alloc_unbound`).
pub fn evtchn_alloc_unbound(remote_dom: u16) -> Result<u32, XenError> {
    let mut a = EvtchnAllocUnbound {
        dom: DOMID_SELF,
        remote_dom,
        port: 0,
    };
    call(
        Hypercall::EventChannelOp,
        [
            EvtchnOp::AllocUnbound as u64,
            &mut a as *mut _ as u64,
            0,
            0,
            0,
        ],
    )?;
    Ok(a.port)
}
