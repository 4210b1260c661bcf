//! The `xenstore` target: dom0's whole xenstore daemon ([`dom0::xenstore::Xenstore`]) driven
//! by a script of steps over several connections: request bytes fed in arbitrary pieces (as
//! they come off a ring), domains introduced, released, reset and shut down, output taken
//! whole, in pieces or ring-style, and dom0's direct node edits.
//!
//! Checked beyond "no panic": every connection's output stream is a sequence of well-formed
//! messages (header, payload at most `XENSTORE_PAYLOAD_MAX`), and replies come back in request
//! order with the request's id (watch events may come in between). The harness only feeds a
//! connection while [`Xenstore::accepts_input`] says so, as dom0's ring loop does.

use crate::input::{Input, Script};
use dom0::xenstore::{DomainEvent, FeedError, Perm, Quotas, Xenstore};
use protocol::xen::ring::{xs_message, XsType, XsdSockmsg, XENSTORE_PAYLOAD_MAX, XS_HEADER_LEN};
use protocol::xen::structs::DomId;
use std::collections::{BTreeMap, VecDeque};

/// Step opcodes (the low 3 bits of a step's first byte).
pub mod op {
    /// `conn:u8 chunk`: feed request bytes.
    pub const FEED: u8 = 0;
    /// `domid:u8`: `Xenstore::introduce`.
    pub const INTRODUCE: u8 = 1;
    /// `domid:u8`: `Xenstore::release`.
    pub const RELEASE: u8 = 2;
    /// `conn:u8 max:u16`: `Xenstore::take_output`.
    pub const TAKE: u8 = 3;
    /// `conn:u8 room:u16`: `output` then `advance_output` by at most `room` (a ring's room).
    pub const RING: u8 = 4;
    /// `conn:u8`: `Xenstore::reset_connection`.
    pub const RESET: u8 = 5;
    /// `conn:u8`: `Xenstore::shut_down`.
    pub const SHUT_DOWN: u8 = 6;
    /// `remove:u8 path:chunk value:chunk`: dom0's `set_node` (guest gets `n<id>`) or
    /// `remove_node`.
    pub const DIRECT: u8 = 7;
}

/// The connections a script names: dom0, two guests introduced at start, one that is not.
pub const CONNS: [DomId; 4] = [0, 1, 2, 7];

/// Quotas small enough for a short input to reach every limit.
const TINY: Quotas = Quotas {
    nodes: 8,
    node_size: 64,
    watches: 3,
    transactions: 2,
    transaction_nodes: 6,
    transaction_memory: 256,
    perms_per_node: 2,
    path_max: 40,
    outstanding: 3,
    output_bytes: 200,
    memory: 4096,
};

/// The harness's view of one connection: the requests it has sent whose replies are due,
/// and the output bytes taken but not yet parsed.
#[derive(Default)]
struct Shadow {
    /// Request bytes fed that do not make a whole message yet.
    input: Vec<u8>,
    /// `(type, req_id)` of each whole request, oldest first.
    due: VecDeque<(u32, u32)>,
    /// Output taken that does not make a whole message yet.
    output: Vec<u8>,
}

impl Shadow {
    /// Records fed bytes as whole requests (an oversized header stops there: the store shuts
    /// the connection down and the caller drops this shadow).
    fn fed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        while let Some(h) = XsdSockmsg::decode(&self.input) {
            let end = XS_HEADER_LEN + h.len as usize;
            if h.len > XENSTORE_PAYLOAD_MAX || self.input.len() < end {
                break;
            }
            self.due.push_back((h.ty, h.req_id));
            self.input.drain(..end);
        }
    }

    /// Parses taken output; panics on a malformed message or a reply out of order.
    fn took(&mut self, conn: DomId, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
        while let Some(h) = XsdSockmsg::decode(&self.output) {
            assert!(
                h.len <= XENSTORE_PAYLOAD_MAX,
                "d{conn}: output message of {} bytes",
                h.len
            );
            let end = XS_HEADER_LEN + h.len as usize;
            if self.output.len() < end {
                break;
            }
            let ty = XsType::try_from(h.ty)
                .unwrap_or_else(|_| panic!("d{conn}: output of unknown type {}", h.ty));
            if ty != XsType::WatchEvent {
                let (req_ty, req_id) = self
                    .due
                    .pop_front()
                    .unwrap_or_else(|| panic!("d{conn}: reply {h:?} to no request"));
                assert_eq!(h.req_id, req_id, "d{conn}: reply out of order");
                assert!(
                    ty == XsType::Error || h.ty == req_ty,
                    "d{conn}: reply type {ty:?} to a request of type {req_ty}"
                );
            }
            self.output.drain(..end);
        }
    }
}

