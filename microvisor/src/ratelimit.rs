//! A token bucket: how the microvisor keeps one guest's console flood from slowing the
//! shared UART (and so every other domain's log) down.

/// Allows `rate` events per second on average, bursts of up to `burst`.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    /// Tokens, scaled by the counter frequency so refills stay exact in integer maths.
    scaled: u64,
    last: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub const fn new(rate: u64, burst: u64) -> Self {
        Self {
            rate,
            burst,
            scaled: u64::MAX,
            last: 0,
        }
    }

    /// Whether one event may happen at counter value `now` (counter running at `hz`).
    pub fn allow(&mut self, now: u64, hz: u64) -> bool {
        let hz = hz.max(1);
        let cap = self.burst.saturating_mul(hz);
        let elapsed = now.saturating_sub(self.last);
        self.last = now;
        self.scaled = self
            .scaled
            .min(cap)
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(cap);
        if self.scaled >= hz {
            self.scaled -= hz;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_steady_rate() {
        let hz = 1_000;
        let mut b = TokenBucket::new(10, 5);
        // A full burst at t=0, then nothing.
        assert_eq!((0..20).filter(|_| b.allow(0, hz)).count(), 5);
        // One second later: 10 more tokens, capped at the burst of 5.
        assert_eq!((0..20).filter(|_| b.allow(1_000, hz)).count(), 5);
        // A tenth of a second refills exactly one.
        assert!(b.allow(1_100, hz));
        assert!(!b.allow(1_100, hz));
    }

    #[test]
    fn counter_going_backwards_is_harmless() {
        let mut b = TokenBucket::new(10, 1);
        assert!(b.allow(500, 1_000));
        assert!(!b.allow(100, 1_000));
    }
}
