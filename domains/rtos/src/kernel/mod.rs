//! The RTOS kernel's state machine: threads with static priorities, the fixed-priority
//! preemptive scheduler, tick-less timing, periodic jobs with deadlines and budgets.
//!
//! The kernel never touches hardware. Every entry point takes the current counter value
//! `now`; the shell calls [`Kernel::tick`] from the timer interrupt, [`Kernel::schedule`]
//! after every kernel call or interrupt (and switches stacks if it names another thread),
//! and programs the timer for [`Kernel::next_event`] (tick-less: no periodic tick, the
//! next interrupt is the earliest timer-queue entry or the running job's budget end).
//!
//! Scheduling: the running thread is the highest-priority `Ready` thread; among equal
//! priorities, the one that became ready first (FIFO; a preempted thread keeps its place at
//! the head). Priorities are effective priorities: a mutex owner inherits the priority of
//! its highest-priority waiter, transitively ([`sync`]). Thread 0 is the idle thread
//! (priority 0); it is always ready, so there is always something to run.
//!
//! Periodic threads: a job is released every `period`; it must finish (call
//! [`Kernel::job_done`]) by `release + deadline` or a deadline miss is counted; it may run
//! at most `budget` counter ticks per job. A job that exhausts its budget is an overrun:
//! it is suspended until the next release (enforcement protects lower-priority threads)
//! and then continues with a fresh budget.

pub mod sync;
pub mod timerq;

use alloc::vec::Vec;
use timerq::{TimerKind, TimerQueue};

/// A thread's index in the kernel's thread table.
pub type Tid = usize;
/// The idle thread.
pub const IDLE: Tid = 0;
/// Most threads the kernel manages (including idle).
pub const MAX_THREADS: usize = 32;

/// What a blocked thread waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A sleep deadline.
    Sleep,
    /// Ownership of mutex n.
    Mutex(usize),
    /// A unit of semaphore n.
    Sem(usize),
    /// A message from queue n.
    Recv(usize),
    /// Room in queue n.
    Send(usize),
    /// Notification bits.
    Notify,
}

/// A thread's scheduling state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Runnable (the running thread is `Ready` too).
    Ready,
    /// Waiting for something.
    Blocked(Wait),
    /// A periodic thread between jobs, waiting for its next release.
    Dormant,
    /// A periodic thread that overran its budget, held until its next release.
    Suspended,
}

impl State {
    /// Short name for the shell.
    pub fn name(&self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Blocked(Wait::Sleep) => "sleep",
            State::Blocked(Wait::Mutex(_)) => "mutex",
            State::Blocked(Wait::Sem(_)) => "sem",
            State::Blocked(Wait::Recv(_)) => "recv",
            State::Blocked(Wait::Send(_)) => "send",
            State::Blocked(Wait::Notify) => "notify",
            State::Dormant => "dormant",
            State::Suspended => "overrun",
        }
    }
}

/// How a blocking call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// It got what it waited for (or its sleep ended).
    Ok,
    /// Its timeout passed first.
    Timeout,
}

/// The result of a call that may block the calling thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<T> {
    /// Completed at once.
    Done(T),
    /// The caller is now blocked: reschedule, and read the outcome once it runs again.
    Blocked,
}

/// Kernel call errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// no such thread, mutex, semaphore or queue
    NoSuchObject,
    /// the caller does not own this mutex
    NotOwner,
    /// locking would deadlock (the caller already owns it, or an owner chain leads back)
    WouldDeadlock,
    /// the semaphore or queue is full
    Full,
    /// the semaphore or queue is empty
    Empty,
    /// the thread table is full
    TooManyThreads,
    /// the calling thread is not periodic
    NotPeriodic,
    /// period, deadline and budget must satisfy 0 < budget <= deadline <= period
    BadSpec,
}

/// Timing of a periodic thread, in counter ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeriodicSpec {
    /// Time between releases.
    pub period: u64,
    /// Relative deadline of each job.
    pub deadline: u64,
    /// Worst-case execution time allowed per job.
    pub budget: u64,
}

/// Per-thread job statistics of a periodic thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobStats {
    /// Jobs released.
    pub releases: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Jobs that missed their deadline.
    pub misses: u64,
    /// Jobs that exhausted their budget.
    pub overruns: u64,
    /// Releases that found the previous job still running (skipped).
    pub skipped: u64,
    /// Longest release-to-completion time.
    pub max_response: u64,
}

#[derive(Clone, Copy, Debug)]
struct Periodic {
    spec: PeriodicSpec,
    next_release: u64,
    release: u64,
    active: bool,
    missed: bool,
    used: u64,
    stats: JobStats,
}

/// One thread's kernel state.
#[derive(Clone, Debug)]
pub struct Thread {
    /// Its name (shell output).
    pub name: &'static str,
    /// Its static priority (higher runs first).
    pub base: u8,
    /// Its effective priority (base, raised by priority inheritance).
    pub prio: u8,
    /// Scheduling state.
    pub state: State,
    /// Counter ticks it has run.
    pub cpu_time: u64,
    /// Times it was switched in.
    pub runs: u64,
    seq: u64,
    wake: Option<Wake>,
    msg: Option<u64>,
    notify: u32,
    held: Vec<usize>,
    periodic: Option<Periodic>,
}

