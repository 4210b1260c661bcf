//! Register semantics shared by the distributor and the redistributors: the decoders in
//! `dist.rs` and `redist.rs` turn an offset into a [`Reg`], and this file reads or writes it.
//!
//! Invariant: a [`Reg`] produced by a decoder only names INTIDs the GIC implements for that
//! frame (SPIs from the distributor, one vCPU's SGIs/PPIs from its redistributor); anything
//! else was decoded to [`Reg::Raz`]. Lookups are still bounds-checked, so a decoder bug
//! degrades to RAZ/WI rather than a panic.

use super::diag::VgicWarning;
use super::state::{WAKER_CHILDREN_ASLEEP, WAKER_PROCESSOR_SLEEP};
use super::{GicVersion, VcpuMask, VgicDomain, FIRST_SPI, NR_IRQS};

/// `GICD_CTLR.EnableGrp1A` (bit 1 of the Non-secure view): the only bit a guest can
/// change. It is stored and read back but does not gate delivery (see the module doc of
/// `vgic`).
pub(crate) const CTLR_ENABLE_G1A: u32 = 1 << 1;
/// GICv2 `GICD_CTLR` without the Security Extensions: EnableGrp0 (bit 0) and EnableGrp1
/// (bit 1), stored and read back; like the GICv3's they do not gate delivery.
pub(crate) const CTLR_V2_ENABLES: u32 = 0b11;
/// GICv2 `GICD_CTLR.EnableGrp0`: enables the group every GICv2 guest interrupt is in.
pub(crate) const CTLR_V2_ENABLE_G0: u32 = 1 << 0;
/// `GICD_CTLR.ARE_NS` (bit 4): affinity routing, always on.
pub(crate) const CTLR_ARE_NS: u32 = 1 << 4;
/// `GICD_IROUTER.Interrupt_Routing_Mode`: 1 of N.
pub(crate) const IROUTER_IRM: u64 = 1 << 31;
/// Implemented `GICD_IROUTER` fields: Aff3 [39:32], IRM [31], Aff2, Aff1, Aff0 [23:0].
pub(crate) const IROUTER_MASK: u64 = 0xFF_8000_0000 | 0xFF_FFFF;

/// Which of the bit-per-interrupt registers is accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BitReg {
    /// `IGROUPR`: RAZ/WI (every interrupt is Group 1); a 0 written raises a diagnostic.
    Group,
    /// `ISENABLER`: write 1 to enable.
    SetEnable,
    /// `ICENABLER`: write 1 to disable.
    ClearEnable,
    /// `ISPENDR`: write 1 to pend.
    SetPend,
    /// `ICPENDR`: write 1 to unpend.
    ClearPend,
    /// `ISACTIVER`: write 1 to activate.
    SetActive,
    /// `ICACTIVER`: write 1 to deactivate.
    ClearActive,
}

/// A decoded register access target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reg {
    /// Reads as zero, writes ignored (reserved, unsupported or absent).
    Raz,
    /// Read-only value; writes ignored.
    Const(u64),
    /// `GICD_CTLR`.
    DistCtlr,
    /// 32 interrupts starting at `first` (a multiple of 32), banked on `vcpu` if private.
    Bits {
        kind: BitReg,
        vcpu: usize,
        first: u32,
    },
    /// `len` (1 or 4) priority bytes starting at `intid`.
    Prio { vcpu: usize, intid: u32, len: u8 },
    /// `ICFGR`: 16 two-bit fields starting at `first`.
    Cfg { vcpu: usize, first: u32 },
    /// `GICD_IROUTER` of an SPI, or one 32-bit half of it (`shift` 0 or 32, `mask` the
    /// bits of the register the access covers).
    Router { intid: u32, shift: u8, mask: u64 },
    /// `GICR_WAKER` of `vcpu`.
    Waker { vcpu: usize },
    /// GICv2 `GICD_ITARGETSR`: `len` (1 or 4) target bytes starting at `intid`, as seen by
    /// `vcpu` (the bytes of INTIDs 0-31 are banked and read-only).
    Targets { vcpu: usize, intid: u32, len: u8 },
    /// GICv2 `GICD_SGIR` (write-only), written by `vcpu`.
    Sgir { vcpu: usize },
}

