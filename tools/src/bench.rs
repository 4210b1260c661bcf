//! `bulkhead bench hypercall`: boots the benchmark guest twice under `-icount` and reports
//! EL2 instructions per null-hypercall round trip, and whether the two runs agree exactly.
//! `bulkhead bench rt` is in [`rt`], `bulkhead bench boot` in [`boot`], `bulkhead bench blk`
//! in [`blk`] and [`blk_run`], `bulkhead bench net` in [`net`] and [`net_run`], `bulkhead bench restart` in
//! [`restart`], [`restart_net`], [`restart_net_run`] and [`restart_run`], `bulkhead bench micro` in [`micro`], [`micro_run`] and
//! [`micro_xen`]; `micro` and `boot` on several machines side by side in [`machines`], the
//! native baselines' QEMU per machine in [`native`].

pub mod blk;
pub mod blk_run;
pub mod boot;
pub mod console;
pub mod machines;
pub mod micro;
pub mod micro_run;
pub mod micro_xen;
pub mod native;
pub mod net;
pub mod net_g2g;
pub mod net_run;
pub mod restart;
pub mod restart_net;
pub mod restart_net_run;
pub mod restart_run;
pub mod rt;

use crate::machine::Machine;
use crate::markers::Expect;
use crate::qemu::{self, Outcome, RunOptions};
use anyhow::{bail, Context, Result};
use regex::Regex;
use serde::Serialize;
use std::time::Duration;

/// One run's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Round trips.
    pub n: u64,
    /// Instructions retired at EL2 over all round trips.
    pub el2_instructions: u64,
    /// Instructions retired by the guest over all round trips.
    pub guest_instructions: u64,
}

/// The benchmark's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Benchmark name.
    pub benchmark: &'static str,
    /// Every run.
    pub runs: Vec<Sample>,
    /// EL2 instructions per round trip (first run).
    pub el2_per_round_trip: f64,
    /// Guest instructions per call (first run).
    pub guest_per_call: f64,
    /// Whether all runs counted the same.
    pub identical: bool,
}

/// Finds the guest's result line in a console log.
pub fn parse(log: &str) -> Option<Sample> {
    let re = Regex::new(
        r"\[bench\] null-hypercall n=(\d+) el2_instructions=(\d+) guest_instructions=(\d+)",
    )
    .expect("static regex");
    let c = re.captures_iter(log).last()?;
    Some(Sample {
        n: c[1].parse().ok()?,
        el2_instructions: c[2].parse().ok()?,
        guest_instructions: c[3].parse().ok()?,
    })
}

/// Turns runs into a report.
pub fn report(runs: Vec<Sample>) -> Result<Report> {
    let first = *runs.first().context("no runs")?;
    if first.n == 0 {
        bail!("the guest reported n=0 round trips");
    }
    Ok(Report {
        benchmark: "hypercall",
        el2_per_round_trip: first.el2_instructions as f64 / first.n as f64,
        guest_per_call: first.guest_instructions as f64 / first.n as f64,
        identical: runs.iter().all(|r| *r == first),
        runs,
    })
}

