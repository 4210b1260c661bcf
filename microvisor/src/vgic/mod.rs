//! The emulated GIC of one domain: distributor and redistributor registers, virtual
//! interrupt state, SGI routing and list-register (LR) management. Pure logic; the caller
//! moves `ICH_LR<n>_EL2` values in and out as `u64` slices (on a GICv2 host too: the caller
//! converts to and from `GICH_LR<n>` at the hardware boundary).
//!
//! A domain sees the host's GIC architecture ([`GicVersion`]). A GICv3 is described below.
//! A GICv2 (`dist_v2.rs`) is the same model behind a different register map: one 4 KiB
//! distributor whose registers for INTIDs 0-31 are banked per accessing vCPU (the state
//! the GICv3 keeps in each redistributor), `GICD_ITARGETSR` mapped onto the single-owner
//! SPI routing, SGIs sent through `GICD_SGIR`; no redistributors. Its interrupts are
//! Group 0 (`IGROUPR` is RAZ/WI, as on Xen), so the model's LRs for it carry Group 0, which
//! a GICv2 guest enables with `GICC_CTLR.EnableGrp0` (bit 0, all Linux sets).
//!
//! Model and invariants (GICv3; a GICv2 differs as said above):
//! - The guest sees what a Non-secure kernel sees of a GIC with two security states, as on
//!   Xen: affinity routing is always on (`GICD_CTLR.ARE_NS` reads 1, `DS` reads 0), so
//!   SGIs/PPIs live only in the redistributors; `IGROUPR`, `IGRPMODR` and `NSACR` are
//!   RAZ/WI, and every interrupt is Group 1 (LRs carry the Group 1 bit). vCPU *n* has MPIDR
//!   Aff0 = *n*, Aff1 = Aff2 = Aff3 = 0.
//! - Like Xen, and unlike a GIC, delivery is not gated by `GICD_CTLR.EnableGrp1A` nor by
//!   `GICR_WAKER.ProcessorSleep`: guests built for Xen rely on that (Zephyr's `xenvm` board
//!   thinks it runs in the Secure world, writes Group 0 and enables only `EnableGrp1S`).
//!   When a delivery depends on that leniency, or a vCPU waits with its CPU interface
//!   unable to take anything, a [`VgicWarning`] is raised once per domain for the caller to
//!   print ([`VgicDomain::take_warning`]).
//! - Every interrupt is modelled as **edge-triggered**: a pend request latches until it is
//!   placed in an LR; pending again while in an LR coalesces (LR pending) or becomes
//!   pending+active (LR active). Level sources (the virtual timer) are handled by the caller
//!   with EOI notification ([`VgicDomain::set_eoi_notify`]) and re-injection.
//! - A passthrough SPI is **hardware-linked** ([`VgicDomain::link_hw`]): the caller
//!   acknowledges the physical interrupt, drops its priority and leaves it active, and
//!   pends the virtual one with [`VgicDomain::inject_hw`]; the flush places it in an LR with
//!   HW = 1 and the physical INTID, so the guest's deactivation deactivates the physical
//!   interrupt (no mask, no maintenance interrupt). While it is active the physical one
//!   cannot fire again; a level line still asserted after the guest's EOI fires again,
//!   which is right. A hardware LR is never pending+active: a pend by the guest
//!   (`ISPENDR`) while one is in flight waits in the model for a software LR. Where the link
//!   must be dropped with the physical interrupt still active (the guest clears its pending
//!   or active state by register, or makes it active by register), the model hands the
//!   physical INTID to the caller to deactivate ([`VgicDomain::take_unlinked`]) and goes on
//!   with a software LR.
//! - An interrupt is *deliverable* when pending and enabled. Priority masking (`ICC_PMR`)
//!   lives in the hardware virtual CPU interface and is not modelled, so
//!   [`VgicDomain::has_deliverable`] may over-approximate.
//! - While an interrupt sits in an LR, the LR is authoritative; the model only tracks that it
//!   is there (see [`state::LrTrack`]). An SPI is in at most one vCPU's LRs (its owner) and
//!   is delivered only there until the guest deactivates it.
//! - No guest input can panic this module: every index is bounds-checked and unknown,
//!   reserved, misaligned or wrong-width accesses are RAZ/WI and counted.
//!
//! MMIO `width` is in **bytes** (1, 2, 4 or 8), as decoded from the syndrome's SAS field.

