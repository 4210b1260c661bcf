//! Known crashes: reproducers in `fuzz/regressions/<target>/` of bugs found by fuzzing whose
//! fix belongs to someone else's change. `fuzz/regressions/known-crashes.txt` lists one a
//! line, `TARGET FILE LOCATION` (`LOCATION` is the `file:line` of the panic), `#` comments.
//! Listed reproducers are left out of the runs, and a crash at a listed location is reported
//! as known instead of failing `cargo bulkhead test`. Delete the line with the fix.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// One listed crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// The target that found it.
    pub target: String,
    /// The reproducer's file name in `fuzz/regressions/<target>/`.
    pub file: String,
    /// Where it panics (`path/file.rs:LINE`), matched against the panic message.
    pub location: String,
}

/// Every listed crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownCrashes(pub Vec<Known>);

impl KnownCrashes {
    /// The list name, relative to the fuzz project.
    pub const FILE: &'static str = "regressions/known-crashes.txt";

    /// Reads the list of the fuzz project at `dir` (none if the file is missing).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(Self::FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).with_context(|| format!("in {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Parses the list's text.
    pub fn parse(text: &str) -> Result<Self> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let [target, file, location] = words[..] else {
                bail!("line {}: expected `TARGET FILE LOCATION`", i + 1);
            };
            out.push(Known {
                target: target.into(),
                file: file.into(),
                location: location.into(),
            });
        }
        Ok(Self(out))
    }

    /// Whether `file` of `target`'s regressions is a listed reproducer.
    pub fn lists_file(&self, target: &str, file: &str) -> bool {
        self.0.iter().any(|k| k.target == target && k.file == file)
    }

    /// The listed crash a panic at `location` (`path:line:column`) of `target` is.
    pub fn matching(&self, target: &str, location: &str) -> Option<&Known> {
        self.0.iter().find(|k| {
            k.target == target
                && location
                    .strip_prefix(k.location.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
        })
    }
}
