//! The host-testable core of the `micro` guest: its command line (`role=… n=… peer=…`), the
//! summary of a sample set (min/p50/p99/max, nearest-rank percentiles) and the one result
//! line per metric that `cargo bulkhead bench micro` parses.
//!
//! Line format (one per metric, on the guest's console):
//! `MICRO metric=<name> n=<samples> min=<i> p50=<i> p99=<i> max=<i> unit=instructions`.
//! Every figure is in instructions: under `-icount shift=0` one instruction is 1 ns of
//! virtual time and one tick of the 62.5 MHz generic counter is 16 of them.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt::{self, Write};

/// Largest sample count a run keeps (the buffers are static).
pub const MAX_SAMPLES: usize = 4096;
/// Samples per metric when the command line does not say.
pub const DEFAULT_SAMPLES: usize = 1000;

/// What one instance of the guest does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Hypercall round trips, the exclusive timer and the virtual IPI (2 vCPUs).
    Main,
    /// Timer latency only, the vCPU alone (`timer_exclusive`).
    Exclusive,
    /// Timer latency only, on a pCPU shared with a `busy` domain (`timer_shared`).
    Timer,
    /// Spins forever: the other domain on a shared pCPU.
    Busy,
    /// Timer latency with the vCPU running (spinning, not in WFI) on a pCPU placed shared,
    /// alone there (`timer_shared_running`): what a busy guest's tick costs.
    TimerSpin,
    /// Event-channel sender: allocates an unbound port for `peer` and sends on a grid.
    Ping,
    /// Event-channel receiver: binds `peer`'s port and times each upcall (`evtchn`).
    Pong,
    /// The same on a pCPU placed shared, not pinned exclusive (`evtchn_shared`): the
    /// receiver's CPU waits idle and takes the upcall through its scheduler.
    PongShared,
    /// The same on a pCPU shared with a `busy` domain (`evtchn_switch`): each upcall waits
    /// for its CPU to switch the busy vCPU out, a wake nothing foretold.
    PongSwitch,
    /// The same with the sender beside it on one pCPU, placed shared (`evtchn_same_pcpu`):
    /// each send wakes the receiver, switched out on the sender's own pCPU.
    PongSame,
    /// The virtual IPI only, the domain's two vCPUs placed shared (each alone on its pCPU,
    /// not pinned exclusive): `vipi_shared`.
    VipiShared,
    /// No figure: checks RAM its build did not scrub (Bulkhead scrubs an `Image`'s RAM on
    /// first touch), through a first load, a hypervisor write, a grant copy and a first
    /// instruction fetch, each into a block nobody touched before.
    LazyRam,
}

impl Role {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::Exclusive => "exclusive",
            Self::Timer => "timer",
            Self::Busy => "busy",
            Self::TimerSpin => "timer_spin",
            Self::Ping => "ping",
            Self::Pong => "pong",
            Self::PongShared => "pong_shared",
            Self::PongSwitch => "pong_switch",
            Self::PongSame => "pong_same",
            Self::VipiShared => "vipi_shared",
            Self::LazyRam => "lazy_ram",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Main,
            Self::Exclusive,
            Self::Timer,
            Self::Busy,
            Self::TimerSpin,
            Self::Ping,
            Self::Pong,
            Self::PongShared,
            Self::PongSwitch,
            Self::PongSame,
            Self::VipiShared,
            Self::LazyRam,
        ]
        .into_iter()
        .find(|r| r.name() == s)
    }
}

/// The parsed command line (`/chosen/bootargs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// What to do.
    pub role: Role,
    /// Samples per metric.
    pub samples: usize,
    /// The other domain of an event-channel pair.
    pub peer: Option<u16>,
}

/// A command line the guest cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// No `role=`.
    NoRole,
    /// `role=` names no role.
    UnknownRole,
    /// `n=` is not a number in 1..=MAX_SAMPLES.
    BadSamples,
    /// `peer=` is not a domain id.
    BadPeer,
    /// `ping` and `pong` need `peer=`.
    NoPeer,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoRole => "no role= on the command line",
            Self::UnknownRole => {
                "role= must be main, exclusive, timer, busy, timer_spin, ping, pong, pong_shared, pong_switch, pong_same, vipi_shared or lazy_ram"
            }
            Self::BadSamples => "n= must be a number from 1 to 4096",
            Self::BadPeer => "peer= must be a domain id",
            Self::NoPeer => "role=ping and the pong roles need peer=<domid>",
        })
    }
}

/// Parses `role=<r> [n=<samples>] [peer=<domid>]`; other words are ignored (a hypervisor
/// may add its own).
pub fn parse_cmdline(line: &str) -> Result<Config, ConfigError> {
    let (mut role, mut samples, mut peer) = (None, DEFAULT_SAMPLES, None);
    for word in line.split_ascii_whitespace() {
        if let Some(v) = word.strip_prefix("role=") {
            role = Some(Role::parse(v).ok_or(ConfigError::UnknownRole)?);
        } else if let Some(v) = word.strip_prefix("n=") {
            samples = v
                .parse()
                .ok()
                .filter(|n| (1..=MAX_SAMPLES).contains(n))
                .ok_or(ConfigError::BadSamples)?;
        } else if let Some(v) = word.strip_prefix("peer=") {
            peer = Some(v.parse().map_err(|_| ConfigError::BadPeer)?);
        }
    }
    let role = role.ok_or(ConfigError::NoRole)?;
    if matches!(
        role,
        Role::Ping | Role::Pong | Role::PongShared | Role::PongSwitch
    ) && peer.is_none()
    {
        return Err(ConfigError::NoPeer);
    }
    Ok(Config {
        role,
        samples,
        peer,
    })
}