mod candidates;
mod diag;
mod direct;
mod dist;
mod dist_v2;
mod fast_spi;
pub mod lr;
mod redist;
mod regs;
mod state;
mod window;

#[cfg(test)]
mod tests;

use protocol::addr::GuestPhysAddr;
pub use protocol::layout::GicVersion;
use protocol::layout::{GUEST_SPIS, MAX_VCPUS};

use diag::Diagnostics;
pub use diag::{VgicWarning, VMCR_VENG0, VMCR_VENG1, VMCR_VPMR_SHIFT};
pub use dist_v2::sgir_targets;
pub use fast_spi::{FastSpi, FAST_SPIS};
pub use state::{CompletedSet, IrqSet};
use state::{Irq, LrTrack, NO_OWNER, ROUTE_RESET, WAKER_CHILDREN_ASLEEP, WAKER_PROCESSOR_SLEEP};
use window::{width_mask, Decoded};

/// Bitmask of vCPUs: bit *n* = vCPU *n*.
pub type VcpuMask = u32;

/// Number of INTIDs the emulated GIC implements: 16 SGIs, 16 PPIs, then the SPIs.
pub const NR_IRQS: usize = 32 + GUEST_SPIS as usize;
/// First SPI INTID.
pub const FIRST_SPI: u32 = 32;
const SPIS: usize = GUEST_SPIS as usize;

// The bit-per-interrupt registers are 32 wide; a partial word would need masking everywhere.
const _: () = assert!(GUEST_SPIS.is_multiple_of(32) && NR_IRQS <= 1020);
// A physical INTID a passthrough SPI links to is one of ours (an `IrqSet` member), in a u8.
const _: () = assert!(NR_IRQS <= 256);
// VcpuMask has one bit per vCPU and `owner` stores a vCPU index in a u8.
const _: () = assert!(MAX_VCPUS <= 32 && MAX_VCPUS < NO_OWNER as usize);

/// Result of an MMIO access to the GIC windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioOutcome {
    /// A read completed with this value (zero-extended to 64 bits).
    Read(u64),
    /// A write completed; `kick` holds the vCPUs that now have a deliverable interrupt
    /// because of it and should be made to re-enter (IPI or wake from WFI). It may include
    /// vCPUs that already had one; a redundant kick is harmless.
    Write {
        /// vCPUs to kick.
        kick: VcpuMask,
    },
    /// The address is outside this GIC's windows (the distributor, and on a GICv3 the
    /// redistributors); the caller handles it.
    NotGic,
}

