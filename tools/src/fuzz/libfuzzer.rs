//! Running one libFuzzer target binary and reading what it prints: progress and final
//! statistics (runs, exec/s, coverage), and on a crash the reproducer's path and the panic's
//! location.

use super::known::KnownCrashes;
use anyhow::{bail, Context, Result};
use regex::Regex;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Per-input time limit: an input that runs longer is reported as a hang (a crash).
const INPUT_TIMEOUT_SECS: u32 = 10;
/// Memory limit of a target process, in MiB.
const RSS_LIMIT_MB: u32 = 2048;
/// Output lines kept for the report.
const TAIL_LINES: usize = 60;

/// What libFuzzer reported about a run; `None` for a figure it did not print.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inputs executed.
    pub runs: Option<u64>,
    /// Average executions per second.
    pub exec_per_sec: Option<u64>,
    /// Coverage points (edges) reached.
    pub cov: Option<u64>,
    /// Features (edges with hit counts, comparisons) reached.
    pub ft: Option<u64>,
    /// Inputs in the corpus at the end.
    pub corpus: Option<u64>,
    /// Peak resident memory in MiB.
    pub peak_rss_mb: Option<u64>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ran for its time without a crash.
    Clean,
    /// Crashed at a location `fuzz/regressions/known-crashes.txt` lists (the location).
    Known(String),
    /// Crashed, hung or ran out of memory.
    Crashed(Crash),
}

/// What a crashed run left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Crash {
    /// libFuzzer's words for it (`deadly signal`, `timeout after 10 seconds`, ...).
    pub kind: Option<String>,
    /// The reproducer it wrote.
    pub artifact: Option<PathBuf>,
    /// `file:line:column` of the panic, for a panic.
    pub panic_at: Option<String>,
}

/// Reads libFuzzer's output a line at a time.
#[derive(Debug)]
pub struct Reader {
    status: Regex,
    exec: Regex,
    stat: Regex,
    artifact: Regex,
    panic: Regex,
    error: Regex,
    /// The figures so far.
    pub stats: Stats,
    /// Crash evidence so far.
    pub crash: Crash,
}

impl Default for Reader {
    fn default() -> Self {
        let re = |s: &str| Regex::new(s).expect("static regex");
        Self {
            status: re(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/"),
            exec: re(r"exec/s: (\d+)"),
            stat: re(r"^stat::(\w+):\s+(\d+)"),
            artifact: re(r"Test unit written to (\S+)"),
            panic: re(r"panicked at (\S+?:\d+:\d+):"),
            error: re(r"ERROR: libFuzzer: (.+)$"),
            stats: Stats::default(),
            crash: Crash::default(),
        }
    }
}

impl Reader {
    /// Takes in one line of output.
    pub fn line(&mut self, line: &str) {
        let num = |s: &str| s.parse::<u64>().ok();
        if let Some(c) = self.status.captures(line) {
            self.stats.runs = num(&c[1]);
            self.stats.cov = num(&c[2]);
            self.stats.ft = num(&c[3]);
            self.stats.corpus = num(&c[4]);
            if let Some(e) = self.exec.captures(line) {
                self.stats.exec_per_sec = num(&e[1]);
            }
        } else if let Some(c) = self.stat.captures(line) {
            let v = num(&c[2]);
            match &c[1] {
                "number_of_executed_units" => self.stats.runs = v,
                "average_exec_per_sec" => self.stats.exec_per_sec = v,
                "peak_rss_mb" => self.stats.peak_rss_mb = v,
                _ => {}
            }
        } else if let Some(c) = self.artifact.captures(line) {
            self.crash.artifact = Some(PathBuf::from(&c[1]));
        } else if let Some(c) = self.panic.captures(line) {
            self.crash.panic_at.get_or_insert_with(|| c[1].to_string());
        } else if let Some(c) = self.error.captures(line) {
            self.crash
                .kind
                .get_or_insert_with(|| c[1].trim().to_string());
        }
    }

