//! The xenstore daemon core: the database, permissions, watches, transactions and quotas,
//! speaking the `xs_wire` protocol over per-connection byte streams. No I/O.
//!
//! The shell owns the rings. For each introduced domain it reads request bytes from the
//! ring (only while [`Xenstore::accepts_input`]), passes them to [`Xenstore::feed`], and
//! moves queued output into the response ring with [`Xenstore::output`] and
//! [`Xenstore::advance_output`], notifying the domain when it did. Output stays queued here
//! while the ring is full. dom0's own in-process client is connection 0, which always exists
//! and whose output is never dropped (so a dom0 user that registers watches must drain it);
//! the orchestrator can also use the direct helpers ([`Xenstore::set_node`] and friends).
//! The shell should leave the ring page's `connection` at `XENSTORE_CONNECTED`, set `error`
//! to `XENSTORE_ERROR_PROTO` on [`FeedError::PayloadTooLong`], and reset the ring indexes
//! (`protocol::xen::ring_io::ByteRing::reset`) when it (re)introduces a domain.
//!
//! Invariants: a connection's bytes only ever affect its own queue, its own watches and
//! transactions, and the nodes it is permitted to change; nothing a guest sends can panic
//! (every length, index and string is checked before use); replies are queued in request
//! order; a protocol violation (oversized header) shuts down only that connection.

mod conn;
mod dispatch;
mod error;
mod ops;
mod path;
mod perms;
mod quota;
mod tree;
mod txn;
mod view;
mod watch;
mod wire;

pub use error::{AdminError, FeedError, XsError};
pub use path::{home, INTRODUCE_DOMAIN, RELEASE_DOMAIN};
pub use perms::{Access, Perm};
pub use quota::Quotas;

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use conn::Conn;
use ops::Ctx;
use path::Resolver;
use perms::Who;
use protocol::xen::structs::{DomId, DOMID_SELF};
use tree::{Node, Tree};
use view::View;
use watch::Change;

/// Bytes queued for one connection, ready for its response ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The connection (domain).
    pub conn: DomId,
    /// Whole messages (header and payload) or the rest of a partly sent one.
    pub bytes: Vec<u8>,
}

/// A domain-management request dom0's client made over the protocol (not through the
/// direct calls), for the shell to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainEvent {
    /// `INTRODUCE`: map the domain's ring at `gfn` and bind `port`.
    Introduced {
        /// The domain.
        domid: DomId,
        /// The ring's guest frame, as sent.
        gfn: i64,
        /// The domain's unbound event channel.
        port: u32,
    },
    /// `RELEASE`: stop serving the domain's ring.
    Released {
        /// The domain.
        domid: DomId,
    },
}

/// The store and all its connections.
#[derive(Debug)]
pub struct Xenstore {
    tree: Tree,
    conns: BTreeMap<DomId, Conn>,
    quotas: Quotas,
    domain_events: Vec<DomainEvent>,
}

impl Xenstore {
    /// A store holding `/`, `/local`, `/local/domain`, `/tool`, `/tool/xenstored` and the
    /// special nodes, all owned by dom0 and unreadable by guests (`n0`), and dom0's connection.
    pub fn new(quotas: Quotas) -> Self {
        let dom0_only = || vec![Perm::new(0, Access::None)];
        let mut tree = Tree::default();
        for (path, children) in [
            ("/", &["local", "tool"][..]),
            ("/local", &["domain"]),
            ("/local/domain", &[]),
            ("/tool", &["xenstored"]),
            ("/tool/xenstored", &[]),
            (INTRODUCE_DOMAIN, &[]),
            (RELEASE_DOMAIN, &[]),
        ] {
            let mut node = Node::new(dom0_only());
            node.children = children.iter().map(|c| (*c).into()).collect();
            tree.put(path.into(), node);
        }
        let mut conns = BTreeMap::new();
        conns.insert(0, Conn::new(0));
        Self {
            tree,
            conns,
            quotas,
            domain_events: Vec::new(),
        }
    }

    /// Starts serving `domid`: creates its connection and, if missing, its home
    /// `/local/domain/<domid>` (owned by it, `n<domid>`), then fires `@introduceDomain`.
    /// Introducing a domain again resets its connection (no watches, transactions or queued
    /// bytes; the shell resets the ring indexes) and fires nothing.
    pub fn introduce(&mut self, domid: DomId) -> Result<(), AdminError> {
        if domid == 0 || domid >= DOMID_SELF {
            return Err(AdminError::InvalidDomain(domid));
        }
        if let Some(conn) = self.conns.get_mut(&domid) {
            conn.reset();
            return Ok(());
        }
        self.conns.insert(domid, Conn::new(domid));
        let home = home(domid);
        if self.tree.get(&home).is_none() {
            // As dom0, which may always write and is exempt from quotas: cannot fail.
            let _ = self.set_node(&home, &[], &[Perm::new(domid, Access::None)]);
        }
        self.fire_special(INTRODUCE_DOMAIN);
        Ok(())
    }

