//! Turns one request into a reply: type and privilege checks, transaction lookup, then the
//! operation. Replies echo `req_id` and `tx_id`; failures are `XS_ERROR` with the errno name.

use super::conn::Conn;
use super::error::XsError;
use super::ops::Ctx;
use super::path::{self, Resolver};
use super::perms::Who;
use super::quota;
use super::txn::Transaction;
use super::view::{TxLimits, View};
use super::watch::{Change, Watch};
use super::wire::{self, Request};
use super::{DomainEvent, Xenstore};
use alloc::format;
use alloc::vec::Vec;
use protocol::xen::ring::{XsType, XENSTORE_PAYLOAD_MAX};
use protocol::xen::structs::{DomId, DOMID_SELF};

/// A successful reply.
struct Done {
    ty: XsType,
    payload: Vec<u8>,
    /// A watch event to queue right after the reply (the initial event of a WATCH).
    then: Option<Vec<u8>>,
}

impl Done {
    fn ok(ty: XsType) -> Self {
        Self::with(ty, b"OK\0".to_vec())
    }

    fn with(ty: XsType, payload: Vec<u8>) -> Self {
        Self {
            ty,
            payload,
            then: None,
        }
    }
}

/// A `WATCH_EVENT` message, or `None` if it would exceed the payload limit (xenstored drops
/// those too).
pub(super) fn event(path: &str, token: &[u8]) -> Option<Vec<u8>> {
    let mut payload = wire::nul_terminated(path.as_bytes());
    payload.extend_from_slice(&wire::nul_terminated(token));
    (payload.len() <= XENSTORE_PAYLOAD_MAX as usize)
        .then(|| wire::encode(XsType::WatchEvent, 0, 0, &payload))
}

impl Xenstore {
    /// Handles one complete request from `domid` and queues the reply.
    pub(super) fn process(&mut self, domid: DomId, req: &Request) {
        let h = req.header;
        let (ty, mut payload, then) = match self.execute(domid, req) {
            Ok(d) => (d.ty, d.payload, d.then),
            Err(e) => (
                XsType::Error,
                wire::nul_terminated(e.name().as_bytes()),
                None,
            ),
        };
        let ty = if payload.len() > XENSTORE_PAYLOAD_MAX as usize {
            payload = wire::nul_terminated(XsError::TooBig.name().as_bytes());
            XsType::Error
        } else {
            ty
        };
        let limit = self.event_limit(domid);
        // A reply is always queued (the outstanding quota bounds them); it counts against
        // the memory quota, which stops further input while it is spent.
        let reply = wire::encode(ty, h.req_id, h.tx_id, &payload);
        if let Some(conn) = self.conns.get_mut(&domid) {
            conn.out.push_reply(reply);
        }
        if let Some(ev) = then {
            let room = self.room(domid);
            if let Some(conn) = self.conns.get_mut(&domid) {
                // The registration's own event is on the watch's path: owed as it is.
                conn.out
                    .push_event(ev, limit, room, |dropped| Some(dropped.to_vec()));
            }
        }
    }

