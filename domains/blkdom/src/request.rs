//! Decoding and validating one request slot into a typed [`Request`].
//!
//! A slot is copied out of the ring once ([`crate::ring::BackRing::take_request`]) and only
//! that copy is decoded. Every check is made here, before any disk or grant work:
//!
//! * [`Malformed`]: a request no correct frontend sends (unknown operation, segment count
//!   out of range, a segment outside its page, sectors beyond the vbd, a bad indirect
//!   operation). The ring is halted: the frontend is broken or hostile, and answering it
//!   further would only let it probe.
//! * [`Refusal`]: a well-formed request this vbd will not perform (a write to a read-only
//!   vbd, an operation the disk lacks, I/O not aligned to the disk's sector size). It is
//!   answered with an error status and the ring goes on, as Linux's blkback does; a stock
//!   Linux issues such writes itself (a read-only vbd rejects writes with an I/O error).
//!
//! The request's `handle` is not checked: backends ignore it and frontends fill it loosely.

use crate::io::DiskInfo;
use crate::ring::Slot;
use protocol::xen::blkif::{
    BlkifOp, BlkifRequest, BlkifRequestDiscard, BlkifRequestIndirect, BlkifSegment, BlkifStatus,
    BLKIF_DISCARD_SECURE, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_MAX_SECT_IN_PAGE,
    BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_SECTOR_BYTES,
};
use protocol::xen::structs::GrantRef;
use zerocopy::FromBytes;

/// Why a request halts its ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// the operation code is not a blkif operation
    UnknownOp(u8),
    /// a read or write carries no segments, or more than the limit
    SegmentCount(u16),
    /// an indirect request's inner operation is not read or write
    IndirectOp(u8),
    /// a segment's sectors are reversed or run past its 4 KiB page
    Segment {
        /// Index of the segment in the request.
        index: u16,
        /// Its first sector.
        first: u8,
        /// Its last sector.
        last: u8,
    },
    /// the request's sectors run past the end of the vbd
    OutOfRange {
        /// First sector.
        sector: u64,
        /// Sectors requested.
        count: u64,
    },
}

impl core::fmt::Display for Malformed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::UnknownOp(op) => write!(f, "unknown operation {op}"),
            Self::SegmentCount(n) => write!(f, "bad segment count {n}"),
            Self::IndirectOp(op) => write!(f, "indirect request with operation {op}"),
            Self::Segment { index, first, last } => {
                write!(
                    f,
                    "segment {index} covers sectors {first}..={last} of its page"
                )
            }
            Self::OutOfRange { sector, count } => {
                write!(f, "{count} sectors at {sector} run past the end of the vbd")
            }
        }
    }
}

/// Why a well-formed request is answered with an error status instead of being performed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// the vbd is read-only and the request would modify it
    ReadOnly,
    /// the disk does not offer this operation
    Unsupported,
    /// the I/O is not aligned to the disk's logical sector size
    Misaligned,
}

impl Refusal {
    /// The response status a refusal is reported with.
    pub fn status(self) -> BlkifStatus {
        match self {
            Self::Unsupported => BlkifStatus::EOpNotSupp,
            Self::ReadOnly | Self::Misaligned => BlkifStatus::Error,
        }
    }
}

/// What the backend checks requests against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The disk behind the vbd.
    pub disk: DiskInfo,
    /// The vbd refuses writes (its mode, or the disk's).
    pub read_only: bool,
    /// `feature-max-indirect-segments` as advertised (0: indirect requests are not offered).
    pub max_indirect: u16,
}

/// Where a data request's segments are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segments {
    /// In the slot; already copied into the caller's segment list and checked.
    Direct(u16),
    /// In `pages` granted pages that still have to be fetched and checked
    /// ([`check_segments`]).
    Indirect {
        /// Number of segments.
        count: u16,
        /// Grants of the descriptor pages (the first `pages` are used).
        grefs: [GrantRef; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
        /// Descriptor pages in use.
        pages: u8,
    },
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Read into the segments.
    Read {
        /// First 512-byte sector.
        sector: u64,
        /// The data pages.
        segs: Segments,
    },
    /// Write from the segments; flush first and/or after when asked (flush and barrier
    /// requests that carry data).
    Write {
        /// First 512-byte sector.
        sector: u64,
        /// The data pages.
        segs: Segments,
        /// Flush the disk cache before writing (flush-cache and barrier semantics).
        flush_before: bool,
        /// Flush after writing, so the data is stable on completion (barrier semantics).
        flush_after: bool,
    },
    /// Flush the disk cache, no data.
    Flush,
    /// Discard a range.
    Discard {
        /// First 512-byte sector.
        sector: u64,
        /// Sectors to discard.
        count: u64,
        /// Secure erase asked for (and offered).
        secure: bool,
    },
}

/// A decoded request: its echo fields and what to do, or why not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The frontend's id, echoed in the response.
    pub id: u64,
    /// The operation byte, echoed in the response.
    pub op: u8,
    /// What to do, or the refusal to answer with.
    pub kind: Result<Kind, Refusal>,
}