impl VgicDomain {
    /// Reads a decoded register. Never fails: anything unimplemented reads 0.
    pub(crate) fn read_reg(&self, reg: Reg) -> u64 {
        match reg {
            Reg::Raz => 0,
            Reg::Const(v) => v,
            Reg::DistCtlr => u64::from(match self.version {
                GicVersion::V3 => (self.ctlr & CTLR_ENABLE_G1A) | CTLR_ARE_NS,
                GicVersion::V2 => self.ctlr & CTLR_V2_ENABLES,
            }),
            Reg::Bits { kind, vcpu, first } => u64::from(self.read_bits(kind, vcpu, first)),
            Reg::Prio { vcpu, intid, len } => (0..u32::from(len)).fold(0, |acc, i| {
                let p = self.irq(vcpu, intid + i).map_or(0, |irq| irq.priority);
                acc | u64::from(p) << (8 * i)
            }),
            Reg::Cfg { vcpu, first } => (0..16u32).fold(0, |acc, i| {
                let c = self.irq(vcpu, first + i).map_or(0, |irq| irq.cfg);
                acc | u64::from(c) << (2 * i)
            }),
            Reg::Router { intid, shift, mask } => {
                let route = intid
                    .checked_sub(FIRST_SPI)
                    .and_then(|spi| self.routes.get(spi as usize))
                    .copied()
                    .unwrap_or(0);
                (route & mask) >> shift
            }
            Reg::Waker { vcpu } => u64::from(self.waker.get(vcpu).copied().unwrap_or(0)),
            Reg::Targets { vcpu, intid, len } => self.read_targets(vcpu, intid, len),
            Reg::Sgir { .. } => 0,
        }
    }

    /// Writes a decoded register; returns the vCPUs that gained a deliverable interrupt.
    pub(crate) fn write_reg(&mut self, reg: Reg, val: u64) -> VcpuMask {
        // What the wait check reads: enables, priorities and routes.
        let configures = matches!(
            reg,
            Reg::Prio { .. }
                | Reg::Router { .. }
                | Reg::Targets { .. }
                | Reg::Bits {
                    kind: BitReg::SetEnable | BitReg::ClearEnable,
                    ..
                }
        );
        if configures {
            self.diag.config_written();
        }
        match reg {
            Reg::Raz | Reg::Const(_) => 0,
            Reg::DistCtlr => {
                // Kept whole for the diagnostic; only EnableGrp1A (GICv3) or EnableGrp0 and
                // EnableGrp1 (GICv2) read back.
                self.ctlr = val as u32;
                0
            }
            Reg::Bits { kind, vcpu, first } => self.write_bits(kind, vcpu, first, val as u32),
            Reg::Prio { vcpu, intid, len } => {
                for i in 0..u32::from(len) {
                    if let Some(irq) = self.irq_mut(vcpu, intid + i) {
                        irq.priority = (val >> (8 * i)) as u8;
                    }
                }
                0
            }
            Reg::Cfg { vcpu, first } => {
                for i in 0..16u32 {
                    if let Some(irq) = self.irq_mut(vcpu, first + i) {
                        // Only the edge/level bit is writable; bit 0 of each field is RES0.
                        irq.cfg = ((val >> (2 * i)) as u8) & 0b10;
                    }
                }
                0
            }
            Reg::Router { intid, shift, mask } => {
                let spi = match intid.checked_sub(FIRST_SPI) {
                    Some(s) => s as usize,
                    None => return 0,
                };
                if let Some(route) = self.routes.get_mut(spi) {
                    let new = ((val << shift) & mask) | (*route & !mask);
                    *route = new & IROUTER_MASK;
                }
                // A pending SPI routed to a different vCPU now wants that vCPU.
                self.deliverable_mask(0, intid)
            }
            Reg::Waker { vcpu } => {
                if let Some(w) = self.waker.get_mut(vcpu) {
                    // Waking (or sleeping) completes at once, so ChildrenAsleep follows.
                    *w = if val as u32 & WAKER_PROCESSOR_SLEEP != 0 {
                        WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
                    } else {
                        0
                    };
                }
                0
            }
            Reg::Targets { intid, len, .. } => self.write_targets(intid, len, val),
            Reg::Sgir { vcpu } => self.write_sgir(vcpu, val),
        }
    }

