//! Performing a batch of validated requests through the [`Disk`] and [`Grants`] traits.
//!
//! [`crate::VbdTable::poll`] takes up to [`Scratch::depth`] requests off a ring (each
//! copied out once and decoded, [`Scratch::push`]) and [`Scratch::run`] performs them
//! together, in phases: every indirect request's descriptor pages in one grant copy; every
//! read's and write's data pages device-mapped in one batch (when the disk can transfer to
//! device addresses; with persistent grants, only the pages not kept yet are mapped, and
//! kept, see [`crate::persist`]); for the requests that could not be mapped, the writes' data in one
//! grant copy into the disk's staging buffer; every read and write started on the disk at
//! once (the mapped ones straight to the frontend's pages) and waited for together; the
//! unmapped reads' data in one grant copy out; every device map undone in one batch. The
//! caller then answers the entries in ring order. So a ring drain costs a few hypercalls
//! instead of two per request, the data of a mapped request is never copied by the CPU,
//! and the device works on several requests at a time; nothing is allocated per request
//! once the buffers have grown.
//!
//! Ordering: requests that are in flight together have no order among themselves, as in
//! Xen's blkback (a frontend that needs one waits for the first response). A request with
//! cache semantics (a flush, a barrier or flush-cache write, a discard) ends its batch and
//! is performed alone after every earlier request of the batch has finished, so a flush
//! covers every write answered before it.
//!
//! Failures are per request: a refused device map sends that request by copy instead; a
//! grant copy failure answers that request with
//! `BLKIF_RSP_ERROR` and the ring goes on (grant state belongs to the frontend and changes
//! under us legitimately, e.g. while it closes). A batched copy that fails is retried one
//! request at a time to find which; nothing is written to the disk for a write whose data
//! did not arrive whole. A malformed descriptor inside an indirect page is [`Malformed`]:
//! the batch is cut before that request (the earlier ones are still answered) and the ring
//! halts, exactly as for a malformed slot.

use crate::io::{Dir, Disk, DiskError, DmaSeg, GrantSeg, Grants, Kept, Placed, Transfer};
use crate::persist::PersistentGrants;
use crate::request::{decode, Kind, Limits, Malformed, Refusal};
use crate::ring::{head, Head, Slot};
use alloc::vec::Vec;
use core::ops::Range;
use protocol::xen::blkif::{
    BlkifSegment, BlkifStatus, BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_SECTOR_BYTES, XEN_PAGE_BYTES,
};
use protocol::xen::structs::{DomId, GrantRef};

mod indirect;

/// One request of a batch, in ring order.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The frontend's id, echoed in the response.
    pub id: u64,
    /// The operation byte, echoed in the response.
    pub op: u8,
    /// The slot's first bytes (the ring journal needs them when answering).
    pub head: Head,
    /// What the request asks for, or why it is refused.
    pub kind: Result<Kind, Refusal>,
    /// The answer decided so far: `None` while every step succeeded (answered
    /// `BLKIF_RSP_OKAY`), else the error status.
    pub status: Option<BlkifStatus>,
    /// Its segments in [`Scratch::segments`].
    segs: Range<usize>,
    /// Its data in the disk's staging buffer.
    at: usize,
    len: usize,
    /// Its data's device addresses in [`Scratch::dma`], when it moves directly.
    direct: Option<Range<usize>>,
}

impl Entry {
    /// The status to answer with.
    pub fn answer(&self) -> BlkifStatus {
        self.status.unwrap_or(BlkifStatus::Okay)
    }
}

/// Whether `kind` must run alone, after everything before it (see the module doc).
pub fn is_barrier(kind: &Kind) -> bool {
    match *kind {
        Kind::Read { .. } => false,
        Kind::Write {
            flush_before,
            flush_after,
            ..
        } => flush_before || flush_after,
        Kind::Flush | Kind::Discard { .. } => true,
    }
}

fn disk_status(e: DiskError) -> BlkifStatus {
    match e {
        DiskError::Unsupported => Refusal::Unsupported.status(),
        _ => BlkifStatus::Error,
    }
}

