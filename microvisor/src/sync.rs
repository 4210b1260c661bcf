//! The microvisor's lock: test-and-set with waiters sleeping in WFE, plus a bound on
//! unfairness so a busy CPU cannot starve a pinned one.
//!
//! Why not a ticket lock (strict first come, first served): it hands the lock to one chosen
//! waiter, and when the host runs our CPUs as threads (QEMU, or any host with fewer cores
//! than vCPUs) that waiter may not be running. Every hand-off then waits for the host to
//! schedule that thread while the running CPUs queue up behind it, and the machine settles
//! into a state where every CPU waits and the lock changes hands a few hundred times a
//! second (measured: two Linux guests beside blkdom on a 2-core host stalled for minutes).
//! Here whoever is running takes a free lock.
//!
//! The bound: a waiter that has lost [`PATIENCE`] rounds declares itself starving; while any
//! CPU is starving, only starving CPUs may take the lock. One that gets it stops starving,
//! so a starving CPU competes only with the few others that starved too.
//!
//! Waiting is WFE: under QEMU's deterministic `-icount` a spinning CPU burns its whole time
//! slice, and on hardware WFE saves power. Releasing sends an event (SEV); the event stream
//! (CNTHCTL_EL2.EVNTEN) bounds any missed wake-up.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Rounds a waiter loses before it declares itself starving. Small: while any CPU starves, a
/// newcomer (a pinned RTOS's occasional slow call among them) waits at least this many
/// rounds, and with 64 the RTOS's vCPU was measured waiting 9.3 ms for the lock while six
/// domains booted (`rtos_across_restarts`); with 4, 0.65 ms at most.
pub const PATIENCE: u32 = 4;

/// The microvisor's mutex (see the module docs for its fairness).
pub struct Mutex<T> {
    locked: AtomicBool,
    /// How many waiters are starving.
    starving: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through a guard, and `locked` admits one guard at a time
// (acquire on taking, release on dropping), so moving `T` between CPUs is all that happens.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: as above; the mutex owns its `T`.
unsafe impl<T: Send> Send for Mutex<T> {}

/// Access to a [`Mutex`]'s data; dropping it unlocks and wakes the waiters.
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    /// A new, unlocked mutex.
    pub const fn new(value: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            starving: AtomicU32::new(0),
            data: UnsafeCell::new(value),
        }
    }

    fn try_take(&self) -> bool {
        !self.locked.load(Ordering::Relaxed)
            && self
                .locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Whether a waiter may try to take the lock: a starving one always, others only
    /// while nobody starves.
    fn admits(&self, waiter_starving: bool) -> bool {
        waiter_starving || self.starving.load(Ordering::Relaxed) == 0
    }

    /// Waits until the lock is free and this CPU may take it (see the module docs).
    ///
    /// Never inlined: the wait loop inlined into a caller (the run loop's dispatcher, say)
    /// costs that caller's paths that take no lock registers and stack spills, and whether
    /// it happened depended on how the crate fell into codegen units (6 instructions on the
    /// hypercall round trip, moved by an unrelated edit).
    #[inline(never)]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let mut lost = 0u32;
        let mut starving = false;
        loop {
            if self.admits(starving) && self.try_take() {
                if starving {
                    self.starving.fetch_sub(1, Ordering::Relaxed);
                }
                return MutexGuard { mutex: self };
            }
            lost = lost.saturating_add(1);
            if !starving && lost >= PATIENCE {
                starving = true;
                self.starving.fetch_add(1, Ordering::Relaxed);
            }
            crate::arch::wait_for_event();
        }
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the one holder of the lock (see `Mutex::lock`).
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes this the only reference through it.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    // A store and an event on every locked pass: not worth a call.
    #[inline]
    fn drop(&mut self) {
        // Unlock first, then wake the CPUs waiting in WFE.
        self.mutex.locked.store(false, Ordering::Release);
        crate::arch::send_event();
    }
}

/// State built at boot behind its own [`Mutex`]: `None` until [`LateLock::init`]. The
/// event-channel and grant-table states are kept this way (`hyp::xen::event_state`,
/// `hyp::xen::grant_state`), so a caller that finds nothing is told, not panicked.
pub struct LateLock<T>(Mutex<Option<T>>);

impl<T> LateLock<T> {
    /// Not built yet.
    pub const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// Builds it (at boot, before any CPU reads it).
    pub fn init(&self, value: T) {
        *self.0.lock() = Some(value);
    }

    /// Takes the lock.
    pub fn lock(&self) -> LateGuard<'_, T> {
        LateGuard(self.0.lock())
    }
}

impl<T> Default for LateLock<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A [`LateLock`] held.
pub struct LateGuard<'a, T>(MutexGuard<'a, Option<T>>);

impl<T> LateGuard<'_, T> {
    /// The state (`None` only before it was built).
    pub fn get(&mut self) -> Option<&mut T> {
        self.0.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::{LateLock, Mutex};
    use core::sync::atomic::Ordering;

    #[test]
    fn excludes_across_threads() {
        static COUNT: Mutex<u64> = Mutex::new(0);
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..2_000 {
                        let mut c = COUNT.lock();
                        let v = *c;
                        std::thread::yield_now();
                        *c = v + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*COUNT.lock(), 8_000);
        assert_eq!(COUNT.starving.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_starving_waiter_goes_before_newcomers() {
        let m = Mutex::new(0u32);
        assert!(m.admits(false));
        // Another CPU declared itself starving: a newcomer may not take even a free lock;
        // the starving one may.
        m.starving.store(1, Ordering::Relaxed);
        assert!(!m.admits(false));
        assert!(m.admits(true));
        // A newcomer that keeps losing starves too after PATIENCE rounds and gets in.
        std::thread::scope(|s| {
            s.spawn(|| *m.lock() += 1);
        });
        assert_eq!(*m.lock(), 1);
        // It counted itself in and out; the other starving CPU is still counted.
        assert_eq!(m.starving.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_late_lock_is_empty_until_built() {
        static L: LateLock<u32> = LateLock::new();
        assert!(L.lock().get().is_none());
        L.init(7);
        *L.lock().get().unwrap() += 1;
        assert_eq!(L.lock().get().copied(), Some(8));
    }

    #[test]
    fn a_held_lock_is_not_taken() {
        let m = Mutex::new(());
        let g = m.lock();
        assert!(!m.try_take());
        drop(g);
        assert!(m.try_take());
    }
}
