//! What of a domain's xenstore home survives its restart in place (DESIGN §6.2).
//!
//! A restarted domain gets a fresh home, as xl gives one, except for the connections it
//! serves as a backend: `backend/vbd/...` and `backend/vif/...` stay exactly as they were
//! (their `state` included), because the frontends using those devices stay Connected
//! across the restart and the new instance finds them there, re-maps their rings, re-binds
//! their channels and takes up what was in flight (blkdom replays it, netdom answers the
//! packets it cannot prove sent and re-uses the posted receive buffers). Removing and
//! rewriting those nodes would fire the frontends' watches on the backend's `state` and
//! make them see it leave Connected. Any other kind under `backend` is removed.
//!
//! When dom0 gives up on a backend instead (it holds it after a crash loop or a failed
//! restart, or destroys it), those frontends would wait for ever on a Connected backend
//! that will never answer. dom0 then does what the backend would have done on its way
//! out, as Xen's toolstack asks a backend to when it removes a device: it moves each of
//! their backend `state` nodes through Closing (5) to Closed (6) ([`closing_writes`]).
//! Stock Linux takes that as the backend going away: `xen-blkfront` stops its queues and
//! marks the disk dead (new I/O fails at once, the disk's size reads 0) and closes its
//! end; `xen-netfront` closes its end. On a destroy the nodes are kept ([`gone_removals`])
//! so the frontends can read the Closed state; they go with the frontend's device.

use crate::xenstore::Xenstore;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::xen::xenbus::XenbusState;

/// The backend kinds whose nodes a restart in place keeps.
pub const KEPT_BACKENDS: &[&str] = &["vbd", "vif"];

/// The `state` nodes of the connections `domid` serves as a block or network backend
/// (`backend/{vbd,vif}/<frontend>/<devid>/state`), in tree order.
pub fn served_states(xs: &Xenstore, domid: u16) -> Vec<String> {
    let mut out = Vec::new();
    for kind in KEPT_BACKENDS {
        let dir = format!("/local/domain/{domid}/backend/{kind}");
        for fe in xs.children(&dir).unwrap_or_default() {
            let fe_dir = format!("{dir}/{fe}");
            for dev in xs.children(&fe_dir).unwrap_or_default() {
                let state = format!("{fe_dir}/{dev}/state");
                if xs.read_node(&state).is_some() {
                    out.push(state);
                }
            }
        }
    }
    out
}

/// What dom0 writes when it gives up on backend `domid`: each of its connections not
/// Closed yet goes to Closing, then Closed (a frontend that reads only the last value
/// takes Closed as a missed Closing, as Linux's do), in order.
pub fn closing_writes(xs: &Xenstore, domid: u16) -> Vec<(String, XenbusState)> {
    let mut out = Vec::new();
    for state in served_states(xs, domid) {
        let now = xs.read_node(&state).map(XenbusState::parse);
        if now == Some(XenbusState::Closed) {
            continue;
        }
        if now != Some(XenbusState::Closing) {
            out.push((state.clone(), XenbusState::Closing));
        }
        out.push((state, XenbusState::Closed));
    }
    out
}

/// The paths to remove from `domid`'s home when it is destroyed: the whole home, unless it
/// served block or network connections, whose (Closed) nodes stay for their frontends to
/// read, as on a restart ([`restart_removals`]).
pub fn gone_removals(xs: &Xenstore, domid: u16) -> Vec<String> {
    if served_states(xs, domid).is_empty() {
        let home = format!("/local/domain/{domid}");
        return if xs.children(&home).is_some() {
            alloc::vec![home]
        } else {
            Vec::new()
        };
    }
    restart_removals(xs, domid)
}

