//! A domain's health as dom0 supervises it: its heartbeat watchdog and the record of its
//! latest restart (why, when, how long it took to come back). Pure and host-tested; the
//! supervisor ([`crate::supervise`]) owns one [`Health`] per domain and the shell feeds it
//! readings of every watched domain's beats and CPU time, all in one
//! `CapOp::DomainBeatsMany` call ([`readings`]).
//!
//! Watchdog rules (times are counter ticks):
//! - Each incarnation starts silent. It must send its first beat within `first_beat` of its
//!   start (boot and getting ready take longer than one loop round), then never stay silent
//!   longer than `timeout`.
//! - Silence is counted in dom0's own observed time: each reading adds the time since the
//!   previous one, but at most `max_step` (two reading periods). dom0 reads every
//!   [`reading_period_ms`] (0.5 to 1 s), so on a machine that
//!   runs its CPUs this is wall time; when the host stops running the emulated machine
//!   (a loaded 2-core CI host running TCG can leave every vCPU unscheduled for many
//!   seconds, dom0's included, while the counter runs on), the gap is credited as one step,
//!   not as silence the domain could have broken. A domain hung for real stays silent while
//!   dom0 keeps running and is caught within `timeout` plus one reading.
//! - Silence only counts fully while the domain ran: each reading says whether its vCPUs
//!   got CPU time since the previous one. A domain that did not run (blocked waiting for
//!   its timer, or left unscheduled behind busier vCPUs of its pCPU on a starved host) had
//!   no chance to beat, so that time counts a quarter ([`IDLE_SHARE`]). A domain wedged
//!   in a busy-wait runs and is caught within `timeout`; one wedged asleep (in WFI with
//!   nothing to wake it) is still caught, within four timeouts.
//! - A new beat resets the silence to the time since that beat (the microvisor's stamp).
//! - A paused domain does not beat and is not judged; silence restarts when it resumes.
//! - The watchdog fires once per incarnation; the restart that follows re-arms it.

use alloc::vec::Vec;
use protocol::control::{Beats, BeatsReading, CapError};
use protocol::mgmt::{RestartReason, RestartRecord};

/// `ticks` of a counter running at `hz` in whole milliseconds (0 Hz counts as 1 Hz, so a
/// bad frequency cannot divide by zero).
pub fn ticks_to_ms(ticks: u64, hz: u64) -> u64 {
    ticks.saturating_mul(1000) / hz.max(1)
}

/// The share of time counted as silence while the domain did not run (1 in 4).
pub const IDLE_SHARE: u64 = 4;

/// Shortest period between two heartbeat readings, in milliseconds.
pub const READ_MIN_MS: u32 = 500;
/// Longest period between two heartbeat readings, in milliseconds.
pub const READ_MAX_MS: u32 = 1000;

/// How often dom0 reads the heartbeats of domains whose watchdog timeouts are
/// `timeouts_ms`: a tenth of the shortest, within [`READ_MIN_MS`]..=[`READ_MAX_MS`], so a
/// silence is caught at most a tenth of its timeout late (half a second for a 1 s one),
/// and an idle system with the default 10 s watchdogs wakes dom0 once a second for them,
/// not twice (each reading is a locked call and a switch on a shared pCPU).
pub fn reading_period_ms(timeouts_ms: impl IntoIterator<Item = u32>) -> u32 {
    timeouts_ms
        .into_iter()
        .min()
        .map_or(READ_MAX_MS, |t| (t / 10).clamp(READ_MIN_MS, READ_MAX_MS))
}

/// What a heartbeat reading means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing new to act on.
    Quiet,
    /// The incarnation's first beat, stamped `at` (its recovery ends there).
    FirstBeat {
        /// Counter value of the beat.
        at: u64,
    },
    /// Silent too long: restart it. `silent` ticks since its latest sign of life.
    Missed {
        /// How long it has been silent.
        silent: u64,
    },
}

/// One domain's heartbeat watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watchdog {
    /// Longest silence after a beat.
    pub timeout: u64,
    /// Longest wait for an incarnation's first beat.
    pub first_beat: u64,
    /// Most silence one reading may add (see the module docs).
    pub max_step: u64,
    /// Silence so far, in dom0's observed time.
    silent: u64,
    /// When the previous reading (or the start, or the resume) was.
    prev: u64,
    /// Beats counted at the previous reading.
    count: u64,
    /// Its first beat in this incarnation was seen.
    seen_first: bool,
    /// Fired in this incarnation (waits for the restart).
    fired: bool,
    /// The latest beat's stamp (0: none).
    last: u64,
}

impl Watchdog {
    /// A watchdog on an incarnation started at `now`.
    pub const fn new(timeout: u64, first_beat: u64, max_step: u64, now: u64) -> Self {
        Self {
            timeout,
            first_beat,
            max_step,
            silent: 0,
            prev: now,
            count: 0,
            seen_first: false,
            fired: false,
            last: 0,
        }
    }

