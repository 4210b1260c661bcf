//! `bulkhead bench rt`: the RTOS's virtual-timer interrupt latency and periodic release
//! delay (min/avg/max/p99 over 10,000 releases at 200 µs) under the microvisor and bare
//! metal in the same QEMU, plus EL2 instructions per RTOS timer interrupt. Everything runs
//! under `-icount shift=0,sleep=off` (one instruction = 1 ns of virtual time), so each
//! figure is reproducible.
//!
//! There is no loaded run (a busy neighbour on the other CPUs). Under icount QEMU runs the
//! CPUs round-robin on one host thread and the clock counts every CPU's instructions. A
//! loaded latency is then mostly the neighbours' time slices, so it measures QEMU's
//! scheduling, not the hypervisor. Its ratio to a loaded bare-metal run fell below 1x, which
//! read as "faster than bare metal". Behaviour under load is checked by the `rtos_realtime`
//! test (no missed deadline), not measured here.

use crate::markers::Expect;
use crate::qemu::{self, RunOptions};
use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// Command line of the benchmark (the systems in `tests/systems/bench_rt*.toml` match).
pub const CMDLINE: &str = "bench=rt releases=10000 period_us=200";

/// min/avg/max/p99 in ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Dist {
    /// Samples.
    pub n: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub avg: u64,
    /// Largest.
    pub max: u64,
    /// 99th percentile.
    pub p99: u64,
}

/// One run's results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RtRun {
    /// Timer interrupt latency: handler entry minus programmed deadline (ns).
    pub irq_latency_ns: Dist,
    /// Release delay: job start minus nominal release (ns); its spread is the jitter.
    pub release_delay_ns: Dist,
    /// Timer interrupts in the window.
    pub timer_irqs: u64,
    /// EL2 instructions counted on the RTOS's CPU in the window.
    pub el2_instructions: u64,
    /// EL0/EL1 instructions counted on the RTOS's CPU in the window.
    pub guest_instructions: u64,
}

/// The whole benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct RtReport {
    /// Benchmark name.
    pub benchmark: &'static str,
    /// The RTOS command line.
    pub cmdline: &'static str,
    /// Bare metal, idle neighbours.
    pub native: RtRun,
    /// Under the microvisor, idle neighbours.
    pub bulkhead: RtRun,
    /// EL2 instructions per RTOS timer interrupt.
    pub el2_per_timer_irq: f64,
    /// Mean latency ratio bulkhead / native.
    pub latency_ratio: f64,
}

fn dist(log: &str, what: &str) -> Option<Dist> {
    let re = Regex::new(&format!(
        r"\] bench-rt {what} n=(\d+) min=(\d+) avg=(\d+) max=(\d+) p99=(\d+)"
    ))
    .ok()?;
    let c = re.captures_iter(log).last()?;
    let n = |i: usize| c[i].parse::<u64>().ok();
    Some(Dist {
        n: n(1)?,
        min: n(2)?,
        avg: n(3)?,
        max: n(4)?,
        p99: n(5)?,
    })
}

/// Parses one run's console log.
pub fn parse(log: &str) -> Option<RtRun> {
    let re = Regex::new(
        r"\] bench-rt counters .*timer_irqs=(\d+) el2_instructions=(\d+) guest_instructions=(\d+)",
    )
    .expect("static regex");
    let c = re.captures_iter(log).last()?;
    Some(RtRun {
        irq_latency_ns: dist(log, "irq_latency_ns")?,
        release_delay_ns: dist(log, "release_delay_ns")?,
        timer_irqs: c[1].parse().ok()?,
        el2_instructions: c[2].parse().ok()?,
        guest_instructions: c[3].parse().ok()?,
    })
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// Builds the report from the two runs.
pub fn report(native: RtRun, bulkhead: RtRun) -> RtReport {
    RtReport {
        benchmark: "rt",
        cmdline: CMDLINE,
        el2_per_timer_irq: ratio(bulkhead.el2_instructions, bulkhead.timer_irqs),
        latency_ratio: ratio(bulkhead.irq_latency_ns.avg, native.irq_latency_ns.avg),
        native,
        bulkhead,
    }
}

fn options(name: &str, build: bool) -> Result<RunOptions> {
    Ok(RunOptions::bench(
        crate::paths::workspace_root().join(format!("tests/systems/{name}.toml")),
        Expect::new().then(r"\] bench-rt done")?,
        Duration::from_secs(600),
        build,
    ))
}

fn build_native() -> Result<PathBuf> {
    let status = crate::build::cargo()
        .args([
            "build",
            "--release",
            "--target",
            crate::paths::TARGET,
            "-p",
            "rtos",
            "--features",
            "native",
            "--bin",
            "rtos-native",
        ])
        .current_dir(crate::paths::workspace_root())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building rtos-native failed ({status})");
    }
    Ok(crate::paths::elf("rtos-native"))
}

