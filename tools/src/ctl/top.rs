//! `ctl top`: a refreshing table of per-domain CPU time, memory, exits and interrupts, with
//! rates computed between two samples.

use super::client::Client;
use super::show::{cpu_seconds, row_json};
use anyhow::{bail, Result};
use protocol::mgmt::{state_word, DomainRow, Request, Response, SystemInfo, PAGE_SIZE};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, Instant};

/// Per-second rates of one domain since the previous sample; `None` on the first sample
/// and after a restart (its counters start again from 0).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    /// CPU time used per wall-clock time, in percent (can pass 100 with several vCPUs).
    pub cpu_percent: Option<f64>,
    /// Exits per second.
    pub exits_per_s: Option<f64>,
    /// Interrupts injected per second.
    pub irqs_per_s: Option<f64>,
}

/// Rates of each row of `cur` against `prev`, sampled `elapsed` apart.
pub fn rates(prev: &[DomainRow], cur: &[DomainRow], elapsed: Duration, hz: u64) -> Vec<Rates> {
    let secs = elapsed.as_secs_f64();
    cur.iter()
        .map(|c| {
            let Some(p) = prev
                .iter()
                .find(|p| p.id == c.id && p.restarts == c.restarts)
                .filter(|_| secs > 0.0)
            else {
                return Rates::default();
            };
            // Counts are far below 2^53 between two samples.
            #[allow(clippy::cast_precision_loss)] // see above
            let per_s = |now: u64, then: u64| now.checked_sub(then).map(|d| d as f64 / secs);
            Rates {
                cpu_percent: per_s(c.cpu_ticks, p.cpu_ticks)
                    .filter(|_| hz != 0)
                    .map(|ticks_per_s| ticks_per_s / hz as f64 * 100.0),
                exits_per_s: per_s(c.exits, p.exits),
                irqs_per_s: per_s(c.irqs_injected, p.irqs_injected),
            }
        })
        .collect()
}

fn rate_text(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.0}"))
}

/// One screen of `ctl top`.
pub fn top_table(
    info: &SystemInfo,
    rows: &[DomainRow],
    rates: &[Rates],
    every: Duration,
) -> String {
    let free_mib = info.free_pages.saturating_mul(PAGE_SIZE) >> 20;
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
    let mut s = format!(
        "bulkhead top: {} domains, {free_mib} MiB free, every {} s (Ctrl-C to quit)\n\n",
        info.domains,
        every.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "{:<w$} {:>5}  {:<9} {:>9} {:>6} {:>8} {:>5} {:>12} {:>8} {:>12} {:>8}",
        "Name",
        "ID",
        "State",
        "CPU(s)",
        "CPU%",
        "Mem(MiB)",
        "VCPUs",
        "Exits",
        "Exits/s",
        "IRQs",
        "IRQs/s"
    );
    for (r, rate) in rows.iter().zip(rates) {
        let cpu = cpu_seconds(r.cpu_ticks, info.counter_hz)
            .map_or_else(|| "-".into(), |s| format!("{s:.1}"));
        let pct = rate
            .cpu_percent
            .map_or_else(|| "-".into(), |p| format!("{p:.1}"));
        let _ = writeln!(
            s,
            "{:<w$} {:>5}  {:<9} {:>9} {:>6} {:>8} {:>5} {:>12} {:>8} {:>12} {:>8}",
            r.name,
            r.id,
            state_word(&r.state),
            cpu,
            pct,
            r.mem_mib,
            r.vcpus,
            r.exits,
            rate_text(rate.exits_per_s),
            r.irqs_injected,
            rate_text(rate.irqs_per_s),
        );
    }
    s
}

/// One sample of `ctl top --json` (printed one per line).
pub fn top_json(info: &SystemInfo, rows: &[DomainRow], rates: &[Rates]) -> Value {
    let domains: Vec<Value> = rows
        .iter()
        .zip(rates)
        .map(|(r, rate)| {
            let mut v = row_json(r, info.counter_hz);
            if let Some(o) = v.as_object_mut() {
                o.insert("cpu_percent".into(), json!(rate.cpu_percent));
                o.insert("exits_per_s".into(), json!(rate.exits_per_s));
                o.insert("irqs_per_s".into(), json!(rate.irqs_per_s));
            }
            v
        })
        .collect();
    json!({ "free_pages": info.free_pages, "domains": domains })
}

/// How `top` runs.
#[derive(Clone, Copy, Debug)]
pub struct TopOptions {
    /// Time between samples.
    pub every: Duration,
    /// Samples to show; `None` runs until interrupted.
    pub count: Option<u64>,
    /// JSON lines instead of a table.
    pub json: bool,
    /// Clear the screen before each table (only when stdout is a terminal).
    pub clear: bool,
}

/// Samples `count` times (or forever), writing each screen or JSON line to `out`.
pub fn run(client: &mut Client, opts: TopOptions, out: &mut dyn Write) -> Result<()> {
    let mut prev: Option<(Instant, Vec<DomainRow>)> = None;
    let mut shown = 0u64;
    while opts.count.is_none_or(|n| shown < n) {
        if shown > 0 {
            client.release();
            std::thread::sleep(opts.every);
        }
        let Response::System(info) = client.call(&Request::Info)? else {
            bail!("unexpected reply from dom0 to info");
        };
        let Response::Domains(rows) = client.call(&Request::Top)? else {
            bail!("unexpected reply from dom0 to top");
        };
        let now = Instant::now();
        let r = match &prev {
            Some((at, p)) => rates(p, &rows, now - *at, info.counter_hz),
            None => vec![Rates::default(); rows.len()],
        };
        if opts.json {
            writeln!(out, "{}", top_json(&info, &rows, &r))?;
        } else {
            if opts.clear {
                write!(out, "\x1b[2J\x1b[H")?;
            } else if shown > 0 {
                writeln!(out)?;
            }
            write!(out, "{}", top_table(&info, &rows, &r, opts.every))?;
        }
        out.flush()?;
        prev = Some((now, rows));
        shown += 1;
    }
    Ok(())
}
