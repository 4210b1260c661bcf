//! Event channels behind a lock of their own (DESIGN §5: per-domain state off the global
//! lock): every domain's port table, the windows onto its shared_info and vcpu_infos, and a
//! copy of its RAM map, in [`EVENTS`].
//!
//! Why here and not in [`Hyp`](crate::hyp::Hyp): `EVTCHNOP_send` is every split driver's
//! doorbell (a frontend's request, a backend's response), and a send to any vCPU (on
//! another pCPU, on the sender's own, or the sender itself) is served on the sender's CPU
//! without the global lock
//! ([`send_fast`]): the argument read from the sender's RAM, the port looked up, the
//! target's bits raised and PPI 31 posted to the target vCPU's word ([`crate::posted`]),
//! its CPU notified. That CPU places it in a list register on its own fast path if the
//! target is loaded there and pinned exclusive, or puts it in the vGIC model at its next
//! locked pass (which takes the word of every vCPU placed there), waking the target and
//! deciding what runs, as the sender's locked pass used to. `EVTCHNOP_unmask`, which Linux
//! issues for its own ports whenever one became pending while masked, is served the same
//! way ([`unmask_fast`]). Everything else about event channels still runs under the global
//! lock, which takes this one inside it.
//!
//! Lock order: [`HYP`](crate::hyp::HYP) (if held), then [`EVENTS`], then the heap's. Code
//! holding `EVENTS` takes no other lock and never waits for another CPU.
//!
//! Lifetime: a domain's windows and RAM copy are set when its tables open (at build) and
//! cleared, with its ports, when they close, before its frames are freed (`xen_release`)
//! or its vCPUs' homes are reused. So whoever finds a domain open under `EVENTS` touches
//! only memory that domain still owns, and posts only to vCPUs of that incarnation.

use super::bits::DomainBits;
use crate::arch::phys::Window;
use crate::hyp::percpu::{posted_irqs, VCPU_CPU};
use crate::hyp::MAX_DOMAINS;
use crate::mm::ram::RamMap;
use crate::posted::PostedIrqs;
use crate::sched::VcpuKey;
use crate::sync::{LateGuard, LateLock};
use crate::xen::{self, EventChannels};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use protocol::ids::DomainId;
use protocol::layout::{EVTCHN_PPI, MAX_VCPUS};

/// One domain's pages as the event path reaches them.
#[derive(Debug, Default)]
pub struct EventDomain {
    /// Its shared_info frame (microvisor-owned).
    pub shared: Option<Window>,
    /// The guest frame it mapped shared_info at (the global lock's record,
    /// `XenDomain::shared_info_gfn`, mirrored here so a fast send reads its argument from
    /// the same page the locked path would).
    pub shared_gfn: Option<u64>,
    /// Each vCPU's vcpu_info: registered in its RAM, or vCPU 0's slot in shared_info.
    pub vcpu_info: [Option<Window>; MAX_VCPUS],
    /// Its RAM (the domain's map does not change while it lives), for a sender's argument.
    ram: RamMap,
    /// Its vCPUs blocked in `SCHEDOP_poll` (bit n = vCPU n), noted under the global lock
    /// (`Hyp::poll_announce`): a send that makes a port of a domain with pollers pending
    /// wakes them, or asks their CPUs to ([`send_fast`]).
    pub pollers: u32,
}

impl EventDomain {
    /// Its event bits, for the event-channel core.
    pub fn bits(&self) -> DomainBits<'_> {
        DomainBits {
            shared: self.shared.as_ref(),
            vcpu_info: &self.vcpu_info,
        }
    }

    /// The window onto the `len` bytes at guest-physical `ipa`, if they lie in one page of
    /// its plain RAM ([`crate::fastpath::plain_ram_offset`]).
    fn ram_window(&self, ipa: u64, len: u64) -> Option<Window> {
        let off = crate::fastpath::plain_ram_offset(ipa, len, self.shared_gfn)?;
        Window::new(self.ram.to_phys(off, len)?, len)
    }

    /// The port an `EVTCHNOP_send` or `EVTCHNOP_unmask` argument at guest-physical `ipa`
    /// names (its first field), if it lies in plain RAM.
    fn port_arg(&self, ipa: u64) -> Option<u32> {
        let mut port = [0u8; 4];
        self.ram_window(ipa, 4)?.read(0, &mut port).ok()?;
        Some(u32::from_le_bytes(port))
    }
}

