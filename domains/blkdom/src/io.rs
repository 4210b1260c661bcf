//! What the shell provides: the mapped ring, the disk and the grant-copy engine.
//!
//! The core never touches memory it was not handed: ring bytes and indexes go through
//! [`RingMem`], frontend data through [`Grants`] (grant copy, so the backend never maps a
//! frontend's data page), and the disk through [`Disk`]. Host tests implement all three over
//! plain memory.

use protocol::xen::structs::{DomId, GrantRef};

/// The mapped pages of one blkif ring (`1 << order` pages, in ring order).
///
/// Offsets count from the start of the first page. The core never issues an access that
/// crosses a 4 KiB page boundary, so an implementation may map the pages anywhere and pick
/// the page as `off / 4096`. Index offsets are 4-byte-aligned words of the 64-byte
/// [`protocol::xen::blkif::SringHeader`] (the four indexes, and the restart journal in its
/// padding, see [`crate::ring`]), always in the first page.
pub trait RingMem {
    /// Reads the `u32` index at `off` with **Acquire** ordering: slot bytes the frontend wrote
    /// before publishing this value are visible to every later access.
    fn load_index(&self, off: usize) -> u32;
    /// Writes the `u32` index at `off` with **Release** ordering: every slot write made before
    /// (our responses) is visible to the frontend before the new value is.
    fn store_index(&mut self, off: usize, value: u32);
    /// A full barrier (Xen's `xen_mb()`, a `SeqCst` fence / `dmb ish`): the index stored before
    /// it is visible before any load after it. The notification hold-off rules need it.
    fn fence(&self);
    /// Copies `dst.len()` ring bytes at `off` (no ordering of its own).
    fn read_bytes(&self, off: usize, dst: &mut [u8]);
    /// Copies `src` into the ring at `off` (no ordering of its own).
    fn write_bytes(&mut self, off: usize, src: &[u8]);
}

/// Discard support of a disk, as published to the frontend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscardInfo {
    /// `discard-granularity`: bytes per discardable extent.
    pub granularity: u32,
    /// `discard-alignment`: byte offset of the first extent.
    pub alignment: u32,
    /// `discard-secure`: secure erase is honoured.
    pub secure: bool,
}

/// The fixed properties of a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskInfo {
    /// Capacity in 512-byte sectors.
    pub sectors: u64,
    /// Logical sector size in bytes (512 or a larger power of two); I/O must be aligned to it.
    pub sector_size: u32,
    /// Physical sector size in bytes (informational for the frontend).
    pub physical_sector_size: u32,
    /// The medium cannot be written.
    pub read_only: bool,
    /// The disk has a volatile cache that [`Disk::flush`] empties (or is write-through, in
    /// which case `flush` succeeds at once). `false` means flushes are unsupported.
    pub flush: bool,
    /// Discard support, if any.
    pub discard: Option<DiscardInfo>,
}

/// Why a disk operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiskError {
    /// the disk reported an I/O error
    Io,
    /// the disk does not support this operation
    Unsupported,
}

/// One disk, addressed in 512-byte sectors. Buffers are whole sectors; the core has already
/// checked that `sector + len / 512` is within [`DiskInfo::sectors`] and aligned to
/// [`DiskInfo::sector_size`].
pub trait Disk {
    /// The disk's properties (constant while the disk is attached).
    fn info(&self) -> DiskInfo;
    /// Reads `buf.len() / 512` sectors starting at `sector`.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), DiskError>;
    /// Writes `buf.len() / 512` sectors starting at `sector`; durable only after a flush.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), DiskError>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), DiskError>;
    /// Discards `count` sectors starting at `sector` (only called when
    /// [`DiskInfo::discard`] is `Some`).
    fn discard(&mut self, sector: u64, count: u64, secure: bool) -> Result<(), DiskError> {
        let _ = (sector, count, secure);
        Err(DiskError::Unsupported)
    }
}

/// One piece of a frontend's granted page: `len` bytes at `offset` of the page `gref` grants.
/// `offset + len` never exceeds 4096.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantSeg {
    /// The frontend's grant reference.
    pub gref: GrantRef,
    /// Byte offset within the granted page.
    pub offset: u16,
    /// Bytes to copy (at least 1).
    pub len: u16,
}

