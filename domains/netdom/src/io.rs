//! What the shell provides: mapped ring pages, grant copies and the uplink NIC.
//!
//! The core never touches memory it was not handed: ring indexes and slots go through
//! [`RingMem`], frontend packet data through grant copies ([`Io::copy_in`],
//! [`Io::copy_out`]; the backend never maps a frontend's data page), and the uplink through
//! [`Io::uplink_send`]. Host tests implement all of it over plain memory.

use crate::vif::VifId;
pub use protocol::xen::copy::{copy_pieces, CopyPiece, GrantError, GrantSeg, Placed};
use protocol::xen::structs::DomId;

/// One mapped netif ring page (TX or RX), addressed by byte offset within the page.
pub trait RingMem {
    /// Reads the `u32` index at `off` with **Acquire** ordering: slot bytes the frontend
    /// wrote before publishing this value are visible to every later access.
    fn load_index(&self, off: usize) -> u32;
    /// Writes the `u32` index at `off` with **Release** ordering: our slot writes made
    /// before it are visible to the frontend before the new value is.
    fn store_index(&mut self, off: usize, value: u32);
    /// A full barrier (`xen_mb()`): the index stored before it is visible before any load
    /// after it. The notification hold-off rules need it.
    fn fence(&self);
    /// Copies `dst.len()` bytes at `off` (no ordering of its own).
    fn read_bytes(&self, off: usize, dst: &mut [u8]);
    /// Copies `src` to `off` (no ordering of its own).
    fn write_bytes(&mut self, off: usize, src: &[u8]);
}

/// Which ring of a vif.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// Guest → backend.
    Tx,
    /// Backend → guest.
    Rx,
}

/// Everything the core asks of the shell.
pub trait Io {
    /// The mapped `which` ring of vif `id`, if it is mapped.
    fn ring(&mut self, id: VifId, which: Which) -> Option<&mut dyn RingMem>;
    /// Copies from the frontend's pages into `dst`, each piece to `dst[at..at + seg.len]`
    /// (all inside `dst`), in one batch; on failure `dst` is unspecified.
    fn copy_in(
        &mut self,
        domid: DomId,
        pieces: &[Placed],
        dst: &mut [u8],
    ) -> Result<(), GrantError>;
    /// Copies `src` into the frontend's pages, each piece from `src[at..at + seg.len]` (all
    /// inside `src`), in one batch; on failure the pages are unspecified.
    fn copy_out(&mut self, domid: DomId, pieces: &[Placed], src: &[u8]) -> Result<(), GrantError>;
    /// Sends a frame on the uplink NIC; `false` if it could not be queued (dropped).
    fn uplink_send(&mut self, frame: &[u8]) -> bool;
}
