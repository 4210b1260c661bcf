//! The system manifest: what dom0 builds at boot, produced by the tools from the system
//! description and passed as the boot module labelled [`crate::boot::MANIFEST_LABEL`].

use crate::control::VcpuPlacement;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Manifest format version; dom0 rejects any other.
pub const MANIFEST_VERSION: u32 = 10;

/// The whole system, in start order (dependencies first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemManifest {
    /// Must equal [`MANIFEST_VERSION`].
    pub version: u32,
    /// Domains dom0 creates, in the order it creates them.
    pub domains: Vec<ManifestDomain>,
    /// Host disks: the virtio-blk devices of the machine, one per distinct disk target, in
    /// index order (which is also their order on QEMU's command line).
    pub disks: Vec<ManifestDisk>,
    /// Host NICs: the virtio-net devices of the machine (QEMU's user network), each given
    /// to its network backend domain as its uplink.
    pub nics: Vec<ManifestNic>,
    /// Heartbeat watchdogs dom0 keeps on domains (the system description's `watchdog`
    /// key). Kept out of [`ManifestDomain`], which `ctl create` also sends over the
    /// management protocol, so that protocol's messages do not change with it.
    pub watchdogs: Vec<ManifestWatchdog>,
    /// Crash-loop limits other than dom0's default (the system description's
    /// `crash_limit` key); kept out of [`ManifestDomain`] for the same reason as
    /// [`SystemManifest::watchdogs`].
    pub crash_limits: Vec<ManifestCrashLimit>,
    /// Budgets of domains' shared vCPUs (the system description's `budget_us` and
    /// `period_us`); kept out of [`ManifestDomain`] for the same reason as
    /// [`SystemManifest::watchdogs`]. Since version 10.
    pub budgets: Vec<ManifestBudget>,
}

/// The budget every vCPU of one domain gets on its shared pCPU: `budget_us` of guest time
/// per `period_us` at its priority (`ctl sched-fp --budget-us/--period-us`), at creation
/// and again at each restart in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestBudget {
    /// The domain.
    pub domain: String,
    /// Guest time per period, in microseconds.
    pub budget_us: u32,
    /// The period, in microseconds.
    pub period_us: u32,
}

/// A domain's crash-loop limit: once it has been restarted `max_restarts` times after
/// crashes within the last `window_ms`, its next crash holds it instead of restarting it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCrashLimit {
    /// The domain limited.
    pub domain: String,
    /// Crash restarts allowed within the window (0: the first crash holds it).
    pub max_restarts: u32,
    /// The sliding window, in milliseconds.
    pub window_ms: u32,
}

/// A heartbeat watchdog on one domain: when it stays silent too long, dom0 restarts it in
/// place exactly as after a crash (its `on_crash` policy, backoff and crash-loop hold).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestWatchdog {
    /// The domain watched.
    pub domain: String,
    /// Longest silence after a heartbeat, in milliseconds.
    pub timeout_ms: u32,
    /// Longest wait for an incarnation's first heartbeat (from its start or restart), in
    /// milliseconds: booting and getting ready takes longer than one loop round.
    pub first_beat_ms: u32,
}

/// A host NIC: one virtio-net device, given (as a `Device` capability) to its network
/// backend domain, which plugs it into its switch as the uplink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestNic {
    /// Its position in [`SystemManifest::nics`].
    pub index: u32,
    /// The network backend domain it is given to.
    pub backend: String,
    /// For messages: what the host end is (e.g. `user,hostfwd=tcp::8080-:80`).
    pub name: String,
}

/// A virtual network interface of a guest (one xl vif line), served by `backend`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestVif {
    /// Xen's device id: the line's position in `vif = [...]` unless it says `devid=`
    /// (`device/vif/<devid>`; Linux names the first one `eth0`).
    pub devid: u32,
    /// The guest's MAC address (given, or derived from the domain's name and devid).
    pub mac: [u8; 6],
    /// The bridge (netdom's switch) it is plugged into, e.g. `xenbr0`.
    pub bridge: String,
    /// The backend domain's name.
    pub backend: String,
}

