//! The back half of a blkif shared ring: index arithmetic, copying requests out once,
//! writing responses, and Xen's notification hold-off rules.
//!
//! The backend keeps its two private indexes (`req_cons`, `rsp_prod_pvt`) and its own copy
//! of the last `rsp_prod` it published; the frontend can scribble on the shared header, so
//! the only shared values ever read are `req_prod` and `rsp_event`, and both are treated as
//! untrusted: `req_prod` is checked against the ring size before any slot is read
//! ([`RingError::Corrupt`]), `rsp_event` only decides whether to send a notification.
//!
//! Slot offsets are always `index & (entries - 1)` scaled, so no frontend value can move an
//! access outside the ring's pages; accesses are split at 4 KiB page boundaries (a slot of a
//! multi-page ring may straddle two pages).
//!
//! Restart: [`BackRing::attach`] starts from the published `rsp_prod`, so every request
//! between `rsp_prod` and `req_prod` is consumed again. That is exact because requests are
//! answered strictly in ring order (DESIGN §6.2): several requests may be taken and in
//! flight at once, but their responses are written and published one by one, in ring order,
//! so every request from the published `rsp_prod` on is either unanswered or about to be.
//! Replaying one that was already performed is harmless (block I/O is idempotent). A
//! response overwrites the first 16 bytes of its request's slot, so an instance that dies
//! after starting to write a response but before publishing it would leave the replay a
//! slot that is neither request nor response. To close
//! that window the backend journals in the header's padding (unused by blkif; the frontend
//! zeroes it when it initialises the ring): before writing response `i` it saves the 16 bytes
//! it is about to overwrite and the index `i`, behind a magic word that is cleared while the
//! journal is being rewritten. [`BackRing::attach`] restores those bytes when the journal
//! names the first unpublished slot, so the replayed request is the frontend's own. A
//! frontend that scribbles on the journal can only change what its own next request says,
//! which it could do anyway, and the restored request is validated like any other.

use crate::io::RingMem;
use protocol::xen::blkif::{
    ring_entries, slot_offset, BlkifResponse, RING_REQ_EVENT, RING_REQ_PROD, RING_RSP_EVENT,
    RING_RSP_PROD, RING_SLOT_BYTES, XEN_PAGE_BYTES,
};
use zerocopy::IntoBytes;

/// Why a ring cannot be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RingError {
    /// the frontend's request index is more than a ring ahead of our responses
    Corrupt {
        /// The `req_prod` found.
        req_prod: u32,
        /// Our private response index.
        rsp_prod: u32,
    },
    /// the ring page order is larger than the backend supports
    BadOrder(u32),
}

/// Offset of the journal's magic word (first word of the header padding).
const JOURNAL_MAGIC_OFF: usize = 16;
/// Offset of the journalled response index.
const JOURNAL_INDEX_OFF: usize = 20;
/// Offset of the saved first bytes of the journalled slot.
const JOURNAL_SAVED_OFF: usize = 24;
/// Bytes a response overwrites (and the journal saves).
const RSP_BYTES: usize = 16;
/// "BKJ1": the journal is complete.
const JOURNAL_MAGIC: u32 = u32::from_le_bytes(*b"BKJ1");

/// One request slot's bytes, copied out of the ring.
pub type Slot = [u8; RING_SLOT_BYTES];

/// The first bytes of a request slot, which its response overwrites (kept per request
/// taken, for the journal).
pub type Head = [u8; RSP_BYTES];

/// The [`Head`] of a slot.
pub fn head(slot: &Slot) -> Head {
    let mut h = [0; RSP_BYTES];
    h.copy_from_slice(&slot[..RSP_BYTES]);
    h
}

/// The backend's private view of one shared ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackRing {
    entries: u32,
    req_cons: u32,
    rsp_prod_pvt: u32,
    rsp_published: u32,
}

/// Copies `dst.len()` bytes at `off`, split where the range crosses a page boundary.
fn read_split<M: RingMem + ?Sized>(mem: &M, mut off: usize, dst: &mut [u8]) {
    let mut done = 0;
    while done < dst.len() {
        let room = XEN_PAGE_BYTES - off % XEN_PAGE_BYTES;
        let n = room.min(dst.len() - done);
        mem.read_bytes(off, &mut dst[done..done + n]);
        done += n;
        off += n;
    }
}

/// Writes `src` at `off`, split where the range crosses a page boundary.
fn write_split<M: RingMem + ?Sized>(mem: &mut M, mut off: usize, src: &[u8]) {
    let mut done = 0;
    while done < src.len() {
        let room = XEN_PAGE_BYTES - off % XEN_PAGE_BYTES;
        let n = room.min(src.len() - done);
        mem.write_bytes(off, &src[done..done + n]);
        done += n;
        off += n;
    }
}

