//! The RTOS under load, on any machine: its periodic tasks meet every deadline for five
//! seconds of releases while a 2-vCPU guest loads the other CPUs with busy loops, timer
//! interrupts and SGIs, and its shell answers `threads` and `stats` typed on the console
//! (after Ctrl-A three times moves console input from dom0 to the RTOS).
//!
//! Runs under `-icount` so time is virtual and deterministic: a slow or busy host cannot
//! make a task miss its deadline, only the system under test can.

use crate::{system, Expect, Machine, BOOT_TIMEOUT, TAIL_LINES};
use bulkhead_tools::qemu::{self, Outcome, RunOptions};
use bulkhead_tools::system::{Overrides, System};

/// Boots `tests/systems/rtos_load.toml` (with its metronome; `rtos_load_4cpus.toml`, whose
/// load has one pCPU and whose metronome has one vCPU, on a machine of four CPUs) on
/// `machine` under icount, awaiting `first` (if any) before the RTOS's markers; panics with
/// the log unless every deadline was met.
pub fn rtos_meets_deadlines_under_load(machine: Machine, first: Option<&str>) {
    let start = match first {
        Some(marker) => Expect::new().then(marker).expect("marker"),
        None => Expect::new(),
    };
    // One unordered step: the load guest's and the shell's lines interleave freely.
    let expect = start
        .all(&[
            r"\[rtos\] ready",
            r"\[load\] load vcpu1 running",
            r"console input now goes to d\d+ \(rtos\)",
            r"\[rtos\] threads: +\d+[ *]control +40 +40 ",
            r"\[rtos\] stats: task control releases=\d+ completed=\d+ misses=0 overruns=0",
            r"\[rtos\] uptime 5s ticks 5000 late_max_ticks \d+ misses 0 overruns 0",
        ])
        // Console input: move the focus from dom0 to the RTOS, then type two commands.
        .and_then(|e| e.send_when(r"\[rtos\] shell: commands", b"\x01\x01\x01"))
        .and_then(|e| e.send_when(r"console input now goes to d\d+ \(rtos\)", b"threads\r"))
        .and_then(|e| e.send_when(r"\[rtos\] threads: +\d+[ *]shell ", b"stats\r"))
        .and_then(|e| e.forbid(r"\[rtos\] uptime .* misses [1-9]"))
        .and_then(|e| e.forbid(r"\[rtos\] uptime .* overruns [1-9]"))
        .and_then(|e| e.forbid(r"bulkhead: d\d+ \((rtos|load)\) stopped"))
        .and_then(|e| e.forbid(r"\[(rtos|load)\] (FAIL|.*panic)"))
        .expect("markers");
    // rtos_load.toml when the machine has the CPUs it asks for, else the four-CPU layout.
    let full = system("rtos_load");
    let text = std::fs::read_to_string(&full).expect("rtos_load.toml");
    let needs = System::parse(&full, &text, Overrides::default())
        .expect("rtos_load.toml parses")
        .smp;
    let path = if machine.max_cpus() < needs {
        system("rtos_load_4cpus")
    } else {
        full
    };
    let mut opts = RunOptions::realtime_test(path, expect, BOOT_TIMEOUT);
    opts.overrides.machine = machine;
    let out = qemu::run(&opts).expect("boot rtos_load");
    assert!(
        out.outcome == Outcome::Matched,
        "system `rtos_load` on --machine {}: {}",
        machine.name(),
        out.report(TAIL_LINES)
    );
}
