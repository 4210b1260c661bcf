//! Per-physical-CPU run-queue policy: fixed priorities, round-robin within a priority, and
//! pinned-exclusive vCPUs that own their CPU outright.
//!
//! This is policy only. It has no clock and touches no hardware: the caller picks a vCPU,
//! asks [`RunQueue::contended`] whether it needs a time slice, and if so arms the EL2 timer
//! for [`TIME_SLICE_US`]. Invariants:
//! - a key appears at most once;
//! - an exclusive entry is the only entry of its queue.
#![forbid(unsafe_code)]

/// Round-robin quantum for vCPUs that share a CPU with equal- or higher-priority work:
/// 10 ms, the common Linux/Xen order of magnitude, long enough that world-switch cost is
/// noise, short enough for interactive consoles. Exclusive and uncontended vCPUs run without
/// a slice.
pub const TIME_SLICE_US: u64 = 10_000;

/// Entries a single run queue holds.
pub const QUEUE_CAPACITY: usize = 16;

/// Opaque global vCPU slot id, assigned by the vCPU table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VcpuKey(pub u32);

/// Why a run-queue operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchedError {
    /// the run queue is full
    Full,
    /// the CPU is exclusively owned, or an exclusive vCPU was added to a non-empty queue
    ExclusiveConflict,
    /// the vCPU is not on this run queue
    NotQueued,
    /// the vCPU is already on this run queue
    Duplicate,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: VcpuKey,
    priority: u8,
    runnable: bool,
    /// Value of `RunQueue::picks` when last picked; 0 = never, so newcomers go first.
    last_run: u64,
}

/// The vCPUs assigned to one physical CPU.
#[derive(Clone, Debug)]
pub struct RunQueue {
    entries: [Option<Entry>; QUEUE_CAPACITY],
    len: usize,
    exclusive: bool,
    /// Number of picks so far; a sequence, not a time.
    picks: u64,
}

impl Default for RunQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl RunQueue {
    /// An empty, non-exclusive queue.
    pub const fn new() -> Self {
        Self {
            entries: [None; QUEUE_CAPACITY],
            len: 0,
            exclusive: false,
            picks: 0,
        }
    }

    /// Adds a runnable vCPU. An `exclusive` vCPU needs an empty queue and then keeps it to
    /// itself until removed.
    pub fn add(&mut self, key: VcpuKey, priority: u8, exclusive: bool) -> Result<(), SchedError> {
        if self.find(key).is_some() {
            return Err(SchedError::Duplicate);
        }
        if self.exclusive || (exclusive && self.len != 0) {
            return Err(SchedError::ExclusiveConflict);
        }
        let slot = self
            .entries
            .iter_mut()
            .find(|e| e.is_none())
            .ok_or(SchedError::Full)?;
        *slot = Some(Entry {
            key,
            priority,
            runnable: true,
            last_run: 0,
        });
        self.len += 1;
        self.exclusive = exclusive;
        Ok(())
    }

    /// Removes a vCPU; removing the exclusive one frees the CPU for others.
    pub fn remove(&mut self, key: VcpuKey) -> Result<(), SchedError> {
        let i = self.find(key).ok_or(SchedError::NotQueued)?;
        self.entries[i] = None;
        self.len -= 1;
        if self.len == 0 {
            self.exclusive = false;
        }
        Ok(())
    }

    /// Marks a vCPU runnable (woken) or not (blocked in WFI, paused).
    pub fn set_runnable(&mut self, key: VcpuKey, runnable: bool) -> Result<(), SchedError> {
        let i = self.find(key).ok_or(SchedError::NotQueued)?;
        if let Some(e) = &mut self.entries[i] {
            e.runnable = runnable;
        }
        Ok(())
    }

    /// Whether the queue belongs to one exclusive vCPU.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Chooses the next vCPU to run and records the choice: the highest-priority runnable
    /// one (bigger is higher), and among equals the one picked least recently, so equals
    /// take turns. `None` if nothing is runnable (the CPU idles).
    pub fn pick(&mut self) -> Option<VcpuKey> {
        let best = self
            .entries
            .iter_mut()
            .flatten()
            .filter(|e| e.runnable)
            // Order: priority descending, then least recently picked. min_by keeps the first
            // of equals, so never-run newcomers go in slot order.
            .min_by(|a, b| {
                b.priority
                    .cmp(&a.priority)
                    .then(a.last_run.cmp(&b.last_run))
            })?;
        self.picks += 1;
        best.last_run = self.picks;
        Some(best.key)
    }

    /// Whether `key` needs a time slice: another runnable vCPU has the same or a higher
    /// priority. `false` if `key` is not queued.
    pub fn contended(&self, key: VcpuKey) -> bool {
        let Some(me) = self.find(key).and_then(|i| self.entries[i]) else {
            return false;
        };
        self.iter()
            .any(|e| e.key != key && e.runnable && e.priority >= me.priority)
    }

    /// Number of queued vCPUs, runnable or not.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no vCPU is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `key` is queued here.
    pub fn contains(&self, key: VcpuKey) -> bool {
        self.find(key).is_some()
    }

    fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().flatten()
    }

    fn find(&self, key: VcpuKey) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.is_some_and(|e| e.key == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: VcpuKey = VcpuKey(1);
    const B: VcpuKey = VcpuKey(2);
    const C: VcpuKey = VcpuKey(3);

    #[test]
    fn highest_priority_first() {
        let mut q = RunQueue::new();
        q.add(A, 1, false).unwrap();
        q.add(B, 5, false).unwrap();
        q.add(C, 3, false).unwrap();
        for _ in 0..5 {
            assert_eq!(q.pick(), Some(B));
        }
        q.set_runnable(B, false).unwrap();
        assert_eq!(q.pick(), Some(C));
        q.set_runnable(C, false).unwrap();
        assert_eq!(q.pick(), Some(A));
        q.set_runnable(A, false).unwrap();
        assert_eq!(q.pick(), None);
    }

    #[test]
    fn round_robin_among_equals_is_fair() {
        let mut q = RunQueue::new();
        let keys: Vec<VcpuKey> = (10..15).map(VcpuKey).collect();
        for &k in &keys {
            q.add(k, 4, false).unwrap();
        }
        q.add(A, 2, false).unwrap();
        let mut counts = [0usize; 5];
        let mut prev = Vec::new();
        for round in 0..100 {
            let mut seen = Vec::new();
            for _ in 0..5 {
                let k = q.pick().unwrap();
                seen.push(k);
                counts[(k.0 - 10) as usize] += 1;
            }
            // Each round runs everyone once, in the same order every time.
            let mut sorted = seen.clone();
            sorted.sort_by_key(|k| k.0);
            assert_eq!(sorted, keys);
            if round > 0 {
                assert_eq!(seen, prev);
            }
            prev = seen;
        }
        assert!(counts.iter().all(|&c| c == 100));
    }

    #[test]
    fn woken_higher_priority_preempts() {
        let mut q = RunQueue::new();
        q.add(A, 1, false).unwrap();
        q.add(B, 9, false).unwrap();
        q.set_runnable(B, false).unwrap();
        assert_eq!(q.pick(), Some(A));
        assert_eq!(q.pick(), Some(A));
        q.set_runnable(B, true).unwrap();
        assert_eq!(q.pick(), Some(B));
    }

    #[test]
    fn blocked_entries_are_skipped_and_rejoin() {
        let mut q = RunQueue::new();
        q.add(A, 3, false).unwrap();
        q.add(B, 3, false).unwrap();
        q.add(C, 3, false).unwrap();
        q.set_runnable(B, false).unwrap();
        let picks: Vec<_> = (0..4).map(|_| q.pick().unwrap()).collect();
        assert!(!picks.contains(&B));
        assert_eq!(picks[0..2], picks[2..4]);
        // B has waited longest, so it goes next once woken.
        q.set_runnable(B, true).unwrap();
        assert_eq!(q.pick(), Some(B));
    }

    #[test]
    fn exclusive_rules() {
        let mut q = RunQueue::new();
        q.add(A, 0, true).unwrap();
        assert!(q.is_exclusive());
        assert_eq!(q.add(B, 9, false), Err(SchedError::ExclusiveConflict));
        assert_eq!(q.add(B, 9, true), Err(SchedError::ExclusiveConflict));
        assert_eq!(q.add(A, 0, true), Err(SchedError::Duplicate));
        assert!(!q.contended(A));
        assert_eq!(q.pick(), Some(A));
        q.remove(A).unwrap();
        assert!(!q.is_exclusive());
        q.add(B, 1, false).unwrap();
        assert_eq!(q.add(A, 0, true), Err(SchedError::ExclusiveConflict));
        assert!(!q.is_exclusive());
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn capacity_and_bookkeeping() {
        let mut q = RunQueue::new();
        assert!(q.is_empty());
        for i in 0..QUEUE_CAPACITY as u32 {
            q.add(VcpuKey(100 + i), 1, false).unwrap();
        }
        assert_eq!(q.add(A, 1, false), Err(SchedError::Full));
        assert_eq!(q.add(VcpuKey(100), 1, false), Err(SchedError::Duplicate));
        assert_eq!(q.len(), QUEUE_CAPACITY);
        q.remove(VcpuKey(105)).unwrap();
        assert!(!q.contains(VcpuKey(105)));
        q.add(A, 1, false).unwrap();
        assert!(q.contains(A));
        assert_eq!(q.remove(B), Err(SchedError::NotQueued));
        assert_eq!(q.set_runnable(B, true), Err(SchedError::NotQueued));
    }

    #[test]
    fn contention() {
        let mut q = RunQueue::new();
        q.add(A, 5, false).unwrap();
        assert!(!q.contended(A), "alone");
        q.add(B, 1, false).unwrap();
        assert!(!q.contended(A), "only lower priority waiting");
        assert!(q.contended(B), "a higher priority is runnable");
        q.add(C, 5, false).unwrap();
        assert!(q.contended(A), "an equal shares the CPU");
        q.set_runnable(C, false).unwrap();
        assert!(!q.contended(A), "blocked equals do not count");
        assert!(!q.contended(VcpuKey(77)));
    }
}
