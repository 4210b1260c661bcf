//! Framing of the xenstore byte stream: request assembly, reply encoding, payload splitting.
//!
//! Each message is an [`XsdSockmsg`] header (four little-endian `u32`s) followed by `len`
//! payload bytes. Input arrives in arbitrary pieces; [`Assembler`] buffers at most one
//! header plus [`XENSTORE_PAYLOAD_MAX`] bytes beyond what it was last given.

use super::error::XsError;
use alloc::vec::Vec;
use protocol::xen::ring::{XsdSockmsg, XENSTORE_PAYLOAD_MAX};

pub use protocol::xen::ring::XS_HEADER_LEN as HEADER_LEN;

/// One complete request, copied out of the stream once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The header as received (`ty` may be any value).
    pub header: XsdSockmsg,
    /// The `len` payload bytes.
    pub payload: Vec<u8>,
}

pub use protocol::xen::ring::xs_message as encode;

/// Buffers one connection's partial input.
#[derive(Debug, Default)]
pub struct Assembler {
    buf: Vec<u8>,
    start: usize,
}

impl Assembler {
    /// Appends bytes read from the ring.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete request, `Ok(None)` if more bytes are needed, or the announced
    /// payload length if it exceeds [`XENSTORE_PAYLOAD_MAX`] (the stream cannot be resynced).
    pub fn next_request(&mut self) -> Result<Option<Request>, u32> {
        let avail = &self.buf[self.start..];
        let Some(header) = XsdSockmsg::decode(avail) else {
            return Ok(None);
        };
        if header.len > XENSTORE_PAYLOAD_MAX {
            return Err(header.len);
        }
        let end = HEADER_LEN + header.len as usize;
        if avail.len() < end {
            return Ok(None);
        }
        let payload = avail[HEADER_LEN..end].to_vec();
        self.start += end;
        Ok(Some(Request { header, payload }))
    }

    /// Drops everything buffered.
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
    }
}

/// The NUL-terminated strings at the start of `payload`; bytes after the last NUL are ignored
/// (xenstored's `get_strings`).
pub fn strings(payload: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = payload.split(|&b| b == 0).collect();
    v.pop(); // the unterminated tail (empty when the payload ends with NUL)
    v
}

/// The single argument of a request whose payload must be exactly one NUL-terminated string.
pub fn one_arg(payload: &[u8]) -> Result<&[u8], XsError> {
    match payload.split_last() {
        Some((0, arg)) if !arg.contains(&0) => Ok(arg),
        _ => Err(XsError::Invalid),
    }
}

/// Exactly `N` NUL-terminated strings (trailing unterminated bytes ignored).
pub fn args<const N: usize>(payload: &[u8]) -> Result<[&[u8]; N], XsError> {
    strings(payload).try_into().map_err(|_| XsError::Invalid)
}

/// A decimal number (at most 10 digits, no sign, no spaces).
pub fn decimal(s: &[u8]) -> Result<u64, XsError> {
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return Err(XsError::Invalid);
    }
    Ok(s.iter()
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')))
}

/// A domain id in decimal, 0..=65535 (xenstored's `parse_domid`).
pub fn domid(s: &[u8]) -> Result<u16, XsError> {
    u16::try_from(decimal(s)?).map_err(|_| XsError::Invalid)
}

pub use protocol::xen::ring::xs_string as nul_terminated;