    fn execute(&mut self, domid: DomId, req: &Request) -> Result<Done, XsError> {
        use XsType as T;
        let ty = T::try_from(req.header.ty).map_err(|_| XsError::NotSupported)?;
        let who = Who::domain(domid);
        let p = req.payload.as_slice();
        match ty {
            T::WatchEvent
            | T::Error
            | T::SetTarget
            | T::GetFeature
            | T::SetFeature
            | T::GetQuota
            | T::SetQuota => return Err(XsError::NotSupported),
            T::Control | T::Introduce | T::Release | T::IsDomainIntroduced | T::Resume
                if !who.privileged =>
            {
                return Err(XsError::AccessDenied)
            }
            // WATCH and UNWATCH ignore tx_id.
            T::Watch => return self.watch(domid, p),
            T::Unwatch => return self.unwatch(domid, p),
            _ => {}
        }
        let tx_id = req.header.tx_id;
        let room = self.room(domid);
        let conn = self.conns.get_mut(&domid).ok_or(XsError::Io)?;
        if tx_id != 0 && !conn.txs.contains_key(&tx_id) {
            return Err(XsError::NotFound);
        }
        match ty {
            T::TransactionStart if tx_id != 0 => Err(XsError::Busy),
            T::TransactionStart => {
                if !who.privileged
                    && quota::exceeds(conn.txs.len() + 1, self.quotas.transactions as usize)
                {
                    return Err(XsError::NoSpace);
                }
                if Transaction::default().held() > room {
                    return Err(XsError::NoMemory);
                }
                let id = conn.allocate_tx_id();
                conn.txs.insert(id, Default::default());
                Ok(Done::with(ty, format!("{id}\0").into_bytes()))
            }
            T::TransactionEnd => {
                let commit = match wire::one_arg(p)? {
                    b"T" => true,
                    b"F" => false,
                    _ => return Err(XsError::Invalid),
                };
                let tx = conn.txs.remove(&tx_id).ok_or(XsError::NotFound)?;
                if commit {
                    let changes = tx.commit(&mut self.tree, domid, who.privileged, &self.quotas)?;
                    self.fire(&changes);
                }
                Ok(Done::ok(ty))
            }
            T::ResetWatches => {
                conn.clear_watches();
                conn.txs.clear();
                Ok(Done::ok(ty))
            }
            T::GetDomainPath => {
                let d = wire::domid(wire::one_arg(p)?)?;
                let home = path::home(d);
                Ok(Done::with(ty, wire::nul_terminated(home.as_bytes())))
            }
            T::IsDomainIntroduced => {
                let d = wire::domid(wire::one_arg(p)?)?;
                let yes = d == DOMID_SELF || self.conns.contains_key(&d);
                Ok(Done::with(ty, if yes { b"T\0" } else { b"F\0" }.to_vec()))
            }
            T::Introduce => {
                let s = wire::strings(p);
                let [d, gfn, port, ..] = s.as_slice() else {
                    return Err(XsError::Invalid);
                };
                let domid = wire::domid(d)?;
                let gfn = signed(gfn)?;
                let port = u32::try_from(wire::decimal(port)?).map_err(|_| XsError::Invalid)?;
                if port == 0 {
                    return Err(XsError::Invalid);
                }
                self.introduce(domid).map_err(|_| XsError::Invalid)?;
                let ev = DomainEvent::Introduced { domid, gfn, port };
                self.domain_events.push(ev);
                Ok(Done::ok(ty))
            }
            T::Release | T::Resume => {
                let d = wire::domid(wire::one_arg(p)?)?;
                if d == 0 || d >= DOMID_SELF {
                    return Err(XsError::Invalid);
                }
                if !self.conns.contains_key(&d) {
                    return Err(XsError::NotFound);
                }
                if ty == T::Release {
                    self.release(d).map_err(|_| XsError::NotFound)?;
                    self.domain_events.push(DomainEvent::Released { domid: d });
                }
                Ok(Done::ok(ty))
            }
            T::Control => Err(XsError::Invalid),
            _ => self.node_op(domid, tx_id, ty, p),
        }
    }

    /// Limits on one of `conn`'s transactions, given what its other transactions and the
    /// rest of the domain's state hold.
    fn tx_limits(&self, conn: &Conn, tx_id: u32) -> TxLimits {
        if conn.domid == 0 {
            return TxLimits::NONE;
        }
        let q = &self.quotas;
        let this = conn.txs.get(&tx_id).map_or(0, Transaction::held);
        let others: usize = conn
            .txs
            .iter()
            .filter(|(id, _)| **id != tx_id)
            .map(|(_, t)| t.held())
            .sum();
        let rest = self.memory_used(conn.domid).saturating_sub(this);
        TxLimits {
            nodes: quota::left(q.transaction_nodes as usize, 0),
            memory: quota::left(q.transaction_memory, others),
            domain: quota::left(q.memory, rest),
        }
    }

