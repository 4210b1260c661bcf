//! `event_channel_op` and event delivery under the global lock: the port tables live in
//! [`crate::xen`], held with each domain's event pages in [`super::event_state`] (whose
//! lock is taken inside the global one); here arguments are copied, bits are raised in the
//! target's shared pages and PPI 31 injected. A send to a pinned-exclusive vCPU is usually
//! served before any of this, on the sender's fast path (`event_state::send_fast`).

use super::event_state::{self, Events};
use super::grant_state;
use super::guest::Loaded;
use super::XenResult;
use crate::guestcopy;
use crate::hyp::domain::Domain;
use crate::hyp::Hyp;
use crate::xen::{self, EventBits, Notify};
use protocol::control::CapError;
use protocol::ids::DomainId;
use protocol::layout::EVTCHN_PPI;
use protocol::xen::structs::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindVcpu, EvtchnClose, EvtchnSend,
    EvtchnStatus, EvtchnUnmask,
};
use protocol::xen::{EvtchnOp, XenErrno};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Ports per domain (of the 4096 the 2-level ABI can address).
const MAX_PORTS: u32 = 1024;
/// Grant-table frames per domain (512 entries each).
pub(super) const MAX_GRANT_FRAMES: u32 = 32;
/// Grant mappings one domain may hold at once.
const MAX_MAPTRACK: u32 = 1024;

/// What raising an event owes its target once the event lock is dropped.
struct Owed {
    /// The target domain.
    id: DomainId,
    /// The vCPU its port notifies.
    vcpu: usize,
    /// PPI 31 must be injected into that vCPU.
    upcall: bool,
    /// This port became pending while the domain has pollers: wake those polling it.
    poll_port: Option<u32>,
}

/// Runs `f` on the event-channel state (under its lock); `None` only before boot built it.
fn with_events<R>(f: impl FnOnce(&mut Events) -> R) -> Option<R> {
    event_state::lock().get().map(f)
}

impl Hyp {
    /// The live (not dying) domain `id`.
    fn live(&self, id: DomainId) -> Option<&Domain> {
        self.domain(id).filter(|d| !d.dying)
    }

    /// Opens domain `d`'s port and grant tables (at build time, its shared_info frame
    /// allocated).
    pub(super) fn xen_tables_open(&mut self, d: &mut Domain) {
        with_events(|ev| {
            ev.open(d.id, d.vcpus.len() as u32, MAX_PORTS, &d.ram);
            if let Some(pages) = ev.domain_mut(d.id) {
                pages.shared = d.xen.shared_info.and_then(crate::arch::phys::Window::page);
                // vCPU 0's vcpu_info lives in shared_info until the guest moves it (as in
                // Xen), so events can be raised before the guest registers anything.
                pages.vcpu_info[0] = d.xen.shared_info.and_then(super::vcpu_info_window);
            }
        });
        // Not live until its Xen pages are set up (`xen_setup`, which mirrors it then).
        grant_state::with_grants(|g| {
            let _ = g.tables.open_domain(d.id.0, MAX_GRANT_FRAMES, MAX_MAPTRACK);
            g.forget(d.id);
        });
        for v in 0..d.vcpus.len() {
            d.vgic.set_eoi_notify(v, EVTCHN_PPI, true);
        }
    }

    /// Closes domain `d`'s tables: peers' ports revert to unbound, its grant frames are
    /// freed, mappings it held are released (clearing the granters' flags) and mappings
    /// others held of its pages are removed from their stage 2.
    pub(super) fn xen_tables_close(&mut self, d: &mut Domain) {
        with_events(|ev| ev.close(d.id));
        let closed = grant_state::with_grants(|g| {
            g.forget(d.id);
            g.tables
                .close_domain(&mut super::bits::HostGrants::default(), d.id.0)
        });
        let Some(Ok(closed)) = closed else {
            return;
        };
        for m in closed.revoked {
            // A device map never gets here: its granter is not closed while it exists
            // (`free_if_unloaded` waits), and it has no stage-2 page to take out.
            if !m.host {
                continue;
            }
            crate::info!(
                "d{} loses its mapping of d{} grant {} (granter gone)",
                m.mapper,
                m.granter,
                m.gref
            );
            self.unmap_page(DomainId(m.mapper), m.host_addr.as_u64());
            if let Some(mapper) = self.domain_mut(DomainId(m.mapper)) {
                let page = m.host_addr.as_u64() & !(protocol::addr::PAGE_SIZE - 1);
                let revoked = &mut mapper.xen.revoked_maps;
                if !revoked.contains(&page) && revoked.len() < MAX_MAPTRACK as usize {
                    revoked.push(page);
                }
            }
        }
        for frame in closed.frames {
            self.free_scrubbed(&mut d.xen_frames, frame, 1);
        }
    }

