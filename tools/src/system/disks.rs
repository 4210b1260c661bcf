//! Disks: each domain's xl disk lines (from its xl.cfg or the TOML's `disk = [...]`), their
//! target files checked before boot, and the checks across domains: one vdev per device
//! number in a domain, backends that are domains of the system (one block backend per
//! system for now), and a target shared only read-only. Each distinct target becomes one
//! [`HostDisk`]: a virtio-blk device of the QEMU machine handed to the backend domain, which
//! finds it by its serial (`VIRTIO_BLK_T_GET_ID`).

use super::{At, ConfigError, System};
use crate::xlcfg::disk::{self, DiskSpec};
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bytes per sector of the vbd protocol (and of virtio-blk).
pub const SECTOR: u64 = 512;

/// A disk line with its target file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The line, read.
    pub spec: DiskSpec,
    /// The target, canonical (so two spellings of one file are one disk).
    pub path: PathBuf,
    /// Its size in 512-byte sectors.
    pub sectors: u64,
}

/// One host file the system attaches: a virtio-blk device of the QEMU machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDisk {
    /// Its index among the system's disks (its order on QEMU's command line).
    pub index: u32,
    /// The virtio-blk serial the backend finds it by: `bkd<index>`.
    pub serial: String,
    /// The file.
    pub path: PathBuf,
    /// Every vbd of it is read-only (then QEMU opens the file read-only too).
    pub read_only: bool,
    /// Size in 512-byte sectors.
    pub sectors: u64,
    /// The backend domain serving it.
    pub backend: String,
}

/// Reads the disk line `text` and checks its target, relative to `dir` (the folder of the
/// file it came from): it must open for reading (and writing unless `access=ro`) and hold
/// a whole, non-zero number of sectors.
pub fn resolve(text: &str, dir: &Path) -> Result<Disk, String> {
    let spec = disk::parse(text)?;
    let path = dir.join(&spec.target);
    let whose = || {
        format!(
            "disk {text:?}: target {:?} ({})",
            spec.target,
            path.display()
        )
    };
    let expected =
        "expected an existing raw disk image (a relative path starts from this file's folder)";
    let mode = if spec.read_only {
        "reading"
    } else {
        "reading and writing"
    };
    if path.is_dir() {
        return Err(format!("{} is a directory, {expected}", whose()));
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(!spec.read_only)
        .open(&path)
        .map_err(|e| format!("{} cannot be opened for {mode}: {e}, {expected}", whose()))?;
    // Seeking (not the metadata) also sizes a host block device.
    let bytes = file
        .seek(SeekFrom::End(0))
        .map_err(|e| format!("{} cannot be sized: {e}, {expected}", whose()))?;
    if bytes == 0 || bytes % SECTOR != 0 {
        return Err(format!(
            "{} is {bytes} bytes, expected a non-empty image of whole 512-byte sectors (e.g. `truncate -s 64M FILE`)",
            whose()
        ));
    }
    let path = std::fs::canonicalize(&path)
        .map_err(|e| format!("{} cannot be resolved: {e}, {expected}", whose()))?;
    Ok(Disk {
        spec,
        path,
        sectors: bytes / SECTOR,
    })
}

/// Adds each domain's disk backends to its dependencies: a guest starts after the domain
/// serving its disks.
pub(super) fn add_backend_dependencies(system: &mut System) {
    for d in &mut system.domains {
        for disk in &d.disks {
            let backend = &disk.value.spec.backend;
            if *backend != d.name.value && !d.depends_on.value.contains(backend) {
                d.depends_on.value.push(backend.clone());
            }
        }
    }
}

/// The checks across domains (see the module doc).
pub(super) fn check(system: &System) -> Result<(), ConfigError> {
    let err = |at: &At<Disk>, problem: String| system.error_at(at, "disk", problem);
    let mut first_backend: Option<(&str, &At<Disk>)> = None;
    // Each target's users so far: (domain, its disk line).
    let mut users: BTreeMap<&Path, Vec<(&str, &At<Disk>)>> = BTreeMap::new();
    for d in &system.domains {
        let name = d.name.value.as_str();
        let mut vdevs: BTreeMap<u32, &At<Disk>> = BTreeMap::new();
        for at in &d.disks {
            let spec = &at.value.spec;
            if let Some(first) = vdevs.insert(spec.devid, at) {
                return Err(err(
                    at,
                    format!(
                        "vdev {} (device {}) is already {:?}'s {} ({}), expected one disk per vdev",
                        spec.vdev,
                        spec.devid,
                        name,
                        first.value.spec.vdev,
                        place(system, first, at)
                    ),
                ));
            }
            let backend = spec.backend.as_str();
            if backend == name {
                return Err(err(
                    at,
                    format!("backend {backend:?} is this domain itself, expected the block backend domain (default {})", disk::DEFAULT_BACKEND),
                ));
            }
            if !system.domains.iter().any(|o| o.name.value == backend) {
                return Err(err(
                    at,
                    format!(
                        "backend {backend:?} is not a domain of this system, expected a [[domain]] named {backend:?} (image = \"blkdom\") or `backend=NAME` naming one"
                    ),
                ));
            }
            match first_backend {
                Some((other, first)) if other != backend => {
                    return Err(err(
                        at,
                        format!(
                            "backend {backend:?} differs from {other:?} ({}), expected one block backend domain per system",
                            place(system, first, at)
                        ),
                    ))
                }
                Some(_) => {}
                None => first_backend = Some((backend, at)),
            }
            let list = users.entry(at.value.path.as_path()).or_default();
            if let Some((other, first)) = list
                .iter()
                .find(|(_, u)| !u.value.spec.read_only || !spec.read_only)
            {
                let mode = |a: &At<Disk>| {
                    if a.value.spec.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    }
                };
                return Err(err(
                    at,
                    format!(
                        "target {:?} is already {other:?}'s {} {} ({}), expected a disk shared only read-only (access=ro everywhere)",
                        spec.target,
                        mode(first),
                        first.value.spec.vdev,
                        place(system, first, at)
                    ),
                ));
            }
            list.push((name, at));
        }
    }
    Ok(())
}

/// Where `first` is, seen from `now`: `line N` in the same file, else `FILE:N`.
fn place(system: &System, first: &At<Disk>, now: &At<Disk>) -> String {
    if first.file == now.file {
        format!("line {}", first.line)
    } else {
        format!("{}:{}", system.file_of(first), first.line)
    }
}

/// The distinct targets of `system`, in order of first use (domains in file order).
pub fn host_disks(system: &System) -> Vec<HostDisk> {
    let mut out: Vec<HostDisk> = Vec::new();
    for d in &system.domains {
        for at in &d.disks {
            let disk = &at.value;
            match out.iter_mut().find(|h| h.path == disk.path) {
                Some(h) => h.read_only &= disk.spec.read_only,
                None => {
                    let index = out.len() as u32;
                    out.push(HostDisk {
                        index,
                        serial: format!("bkd{index}"),
                        path: disk.path.clone(),
                        read_only: disk.spec.read_only,
                        sectors: disk.sectors,
                        backend: disk.spec.backend.clone(),
                    });
                }
            }
        }
    }
    out
}
