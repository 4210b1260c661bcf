//! `cargo bulkhead fuzz [TARGET] [--time SECS]` and `--list`: coverage-guided fuzzing of the
//! decoders that take untrusted bytes, with the targets of the `fuzz/` project (its own cargo
//! project, outside the workspace).
//!
//! The targets link libFuzzer (`libfuzzer-sys`) and are built by the pinned stable toolchain
//! with LLVM's SanitizerCoverage passes switched on through codegen flags ([`RUSTFLAGS`]), the
//! instrumentation `cargo fuzz` uses minus AddressSanitizer, which only a nightly compiler
//! offers and which safe Rust does not need. So fuzzing needs no nightly toolchain and no
//! `cargo-fuzz`, only a C++ compiler for libFuzzer's sources ([`crate::deps::ensure_cxx`]).
//!
//! Each run starts from the committed seeds (`fuzz/corpus/<target>/`), the regression inputs
//! (`fuzz/regressions/<target>/`) and what earlier runs found (`target/fuzz/corpus/<target>/`,
//! where new inputs go); crash reproducers are written to `target/fuzz/artifacts/<target>/`.
//! `cargo bulkhead test` runs every target for [`BRIEF_SECS`] seconds ([`test_phase`]).

mod known;
mod libfuzzer;
#[cfg(test)]
mod tests;

pub use known::{Known, KnownCrashes};
pub use libfuzzer::{Crash, Outcome, Report, Stats};

use crate::paths;
use crate::testcmd::Tally;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// Seconds each target runs during `cargo bulkhead test`.
pub const BRIEF_SECS: u64 = 5;

/// Seconds each target runs by default under `cargo bulkhead fuzz`.
pub const DEFAULT_SECS: u64 = 60;

/// Codegen flags of the instrumented build: SanitizerCoverage with inline 8-bit counters, the
/// PC table and comparison tracing (what libFuzzer reads), and `cfg(fuzzing)`.
pub const RUSTFLAGS: [&str; 6] = [
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg=fuzzing",
];

/// `cargo bulkhead fuzz`'s arguments.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct FuzzArgs {
    /// The target to fuzz (default: every target, one after the other).
    pub target: Option<String>,
    /// Seconds to fuzz each target.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub time: u64,
    /// Print the targets, one a line, and stop.
    #[arg(long, conflicts_with = "target")]
    pub list: bool,
}

/// The `fuzz/` project.
pub fn project_dir() -> PathBuf {
    paths::workspace_root().join("fuzz")
}

/// Where the instrumented build and the runs' files go (`target/fuzz/`).
pub fn out_dir() -> PathBuf {
    paths::target_dir().join("fuzz")
}

/// The targets: the `[[bin]]` names of `fuzz/Cargo.toml`, in its order.
pub fn targets() -> Result<Vec<String>> {
    let path = project_dir().join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    bin_names(&text).with_context(|| format!("in {}", path.display()))
}

/// The `[[bin]]` names of a cargo manifest.
pub fn bin_names(manifest: &str) -> Result<Vec<String>> {
    let table: toml::Table = manifest.parse().context("not a cargo manifest")?;
    let bins = table
        .get("bin")
        .and_then(toml::Value::as_array)
        .context("no [[bin]] targets")?;
    bins.iter()
        .map(|b| {
            b.get("name")
                .and_then(toml::Value::as_str)
                .map(String::from)
                .context("a [[bin]] without a name")
        })
        .collect()
}

/// The targets `args` asks for: the one named, or all of them.
pub fn selected(args: &FuzzArgs, all: &[String]) -> Result<Vec<String>> {
    match &args.target {
        None => Ok(all.to_vec()),
        Some(t) if all.contains(t) => Ok(vec![t.clone()]),
        Some(t) => bail!(
            "unknown fuzz target `{t}`; the targets are {}",
            all.join(", ")
        ),
    }
}

/// The host's target triple (the instrumented build names it so that the coverage flags
/// reach only the target's code, not build scripts and proc macros).
fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .current_dir(paths::workspace_root())
        .output()
        .context("cannot run rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(String::from)
        .context("rustc -vV names no host")
}

/// Builds every target with coverage instrumentation; returns the binaries' directory.
pub fn build() -> Result<PathBuf> {
    crate::deps::ensure_cxx()?;
    let triple = host_triple()?;
    let mut flags: Vec<String> = RUSTFLAGS.iter().map(|s| s.to_string()).collect();
    if let Ok(user) = std::env::var("RUSTFLAGS") {
        flags.extend(user.split_whitespace().map(String::from));
    }
    eprintln!("bulkhead: building the fuzz targets (coverage-instrumented, stable toolchain)");
    let manifest = project_dir().join("Cargo.toml");
    let status = crate::build::cargo()
        .args(["build", "--release", "--bins", "--features", "libfuzzer"])
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["--target", &triple])
        .env("CARGO_TARGET_DIR", out_dir())
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\u{1f}"))
        .env_remove("RUSTFLAGS")
        .current_dir(paths::workspace_root())
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building the fuzz targets failed ({status})");
    }
    Ok(out_dir().join(triple).join("release"))
}

/// `cargo bulkhead fuzz`; true when no target crashed.
pub fn fuzz(args: &FuzzArgs) -> Result<bool> {
    let all = targets()?;
    if args.list {
        for t in &all {
            println!("{t}");
        }
        return Ok(true);
    }
    let chosen = selected(args, &all)?;
    let bins = build()?;
    let known = KnownCrashes::load(&project_dir())?;
    let mut clean = true;
    let mut reports = Vec::new();
    for t in &chosen {
        eprintln!("bulkhead: fuzzing {t} for {} s", args.time);
        let r = libfuzzer::run(&bins, t, args.time, true, &known)?;
        clean &= r.outcome == Outcome::Clean;
        reports.push(r);
    }
    for r in &reports {
        println!("{}", r.summary());
        if let Some(help) = r.crash_help(&bins) {
            println!("{help}");
        }
    }
    Ok(clean)
}

/// `cargo bulkhead test`'s fuzz phase: the harness library's own tests (seeds current,
/// regressions replayed), then every target for [`BRIEF_SECS`] seconds. Each target counts
/// as one test; a crash fails it (unless `fuzz/regressions/known-crashes.txt` lists it).
pub fn test_phase(tally: &mut Tally) -> Result<()> {
    let mut unit = crate::build::cargo();
    unit.arg("test")
        .arg("--manifest-path")
        .arg(project_dir().join("Cargo.toml"))
        // The workspace's target directory: the dependencies the host tests just built
        // (protocol, dom0, the tools) are reused.
        .env("CARGO_TARGET_DIR", paths::target_dir())
        .current_dir(paths::workspace_root());
    crate::testcmd::phase("fuzz harness tests", &mut unit, tally)?;
    let bins = match build() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bulkhead: {e:#}; skipping the fuzz runs");
            tally.failed += 1;
            return Ok(());
        }
    };
    let known = KnownCrashes::load(&project_dir())?;
    for t in targets()? {
        let r = libfuzzer::run(&bins, &t, BRIEF_SECS, false, &known)?;
        println!("{}", r.summary());
        match (&r.outcome, r.crash_help(&bins)) {
            (Outcome::Clean | Outcome::Known(_), _) => tally.passed += 1,
            (Outcome::Crashed(_), help) => {
                eprintln!("{}", r.tail(30));
                if let Some(help) = help {
                    eprintln!("{help}");
                }
                tally.failed += 1;
            }
        }
    }
    Ok(())
}
