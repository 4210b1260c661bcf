//! Device passthrough against the host's device tree (issue 16, DESIGN §6.1): which host
//! nodes a domain's `dtdev`, `iomem` and `irqs` name, whether the microvisor or another
//! domain keeps them, and what the manifest tells dom0 to delegate.
//!
//! The host's devices, wherever they sit in the tree, come from [`crate::host_tree`]. A
//! device is a whole host DT node (one `Device` capability): its `reg` windows and its
//! SPIs. A node the microvisor uses (GIC, its UART, timer, memory, CPUs) or a virtio-mmio
//! transport (those go to driver domains through `disk`/`vif`) is never given to a guest,
//! nor is a node whose registers do not fill whole pages (mapping the page would expose a
//! neighbour's registers). Every refusal names the file, line and key.

pub use crate::host_tree::{host_devices, HostDevice};
use crate::system::{At, ConfigError, Domain, System};
use crate::xlcfg::passthru::Iomem;
use protocol::layout::{GUEST_RAM_BASE, GUEST_SPIS};
use protocol::manifest::{ManifestDevice, ManifestWindow};

/// Checks every domain's passthrough keys against the host's devices; for each domain of
/// `system` (in its order) the devices its manifest entry gets.
pub fn assign(
    system: &System,
    host: &[HostDevice],
) -> Result<Vec<Vec<ManifestDevice>>, ConfigError> {
    // (path, domain name, where) of each device already given.
    let mut taken: Vec<(String, String, String)> = Vec::new();
    let mut all = Vec::new();
    for d in &system.domains {
        let p = &d.passthrough;
        let mut mine: Vec<&HostDevice> = Vec::new();
        let give = |dev: &HostDevice,
                    at_err: &dyn Fn(String) -> ConfigError|
         -> Result<(), ConfigError> {
            if let Some(why) = &dev.kept {
                return Err(at_err(format!(
                    "{} cannot be given to a guest: {why}",
                    dev.path
                )));
            }
            if let Some((_, owner, at)) = taken.iter().find(|(t, ..)| *t == dev.path) {
                return Err(at_err(format!("{} is already given to domain {owner} ({at}), expected each device in one domain", dev.path)));
            }
            Ok(())
        };
        for at in &p.dtdevs {
            let err = |problem: String| system.error_at(at, "dtdev", problem);
            let dev = node(host, &at.value, &err)?;
            give(dev, &err)?;
            push_once(&mut mine, dev);
        }
        for at in &p.iomem {
            let err = |problem: String| system.error_at(at, "iomem", problem);
            let r = at.value.host();
            let dev = host
                .iter()
                .find(|h| h.regs.iter().any(|&(b, s)| b <= r.start && r.end <= b + s))
                .ok_or_else(|| err(format!("host pages {:#x}..{:#x} are not inside the registers of one device of the host's device tree, expected a range of {}", r.start, r.end, names(host))))?;
            give(dev, &err)?;
            push_once(&mut mine, dev);
        }
        for at in &p.irqs {
            let err = |problem: String| system.error_at(at, "irqs", problem);
            let n = at.value;
            if n >= 32 + GUEST_SPIS {
                return Err(err(format!(
                    "{n} is above the guest's last SPI ({}), expected 32..{}",
                    31 + GUEST_SPIS,
                    32 + GUEST_SPIS
                )));
            }
            let dev = host.iter().find(|h| h.irqs.contains(&n)).ok_or_else(|| {
                err(format!("no device of the host's device tree uses interrupt {n}, expected an SPI of a device this domain is given"))
            })?;
            if let Some(why) = &dev.kept {
                return Err(err(format!(
                    "{n} is the interrupt of {}, which a guest cannot have: {why}",
                    dev.path
                )));
            }
            if !mine.iter().any(|m| m.path == dev.path) {
                return Err(err(format!("{n} belongs to {}, which this domain is not given, expected it in `dtdev` or `iomem` too", dev.path)));
            }
        }
        let devices: Vec<ManifestDevice> = mine
            .iter()
            .map(|dev| manifest_device(dev, &p.iomem))
            .collect();
        check_guest_ram(system, d, &devices)?;
        let line = p
            .dtdevs
            .first()
            .map(|a| a.line)
            .or_else(|| p.iomem.first().map(|a| a.line))
            .unwrap_or(d.name.line);
        let first_line = format!("{}:{line}", system.file_of(&d.name));
        all.push(devices);
        for dev in mine {
            taken.push((dev.path.clone(), d.name.value.clone(), first_line.clone()));
        }
    }
    Ok(all)
}