/// Copies `placed` against `buf` as one batch; if that fails, retries each entry's span
/// alone and answers the entries whose copy fails with an error.
fn copy_spans<G: Grants>(
    grants: &mut G,
    domid: DomId,
    dir: Dir,
    placed: &[Placed],
    spans: &[(usize, Range<usize>)],
    entries: &mut [Entry],
    buf: &mut [u8],
) {
    if grants.copy(domid, dir, placed, buf).is_ok() {
        return;
    }
    for (i, r) in spans {
        if grants.copy(domid, dir, &placed[r.clone()], buf).is_err() {
            entries[*i].status = Some(BlkifStatus::Error);
        }
    }
}

fn seg_bytes(s: &BlkifSegment) -> usize {
    (usize::from(s.last_sect - s.first_sect) + 1) * BLKIF_SECTOR_BYTES
}

/// Segment `s` of the page at device address `page`.
fn dma_seg(s: &BlkifSegment, page: u64) -> DmaSeg {
    DmaSeg {
        addr: page + u64::from(s.first_sect) * BLKIF_SECTOR_BYTES as u64,
        len: seg_bytes(s) as u32,
    }
}

/// A connection's persistent grants, as one batch may use and add to them.
#[derive(Debug)]
pub struct Keep<'a> {
    /// The connection's kept maps.
    pub table: &'a mut PersistentGrants,
    /// Maps kept by every connection sharing `limit`.
    pub total: &'a mut usize,
    /// Most maps kept at once, in all.
    pub limit: usize,
}

/// The batch and the buffers reused by every batch of a table.
#[derive(Debug)]
pub struct Scratch {
    entries: Vec<Entry>,
    /// Every entry's segments, each entry a range.
    segs: Vec<BlkifSegment>,
    /// One slot's direct segments, as [`decode`] fills them.
    one: Vec<BlkifSegment>,
    /// Indirect descriptor pages, end to end.
    desc: Vec<u8>,
    /// Pieces of the current grant copy, and which entry owns which of them.
    placed: Vec<Placed>,
    spans: Vec<(usize, Range<usize>)>,
    /// Entries started on the disk, in start order, and their results.
    started: Vec<usize>,
    /// Grants to device-map, the addresses given, which entry owns which refs, and the
    /// direct entries' segments.
    dev_refs: Vec<(GrantRef, bool)>,
    dev_addrs: Vec<Option<u64>>,
    dev_owners: Vec<(usize, Range<usize>)>,
    dma: Vec<DmaSeg>,
    results: Vec<Result<(), DiskError>>,
    /// Refs to map for keeping, the maps given, and those to undo at once.
    new_refs: Vec<GrantRef>,
    kept: Vec<Option<Kept>>,
    undo: Vec<Kept>,
    /// Largest data request in bytes (the most segments a request may carry, in pages).
    max_request: usize,
}

impl Scratch {
    /// Buffers for requests of up to `max_segments` segments.
    pub fn new(max_segments: usize) -> Self {
        let max_segments = max_segments.max(BLKIF_MAX_SEGMENTS_PER_REQUEST);
        Self {
            entries: Vec::new(),
            segs: Vec::new(),
            one: Vec::with_capacity(BLKIF_MAX_SEGMENTS_PER_REQUEST),
            desc: Vec::new(),
            placed: Vec::new(),
            spans: Vec::new(),
            started: Vec::new(),
            dev_refs: Vec::new(),
            dev_addrs: Vec::new(),
            dev_owners: Vec::new(),
            dma: Vec::new(),
            results: Vec::new(),
            new_refs: Vec::new(),
            kept: Vec::new(),
            undo: Vec::new(),
            max_request: max_segments * XEN_PAGE_BYTES,
        }
    }

    /// Bytes of staging buffer one request may need at most (page-aligned).
    pub fn max_request_bytes(&self) -> usize {
        self.max_request
    }

