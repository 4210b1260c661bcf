//! The indirect phase of a batch: every indirect request's descriptor pages copied in as
//! one grant copy, then each request's segments checked like a direct request's.

use super::{copy_spans, Scratch};
use crate::io::{Dir, GrantSeg, Grants, Placed};
use crate::request::{aligned, check_segments, Kind, Limits, Malformed, Refusal, Segments};
use protocol::xen::blkif::{BlkifSegment, BLKIF_SEGMENTS_PER_INDIRECT_PAGE, BLKIF_SEGMENT_BYTES};
use protocol::xen::structs::DomId;
use zerocopy::FromBytes;

impl Scratch {
    /// Copies every indirect request's descriptors in (one batch) and checks them; a
    /// malformed one cuts the batch before it and is returned.
    pub(super) fn fetch_indirect<G: Grants>(
        &mut self,
        domid: DomId,
        limits: &Limits,
        grants: &mut G,
    ) -> Option<Malformed> {
        self.placed.clear();
        self.spans.clear();
        let mut at = 0;
        for (i, e) in self.entries.iter().enumerate() {
            let (Ok(Kind::Read { segs, .. } | Kind::Write { segs, .. }), None) = (e.kind, e.status)
            else {
                continue;
            };
            let Segments::Indirect {
                count,
                grefs,
                pages,
            } = segs
            else {
                continue;
            };
            let first = self.placed.len();
            let mut left = usize::from(count);
            for &gref in grefs.iter().take(usize::from(pages)) {
                let n = left.min(BLKIF_SEGMENTS_PER_INDIRECT_PAGE);
                let len = n * BLKIF_SEGMENT_BYTES;
                let seg = GrantSeg {
                    gref,
                    offset: 0,
                    len: len as u16,
                };
                self.placed.push(Placed { seg, at });
                at += len;
                left -= n;
            }
            self.spans.push((i, first..self.placed.len()));
        }
        if self.spans.is_empty() {
            return None;
        }
        if self.desc.len() < at {
            self.desc.resize(at, 0);
        }
        let buf = &mut self.desc[..at];
        copy_spans(
            grants,
            domid,
            Dir::In,
            &self.placed,
            &self.spans,
            &mut self.entries,
            buf,
        );
        for k in 0..self.spans.len() {
            let (i, r) = self.spans[k].clone();
            if self.entries[i].status.is_some() {
                continue;
            }
            let start = self.placed[r.start].at;
            let last = self.placed[r.end - 1];
            let end = last.at + usize::from(last.seg.len);
            let first = self.segs.len();
            // Every exact chunk decodes (zerocopy: any bytes are a segment); nothing on this
            // guest-fed path can panic.
            let descs = self.desc[start..end].chunks_exact(BLKIF_SEGMENT_BYTES);
            self.segs
                .extend(descs.filter_map(|d| BlkifSegment::read_from_bytes(d).ok()));
            let e = &mut self.entries[i];
            e.segs = first..self.segs.len();
            let (Ok(Kind::Read { sector, .. } | Kind::Write { sector, .. }), segs) =
                (e.kind, &self.segs[first..])
            else {
                continue;
            };
            if let Err(m) = check_segments(segs, sector, limits) {
                self.entries.truncate(i);
                return Some(m);
            }
            if !aligned(segs, sector, limits) {
                e.status = Some(Refusal::Misaligned.status());
            }
        }
        None
    }
}