/// A device window may not land in the guest's RAM (`GUEST_RAM_BASE` + `memory`): the error
/// names the `iomem` entry that put it there, else the `dtdev` that placed it 1:1.
fn check_guest_ram(
    system: &System,
    d: &Domain,
    devices: &[ManifestDevice],
) -> Result<(), ConfigError> {
    let ram = GUEST_RAM_BASE.as_u64()..GUEST_RAM_BASE.as_u64() + (u64::from(d.memory_mib) << 20);
    for dev in devices {
        for w in &dev.windows {
            if w.guest < ram.end && ram.start < w.guest + w.size {
                let p = &d.passthrough;
                let (line, key) = p
                    .iomem
                    .iter()
                    .find(|m| m.value.host().contains(&w.host))
                    .map(|m| (m.line, "iomem"))
                    .or_else(|| {
                        p.dtdevs
                            .iter()
                            .find(|t| t.value == dev.path)
                            .map(|t| (t.line, "dtdev"))
                    })
                    .unwrap_or((d.name.line, "memory"));
                let at = At {
                    value: (),
                    line,
                    file: d.name.file.clone(),
                };
                return Err(system.error_at(&at, key, format!(
                    "{} would be at guest address {:#x}, inside the guest's {} MiB of RAM at {:#x}, expected it elsewhere (give `iomem` with `@GFN`)",
                    dev.path, w.guest, d.memory_mib, ram.start
                )));
            }
        }
    }
    Ok(())
}

fn push_once<'a>(mine: &mut Vec<&'a HostDevice>, dev: &'a HostDevice) {
    if !mine.iter().any(|m| m.path == dev.path) {
        mine.push(dev);
    }
}

/// The manifest entry of `dev`: each register window where an `iomem` entry puts it, else
/// at its host address; all its SPIs (a `Device` capability is the whole node).
fn manifest_device(dev: &HostDevice, iomem: &[At<Iomem>]) -> ManifestDevice {
    let windows = dev
        .regs
        .iter()
        .map(|&(base, size)| {
            let guest = iomem
                .iter()
                .map(|at| at.value)
                .find(|m| m.host().start <= base && base < m.host().end)
                .map_or(base, |m| base - m.host().start + m.guest().start);
            ManifestWindow {
                host: base,
                guest,
                size,
            }
        })
        .collect();
    ManifestDevice {
        path: dev.path.clone(),
        mmio_base: dev.regs.first().map_or(0, |r| r.0),
        windows,
        irqs: dev.irqs.iter().copied().filter(|&n| n >= 32).collect(),
    }
}

/// The host devices `[system] passthrough` reserves for later `ctl create`, checked as a
/// `dtdev` is (the node exists and a guest may have it); their paths.
pub fn reserved(system: &System, host: &[HostDevice]) -> Result<Vec<String>, ConfigError> {
    system
        .passthrough
        .iter()
        .map(|at| {
            let err = |problem: String| system.error_at(at, "passthrough", problem);
            let dev = node(host, &at.value, &err)?;
            match &dev.kept {
                Some(why) => Err(err(format!(
                    "{} cannot be given to a guest: {why}",
                    dev.path
                ))),
                None => Ok(dev.path.clone()),
            }
        })
        .collect()
}

/// The host device at node `path`, or `err` saying which nodes there are.
fn node<'a>(
    host: &'a [HostDevice],
    path: &str,
    err: &dyn Fn(String) -> ConfigError,
) -> Result<&'a HostDevice, ConfigError> {
    host.iter().find(|h| h.path == path).ok_or_else(|| {
        err(format!(
            "{path:?} is not a node of the host's device tree, expected one of {}",
            names(host)
        ))
    })
}

fn names(host: &[HostDevice]) -> String {
    let free: Vec<&str> = host
        .iter()
        .filter(|h| h.kept.is_none())
        .map(|h| h.path.as_str())
        .collect();
    if free.is_empty() {
        "(none: the host has no device a guest may have)".into()
    } else {
        free.join(", ")
    }
}

#[cfg(test)]
#[path = "passthru_tests.rs"]
pub(crate) mod tests;