/// Runs the benchmark (building the images first if `build`) and prints/writes its report;
/// `against` names another hypervisor to compare with (only `micro` takes one: `xen`);
/// `count` is how many times `restart` crashes each driver domain and `target` which one
/// (`blkdom`, `netdom`; none: both) (only `restart` takes them);
/// `machines` are the QEMU machines (see [`machine_supports`]; more than one only for
/// `micro` and `boot`, which then print them side by side, see [`machines`]).
pub fn bench(
    which: &str,
    build: bool,
    against: Option<&str>,
    count: Option<u32>,
    target: Option<&str>,
    machines: &[Machine],
) -> Result<Report> {
    if count.is_some() && which != "restart" {
        bail!("--count is only for `bench restart`");
    }
    if target.is_some() && which != "restart" {
        bail!("--target is only for `bench restart`");
    }
    let machine = match machines {
        [] => bail!("no --machine given"),
        [one] => *one,
        _ => {
            match (which, against) {
                ("micro", None) => machines::micro(build, machines)?,
                ("boot", None) => machines::boot(build, machines)?,
                (_, Some(_)) => bail!("--against runs on --machine virt alone"),
                _ => bail!(
                    "`bench {which}` takes one --machine; only `micro` and `boot` run on several side by side"
                ),
            }
            return Ok(Report {
                benchmark: if which == "micro" { "micro" } else { "boot" },
                runs: Vec::new(),
                el2_per_round_trip: 0.0,
                guest_per_call: 0.0,
                identical: true,
            });
        }
    };
    if !machine_supports(which, against.is_some(), machine) {
        bail!(
            "`bench {which}`{} runs only on --machine virt: {}",
            if against.is_some() { " --against" } else { "" },
            if against.is_some() {
                "the other hypervisor is booted on QEMU virt"
            } else {
                "it compares with a native run or uses virtio disks and NICs, which it sets up only there"
            }
        );
    }
    match (which, against) {
        (_, None) | ("micro", Some("xen")) => {}
        ("micro", Some(other)) => bail!("--against {other}: only `xen` is supported"),
        (_, Some(_)) => bail!("--against is only for `bench micro`"),
    }
    // rt, boot, blk, net, restart and micro print and write their own reports; the hypercall report type is
    // this function's, so they answer with an empty one under their name.
    let own: Option<&'static str> = match which {
        "rt" => {
            rt::bench(build)?;
            Some("rt")
        }
        "boot" => Some(boot::bench(build, machine)?.benchmark),
        "blk" => Some(blk_run::bench(build)?.benchmark),
        "net" => Some(net_run::bench(build)?.benchmark),
        "restart" => {
            let targets = restart::Target::parse(target)?;
            Some(restart_run::run(build, &targets, count)?.benchmark)
        }
        "micro" => Some(micro::bench(build, against.is_some(), machine)?.benchmark),
        _ => None,
    };
    if let Some(benchmark) = own {
        return Ok(Report {
            benchmark,
            runs: Vec::new(),
            el2_per_round_trip: 0.0,
            guest_per_call: 0.0,
            identical: true,
        });
    }
    if which != "hypercall" {
        bail!("unknown benchmark `{which}`, expected `hypercall`, `rt`, `boot`, `blk`, `net`, `restart` or `micro`");
    }
    let system = crate::paths::workspace_root().join("tests/systems/bench.toml");
    let mut runs = Vec::new();
    for i in 0..2 {
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.set_message(format!(
            "run {} of 2: booting {} under -icount",
            i + 1,
            system.display()
        ));
        spinner.enable_steady_tick(Duration::from_millis(120));
        let mut opts = RunOptions::bench(
            system.clone(),
            Expect::new().then(r"\[bench\] done")?,
            Duration::from_secs(300),
            build && i == 0,
        );
        opts.overrides.machine = machine;
        let out = qemu::run(&opts)?;
        spinner.finish_and_clear();
        if out.outcome != Outcome::Matched {
            bail!("benchmark run {} failed: {}", i + 1, out.report(30));
        }
        runs.push(parse(&out.log).with_context(|| {
            format!(
                "no `[bench] null-hypercall` line in {}",
                out.log_path.display()
            )
        })?);
    }
    let report = report(runs)?;
    println!("{:<44} {:>12}", "hypercall (null call round trip)", "value");
    println!(
        "{:<44} {:>12.2}",
        "EL2 instructions per round trip", report.el2_per_round_trip
    );
    println!(
        "{:<44} {:>12.2}",
        "guest instructions per call", report.guest_per_call
    );
    println!("{:<44} {:>12}", "round trips per run", report.runs[0].n);
    println!(
        "{:<44} {:>12}",
        "identical",
        if report.identical { "yes" } else { "no" }
    );
    write_json("hypercall", &report)?;
    Ok(report)
}

