//! `bulkhead bench restart`'s blkdom half (the netdom half is [`super::restart_net`]; both
//! are run by [`super::restart_run`]): how long a stock Linux guest's disk I/O pauses when
//! blkdom, the block driver domain serving its `/dev/xvda`, is crashed by a real fault
//! (management `Request::Crash`, as `ctl crash blkdom`: an Undefined Instruction on its
//! vCPU) and dom0's `on_crash = "restart"` policy restarts it in place (DESIGN §6.2, issue
//! 11).
//!
//! The guest runs a loop of 4 KiB `O_DIRECT` reads of `/dev/xvda` (one busybox `dd` each),
//! printing its virtual counter (`/bin/cntvct`, CNTVCT_EL0) after each completion. The
//! benchmark crashes blkdom [`DEFAULT_CRASHES`] times (`--count N`), each only once the
//! previous restart has finished and the guest's I/O has moved on. For each crash the pause
//! is the largest gap between consecutive completion stamps from the last completion seen
//! before the crash up to the next crash; the normal gaps before the first crash are the
//! baseline. QEMU runs under [`crate::qemu::ICOUNT_ARGS`] like every `bench`, so the figures
//! are virtual time; disk completions still come from host threads, so they vary a little.

use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Serialize;

/// Crashes per run unless `--count` says otherwise, and the most: dom0's default policy
/// allows 3 restarts within 30 s of virtual time and holds the domain at the 4th stop
/// (`supervise::Limits`); spacing crashes 30 s apart would take far too long under TCG.
pub const DEFAULT_CRASHES: u32 = 3;
/// See [`DEFAULT_CRASHES`].
pub const MAX_CRASHES: u32 = 3;
/// Guest reads between crashes (and before the first: the baseline).
pub const PER_CRASH: u64 = 48;
/// Stamps per console line: one line per read (about 830 a second) would overrun the
/// microvisor's console rate limit (200 lines a second, 400 in a burst) and lose stamps.
pub const BATCH: u64 = 8;
/// Distinct 4 KiB blocks the loop cycles through.
pub const BLOCKS: u64 = 1024;
/// The goal of issue 11: median pause below this many ms of virtual time.
pub const GOAL_MS: f64 = 50.0;
/// The stamp lines' tag; the script prints it as `RST""IO` so that the echo of the typed
/// line never matches.
pub const TAG: &str = "RSTIO";
/// The guest domain's name (its console lines are prefixed `[linux] `).
pub const DOMAIN: &str = "linux";

/// dom0 reports a recovery when blkdom's watchdog sees its first heartbeat, a couple of
/// hundred reads after the guest's I/O resumed; the next crash waits for that report (so
/// that every restart is reported) or for this many reads after the previous crash.
pub const WAIT_READY: u64 = 352;
/// Reads after the last crash, for dom0's last report.
pub const TAIL: u64 = 304;

/// Reads the loop runs for `crashes` crashes: a baseline segment, one per crash, a tail
/// (every part a multiple of [`BATCH`]).
pub fn iterations(crashes: u32) -> u64 {
    PER_CRASH + u64::from(crashes) * (WAIT_READY + PER_CRASH) + TAIL
}

/// The shell line typed on the guest's console once it reached userspace: after every
/// [`BATCH`] reads it prints `RSTIO <first index> <failed reads so far> <stamp>...`.
pub fn script(crashes: u32) -> String {
    let (a, b) = TAG.split_at(3);
    format!(
        "i=0; f=0; s=; while [ $i -lt {n} ]; do dd if=/dev/xvda of=/dev/null bs=4096 count=1 \
         skip=$((i%{BLOCKS})) iflag=direct 2>/dev/null || f=$((f+1)); s=\"$s $(cntvct)\"; \
         i=$((i+1)); [ $((i%{BATCH})) -eq 0 ] && {{ echo {a}\"\"{b} $((i-{BATCH})) $f$s; s=; }}; \
         done; echo {a}\"\"{b}-DONE $i\n",
        n = iterations(crashes)
    )
}

/// One completion: the loop index, failed reads so far, the counter after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Loop index.
    pub i: u64,
    /// Failed reads up to the end of its batch.
    pub rc: u32,
    /// CNTVCT_EL0 after the read.
    pub ticks: u64,
}

/// Every stamp of the guest in a console log, in order.
pub fn parse_stamps(log: &str) -> Vec<Stamp> {
    let re =
        Regex::new(&format!(r"\[{DOMAIN}\] {TAG} (\d+) (\d+)((?: \d+)+)")).expect("static regex");
    let mut out = Vec::new();
    for c in re.captures_iter(log) {
        let (Ok(first), Ok(rc)) = (c[1].parse::<u64>(), c[2].parse::<u32>()) else {
            continue;
        };
        for (k, t) in (0..).zip(c[3].split_whitespace()) {
            if let Ok(ticks) = t.parse() {
                out.push(Stamp {
                    i: first + k,
                    rc,
                    ticks,
                });
            }
        }
    }
    out
}