/// Every domain's event-channel state.
pub struct Events {
    /// The port tables.
    pub channels: EventChannels,
    /// Pages and RAM map, by domain id.
    domains: Vec<EventDomain>,
}

impl Events {
    /// Domain `id`'s pages (`None` for an id out of range).
    pub fn domain(&self, id: DomainId) -> Option<&EventDomain> {
        self.domains.get(usize::from(id.0))
    }

    /// Domain `id`'s pages, to change.
    pub fn domain_mut(&mut self, id: DomainId) -> Option<&mut EventDomain> {
        self.domains.get_mut(usize::from(id.0))
    }

    /// Domain `id`'s tables open (at build, with its vCPU count and RAM), windows empty
    /// until shared_info is attached.
    pub fn open(&mut self, id: DomainId, nr_vcpus: u32, max_ports: u32, ram: &RamMap) {
        let _ = self.channels.open_domain(id.0, nr_vcpus, max_ports);
        if let Some(d) = self.domain_mut(id) {
            *d = EventDomain {
                ram: ram.clone(),
                ..EventDomain::default()
            };
        }
    }

    /// Domain `id`'s tables close: peers' ports revert to unbound and its windows and RAM
    /// copy go, so no sender reaches its memory any more.
    pub fn close(&mut self, id: DomainId) {
        let _ = self.channels.close_domain(id.0);
        if let Some(d) = self.domain_mut(id) {
            *d = EventDomain::default();
        }
    }
}

/// The event-channel state ([`Events`]); `None` until boot builds it.
static EVENTS: LateLock<Events> = LateLock::new();

/// Builds the (empty) state: at boot, before any domain exists.
pub fn init() {
    EVENTS.init(Events {
        channels: EventChannels::new(MAX_DOMAINS),
        domains: (0..MAX_DOMAINS).map(|_| EventDomain::default()).collect(),
    });
}

/// The state, locked (see the module docs for the order).
pub fn lock() -> EventsGuard {
    EVENTS.lock()
}

/// [`EVENTS`] held.
pub type EventsGuard = LateGuard<'static, Events>;

/// Waits until no fast send is under way: one that read a vCPU's placement before the
/// caller changed it has posted by then. Under the global lock.
pub fn quiesce() {
    drop(EVENTS.lock());
}

/// Posts private interrupt `intid` to the vCPUs of domain `id` in `targets` (bit n =
/// vCPU n) wherever each is placed, pinned exclusive or shared: an SGI a guest's vCPU
/// sends its siblings when not all of them are pinned exclusive (those the sender's fast
/// path posts to without this lock, `fastpath::post_sgi`). Under [`EVENTS`] for the reason
/// a fast send reads placements under it: a move (`quiesce`) waits, so nothing is posted
/// to a vCPU's old CPU after it left. Returns the CPUs to notify (bit n = CPU n), or
/// `None`, having posted nothing, if a target is moving or out of range. Each target's
/// CPU places it on its fast path if the target is loaded there and alone, else puts it in
/// the vGIC model at its next locked pass, waking the target, as for an upcall.
pub fn post_private(id: DomainId, targets: u32, intid: u32) -> Option<u64> {
    let _guard = lock();
    let target = |v| fast_target(crate::hyp::vcpu_key(id, v));
    // Every target first, so that a moving one leaves nothing posted.
    let mut cpus = 0u64;
    for v in crate::hyp::domain_slots(targets) {
        cpus |= 1u64 << target(v)?.0;
    }
    for v in crate::hyp::domain_slots(targets) {
        target(v)?.1.post(1 << intid);
    }
    Some(cpus)
}

