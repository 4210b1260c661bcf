//! The vbd half of dom0's toolstack: writes each guest's virtual block devices into
//! xenstore (both halves, see [`dom0::vbd`]) once the guest and its block backend both
//! run, and removes the backend's half when the guest goes. Nodes live in dom0's own
//! store, so this is bookkeeping, not I/O.

use super::Backends;
use alloc::format;
use alloc::vec::Vec;
use bulkhead_runtime::println;
use dom0::vbd::{self, Vbd};
use dom0::Supervisor;
use protocol::manifest::{ManifestDisk, ManifestDomain};
use protocol::mgmt::{VbdCounters, VbdRow, VBD_COUNTERS_KEY};

/// What dom0 knows about disks: the system's host disks, each domain's description, and
/// the vbds already written.
#[derive(Default)]
pub struct Wiring {
    disks: Vec<ManifestDisk>,
    guests: Vec<ManifestDomain>,
    written: Vec<Vbd>,
}

impl Wiring {
    /// Sets the system's host disks (from the manifest).
    pub fn set_disks(&mut self, disks: &[ManifestDisk]) {
        self.disks = disks.to_vec();
    }

    /// Remembers how domain `d.name` was described (its vbds), replacing an older one.
    pub fn describe(&mut self, d: &ManifestDomain) {
        self.guests.retain(|g| g.name != d.name);
        if !d.vbds.is_empty() {
            self.guests.push(d.clone());
        }
    }
}

impl Backends {
    /// Why domain `d`'s vbds cannot be served, if they cannot ([`vbd::conflict`] with the
    /// system's disks and the descriptions of the domains for which `running` holds).
    pub fn vbd_conflict(
        &self,
        d: &ManifestDomain,
        running: impl Fn(&str) -> bool,
    ) -> Option<vbd::VbdConflict> {
        let users = self.vbds.guests.iter().filter(|g| running(&g.name));
        vbd::conflict(d, &self.vbds.disks, users)
    }

    /// Records a domain's description (call before it is first attached).
    pub fn describe(&mut self, d: &ManifestDomain) {
        self.vbds.describe(d);
        self.vifs.describe(d);
    }

    /// Sets the system's host disks.
    pub fn set_disks(&mut self, disks: &[ManifestDisk]) {
        self.vbds.set_disks(disks);
    }

    /// Writes the vbds of every attached guest whose backend is attached too and that
    /// are not written yet.
    pub(super) fn wire_vbds(&mut self, sup: &Supervisor) {
        let attached = |domid: u16| self.core.children.iter().any(|c| c.domid == domid);
        let id_of = |name: &str| {
            sup.domains()
                .iter()
                .find(|w| w.name == name && !w.is_gone())
                .map(|w| w.domid)
                .filter(|&id| attached(id))
        };
        let mut todo = Vec::new();
        for g in &self.vbds.guests {
            let Some(fe) = id_of(&g.name) else { continue };
            for v in vbd::vbds_of(g, fe, &self.vbds.disks, id_of) {
                let done = self.vbds.written.iter().any(|w| {
                    w.frontend == v.frontend && w.devid == v.devid && w.backend == v.backend
                });
                if !done {
                    todo.push(v);
                }
            }
        }
        for v in todo {
            let mut ok = true;
            for n in vbd::nodes(&v) {
                ok &= self
                    .core
                    .xs
                    .set_node(&n.path, n.value.as_bytes(), &n.perms)
                    .is_ok();
            }
            if ok {
                println!(
                    "vbd: d{} {} -> d{} disk {}{}",
                    v.frontend,
                    v.vdev,
                    v.backend,
                    v.disk,
                    if v.readonly { " (read-only)" } else { "" }
                );
            } else {
                println!(
                    "vbd: d{} {}: cannot write its xenstore nodes",
                    v.frontend, v.vdev
                );
            }
            self.vbds.written.push(v);
        }
    }

    /// Forgets the vbds of `domid` as a frontend (removing the backend's half, as Xen's
    /// toolstack does when a guest goes) and, unless `keep_served`, as a backend (its home,
    /// where that half lived, is removed by the caller; they are written again for its
    /// next incarnation). A backend restarting in place keeps them (its nodes stay), and so
    /// does a destroyed one (its closed nodes stay for the frontend to read).
    pub(super) fn unwire_vbds(&mut self, domid: u16, keep_served: bool) {
        let mut kept = Vec::new();
        for v in core::mem::take(&mut self.vbds.written) {
            if v.frontend == domid {
                let _ = self.core.xs.remove_node(&vbd::backend_dir(&v));
                let parent = format!("/local/domain/{}/backend/vbd/{}", v.backend, domid);
                if self.core.xs.children(&parent).is_some_and(|c| c.is_empty()) {
                    let _ = self.core.xs.remove_node(&parent);
                }
            } else if v.backend != domid || keep_served {
                kept.push(v);
            }
        }
        self.vbds.written = kept;
    }
}

impl Backends {
    /// The vbds domain `domid` uses or serves, as written, with both ends' states and the
    /// counters the backend published (read from dom0's own store).
    pub fn vbd_rows(&self, domid: u16) -> Vec<VbdRow> {
        let state = |path: alloc::string::String| {
            self.core
                .xs
                .read_node(&path)
                .and_then(|v| core::str::from_utf8(v).ok())
                .and_then(|s| s.trim().parse::<u8>().ok())
                .unwrap_or(0)
        };
        let mut rows: Vec<VbdRow> = self
            .vbds
            .written
            .iter()
            .filter(|v| v.frontend == domid || v.backend == domid)
            .map(|v| {
                let be = vbd::backend_dir(v);
                let counters = self
                    .core
                    .xs
                    .read_node(&format!("{be}/{VBD_COUNTERS_KEY}"))
                    .and_then(|t| core::str::from_utf8(t).ok())
                    .and_then(VbdCounters::decode);
                VbdRow {
                    frontend: v.frontend,
                    backend: v.backend,
                    devid: v.devid,
                    vdev: v.vdev.clone(),
                    disk: v.disk.clone(),
                    read_only: v.readonly,
                    backend_state: state(format!("{be}/state")),
                    frontend_state: state(format!("{}/state", vbd::frontend_dir(v))),
                    counters,
                }
            })
            .collect();
        rows.sort_by_key(|r| (r.frontend, r.devid));
        rows
    }
}
