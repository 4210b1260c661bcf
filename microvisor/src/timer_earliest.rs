//! The earliest virtual-timer deadline among the switched-out vCPUs placed on one CPU,
//! remembered between the scan that found it and the re-arming of that CPU's EL2 timer.
//!
//! A shared vCPU's timer interrupt scans the CPU's switched-out vCPUs once to find the
//! expired timers (`Hyp::deliver_expired_timers`), then switches vCPUs and re-arms the EL2
//! timer for the earliest deadline left, which needed a second scan of the same vCPUs. The
//! first scan now records that earliest deadline here; switching a vCPU out adds its
//! deadline, switching one in forgets the answer if that vCPU may have held it, so the
//! re-arm uses the answer only while it is exact and scans otherwise.
//!
//! The owner keeps an answer for one locked pass only (forgotten when the pass begins and
//! ends): within a pass only its own CPU's code runs, and the only changes to the CPU's
//! switched-out timers between the scan and the re-arm are the switch-out and switch-in
//! reported here. Never late: an answer is either exactly the earliest deadline or absent.
//!
//! Beside it, the pure rules about one virtual timer that the locked scan and the fast path
//! share: whether it is armed ([`armed`]), when the EL2 timer must fire for a switched-out
//! vCPU ([`wake_at`], a lead early while it waits for it: see `hyp::vtimer`), and what the
//! scan does with it ([`switched_out`]).
#![forbid(unsafe_code)]

/// `CNTV_CTL_EL0.ENABLE`.
pub const CNTV_ENABLE: u64 = 1 << 0;
/// `CNTV_CTL_EL0.IMASK`.
pub const CNTV_IMASK: u64 = 1 << 1;

/// Whether a virtual timer with control register `ctl` will raise its interrupt: enabled
/// and not masked.
pub const fn armed(ctl: u64) -> bool {
    ctl & (CNTV_ENABLE | CNTV_IMASK) == CNTV_ENABLE
}

/// What is known of one CPU's earliest switched-out virtual-timer deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EarliestTimer {
    /// `None`: not known (scan). `Some(None)`: none armed. `Some(Some(t))`: exactly `t`.
    known: Option<Option<u64>>,
}

impl EarliestTimer {
    /// Nothing known.
    pub const UNKNOWN: Self = Self { known: None };

    /// Drops what is known.
    pub fn forget(&mut self) {
        self.known = None;
    }

    /// A full scan found `earliest` (`None`: no armed timer).
    pub fn found(&mut self, earliest: Option<u64>) {
        self.known = Some(earliest);
    }

    /// A vCPU joined the set (was switched out), its timer armed for `deadline` (`None`:
    /// not armed, or not counted on this CPU).
    pub fn joined(&mut self, deadline: Option<u64>) {
        if let (Some(known), Some(t)) = (self.known.as_mut(), deadline) {
            *known = Some(known.map_or(t, |k| k.min(t)));
        }
    }

    /// A vCPU left the set (was switched in), its timer armed for `deadline`. If it may
    /// have been the earliest, the answer is no longer known.
    pub fn left(&mut self, deadline: Option<u64>) {
        let Some(t) = deadline else { return };
        // `Some(None)` with an armed one leaving cannot happen while the answer is exact;
        // forgotten all the same.
        if matches!(self.known, Some(k) if k.is_none_or(|k| t <= k)) {
            self.known = None;
        }
    }

    /// The earliest deadline, if known exactly (`Some(None)`: none armed).
    pub fn get(&self) -> Option<Option<u64>> {
        self.known
    }
}

/// What the EL2 timer's expiry does about one switched-out vCPU's virtual timer
/// (`Hyp::deliver_expired_timers`; the lead is `hyp::vtimer`'s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchedOut {
    /// Its deadline passed: its timer interrupt is injected.
    Due,
    /// It waits (a trapped WFI) for a timer due within the lead: it is woken now, without
    /// an interrupt, so that its pCPU switches it in ahead of the deadline.
    WakeAhead,
    /// Later: the EL2 timer must fire by this time for it.
    Later(u64),
    /// Nothing (its timer is not armed, or it is powered off).
    Idle,
}

/// When the EL2 timer must fire for a switched-out vCPU whose armed timer is due at
/// `deadline`: `lead` ticks earlier while it waits for it (`blocked`), else at the
/// deadline.
pub fn wake_at(deadline: u64, blocked: bool, lead: u64) -> u64 {
    if blocked {
        deadline.saturating_sub(lead)
    } else {
        deadline
    }
}

/// Whether a vCPU whose armed timer is due at `deadline` should wait for it rather than
/// give up its pCPU: it is due within `lead` of `now` (or already due).
pub fn due_within(deadline: u64, now: u64, lead: u64) -> bool {
    wake_at(deadline, true, lead) <= now
}

/// Classifies a switched-out vCPU's timer at `now`. An armed timer whose deadline passed is
/// due even if its vCPU is powered off (it is injected all the same and seen when it
/// powers on again).
pub fn switched_out(
    armed: bool,
    powered: bool,
    blocked: bool,
    deadline: u64,
    now: u64,
    lead: u64,
) -> SwitchedOut {
    if armed && deadline <= now {
        return SwitchedOut::Due;
    }
    if !armed || !powered {
        return SwitchedOut::Idle;
    }
    match wake_at(deadline, blocked, lead) {
        t if t <= now => SwitchedOut::WakeAhead,
        t => SwitchedOut::Later(t),
    }
}

#[cfg(test)]
#[path = "timer_earliest_tests.rs"]
mod tests;