    /// The console and xenstore channels (unbound, for dom0) and dom0's reserved grants.
    pub(super) fn xen_backend_channels(&mut self, d: &mut Domain) -> Result<(), CapError> {
        let id = d.id.0;
        let dom0 = DomainId::DOM0.0;
        let (console, store) = with_events(|ev| {
            let console = ev.channels.alloc_unbound(dom0, id, dom0, true).ok()?;
            let store = ev.channels.alloc_unbound(dom0, id, dom0, true).ok()?;
            Some((console, store))
        })
        .flatten()
        .ok_or(CapError::NoMemory)?;
        d.xen.params.console_evtchn = u64::from(console);
        d.xen.params.store_evtchn = u64::from(store);
        let (frames, budget) = (&mut self.frames, &mut d.xen_frames);
        let mut mem = super::bits::HostGrants::default();
        let gfns = [
            (super::setup::GREF_CONSOLE, super::setup::CONSOLE_GFN),
            (super::setup::GREF_XENSTORE, super::setup::XENSTORE_GFN),
        ];
        grant_state::with_grants(|g| {
            g.tables
                .frame(&mut mem, id, 0, || budget.alloc(frames, 1))
                .map_err(|_| CapError::NoMemory)?;
            for (gref, gfn) in gfns {
                g.tables
                    .reserve(&mut mem, id, gref, dom0, gfn, false)
                    .map_err(|_| CapError::NoMemory)?;
            }
            Ok(())
        })
        .unwrap_or(Err(CapError::NoMemory))
    }

    /// Raises `n` if its target is live, with the event state `ev` held (so the port it
    /// was looked up on cannot change in between); what it owes the target (PPI 31, a
    /// poller woken) is delivered after the event lock is dropped ([`Self::deliver`]).
    fn raise_live(&self, ev: &Events, n: Notify) -> Option<Owed> {
        let target = DomainId(n.dom);
        self.live(target)?;
        let d = ev.domain(target)?;
        let raised = xen::raise(&mut d.bits(), n.port, n.vcpu);
        Some(Owed {
            id: target,
            vcpu: n.vcpu as usize,
            upcall: raised.inject,
            // As Xen's `evtchn_check_pollers`: a newly pending port, masked or not.
            poll_port: (raised.newly_pending && d.pollers != 0).then_some(n.port),
        })
    }

    /// Injects PPI 31 and wakes the pollers that [`Self::raise_live`] (or an unmask) said
    /// are owed.
    fn deliver(&mut self, owed: Option<Owed>, cpu: usize) {
        let Some(o) = owed else { return };
        if o.upcall {
            self.inject(o.id, o.vcpu, EVTCHN_PPI, cpu);
        }
        if let Some(port) = o.poll_port {
            self.wake_pollers(o.id, port, cpu);
        }
    }

    /// The guest finished an upcall on `v`: if events are still pending, raise it again
    /// (the upcall follows `evtchn_upcall_pending` like a level).
    pub fn evtchn_eoi(&mut self, id: DomainId, v: usize, cpu: usize) {
        let pending = self.live(id).is_some()
            && with_events(|ev| {
                ev.domain(id)
                    .is_some_and(|d| d.bits().upcall_pending(v as u32))
            })
            .unwrap_or(false);
        if pending {
            self.inject(id, v, EVTCHN_PPI, cpu);
        }
    }

    /// vCPU `v` of `id` is about to block in `SCHEDOP_poll` on `ports` (the caller's): if
    /// none is pending it is noted as a poller, so a send from now on raising one wakes it
    /// (a fast send asks the poller's CPU to, `event_state::send_fast`), and this returns
    /// true; false if one is pending already. An invalid port is EINVAL. The check
    /// and the note are one step under the event lock, so no send falls between them.
    pub(super) fn poll_announce(
        &self,
        id: DomainId,
        v: usize,
        ports: &[u32],
    ) -> Result<bool, XenErrno> {
        self.live(id).ok_or(XenErrno::ESRCH)?;
        let bit = 1u32.checked_shl(v as u32).ok_or(XenErrno::EINVAL)?;
        with_events(|ev| {
            let bits = ev.domain(id).ok_or(XenErrno::ESRCH)?.bits();
            let mut any = false;
            for &p in ports {
                if ev.channels.notify_vcpu(id.0, p).is_none() {
                    return Err(XenErrno::EINVAL);
                }
                any |= bits.pending_test(p);
            }
            let d = ev.domain_mut(id).ok_or(XenErrno::ESRCH)?;
            if !any {
                d.pollers |= bit;
            }
            Ok(!any)
        })
        .unwrap_or(Err(XenErrno::ESRCH))
    }

    /// Whether one of the ports `poll` (of domain `id`) names is pending.
    pub(in crate::hyp) fn poll_ready(id: DomainId, poll: &crate::poll_wait::PollWait) -> bool {
        with_events(|ev| {
            ev.domain(id)
                .is_some_and(|d| poll.ports().iter().any(|&p| d.bits().pending_test(p)))
        })
        .unwrap_or(false)
    }

    /// vCPU `v` of `id` no longer polls (woken, or it never blocked): sends to its domain
    /// need not look for it any more.
    pub(in crate::hyp) fn poll_withdraw(id: DomainId, v: usize) {
        let bit = 1u32.checked_shl(v as u32).unwrap_or(0);
        with_events(|ev| {
            if let Some(d) = ev.domain_mut(id) {
                d.pollers &= !bit;
            }
        });
    }

