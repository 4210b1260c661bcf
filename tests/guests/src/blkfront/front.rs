//! The frontend half of one vbd, written from the blkif specification: our grant table,
//! the shared ring page we grant to the backend, request encoding, the xenbus handshake
//! through our xenstore home, and waiting for responses and backend states.

use alloc::format;
use alloc::string::String;
use bulkhead_runtime::xen::{self, MappedPage};
use bulkhead_runtime::xenstore::XsClient;
use bulkhead_runtime::{arch, timer};
use core::sync::atomic::{AtomicU32, Ordering};
use protocol::layout::GUEST_GNTTAB_BASE;
use protocol::xen::structs::{gtf, EvtchnAllocUnbound, XenAddToPhysmap, DOMID_SELF};
use protocol::xen::{EvtchnOp, Hypercall, MapSpace, MemoryOp};

/// Bytes of the shared ring's header (`req_prod`, `req_event`, `rsp_prod`, `rsp_event`,
/// 48 bytes of padding).
const HEADER: usize = 64;
/// Bytes of one ring slot (a request; a response overlays its start).
const SLOT: usize = 112;
/// Slots in a one-page ring: the largest power of two that fits.
pub const ENTRIES: u32 = 32;
/// Offsets of the header's indexes.
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;

/// A page of our RAM shared with the backend (by grant), accessed only atomically.
#[repr(C, align(4096))]
pub struct Page([AtomicU32; 1024]);

impl Page {
    /// A zeroed page.
    pub const fn new() -> Self {
        Self([const { AtomicU32::new(0) }; 1024])
    }

    /// Its frame number (our RAM is identity mapped).
    pub fn gfn(&self) -> u64 {
        core::ptr::from_ref(self) as u64 / 4096
    }

    /// The 32-bit word at byte offset `off`.
    pub fn word(&self, off: usize) -> u32 {
        self.0[off / 4].load(Ordering::Acquire)
    }

    /// Stores the 32-bit word at byte offset `off`.
    pub fn set(&self, off: usize, v: u32) {
        self.0[off / 4].store(v, Ordering::Release)
    }

