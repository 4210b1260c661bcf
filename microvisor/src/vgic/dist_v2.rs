//! The GICv2 distributor (ARM IHI 0048B, chapter 4.3): offset decoding for the 4 KiB frame
//! at `GUEST_GICD_BASE`, and the two registers a GICv3 does not have, `GICD_ITARGETSR` and
//! `GICD_SGIR`.
//!
//! Invariants and choices:
//! - Registers covering INTIDs 0-31 (`ISENABLER0`, `I[SC]PENDR0`, `I[SC]ACTIVER0`,
//!   `IPRIORITYR0-7`, `ITARGETSR0-7`, `ICFGR0-1`) are banked: they act on the accessing
//!   vCPU's private bank (the state a GICv3 keeps in its redistributor). An access by a
//!   vCPU that does not exist reads 0 and changes nothing.
//! - The guest sees a GIC without the Security Extensions (`TYPER.SecurityExtn` = 0) and
//!   every interrupt in Group 0: `IGROUPR` and `NSACR` are RAZ/WI, as on Xen.
//! - `ITARGETSR` of an SPI maps onto the model's single-owner routing as Xen does: a write
//!   routes the SPI to the lowest-numbered vCPU in the byte that exists; a byte naming no
//!   existing vCPU is ignored (the old route stays; the spec would leave the SPI
//!   undeliverable, Xen keeps it deliverable and so do we). A read returns the one bit of the
//!   vCPU the SPI is routed to, not the mask written (Xen does the same).
//! - `CPENDSGIR`/`SPENDSGIR` (per-source SGI pending state) are not modelled: the model
//!   coalesces an SGI's sources into one pending bit, and the LR's source CPUID is 0. They
//!   are RAZ/WI and counted as unknown accesses (Linux never touches them; `ISPENDR0` and
//!   `ICPENDR0` act on SGIs instead).
//! - Widths: every register is word-accessible; `IPRIORITYR` and `ITARGETSR` also
//!   byte-accessible. Anything else, reserved offsets included, is `None` (RAZ/WI, counted
//!   by the caller).

use super::regs::Reg;
use super::{VcpuMask, VgicDomain, FIRST_SPI, NR_IRQS};
use crate::vgic::dist::{BIT_BANKS, GIC_IIDR};

/// `GICD_ICPIDR2` for a GICv2: ArchRev 2 in bits [7:4], JEDEC bits as Arm's (GIC-400).
pub(crate) const GICV2_PIDR2: u32 = 0x2B;
/// Offset of `GICD_ICPIDR2` in the 4 KiB frame.
const PIDR2_OFFSET: u64 = 0xFE8;
/// `GICD_SGIR`.
pub(crate) const SGIR_OFFSET: u64 = 0xF00;
/// `ICFGR0`: SGIs are always edge-triggered, read-only 0b10 in every field.
const ICFGR0_SGIS: u64 = 0xAAAA_AAAA;

/// `GICD_TYPER` for `nr_vcpus` vCPUs: ITLinesNumber [4:0] = NR_IRQS/32 - 1, CPUNumber
/// [7:5] = vCPUs - 1, SecurityExtn [10] = 0, LSPI 0.
pub(crate) fn typer(nr_vcpus: usize) -> u32 {
    let cpus = (nr_vcpus.saturating_sub(1) & 0x7) as u32;
    (cpus << 5) | ((NR_IRQS as u32 / 32) - 1)
}

/// Decodes an access by `vcpu` at `off` in the distributor frame (already checked aligned
/// and 1/2/4/8 bytes wide) of a domain with `nr_vcpus` vCPUs.
pub(crate) fn decode(off: u64, width: u8, vcpu: usize, nr_vcpus: usize) -> Option<Reg> {
    let word = width == 4;
    let word_or_byte = word || width == 1;
    match off {
        0x000 if word => Some(Reg::DistCtlr),
        0x004 if word => Some(Reg::Const(u64::from(typer(nr_vcpus)))),
        0x008 if word => Some(Reg::Const(u64::from(GIC_IIDR))),
        // IGROUPR: every interrupt is Group 0 (see the module doc).
        0x080..=0x0FF if word => Some(Reg::Raz),
        0x100..=0x3FF if word => {
            let (base, kind) = BIT_BANKS
                .iter()
                .copied()
                .find(|&(b, _)| off >= b && off < b + 0x80)?;
            let first = ((off - base) / 4 * 32) as u32;
            Some(implemented(first, 32, Reg::Bits { kind, vcpu, first }))
        }
        0x400..=0x7FF if word_or_byte => {
            let intid = (off - 0x400) as u32;
            let len = width;
            Some(implemented(
                intid,
                u32::from(len),
                Reg::Prio { vcpu, intid, len },
            ))
        }
        0x800..=0xBFF if word_or_byte => {
            let intid = (off - 0x800) as u32;
            let len = width;
            Some(implemented(
                intid,
                u32::from(len),
                Reg::Targets { vcpu, intid, len },
            ))
        }
        0xC00 if word => Some(Reg::Const(ICFGR0_SGIS)),
        0xC04..=0xCFF if word => {
            let first = ((off - 0xC00) / 4 * 16) as u32;
            // ICFGR1 (PPIs) is banked; the SPIs' are not (the vCPU is then unused).
            Some(implemented(first, 16, Reg::Cfg { vcpu, first }))
        }
        // Implementation-defined PPI/SPI status registers, and NSACR (no Security
        // Extensions): RAZ/WI.
        0xD00..=0xEFF if word => Some(Reg::Raz),
        // Write-only; a read returns 0.
        SGIR_OFFSET if word => Some(Reg::Sgir { vcpu }),
        PIDR2_OFFSET if word => Some(Reg::Const(u64::from(GICV2_PIDR2))),
        // The rest of the identification block.
        0xFD0..=0xFFF if word => Some(Reg::Raz),
        _ => None,
    }
}

