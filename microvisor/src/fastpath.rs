//! The decisions of the per-CPU exit fast path, kept free of hardware so they are
//! host-tested: which synchronous exits the running vCPU's CPU may finish without the
//! global lock, and where the virtual timer and the passthrough SPIs of a loaded vCPU go.
//!
//! An exit qualifies only if it reads and writes nothing but the caller's registers, its
//! own CPU's list registers and its domain's fast slot (`hyp::fast_slots`, under that
//! slot's own lock), or is one of the Xen calls served under a lock of their own (an
//! event-channel send or unmask, a grant copy); everything else (memory, another vCPU, a domain's vGIC model,
//! the scheduler) is the slow path's. `hyp::fastpath` applies these decisions.
#![forbid(unsafe_code)]

use crate::trap::{self, QuickExit};
use crate::vgic::lr;
use protocol::control::{CapOp, FN_BASE};
use protocol::layout::EVTCHN_PPI;
use protocol::xen::{EvtchnOp, GnttabOp, Hypercall, XenVersionOp};

/// Xen's hypercall immediate (`HVC #0xEA1`).
pub const XEN_HVC_IMM: u16 = 0xEA1;
/// The Xen version we claim to be (4.17), as `XENVER_version` encodes it.
pub const XEN_VERSION: u64 = (4 << 16) | 17;

/// What the fast path does with a synchronous exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncAction {
    /// Capability `NullCall`: `x0..x3` = 0.
    NullCall,
    /// Capability `WhoAmI`: `x0` = 0, `x1` = domain id, `x2` = vCPU index, `x3` = 0.
    WhoAmI,
    /// `xen_version(XENVER_version)`: `x0` = [`XEN_VERSION`].
    XenVersion,
    /// A capability call about the caller itself — `ConsoleWrite`, `ConsoleRead`,
    /// `Heartbeat`, `IdleReport` — served from its domain's slot (`hyp::fast_slots`, that
    /// slot's lock, not the global one) if the slot serves it now, else slow.
    SlotCall(CapOp),
    /// `event_channel_op(EVTCHNOP_send, arg)`: tried on the sender's CPU under the event
    /// channels' own lock (`hyp::xen::event_state::send_fast`), else slow.
    EvtchnSend,
    /// `event_channel_op(EVTCHNOP_unmask, arg)`: tried on the caller's CPU under the event
    /// channels' own lock (`hyp::xen::event_state::unmask_fast`), else slow.
    EvtchnUnmask,
    /// `grant_table_op(GNTTABOP_copy, uop, count)`: tried on the caller's CPU under the
    /// grant tables' own lock (`hyp::xen::grant_state::copy_fast`), else slow.
    GrantCopy,
    /// A trapped WFI while a list register already holds a pending interrupt: step over it
    /// (the guest would wake at once anyway).
    WfiReturn,
    /// A trapped WFI with nothing pending in a list register: a pinned-exclusive vCPU's
    /// CPU waits for an interrupt at EL2 with the vCPU still loaded (it has nothing else to
    /// run); any other vCPU takes the lock and blocks.
    WfiWait,
    /// Anything else: take the lock.
    Slow,
}

/// `x0` of the capability `NullCall` (the only id `CapOp::from_function_id` maps to it).
const NULL_CALL_FID: u64 = (FN_BASE | CapOp::NullCall as u32) as u64;
/// `x0` of the capability `WhoAmI`.
const WHO_AM_I_FID: u64 = (FN_BASE | CapOp::WhoAmI as u32) as u64;
/// `x0` of the capability calls [`SyncAction::SlotCall`] covers.
const fn fid(op: CapOp) -> u64 {
    (FN_BASE | op as u32) as u64
}
const CONSOLE_WRITE_FID: u64 = fid(CapOp::ConsoleWrite);
const CONSOLE_READ_FID: u64 = fid(CapOp::ConsoleRead);
const HEARTBEAT_FID: u64 = fid(CapOp::Heartbeat);
const IDLE_REPORT_FID: u64 = fid(CapOp::IdleReport);
/// `x16` of `event_channel_op`.
const EVENT_CHANNEL_OP_NR: u64 = Hypercall::EventChannelOp as u64;
/// `x0` of `EVTCHNOP_send`.
const EVTCHNOP_SEND: u64 = EvtchnOp::Send as u64;
/// `x0` of `EVTCHNOP_unmask`.
const EVTCHNOP_UNMASK: u64 = EvtchnOp::Unmask as u64;
/// `x16` of `grant_table_op`.
const GRANT_TABLE_OP_NR: u64 = Hypercall::GrantTableOp as u64;
/// `x0` of `GNTTABOP_copy`.
const GNTTABOP_COPY: u64 = GnttabOp::Copy as u64;
/// `x16` of `xen_version`.
const XEN_VERSION_NR: u64 = Hypercall::XenVersion as u64;
/// `x0` of `XENVER_version`.
const XENVER_VERSION: u64 = XenVersionOp::Version as u64;

