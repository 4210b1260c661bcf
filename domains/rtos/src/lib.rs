//! The real-time OS domain's core: command-line parsing and the periodic-tick bookkeeping
//! (absolute releases, lateness statistics, once-a-second reports).
//!
//! Releases are absolute: each deadline is the previous one plus the period, never "now +
//! period", so handler latency does not accumulate into drift. Lateness is measured in
//! counter ticks as `now - deadline` when the tick handler runs.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt;

/// Tick rate when the command line names none.
pub const DEFAULT_HZ: u32 = 100;
/// Highest tick rate we accept.
pub const MAX_HZ: u32 = 100_000;

/// A malformed `hz=` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HzError {
    /// hz= is not a decimal number
    NotANumber,
    /// hz= is outside 1..=MAX_HZ
    OutOfRange(u64),
}

impl fmt::Display for HzError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotANumber => f.write_str("hz= is not a decimal number"),
            Self::OutOfRange(n) => write!(f, "hz={n} is outside 1..={MAX_HZ}"),
        }
    }
}

/// The tick rate from `hz=<n>` in `cmdline` ([`DEFAULT_HZ`] if absent).
pub fn parse_hz(cmdline: &str) -> Result<u32, HzError> {
    let Some(v) = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("hz="))
    else {
        return Ok(DEFAULT_HZ);
    };
    let n: u64 = v.parse().map_err(|_| HzError::NotANumber)?;
    match u32::try_from(n) {
        Ok(hz) if (1..=MAX_HZ).contains(&hz) => Ok(hz),
        _ => Err(HzError::OutOfRange(n)),
    }
}

/// One line of the periodic report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// Seconds of ticks so far (ticks / hz).
    pub uptime_s: u64,
    /// Ticks so far.
    pub ticks: u64,
    /// Smallest release lateness seen, in counter ticks.
    pub late_min: u64,
    /// Largest release lateness seen, in counter ticks.
    pub late_max: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "uptime {}s ticks {} late_max_ticks {}",
            self.uptime_s, self.ticks, self.late_max
        )
    }
}

/// Periodic tick state, shared by the timer handler (`on_tick`) and the idle loop
/// (`report`).
#[derive(Clone, Debug)]
pub struct Ticker {
    hz: u64,
    period: u64,
    deadline: u64,
    ticks: u64,
    late_min: u64,
    late_max: u64,
    next_report: u64,
}

impl Ticker {
    /// Ticks at `hz` on a counter running at `counter_hz`, first release one period after
    /// `now`.
    pub fn new(hz: u32, counter_hz: u64, now: u64) -> Self {
        let hz = u64::from(hz.max(1));
        let period = (counter_hz / hz).max(1);
        Self {
            hz,
            period,
            deadline: now.saturating_add(period),
            ticks: 0,
            late_min: u64::MAX,
            late_max: 0,
            next_report: hz,
        }
    }

    /// The next release (program the timer for it).
    pub fn deadline(&self) -> u64 {
        self.deadline
    }

    /// Counter ticks between releases.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// The timer fired at `now`: records the release and returns the next deadline. A
    /// wake-up before the deadline (spurious) is not a release and changes nothing.
    pub fn on_tick(&mut self, now: u64) -> u64 {
        if now < self.deadline {
            return self.deadline;
        }
        let late = now - self.deadline;
        self.late_min = self.late_min.min(late);
        self.late_max = self.late_max.max(late);
        self.ticks += 1;
        self.deadline = self.deadline.saturating_add(self.period);
        self.deadline
    }

    /// A report once per `hz` ticks (one per call; call until `None`).
    pub fn report(&mut self) -> Option<Report> {
        if self.ticks < self.next_report {
            return None;
        }
        let r = Report {
            uptime_s: self.next_report / self.hz,
            ticks: self.ticks,
            late_min: if self.ticks == 0 { 0 } else { self.late_min },
            late_max: self.late_max,
        };
        self.next_report += self.hz;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hz_parsing() {
        assert_eq!(parse_hz(""), Ok(DEFAULT_HZ));
        assert_eq!(parse_hz("quiet hz=1000"), Ok(1000));
        assert_eq!(parse_hz("hz=abc"), Err(HzError::NotANumber));
        assert_eq!(parse_hz("hz=0"), Err(HzError::OutOfRange(0)));
        assert_eq!(
            parse_hz("hz=99999999999"),
            Err(HzError::OutOfRange(99_999_999_999))
        );
        assert_eq!(
            HzError::OutOfRange(0).to_string(),
            "hz=0 is outside 1..=100000"
        );
    }

    #[test]
    fn absolute_releases_do_not_drift() {
        let mut t = Ticker::new(100, 1_000_000, 5);
        assert_eq!(t.period(), 10_000);
        assert_eq!(t.deadline(), 10_005);
        // Handled 300 ticks late: the next release is still on the grid.
        assert_eq!(t.on_tick(10_305), 20_005);
        assert_eq!(t.on_tick(20_010), 30_005);
        // Spurious early wake-up: not a tick.
        assert_eq!(t.on_tick(30_000), 30_005);
        assert_eq!(t.ticks, 2);
        assert_eq!((t.late_min, t.late_max), (5, 300));
    }

    #[test]
    fn reports_once_per_second() {
        let mut t = Ticker::new(10, 1000, 0);
        assert_eq!(t.report(), None);
        let mut now = 0;
        for _ in 0..25 {
            now = t.deadline() + 3;
            t.on_tick(now);
        }
        assert!(now > 0);
        let r = t.report().unwrap();
        assert_eq!((r.uptime_s, r.ticks, r.late_max), (1, 25, 3));
        assert_eq!(r.to_string(), "uptime 1s ticks 25 late_max_ticks 3");
        assert_eq!(t.report().map(|r| r.uptime_s), Some(2));
        assert_eq!(t.report(), None);
    }
}
