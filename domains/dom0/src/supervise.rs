//! The supervision state machine: what dom0 does when a domain changes state.
//!
//! A stopped domain gets its policy (xl's `on_poweroff`/`on_reboot`/`on_crash`): destroy,
//! preserve, or restart in place. Restarts after crashes are counted over a sliding window;
//! a domain that would exceed the crash-loop limit is held stopped (as `preserve`) and
//! reported once. The delay before a crash restart is the backoff ([`Limits::crash_delay`]):
//! none when the crashed incarnation had proved itself (it sent its first heartbeat, or ran
//! [`Limits::settle`]) or when it is the first crash in the window, so a driver domain that
//! fails once is back within its own restart time; an incarnation that dies before proving
//! itself, after an earlier crash in the window, is in a crash loop and waits exponentially
//! longer. Either way the hold bounds the restarts to `max_restarts` per window. A reboot
//! waits `backoff_min` (a domain rebooting at once would otherwise spin, and reboots do not
//! count toward the hold); a user's `ctl restart` never waits. Time is the virtual counter,
//! passed in as ticks, so everything here runs on the host. The shell (`main.rs`) issues
//! the hypercalls the [`Command`]s ask for and reports their results back.

use crate::health::{Check, Health, Watchdog};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use protocol::cap::CapHandle;
use protocol::control::{Beats, CapError, DomainState, StopReason};
use protocol::manifest::{Action, ManifestDomain};
use protocol::mgmt::{crash_code_text, HealthRow, RestartReason};

mod limits;
pub use limits::Limits;

/// A domain's lifecycle policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// After a power-off.
    pub on_poweroff: Action,
    /// After a reboot request.
    pub on_reboot: Action,
    /// After a crash (stage-2 fault, unhandled trap, reported panic).
    pub on_crash: Action,
}

impl Policy {
    /// xl's defaults: destroy, restart, destroy.
    pub const XL_DEFAULT: Self = Self {
        on_poweroff: Action::Destroy,
        on_reboot: Action::Restart,
        on_crash: Action::Destroy,
    };

    /// The manifest's policy for `d`.
    pub fn of(d: &ManifestDomain) -> Self {
        Self {
            on_poweroff: d.on_poweroff,
            on_reboot: d.on_reboot,
            on_crash: d.on_crash,
        }
    }

    /// The action for a stop.
    pub fn action(&self, r: &StopReason) -> Action {
        match r {
            StopReason::PowerOff => self.on_poweroff,
            StopReason::Reboot => self.on_reboot,
            _ => self.on_crash,
        }
    }
}

/// A hypercall the shell must make for the supervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `DomainDestroy` of watched domain `i`, then [`Supervisor::destroyed`].
    Destroy(usize),
}

/// A domain state in words: `running`, `stopped: stage-2 fault at 0x...`, ...
pub fn state_text(s: &DomainState) -> String {
    match s {
        DomainState::Created => "created".into(),
        DomainState::Running => "running".into(),
        DomainState::Paused => "paused".into(),
        DomainState::Stopped(r) => format!("stopped: {}", stop_text(r)),
        other => format!("{other:?}"),
    }
}

/// Why a domain stopped, in words.
pub fn stop_text(r: &StopReason) -> String {
    match r {
        StopReason::PowerOff => "powered off".into(),
        StopReason::Reboot => "reboot requested".into(),
        StopReason::Stage2Fault { ipa, esr } => {
            format!("stage-2 fault at {ipa:#x} (esr {esr:#x})")
        }
        StopReason::UnhandledTrap { esr, pc } => {
            format!("unhandled trap esr {esr:#x} at pc {pc:#x}")
        }
        StopReason::Crashed { code } => format!("crashed (code {code:#x})"),
        other => format!("{other:?}"),
    }
}

fn is_crash(r: &StopReason) -> bool {
    !matches!(r, StopReason::PowerOff | StopReason::Reboot)
}

/// Why a stop leads to a restart, for `ctl list`.
fn restart_reason(r: &StopReason) -> RestartReason {
    match r {
        StopReason::PowerOff => RestartReason::PowerOff,
        StopReason::Reboot => RestartReason::Reboot,
        StopReason::Crashed { code } => RestartReason::Crash {
            what: crash_code_text(*code),
        },
        other => RestartReason::Crash {
            what: stop_text(other),
        },
    }
}