    /// Fills the page with `v`.
    pub fn fill(&self, v: u32) {
        for w in &self.0 {
            w.store(v, Ordering::Relaxed);
        }
        core::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// Grant entries we use (0 and 1 are the builder's console and xenstore grants): the ring
/// page of our vbd `i` is granted in entry `GREF_RING + i`.
pub const GREF_RING: u32 = 6;
/// A writable grant of [`DATA`].
pub const GREF_DATA: u32 = 9;
/// A read-only grant of [`DATA`] (a read into it must fail).
pub const GREF_DATA_RO: u32 = 10;
/// An entry we never fill (a request naming it must fail).
pub const GREF_UNUSED: u32 = 300;

/// The ring pages, one per vbd we drive.
static RINGS: [Page; 2] = [Page::new(), Page::new()];
/// The data page reads land in and writes come from.
pub static DATA: Page = Page::new();

/// Maps our grant-table frame 0 into the grant window; false if refused.
pub fn map_grant_table() -> bool {
    let mut x = XenAddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space: MapSpace::GrantTable as u32,
        idx: 0,
        gpfn: GUEST_GNTTAB_BASE.as_u64() / 4096,
    };
    let a = core::ptr::from_mut(&mut x) as u64;
    arch::xen_hvc(
        Hypercall::MemoryOp as u64,
        [MemoryOp::AddToPhysmap as u64, a, 0, 0, 0],
    ) == 0
}

/// Grants `gfn` to `domid` in entry `gref` (read-only if asked); frame first, so the entry
/// never goes live with a stale frame.
pub fn grant(gref: u32, domid: u16, gfn: u64, read_only: bool) {
    let t = MappedPage::new(GUEST_GNTTAB_BASE.as_u64());
    let i = gref as usize * 8;
    let flags = gtf::PERMIT_ACCESS | if read_only { gtf::READONLY } else { 0 };
    t.store_u32(i + 4, gfn as u32);
    t.store_u32(i, u32::from(flags) | u32::from(domid) << 16);
}

/// An unbound event channel `remote` may bind to; `None` if refused.
fn alloc_unbound(remote: u16) -> Option<u32> {
    let mut a = EvtchnAllocUnbound {
        dom: DOMID_SELF,
        remote_dom: remote,
        port: 0,
    };
    let p = core::ptr::from_mut(&mut a) as u64;
    let x0 = arch::xen_hvc(
        Hypercall::EventChannelOp as u64,
        [EvtchnOp::AllocUnbound as u64, p, 0, 0, 0],
    );
    (x0 == 0).then_some(a.port)
}

/// One segment: `(gref, first_sect, last_sect)`.
pub type Seg = (u32, u8, u8);

/// A request as we put it in the ring (deliberately able to say anything).
#[derive(Clone, Copy, Debug)]
pub struct Req {
    /// Operation byte.
    pub op: u8,
    /// `nr_segments` as written (may disagree with `segs`).
    pub nr_segments: u8,
    /// Our id, echoed in the response.
    pub id: u64,
    /// First sector.
    pub sector: u64,
    /// Segments written into the slot (at most 11 fit).
    pub segs: &'static [Seg],
}

/// A response: `(id, operation, status)`.
pub type Rsp = (u64, u8, i16);

/// A vbd of ours as dom0 described it.
#[derive(Clone, Debug)]
pub struct Vbd {
    /// `device/vbd/<devid>`.
    pub dir: String,
    /// The backend's directory (absolute).
    pub backend: String,
    /// The backend's domain id.
    pub backend_id: u16,
}

/// Milliseconds → counter ticks.
fn ticks(ms: u64) -> u64 {
    timer::ms_to_ticks(ms, timer::freq())
}

/// A connected (or once connected) frontend.
pub struct Front {
    /// The shared ring page.
    ring: &'static Page,
    /// Our event channel to the backend.
    pub port: u32,
    /// Requests produced so far (our `req_prod`).
    pub req_prod: u32,
    /// Responses consumed so far.
    pub rsp_cons: u32,
}

impl Front {
    /// The backend's `state`, or 0 if unreadable.
    pub fn backend_state(xs: &mut XsClient, v: &Vbd) -> u32 {
        let s = xs.read_str(&format!("{}/state", v.backend));
        s.ok().flatten().and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// Waits up to `ms` for the backend to reach `want`; the last state seen.
    pub fn wait_backend(xs: &mut XsClient, v: &Vbd, want: u32, ms: u64) -> u32 {
        let deadline = timer::now().saturating_add(ticks(ms));
        loop {
            let s = Self::backend_state(xs, v);
            if s == want || timer::now() >= deadline {
                return s;
            }
            timer::sleep_ms(10);
        }
    }

    /// Writes our `state`.
    pub fn set_state(xs: &mut XsClient, v: &Vbd, state: u32) -> bool {
        xs.write(&format!("{}/state", v.dir), format!("{state}").as_bytes())
            .is_ok()
    }

    /// Connects as Linux's blkfront does: fresh ring page granted to the backend, a fresh
    /// unbound port for it, `ring-ref`, `event-channel`, `protocol`, state Initialised;
    /// once the backend is Connected, state Connected. Returns what went wrong, if anything.
    /// `which` (0 or 1) picks our ring page.
    pub fn connect(xs: &mut XsClient, v: &Vbd, which: usize) -> Result<Self, String> {
        let ring = &RINGS[which];
        let gref = GREF_RING + which as u32;
        ring.fill(0);
        ring.set(REQ_EVENT, 1);
        ring.set(RSP_EVENT, 1);
        grant(gref, v.backend_id, ring.gfn(), false);
        let port = alloc_unbound(v.backend_id).ok_or("alloc_unbound refused")?;
        let keys = [
            ("ring-ref", format!("{gref}")),
            ("event-channel", format!("{port}")),
            ("protocol", String::from("arm-abi")),
        ];
        for (k, val) in keys {
            xs.write(&format!("{}/{k}", v.dir), val.as_bytes())
                .map_err(|e| format!("write {k}: {e:?}"))?;
        }
        Self::set_state(xs, v, 3);
        let s = Self::wait_backend(xs, v, 4, 10_000);
        if s != 4 {
            return Err(format!("backend state {s} after our Initialised, want 4"));
        }
        Self::set_state(xs, v, 4);
        Ok(Self {
            ring,
            port,
            req_prod: 0,
            rsp_cons: 0,
        })
    }

    /// Closes as a frontend does after the backend's Closing: state Closed, wait for the
    /// backend's Closed, close our port, then Initialising and wait for its InitWait.
    /// Returns the backend states seen (Closed, InitWait).
    pub fn close_and_reinit(self, xs: &mut XsClient, v: &Vbd) -> (u32, u32) {
        Self::set_state(xs, v, 6);
        let closed = Self::wait_backend(xs, v, 6, 10_000);
        let _ = xen::evtchn_close(self.port);
        Self::set_state(xs, v, 1);
        let initwait = Self::wait_backend(xs, v, 2, 10_000);
        (closed, initwait)
    }

    /// Puts `r` in the next slot, publishes it and notifies the backend.
    pub fn push(&mut self, r: &Req) {
        let base = HEADER + (self.req_prod % ENTRIES) as usize * SLOT;
        for off in (0..SLOT).step_by(4) {
            self.ring.set(base + off, 0);
        }
        self.ring.set(
            base,
            u32::from(r.op) | u32::from(r.nr_segments) << 8 | 0xCAFE << 16,
        );
        self.ring.set(base + 8, r.id as u32);
        self.ring.set(base + 12, (r.id >> 32) as u32);
        self.ring.set(base + 16, r.sector as u32);
        self.ring.set(base + 20, (r.sector >> 32) as u32);
        for (i, &(gref, first, last)) in r.segs.iter().take(11).enumerate() {
            self.ring.set(base + 24 + i * 8, gref);
            self.ring
                .set(base + 28 + i * 8, u32::from(first) | u32::from(last) << 8);
        }
        self.req_prod = self.req_prod.wrapping_add(1);
        self.publish(self.req_prod);
    }

    /// Writes `req_prod` (any value: the corruption case) and notifies.
    pub fn publish(&self, req_prod: u32) {
        core::sync::atomic::fence(Ordering::SeqCst);
        self.ring.set(REQ_PROD, req_prod);
        let _ = xen::evtchn_send(self.port);
    }

    /// The backend's `rsp_prod`.
    pub fn rsp_prod(&self) -> u32 {
        self.ring.word(RSP_PROD)
    }

    /// The next response, waiting up to `ms`.
    pub fn response(&mut self, ms: u64) -> Option<Rsp> {
        let deadline = timer::now().saturating_add(ticks(ms));
        while self.rsp_prod() == self.rsp_cons {
            if timer::now() >= deadline {
                return None;
            }
            timer::sleep_ms(2);
        }
        core::sync::atomic::fence(Ordering::SeqCst);
        let base = HEADER + (self.rsp_cons % ENTRIES) as usize * SLOT;
        let id = u64::from(self.ring.word(base)) | u64::from(self.ring.word(base + 4)) << 32;
        let w = self.ring.word(base + 8);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Some((id, w as u8, (w >> 16) as u16 as i16))
    }
}
