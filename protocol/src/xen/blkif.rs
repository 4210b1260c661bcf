//! The blkif block-device ring ABI (Xen's `public/io/blkif.h` over `io/ring.h`), 64-bit layout.
//!
//! A blkif ring is `1 << order` shared pages: a 64-byte [`SringHeader`] with the four
//! free-running `u32` indexes, then an array of slots. Each slot is a union of one request
//! ([`BlkifRequest`], [`BlkifRequestDiscard`] or [`BlkifRequestIndirect`], chosen by the first
//! byte) and one [`BlkifResponse`]; the backend writes a response over the slot of the request it
//! answers. Slot `i` of the ring lives at [`RING_HEADER_BYTES`]` + (i % entries) * `
//! [`RING_SLOT_BYTES`], where `entries` comes from [`ring_entries`].
//!
//! Sector numbers and `first_sect`/`last_sect` are always in 512-byte units, whatever the disk's
//! logical sector size, and the `sectors` xenstore key is too. Arm guests (32- and 64-bit) use
//! the same layout ("arm-abi", the native protocol), which is the one given here.

use super::structs::GrantRef;

abi_enum! {
    /// `BLKIF_OP_*`: the `operation` byte of a request (echoed in its response).
    pub enum BlkifOp: u8 {
        /// Read sectors into the segments' pages.
        Read = 0,
        /// Write sectors from the segments' pages.
        Write = 1,
        /// Ordered write: earlier writes complete first, the data is stable on return
        /// (offered by `feature-barrier`).
        WriteBarrier = 2,
        /// Flush the disk's volatile cache (offered by `feature-flush-cache`).
        FlushDiskcache = 3,
        /// Reserved (a SLES vendor extension); never valid.
        Reserved1 = 4,
        /// Discard a sector range; the slot is a [`BlkifRequestDiscard`] (`feature-discard`).
        Discard = 5,
        /// A read or write whose segments are in granted pages; the slot is a
        /// [`BlkifRequestIndirect`] (`feature-max-indirect-segments`).
        Indirect = 6,
    }
}

abi_enum! {
    /// `BLKIF_RSP_*`: the `status` of a response.
    pub enum BlkifStatus: i16 {
        /// The operation completed.
        Okay = 0,
        /// The operation failed (an I/O error for the frontend).
        Error = -1,
        /// The operation is not supported by this backend or disk.
        EOpNotSupp = -2,
    }
}

/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`: segments carried in a direct request.
pub const BLKIF_MAX_SEGMENTS_PER_REQUEST: usize = 11;
/// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`: grant refs an indirect request can carry.
pub const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;
/// `BLKIF_DISCARD_SECURE`: discard `flag` bit asking for a secure erase.
pub const BLKIF_DISCARD_SECURE: u8 = 1;
/// Bytes in a blkif sector (the unit of every sector number on the wire).
pub const BLKIF_SECTOR_BYTES: usize = 512;
/// Bytes in a Xen page (a segment never crosses one).
pub const XEN_PAGE_BYTES: usize = 4096;
/// Largest valid `last_sect`: a segment stays inside its 4 KiB page.
pub const BLKIF_MAX_SECT_IN_PAGE: u8 = (XEN_PAGE_BYTES / BLKIF_SECTOR_BYTES - 1) as u8;
/// Segment descriptors that fit one indirect page.
pub const BLKIF_SEGMENTS_PER_INDIRECT_PAGE: usize = XEN_PAGE_BYTES / BLKIF_SEGMENT_BYTES;

/// `VDISK_*` bits of the backend's `info` key.
pub mod vdisk {
    /// The device is a CD-ROM.
    pub const CDROM: u32 = 0x1;
    /// The medium is removable.
    pub const REMOVABLE: u32 = 0x2;
    /// The device is read-only.
    pub const READONLY: u32 = 0x4;
}

