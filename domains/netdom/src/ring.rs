//! The back half of a netif ring (TX or RX): index arithmetic, copying requests out once,
//! writing responses, and Xen's notification hold-off rules.
//!
//! The backend keeps its private `req_cons` and `rsp_prod_pvt` and the last `rsp_prod` it
//! published. The frontend can scribble on the shared header, so the only shared values
//! read are `req_prod` and `rsp_event`, both untrusted: `req_prod` more than a ring ahead
//! of our responses is [`RingError::Corrupt`] before any slot is read, and `rsp_event`
//! only decides whether to notify. Slot offsets are `index & (entries - 1)` scaled, so no
//! frontend value can move an access outside the page.
//!
//! Responses are written in the order requests were consumed (each ring's responses name
//! the request they answer by id, but both netfront's TX garbage collector and its RX path
//! walk them in ring order) and published in batches by [`BackRing::push`].
//!
//! Restart in place ([`crate::Netback::connect`] after [`crate::Netback::resume`]):
//! [`BackRing::attach`] starts from the published `rsp_prod`; the requests between it and
//! `req_prod` are the window a dead instance left. What is done with it differs per ring:
//! * TX ([`crate::tx::drop_window`]): every request in the window is answered (dropped),
//!   none is sent. netback publishes a packet's responses before it forwards the packet,
//!   so nothing in the window reached the wire, and a response written but not published
//!   overwrote its slot's grant ref (a TX response covers the first four bytes of the
//!   request: the `gref`; `flags` and `id` survive), so the data could not be trusted
//!   anyway. TCP retransmits; netfront frees the buffers and never sees an error.
//! * RX: the posted buffers are taken again as free buffers, so no frame is delivered
//!   twice. A response covers its whole request slot, so between writing a frame's
//!   responses and publishing them the slots hold neither; the backend journals each
//!   batch first ([`BackRing::journal`]: the first response index, the slot count, the
//!   frame length and whether the copy worked) in the header padding (unused by netif;
//!   the frontend zeroes it when it initialises the ring), behind a magic word cleared
//!   while the journal is rewritten. On resume a journal naming the published `rsp_prod`
//!   is completed (`rx::finish_journal`): the frame is already in the buffers and the guest has
//!   not seen it, so it is delivered exactly once. A frontend that scribbles on the
//!   journal can only make its own buffers read as delivered.

use crate::io::RingMem;
use protocol::xen::blkif::{RING_REQ_EVENT, RING_REQ_PROD, RING_RSP_EVENT, RING_RSP_PROD};
use protocol::xen::netif::{
    rx_slot_offset, tx_slot_offset, NET_RX_RING_SIZE, NET_TX_RING_SIZE, RX_SLOT_BYTES,
    TX_SLOT_BYTES,
};

/// Offset of the RX journal's magic word (the first word of the header padding).
const JOURNAL_MAGIC_OFF: usize = 16;
/// Offset of the journalled batch's first response index.
const JOURNAL_INDEX_OFF: usize = 20;
/// Offset of the journalled batch's slot count.
const JOURNAL_COUNT_OFF: usize = 24;
/// Offset of the journalled frame's length.
const JOURNAL_LEN_OFF: usize = 28;
/// Offset of the journalled copy outcome (1: the frame is in the buffers).
const JOURNAL_OK_OFF: usize = 32;
/// "NRJ1": the journal is complete.
const JOURNAL_MAGIC: u32 = u32::from_le_bytes(*b"NRJ1");

/// A batch of responses as journalled before they were written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Journal {
    /// Slots the batch answers, from the published `rsp_prod` on.
    pub count: u32,
    /// The frame's length.
    pub len: u32,
    /// Whether the frame was copied into the buffers (else every slot is an error).
    pub ok: bool,
}

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
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Corrupt { req_prod, rsp_prod } => write!(
                f,
                "ring indexes are corrupt (req_prod {req_prod:#x}, rsp_prod {rsp_prod:#x})"
            ),
        }
    }
}

/// The geometry of one of a vif's two rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 256 slots of 12 bytes.
    Tx,
    /// 256 slots of 8 bytes.
    Rx,
}

impl Kind {
    fn entries(self) -> u32 {
        match self {
            Self::Tx => NET_TX_RING_SIZE,
            Self::Rx => NET_RX_RING_SIZE,
        }
    }
    /// Bytes per slot.
    pub fn slot_bytes(self) -> usize {
        match self {
            Self::Tx => TX_SLOT_BYTES,
            Self::Rx => RX_SLOT_BYTES,
        }
    }
    fn offset(self, index: u32) -> usize {
        match self {
            Self::Tx => tx_slot_offset(index),
            Self::Rx => rx_slot_offset(index),
        }
    }
}

/// The backend's private view of one shared ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackRing {
    kind: Kind,
    req_cons: u32,
    rsp_prod_pvt: u32,
    rsp_published: u32,
}

