//! The orchestrator's core: turns the boot manifest and dom0's capability list into
//! `DomainSpec`s (or typed reasons why not), and decides what to do when a domain stops
//! ([`supervise`]: policies, restart backoff, crash-loop hold). Everything here is pure and
//! host-tested; `main.rs` only issues the hypercalls.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod bytelog;
pub mod health;
pub mod mgmt;
pub mod passthrough;
pub mod prompt;
pub mod pvcore;
pub mod restart;
pub mod supervise;
pub mod upload;
pub mod vbd;
pub mod vif;
pub mod xenstore;

pub use supervise::{state_text, stop_text, Command, Limits, Policy, Supervisor};

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use protocol::boot::MAX_NAME_LEN;
use protocol::cap::{CapHandle, CapInfo, CapKind};
use protocol::control::{CapError, DomainSpec, VcpuPlacement};
use protocol::manifest::{ManifestBudget, ManifestDomain, SystemManifest, MANIFEST_VERSION};

/// Why the manifest cannot be used at all.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestError {
    /// the manifest module is not valid postcard
    Malformed,
    /// the manifest has a version dom0 does not speak
    Version {
        /// The version found.
        found: u32,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("manifest is malformed"),
            Self::Version { found } => {
                write!(f, "manifest version {found}, expected {MANIFEST_VERSION}")
            }
        }
    }
}

/// Decodes and version-checks the manifest module.
pub fn decode_manifest(bytes: &[u8]) -> Result<SystemManifest, ManifestError> {
    let m = SystemManifest::decode(bytes).map_err(|_| ManifestError::Malformed)?;
    if m.version != MANIFEST_VERSION {
        return Err(ManifestError::Version { found: m.version });
    }
    Ok(m)
}

/// Why one domain of the manifest cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanError {
    /// dom0 holds no Memory capability
    NoMemoryCap,
    /// no boot module carries the domain's image label
    NoImage {
        /// The label looked for.
        label: String,
    },
    /// a domain this one depends on is not running
    Dependency {
        /// The missing dependency.
        name: String,
    },
    /// the name is empty or longer than MAX_NAME_LEN bytes
    BadName,
    /// the domain has no vCPUs
    NoVcpus,
    /// no unassigned Device capability is the host device the manifest gives the domain
    NoDevice {
        /// Its host device-tree path.
        path: String,
    },
    /// the host device the manifest gives the domain is held by another domain
    DeviceHeld {
        /// Its host device-tree path.
        path: String,
        /// The domain holding it.
        by: u16,
    },
    /// the microvisor refused an operation
    Cap(CapError),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMemoryCap => f.write_str("dom0 holds no Memory capability"),
            Self::NoImage { label } => write!(f, "no boot module labelled \"{label}\""),
            Self::Dependency { name } => write!(f, "dependency {name} is not running"),
            Self::BadName => write!(f, "name must be 1..={MAX_NAME_LEN} bytes"),
            Self::NoVcpus => f.write_str("no vCPUs"),
            Self::NoDevice { path } => write!(
                f,
                "device {path} is not a passthrough device of this host (the microvisor made no Device capability of it: is it marked xen,passthrough in the host DT, whole pages, clear of the GIC and the UART?)"
            ),
            Self::DeviceHeld { path, by } => write!(
                f,
                "device {path} is held by domain {by}; destroy that domain first to free it"
            ),
            Self::Cap(e) => e.fmt(f),
        }
    }
}

impl From<CapError> for PlanError {
    fn from(e: CapError) -> Self {
        Self::Cap(e)
    }
}

/// The Module cap labelled `label`.
pub fn find_module<'a>(caps: &'a [CapInfo], label: &str) -> Option<&'a CapInfo> {
    caps.iter()
        .find(|c| c.kind == CapKind::Module && c.label == label)
}