    /// A new incarnation started at `now` (a restart in place).
    pub fn restarted(&mut self, now: u64) {
        *self = Self::new(self.timeout, self.first_beat, self.max_step, now);
    }

    /// It became running again at `now` (unpaused): silence counts from here.
    pub fn resumed(&mut self, now: u64) {
        self.silent = 0;
        self.prev = now;
    }

    /// This incarnation's first beat was seen: it got ready.
    pub const fn ready(&self) -> bool {
        self.seen_first
    }

    /// Takes a reading made after the incarnation stopped (no silence to judge): returns
    /// the stamp of its first beat if it had one that was not seen yet.
    pub fn got_ready(&mut self, beats: Beats) -> Option<u64> {
        if self.seen_first || beats.count == 0 {
            return None;
        }
        self.seen_first = true;
        self.count = beats.count;
        self.last = beats.last;
        Some(beats.first)
    }

    /// The latest beat seen in this incarnation (0: none).
    pub const fn last_beat(&self) -> u64 {
        self.last
    }

    /// Judges a `DomainBeats` reading taken at `now` while the domain runs; `ran`: its
    /// vCPUs got CPU time since the previous reading.
    pub fn check(&mut self, beats: Beats, ran: bool, now: u64) -> Check {
        let mut step = now.saturating_sub(self.prev).min(self.max_step);
        if !ran {
            step /= IDLE_SHARE;
        }
        self.prev = now;
        if self.fired {
            return Check::Quiet;
        }
        let fresh = beats.count != self.count;
        if fresh {
            self.count = beats.count;
            self.last = beats.last;
            self.silent = now.saturating_sub(beats.last).min(step);
        } else {
            self.silent = self.silent.saturating_add(step);
        }
        let limit = if beats.count == 0 {
            self.first_beat
        } else {
            self.timeout
        };
        if self.silent > limit {
            self.fired = true;
            return Check::Missed {
                silent: self.silent,
            };
        }
        if beats.count != 0 && !self.seen_first {
            self.seen_first = true;
            return Check::FirstBeat { at: beats.first };
        }
        Check::Quiet
    }
}

/// What dom0 keeps about a domain's health across its incarnations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Its watchdog, if it has one.
    pub watchdog: Option<Watchdog>,
    /// Why the restart now pending (or being carried out) happens, and when dom0 decided it.
    pub pending: Option<(RestartReason, u64)>,
    /// The latest restart: why, when dom0 decided it (ticks), recovery in ticks once known.
    pub last: Option<(RestartReason, u64, Option<u64>)>,
    /// Why dom0 holds it instead of restarting it.
    pub held: Option<alloc::string::String>,
}

impl Health {
    /// A restart was decided at `now` for `reason` (it may wait for a backoff).
    pub fn decided(&mut self, reason: RestartReason, now: u64) {
        self.pending = Some((reason, now));
    }

    /// The restart was carried out at `now`: the pending reason (a user's restart if none)
    /// becomes the latest restart and the watchdog re-arms for the new incarnation.
    pub fn restarted(&mut self, now: u64) {
        let (reason, at) = self.pending.take().unwrap_or((RestartReason::User, now));
        self.last = Some((reason, at, None));
        if let Some(w) = self.watchdog.as_mut() {
            w.restarted(now);
        }
    }

    /// The new incarnation's first beat came at counter value `at`: its recovery ends.
    pub fn first_beat(&mut self, at: u64) {
        if let Some((_, decided, recovery @ None)) = self.last.as_mut() {
            *recovery = Some(at.saturating_sub(*decided));
        }
    }

    /// The latest restart as the management protocol shows it, at `now` (`hz` ticks/s).
    pub fn record(&self, now: u64, hz: u64) -> Option<RestartRecord> {
        let ms = |t: u64| ticks_to_ms(t, hz);
        self.last
            .as_ref()
            .map(|(reason, at, recovery)| RestartRecord {
                reason: reason.clone(),
                ago_ms: ms(now.saturating_sub(*at)),
                recovery_ms: recovery.map(ms),
            })
    }
}

/// One watchdog reading per domain asked about, from a `DomainBeatsMany` answer for `asked`
/// domains: each its beats and CPU time, or its own error. A call that failed as a whole,
/// or answered for a different number of domains, fails every reading (the supervisor
/// ignores a failed reading: the next one counts the time since the last good one).
pub fn readings(
    asked: usize,
    answer: Result<Vec<Result<BeatsReading, CapError>>, CapError>,
) -> Vec<Result<(Beats, u64), CapError>> {
    match answer {
        Ok(each) if each.len() == asked => each
            .into_iter()
            .map(|r| r.map(|b| (b.beats, b.cpu_ticks)))
            .collect(),
        Ok(_) => alloc::vec![Err(CapError::BadMessage); asked],
        Err(e) => alloc::vec![Err(e); asked],
    }
}

#[cfg(test)]
mod tests;