fn one(what: &str, run: impl FnOnce() -> Result<qemu::RunOutcome>) -> Result<RtRun> {
    let out = super::boot_with_spinner(what, run)?;
    parse(&out.log)
        .with_context(|| format!("no bench-rt result lines in {}", out.log_path.display()))
}

/// Runs the two boots, prints the table and writes `target/bulkhead/bench/rt.json`.
pub fn bench(build: bool) -> Result<RtReport> {
    let native_elf = if build {
        build_native()?
    } else {
        crate::paths::elf("rtos-native")
    };
    if !native_elf.is_file() {
        bail!(
            "{} does not exist; run without --no-build",
            native_elf.display()
        );
    }
    let bulkhead = one("RTOS under the microvisor", || {
        qemu::run(&options("bench_rt", build)?)
    })?;
    let native = one("RTOS bare metal", || {
        qemu::run_native(&native_elf, CMDLINE, 4, &options("rt_native", false)?)
    })?;
    let r = report(native, bulkhead);
    print!("{}", table(&r));
    super::write_json("rt", &r)?;
    Ok(r)
}

/// The table, as printed.
fn table(r: &RtReport) -> String {
    let mut s = format!(
        "rt: {} (ns of virtual time; 1 instruction = 1 ns)\n",
        r.cmdline
    );
    s += &format!(
        "{:<30} {:>10} {:>10} {:>8}\n",
        "", "native", "bulkhead", "ratio"
    );
    type Row = (&'static str, fn(&RtRun) -> u64);
    let rows: [Row; 8] = [
        ("timer irq latency min", |x| x.irq_latency_ns.min),
        ("timer irq latency avg", |x| x.irq_latency_ns.avg),
        ("timer irq latency p99", |x| x.irq_latency_ns.p99),
        ("timer irq latency max", |x| x.irq_latency_ns.max),
        ("release delay min", |x| x.release_delay_ns.min),
        ("release delay avg", |x| x.release_delay_ns.avg),
        ("release delay p99", |x| x.release_delay_ns.p99),
        ("release delay max", |x| x.release_delay_ns.max),
    ];
    for (name, f) in rows {
        s += &format!(
            "{:<30} {:>10} {:>10} {:>7.1}x\n",
            name,
            f(&r.native),
            f(&r.bulkhead),
            ratio(f(&r.bulkhead), f(&r.native)),
        );
    }
    let jitter = |x: &RtRun| x.release_delay_ns.max - x.release_delay_ns.min;
    s += &format!(
        "{:<30} {:>10} {:>10}\n",
        "release jitter (max-min)",
        jitter(&r.native),
        jitter(&r.bulkhead)
    );
    s += &format!(
        "{:<30} {:>10} {:>10.0}\n",
        "EL2 instructions / timer irq", "-", r.el2_per_timer_irq
    );
    s += &format!(
        "{:<30} {:>10} {:>10}\n",
        "releases measured", r.native.release_delay_ns.n, r.bulkhead.release_delay_ns.n
    );
    s += "note: the other CPUs are idle. A loaded run is not measured: under -icount QEMU runs \
          the CPUs round-robin and the clock counts every CPU, so it would time QEMU's \
          scheduling (see `bench micro` for a vCPU sharing its pCPU).\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "[rtos] ready\n\
        [rtos] bench-rt irq_latency_ns n=10000 min=6496 avg=6500 max=7000 p99=6900\n\
        [rtos] bench-rt release_delay_ns n=10000 min=14672 avg=14700 max=15000 p99=14900\n\
        [rtos] bench-rt counters releases=10000 period_ns=200000 counter_hz=62500000 timer_irqs=10000 el2_instructions=141610000 guest_instructions=8673647\n\
        [rtos] bench-rt done\n";

    #[test]
    fn parses_and_reports() {
        let b = parse(LOG).unwrap();
        assert_eq!(b.irq_latency_ns.avg, 6500);
        assert_eq!(b.release_delay_ns.p99, 14900);
        assert_eq!(b.el2_instructions, 141_610_000);
        let native = parse(
            &LOG.replace("[rtos]", "[native]")
                .replace("avg=6500", "avg=65"),
        )
        .unwrap();
        let r = report(native, b);
        assert_eq!(r.el2_per_timer_irq, 14161.0);
        assert_eq!(r.latency_ratio, 100.0);
        assert!(parse("[rtos] ready").is_none());
    }

    /// The loaded columns timed QEMU's round-robin and printed ratios below 1x: every
    /// ratio the table prints now compares two runs with idle neighbours.
    #[test]
    fn the_table_has_no_loaded_columns() {
        let b = parse(LOG).unwrap();
        let native = parse(&LOG.replace("avg=6500", "avg=65")).unwrap();
        let t = table(&report(native, b));
        assert!(!t.contains("+ld") && !t.contains("loaded,"), "{t}");
        let header = t.lines().nth(1).unwrap();
        assert_eq!(
            header.split_whitespace().collect::<Vec<_>>(),
            ["native", "bulkhead", "ratio"]
        );
        assert!(t.contains("100.0x"), "{t}");
    }
}
