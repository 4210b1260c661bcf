//! `ctl xenstore`: the host's view of dom0's xenstore ([`protocol::mgmt::XenstoreOp`]).
//!
//! dom0 acts with its own rights, through the same direct calls its toolstack uses, so a
//! write or removal fires every watch on the path as a toolstack change does (a backend
//! driver domain or a guest reacts to it exactly as on Xen). Listings are cut at
//! [`LIST_BUDGET`] bytes so the answer always fits one management frame.

use crate::xenstore::Xenstore;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::mgmt::xenstore::LIST_BUDGET;
use protocol::mgmt::{MgmtError, Response, XenstoreAnswer, XenstoreNode, XenstoreOp};

/// Longest path a client may name (xenstore's own limit on absolute paths).
const MAX_PATH: usize = 3072;

/// Carries out `op` on `xs`.
pub fn serve(xs: &mut Xenstore, op: &XenstoreOp) -> Result<Response, MgmtError> {
    let path = checked(op.path())?;
    match op {
        XenstoreOp::List { .. } => {
            if xs.read_node(path).is_none() {
                return Err(no_node(path));
            }
            let (nodes, truncated) = list(xs, path);
            Ok(Response::Xenstore(XenstoreAnswer::Nodes {
                nodes,
                truncated,
            }))
        }
        XenstoreOp::Read { .. } => xs
            .read_node(path)
            .map(|v| Response::Xenstore(XenstoreAnswer::Value(v.to_vec())))
            .ok_or_else(|| no_node(path)),
        XenstoreOp::Write { value, .. } => xs
            .set_node(path, value, &[])
            .map(|()| Response::Done)
            .map_err(|e| refused(path, e)),
        XenstoreOp::Remove { .. } => {
            if path == "/" {
                return Err(MgmtError::Refused {
                    why: String::from("xenstore: the root cannot be removed"),
                });
            }
            xs.remove_node(path)
                .map(|()| Response::Done)
                .map_err(|e| refused(path, e))
        }
    }
}

/// `path` if it is one a client may name: absolute, not too long, no empty component
/// (a trailing `/` is allowed only for the root).
fn checked(path: &str) -> Result<&str, MgmtError> {
    let ok = path.starts_with('/')
        && path.len() <= MAX_PATH
        && (path == "/" || path[1..].split('/').all(|c| !c.is_empty()))
        && !path.bytes().any(|b| b == 0);
    if ok {
        Ok(path)
    } else {
        Err(MgmtError::Refused {
            why: format!("xenstore: `{path}`: expected an absolute path such as /local/domain/1"),
        })
    }
}

fn no_node(path: &str) -> MgmtError {
    MgmtError::Refused {
        why: format!("xenstore: {path}: no such node (ENOENT)"),
    }
}

fn refused(path: &str, e: crate::xenstore::XsError) -> MgmtError {
    MgmtError::Refused {
        why: format!("xenstore: {path}: {e} ({})", e.name()),
    }
}

