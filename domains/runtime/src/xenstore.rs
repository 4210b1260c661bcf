//! A xenstore client for our Rust domains, over the ring page the builder gave every guest
//! (`HVM_PARAM_STORE_PFN`, served by dom0) and its event channel. Requests are synchronous:
//! one message out, its reply awaited with a time limit. Watch events that arrive in
//! between are queued and handed out by [`XsClient::events`].
//!
//! Waiting for a reply spins until the domain says its interrupts are set up
//! ([`XsClient::sleep_while_waiting`]); from then on it sleeps in WFI until the store's
//! event or the deadline. A spinning vCPU never exits, so on a host whose CPUs are threads
//! (QEMU) it holds a host core for as long as dom0 takes to answer: with several backends
//! polling xenstore that starved the very vCPUs (dom0's, the frontends') that had to run
//! for the answer to come, and two Linux guests beside blkdom stalled for minutes.

use crate::timer;
use crate::xen::{self, MappedPage, XenError};
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::xen::ring::{
    xs_message, xs_string, XsType, XsdSockmsg, XENSTORE_PAYLOAD_MAX, XS_HEADER_LEN,
};
use protocol::xen::ring_io::{XS_REQ, XS_RSP};
use protocol::xen::structs::DOMID_SELF;
use protocol::xen::xenbus::XenbusState;
use protocol::xen::HvmParam;

/// How long a reply may take.
const REPLY_MS: u64 = 2000;

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XsError {
    /// The Xen call behind it failed.
    Xen(XenError),
    /// The ring's indexes are corrupt.
    Ring,
    /// No reply in time.
    Timeout,
    /// The store answered with this error name (`ENOENT`, `EACCES`, …).
    Store(String),
    /// The reply was not the expected type or was malformed.
    BadReply,
}

/// A watch firing: the path that changed and the token given to [`XsClient::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The node that changed (or was removed).
    pub path: String,
    /// The watch's token.
    pub token: String,
}

impl WatchEvent {
    /// Whether this event of the watch `token` is news to a watcher that itself writes
    /// nodes named `own_leaf` under the watched tree (a backend's published counters): a
    /// watch fires for the watcher's own writes too, and those tell it nothing.
    pub fn is_news(&self, token: &str, own_leaf: &str) -> bool {
        self.token == token && self.path.rsplit('/').next() != Some(own_leaf)
    }
}

/// A connection to xenstore.
pub struct XsClient {
    page: MappedPage,
    port: u32,
    req_id: u32,
    /// Bytes read from the response ring that do not yet form a whole message.
    inbox: Vec<u8>,
    /// Watch events that arrived, oldest first (they interleave with replies).
    events: VecDeque<WatchEvent>,
    /// Wait for replies in WFI instead of spinning (see the module docs).
    sleep: bool,
}

/// What the next whole message in the inbox is.
enum Incoming {
    Event(WatchEvent),
    Reply { req_id: u32, ty: u32, body: Vec<u8> },
}

impl XsClient {
    /// Connects through the ring page and channel the builder set up.
    pub fn open() -> Result<Self, XsError> {
        let pfn = xen::hvm_get_param(DOMID_SELF, HvmParam::StorePfn).map_err(XsError::Xen)?;
        let port = xen::hvm_get_param(DOMID_SELF, HvmParam::StoreEvtchn).map_err(XsError::Xen)?;
        if pfn == 0 {
            return Err(XsError::Xen(XenError::Errno(
                protocol::xen::XenErrno::ENOENT,
            )));
        }
        Ok(Self {
            page: MappedPage::new(pfn * 4096),
            port: port as u32,
            req_id: 0,
            inbox: Vec::new(),
            events: VecDeque::new(),
            sleep: false,
        })
    }

    /// From now on, wait for replies in WFI rather than spinning. The caller promises that
    /// the event-channel and virtual-timer PPIs are enabled at its GIC with IRQs unmasked
    /// (so the store's event or the deadline wakes the WFI), and that nothing else needs the
    /// virtual timer while a request is in flight: the wait arms it for the reply deadline
    /// and disarms it after.
    pub fn sleep_while_waiting(&mut self) {
        self.sleep = true;
    }

    /// Waits until the response ring has bytes or `deadline` passes: in WFI when allowed,
    /// else one spin.
    fn await_news(&self, deadline: u64) {
        if !self.sleep {
            core::hint::spin_loop();
            return;
        }
        let news = || XS_RSP.fill(&self.page).map_or(true, |n| n > 0);
        timer::set_deadline(deadline);
        // The check and the WFI run with IRQs masked: an event that lands between them
        // leaves its interrupt pending, which still ends the WFI.
        while !crate::arch::without_interrupts(|| {
            let done = news() || timer::now() >= deadline;
            if !done {
                crate::arch::wfi();
            }
            done
        }) {}
        timer::stop();
    }

    /// The event channel the store signals us on (news in the response ring).
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Moves whatever the response ring holds into the inbox. The store is told that room
    /// was made only if the ring was full, as Linux's xenbus does: only then can it be
    /// waiting for room (it writes until the ring is full, and comes back by itself when it
    /// stopped at its own per-pass bound). Telling it after every read cost a send, on a
    /// shared pCPU a locked pass and a switch to dom0, for each reply.
    fn pump(&mut self) -> Result<(), XsError> {
        let mut made_room = false;
        loop {
            let full = XS_RSP.fill(&self.page).map_err(|_| XsError::Ring)? == XS_RSP.size();
            let mut buf = [0u8; 256];
            let n = XS_RSP
                .consume(&mut self.page, &mut buf)
                .map_err(|_| XsError::Ring)?;
            if n == 0 {
                break;
            }
            made_room |= full;
            self.inbox.extend_from_slice(&buf[..n]);
        }
        if made_room {
            let _ = xen::evtchn_send(self.port);
        }
        Ok(())
    }