/// Classifies a synchronous exit with syndrome `esr`, guest `x0` and `x16`, and the
/// vCPU's list registers `lrs` (equal to the hardware's). Compares against the exact
/// register values the slow path's decoders accept (tested against them), since every
/// instruction here is paid on each round trip.
#[inline]
pub fn classify_sync(esr: u64, x0: u64, x16: u64, lrs: &[u64]) -> SyncAction {
    match trap::quick(esr) {
        // PSCI function ids have another SMCCC owner, so they never match (tested).
        QuickExit::Hvc(0) if x0 == NULL_CALL_FID => SyncAction::NullCall,
        QuickExit::Hvc(0) if x0 == WHO_AM_I_FID => SyncAction::WhoAmI,
        QuickExit::Hvc(0) if x0 == CONSOLE_WRITE_FID => SyncAction::SlotCall(CapOp::ConsoleWrite),
        QuickExit::Hvc(0) if x0 == CONSOLE_READ_FID => SyncAction::SlotCall(CapOp::ConsoleRead),
        QuickExit::Hvc(0) if x0 == HEARTBEAT_FID => SyncAction::SlotCall(CapOp::Heartbeat),
        QuickExit::Hvc(0) if x0 == IDLE_REPORT_FID => SyncAction::SlotCall(CapOp::IdleReport),
        QuickExit::Hvc(XEN_HVC_IMM) if x16 == XEN_VERSION_NR && x0 == XENVER_VERSION => {
            SyncAction::XenVersion
        }
        QuickExit::Hvc(XEN_HVC_IMM) if x16 == EVENT_CHANNEL_OP_NR && x0 == EVTCHNOP_SEND => {
            SyncAction::EvtchnSend
        }
        QuickExit::Hvc(XEN_HVC_IMM) if x16 == EVENT_CHANNEL_OP_NR && x0 == EVTCHNOP_UNMASK => {
            SyncAction::EvtchnUnmask
        }
        QuickExit::Hvc(XEN_HVC_IMM) if x16 == GRANT_TABLE_OP_NR && x0 == GNTTABOP_COPY => {
            SyncAction::GrantCopy
        }
        QuickExit::Wfi if lrs.iter().any(|&l| l & lr::PENDING != 0) => SyncAction::WfiReturn,
        QuickExit::Wfi => SyncAction::WfiWait,
        _ => SyncAction::Slow,
    }
}

/// A vCPU's entry in the home table: `pCPU + 1` if it is pinned exclusive, else 0.
pub fn home_entry(exclusive: bool, pcpu: usize) -> u32 {
    if exclusive {
        u32::try_from(pcpu).map_or(0, |c| c.saturating_add(1))
    } else {
        0
    }
}

/// The physical CPU of a vCPU whose [`home_entry`] is `home`, if it is pinned exclusive (and
/// the CPU fits a 64-bit CPU mask).
pub fn exclusive_home(home: u32) -> Option<usize> {
    let cpu = home.checked_sub(1)? as usize;
    (cpu < 64).then_some(cpu)
}

/// Where a fast `EVTCHNOP_send` reads its argument: the offset in the caller's RAM of the
/// `len` bytes at guest-physical `ipa`, if they lie in one page of plain RAM — not the
/// page the caller put its shared_info at (`shared_gfn`) nor the magic pages, which the
/// locked path resolves to microvisor frames (`Domain::own_page`), so those go to it.
pub fn plain_ram_offset(ipa: u64, len: u64, shared_gfn: Option<u64>) -> Option<u64> {
    use protocol::addr::PAGE_SIZE;
    use protocol::layout::{GUEST_MAGIC_BASE, GUEST_RAM_BASE};
    let gfn = ipa / PAGE_SIZE;
    let magic = GUEST_MAGIC_BASE.as_u64() / PAGE_SIZE;
    if shared_gfn == Some(gfn) || (magic..magic + MAGIC_PAGES).contains(&gfn) {
        return None;
    }
    if (ipa % PAGE_SIZE).checked_add(len)? > PAGE_SIZE {
        return None;
    }
    ipa.checked_sub(GUEST_RAM_BASE.as_u64())
}

