//! The TX path in batches: up to [`TX_BATCH`] packets of one vif are read out of its ring,
//! their data brought in with one grant copy, then answered together and forwarded in
//! ring order.
//!
//! Why batches: every grant copy is a hypercall, an exit to the microvisor that reads the
//! operation array in and writes the statuses back. One copy per packet cost netdom's CPU
//! an exit per frame (Xen's netback batches its copies for the same reason).
//!
//! Each packet's data starts on a page of the bounce buffer: a grant copy that crossed a
//! page of ours would be split in two, and each piece costs the microvisor far more than
//! its bytes do. A packet that does not fit behind the ones gathered is left in the ring
//! (parsing consumes nothing) and starts the next batch; the first always fits, since the
//! buffer holds a packet of [`protocol::xen::netif::XEN_NETIF_MAX_TX_SIZE`] bytes and a
//! page more.
//!
//! A failed copy halts the vif (a bad grant, [`Malformed::BadGrant`]) without answering
//! the batch, as a failed packet was never answered before; the vif's rings are done with
//! once it is halted.

use crate::checksum;
use crate::io::{Io, Placed, Which};
use crate::netback::{page_gap, Netback, Poll};
use crate::tx::{self, Malformed, Verdict};
use crate::vif::{HaltReason, VifId, VifState};
use alloc::vec::Vec;
use core::ops::Range;
use protocol::xen::blkif::XEN_PAGE_BYTES;
use protocol::xen::netif::{NetifTxResponse, NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY};
use zerocopy::IntoBytes;

/// Most packets brought in by one grant copy. Sixteen full-size Ethernet frames fill the
/// bounce buffer (one page each).
pub const TX_BATCH: usize = 16;

/// One packet of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Batched {
    /// Its slots, in [`TxBatch::slots`].
    slots: Range<usize>,
    /// Where its data starts in the bounce buffer (a page boundary).
    at: usize,
    /// Its length (0 for a dropped one, which brings no data in).
    len: usize,
    /// The frontend left its checksum blank.
    csum_blank: bool,
    verdict: Verdict,
}

/// The packets gathered for one grant copy (kept by the [`Netback`] so their vectors are
/// allocated once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxBatch {
    packets: Vec<Batched>,
    /// Every slot of every packet, in ring order: the request id and whether it was extra
    /// info (answered with `NETIF_RSP_NULL`).
    slots: Vec<(u16, bool)>,
    /// The data fragments of the forwarded packets, each where it goes in the buffer.
    placed: Vec<Placed>,
}

impl TxBatch {
    fn clear(&mut self) {
        self.packets.clear();
        self.slots.clear();
        self.placed.clear();
    }
}

/// Why gathering stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gathered {
    /// The batch is full (or the next packet does not fit): serve it and gather again.
    Full,
    /// The budget ran out with packets still waiting.
    Budget,
    /// The ring is empty (`req_event` re-armed), or the vif is not connected or halted.
    Done,
}

impl Netback {
    /// Serves vif `id`'s TX ring: at most [`crate::Config::tx_budget`] packets, each answered
    /// and forwarded; re-arms `req_event` when the ring is empty.
    pub fn poll_tx<I: Io + ?Sized>(&mut self, id: VifId, io: &mut I, now: u64) -> Poll {
        let mut budget = self.config.tx_budget;
        let mut buffer = core::mem::take(&mut self.frame);
        let mut batch = core::mem::take(&mut self.batch);
        // The buffer's heap block never moves, so its first page boundary is fixed.
        let start = page_gap(buffer.as_ptr() as usize);
        let frame = &mut buffer[start..];
        let poll = loop {
            batch.clear();
            let end = self.gather(id, io, &mut budget, &mut batch, frame.len());
            if !batch.packets.is_empty() && !self.serve(id, io, &batch, frame, now) {
                break Poll::default();
            }
            match end {
                Gathered::Full => {}
                Gathered::Budget => break Poll { more: true },
                Gathered::Done => break Poll::default(),
            }
        };
        self.frame = buffer;
        self.batch = batch;
        poll
    }