/// Runs one script.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let quotas = if inp.u8() & 1 == 0 {
        Quotas::DEFAULT
    } else {
        TINY
    };
    let mut xs = Xenstore::new(quotas);
    let mut shadows: BTreeMap<DomId, Shadow> = BTreeMap::new();
    for d in [1, 2] {
        xs.introduce(d).expect("a fresh store takes d1 and d2");
    }
    while !inp.is_empty() {
        let step = inp.u8();
        match step & 7 {
            op::FEED => {
                let conn = CONNS[usize::from(inp.u8() & 3)];
                let bytes = inp.chunk();
                if !xs.accepts_input(conn) {
                    continue;
                }
                let sh = shadows.entry(conn).or_default();
                sh.fed(bytes);
                match xs.feed(conn, bytes) {
                    Ok(()) => {}
                    Err(FeedError::PayloadTooLong { .. }) => {
                        shadows.remove(&conn);
                    }
                    Err(e) => panic!("d{conn} accepts input but feed said {e}"),
                }
                for ev in xs.take_domain_events() {
                    let (DomainEvent::Introduced { domid, .. } | DomainEvent::Released { domid }) =
                        ev;
                    // The store reset or dropped that connection.
                    shadows.remove(&domid);
                }
            }
            op::INTRODUCE | op::RELEASE => {
                let domid = DomId::from(inp.u8());
                let r = if step & 7 == op::INTRODUCE {
                    xs.introduce(domid)
                } else {
                    xs.release(domid)
                };
                if r.is_ok() {
                    shadows.remove(&domid);
                }
            }
            op::TAKE => {
                let conn = CONNS[usize::from(inp.u8() & 3)];
                let max = usize::from(inp.u16());
                let bytes = xs.take_output(conn, max);
                assert!(bytes.len() <= max);
                shadows.entry(conn).or_default().took(conn, &bytes);
            }
            op::RING => {
                let conn = CONNS[usize::from(inp.u8() & 3)];
                let room = usize::from(inp.u16());
                let out = xs.output(conn);
                let n = out.len().min(room);
                let sent = out[..n].to_vec();
                xs.advance_output(conn, n);
                shadows.entry(conn).or_default().took(conn, &sent);
            }
            op::RESET | op::SHUT_DOWN => {
                let conn = CONNS[usize::from(inp.u8() & 3)];
                if step & 7 == op::RESET {
                    xs.reset_connection(conn);
                } else {
                    xs.shut_down(conn);
                }
                shadows.remove(&conn);
            }
            _ => {
                let remove = inp.u8() & 1 == 1;
                let path = String::from_utf8_lossy(inp.chunk()).into_owned();
                let value = inp.chunk();
                let r = if remove {
                    xs.remove_node(&path)
                } else {
                    let owner = CONNS[usize::from(step >> 3) & 3];
                    xs.set_node(
                        &path,
                        value,
                        &[Perm::new(owner, dom0::xenstore::Access::None)],
                    )
                };
                let _ = r.map_err(|e| e.to_string());
            }
        }
    }
    // Whatever is still queued must parse too.
    for out in xs.drain_output() {
        shadows
            .entry(out.conn)
            .or_default()
            .took(out.conn, &out.bytes);
    }
}

/// NUL-terminated `parts`, concatenated (a request payload).
fn args(parts: &[&str]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.bytes().chain([0])).collect()
}

