//! The toolstack half of a virtual block device: the xenstore nodes dom0 writes so that a
//! frontend (stock Linux `xen-blkfront`, or one of ours) and the block backend domain
//! (blkdom) find each other, laid out as Xen's toolstack lays them out:
//!
//! - `/local/domain/<be>/backend/vbd/<fe>/<devid>/…`, owned by the backend, readable by
//!   the frontend: `frontend`, `frontend-id`, `online`, `removable`, `bootable`, `state`
//!   (1, Initialising), `dev`, `type`, `mode`, `device-type`, `params`;
//! - `/local/domain/<fe>/device/vbd/<devid>/…`, owned by the frontend, readable by the
//!   backend: `backend`, `backend-id`, `state`, `virtual-device`, `device-type`.
//!
//! `params` names the disk by its virtio-blk serial, which is how blkdom tells its disks
//! apart. Everything else about the connection (ring refs, event channel, sizes, features)
//! is negotiated by the two ends themselves.

use crate::xenstore::{Access, Perm};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::cap::{CapDetail, CapHandle, CapInfo, CapKind};
use protocol::manifest::{ManifestDisk, ManifestDomain};

/// virtio device type of a block device.
const VIRTIO_BLOCK: u32 = 2;

/// One virtual block device to wire up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vbd {
    /// The guest's domain id.
    pub frontend: u16,
    /// The block backend's domain id.
    pub backend: u16,
    /// Xen's device number (`xvda` is 51712).
    pub devid: u32,
    /// The name the guest was promised (`xvda`).
    pub vdev: String,
    /// Read-only for the guest.
    pub readonly: bool,
    /// The disk's virtio-blk serial.
    pub disk: String,
}

/// The vbds of `guest` (domain id `frontend`) given the backends' domain ids by name
/// (`backend_id`); a vbd whose backend does not run (yet) or whose disk is unknown is
/// left out (the caller retries when the backend appears).
pub fn vbds_of(
    guest: &ManifestDomain,
    frontend: u16,
    disks: &[ManifestDisk],
    backend_id: impl Fn(&str) -> Option<u16>,
) -> Vec<Vbd> {
    guest
        .vbds
        .iter()
        .filter_map(|v| {
            let disk = disks.iter().find(|d| d.index == v.disk)?;
            Some(Vbd {
                frontend,
                backend: backend_id(&v.backend)?,
                devid: v.devid,
                vdev: v.vdev.clone(),
                readonly: v.read_only || disk.read_only,
                disk: disk.serial.clone(),
            })
        })
        .collect()
}

/// Why a created domain's vbd cannot be served (each names the vbd by its `vdev`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VbdConflict {
    /// Its disk index is not one of the system's disks.
    UnknownDisk {
        /// The guest's device name.
        vdev: String,
        /// The index it named.
        disk: u32,
    },
    /// It names another backend than the one serving the disk.
    OtherBackend {
        /// The guest's device name.
        vdev: String,
        /// The disk's host file.
        disk: String,
        /// The backend serving it.
        serving: String,
        /// The backend the vbd named.
        asked: String,
    },
    /// A running domain uses the disk in a mode that excludes this one.
    InUse {
        /// The guest's device name.
        vdev: String,
        /// The disk's host file.
        disk: String,
        /// The domain using it.
        user: String,
        /// Its device name there.
        user_vdev: String,
        /// Whether that use is read-only.
        user_read_only: bool,
    },
}

impl core::fmt::Display for VbdConflict {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownDisk { vdev, disk } => {
                write!(f, "{vdev}: disk #{disk} is not one of the system's disks")
            }
            Self::OtherBackend {
                vdev,
                disk,
                serving,
                asked,
            } => write!(f, "{vdev}: {disk} is served by {serving}, not {asked}"),
            Self::InUse {
                vdev,
                disk,
                user,
                user_vdev,
                user_read_only,
            } => {
                let mode = if *user_read_only {
                    "read-only"
                } else {
                    "read-write"
                };
                write!(
                    f,
                    "{vdev}: {disk} is in use by {user} ({user_vdev}, {mode}); a disk is shared only read-only"
                )
            }
        }
    }
}

