//! The frontend's half of a one-page Xen ring (`io/ring.h`'s FRONT_RING macros), over any
//! [`SharedRing`] page: private request producer, response consumer, the notify rule of
//! `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY` and the re-arm of `RING_FINAL_CHECK_FOR_RESPONSES`.
//!
//! The backend is not trusted: a response producer that runs ahead of the requests we
//! published is reported as [`RingError::Corrupt`] and nothing is read.

use protocol::xen::ring_io::{RingError, SharedRing};

/// `req_prod`, `req_event`, `rsp_prod`, `rsp_event`: the header's four indexes.
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;
/// Slots start after the 64-byte header.
const HEADER_BYTES: usize = 64;

/// One ring of `size` slots of `slot` bytes each.
pub struct FrontRing<P> {
    page: P,
    size: u32,
    slot: usize,
    req_prod_pvt: u32,
    rsp_cons: u32,
}

impl<P: SharedRing> FrontRing<P> {
    /// Initialises the shared header (`SHARED_RING_INIT`) and takes the front end of it.
    /// `size` must be a power of two whose slots fit in the page.
    pub fn new(mut page: P, size: u32, slot: usize) -> Self {
        debug_assert!(size.is_power_of_two() && HEADER_BYTES + size as usize * slot <= 4096);
        page.store_index(REQ_PROD, 0);
        page.store_index(RSP_PROD, 0);
        page.store_index(REQ_EVENT, 1);
        page.store_index(RSP_EVENT, 1);
        Self {
            page,
            size,
            slot,
            req_prod_pvt: 0,
            rsp_cons: 0,
        }
    }

    fn offset(&self, index: u32) -> usize {
        HEADER_BYTES + (index & (self.size - 1)) as usize * self.slot
    }

    /// Slots not holding a request the backend has yet to answer.
    pub fn free_slots(&self) -> u32 {
        self.size - self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Writes a request into the next private slot; false when the ring is full.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        if self.free_slots() == 0 || bytes.len() > self.slot {
            return false;
        }
        let off = self.offset(self.req_prod_pvt);
        self.page.write_bytes(off, bytes);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        true
    }

    /// Publishes the pushed requests; true if the backend asked to be notified of them.
    pub fn publish(&mut self) -> bool {
        let old = self.page.load_index(REQ_PROD);
        let new = self.req_prod_pvt;
        if old == new {
            return false;
        }
        // Release: the request bytes are visible before the new producer index.
        self.page.store_index(REQ_PROD, new);
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        let event = self.page.load_index(REQ_EVENT);
        new.wrapping_sub(event) < new.wrapping_sub(old)
    }

    /// Calls `f` with each response the backend produced, in order, then re-arms the
    /// response event so the backend notifies us of the next one.
    pub fn take_responses(&mut self, mut f: impl FnMut(&[u8])) -> Result<usize, RingError> {
        let mut taken = 0;
        let mut buf = [0u8; 16];
        loop {
            let prod = self.page.load_index(RSP_PROD);
            let pending = prod.wrapping_sub(self.rsp_cons);
            if pending > self.req_prod_pvt.wrapping_sub(self.rsp_cons) {
                return Err(RingError::Corrupt {
                    prod,
                    cons: self.rsp_cons,
                });
            }
            while self.rsp_cons != prod {
                let off = self.offset(self.rsp_cons);
                let slot = &mut buf[..self.slot.min(16)];
                self.page.read_bytes(off, slot);
                f(slot);
                self.rsp_cons = self.rsp_cons.wrapping_add(1);
                taken += 1;
            }
            self.page
                .store_index(RSP_EVENT, self.rsp_cons.wrapping_add(1));
            core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
            if self.page.load_index(RSP_PROD) == self.rsp_cons {
                return Ok(taken);
            }
        }
    }
}