/// A script that feeds `msgs` (type, tx_id, payload) to `conn` one message a step, then
/// takes all output; request ids count from 1.
fn conversation(s: &mut Script, conn: u8, msgs: &[(XsType, u32, Vec<u8>)]) {
    for (i, (ty, tx, payload)) in msgs.iter().enumerate() {
        let req_id = u32::try_from(i).unwrap_or(0) + 1;
        s.u8(op::FEED)
            .u8(conn)
            .chunk(&xs_message(*ty, req_id, *tx, payload));
    }
    s.u8(op::TAKE).u8(conn).u16(u16::MAX);
}

/// Seed inputs: real conversations of the kinds Linux's xenbus and xl have with the store.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use XsType as T;
    let mut out = Vec::new();
    let mut s = Script::new();
    // Connection selectors: 0 = dom0, 1 = d1, 2 = d2, 3 = d7.
    s.u8(0);
    conversation(
        &mut s,
        1,
        &[
            (T::Write, 0, args(&["/local/domain/1/name", "guest"])),
            (T::Read, 0, args(&["name"])),
            (T::Mkdir, 0, args(&["device/vbd/51712"])),
            (T::Directory, 0, args(&["device"])),
            (T::GetPerms, 0, args(&["name"])),
            (T::SetPerms, 0, args(&["name", "n1", "r2"])),
            (T::Rm, 0, args(&["device"])),
            (T::GetDomainPath, 0, args(&["1"])),
        ],
    );
    out.push(("nodes", s.take()));

    s.u8(0);
    conversation(
        &mut s,
        2,
        &[
            (T::TransactionStart, 0, args(&[""])),
            (T::Write, 1, args(&["data/a", "1"])),
            (T::Read, 1, args(&["data/a"])),
            (T::TransactionEnd, 1, args(&["T"])),
            (T::TransactionStart, 0, args(&[""])),
            (T::Write, 2, args(&["data/b", "2"])),
            (T::TransactionEnd, 2, args(&["F"])),
            (T::Read, 0, args(&["data/b"])),
        ],
    );
    out.push(("transactions", s.take()));

    s.u8(0);
    conversation(
        &mut s,
        1,
        &[
            (T::Watch, 0, args(&["/local/domain/2/shared", "tok"])),
            (T::Watch, 0, args(&["@releaseDomain", "rel"])),
        ],
    );
    conversation(
        &mut s,
        2,
        &[
            (T::Write, 0, args(&["shared", "x"])),
            (T::SetPerms, 0, args(&["shared", "n2", "r1"])),
            (T::Write, 0, args(&["shared", "y"])),
        ],
    );
    conversation(
        &mut s,
        1,
        &[
            (T::Read, 0, args(&["/local/domain/2/shared"])),
            (T::Unwatch, 0, args(&["/local/domain/2/shared", "tok"])),
            (T::ResetWatches, 0, Vec::new()),
        ],
    );
    out.push(("watches", s.take()));

    s.u8(0);
    conversation(
        &mut s,
        0,
        &[
            (T::Introduce, 0, args(&["7", "1234", "5"])),
            (T::IsDomainIntroduced, 0, args(&["7"])),
            (T::Write, 0, args(&["/local/domain/7/control/shutdown", ""])),
            (T::Release, 0, args(&["7"])),
        ],
    );
    s.u8(op::INTRODUCE).u8(7);
    s.u8(op::DIRECT)
        .u8(0)
        .chunk(b"/local/domain/7/name")
        .chunk(b"late");
    conversation(&mut s, 3, &[(T::Read, 0, args(&["name"]))]);
    s.u8(op::RELEASE).u8(7);
    out.push(("domains", s.take()));

    // One request split over three feeds, a reply read through a small ring, then a header
    // announcing an oversized payload.
    s.u8(1);
    let msg = xs_message(T::Write, 9, 0, &args(&["a/b/c", "value"]));
    let (a, rest) = msg.split_at(5);
    let (b, c) = rest.split_at(13);
    for part in [a, b, c] {
        s.u8(op::FEED).u8(1).chunk(part);
    }
    for _ in 0..4 {
        s.u8(op::RING).u8(1).u16(7);
    }
    let mut huge = xs_message(T::Write, 10, 0, b"");
    huge[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX + 1).to_le_bytes());
    s.u8(op::FEED).u8(2).chunk(&huge);
    s.u8(op::RESET).u8(2);
    out.push(("stream", s.take()));
    out
}
