//! Framing of management messages on a byte stream: postcard, then COBS, then a `0x00`.
//!
//! COBS removes every `0x00` from the encoded message, so `0x00` marks frame boundaries and a
//! reader that joins mid-stream (or after garbage) resynchronises at the next `0x00`.
//! Invariant of [`FrameDecoder`]: it never holds more than [`MAX_FRAME`] bytes, whatever the
//! input; an oversize frame is dropped up to its terminator and reported once.

use alloc::vec::Vec;
use core::fmt;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest frame on the wire, `0x00` terminator included.
pub const MAX_FRAME: usize = 16 * 1024;

/// Why bytes are not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// the frame is larger than MAX_FRAME bytes
    TooLarge,
    /// the frame is not valid COBS
    BadEncoding,
    /// the frame does not hold exactly one message of the expected type
    BadMessage,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(f, "frame larger than {MAX_FRAME} bytes"),
            Self::BadEncoding => f.write_str("frame is not valid COBS"),
            Self::BadMessage => f.write_str("frame does not hold a valid message"),
        }
    }
}

/// Encodes one message as a frame: COBS-encoded postcard bytes and a `0x00` terminator.
pub fn encode<T: Serialize + ?Sized>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let bytes = postcard::to_allocvec_cobs(msg).map_err(|_| FrameError::BadMessage)?;
    if bytes.len() > MAX_FRAME {
        return Err(FrameError::TooLarge);
    }
    Ok(bytes)
}

/// Decodes one frame as yielded by [`FrameDecoder`] (COBS bytes, the terminator optional).
/// The whole frame must be exactly one `T`: trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, FrameError> {
    let frame = frame.strip_suffix(&[0]).unwrap_or(frame);
    if frame.len() >= MAX_FRAME {
        return Err(FrameError::TooLarge);
    }
    if frame.is_empty() || frame.contains(&0) {
        return Err(FrameError::BadEncoding);
    }
    let mut buf = frame.to_vec();
    let len = cobs::decode_in_place(&mut buf).map_err(|_| FrameError::BadEncoding)?;
    let payload = buf.get(..len).ok_or(FrameError::BadEncoding)?;
    match postcard::take_from_bytes::<T>(payload) {
        Ok((msg, [])) => Ok(msg),
        Ok(_) | Err(_) => Err(FrameError::BadMessage),
    }
}

/// Splits a byte stream into frames, however the bytes arrive (one at a time, several
/// frames at once, a frame split across reads).
#[derive(Clone, Debug, Default)]
pub struct FrameDecoder {
    /// Bytes of the current frame so far (never a `0x00`, never more than `MAX_FRAME - 1`).
    buf: Vec<u8>,
    /// The current frame outgrew `MAX_FRAME`; drop bytes up to the next `0x00`.
    oversize: bool,
}

impl FrameDecoder {
    /// A decoder waiting for the start of a frame.
    pub const fn new() -> Self {
        Self {
            buf: Vec::new(),
            oversize: false,
        }
    }

    /// Takes one byte; returns a complete frame (COBS bytes without the terminator, for
    /// [`decode`]) when `byte` ends one. Empty frames (lone `0x00`s) are skipped; an oversize
    /// frame yields `Err(TooLarge)` once, at its terminator.
    pub fn push(&mut self, byte: u8) -> Option<Result<Vec<u8>, FrameError>> {
        if byte == 0 {
            if core::mem::take(&mut self.oversize) {
                return Some(Err(FrameError::TooLarge));
            }
            if self.buf.is_empty() {
                return None;
            }
            return Some(Ok(core::mem::take(&mut self.buf)));
        }
        if self.oversize {
            return None;
        }
        if self.buf.len() >= MAX_FRAME - 1 {
            self.oversize = true;
            self.buf = Vec::new();
            return None;
        }
        self.buf.push(byte);
        None
    }

    /// Takes a run of bytes; returns every frame they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
        bytes.iter().filter_map(|&b| self.push(b)).collect()
    }

    /// Bytes of an unfinished frame held (0 between frames and while dropping an oversize
    /// one).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Forgets any unfinished frame (e.g. when the peer reconnects).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.oversize = false;
    }
}