/// Whether guest-physical `ipa` is in an emulated GIC window (distributor, redistributors,
/// or a GICv2 CPU interface), which the vGIC serves under the lock before any device is
/// considered.
pub fn in_vgic_window(ipa: u64) -> bool {
    use protocol::layout::{
        GUEST_GICD_BASE, GUEST_GICD_SIZE, GUEST_GICR_BASE, GUEST_GICR_SIZE, GUEST_GICV2_GICC_BASE,
        GUEST_GICV2_GICC_SIZE,
    };
    [
        (GUEST_GICD_BASE.as_u64(), GUEST_GICD_SIZE),
        (GUEST_GICR_BASE.as_u64(), GUEST_GICR_SIZE),
        (GUEST_GICV2_GICC_BASE.as_u64(), GUEST_GICV2_GICC_SIZE),
    ]
    .iter()
    .any(|&(base, size)| ipa.wrapping_sub(base) < size)
}

/// The magic pages (console, xenstore) every domU has at `GUEST_MAGIC_BASE`.
const MAGIC_PAGES: u64 = 2;

/// Whether an SGI to the vCPUs in `targets` (bit n = vCPU n) may be posted without the
/// lock, given each vCPU's [`home_entry`] in `homes`: every target must exist and be pinned
/// exclusive (on another CPU, whose fast path or next locked pass takes the post, or on the
/// sender's: then it is the sender itself, one vCPU per exclusive pCPU, and its own fast
/// path takes it before re-entering). Returns the physical CPUs to notify (bit n = CPU n;
/// this CPU's bit means "take it yourself"), or `None` for the slow path. No target at all
/// is `Some(0)`: the write does nothing.
pub fn sgi_homes(targets: u32, homes: &[u32]) -> Option<u64> {
    let mut cpus = 0u64;
    let mut rest = targets;
    while rest != 0 {
        let v = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        cpus |= 1 << exclusive_home(*homes.get(v)?)?;
    }
    Some(cpus)
}

/// The INTID of the virtual timer PPI.
const VTIMER_PPI: u32 = 27;

/// Where a loaded vCPU's expired virtual timer goes without the lock: `(slot, LR value)`,
/// a hardware-linked LR (the guest's EOI deactivates the physical interrupt), if its guest
/// enabled the timer PPI (at `priority`), the timer is not already in an LR, and an LR is
/// free. `None` sends it to the slow path, which masks the timer and injects through the
/// vGIC model. Pinned exclusive or on a shared pCPU alike: a vCPU switched out with the
/// LR in flight has it unlinked and its timer masked until the guest finishes it
/// (`Hyp::unload`).
///
/// `group` is the domain's Group bit ([`lr::group_bit`]).
#[inline(always)]
pub fn vtimer_lr(lrs: &[u64], priority: Option<u8>, group: u64) -> Option<(usize, u64)> {
    let priority = priority?;
    let in_lr = lrs
        .iter()
        .any(|&l| l as u32 == VTIMER_PPI && l & lr::STATE_MASK != 0);
    if in_lr {
        return None;
    }
    let slot = lrs.iter().position(|&l| l & lr::STATE_MASK == 0)?;
    let value = lr::build_hw(
        VTIMER_PPI,
        VTIMER_PPI,
        priority,
        lr::group1(group),
        lr::LrState::Pending,
    );
    Some((slot, value))
}

/// Whether the loaded vCPU's list registers `lrs` (equal to the hardware's) already hold
/// its event-channel upcall (PPI 31) so that an upcall raised now needs no new injection:
/// pending (the guest has yet to take it, and will find every pending port), or active with
/// its EOI notified (its completion asks again whether the upcall is pending, in the vGIC
/// model's `Hyp::evtchn_eoi` or the fast path's re-raise, and injects it then).
pub fn upcall_in_lr(lrs: &[u64]) -> bool {
    lrs.iter().any(|&l| {
        lr::intid(l) == EVTCHN_PPI
            && (l & lr::PENDING != 0 || (l & lr::ACTIVE != 0 && lr::eoi_notify(l)))
    })
}

