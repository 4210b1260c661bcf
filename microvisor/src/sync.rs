//! The microvisor's lock: a ticket lock (CPUs are served in the order they asked, so a
//! busy CPU cannot starve a pinned one) whose waiters sleep in WFE instead of spinning.
//! Under QEMU's deterministic `-icount` a CPU spinning on another's lock burns its whole
//! time slice, and on hardware WFE saves power. Releasing the lock sends an event (SEV) so
//! the next ticket holder wakes at once; the event stream (CNTHCTL_EL2.EVNTEN) bounds any
//! missed wake-up.

use core::ops::{Deref, DerefMut};

/// Relax strategy: wait for an event.
pub struct WaitForEvent;

impl spin::relax::RelaxStrategy for WaitForEvent {
    fn relax() {
        crate::arch::wait_for_event();
    }
}

/// The microvisor's mutex (fair: first come, first served).
pub struct Mutex<T>(spin::mutex::TicketMutex<T, WaitForEvent>);

/// Access to a [`Mutex`]'s data; releasing it wakes the waiters.
pub struct MutexGuard<'a, T>(Option<spin::mutex::TicketMutexGuard<'a, T>>);

impl<T> Mutex<T> {
    /// A new, unlocked mutex.
    pub const fn new(value: T) -> Self {
        Self(spin::mutex::TicketMutex::new(value))
    }

    /// Waits for this CPU's turn, then locks.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        MutexGuard(Some(self.0.lock()))
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("a live guard holds the lock")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("a live guard holds the lock")
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // Unlock first, then wake the CPUs waiting in WFE for their ticket.
        drop(self.0.take());
        crate::arch::send_event();
    }
}

#[cfg(test)]
mod tests {
    use super::Mutex;

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
    }
}