/// Why a grant copy failed (Xen's `GNTST_*` for `GNTTABOP_copy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantError {
    /// the grant reference is not valid in the frontend's table (`GNTST_bad_gntref`)
    BadRef,
    /// the frontend domain does not exist or does not grant to us (`GNTST_bad_domain`)
    BadDomain,
    /// the grant is read-only and the copy would write it (`GNTST_permission_denied`)
    PermissionDenied,
    /// the copy failed for another reason (`GNTST_general_error` and the rest)
    Failed,
}

impl GrantError {
    /// The error for a `GNTST_*` status; `None` for `GNTST_okay`.
    pub fn from_gntst(status: i16) -> Option<Self> {
        use protocol::xen::structs::gntst;
        match status {
            gntst::OKAY => None,
            gntst::BAD_GNTREF => Some(Self::BadRef),
            gntst::BAD_DOMAIN => Some(Self::BadDomain),
            gntst::PERMISSION_DENIED => Some(Self::PermissionDenied),
            _ => Some(Self::Failed),
        }
    }
}

/// Grant copies between a frontend's granted pages and a local buffer.
///
/// `segs` are laid end to end in the local buffer: segment `i` occupies the bytes after
/// those of segments `0..i`, and the buffer is exactly as long as all of them. The local
/// buffer may cross local page boundaries (an implementation issuing `GNTTABOP_copy` splits
/// there); the remote side of a segment never crosses its page. All segments of one call
/// may be issued as one batch; on failure the buffer contents are unspecified.
pub trait Grants {
    /// Copies from the frontend's pages into `dst` (a write request's data).
    fn copy_in(
        &mut self,
        domid: DomId,
        segs: &[GrantSeg],
        dst: &mut [u8],
    ) -> Result<(), GrantError>;
    /// Copies `src` into the frontend's pages (a read request's data).
    fn copy_out(&mut self, domid: DomId, segs: &[GrantSeg], src: &[u8]) -> Result<(), GrantError>;
}

/// One grant copy of a request's data: `len` bytes between the frontend's page `gref` at
/// `remote_offset` and the local address `local`. Neither side crosses a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyPiece {
    /// The frontend's grant reference.
    pub gref: GrantRef,
    /// Byte offset within the granted page.
    pub remote_offset: u16,
    /// Local (guest-physical = virtual) address.
    pub local: usize,
    /// Bytes.
    pub len: u16,
}

/// The grant copies for `segs` laid end to end in a local buffer starting at `local`: each
/// segment is split where the local side crosses one of our 4 KiB pages (a grant copy
/// names one local frame). Appends to `out`.
pub fn copy_pieces(segs: &[GrantSeg], local: usize, out: &mut alloc::vec::Vec<CopyPiece>) {
    const PAGE: usize = 4096;
    let mut at = local;
    for s in segs {
        let mut done = 0usize;
        while done < usize::from(s.len) {
            let here = at + done;
            let n = (PAGE - here % PAGE).min(usize::from(s.len) - done);
            out.push(CopyPiece {
                gref: s.gref,
                // Both fit: offset + len <= 4096 for every segment.
                remote_offset: s.offset + done as u16,
                local: here,
                len: n as u16,
            });
            done += n;
        }
        at += usize::from(s.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_at_local_page_boundaries_only() {
        let segs = [
            GrantSeg {
                gref: 7,
                offset: 512,
                len: 3584,
            },
            GrantSeg {
                gref: 8,
                offset: 0,
                len: 4096,
            },
        ];
        // A local buffer starting 1 KiB into a page.
        let mut out = alloc::vec::Vec::new();
        copy_pieces(&segs, 0x1_0400, &mut out);
        let got: alloc::vec::Vec<_> = out
            .iter()
            .map(|p| (p.gref, p.remote_offset, p.local, p.len))
            .collect();
        assert_eq!(
            got,
            [
                (7, 512, 0x1_0400, 3072),
                (7, 3584, 0x1_1000, 512),
                (8, 0, 0x1_1200, 3584),
                (8, 3584, 0x1_2000, 512),
            ]
        );
        assert_eq!(
            out.iter().map(|p| usize::from(p.len)).sum::<usize>(),
            3584 + 4096
        );
        // A page-aligned buffer and page-sized segments need no split.
        out.clear();
        copy_pieces(&segs[1..], 0x2_0000, &mut out);
        assert_eq!(out.len(), 1);
    }
}
