//! Host tests: protocol conversations driven through [`Xenstore::feed`] as a client would.

mod domains;
mod nodes;
mod stream;
mod txns;
mod watches;

use super::wire::{encode, HEADER_LEN};
use super::*;
use alloc::string::String;
use protocol::xen::ring::XsType;
use protocol::xen::ring::XsdSockmsg;

/// NUL-terminates and concatenates `parts`.
fn args(parts: &[&str]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in parts {
        v.extend_from_slice(p.as_bytes());
        v.push(0);
    }
    v
}

/// One message read back from a connection's output.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Msg {
    ty: u32,
    req_id: u32,
    tx_id: u32,
    payload: Vec<u8>,
}

/// Splits a byte stream into messages (the test's view of the response ring).
fn parse(mut bytes: &[u8]) -> Vec<Msg> {
    let mut out = Vec::new();
    while bytes.len() >= HEADER_LEN {
        let h = XsdSockmsg::decode(bytes).expect("a whole header");
        let end = HEADER_LEN + h.len as usize;
        out.push(Msg {
            ty: h.ty,
            req_id: h.req_id,
            tx_id: h.tx_id,
            payload: bytes[HEADER_LEN..end].to_vec(),
        });
        bytes = &bytes[end..];
    }
    assert!(bytes.is_empty(), "trailing partial message");
    out
}

/// A store with some domains introduced, and per-domain event mailboxes.
struct Harness {
    xs: Xenstore,
    next_req: u32,
    events: BTreeMap<DomId, Vec<(String, String)>>,
}

type Reply = Result<Vec<u8>, String>;

impl Harness {
    fn new(doms: &[DomId]) -> Self {
        Self::with_quotas(doms, Quotas::default())
    }

    fn with_quotas(doms: &[DomId], quotas: Quotas) -> Self {
        let mut xs = Xenstore::new(quotas);
        for &d in doms {
            xs.introduce(d).unwrap();
        }
        Self {
            xs,
            next_req: 100,
            events: BTreeMap::new(),
        }
    }

    /// Moves `dom`'s queued output into its mailbox (events) and returns the other messages.
    fn collect(&mut self, dom: DomId) -> Vec<Msg> {
        let mut replies = Vec::new();
        for m in parse(&self.xs.take_output(dom, usize::MAX)) {
            if m.ty == XsType::WatchEvent as u32 {
                assert_eq!((m.req_id, m.tx_id), (0, 0));
                let parts: Vec<&[u8]> = m.payload.split(|&b| b == 0).collect();
                assert_eq!(parts.len(), 3, "event is path\\0token\\0");
                let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
                self.events
                    .entry(dom)
                    .or_default()
                    .push((s(parts[0]), s(parts[1])));
            } else {
                replies.push(m);
            }
        }
        replies
    }

    /// Sends one request and returns its reply: the payload, or the error name.
    fn call(&mut self, dom: DomId, ty: XsType, tx: u32, payload: &[u8]) -> Reply {
        self.next_req += 1;
        let id = self.next_req;
        self.xs.feed(dom, &encode(ty, id, tx, payload)).unwrap();
        let replies = self.collect(dom);
        assert_eq!(replies.len(), 1, "exactly one reply");
        let r = &replies[0];
        assert_eq!((r.req_id, r.tx_id), (id, tx), "reply echoes ids");
        if r.ty == XsType::Error as u32 {
            let (nul, name) = r.payload.split_last().unwrap();
            assert_eq!(*nul, 0, "error name is NUL-terminated");
            return Err(String::from_utf8(name.to_vec()).unwrap());
        }
        assert_eq!(r.ty, ty as u32, "reply type echoes the request");
        Ok(r.payload.clone())
    }

    fn ok(&mut self, dom: DomId, ty: XsType, tx: u32, payload: &[u8]) {
        assert_eq!(self.call(dom, ty, tx, payload), Ok(b"OK\0".to_vec()));
    }

    fn read(&mut self, dom: DomId, path: &str) -> Reply {
        self.call(dom, XsType::Read, 0, &args(&[path]))
    }

    fn write(&mut self, dom: DomId, path: &str, value: &str) -> Reply {
        self.write_tx(dom, 0, path, value)
    }

    fn write_tx(&mut self, dom: DomId, tx: u32, path: &str, value: &str) -> Reply {
        let mut p = args(&[path]);
        p.extend_from_slice(value.as_bytes());
        self.call(dom, XsType::Write, tx, &p)
    }

    fn dir(&mut self, dom: DomId, path: &str) -> Result<Vec<String>, String> {
        let raw = self.call(dom, XsType::Directory, 0, &args(&[path]))?;
        Ok(strings(&raw))
    }

    fn set_perms(&mut self, dom: DomId, path: &str, perms: &[&str]) -> Reply {
        let mut parts = vec![path];
        parts.extend_from_slice(perms);
        self.call(dom, XsType::SetPerms, 0, &args(&parts))
    }

    fn get_perms(&mut self, dom: DomId, path: &str) -> Result<Vec<String>, String> {
        Ok(strings(&self.call(
            dom,
            XsType::GetPerms,
            0,
            &args(&[path]),
        )?))
    }

    fn watch(&mut self, dom: DomId, path: &str, token: &str) -> Reply {
        self.call(dom, XsType::Watch, 0, &args(&[path, token]))
    }

    fn start(&mut self, dom: DomId) -> u32 {
        let id = self.call(dom, XsType::TransactionStart, 0, b"\0").unwrap();
        let (nul, digits) = id.split_last().unwrap();
        assert_eq!(*nul, 0);
        core::str::from_utf8(digits).unwrap().parse().unwrap()
    }

    fn end(&mut self, dom: DomId, tx: u32, commit: bool) -> Reply {
        let arg = if commit { "T" } else { "F" };
        self.call(dom, XsType::TransactionEnd, tx, &args(&[arg]))
    }

    /// Events delivered to `dom` since the last call, as (path, token).
    fn events(&mut self, dom: DomId) -> Vec<(String, String)> {
        assert!(self.collect(dom).is_empty(), "unexpected reply");
        self.events.remove(&dom).unwrap_or_default()
    }
}

/// NUL-terminated strings of a payload.
fn strings(raw: &[u8]) -> Vec<String> {
    super::wire::strings(raw)
        .into_iter()
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect()
}

fn err(name: &str) -> Result<Vec<u8>, String> {
    Err(name.into())
}

fn ev(path: &str, token: &str) -> (String, String) {
    (path.into(), token.into())
}

/// `Ok(b"OK\0")`.
fn okr() -> Reply {
    Ok(b"OK\0".to_vec())
}
