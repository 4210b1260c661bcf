//! `ctl create` of an xl.cfg with `disk` lines. QEMU attaches host files as virtio-blk
//! devices only at boot, so a disk of a domain created at run time must be one of the
//! running system's disks (for example the guest's own disk after `ctl destroy`, or a
//! disk the system shares read-only). Each line is checked against the manifest the
//! system was packed with, and the created domain's vbds are renumbered to that system's
//! disks; dom0 then refuses a disk another running domain uses in a conflicting mode.

use crate::system::disks::Disk;
use crate::system::At;
use anyhow::{bail, Context, Result};
use protocol::manifest::{ManifestDisk, ManifestDomain, SystemManifest, MANIFEST_VERSION};
use std::path::Path;

/// The host disks of the system packed in `dir` (the running one).
pub(super) fn running_disks(dir: &Path) -> Result<Vec<ManifestDisk>> {
    let path = dir.join(format!("{}.bin", protocol::boot::MANIFEST_LABEL));
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "{}: no packed system to attach disks from (boot one with `cargo bulkhead run`)",
            path.display()
        )
    })?;
    let manifest = SystemManifest::decode(&bytes)
        .ok()
        .filter(|m| m.version == MANIFEST_VERSION)
        .with_context(|| {
            format!(
                "{}: not a manifest of this version of Bulkhead (rebuild with `cargo bulkhead run`)",
                path.display()
            )
        })?;
    Ok(manifest.disks)
}

/// Checks each disk line of `file` against the running system's `disks`: its target must be
/// one of them, served by the same backend, and writable if the line asks to write.
pub(super) fn check(file: &Path, lines: &[At<Disk>], disks: &[ManifestDisk]) -> Result<()> {
    for at in lines {
        let (spec, path) = (&at.value.spec, at.value.path.display().to_string());
        let here = format!("{}:{}: key `disk`", file.display(), at.line);
        let Some(running) = disks.iter().find(|d| d.name == path) else {
            let known: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
            bail!(
                "{here}: target {:?} ({path}) is not a disk of the running system, expected one it was booted with ({}); QEMU attaches disks only at boot: boot the guest with `cargo bulkhead run --domain {}` instead",
                spec.target,
                if known.is_empty() { "it has none".to_string() } else { known.join(", ") },
                file.display()
            );
        };
        if running.backend != spec.backend {
            bail!(
                "{here}: backend {:?} differs from the running system's backend for {path} ({:?}), expected backend={}",
                spec.backend,
                running.backend,
                running.backend
            );
        }
        if running.read_only && !spec.read_only {
            bail!(
                "{here}: target {path} was attached read-only (every domain that uses it has access=ro), expected access=ro"
            );
        }
    }
    Ok(())
}

/// Points the vbds of `domain` (numbered by the one-domain system `created` describes) at
/// the running system's disks, matched by host file.
pub(super) fn renumber(
    domain: &mut ManifestDomain,
    created: &[ManifestDisk],
    running: &[ManifestDisk],
) -> Result<()> {
    for v in &mut domain.vbds {
        let name = created
            .iter()
            .find(|d| d.index == v.disk)
            .map(|d| d.name.as_str())
            .context("a vbd names a disk its own system does not have")?;
        v.disk = running
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.index)
            .with_context(|| format!("{name} is not a disk of the running system"))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "disks_tests.rs"]
mod tests;