/// The emulated GIC (v3 or v2) of one domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VgicDomain {
    /// The GIC architecture the guest sees (its register map and CPU interface).
    version: GicVersion,
    /// vCPUs in this domain (clamped to `MAX_VCPUS`).
    nr_vcpus: usize,
    /// The guest's last `GICD_CTLR` write; only EnableGrp1A (bit 1) reads back.
    ctlr: u32,
    /// SGIs and PPIs, banked per vCPU.
    private: [[Irq; 32]; MAX_VCPUS],
    /// SPIs (INTID 32 + index).
    spis: [Irq; SPIS],
    /// `GICD_IROUTER` of each SPI (only the implemented fields).
    routes: [u64; SPIS],
    /// `GICR_WAKER` per vCPU.
    waker: [u32; MAX_VCPUS],
    /// LR bookkeeping per vCPU.
    lrs: [LrTrack; MAX_VCPUS],
    /// Guest accesses to unknown/reserved/misaligned registers, for rate-limited reporting.
    ignored: u64,
    /// vCPUs whose list registers may lag the model (bit n = vCPU n): set by every change
    /// that can affect delivery, cleared by `flush_lrs`. Lets the caller skip the flush on
    /// the common exit that changed nothing.
    stale: VcpuMask,
    /// Setups that cannot deliver on a GIC, raised once each for the caller to print.
    diag: Diagnostics,
    /// Per vCPU, its SGIs and PPIs (bit n = INTID n) that may be pending or active in the
    /// model; and [`Self::live_spis`] the same for SPIs. A superset, marked wherever an
    /// interrupt becomes pending or active ([`Self::mark_live`]) and pruned by
    /// `flush_lrs`, so the flush and [`Self::model_deliverable`] look at these few INTIDs
    /// instead of all [`NR_IRQS`] (that scan was most of a shared vCPU's switch).
    live_private: [u32; MAX_VCPUS],
    /// SPIs (by INTID) that may be pending or active in the model (see `live_private`).
    live_spis: IrqSet,
    /// Per SPI, the physical INTID it is hardware-linked to (a passthrough device's
    /// interrupt, [`Self::link_hw`]), or 0 for none. Kept beside `spis` rather than in
    /// [`state::Irq`]: only SPIs have one, and `Irq` is in every private bank too.
    spi_link: [u8; SPIS],
    /// The SPIs (by INTID) with a hardware link, so that finding them
    /// ([`Self::fast_spis`], every locked pass) costs nothing in a domain without one.
    linked: IrqSet,
    /// Linked SPIs (by INTID) whose physical interrupt was acknowledged and priority-dropped
    /// at EL2 and is still active on their behalf while they are not in an LR: their
    /// pending state is the physical one's, so they go into a hardware-linked LR. Once one
    /// is, the LR carries the link and it leaves this set (the guest's deactivation ends
    /// the physical interrupt); whoever drops the link otherwise deactivates it.
    hw_held: IrqSet,
    /// Physical INTIDs whose link the model dropped while they were still active: the
    /// caller deactivates them ([`Self::take_unlinked`]).
    unlinked: IrqSet,
}

const fn reset_private_bank() -> [Irq; 32] {
    let mut bank = [Irq::RESET; 32];
    let mut i = 0;
    while i < 16 {
        bank[i] = Irq::RESET_SGI;
        i += 1;
    }
    bank
}

impl VgicDomain {
    /// A GIC of architecture `version` in its reset state for `nr_vcpus` vCPUs (clamped to
    /// `MAX_VCPUS`): everything disabled, not pending, priority 0, SPIs routed to vCPU 0,
    /// redistributors asleep.
    pub const fn new(version: GicVersion, nr_vcpus: usize) -> Self {
        let nr_vcpus = if nr_vcpus > MAX_VCPUS {
            MAX_VCPUS
        } else {
            nr_vcpus
        };
        Self {
            version,
            nr_vcpus,
            ctlr: 0,
            private: [reset_private_bank(); MAX_VCPUS],
            spis: [Irq::RESET; SPIS],
            routes: [ROUTE_RESET; SPIS],
            waker: [WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP; MAX_VCPUS],
            lrs: [LrTrack::RESET; MAX_VCPUS],
            ignored: 0,
            stale: 0,
            diag: Diagnostics::NONE,
            live_private: [0; MAX_VCPUS],
            live_spis: IrqSet::EMPTY,
            spi_link: [0; SPIS],
            linked: IrqSet::EMPTY,
            hw_held: IrqSet::EMPTY,
            unlinked: IrqSet::EMPTY,
        }
    }

    /// The GIC architecture the guest sees.
    pub fn version(&self) -> GicVersion {
        self.version
    }

    /// Number of vCPUs this GIC serves.
    pub fn nr_vcpus(&self) -> usize {
        self.nr_vcpus
    }