/// Why `d`'s vbds cannot be served, if they cannot: a disk the system was not booted with,
/// another backend than the disk's, or a disk one of `users` (the running domains'
/// descriptions; `d`'s namesake is skipped) uses in a conflicting mode — a disk has one
/// writer, or any number of readers.
pub fn conflict<'a>(
    d: &ManifestDomain,
    disks: &[ManifestDisk],
    users: impl Iterator<Item = &'a ManifestDomain> + Clone,
) -> Option<VbdConflict> {
    for v in &d.vbds {
        let Some(disk) = disks.iter().find(|k| k.index == v.disk) else {
            return Some(VbdConflict::UnknownDisk {
                vdev: v.vdev.clone(),
                disk: v.disk,
            });
        };
        if disk.backend != v.backend {
            return Some(VbdConflict::OtherBackend {
                vdev: v.vdev.clone(),
                disk: disk.name.clone(),
                serving: disk.backend.clone(),
                asked: v.backend.clone(),
            });
        }
        let reads_only = |read_only: bool| read_only || disk.read_only;
        for g in users.clone().filter(|g| g.name != d.name) {
            let clash = g.vbds.iter().find(|u| {
                u.disk == v.disk && !(reads_only(u.read_only) && reads_only(v.read_only))
            });
            if let Some(u) = clash {
                return Some(VbdConflict::InUse {
                    vdev: v.vdev.clone(),
                    disk: disk.name.clone(),
                    user: g.name.clone(),
                    user_vdev: u.vdev.clone(),
                    user_read_only: reads_only(u.read_only),
                });
            }
        }
    }
    None
}

/// The Device caps a block backend called `name` receives: every virtio-blk device not
/// already assigned, when some disk of the system names `name` as its backend (the tools
/// allow one block backend per system, so every block device is its).
pub fn backend_devices(name: &str, disks: &[ManifestDisk], caps: &[CapInfo]) -> Vec<CapHandle> {
    if !disks.iter().any(|d| d.backend == name) {
        return Vec::new();
    }
    caps.iter()
        .filter(|c| c.kind == CapKind::Device)
        .filter(|c| {
            matches!(
                c.detail,
                CapDetail::Device {
                    virtio_id: VIRTIO_BLOCK,
                    assigned: None,
                    ..
                }
            )
        })
        .map(|c| c.handle)
        .collect()
}

/// One node to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeWrite {
    /// Absolute path.
    pub path: String,
    /// Value.
    pub value: String,
    /// Owner first (Xen's convention), then who else may read.
    pub perms: [Perm; 2],
}

/// Where the backend's half of `v` lives.
pub fn backend_dir(v: &Vbd) -> String {
    format!(
        "/local/domain/{}/backend/vbd/{}/{}",
        v.backend, v.frontend, v.devid
    )
}

/// Where the frontend's half of `v` lives.
pub fn frontend_dir(v: &Vbd) -> String {
    format!("/local/domain/{}/device/vbd/{}", v.frontend, v.devid)
}