impl BackRing {
    /// A fresh ring of `1 << order` pages, all indexes zero (`BACK_RING_INIT`; the frontend
    /// has initialised the shared header).
    pub fn new(order: u32) -> Result<Self, RingError> {
        let entries = ring_entries(order).ok_or(RingError::BadOrder(order))?;
        Ok(Self {
            entries,
            req_cons: 0,
            rsp_prod_pvt: 0,
            rsp_published: 0,
        })
    }

    /// Attaches to a ring that may already be in use: consumption restarts at the published
    /// `rsp_prod`, so the requests between it and `req_prod` are replayed (see the module
    /// doc). On a freshly initialised ring this is the same as [`BackRing::new`].
    pub fn attach<M: RingMem + ?Sized>(order: u32, mem: &mut M) -> Result<Self, RingError> {
        let mut r = Self::new(order)?;
        let rsp = mem.load_index(RING_RSP_PROD);
        let pending = mem.load_index(RING_REQ_PROD).wrapping_sub(rsp);
        if mem.load_index(JOURNAL_MAGIC_OFF) == JOURNAL_MAGIC
            && mem.load_index(JOURNAL_INDEX_OFF) == rsp
            && (1..=r.entries).contains(&pending)
        {
            let mut saved = [0; RSP_BYTES];
            mem.read_bytes(JOURNAL_SAVED_OFF, &mut saved);
            write_split(mem, slot_offset(r.entries, rsp), &saved);
        }
        r.req_cons = rsp;
        r.rsp_prod_pvt = rsp;
        r.rsp_published = rsp;
        Ok(r)
    }

    /// Slots in the ring.
    pub fn entries(&self) -> u32 {
        self.entries
    }

    /// The next request index to consume.
    pub fn req_cons(&self) -> u32 {
        self.req_cons
    }

    /// The next response index to produce.
    pub fn rsp_prod_pvt(&self) -> u32 {
        self.rsp_prod_pvt
    }

    /// Requests waiting (Acquire load of `req_prod`). The frontend may have at most one ring
    /// of requests outstanding (`RING_REQUEST_PROD_OVERFLOW`); more is corruption.
    pub fn pending<M: RingMem + ?Sized>(&self, mem: &M) -> Result<u32, RingError> {
        let req_prod = mem.load_index(RING_REQ_PROD);
        if req_prod.wrapping_sub(self.rsp_prod_pvt) > self.entries {
            return Err(RingError::Corrupt {
                req_prod,
                rsp_prod: self.rsp_prod_pvt,
            });
        }
        // Responses never run ahead of consumption, so this is at most `entries`.
        Ok(req_prod.wrapping_sub(self.req_cons))
    }

    /// Copies the next request's slot out of the ring (once) and advances `req_cons`. The
    /// caller has seen [`BackRing::pending`] return non-zero.
    pub fn take_request<M: RingMem + ?Sized>(&mut self, mem: &M, slot: &mut Slot) {
        read_split(mem, slot_offset(self.entries, self.req_cons), slot);
        self.req_cons = self.req_cons.wrapping_add(1);
    }

    /// Writes the response to the oldest unanswered request, whose slot began with `head`
    /// when it was taken, and publishes it (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`). Returns
    /// whether the frontend asked to be notified of it (its `rsp_event` lies in the newly
    /// published range). Does nothing if no request is unanswered.
    pub fn respond<M: RingMem + ?Sized>(
        &mut self,
        mem: &mut M,
        rsp: &BlkifResponse,
        head: &Head,
    ) -> bool {
        if self.req_cons == self.rsp_prod_pvt {
            return false;
        }
        // Journal the bytes the response overwrites (see the module doc); the magic is
        // cleared first so a half-written journal is never trusted.
        mem.store_index(JOURNAL_MAGIC_OFF, 0);
        mem.store_index(JOURNAL_INDEX_OFF, self.rsp_prod_pvt);
        mem.write_bytes(JOURNAL_SAVED_OFF, head);
        mem.store_index(JOURNAL_MAGIC_OFF, JOURNAL_MAGIC);
        write_split(
            mem,
            slot_offset(self.entries, self.rsp_prod_pvt),
            rsp.as_bytes(),
        );
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        let old = self.rsp_published;
        let new = self.rsp_prod_pvt;
        mem.store_index(RING_RSP_PROD, new);
        self.rsp_published = new;
        // The frontend must see the new rsp_prod before we read its rsp_event, or both
        // sides could decide the other will look again.
        mem.fence();
        let event = mem.load_index(RING_RSP_EVENT);
        new.wrapping_sub(event) < new.wrapping_sub(old)
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: with nothing left to do, asks the frontend to notify
    /// us at the next request (`req_event = req_cons + 1`), then looks once more so a request
    /// published meanwhile is not missed. Returns the requests now waiting.
    pub fn final_check<M: RingMem + ?Sized>(&mut self, mem: &mut M) -> Result<u32, RingError> {
        let n = self.pending(mem)?;
        if n != 0 {
            return Ok(n);
        }
        mem.store_index(RING_REQ_EVENT, self.req_cons.wrapping_add(1));
        mem.fence();
        self.pending(mem)
    }
}
