//! Diagnostics for guests that program the emulated GIC in a way that cannot deliver
//! interrupts on a GIC (or, for the CPU interface, cannot deliver them here either): the
//! model notes each kind once per domain and the caller prints it, so a guest that waits
//! forever for an interrupt leaves one line in the log saying why.
//!
//! Invariants: each [`VgicWarning`] kind is raised at most once per [`super::VgicDomain`]
//! (a restarted domain gets a new one, so it may warn again); raising never changes what
//! is delivered; taking a warning only clears it from the queue, not from the
//! "already reported" set.

use core::fmt;

use super::GicVersion;
use protocol::layout::MAX_VCPUS;

/// Number of warning kinds.
const KINDS: usize = 5;

/// `ICH_VMCR_EL2.VENG0`: on a GICv2 guest, its `GICC_CTLR.EnableGrp0` (`GICH_VMCR` has
/// VMGrp0En at the same bit, and its VMPriMask [31:27] where `VPMR` [31:24] has the same
/// top bits, so a `GICH_VMCR` value can be passed as it is).
pub const VMCR_VENG0: u64 = 1 << 0;
/// `ICH_VMCR_EL2.VENG1`: the guest's `ICC_IGRPEN1_EL1`.
pub const VMCR_VENG1: u64 = 1 << 1;
/// Shift of `ICH_VMCR_EL2.VPMR`: the guest's `ICC_PMR_EL1`.
pub const VMCR_VPMR_SHIFT: u32 = 24;
/// `GICD_CTLR.EnableGrp1S` of the Secure view, which a Secure-world kernel sets.
const SECURE_GROUP1_ENABLE: u32 = 1 << 2;

/// One way a guest's interrupt-controller setup keeps interrupts from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VgicWarning {
    /// The guest wrote 0 to an `IGROUPR` bit, asking for Group 0 (as a kernel built for the
    /// Secure world does). A non-secure guest has no Group 0: the write is ignored and the
    /// interrupt stays Group 1, as on Xen.
    Group0Requested {
        /// First INTID the write tried to move to Group 0.
        intid: u32,
    },
    /// An interrupt was delivered while `GICD_CTLR.EnableGrp1` was off (`ctlr` is the value
    /// the guest last wrote). A GIC would hold it; Bulkhead delivers it, as Xen does.
    DistributorGroupOff {
        /// The interrupt delivered.
        intid: u32,
        /// The guest's last `GICD_CTLR` write.
        ctlr: u32,
    },
    /// An SGI or PPI was delivered to a vCPU whose redistributor the guest left asleep
    /// (`GICR_WAKER.ProcessorSleep` = 1). A GIC would hold it; Bulkhead delivers it.
    RedistributorAsleep {
        /// The vCPU.
        vcpu: usize,
        /// The interrupt delivered.
        intid: u32,
    },
    /// A vCPU waits for interrupts (WFI) with `ICC_IGRPEN1_EL1` = 0: none can reach it.
    CpuInterfaceOff {
        /// The vCPU.
        vcpu: usize,
    },
    /// GICv2: an interrupt was delivered while `GICD_CTLR.EnableGrp0` (the group of every
    /// GICv2 guest interrupt) was off. A GIC would hold it; Bulkhead delivers it, as Xen
    /// does.
    DistributorDisabled {
        /// The interrupt delivered.
        intid: u32,
        /// The guest's last `GICD_CTLR` write.
        ctlr: u32,
    },
    /// GICv2: a vCPU waits for interrupts (WFI) with `GICC_CTLR.EnableGrp0` = 0: none can
    /// reach it.
    CpuInterfaceGroup0Off {
        /// The vCPU.
        vcpu: usize,
    },
    /// A vCPU waits for interrupts (WFI) while its priority mask (`ICC_PMR_EL1`) masks
    /// every interrupt it has enabled: none can reach it.
    PriorityMasked {
        /// The vCPU.
        vcpu: usize,
        /// The guest's priority mask.
        pmr: u8,
        /// The most urgent priority among its enabled interrupts.
        best: u8,
    },
}

impl VgicWarning {
    fn kind(self) -> usize {
        match self {
            Self::Group0Requested { .. } => 0,
            Self::DistributorGroupOff { .. } | Self::DistributorDisabled { .. } => 1,
            Self::RedistributorAsleep { .. } => 2,
            Self::CpuInterfaceOff { .. } | Self::CpuInterfaceGroup0Off { .. } => {
                Diagnostics::kind_of_cpu_off()
            }
            Self::PriorityMasked { .. } => Diagnostics::kind_of_masked(),
        }
    }
}

