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

use crate::xenstore::Xenstore;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The backend kinds whose nodes a restart in place keeps.
pub const KEPT_BACKENDS: &[&str] = &["vbd", "vif"];

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
