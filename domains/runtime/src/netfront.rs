//! A Xen netfront for our Rust domains (the RTOS's network device): one TX and one RX ring,
//! a granted page per buffer, one frame per page (no `feature-sg`, so the backend never
//! splits a frame; the MTU is 1500).
//!
//! [`NetCore`] is the ring logic over any [`SharedRing`] pages, host-tested against a
//! model backend; [`device`] connects it through xenstore on the board. The backend is not
//! trusted: responses naming an id we did not post, a length outside the page, or a
//! producer running ahead of our requests are counted and dropped, never followed.

pub mod rings;

#[cfg(target_os = "none")]
pub mod device;

#[cfg(test)]
mod tests;

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use protocol::xen::netif::{
    NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse, ETH_HLEN, NETIF_RSP_NULL,
    NETIF_RSP_OKAY, NETRXF_MORE_DATA, NET_RX_RING_SIZE, NET_TX_RING_SIZE, RX_SLOT_BYTES,
    TX_SLOT_BYTES,
};
use protocol::xen::ring_io::{RingError, SharedRing};
use rings::FrontRing;
use zerocopy::{FromBytes, IntoBytes};

/// Largest frame we send or accept: an Ethernet frame of a 1500-byte MTU, no FCS.
pub const MAX_FRAME: usize = 1514;
/// Received frames kept for the stack before new ones are dropped.
const RX_QUEUE_MAX: usize = 64;

/// A page of ours granted to the backend.
pub struct Buffer<P> {
    /// The page.
    pub page: P,
    /// Its grant reference.
    pub gref: u32,
}

/// Why a frame was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Shorter than an Ethernet header or longer than [`MAX_FRAME`].
    BadLength(usize),
    /// Every TX buffer is waiting for the backend.
    Busy,
}

/// What the frontend has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Frames handed to the backend.
    pub tx_packets: u64,
    /// TX responses with an error status (or naming an id we had not sent).
    pub tx_errors: u64,
    /// Frames received.
    pub rx_packets: u64,
    /// RX responses dropped: error status, bad length or id, multi-slot frame, full queue.
    pub rx_errors: u64,
}

/// The frontend's rings and buffers.
pub struct NetCore<P> {
    tx: FrontRing<P>,
    rx: FrontRing<P>,
    tx_bufs: Vec<Buffer<P>>,
    tx_free: Vec<u16>,
    rx_bufs: Vec<Buffer<P>>,
    rx_posted: Vec<bool>,
    /// Inside a frame the backend split with `NETRXF_more_data`: dropping until its end.
    rx_skipping: bool,
    received: VecDeque<Vec<u8>>,
    /// What happened so far.
    pub counters: NetCounters,
}

impl<P: SharedRing> NetCore<P> {
    /// Takes the front ends of the two ring pages and posts every RX buffer. At most 256
    /// buffers of each kind are used (one ring's worth).
    pub fn new(
        tx_ring: P,
        rx_ring: P,
        mut tx_bufs: Vec<Buffer<P>>,
        mut rx_bufs: Vec<Buffer<P>>,
    ) -> Self {
        tx_bufs.truncate(NET_TX_RING_SIZE as usize);
        rx_bufs.truncate(NET_RX_RING_SIZE as usize);
        let tx_free = (0..tx_bufs.len() as u16).rev().collect();
        let rx_posted = vec![false; rx_bufs.len()];
        let mut core = Self {
            tx: FrontRing::new(tx_ring, NET_TX_RING_SIZE, TX_SLOT_BYTES),
            rx: FrontRing::new(rx_ring, NET_RX_RING_SIZE, RX_SLOT_BYTES),
            tx_bufs,
            tx_free,
            rx_bufs,
            rx_posted,
            rx_skipping: false,
            received: VecDeque::new(),
            counters: NetCounters::default(),
        };
        for id in 0..core.rx_bufs.len() {
            core.post_rx(id);
        }
        core.rx.publish();
        core
    }

