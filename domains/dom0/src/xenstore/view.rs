//! What one operation sees: the committed tree directly, or through a transaction's overlay.
//!
//! Every read and write goes through [`View`], so operations are written once for both cases.
//! In a transaction every node touched is recorded for conflict detection, and a failed write
//! poisons the transaction (its overlay may hold half an operation, so it must not commit).
//! A transaction's read set and overlay are heap: each entry is charged against its limits
//! (see `quota.rs`), so a guest cannot grow either past its quota.

use super::error::XsError;
use super::quota::ENTRY_OVERHEAD;
use super::tree::{charge, Node, Tree};
use super::txn::Transaction;
use protocol::xen::structs::DomId;

/// Limits on one transaction ([`TxLimits::NONE`] for dom0).
#[derive(Clone, Copy, Debug)]
pub struct TxLimits {
    /// Distinct nodes the transaction may touch.
    pub nodes: usize,
    /// Bytes it may hold ([`Transaction::held`]) under the transaction-memory quota
    /// (`ENOSPC` past it).
    pub memory: usize,
    /// Bytes it may hold before the domain's memory quota is exceeded (`ENOMEM` past it).
    pub domain: usize,
}

impl TxLimits {
    /// No limits.
    pub const NONE: Self = Self {
        nodes: usize::MAX,
        memory: usize::MAX,
        domain: usize::MAX,
    };

    /// Whether the transaction may hold `held` bytes; poisons it if not.
    pub fn charge(&self, tx: &mut Transaction, held: usize) -> Result<(), XsError> {
        let e = if held > self.domain {
            XsError::NoMemory
        } else if held > self.memory {
            XsError::NoSpace
        } else {
            return Ok(());
        };
        tx.poisoned = Some(e);
        Err(e)
    }
}

/// Bytes one read-set entry costs: the path, its generation and the map slot.
fn read_charge(path: &str) -> usize {
    path.len() + core::mem::size_of::<Option<u64>>() + ENTRY_OVERHEAD
}

/// The tree as one operation sees it.
#[derive(Debug)]
pub struct View<'a> {
    tree: &'a mut Tree,
    tx: Option<(&'a mut Transaction, TxLimits)>,
}

impl<'a> View<'a> {
    /// The committed tree.
    pub fn direct(tree: &'a mut Tree) -> Self {
        Self { tree, tx: None }
    }

    /// The tree as seen inside `tx`.
    pub fn transaction(tree: &'a mut Tree, tx: &'a mut Transaction, limits: TxLimits) -> Self {
        Self {
            tree,
            tx: Some((tx, limits)),
        }
    }

    /// Whether changes are held back until a commit.
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// Records `path` as touched (first time only).
    fn note(&mut self, path: &str) -> Result<(), XsError> {
        let Some((tx, limits)) = self.tx.as_mut() else {
            return Ok(());
        };
        if tx.accessed.contains_key(path) {
            return Ok(());
        }
        if tx.accessed.len() >= limits.nodes {
            tx.poisoned = Some(XsError::NoSpace);
            return Err(XsError::NoSpace);
        }
        let cost = read_charge(path);
        limits.charge(tx, tx.held() + cost)?;
        tx.read_bytes += cost;
        tx.accessed
            .insert(path.into(), self.tree.generation_of(path));
        Ok(())
    }

    /// The node at `path`, if it exists in this view.
    pub fn get(&mut self, path: &str) -> Result<Option<&Node>, XsError> {
        self.note(path)?;
        if let Some((tx, _)) = &self.tx {
            if let Some(entry) = tx.overlay.get(path) {
                return Ok(entry.as_ref());
            }
        }
        Ok(self.tree.get(path))
    }

    /// Stores (`Some`) or removes (`None`) the node at `path`; removing does not touch children.
    pub fn set(&mut self, path: &str, node: Option<Node>) -> Result<(), XsError> {
        let old_owner = self.get(path)?.map(Node::owner);
        let new_owner = node.as_ref().map(Node::owner);
        let Some((tx, limits)) = self.tx.as_mut() else {
            match node {
                Some(n) => self.tree.put(path.into(), n),
                None => self.tree.remove(path),
            }
            return Ok(());
        };
        let held = tx.overlay.get(path).map_or(0, |n| charge(path, n.as_ref()));
        let bytes = tx.bytes.saturating_sub(held) + charge(path, node.as_ref());
        limits.charge(tx, tx.held() - tx.bytes + bytes)?;
        tx.bytes = bytes;
        for (owner, d) in [(old_owner, -1), (new_owner, 1)] {
            if let Some(o) = owner {
                *tx.owned_delta.entry(o).or_insert(0) += d;
            }
        }
        tx.overlay.insert(path.into(), node);
        Ok(())
    }

    /// Nodes `domid` owns in this view.
    pub fn owned(&self, domid: DomId) -> u64 {
        let base = i64::from(self.tree.owned(domid));
        let delta = self
            .tx
            .as_ref()
            .and_then(|(tx, _)| tx.owned_delta.get(&domid).copied())
            .unwrap_or(0);
        u64::try_from(base + delta).unwrap_or(0)
    }
}
