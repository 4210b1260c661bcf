//! System descriptions: the TOML file naming the domains dom0 builds at boot.
//!
//! Parsing ([`parse`]) turns the file into a [`System`] checking each key on its own; a
//! `[[domain]]` may instead name an xl.cfg file (`config = "x.cfg"`, read by
//! [`crate::xlcfg`]), and `--domain FILE.cfg` adds more. [`check`] then checks the domains
//! against each other (names, pCPUs, dependencies). Every error is a [`ConfigError`] printed
//! as `FILE:LINE: key `name`: what is wrong, expected what`, where FILE is the file the value
//! came from (the TOML or an xl.cfg); warnings ([`ConfigWarning`]) have the same shape.
//!
//! A domain boots an [`Image`]: a built-in Bulkhead domain, a flat binary, or a Linux kernel
//! (`"debian-linux"` or an arm64 `Image` file) with an optional initramfs (`ramdisk`:
//! `"debian-initramfs"` or a file). A Linux kernel's `cmdline` is its kernel command line,
//! [`LINUX_DEFAULT_CMDLINE`] (`console=hvc0`) when empty.

mod check;
pub mod cpus;
pub mod disks;
pub(crate) mod images;
pub mod nics;
mod parse;
mod xl;

use protocol::manifest::Action;
use std::fmt;
use std::path::{Path, PathBuf};

pub use check::start_order;
pub use images::{image_names, is_linux_image, DebianArtifact, Image, LINUX_DEFAULT_CMDLINE};
pub use parse::valid_name;

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
    /// The xl.cfg file it came from; `None`: the system description itself.
    pub file: Option<PathBuf>,
}

impl<T> At<T> {
    /// A value on `line` of the system description.
    pub fn new(value: T, line: usize) -> Self {
        Self {
            value,
            line,
            file: None,
        }
    }

    /// A value on `line` of another file (an xl.cfg).
    pub fn in_file(value: T, line: usize, file: &Path) -> Self {
        Self {
            value,
            line,
            file: Some(file.to_path_buf()),
        }
    }
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
    /// Domains besides dom0, in file order, then those of `--domain`.
    pub domains: Vec<Domain>,
    /// Host port forwards into the network (`[system] hostfwd`, then `--hostfwd`), checked.
    pub hostfwd: Vec<At<String>>,
    /// Host device-tree nodes reserved for passthrough at boot without a boot domain that
    /// uses them (`[system] passthrough`): dom0 holds them for a later `ctl create`.
    pub passthrough: Vec<At<String>>,
    /// Where dom0's management port is (`[system] mgmt_port`); `None`: the machine's
    /// default ([`crate::machine::Machine::mgmt_port_of`]).
    pub mgmt_port: Option<At<MgmtPort>>,
    /// Things accepted but not (fully) honoured, one per key and file.
    pub warnings: Vec<ConfigWarning>,
}

/// `[system] mgmt_port`: the UART dom0 serves the management port on, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MgmtPort {
    /// The board's second UART (the ZCU102's `serial1`, its default).
    Serial1,
    /// No management port: on the ZCU102 its UART is free for a guest (`dtdev`), wired by
    /// QEMU to `target/bulkhead/serial1.sock` instead.
    None,
}

/// The watchdog of a driver domain that does not set `watchdog`, in seconds. Its loop
/// beats every second; ten seconds of silence is no hiccup even on a loaded 2-core machine
/// emulating 4 CPUs (TCG), where a busy pCPU can hold a vCPU off for a second or two.
pub const DEFAULT_WATCHDOG_S: u32 = 10;
/// Longest `watchdog` accepted, in seconds.
pub const MAX_WATCHDOG_S: u32 = 3600;
/// The least wait for an incarnation's first heartbeat, in seconds: booting, reaching
/// xenstore and getting ready takes a driver domain a few seconds, much more under a loaded
/// TCG. The wait is the larger of this and six timeouts.
pub const MIN_FIRST_BEAT_S: u32 = 60;

/// How many restarts after crashes a domain gets within a sliding window; one more crash
/// holds it stopped (`ctl list` says why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashLimit {
    /// Restarts allowed within the window (0: the first crash holds it).
    pub max_restarts: u32,
    /// The window, in seconds.
    pub window_s: u32,
}

/// dom0's crash-loop limit for domains without `crash_limit` (its `Limits::for_hz`).
pub const DEFAULT_CRASH_LIMIT: &str = "3/30s";
/// Most restarts a `crash_limit` may allow.
pub const MAX_CRASH_RESTARTS: u32 = 1000;
/// Longest `crash_limit` window, in seconds.
pub const MAX_CRASH_WINDOW_S: u32 = 3600;