/// Whether vCPU `key`'s upcall is still pending (its `evtchn_upcall_pending`), read under
/// this lock: what `Hyp::evtchn_eoi` asks when the guest finishes an upcall, for the fast
/// path when it placed that upcall itself. False for a domain without event pages.
pub fn upcall_pending_fast(key: VcpuKey) -> bool {
    use crate::xen::EventBits;
    let (id, v) = crate::hyp::key_parts(key);
    let mut guard = lock();
    guard
        .get()
        .and_then(|events| events.domain(id))
        .is_some_and(|d| d.bits().upcall_pending(v as u32))
}

/// Where a fast path may post a private interrupt (PPI 31, or an SGI: [`post_private`]) to
/// vCPU `target`: its CPU and posted word. `None` (the locked path must serve the call) if
/// the target is moving. A target on the
/// caller's own CPU is posted to like any other: the caller's CPU finds [`POSTED`] in its
/// own mailbox before it re-enters the guest, and unless the target is the loaded vCPU
/// itself, its locked pass puts the upcall in the model, wakes the target and decides
/// what runs (the scheduler runs only because something may have become runnable). Read
/// under [`EVENTS`], so a move waits (`quiesce`).
///
/// [`POSTED`]: crate::mailbox::POSTED
fn fast_target(target: VcpuKey) -> Option<(usize, &'static PostedIrqs)> {
    let (id, v) = crate::hyp::key_parts(target);
    let placed = VCPU_CPU
        .get(usize::from(id.0))?
        .get(v)?
        .load(Ordering::Acquire);
    let cpu = crate::fastpath::exclusive_home(placed)?;
    Some((cpu, posted_irqs(target)?))
}

/// `EVTCHNOP_send` from the loaded vCPU `sender` on CPU `this_cpu`, whose argument
/// (`struct evtchn_send`) is at guest-physical `arg_ipa`, served without the global lock.
/// Returns the CPUs whose mailbox must get [`crate::mailbox::POSTED`] (bit n = CPU n;
/// empty if nothing was raised), or `None`, having done nothing, if the locked path must
/// serve it: an argument outside the sender's plain RAM, an error (the locked path
/// reports it), or a target vCPU that is moving. A port newly pending
/// in a domain with pollers (masked or not, as Xen's `evtchn_check_pollers`) asks each
/// poller's CPU to look at them ([`ask_pollers`]).
///
/// The target's CPU takes the posted PPI 31 on its fast path if the target is loaded
/// there and pinned exclusive (or shared and alone), else at its next locked pass
/// ([`VCPU_CPU`]). So a send to another vCPU of the sender's own pCPU (dom0 and a driver
/// domain sharing one) takes no global lock; the wake it causes is the locked pass's, as
/// a send from another pCPU's is ([`fast_target`]).
pub fn send_fast(sender: VcpuKey, this_cpu: usize, arg_ipa: u64) -> Option<u64> {
    let (sender_id, _) = crate::hyp::key_parts(sender);
    let mut guard = lock();
    let events = guard.get()?;
    let port = events.domain(sender_id)?.port_arg(arg_ipa)?;
    let Some(n) = events.channels.send(sender_id.0, port).ok()? else {
        // Unbound: dropped, as in Xen.
        return Some(0);
    };
    let target = crate::hyp::vcpu_key(DomainId(n.dom), n.vcpu as usize);
    let (cpu, word) = fast_target(target)?;
    let d = events.domain(DomainId(n.dom))?;
    let inject = if d.pollers == 0 {
        xen::raise(&mut d.bits(), n.port, n.vcpu).inject
    } else {
        raise_for_pollers(d, n, this_cpu)
    };
    if !inject {
        return Some(0);
    }
    // Still under the lock: a move of the target waits for it (`quiesce`).
    word.post(1 << EVTCHN_PPI);
    Some(1 << cpu)
}

