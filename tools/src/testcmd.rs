//! `bulkhead test`: host unit tests (the workspace's default members), then the fuzz targets
//! briefly ([`crate::fuzz::test_phase`]), then the cross build, then the QEMU integration tests
//! one boot at a time; ends with `N passed, N failed`.

use anyhow::{Context, Result};
use regex::Regex;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// Tests counted over one or more cargo runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed (a phase that failed without a failing test counts as one).
    pub failed: u64,
}

impl Tally {
    /// Adds the counts of a cargo `test result:` line, if `line` is one.
    pub fn add_line(&mut self, line: &str) -> bool {
        let re =
            Regex::new(r"test result: \w+\. (\d+) passed; (\d+) failed").expect("static regex");
        let Some(c) = re.captures(line) else {
            return false;
        };
        self.passed += c[1].parse::<u64>().unwrap_or(0);
        self.failed += c[2].parse::<u64>().unwrap_or(0);
        true
    }
}

/// Runs `cmd`, streaming its stdout through us while counting results.
pub(crate) fn phase(name: &str, cmd: &mut Command, tally: &mut Tally) -> Result<bool> {
    eprintln!("bulkhead: {name}: {cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let mut mine = Tally::default();
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout();
        for line in BufReader::new(out).lines() {
            let line = line.unwrap_or_default();
            mine.add_line(&line);
            let _ = writeln!(stdout, "{line}");
        }
    }
    let ok = child.wait().context("waiting for cargo")?.success();
    if !ok && mine.failed == 0 {
        eprintln!("bulkhead: {name} failed before any test failed (build error?)");
        mine.failed = 1;
    }
    tally.passed += mine.passed;
    tally.failed += mine.failed;
    Ok(ok)
}

/// Runs every test; returns the tally (the caller prints it and picks the exit code).
pub fn test() -> Result<Tally> {
    crate::deps::ensure_qemu()?;
    // The U-Boot test's firmware and tools, installed up front so no test's time limit
    // includes an apt-get run.
    crate::deps::ensure_uboot()?;
    let root = crate::paths::workspace_root();
    let mut tally = Tally::default();
    let mut host = crate::build::cargo();
    // Every test binary runs even after one fails, so one run reports every failure.
    host.args(["test", "--no-fail-fast"]).current_dir(&root);
    phase("host unit tests", &mut host, &mut tally)?;
    crate::fuzz::test_phase(&mut tally)?;
    // Fetch the Linux guest's Debian packages up front, so no integration test's time
    // limit includes a download.
    let fetched = crate::build::build().and_then(|b| crate::guest::linux_artifacts().map(|_| b));
    match fetched {
        Ok(_) => {
            let mut qemu = crate::build::cargo();
            qemu.args([
                "test",
                "--release",
                "--no-fail-fast",
                "-p",
                "bulkhead-tests",
                "--",
                "--test-threads=1",
            ])
            .current_dir(&root);
            phase("QEMU integration tests", &mut qemu, &mut tally)?;
        }
        Err(e) => {
            eprintln!("bulkhead: {e:#}; skipping the QEMU integration tests");
            tally.failed += 1;
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn counts_cargo_result_lines() {
        let mut t = Tally::default();
        assert!(t.add_line("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"));
        assert!(t.add_line(
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out"
        ));
        assert!(!t.add_line("test foo ... ok"));
        assert_eq!(
            t,
            Tally {
                passed: 15,
                failed: 2
            }
        );
    }
}
