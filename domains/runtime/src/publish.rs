//! Rate-limited publication of a value that changes often (a driver domain's counters,
//! written to xenstore for `ctl info`): a first value at once, then each change at most once
//! per period. A change held back by the period is owed, and [`Published::due`] says when,
//! so an event loop can sleep until then instead of polling for it.

/// What to do about the current value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Publish it now.
    Now,
    /// It changed, but the period since the last publication ends at this counter value.
    At(u64),
    /// Nothing to publish: it is what was published last.
    Unchanged,
}

/// The value published last, and when (counter ticks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Published<T> {
    last: Option<(T, u64)>,
}

impl<T: PartialEq + Copy> Published<T> {
    /// Nothing published yet: the first value is due at once.
    pub const fn new() -> Self {
        Self { last: None }
    }

    /// As if `value` had been published at `at`: a reader that takes a missing value for
    /// this one (zero counters, say) is not written to until it changes.
    pub const fn as_if(value: T, at: u64) -> Self {
        Self {
            last: Some((value, at)),
        }
    }

    /// Whether `current` is due at `now` with at most one publication per `period` ticks.
    pub fn due(&self, current: &T, now: u64, period: u64) -> Due {
        let Some((last, at)) = &self.last else {
            return Due::Now;
        };
        if last == current {
            return Due::Unchanged;
        }
        let next = at.saturating_add(period);
        if now < next {
            Due::At(next)
        } else {
            Due::Now
        }
    }

    /// Whether `current` is due now ([`Published::due`]); if it is owed later, `owed`
    /// comes down to when (an event loop's next wake-up).
    pub fn due_now(&self, current: &T, now: u64, period: u64, owed: &mut u64) -> bool {
        match self.due(current, now, period) {
            Due::Now => true,
            Due::At(t) => {
                *owed = (*owed).min(t);
                false
            }
            Due::Unchanged => false,
        }
    }

    /// Records that `value` was published at `now`.
    pub fn record(&mut self, value: T, now: u64) {
        self.last = Some((value, now));
    }
}

#[cfg(test)]
mod tests {
    use super::{Due, Published};

    #[test]
    fn the_first_value_is_due_at_once_even_if_it_is_the_default() {
        let p = Published::<u32>::new();
        assert_eq!(p.due(&0, 5, 100), Due::Now);
    }

    #[test]
    fn a_change_within_the_period_is_owed_until_its_end() {
        let mut p = Published::new();
        p.record(1u32, 10);
        assert_eq!(p.due(&1, 20, 100), Due::Unchanged);
        assert_eq!(p.due(&2, 20, 100), Due::At(110));
        assert_eq!(p.due(&2, 109, 100), Due::At(110));
        assert_eq!(p.due(&2, 110, 100), Due::Now);
        p.record(2, 110);
        assert_eq!(p.due(&2, 500, 100), Due::Unchanged);
    }

    #[test]
    fn a_value_taken_as_published_waits_for_a_change() {
        let p = Published::as_if(0u32, 0);
        assert_eq!(p.due(&0, 5, 100), Due::Unchanged);
        assert_eq!(p.due(&1, 5, 100), Due::At(100));
        assert_eq!(p.due(&1, 100, 100), Due::Now);
    }

    #[test]
    fn what_is_owed_later_lowers_the_wake_up() {
        let mut p = Published::new();
        let mut owed = u64::MAX;
        assert!(p.due_now(&1u32, 10, 100, &mut owed));
        p.record(1, 10);
        assert!(!p.due_now(&1, 20, 100, &mut owed));
        assert_eq!(owed, u64::MAX, "nothing changed, nothing owed");
        assert!(!p.due_now(&2, 20, 100, &mut owed));
        assert_eq!(owed, 110);
        let mut sooner = 50;
        assert!(!p.due_now(&2, 20, 100, &mut sooner));
        assert_eq!(sooner, 50, "an earlier wake-up stays");
    }

    #[test]
    fn a_period_reaching_past_the_counters_end_saturates() {
        let mut p = Published::new();
        p.record(1u8, u64::MAX - 1);
        assert_eq!(p.due(&2, u64::MAX - 1, 100), Due::At(u64::MAX));
    }
}