/// Raises `n` in `d`, a domain with a vCPU blocked in `SCHEDOP_poll`, and if the port
/// became pending asks the pollers' CPUs to look ([`ask_pollers`]); whether PPI 31 must be
/// injected. Out of line, so the usual send pays one test for it.
#[cold]
#[inline(never)]
fn raise_for_pollers(d: &EventDomain, n: xen::Notify, this_cpu: usize) -> bool {
    let raised = xen::raise(&mut d.bits(), n.port, n.vcpu);
    if raised.newly_pending {
        ask_pollers(DomainId(n.dom), d.pollers, this_cpu);
    }
    raised.inject
}

/// Posts [`crate::mailbox::POLL`] to the CPU of each vCPU of domain `id` in `pollers`
/// (bit n = vCPU n, [`EventDomain::pollers`]), to every CPU for one that is moving, kicking
/// another CPU on the empty-to-non-empty edge: their next locked pass wakes the pollers
/// whose ports are pending. Out of line: only a domain blocked in `SCHEDOP_poll` gets
/// here. The caller holds [`EVENTS`]; posting and kicking wait for nobody.
fn ask_pollers(id: DomainId, pollers: u32, this_cpu: usize) {
    let Some(placed) = VCPU_CPU.get(usize::from(id.0)) else {
        return;
    };
    let mut cpus = 0u64;
    for v in crate::hyp::domain_slots(pollers) {
        let home = placed.get(v).map_or(0, |p| p.load(Ordering::Acquire));
        cpus |= crate::fastpath::exclusive_home(home).map_or(u64::MAX, |cpu| 1 << cpu);
    }
    let poll = crate::mailbox::POLL;
    crate::hyp::percpu::post_to_cpus(cpus, poll, this_cpu, crate::arch::gic::kick);
}

/// `EVTCHNOP_unmask` from the loaded vCPU `caller`, whose argument
/// (`struct evtchn_unmask`) is at guest-physical `arg_ipa`, served without the global lock
/// as [`send_fast`] serves a send: the mask bit cleared and, if the port is pending, its
/// notify vCPU's selector and upcall bits raised and PPI 31 posted to it. Returns the CPUs
/// to notify (an unmask makes nothing newly pending, so no poller is asked), or `None`,
/// having done nothing, if the locked path must serve it: an
/// argument outside the caller's plain RAM, a port the caller does not have (the locked
/// path's `EINVAL`), or a notify vCPU that is moving.
/// `upcall_held`: the caller's list registers hold its upcall already
/// ([`crate::fastpath::upcall_in_lr`]); a port of its own raised then needs no post, which
/// would only cost its CPU a locked pass to find the upcall in an LR.
///
/// Linux calls it whenever it unmasks a port that became pending meanwhile (every
/// late-EOI interrupt of a busy netfront or blkfront), always for its own ports.
pub fn unmask_fast(caller: VcpuKey, arg_ipa: u64, upcall_held: bool) -> Option<u64> {
    let (caller_id, _) = crate::hyp::key_parts(caller);
    let mut guard = lock();
    let events = guard.get()?;
    let d = events.domain(caller_id)?;
    let port = d.port_arg(arg_ipa)?;
    let vcpu = events.channels.notify_vcpu(caller_id.0, port)?;
    let target = crate::hyp::vcpu_key(caller_id, vcpu as usize);
    let (cpu, word) = fast_target(target)?;
    if !xen::unmask(&mut d.bits(), port, vcpu) || (target == caller && upcall_held) {
        return Some(0);
    }
    // Still under the lock: a move of the target waits for it (`quiesce`).
    word.post(1 << EVTCHN_PPI);
    Some(1 << cpu)
}
