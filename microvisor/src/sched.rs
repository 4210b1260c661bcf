//! Per-physical-CPU run-queue policy: fixed priorities, round-robin within a priority,
//! optional budget/period for shared vCPUs, and pinned-exclusive vCPUs that own their CPU
//! outright.
//!
//! This is policy only. It touches no hardware and keeps no clock of its own: the caller
//! passes the time (counter ticks) into [`RunQueue::pick`], charges the running vCPU the
//! guest time it used ([`RunQueue::charge`]), and arms the EL2 timer for the earlier of the
//! end of a time slice ([`RunQueue::contended`], [`TIME_SLICE_US`]) and
//! [`RunQueue::next_event`].
//!
//! **Budgets (a deferrable server).** A shared vCPU may carry a budget `B` per period `P`
//! (`ctl sched-fp --budget-us B --period-us P`). It runs at its priority for at most `B` of
//! guest time in each period. Periods are fixed windows that start when the budget is set
//! (`t0 + k·P`); at each window's start its budget is refilled to `B` whole (unused budget
//! is not carried over, and periods it slept through are skipped, not owed). Once it has
//! used `B` in a window it is *exhausted*: it drops below every vCPU of the queue that is
//! within its budget (or has none), whatever their priorities, and runs only when none of
//! them is runnable, among the other exhausted ones by the usual order (priority, then
//! round-robin). So an exhausted vCPU never starves lower priorities, and the CPU is never
//! left idle while it has work (the budget is a guarantee to the others, not a cap on an
//! idle CPU). What it uses while exhausted is not charged to later windows; what it ran
//! past `B` before the microvisor could stop it (the EL2 timer that ends its budget is
//! armed at `now + left` when it is picked and fires a little late, or, under emulation,
//! the host did not run the CPU for a while) is owed: each following window's refill
//! (slept through or not) repays up to `B` of it, so lateness does not add up and over a
//! long run it gets `B` per `P`. What it owes is capped at one period `P`. As with any
//! deferrable server, a vCPU that saves its budget to the end of one window and spends it
//! again at the start of the next runs up to `2B` back to back once; over any window of
//! length `P` aligned to its periods, the others get at least `P - B` (less one timer
//! latency). The replenishment time comes from the same counter the EL2 timer compares
//! against; the caller arms that timer for [`RunQueue::next_event`], so a refill that
//! lets an exhausted vCPU preempt the running one happens on time even if nothing exits.
//! Exclusive vCPUs have no budget (nothing else could use the time).
//!
//! Invariants:
//! - a key appears at most once;
//! - an exclusive entry is the only entry of its queue, and has no budget;
//! - a budgeted entry has `0 < budget <= period` and `left <= budget`;
//! - `budgeted` is the number of entries with a budget.
//! - `contended_memo`, when set, holds what [`RunQueue::contended`]'s scan would answer
//!   for that key.
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
    /// a budget must be more than zero and no more than its period
    BadBudget,
}

/// A budget of `budget` ticks per `period` ticks and where the current window stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Budget {
    budget: u64,
    period: u64,
    /// Budget left in the current window.
    left: u64,
    /// When the current window ends and the next one refills `left` to `budget`.
    refill_at: u64,
    /// What it ran past its budget before it could be stopped (the timer fires late, the
    /// exit takes time) and has not repaid from later refills yet; at most one period.
    overrun: u64,
}