    /// Guest accesses that hit no implemented register (RAZ/WI), so the caller can report a
    /// misbehaving guest once rather than per access.
    pub fn ignored_accesses(&self) -> u64 {
        self.ignored
    }

    /// Emulates a guest access of `width` bytes at `ipa`; `write` is `None` for a read.
    /// `vcpu` is the accessing vCPU: on a GICv2 it selects the banked copy of the
    /// registers covering INTIDs 0-31 (and is the sender of a `GICD_SGIR` write); on a
    /// GICv3 redistributor frames are selected by address and it is not used. Never panics.
    ///
    /// Windows: a GICv3 has the distributor at `GUEST_GICD_BASE` (64 KiB) and the
    /// redistributors at `GUEST_GICR_BASE`; a GICv2 only its 4 KiB distributor at
    /// `GUEST_GICD_BASE` (its CPU interface is the hardware GICV frame, never emulated).
    pub fn mmio(
        &mut self,
        vcpu: usize,
        ipa: GuestPhysAddr,
        width: u8,
        write: Option<u64>,
    ) -> MmioOutcome {
        let reg = match self.version {
            GicVersion::V3 => self.decode_v3(ipa, width),
            GicVersion::V2 => self.decode_v2(vcpu, ipa, width),
        };
        let reg = match reg {
            Decoded::NotGic => return MmioOutcome::NotGic,
            Decoded::Reg(r) => r,
            Decoded::Unknown => {
                self.ignored = self.ignored.wrapping_add(1);
                regs::Reg::Raz
            }
        };
        match write {
            None => MmioOutcome::Read(self.read_reg(reg)),
            Some(v) => {
                self.stale = VcpuMask::MAX;
                MmioOutcome::Write {
                    kick: self.write_reg(reg, v & width_mask(width)),
                }
            }
        }
    }

    /// Makes `intid` pending, as a device or the microvisor would. SGIs/PPIs pend on `vcpu`;
    /// SPIs follow their route and ignore `vcpu`. Returns the vCPUs that now have this
    /// interrupt deliverable. Out-of-range `intid` or `vcpu`: no effect, returns 0.
    pub fn inject(&mut self, vcpu: usize, intid: u32) -> VcpuMask {
        match self.irq_mut(vcpu, intid) {
            Some(irq) => irq.pending = true,
            None => return 0,
        }
        self.mark_live(vcpu, intid);
        let mask = self.deliverable_mask(vcpu, intid);
        self.stale |= if intid >= FIRST_SPI {
            VcpuMask::MAX
        } else {
            1 << vcpu
        } | mask;
        mask
    }

    /// Emulates `sender`'s write of `ICC_SGI1R_EL1`. Targets that do not exist (affinity
    /// above Aff0, a range selector past our vCPUs, or Aff0 >= `nr_vcpus`) are ignored, as
    /// the architecture ignores writes naming absent PEs. Returns the vCPUs to kick.
    pub fn send_sgi(&mut self, sender: usize, sgi1r: u64) -> VcpuMask {
        let (intid, targets) = sgi_targets(self.nr_vcpus, sender, sgi1r);
        self.pend_sgi(intid, targets)
    }

    /// Pends SGI `intid` on each vCPU in `targets` (absent ones are skipped); returns the
    /// vCPUs to kick. Shared by `ICC_SGI1R_EL1` (GICv3) and `GICD_SGIR` (GICv2).
    fn pend_sgi(&mut self, intid: u32, targets: VcpuMask) -> VcpuMask {
        let mut kick = 0;
        for v in (0..self.nr_vcpus).filter(|&v| targets & (1 << v) != 0) {
            kick |= self.inject(v, intid);
        }
        kick
    }