/// `protocol` value of a frontend using the native Arm layout (`XEN_IO_PROTO_ABI_ARM`).
pub const XEN_IO_PROTO_ABI_ARM: &str = "arm-abi";

wire! {
    /// `blkif_request_segment`: one page-bounded piece of a request's data.
    pub struct BlkifSegment {
        /// Grant of the frontend page holding the data.
        pub gref: GrantRef,
        /// First 512-byte sector of the page to transfer (inclusive).
        pub first_sect: u8,
        /// Last 512-byte sector of the page to transfer (inclusive, at most 7).
        pub last_sect: u8,
        /// Padding (C's implicit tail padding).
        pub _pad0: [u8; 2],
    }
}
layout!(BlkifSegment, 8, gref = 0, first_sect = 4, last_sect = 5);

/// Bytes in one [`BlkifSegment`] (also its stride in an indirect page).
pub const BLKIF_SEGMENT_BYTES: usize = 8;

wire! {
    /// `blkif_request`: read, write, write-barrier and flush requests.
    pub struct BlkifRequest {
        /// A [`BlkifOp`].
        pub operation: u8,
        /// Segments used in `seg` (0 only for a flush/barrier without data).
        pub nr_segments: u8,
        /// The virtual device (`blkif_vdev_t`); informational, not checked by backends.
        pub handle: u16,
        /// Padding.
        pub _pad0: [u8; 4],
        /// The frontend's request id, echoed in the response.
        pub id: u64,
        /// First 512-byte sector on the disk.
        pub sector_number: u64,
        /// The data pages, in disk order.
        pub seg: [BlkifSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST],
    }
}
layout!(
    BlkifRequest,
    112,
    operation = 0,
    nr_segments = 1,
    handle = 2,
    id = 8,
    sector_number = 16,
    seg = 24
);

wire! {
    /// `blkif_request_discard`: the slot layout when `operation` is [`BlkifOp::Discard`].
    pub struct BlkifRequestDiscard {
        /// [`BlkifOp::Discard`].
        pub operation: u8,
        /// [`BLKIF_DISCARD_SECURE`] or zero.
        pub flag: u8,
        /// The virtual device.
        pub handle: u16,
        /// Padding.
        pub _pad0: [u8; 4],
        /// The frontend's request id.
        pub id: u64,
        /// First 512-byte sector to discard.
        pub sector_number: u64,
        /// Number of 512-byte sectors to discard.
        pub nr_sectors: u64,
    }
}
layout!(
    BlkifRequestDiscard,
    32,
    operation = 0,
    flag = 1,
    handle = 2,
    id = 8,
    sector_number = 16,
    nr_sectors = 24
);