impl Budget {
    /// Moves to the window containing `now`, refilling if a window boundary has passed.
    fn refresh(&mut self, now: u64) {
        if now < self.refill_at {
            return;
        }
        // Skip the windows it slept through: a budget is not owed for them.
        let missed = (now - self.refill_at) / self.period;
        self.refill_at = self
            .refill_at
            .saturating_add(self.period.saturating_mul(missed.saturating_add(1)));
        // Each window that passed repays up to one budget of an overrun: those it slept
        // through wholly, then the one starting now from its refill.
        self.overrun = self
            .overrun
            .saturating_sub(missed.saturating_mul(self.budget));
        let owed = self.overrun.min(self.budget);
        self.overrun -= owed;
        self.left = self.budget - owed;
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: VcpuKey,
    priority: u8,
    runnable: bool,
    /// Value of `RunQueue::picks` when last picked; 0 = never, so newcomers go first.
    last_run: u64,
    /// Budget per period, if any (shared vCPUs only).
    budget: Option<Budget>,
}

impl Entry {
    /// Used up its budget for the current window: it runs only in the background.
    fn exhausted(&self) -> bool {
        self.budget.is_some_and(|b| b.left == 0)
    }

    /// Scheduling rank, higher first: within budget before exhausted, then priority
    /// (`(!exhausted, priority)` ordered as a pair, in one integer).
    fn rank(&self) -> u16 {
        (u16::from(!self.exhausted()) << 8) | u16::from(self.priority)
    }
}

/// The vCPUs assigned to one physical CPU.
#[derive(Clone, Debug)]
pub struct RunQueue {
    entries: [Option<Entry>; QUEUE_CAPACITY],
    /// One past the highest occupied slot (every slot from it on is empty): the scans stop
    /// there instead of visiting all [`QUEUE_CAPACITY`] slots (a shared CPU's pick, on
    /// every switch, usually has two or three entries).
    used: usize,
    len: usize,
    /// How many queued vCPUs are runnable (kept with every change of the flag), so
    /// [`Self::alone`] costs no scan.
    runnable: usize,
    exclusive: bool,
    /// Number of picks so far; a sequence, not a time.
    picks: u64,
    /// Entries with a budget: while 0, the budget code costs nothing (no clock needed).
    budgeted: usize,
    /// [`Self::contended`] of the vCPU last picked, worked out by that pick's scan: the
    /// caller asks it right after the pick (to arm the time slice), and a second scan
    /// would find the same. Dropped by everything that could change the answer (runnable,
    /// ranks, the entries), so it is only ever exact.
    contended_memo: Option<(VcpuKey, bool)>,
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
            used: 0,
            len: 0,
            runnable: 0,
            exclusive: false,
            picks: 0,
            budgeted: 0,
            contended_memo: None,
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
        let i = self
            .entries
            .iter()
            .position(|e| e.is_none())
            .ok_or(SchedError::Full)?;
        self.used = self.used.max(i + 1);
        self.contended_memo = None;
        self.entries[i] = Some(Entry {
            key,
            priority,
            runnable: true,
            last_run: 0,
            budget: None,
        });
        self.len += 1;
        self.runnable += 1;
        self.exclusive = exclusive;
        Ok(())
    }

    /// Removes a vCPU; removing the exclusive one frees the CPU for others.
    pub fn remove(&mut self, key: VcpuKey) -> Result<(), SchedError> {
        let i = self.find(key).ok_or(SchedError::NotQueued)?;
        if self.entries[i].is_some_and(|e| e.budget.is_some()) {
            self.budgeted -= 1;
        }
        if self.entries[i].is_some_and(|e| e.runnable) {
            self.runnable -= 1;
        }
        self.contended_memo = None;
        self.entries[i] = None;
        while self
            .used
            .checked_sub(1)
            .is_some_and(|last| self.entries.get(last).is_some_and(|e| e.is_none()))
        {
            self.used -= 1;
        }
        self.len -= 1;
        if self.len == 0 {
            self.exclusive = false;
        }
        Ok(())
    }

    /// Marks a vCPU runnable (woken) or not (blocked in WFI, paused).
    pub fn set_runnable(&mut self, key: VcpuKey, runnable: bool) -> Result<(), SchedError> {
        let i = self.find(key).ok_or(SchedError::NotQueued)?;
        if let Some(e) = self.entries[i].as_mut().filter(|e| e.runnable != runnable) {
            e.runnable = runnable;
            if runnable {
                self.runnable += 1;
            } else {
                self.runnable -= 1;
            }
            self.contended_memo = None;
        }
        Ok(())
    }

