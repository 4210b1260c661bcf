//! A xenstore client for our Rust domains, over the ring page the builder gave every guest
//! (`HVM_PARAM_STORE_PFN`, served by dom0) and its event channel. Requests are synchronous:
//! one message out, its reply polled for, with a time limit.

use crate::timer;
use crate::xen::{self, MappedPage, XenError};
use alloc::string::String;
use alloc::vec::Vec;
use protocol::xen::ring::XsType;
use protocol::xen::ring_io::{SharedRing, XS_REQ, XS_RSP};
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

struct Page(MappedPage);

impl SharedRing for Page {
    fn load_index(&self, off: usize) -> u32 {
        self.0.load_u32(off)
    }
    fn store_index(&mut self, off: usize, value: u32) {
        self.0.store_u32(off, value)
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        for (i, b) in dst.iter_mut().enumerate() {
            *b = self.0.read_u8(off + i);
        }
    }
    fn write_bytes(&mut self, off: usize, src: &[u8]) {
        for (i, b) in src.iter().enumerate() {
            self.0.write_u8(off + i, *b);
        }
    }
}

/// A connection to xenstore.
pub struct XsClient {
    page: Page,
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
            page: Page(MappedPage::new(pfn * 4096)),
            port: port as u32,
            req_id: 0,
        })
    }

    /// Sends one request and returns the reply's payload.
    fn call(&mut self, ty: XsType, payload: &[u8]) -> Result<Vec<u8>, XsError> {
        self.req_id = self.req_id.wrapping_add(1);
        // `xsd_sockmsg`: type, request id, transaction id (none), payload length.
        let mut msg = Vec::with_capacity(16 + payload.len());
        for word in [ty as u32, self.req_id, 0, payload.len() as u32] {
            msg.extend_from_slice(&word.to_le_bytes());
        }
        msg.extend_from_slice(payload);
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
            if got.len() >= 16 {
                let word =
                    |i: usize| u32::from_le_bytes([got[i], got[i + 1], got[i + 2], got[i + 3]]);
                let (h_ty, h_req, h_len) = (word(0), word(4), word(12) as usize);
                if got.len() >= 16 + h_len {
                    let body = got[16..16 + h_len].to_vec();
                    if h_req != self.req_id {
                        return Err(XsError::BadReply);
                    }
                    if h_ty == XsType::Error as u32 {
                        let name = body.split(|&b| b == 0).next().unwrap_or(&[]);
                        return Err(XsError::Store(String::from_utf8_lossy(name).into()));
                    }
                    if h_ty != ty as u32 {
                        return Err(XsError::BadReply);
                    }
                    return Ok(body);
                }
            }
            if timer::now() > deadline {
                return Err(XsError::Timeout);
            }
            core::hint::spin_loop();
        }
    }

    /// `XS_READ` of `path` (relative paths are under our `/local/domain/<id>`).
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        self.call(XsType::Read, &nul_terminated(path))
    }

    /// `XS_WRITE` of `value` at `path`.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        let mut p = nul_terminated(path);
        p.extend_from_slice(value);
        self.call(XsType::Write, &p).map(drop)
    }

    /// `XS_DIRECTORY` of `path`: the children's names.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let body = self.call(XsType::Directory, &nul_terminated(path))?;
        Ok(body
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into())
            .collect())
    }
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}