/// The last loop index in a console log, if any.
pub fn last_index(log: &str) -> Option<u64> {
    parse_stamps(log).last().map(|s| s.i)
}

/// dom0's "recovered in" figures for the domain `name`, ms, in order: the watchdog's time
/// from the fault to the new instance's first heartbeat.
pub fn recovered_of(log: &str, name: &str) -> Vec<u64> {
    let re = Regex::new(&format!(
        r"\[dom0\] {} \(d\d+\): ready, recovered in (\d+) ms",
        regex::escape(name)
    ))
    .expect("static regex");
    re.captures_iter(log)
        .filter_map(|c| c[1].parse().ok())
        .collect()
}

/// dom0's restart delays (its backoff) for the domain `name`, ms, in order.
pub fn backoff_of(log: &str, name: &str) -> Vec<u64> {
    let re = Regex::new(&format!(
        r"\[dom0\] {} \(d\d+\): crashed \(code \S+\) -> restart in (\d+) ms",
        regex::escape(name)
    ))
    .expect("static regex");
    re.captures_iter(log)
        .filter_map(|c| c[1].parse().ok())
        .collect()
}

/// dom0's figures for driver domain `name` over `crashes` crashes: its "recovered in"
/// figures (the last may be missing: dom0 reports it at the new instance's first heartbeat,
/// which can come after the guest's loop ended) and its restart delays (one per crash).
pub fn dom0_figures(log: &str, name: &str, crashes: usize) -> Result<(Vec<u64>, Vec<u64>)> {
    let recovered = recovered_of(log, name);
    if recovered.len() > crashes {
        bail!(
            "dom0 reported {} recoveries of {name} for {crashes} crashes",
            recovered.len()
        );
    }
    let backoff = backoff_of(log, name);
    if backoff.len() != crashes {
        bail!(
            "dom0 reported {} restart delays of {name} for {crashes} crashes",
            backoff.len()
        );
    }
    Ok((recovered, backoff))
}

/// Gaps (ticks) between consecutive stamps; checks the loop indices are consecutive, rising
/// counters and no failed read (a failure is what the restart must not cause).
pub fn gaps(stamps: &[Stamp]) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for (n, s) in stamps.iter().enumerate() {
        if s.i != n as u64 {
            bail!(
                "stamp {n} has loop index {} (lost or garbled console output)",
                s.i
            );
        }
        if s.rc != 0 {
            bail!("{} read(s) failed by read {}", s.rc, s.i);
        }
    }
    for w in stamps.windows(2) {
        let d = w[1].ticks.checked_sub(w[0].ticks).filter(|&d| d > 0);
        out.push((
            w[0].i,
            d.with_context(|| format!("counter went back after read {}", w[0].i))?,
        ));
    }
    Ok(out)
}

/// The pause (ticks) of each crash: the largest gap starting at or after the last index seen
/// before that crash and before the next crash's; also the baseline gaps (before the first).
pub fn pauses(stamps: &[Stamp], crash_at: &[u64]) -> Result<(Vec<u64>, Vec<u64>)> {
    let gaps = gaps(stamps)?;
    let first = *crash_at.first().context("no crashes")?;
    let baseline: Vec<u64> = gaps.iter().filter(|g| g.0 < first).map(|g| g.1).collect();
    if baseline.is_empty() {
        bail!("no completions before the first crash");
    }
    let mut out = Vec::new();
    for (k, &from) in crash_at.iter().enumerate() {
        let to = crash_at.get(k + 1).copied().unwrap_or(u64::MAX);
        let p = gaps
            .iter()
            .filter(|g| g.0 >= from && g.0 < to)
            .map(|g| g.1)
            .max()
            .with_context(|| format!("no completion after crash {}", k + 1))?;
        out.push(p);
    }
    Ok((out, baseline))
}

/// Minimum, median and maximum, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    /// Smallest.
    pub min: f64,
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// Of `v` (non-empty), each value scaled by `scale`.
    pub fn of(v: &[u64], scale: f64) -> Option<Self> {
        Self::of_ms(v.iter().map(|&x| x as f64 * scale).collect())
    }

    /// Of `s` (non-empty), already in ms.
    pub fn of_ms(mut s: Vec<f64>) -> Option<Self> {
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => s[n / 2],
            _ => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        };
        Some(Self {
            min: s[0],
            median,
            max: s[n - 1],
        })
    }
}

