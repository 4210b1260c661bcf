//! The microvisor's record of how long it held its global lock, and for what (issue 12):
//! what `CapOp::LockHolds` answers and `ctl info` shows.
//!
//! Every CPU takes the global lock for each exit its fast path cannot finish (a "locked
//! pass"); any other CPU whose exit needs the lock meanwhile waits for it. A CPU's longest
//! hold is therefore the longest such wait it has imposed on the others.

use crate::control::CapOp;
use crate::xen::Hypercall;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The immediate of a Xen hypercall's HVC.
const XEN_HVC_IMM: u32 = 0xea1;

/// The Xen hypercalls [`Reason`] counts apart.
const SCHED_OP: u64 = Hypercall::SchedOp as u64;
const EVENT_CHANNEL_OP: u64 = Hypercall::EventChannelOp as u64;
const GRANT_TABLE_OP: u64 = Hypercall::GrantTableOp as u64;

/// [`Pass::Async`]'s INTID when the fast path acknowledged none: the GIC's spurious INTID.
pub const NO_INTID: u16 = 1023;

/// How many distinct INTIDs each CPU counts its interrupt passes by ([`CpuHolds::by_intid`]).
pub const TRACKED_INTIDS: usize = 4;

/// What a locked pass was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pass {
    /// A synchronous exit of domain `domid`'s vCPU `vcpu` with syndrome `esr` and `x0`.
    Sync {
        /// The domain.
        domid: u16,
        /// Its vCPU.
        vcpu: u8,
        /// ESR_EL2 of the exit.
        esr: u32,
        /// The guest's `x0` (the function id of a call, a Xen hypercall's first argument).
        x0: u64,
        /// The guest's `x16` (a Xen hypercall's number).
        x16: u64,
        /// A data abort's faulting IPA (0 for other exits).
        ipa: u64,
    },
    /// An interrupt (or SError) exit of domain `domid`'s vCPU `vcpu`.
    Async {
        /// The domain.
        domid: u16,
        /// Its vCPU.
        vcpu: u8,
        /// The interrupt the fast path acknowledged and left to the lock, or [`NO_INTID`]
        /// (it took none: the exit needed the lock for its list registers, or an SError).
        intid: u16,
    },
    /// A scheduling decision with no exit to handle (after mail, or a bulk job).
    Schedule,
    /// Applying the finish steps of a bulk job (see the microvisor's `hyp::bulk`).
    BulkFinish,
    /// Interrupts that woke an idle CPU, and the scheduling decision they led to.
    Idle,
}

impl Pass {
    /// The pass serving capability call `op` (`HVC #0`) of domain `domid`'s vCPU `vcpu`.
    pub fn capability_call(domid: u16, vcpu: u8, op: crate::control::CapOp) -> Self {
        Self::Sync {
            domid,
            vcpu,
            // EC 0x16 (HVC from AArch64), IL set, immediate 0.
            esr: 0x5a00_0000,
            x0: u64::from(op.function_id()),
            x16: 0,
            ipa: 0,
        }
    }

    /// Every word [`Self::kind`] gives.
    pub const KINDS: [&'static str; 5] = ["exit", "interrupt", "scheduling", "bulk-finish", "idle"];

    /// What kind of pass it is, as one word (for JSON and scripts).
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Sync { .. } => Self::KINDS[0],
            Self::Async { .. } => Self::KINDS[1],
            Self::Schedule => Self::KINDS[2],
            Self::BulkFinish => Self::KINDS[3],
            Self::Idle => Self::KINDS[4],
        }
    }

    /// The domain and vCPU whose exit it served, if any.
    pub const fn vcpu(&self) -> Option<(u16, u8)> {
        match *self {
            Self::Sync { domid, vcpu, .. } | Self::Async { domid, vcpu, .. } => Some((domid, vcpu)),
            Self::Schedule | Self::BulkFinish | Self::Idle => None,
        }
    }
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Sync {
                domid,
                vcpu,
                esr,
                x0,
                x16,
                ipa,
            } => {
                write!(f, "d{domid} vCPU{vcpu} exit ESR {esr:#010x}")?;
                // The exit's words follow its reason (one classification for both).
                match self.reason() {
                    Reason::Wfi => f.write_str(" (WFI/WFE)"),
                    Reason::XenSchedOp
                    | Reason::XenEventChannelOp
                    | Reason::XenGrantTableOp
                    | Reason::XenOther => write!(f, " (Xen hypercall {x16} x0 {x0:#x})"),
                    Reason::CapabilityCall | Reason::OtherHvc => {
                        match CapOp::from_function_id(x0) {
                            Some(Ok(op)) => write!(f, " (capability call {op:?})"),
                            _ => write!(f, " (HVC x0 {x0:#x})"),
                        }
                    }
                    Reason::Smc => write!(f, " (SMC x0 {x0:#x})"),
                    Reason::SystemRegister => f.write_str(" (system register)"),
                    Reason::Mmio => write!(f, " (data abort: MMIO at {ipa:#x})"),
                    _ => Ok(()),
                }
            }
            Self::Async { domid, vcpu, intid } => {
                write!(
                    f,
                    "d{domid} vCPU{vcpu} interrupt exit ({})",
                    IntidWord(intid)
                )
            }
            Self::Schedule => f.write_str("scheduling"),
            Self::BulkFinish => f.write_str("finishing a bulk job"),
            Self::Idle => f.write_str("interrupts while idle"),
        }
    }
}