/// min/p50/p99/max of a sample set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Samples.
    pub n: usize,
    /// Smallest.
    pub min: u64,
    /// Median (nearest rank).
    pub p50: u64,
    /// 99th percentile (nearest rank).
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

/// The nearest-rank `pct` percentile of sorted `v` (non-empty): the smallest value with at
/// least `pct`% of the samples at or below it.
fn nearest_rank(v: &[u64], pct: usize) -> u64 {
    let rank = (v.len() * pct).div_ceil(100).max(1);
    v[rank - 1]
}

/// Sorts `samples` in place and summarises them; `None` for no samples.
pub fn summarize(samples: &mut [u64]) -> Option<Summary> {
    samples.sort_unstable();
    let (&min, &max) = (samples.first()?, samples.last()?);
    Some(Summary {
        n: samples.len(),
        min,
        p50: nearest_rank(samples, 50),
        p99: nearest_rank(samples, 99),
        max,
    })
}

/// Subtracts the guest's own cost `base` from every sample (saturating at 0).
pub fn subtract(samples: &mut [u64], base: u64) {
    for s in samples {
        *s = s.saturating_sub(base);
    }
}

/// Writes the result line of `metric` (without a newline).
pub fn write_line(out: &mut impl Write, metric: &str, s: &Summary) -> fmt::Result {
    write!(
        out,
        "MICRO metric={metric} n={} min={} p50={} p99={} max={} unit=instructions",
        s.n, s.min, s.p50, s.p99, s.max
    )
}

/// The metric names, as the result lines spell them.
pub mod metric {
    /// `xen_version(XENVER_version)` round trip.
    pub const XEN_VERSION: &str = "xen_version";
    /// Bulkhead's capability null call round trip.
    pub const CAP_NULL: &str = "cap_null";
    /// Virtual timer IRQ latency, the vCPU alone on its pCPU.
    pub const TIMER_EXCLUSIVE: &str = "timer_exclusive";
    /// Virtual timer IRQ latency, the pCPU shared with another domain's busy vCPU.
    pub const TIMER_SHARED: &str = "timer_shared";
    /// Virtual timer IRQ latency, the vCPU running (not waiting) on a pCPU placed shared.
    pub const TIMER_SHARED_RUNNING: &str = "timer_shared_running";
    /// SGI from vCPU 0 to vCPU 1 of one domain.
    pub const VIPI: &str = "vipi";
    /// The same with both vCPUs placed shared, each alone on its pCPU.
    pub const VIPI_SHARED: &str = "vipi_shared";
    /// Event-channel send to the other domain's upcall, the two on different pCPUs.
    pub const EVTCHN: &str = "evtchn";
    /// The same with both domains placed shared (each alone on its pCPU).
    pub const EVTCHN_SHARED: &str = "evtchn_shared";
    /// The same with the receiver's pCPU shared with another domain's busy vCPU: the send
    /// wakes a switched-out vCPU, so the upcall includes a whole switch.
    pub const EVTCHN_SWITCH: &str = "evtchn_switch";
    /// The same with sender and receiver sharing one pCPU: the send wakes the receiver,
    /// switched out on the sender's own pCPU, so the upcall includes a whole switch.
    pub const EVTCHN_SAME: &str = "evtchn_same_pcpu";
}

/// The marker that starts every line of ours.
pub const MARKER: &str = "MICRO ";

/// The metric and summary of a result line (anywhere in `line`: a hypervisor may prefix
/// its guests' lines), or `None` if it is not one.
pub fn parse_line(line: &str) -> Option<(&str, Summary)> {
    let rest = &line[line.find("MICRO metric=")? + MARKER.len()..];
    let (mut name, mut n, mut min, mut p50, mut p99, mut max) =
        (None, None, None, None, None, None);
    for word in rest.split_ascii_whitespace() {
        let (key, value) = word.split_once('=')?;
        let num = || value.parse::<u64>().ok();
        match key {
            "metric" => name = Some(value),
            "n" => n = Some(value.parse::<usize>().ok()?),
            "min" => min = Some(num()?),
            "p50" => p50 = Some(num()?),
            "p99" => p99 = Some(num()?),
            "max" => max = Some(num()?),
            "unit" if value == "instructions" => {}
            _ => return None,
        }
    }
    Some((
        name?,
        Summary {
            n: n?,
            min: min?,
            p50: p50?,
            p99: p99?,
            max: max?,
        },
    ))
}

/// Instructions per counter tick of QEMU virt's 62.5 MHz counter under `-icount shift=0`.
pub const INSTRUCTIONS_PER_TICK: u64 = 16;