/// The paths to remove from `domid`'s home when it restarts in place, in order:
/// every child of the home but `backend`, and every kind under `backend` but the
/// [`KEPT_BACKENDS`] (and `backend` itself if nothing is kept under it).
pub fn restart_removals(xs: &Xenstore, domid: u16) -> Vec<String> {
    let home = format!("/local/domain/{domid}");
    let mut out = Vec::new();
    for child in xs.children(&home).unwrap_or_default() {
        if child != "backend" {
            out.push(format!("{home}/{child}"));
        }
    }
    let backend = format!("{home}/backend");
    if let Some(kinds) = xs.children(&backend) {
        let mut kept = false;
        for kind in kinds {
            if KEPT_BACKENDS.contains(&kind.as_str()) {
                kept = true;
            } else {
                out.push(format!("{backend}/{kind}"));
            }
        }
        if !kept {
            out.push(backend);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xenstore::Quotas;

    fn store(paths: &[&str]) -> Xenstore {
        let mut xs = Xenstore::new(Quotas::default());
        for p in paths {
            xs.set_node(p, b"1", &[]).unwrap();
        }
        xs
    }

    #[test]
    fn a_backend_keeps_its_vbds_and_vifs_and_nothing_else() {
        let xs = store(&[
            "/local/domain/1/name",
            "/local/domain/1/control/shutdown",
            "/local/domain/1/backend/vbd/2/51712/state",
            "/local/domain/1/backend/vif/2/0/state",
            "/local/domain/1/backend/vif/2/0/mac",
            "/local/domain/1/backend/vscsi/2/0/state",
            "/local/domain/2/device/vbd/51712/state",
        ]);
        let mut got = restart_removals(&xs, 1);
        got.sort();
        assert_eq!(
            got,
            [
                "/local/domain/1/backend/vscsi",
                "/local/domain/1/control",
                "/local/domain/1/name",
            ]
        );
    }

    #[test]
    fn a_backend_given_up_on_closes_every_connection_it_serves() {
        let mut xs = store(&[
            "/local/domain/1/name",
            "/local/domain/1/backend/vbd/2/51712/params",
            "/local/domain/1/backend/vbd/3/51712/state",
            "/local/domain/1/backend/vbd/3/51728/state",
            "/local/domain/1/backend/vif/2/0/state",
            "/local/domain/1/backend/vscsi/2/0/state",
            "/local/domain/2/device/vbd/51712/state",
        ]);
        xs.set_node("/local/domain/1/backend/vbd/3/51728/state", b"6", &[])
            .unwrap();
        xs.set_node("/local/domain/1/backend/vif/2/0/state", b"5\n", &[])
            .unwrap();
        let got = closing_writes(&xs, 1);
        let want: Vec<(String, XenbusState)> = alloc::vec![
            // Connected (1 here): Closing, then Closed.
            (
                "/local/domain/1/backend/vbd/3/51712/state".into(),
                XenbusState::Closing
            ),
            (
                "/local/domain/1/backend/vbd/3/51712/state".into(),
                XenbusState::Closed
            ),
            // Already Closing: Closed; already Closed: nothing. No state node (the vbd of
            // d2 was being written), another kind, a frontend's node: untouched.
            (
                "/local/domain/1/backend/vif/2/0/state".into(),
                XenbusState::Closed
            ),
        ];
        assert_eq!(got, want);
        for (path, value) in &got {
            xs.set_node(path, value.as_str().as_bytes(), &[]).unwrap();
        }
        assert!(
            closing_writes(&xs, 1).is_empty(),
            "closing twice writes nothing"
        );
        assert!(
            closing_writes(&xs, 2).is_empty(),
            "a frontend serves nothing"
        );
    }

    #[test]
    fn a_destroyed_backend_leaves_its_closed_connections_for_the_frontends() {
        let xs = store(&[
            "/local/domain/1/name",
            "/local/domain/1/backend/vbd/3/51712/state",
            "/local/domain/3/name",
            "/local/domain/3/device/vbd/51712/state",
        ]);
        assert_eq!(gone_removals(&xs, 1), ["/local/domain/1/name"]);
        assert_eq!(gone_removals(&xs, 3), ["/local/domain/3"]);
        assert!(gone_removals(&xs, 9).is_empty());
    }

    #[test]
    fn a_network_backend_keeps_its_vifs() {
        let xs = store(&[
            "/local/domain/4/name",
            "/local/domain/4/data/x",
            "/local/domain/4/backend/vif/2/0/state",
            "/local/domain/4/backend/vif/3/0/state",
        ]);
        let mut got = restart_removals(&xs, 4);
        got.sort();
        assert_eq!(got, ["/local/domain/4/data", "/local/domain/4/name"]);
    }

    #[test]
    fn a_domain_serving_nothing_kept_loses_its_whole_home_content() {
        let xs = store(&[
            "/local/domain/3/name",
            "/local/domain/3/backend/console/2/0/state",
        ]);
        let mut got = restart_removals(&xs, 3);
        got.sort();
        assert_eq!(
            got,
            [
                "/local/domain/3/backend",
                "/local/domain/3/backend/console",
                "/local/domain/3/name",
            ]
        );
        assert!(
            restart_removals(&xs, 9).is_empty(),
            "no home, nothing to do"
        );
    }
}