/// Why a locked pass was taken, coarsely: what each CPU's passes are counted by, so a
/// user can see which exits still take the global lock on a busy CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// A trapped WFI or WFE.
    Wfi,
    /// Xen `sched_op` (block, poll, yield, shutdown).
    XenSchedOp,
    /// Xen `event_channel_op`.
    XenEventChannelOp,
    /// Xen `grant_table_op`.
    XenGrantTableOp,
    /// Any other Xen hypercall.
    XenOther,
    /// A capability call (`HVC #0`).
    CapabilityCall,
    /// Any other HVC.
    OtherHvc,
    /// An SMC (PSCI).
    Smc,
    /// A trapped system-register access.
    SystemRegister,
    /// A data abort: an emulated or trapped device access.
    Mmio,
    /// Any other synchronous exit.
    OtherExit,
    /// An interrupt or SError exit.
    Interrupt,
    /// A scheduling decision with no exit to handle.
    Scheduling,
    /// Finishing a bulk job.
    BulkFinish,
    /// Interrupts that woke an idle CPU.
    Idle,
}

impl Reason {
    /// How many there are.
    pub const COUNT: usize = 15;

    /// Every reason, in the order of [`CpuHolds::by_reason`].
    pub const ALL: [Self; Self::COUNT] = [
        Self::Wfi,
        Self::XenSchedOp,
        Self::XenEventChannelOp,
        Self::XenGrantTableOp,
        Self::XenOther,
        Self::CapabilityCall,
        Self::OtherHvc,
        Self::Smc,
        Self::SystemRegister,
        Self::Mmio,
        Self::OtherExit,
        Self::Interrupt,
        Self::Scheduling,
        Self::BulkFinish,
        Self::Idle,
    ];

    /// Its word, for `ctl info` and JSON.
    pub const fn word(self) -> &'static str {
        match self {
            Self::Wfi => "wfi",
            Self::XenSchedOp => "xen-sched-op",
            Self::XenEventChannelOp => "xen-event-channel-op",
            Self::XenGrantTableOp => "xen-grant-table-op",
            Self::XenOther => "xen-other",
            Self::CapabilityCall => "capability-call",
            Self::OtherHvc => "hvc",
            Self::Smc => "smc",
            Self::SystemRegister => "system-register",
            Self::Mmio => "mmio",
            Self::OtherExit => "other-exit",
            Self::Interrupt => "interrupt",
            Self::Scheduling => "scheduling",
            Self::BulkFinish => "bulk-finish",
            Self::Idle => "idle",
        }
    }
}

impl Pass {
    /// Why it was taken (see [`Reason`]).
    pub const fn reason(&self) -> Reason {
        match *self {
            Self::Sync { esr, x16, .. } => match esr >> 26 {
                0x01 => Reason::Wfi,
                0x16 if esr & 0xffff == XEN_HVC_IMM => match x16 {
                    SCHED_OP => Reason::XenSchedOp,
                    EVENT_CHANNEL_OP => Reason::XenEventChannelOp,
                    GRANT_TABLE_OP => Reason::XenGrantTableOp,
                    _ => Reason::XenOther,
                },
                0x16 if esr & 0xffff == 0 => Reason::CapabilityCall,
                0x16 => Reason::OtherHvc,
                0x17 => Reason::Smc,
                0x18 => Reason::SystemRegister,
                0x24 => Reason::Mmio,
                _ => Reason::OtherExit,
            },
            Self::Async { .. } => Reason::Interrupt,
            Self::Schedule => Reason::Scheduling,
            Self::BulkFinish => Reason::BulkFinish,
            Self::Idle => Reason::Idle,
        }
    }
}