impl Thread {
    fn new(name: &'static str, prio: u8, state: State) -> Self {
        Self {
            name,
            base: prio,
            prio,
            state,
            cpu_time: 0,
            runs: 0,
            seq: 0,
            wake: None,
            msg: None,
            notify: 0,
            held: Vec::new(),
            periodic: None,
        }
    }

    /// Job statistics, for a periodic thread.
    pub fn jobs(&self) -> Option<JobStats> {
        self.periodic.map(|p| p.stats)
    }

    /// Its periodic spec, if periodic.
    pub fn spec(&self) -> Option<PeriodicSpec> {
        self.periodic.map(|p| p.spec)
    }
}

/// The whole kernel state (one per RTOS; single CPU).
#[derive(Clone, Debug)]
pub struct Kernel {
    threads: Vec<Thread>,
    current: Tid,
    run_start: u64,
    seq: u64,
    timers: TimerQueue,
    mutexes: Vec<sync::MutexObj>,
    sems: Vec<sync::SemObj>,
    queues: Vec<sync::QueueObj>,
    /// Context switches so far.
    pub switches: u64,
}

impl Kernel {
    /// A kernel whose only thread is idle (thread 0, the caller's own context), running.
    pub fn new(now: u64) -> Self {
        let mut k = Self {
            threads: Vec::new(),
            current: IDLE,
            run_start: now,
            seq: 0,
            timers: TimerQueue::new(),
            mutexes: Vec::new(),
            sems: Vec::new(),
            queues: Vec::new(),
            switches: 0,
        };
        k.threads.push(Thread::new("idle", 0, State::Ready));
        k
    }

    /// Adds a ready thread at static priority `prio` (1..=255; 0 is idle's).
    pub fn spawn(&mut self, name: &'static str, prio: u8) -> Result<Tid, Error> {
        if self.threads.len() >= MAX_THREADS {
            return Err(Error::TooManyThreads);
        }
        let t = self.threads.len();
        self.threads
            .push(Thread::new(name, prio.max(1), State::Dormant));
        self.make_ready(t);
        Ok(t)
    }

    /// Adds a periodic thread whose first job is released at `first_release`. Its code
    /// loops: do one job, call [`Kernel::job_done`].
    pub fn spawn_periodic(
        &mut self,
        name: &'static str,
        prio: u8,
        spec: PeriodicSpec,
        first_release: u64,
    ) -> Result<Tid, Error> {
        if spec.budget == 0 || spec.budget > spec.deadline || spec.deadline > spec.period {
            return Err(Error::BadSpec);
        }
        if self.threads.len() >= MAX_THREADS {
            return Err(Error::TooManyThreads);
        }
        let t = self.threads.len();
        let mut th = Thread::new(name, prio.max(1), State::Dormant);
        th.periodic = Some(Periodic {
            spec,
            next_release: first_release,
            release: first_release,
            active: false,
            missed: false,
            used: 0,
            stats: JobStats::default(),
        });
        self.threads.push(th);
        self.timers.insert(first_release, t, TimerKind::Release);
        Ok(t)
    }

    /// The running thread.
    pub fn current(&self) -> Tid {
        self.current
    }

    /// All threads, by id.
    pub fn threads(&self) -> &[Thread] {
        &self.threads
    }

    /// One thread.
    pub fn thread(&self, t: Tid) -> Option<&Thread> {
        self.threads.get(t)
    }

