//! Per-domain resource limits. dom0 is exempt from all of them.

/// Limits applied to unprivileged connections (every domain but dom0). A value of 0 disables
/// that check. Exceeding a limit is an `ENOSPC` reply, as in xenstored, except
/// [`Quotas::outstanding`], which is back-pressure (see [`super::Xenstore::accepts_input`]),
/// and [`Quotas::output_bytes`], past which watch events are dropped and counted.
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
    /// Bytes of node copies all of a connection's open transactions may hold together.
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
}

impl Quotas {
    /// xenstored's defaults, plus this implementation's memory bounds.
    pub const DEFAULT: Self = Self {
        nodes: 1000,
        node_size: 2048,
        watches: 128,
        transactions: 10,
        transaction_nodes: 1024,
        transaction_memory: 512 * 1024,
        perms_per_node: 5,
        path_max: protocol::xen::ring::XENSTORE_REL_PATH_MAX,
        outstanding: 20,
        output_bytes: 128 * 1024,
    };
}

impl Default for Quotas {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whether `value` exceeds `limit` (0 = unlimited).
pub(crate) fn exceeds(value: usize, limit: usize) -> bool {
    limit != 0 && value > limit
}
