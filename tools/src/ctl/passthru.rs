//! `ctl create` of an xl.cfg with passthrough keys (`dtdev`, `iomem`, `irqs`,
//! `device_tree`). The microvisor makes a Device capability only of a node the boot DTB
//! marks `xen,passthrough`, and that DTB is written when the system is packed: so a running
//! system can give a guest only a device it reserved at boot (one a domain of the packed
//! system names). The devices are checked against the host tree the running system was
//! packed with ([`crate::machine::HOST_DTB`] in its image directory) exactly as at packing, each must be
//! marked in its `system.dtb`. A `device_tree` is fixed up as at packing; if it is byte for
//! byte a tree packed for some domain of the system, dom0 uses that boot module, otherwise
//! the fixed-up tree is uploaded with the kernel (`upload`). Whether the device is free is dom0's to say: it holds the Device capabilities and
//! refuses a device another domain holds, naming the holder.

use crate::dtb::PASSTHROUGH_PROP;
use crate::system::{Image, System};
use anyhow::{anyhow, bail, Context, Result};
use fdt::Fdt;
use protocol::boot::MANIFEST_LABEL;
use protocol::manifest::SystemManifest;
use std::path::Path;

/// Gives the domain of the one-domain `system` (its manifest entry in `manifest`) the host
/// devices and the device tree its xl.cfg names, against the running system packed in `dir`.
/// Nothing to do for a domain without passthrough keys. Returns a fixed-up device tree the
/// system was not packed with (its label in the manifest and its bytes): it must be uploaded.
pub fn give_devices(
    system: &System,
    manifest: &mut SystemManifest,
    images: &[(String, Image)],
    dir: &Path,
) -> Result<Option<(String, Vec<u8>)>> {
    let Some(d) = system.domains.first() else {
        return Ok(None);
    };
    let p = &d.passthrough;
    if p.is_empty() && p.device_tree.is_none() {
        return Ok(None);
    }
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).with_context(|| {
            format!(
                "{}: ctl create gives devices only to a running system packed by `cargo bulkhead run` or `image`",
                path.display()
            )
        })
    };
    let host_dtb = read(crate::machine::HOST_DTB)?;
    let booted = read("system.dtb")?;
    let booted =
        Fdt::new(&booted).map_err(|e| anyhow!("{}: {e:?}", dir.join("system.dtb").display()))?;
    // dom0's management UART as the running system has it (the packed tree names it).
    let mgmt = booted
        .find_node("/chosen")
        .and_then(|c| c.property(protocol::boot::MGMT_PORT_PROP))
        .and_then(|p| p.as_str());
    let host = crate::passthru::host_devices(&host_dtb, mgmt)?;
    let given = crate::passthru::assign(system, &host)?;
    let devices = given.into_iter().next().unwrap_or_default();
    for dev in &devices {
        let marked = booted
            .find_node(&dev.path)
            .is_some_and(|n| n.property(PASSTHROUGH_PROP).is_some());
        if !marked {
            let problem = format!(
                "{} was not reserved for passthrough when the running system was packed (its system.dtb does not mark it {PASSTHROUGH_PROP}, so the microvisor made no Device capability of it); a device can be given at run time only if the packed system reserves it: a domain names it in `dtdev`, or `[system] passthrough` lists it",
                dev.path
            );
            // The line that gave it: its `dtdev`, else the `iomem` (or `irqs`) that did.
            let e = if let Some(at) = p.dtdevs.iter().find(|a| a.value == dev.path) {
                system.error_at(at, "dtdev", problem)
            } else if let Some(at) = p.iomem.first() {
                system.error_at(at, "iomem", problem)
            } else if let Some(at) = p.irqs.first() {
                system.error_at(at, "irqs", problem)
            } else {
                bail!("{problem}");
            };
            return Err(e.into());
        }
    }
    let Some(m) = manifest.domains.iter_mut().find(|m| m.name == d.name.value) else {
        bail!("internal error: no domain {} in the manifest", d.name.value);
    };
    m.devices = devices;
    let fragments = crate::partial_dt::device_trees(system, manifest, images)?;
    let Some((fresh, blob)) = fragments.into_iter().next() else {
        return Ok(None);
    };
    let packed = SystemManifest::decode(&read(&format!("{}.bin", MANIFEST_LABEL))?)
        .map_err(|e| anyhow!("{}: the packed manifest: {e}", dir.display()))?;
    let label = packed
        .domains
        .iter()
        .filter_map(|pd| pd.device_tree.as_ref())
        .find(|l| std::fs::read(dir.join(format!("{l}.bin"))).is_ok_and(|b| b == blob))
        .cloned();
    let m = manifest
        .domains
        .iter_mut()
        .find(|m| m.name == d.name.value)
        .context("internal error: the domain left the manifest")?;
    match label {
        Some(label) => {
            m.device_tree = Some(label);
            Ok(None)
        }
        None => {
            m.device_tree = Some(fresh.clone());
            Ok(Some((fresh, blob)))
        }
    }
}

#[cfg(test)]
#[path = "passthru_tests.rs"]
mod tests;
