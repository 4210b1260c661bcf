//! Synchronisation primitives of the kernel: mutexes with priority inheritance, counting
//! semaphores, message queues and per-thread notification bits.
//!
//! Calls made by the running thread may block it ([`Op::Blocked`]); calls marked
//! "ISR-safe" never block and may be made from interrupt handlers (the ISR-to-thread
//! path: an interrupt handler gives a semaphore, sends a message or sets notification
//! bits, and the woken thread runs as soon as the interrupt returns if it has the highest
//! priority).
//!
//! Priority inheritance invariant: a thread's effective priority is the maximum of its
//! base priority and the effective priorities of all threads waiting for mutexes it owns.
//! Raising is propagated along the owner chain when a thread blocks; lowering is
//! recomputed when a mutex is handed over. Unlock hands the mutex directly to the
//! highest-priority waiter (no barging).

use super::{Error, Kernel, Op, State, Tid, Wait, Wake};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

#[derive(Clone, Debug, Default)]
pub(super) struct MutexObj {
    owner: Option<Tid>,
    waiters: Vec<Tid>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct SemObj {
    count: u32,
    max: u32,
    pub(super) waiters: Vec<Tid>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct QueueObj {
    buf: VecDeque<u64>,
    cap: usize,
    pub(super) receivers: Vec<Tid>,
    pub(super) senders: Vec<Tid>,
}

impl Kernel {
    // ---- mutexes -----------------------------------------------------------------------

    /// A new unlocked mutex.
    pub fn mutex_create(&mut self) -> usize {
        self.mutexes.push(MutexObj::default());
        self.mutexes.len() - 1
    }

    /// The owner of mutex `m`.
    pub fn mutex_owner(&self, m: usize) -> Option<Tid> {
        self.mutexes.get(m).and_then(|x| x.owner)
    }

    /// The running thread locks `m`, blocking while another thread owns it (no timeout).
    pub fn mutex_lock(&mut self, m: usize) -> Result<Op<()>, Error> {
        let cur = self.current;
        let owner = self.mutexes.get(m).ok_or(Error::NoSuchObject)?.owner;
        let Some(owner) = owner else {
            self.mutexes[m].owner = Some(cur);
            self.threads[cur].held.push(m);
            return Ok(Op::Done(()));
        };
        // Refuse to close a cycle: follow the owner chain from `owner`.
        let mut o = owner;
        for _ in 0..self.threads.len() + 1 {
            if o == cur {
                return Err(Error::WouldDeadlock);
            }
            match self.threads[o].state {
                State::Blocked(Wait::Mutex(m2)) => match self.mutexes[m2].owner {
                    Some(next) => o = next,
                    None => break,
                },
                _ => break,
            }
        }
        self.mutexes[m].waiters.push(cur);
        self.block(cur, Wait::Mutex(m), None);
        self.inherit(owner, self.threads[cur].prio);
        Ok(Op::Blocked)
    }

    /// The running thread unlocks `m`; its highest-priority waiter becomes the owner.
    pub fn mutex_unlock(&mut self, m: usize) -> Result<(), Error> {
        let cur = self.current;
        let mx = self.mutexes.get_mut(m).ok_or(Error::NoSuchObject)?;
        if mx.owner != Some(cur) {
            return Err(Error::NotOwner);
        }
        mx.owner = None;
        self.threads[cur].held.retain(|&x| x != m);
        if let Some((i, w)) = self.best_of(&self.mutexes[m].waiters) {
            self.mutexes[m].waiters.remove(i);
            self.mutexes[m].owner = Some(w);
            self.threads[w].held.push(m);
            self.wake(w, Wake::Ok);
            self.recompute(w);
        }
        self.recompute(cur);
        Ok(())
    }

    /// Raises `owner` (and the owners it waits for, transitively) to at least `prio`.
    fn inherit(&mut self, mut owner: Tid, prio: u8) {
        for _ in 0..self.threads.len() {
            if self.threads[owner].prio >= prio {
                return;
            }
            self.threads[owner].prio = prio;
            match self.threads[owner].state {
                State::Blocked(Wait::Mutex(m)) => match self.mutexes[m].owner {
                    Some(next) => owner = next,
                    None => return,
                },
                _ => return,
            }
        }
    }

    /// Recomputes `t`'s effective priority from its base and its mutexes' waiters, and
    /// passes a change on along the owner chain it may be blocked in.
    fn recompute(&mut self, mut t: Tid) {
        for _ in 0..self.threads.len() {
            let mut p = self.threads[t].base;
            for &m in &self.threads[t].held {
                for &w in &self.mutexes[m].waiters {
                    p = p.max(self.threads[w].prio);
                }
            }
            if p == self.threads[t].prio {
                return;
            }
            self.threads[t].prio = p;
            match self.threads[t].state {
                State::Blocked(Wait::Mutex(m)) => match self.mutexes[m].owner {
                    Some(next) => t = next,
                    None => return,
                },
                _ => return,
            }
        }
    }

    // ---- semaphores --------------------------------------------------------------------

    /// A new counting semaphore holding `initial` units, at most `max`.
    pub fn sem_create(&mut self, initial: u32, max: u32) -> usize {
        self.sems.push(SemObj {
            count: initial.min(max),
            max,
            waiters: Vec::new(),
        });
        self.sems.len() - 1
    }

    /// Gives one unit (ISR-safe): wakes the highest-priority waiter, or counts it.
    pub fn sem_give(&mut self, s: usize) -> Result<(), Error> {
        let waiters = &self.sems.get(s).ok_or(Error::NoSuchObject)?.waiters;
        if let Some((i, w)) = self.best_of(waiters) {
            self.sems[s].waiters.remove(i);
            self.wake(w, Wake::Ok);
            return Ok(());
        }
        let sem = &mut self.sems[s];
        if sem.count >= sem.max {
            return Err(Error::Full);
        }
        sem.count += 1;
        Ok(())
    }

    /// The running thread takes one unit, blocking until one is given or until the
    /// absolute `timeout` (then [`Kernel::take_wake`] says [`Wake::Timeout`]).
    pub fn sem_take(&mut self, s: usize, timeout: Option<u64>) -> Result<Op<()>, Error> {
        let cur = self.current;
        let sem = self.sems.get_mut(s).ok_or(Error::NoSuchObject)?;
        if sem.count > 0 {
            sem.count -= 1;
            return Ok(Op::Done(()));
        }
        sem.waiters.push(cur);
        self.block(cur, Wait::Sem(s), timeout);
        Ok(Op::Blocked)
    }

    /// Units available in semaphore `s`.
    pub fn sem_count(&self, s: usize) -> Option<u32> {
        self.sems.get(s).map(|x| x.count)
    }

    // ---- message queues ----------------------------------------------------------------

    /// A new queue of up to `cap` (at least 1) 64-bit messages.
    pub fn queue_create(&mut self, cap: usize) -> usize {
        self.queues.push(QueueObj {
            buf: VecDeque::with_capacity(cap.max(1)),
            cap: cap.max(1),
            receivers: Vec::new(),
            senders: Vec::new(),
        });
        self.queues.len() - 1
    }

    /// Sends without blocking (ISR-safe): hands `msg` to the highest-priority waiting
    /// receiver, or queues it; [`Error::Full`] if there is no room.
    pub fn queue_try_send(&mut self, q: usize, msg: u64) -> Result<(), Error> {
        let qu = self.queues.get(q).ok_or(Error::NoSuchObject)?;
        if let Some((i, r)) = self.best_of(&qu.receivers) {
            self.queues[q].receivers.remove(i);
            self.threads[r].msg = Some(msg);
            self.wake(r, Wake::Ok);
            return Ok(());
        }
        let qu = &mut self.queues[q];
        if qu.buf.len() >= qu.cap {
            return Err(Error::Full);
        }
        qu.buf.push_back(msg);
        Ok(())
    }

    /// The running thread sends `msg`, blocking while the queue is full (until the
    /// absolute `timeout`).
    pub fn queue_send(
        &mut self,
        q: usize,
        msg: u64,
        timeout: Option<u64>,
    ) -> Result<Op<()>, Error> {
        match self.queue_try_send(q, msg) {
            Err(Error::Full) => {
                let cur = self.current;
                self.threads[cur].msg = Some(msg);
                self.queues[q].senders.push(cur);
                self.block(cur, Wait::Send(q), timeout);
                Ok(Op::Blocked)
            }
            r => r.map(Op::Done),
        }
    }

    /// The running thread receives the oldest message, blocking while the queue is empty
    /// (until the absolute `timeout`); after blocking, [`Kernel::take_msg`] has it.
    pub fn queue_recv(&mut self, q: usize, timeout: Option<u64>) -> Result<Op<u64>, Error> {
        let cur = self.current;
        let qu = self.queues.get_mut(q).ok_or(Error::NoSuchObject)?;
        let Some(msg) = qu.buf.pop_front() else {
            qu.receivers.push(cur);
            self.block(cur, Wait::Recv(q), timeout);
            return Ok(Op::Blocked);
        };
        // Room now: move the highest-priority blocked sender's message in.
        if let Some((i, s)) = self.best_of(&self.queues[q].senders) {
            self.queues[q].senders.remove(i);
            if let Some(m) = self.threads[s].msg.take() {
                self.queues[q].buf.push_back(m);
            }
            self.wake(s, Wake::Ok);
        }
        Ok(Op::Done(msg))
    }

    /// The message a receive that blocked got (cleared by reading).
    pub fn take_msg(&mut self, t: Tid) -> Option<u64> {
        self.threads.get_mut(t)?.msg.take()
    }

    /// Messages waiting in queue `q`.
    pub fn queue_len(&self, q: usize) -> Option<usize> {
        self.queues.get(q).map(|x| x.buf.len())
    }

    // ---- notifications -----------------------------------------------------------------

    /// Sets notification `bits` of thread `t` (ISR-safe), waking it if it waits for them.
    pub fn notify(&mut self, t: Tid, bits: u32) -> Result<(), Error> {
        let th = self.threads.get_mut(t).ok_or(Error::NoSuchObject)?;
        th.notify |= bits;
        if th.state == State::Blocked(Wait::Notify) && th.notify != 0 {
            self.wake(t, Wake::Ok);
        }
        Ok(())
    }

    /// The running thread takes its pending notification bits, blocking while there are
    /// none (until the absolute `timeout`); after blocking, [`Kernel::take_notify`].
    pub fn wait_notify(&mut self, timeout: Option<u64>) -> Op<u32> {
        let cur = self.current;
        match core::mem::take(&mut self.threads[cur].notify) {
            0 => {
                self.block(cur, Wait::Notify, timeout);
                Op::Blocked
            }
            bits => Op::Done(bits),
        }
    }

    /// Takes `t`'s pending notification bits.
    pub fn take_notify(&mut self, t: Tid) -> u32 {
        self.threads
            .get_mut(t)
            .map_or(0, |th| core::mem::take(&mut th.notify))
    }
}
