//! The timer queue: absolute deadlines (counter ticks) of sleeping/blocked threads and of
//! periodic releases, kept sorted so the next event is the first entry.
//!
//! Invariant: entries are sorted by `when`; entries with equal `when` stay in insertion
//! order, so simultaneous events are processed first-come first-served (deterministic).
//! A thread has at most one entry of each [`TimerKind`].

use super::Tid;
use alloc::vec::Vec;

/// Why a timer entry exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// End of a sleep or of a blocking call's timeout.
    Wake,
    /// Next release of a periodic thread.
    Release,
}

/// One pending timer event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerEntry {
    /// Absolute counter value at which it is due.
    pub when: u64,
    /// The thread it concerns.
    pub tid: Tid,
    /// What to do.
    pub kind: TimerKind,
}

/// Sorted pending timer events.
#[derive(Clone, Debug, Default)]
pub struct TimerQueue {
    entries: Vec<TimerEntry>,
}

impl TimerQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Adds an event, replacing any pending one of the same kind for the same thread.
    pub fn insert(&mut self, when: u64, tid: Tid, kind: TimerKind) {
        self.cancel(tid, kind);
        let at = self.entries.partition_point(|e| e.when <= when);
        self.entries.insert(at, TimerEntry { when, tid, kind });
    }

    /// Removes the pending event of `kind` for `tid`; returns whether there was one.
    pub fn cancel(&mut self, tid: Tid, kind: TimerKind) -> bool {
        match self
            .entries
            .iter()
            .position(|e| e.tid == tid && e.kind == kind)
        {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }

    /// The earliest pending deadline.
    pub fn next(&self) -> Option<u64> {
        self.entries.first().map(|e| e.when)
    }

    /// Removes and returns the earliest event if it is due at `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<TimerEntry> {
        match self.entries.first() {
            Some(e) if e.when <= now => Some(self.entries.remove(0)),
            _ => None,
        }
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_fifo_for_ties() {
        let mut q = TimerQueue::new();
        q.insert(30, 1, TimerKind::Wake);
        q.insert(10, 2, TimerKind::Wake);
        q.insert(30, 3, TimerKind::Release);
        q.insert(20, 4, TimerKind::Wake);
        assert_eq!(q.next(), Some(10));
        assert_eq!(q.pop_due(9), None);
        let order: Vec<_> = core::iter::from_fn(|| q.pop_due(100))
            .map(|e| e.tid)
            .collect();
        assert_eq!(order, [2, 4, 1, 3]);
        assert!(q.is_empty());
    }

    #[test]
    fn one_entry_per_thread_and_kind() {
        let mut q = TimerQueue::new();
        q.insert(50, 1, TimerKind::Wake);
        q.insert(40, 1, TimerKind::Release);
        q.insert(20, 1, TimerKind::Wake);
        assert_eq!(q.len(), 2);
        assert_eq!(q.next(), Some(20));
        assert!(q.cancel(1, TimerKind::Wake));
        assert!(!q.cancel(1, TimerKind::Wake));
        assert_eq!(q.pop_due(45).map(|e| e.kind), Some(TimerKind::Release));
        assert_eq!(q.pop_due(u64::MAX), None);
    }
}