/// `reg` if INTIDs `first .. first + count` all exist, else RAZ/WI.
fn implemented(first: u32, count: u32, reg: Reg) -> Reg {
    if first + count <= NR_IRQS as u32 {
        reg
    } else {
        Reg::Raz
    }
}

/// Decodes `sender`'s write `sgir` of `GICD_SGIR` in a domain of `nr_vcpus` vCPUs: the
/// SGI's INTID and the vCPUs it names. TargetListFilter [25:24]: 0 = the CPUTargetList
/// [23:16], 1 = every vCPU but the sender, 2 = the sender only, 3 = reserved (nobody).
/// Bits naming absent vCPUs are dropped, as the architecture ignores absent CPU interfaces;
/// a sender that does not exist sends nothing.
pub fn sgir_targets(nr_vcpus: usize, sender: usize, sgir: u32) -> (u32, VcpuMask) {
    let nr_vcpus = nr_vcpus.min(super::MAX_VCPUS);
    let intid = sgir & 0xF;
    if sender >= nr_vcpus {
        return (intid, 0);
    }
    let all: VcpuMask = (1 << nr_vcpus) - 1;
    let me: VcpuMask = 1 << sender;
    let targets = match (sgir >> 24) & 0x3 {
        0 => (sgir >> 16) & 0xFF,
        1 => all & !me,
        2 => me,
        _ => 0,
    };
    (intid, targets & all)
}

impl VgicDomain {
    /// `len` bytes of `ITARGETSR` starting at `intid`, as seen by `vcpu`.
    pub(crate) fn read_targets(&self, vcpu: usize, intid: u32, len: u8) -> u64 {
        (0..u32::from(len)).fold(0, |acc, i| {
            let id = intid + i;
            let target = if id < FIRST_SPI {
                // Each CPU reads its own interface's bit (how Linux learns its GIC CPU id).
                Some(vcpu).filter(|&v| v < self.nr_vcpus)
            } else {
                self.spi_route_target((id - FIRST_SPI) as usize)
            };
            acc | target.map_or(0, |v| 1u64 << v) << (8 * i)
        })
    }

    /// Writes `len` bytes of `ITARGETSR` starting at `intid`; returns the vCPUs that now
    /// have a rerouted pending SPI deliverable.
    pub(crate) fn write_targets(&mut self, intid: u32, len: u8, val: u64) -> VcpuMask {
        let existing: u64 = (1 << self.nr_vcpus) - 1;
        let mut kick = 0;
        for i in 0..u32::from(len) {
            let id = intid + i;
            // SGI/PPI targets are read-only; the lowest existing vCPU named wins.
            let mask = (val >> (8 * i)) & 0xFF & existing;
            let Some(spi) = id.checked_sub(FIRST_SPI) else {
                continue;
            };
            if mask == 0 {
                continue;
            }
            if let Some(route) = self.routes.get_mut(spi as usize) {
                // Aff0 = vCPU index: the same encoding GICD_IROUTER uses.
                *route = u64::from(mask.trailing_zeros());
                kick |= self.deliverable_mask(0, id);
            }
        }
        kick
    }

    /// `sender`'s write of `GICD_SGIR`; returns the vCPUs to kick.
    pub(crate) fn write_sgir(&mut self, sender: usize, val: u64) -> VcpuMask {
        let (intid, targets) = sgir_targets(self.nr_vcpus, sender, val as u32);
        self.pend_sgi(intid, targets)
    }
}
