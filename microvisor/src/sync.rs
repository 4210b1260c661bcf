//! Locks that wait with WFE instead of spinning: under QEMU's deterministic `-icount` a CPU
//! spinning on another's lock burns its whole time slice, and on hardware WFE saves power.
//! The event stream (CNTHCTL_EL2.EVNTEN) bounds any missed wake-up.

/// Relax strategy: wait for an event.
pub struct WaitForEvent;

impl spin::relax::RelaxStrategy for WaitForEvent {
    fn relax() {
        crate::arch::wait_for_event();
    }
}

/// The microvisor's mutex.
pub type Mutex<T> = spin::mutex::SpinMutex<T, WaitForEvent>;
