//! `bulkhead bench micro [--against xen]`: the `micro` guest (`tests/guests/micro`, one arm64
//! `Image` using only the Xen ABI) measures hypercall round trips, virtual-timer interrupt
//! latency (exclusive and shared pCPU), a virtual IPI and an event channel between two
//! domains, in instructions under `-icount shift=0,sleep=off`; min/p50/p99/max over
//! [`SAMPLES`] samples each. With `--against xen` the same file runs on Debian's Xen 4.17
//! booted dom0less in the same QEMU ([`super::micro_xen`]) and every figure prints beside
//! Xen's with the p50 ratio. The boots are in [`super::micro_run`].

use anyhow::{bail, Result};
use micro::{metric, Summary};
use serde::Serialize;

/// Samples per metric in the benchmark.
pub const SAMPLES: usize = 1000;

/// The metrics, in table order: name, what it measures.
pub const METRICS: [(&str, &str); 11] = [
    (metric::XEN_VERSION, "xen_version round trip"),
    (metric::CAP_NULL, "capability null call round trip"),
    (
        metric::TIMER_EXCLUSIVE,
        "vtimer IRQ latency, exclusive vCPU",
    ),
    (metric::TIMER_SHARED, "vtimer IRQ latency, shared pCPU"),
    (
        metric::TIMER_SHARED_RUNNING,
        "vtimer IRQ, shared pCPU, vCPU running",
    ),
    (metric::VIPI, "virtual IPI, vCPU 0 -> vCPU 1"),
    (metric::VIPI_SHARED, "virtual IPI, shared pCPUs"),
    (metric::EVTCHN, "evtchn send -> upcall, 2 pCPUs"),
    (
        metric::EVTCHN_SHARED,
        "evtchn send -> upcall, 2 shared pCPUs",
    ),
    (
        metric::EVTCHN_SWITCH,
        "evtchn send -> upcall, switch needed",
    ),
    (metric::EVTCHN_SAME, "evtchn send -> upcall, same pCPU"),
];

/// Runs the benchmark on `machine` (building first if `build`), against Xen if `xen`;
/// prints the table and writes `target/bulkhead/bench/micro.json` (`micro-<machine>.json`
/// off virt).
pub fn bench(build: bool, xen: bool, machine: crate::machine::Machine) -> Result<MicroReport> {
    if build {
        crate::build::build()?;
    }
    let b = super::micro_run::bulkhead(SAMPLES, machine)?;
    let x = if xen {
        Some(super::micro_xen::xen(SAMPLES)?)
    } else {
        None
    };
    let r = report(machine, &b, x.as_deref())?;
    print!("{}", table(&r));
    super::write_json(&super::json_name("micro", machine), &r)?;
    Ok(r)
}

/// Why Xen has no figure for `name` in our set-up, if it has none.
pub fn xen_cannot(name: &str) -> Option<&'static str> {
    match name {
        metric::CAP_NULL => Some("Bulkhead's capability ABI; Xen has none"),
        metric::EVTCHN | metric::EVTCHN_SHARED | metric::EVTCHN_SWITCH => {
            Some("needs 2 pCPUs; Xen runs with maxcpus=1 under -icount")
        }
        // Tried: Xen 4.17 answers the sender's EVTCHNOP_alloc_unbound for the other domU
        // with -EPERM (-1), so the pair never connects.
        metric::EVTCHN_SAME => Some("Xen 4.17 refuses a dom0less domU's alloc_unbound"),
        metric::VIPI_SHARED => Some("needs 2 pCPUs; Xen's row above has both vCPUs on its one"),
        _ => None,
    }
}

/// One metric's figures (instructions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dist {
    /// Samples.
    pub n: usize,
    /// Smallest.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl From<Summary> for Dist {
    fn from(s: Summary) -> Self {
        Self {
            n: s.n,
            min: s.min,
            p50: s.p50,
            p99: s.p99,
            max: s.max,
        }
    }
}

/// Every result line in a console log: (metric, figures), last one of a name winning.
pub fn parse(log: &str) -> Vec<(String, Dist)> {
    let mut out: Vec<(String, Dist)> = Vec::new();
    for (name, s) in log.lines().filter_map(micro::parse_line) {
        out.retain(|(n, _)| n != name);
        out.push((name.to_owned(), s.into()));
    }
    out
}

/// The guest's own error line, if it printed one.
pub fn guest_error(log: &str) -> Option<&str> {
    log.lines()
        .find_map(|l| l.find("MICRO error").map(|i| l[i..].trim_end()))
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Metric name (as the guest prints it).
    pub metric: &'static str,
    /// Under Bulkhead.
    pub bulkhead: Option<Dist>,
    /// Under Xen, when asked for and possible.
    pub xen: Option<Dist>,
    /// Why there is no Xen figure, when Xen was asked for.
    pub xen_na: Option<&'static str>,
    /// Bulkhead p50 / Xen p50.
    pub ratio_p50: Option<f64>,
}

/// The benchmark's report.
#[derive(Debug, Clone, Serialize)]
pub struct MicroReport {
    /// Benchmark name.
    pub benchmark: &'static str,
    /// The `--machine` Bulkhead ran on.
    pub machine: &'static str,
    /// Whether Xen ran too.
    pub against_xen: bool,
    /// One per metric, in [`METRICS`] order.
    pub rows: Vec<Row>,
}

