//! Pack-time check that the domains fit in the system's RAM, with the `--mem` to ask for.
//!
//! The sum is an estimate of what the microvisor will take at boot: its own image, heap and
//! table reserve ([`MICROVISOR_MIB`]), dom0 ([`DOM0_MIB`]), the boot modules (each rounded
//! to its 2 MiB load alignment), and each domain's RAM plus its stage-2 table and Xen frame
//! budgets. The microvisor's own refusal at build time stays the authority; this check
//! catches a system that cannot possibly fit before anything boots.

use crate::image::MODULE_ALIGN;
use anyhow::{bail, Result};
use protocol::manifest::SystemManifest;

/// The microvisor image and stacks (2 MiB), its heap (8 MiB) and the page-table reserve
/// kept back from dom0's quota (8 MiB).
pub const MICROVISOR_MIB: u64 = 18;
/// dom0's RAM.
pub const DOM0_MIB: u64 = 32;
const MIB: u64 = 1 << 20;

/// Pages of Xen frames the microvisor charges each domain: shared_info, the two magic
/// pages and a 32-frame grant table.
const XEN_FRAME_PAGES: u64 = 35;

/// MiB a domain of `mem_mib` costs: its RAM, one level-3 table page per 2 MiB, the
/// 512 KiB allowance for grant and foreign mappings, and its Xen frames, rounded up.
fn domain_cost_mib(mem_mib: u32) -> u64 {
    let tables = u64::from(mem_mib).div_ceil(2) * 4096 + 512 * 1024 + XEN_FRAME_PAGES * 4096;
    u64::from(mem_mib) + tables.div_ceil(MIB)
}

/// An error naming what the domains need and the `--mem` to give if the domains of
/// `manifest`, the boot modules (`sizes`) and the microvisor do not fit in `mem_mib`.
pub fn check_fits(manifest: &SystemManifest, sizes: &[(String, u64)], mem_mib: u32) -> Result<()> {
    let modules: u64 = sizes
        .iter()
        .map(|(_, s)| s.div_ceil(MODULE_ALIGN) * MODULE_ALIGN)
        .sum::<u64>()
        .div_ceil(MIB);
    let domains: u64 = manifest
        .domains
        .iter()
        .map(|d| domain_cost_mib(d.mem_mib))
        .sum();
    let need = MICROVISOR_MIB + DOM0_MIB + modules + domains;
    if need > u64::from(mem_mib) {
        let list: Vec<String> = manifest
            .domains
            .iter()
            .map(|d| format!("{} {} MiB", d.name, d.mem_mib))
            .collect();
        bail!(
            "the domains do not fit in {mem_mib} MiB of RAM: they need about {need} MiB ({}; boot modules {modules} MiB; dom0 and the microvisor {} MiB); give the system more memory with --mem {need} (or [system] memory), or give the domains less `memory`",
            list.join(", "),
            MICROVISOR_MIB + DOM0_MIB
        );
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use protocol::manifest::{Action, ManifestDomain};

    /// A plain manifest domain (shared with other modules' tests).
    pub(crate) fn domain(name: &str, mem_mib: u32) -> ManifestDomain {
        ManifestDomain {
            name: name.into(),
            image: "img".into(),
            ramdisk: None,
            mem_mib,
            vcpus: Vec::new(),
            auto_cpus: true,
            cmdline: String::new(),
            depends_on: Vec::new(),
            on_poweroff: Action::Destroy,
            on_reboot: Action::Restart,
            on_crash: Action::Restart,
            vbds: Vec::new(),
            vifs: Vec::new(),
            devices: Vec::new(),
            device_tree: None,
            pmu: protocol::control::PmuAccess::Off,
        }
    }

    #[test]
    fn default_system_with_the_seed_domu_fits_in_one_gib_but_not_in_768() {
        let m = SystemManifest {
            version: protocol::manifest::MANIFEST_VERSION,
            domains: vec![domain("rtos", 8), domain("linux", 256), domain("domU", 512)],
            disks: vec![],
            nics: vec![],
            watchdogs: vec![],
            crash_limits: vec![],
            budgets: vec![],
        };
        let sizes = [("k".to_string(), 40 * MIB), ("i".to_string(), 30 * MIB)];
        check_fits(&m, &sizes, 1024).unwrap();
        let e = check_fits(&m, &sizes, 768).unwrap_err().to_string();
        assert_eq!(
            e,
            "the domains do not fit in 768 MiB of RAM: they need about 901 MiB (rtos 8 MiB, linux 256 MiB, domU 512 MiB; boot modules 70 MiB; dom0 and the microvisor 50 MiB); give the system more memory with --mem 901 (or [system] memory), or give the domains less `memory`"
        );
    }
}
