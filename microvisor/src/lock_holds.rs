//! How long the global lock was held, and by what: the microvisor's own measurement of its
//! worst lock hold (issue 12). Every CPU spends a locked pass for each exit the fast path
//! cannot finish, and every other CPU's locked exit waits for it; a pinned RTOS's deadlines
//! are only as good as the longest such pass.
//!
//! The run loop notes each pass's length in counter ticks and what it was for ([`Pass`]),
//! under the lock: a comparison or two and, rarely, a store. Two kinds of line are logged
//! ([`Line`]), few enough not to crowd the console history (16 KiB, which tests and
//! `ctl dmesg` read back):
//! - a new system-wide longest hold of at least [`REPORT_FLOOR_US`] that at least doubles
//!   the last one reported (a handful per boot);
//! - when a domain's build completes (its memory loaded), the longest hold the building
//!   CPU made since that build began ([`Record::build_began`], [`Record::build_done`]):
//!   what building it (and that CPU's other work meanwhile) cost the other CPUs. One line
//!   per build, the phase the issue is about.
//!
//! The microvisor aims to hold the lock for at most [`BUDGET_US`] at a time.

use core::fmt;
use protocol::control::CapOp;

/// The immediate of a Xen hypercall's HVC.
const XEN_HVC_IMM: u32 = 0xea1;

/// Holds shorter than this are never logged (but still recorded).
pub const REPORT_FLOOR_US: u64 = 20;

/// The longest hold the microvisor means to allow itself.
pub const BUDGET_US: u64 = 100;

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
    /// The CPU that began the last build and its longest hold since (`None` before one).
    window: Option<(usize, Hold)>,
    /// The shortest hold worth a line (in ticks): the floor, or twice the longest reported
    /// so far. Kept ready, as every locked pass compares against it.
    threshold: u64,
    /// [`REPORT_FLOOR_US`] in ticks.
    floor: u64,
    /// Ticks per second.
    counter_hz: u64,
}

impl<const CPUS: usize> Record<CPUS> {
    /// Nothing recorded yet; the counter runs at `counter_hz`.
    pub const fn new(counter_hz: u64) -> Self {
        Self {
            per_cpu: [None; CPUS],
            window: None,
            threshold: floor_ticks(counter_hz),
            floor: floor_ticks(counter_hz),
            counter_hz,
        }
    }

    /// Notes a pass of `ticks` on `cpu`; the line to log about it, if it is a new longest
    /// worth one (see the module docs).
    pub fn note(&mut self, cpu: usize, ticks: u64, pass: Pass) -> Option<Line> {
        let slot = self.per_cpu.get_mut(cpu)?;
        let hold = Hold { ticks, pass };
        if slot.is_none_or(|h| h.ticks < ticks) {
            *slot = Some(hold);
        }
        if let Some((c, h)) = &mut self.window {
            if *c == cpu && h.ticks < ticks {
                *h = hold;
            }
        }
        if ticks < self.threshold {
            return None;
        }
        self.threshold = ticks.saturating_mul(2).max(self.floor);
        Some(self.line(cpu, hold, Why::Longest))
    }

    /// `cpu` began a domain build (under the lock, in the pass that builds it): the window
    /// of [`Self::build_done`] starts again, for that CPU's holds, this pass included.
    pub fn build_began(&mut self, cpu: usize) {
        self.window = Some((
            cpu,
            Hold {
                ticks: 0,
                pass: Pass::Schedule,
            },
        ));
    }

    /// Domain `domid`'s build completed: the line for the longest hold its builder made
    /// since the last build began, if it reached the floor.
    pub fn build_done(&mut self, domid: u16) -> Option<Line> {
        let (cpu, hold) = self.window?;
        (hold.ticks >= self.floor).then(|| self.line(cpu, hold, Why::Build(domid)))
    }

    fn line(&self, cpu: usize, hold: Hold, why: Why) -> Line {
        Line {
            us: self.micros(hold.ticks),
            cpu,
            pass: hold.pass,
            why,
        }
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

/// [`REPORT_FLOOR_US`] in ticks of a counter running at `counter_hz`.
const fn floor_ticks(counter_hz: u64) -> u64 {
    REPORT_FLOOR_US.saturating_mul(counter_hz) / 1_000_000
}

/// Why a hold is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// A new longest since boot.
    Longest,
    /// The longest while domain `n` was being built (from its build to its load).
    Build(u16),
}

/// A hold worth a log line: `HYP held N us on cpuC: what`, then why it is logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// Its length in microseconds.
    pub us: u64,
    /// The CPU that held the lock.
    pub cpu: usize,
    /// What for.
    pub pass: Pass,
    /// Why it is logged.
    pub why: Why,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HYP held {} us on cpu{}: {}",
            self.us, self.cpu, self.pass
        )?;
        match self.why {
            Why::Longest => f.write_str(" (longest yet)"),
            Why::Build(d) => write!(f, " (longest while d{d} was built)"),
        }
    }
}

#[cfg(test)]
#[path = "lock_holds_tests.rs"]
mod tests;
