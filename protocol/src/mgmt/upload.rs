//! Uploading a file for `ctl create` (`xl create` of a kernel the system was not booted
//! with): the host sends it in chunks that fit a frame; dom0 writes them into a module it
//! creates from its memory quota and checks length and SHA-256 at the end.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Most file bytes in one [`UploadOp::Chunk`]: a frame's worth with room for the encoding.
pub const UPLOAD_CHUNK: usize = 12 * 1024;

/// One step of an upload. Only one upload is open at a time; a new `Begin` abandons an
/// unfinished one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UploadOp {
    /// Starts an upload of `size` bytes that will be known as module `label` (≤ 31 bytes,
    /// chosen by the host from the hash, so equal labels mean equal files). Answer:
    /// [`super::Response::Upload`], whose `have` says dom0 already holds it whole (then
    /// nothing more is sent).
    Begin {
        /// The module's label, as a [`super::Request::Create`] will name it.
        label: String,
        /// Length in bytes (> 0).
        size: u64,
        /// SHA-256 of the whole file.
        sha256: [u8; 32],
    },
    /// The next bytes, at `offset` (chunks come in order). Answer: `Done`.
    Chunk {
        /// Where they go; must equal the bytes received so far.
        offset: u64,
        /// At most [`UPLOAD_CHUNK`] bytes.
        bytes: Vec<u8>,
    },
    /// Every byte was sent: dom0 checks length and hash and keeps the module. Answer:
    /// `Done`, or an error (the module is then dropped).
    End,
}