    /// When the timer must next fire: the earliest timer-queue entry or the end of the
    /// running job's budget.
    pub fn next_event(&self) -> Option<u64> {
        let budget_end = self.threads[self.current]
            .periodic
            .filter(|p| p.active)
            .map(|p| {
                self.run_start
                    .saturating_add(p.spec.budget.saturating_sub(p.used))
            });
        match (self.timers.next(), budget_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The timer fired (or time passed): processes every due event and enforces the
    /// running job's budget.
    pub fn tick(&mut self, now: u64) {
        self.charge(now);
        while let Some(e) = self.timers.pop_due(now) {
            match e.kind {
                TimerKind::Wake => self.timeout(e.tid),
                TimerKind::Release => self.release(e.tid, e.when),
            }
        }
        let cur = self.current;
        if let Some(p) = self.threads[cur].periodic.as_mut() {
            if p.active && p.used >= p.spec.budget {
                p.stats.overruns += 1;
                if !p.missed {
                    p.stats.misses += 1;
                }
                p.active = false;
                self.threads[cur].state = State::Suspended;
            }
        }
    }

    /// Picks the thread to run. Returns `(from, to)` if that is not the running thread
    /// (the caller switches stacks), `None` otherwise.
    pub fn schedule(&mut self, now: u64) -> Option<(Tid, Tid)> {
        let best = self.pick();
        if best == self.current {
            return None;
        }
        self.charge(now);
        let from = self.current;
        self.current = best;
        self.threads[best].runs += 1;
        self.switches += 1;
        Some((from, best))
    }

    /// The running thread gives the CPU to other ready threads of its priority.
    pub fn yield_now(&mut self) {
        let cur = self.current;
        self.make_ready(cur);
    }

    /// The running thread sleeps until `when`.
    pub fn sleep_until(&mut self, when: u64) {
        let cur = self.current;
        self.block(cur, Wait::Sleep, Some(when));
    }

    /// The running periodic thread finished its job at `now`; it waits for the next
    /// release. Returns whether the job met its deadline.
    pub fn job_done(&mut self, now: u64) -> Result<bool, Error> {
        self.charge(now);
        let cur = self.current;
        let th = &mut self.threads[cur];
        let p = th.periodic.as_mut().ok_or(Error::NotPeriodic)?;
        let response = now.saturating_sub(p.release);
        let met = response <= p.spec.deadline && !p.missed;
        if p.active {
            p.stats.completed += 1;
            p.stats.max_response = p.stats.max_response.max(response);
            if !met && !p.missed {
                p.stats.misses += 1;
            }
        }
        p.active = false;
        th.state = State::Dormant;
        Ok(met)
    }

    /// Release time of the running periodic thread's current (or last) job.
    pub fn job_release(&self) -> Option<u64> {
        self.threads[self.current].periodic.map(|p| p.release)
    }

    /// How the last blocking call of `t` ended (cleared by reading).
    pub fn take_wake(&mut self, t: Tid) -> Option<Wake> {
        self.threads.get_mut(t)?.wake.take()
    }

    // ---- internals ---------------------------------------------------------------------

    fn pick(&self) -> Tid {
        let mut best = IDLE;
        for (i, t) in self.threads.iter().enumerate() {
            if t.state != State::Ready {
                continue;
            }
            let b = &self.threads[best];
            if b.state != State::Ready || t.prio > b.prio || (t.prio == b.prio && t.seq < b.seq) {
                best = i;
            }
        }
        best
    }

    /// Accounts the running thread's time (and its job's budget) up to `now`.
    fn charge(&mut self, now: u64) {
        let ran = now.saturating_sub(self.run_start);
        self.run_start = now;
        let th = &mut self.threads[self.current];
        th.cpu_time += ran;
        if let Some(p) = th.periodic.as_mut().filter(|p| p.active) {
            p.used += ran;
        }
    }

    fn make_ready(&mut self, t: Tid) {
        self.seq += 1;
        self.threads[t].seq = self.seq;
        self.threads[t].state = State::Ready;
    }

    fn block(&mut self, t: Tid, wait: Wait, timeout: Option<u64>) {
        self.threads[t].state = State::Blocked(wait);
        self.threads[t].wake = None;
        if let Some(when) = timeout {
            self.timers.insert(when, t, TimerKind::Wake);
        }
    }

    fn wake(&mut self, t: Tid, how: Wake) {
        self.timers.cancel(t, TimerKind::Wake);
        self.threads[t].wake = Some(how);
        self.make_ready(t);
    }

    fn timeout(&mut self, t: Tid) {
        let State::Blocked(w) = self.threads[t].state else {
            return;
        };
        let how = match w {
            Wait::Sleep => Wake::Ok,
            Wait::Sem(s) => {
                self.sems[s].waiters.retain(|&x| x != t);
                Wake::Timeout
            }
            Wait::Recv(q) => {
                self.queues[q].receivers.retain(|&x| x != t);
                Wake::Timeout
            }
            Wait::Send(q) => {
                self.queues[q].senders.retain(|&x| x != t);
                self.threads[t].msg = None;
                Wake::Timeout
            }
            Wait::Notify => Wake::Timeout,
            // Mutex waits have no timeout (it would complicate inheritance).
            Wait::Mutex(_) => return,
        };
        self.wake(t, how);
    }

    fn release(&mut self, t: Tid, when: u64) {
        let state = self.threads[t].state;
        let Some(p) = self.threads[t].periodic.as_mut() else {
            return;
        };
        p.stats.releases += 1;
        p.next_release = when.saturating_add(p.spec.period);
        let next = p.next_release;
        let start = if p.active {
            // The previous job is still running: it has missed its deadline.
            if !p.missed {
                p.stats.misses += 1;
                p.missed = true;
            }
            p.stats.skipped += 1;
            false
        } else {
            p.release = when;
            p.active = true;
            p.missed = false;
            p.used = 0;
            matches!(state, State::Dormant | State::Suspended)
        };
        self.timers.insert(next, t, TimerKind::Release);
        if start {
            self.make_ready(t);
        }
    }

    /// Highest-priority thread among `waiters` (ties: first in the list), and its index.
    fn best_of(&self, waiters: &[Tid]) -> Option<(usize, Tid)> {
        let mut best: Option<(usize, Tid)> = None;
        for (i, &w) in waiters.iter().enumerate() {
            if best.is_none_or(|(_, b)| self.threads[w].prio > self.threads[b].prio) {
                best = Some((i, w));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests;