impl fmt::Display for VgicWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Group0Requested { intid } => write!(
                f,
                "vGIC: the guest puts interrupts in Group 0 (IGROUPR bit of INTID {intid} \
                 written 0), as a Secure-world kernel does; a non-secure guest has only \
                 Group 1, so they stay in Group 1 (as on Xen)"
            ),
            Self::DistributorGroupOff { intid, ctlr } => {
                write!(
                    f,
                    "vGIC: INTID {intid} delivered while GICD_CTLR.EnableGrp1 (bit 1) is off \
                     (GICD_CTLR last written {ctlr:#x}"
                )?;
                if ctlr & SECURE_GROUP1_ENABLE != 0 {
                    f.write_str("; its bit 2, EnableGrp1S, exists only in the Secure world")?;
                }
                f.write_str("); a GIC would never deliver it, Bulkhead delivers it as Xen does")
            }
            Self::RedistributorAsleep { vcpu, intid } => write!(
                f,
                "vGIC: INTID {intid} delivered to vCPU {vcpu} whose redistributor is asleep \
                 (GICR_WAKER.ProcessorSleep = 1); a GIC would never deliver it, Bulkhead \
                 delivers it as Xen does"
            ),
            Self::CpuInterfaceOff { vcpu } => write!(
                f,
                "vGIC: vCPU {vcpu} waits for interrupts with ICC_IGRPEN1_EL1 = 0; no \
                 interrupt will ever reach it"
            ),
            Self::DistributorDisabled { intid, ctlr } => write!(
                f,
                "vGIC: INTID {intid} delivered while GICD_CTLR.EnableGrp0 (bit 0) is off \
                 (GICD_CTLR last written {ctlr:#x}); every interrupt of a GICv2 guest is in \
                 Group 0, so a GIC would never deliver it; Bulkhead delivers it as Xen does"
            ),
            Self::CpuInterfaceGroup0Off { vcpu } => write!(
                f,
                "vGIC: vCPU {vcpu} waits for interrupts with GICC_CTLR.EnableGrp0 = 0 (its \
                 GICv2 interrupts are all Group 0); no interrupt will ever reach it"
            ),
            Self::PriorityMasked { vcpu, pmr, best } => write!(
                f,
                "vGIC: vCPU {vcpu} waits for interrupts with ICC_PMR_EL1 = {pmr:#x}, which \
                 masks all it has enabled (most urgent priority {best:#x}); none will reach it"
            ),
        }
    }
}

/// Warnings raised and not yet handed out, the kinds ever raised, and what the wait check
/// last found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Diagnostics {
    queued: [Option<VgicWarning>; KINDS],
    reported: u8,
    /// Counts the guest's register writes ([`Self::config_written`]): what the wait check
    /// computes from the configuration is valid while this has not moved.
    config_gen: u64,
    /// Per vCPU, the most urgent enabled priority the wait check found and the
    /// `config_gen` it found it at (0: never). Without it every trapped WFI of a shared
    /// vCPU scanned all [`super::NR_IRQS`] interrupts (2,215 instructions, half of that
    /// exit), for a configuration that changes a few times per boot.
    wait_best: [(u64, Option<u8>); MAX_VCPUS],
}

impl Diagnostics {
    /// Nothing raised yet.
    pub const NONE: Self = Self {
        queued: [None; KINDS],
        reported: 0,
        config_gen: 1,
        wait_best: [(0, None); MAX_VCPUS],
    };

    /// The guest wrote a vGIC register: enables, priorities and routes may have changed.
    pub fn config_written(&mut self) {
        self.config_gen = self.config_gen.wrapping_add(1).max(1);
    }

    /// Queues `w` unless its kind was raised before.
    pub fn raise(&mut self, w: VgicWarning) {
        let kind = w.kind();
        if self.reported & (1 << kind) == 0 {
            self.reported |= 1 << kind;
            if let Some(slot) = self.queued.get_mut(kind) {
                *slot = Some(w);
            }
        }
    }

    /// Whether both WFI-time kinds were raised already, so the scan can be skipped.
    pub fn wait_checks_done(&self) -> bool {
        let both = (1 << Self::kind_of_cpu_off()) | (1 << Self::kind_of_masked());
        self.reported & both == both
    }

    const fn kind_of_cpu_off() -> usize {
        3
    }

    const fn kind_of_masked() -> usize {
        4
    }

    /// Whether something waits to be taken.
    pub fn any_queued(&self) -> bool {
        self.queued.iter().any(Option::is_some)
    }