/// The benchmark's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestartReport {
    /// Benchmark name.
    pub benchmark: &'static str,
    /// How QEMU ran.
    pub clock: String,
    /// The guest's counter frequency assumed.
    pub counter_hz: u64,
    /// Crashes of blkdom.
    pub crashes: usize,
    /// Each crash's pause, ms of virtual time.
    pub pauses_ms: Vec<f64>,
    /// Statistics of the pauses.
    pub pause: Stats,
    /// Statistics of the normal gaps before the first crash.
    pub baseline: Stats,
    /// Normal gaps measured.
    pub baseline_gaps: usize,
    /// dom0's restart delay (policy backoff) before each restart, ms.
    pub dom0_backoff_ms: Vec<u64>,
    /// Each pause minus its backoff: the restart's own cost, ms.
    pub pause_less_backoff: Stats,
    /// dom0's "recovered in" figures, ms (the last may be missing: dom0 reports it when the
    /// watchdog sees blkdom's first heartbeat, which can come after the loop ended).
    pub dom0_recovered_ms: Vec<u64>,
    /// Statistics of those.
    pub dom0_recovered: Option<Stats>,
    /// Goal for the median pause, ms.
    pub goal_ms: f64,
    /// Whether the median pause is below the goal.
    pub meets_goal: bool,
}

/// Builds the report from the console log and the loop index seen before each crash.
pub fn report(log: &str, crash_at: &[u64]) -> Result<RestartReport> {
    let hz = super::boot::COUNTER_HZ;
    let ms_per_tick = 1e3 / hz as f64;
    let (p, base) = pauses(&parse_stamps(log), crash_at)?;
    let (recovered, backoff) = dom0_figures(log, "blkdom", crash_at.len())?;
    let pause = Stats::of(&p, ms_per_tick).context("no pauses")?;
    let less = p
        .iter()
        .zip(&backoff)
        .map(|(&t, &b)| t as f64 * ms_per_tick - b as f64)
        .collect();
    let pause_less_backoff = Stats::of_ms(less).context("no pauses")?;
    Ok(RestartReport {
        benchmark: "restart",
        clock: crate::qemu::ICOUNT_ARGS.join(" "),
        counter_hz: hz,
        crashes: p.len(),
        pauses_ms: p.iter().map(|&t| t as f64 * ms_per_tick).collect(),
        pause,
        baseline: Stats::of(&base, ms_per_tick).context("no baseline")?,
        baseline_gaps: base.len(),
        dom0_backoff_ms: backoff,
        pause_less_backoff,
        dom0_recovered: Stats::of(&recovered, 1.0),
        dom0_recovered_ms: recovered,
        goal_ms: GOAL_MS,
        meets_goal: pause.median < GOAL_MS,
    })
}

/// Which driver domain a half of `bench restart` crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The block backend, under a disk read loop.
    Blkdom,
    /// The network backend, under a ping loop ([`super::restart_net`]).
    Netdom,
}

impl Target {
    /// `--target`'s value (`blkdom`, `netdom`; none: both, blkdom's first).
    pub fn parse(arg: Option<&str>) -> Result<Vec<Self>> {
        match arg {
            None => Ok(vec![Self::Blkdom, Self::Netdom]),
            Some("blkdom") => Ok(vec![Self::Blkdom]),
            Some("netdom") => Ok(vec![Self::Netdom]),
            Some(other) => bail!("--target {other}: expected blkdom or netdom"),
        }
    }
}

/// What `bench restart` writes to `restart.json`: each half that ran (`null` if not).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Combined {
    /// Benchmark name.
    pub benchmark: &'static str,
    /// The blkdom half.
    pub blkdom: Option<RestartReport>,
    /// The netdom half.
    pub netdom: Option<super::restart_net::NetRestartReport>,
}

/// The table `bench restart` prints.
pub fn table(r: &RestartReport) -> String {
    let row = |name: &str, s: &Stats| {
        format!(
            "{name:<44} {:>10.2} {:>10.2} {:>10.2}",
            s.min, s.median, s.max
        )
    };
    let mut rows = vec![
        format!(
            "restart: {} crashes of blkdom under a Linux 4 KiB O_DIRECT read loop; guest-measured (CNTVCT) under {}",
            r.crashes, r.clock
        ),
        format!("{:<44} {:>10} {:>10} {:>10}", "ms of virtual time", "min", "median", "max"),
        row("guest I/O pause per crash", &r.pause),
        row("  minus dom0's restart backoff", &r.pause_less_backoff),
        row("normal gap between reads (baseline)", &r.baseline),
    ];
    if let Some(d) = &r.dom0_recovered {
        rows.push(row(
            &format!(
                "dom0 \"recovered in\" ({} of {})",
                r.dom0_recovered_ms.len(),
                r.crashes
            ),
            d,
        ));
    }
    rows.push(format!(
        "pauses: {}; dom0 backoff before each restart: {} ms",
        r.pauses_ms
            .iter()
            .map(|p| format!("{p:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.dom0_backoff_ms
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    rows.push(format!(
        "goal: median pause < {} ms: {}",
        r.goal_ms,
        if r.meets_goal { "ok" } else { "above goal" }
    ));
    rows.join("\n")
}

#[cfg(test)]
#[path = "restart_tests.rs"]
mod tests;