wire! {
    /// `blkif_request_indirect`: the slot layout when `operation` is [`BlkifOp::Indirect`].
    /// The segment descriptors are packed [`BlkifSegment`]s in the pages `indirect_grefs`
    /// names, [`BLKIF_SEGMENTS_PER_INDIRECT_PAGE`] per page.
    pub struct BlkifRequestIndirect {
        /// [`BlkifOp::Indirect`].
        pub operation: u8,
        /// The real operation: [`BlkifOp::Read`] or [`BlkifOp::Write`].
        pub indirect_op: u8,
        /// Number of segments in the indirect pages.
        pub nr_segments: u16,
        /// Padding.
        pub _pad0: [u8; 4],
        /// The frontend's request id.
        pub id: u64,
        /// First 512-byte sector on the disk.
        pub sector_number: u64,
        /// The virtual device.
        pub handle: u16,
        /// Padding.
        pub _pad1: [u8; 2],
        /// Grants of the pages holding the segment descriptors (the first
        /// `ceil(nr_segments / 512)` are used).
        pub indirect_grefs: [GrantRef; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
        /// Padding to the struct's 8-byte alignment.
        pub _pad2: [u8; 4],
    }
}
layout!(
    BlkifRequestIndirect,
    64,
    operation = 0,
    indirect_op = 1,
    nr_segments = 2,
    id = 8,
    sector_number = 16,
    handle = 24,
    indirect_grefs = 28
);

wire! {
    /// `blkif_response`: written by the backend over the slot of the request it answers.
    pub struct BlkifResponse {
        /// The request's `id`.
        pub id: u64,
        /// The request's `operation`.
        pub operation: u8,
        /// Padding.
        pub _pad0: u8,
        /// A [`BlkifStatus`].
        pub status: i16,
        /// Padding to the struct's 8-byte alignment.
        pub _pad1: [u8; 4],
    }
}
layout!(BlkifResponse, 16, id = 0, operation = 8, status = 10);

wire! {
    /// The shared ring header (`blkif_sring` before `ring[]`): four free-running indexes
    /// and padding. Both sides read all four; each writes only its own two.
    pub struct SringHeader {
        /// Requests produced (frontend writes, Release; backend reads, Acquire).
        pub req_prod: u32,
        /// Request index at which the frontend wants a notification (backend writes).
        pub req_event: u32,
        /// Responses produced (backend writes, Release; frontend reads, Acquire).
        pub rsp_prod: u32,
        /// Response index at which the backend should notify (frontend writes).
        pub rsp_event: u32,
        /// Padding (`__pad` in C, formerly a private union).
        pub _pad: [u8; 48],
    }
}
layout!(
    SringHeader,
    64,
    req_prod = 0,
    req_event = 4,
    rsp_prod = 8,
    rsp_event = 12
);

/// Offset of `req_prod` in the first ring page.
pub const RING_REQ_PROD: usize = core::mem::offset_of!(SringHeader, req_prod);
/// Offset of `req_event` in the first ring page.
pub const RING_REQ_EVENT: usize = core::mem::offset_of!(SringHeader, req_event);
/// Offset of `rsp_prod` in the first ring page.
pub const RING_RSP_PROD: usize = core::mem::offset_of!(SringHeader, rsp_prod);
/// Offset of `rsp_event` in the first ring page.
pub const RING_RSP_EVENT: usize = core::mem::offset_of!(SringHeader, rsp_event);
/// Bytes before slot 0 (`offsetof(blkif_sring, ring)`).
pub const RING_HEADER_BYTES: usize = core::mem::size_of::<SringHeader>();
/// Bytes per slot: the size of the request/response union (the larger, [`BlkifRequest`]).
pub const RING_SLOT_BYTES: usize = max(
    core::mem::size_of::<BlkifRequest>(),
    core::mem::size_of::<BlkifResponse>(),
);
/// Largest ring this crate describes: `2^MAX_RING_PAGE_ORDER` pages (Xen's own limit for
/// blkback is 4, i.e. 16 pages).
pub const MAX_RING_PAGE_ORDER: u32 = 4;

static_assertions::const_assert_eq!(RING_SLOT_BYTES, 112);
static_assertions::const_assert!(core::mem::size_of::<BlkifRequestDiscard>() <= RING_SLOT_BYTES);
static_assertions::const_assert!(core::mem::size_of::<BlkifRequestIndirect>() <= RING_SLOT_BYTES);
static_assertions::const_assert_eq!(BLKIF_SEGMENT_BYTES, core::mem::size_of::<BlkifSegment>());

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Slots in a ring of `1 << order` pages: `(bytes - header) / slot` rounded down to a power
/// of two (`__RING_SIZE`). `None` if `order` exceeds [`MAX_RING_PAGE_ORDER`].
pub const fn ring_entries(order: u32) -> Option<u32> {
    if order > MAX_RING_PAGE_ORDER {
        return None;
    }
    let bytes = XEN_PAGE_BYTES << order;
    let raw = (bytes - RING_HEADER_BYTES) / RING_SLOT_BYTES;
    // Round down to a power of two: keep the highest set bit (raw >= 36 here, never 0).
    Some(1u32 << (usize::BITS - 1 - raw.leading_zeros()))
}

/// Byte offset of slot `index % entries` from the start of the first ring page;
/// `entries` must be a power of two (as [`ring_entries`] returns).
pub const fn slot_offset(entries: u32, index: u32) -> usize {
    RING_HEADER_BYTES + (index & (entries - 1)) as usize * RING_SLOT_BYTES
}

/// Indirect pages needed for `nr_segments` segments (`INDIRECT_PAGES`).
pub const fn indirect_pages(nr_segments: usize) -> usize {
    nr_segments.div_ceil(BLKIF_SEGMENTS_PER_INDIRECT_PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::{FromBytes, IntoBytes};

    #[test]
    fn ring_sizes_match_xen_for_every_order() {
        // (4096 << order) - 64, divided by 112, rounded down to a power of two.
        let want = [32, 64, 128, 256, 512];
        for (order, w) in want.iter().enumerate() {
            assert_eq!(ring_entries(order as u32), Some(*w), "order {order}");
        }
        assert_eq!(ring_entries(MAX_RING_PAGE_ORDER + 1), None);
        assert_eq!(slot_offset(32, 0), 64);
        assert_eq!(slot_offset(32, 33), 64 + 112);
        assert_eq!(slot_offset(32, u32::MAX), 64 + 31 * 112);
        // Every slot of every ring ends inside the ring's pages.
        for order in 0..=MAX_RING_PAGE_ORDER {
            let n = ring_entries(order).unwrap();
            assert!(slot_offset(n, n - 1) + RING_SLOT_BYTES <= XEN_PAGE_BYTES << order);
        }
    }

    #[test]
    fn codes_round_trip_and_unknowns_are_refused() {
        for v in 0u8..=6 {
            assert_eq!(BlkifOp::try_from(v).map(|o| o as u8), Ok(v));
        }
        assert_eq!(BlkifOp::try_from(7), Err(7));
        assert_eq!(BlkifOp::try_from(255), Err(255));
        for (v, s) in [
            (0, BlkifStatus::Okay),
            (-1, BlkifStatus::Error),
            (-2, BlkifStatus::EOpNotSupp),
        ] {
            assert_eq!(BlkifStatus::try_from(v), Ok(s));
            assert_eq!(s as i16, v);
        }
        assert_eq!(BlkifStatus::try_from(-3), Err(-3));
    }

    #[test]
    fn wire_bytes_decode_in_the_c_layout() {
        let mut b = [0u8; RING_SLOT_BYTES];
        b[0] = 6; // indirect
        b[1] = 1; // write
        b[2..4].copy_from_slice(&300u16.to_le_bytes());
        b[8..16].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        b[16..24].copy_from_slice(&99u64.to_le_bytes());
        b[24..26].copy_from_slice(&51712u16.to_le_bytes());
        b[28..32].copy_from_slice(&7u32.to_le_bytes());
        b[56..60].copy_from_slice(&8u32.to_le_bytes());
        let (r, _) = BlkifRequestIndirect::read_from_prefix(&b).unwrap();
        assert_eq!((r.operation, r.indirect_op, r.nr_segments), (6, 1, 300));
        assert_eq!(
            (r.id, r.sector_number, r.handle),
            (0x1122_3344_5566_7788, 99, 51712)
        );
        assert_eq!((r.indirect_grefs[0], r.indirect_grefs[7]), (7, 8));

        let rsp = BlkifResponse {
            id: 5,
            operation: 1,
            _pad0: 0,
            status: BlkifStatus::EOpNotSupp as i16,
            _pad1: [0; 4],
        };
        assert_eq!(
            rsp.as_bytes(),
            &[5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xFE, 0xFF, 0, 0, 0, 0]
        );
        assert_eq!(indirect_pages(0), 0);
        assert_eq!(indirect_pages(512), 1);
        assert_eq!(indirect_pages(513), 2);
        assert_eq!(BLKIF_MAX_SECT_IN_PAGE, 7);
    }
}