    /// Links SPI `intid` to physical interrupt `pintid` (a passthrough device's, given to
    /// this domain): from now on [`Self::inject_hw`] pends it and the flush places it in a
    /// hardware-linked LR. False, changing nothing, unless `intid` is an SPI of this GIC and
    /// `pintid` a physical SPI the LR can name and [`IrqSet`] can hold (below [`NR_IRQS`]).
    pub fn link_hw(&mut self, intid: u32, pintid: u32) -> bool {
        if !(FIRST_SPI..NR_IRQS as u32).contains(&pintid) {
            return false;
        }
        let Some(link) = self.spi_link_mut(intid) else {
            return false;
        };
        *link = pintid as u8;
        self.linked.insert(intid);
        if let Some(irq) = self.irq_mut(0, intid) {
            irq.eoi_notify = false;
        }
        self.stale = VcpuMask::MAX;
        true
    }

    /// Drops SPI `intid`'s hardware link (its device leaves this domain). Returns the
    /// physical INTID if the model held it active (fired, not yet in an LR): the caller
    /// deactivates it, so the device's next holder gets interrupts. An LR in flight is not
    /// the model's to see: the caller ends those when it switches the vCPU out.
    pub fn unlink_hw(&mut self, intid: u32) -> Option<u32> {
        let link = core::mem::replace(self.spi_link_mut(intid)?, 0);
        self.linked.remove(intid);
        let held = self.hw_held.contains(intid);
        self.hw_held.remove(intid);
        self.stale = VcpuMask::MAX;
        (held && link != 0).then_some(u32::from(link))
    }

    /// The physical INTID SPI `intid` is linked to ([`Self::link_hw`]).
    pub fn hw_link(&self, intid: u32) -> Option<u32> {
        let spi = intid.checked_sub(FIRST_SPI)?;
        let link = *self.spi_link.get(spi as usize)?;
        (link != 0).then_some(u32::from(link))
    }

    /// The link slot of SPI `intid` (`None` for a private or absent INTID).
    fn spi_link_mut(&mut self, intid: u32) -> Option<&mut u8> {
        let spi = intid.checked_sub(FIRST_SPI)?;
        self.spi_link.get_mut(spi as usize)
    }

    /// The linked physical interrupt of SPI `intid` fired, and the caller acknowledged it and
    /// dropped its priority, leaving it active: pends the virtual SPI, to be placed in a
    /// hardware-linked LR, and returns the vCPUs to kick (as [`Self::inject`]). `None`,
    /// changing nothing, if `intid` is not linked: the caller must then deactivate the
    /// physical interrupt itself.
    pub fn inject_hw(&mut self, intid: u32) -> Option<VcpuMask> {
        self.hw_link(intid)?;
        self.hw_held.insert(intid);
        Some(self.inject(0, intid))
    }

    /// The physical INTIDs whose hardware link the model dropped while they were still
    /// active (see the module doc); the caller deactivates each (`gic::deactivate`), so
    /// its device can interrupt again. Emptied by the call.
    pub fn take_unlinked(&mut self) -> IrqSet {
        core::mem::replace(&mut self.unlinked, IrqSet::EMPTY)
    }

    /// Whether [`Self::take_unlinked`] has anything (cheap: checked after every flush).
    #[inline]
    pub fn has_unlinked(&self) -> bool {
        !self.unlinked.is_empty()
    }

    /// Takes over a list register the caller filled itself with a private interrupt of
    /// `vcpu` (the per-CPU fast path delivering a posted interrupt, [`crate::posted`]): from
    /// now on the model treats it as one it placed. Returns false, changing nothing, unless
    /// `lr` is a valid software LR for an SGI or PPI no LR of the model holds for `vcpu`.
    /// A hardware-linked SPI LR of the model's that the caller unlinked (cleared HW and
    /// the physical INTID, deactivating the physical interrupt: a vCPU switched out with it
    /// in flight) is already the model's: true, and it stays an ordinary LR.
    pub fn adopt(&mut self, vcpu: usize, lr: u64) -> bool {
        let intid = lr::intid(lr);
        let valid = lr::state(lr) != lr::LrState::Invalid && !lr::is_hw(lr);
        if vcpu >= self.nr_vcpus || !valid {
            return false;
        }
        let Some(t) = self.lrs.get_mut(vcpu) else {
            return false;
        };
        if intid >= FIRST_SPI {
            return t.in_lr.contains(intid);
        }
        if t.in_lr.contains(intid) {
            return false;
        }
        t.take_over(intid, lr);
        self.note_delivery(vcpu, intid);
        true
    }

