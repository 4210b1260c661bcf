//! Client side of the Xen-compatible ABI for our Rust domains: event channels, grant
//! mappings, HVM parameters and the shared_info page. dom0's console and xenstore backends
//! use it; so will netback/blkback.
//!
//! Pages granted to us are mapped in the grant-map window
//! ([`protocol::layout::PV_MAP_BASE`]), which the runtime's stage 1 maps as Normal memory;
//! slot `n` is the page at `PV_MAP_BASE + n * 4 KiB`.

use crate::arch;
use protocol::layout::PV_MAP_BASE;
use protocol::xen::structs::{
    gntmap, EvtchnBindInterdomain, EvtchnClose, EvtchnSend, EvtchnUnmask, GnttabCopy,
    GnttabMapGrantRef, GnttabUnmapGrantRef, XenAddToPhysmap, XenHvmParam, DOMID_SELF,
};
use protocol::xen::{EvtchnOp, GnttabOp, HvmOp, HvmParam, Hypercall, MapSpace, MemoryOp, XenErrno};

pub use arch::{clear_port_pending, port_pending, set_port_masked, take_pending_ports, MappedPage};

/// A mapped ring page as the xenstore/console ring logic sees it.
impl protocol::xen::ring_io::SharedRing for MappedPage {
    fn load_index(&self, off: usize) -> u32 {
        self.load_u32(off)
    }
    fn store_index(&mut self, off: usize, value: u32) {
        self.store_u32(off, value)
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        for (i, b) in dst.iter_mut().enumerate() {
            *b = self.read_u8(off + i);
        }
    }
    fn write_bytes(&mut self, off: usize, src: &[u8]) {
        for (i, b) in src.iter().enumerate() {
            self.write_u8(off + i, *b);
        }
    }
}

/// A failed Xen call: an errno, or a grant status (`GNTST_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenError {
    /// The hypercall returned this errno.
    Errno(XenErrno),
    /// An unknown negative return value.
    Raw(i64),
    /// A grant operation's per-entry status.
    Grant(i16),
}

impl core::fmt::Display for XenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Errno(e) => write!(f, "{e:?}"),
            Self::Raw(v) => write!(f, "error {v}"),
            Self::Grant(s) => write!(f, "grant status {s}"),
        }
    }
}

fn call(h: Hypercall, args: [u64; 5]) -> Result<u64, XenError> {
    let r = arch::xen_hvc(h as u64, args);
    if (r as i64) < 0 {
        return Err(XenErrno::from_ret(r).map_or(XenError::Raw(r as i64), XenError::Errno));
    }
    Ok(r)
}

fn addr_of<T>(v: &mut T) -> u64 {
    v as *mut T as u64
}

/// Puts our shared_info page in place so event channels raise our upcall (PPI 31).
pub fn map_shared_info() -> Result<(), XenError> {
    let mut x = XenAddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space: MapSpace::SharedInfo as u32,
        idx: 0,
        gpfn: arch::shared_info_addr() / 4096,
    };
    call(
        Hypercall::MemoryOp,
        [MemoryOp::AddToPhysmap as u64, addr_of(&mut x), 0, 0, 0],
    )
    .map(|_| ())
}

/// Maps our shared_info ([`map_shared_info`]) so that events wake the caller's event loop.
/// If it cannot, says so and returns the period in counter ticks at which the loop must
/// poll instead of waiting for events; `u64::MAX` (no poll) when events work.
pub fn events_or_poll(poll_ms: u64) -> u64 {
    match map_shared_info() {
        Ok(()) => u64::MAX,
        Err(e) => {
            crate::println!("cannot map shared_info ({e}): polling every {poll_ms} ms");
            crate::timer::ms_to_ticks(poll_ms, crate::timer::freq())
        }
    }
}

/// Reads HVM parameter `param` of domain `dom` (dom0 may read any domain's).
pub fn hvm_get_param(dom: u16, param: HvmParam) -> Result<u64, XenError> {
    let mut p = XenHvmParam {
        domid: dom,
        pad: 0,
        index: param as u32,
        value: 0,
    };
    call(
        Hypercall::HvmOp,
        [HvmOp::GetParam as u64, addr_of(&mut p), 0, 0, 0],
    )?;
    Ok(p.value)
}

/// Connects a new local port to `remote_port` of `remote_dom` (which must be unbound and
/// waiting for us). Returns the local port.
pub fn evtchn_bind_interdomain(remote_dom: u16, remote_port: u32) -> Result<u32, XenError> {
    let mut b = EvtchnBindInterdomain {
        remote_dom,
        _pad0: 0,
        remote_port,
        local_port: 0,
    };
    call(
        Hypercall::EventChannelOp,
        [EvtchnOp::BindInterdomain as u64, addr_of(&mut b), 0, 0, 0],
    )?;
    Ok(b.local_port)
}