    /// Whether the queue belongs to one exclusive vCPU.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Gives `key` a budget of `budget` ticks in every `period` ticks starting at `now`
    /// (`None`: no budget, it runs at its priority without limit). Its first window starts
    /// full. Refused for the exclusive vCPU.
    pub fn set_budget(
        &mut self,
        key: VcpuKey,
        budget: Option<(u64, u64)>,
        now: u64,
    ) -> Result<(), SchedError> {
        let i = self.find(key).ok_or(SchedError::NotQueued)?;
        if self.exclusive {
            return Err(SchedError::ExclusiveConflict);
        }
        let budget = match budget {
            None => None,
            Some((b, p)) if b == 0 || b > p => return Err(SchedError::BadBudget),
            Some((budget, period)) => Some(Budget {
                budget,
                period,
                left: budget,
                refill_at: now.saturating_add(period),
                overrun: 0,
            }),
        };
        self.contended_memo = None;
        if let Some(e) = &mut self.entries[i] {
            match (e.budget.is_some(), budget.is_some()) {
                (false, true) => self.budgeted += 1,
                (true, false) => self.budgeted -= 1,
                _ => {}
            }
            e.budget = budget;
        }
        Ok(())
    }

    /// Whether [`Self::pick`] needs the time: some vCPU here has a budget.
    pub fn needs_clock(&self) -> bool {
        self.budgeted != 0
    }

    /// `key`'s budget and period in ticks, if it has a budget.
    pub fn budget(&self, key: VcpuKey) -> Option<(u64, u64)> {
        let e = self.entries[self.find(key)?]?;
        e.budget.map(|b| (b.budget, b.period))
    }

    /// Charges `key` for `ticks` of guest time it ran; the window it used them in is the
    /// current one (a run that straddles a refill is charged to the window it began in).
    /// A run that began within its budget and went past it overran: the excess is owed
    /// (up to one period in all) and comes off the following refills, up to `B` each, so
    /// late timers do not add up to more than `B` per `P` on average. What it runs once
    /// exhausted (in the background) is not owed.
    /// No effect on a vCPU without a budget or not queued here.
    pub fn charge(&mut self, key: VcpuKey, ticks: u64) {
        if self.budgeted == 0 {
            return;
        }
        let Some(i) = self.find(key) else { return };
        if let Some(Entry {
            budget: Some(b), ..
        }) = &mut self.entries[i]
        {
            // It may have run out (a change of rank).
            self.contended_memo = None;
            if b.left > 0 && ticks > b.left {
                b.overrun = b.overrun.saturating_add(ticks - b.left).min(b.period);
            }
            b.left = b.left.saturating_sub(ticks);
        }
    }

