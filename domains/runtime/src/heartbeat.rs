//! Heartbeats: how a domain tells its controller it is still alive (dom0's watchdog).
//!
//! Transport: `CapOp::Heartbeat`, a register-only hypercall on which the microvisor does
//! nothing but stamp the counter and count (`protocol::control::Beats`); dom0 reads the stamp
//! with `CapOp::DomainBeats` and alone decides what silence means. We chose that over a
//! periodic xenstore write to the domain's home because a beat must not depend on what it
//! watches over: a xenstore write needs a working ring, event channel and dom0's xenstore
//! service, so a beat lost there would restart a healthy domain, and a domain wedged while
//! holding its ring (the case to catch) could still have queued writes. The stamp is also
//! exact (dom0 learns *when* the first beat came, for the recovery time), costs one trap a
//! second, and keeps the microvisor free of policy (DESIGN §1: it stays minimal).
//!
//! When: from the idle wait every event loop calls ([`crate::irq::wait_until`]) and from
//! the per-iteration xenstore drain ([`crate::xenstore::XsClient::events`]), so a loop that
//! stops going round stops beating, while a loop kept busy by I/O (which may not go idle for
//! seconds) still beats. At most one beat per [`PERIOD_MS`].
//!
//! Readiness: a domain is *ready* when its event loop first goes idle, i.e. its first call
//! of `wait_until` (blkdom and netdom call it only after printing their ready line and
//! enabling interrupts). Only then do beats start, so the first beat of an incarnation marks
//! the moment it is ready to serve, which is what dom0's recovery time measures.

/// Least time between two beats.
pub const PERIOD_MS: u64 = 1000;

/// When the next beat is due: pure pacing, host-tested.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pacer {
    /// Counter value before which no beat is sent (0: the first one is due at once).
    pub next: u64,
}

impl Pacer {
    /// Whether a beat is due at `now`; if so, the next one is `period` ticks later.
    pub fn due(&mut self, now: u64, period: u64) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now.saturating_add(period.max(1));
        true
    }
}

#[cfg(target_os = "none")]
pub use hw::{armed, beat, idle, next_due};

#[cfg(target_os = "none")]
mod hw {
    use super::{Pacer, PERIOD_MS};
    use crate::timer;
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// The domain has gone idle once: it is ready, beats may flow.
    static ARMED: AtomicBool = AtomicBool::new(false);
    /// [`Pacer::next`], shared by every vCPU.
    static NEXT: AtomicU64 = AtomicU64::new(0);

    /// Whether beats have started.
    pub fn armed() -> bool {
        ARMED.load(Ordering::Acquire)
    }

    /// The event loop is about to go idle: arms beats (the domain is ready) and beats if due.
    pub fn idle() {
        ARMED.store(true, Ordering::Release);
        beat();
    }

    /// When the next beat is due (counter ticks); `u64::MAX` until beats have started.
    pub fn next_due() -> u64 {
        if !armed() {
            return u64::MAX;
        }
        NEXT.load(Ordering::Acquire)
    }

    /// Beats if armed and due (at most once per [`PERIOD_MS`], whichever vCPU asks).
    pub fn beat() {
        if !armed() {
            return;
        }
        let now = timer::now();
        let next = NEXT.load(Ordering::Acquire);
        let mut p = Pacer { next };
        if !p.due(now, timer::ms_to_ticks(PERIOD_MS, timer::freq())) {
            return;
        }
        // One vCPU wins the slot; the others see the new `next` and skip.
        if NEXT
            .compare_exchange(next, p.next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            crate::cap::heartbeat();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pacer;

    #[test]
    fn first_beat_is_at_once_then_one_per_period() {
        let mut p = Pacer::default();
        assert!(p.due(5, 100), "the first beat is due at once");
        assert!(!p.due(6, 100));
        assert!(!p.due(104, 100));
        assert!(p.due(105, 100));
        assert_eq!(p.next, 205);
        // A long silence (the loop was busy elsewhere) beats once, not a burst.
        assert!(p.due(10_000, 100));
        assert!(!p.due(10_001, 100));
        // A zero period still paces (one tick).
        let mut p = Pacer::default();
        assert!(p.due(u64::MAX, 0));
        assert!(!p.due(u64::MAX - 1, 0));
    }
}