/// Notifies the other end of `port`.
pub fn evtchn_send(port: u32) -> Result<(), XenError> {
    let mut s = EvtchnSend { port };
    call(
        Hypercall::EventChannelOp,
        [EvtchnOp::Send as u64, addr_of(&mut s), 0, 0, 0],
    )
    .map(|_| ())
}

/// Unmasks `port` (re-raising it if it became pending while masked).
pub fn evtchn_unmask(port: u32) -> Result<(), XenError> {
    let mut u = EvtchnUnmask { port };
    call(
        Hypercall::EventChannelOp,
        [EvtchnOp::Unmask as u64, addr_of(&mut u), 0, 0, 0],
    )
    .map(|_| ())
}

/// Closes `port`.
pub fn evtchn_close(port: u32) -> Result<(), XenError> {
    let mut c = EvtchnClose { port };
    call(
        Hypercall::EventChannelOp,
        [EvtchnOp::Close as u64, addr_of(&mut c), 0, 0, 0],
    )
    .map(|_| ())
}

/// Guest-physical (= our virtual) address of grant-map slot `slot`.
pub const fn map_slot_addr(slot: u32) -> u64 {
    PV_MAP_BASE.as_u64() + slot as u64 * 4096
}

/// Maps grant `gref` of domain `dom` at grant-map slot `slot`, writable. Returns the page and
/// the handle to unmap it with.
pub fn grant_map(dom: u16, gref: u32, slot: u32) -> Result<(MappedPage, u32), XenError> {
    let addr = map_slot_addr(slot);
    let mut m = GnttabMapGrantRef {
        host_addr: addr,
        flags: gntmap::HOST_MAP,
        gref,
        dom,
        status: 0,
        handle: 0,
        dev_bus_addr: 0,
    };
    call(
        Hypercall::GrantTableOp,
        [GnttabOp::MapGrantRef as u64, addr_of(&mut m), 1, 0, 0],
    )?;
    if m.status != 0 {
        return Err(XenError::Grant(m.status));
    }
    Ok((MappedPage::new(addr), m.handle))
}

/// Unmaps what [`grant_map`] mapped at `page` with `handle`.
pub fn grant_unmap(page: MappedPage, handle: u32) -> Result<(), XenError> {
    let mut u = GnttabUnmapGrantRef {
        host_addr: page.addr(),
        dev_bus_addr: 0,
        handle,
        status: 0,
        _pad0: 0,
    };
    call(
        Hypercall::GrantTableOp,
        [GnttabOp::UnmapGrantRef as u64, addr_of(&mut u), 1, 0, 0],
    )?;
    if u.status != 0 {
        return Err(XenError::Grant(u.status));
    }
    Ok(())
}

/// `GNTTABOP_map_grant_ref` of a batch, in one call (the microvisor serves it in chunks
/// and continues by itself): each entry's `status`, `handle` and `dev_bus_addr` say how it
/// went. The call itself fails only if the batch could not be read.
pub fn grant_map_batch(ops: &mut [GnttabMapGrantRef]) -> Result<(), XenError> {
    if ops.is_empty() {
        return Ok(());
    }
    call(
        Hypercall::GrantTableOp,
        [
            GnttabOp::MapGrantRef as u64,
            ops.as_mut_ptr() as u64,
            ops.len() as u64,
            0,
            0,
        ],
    )
    .map(drop)
}

/// `GNTTABOP_unmap_grant_ref` of a batch, in one call; each entry's `status` says how it
/// went.
pub fn grant_unmap_batch(ops: &mut [GnttabUnmapGrantRef]) -> Result<(), XenError> {
    if ops.is_empty() {
        return Ok(());
    }
    call(
        Hypercall::GrantTableOp,
        [
            GnttabOp::UnmapGrantRef as u64,
            ops.as_mut_ptr() as u64,
            ops.len() as u64,
            0,
            0,
        ],
    )
    .map(drop)
}

/// `GNTTABOP_copy` of a batch: each entry's `status` says how it went (a failed entry does
/// not stop the others). The call itself fails only if the batch could not be read.
pub fn grant_copy(ops: &mut [GnttabCopy]) -> Result<(), XenError> {
    if ops.is_empty() {
        return Ok(());
    }
    call(
        Hypercall::GrantTableOp,
        [
            GnttabOp::Copy as u64,
            ops.as_mut_ptr() as u64,
            ops.len() as u64,
            0,
            0,
        ],
    )
    .map(drop)
}