/// The posted INTIDs `left` that the fast path could not place, less the event-channel
/// upcall if the vCPU's list registers `lrs` hold it already ([`upcall_in_lr`]): an upcall
/// posted means only that its upcall-pending flag is set, which the guest reads when it
/// takes the one in the LR, or the completion of that one asks about. (Left for the locked
/// pass, the model would find it in the LR and coalesce it all the same.)
pub fn drop_held_upcall(left: u32, lrs: &[u64]) -> u32 {
    let bit = 1u32 << EVTCHN_PPI;
    if left & bit != 0 && upcall_in_lr(lrs) {
        left & !bit
    } else {
        left
    }
}

/// Where physical SPI `pintid`, just acknowledged, goes without the lock: `(slot, LR
/// value)`, a pending hardware-linked LR for the guest's SPI, if `spis` (the loaded vCPU's
/// idle linked SPIs, [`crate::vgic::VgicDomain::fast_spis`]) has it not yet placed, no LR
/// holds its INTID and an LR is free. The entry then records the slot until the LR is
/// freed ([`spi_lrs_freed`]) or the next locked pass takes the LR over. `None` sends it to
/// the slow path (`Hyp::forward_spi`).
///
/// `group` is the domain's Group bit ([`lr::group_bit`]).
pub fn spi_lr(
    spis: &mut [crate::vgic::FastSpi],
    lrs: &[u64],
    pintid: u32,
    group: u64,
) -> Option<(usize, u64)> {
    let spi = spis
        .iter_mut()
        .find(|s| s.pintid == pintid && s.placed.is_none())?;
    let in_lr = lrs
        .iter()
        .any(|&l| lr::intid(l) == spi.intid && l & lr::STATE_MASK != 0);
    if in_lr {
        return None;
    }
    let slot = lrs.iter().position(|&l| l & lr::STATE_MASK == 0)?;
    spi.placed = Some(u8::try_from(slot).ok()?);
    let value = lr::build_hw(
        spi.intid,
        pintid,
        spi.priority,
        lr::group1(group),
        lr::LrState::Pending,
    );
    Some((slot, value))
}

/// The guest finished the LRs in `freed` (bit n = LR n) before any locked pass saw them:
/// an SPI placed in one is idle again, whether [`spi_lr`] placed it (the model never knew it
/// left) or the model did ([`crate::vgic::FastSpi::by_model`]). Returns the slots of the
/// latter, for the next locked pass to retire from the model before it takes over any LR
/// the fast path fills meanwhile (`VgicDomain::retire_freed`).
pub fn spi_lrs_freed(spis: &mut [crate::vgic::FastSpi], freed: u16) -> u16 {
    let mut model = 0;
    for spi in spis.iter_mut() {
        let Some(slot) = spi.placed.filter(|&s| s < 16 && freed & (1 << s) != 0) else {
            continue;
        };
        if spi.by_model {
            model |= 1 << slot;
        }
        spi.placed = None;
        spi.by_model = false;
    }
    model
}

/// Brings the LR shadow `shadow` up to date with the hardware `hw` where the only change
/// is the guest's own progress through an LR the vGIC model does not track: a
/// hardware-linked one (the model never tracks those; the slow path would only copy or
/// clear them), or one this CPU's fast path filled with a posted interrupt since the last
/// locked pass (`posted`, bit n = LR n; see [`crate::posted`]). A posted LR asking for EOI
/// notification may only go from pending to active here: its completion is the model's to
/// report. Returns the slots that became free (the caller zeroes them in the hardware, as
/// the slow path does; they leave `posted` too, so a later fill of the slot, such as the
/// timer's hardware-linked LR, is never taken for a posted one), or `None` if any other LR
/// changed and the vGIC model must see it under the lock (`shadow`, `posted` and `retired`
/// are then left as they were).
///
/// Two changes to an LR the model filled are absorbed too. The guest acknowledging it
/// (pending to active): the LR is authoritative while the interrupt sits in it and the
/// model only tracks that it does, so the model reads the new state from the shadow at its
/// next pass; without this, a guest that acknowledges one interrupt the model delivered and
/// then sends an SGI (an IPI handler's answer) would take the locked path for the send too.
/// And the guest finishing a private interrupt (SGI or PPI) that asks for no EOI
/// notification: nothing is reported for it, so the slot is freed like a posted one and
/// added to `retired` (bit n = LR n), and the next locked pass tells the model the INTID
/// left before it adopts any posted LR ([`crate::vgic::VgicDomain::retire_freed`]).
/// Without this, once one SGI to a pinned-exclusive vCPU went through the model, the
/// guest's completion of it sent that vCPU's next exit (the kick of the next posted SGI)
/// to the locked path, which drained that SGI into the model too: round after round.
#[inline]
pub fn absorb_hw_lr_progress(
    shadow: &mut [u64],
    hw: &[u64],
    posted: &mut u16,
    retired: &mut u16,
) -> Option<u16> {
    absorb_lr_progress(shadow, hw, posted, retired, 0).map(|(freed, _)| freed)
}

