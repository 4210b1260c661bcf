//! What a vCPU blocked in Xen's `SCHEDOP_poll` waits for: one of its ports becoming pending
//! (masked or not, as Xen's `evtchn_check_pollers`), or its timeout. Any interrupt made
//! deliverable to it ends the wait too, as it ends a trapped WFI.
//!
//! The timeout is Xen's: absolute system time in nanoseconds, 0 for none. Bulkhead's
//! system time (runstate areas included) is the counter every domain reads as its virtual
//! counter (`CNTVOFF_EL2` is 0) in nanoseconds, so the deadline is a counter value.
#![forbid(unsafe_code)]

use alloc::vec::Vec;

/// One vCPU's poll, kept in its record while it is blocked in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollWait {
    /// The ports it named (at most `SCHEDOP_poll`'s limit, checked by the caller).
    ports: Vec<u32>,
    /// When the wait ends by itself (counter ticks), if it has a timeout.
    deadline: Option<u64>,
}

impl PollWait {
    /// A poll on `ports` until `deadline` (counter ticks; `None`: no timeout).
    pub fn new(ports: Vec<u32>, deadline: Option<u64>) -> Self {
        Self { ports, deadline }
    }

    /// Whether `port` becoming pending ends this wait.
    pub fn wants(&self, port: u32) -> bool {
        self.ports.contains(&port)
    }

    /// The ports it named.
    pub fn ports(&self) -> &[u32] {
        &self.ports
    }

    /// When the wait ends by itself, if it has a timeout.
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Whether its timeout has passed at counter value `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.deadline.is_some_and(|t| t <= now)
    }
}

/// The counter value at which a poll with Xen timeout `timeout_ns` (absolute system time
/// in nanoseconds; 0: none) ends, for a counter of `hz` ticks a second: rounded up, so a
/// poll never ends before its timeout. A timeout past the counter's range never ends.
pub fn deadline_ticks(timeout_ns: u64, hz: u64) -> Option<u64> {
    if timeout_ns == 0 {
        return None;
    }
    let ticks = (u128::from(timeout_ns) * u128::from(hz)).div_ceil(1_000_000_000);
    Some(u64::try_from(ticks).unwrap_or(u64::MAX))
}

/// The earlier of two optional deadlines.
pub fn earlier(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
#[path = "poll_wait_tests.rs"]
mod tests;