    /// Reads packets out of vif `id`'s TX ring into `batch` (consuming them) until it is
    /// full, the next one would not fit in `room` bytes, the budget runs out or the ring is
    /// empty. A malformed packet or ring halts the vif (the packets gathered before it are
    /// still served).
    fn gather<I: Io + ?Sized>(
        &mut self,
        id: VifId,
        io: &mut I,
        budget: &mut u32,
        batch: &mut TxBatch,
        room: usize,
    ) -> Gathered {
        let mut next_at = 0;
        loop {
            if batch.packets.len() == TX_BATCH {
                return Gathered::Full;
            }
            let v = &mut self.vifs[id.0];
            let (VifState::Connected, Some(ring)) = (v.state, v.tx.as_mut()) else {
                return Gathered::Done;
            };
            let Some(mem) = io.ring(id, Which::Tx) else {
                return Gathered::Done;
            };
            let avail = match ring.final_check(mem) {
                Ok(n) => n,
                Err(e) => {
                    self.halt(id, HaltReason::Ring(e));
                    return Gathered::Done;
                }
            };
            if avail == 0 {
                return Gathered::Done;
            }
            if *budget == 0 {
                return Gathered::Budget;
            }
            let verdict = match tx::parse(ring, mem, avail, &mut self.pkt) {
                Ok(v) => v,
                Err(m) => {
                    self.halt(id, HaltReason::Malformed(m));
                    return Gathered::Done;
                }
            };
            let len = if verdict == Verdict::Forward {
                self.pkt.len
            } else {
                0
            };
            if next_at + len > room {
                // Left in the ring for the next batch (this one is not empty: the first
                // packet always fits).
                return Gathered::Full;
            }
            *budget -= 1;
            ring.consume(self.pkt.slots.len() as u32);
            let first = batch.slots.len();
            batch.slots.extend_from_slice(&self.pkt.slots);
            if verdict == Verdict::Forward {
                let mut at = next_at;
                for &seg in &self.pkt.segs {
                    batch.placed.push(Placed { seg, at });
                    at += usize::from(seg.len);
                }
            }
            batch.packets.push(Batched {
                slots: first..batch.slots.len(),
                at: next_at,
                len,
                csum_blank: self.pkt.csum_blank,
                verdict,
            });
            next_at = (next_at + len).next_multiple_of(XEN_PAGE_BYTES);
        }
    }

    /// Copies the batch's data into `frame`, answers every slot and forwards each packet;
    /// false if the copy failed (the vif is halted).
    fn serve<I: Io + ?Sized>(
        &mut self,
        id: VifId,
        io: &mut I,
        batch: &TxBatch,
        frame: &mut [u8],
        now: u64,
    ) -> bool {
        let frontend = self.vifs[id.0].config.frontend;
        if !batch.placed.is_empty() && io.copy_in(frontend, &batch.placed, frame).is_err() {
            self.halt(id, HaltReason::Malformed(Malformed::BadGrant));
            return false;
        }
        if self.respond(id, io, batch) {
            self.wants_notify(id);
        }
        for p in &batch.packets {
            let mac = self.vifs[id.0].config.mac;
            let data = &mut frame[p.at..p.at + p.len];
            // A forwarded packet is at least an Ethernet header (shorter ones are dropped).
            if p.verdict == Verdict::Drop || data[6..12] != mac {
                self.vifs[id.0].counters.tx_drops += 1;
                continue;
            }
            if p.csum_blank {
                checksum::complete(data);
            }
            let taken = self.forward(id.port(), data, io, now);
            let c = &mut self.vifs[id.0].counters;
            if taken {
                c.tx_packets += 1;
                c.tx_bytes += p.len as u64;
            } else {
                c.tx_drops += 1;
            }
        }
        true
    }

    /// Answers every slot of the batch, in ring order; true if the frontend wants an event.
    fn respond<I: Io + ?Sized>(&mut self, id: VifId, io: &mut I, batch: &TxBatch) -> bool {
        let (Some(ring), Some(mem)) = (self.vifs[id.0].tx.as_mut(), io.ring(id, Which::Tx)) else {
            return false;
        };
        for p in &batch.packets {
            let data = if p.verdict == Verdict::Forward {
                NETIF_RSP_OKAY
            } else {
                NETIF_RSP_ERROR
            };
            for &(rid, extra) in batch.slots.get(p.slots.clone()).unwrap_or_default() {
                let status = if extra { NETIF_RSP_NULL } else { data };
                ring.respond(mem, NetifTxResponse { id: rid, status }.as_bytes());
            }
        }
        ring.push(mem)
    }
}