    fn read_bits(&self, kind: BitReg, vcpu: usize, first: u32) -> u32 {
        let mut out = 0;
        for i in 0..32u32 {
            let intid = first + i;
            let irq = match self.irq(vcpu, intid) {
                Some(irq) => irq,
                None => continue,
            };
            let set = match kind {
                // RAZ, as the architecture makes IGROUPR for Non-secure accesses.
                BitReg::Group => false,
                BitReg::SetEnable | BitReg::ClearEnable => irq.enabled,
                BitReg::SetPend | BitReg::ClearPend => {
                    irq.pending
                        || self
                            .lr_holder(vcpu, intid)
                            .is_some_and(|t| t.lr_pending.contains(intid))
                }
                BitReg::SetActive | BitReg::ClearActive => {
                    irq.active
                        || self
                            .lr_holder(vcpu, intid)
                            .is_some_and(|t| t.lr_active.contains(intid))
                }
            };
            if set {
                out |= 1 << i;
            }
        }
        out
    }

    fn write_bits(&mut self, kind: BitReg, vcpu: usize, first: u32, val: u32) -> VcpuMask {
        let mut kick = 0;
        for i in 0..32u32 {
            let intid = first + i;
            let bit = val & (1 << i) != 0;
            if kind == BitReg::Group {
                // WI: a non-secure guest has only Group 1. A 0 is a guest asking for Group 0
                // (built for the Secure world); say so once, since a GIC would then never
                // deliver to it.
                if !bit && self.irq(vcpu, intid).is_some() {
                    self.diag.raise(VgicWarning::Group0Requested { intid });
                }
                continue;
            }
            if !bit {
                // Set/clear registers ignore zero bits.
                continue;
            }
            let holder = self.lr_holder_index(vcpu, intid);
            let irq = match self.irq_mut(vcpu, intid) {
                Some(irq) => irq,
                None => continue,
            };
            match kind {
                BitReg::Group => {}
                BitReg::SetEnable => irq.enabled = true,
                BitReg::ClearEnable => irq.enabled = false,
                BitReg::SetPend => irq.pending = true,
                BitReg::ClearPend => {
                    let dropped_notified = irq.pending && irq.eoi_notify && holder.is_none();
                    irq.pending = false;
                    if let Some(t) = holder.and_then(|h| self.lrs.get_mut(h)) {
                        t.unpend_req.insert(intid);
                    }
                    if dropped_notified {
                        // The instance the caller waits to see completed will never reach
                        // an LR; report it so e.g. a masked timer gets unmasked.
                        let target = self.delivery_vcpu(vcpu, intid);
                        if let Some(t) = target.and_then(|v| self.lrs.get_mut(v)) {
                            t.completed_carry.insert(intid);
                        }
                    }
                }
                BitReg::SetActive => {
                    // Already in an LR: the guest's own view is the LR; leave it be.
                    if holder.is_none() {
                        irq.active = true;
                    }
                }
                BitReg::ClearActive => {
                    irq.active = false;
                    if let Some(t) = holder.and_then(|h| self.lrs.get_mut(h)) {
                        t.deact_req.insert(intid);
                    }
                }
            }
            if matches!(kind, BitReg::SetPend | BitReg::SetActive) {
                self.mark_live(vcpu, intid);
            }
            if matches!(kind, BitReg::SetEnable | BitReg::SetPend) {
                kick |= self.deliverable_mask(vcpu, intid);
            }
        }
        kick
    }

    /// The vCPU whose LRs currently hold `intid` (for a private interrupt, only `vcpu`).
    fn lr_holder_index(&self, vcpu: usize, intid: u32) -> Option<usize> {
        if intid as usize >= NR_IRQS {
            return None;
        }
        let v = if intid < FIRST_SPI {
            vcpu
        } else {
            match self.spis.get((intid - FIRST_SPI) as usize)?.owner {
                super::state::NO_OWNER => return None,
                o => o as usize,
            }
        };
        self.lrs
            .get(v)
            .filter(|t| t.in_lr.contains(intid))
            .map(|_| v)
    }

    fn lr_holder(&self, vcpu: usize, intid: u32) -> Option<&super::state::LrTrack> {
        self.lr_holder_index(vcpu, intid)
            .and_then(|v| self.lrs.get(v))
    }
}