/// Checks segments (already copied out of the frontend's memory) and the range they cover
/// from `sector`; returns the sectors covered.
pub fn check_segments(
    segs: &[BlkifSegment],
    sector: u64,
    limits: &Limits,
) -> Result<u64, Malformed> {
    let mut total = 0u64;
    for (i, s) in segs.iter().enumerate() {
        if s.first_sect > s.last_sect || s.last_sect > BLKIF_MAX_SECT_IN_PAGE {
            return Err(Malformed::Segment {
                index: i as u16,
                first: s.first_sect,
                last: s.last_sect,
            });
        }
        total += u64::from(s.last_sect - s.first_sect) + 1;
    }
    match sector.checked_add(total) {
        Some(end) if end <= limits.disk.sectors => Ok(total),
        _ => Err(Malformed::OutOfRange {
            sector,
            count: total,
        }),
    }
}

/// Whether every segment's length and the start sector are multiples of the disk's
/// logical sector size (always true for 512-byte disks).
pub fn aligned(segs: &[BlkifSegment], sector: u64, limits: &Limits) -> bool {
    let per = u64::from(limits.disk.sector_size / BLKIF_SECTOR_BYTES as u32).max(1);
    sector.is_multiple_of(per)
        && segs
            .iter()
            .all(|s| (u64::from(s.last_sect - s.first_sect) + 1).is_multiple_of(per))
}

/// Decodes `slot`. Direct segments are copied into `segs` (cleared first) and checked;
/// indirect ones are left to the caller ([`Segments::Indirect`]).
pub fn decode(
    slot: &Slot,
    limits: &Limits,
    segs: &mut alloc::vec::Vec<BlkifSegment>,
) -> Result<Request, Malformed> {
    segs.clear();
    let (req, _) = BlkifRequest::read_from_prefix(slot).expect("a slot holds a request");
    let op = BlkifOp::try_from(req.operation).map_err(Malformed::UnknownOp)?;
    let done = |kind| {
        Ok(Request {
            id: req.id,
            op: req.operation,
            kind,
        })
    };
    let writes = matches!(
        op,
        BlkifOp::Write | BlkifOp::WriteBarrier | BlkifOp::FlushDiskcache
    );
    match op {
        BlkifOp::Reserved1 => Err(Malformed::UnknownOp(req.operation)),
        BlkifOp::Read | BlkifOp::Write | BlkifOp::WriteBarrier | BlkifOp::FlushDiskcache => {
            let n = usize::from(req.nr_segments);
            let data_op = matches!(op, BlkifOp::Read | BlkifOp::Write);
            if n > BLKIF_MAX_SEGMENTS_PER_REQUEST || (data_op && n == 0) {
                return Err(Malformed::SegmentCount(n as u16));
            }
            segs.extend_from_slice(&req.seg[..n]);
            let sector = req.sector_number;
            if n != 0 {
                check_segments(segs, sector, limits)?;
            }
            let flushes = !data_op;
            if flushes && !limits.disk.flush {
                return done(Err(Refusal::Unsupported));
            }
            if n == 0 {
                // A pure flush changes no data; allowed on a read-only vbd.
                return done(Ok(Kind::Flush));
            }
            if writes && limits.read_only {
                return done(Err(Refusal::ReadOnly));
            }
            if !aligned(segs, sector, limits) {
                return done(Err(Refusal::Misaligned));
            }
            let segs = Segments::Direct(n as u16);
            done(Ok(match op {
                BlkifOp::Read => Kind::Read { sector, segs },
                _ => Kind::Write {
                    sector,
                    segs,
                    flush_before: flushes,
                    flush_after: op == BlkifOp::WriteBarrier,
                },
            }))
        }
        BlkifOp::Discard => {
            let (d, _) = BlkifRequestDiscard::read_from_prefix(slot).expect("fits a slot");
            if d.sector_number
                .checked_add(d.nr_sectors)
                .is_none_or(|end| end > limits.disk.sectors)
            {
                return Err(Malformed::OutOfRange {
                    sector: d.sector_number,
                    count: d.nr_sectors,
                });
            }
            let Some(info) = limits.disk.discard else {
                return done(Err(Refusal::Unsupported));
            };
            if limits.read_only {
                return done(Err(Refusal::ReadOnly));
            }
            done(Ok(Kind::Discard {
                sector: d.sector_number,
                count: d.nr_sectors,
                secure: info.secure && d.flag & BLKIF_DISCARD_SECURE != 0,
            }))
        }
        BlkifOp::Indirect => {
            let (r, _) = BlkifRequestIndirect::read_from_prefix(slot).expect("fits a slot");
            let inner = BlkifOp::try_from(r.indirect_op)
                .ok()
                .filter(|o| matches!(o, BlkifOp::Read | BlkifOp::Write))
                .ok_or(Malformed::IndirectOp(r.indirect_op))?;
            if r.nr_segments == 0 || r.nr_segments > limits.max_indirect {
                return Err(Malformed::SegmentCount(r.nr_segments));
            }
            let pages = protocol::xen::blkif::indirect_pages(usize::from(r.nr_segments));
            let segs = Segments::Indirect {
                count: r.nr_segments,
                grefs: r.indirect_grefs,
                pages: pages as u8,
            };
            let sector = r.sector_number;
            // The response names the inner operation, as Linux's blkfront checks (an
            // indirect response saying "indirect" disables the disk).
            let done = |kind| {
                Ok(Request {
                    id: req.id,
                    op: r.indirect_op,
                    kind,
                })
            };
            if inner == BlkifOp::Write && limits.read_only {
                return done(Err(Refusal::ReadOnly));
            }
            done(Ok(match inner {
                BlkifOp::Read => Kind::Read { sector, segs },
                _ => Kind::Write {
                    sector,
                    segs,
                    flush_before: false,
                    flush_after: false,
                },
            }))
        }
    }
}
