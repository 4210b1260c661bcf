//! The vif half of dom0's toolstack: writes each guest's virtual network interfaces into
//! xenstore (both halves, see [`dom0::vif`]) once the guest and its network backend both
//! run, and removes the backend's half when the guest goes. Nodes live in dom0's own
//! store, so this is bookkeeping, not I/O.

use super::Backends;
use alloc::format;
use alloc::vec::Vec;
use bulkhead_runtime::println;
use dom0::vif::{self, Vif};
use dom0::Supervisor;
use protocol::manifest::ManifestDomain;
use protocol::mgmt::{UplinkCounters, VifCounters, VifRow, UPLINK_COUNTERS_KEY, VIF_COUNTERS_KEY};

/// What dom0 knows about vifs: each domain's description and the vifs already written.
#[derive(Default)]
pub struct Wiring {
    guests: Vec<ManifestDomain>,
    written: Vec<Vif>,
}

impl Wiring {
    /// Remembers how domain `d.name` was described (its vifs), replacing an older one.
    pub fn describe(&mut self, d: &ManifestDomain) {
        self.guests.retain(|g| g.name != d.name);
        if !d.vifs.is_empty() {
            self.guests.push(d.clone());
        }
    }

    /// Whether domain `name` was described with vifs.
    pub fn has_vifs(&self, name: &str) -> bool {
        self.guests.iter().any(|g| g.name == name)
    }
}

impl Backends {
    /// Writes the vifs of every attached guest whose backend is attached too and that are
    /// not written yet.
    pub(super) fn wire_vifs(&mut self, sup: &Supervisor) {
        let attached = |domid: u16| self.core.children.iter().any(|c| c.domid == domid);
        let id_of = |name: &str| {
            sup.domains()
                .iter()
                .find(|w| w.name == name && !w.is_gone())
                .map(|w| w.domid)
                .filter(|&id| attached(id))
        };
        let mut todo = Vec::new();
        for g in &self.vifs.guests {
            let Some(fe) = id_of(&g.name) else { continue };
            for v in vif::vifs_of(g, fe, id_of) {
                let done = self.vifs.written.iter().any(|w| {
                    w.frontend == v.frontend && w.devid == v.devid && w.backend == v.backend
                });
                if !done {
                    todo.push(v);
                }
            }
        }
        for v in todo {
            let mut ok = true;
            for n in vif::nodes(&v) {
                ok &= self
                    .core
                    .xs
                    .set_node(&n.path, n.value.as_bytes(), &n.perms)
                    .is_ok();
            }
            if ok {
                println!(
                    "vif: d{} vif {} ({}) -> d{} bridge {}",
                    v.frontend,
                    v.devid,
                    vif::mac_text(&v.mac),
                    v.backend,
                    v.bridge
                );
            } else {
                println!(
                    "vif: d{} vif {}: cannot write its xenstore nodes",
                    v.frontend, v.devid
                );
            }
            self.vifs.written.push(v);
        }
    }

    /// Forgets the vifs of `domid` as a frontend (removing the backend's half, as Xen's
    /// toolstack does when a guest goes) and as a backend (its home, where that half
    /// lived, is removed by the caller; they are written again for its next incarnation),
    /// unless `keep_served`: a network backend restarted in place keeps the vifs it serves,
    /// nodes and all (see [`dom0::restart`]), so they stay written and are not rewritten;
    /// its new instance resumes them. A destroyed one keeps them too: their closed nodes
    /// stay for the frontends to read.
    pub(super) fn unwire_vifs(&mut self, domid: u16, keep_served: bool) {
        let mut kept = Vec::new();
        for v in core::mem::take(&mut self.vifs.written) {
            if v.frontend == domid {
                let _ = self.core.xs.remove_node(&vif::backend_dir(&v));
                let parent = format!("/local/domain/{}/backend/vif/{}", v.backend, domid);
                if self.core.xs.children(&parent).is_some_and(|c| c.is_empty()) {
                    let _ = self.core.xs.remove_node(&parent);
                }
            } else if v.backend != domid || keep_served {
                kept.push(v);
            }
        }
        self.vifs.written = kept;
    }

    /// The uplink counters domain `domid` published as a network backend (read from dom0's
    /// own store; `None` if it published none or they do not parse).
    pub fn uplink(&self, domid: u16) -> Option<UplinkCounters> {
        let path = format!("/local/domain/{domid}/{UPLINK_COUNTERS_KEY}");
        let text = self.core.xs.read_node(&path)?;
        UplinkCounters::decode(core::str::from_utf8(text).ok()?)
    }

    /// The vifs domain `domid` uses or serves, as written, with both ends' states and the
    /// counters the backend published (read from dom0's own store).
    pub fn vif_rows(&self, domid: u16) -> Vec<VifRow> {
        let read = |path: &str| {
            self.core
                .xs
                .read_node(path)
                .and_then(|v| core::str::from_utf8(v).ok())
        };
        let state = |path: &str| {
            read(path)
                .and_then(|s| s.trim().parse::<u8>().ok())
                .unwrap_or(0)
        };
        let mut rows: Vec<VifRow> = self
            .vifs
            .written
            .iter()
            .filter(|v| v.frontend == domid || v.backend == domid)
            .map(|v| {
                let be = vif::backend_dir(v);
                VifRow {
                    frontend: v.frontend,
                    backend: v.backend,
                    devid: v.devid,
                    mac: vif::mac_text(&v.mac),
                    bridge: v.bridge.clone(),
                    backend_state: state(&format!("{be}/state")),
                    frontend_state: state(&format!("{}/state", vif::frontend_dir(v))),
                    counters: read(&format!("{be}/{VIF_COUNTERS_KEY}"))
                        .and_then(VifCounters::decode),
                }
            })
            .collect();
        rows.sort_by_key(|r| (r.frontend, r.devid));
        rows
    }
}
