//! The RTOS's console shell: line editing of the bytes read from the console, command
//! parsing, and the text of the `threads` and `stats` answers (pure, so host-tested).

use crate::kernel::{Kernel, State};
use crate::stats::Summary;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Longest command line kept.
pub const MAX_LINE: usize = 64;

/// Collects console bytes into lines.
#[derive(Clone, Debug, Default)]
pub struct LineEditor {
    line: String,
}

impl LineEditor {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one byte; returns the finished line on CR or LF. Backspace/DEL erase, other
    /// control bytes are ignored, and input past [`MAX_LINE`] is dropped.
    pub fn push(&mut self, b: u8) -> Option<String> {
        match b {
            b'\r' | b'\n' => Some(core::mem::take(&mut self.line)),
            0x08 | 0x7f => {
                self.line.pop();
                None
            }
            0x20..=0x7e if self.line.len() < MAX_LINE => {
                self.line.push(char::from(b));
                None
            }
            _ => None,
        }
    }
}

/// A shell command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Blank line.
    Empty,
    /// `help`.
    Help,
    /// `threads`: one line per thread.
    Threads,
    /// `stats`: scheduler, interrupt and periodic-job statistics.
    Stats,
    /// Anything else.
    Unknown(String),
}

/// Parses one line.
pub fn parse(line: &str) -> Command {
    match line.trim() {
        "" => Command::Empty,
        "help" | "?" => Command::Help,
        "threads" | "ps" => Command::Threads,
        "stats" => Command::Stats,
        other => Command::Unknown(other.into()),
    }
}

/// The `help` answer.
pub const HELP: &str = "commands: threads, stats, help";

/// The `threads` answer: a header and one line per thread. `ticks_per_us` converts
/// counter ticks (at least 1 is assumed).
pub fn threads_table(k: &Kernel, ticks_per_us: u64) -> Vec<String> {
    let us = |t: u64| t / ticks_per_us.max(1);
    let mut out = Vec::new();
    out.push(String::from(
        "threads: id name       prio base state    runs      cpu_us  period_us",
    ));
    for (i, t) in k.threads().iter().enumerate() {
        let period = t
            .spec()
            .map_or(String::from("-"), |s| format!("{}", us(s.period)));
        let marker = if i == k.current() { '*' } else { ' ' };
        out.push(format!(
            "threads: {i:>2}{marker}{:<10} {:>4} {:>4} {:<8} {:>6} {:>11} {:>10}",
            t.name,
            t.prio,
            t.base,
            t.state.name(),
            t.runs,
            us(t.cpu_time),
            period
        ));
    }
    out
}

/// Interrupt figures for `stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqStats {
    /// Timer interrupts taken.
    pub timer_irqs: u64,
    /// Timer interrupt latency (counter ticks from the programmed deadline to handler
    /// entry).
    pub latency: Summary,
}

/// The `stats` answer.
pub fn stats_lines(k: &Kernel, irq: &IrqStats, uptime_ms: u64, ticks_per_us: u64) -> Vec<String> {
    let us = |t: u64| t / ticks_per_us.max(1);
    let mut out = Vec::new();
    out.push(format!(
        "stats: uptime_ms={uptime_ms} switches={} timer_irqs={} irq_latency_us min={} avg={} max={}",
        k.switches,
        irq.timer_irqs,
        us(irq.latency.min),
        us(irq.latency.avg),
        us(irq.latency.max)
    ));
    for t in k.threads() {
        if let Some(j) = t.jobs() {
            out.push(format!(
                "stats: task {} releases={} completed={} misses={} overruns={} skipped={} max_response_us={}",
                t.name,
                j.releases,
                j.completed,
                j.misses,
                j.overruns,
                j.skipped,
                us(j.max_response)
            ));
        }
    }
    let blocked = k
        .threads()
        .iter()
        .filter(|t| matches!(t.state, State::Blocked(_)))
        .count();
    out.push(format!(
        "stats: threads={} blocked={blocked}",
        k.threads().len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::PeriodicSpec;

    #[test]
    fn editing() {
        let mut e = LineEditor::new();
        let mut out = Vec::new();
        for &b in b"thrx\x7fe\x01ads\r\nstats\n" {
            if let Some(l) = e.push(b) {
                out.push(l);
            }
        }
        assert_eq!(out, ["threads", "", "stats"]);
        assert_eq!(parse(&out[0]), Command::Threads);
        assert_eq!(parse(" stats "), Command::Stats);
        assert_eq!(parse(""), Command::Empty);
        assert_eq!(parse("reboot"), Command::Unknown("reboot".into()));
    }

    #[test]
    fn tables() {
        let mut k = Kernel::new(0);
        k.spawn("shell", 2).unwrap();
        let spec = PeriodicSpec {
            period: 1000,
            deadline: 1000,
            budget: 100,
        };
        k.spawn_periodic("ctl", 9, spec, 1000).unwrap();
        let t = threads_table(&k, 10);
        assert_eq!(t.len(), 4);
        assert!(t[1].starts_with("threads:  0*idle"), "{}", t[1]);
        assert!(t[3].contains("ctl") && t[3].contains("dormant") && t[3].ends_with(" 100"));
        let s = stats_lines(&k, &IrqStats::default(), 5, 10);
        assert!(s[0].starts_with("stats: uptime_ms=5 switches=0"));
        assert!(s[1].starts_with("stats: task ctl releases=0 completed=0 misses=0"));
        assert_eq!(s[2], "stats: threads=3 blocked=0");
    }
}
