//! `bulkhead bench restart`'s netdom half: how long a stock Linux guest's network requests
//! pause when netdom, the network driver domain serving its vif, is crashed by a real fault
//! (management `Request::Crash`, as `ctl crash netdom`) and dom0's `on_crash = "restart"`
//! policy restarts it in place (DESIGN §6.2, issue 11).
//!
//! The guest gets its address from QEMU's user network (`udhcpc`), then sends an ICMP echo
//! request to the gateway [`HOST`] every [`INTERVAL`] (one busybox `ping -i`), and a shell
//! loop reading ping's output takes the virtual counter (`/bin/cntvct`) at each reply and
//! prints `seq:counter` pairs. The benchmark crashes netdom N times, each once dom0 reported
//! the previous recovery and the replies have moved on. A crash's pause is the largest gap
//! between consecutive replies from the last reply seen before the crash up to the next
//! crash: from the fault to the first completed request after it. Requests are sent
//! independently of replies, so the pause is the restart's, not the guest's retry timer's;
//! the sequence numbers missing in it are the requests lost. netdom answers every TX request
//! its dead instance had not answered as dropped, without sending it (DESIGN §6, README
//! "Driver domains"), which includes requests the guest queued while no instance ran.
//!
//! (A loop of one `ping -c 1 -W 1` at a time was tried first: every crash cost the request
//! in flight, and its pause was ping's 1 s timeout.)

use super::restart::{dom0_figures, Stats, GOAL_MS};
use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Serialize;

/// Most crashes per run: the system raises netdom's crash-loop limit to [`CRASH_LIMIT`].
pub const MAX_CRASHES: u32 = 10;
/// The crash-loop limit the system gives netdom (dom0's default, 3 within 30 s, would hold
/// it at the 4th crash).
pub const CRASH_LIMIT: &str = "10/60s";
/// Seconds between echo requests (busybox ping takes fractions).
pub const INTERVAL: &str = "0.005";
/// Requests between crashes (and before the first: the baseline).
pub const PER_CRASH: u64 = 64;
/// Requests after the last crash (and after dom0's last recovery report) before the loop is
/// told to stop.
pub const TAIL: u64 = 64;
/// Stamps per console line (see `restart::BATCH`).
pub const BATCH: u64 = 8;
/// Where the guest pings: QEMU's user-network gateway.
pub const HOST: &str = super::net::HOST;
/// The stamp lines' tag (printed as `RST""NET` so that the echo never matches).
pub const TAG: &str = "RSTNET";
/// The file whose existence ends the loop.
pub const STOP_FILE: &str = "/tmp/rststop";
/// The guest domain's name.
pub const DOMAIN: &str = super::restart::DOMAIN;
/// The domain crashed.
pub const DRIVER: &str = "netdom";

/// The shell line typed once the guest reached userspace: DHCP (its exit status printed as
/// `RSTNET-DHCP <rc>`), then, in the background so that the stop can be typed while it
/// runs, ping piped into the stamping loop. After every [`BATCH`] replies it prints `RSTNET
/// <line> <seq>:<counter>...` (lines numbered from 0, so that a lost line is told apart
/// from lost requests); at the end the rest and `RSTNET-DONE <replies>`. Leaving the loop
/// ends ping (its next write finds the pipe closed).
pub fn script() -> String {
    let tag = format!("{}\"\"{}", &TAG[..3], &TAG[3..]);
    format!(
        "ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 >/dev/null 2>&1; echo {tag}-DHCP $?; \
         rm -f {STOP_FILE}; (ping -i {INTERVAL} {HOST} 2>&1 | (n=0; k=0; s=; while read l; do \
         case $l in *seq=*) q=${{l#*seq=}}; s=\"$s ${{q%% *}}:$(cntvct)\"; n=$((n+1)); \
         [ $((n%{BATCH})) -eq 0 ] && {{ echo {tag} $k$s; k=$((k+1)); s=; }}; \
         [ -e {STOP_FILE} ] && break;; esac; done; [ -n \"$s\" ] && echo {tag} $k$s; \
         echo {tag}-DONE $n)) </dev/null &\n"
    )
}

/// The shell line that ends the loop.
pub fn stop_line() -> String {
    format!("touch {STOP_FILE}\n")
}

/// The exit status of the guest's `udhcpc`, once printed.
pub fn parse_dhcp(log: &str) -> Option<u32> {
    let re = Regex::new(&format!(r"\[{DOMAIN}\] [^\n]*?{TAG}-DHCP (\d+)")).expect("static regex");
    re.captures_iter(log).last()?[1].parse().ok()
}