/// A host disk: one virtio-blk device, given (as a `Device` capability) to its backend
/// domain, which finds it by its serial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDisk {
    /// Its position in [`SystemManifest::disks`]; vbds refer to it by this.
    pub index: u32,
    /// Its virtio-blk serial (`VIRTIO_BLK_T_GET_ID`), e.g. `bkd0`.
    pub serial: String,
    /// Every vbd of it is read-only; the host opened it read-only.
    pub read_only: bool,
    /// Its size in 512-byte sectors when the system was packed.
    pub sectors: u64,
    /// The backend domain serving it (holds its `Device` capability).
    pub backend: String,
    /// For messages: the host file.
    pub name: String,
}

/// A virtual block device of a guest (one xl disk line), served by `backend` from host
/// disk `disk`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestVbd {
    /// Index of its host disk in [`SystemManifest::disks`].
    pub disk: u32,
    /// The guest's device name as written, e.g. `xvda` (xenstore `dev`).
    pub vdev: String,
    /// Its Xen vbd number, e.g. 51712 for xvda (`device/vbd/<devid>`).
    pub devid: u32,
    /// `access=ro`: the backend must refuse writes (xenstore `mode` = `r`).
    pub read_only: bool,
    /// The backend domain's name.
    pub backend: String,
    /// The backend may offer discard (xl's `discard`, the default; `no-discard` clears it).
    pub discard: bool,
}

/// One domain of the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDomain {
    /// Domain name.
    pub name: String,
    /// Label of the boot module holding its image.
    pub image: String,
    /// Label of the boot module holding its initramfs (Linux kernels).
    pub ramdisk: Option<String>,
    /// RAM in MiB.
    pub mem_mib: u32,
    /// Placement of each vCPU.
    pub vcpus: Vec<VcpuPlacement>,
    /// The tools chose the pCPUs (an xl.cfg without `cpus`): when the domain is created at
    /// run time, dom0 moves its vCPUs off pCPUs that running domains hold exclusively.
    pub auto_cpus: bool,
    /// Arguments passed in its start info.
    pub cmdline: String,
    /// Names of domains that must be running before this one starts.
    pub depends_on: Vec<String>,
    /// What dom0 does when the domain powers off (xl's `on_poweroff`).
    pub on_poweroff: Action,
    /// What dom0 does when the domain asks to reboot (xl's `on_reboot`).
    pub on_reboot: Action,
    /// What dom0 does when the domain crashes: a stage-2 fault, an unhandled trap or a
    /// reported panic (xl's `on_crash`).
    pub on_crash: Action,
    /// Its virtual block devices (xl `disk`), in the order written.
    pub vbds: Vec<ManifestVbd>,
    /// Its virtual network interfaces (xl `vif`), in the order written.
    pub vifs: Vec<ManifestVif>,
    /// Host devices passed through to it (xl `dtdev`/`iomem`/`irqs`), checked by the tools
    /// against the host device tree, which marks each node `xen,passthrough`.
    pub devices: Vec<ManifestDevice>,
    /// Label of the boot module holding its device-tree fragment (xl `device_tree`: the
    /// partial tree's `/passthrough` node, fixed up by the tools for the guest's tree).
    pub device_tree: Option<String>,
    /// Its access to the performance monitors (`pmu`).
    pub pmu: crate::control::PmuAccess,
}

/// A host device given to one domain: its `Device` capability (found by `mmio_base`) is
/// delegated to the domain at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDevice {
    /// Its host device-tree path, e.g. `/pl031@9010000`.
    pub path: String,
    /// The start of its first `reg` window: how dom0 finds its `Device` capability
    /// (`CapDetail::Device::mmio_base`).
    pub mmio_base: u64,
    /// Its MMIO windows as the guest sees them, whole pages.
    pub windows: Vec<ManifestWindow>,
    /// Its SPIs (GIC INTIDs), injected into the domain.
    pub irqs: Vec<u32>,
}