/// The first Memory cap.
pub fn memory_cap(caps: &[CapInfo]) -> Option<CapHandle> {
    caps.iter()
        .find(|c| c.kind == CapKind::Memory)
        .map(|c| c.handle)
}

/// Builds the `DomainCreate` request for `d`, given dom0's caps and the names of the
/// domains already running.
pub fn plan_domain(
    d: &ManifestDomain,
    caps: &[CapInfo],
    running: &[String],
) -> Result<DomainSpec, PlanError> {
    if d.name.is_empty() || d.name.len() > MAX_NAME_LEN {
        return Err(PlanError::BadName);
    }
    if d.vcpus.is_empty() {
        return Err(PlanError::NoVcpus);
    }
    if let Some(dep) = d.depends_on.iter().find(|dep| !running.contains(dep)) {
        return Err(PlanError::Dependency { name: dep.clone() });
    }
    let memory = memory_cap(caps).ok_or(PlanError::NoMemoryCap)?;
    let image = find_module(caps, &d.image)
        .ok_or_else(|| PlanError::NoImage {
            label: d.image.clone(),
        })?
        .handle;
    let ramdisk = match &d.ramdisk {
        Some(label) => Some(
            find_module(caps, label)
                .ok_or_else(|| PlanError::NoImage {
                    label: label.clone(),
                })?
                .handle,
        ),
        None => None,
    };
    let (devices, windows) = passthrough::plan(&d.devices, caps)?;
    let device_tree = match &d.device_tree {
        Some(label) => Some(
            find_module(caps, label)
                .ok_or_else(|| PlanError::NoImage {
                    label: label.clone(),
                })?
                .handle,
        ),
        None => None,
    };
    Ok(DomainSpec {
        name: d.name.clone(),
        image,
        ramdisk,
        memory,
        mem_mib: d.mem_mib,
        vcpus: d.vcpus.clone(),
        cmdline: d.cmdline.clone(),
        devices,
        windows,
        device_tree,
        pmu: d.pmu,
        // The system's budgets are kept beside the domains (`SystemManifest::budgets`):
        // the caller adds them.
        budgets: Vec::new(),
    })
}

/// The budget of each of `d`'s vCPUs for its `DomainCreate` ([`DomainSpec::budgets`]):
/// the system's budget for it on every shared vCPU, none on an exclusive one; empty when
/// the system gives it none.
pub fn vcpu_budgets(budgets: &[ManifestBudget], d: &ManifestDomain) -> Vec<(u32, u32)> {
    let budget = budgets
        .iter()
        .find(|b| b.domain == d.name)
        .map(|b| (b.budget_us, b.period_us));
    vcpu_budget_each(budget, d)
}

/// `budget` (`(budget_us, period_us)`) on each of `d`'s shared vCPUs and none on an
/// exclusive one; empty without a budget (`ctl create --budget-us`, or the system's).
pub fn vcpu_budget_each(budget: Option<(u32, u32)>, d: &ManifestDomain) -> Vec<(u32, u32)> {
    let Some(budget) = budget else {
        return Vec::new();
    };
    d.vcpus
        .iter()
        .map(|v| if v.exclusive { (0, 0) } else { budget })
        .collect()
}