/// One reply: its console line, the request's sequence number, the counter when the loop
/// read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The console line's number.
    pub line: u64,
    /// ping's sequence number.
    pub seq: u64,
    /// CNTVCT_EL0 after the reply.
    pub ticks: u64,
}

/// Every stamp of the guest in a console log, in order. A line may follow the shell's
/// prompt (the loop runs in the background).
pub fn parse_stamps(log: &str) -> Vec<Stamp> {
    let re = Regex::new(&format!(r"\[{DOMAIN}\] [^\n]*?{TAG} (\d+)((?: \d+:\d+)+)"))
        .expect("static regex");
    let mut out = Vec::new();
    for c in re.captures_iter(log) {
        let Ok(line) = c[1].parse::<u64>() else {
            continue;
        };
        for t in c[2].split_whitespace() {
            let Some((q, v)) = t.split_once(':') else {
                continue;
            };
            if let (Ok(seq), Ok(ticks)) = (q.parse(), v.parse()) {
                out.push(Stamp { line, seq, ticks });
            }
        }
    }
    out
}

/// The last sequence number in a console log, if any.
pub fn last_seq(log: &str) -> Option<u64> {
    parse_stamps(log).last().map(|s| s.seq)
}

/// One crash's measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// Ticks from the last reply before the fault to the first after it.
    pub ticks: u64,
    /// Requests without a reply in the crash's segment.
    pub lost: u64,
}

/// The pauses, one per crash (see the module's documentation); the baseline gaps between
/// replies before the first crash; the requests lost before it. Lines after `stop_at` (the
/// last sequence number seen before the stop was typed, whose echo may garble a later line)
/// are left out. Checks the console lines are consecutive, and the sequence numbers and the
/// counter rise.
pub fn pauses(
    stamps: &[Stamp],
    crash_at: &[u64],
    stop_at: u64,
) -> Result<(Vec<Pause>, Vec<u64>, u64)> {
    let last_line = stamps
        .iter()
        .find(|s| s.seq >= stop_at)
        .map_or(u64::MAX, |s| s.line);
    let stamps: Vec<&Stamp> = stamps.iter().filter(|s| s.line <= last_line).collect();
    let mut line = 0;
    for s in &stamps {
        if s.line != line && s.line != line + 1 {
            bail!(
                "console line {} follows line {line} (lost or garbled output)",
                s.line
            );
        }
        line = s.line;
    }
    if stamps.first().is_some_and(|s| s.line != 0) {
        bail!("the first console line is missing");
    }
    // Gaps between consecutive replies: (earlier seq, ticks, requests lost between).
    let mut gaps = Vec::new();
    for w in stamps.windows(2) {
        if w[1].seq <= w[0].seq || w[1].ticks <= w[0].ticks {
            bail!("sequence or counter went back after seq {}", w[0].seq);
        }
        gaps.push((w[0].seq, w[1].ticks - w[0].ticks, w[1].seq - w[0].seq - 1));
    }
    let first = *crash_at.first().context("no crashes")?;
    let before: Vec<&(u64, u64, u64)> = gaps.iter().filter(|g| g.0 < first).collect();
    if before.is_empty() {
        bail!("no replies before the first crash");
    }
    let mut out = Vec::new();
    for (k, &from) in crash_at.iter().enumerate() {
        let to = crash_at.get(k + 1).copied().unwrap_or(u64::MAX);
        let seg: Vec<&(u64, u64, u64)> = gaps.iter().filter(|g| g.0 >= from && g.0 < to).collect();
        let ticks = seg
            .iter()
            .map(|g| g.1)
            .max()
            .with_context(|| format!("no reply after crash {}", k + 1))?;
        out.push(Pause {
            ticks,
            lost: seg.iter().map(|g| g.2).sum(),
        });
    }
    Ok((
        out,
        before.iter().map(|g| g.1).collect(),
        before.iter().map(|g| g.2).sum(),
    ))
}

