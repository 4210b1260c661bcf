//! When the shell makes sure the NIC has seen the buffers it added (`Net::flush`, one
//! register write per queue): the driver can miss a device's re-enabled notifications, so
//! buffers added since the last flush are owed one within a flush period, and an idle
//! netdom with nothing owed has nothing to wake for.

/// What the event loop does about flushing before it sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushStep {
    /// Flush now.
    Now {
        /// The counter value from which the next flush may come.
        next: u64,
    },
    /// A flush is owed but the last was too recent: wake at this counter value for it.
    WakeAt(u64),
    /// Nothing added since the last flush.
    Nothing,
}

/// The step at `now` for a NIC that `owes` a flush, the last flush having allowed the next
/// at `next_flush`, with flushes at most once per `period` ticks.
pub fn flush_step(owes: bool, now: u64, next_flush: u64, period: u64) -> FlushStep {
    if !owes {
        FlushStep::Nothing
    } else if now >= next_flush {
        FlushStep::Now {
            next: now.saturating_add(period),
        }
    } else {
        FlushStep::WakeAt(next_flush)
    }
}

#[cfg(test)]
mod tests {
    use super::{flush_step, FlushStep};

    #[test]
    fn a_flush_is_made_when_owed_and_due_and_otherwise_waited_for_or_skipped() {
        assert_eq!(flush_step(false, 100, 0, 50), FlushStep::Nothing);
        assert_eq!(flush_step(true, 100, 0, 50), FlushStep::Now { next: 150 });
        assert_eq!(flush_step(true, 120, 150, 50), FlushStep::WakeAt(150));
        assert_eq!(flush_step(true, 150, 150, 50), FlushStep::Now { next: 200 });
        assert_eq!(
            flush_step(true, u64::MAX, 0, 50),
            FlushStep::Now { next: u64::MAX }
        );
    }
}