    /// How the run ended, given whether the process exited cleanly.
    pub fn outcome(&self, target: &str, exited_ok: bool, known: &KnownCrashes) -> Outcome {
        if exited_ok && self.crash.artifact.is_none() {
            return Outcome::Clean;
        }
        match self.crash.panic_at.as_deref() {
            Some(at) if known.matching(target, at).is_some() => Outcome::Known(at.to_string()),
            _ => Outcome::Crashed(self.crash.clone()),
        }
    }
}

/// One target's run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The target.
    pub target: String,
    /// Seconds it was given.
    pub secs: u64,
    /// What libFuzzer reported.
    pub stats: Stats,
    /// How it ended.
    pub outcome: Outcome,
    /// The full output.
    pub log: PathBuf,
    tail: Vec<String>,
}

impl Report {
    /// One line: outcome, runs, exec/s, coverage.
    pub fn summary(&self) -> String {
        let n = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| v.to_string());
        let s = &self.stats;
        let figures = format!(
            "{} runs in {} s ({} exec/s), cov {}, ft {}, corpus {}, peak RSS {} MiB",
            n(s.runs),
            self.secs,
            n(s.exec_per_sec),
            n(s.cov),
            n(s.ft),
            n(s.corpus),
            n(s.peak_rss_mb)
        );
        match &self.outcome {
            Outcome::Clean => format!("fuzz {}: ok: {figures}", self.target),
            Outcome::Known(at) => format!(
                "fuzz {}: known crash at {at} (listed in fuzz/{}): {figures}",
                self.target,
                super::KnownCrashes::FILE
            ),
            Outcome::Crashed(c) => format!(
                "fuzz {}: CRASH ({}){}: {figures}; log {}",
                self.target,
                c.kind.as_deref().unwrap_or("target failed"),
                c.panic_at
                    .as_deref()
                    .map_or_else(String::new, |at| format!(" at {at}")),
                self.log.display()
            ),
        }
    }

    /// For a crash with a reproducer: how to replay and keep it.
    pub fn crash_help(&self, bins: &Path) -> Option<String> {
        let Outcome::Crashed(Crash {
            artifact: Some(a), ..
        }) = &self.outcome
        else {
            return None;
        };
        Some(format!(
            "reproducer: {a}\nreplay it:  {bin} {a}\nkeep it:    copy it to fuzz/regressions/{t}/ and add a unit test where the bug is",
            a = a.display(),
            bin = bins.join(&self.target).display(),
            t = self.target
        ))
    }

    /// The last `n` lines of output.
    pub fn tail(&self, n: usize) -> String {
        let from = self.tail.len().saturating_sub(n);
        self.tail[from..].join("\n")
    }
}

/// Copies `target`'s regression inputs (minus known crashes) into the run's corpus directory.
fn stage_regressions(target: &str, work: &Path, known: &KnownCrashes) -> Result<()> {
    let dir = super::project_dir().join("regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_file() && !known.lists_file(target, &name) {
            let to = work.join(format!("regression-{name}"));
            std::fs::copy(e.path(), &to).with_context(|| {
                format!("cannot copy {} to {}", e.path().display(), to.display())
            })?;
        }
    }
    Ok(())
}

/// Runs `target` from `bins` for `secs` seconds; `echo` shows libFuzzer's output live.
pub fn run(
    bins: &Path,
    target: &str,
    secs: u64,
    echo: bool,
    known: &KnownCrashes,
) -> Result<Report> {
    let bin = bins.join(target);
    if !bin.is_file() {
        bail!("{} was not built", bin.display());
    }
    let out = super::out_dir();
    let work = out.join("corpus").join(target);
    let artifacts = out.join("artifacts").join(target);
    let logs = out.join("logs");
    for d in [&work, &artifacts, &logs] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    stage_regressions(target, &work, known)?;
    let log_path = logs.join(format!("{target}.log"));
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut cmd = Command::new(&bin);
    cmd.arg(&work)
        .arg(super::project_dir().join("corpus").join(target))
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let mut reader = Reader::default();
    let mut tail = Vec::new();
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines() {
            let line = line.unwrap_or_default();
            let _ = writeln!(log, "{line}");
            if echo {
                eprintln!("{line}");
            }
            reader.line(&line);
            if tail.len() == TAIL_LINES {
                tail.remove(0);
            }
            tail.push(line);
        }
    }
    let status = child.wait().context("waiting for the fuzz target")?;
    Ok(Report {
        target: target.to_string(),
        secs,
        stats: reader.stats.clone(),
        outcome: reader.outcome(target, status.success(), known),
        log: log_path,
        tail,
    })
}