/// The nodes to create for `v`, directories' own entries included, parents first.
pub fn nodes(v: &Vbd) -> Vec<NodeWrite> {
    let be = backend_dir(v);
    let fe = frontend_dir(v);
    let be_perms = [
        Perm::new(v.backend, Access::None),
        Perm::new(v.frontend, Access::Read),
    ];
    let fe_perms = [
        Perm::new(v.frontend, Access::None),
        Perm::new(v.backend, Access::Read),
    ];
    let mut out = Vec::new();
    let mut put = |dir: &str, key: &str, value: String, perms: [Perm; 2]| {
        let path = if key.is_empty() {
            String::from(dir)
        } else {
            format!("{dir}/{key}")
        };
        out.push(NodeWrite { path, value, perms });
    };
    put(&be, "", String::new(), be_perms);
    put(&be, "frontend", fe.clone(), be_perms);
    put(&be, "frontend-id", format!("{}", v.frontend), be_perms);
    put(&be, "online", "1".into(), be_perms);
    put(&be, "removable", "0".into(), be_perms);
    put(&be, "bootable", "1".into(), be_perms);
    put(&be, "dev", v.vdev.clone(), be_perms);
    put(&be, "type", "phy".into(), be_perms);
    let mode = if v.readonly { "r" } else { "w" };
    put(&be, "mode", mode.into(), be_perms);
    put(&be, "device-type", "disk".into(), be_perms);
    put(&be, "params", v.disk.clone(), be_perms);
    put(&be, "state", "1".into(), be_perms);
    put(&fe, "", String::new(), fe_perms);
    put(&fe, "backend", be.clone(), fe_perms);
    put(&fe, "backend-id", format!("{}", v.backend), fe_perms);
    put(&fe, "virtual-device", format!("{}", v.devid), fe_perms);
    put(&fe, "device-type", "disk".into(), fe_perms);
    put(&fe, "state", "1".into(), fe_perms);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::cap::Rights;
    use protocol::manifest::{Action, ManifestVbd};

    fn disk(index: u32, serial: &str, read_only: bool) -> ManifestDisk {
        ManifestDisk {
            index,
            serial: serial.into(),
            read_only,
            sectors: 2048,
            backend: "blkdom".into(),
            name: "disk.img".into(),
        }
    }

    fn guest(vbds: Vec<ManifestVbd>) -> ManifestDomain {
        ManifestDomain {
            name: "linux".into(),
            image: "debian-linux".into(),
            ramdisk: None,
            mem_mib: 64,
            vcpus: Vec::new(),
            auto_cpus: false,
            cmdline: String::new(),
            depends_on: Vec::new(),
            on_poweroff: Action::Destroy,
            on_reboot: Action::Restart,
            on_crash: Action::Restart,
            vbds,
            vifs: Vec::new(),
            devices: Vec::new(),
            device_tree: None,
            pmu: protocol::control::PmuAccess::Off,
        }
    }

    fn vbd(disk: u32, vdev: &str, devid: u32, read_only: bool) -> ManifestVbd {
        ManifestVbd {
            disk,
            vdev: vdev.into(),
            devid,
            read_only,
            backend: "blkdom".into(),
            discard: false,
        }
    }

    fn named(name: &str, vbds: Vec<ManifestVbd>) -> ManifestDomain {
        ManifestDomain {
            name: name.into(),
            ..guest(vbds)
        }
    }

    #[test]
    fn a_created_guest_gets_a_disk_only_in_a_mode_its_users_allow() {
        let disks = [disk(0, "bkd0", false), disk(1, "bkd1", true)];
        let a = named("a", alloc::vec![vbd(0, "xvda", 51712, false)]);
        let r = named("r", alloc::vec![vbd(0, "xvdb", 51728, true)]);
        let fresh = |vbds| named("new", vbds);
        // Nobody uses it: either mode.
        assert_eq!(
            conflict(
                &fresh(alloc::vec![vbd(0, "xvda", 51712, false)]),
                &disks,
                [].iter()
            ),
            None
        );
        // A writer excludes everyone; readers exclude a writer.
        let e = conflict(
            &fresh(alloc::vec![vbd(0, "xvda", 51712, true)]),
            &disks,
            [&a].into_iter(),
        )
        .unwrap();
        assert_eq!(
            e.to_string(),
            "xvda: disk.img is in use by a (xvda, read-write); a disk is shared only read-only"
        );
        let e = conflict(
            &fresh(alloc::vec![vbd(0, "xvdc", 51744, false)]),
            &disks,
            [&r].into_iter(),
        )
        .unwrap();
        assert_eq!(
            e.to_string(),
            "xvdc: disk.img is in use by r (xvdb, read-only); a disk is shared only read-only"
        );
        assert_eq!(
            conflict(
                &fresh(alloc::vec![vbd(0, "xvdc", 51744, true)]),
                &disks,
                [&r].into_iter()
            ),
            None
        );
        // A disk the host opened read-only is read-only for every vbd of it.
        let ro = named("ro", alloc::vec![vbd(1, "xvda", 51712, false)]);
        assert_eq!(
            conflict(
                &fresh(alloc::vec![vbd(1, "xvda", 51712, false)]),
                &disks,
                [&ro].into_iter()
            ),
            None
        );
        // Its own namesake (a restart of the same domain) does not count.
        assert_eq!(
            conflict(&named("a", a.vbds.clone()), &disks, [&a].into_iter()),
            None
        );
        // Unknown disk, other backend.
        let e = conflict(
            &fresh(alloc::vec![vbd(7, "xvda", 51712, false)]),
            &disks,
            [].iter(),
        )
        .unwrap();
        assert_eq!(
            e.to_string(),
            "xvda: disk #7 is not one of the system's disks"
        );
        let mut other = vbd(0, "xvda", 51712, false);
        other.backend = "blk2".into();
        let e = conflict(&fresh(alloc::vec![other]), &disks, [].iter()).unwrap();
        assert_eq!(
            e.to_string(),
            "xvda: disk.img is served by blkdom, not blk2"
        );
    }

    #[test]
    fn a_guests_vbds_name_their_disk_and_backend() {
        let disks = [disk(0, "bkd0", false), disk(1, "bkd1", true)];
        let g = guest(alloc::vec![
            vbd(0, "xvda", 51712, false),
            vbd(1, "xvdb", 51728, false),
            vbd(0, "xvdc", 51744, true),
        ]);
        let got = vbds_of(&g, 4, &disks, |n| (n == "blkdom").then_some(2));
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].disk, "bkd0");
        assert!(!got[0].readonly);
        // A read-only disk makes every vbd of it read-only.
        assert_eq!(got[1].disk, "bkd1");
        assert!(got[1].readonly);
        assert!(got[2].readonly);
        assert!(got.iter().all(|v| v.backend == 2 && v.frontend == 4));
        // No backend running yet: nothing to write.
        assert!(vbds_of(&g, 4, &disks, |_| None).is_empty());
    }

    fn device(index: u16, virtio_id: u32, assigned: Option<u16>) -> CapInfo {
        CapInfo {
            handle: CapHandle {
                index,
                generation: 1,
            },
            kind: CapKind::Device,
            rights: Rights::READ | Rights::WRITE | Rights::DELEGATE,
            label: String::new(),
            detail: CapDetail::Device {
                mmio_base: 0x0a00_0000 + u64::from(index) * 0x200,
                mmio_size: 0x200,
                irqs: alloc::vec![48 + u32::from(index)],
                virtio_id,
                assigned,
            },
        }
    }

    #[test]
    fn the_block_backend_gets_every_free_block_device() {
        let caps = [
            device(1, 2, None),
            device(2, 3, None),
            device(3, 2, Some(5)),
            device(4, 2, None),
        ];
        let disks = [disk(0, "bkd0", false)];
        let got = backend_devices("blkdom", &disks, &caps);
        assert_eq!(got.iter().map(|h| h.index).collect::<Vec<_>>(), [1, 4]);
        assert!(backend_devices("rtos", &disks, &caps).is_empty());
        assert!(backend_devices("blkdom", &[], &caps).is_empty());
    }

    fn xvda() -> Vbd {
        Vbd {
            frontend: 3,
            backend: 2,
            devid: 51712,
            vdev: "xvda".into(),
            readonly: true,
            disk: "bkd0".into(),
        }
    }

    fn value<'a>(n: &'a [NodeWrite], path: &str) -> &'a str {
        &n.iter().find(|w| w.path == path).expect(path).value
    }

    #[test]
    fn both_halves_point_at_each_other() {
        let n = nodes(&xvda());
        let be = "/local/domain/2/backend/vbd/3/51712";
        let fe = "/local/domain/3/device/vbd/51712";
        assert_eq!(value(&n, &format!("{be}/frontend")), fe);
        assert_eq!(value(&n, &format!("{be}/frontend-id")), "3");
        assert_eq!(value(&n, &format!("{fe}/backend")), be);
        assert_eq!(value(&n, &format!("{fe}/backend-id")), "2");
        assert_eq!(value(&n, &format!("{fe}/virtual-device")), "51712");
        assert_eq!(value(&n, &format!("{be}/mode")), "r");
        assert_eq!(value(&n, &format!("{be}/params")), "bkd0");
        assert_eq!(value(&n, &format!("{be}/state")), "1");
        assert_eq!(value(&n, &format!("{fe}/state")), "1");
    }

    #[test]
    fn each_half_is_owned_by_its_end_and_readable_by_the_other() {
        for w in nodes(&xvda()) {
            let (owner, reader) = if w.path.starts_with("/local/domain/2/") {
                (2, 3)
            } else {
                (3, 2)
            };
            assert_eq!(w.perms[0], Perm::new(owner, Access::None), "{}", w.path);
            assert_eq!(w.perms[1], Perm::new(reader, Access::Read), "{}", w.path);
        }
    }

    #[test]
    fn state_is_written_last_in_each_half() {
        // A watcher that sees `state` must find every other key already there.
        let n = nodes(&xvda());
        let be_state = n.iter().position(|w| w.path.ends_with("3/51712/state"));
        let be_last = n.iter().rposition(|w| w.path.contains("/backend/vbd/"));
        assert_eq!(be_state, be_last);
        let fe_state = n.iter().rposition(|w| w.path.ends_with("vbd/51712/state"));
        assert_eq!(fe_state, Some(n.len() - 1));
    }
}
