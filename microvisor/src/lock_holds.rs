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
//!
//! Each CPU's pass count (in all, by [`Reason`], and its interrupt passes by INTID) and
//! longest hold are what management
//! shows (`ctl info`, through `CapOp::LockHolds` and [`Record::summary`]), since boot or
//! since the user last reset them ([`Record::reset`]); the log lines above stay since boot.

use alloc::vec::Vec;
use core::fmt;
use protocol::lock_holds::{CpuHolds, IntidPasses, LockHolds, TRACKED_INTIDS};
pub use protocol::lock_holds::{Pass, Reason, NO_INTID};

/// Holds shorter than this are never logged (but still recorded).
pub const REPORT_FLOOR_US: u64 = 20;

/// The longest hold the microvisor means to allow itself.
pub const BUDGET_US: u64 = 100;

/// One hold of the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Its length in counter ticks.
    pub ticks: u64,
    /// What it was for.
    pub pass: Pass,
}

/// One CPU's locked passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuRecord {
    /// Its longest hold (`None` before its first pass).
    pub longest: Option<Hold>,
    /// How many passes it made.
    pub passes: u64,
    /// Its passes by [`Reason`] (indexed as [`Reason::ALL`]).
    pub by_reason: [u64; Reason::COUNT],
    /// Its interrupt passes by INTID (the first [`TRACKED_INTIDS`] it had).
    pub by_intid: [IntidPasses; TRACKED_INTIDS],
    /// Its longest wait for the lock (in ticks) and the pass it waited to make.
    pub longest_wait: Option<Hold>,
    /// All its waits together, in ticks.
    pub waited: u64,
}

impl CpuRecord {
    /// No pass yet.
    const EMPTY: Self = Self {
        longest: None,
        passes: 0,
        by_reason: [0; Reason::COUNT],
        by_intid: [IntidPasses::UNUSED; TRACKED_INTIDS],
        longest_wait: None,
        waited: 0,
    };
}

/// The longest holds seen, per CPU, and what has been reported.
#[derive(Debug)]
pub struct Record<const CPUS: usize> {
    /// Per CPU, its passes and longest hold (since boot or the last [`Self::reset`]).
    pub per_cpu: [CpuRecord; CPUS],
    /// [`Self::reset`] was called since boot.
    was_reset: bool,
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
            per_cpu: [CpuRecord::EMPTY; CPUS],
            was_reset: false,
            window: None,
            threshold: floor_ticks(counter_hz),
            floor: floor_ticks(counter_hz),
            counter_hz,
        }
    }

    /// Notes a pass of `ticks` on `cpu`, which waited `waited` ticks for the lock first;
    /// the line to log about it, if it is a new longest hold worth one (see the module
    /// docs). Waits are recorded, never logged: a long one is another CPU's long hold,
    /// which is.
    pub fn note(&mut self, cpu: usize, ticks: u64, waited: u64, pass: Pass) -> Option<Line> {
        let slot = self.per_cpu.get_mut(cpu)?;
        let hold = Hold { ticks, pass };
        slot.waited = slot.waited.saturating_add(waited);
        if slot.longest_wait.is_none_or(|w| w.ticks < waited) {
            slot.longest_wait = Some(Hold {
                ticks: waited,
                pass,
            });
        }
        slot.passes = slot.passes.wrapping_add(1);
        if let Some(n) = slot.by_reason.get_mut(pass.reason() as usize) {
            *n = n.wrapping_add(1);
        }
        if let Pass::Async { intid, .. } = pass {
            IntidPasses::count(&mut slot.by_intid, intid);
        }
        if slot.longest.is_none_or(|h| h.ticks < ticks) {
            slot.longest = Some(hold);
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
            .filter_map(|(cpu, c)| Some((cpu, c.longest?)))
            .max_by_key(|(_, h)| h.ticks)
    }

    /// What management shows: each CPU that made a locked pass, its count and its longest
    /// hold in nanoseconds.
    pub fn summary(&self) -> LockHolds {
        let cpus: Vec<CpuHolds> = self
            .per_cpu
            .iter()
            .enumerate()
            .filter(|(_, c)| c.passes != 0)
            .map(|(cpu, c)| CpuHolds {
                cpu: u16::try_from(cpu).unwrap_or(u16::MAX),
                passes: c.passes,
                by_reason: c.by_reason,
                by_intid: c.by_intid,
                longest: c.longest.map(|h| protocol::lock_holds::Hold {
                    ns: self.nanos(h.ticks),
                    pass: h.pass,
                }),
                longest_wait: c.longest_wait.map(|h| protocol::lock_holds::Hold {
                    ns: self.nanos(h.ticks),
                    pass: h.pass,
                }),
                waited_ns: self.nanos(c.waited),
            })
            .collect();
        LockHolds {
            cpus,
            since_reset: self.was_reset,
        }
    }

    /// Starts the per-CPU record again (a user's reset). What is logged is unchanged: a
    /// line still needs a new longest since boot, and a build in progress keeps its window.
    pub fn reset(&mut self) {
        for c in &mut self.per_cpu {
            *c = CpuRecord::EMPTY;
        }
        self.was_reset = true;
    }

    /// `ticks` in microseconds (rounded down).
    pub fn micros(&self, ticks: u64) -> u64 {
        self.per_second(ticks, 1_000_000)
    }

    /// `ticks` in nanoseconds (rounded down; saturating).
    pub fn nanos(&self, ticks: u64) -> u64 {
        self.per_second(ticks, 1_000_000_000)
    }

    /// `ticks` in units of which there are `units` per second (0 for an unknown frequency).
    fn per_second(&self, ticks: u64, units: u64) -> u64 {
        if self.counter_hz == 0 {
            return 0;
        }
        let n = u128::from(ticks) * u128::from(units) / u128::from(self.counter_hz);
        u64::try_from(n).unwrap_or(u64::MAX)
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
