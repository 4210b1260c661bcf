//! System descriptions: the TOML file naming the domains dom0 builds at boot.
//!
//! Parsing ([`parse`]) turns the file into a [`System`] checking each key on its own; [`check`]
//! then checks the domains against each other (names, pCPUs, dependencies). Every error is a
//! [`ConfigError`] printed as `FILE:LINE: key `name`: what is wrong, expected what`.

mod check;
pub mod cpus;
mod parse;

use std::fmt;
use std::path::{Path, PathBuf};

pub use check::start_order;

/// Most physical CPUs QEMU's virt board gets from us.
pub const MAX_SMP: u16 = 8;
/// Least host RAM: modules load at RAM base + 256 MiB and need room above.
pub const MIN_MEMORY_MIB: u32 = 512;
/// Largest domain.
pub const MAX_DOMAIN_MIB: u32 = 2048;
/// Most vCPUs per domain.
pub const MAX_VCPUS: u16 = 8;

/// A value and the 1-based line it was written on (0 if it was defaulted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    /// The value.
    pub value: T,
    /// Its line in the file.
    pub line: usize,
}

/// A validated system description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    /// The file it came from.
    pub file: PathBuf,
    /// Its name: the file stem (`default` for `systems/default.toml`).
    pub name: String,
    /// Physical CPUs.
    pub smp: u16,
    /// Host RAM in MiB.
    pub memory_mib: u32,
    /// Domains besides dom0, in file order.
    pub domains: Vec<Domain>,
}

/// Where a domain's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// One of [`crate::paths::BUILTIN_DOMAINS`].
    Builtin(String),
    /// A flat binary on disk.
    File(PathBuf),
}

/// One `[[domain]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Unique name.
    pub name: At<String>,
    /// Its image.
    pub image: At<Image>,
    /// RAM in MiB.
    pub memory_mib: u32,
    /// vCPU count.
    pub vcpus: u16,
    /// pCPUs; vCPU i runs on `cpus[i % len]`.
    pub cpus: At<Vec<u16>>,
    /// Pinned exclusive.
    pub exclusive: bool,
    /// Scheduling priority.
    pub priority: u8,
    /// Start arguments.
    pub cmdline: String,
    /// Domains that must run first.
    pub depends_on: At<Vec<String>>,
    /// Line of its `[[domain]]` header.
    pub line: usize,
}

impl Domain {
    /// The pCPU of each vCPU.
    pub fn placement(&self) -> impl Iterator<Item = u16> + '_ {
        let cpus = &self.cpus.value;
        (0..usize::from(self.vcpus)).map(move |i| cpus[i % cpus.len()])
    }
}

/// A problem in a system description, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The key at fault.
    pub key: String,
    /// What is wrong and what is expected.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: key `{}`: {}",
            self.file, self.line, self.key, self.problem
        )
    }
}

impl std::error::Error for ConfigError {}

/// Command-line overrides of `[system]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--smp`.
    pub smp: Option<u16>,
    /// `--mem` in MiB.
    pub memory_mib: Option<u32>,
}

impl System {
    /// Reads, parses and validates `file`, applying `overrides` before the checks.
    pub fn load(file: &Path, overrides: Overrides) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
        Ok(Self::parse(file, &text, overrides)?)
    }

    /// Parses and validates `text`, which came from `file`.
    pub fn parse(file: &Path, text: &str, overrides: Overrides) -> Result<Self, ConfigError> {
        let system = parse::parse(file, text, overrides)?;
        check::check(&system)?;
        Ok(system)
    }

    /// A located error in this system's file.
    pub(crate) fn error(&self, line: usize, key: &str, problem: String) -> ConfigError {
        ConfigError {
            file: self.file.display().to_string(),
            line,
            key: key.into(),
            problem,
        }
    }
}
