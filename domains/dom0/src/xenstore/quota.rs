//! Per-domain resource limits, named after xenstored's quotas. dom0 is exempt from all of
//! them.
//!
//! | field | xenstored quota | on excess |
//! |---|---|---|
//! | [`Quotas::nodes`] | `nodes` (entries per domain) | `ENOSPC` |
//! | [`Quotas::node_size`] | `node-size` | `ENOSPC` |
//! | [`Quotas::perms_per_node`] | `permissions` | `ENOSPC` |
//! | [`Quotas::path_max`] | `path-max` | `EINVAL` |
//! | [`Quotas::watches`] | `watches` | `ENOSPC` |
//! | [`Quotas::transactions`] | `transactions` | `ENOSPC` |
//! | [`Quotas::transaction_nodes`] | `transaction-nodes` | `ENOSPC`, poisons the transaction |
//! | [`Quotas::transaction_memory`] | (ours) | `ENOSPC`, poisons the transaction |
//! | [`Quotas::outstanding`] | `outstanding` | input not read (back-pressure) |
//! | [`Quotas::output_bytes`] | (ours) | watch events dropped and counted |
//! | [`Quotas::memory`] | `memory` (the hard quota) | `ENOMEM`; input not read; events dropped |
//!
//! **Memory.** Everything dom0 keeps on a domain's behalf is charged to it, as xenstored's
//! memory accounting does: the nodes it owns (path, value, child names, permissions), each
//! open transaction (its copies of written nodes *and* the path of every node it read or
//! probed, since a read set is heap too), its watches (path and token), and its queued
//! replies and watch events. Each entry is charged [`ENTRY_OVERHEAD`] bytes on top of its
//! contents for the map or vector slot holding it, so the quota bounds dom0's real heap use
//! (checked by `tests/xs_memory.rs` with a counting allocator). A domain's partial input is
//! not charged: the wire format bounds it to one header, one payload and one ring read.
//! An operation that would take a domain past [`Quotas::memory`] fails with `ENOMEM`
//! before it changes anything (inside a transaction it also poisons the transaction), a
//! domain at its quota has no more requests read until replies drain, and watch events that
//! would exceed it are dropped. dom0's heap bounds how many domains may sit at their quota
//! at once: the default, 1 MiB, leaves room for a dozen hostile domains in dom0's 32 MiB.

/// Limits applied to unprivileged connections (every domain but dom0). A value of 0 disables
/// that check. See the module docs for what each costs the guest when exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Nodes a domain may own (xenstored "nodes").
    pub nodes: u32,
    /// Bytes of value plus NUL-terminated child names in one node (xenstored "node-size").
    pub node_size: usize,
    /// Watches per connection (xenstored "watches").
    pub watches: u32,
    /// Open transactions per connection (xenstored "transactions").
    pub transactions: u32,
    /// Distinct nodes one transaction may read or write (xenstored "transaction-nodes").
    pub transaction_nodes: u32,
    /// Bytes all of a connection's open transactions may hold together: node copies and
    /// read-set paths, each with [`ENTRY_OVERHEAD`].
    pub transaction_memory: usize,
    /// Permission entries per node (xenstored "node-permissions").
    pub perms_per_node: usize,
    /// Length of a path below `/local/domain/<id>/`, or of any other path
    /// (xenstored "path-max"). Absolute paths are also capped at XENSTORE_ABS_PATH_MAX.
    pub path_max: usize,
    /// Replies queued and not yet handed to the ring before input is no longer accepted
    /// (xenstored "outstanding").
    pub outstanding: u32,
    /// Bytes queued for a connection past which new watch events are dropped.
    pub output_bytes: usize,
    /// Bytes of dom0's heap one domain may hold, everything charged (xenstored "memory",
    /// its hard quota; see the module docs).
    pub memory: usize,
}

impl Quotas {
    /// xenstored's defaults for the counts; memory bounds sized for dom0's 32 MiB.
    pub const DEFAULT: Self = Self {
        nodes: 1000,
        node_size: 2048,
        watches: 128,
        transactions: 10,
        transaction_nodes: 1024,
        transaction_memory: 256 * 1024,
        perms_per_node: 5,
        path_max: protocol::xen::ring::XENSTORE_REL_PATH_MAX,
        outstanding: 20,
        output_bytes: 128 * 1024,
        memory: 1024 * 1024,
    };
}

impl Default for Quotas {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Bytes charged per stored entry (a node, a read-set path, a watch, a queued message, a
/// transaction) for the allocation headers and map slots around its contents.
pub const ENTRY_OVERHEAD: usize = 128;

/// Whether `value` exceeds `limit` (0 = unlimited).
pub(crate) fn exceeds(value: usize, limit: usize) -> bool {
    limit != 0 && value > limit
}

/// What is left of `limit` (0 = unlimited) once `used` is spent.
pub(crate) fn left(limit: usize, used: usize) -> usize {
    if limit == 0 {
        usize::MAX
    } else {
        limit.saturating_sub(used)
    }
}
