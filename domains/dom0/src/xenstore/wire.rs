//! Framing of the xenstore byte stream: request assembly, reply encoding, payload splitting.
//!
//! Each message is an [`XsdSockmsg`] header (four little-endian `u32`s) followed by `len`
//! payload bytes. Input arrives in arbitrary pieces; [`Assembler`] buffers at most one
//! header plus [`XENSTORE_PAYLOAD_MAX`] bytes beyond what it was last given.

use super::error::XsError;
use alloc::vec::Vec;
use protocol::xen::ring::{XsType, XsdSockmsg, XENSTORE_PAYLOAD_MAX};

/// Bytes in a message header.
pub const HEADER_LEN: usize = 16;

/// One complete request, copied out of the stream once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The header as received (`ty` may be any value).
    pub header: XsdSockmsg,
    /// The `len` payload bytes.
    pub payload: Vec<u8>,
}

fn word(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

/// Decodes a header from the first [`HEADER_LEN`] bytes of `b` (which must be that long).
pub fn decode_header(b: &[u8]) -> XsdSockmsg {
    XsdSockmsg {
        ty: word(b, 0),
        req_id: word(b, 4),
        tx_id: word(b, 8),
        len: word(b, 12),
    }
}

/// Encodes a message: header followed by `payload` (whose length fits the header's `u32`,
/// as every payload built here is at most [`XENSTORE_PAYLOAD_MAX`] bytes).
pub fn encode(ty: XsType, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    for w in [ty as u32, req_id, tx_id, payload.len() as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(payload);
    out
}

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
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = decode_header(avail);
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

/// `s` followed by a NUL.
pub fn nul_terminated(s: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s);
    v.push(0);
    v
}