/// One supervised domain.
#[derive(Clone, Debug)]
pub struct Watched {
    /// Its name.
    pub name: String,
    /// Its id (kept across restarts).
    pub domid: u16,
    /// dom0's current Domain cap for it.
    pub handle: CapHandle,
    policy: Policy,
    state: DomainState,
    last_error: Option<CapError>,
    /// Counter values of recent restarts after a crash (within the window). A reboot, the
    /// guest's own or a user's, and a user's `ctl restart` are not crashes and do not count
    /// toward the crash-loop hold (ux review: the 4th `ctl reboot` in 30 s held the guest).
    recent: Vec<u64>,
    /// The pending restart follows a crash (it will count in `recent`).
    pending_crash: bool,
    /// Restarts since boot.
    total_restarts: u32,
    /// When a restart is due.
    pending: Option<u64>,
    /// Held after a crash loop (or a failed restart).
    held: bool,
    /// When its current incarnation started (0: at boot).
    started: u64,
    /// Destroyed: no longer watched.
    gone: bool,
    /// The stale-handle self-check has been reported.
    stale_checked: bool,
    /// Restarted, and not yet seen again: the microvisor rebuilds the new incarnation once
    /// no CPU holds the old one's vCPUs, and until then the new handle queries as `Stale`.
    restarting: bool,
    /// Where its vCPUs run now (`ctl vcpu-pin` moves them).
    pub placement: Vec<protocol::control::VcpuPlacement>,
    /// Where it was built to run: a restart in place rebuilds it there, dropping re-pins.
    configured: Vec<protocol::control::VcpuPlacement>,
    /// Its watchdog and restart record.
    health: Health,
    /// Its CPU time at the latest heartbeat reading (did it run since?).
    cpu_ticks: u64,
    /// Crash restarts allowed within `window` ([`Limits::max_restarts`] unless the system
    /// sets its `crash_limit`).
    max_restarts: usize,
    /// The sliding window its crash restarts are counted over, in ticks.
    window: u64,
}

impl Watched {
    /// Destroyed: no longer supervised (and not listed).
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// Its watchdog and restart record.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Held stopped (crash loop, failed restart or destroy): dom0 gave up on it, so the
    /// connections it serves as a backend are closed ([`crate::restart::closing_writes`]).
    pub fn is_held(&self) -> bool {
        self.held && !self.gone
    }

    /// Whether its current incarnation proved itself by `now`: it sent its first heartbeat,
    /// or ran `settle` ticks.
    fn proved(&self, now: u64, settle: u64) -> bool {
        self.health.watchdog.is_some_and(|w| w.ready())
            || now.saturating_sub(self.started) >= settle
    }

    /// Its supervision facts for the management protocol, at `now` (`hz` ticks/s).
    pub fn health_row(&self, now: u64, hz: u64) -> HealthRow {
        let ms = |t: u64| crate::health::ticks_to_ms(t, hz);
        let w = self.health.watchdog.as_ref();
        HealthRow {
            id: self.domid,
            name: self.name.clone(),
            incarnation: self.total_restarts,
            last_restart: self.health.record(now, hz),
            watchdog_ms: w.map(|w| u32::try_from(ms(w.timeout)).unwrap_or(u32::MAX)),
            beat_ago_ms: w
                .map(Watchdog::last_beat)
                .filter(|&t| t != 0)
                .map(|t| ms(now.saturating_sub(t))),
            held: self.health.held.clone(),
        }
    }

    /// Its incarnation's first beat came at `at`: records the recovery; returns the line
    /// reporting it (none after the first boot).
    fn got_ready(&mut self, at: u64, hz: u64) -> Option<String> {
        self.health.first_beat(at);
        let r = self.health.last.as_ref().and_then(|(_, _, r)| *r)?;
        Some(format!(
            "{}: ready, recovered in {} ms",
            self.who(),
            crate::health::ticks_to_ms(r, hz)
        ))
    }

    fn who(&self) -> String {
        format!("{} (d{})", self.name, self.domid)
    }
}

/// The domains dom0 watches and what it last knew of each.
#[derive(Clone, Debug)]
pub struct Supervisor {
    limits: Limits,
    domains: Vec<Watched>,
}

