//! `ctl xenstore`: the host reads and changes dom0's xenstore as `xenstore-ls`,
//! `xenstore-read`, `xenstore-write` and `xenstore-rm` do inside dom0 on Xen. dom0 acts
//! with its own (toolstack) rights, so a write fires the watches a guest or driver domain
//! set, exactly as a toolstack write does.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Bytes of node paths and values one [`XenstoreAnswer::Nodes`] carries at most, so the
/// answer fits a management frame ([`super::MAX_FRAME`]) with room for its encoding.
pub const LIST_BUDGET: usize = 12 * 1024;

/// What to do. Paths are absolute (`/local/domain/1/name`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum XenstoreOp {
    /// The subtree under `path`, depth first, parents before children.
    List {
        /// Where to start (`/` for everything).
        path: String,
    },
    /// The value at `path`.
    Read {
        /// The node.
        path: String,
    },
    /// Creates or overwrites `path` (and missing parents) with `value`.
    Write {
        /// The node.
        path: String,
        /// Its new value.
        value: Vec<u8>,
    },
    /// Removes `path` and its subtree.
    Remove {
        /// The node.
        path: String,
    },
}

impl XenstoreOp {
    /// The path the operation is about.
    pub fn path(&self) -> &str {
        match self {
            Self::List { path }
            | Self::Read { path }
            | Self::Write { path, .. }
            | Self::Remove { path } => path,
        }
    }
}

/// One node of a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XenstoreNode {
    /// Absolute path.
    pub path: String,
    /// Its value (any bytes; most are text).
    pub value: Vec<u8>,
}

/// What an operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum XenstoreAnswer {
    /// A listing, and whether it stopped at [`LIST_BUDGET`] (list a deeper path for the
    /// rest).
    Nodes {
        /// The nodes, in depth-first order.
        nodes: Vec<XenstoreNode>,
        /// More nodes followed.
        truncated: bool,
    },
    /// A node's value.
    Value(Vec<u8>),
}