    /// Splits the next whole message off the inbox, if there is one.
    fn next_message(&mut self) -> Result<Option<Incoming>, XsError> {
        let Some(h) = XsdSockmsg::decode(&self.inbox) else {
            return Ok(None);
        };
        if h.len > XENSTORE_PAYLOAD_MAX {
            return Err(XsError::Ring);
        }
        let end = XS_HEADER_LEN + h.len as usize;
        if self.inbox.len() < end {
            return Ok(None);
        }
        let body: Vec<u8> = self.inbox[XS_HEADER_LEN..end].to_vec();
        self.inbox.drain(..end);
        if h.ty == XsType::WatchEvent as u32 {
            let mut parts = body.split(|&b| b == 0);
            let path = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into();
            let token = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into();
            return Ok(Some(Incoming::Event(WatchEvent { path, token })));
        }
        Ok(Some(Incoming::Reply {
            req_id: h.req_id,
            ty: h.ty,
            body,
        }))
    }

    /// Sends one request and returns the reply's payload. Watch events that arrive
    /// meanwhile are queued for [`XsClient::events`].
    fn call(&mut self, ty: XsType, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        self.req_id = self.req_id.wrapping_add(1);
        let msg = xs_message(ty, self.req_id, 0, payload);
        let deadline = timer::now().saturating_add(timer::ms_to_ticks(REPLY_MS, timer::freq()));
        let mut sent = 0;
        while sent < msg.len() {
            sent += XS_REQ
                .produce(&mut self.page, &msg[sent..])
                .map_err(|_| XsError::Ring)?;
            xen::evtchn_send(self.port).map_err(XsError::Xen)?;
            if timer::now() > deadline {
                return Err(XsError::Timeout);
            }
            // Replies to earlier requests may be what fills the ring: keep draining it.
            self.pump()?;
        }
        loop {
            self.pump()?;
            while let Some(m) = self.next_message()? {
                match m {
                    Incoming::Event(e) => self.events.push_back(e),
                    // A late reply to a request that timed out: nobody waits for it.
                    Incoming::Reply { req_id, .. } if req_id != self.req_id => {}
                    Incoming::Reply { ty: t, body, .. } if t == XsType::Error as u32 => {
                        let name = body.split(|&b| b == 0).next().unwrap_or(&[]);
                        return Err(XsError::Store(String::from_utf8_lossy(name).into()));
                    }
                    Incoming::Reply { ty: t, body, .. } if t == ty as u32 => return Ok(body),
                    Incoming::Reply { .. } => return Err(XsError::BadReply),
                }
            }
            if timer::now() > deadline {
                return Err(XsError::Timeout);
            }
            self.await_news(deadline);
        }
    }

    /// The watch events that arrived so far (never blocks).
    ///
    /// Event loops call this once per round, so it beats too ([`crate::heartbeat::beat`]):
    /// a loop kept busy by I/O, which may not go idle for a while, is still alive.
    pub fn events(&mut self) -> Result<Vec<WatchEvent>, XsError> {
        crate::heartbeat::beat();
        self.pump()?;
        while let Some(m) = self.next_message()? {
            if let Incoming::Event(e) = m {
                self.events.push_back(e);
            }
        }
        Ok(self.events.drain(..).collect())
    }

    /// `XS_READ` of `path` (relative paths are under our `/local/domain/<id>`).
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        self.call(XsType::Read, &xs_string(path.as_bytes()))
    }

    /// `XS_READ` of `path` as text; `None` if the node does not exist.
    pub fn read_str(&mut self, path: &str) -> Result<Option<String>, XsError> {
        match self.read(path) {
            Ok(v) => Ok(Some(String::from_utf8_lossy(&v).into())),
            Err(XsError::Store(e)) if e == "ENOENT" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `XS_WRITE` of `value` at `path`.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        let mut p = xs_string(path.as_bytes());
        p.extend_from_slice(value);
        self.call(XsType::Write, &p).map(drop)
    }

    /// `XS_DIRECTORY` of `path`: the children's names.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let body = self.call(XsType::Directory, &xs_string(path.as_bytes()))?;
        Ok(body
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into())
            .collect())
    }

    /// `XS_WATCH`: report changes at or below `path` with `token` (the store also fires it
    /// once right away).
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let mut p = xs_string(path.as_bytes());
        p.extend_from_slice(&xs_string(token.as_bytes()));
        self.call(XsType::Watch, &p).map(drop)
    }

    /// The text at `path`, or `None` when it is absent or the store could not be asked (a
    /// backend's scan treats both as "not there yet" and looks again later).
    pub fn text(&mut self, path: &str) -> Option<String> {
        self.read_str(path).ok().flatten()
    }

    /// The XenbusState in `dir/state` (Unknown if it has none: that end is gone).
    pub fn xenbus_state(&mut self, dir: &str) -> XenbusState {
        self.text(&alloc::format!("{dir}/state"))
            .map_or(XenbusState::Unknown, |s| XenbusState::parse(s.as_bytes()))
    }

    /// The children of `path`: empty if the store says it does not exist, `None` if the
    /// store could not be asked (so a failed read removes nothing from a backend's view).
    pub fn listing(&mut self, path: &str) -> Option<Vec<String>> {
        match self.directory(path) {
            Ok(v) => Some(v),
            Err(XsError::Store(e)) if e == "ENOENT" => Some(Vec::new()),
            Err(_) => None,
        }
    }
}
