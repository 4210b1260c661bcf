//! Performing one validated request through the [`Disk`] and [`Grants`] traits.
//!
//! Data moves by grant copy through one bounce buffer sized for the largest request the
//! backend advertises, allocated once per table ([`Scratch`]): nothing is allocated per
//! request. A request's segments are contiguous on the disk, so each request is a single
//! disk read or write of the whole range.
//!
//! A grant-copy failure answers that request with `BLKIF_RSP_ERROR` and the ring goes on.
//! Grant state belongs to the frontend and changes under us legitimately (a frontend
//! revoking grants while closing), and a bad reference costs only the frontend that sent it:
//! nothing is read from or written to the disk for that request (a write's data is copied in
//! whole before the disk is touched). A malformed descriptor inside an indirect page is
//! still [`Malformed`] and halts the ring, exactly as in a direct request.

use crate::io::{Disk, DiskError, GrantError, GrantSeg, Grants};
use crate::request::{aligned, check_segments, Kind, Limits, Malformed, Refusal, Segments};
use alloc::vec;
use alloc::vec::Vec;
use protocol::xen::blkif::{
    BlkifSegment, BLKIF_SECTOR_BYTES, BLKIF_SEGMENTS_PER_INDIRECT_PAGE, BLKIF_SEGMENT_BYTES,
    XEN_PAGE_BYTES,
};
use protocol::xen::structs::DomId;
use zerocopy::FromBytes;

/// Why a request was not performed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Halt the ring.
    Malformed(Malformed),
    /// Refused before any I/O.
    Refused(Refusal),
    /// A grant copy failed.
    Grant(GrantError),
    /// The disk failed.
    Disk(DiskError),
}

/// Per-table buffers reused by every request.
#[derive(Debug)]
pub struct Scratch {
    /// The current request's segments.
    pub segs: Vec<BlkifSegment>,
    gsegs: Vec<GrantSeg>,
    desc: Vec<u8>,
    bounce: Vec<u8>,
}

impl Scratch {
    /// Buffers for requests of up to `max_segments` segments.
    pub fn new(max_segments: usize) -> Self {
        Self {
            segs: Vec::with_capacity(max_segments),
            gsegs: Vec::with_capacity(max_segments),
            desc: vec![0; BLKIF_SEGMENTS_PER_INDIRECT_PAGE * BLKIF_SEGMENT_BYTES],
            bounce: vec![0; max_segments * XEN_PAGE_BYTES],
        }
    }

    /// Copies an indirect request's descriptor pages in and checks them; on success
    /// `self.segs` holds the segments.
    fn fetch_indirect<G: Grants>(
        &mut self,
        domid: DomId,
        segs: Segments,
        grants: &mut G,
    ) -> Result<(), Failure> {
        let Segments::Indirect {
            count,
            grefs,
            pages,
        } = segs
        else {
            return Ok(());
        };
        self.segs.clear();
        let mut left = usize::from(count);
        for &gref in &grefs[..usize::from(pages)] {
            let n = left.min(BLKIF_SEGMENTS_PER_INDIRECT_PAGE);
            let bytes = &mut self.desc[..n * BLKIF_SEGMENT_BYTES];
            let seg = GrantSeg {
                gref,
                offset: 0,
                len: bytes.len() as u16,
            };
            grants
                .copy_in(domid, &[seg], bytes)
                .map_err(Failure::Grant)?;
            for d in bytes.chunks_exact(BLKIF_SEGMENT_BYTES) {
                self.segs
                    .push(BlkifSegment::read_from_bytes(d).expect("segment-sized chunk"));
            }
            left -= n;
        }
        Ok(())
    }

    /// Lays the segments out as grant pieces; returns the bytes they cover.
    fn grant_segs(&mut self) -> usize {
        self.gsegs.clear();
        let mut total = 0;
        for s in &self.segs {
            let len = (usize::from(s.last_sect - s.first_sect) + 1) * BLKIF_SECTOR_BYTES;
            self.gsegs.push(GrantSeg {
                gref: s.gref,
                offset: u16::from(s.first_sect) * BLKIF_SECTOR_BYTES as u16,
                len: len as u16,
            });
            total += len;
        }
        total
    }

    /// Performs `kind` for frontend `domid`. Direct segments are already in `self.segs`.
    pub fn execute<D: Disk, G: Grants>(
        &mut self,
        domid: DomId,
        kind: Kind,
        limits: &Limits,
        disk: &mut D,
        grants: &mut G,
    ) -> Result<(), Failure> {
        let data = |s: &mut Self, sector: u64, segs: Segments, g: &mut G| {
            s.fetch_indirect(domid, segs, g)?;
            if matches!(segs, Segments::Indirect { .. }) {
                check_segments(&s.segs, sector, limits).map_err(Failure::Malformed)?;
                if !aligned(&s.segs, sector, limits) {
                    return Err(Failure::Refused(Refusal::Misaligned));
                }
            }
            Ok(s.grant_segs())
        };
        match kind {
            Kind::Read { sector, segs } => {
                let len = data(self, sector, segs, grants)?;
                let buf = &mut self.bounce[..len];
                disk.read(sector, buf).map_err(Failure::Disk)?;
                grants
                    .copy_out(domid, &self.gsegs, buf)
                    .map_err(Failure::Grant)
            }
            Kind::Write {
                sector,
                segs,
                flush_before,
                flush_after,
            } => {
                let len = data(self, sector, segs, grants)?;
                let buf = &mut self.bounce[..len];
                grants
                    .copy_in(domid, &self.gsegs, buf)
                    .map_err(Failure::Grant)?;
                if flush_before {
                    disk.flush().map_err(Failure::Disk)?;
                }
                disk.write(sector, buf).map_err(Failure::Disk)?;
                if flush_after {
                    disk.flush().map_err(Failure::Disk)?;
                }
                Ok(())
            }
            Kind::Flush => disk.flush().map_err(Failure::Disk),
            Kind::Discard {
                sector,
                count,
                secure,
            } => disk.discard(sector, count, secure).map_err(Failure::Disk),
        }
    }
}
