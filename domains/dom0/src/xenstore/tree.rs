//! The committed database: nodes by canonical path, generation counts, nodes owned per domain.
//!
//! Invariants: `/` always exists; every node but `/` and the `@` specials has its parent in
//! the map and its basename in the parent's `children`; `owned[d]` is the number of nodes
//! whose first permission entry names `d` and `bytes[d]` the sum of their [`charge`]s;
//! every write gives the node a fresh generation.

use super::perms::Perm;
use super::quota::ENTRY_OVERHEAD;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::xen::structs::DomId;

/// One node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The value (arbitrary bytes).
    pub value: Vec<u8>,
    /// Permission entries; never empty, the first names the owner.
    pub perms: Vec<Perm>,
    /// Child basenames in creation order.
    pub children: Vec<String>,
    /// When the node was last written (global counter); set by [`Tree::put`].
    pub generation: u64,
}

impl Node {
    /// An empty node with `perms`.
    pub fn new(perms: Vec<Perm>) -> Self {
        Self {
            value: Vec::new(),
            perms,
            children: Vec::new(),
            generation: 0,
        }
    }

    /// The owning domain.
    pub fn owner(&self) -> DomId {
        self.perms.first().map_or(0, |p| p.domid)
    }

    /// Bytes counted against the node-size quota: value plus NUL-terminated child names.
    pub fn size(&self) -> usize {
        self.value.len() + self.children.iter().map(|c| c.len() + 1).sum::<usize>()
    }

    /// Heap bytes the node holds beyond its path: value, child names (each a `String`),
    /// permissions, and the map slot.
    pub fn heap_bytes(&self) -> usize {
        self.value.len()
            + self
                .children
                .iter()
                .map(|c| c.len() + core::mem::size_of::<String>())
                .sum::<usize>()
            + core::mem::size_of_val(self.perms.as_slice())
            + ENTRY_OVERHEAD
    }

    /// The children as a `DIRECTORY` payload: each name NUL-terminated.
    pub fn child_list(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for c in &self.children {
            out.extend_from_slice(c.as_bytes());
            out.push(0);
        }
        out
    }
}

/// All committed nodes.
#[derive(Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
    generation: u64,
    owned: BTreeMap<DomId, u32>,
    bytes: BTreeMap<DomId, usize>,
}

/// Heap bytes a node stored at `path` costs its owner (and a transaction holding a copy).
pub fn charge(path: &str, node: Option<&Node>) -> usize {
    path.len() + node.map_or(ENTRY_OVERHEAD, Node::heap_bytes)
}

impl Tree {
    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// The generation of the node at `path`, `None` if absent.
    pub fn generation_of(&self, path: &str) -> Option<u64> {
        self.nodes.get(path).map(|n| n.generation)
    }

    /// Stores `node` at `path` with a fresh generation.
    pub fn put(&mut self, path: String, mut node: Node) {
        self.generation += 1;
        node.generation = self.generation;
        let cost = charge(&path, Some(&node));
        self.count(node.owner(), 1, cost);
        if let Some(old) = self.nodes.get(&path) {
            let cost = charge(&path, Some(old));
            self.count(old.owner(), -1, cost);
        }
        self.nodes.insert(path, node);
    }

    /// Removes the node at `path` (not its children).
    pub fn remove(&mut self, path: &str) {
        if let Some(old) = self.nodes.remove(path) {
            self.count(old.owner(), -1, charge(path, Some(&old)));
        }
    }

    /// Nodes owned by `domid`.
    pub fn owned(&self, domid: DomId) -> u32 {
        self.owned.get(&domid).copied().unwrap_or(0)
    }

    /// Heap bytes of the nodes `domid` owns.
    pub fn bytes_owned(&self, domid: DomId) -> usize {
        self.bytes.get(&domid).copied().unwrap_or(0)
    }

    /// Number of nodes, specials included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    fn count(&mut self, domid: DomId, delta: i32, bytes: usize) {
        let n = self.owned.entry(domid).or_insert(0);
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.owned.remove(&domid);
        }
        let b = self.bytes.entry(domid).or_insert(0);
        *b = if delta > 0 {
            b.saturating_add(bytes)
        } else {
            b.saturating_sub(bytes)
        };
        if *b == 0 {
            self.bytes.remove(&domid);
        }
    }
}