    /// `event_channel_op(cmd, arg)`.
    pub(super) fn xen_evtchn_op(&mut self, cpu: usize, id: DomainId, a: [u64; 5]) -> XenResult {
        let caller = id.0;
        let privileged = id == DomainId::DOM0;
        let op = u32::try_from(a[0])
            .ok()
            .and_then(|c| EvtchnOp::try_from(c).ok());
        match op {
            Some(EvtchnOp::AllocUnbound) => {
                let mut x: EvtchnAllocUnbound = self.read_arg(id, a[1])?;
                x.port = with_events(|ev| {
                    ev.channels
                        .alloc_unbound(caller, x.dom, x.remote_dom, privileged)
                })
                .unwrap_or(Err(XenErrno::ESRCH))?;
                self.write_arg(id, a[1], &x)
            }
            Some(EvtchnOp::BindInterdomain) => {
                let mut x: EvtchnBindInterdomain = self.read_arg(id, a[1])?;
                let remote = if x.remote_dom == protocol::xen::structs::DOMID_SELF {
                    id
                } else {
                    DomainId(x.remote_dom)
                };
                self.live(remote).ok_or(XenErrno::ESRCH)?;
                // Events sent while the remote port was unbound were dropped: as Xen, the
                // new port starts pending.
                let (bound, upcall) = with_events(|ev| {
                    let bound =
                        ev.channels
                            .bind_interdomain(caller, x.remote_dom, x.remote_port)?;
                    Ok((bound, self.raise_live(ev, bound.notify)))
                })
                .unwrap_or(Err(XenErrno::ESRCH))?;
                self.deliver(upcall, cpu);
                x.local_port = bound.port;
                self.write_arg(id, a[1], &x)?;
                Ok(0)
            }
            Some(EvtchnOp::Send) => {
                let x: EvtchnSend = self.read_arg(id, a[1])?;
                let upcall = with_events(|ev| {
                    let n = ev.channels.send(caller, x.port)?;
                    Ok(n.and_then(|n| self.raise_live(ev, n)))
                })
                .unwrap_or(Err(XenErrno::ESRCH))?;
                self.deliver(upcall, cpu);
                Ok(0)
            }
            Some(EvtchnOp::Close) => {
                let x: EvtchnClose = self.read_arg(id, a[1])?;
                with_events(|ev| {
                    ev.channels.close(caller, x.port)?;
                    if let Some(d) = ev.domain(id) {
                        d.bits().pending_clear(x.port);
                    }
                    Ok(0)
                })
                .unwrap_or(Err(XenErrno::ESRCH))
            }
            Some(EvtchnOp::Status) => {
                let mut x: EvtchnStatus = self.read_arg(id, a[1])?;
                let s = with_events(|ev| ev.channels.status(caller, x.dom, x.port, privileged))
                    .unwrap_or(Err(XenErrno::ESRCH))?;
                s.fill(&mut x);
                self.write_arg(id, a[1], &x)
            }
            Some(EvtchnOp::BindVcpu) => {
                let x: EvtchnBindVcpu = self.read_arg(id, a[1])?;
                with_events(|ev| ev.channels.bind_vcpu(caller, x.port, x.vcpu))
                    .unwrap_or(Err(XenErrno::ESRCH))?;
                Ok(0)
            }
            Some(EvtchnOp::Unmask) => {
                let x: EvtchnUnmask = self.read_arg(id, a[1])?;
                self.live(id).ok_or(XenErrno::ESRCH)?;
                let upcall = with_events(|ev| {
                    let vcpu = ev
                        .channels
                        .notify_vcpu(caller, x.port)
                        .ok_or(XenErrno::EINVAL)?;
                    let d = ev.domain(id).ok_or(XenErrno::ESRCH)?;
                    let raised = xen::unmask(&mut d.bits(), x.port, vcpu);
                    Ok(raised.then_some(Owed {
                        id,
                        vcpu: vcpu as usize,
                        upcall: true,
                        poll_port: None,
                    }))
                })
                .unwrap_or(Err(XenErrno::ESRCH))?;
                self.deliver(upcall, cpu);
                Ok(0)
            }
            // FIFO event channels are not offered: Linux falls back to 2-level.
            Some(EvtchnOp::InitControl) | None => Err(XenErrno::ENOSYS),
        }
    }

    /// Copies a hypercall argument struct from the calling vCPU's memory.
    pub(super) fn read_arg<T: FromBytes + IntoBytes>(
        &self,
        id: DomainId,
        va: u64,
    ) -> Result<T, XenErrno> {
        let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
        guestcopy::read_struct(&mut Loaded(d), va).map_err(|_| XenErrno::EFAULT)
    }

    /// Copies a hypercall argument struct back to the calling vCPU's memory.
    pub(super) fn write_arg<T: IntoBytes + Immutable>(
        &self,
        id: DomainId,
        va: u64,
        value: &T,
    ) -> XenResult {
        let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
        guestcopy::write_struct(&mut Loaded(d), va, value).map_err(|_| XenErrno::EFAULT)?;
        Ok(0)
    }
}