impl BackRing {
    /// Attaches to a ring that may already be in use: consumption starts at the published
    /// `rsp_prod` (zero on a freshly initialised ring).
    pub fn attach<M: RingMem + ?Sized>(kind: Kind, mem: &M) -> Self {
        let rsp = mem.load_index(RING_RSP_PROD);
        Self {
            kind,
            req_cons: rsp,
            rsp_prod_pvt: rsp,
            rsp_published: rsp,
        }
    }

    /// Slots in the ring.
    pub fn entries(&self) -> u32 {
        self.kind.entries()
    }

    /// The next request index to consume.
    pub fn req_cons(&self) -> u32 {
        self.req_cons
    }

    /// The next response index to produce.
    pub fn rsp_prod_pvt(&self) -> u32 {
        self.rsp_prod_pvt
    }

    /// Requests waiting (Acquire load of `req_prod`). The frontend may have at most one
    /// ring of requests outstanding; more is corruption.
    pub fn pending<M: RingMem + ?Sized>(&self, mem: &M) -> Result<u32, RingError> {
        let req_prod = mem.load_index(RING_REQ_PROD);
        if req_prod.wrapping_sub(self.rsp_prod_pvt) > self.entries() {
            return Err(RingError::Corrupt {
                req_prod,
                rsp_prod: self.rsp_prod_pvt,
            });
        }
        // Responses never run ahead of consumption, so this is at most `entries`.
        Ok(req_prod.wrapping_sub(self.req_cons))
    }

    /// Copies the request slot `ahead` places after `req_cons` out of the ring without
    /// consuming it (`dst` is one slot long). The caller has seen [`BackRing::pending`]
    /// return more than `ahead`.
    pub fn peek<M: RingMem + ?Sized>(&self, mem: &M, ahead: u32, dst: &mut [u8]) {
        debug_assert_eq!(dst.len(), self.kind.slot_bytes());
        mem.read_bytes(self.kind.offset(self.req_cons.wrapping_add(ahead)), dst);
    }

    /// Consumes `n` requests (already copied out with [`BackRing::peek`]).
    pub fn consume(&mut self, n: u32) {
        self.req_cons = self.req_cons.wrapping_add(n);
    }

    /// Writes the next response (not yet published). There must be a consumed request it
    /// answers.
    pub fn respond<M: RingMem + ?Sized>(&mut self, mem: &mut M, rsp: &[u8]) {
        debug_assert!(self.req_cons != self.rsp_prod_pvt, "no request to answer");
        debug_assert!(rsp.len() <= self.kind.slot_bytes());
        mem.write_bytes(self.kind.offset(self.rsp_prod_pvt), rsp);
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
    }

    /// Publishes the responses written so far (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`).
    /// Returns whether the frontend asked to be notified of them.
    pub fn push<M: RingMem + ?Sized>(&mut self, mem: &mut M) -> bool {
        let old = self.rsp_published;
        let new = self.rsp_prod_pvt;
        if old == new {
            return false;
        }
        mem.store_index(RING_RSP_PROD, new);
        self.rsp_published = new;
        // The frontend must see the new rsp_prod before we read its rsp_event, or both
        // sides could decide the other will look again.
        mem.fence();
        let event = mem.load_index(RING_RSP_EVENT);
        new.wrapping_sub(event) < new.wrapping_sub(old)
    }

    /// Records the batch of `j.count` responses about to be written from
    /// `rsp_prod_pvt` on (the first of them must be the first unpublished one), so that a
    /// new instance can complete it ([`BackRing::journalled`]).
    pub fn journal<M: RingMem + ?Sized>(&self, mem: &mut M, j: Journal) {
        debug_assert_eq!(self.rsp_prod_pvt, self.rsp_published);
        // Cleared first so a half-written journal is never trusted.
        mem.store_index(JOURNAL_MAGIC_OFF, 0);
        mem.store_index(JOURNAL_INDEX_OFF, self.rsp_prod_pvt);
        mem.store_index(JOURNAL_COUNT_OFF, j.count);
        mem.store_index(JOURNAL_LEN_OFF, j.len);
        mem.store_index(JOURNAL_OK_OFF, u32::from(j.ok));
        mem.store_index(JOURNAL_MAGIC_OFF, JOURNAL_MAGIC);
    }

    /// The journalled batch a dead instance did not publish: a complete journal naming
    /// the published `rsp_prod` as its first response (any other is stale: its batch was
    /// published). Untrusted: the caller validates it against the ring.
    pub fn journalled<M: RingMem + ?Sized>(&self, mem: &M) -> Option<Journal> {
        if mem.load_index(JOURNAL_MAGIC_OFF) != JOURNAL_MAGIC
            || mem.load_index(JOURNAL_INDEX_OFF) != self.rsp_published
        {
            return None;
        }
        Some(Journal {
            count: mem.load_index(JOURNAL_COUNT_OFF),
            len: mem.load_index(JOURNAL_LEN_OFF),
            ok: mem.load_index(JOURNAL_OK_OFF) == 1,
        })
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: with nothing left, asks the frontend to notify us at
    /// the next request, then looks once more so a request published meanwhile is not
    /// missed. Returns the requests now waiting.
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
