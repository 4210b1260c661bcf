//! Grant tables behind a lock of their own (DESIGN §5: per-domain state off the global
//! lock): every domain's table and maptrack ([`GrantTables`]), and a mirror of what decides
//! where each domain's guest frames are ([`DomainFrames`]), in [`GRANTS`].
//!
//! Why here and not in [`Hyp`](crate::hyp::Hyp): `GNTTABOP_copy` is how a driver domain
//! moves every packet and much of every disk request, and it touches nothing but grant
//! entries and the pages they name. [`copy_fast`] serves it on the caller's CPU without the
//! global lock: the argument array read through the caller's loaded translation, each
//! operation checked and pinned in the grant core, the bytes copied, the statuses written
//! back. Map and unmap change stage 2 and stay on the locked path, which takes this lock
//! inside the global one for the grant core's part.
//!
//! Lock order: [`HYP`](crate::hyp::HYP) (if held), then [`GRANTS`], then the heap's. Code
//! holding `GRANTS` takes no other lock (in particular never `EVENTS`) and never waits for
//! another CPU.
//!
//! Lifetime: a domain's mirror is filled when its tables open and its Xen pages are set up
//! (at build), updated under both locks when it moves its shared_info, marked not live
//! when it starts dying, and cleared when its tables close, which is before its RAM and
//! frames are freed (`xen_release`). So a copy that finds a domain live under `GRANTS`
//! touches only memory that domain still owns. The caller's own RAM cannot go under it
//! either: its vCPU is loaded on this CPU, and a domain is freed only once no CPU holds
//! one of its vCPUs.

use super::bits::HostGrants;
use crate::arch::context::GuestRegs;
use crate::arch::{self, phys::Window};
use crate::guestcopy::{self, GuestMemory};
use crate::hyp::domain::Domain;
use crate::hyp::MAX_DOMAINS;
use crate::sync::{LateGuard, LateLock};
use crate::xen::physmap::DomainFrames;
use crate::xen::{split, FrameCache, GrantTables, GRANT_CHUNK};
use alloc::vec::Vec;
use protocol::addr::PhysAddr;
use protocol::ids::DomainId;
use protocol::xen::structs::{DomId, GnttabCopy};
use protocol::xen::XenErrno;
use zerocopy::{FromZeros, IntoBytes};

/// Host page of guest frame `gfn` of domain `dom`, if it is live.
fn frame_of(domains: &[DomainFrames], dom: DomId, gfn: u64) -> Option<PhysAddr> {
    domains.get(usize::from(dom))?.frame(gfn)
}

/// Every domain's grant state.
pub struct Grants {
    /// The tables and maptracks.
    pub tables: GrantTables,
    /// Frames, by domain id.
    domains: Vec<DomainFrames>,
}

impl Grants {
    /// The tables, with the translation of a live domain's guest frame to its host page
    /// (what the grant core asks for each side of a map or copy).
    pub fn split(
        &mut self,
    ) -> (
        &mut GrantTables,
        impl Fn(DomId, u64) -> Option<PhysAddr> + '_,
    ) {
        let domains = &self.domains;
        (&mut self.tables, move |dom: DomId, gfn: u64| {
            frame_of(domains, dom, gfn)
        })
    }

    /// Performs `caller`'s copy operations `ops` ([`GrantTables::copy_batch`]) with the
    /// frames' translations memoised for the batch.
    pub fn copy_batch(&mut self, caller: DomId, ops: &mut [GnttabCopy]) {
        let (tables, frame) = self.split();
        let cache = FrameCache::new();
        tables.copy_batch(&mut HostGrants::default(), caller, ops, |dom, gfn| {
            cache.get(dom, gfn, || frame(dom, gfn))
        });
    }

    /// Mirrors `d`'s RAM and Xen pages, live unless it is dying (at build, and when it
    /// moves its shared_info).
    pub fn mirror(&mut self, d: &Domain) {
        if let Some(g) = self.domains.get_mut(usize::from(d.id.0)) {
            *g = DomainFrames::new(d.ram.clone(), d.xen.own_pages(), !d.dying);
        }
    }

    /// Domain `id` is dying: nothing copies to or from its frames any more.
    pub fn retire(&mut self, id: DomainId) {
        if let Some(g) = self.domains.get_mut(usize::from(id.0)) {
            g.retire();
        }
    }

    /// Domain `id`'s tables opened or closed: no mirror (nothing reaches its frames)
    /// until [`Grants::mirror`].
    pub fn forget(&mut self, id: DomainId) {
        if let Some(g) = self.domains.get_mut(usize::from(id.0)) {
            *g = DomainFrames::default();
        }
    }
}

/// The grant state ([`Grants`]); `None` until boot builds it.
static GRANTS: LateLock<Grants> = LateLock::new();

