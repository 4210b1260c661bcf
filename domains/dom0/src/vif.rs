//! The toolstack half of a virtual network interface: the xenstore nodes dom0 writes so that
//! a frontend (stock Linux `xen-netfront`, or one of ours) and the network backend domain
//! (netdom) find each other, laid out as libxl lays them out:
//!
//! - `/local/domain/<be>/backend/vif/<fe>/<devid>/…`, owned by the backend, readable by
//!   the frontend: `frontend`, `frontend-id`, `online` (1), `handle` (the devid), `mac`,
//!   `bridge`, `type` (`vif`), `state` (1, Initialising);
//! - `/local/domain/<fe>/device/vif/<devid>/…`, owned by the frontend, readable by the
//!   backend: `backend`, `backend-id`, `handle`, `mac`, `state` (1).
//!
//! `state` comes last in each half: a watcher that sees it finds every other key. These
//! names are netdom's contract with dom0. Everything else about the connection (ring refs,
//! event channels, features) is negotiated by the two ends themselves.

use crate::vbd::NodeWrite;
use crate::xenstore::{Access, Perm};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::cap::{CapDetail, CapHandle, CapInfo, CapKind};
use protocol::manifest::{ManifestDomain, ManifestNic};

/// virtio device type of a network device.
const VIRTIO_NET: u32 = 1;

/// One virtual network interface to wire up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vif {
    /// The guest's domain id.
    pub frontend: u16,
    /// The network backend's domain id.
    pub backend: u16,
    /// Xen's device id (`handle`; Linux's `eth<devid>` for a guest's first vifs).
    pub devid: u32,
    /// The guest's MAC address.
    pub mac: [u8; 6],
    /// The bridge (the backend's switch) it joins.
    pub bridge: String,
}

/// The vifs of `guest` (domain id `frontend`) given the backends' domain ids by name
/// (`backend_id`); a vif whose backend does not run (yet) is left out (the caller retries
/// when the backend appears).
pub fn vifs_of(
    guest: &ManifestDomain,
    frontend: u16,
    backend_id: impl Fn(&str) -> Option<u16>,
) -> Vec<Vif> {
    guest
        .vifs
        .iter()
        .filter_map(|v| {
            Some(Vif {
                frontend,
                backend: backend_id(&v.backend)?,
                devid: v.devid,
                mac: v.mac,
                bridge: v.bridge.clone(),
            })
        })
        .collect()
}

/// The Device caps a network backend called `name` receives: every virtio-net device not
/// already assigned, when some NIC of the system names `name` as its backend (the tools
/// allow one network backend per system, so every network device is its uplink).
pub fn backend_devices(name: &str, nics: &[ManifestNic], caps: &[CapInfo]) -> Vec<CapHandle> {
    if !nics.iter().any(|n| n.backend == name) {
        return Vec::new();
    }
    caps.iter()
        .filter(|c| c.kind == CapKind::Device)
        .filter(|c| {
            matches!(
                c.detail,
                CapDetail::Device {
                    virtio_id: VIRTIO_NET,
                    assigned: None,
                    ..
                }
            )
        })
        .map(|c| c.handle)
        .collect()
}

/// `mac` as xenstore holds it: lowercase, colon-separated (what netfront parses).
pub fn mac_text(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = *mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Where the backend's half of `v` lives.
pub fn backend_dir(v: &Vif) -> String {
    format!(
        "/local/domain/{}/backend/vif/{}/{}",
        v.backend, v.frontend, v.devid
    )
}

/// Where the frontend's half of `v` lives.
pub fn frontend_dir(v: &Vif) -> String {
    format!("/local/domain/{}/device/vif/{}", v.frontend, v.devid)
}

/// The nodes to create for `v`, directories' own entries included, parents first.
pub fn nodes(v: &Vif) -> Vec<NodeWrite> {
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
    let mac = mac_text(&v.mac);
    let handle = format!("{}", v.devid);
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
    put(&be, "handle", handle.clone(), be_perms);
    put(&be, "mac", mac.clone(), be_perms);
    put(&be, "bridge", v.bridge.clone(), be_perms);
    put(&be, "type", "vif".into(), be_perms);
    put(&be, "state", "1".into(), be_perms);
    put(&fe, "", String::new(), fe_perms);
    put(&fe, "backend", be.clone(), fe_perms);
    put(&fe, "backend-id", format!("{}", v.backend), fe_perms);
    put(&fe, "handle", handle, fe_perms);
    put(&fe, "mac", mac, fe_perms);
    put(&fe, "state", "1".into(), fe_perms);
    out
}

#[cfg(test)]
#[path = "vif_tests.rs"]
mod tests;