/// One hold of the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// How long, in nanoseconds (counter ticks converted, rounded down).
    pub ns: u64,
    /// What for.
    pub pass: Pass,
}

impl Hold {
    /// Its length in whole microseconds (rounded down, as the microvisor's log prints it).
    pub const fn us(&self) -> u64 {
        self.ns / 1000
    }
}

/// An INTID as `ctl info` words it: `INTID 78`, or `no INTID` for [`NO_INTID`].
pub struct IntidWord(pub u16);

impl fmt::Display for IntidWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            NO_INTID => f.write_str("no INTID"),
            n => write!(f, "INTID {n}"),
        }
    }
}

/// Interrupt passes ([`Reason::Interrupt`]) of one INTID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntidPasses {
    /// The INTID ([`NO_INTID`]: none acknowledged).
    pub intid: u16,
    /// Passes for it (0: the entry is unused).
    pub passes: u64,
}

impl IntidPasses {
    /// An unused entry.
    pub const UNUSED: Self = Self {
        intid: 0,
        passes: 0,
    };

    /// Counts an interrupt pass for `intid` in `table`: in its entry, or the first unused
    /// one; once every entry has an INTID, others are counted only under the reason.
    pub fn count(table: &mut [Self], intid: u16) {
        let entry = match table.iter().position(|e| e.passes != 0 && e.intid == intid) {
            Some(i) => table.get_mut(i),
            None => table.iter_mut().find(|e| e.passes == 0),
        };
        if let Some(e) = entry {
            e.intid = intid;
            e.passes = e.passes.saturating_add(1);
        }
    }
}

/// One physical CPU's locked passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuHolds {
    /// The physical CPU (order of the host DT's cpu nodes).
    pub cpu: u16,
    /// Locked passes it made.
    pub passes: u64,
    /// Its longest (`None` before its first pass).
    pub longest: Option<Hold>,
    /// Its passes by [`Reason`] (indexed as [`Reason::ALL`]).
    pub by_reason: [u64; Reason::COUNT],
    /// Its interrupt passes by INTID, for the first [`TRACKED_INTIDS`] INTIDs it had
    /// (unused entries have no passes).
    pub by_intid: [IntidPasses; TRACKED_INTIDS],
    /// Its longest wait for the lock, with the pass it was waiting to make (`None` before
    /// its first pass): what the other CPUs' holds cost it.
    pub longest_wait: Option<Hold>,
    /// All its waits for the lock together, in nanoseconds.
    pub waited_ns: u64,
}

impl CpuHolds {
    /// Its interrupt passes by INTID, most first, and how many were of INTIDs not tracked.
    pub fn intids(&self) -> (Vec<IntidPasses>, u64) {
        let mut used: Vec<IntidPasses> = self
            .by_intid
            .iter()
            .copied()
            .filter(|e| e.passes != 0)
            .collect();
        used.sort_by_key(|e| core::cmp::Reverse(e.passes));
        let tracked = used.iter().fold(0u64, |n, e| n.saturating_add(e.passes));
        let all = self.by_reason[Reason::Interrupt as usize];
        (used, all.saturating_sub(tracked))
    }

    /// Its passes for each reason that had any, most first (ties in [`Reason::ALL`]'s order).
    pub fn reasons(&self) -> Vec<(Reason, u64)> {
        let mut r: Vec<(Reason, u64)> = Reason::ALL
            .iter()
            .zip(self.by_reason)
            .filter(|(_, n)| *n != 0)
            .map(|(r, n)| (*r, n))
            .collect();
        r.sort_by_key(|e| core::cmp::Reverse(e.1));
        r
    }
}

/// `CapOp::LockHolds`' reply: the record since boot, or since it was last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolds {
    /// Each CPU that made a locked pass, in CPU order.
    pub cpus: Vec<CpuHolds>,
    /// The record was reset (`CapOp::LockHolds` with `x1` = 1) since boot.
    pub since_reset: bool,
}

impl LockHolds {
    /// Locked passes of all CPUs together.
    pub fn passes(&self) -> u64 {
        self.cpus.iter().fold(0, |n, c| n.saturating_add(c.passes))
    }

    /// The longest hold of any CPU, with its CPU (the first CPU's on a tie).
    pub fn longest(&self) -> Option<(u16, Hold)> {
        self.cpus
            .iter()
            .filter_map(|c| Some((c.cpu, c.longest?)))
            .reduce(|a, b| if b.1.ns > a.1.ns { b } else { a })
    }
}

#[cfg(test)]
#[path = "lock_holds_tests.rs"]
mod tests;
