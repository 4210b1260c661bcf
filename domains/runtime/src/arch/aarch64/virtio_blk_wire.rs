//! The virtio-blk wire format we use (virtio 1.2, 5.2): feature bits, request types and
//! headers, the configuration space fields, and the limits a [`super::Block`] works in.

use bitflags::bitflags;
use virtio_drivers::transport::mmio::MmioTransport;
use virtio_drivers::transport::Transport;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Bytes per sector (virtio-blk addresses the disk in 512-byte sectors).
pub(super) const SECTOR: usize = 512;
/// The request queue's index.
pub(super) const QUEUE: u16 = 0;
/// Descriptors in the queue. With indirect descriptors a request takes one of them, so
/// this bounds the requests in flight; a request's chain (header, segments, status) is
/// bounded by it too, which is why it is larger than [`BLOCK_DEPTH`].
pub(super) const QUEUE_SIZE: usize = 64;

/// Transfers a [`super::Block`] keeps in flight at most.
pub const BLOCK_DEPTH: usize = 8;

/// Most segments one [`super::Block::start_direct`] transfer may carry (the most a blkif
/// request of blkdom's carries); its chain is this plus the header and the status.
pub const DIRECT_SEGMENTS: usize = 32;

const _: () = assert!(DIRECT_SEGMENTS + 2 <= QUEUE_SIZE);

bitflags! {
    /// The feature bits we negotiate (virtio 1.2, 5.2.3).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub(super) struct Features: u64 {
        const RO = 1 << 5;
        const FLUSH = 1 << 9;
        const DISCARD = 1 << 13;
        const RING_INDIRECT_DESC = 1 << 28;
        const RING_EVENT_IDX = 1 << 29;
        const VERSION_1 = 1 << 32;
    }
}

/// Request types (virtio 1.2, 5.2.6).
pub(super) const T_IN: u32 = 0;
pub(super) const T_OUT: u32 = 1;
pub(super) const T_FLUSH: u32 = 4;
pub(super) const T_GET_ID: u32 = 8;
pub(super) const T_DISCARD: u32 = 11;
/// Status byte of a request that succeeded (anything else is a failure).
pub(super) const S_OK: u8 = 0;
/// A status byte the device has not written yet.
pub(super) const S_PENDING: u8 = 0xFF;

/// Configuration space offsets (`struct virtio_blk_config`).
pub(super) const CFG_CAPACITY: usize = 0;
pub(super) const CFG_MAX_DISCARD_SECTORS: usize = 36;
pub(super) const CFG_MAX_DISCARD_SEG: usize = 40;
pub(super) const CFG_DISCARD_ALIGNMENT: usize = 44;

/// `struct virtio_blk_req`'s header.
#[repr(C)]
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(super) struct Header {
    pub(super) kind: u32,
    pub(super) reserved: u32,
    pub(super) sector: u64,
}

/// `struct virtio_blk_discard_write_zeroes`.
#[repr(C)]
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(super) struct DiscardRange {
    pub(super) sector: u64,
    pub(super) num_sectors: u32,
    pub(super) flags: u32,
}

/// What the device accepts in one discard request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscardLimits {
    /// Sectors one request may discard.
    pub max_sectors: u32,
    /// Discard granularity in sectors (`discard_sector_alignment`, at least 1).
    pub alignment_sectors: u32,
}

/// One piece of a direct transfer: `len` bytes (whole sectors, within one page) at device
/// address `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaSeg {
    /// The address the device reads or writes.
    pub addr: u64,
    /// Bytes, a non-zero multiple of 512, not crossing a page.
    pub len: u32,
}

/// The discard limits in the configuration space, if usable.
pub(super) fn read_discard(t: &MmioTransport<'static>) -> Option<DiscardLimits> {
    let max_sectors = t.read_config_space::<u32>(CFG_MAX_DISCARD_SECTORS).ok()?;
    let max_seg = t.read_config_space::<u32>(CFG_MAX_DISCARD_SEG).ok()?;
    let alignment = t.read_config_space::<u32>(CFG_DISCARD_ALIGNMENT).ok()?;
    (max_sectors > 0 && max_seg > 0).then_some(DiscardLimits {
        max_sectors,
        alignment_sectors: alignment.max(1),
    })
}