/// [`absorb_hw_lr_progress`], where the caller also handles the guest finishing an LR
/// that asks for EOI notification if its INTID is in `own_eoi` (bit n = INTID n, private
/// interrupts only): such an LR is freed, and its INTID is returned in the second value,
/// for the caller to do what the model's completion report would have (the event-channel
/// PPI: re-raise the upcall if events are still pending, `Hyp::evtchn_eoi`). A posted one
/// the model never knew; one the model placed (a vCPU woken under the lock gets its upcall
/// from the model) is also added to `retired`, and the model's own report of it at the next
/// locked pass finds the upcall already back in an LR if it was still owed (a second
/// re-check, never a lost one). Without this, on a shared pCPU, where a vCPU's wake-up goes
/// through the lock, the guest's completion of each such upcall took a locked pass too.
/// Always inlined, so that [`absorb_hw_lr_progress`] (no `own_eoi`) is its own copy with the
/// extra rule folded away: out of line, the timer's and the IPI's paths paid 32
/// instructions for it.
#[inline(always)]
pub fn absorb_lr_progress(
    shadow: &mut [u64],
    hw: &[u64],
    posted: &mut u16,
    retired: &mut u16,
    own_eoi: u32,
) -> Option<(u16, u32)> {
    let filled = *posted;
    let owned = |s: u64| lr::intid(s) < 32 && own_eoi & (1 << (lr::intid(s) % 32)) != 0;
    let same_irq = |a: u64, b: u64| a & !lr::STATE_MASK == b & !lr::STATE_MASK;
    let is_posted = |i: usize| i < 16 && filled & (1 << i) != 0;
    let ours = |i: usize, s: u64, h: u64| {
        let finished = h & lr::STATE_MASK == 0;
        let acknowledged = s & lr::STATE_MASK == lr::PENDING && h & lr::STATE_MASK == lr::ACTIVE;
        let notified = lr::eoi_notify(s);
        let private = lr::intid(s) < 32;
        s & lr::HW != 0
            || acknowledged
            || (is_posted(i) && (!(finished && notified) || owned(s)))
            || (finished && private && (!notified || owned(s)))
    };
    let only_our_progress = shadow
        .iter()
        .zip(hw)
        .enumerate()
        .all(|(i, (&s, &h))| s == h || (ours(i, s, h) && same_irq(s, h)));
    if !only_our_progress {
        return None;
    }
    let mut freed = 0u16;
    let mut model = 0u16;
    let mut completed = 0u32;
    for (i, (s, &h)) in shadow.iter_mut().zip(hw).enumerate() {
        if *s == h {
            continue;
        }
        if h & lr::STATE_MASK == 0 {
            if *s & lr::HW == 0 && !is_posted(i) {
                model |= 1 << i;
            }
            if lr::eoi_notify(*s) && owned(*s) {
                completed |= 1 << (lr::intid(*s) % 32);
            }
            *s = 0;
            freed |= 1 << i;
        } else {
            *s = h;
        }
    }
    *posted &= !freed;
    *retired |= model;
    Some((freed, completed))
}

/// `ESR_ELx.EC` of an SError interrupt.
const EC_SERROR: u64 = 0x2f;
/// `DISR_EL1.A`: an SError was deferred by an error synchronisation barrier.
pub const DISR_A: u64 = 1 << 31;

/// The syndrome to charge to the domain of the vCPU that just exited, if its exit found an
/// SError deferred by the exit's error synchronisation barrier (`disr`, the `DISR_EL1`
/// value): reported as an SError syndrome (EC 0x2F, IL, and DISR's IDS/ISS bits).
///
/// Every exit synchronises before anything else runs on the CPU, so an SError a vCPU's own
/// accesses raised is found at that vCPU's exit, and charged to its domain, never to the
/// next vCPU loaded here.
pub fn deferred_serror(disr: u64) -> Option<u64> {
    (disr & DISR_A != 0).then_some((EC_SERROR << 26) | (1 << 25) | (disr & 0x1ff_ffff))
}

#[cfg(test)]
mod tests;
