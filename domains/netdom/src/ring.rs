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
//! Restart: [`BackRing::attach`] starts from the published `rsp_prod`, so requests between
//! it and `req_prod` are consumed again. For TX that re-sends packets (a network may
//! duplicate a frame); for RX it re-uses posted buffers. A response written but not yet
//! published overwrote its request slot, so a backend that dies in that window leaves the
//! replay a slot that fails validation and the vif is halted (blkdom's journal is not
//! repeated here).

use crate::io::RingMem;
use protocol::xen::blkif::{RING_REQ_EVENT, RING_REQ_PROD, RING_RSP_EVENT, RING_RSP_PROD};
use protocol::xen::netif::{
    rx_slot_offset, tx_slot_offset, NET_RX_RING_SIZE, NET_TX_RING_SIZE, RX_SLOT_BYTES,
    TX_SLOT_BYTES,
};

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
