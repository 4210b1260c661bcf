//! Watches and the changes that fire them.
//!
//! A change is recorded with the permissions needed to decide, per watcher, whether it may
//! learn of it (xenstored's rule: the watcher can read the node, or read its parent, or could
//! read it before a permission change). Changes made in a transaction are recorded the same
//! way and matched against the watches that exist when it commits.

use super::path::{is_child, parent};
use super::perms::{Perm, Who};
use super::quota::ENTRY_OVERHEAD;
use alloc::string::String;
use alloc::vec::Vec;

/// One registered watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// Canonical path watched (absolute, or an `@` special).
    pub path: String,
    /// The client's token, echoed in every event.
    pub token: Vec<u8>,
    /// Bytes of `path` to strip when reporting (the home prefix of a relative watch, else 0).
    pub prefix: usize,
}

impl Watch {
    /// How an absolute event path is reported to the client: relative to its home if the
    /// watch was registered relative.
    pub fn reported<'a>(&self, abs: &'a str) -> &'a str {
        abs.get(self.prefix..).unwrap_or(abs)
    }
}

/// Something that happened to the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A node was created, written or had its permissions changed. Fires watches on the path
    /// and its ancestors; visible to whoever can read any of `readable`.
    Modified {
        /// The node.
        path: String,
        /// Permission sets of which any one granting read suffices (node, old, parent).
        readable: Vec<Vec<Perm>>,
    },
    /// A subtree was removed. Fires watches on the root and its ancestors (reporting the root)
    /// and watches inside the subtree (reporting their own path).
    Removed {
        /// The node named in the RM.
        root: String,
        /// Every removed node with the permissions it had.
        nodes: Vec<(String, Vec<Perm>)>,
        /// The permissions of the root's parent.
        above: Vec<Perm>,
    },
    /// A special event (`@introduceDomain`, `@releaseDomain`): fires exact watches only.
    Special {
        /// The special path.
        path: &'static str,
        /// The special node's permissions.
        perms: Vec<Perm>,
    },
}

impl Change {
    /// Heap the change holds while a transaction keeps it for its commit.
    pub fn heap_bytes(&self) -> usize {
        let perms = |p: &[Perm]| core::mem::size_of_val(p) + ENTRY_OVERHEAD;
        ENTRY_OVERHEAD
            + match self {
                Self::Modified { path, readable } => {
                    path.len() + readable.iter().map(|p| perms(p)).sum::<usize>()
                }
                Self::Removed { root, nodes, above } => {
                    root.len()
                        + perms(above)
                        + nodes
                            .iter()
                            .map(|(n, p)| n.len() + perms(p) + ENTRY_OVERHEAD)
                            .sum::<usize>()
                }
                Self::Special { perms: p, .. } => perms(p),
            }
    }

    /// The absolute event path `watch` (owned by `who`) is sent for this change, if any.
    pub fn event_path<'a>(&'a self, watch: &'a Watch, who: Who) -> Option<&'a str> {
        let visible = |sets: &[&[Perm]]| who.privileged || sets.iter().any(|p| who.can_read(p));
        match self {
            Self::Modified { path, readable } => {
                let sets: Vec<&[Perm]> = readable.iter().map(Vec::as_slice).collect();
                (is_child(path, &watch.path) && visible(&sets)).then_some(path.as_str())
            }
            Self::Removed { root, nodes, above } => {
                let perms_of = |p: &str| {
                    nodes
                        .iter()
                        .find(|(n, _)| n == p)
                        .map_or(above.as_slice(), |(_, perms)| perms.as_slice())
                };
                if is_child(root, &watch.path) {
                    visible(&[perms_of(root), above]).then_some(root.as_str())
                } else if is_child(&watch.path, root) {
                    // The deepest removed node at or above the watched path.
                    let deepest = nodes
                        .iter()
                        .filter(|(n, _)| is_child(&watch.path, n))
                        .max_by_key(|(n, _)| n.len())
                        .map_or(root.as_str(), |(n, _)| n.as_str());
                    let own = perms_of(deepest);
                    let up = if deepest == root.as_str() {
                        above.as_slice()
                    } else {
                        perms_of(parent(deepest))
                    };
                    visible(&[own, up]).then_some(watch.path.as_str())
                } else {
                    None
                }
            }
            Self::Special { path, perms } => {
                (watch.path == *path && visible(&[perms])).then_some(*path)
            }
        }
    }
}