/// Whether `bench which` (`against`: compared with another hypervisor) runs on `machine`:
/// everything on virt; elsewhere the benchmarks that count the microvisor's own
/// instructions (`hypercall`, `micro`) and `boot`, whose native baseline boots on the same
/// machine ([`native`]). `rt` compares with a bare-metal build made for virt, and `blk`,
/// `net` and `restart` use virtio disks and NICs.
pub fn machine_supports(which: &str, against: bool, machine: Machine) -> bool {
    machine == Machine::Virt || (matches!(which, "hypercall" | "micro" | "boot") && !against)
}

/// `--machine`'s value: one machine, a comma-separated list, or `all` (virt, virt-gicv2,
/// zcu102).
pub fn parse_machines(text: &str) -> Result<Vec<Machine>> {
    if text == "all" {
        return Ok(machines::ALL.to_vec());
    }
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim) {
        let m = <Machine as clap::ValueEnum>::from_str(name, false).map_err(|_| {
            anyhow::anyhow!("unknown machine `{name}`: expected virt, virt-gicv2, zcu102 or all")
        })?;
        if out.contains(&m) {
            bail!("--machine names {name} twice");
        }
        out.push(m);
    }
    Ok(out)
}

/// The JSON file stem of `bench` on `machine`: `<bench>` on virt (as before machines
/// existed), `<bench>-<machine>` elsewhere.
pub fn json_name(bench: &str, machine: Machine) -> String {
    match machine {
        Machine::Virt => bench.to_owned(),
        m => format!("{bench}-{}", m.name()),
    }
}

/// Runs one benchmark boot behind a spinner (QEMU under icount prints nothing for a while)
/// and returns it if its markers matched.
pub fn boot_with_spinner(
    what: &str,
    run: impl FnOnce() -> Result<qemu::RunOutcome>,
) -> Result<qemu::RunOutcome> {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("{what} under -icount"));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let out = run()?;
    spinner.finish_and_clear();
    if out.outcome != Outcome::Matched {
        bail!("{what} failed: {}", out.report(30));
    }
    Ok(out)
}

/// Writes a benchmark's report to `target/bulkhead/bench/<name>.json` and says where.
pub fn write_json(name: &str, report: &impl Serialize) -> Result<()> {
    let dir = crate::paths::out_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports() {
        let log = "bulkhead: microvisor up\n[bench] null-hypercall n=1000 el2_instructions=123456 guest_instructions=9000\n[bench] done\n";
        let s = parse(log).unwrap();
        assert_eq!(
            s,
            Sample {
                n: 1000,
                el2_instructions: 123_456,
                guest_instructions: 9000
            }
        );
        let r = report(vec![s, s]).unwrap();
        assert!(r.identical);
        assert_eq!(format!("{:.2}", r.el2_per_round_trip), "123.46");
        let other = Sample {
            el2_instructions: 1,
            ..s
        };
        assert!(!report(vec![s, other]).unwrap().identical);
        assert!(parse("nothing").is_none());
    }

    #[test]
    fn machines_parse_as_one_a_list_or_all() {
        assert_eq!(parse_machines("zcu102").unwrap(), [Machine::Zcu102]);
        assert_eq!(
            parse_machines("virt, zcu102").unwrap(),
            [Machine::Virt, Machine::Zcu102]
        );
        assert_eq!(parse_machines("all").unwrap(), machines::ALL);
        assert!(parse_machines("virt,virt").is_err());
        assert!(parse_machines("rpi4")
            .unwrap_err()
            .to_string()
            .contains("unknown machine `rpi4`"));
        assert_eq!(json_name("micro", Machine::Virt), "micro");
        assert_eq!(json_name("boot", Machine::Zcu102), "boot-zcu102");
        assert_eq!(json_name("micro", Machine::VirtGicv2), "micro-virt-gicv2");
    }

    #[test]
    fn several_machines_only_for_micro_and_boot() {
        let two = [Machine::Virt, Machine::Zcu102];
        let e = bench("rt", false, None, None, None, &two).unwrap_err();
        assert!(e.to_string().contains("takes one --machine"), "{e}");
        let e = bench("micro", false, Some("xen"), None, None, &two).unwrap_err();
        assert!(e.to_string().contains("--against"), "{e}");
    }
}
