//! How long the global lock was held, and by what: the microvisor's own measurement of its
//! worst lock hold (issue 12). Every CPU spends a locked pass for each exit the fast path
//! cannot finish, and every other CPU's locked exit waits for it; a pinned RTOS's deadlines
//! are only as good as the longest such pass.
//!
//! The run loop notes each pass's length in counter ticks and what it was for ([`Pass`]),
//! under the lock: a comparison and, rarely, a store. Two kinds of hold are logged
//! ([`Line`]), so the console and `ctl log` show the long ones as they happen: a new
//! system-wide record of at least [`REPORT_FLOOR_US`] that beats the last one reported by a
//! quarter (a few lines at boot, not one per pass), and any hold over [`BUDGET_US`] (at
//! most [`OVER_BUDGET_RATE`] a second, after a burst, so a regression cannot flood the log).

use crate::ratelimit::TokenBucket;
use core::fmt;
use protocol::control::CapOp;

/// The immediate of a Xen hypercall's HVC.
const XEN_HVC_IMM: u32 = 0xea1;

/// Holds shorter than this are never logged (but still recorded).
pub const REPORT_FLOOR_US: u64 = 20;

/// The longest hold the microvisor means to allow itself: every hold over it is logged.
pub const BUDGET_US: u64 = 100;

/// Over-budget lines per second at most, after a burst of [`OVER_BUDGET_BURST`].
pub const OVER_BUDGET_RATE: u64 = 2;
/// See [`OVER_BUDGET_RATE`].
pub const OVER_BUDGET_BURST: u64 = 16;

/// What a locked pass was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    },
    /// A scheduling decision with no exit to handle (after mail, or a bulk job).
    Schedule,
    /// Applying the finish steps of a bulk job (see `hyp::bulk`).
    BulkFinish,
    /// Interrupts taken while the CPU was idle.
    Idle,
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
                match esr >> 26 {
                    0x01 => f.write_str(" (WFI/WFE)"),
                    0x16 if esr & 0xffff == XEN_HVC_IMM => {
                        write!(f, " (Xen hypercall {x16} x0 {x0:#x})")
                    }
                    0x16 => match CapOp::from_function_id(x0) {
                        Some(Ok(op)) => write!(f, " (capability call {op:?})"),
                        _ => write!(f, " (HVC x0 {x0:#x})"),
                    },
                    0x17 => write!(f, " (SMC x0 {x0:#x})"),
                    0x18 => f.write_str(" (system register)"),
                    0x24 => write!(f, " (data abort: MMIO at {ipa:#x})"),
                    _ => Ok(()),
                }
            }
            Self::Async { domid, vcpu } => write!(f, "d{domid} vCPU{vcpu} interrupt exit"),
            Self::Schedule => f.write_str("scheduling"),
            Self::BulkFinish => f.write_str("finishing a bulk job"),
            Self::Idle => f.write_str("interrupts while idle"),
        }
    }
}

/// One CPU's longest hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Its length in counter ticks.
    pub ticks: u64,
    /// What it was for.
    pub pass: Pass,
}

/// The longest holds seen, per CPU, and what has been reported.
#[derive(Debug)]
pub struct Record<const CPUS: usize> {
    /// Per CPU, its longest hold (`None` before its first pass).
    pub per_cpu: [Option<Hold>; CPUS],
    /// The longest hold reported so far, in ticks.
    reported: u64,
    /// Ticks per second.
    counter_hz: u64,
    /// Paces the over-budget lines.
    over_budget: TokenBucket,
}

impl<const CPUS: usize> Record<CPUS> {
    /// Nothing recorded yet; the counter runs at `counter_hz`.
    pub const fn new(counter_hz: u64) -> Self {
        Self {
            per_cpu: [None; CPUS],
            reported: 0,
            counter_hz,
            over_budget: TokenBucket::new(OVER_BUDGET_RATE, OVER_BUDGET_BURST),
        }
    }

    /// Notes a pass of `ticks` on `cpu` ending at counter value `now`; the line to log
    /// about it, if it is worth one (see the module docs).
    pub fn note(&mut self, cpu: usize, ticks: u64, pass: Pass, now: u64) -> Option<Line> {
        let slot = self.per_cpu.get_mut(cpu)?;
        let floor = REPORT_FLOOR_US.saturating_mul(self.counter_hz) / 1_000_000;
        if ticks < floor {
            // The common case: nothing to record worth a line, and nothing over budget.
            if slot.is_none_or(|h| h.ticks < ticks) {
                *slot = Some(Hold { ticks, pass });
            }
            return None;
        }
        if slot.is_none_or(|h| h.ticks < ticks) {
            *slot = Some(Hold { ticks, pass });
        }
        let bar = self.reported.saturating_add(self.reported / 4).max(floor);
        let record = ticks >= bar;
        let over = self.micros(ticks) > BUDGET_US;
        if record {
            self.reported = ticks;
        } else if !over || !self.over_budget.allow(now, self.counter_hz) {
            return None;
        }
        Some(Line {
            us: self.micros(ticks),
            cpu,
            pass,
            record,
        })
    }

    /// The longest hold of any CPU, with its CPU.
    pub fn longest(&self) -> Option<(usize, Hold)> {
        self.per_cpu
            .iter()
            .enumerate()
            .filter_map(|(cpu, h)| Some((cpu, (*h)?)))
            .max_by_key(|(_, h)| h.ticks)
    }

    /// `ticks` in microseconds (rounded down).
    pub fn micros(&self, ticks: u64) -> u64 {
        if self.counter_hz == 0 {
            return 0;
        }
        (u128::from(ticks) * 1_000_000 / u128::from(self.counter_hz)) as u64
    }
}

/// A hold worth a log line: `HYP held N us on cpuC: what`, then `(longest yet)` if it is
/// a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// Its length in microseconds.
    pub us: u64,
    /// The CPU that held the lock.
    pub cpu: usize,
    /// What for.
    pub pass: Pass,
    /// Whether it is a new system-wide record.
    pub record: bool,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HYP held {} us on cpu{}: {}",
            self.us, self.cpu, self.pass
        )?;
        if self.record {
            f.write_str(" (longest yet)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "lock_holds_tests.rs"]
mod tests;