    /// Requests (or stops requesting) a maintenance interrupt when the guest deactivates
    /// `intid` on `vcpu` (for SPIs `vcpu` is ignored). Takes effect on LRs at the next
    /// [`Self::flush_lrs`]; completions are reported by [`Self::sync_lrs`].
    pub fn set_eoi_notify(&mut self, vcpu: usize, intid: u32, on: bool) {
        if let Some(irq) = self.irq_mut(vcpu, intid) {
            irq.eoi_notify = on;
        }
        self.stale = VcpuMask::MAX;
    }

    /// The priority the guest gave `intid` on `vcpu` (for a list register the caller
    /// builds itself, e.g. a hardware-linked one), or `None` if disabled or out of range.
    pub fn enabled_priority(&self, vcpu: usize, intid: u32) -> Option<u8> {
        self.irq(vcpu, intid)
            .filter(|irq| irq.enabled)
            .map(|irq| irq.priority)
    }

    /// Whether the guest's deactivation of `intid` on `vcpu` is reported (the LR carries the
    /// EOI maintenance bit), as [`Self::set_eoi_notify`] set it.
    pub fn eoi_notify(&self, vcpu: usize, intid: u32) -> bool {
        self.irq(vcpu, intid).is_some_and(|irq| irq.eoi_notify)
    }

    /// Whether `vcpu`'s list registers may need a [`Self::flush_lrs`]: the model changed
    /// since the last flush, or interrupts were left out for lack of LRs.
    pub fn needs_flush(&self, vcpu: usize) -> bool {
        (vcpu < 32 && self.stale & (1 << vcpu) != 0) || self.needs_refill(vcpu)
    }

    /// Whether the last [`Self::flush_lrs`] for `vcpu` left deliverable interrupts out for
    /// lack of free LRs; the caller should then enable the underflow maintenance interrupt
    /// (`ICH_HCR_EL2.UIE`) so it gets to refill them.
    pub fn needs_refill(&self, vcpu: usize) -> bool {
        self.lrs.get(vcpu).is_some_and(|t| t.overflow)
    }

    // ---- interrupt lookup and deliverability ----

    /// The state of `intid` as seen from `vcpu` (private interrupts are banked).
    fn irq(&self, vcpu: usize, intid: u32) -> Option<&Irq> {
        if intid < FIRST_SPI {
            if vcpu >= self.nr_vcpus {
                return None;
            }
            self.private.get(vcpu)?.get(intid as usize)
        } else {
            self.spis.get((intid - FIRST_SPI) as usize)
        }
    }

    /// Mutable twin of [`Self::irq`].
    fn irq_mut(&mut self, vcpu: usize, intid: u32) -> Option<&mut Irq> {
        if intid < FIRST_SPI {
            if vcpu >= self.nr_vcpus {
                return None;
            }
            self.private.get_mut(vcpu)?.get_mut(intid as usize)
        } else {
            self.spis.get_mut((intid - FIRST_SPI) as usize)
        }
    }

    /// Pending in the model and enabled: it should go into an LR.
    fn wants_lr(&self, irq: &Irq) -> bool {
        irq.pending && irq.enabled
    }

    /// The vCPU an SPI's `IROUTER` names, if it exists. IRM (1 of N) picks vCPU 0.
    fn spi_route_target(&self, spi: usize) -> Option<usize> {
        let route = *self.routes.get(spi)?;
        if route & regs::IROUTER_IRM != 0 {
            return Some(0).filter(|_| self.nr_vcpus > 0);
        }
        if route & !0xFF != 0 {
            // Aff1..Aff3 name a cluster we do not have.
            return None;
        }
        Some((route & 0xFF) as usize).filter(|&v| v < self.nr_vcpus)
    }