/// Builds the report from the parsed runs on `machine`; an error if Bulkhead lacks a metric
/// or Xen lacks one it can do.
pub fn report(
    machine: crate::machine::Machine,
    bulkhead: &[(String, Dist)],
    xen: Option<&[(String, Dist)]>,
) -> Result<MicroReport> {
    let find =
        |set: &[(String, Dist)], name: &str| set.iter().find(|(n, _)| n == name).map(|(_, d)| *d);
    let mut rows = Vec::new();
    for (name, _) in METRICS {
        let Some(b) = find(bulkhead, name) else {
            bail!("the Bulkhead runs printed no `{name}` figure");
        };
        let (x, na) = match xen {
            None => (None, None),
            Some(set) => match (find(set, name), xen_cannot(name)) {
                (Some(d), _) => (Some(d), None),
                (None, Some(why)) => (None, Some(why)),
                (None, None) => bail!("the Xen runs printed no `{name}` figure"),
            },
        };
        rows.push(Row {
            metric: name,
            bulkhead: Some(b),
            ratio_p50: x
                .filter(|x| x.p50 != 0)
                .map(|x| b.p50 as f64 / x.p50 as f64),
            xen: x,
            xen_na: na,
        });
    }
    Ok(MicroReport {
        benchmark: "micro",
        machine: machine.name(),
        against_xen: xen.is_some(),
        rows,
    })
}

fn cells(d: Option<Dist>) -> String {
    match d {
        Some(d) => format!("{:>7} {:>7} {:>7} {:>7}", d.min, d.p50, d.p99, d.max),
        None => format!("{:>31}", "n/a"),
    }
}

/// A ratio with two significant decimals even when far below 1 (`0.0008x`, not `0.00x`).
fn ratio_text(x: f64) -> String {
    if x >= 0.01 || x == 0.0 {
        format!("{x:.2}x")
    } else {
        format!("{x:.1e}x")
    }
}

/// The table, as printed.
pub fn table(r: &MicroReport) -> String {
    let mut s = format!(
        "micro on {}: instructions under -icount shift=0,sleep=off (1 instruction = 1 ns; \
         the counter ticks every 16)\n",
        r.machine
    );
    let head = format!("{:>7} {:>7} {:>7} {:>7}", "min", "p50", "p99", "max");
    if r.against_xen {
        s += &format!(
            "{:<36} {:^31}   {:^31}  {:>7}\n",
            "", "bulkhead", "xen 4.17", "p50"
        );
        s += &format!("{:<36} {head}   {head}  {:>7}\n", "", "ratio");
    } else {
        s += &format!("{:<36} {:^31}\n{:<36} {head}\n", "", "bulkhead", "");
    }
    let mut notes = Vec::new();
    for row in &r.rows {
        let label = METRICS
            .iter()
            .find(|(n, _)| *n == row.metric)
            .map_or(row.metric, |(_, l)| l);
        s += &format!("{label:<36} {}", cells(row.bulkhead));
        if r.against_xen {
            let ratio = row.ratio_p50.map_or_else(|| "-".to_owned(), ratio_text);
            s += &format!("   {}  {ratio:>7}", cells(row.xen));
            if let Some(why) = row.xen_na {
                notes.push(format!("{label}: n/a on Xen: {why}"));
            }
        }
        s.push('\n');
    }
    for n in notes {
        s += &format!("note: {n}\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    const V: crate::machine::Machine = crate::machine::Machine::Virt;

    fn line(name: &str, p50: u64) -> String {
        format!("[x] MICRO metric={name} n=1000 min=1 p50={p50} p99=3 max=4 unit=instructions\n")
    }

    fn all(p50: u64) -> String {
        METRICS.iter().map(|(n, _)| line(n, p50)).collect()
    }

    #[test]
    fn parses_a_log_and_keeps_the_last_figure() {
        let log = format!("{}noise\n{}", line("vipi", 5), line("vipi", 7));
        let got = parse(&log);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.p50, 7);
        assert_eq!(
            guest_error("a\n(d1) MICRO error PSCI CPU_ON of vCPU 1 returned -2\r\n"),
            Some("MICRO error PSCI CPU_ON of vCPU 1 returned -2")
        );
        assert_eq!(guest_error(&all(1)), None);
    }

    #[test]
    fn reports_ratios_and_what_xen_cannot_do() {
        let b = parse(&all(800));
        let x: Vec<_> = parse(&all(400))
            .into_iter()
            .filter(|(n, _)| xen_cannot(n).is_none())
            .collect();
        let r = report(V, &b, Some(&x)).unwrap();
        let xv = &r.rows[0];
        assert_eq!(xv.ratio_p50, Some(2.0));
        let cap = r
            .rows
            .iter()
            .find(|r| r.metric == metric::CAP_NULL)
            .unwrap();
        assert!(cap.xen.is_none() && cap.xen_na.is_some());
        let t = table(&r);
        assert!(t.contains("2.00x"), "{t}");
        assert_eq!(ratio_text(8000.0 / 9_972_336.0), "8.0e-4x");
        assert!(t.contains("n/a on Xen: Bulkhead's capability ABI"), "{t}");
        // Bulkhead alone: no Xen columns.
        let alone = report(V, &b, None).unwrap();
        assert!(!table(&alone).contains("xen 4.17"));
    }

    #[test]
    fn a_missing_figure_is_an_error() {
        let b = parse(&all(800));
        let short: Vec<_> = b.iter().filter(|(n, _)| n != "vipi").cloned().collect();
        assert!(report(V, &short, None)
            .unwrap_err()
            .to_string()
            .contains("no `vipi` figure"));
        assert!(report(V, &b, Some(&short))
            .unwrap_err()
            .to_string()
            .contains("Xen runs printed no `vipi`"));
    }
}