    /// Requests one batch may hold on `disk`: as many as it can have in flight and its
    /// staging buffer can hold at their largest (at least one; a request that then does
    /// not fit is answered with an error).
    pub fn depth<D: Disk>(&self, disk: &mut D) -> usize {
        let room = disk.staging().len() / self.max_request;
        room.min(disk.depth()).max(1)
    }

    /// Empties the batch.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.segs.clear();
        self.dma.clear();
    }

    /// The batch, in ring order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The segments of `e` (an entry of this batch).
    pub fn segments(&self, e: &Entry) -> &[BlkifSegment] {
        &self.segs[e.segs.clone()]
    }

    /// Decodes a slot taken off the ring and appends it to the batch. Returns whether it
    /// ends the batch (it must run after everything before it). A malformed slot is not
    /// added.
    pub fn push(&mut self, slot: &Slot, limits: &Limits) -> Result<bool, Malformed> {
        let req = decode(slot, limits, &mut self.one)?;
        let first = self.segs.len();
        self.segs.extend_from_slice(&self.one);
        let barrier = req.kind.as_ref().is_ok_and(is_barrier);
        self.entries.push(Entry {
            id: req.id,
            op: req.op,
            head: head(slot),
            kind: req.kind,
            status: req.kind.err().map(Refusal::status),
            segs: first..self.segs.len(),
            at: 0,
            len: 0,
            direct: None,
        });
        Ok(barrier)
    }

    /// Performs the batch for frontend `domid` (see the module doc); every entry left has
    /// its answer. Returns the malformed request that cut the batch, if any.
    /// With `keep` (the frontend negotiated persistent grants), data pages move through
    /// kept device maps, and pages not kept yet are mapped for keeping first.
    pub fn run<D: Disk, G: Grants>(
        &mut self,
        domid: DomId,
        limits: &Limits,
        disk: &mut D,
        grants: &mut G,
        mut keep: Option<Keep<'_>>,
    ) -> Option<Malformed> {
        let halt = self.fetch_indirect(domid, limits, grants);
        if let Some(k) = keep.as_mut() {
            if disk.direct_segments() != 0 {
                self.keep_new(domid, disk.direct_segments(), grants, k);
            }
        }
        let mapped = self.map_direct(domid, disk, grants, keep.as_ref().map(|k| &*k.table));
        let room = disk.staging().len();
        self.place(room);
        self.copy_data(domid, Dir::In, disk, grants);
        self.transfer(disk);
        self.barrier(disk);
        self.copy_data(domid, Dir::Out, disk, grants);
        if mapped {
            // Every transfer has finished (`transfer` and `barrier` wait for them).
            grants.unmap_for_device();
        }
        halt
    }

    /// Whether `e` may move directly (a pending read or non-barrier write of at most
    /// `most` segments); `Some(readonly)`: whether a per-batch map of its pages may be
    /// read-only (the device only reads a write's pages).
    fn direct_candidate(&self, e: &Entry, most: usize) -> Option<bool> {
        let (Ok(kind), None) = (e.kind, e.status) else {
            return None;
        };
        let readonly = match kind {
            Kind::Read { .. } => false,
            Kind::Write { .. } if !is_barrier(&kind) => true,
            _ => return None,
        };
        let n = e.segs.len();
        (n != 0 && n <= most).then_some(readonly)
    }

    /// Maps for keeping, in one batch, every data page of the batch's direct candidates
    /// that is not kept yet, as far as `keep`'s limit allows.
    fn keep_new<G: Grants>(&mut self, domid: DomId, most: usize, grants: &mut G, keep: &mut Keep) {
        self.new_refs.clear();
        for e in &self.entries {
            if self.direct_candidate(e, most).is_none() {
                continue;
            }
            let segs = &self.segs[e.segs.clone()];
            let fresh = segs.iter().filter(|s| keep.table.get(s.gref).is_none());
            self.new_refs.extend(fresh.map(|s| s.gref));
        }
        if self.new_refs.is_empty() {
            return;
        }
        // A ref used twice in one batch is mapped once.
        self.new_refs.sort_unstable();
        self.new_refs.dedup();
        self.new_refs
            .truncate(keep.limit.saturating_sub(*keep.total));
        if self.new_refs.is_empty() {
            return;
        }
        self.kept.clear();
        grants.map_persistent(domid, &self.new_refs, &mut self.kept);
        self.undo.clear();
        for (k, &gref) in self.kept.iter().zip(&self.new_refs) {
            if let Some(k) = *k {
                if keep.table.insert(gref, k, keep.total, keep.limit).is_err() {
                    self.undo.push(k);
                }
            }
        }
        // Maps beyond the refs asked for (a shell's mistake) are undone too.
        self.undo
            .extend(self.kept.iter().skip(self.new_refs.len()).flatten());
        if !self.undo.is_empty() {
            grants.unmap_persistent(&self.undo);
        }
    }

    /// Sets up the direct transfers: an entry whose pages are all in `kept` uses those
    /// maps; the data pages of every other direct candidate are device-mapped in one batch,
    /// and the entries whose pages all mapped are marked direct. Returns whether any
    /// per-batch map was asked for (and so must be undone).
    fn map_direct<D: Disk, G: Grants>(
        &mut self,
        domid: DomId,
        disk: &D,
        grants: &mut G,
        kept: Option<&PersistentGrants>,
    ) -> bool {
        let most = disk.direct_segments();
        if most == 0 {
            return false;
        }
        self.dev_refs.clear();
        self.dev_owners.clear();
        for i in 0..self.entries.len() {
            let Some(readonly) = self.direct_candidate(&self.entries[i], most) else {
                continue;
            };
            let e = &self.entries[i];
            let segs = &self.segs[e.segs.clone()];
            if let Some(t) = kept {
                let first = self.dma.len();
                for s in segs {
                    match t.get(s.gref) {
                        Some(a) => self.dma.push(dma_seg(s, a)),
                        None => break,
                    }
                }
                if self.dma.len() - first == segs.len() {
                    self.entries[i].direct = Some(first..self.dma.len());
                    continue;
                }
                // A page not kept: the whole request is mapped for this batch.
                self.dma.truncate(first);
            }
            let first = self.dev_refs.len();
            self.dev_refs
                .extend(segs.iter().map(|s| (s.gref, readonly)));
            self.dev_owners.push((i, first..self.dev_refs.len()));
        }
        if self.dev_refs.is_empty() {
            return false;
        }
        self.dev_addrs.clear();
        grants.map_for_device(domid, &self.dev_refs, &mut self.dev_addrs);
        for (i, r) in &self.dev_owners {
            let e = &mut self.entries[*i];
            let addrs = self.dev_addrs.get(r.clone()).unwrap_or(&[]);
            if addrs.len() != r.len() || addrs.iter().any(Option::is_none) {
                continue; // by copy, as before
            }
            let first = self.dma.len();
            for (s, a) in self.segs[e.segs.clone()].iter().zip(addrs.iter().flatten()) {
                self.dma.push(dma_seg(s, *a));
            }
            e.direct = Some(first..self.dma.len());
        }
        true
    }

    /// Gives every data request a page-aligned range of the staging buffer.
    fn place(&mut self, room: usize) {
        let mut at = 0;
        for e in &mut self.entries {
            if e.status.is_some()
                || e.direct.is_some()
                || !matches!(e.kind, Ok(Kind::Read { .. } | Kind::Write { .. }))
            {
                continue;
            }
            let len: usize = self.segs[e.segs.clone()].iter().map(seg_bytes).sum();
            if at + len > room {
                // Only if the shell's staging buffer is smaller than one request.
                e.status = Some(BlkifStatus::Error);
                continue;
            }
            (e.at, e.len) = (at, len);
            at = (at + len).next_multiple_of(XEN_PAGE_BYTES);
        }
    }

    /// Copies the data of every pending write in (`Dir::In`) or read out (`Dir::Out`), as
    /// one batch.
    fn copy_data<D: Disk, G: Grants>(
        &mut self,
        domid: DomId,
        dir: Dir,
        disk: &mut D,
        grants: &mut G,
    ) {
        self.placed.clear();
        self.spans.clear();
        for (i, e) in self.entries.iter().enumerate() {
            let wanted = matches!(
                (e.kind, dir),
                (Ok(Kind::Write { .. }), Dir::In) | (Ok(Kind::Read { .. }), Dir::Out)
            );
            if !wanted || e.status.is_some() || e.direct.is_some() {
                continue;
            }
            let first = self.placed.len();
            let mut at = e.at;
            for s in &self.segs[e.segs.clone()] {
                let len = seg_bytes(s);
                let seg = GrantSeg {
                    gref: s.gref,
                    offset: u16::from(s.first_sect) * BLKIF_SECTOR_BYTES as u16,
                    len: len as u16,
                };
                self.placed.push(Placed { seg, at });
                at += len;
            }
            self.spans.push((i, first..self.placed.len()));
        }
        if !self.spans.is_empty() {
            let buf = disk.staging();
            copy_spans(
                grants,
                domid,
                dir,
                &self.placed,
                &self.spans,
                &mut self.entries,
                buf,
            );
        }
    }

    /// Starts every pending read and write that is not a barrier, then waits for them.
    fn transfer<D: Disk>(&mut self, disk: &mut D) {
        self.started.clear();
        for (i, e) in self.entries.iter_mut().enumerate() {
            let (Ok(kind), None) = (e.kind, e.status) else {
                continue;
            };
            let (write, sector) = match kind {
                Kind::Read { sector, .. } => (false, sector),
                Kind::Write { sector, .. } if !is_barrier(&kind) => (true, sector),
                _ => continue,
            };
            let started = match &e.direct {
                Some(r) => disk.start_direct(write, sector, &self.dma[r.clone()]),
                None => disk.start(Transfer {
                    write,
                    sector,
                    at: e.at,
                    len: e.len,
                }),
            };
            match started {
                Ok(()) => self.started.push(i),
                Err(err) => e.status = Some(disk_status(err)),
            }
        }
        self.results.clear();
        if self.started.is_empty() {
            return;
        }
        disk.finish(&mut self.results);
        for (k, &i) in self.started.iter().enumerate() {
            // A disk that reports fewer results than it started lost the rest.
            match self.results.get(k) {
                Some(Ok(())) => {}
                Some(Err(err)) => self.entries[i].status = Some(disk_status(*err)),
                None => self.entries[i].status = Some(BlkifStatus::Error),
            }
        }
    }

    /// Performs the batch's barrier request (its last entry, if any), alone.
    fn barrier<D: Disk>(&mut self, disk: &mut D) {
        let Some(e) = self.entries.last_mut() else {
            return;
        };
        let (Ok(kind), None) = (e.kind, e.status) else {
            return;
        };
        if !is_barrier(&kind) {
            return;
        }
        let (at, len) = (e.at, e.len);
        let results = &mut self.results;
        let r = match kind {
            Kind::Flush => disk.flush(),
            Kind::Discard {
                sector,
                count,
                secure,
            } => disk.discard(sector, count, secure),
            Kind::Write {
                sector,
                flush_before,
                flush_after,
                ..
            } => barrier_write(
                disk,
                results,
                Transfer {
                    write: true,
                    sector,
                    at,
                    len,
                },
                flush_before,
                flush_after,
            ),
            Kind::Read { .. } => Ok(()),
        };
        if let Err(err) = r {
            e.status = Some(disk_status(err));
        }
    }
}

/// A write with cache semantics: flush first and/or after, as asked.
fn barrier_write<D: Disk>(
    disk: &mut D,
    results: &mut Vec<Result<(), DiskError>>,
    t: Transfer,
    flush_before: bool,
    flush_after: bool,
) -> Result<(), DiskError> {
    if flush_before {
        disk.flush()?;
    }
    disk.start(t)?;
    results.clear();
    disk.finish(results);
    results.first().copied().unwrap_or(Err(DiskError::Io))?;
    if flush_after {
        disk.flush()?;
    }
    Ok(())
}