/// `root` and its subtree depth first, until [`LIST_BUDGET`] bytes of paths and values.
fn list(xs: &Xenstore, root: &str) -> (Vec<XenstoreNode>, bool) {
    let mut out = Vec::new();
    let mut spent = 0usize;
    // Paths still to visit, last one next; children are pushed in reverse to keep order.
    let mut todo: Vec<String> = alloc::vec![String::from(root)];
    while let Some(path) = todo.pop() {
        let Some(value) = xs.read_node(&path) else {
            continue;
        };
        let cost = path.len() + value.len();
        if spent + cost > LIST_BUDGET {
            return (out, true);
        }
        spent += cost;
        let value = value.to_vec();
        for child in xs.children(&path).unwrap_or_default().iter().rev() {
            todo.push(if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            });
        }
        out.push(XenstoreNode { path, value });
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xenstore::Quotas;

    fn store() -> Xenstore {
        let mut xs = Xenstore::new(Quotas::default());
        for (p, v) in [
            ("/local/domain/1/name", "rtos"),
            ("/local/domain/1/data/x", "1"),
            ("/local/domain/2/name", "linux"),
        ] {
            xs.set_node(p, v.as_bytes(), &[]).unwrap();
        }
        xs
    }

    fn nodes(r: Response) -> (Vec<(String, String)>, bool) {
        let Response::Xenstore(XenstoreAnswer::Nodes { nodes, truncated }) = r else {
            panic!("not a listing: {r:?}");
        };
        let pairs = nodes
            .into_iter()
            .map(|n| (n.path, String::from_utf8(n.value).unwrap()))
            .collect();
        (pairs, truncated)
    }

    fn op_list(path: &str) -> XenstoreOp {
        XenstoreOp::List { path: path.into() }
    }

    #[test]
    fn a_listing_is_depth_first_parents_before_children() {
        let mut xs = store();
        let (got, truncated) = nodes(serve(&mut xs, &op_list("/local/domain")).unwrap());
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/local/domain",
                "/local/domain/1",
                "/local/domain/1/name",
                "/local/domain/1/data",
                "/local/domain/1/data/x",
                "/local/domain/2",
                "/local/domain/2/name",
            ]
        );
        assert_eq!(got[2].1, "rtos");
        assert!(!truncated);
        let (all, _) = nodes(serve(&mut xs, &op_list("/")).unwrap());
        assert_eq!(all[0].0, "/");
        assert!(all.iter().any(|(p, _)| p == "/local/domain/2/name"));
    }

    #[test]
    fn read_write_remove_act_as_the_toolstack() {
        let mut xs = store();
        let read = |xs: &mut Xenstore, p: &str| serve(xs, &XenstoreOp::Read { path: p.into() });
        assert_eq!(
            read(&mut xs, "/local/domain/2/name"),
            Ok(Response::Xenstore(XenstoreAnswer::Value(b"linux".to_vec())))
        );
        let w = XenstoreOp::Write {
            path: "/local/domain/2/memory/target".into(),
            value: b"131072".to_vec(),
        };
        assert_eq!(serve(&mut xs, &w), Ok(Response::Done));
        assert_eq!(
            xs.read_node("/local/domain/2/memory/target"),
            Some(&b"131072"[..])
        );
        let rm = XenstoreOp::Remove {
            path: "/local/domain/2".into(),
        };
        assert_eq!(serve(&mut xs, &rm), Ok(Response::Done));
        assert!(xs.read_node("/local/domain/2/name").is_none());
        let Err(MgmtError::Refused { why }) = read(&mut xs, "/local/domain/2/name") else {
            panic!("a removed node reads");
        };
        assert!(why.contains("ENOENT"), "{why}");
    }

    #[test]
    fn bad_paths_and_the_root_are_refused_with_a_reason() {
        let mut xs = store();
        for bad in ["local/domain", "", "/local//domain", "/local/", "/a\0b"] {
            let r = serve(&mut xs, &op_list(bad));
            assert!(
                matches!(&r, Err(MgmtError::Refused { why }) if why.contains("absolute path")),
                "{bad:?}: {r:?}"
            );
        }
        let long = format!("/{}", "a".repeat(MAX_PATH));
        assert!(serve(&mut xs, &op_list(&long)).is_err());
        assert!(serve(&mut xs, &op_list("/nope")).is_err());
        let r = serve(&mut xs, &XenstoreOp::Remove { path: "/".into() });
        assert!(matches!(r, Err(MgmtError::Refused { .. })), "{r:?}");
        assert!(
            xs.read_node("/local/domain/1/name").is_some(),
            "nothing was lost"
        );
    }

    #[test]
    fn a_big_listing_is_cut_to_fit_one_frame() {
        let mut xs = Xenstore::new(Quotas::default());
        let value = "v".repeat(200);
        for i in 0..200 {
            xs.set_node(&format!("/big/n{i:03}"), value.as_bytes(), &[])
                .unwrap();
        }
        let r = serve(&mut xs, &op_list("/big")).unwrap();
        let frame = protocol::mgmt::encode(&r).unwrap();
        assert!(frame.len() <= protocol::mgmt::MAX_FRAME, "{}", frame.len());
        let (got, truncated) = nodes(r);
        assert!(truncated);
        assert!(got.len() > 10 && got.len() < 201, "{}", got.len());
        assert_eq!(got[1].0, "/big/n000", "in order up to the cut");
    }
}
