//! What the shell provides: the mapped ring, the disk and the grant engine.
//!
//! The core never touches memory it was not handed: ring bytes and indexes go through
//! [`RingMem`], frontend data through [`Grants`], and the disk through [`Disk`]. Data moves
//! one of two ways. Directly: the frontend's pages are device-mapped
//! ([`Grants::map_for_device`], which gives device addresses and no CPU mapping) and the
//! disk transfers straight to and from them ([`Disk::start_direct`]). Or, when that is not
//! available or refused, by grant copy through the disk's staging buffer. Host tests
//! implement all three over plain memory.

pub use crate::persist::Kept;
pub use protocol::xen::copy::{copy_pieces, CopyPiece, GrantError, GrantSeg, Placed};
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

/// One transfer between the disk and its staging buffer: `len` bytes (whole sectors) at
/// `sector`, from or into `staging()[at..at + len]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Write the buffer to the disk (else read the disk into the buffer).
    pub write: bool,
    /// First 512-byte sector.
    pub sector: u64,
    /// Byte offset in the staging buffer.
    pub at: usize,
    /// Bytes, a non-zero multiple of 512.
    pub len: usize,
}

/// One disk, addressed in 512-byte sectors, with a staging buffer that its transfers read
/// and fill. Several transfers may be in flight at once (the device completes them in any
/// order); the core starts up to [`Disk::depth`] of them over disjoint ranges of the buffer
/// and then waits for all of them with [`Disk::finish`]. The core has already checked that
/// every transfer lies within [`DiskInfo::sectors`], is aligned to
/// [`DiskInfo::sector_size`] and lies within the buffer.
pub trait Disk {
    /// The disk's properties (constant while the disk is attached).
    fn info(&self) -> DiskInfo;
    /// Transfers that may be in flight at once (at least 1).
    fn depth(&self) -> usize;
    /// The staging buffer. Every transfer started earlier is finished first (its result is
    /// kept for [`Disk::finish`]), so the device never writes memory a reference covers.
    fn staging(&mut self) -> &mut [u8];
    /// Starts `t`. On an error nothing was started and [`Disk::finish`] will not report it.
    fn start(&mut self, t: Transfer) -> Result<(), DiskError>;
    /// Waits for every started transfer and appends their results, in the order they were
    /// started.
    fn finish(&mut self, results: &mut alloc::vec::Vec<Result<(), DiskError>>);
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), DiskError>;
    /// Discards `count` sectors starting at `sector` (only called when
    /// [`DiskInfo::discard`] is `Some`).
    fn discard(&mut self, sector: u64, count: u64, secure: bool) -> Result<(), DiskError> {
        let _ = (sector, count, secure);
        Err(DiskError::Unsupported)
    }
    /// Segments one [`Disk::start_direct`] transfer may carry; 0 (the default) if the disk
    /// has no direct transfers.
    fn direct_segments(&self) -> usize {
        0
    }
    /// Starts a transfer between `sector` and the device addresses `segs` (a write reads
    /// them, a read fills them), counted with [`Disk::start`]'s transfers for
    /// [`Disk::depth`] and reported by [`Disk::finish`] in the same start order. The core
    /// keeps the memory behind `segs` device-mapped until `finish` has returned. On an
    /// error nothing was started.
    fn start_direct(&mut self, write: bool, sector: u64, segs: &[DmaSeg]) -> Result<(), DiskError> {
        let _ = (write, sector, segs);
        Err(DiskError::Unsupported)
    }
}

/// One piece of a direct transfer: `len` bytes at device address `addr` (whole sectors,
/// within one page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaSeg {
    /// Where the device reads or writes.
    pub addr: u64,
    /// Bytes, a non-zero multiple of 512.
    pub len: u32,
}

/// Which way a grant copy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// From the frontend's pages into our buffer (a write request's data, descriptors).
    In,
    /// From our buffer into the frontend's pages (a read request's data).
    Out,
}

/// Grant copies between a frontend's granted pages and a local buffer, and device maps of
/// them.
///
/// The local side of a piece may cross local page boundaries (an implementation issuing
/// `GNTTABOP_copy` splits there, see [`copy_pieces`]); the remote side never crosses its
/// page. All pieces of one call may be issued as one batch; on failure the buffer and the
/// frontend's pages are unspecified and the caller may retry subsets to find the culprit
/// (copies are idempotent).
pub trait Grants {
    /// Copies every piece in direction `dir` between frontend `domid`'s pages and `buf`.
    fn copy(
        &mut self,
        domid: DomId,
        dir: Dir,
        pieces: &[Placed],
        buf: &mut [u8],
    ) -> Result<(), GrantError>;

    /// Device-maps frontend `domid`'s grants `refs` (`(gref, readonly)`: read-only when the
    /// device only reads the page), as one batch, appending to `addrs` one entry per ref:
    /// the device address of its page, or `None` where the map was refused. Every map
    /// stays (its page pinned for the frontend) until [`Grants::unmap_for_device`]. The
    /// default maps nothing: data then moves by copy.
    fn map_for_device(
        &mut self,
        domid: DomId,
        refs: &[(GrantRef, bool)],
        addrs: &mut alloc::vec::Vec<Option<u64>>,
    ) {
        let _ = domid;
        addrs.extend(refs.iter().map(|_| None));
    }

    /// Unmaps every device map made since the last call, as one batch. The core calls it
    /// only once the disk has finished every transfer that used them.
    fn unmap_for_device(&mut self) {}

    /// Device-maps frontend `domid`'s grants `refs` writable, as one batch, for keeping
    /// (persistent grants, see [`crate::persist`]): appends one entry per ref, the map's
    /// handle and device address, or `None` where it was refused. Unlike
    /// [`Grants::map_for_device`] these maps stay until [`Grants::unmap_persistent`] names
    /// them. The default keeps nothing (requests then move as without the feature).
    fn map_persistent(
        &mut self,
        domid: DomId,
        refs: &[GrantRef],
        kept: &mut alloc::vec::Vec<Option<Kept>>,
    ) {
        let _ = domid;
        kept.extend(refs.iter().map(|_| None));
    }

    /// Unmaps the kept maps `kept`, as one batch. The core calls it only while no transfer
    /// uses them.
    fn unmap_persistent(&mut self, kept: &[Kept]) {
        let _ = kept;
    }
}