impl Supervisor {
    /// Nothing watched yet.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            domains: Vec::new(),
        }
    }

    /// Watches a domain last known to be in `state`.
    pub fn watch(
        &mut self,
        name: &str,
        domid: u16,
        handle: CapHandle,
        state: DomainState,
        policy: Policy,
    ) {
        self.domains.push(Watched {
            name: name.to_string(),
            domid,
            handle,
            policy,
            state,
            last_error: None,
            recent: Vec::new(),
            pending_crash: false,
            total_restarts: 0,
            pending: None,
            held: false,
            started: 0,
            gone: false,
            stale_checked: false,
            restarting: false,
            placement: Vec::new(),
            configured: Vec::new(),
            health: Health::default(),
            cpu_ticks: 0,
            max_restarts: self.limits.max_restarts,
            window: self.limits.window,
        });
    }

    /// Sets the crash-loop limit of the domain watched last: `max_restarts` crash restarts
    /// within `window` ticks (the system's `crash_limit`; the default is [`Limits`]'s).
    ///
    /// An empty `window` is refused (false; the default stays): no two crashes would ever
    /// fall into it, so the domain could never be held.
    pub fn limit_crashes(&mut self, max_restarts: usize, window: u64) -> bool {
        match self.domains.last_mut() {
            Some(w) if window > 0 => {
                w.max_restarts = max_restarts;
                w.window = window;
                true
            }
            _ => false,
        }
    }

    /// Puts a heartbeat watchdog on the domain watched last, started at `now`: silence
    /// after a beat longer than `timeout`, or no first beat within `first_beat` of a start,
    /// is treated as a crash (ticks). One reading adds at most `max_step` of silence
    /// ([`crate::health`]).
    pub fn guard(&mut self, timeout: u64, first_beat: u64, max_step: u64, now: u64) {
        if let Some(w) = self.domains.last_mut() {
            w.health.watchdog = Some(Watchdog::new(timeout, first_beat, max_step, now));
        }
    }

    /// Live domains whose watchdog wants a heartbeat reading now: running as far as dom0
    /// knows, not held, no restart pending or under way.
    pub fn beat_watch(&self) -> Vec<usize> {
        self.domains
            .iter()
            .enumerate()
            .filter(|(_, d)| {
                !d.gone
                    && !d.held
                    && !d.restarting
                    && d.pending.is_none()
                    && d.state == DomainState::Running
                    && d.health.watchdog.is_some()
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Records a reading of domain `i` taken at `now` (its beats and CPU time,
    /// [`crate::health::readings`]); returns the line to
    /// print and the command to carry out, as [`Supervisor::observe`] does. A watchdog that
    /// fires is a crash: the `on_crash` policy applies, with its backoff and crash-loop
    /// hold. A failed reading is ignored (the domain may be restarting; `observe` reports
    /// query errors).
    pub fn beats(
        &mut self,
        i: usize,
        reading: Result<(Beats, u64), CapError>,
        now: u64,
    ) -> (Option<String>, Option<Command>) {
        let hz = self.limits.hz.max(1);
        let Ok((beats, cpu_ticks)) = reading else {
            return (None, None);
        };
        let Some(d) = self.domains.get_mut(i).filter(|d| !d.gone) else {
            return (None, None);
        };
        let Some(w) = d.health.watchdog.as_mut() else {
            return (None, None);
        };
        let ran = cpu_ticks != core::mem::replace(&mut d.cpu_ticks, cpu_ticks);
        match w.check(beats, ran, now) {
            Check::Quiet => (None, None),
            Check::FirstBeat { at } => (d.got_ready(at, hz), None),
            Check::Missed { silent } => {
                let silent_ms = crate::health::ticks_to_ms(silent, hz);
                let why = format!("no heartbeat for {silent_ms} ms (watchdog)");
                let action = d.policy.on_crash;
                self.react(
                    i,
                    why,
                    true,
                    action,
                    RestartReason::Watchdog { silent_ms },
                    now,
                )
            }
        }
    }

    /// Records the heartbeats of domain `i`'s incarnation, read once it stopped and before
    /// its stop is observed: one that beat had got ready even if dom0's periodic reading
    /// (twice a second) had not seen it yet, so its crash is no sign of a crash loop.
    /// Returns the recovery line [`Supervisor::beats`] gives for a first beat.
    pub fn final_beats(&mut self, i: usize, reading: Result<Beats, CapError>) -> Option<String> {
        let hz = self.limits.hz.max(1);
        let d = self.domains.get_mut(i).filter(|d| !d.gone)?;
        let at = d.health.watchdog.as_mut()?.got_ready(reading.ok()?)?;
        d.got_ready(at, hz)
    }

    /// Records where the vCPUs of the domain watched last run.
    pub fn placed(&mut self, vcpus: &[protocol::control::VcpuPlacement]) {
        if let Some(w) = self.domains.last_mut() {
            w.placement = vcpus.to_vec();
            w.configured = vcpus.to_vec();
        }
    }

    /// Records that vCPU `vcpu` of domain `i` was re-pinned to `to` at run time (until its
    /// next restart), so placements made after it see where it is.
    pub fn repinned(&mut self, i: usize, vcpu: u16, to: protocol::control::VcpuPlacement) {
        if let Some(p) = self
            .domains
            .get_mut(i)
            .and_then(|w| w.placement.get_mut(usize::from(vcpu)))
        {
            *p = to;
        }
    }

    /// pCPUs held exclusively by domains still alive.
    pub fn exclusive_pcpus(&self) -> Vec<u16> {
        self.domains
            .iter()
            .filter(|w| !w.gone)
            .flat_map(|w| w.placement.iter())
            .filter(|p| p.exclusive)
            .map(|p| p.pcpu)
            .collect()
    }

    /// The watched domains.
    pub fn domains(&self) -> &[Watched] {
        &self.domains
    }

    /// Indices of live watched domains whose bit is set in a `DomainEvents` mask.
    pub fn changed(&self, mask: u64) -> Vec<usize> {
        self.domains
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.gone && d.domid < 64 && mask & (1 << d.domid) != 0)
            .map(|(i, _)| i)
            .collect()
    }

    /// Records the result of querying domain `i` at `now`; returns the line to print (if
    /// any) and the command to carry out (if any). A query error is reported once per
    /// distinct error.
    pub fn observe(
        &mut self,
        i: usize,
        query: Result<DomainState, CapError>,
        now: u64,
    ) -> (Option<String>, Option<Command>) {
        let Some(d) = self.domains.get_mut(i).filter(|d| !d.gone) else {
            return (None, None);
        };
        let new = match query {
            Ok(s) => s,
            Err(CapError::Stale) if d.restarting => return (None, None),
            Err(e) if d.last_error == Some(e) => return (None, None),
            Err(e) => {
                d.last_error = Some(e);
                return (Some(format!("{}: query failed: {e}", d.who())), None);
            }
        };
        d.last_error = None;
        d.restarting = false;
        if new == d.state {
            return (None, None);
        }
        let old = core::mem::replace(&mut d.state, new);
        if new == DomainState::Running {
            if let Some(w) = d.health.watchdog.as_mut() {
                w.resumed(now);
            }
        }
        let DomainState::Stopped(reason) = new else {
            let line = format!("{}: {} -> {}", d.who(), state_text(&old), state_text(&new));
            return (Some(line), None);
        };
        if d.held || d.pending.is_some() {
            return (None, None);
        }
        let why = stop_text(&reason);
        let action = d.policy.action(&reason);
        self.react(
            i,
            why,
            is_crash(&reason),
            action,
            restart_reason(&reason),
            now,
        )
    }

    /// Applies `action` to domain `i`, which stopped (or went silent) for `why`; `crash`:
    /// it counts toward the crash-loop hold.
    fn react(
        &mut self,
        i: usize,
        why: String,
        crash: bool,
        action: Action,
        reason: RestartReason,
        now: u64,
    ) -> (Option<String>, Option<Command>) {
        let limits = self.limits;
        let Some(d) = self.domains.get_mut(i) else {
            return (None, None);
        };
        match action {
            Action::Destroy => (
                Some(format!("{}: {why} -> destroy", d.who())),
                Some(Command::Destroy(i)),
            ),
            Action::Preserve => (Some(format!("{}: {why} -> preserve", d.who())), None),
            Action::Restart => {
                let since = now.saturating_sub(d.window);
                d.recent.retain(|&t| t > since);
                if crash && d.recent.len() >= d.max_restarts {
                    d.held = true;
                    d.health.held = Some(format!(
                        "crash loop: {} restarts within {} s, then {}",
                        d.recent.len(),
                        d.window / limits.hz.max(1),
                        reason.text()
                    ));
                    let line = format!(
                        "{}: crash loop, held after {} restarts",
                        d.who(),
                        d.recent.len()
                    );
                    return (Some(line), None);
                }
                let delay = if crash {
                    limits.crash_delay(d.recent.len(), d.proved(now, limits.settle))
                } else {
                    limits.backoff_min
                };
                d.health.decided(reason, now);
                d.pending_crash = crash;
                d.pending = Some(now.saturating_add(delay));
                (
                    Some(format!(
                        "{}: {why} -> restart in {} ms",
                        d.who(),
                        limits.ms(delay)
                    )),
                    None,
                )
            }
        }
    }

    /// The earliest pending restart, if any.
    pub fn next_deadline(&self) -> Option<u64> {
        self.domains
            .iter()
            .filter(|d| !d.gone)
            .filter_map(|d| d.pending)
            .min()
    }

    /// Domains whose restart is due at `now`.
    pub fn due(&self, now: u64) -> Vec<usize> {
        self.domains
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.gone && d.pending.is_some_and(|t| t <= now))
            .map(|(i, _)| i)
            .collect()
    }

    /// Records the result of `DomainRestart` on domain `i` at `now`; returns the line to
    /// print and, on success, the old (now stale) handle.
    pub fn restarted(
        &mut self,
        i: usize,
        result: Result<CapHandle, CapError>,
        now: u64,
    ) -> (String, Option<CapHandle>) {
        let Some(d) = self.domains.get_mut(i) else {
            return (format!("no watched domain {i}"), None);
        };
        let window = d.window;
        d.pending = None;
        if result.is_err() {
            d.pending_crash = false;
        }
        match result {
            Ok(new) => {
                let old = core::mem::replace(&mut d.handle, new);
                let since = now.saturating_sub(window);
                d.recent.retain(|&t| t > since);
                if core::mem::take(&mut d.pending_crash) {
                    d.recent.push(now);
                }
                d.total_restarts += 1;
                d.started = now;
                // Rebuilt where it was configured to run: re-pins are gone.
                d.placement.clone_from(&d.configured);
                // A user's restart of a held domain gives it a new life (a crash restart
                // is never made while held).
                d.held = false;
                d.health.held = None;
                d.state = DomainState::Running;
                d.restarting = true;
                d.health.restarted(now);
                let line = format!(
                    "{}: restarted (restart {}, {} within {} s)",
                    d.who(),
                    d.total_restarts,
                    d.recent.len(),
                    window / self.limits.hz.max(1)
                );
                (line, Some(old))
            }
            Err(e) => {
                d.held = true;
                d.health.pending = None;
                d.health.held = Some(format!("restart failed: {e}"));
                (format!("{}: restart failed: {e}; held", d.who()), None)
            }
        }
    }

    /// Records that dom0 closed the `n` guest connections held (or destroyed) domain `domid`
    /// served as a backend ([`crate::restart::closing_writes`]); returns the line to print.
    /// `ctl list` and `ctl info` show it after why the domain is held.
    pub fn backends_closed(&mut self, domid: u16, n: usize) -> Option<String> {
        if n == 0 {
            return None;
        }
        let d = self
            .domains
            .iter_mut()
            .find(|d| d.domid == domid && !d.gone)?;
        let what = format!("{n} guest connection(s) closed");
        if let Some(held) = d.health.held.as_mut() {
            held.push_str("; ");
            held.push_str(&what);
        }
        Some(format!("{}: {what} (its frontends see it go)", d.who()))
    }

    /// Records the result of `DomainDestroy` on domain `i`; returns a line on failure.
    pub fn destroyed(&mut self, i: usize, result: Result<(), CapError>) -> Option<String> {
        let d = self.domains.get_mut(i)?;
        match result {
            Ok(()) => {
                d.gone = true;
                None
            }
            Err(e) => {
                d.held = true;
                d.health.held = Some(format!("destroy failed: {e}"));
                Some(format!("{}: destroy failed: {e}", d.who()))
            }
        }
    }

    /// Judges a query of domain `i`'s pre-restart handle: it must be `Stale`. Returns the
    /// line to print: success once per domain, failure every time.
    pub fn stale_check<T>(&mut self, i: usize, query: &Result<T, CapError>) -> Option<String> {
        let d = self.domains.get_mut(i)?;
        match query {
            Err(CapError::Stale) if d.stale_checked => None,
            Err(CapError::Stale) => {
                d.stale_checked = true;
                Some(format!("old handle of {} is stale: ok", d.name))
            }
            Ok(_) => Some(format!("old handle of {} still works: FAIL", d.name)),
            Err(e) => Some(format!("old handle of {}: {e}: FAIL", d.name)),
        }
    }
}

#[cfg(test)]
mod tests;