/// For a domain whose pCPUs the tools chose (`auto_cpus`), created while others run on a
/// machine of `pcpus` CPUs: keeps the chosen pCPUs that exist and that no running domain
/// holds exclusively (`taken`), and spreads the vCPUs over them in order. The tools chose
/// without knowing the running system (its size, what is exclusive), so when none of their
/// choices is usable any free pCPU is: 1 and up first (pCPU 0 runs dom0), then 0. `None`
/// only if every pCPU is held exclusively. (An xl.cfg's `^N` exclusions are not known
/// here: a fallback may use such a pCPU.)
pub fn place_auto(
    vcpus: &[VcpuPlacement],
    taken: &[u16],
    pcpus: u16,
) -> Option<Vec<VcpuPlacement>> {
    let usable = |c: u16| c < pcpus && !taken.contains(&c);
    let mut free: Vec<u16> = Vec::new();
    for v in vcpus {
        if usable(v.pcpu) && !free.contains(&v.pcpu) {
            free.push(v.pcpu);
        }
    }
    if free.is_empty() {
        free = (1..pcpus).filter(|&c| usable(c)).collect();
    }
    if free.is_empty() && usable(0) {
        free.push(0);
    }
    if free.is_empty() {
        return None;
    }
    Some(
        vcpus
            .iter()
            .enumerate()
            .map(|(i, v)| VcpuPlacement {
                pcpu: free[i % free.len()],
                ..*v
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::cap::{CapDetail, Rights};
    use protocol::control::VcpuPlacement;
    use protocol::manifest::Action;

    fn cap(index: u16, kind: CapKind, label: &str, detail: CapDetail) -> CapInfo {
        CapInfo {
            handle: CapHandle {
                index,
                generation: 1,
            },
            kind,
            rights: Rights::READ | Rights::WRITE,
            label: label.into(),
            detail,
        }
    }

    fn caps() -> Vec<CapInfo> {
        vec![
            cap(0, CapKind::Console, "console", CapDetail::Console),
            cap(
                1,
                CapKind::Memory,
                "ram",
                CapDetail::Memory {
                    free_pages: 1000,
                    largest_free_pages: 512,
                },
            ),
            cap(
                2,
                CapKind::Module,
                "manifest",
                CapDetail::Module { size: 10 },
            ),
            cap(3, CapKind::Module, "rtos", CapDetail::Module { size: 4096 }),
        ]
    }

    #[test]
    fn auto_placed_vcpus_leave_exclusive_pcpus() {
        let at = |pcpu| VcpuPlacement {
            pcpu,
            priority: 10,
            exclusive: false,
        };
        let pcpus_of = |v: Vec<VcpuPlacement>| -> Vec<u16> { v.iter().map(|v| v.pcpu).collect() };
        let vcpus = [at(1), at(2), at(3), at(1)];
        let moved = place_auto(&vcpus, &[1], 4).expect("2 and 3 are free");
        assert_eq!(pcpus_of(moved), [2, 3, 2, 3]);
        assert_eq!(place_auto(&vcpus, &[], 4).unwrap(), vcpus.to_vec());
        // ux review: a 1-vCPU guest the tools put on pCPU 1, beside an RTOS exclusive there,
        // goes to pCPU 2 (it was refused).
        assert_eq!(pcpus_of(place_auto(&[at(1)], &[1], 4).unwrap()), [2]);
        // A 2-vCPU guest placed for 4 pCPUs, created on a 2-pCPU machine, stays on pCPU 1
        // (it was refused: "physical CPU unavailable").
        assert_eq!(
            pcpus_of(place_auto(&[at(1), at(2)], &[], 2).unwrap()),
            [1, 1]
        );
        // Only dom0's pCPU left.
        assert_eq!(pcpus_of(place_auto(&[at(1)], &[1], 2).unwrap()), [0]);
        assert_eq!(place_auto(&[at(1)], &[0, 1], 2), None);
    }

    fn domain(name: &str, image: &str, deps: &[&str]) -> ManifestDomain {
        ManifestDomain {
            name: name.into(),
            image: image.into(),
            ramdisk: None,
            mem_mib: 8,
            auto_cpus: false,
            vcpus: vec![VcpuPlacement {
                pcpu: 1,
                priority: 0,
                exclusive: true,
            }],
            cmdline: "hz=1000".into(),
            depends_on: deps.iter().map(|s| s.to_string()).collect(),
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
    fn a_budget_goes_to_every_shared_vcpu_of_its_domain_only() {
        let shared = |pcpu| VcpuPlacement {
            pcpu,
            priority: 10,
            exclusive: false,
        };
        let mut linux = domain("linux", "linux", &[]);
        linux.vcpus = vec![shared(1), shared(2)];
        let rtos = domain("rtos", "rtos", &[]);
        let budgets = [
            ManifestBudget {
                domain: "linux".into(),
                budget_us: 2_000,
                period_us: 10_000,
            },
            ManifestBudget {
                domain: "rtos".into(),
                budget_us: 500,
                period_us: 1_000,
            },
        ];
        assert_eq!(
            vcpu_budgets(&budgets, &linux),
            [(2_000, 10_000), (2_000, 10_000)]
        );
        // The tools refuse a budget on an exclusive domain; should one come, its vCPU
        // gets none rather than a refused DomainCreate.
        assert_eq!(vcpu_budgets(&budgets, &rtos), [(0, 0)]);
        assert!(vcpu_budgets(&budgets[1..], &linux).is_empty());
    }

    #[test]
    fn manifest_checks() {
        let m = SystemManifest {
            version: MANIFEST_VERSION,
            domains: vec![],
            disks: vec![],
            nics: vec![],
            watchdogs: vec![],
            crash_limits: vec![],
            budgets: vec![],
        };
        assert_eq!(decode_manifest(&m.encode().unwrap()), Ok(m));
        let bad = SystemManifest {
            version: 7,
            domains: vec![],
            disks: vec![],
            nics: vec![],
            watchdogs: vec![],
            crash_limits: vec![],
            budgets: vec![],
        }
        .encode()
        .unwrap();
        let e = decode_manifest(&bad).unwrap_err();
        assert_eq!(e.to_string(), "manifest version 7, expected 10");
        assert_eq!(
            decode_manifest(&[0xFF, 0xFF]),
            Err(ManifestError::Malformed)
        );
    }

    #[test]
    fn plans_a_domain() {
        let spec = plan_domain(&domain("rtos", "rtos", &[]), &caps(), &[]).unwrap();
        assert_eq!(
            spec.image,
            CapHandle {
                index: 3,
                generation: 1
            }
        );
        assert_eq!(
            spec.memory,
            CapHandle {
                index: 1,
                generation: 1
            }
        );
        assert_eq!(
            (spec.name.as_str(), spec.mem_mib, spec.cmdline.as_str()),
            ("rtos", 8, "hz=1000")
        );
    }

    #[test]
    fn plan_errors() {
        let c = caps();
        let e = plan_domain(&domain("x", "nope", &[]), &c, &[]).unwrap_err();
        assert_eq!(e.to_string(), "no boot module labelled \"nope\"");
        // The console's label is not a module.
        assert!(matches!(
            plan_domain(&domain("x", "console", &[]), &c, &[]),
            Err(PlanError::NoImage { .. })
        ));
        let no_mem: Vec<_> = c
            .iter()
            .filter(|c| c.kind != CapKind::Memory)
            .cloned()
            .collect();
        assert_eq!(
            plan_domain(&domain("x", "rtos", &[]), &no_mem, &[]),
            Err(PlanError::NoMemoryCap)
        );
        let e = plan_domain(&domain("g", "rtos", &["netdom"]), &c, &["rtos".into()]).unwrap_err();
        assert_eq!(e.to_string(), "dependency netdom is not running");
        assert!(plan_domain(&domain("g", "rtos", &["rtos"]), &c, &["rtos".into()]).is_ok());
        assert_eq!(
            Policy::of(&domain("g", "rtos", &[])),
            Policy {
                on_crash: Action::Restart,
                ..Policy::XL_DEFAULT
            }
        );
        assert_eq!(
            plan_domain(&domain("", "rtos", &[]), &c, &[]),
            Err(PlanError::BadName)
        );
        let mut d = domain("x", "rtos", &[]);
        d.vcpus.clear();
        assert_eq!(plan_domain(&d, &c, &[]), Err(PlanError::NoVcpus));
        assert_eq!(
            PlanError::from(CapError::NoMemory).to_string(),
            "out of memory"
        );
    }
}
