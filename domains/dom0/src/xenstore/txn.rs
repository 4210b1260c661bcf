//! Transactions: a private overlay over the committed tree, validated and applied on commit.
//!
//! A transaction records the generation of every node it reads or writes the first time it
//! touches it (`None` for a node that did not exist). Commit fails with `EAGAIN` if any of
//! those nodes has changed since, so a committed transaction saw a state identical, for every
//! node it touched, to the one it replaces. Watch events are held back until commit.

use super::error::XsError;
use super::quota::{self, Quotas, ENTRY_OVERHEAD};
use super::tree::{Node, Tree};
use super::watch::Change;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::xen::structs::DomId;

/// One open transaction.
#[derive(Debug, Default)]
pub struct Transaction {
    /// Nodes written (`Some`) or removed (`None`) by this transaction.
    pub(super) overlay: BTreeMap<String, Option<Node>>,
    /// Generation of each node touched, as first seen.
    pub(super) accessed: BTreeMap<String, Option<u64>>,
    /// Net change in nodes owned per domain if committed now.
    pub(super) owned_delta: BTreeMap<DomId, i64>,
    /// Bytes of paths and node copies held in `overlay`.
    pub(super) bytes: usize,
    /// Bytes of the paths held in `accessed`.
    pub(super) read_bytes: usize,
    /// Bytes held by `changes`.
    pub(super) change_bytes: usize,
    /// Set when an operation failed after changing the overlay; commit then fails with it.
    pub(super) poisoned: Option<XsError>,
    /// Changes to announce on commit.
    pub(super) changes: Vec<Change>,
}

impl Transaction {
    /// Heap bytes held (node copies, read-set paths, the transaction itself), for the
    /// `transaction_memory` and `memory` quotas.
    pub fn held(&self) -> usize {
        self.bytes + self.read_bytes + self.change_bytes + ENTRY_OVERHEAD
    }

    /// Validates and applies the transaction for `domid`, returning the changes to announce.
    pub fn commit(
        self,
        tree: &mut Tree,
        domid: DomId,
        privileged: bool,
        quotas: &Quotas,
    ) -> Result<Vec<Change>, XsError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        if self
            .accessed
            .iter()
            .any(|(path, gen)| tree.generation_of(path) != *gen)
        {
            return Err(XsError::Again);
        }
        let delta = self.owned_delta.get(&domid).copied().unwrap_or(0);
        if !privileged && delta > 0 {
            let total = i64::from(tree.owned(domid)) + delta;
            if quota::exceeds(total as usize, quotas.nodes as usize) {
                return Err(XsError::NoSpace);
            }
        }
        for (path, node) in self.overlay {
            match node {
                Some(node) => tree.put(path, node),
                None => tree.remove(&path),
            }
        }
        Ok(self.changes)
    }
}