    /// Hands out one queued warning.
    pub fn take(&mut self) -> Option<VgicWarning> {
        self.queued.iter_mut().find_map(Option::take)
    }
}

impl super::VgicDomain {
    /// Hands out one warning raised since the last call; each kind is raised at most once
    /// per domain, so printing whatever this returns is already rate-limited.
    pub fn take_warning(&mut self) -> Option<VgicWarning> {
        self.diag.take()
    }

    /// Whether [`Self::take_warning`] has something (a cheap test for the exit path).
    pub fn has_warning(&self) -> bool {
        self.diag.any_queued()
    }

    /// `vcpu` is about to block in WFI with `vmcr` (its `ICH_VMCR_EL2`, or on a GICv2 its
    /// `GICH_VMCR`, same bit positions for what is used here) and nothing deliverable: if it
    /// has interrupts enabled but its CPU interface cannot take any of them (their group
    /// disabled, or every one masked by its priority mask), it will wait forever; raise
    /// that once.
    pub fn note_wait(&mut self, vcpu: usize, vmcr: u64) {
        if self.diag.wait_checks_done() {
            return;
        }
        let Some(best) = self.wait_best(vcpu) else {
            // Nothing enabled: it waits for something else (a kick, PSCI), not for us.
            return;
        };
        let (enable, off) = match self.version {
            GicVersion::V3 => (VMCR_VENG1, VgicWarning::CpuInterfaceOff { vcpu }),
            GicVersion::V2 => (VMCR_VENG0, VgicWarning::CpuInterfaceGroup0Off { vcpu }),
        };
        if vmcr & enable == 0 {
            self.diag.raise(off);
            return;
        }
        let pmr = (vmcr >> VMCR_VPMR_SHIFT) as u8;
        // The CPU interface signals an interrupt only if its priority is higher (a lower
        // value) than the mask.
        if best >= pmr {
            self.diag
                .raise(VgicWarning::PriorityMasked { vcpu, pmr, best });
        }
    }

    /// Called as `intid` is handed to `vcpu`'s list registers: notes deliveries a GIC would
    /// have held back under the guest's configuration.
    pub(crate) fn note_delivery(&mut self, vcpu: usize, intid: u32) {
        let ctlr = self.ctlr;
        match self.version {
            GicVersion::V3 if ctlr & super::regs::CTLR_ENABLE_G1A == 0 => {
                self.diag
                    .raise(VgicWarning::DistributorGroupOff { intid, ctlr });
            }
            GicVersion::V2 if ctlr & super::regs::CTLR_V2_ENABLE_G0 == 0 => {
                self.diag
                    .raise(VgicWarning::DistributorDisabled { intid, ctlr });
            }
            _ => {}
        }
        // A GICv2 has no redistributors to leave asleep.
        let asleep = self.version == GicVersion::V3
            && self
                .waker
                .get(vcpu)
                .is_some_and(|w| w & super::state::WAKER_PROCESSOR_SLEEP != 0);
        if intid < super::FIRST_SPI && asleep {
            self.diag
                .raise(VgicWarning::RedistributorAsleep { vcpu, intid });
        }
    }

    /// [`Self::best_enabled_priority`], rescanned only after a register write.
    fn wait_best(&mut self, vcpu: usize) -> Option<u8> {
        let gen = self.diag.config_gen;
        if let Some(&(at, best)) = self.diag.wait_best.get(vcpu) {
            if at == gen {
                return best;
            }
        }
        let best = self.best_enabled_priority(vcpu);
        if let Some(slot) = self.diag.wait_best.get_mut(vcpu) {
            *slot = (gen, best);
        }
        best
    }

    /// The most urgent priority among the interrupts `vcpu` could receive if they fired:
    /// its enabled SGIs/PPIs and the enabled SPIs routed there. Routed, not held: an SPI
    /// active on another vCPU goes back to its route once finished, and only register
    /// writes change routes, which keeps [`Self::wait_best`]'s cache exact.
    fn best_enabled_priority(&self, vcpu: usize) -> Option<u8> {
        let private = (0..super::FIRST_SPI).filter(|_| vcpu < self.nr_vcpus);
        let spis = (super::FIRST_SPI..super::NR_IRQS as u32).filter(|&intid| {
            self.spi_route_target((intid - super::FIRST_SPI) as usize) == Some(vcpu)
        });
        private
            .chain(spis)
            .filter_map(|intid| self.enabled_priority(vcpu, intid))
            .min()
    }
}