    /// The earliest instant after which a pick may choose differently because of budgets:
    /// `running` (the vCPU about to run) exhausting what it has left, or an exhausted
    /// runnable vCPU's refill. `None` if budgets change nothing here. Call after
    /// [`Self::pick`] at `now`.
    pub fn next_event(&self, running: Option<VcpuKey>, now: u64) -> Option<u64> {
        if self.budgeted == 0 {
            return None;
        }
        let exhaust = running
            .and_then(|k| self.find(k))
            .and_then(|i| self.entries[i])
            .and_then(|e| e.budget)
            .filter(|b| b.left > 0)
            .map(|b| now.saturating_add(b.left));
        let refill = self
            .iter()
            .filter(|e| e.runnable && e.exhausted())
            .filter_map(|e| e.budget.map(|b| b.refill_at))
            .min();
        match (exhaust, refill) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Chooses the next vCPU to run at time `now` and records the choice: the
    /// highest-priority runnable one within its budget (bigger is higher), and among equals
    /// the one picked least recently, so equals take turns; only if none is runnable, the
    /// exhausted ones in the same order. `None` if nothing is runnable (the CPU idles).
    /// `now` is only read if [`Self::needs_clock`].
    pub fn pick(&mut self, now: u64) -> Option<VcpuKey> {
        if self.budgeted != 0 {
            for e in self.occupied_mut().iter_mut().flatten() {
                if let Some(b) = e.budget.as_mut() {
                    b.refresh(now);
                }
            }
        }
        // Order: rank descending, then least recently picked; the first of equals wins,
        // so never-run newcomers go in slot order. `rivals` counts the other runnable
        // entries of the best rank seen so far: the pick is contended iff there are any
        // (nothing runnable ranks above it).
        let mut best: Option<(usize, u16, u64)> = None;
        let mut rivals = 0u32;
        for (i, e) in self.occupied().iter().enumerate() {
            let Some(e) = e.as_ref().filter(|e| e.runnable) else {
                continue;
            };
            let rank = e.rank();
            match best {
                Some((_, top, last)) if rank == top => {
                    rivals += 1;
                    if e.last_run < last {
                        best = Some((i, rank, e.last_run));
                    }
                }
                Some((_, top, _)) if rank < top => {}
                _ => {
                    best = Some((i, rank, e.last_run));
                    rivals = 0;
                }
            }
        }
        let (i, _, _) = best?;
        let e = self.entries.get_mut(i)?.as_mut()?;
        self.picks += 1;
        e.last_run = self.picks;
        self.contended_memo = Some((e.key, rivals != 0));
        Some(e.key)
    }

    /// Whether `key` needs a time slice: another runnable vCPU has the same or a higher
    /// rank (within budget or not, then priority). `false` if `key` is not queued.
    pub fn contended(&self, key: VcpuKey) -> bool {
        if let Some((_, contended)) = self.contended_memo.filter(|m| m.0 == key) {
            return contended;
        }
        let Some(me) = self.find(key).and_then(|i| self.entries[i]) else {
            return false;
        };
        self.iter()
            .any(|e| e.key != key && e.runnable && e.rank() >= me.rank())
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

    /// Whether no queued vCPU other than `key` is runnable (within its budget or not).
    pub fn alone(&self, key: VcpuKey) -> bool {
        match self.runnable {
            0 => true,
            1 => self
                .find(key)
                .and_then(|i| self.entries[i])
                .is_some_and(|e| e.runnable),
            _ => false,
        }
    }

    /// The queued vCPUs other than `key`, each with whether it is runnable (within its
    /// budget or not), in slot order.
    pub fn others(&self, key: VcpuKey) -> impl Iterator<Item = (VcpuKey, bool)> + '_ {
        self.iter()
            .filter(move |e| e.key != key)
            .map(|e| (e.key, e.runnable))
    }

    /// How many slots [`Self::key_in`] may find a vCPU in (up to the highest occupied).
    pub fn slots(&self) -> usize {
        self.occupied().len()
    }

    /// The vCPU queued in `slot`, if any (slots keep their vCPU while others come and go,
    /// so a walk by slot may change the queue's flags on the way).
    pub fn key_in(&self, slot: usize) -> Option<VcpuKey> {
        self.occupied().get(slot)?.as_ref().map(|e| e.key)
    }

    fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.occupied().iter().flatten()
    }

    /// The slots up to the highest occupied one (`used` never exceeds the capacity).
    fn occupied(&self) -> &[Option<Entry>] {
        &self.entries[..self.used.min(QUEUE_CAPACITY)]
    }

    /// As [`Self::occupied`], mutable.
    fn occupied_mut(&mut self) -> &mut [Option<Entry>] {
        let used = self.used.min(QUEUE_CAPACITY);
        &mut self.entries[..used]
    }

    fn find(&self, key: VcpuKey) -> Option<usize> {
        self.occupied()
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| e.key == key))
    }
}

#[cfg(test)]
mod tests;