/// Counter ticks to instructions.
pub fn ticks_to_instructions(ticks: u64) -> u64 {
    ticks.saturating_mul(INSTRUCTIONS_PER_TICK)
}

/// Per-call instructions of a batch of `calls` calls that took `ticks` counter ticks,
/// rounded to nearest.
pub fn per_call(ticks: u64, calls: u64) -> u64 {
    (ticks_to_instructions(ticks) + calls / 2) / calls.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_command_lines() {
        assert_eq!(
            parse_cmdline("console=hvc0 role=main n=50"),
            Ok(Config {
                role: Role::Main,
                samples: 50,
                peer: None
            })
        );
        assert_eq!(
            parse_cmdline("role=pong peer=2").map(|c| (c.role, c.samples, c.peer)),
            Ok((Role::Pong, DEFAULT_SAMPLES, Some(2)))
        );
        assert_eq!(
            parse_cmdline("role=pong_shared peer=1 n=7").map(|c| (c.role, c.samples, c.peer)),
            Ok((Role::PongShared, 7, Some(1)))
        );
        assert_eq!(parse_cmdline("role=pong_shared"), Err(ConfigError::NoPeer));
        assert_eq!(
            parse_cmdline("role=pong_switch peer=1").map(|c| c.role),
            Ok(Role::PongSwitch)
        );
        assert_eq!(parse_cmdline("role=pong_switch"), Err(ConfigError::NoPeer));
        assert_eq!(
            parse_cmdline("role=pong_same peer=1").map(|c| c.role),
            Ok(Role::PongSame)
        );
        assert_eq!(
            parse_cmdline("role=vipi_shared n=9").map(|c| (c.role, c.samples)),
            Ok((Role::VipiShared, 9))
        );
        assert_eq!(
            parse_cmdline("role=lazy_ram").map(|c| c.role),
            Ok(Role::LazyRam),
            "no peer needed"
        );
        assert_eq!(
            parse_cmdline("role=timer_spin n=9").map(|c| (c.role, c.samples)),
            Ok((Role::TimerSpin, 9))
        );
        assert_eq!(parse_cmdline("n=5"), Err(ConfigError::NoRole));
        assert_eq!(parse_cmdline("role=x"), Err(ConfigError::UnknownRole));
        assert_eq!(parse_cmdline("role=main n=0"), Err(ConfigError::BadSamples));
        assert_eq!(
            parse_cmdline("role=main n=5000"),
            Err(ConfigError::BadSamples)
        );
        assert_eq!(parse_cmdline("role=ping"), Err(ConfigError::NoPeer));
        assert_eq!(
            parse_cmdline("role=ping peer=-1"),
            Err(ConfigError::BadPeer)
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u64> = (1..=1000).rev().collect();
        let s = summarize(&mut v).unwrap();
        assert_eq!((s.n, s.min, s.p50, s.p99, s.max), (1000, 1, 500, 990, 1000));
        let mut one = [7];
        let s = summarize(&mut one).unwrap();
        assert_eq!((s.min, s.p50, s.p99, s.max), (7, 7, 7, 7));
        let mut ten: Vec<u64> = (0..10).map(|i| i * 10).collect();
        let s = summarize(&mut ten).unwrap();
        assert_eq!((s.p50, s.p99), (40, 90));
        assert_eq!(summarize(&mut []), None);
    }

    #[test]
    fn subtracts_and_converts() {
        let mut v = [10, 3, 20];
        subtract(&mut v, 5);
        assert_eq!(v, [5, 0, 15]);
        assert_eq!(ticks_to_instructions(3), 48);
        // 16 calls in 47 ticks: 752 instructions, 47 per call.
        assert_eq!(per_call(47, 16), 47);
        assert_eq!(per_call(1, 3), 5);
    }

    #[test]
    fn formats_the_result_line() {
        let s = Summary {
            n: 3,
            min: 1,
            p50: 2,
            p99: 3,
            max: 4,
        };
        let mut out = String::new();
        write_line(&mut out, "vipi", &s).unwrap();
        assert_eq!(
            out,
            "MICRO metric=vipi n=3 min=1 p50=2 p99=3 max=4 unit=instructions"
        );
        assert_eq!(parse_line(&format!("[micro] {out}\r")), Some(("vipi", s)));
        assert_eq!(parse_line(&format!("(d1) {out}")), Some(("vipi", s)));
    }

    #[test]
    fn rejects_broken_result_lines() {
        let ok = "MICRO metric=x n=1 min=1 p50=1 p99=1 max=1 unit=instructions";
        assert!(parse_line(ok).is_some());
        assert_eq!(parse_line("MICRO start role=main"), None);
        assert_eq!(parse_line(&ok.replace("p99=1 ", "")), None);
        assert_eq!(parse_line(&ok.replace("max=1", "max=x")), None);
        assert_eq!(parse_line(&ok.replace("instructions", "ns")), None);
        // A line cut by another CPU's output.
        assert_eq!(parse_line("MICRO metric=x n=1 min=1 p5"), None);
    }
}