/// The netdom half's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetRestartReport {
    /// The domain crashed.
    pub target: &'static str,
    /// The guest's request.
    pub request: String,
    /// How QEMU ran.
    pub clock: String,
    /// The guest's counter frequency assumed.
    pub counter_hz: u64,
    /// Crashes of netdom.
    pub crashes: usize,
    /// Each crash's pause (fault to the first answered request after it), ms of virtual
    /// time.
    pub pauses_ms: Vec<f64>,
    /// Requests without a reply after each crash (up to the next).
    pub lost: Vec<u64>,
    /// Statistics of the pauses.
    pub pause: Stats,
    /// Statistics of the pauses of the crashes that lost no request (none if all lost one).
    pub pause_without_loss: Option<Stats>,
    /// Statistics of the normal gaps between answered requests before the first crash.
    pub baseline: Stats,
    /// Normal gaps measured.
    pub baseline_gaps: usize,
    /// Requests without a reply before the first crash.
    pub baseline_lost: u64,
    /// dom0's restart delay (policy backoff) before each restart, ms.
    pub dom0_backoff_ms: Vec<u64>,
    /// dom0's "recovered in" figures (fault to the first heartbeat), ms.
    pub dom0_recovered_ms: Vec<u64>,
    /// Statistics of those.
    pub dom0_recovered: Option<Stats>,
    /// Goal for the median pause, ms.
    pub goal_ms: f64,
    /// Whether the median pause is below the goal.
    pub meets_goal: bool,
}

/// Builds the report from the console log, the sequence number seen before each crash and
/// the one seen before the stop was typed.
pub fn report(log: &str, crash_at: &[u64], stop_at: u64) -> Result<NetRestartReport> {
    let hz = super::boot::COUNTER_HZ;
    let ms_per_tick = 1e3 / hz as f64;
    let (p, base, baseline_lost) = pauses(&parse_stamps(log), crash_at, stop_at)?;
    let (recovered, backoff) = dom0_figures(log, DRIVER, crash_at.len())?;
    let ticks: Vec<u64> = p.iter().map(|x| x.ticks).collect();
    let clean: Vec<u64> = p.iter().filter(|x| x.lost == 0).map(|x| x.ticks).collect();
    let pause = Stats::of(&ticks, ms_per_tick).context("no pauses")?;
    Ok(NetRestartReport {
        target: DRIVER,
        request: format!("ping -i {INTERVAL} {HOST}"),
        clock: crate::qemu::ICOUNT_ARGS.join(" "),
        counter_hz: hz,
        crashes: p.len(),
        pauses_ms: ticks.iter().map(|&t| t as f64 * ms_per_tick).collect(),
        lost: p.iter().map(|x| x.lost).collect(),
        pause,
        pause_without_loss: Stats::of(&clean, ms_per_tick),
        baseline: Stats::of(&base, ms_per_tick).context("no baseline")?,
        baseline_gaps: base.len(),
        baseline_lost,
        dom0_backoff_ms: backoff,
        dom0_recovered: Stats::of(&recovered, 1.0),
        dom0_recovered_ms: recovered,
        goal_ms: GOAL_MS,
        meets_goal: pause.median < GOAL_MS,
    })
}

/// The table `bench restart` prints for netdom.
pub fn table(r: &NetRestartReport) -> String {
    let row = |name: &str, s: &Stats| {
        format!(
            "{name:<44} {:>10.2} {:>10.2} {:>10.2}",
            s.min, s.median, s.max
        )
    };
    let clean = r.lost.iter().filter(|&&l| l == 0).count();
    let mut rows = vec![
        format!(
            "restart: {} crashes of netdom under a Linux ICMP echo stream (`{}`, each reply stamped); guest-measured (CNTVCT) under {}",
            r.crashes, r.request, r.clock
        ),
        format!("{:<44} {:>10} {:>10} {:>10}", "ms of virtual time", "min", "median", "max"),
        row("fault to first reply, per crash", &r.pause),
    ];
    if let Some(s) = &r.pause_without_loss {
        rows.push(row(
            &format!("  crashes that lost no request ({clean} of {})", r.crashes),
            s,
        ));
    }
    rows.push(row("normal gap between replies (baseline)", &r.baseline));
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
    let list = |v: Vec<String>| v.join(", ");
    rows.push(format!(
        "pauses: {}; requests lost per crash: {}; before the first crash: {}; dom0 backoff before each restart: {} ms",
        list(r.pauses_ms.iter().map(|p| format!("{p:.2}")).collect()),
        list(r.lost.iter().map(u64::to_string).collect()),
        r.baseline_lost,
        list(r.dom0_backoff_ms.iter().map(u64::to_string).collect()),
    ));
    rows.push(format!(
        "goal: median pause < {} ms: {}",
        r.goal_ms,
        if r.meets_goal { "ok" } else { "above goal" }
    ));
    rows.join("\n")
}

#[cfg(test)]
#[path = "restart_net_tests.rs"]
mod tests;
