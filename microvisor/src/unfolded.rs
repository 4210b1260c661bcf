//! A CPU's running counts for the vCPU it has loaded, published without the global lock.
//!
//! A CPU that runs a vCPU on its fast path keeps the vCPU's exits, injected interrupts and
//! CPU time in its private `Local` and hands them to the domain record only when it next
//! takes the global lock. A vCPU that keeps waiting out its own WFIs at EL2 may not take
//! the lock for minutes, and `ctl list`/`vcpu-list` read the record under the lock, so the
//! CPU used to take the lock every 100 ms just to hand its counts over. Instead it now
//! stores a snapshot of them here every 100 ms ([`Unfolded::publish`]), and a listing adds
//! the snapshot of the CPU that has the vCPU loaded to the record ([`Unfolded::of`]).
//!
//! Only the CPU itself writes its snapshot: in its fast path ([`Unfolded::publish`]) and,
//! holding the global lock, when it folds its counts into the record
//! ([`Unfolded::clear`]). Readers hold the global lock, so they see the record either
//! before a fold with the snapshot or after it with none, never both; each count in a
//! snapshot only grows between folds, so a reader that races a publication sees each count
//! either before or after it, and a listing is at most one publication period stale.
#![forbid(unsafe_code)]

use crate::sched::VcpuKey;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// How often, at most, a CPU publishes its loaded vCPU's counts when it asks (at a wake
/// from a WFI waited out at EL2, or every few hundred interrupt exits): 100 ms, so a
/// listing of an idling vCPU is no staler than that.
pub const PUBLISH_US: u64 = 100_000;

/// Publications per second at most ([`PUBLISH_US`] divides a second).
const PER_SECOND: u64 = 1_000_000 / PUBLISH_US;
const _: () = assert!(1_000_000 % PUBLISH_US == 0);

/// Whether a publication is due at `now` for counts last counted at `since` (counter
/// ticks at `hz`). A division by a constant, no multiplication that could overflow: the
/// WFI path asks it at every wake.
#[inline]
pub fn due(now: u64, since: u64, hz: u64) -> bool {
    now.saturating_sub(since) > hz / PER_SECOND
}

/// The snapshot of vCPU `key` among the CPUs' records `unfolded`, from the CPU that has it
/// loaded (`loaded`, per CPU): what a listing adds to the vCPU's record.
pub fn published(
    loaded: &[Option<VcpuKey>],
    unfolded: &[Unfolded],
    key: VcpuKey,
) -> Option<Counts> {
    loaded
        .iter()
        .zip(unfolded)
        .find(|(l, _)| **l == Some(key))
        .and_then(|(_, u)| u.of(key.0))
}

/// Counts a CPU has not yet folded into its loaded vCPU's record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Traps to EL2.
    pub exits: u64,
    /// Virtual interrupts injected.
    pub irqs: u64,
    /// Counter ticks spent in the guest.
    pub run_ticks: u64,
}

/// One CPU's published snapshot.
#[derive(Debug)]
pub struct Unfolded {
    /// The vCPU's run-queue key plus one; 0 when nothing is published.
    key: AtomicU32,
    exits: AtomicU64,
    irqs: AtomicU64,
    run_ticks: AtomicU64,
}

impl Unfolded {
    /// Nothing published.
    pub const fn new() -> Self {
        Self {
            key: AtomicU32::new(0),
            exits: AtomicU64::new(0),
            irqs: AtomicU64::new(0),
            run_ticks: AtomicU64::new(0),
        }
    }

    /// The owning CPU's fast path publishes `counts` for vCPU `key` (its run-queue key).
    /// The counts first, then the key with release ordering, so a reader that sees the key
    /// sees counts at least as new as the ones stored with it.
    pub fn publish(&self, key: u32, counts: Counts) {
        self.exits.store(counts.exits, Ordering::Relaxed);
        self.irqs.store(counts.irqs, Ordering::Relaxed);
        self.run_ticks.store(counts.run_ticks, Ordering::Relaxed);
        self.key.store(key.wrapping_add(1), Ordering::Release);
    }

    /// The owning CPU folded its counts into the record (under the global lock): nothing
    /// is published any more.
    pub fn clear(&self) {
        self.key.store(0, Ordering::Relaxed);
        self.exits.store(0, Ordering::Relaxed);
        self.irqs.store(0, Ordering::Relaxed);
        self.run_ticks.store(0, Ordering::Relaxed);
    }

    /// The snapshot, if it is of vCPU `key`.
    pub fn of(&self, key: u32) -> Option<Counts> {
        if self.key.load(Ordering::Acquire) != key.wrapping_add(1) {
            return None;
        }
        Some(Counts {
            exits: self.exits.load(Ordering::Relaxed),
            irqs: self.irqs.load(Ordering::Relaxed),
            run_ticks: self.run_ticks.load(Ordering::Relaxed),
        })
    }
}

impl Default for Unfolded {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