/// Builds the (empty) state: at boot, before any domain exists.
pub fn init() {
    GRANTS.init(Grants {
        tables: GrantTables::new(MAX_DOMAINS),
        domains: (0..MAX_DOMAINS).map(|_| DomainFrames::default()).collect(),
    });
}

/// The state, locked (see the module docs for the order).
pub fn lock() -> GrantsGuard {
    GRANTS.lock()
}

/// [`GRANTS`] held.
pub type GrantsGuard = LateGuard<'static, Grants>;

/// Runs `f` on the grant state (under [`GRANTS`]); `None` only before boot built it.
pub fn with_grants<R>(f: impl FnOnce(&mut Grants) -> R) -> Option<R> {
    lock().get().map(f)
}

/// The loaded caller's memory as the grant path sees it: translated with its EL1 context
/// (loaded in the hardware), resolved through its mirror. Valid only while handling its
/// exit on this CPU.
struct LoadedMirror<'a>(&'a DomainFrames);

impl GuestMemory for LoadedMirror<'_> {
    fn translate(&mut self, va: u64, write: bool) -> Option<u64> {
        let ipa = arch::translate_guest_va(va, write)?;
        self.0.page(ipa).map(|pa| pa.as_u64())
    }

    // As `guest::Loaded`: `translate` validated the page, the doorway checks again.
    fn read_phys(&mut self, pa: u64, buf: &mut [u8]) {
        let read =
            Window::new(PhysAddr::new(pa), buf.len() as u64).and_then(|w| w.read(0, buf).ok());
        if read.is_none() {
            buf.fill(0);
        }
    }

    fn write_phys(&mut self, pa: u64, buf: &[u8]) {
        if let Some(w) = Window::new(PhysAddr::new(pa), buf.len() as u64) {
            let _ = w.write(0, buf);
        }
    }
}

/// `grant_table_op(GNTTABOP_copy, uop = x1, count = x2)` from the loaded vCPU of `caller`,
/// served without the global lock: true if it was (`x0` set, or, with more than one chunk,
/// the HVC rewound to carry the rest as the locked path's continuation does), false, having
/// done nothing, if the locked path must serve it (no operation, an array that does not
/// translate as one read, a caller whose tables are not open or that is dying). The
/// statuses and the faults are the locked path's (`Hyp::copy_chunk`).
pub fn copy_fast(caller: DomainId, regs: &mut GuestRegs) -> bool {
    let (uop, count) = (regs.x[1], regs.x[2]);
    if count == 0 || count > i32::MAX as u64 {
        return false;
    }
    let Some(s) = split(uop, count, size_of::<GnttabCopy>() as u64) else {
        return false;
    };
    let result = copy_ops(s.now, |ops| copy_chunk(caller, uop, ops)).flatten();
    match (result, s.rest) {
        (None, _) => return false,
        (Some(Ok(())), Some((uop, count))) => {
            regs.x[1] = uop;
            regs.x[2] = count;
            regs.rewind_hvc();
        }
        (Some(Ok(())), None) => regs.x[0] = 0,
        (Some(Err(e)), _) => regs.x[0] = e.to_ret(),
    }
    true
}

/// [`copy_fast`]'s one chunk, `ops` to be read from `uop`; `None` if the locked path must
/// serve it.
fn copy_chunk(caller: DomainId, uop: u64, ops: &mut [GnttabCopy]) -> Option<Result<(), XenErrno>> {
    let mut guard = lock();
    let grants = guard.get()?;
    let me = grants.domains.get(usize::from(caller.0))?;
    if !me.live() {
        return None;
    }
    guestcopy::read_for_update(&mut LoadedMirror(me), uop, ops.as_mut_bytes()).ok()?;
    grants.copy_batch(caller.0, ops);
    let me = grants.domains.get(usize::from(caller.0))?;
    Some(guestcopy::write(&mut LoadedMirror(me), uop, ops.as_bytes()).map_err(|_| XenErrno::EFAULT))
}

/// Runs `f` on a zeroed array of `n` (at most [`GRANT_CHUNK`]) copy operations; `None` for
/// more. The array is zeroed before the guest's is read into it, at a few instructions per
/// 16 bytes (a whole chunk's was 500 instructions for a call of five operations), so it is
/// sized to the call: most carry a handful (one network packet, or a few).
pub fn copy_ops<R>(n: u64, f: impl FnOnce(&mut [GnttabCopy]) -> R) -> Option<R> {
    fn sized<const N: usize, R>(n: usize, f: impl FnOnce(&mut [GnttabCopy]) -> R) -> Option<R> {
        let mut buf = [GnttabCopy::new_zeroed(); N];
        Some(f(buf.get_mut(..n)?))
    }
    let n = usize::try_from(n).ok()?;
    match n {
        0..=4 => sized::<4, R>(n, f),
        5..=8 => sized::<8, R>(n, f),
        9..=16 => sized::<16, R>(n, f),
        _ => sized::<GRANT_CHUNK, R>(n, f),
    }
}
