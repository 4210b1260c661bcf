//! Restart pacing: the crash-loop backoff, the sliding window and its limit (the policy is
//! stated in the [`super`] module docs).

/// Restart pacing, in counter ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Delay before a reboot's restart, and before the first crash-loop restart.
    pub backoff_min: u64,
    /// Longest delay.
    pub backoff_max: u64,
    /// The sliding window restarts are counted over.
    pub window: u64,
    /// Restarts allowed within the window; one more stop holds the domain.
    pub max_restarts: usize,
    /// How long an incarnation must run before a crash of it is no sign of a crash loop
    /// (for domains without a heartbeat; one with a watchdog proves itself by its first beat).
    pub settle: u64,
    /// Counter frequency (to print delays in ms).
    pub hz: u64,
}

impl Limits {
    /// Crash-loop backoff from 100 ms doubling to at most 5 s; 3 crash restarts within
    /// 30 s; an incarnation that ran 1 s proved itself.
    pub const fn for_hz(hz: u64) -> Self {
        Self {
            backoff_min: hz / 10,
            backoff_max: hz * 5,
            window: hz * 30,
            max_restarts: 3,
            settle: hz,
            hz,
        }
    }

    /// The `k`-th (0-based) step of the exponential backoff.
    pub fn backoff(&self, k: usize) -> u64 {
        let shift = u32::try_from(k).unwrap_or(u32::MAX).min(32);
        self.backoff_min
            .saturating_mul(1u64 << shift)
            .min(self.backoff_max)
    }

    /// Delay before restarting after a crash, given the crash restarts already made within
    /// the window (`recent`) and whether the incarnation that crashed had `proved` itself
    /// (see the module docs): 0, unless it is a crash loop, then `backoff(recent - 1)`.
    pub fn crash_delay(&self, recent: usize, proved: bool) -> u64 {
        match recent {
            0 => 0,
            _ if proved => 0,
            n => self.backoff(n - 1),
        }
    }

    /// `ticks` in whole ms.
    pub(super) fn ms(&self, ticks: u64) -> u64 {
        crate::health::ticks_to_ms(ticks, self.hz)
    }
}