/// One `[[domain]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Unique name.
    pub name: At<String>,
    /// Its image.
    pub image: At<Image>,
    /// Its initramfs; only a Linux kernel has one.
    pub ramdisk: Option<At<Image>>,
    /// RAM in MiB.
    pub memory_mib: u32,
    /// vCPU count.
    pub vcpus: u16,
    /// pCPUs; vCPU i runs on `cpus[i % len]`.
    pub cpus: At<Vec<u16>>,
    /// `cpus` was chosen by the tools (an xl.cfg without `cpus`), not by the user.
    pub auto_cpus: bool,
    /// Pinned exclusive.
    pub exclusive: bool,
    /// Scheduling priority.
    pub priority: u8,
    /// Each shared vCPU's budget per period in µs (`budget_us`, `period_us`; `(0, 0)`:
    /// none).
    pub budget_us: (u32, u32),
    /// Start arguments; a Linux kernel's command line ([`LINUX_DEFAULT_CMDLINE`] if none
    /// was given).
    pub cmdline: String,
    /// Domains that must run first.
    pub depends_on: At<Vec<String>>,
    /// What dom0 does when it powers off (xl's `on_poweroff`; default destroy).
    pub on_poweroff: Action,
    /// What dom0 does when it asks to reboot (default restart).
    pub on_reboot: Action,
    /// What dom0 does when it crashes (default destroy).
    pub on_crash: Action,
    /// Heartbeat watchdog: seconds of silence after which dom0 restarts it as after a
    /// crash (`watchdog`; `None`: off). On by default ([`DEFAULT_WATCHDOG_S`]) for the
    /// driver domains, whose runtime beats; off for everything else.
    pub watchdog_s: Option<u32>,
    /// Its crash-loop limit (`crash_limit = "N/Ws"`; `None`: dom0's default,
    /// [`DEFAULT_CRASH_LIMIT`]).
    pub crash_limit: Option<CrashLimit>,
    /// Its disks (xl disk lines), in the order written.
    pub disks: Vec<At<disks::Disk>>,
    /// Its network interfaces (xl vif lines), in the order written.
    pub vifs: Vec<At<nics::Vif>>,
    /// Host devices it is given (xl.cfg `iomem`, `irqs`, `dtdev`), checked against the
    /// host's device tree when the system is packed ([`crate::passthru`]).
    pub passthrough: crate::xlcfg::passthru::XlPassthrough,
    /// The GIC its xl.cfg asks for (`gic_version`), checked against the machine when the
    /// system is packed: every domain gets the host's.
    pub gic_version: Option<At<protocol::layout::GicVersion>>,
    /// Its access to the performance monitors (`pmu`; default off).
    pub pmu: protocol::control::PmuAccess,
    /// The xl.cfg file defining it, if any.
    pub config: Option<PathBuf>,
    /// Line of its `[[domain]]` header (or of `name` in its xl.cfg, for `--domain`).
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

/// Something accepted but not (fully) honoured, located in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The key concerned.
    pub key: String,
    /// What is not honoured.
    pub problem: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: key `{}`: {}",
            self.file, self.line, self.key, self.problem
        )
    }
}

/// Command-line overrides of `[system]` and extra domains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--smp`.
    pub smp: Option<u16>,
    /// `--mem` in MiB.
    pub memory_mib: Option<u32>,
    /// `--domain FILE.cfg`: xl.cfg domains added to the system. A `'static` slice keeps
    /// `Overrides` `Copy` (run options copy it); the CLI leaks its one list.
    pub domains: &'static [PathBuf],
    /// `--hostfwd RULE`: QEMU user-network port forwards added to `[system] hostfwd`.
    pub hostfwd: &'static [String],
    /// `--machine`: the QEMU machine the system boots on.
    pub machine: crate::machine::Machine,
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

    /// A located error about a value, in the file it came from.
    pub(crate) fn error_at<T>(&self, at: &At<T>, key: &str, problem: String) -> ConfigError {
        ConfigError {
            file: self.file_of(at),
            line: at.line,
            key: key.into(),
            problem,
        }
    }

    /// The file a value came from, as the user named it.
    pub(crate) fn file_of<T>(&self, at: &At<T>) -> String {
        at.file
            .as_deref()
            .unwrap_or(&self.file)
            .display()
            .to_string()
    }
}
