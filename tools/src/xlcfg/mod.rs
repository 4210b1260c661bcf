//! Xen `xl.cfg` domain files (xl.cfg(5)), read unchanged: the syntax of libxlu
//! ([`syntax`]) and the keys Bulkhead understands ([`keys`]).
//!
//! Every key falls in one of four groups: used (name, memory, vcpus, cpus, kernel, ramdisk,
//! disk, vif, ...), known but not implemented yet (maxmem, dtdev, ...: one warning per key naming
//! FILE:LINE and the key, never silently dropped), meaningless for an Arm PVH guest (x86
//! and HVM-only keys: an error) and unknown (an error). Errors and warnings use the system
//! description's `FILE:LINE: key `name`: what is wrong, expected what` format.

pub mod disk;
mod groups;
pub mod keys;
pub mod passthru;
pub mod syntax;
pub mod vdev;
pub mod vif;

use crate::system::disks::Disk;
use crate::system::nics::Vif;
use crate::system::{At, ConfigError, ConfigWarning, Image};
use protocol::manifest::Action;
use std::path::{Path, PathBuf};

/// Where a domain's vCPUs may run, as `cpus` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XlCpus {
    /// Not pinned (`"all"`, optionally minus `^N` exclusions): the tools pick pCPUs.
    Any {
        /// pCPUs excluded with `^`.
        except: Vec<u16>,
    },
    /// vCPU i runs on the i-th pCPU (wrapping).
    List(Vec<u16>),
}

/// A domain defined by an xl.cfg file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XlDomain {
    /// The file.
    pub file: PathBuf,
    /// `name`.
    pub name: At<String>,
    /// `kernel`, resolved relative to the file (or a built-in image's name).
    pub image: At<Image>,
    /// `ramdisk`, resolved relative to the file (or `"debian-initramfs"`); Linux kernels only.
    pub ramdisk: Option<At<Image>>,
    /// `memory` in MiB.
    pub memory_mib: u32,
    /// `vcpus`.
    pub vcpus: u16,
    /// `cpus`, if given.
    pub cpus: Option<At<XlCpus>>,
    /// `cmdline`, or `root=...` followed by `extra`; for a Linux kernel given neither,
    /// [`crate::system::LINUX_DEFAULT_CMDLINE`].
    pub cmdline: String,
    /// `on_poweroff` (default destroy).
    pub on_poweroff: Action,
    /// `on_reboot` (default restart).
    pub on_reboot: Action,
    /// `on_crash` (default destroy).
    pub on_crash: Action,
    /// `disk`: each line with its target file found ([`disk`]).
    pub disks: Vec<At<Disk>>,
    /// `vif`: each line with its device id and MAC settled ([`vif`]).
    pub vifs: Vec<At<Vif>>,
    /// `iomem`, `irqs`, `dtdev`, `device_tree`: the host devices it is given.
    pub passthrough: passthru::XlPassthrough,
    /// `gic_version`, if it names one ("v2"/"v3"; `None` for "default" or no key): the
    /// domain gets the host's GIC, so the tools refuse a machine with another.
    pub gic_version: Option<At<protocol::layout::GicVersion>>,
    /// Keys not implemented yet and lossy mappings, one per key.
    pub warnings: Vec<ConfigWarning>,
}

/// Reads and interprets `file`.
pub fn load(file: &Path) -> Result<XlDomain, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.display().to_string(),
        line: 1,
        key: "(file)".into(),
        problem: format!("cannot read it: {e}, expected a readable xl.cfg file"),
    })?;
    parse(file, &text)
}

/// Interprets `text`, which came from `file` (relative kernel paths start from its folder).
pub fn parse(file: &Path, text: &str) -> Result<XlDomain, ConfigError> {
    keys::interpret(file, &syntax::parse(file, text)?)
}