/// Host pages of a device and where the guest sees them (xl `iomem`'s `@GFN`; the host
/// address when not given).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestWindow {
    /// Host physical address, page aligned.
    pub host: u64,
    /// Guest physical address, page aligned.
    pub guest: u64,
    /// Bytes, whole pages.
    pub size: u64,
}

/// A lifecycle policy, with xl's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Destroy the domain and free its memory (`destroy`).
    Destroy,
    /// Rebuild it in place with the same domain id (`restart`), with backoff and a
    /// crash-loop limit after which it is held as `Preserve` and reported.
    Restart,
    /// Leave it stopped with its memory, for inspection (`preserve`).
    Preserve,
}

impl SystemManifest {
    /// Encodes for the boot module.
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }
    /// Decodes a boot module; malformed bytes are an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_rejects_garbage() {
        let m = SystemManifest {
            version: MANIFEST_VERSION,
            domains: alloc::vec![ManifestDomain {
                name: "rtos".into(),
                image: "rtos".into(),
                ramdisk: None,
                mem_mib: 8,
                auto_cpus: false,
                vcpus: alloc::vec![VcpuPlacement {
                    pcpu: 1,
                    priority: 0,
                    exclusive: true
                }],
                cmdline: String::new(),
                depends_on: Vec::new(),
                on_poweroff: Action::Destroy,
                on_reboot: Action::Restart,
                on_crash: Action::Preserve,
                vbds: alloc::vec![ManifestVbd {
                    disk: 0,
                    vdev: "xvda".into(),
                    devid: 51712,
                    read_only: true,
                    backend: "blkdom".into(),
                    discard: false,
                }],
                vifs: alloc::vec![ManifestVif {
                    devid: 0,
                    mac: [0x00, 0x16, 0x3e, 0x01, 0x02, 0x03],
                    bridge: "xenbr0".into(),
                    backend: "netdom".into(),
                }],
                devices: alloc::vec![ManifestDevice {
                    path: "/pl031@9010000".into(),
                    mmio_base: 0x0901_0000,
                    windows: alloc::vec![ManifestWindow {
                        host: 0x0901_0000,
                        guest: 0x0901_0000,
                        size: 0x1000,
                    }],
                    irqs: alloc::vec![34],
                }],
                device_tree: Some("linux-dt".into()),
                pmu: crate::control::PmuAccess::El2,
            }],
            disks: alloc::vec![ManifestDisk {
                index: 0,
                serial: "bkd0".into(),
                read_only: true,
                sectors: 131_072,
                backend: "blkdom".into(),
                name: "/srv/disk.img".into(),
            }],
            nics: alloc::vec![ManifestNic {
                index: 0,
                backend: "netdom".into(),
                name: "user".into(),
            }],
            watchdogs: alloc::vec![ManifestWatchdog {
                domain: "blkdom".into(),
                timeout_ms: 10_000,
                first_beat_ms: 60_000,
            }],
            crash_limits: alloc::vec![ManifestCrashLimit {
                domain: "netdom".into(),
                max_restarts: 10,
                window_ms: 60_000,
            }],
            budgets: alloc::vec![ManifestBudget {
                domain: "linux".into(),
                budget_us: 2_000,
                period_us: 10_000,
            }],
        };
        let bytes = m.encode().unwrap();
        assert_eq!(SystemManifest::decode(&bytes).unwrap(), m);
        assert!(SystemManifest::decode(&[0xff; 3]).is_err());
        // A manifest cut anywhere is an error, not a shorter manifest.
        for cut in 0..bytes.len() {
            assert!(SystemManifest::decode(&bytes[..cut]).is_err(), "{cut}");
        }
    }
}
