//! `bench micro|boot --machine all` (or a list such as `virt,zcu102`): the benchmark on each
//! machine in turn, each machine's own table and JSON as a single-machine run writes them,
//! then one table with a column per machine (GICv3 beside GICv2) and
//! `target/bulkhead/bench/<bench>-machines.json`. A machine whose run fails gets an
//! `n/a` column and its reason under the table, and the command fails after printing it.

use super::boot::BootReport;
use super::micro::{MicroReport, METRICS, SAMPLES};
use crate::machine::Machine;
use anyhow::{bail, Result};
use serde::Serialize;

/// Every machine, in the order `all` runs them.
pub const ALL: [Machine; 3] = [Machine::Virt, Machine::VirtGicv2, Machine::Zcu102];

/// The interrupt controller a machine's column is headed with.
pub fn gic(machine: Machine) -> &'static str {
    match machine {
        Machine::Virt => "GICv3",
        Machine::VirtGicv2 => "GICv2",
        Machine::Zcu102 => "GIC-400 v2",
    }
}

/// One machine's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Column<T> {
    /// `--machine` name.
    pub machine: &'static str,
    /// Its interrupt controller.
    pub gic: &'static str,
    /// The report, if the benchmark ran.
    pub report: Option<T>,
    /// Why not, if it did not.
    pub na: Option<String>,
}

impl<T> Column<T> {
    fn new(machine: Machine, r: Result<T>) -> Self {
        let (report, na) = match r {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        Self {
            machine: machine.name(),
            gic: gic(machine),
            report,
            na,
        }
    }
}

const LABEL: usize = 36;
const CELL: usize = 21;

fn header<T>(cols: &[Column<T>], sub: &str) -> String {
    let mut s = format!("{:<LABEL$}", "");
    for c in cols {
        s += &format!(" {:>CELL$}", format!("{} ({})", c.machine, c.gic));
    }
    s += &format!("\n{:<LABEL$}", "");
    for _ in cols {
        s += &format!(" {sub:>CELL$}");
    }
    s + "\n"
}

fn notes<T>(cols: &[Column<T>]) -> String {
    cols.iter()
        .filter_map(|c| {
            c.na.as_ref()
                .map(|why| format!("n/a on {}: {why}\n", c.machine))
        })
        .collect()
}

/// The side-by-side table of `bench micro`: p50 and p99 per machine.
pub fn micro_table(cols: &[Column<MicroReport>]) -> String {
    let mut s = String::from(
        "micro, side by side: instructions under -icount shift=0,sleep=off, p50 / p99\n",
    );
    s += &header(cols, "p50 / p99");
    for (name, label) in METRICS {
        s += &format!("{label:<LABEL$}");
        for c in cols {
            let d = c
                .report
                .as_ref()
                .and_then(|r| r.rows.iter().find(|row| row.metric == name))
                .and_then(|row| row.bulkhead);
            let cell = d.map_or_else(|| "n/a".to_owned(), |d| format!("{} / {}", d.p50, d.p99));
            s += &format!(" {cell:>CELL$}");
        }
        s.push('\n');
    }
    s + &notes(cols)
}

/// The side-by-side table of `bench boot`: instructions to the marker and the ratio.
pub fn boot_table(cols: &[Column<BootReport>]) -> String {
    let mut s = String::from(
        "boot, side by side: instructions from reset to the Linux userspace marker \
         (1 vCPU, 512 MiB), native baseline on the same machine\n",
    );
    s += &header(cols, "instructions");
    type Cell = fn(&BootReport) -> String;
    let rows: [(&str, Cell); 3] = [
        ("bulkhead", |r| r.bulkhead.instructions.to_string()),
        ("native", |r| r.native.instructions.to_string()),
        ("ratio (bulkhead / native)", |r| format!("{:.3}x", r.ratio)),
    ];
    for (label, cell) in rows {
        s += &format!("{label:<LABEL$}");
        for c in cols {
            let v = c.report.as_ref().map_or_else(|| "n/a".to_owned(), cell);
            s += &format!(" {v:>CELL$}");
        }
        s.push('\n');
    }
    s + &notes(cols)
}

/// Prints `table`, writes `<name>-machines.json` and fails if a machine has no figures.
fn finish<T: Serialize>(name: &str, cols: &[Column<T>], table: String) -> Result<()> {
    print!("{table}");
    super::write_json(&format!("{name}-machines"), &cols)?;
    let failed: Vec<_> = cols
        .iter()
        .filter(|c| c.na.is_some())
        .map(|c| c.machine)
        .collect();
    if !failed.is_empty() {
        bail!("`bench {name}` has no figures on {}", failed.join(", "));
    }
    Ok(())
}

/// `bench micro` on each of `machines` (building once first if `build`).
pub fn micro(build: bool, machines: &[Machine]) -> Result<()> {
    if build {
        crate::build::build()?;
    }
    let mut cols = Vec::new();
    for &m in machines {
        let r =
            super::micro_run::bulkhead(SAMPLES, m).and_then(|b| super::micro::report(m, &b, None));
        if let Ok(r) = &r {
            print!("{}", super::micro::table(r));
            super::write_json(&super::json_name("micro", m), r)?;
        }
        cols.push(Column::new(m, r));
    }
    finish("micro", &cols, micro_table(&cols))
}

/// `bench boot` on each of `machines` (building once first if `build`).
pub fn boot(build: bool, machines: &[Machine]) -> Result<()> {
    let mut cols = Vec::new();
    for (i, &m) in machines.iter().enumerate() {
        let r = super::boot::bench(build && i == 0, m);
        cols.push(Column::new(m, r));
    }
    finish("boot", &cols, boot_table(&cols))
}

#[cfg(test)]
#[path = "machines_tests.rs"]
mod tests;