    /// Stops serving `domid`: drops its connection, watches, transactions and queued bytes,
    /// then fires `@releaseDomain`. Its nodes stay (the orchestrator removes them, as xl does,
    /// or keeps them for a restart in place).
    pub fn release(&mut self, domid: DomId) -> Result<(), AdminError> {
        if domid == 0 || domid >= DOMID_SELF {
            return Err(AdminError::InvalidDomain(domid));
        }
        self.conns
            .remove(&domid)
            .ok_or(AdminError::NotIntroduced(domid))?;
        self.fire_special(RELEASE_DOMAIN);
        Ok(())
    }

    /// Whether `domid` has a connection (dom0 always has).
    pub fn is_introduced(&self, domid: DomId) -> bool {
        self.conns.contains_key(&domid)
    }

    /// Whether `conn` has a watch that fires when `path` (absolute) changes: on the path
    /// itself or one of its ancestors.
    pub fn is_watched_by(&self, conn: DomId, path: &str) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| c.watches.iter().any(|w| path::is_child(path, &w.path)))
    }

    /// Takes bytes read from `conn`'s request ring and handles every complete request in
    /// them; partial requests stay buffered. An oversized header shuts the connection down
    /// ([`FeedError::PayloadTooLong`], reported once); later input is refused with
    /// [`FeedError::Faulted`] until [`Xenstore::reset_connection`].
    pub fn feed(&mut self, conn: DomId, bytes: &[u8]) -> Result<(), FeedError> {
        let c = self
            .conns
            .get_mut(&conn)
            .ok_or(FeedError::UnknownConnection(conn))?;
        if c.faulted {
            return Err(FeedError::Faulted(conn));
        }
        c.input.push(bytes);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return Ok(());
            };
            match c.input.next_request() {
                Ok(Some(req)) => self.process(conn, &req),
                Ok(None) => return Ok(()),
                Err(len) => {
                    c.reset();
                    c.faulted = true;
                    return Err(FeedError::PayloadTooLong { domid: conn, len });
                }
            }
        }
    }

    /// Whether the shell should read more requests from `conn`'s ring: false while it has
    /// [`Quotas::outstanding`] replies queued, holds its whole [`Quotas::memory`], or is shut
    /// down (dom0 is never throttled).
    pub fn accepts_input(&self, conn: DomId) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            !c.faulted
                && (conn == 0
                    || (!quota::exceeds(
                        c.out.replies() as usize + 1,
                        self.quotas.outstanding as usize,
                    ) && self.room(conn) > 0))
        })
    }

    /// Heap dom0 holds on `domid`'s behalf: the nodes it owns and its connection's state
    /// (charged as the module docs of `quota.rs` say).
    pub fn memory_used(&self, domid: DomId) -> usize {
        self.tree.bytes_owned(domid) + self.conns.get(&domid).map_or(0, Conn::held)
    }

    /// Bytes `domid` may still take under [`Quotas::memory`] (unlimited for dom0).
    fn room(&self, domid: DomId) -> usize {
        if domid == 0 {
            return usize::MAX;
        }
        quota::left(self.quotas.memory, self.memory_used(domid))
    }

    /// The unsent bytes of `conn`'s first queued message (empty when nothing is queued).
    pub fn output(&self, conn: DomId) -> &[u8] {
        self.conns.get(&conn).map_or(&[], |c| c.out.head())
    }

    /// Records that the first `n` queued bytes of `conn` went into its ring; catch-up
    /// events it is owed are queued as room allows.
    pub fn advance_output(&mut self, conn: DomId, n: usize) {
        let limit = self.event_limit(conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.out.advance(n);
            c.out.pay_owed(limit);
        }
    }

    /// Removes and returns up to `max` queued bytes of `conn` (catch-up events it is owed
    /// are queued as room allows).
    pub fn take_output(&mut self, conn: DomId, max: usize) -> Vec<u8> {
        let limit = self.event_limit(conn);
        self.conns.get_mut(&conn).map_or_else(Vec::new, |c| {
            let out = c.out.take(max);
            c.out.pay_owed(limit);
            out
        })
    }

    /// Connections with queued output.
    pub fn pending_output(&self) -> Vec<DomId> {
        self.conns
            .iter()
            .filter(|(_, c)| !c.out.is_empty())
            .map(|(d, _)| *d)
            .collect()
    }

    /// Takes everything queued for every connection.
    pub fn drain_output(&mut self) -> Vec<Outgoing> {
        self.conns
            .iter_mut()
            .filter(|(_, c)| !c.out.is_empty())
            .map(|(d, c)| Outgoing {
                conn: *d,
                bytes: c.out.take(usize::MAX),
            })
            .collect()
    }

    /// Watch events dropped for `conn` because its queue was over [`Quotas::output_bytes`].
    pub fn dropped_events(&self, conn: DomId) -> u64 {
        self.conns.get(&conn).map_or(0, |c| c.out.dropped_events)
    }

    /// Ring reconnection: forgets `conn`'s partial input, queued output, watches and
    /// transactions, and lifts a shutdown. The shell empties the ring itself.
    pub fn reset_connection(&mut self, conn: DomId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.reset();
        }
    }

    /// Shuts `conn` down (e.g. its ring indexes are corrupt): like a reset, then input is
    /// refused until [`Xenstore::reset_connection`].
    pub fn shut_down(&mut self, conn: DomId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.reset();
            c.faulted = true;
        }
    }

    /// Domain-management requests received over the protocol since the last call.
    pub fn take_domain_events(&mut self) -> Vec<DomainEvent> {
        core::mem::take(&mut self.domain_events)
    }

    /// Writes `value` at absolute `path` as dom0, creating missing parents, and sets `perms`
    /// unless empty; fires watches.
    pub fn set_node(&mut self, path: &str, value: &[u8], perms: &[Perm]) -> Result<(), XsError> {
        self.as_dom0(|ctx| ctx.set_node(path.as_bytes(), value, perms))
    }

    /// Removes absolute `path` and its subtree as dom0; fires watches.
    pub fn remove_node(&mut self, path: &str) -> Result<(), XsError> {
        self.as_dom0(|ctx| ctx.rm(path.as_bytes()))
    }

    /// The value at absolute `path`.
    pub fn read_node(&self, path: &str) -> Option<&[u8]> {
        self.tree.get(path).map(|n| n.value.as_slice())
    }

    /// The child names of absolute `path`.
    pub fn children(&self, path: &str) -> Option<&[alloc::string::String]> {
        self.tree.get(path).map(|n| n.children.as_slice())
    }

    /// Number of nodes, the special `@` nodes included.
    pub fn node_count(&self) -> usize {
        self.tree.node_count()
    }

    /// Nodes owned by `domid`.
    pub fn nodes_owned(&self, domid: DomId) -> u32 {
        self.tree.owned(domid)
    }

    fn as_dom0<T>(
        &mut self,
        op: impl FnOnce(&mut Ctx<'_>) -> Result<T, XsError>,
    ) -> Result<T, XsError> {
        let home = home(0);
        let mut ctx = Ctx {
            view: View::direct(&mut self.tree),
            who: Who::domain(0),
            resolver: Resolver {
                home: &home,
                path_max: 0,
            },
            quotas: &self.quotas,
            budget: usize::MAX,
            changes: Vec::new(),
        };
        let r = op(&mut ctx);
        let changes = core::mem::take(&mut ctx.changes);
        self.fire(&changes);
        r
    }

    fn event_limit(&self, conn: DomId) -> usize {
        if conn == 0 {
            0
        } else {
            self.quotas.output_bytes
        }
    }

    fn fire_special(&mut self, path: &'static str) {
        let perms = self
            .tree
            .get(path)
            .map(|n| n.perms.clone())
            .unwrap_or_default();
        self.fire(&[Change::Special { path, perms }]);
    }

    /// Queues the events `changes` cause on every connection's watches; an event that
    /// would take its watcher past its memory quota is dropped (and counted), and the
    /// watch is owed one event on its own path once its queue drains (see
    /// `conn::Outbox::pay_owed`).
    fn fire(&mut self, changes: &[Change]) {
        for change in changes {
            for (&domid, c) in self.conns.iter_mut() {
                if c.faulted {
                    continue;
                }
                let who = Who::domain(domid);
                let limit = if domid == 0 {
                    0
                } else {
                    self.quotas.output_bytes
                };
                let nodes = self.tree.bytes_owned(domid);
                for w in &c.watches {
                    let ev = change
                        .event_path(w, who)
                        .and_then(|abs| dispatch::event(w.reported(abs), &w.token));
                    if let Some(ev) = ev {
                        let room = if domid == 0 {
                            usize::MAX
                        } else {
                            quota::left(self.quotas.memory, nodes + c.held())
                        };
                        // Owed if `ev` is dropped: the watch's own path.
                        let catch_up = |_: &[u8]| dispatch::event(w.reported(&w.path), &w.token);
                        c.out.push_event(ev, limit, room, catch_up);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
