//! The virtual timer (CNTV_*, PPI 27) and the virtual counter.
//!
//! The microvisor masks the physical timer while a virtual one is in flight and relies on
//! the guest rewriting CNTV_CTL_EL0 (or deactivating the interrupt), so a handler must call
//! [`set_deadline`] or [`stop`] every time.

/// Converts milliseconds to counter ticks at `hz` (saturating).
pub const fn ms_to_ticks(ms: u64, hz: u64) -> u64 {
    let t = ms as u128 * hz as u128 / 1000;
    if t > u64::MAX as u128 {
        u64::MAX
    } else {
        t as u64
    }
}

#[cfg(target_os = "none")]
pub use hw::*;

#[cfg(target_os = "none")]
mod hw {
    use super::ms_to_ticks;
    use crate::arch;

    const CTL_ENABLE: u64 = 1 << 0;

    /// The virtual counter.
    pub fn now() -> u64 {
        arch::cntvct()
    }

    /// Counter frequency in Hz (CNTFRQ_EL0, or the start info's value if that reads 0).
    pub fn freq() -> u64 {
        match arch::cntfrq() {
            0 => crate::start::start_info().counter_hz.max(1),
            f => f,
        }
    }

    /// Arms the timer for absolute counter value `deadline` (ENABLE set, IMASK clear).
    pub fn set_deadline(deadline: u64) {
        arch::set_cntv_cval(deadline);
        arch::set_cntv_ctl(CTL_ENABLE);
        arch::isb();
    }

    /// Disables the timer.
    pub fn stop() {
        arch::set_cntv_ctl(0);
        arch::isb();
    }

    /// Waits in WFI until the counter reaches `deadline`. Needs the timer PPI enabled at the
    /// GIC and IRQs unmasked to sleep efficiently; otherwise it still returns on time.
    pub fn sleep_until(deadline: u64) {
        set_deadline(deadline);
        crate::irq::wait_until(|| now() >= deadline);
        stop();
    }

    /// Sleeps for `ms` milliseconds (see [`sleep_until`]).
    pub fn sleep_ms(ms: u64) {
        sleep_until(now().saturating_add(ms_to_ticks(ms, freq())));
    }
}

#[cfg(test)]
mod tests {
    use super::ms_to_ticks;

    #[test]
    fn conversions() {
        assert_eq!(ms_to_ticks(500, 62_500_000), 31_250_000);
        assert_eq!(ms_to_ticks(1, 1000), 1);
        assert_eq!(ms_to_ticks(u64::MAX, u64::MAX), u64::MAX);
    }
}