    /// The vCPU whose LRs should receive `intid`: the banked vCPU for SGIs/PPIs; for SPIs the
    /// vCPU already holding it in an LR, else its route target.
    fn delivery_vcpu(&self, vcpu: usize, intid: u32) -> Option<usize> {
        if intid < FIRST_SPI {
            return Some(vcpu).filter(|&v| v < self.nr_vcpus);
        }
        let spi = (intid - FIRST_SPI) as usize;
        match self.spis.get(spi)?.owner {
            NO_OWNER => self.spi_route_target(spi),
            owner => Some(owner as usize),
        }
    }

    /// `1 << v` if `intid` is deliverable to some vCPU `v`, else 0.
    fn deliverable_mask(&self, vcpu: usize, intid: u32) -> VcpuMask {
        match (self.irq(vcpu, intid), self.delivery_vcpu(vcpu, intid)) {
            (Some(irq), Some(v)) if self.wants_lr(irq) => 1 << v,
            _ => 0,
        }
    }

    /// Whether the model (ignoring LR contents) has something deliverable for `vcpu`.
    /// Only a pending interrupt can be, and every pending one is live.
    fn model_deliverable(&self, vcpu: usize) -> bool {
        // The INTIDs that may be pending or active for it: its own private ones, then every
        // live SPI, whoever it is routed to. The SPI set is walked only when it is not empty
        // (walking it copies the set), since every blocking WFI asks this.
        let deliverable = |intid| self.deliverable_mask(vcpu, intid) & (1 << vcpu) != 0;
        let private = self.live_private.get(vcpu).copied().unwrap_or(0);
        state::bits(private).any(deliverable)
            || (vcpu < self.nr_vcpus
                && !self.live_spis.is_empty()
                && self.live_spis.iter().any(deliverable))
    }

    /// Notes that `intid` (banked on `vcpu` if private) may now be pending or active in the
    /// model. Every place that sets either flag calls this.
    fn mark_live(&mut self, vcpu: usize, intid: u32) {
        if intid >= FIRST_SPI {
            self.live_spis.insert(intid);
        } else if let Some(w) = self.live_private.get_mut(vcpu) {
            *w |= 1 << intid;
        }
    }
}

/// Decodes `sender`'s write `sgi1r` of `ICC_SGI1R_EL1` in a domain of `nr_vcpus` vCPUs:
/// the SGI's INTID and the vCPUs it names. Targets that do not exist (affinity above Aff0,
/// a range selector past our vCPUs, or Aff0 >= `nr_vcpus`) are left out, as the
/// architecture ignores writes naming absent PEs; IRM names every vCPU but the sender.
pub fn sgi_targets(nr_vcpus: usize, sender: usize, sgi1r: u64) -> (u32, VcpuMask) {
    let nr_vcpus = nr_vcpus.min(MAX_VCPUS);
    let intid = ((sgi1r >> 24) & 0xF) as u32;
    let all: VcpuMask = 1u32
        .checked_shl(nr_vcpus as u32)
        .map_or(u32::MAX, |b| b - 1);
    if sgi1r & (1 << 40) != 0 {
        let me = if sender < 32 { 1 << sender } else { 0 };
        return (intid, all & !me);
    }
    let aff1 = (sgi1r >> 16) & 0xFF;
    let aff2 = (sgi1r >> 32) & 0xFF;
    let aff3 = (sgi1r >> 48) & 0xFF;
    let rs = ((sgi1r >> 44) & 0xF) as u32;
    if aff1 != 0 || aff2 != 0 || aff3 != 0 {
        return (intid, 0);
    }
    // Range selector n names vCPUs 16n..16n+15.
    let targets = (sgi1r & 0xFFFF).checked_shl(rs * 16).unwrap_or(0);
    (intid, targets as u32 & all)
}