    fn node_op(&mut self, domid: DomId, tx_id: u32, ty: XsType, p: &[u8]) -> Result<Done, XsError> {
        let who = Who::domain(domid);
        let home = path::home(domid);
        let resolver = Resolver {
            home: &home,
            path_max: if who.privileged {
                0
            } else {
                self.quotas.path_max
            },
        };
        let conn = self.conns.get(&domid).ok_or(XsError::Io)?;
        let limits = self.tx_limits(conn, tx_id);
        let room = self.room(domid);
        let conn = self.conns.get_mut(&domid).ok_or(XsError::Io)?;
        let tx = conn.txs.get_mut(&tx_id);
        // In a transaction its limits charge every copy; outside, the operation checks what
        // it adds to the tree against the room left.
        let (view, budget) = match tx {
            Some(tx) => (View::transaction(&mut self.tree, tx, limits), usize::MAX),
            None => (View::direct(&mut self.tree), room),
        };
        let mut ctx = Ctx {
            view,
            who,
            resolver,
            quotas: &self.quotas,
            budget,
            changes: Vec::new(),
        };
        let result = match ty {
            XsType::Read => ctx.read(wire::one_arg(p)?).map(|v| Done::with(ty, v)),
            XsType::Directory => ctx.directory(wire::one_arg(p)?).map(|v| Done::with(ty, v)),
            XsType::DirectoryPart => ctx.directory_part(p).map(|v| Done::with(ty, v)),
            XsType::GetPerms => ctx.get_perms(wire::one_arg(p)?).map(|v| Done::with(ty, v)),
            XsType::Write => {
                let at = p.iter().position(|&b| b == 0).ok_or(XsError::Invalid)?;
                ctx.write(&p[..at], &p[at + 1..]).map(|()| Done::ok(ty))
            }
            XsType::Mkdir => ctx.mkdir(wire::one_arg(p)?).map(|()| Done::ok(ty)),
            XsType::Rm => ctx.rm(wire::one_arg(p)?).map(|()| Done::ok(ty)),
            XsType::SetPerms => ctx.set_perms(p).map(|()| Done::ok(ty)),
            _ => Err(XsError::NotSupported),
        };
        let changes = core::mem::take(&mut ctx.changes);
        let in_tx = ctx.view.in_transaction();
        drop(ctx);
        if in_tx {
            if let Some(tx) = self
                .conns
                .get_mut(&domid)
                .and_then(|c| c.txs.get_mut(&tx_id))
            {
                // The announcements wait for the commit: heap like the overlay, so charged.
                let cost: usize = changes.iter().map(Change::heap_bytes).sum();
                limits.charge(tx, tx.held() + cost)?;
                tx.change_bytes += cost;
                tx.changes.extend(changes);
            }
        } else {
            self.fire(&changes);
        }
        result
    }

    fn watch(&mut self, domid: DomId, p: &[u8]) -> Result<Done, XsError> {
        // Two strings; a third (depth) needs XENSTORE_SERVER_FEATURE_WATCHDEPTH, not offered.
        let [raw, token] = wire::args::<2>(p)?;
        let home = path::home(domid);
        let privileged = Who::domain(domid).privileged;
        let resolver = Resolver {
            home: &home,
            path_max: if privileged { 0 } else { self.quotas.path_max },
        };
        let (path, relative) = resolver.resolve(raw, true)?;
        let max = self.quotas.watches as usize;
        let room = self.room(domid);
        let conn = self.conns.get_mut(&domid).ok_or(XsError::Io)?;
        if conn
            .watches
            .iter()
            .any(|w| w.path == path && w.token == token)
        {
            return Err(XsError::Exists);
        }
        if !privileged && quota::exceeds(conn.watches.len() + 1, max) {
            return Err(XsError::NoSpace);
        }
        if Conn::watch_cost(&path, token) > room {
            return Err(XsError::NoMemory);
        }
        let prefix = if relative { home.len() + 1 } else { 0 };
        let w = Watch {
            path,
            token: token.to_vec(),
            prefix,
        };
        let first = event(w.reported(&w.path), token);
        conn.add_watch(w);
        Ok(Done {
            then: first,
            ..Done::ok(XsType::Watch)
        })
    }

    fn unwatch(&mut self, domid: DomId, p: &[u8]) -> Result<Done, XsError> {
        let [raw, token] = wire::args::<2>(p)?;
        let home = path::home(domid);
        let resolver = Resolver {
            home: &home,
            path_max: 0,
        };
        let (path, _) = resolver.resolve(raw, true)?;
        let conn = self.conns.get_mut(&domid).ok_or(XsError::Io)?;
        let at = conn
            .watches
            .iter()
            .position(|w| w.path == path && w.token == token)
            .ok_or(XsError::NotFound)?;
        conn.remove_watch(at);
        Ok(Done::ok(XsType::Unwatch))
    }
}

/// A signed decimal (the INTRODUCE gfn).
fn signed(s: &[u8]) -> Result<i64, XsError> {
    match s.split_first() {
        Some((b'-', digits)) => Ok(-(wire::decimal(digits)? as i64)),
        _ => Ok(wire::decimal(s)? as i64),
    }
}
