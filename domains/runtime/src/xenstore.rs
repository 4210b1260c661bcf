//! A xenstore client for our Rust domains, over the ring page the builder gave every guest
//! (`HVM_PARAM_STORE_PFN`, served by dom0) and its event channel. Requests are synchronous:
//! one message out, its reply polled for, with a time limit.

use crate::timer;
use crate::xen::{self, MappedPage, XenError};
use alloc::string::String;
use alloc::vec::Vec;
use protocol::xen::ring::{xs_message, xs_reply, xs_string, XsReply, XsType};
use protocol::xen::ring_io::{XS_REQ, XS_RSP};
use protocol::xen::structs::DOMID_SELF;
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

/// A connection to xenstore.
pub struct XsClient {
    page: MappedPage,
    port: u32,
    req_id: u32,
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
        })
    }

    /// Sends one request and returns the reply's payload.
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
        }
        let mut got = Vec::new();
        loop {
            let mut buf = [0u8; 256];
            let n = XS_RSP
                .consume(&mut self.page, &mut buf)
                .map_err(|_| XsError::Ring)?;
            got.extend_from_slice(&buf[..n]);
            if n > 0 {
                let _ = xen::evtchn_send(self.port);
            }
            match xs_reply(&got, self.req_id, ty) {
                XsReply::Partial => {}
                XsReply::Ok(body) => return Ok(body.to_vec()),
                XsReply::Error(name) => {
                    return Err(XsError::Store(String::from_utf8_lossy(name).into()))
                }
                XsReply::Unexpected => return Err(XsError::BadReply),
            }
            if timer::now() > deadline {
                return Err(XsError::Timeout);
            }
            core::hint::spin_loop();
        }
    }

    /// `XS_READ` of `path` (relative paths are under our `/local/domain/<id>`).
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        self.call(XsType::Read, &xs_string(path.as_bytes()))
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
}