    fn post_rx(&mut self, id: usize) {
        let req = NetifRxRequest {
            id: id as u16,
            _pad0: 0,
            gref: self.rx_bufs[id].gref,
        };
        if self.rx.push(req.as_bytes()) {
            self.rx_posted[id] = true;
        }
    }

    /// Whether a TX buffer is free.
    pub fn can_send(&self) -> bool {
        !self.tx_free.is_empty()
    }

    /// Queues `frame` (complete, checksums filled in) to the backend. Ok(true) means the
    /// backend asked to be notified.
    pub fn send(&mut self, frame: &[u8]) -> Result<bool, SendError> {
        if !(ETH_HLEN..=MAX_FRAME).contains(&frame.len()) {
            return Err(SendError::BadLength(frame.len()));
        }
        let id = self.tx_free.pop().ok_or(SendError::Busy)?;
        let buf = &mut self.tx_bufs[usize::from(id)];
        buf.page.write_bytes(0, frame);
        let req = NetifTxRequest {
            gref: buf.gref,
            offset: 0,
            flags: 0,
            id,
            size: frame.len() as u16,
        };
        if !self.tx.push(req.as_bytes()) {
            // Cannot happen (one slot per buffer), but never lose the buffer.
            self.tx_free.push(id);
            return Err(SendError::Busy);
        }
        self.counters.tx_packets += 1;
        Ok(self.tx.publish())
    }

    /// Frees the TX buffers the backend is done with.
    pub fn reap_tx(&mut self) -> Result<(), RingError> {
        let Self {
            tx,
            tx_free,
            tx_bufs,
            counters,
            ..
        } = self;
        tx.take_responses(|slot| {
            let Ok((rsp, _)) = NetifTxResponse::read_from_prefix(slot) else {
                return;
            };
            if rsp.status == NETIF_RSP_NULL {
                return;
            }
            let id = rsp.id;
            if usize::from(id) >= tx_bufs.len() || tx_free.contains(&id) {
                counters.tx_errors += 1;
                return;
            }
            if rsp.status != NETIF_RSP_OKAY {
                counters.tx_errors += 1;
            }
            tx_free.push(id);
        })?;
        Ok(())
    }

    /// Moves the frames the backend delivered into the receive queue and re-posts their
    /// buffers. Ok(true) means the backend asked to be notified of the new buffers.
    pub fn poll_rx(&mut self) -> Result<bool, RingError> {
        let mut done: Vec<NetifRxResponse> = Vec::new();
        self.rx.take_responses(|slot| {
            if let Ok((rsp, _)) = NetifRxResponse::read_from_prefix(slot) {
                done.push(rsp);
            }
        })?;
        for rsp in done {
            self.take_rx(rsp);
        }
        Ok(self.rx.publish())
    }

    fn take_rx(&mut self, rsp: NetifRxResponse) {
        let id = usize::from(rsp.id);
        if id >= self.rx_bufs.len() || !self.rx_posted[id] {
            self.counters.rx_errors += 1;
            return;
        }
        self.rx_posted[id] = false;
        let len = usize::try_from(rsp.status).unwrap_or(0);
        let off = usize::from(rsp.offset);
        let split = rsp.flags & NETRXF_MORE_DATA != 0;
        let whole = !self.rx_skipping && !split;
        self.rx_skipping = split;
        if whole && (ETH_HLEN..=MAX_FRAME).contains(&len) && off + len <= 4096 {
            if self.received.len() < RX_QUEUE_MAX {
                let mut frame = vec![0u8; len];
                self.rx_bufs[id].page.read_bytes(off, &mut frame);
                self.received.push_back(frame);
                self.counters.rx_packets += 1;
            } else {
                self.counters.rx_errors += 1;
            }
        } else {
            self.counters.rx_errors += 1;
        }
        self.post_rx(id);
    }

    /// The oldest received frame.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        self.received.pop_front()
    }
}
