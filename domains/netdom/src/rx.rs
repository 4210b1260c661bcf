//! The RX path: frames handed to a vif by grant copy into the buffers its frontend
//! posted, or to the uplink NIC.
//!
//! A frame takes one posted page per 4 KiB (offset 0), the slots before the last flagged
//! `NETRXF_more_data`; a frame that needs several pages is only given to a frontend that
//! offered `feature-sg`. With too few buffers posted the frame is dropped and counted in
//! that vif's `rx_drops` (the switch never waits for a guest). A grant copy the frontend's
//! grants make fail answers every slot of the frame with `NETIF_RSP_ERROR` and counts a
//! drop; responses always follow the requests' ring order, which netfront relies on.
//!
//! Each frame's responses are journalled before they are written ([`BackRing::journal`]);
//! after a restart in place [`finish_journal`] completes a batch the dead instance wrote
//! but did not publish.

use crate::io::{GrantSeg, Io, RingMem, Which};
use crate::netback::Netback;
use crate::ring::{BackRing, Journal, RingError};
use crate::switch::Port;
use crate::vif::{HaltReason, VifId, VifState};
use protocol::xen::blkif::XEN_PAGE_BYTES;
use protocol::xen::netif::{
    NetifRxRequest, NetifRxResponse, NETIF_RSP_ERROR, NETRXF_MORE_DATA, RX_SLOT_BYTES,
    XEN_NETIF_MAX_TX_SIZE,
};
use zerocopy::{FromBytes, IntoBytes};

impl Netback {
    pub(crate) fn send_to<I: Io + ?Sized>(&mut self, port: Port, frame: &[u8], io: &mut I) -> bool {
        match VifId::of_port(port) {
            None => {
                let ok = io.uplink_send(frame);
                if ok {
                    self.uplink.sent += 1;
                } else {
                    self.uplink.drops += 1;
                }
                ok
            }
            Some(id) => self.deliver(id, frame, io),
        }
    }

    /// Copies `frame` into vif `id`'s posted RX buffers; false (and counted) if it could
    /// not be delivered.
    fn deliver<I: Io + ?Sized>(&mut self, id: VifId, frame: &[u8], io: &mut I) -> bool {
        let Some(v) = self.vifs.get_mut(id.0) else {
            return false;
        };
        let sg = v.handshake.sg();
        let frontend = v.config.frontend;
        let (VifState::Connected, Some(ring)) = (v.state, v.rx.as_mut()) else {
            return false;
        };
        let Some(mem) = io.ring(id, Which::Rx) else {
            return false;
        };
        let avail = match ring.pending(mem) {
            Ok(n) => n,
            Err(e) => {
                self.halt(id, HaltReason::Ring(e));
                return false;
            }
        };
        let needed = frame.len().div_ceil(XEN_PAGE_BYTES).max(1);
        if (needed > 1 && !sg) || avail < needed as u32 {
            v.counters.rx_drops += 1;
            return false;
        }
        self.segs.clear();
        let mut ids = [0u16; XEN_NETIF_MAX_TX_SIZE.div_ceil(XEN_PAGE_BYTES)];
        let mut slot = [0u8; RX_SLOT_BYTES];
        for (n, chunk) in frame.chunks(XEN_PAGE_BYTES).enumerate() {
            ring.peek(mem, n as u32, &mut slot);
            let Ok(req) = NetifRxRequest::read_from_bytes(&slot) else {
                return false;
            };
            ids[n] = req.id;
            self.segs.push(GrantSeg {
                gref: req.gref,
                offset: 0,
                len: chunk.len() as u16,
            });
        }
        ring.consume(needed as u32);
        let copied = io.copy_out(frontend, &self.segs, frame).is_ok();
        // `io` is borrowed again for the ring: look it up once more.
        let (Some(ring), Some(mem)) = (self.vifs[id.0].rx.as_mut(), io.ring(id, Which::Rx)) else {
            return false;
        };
        let batch = Journal {
            count: needed as u32,
            len: frame.len() as u32,
            ok: copied,
        };
        ring.journal(mem, batch);
        for (n, &rid) in ids[..needed].iter().enumerate() {
            ring.respond(mem, response(rid, n, batch).as_bytes());
        }
        let notify = ring.push(mem);
        let c = &mut self.vifs[id.0].counters;
        if copied {
            c.rx_packets += 1;
            c.rx_bytes += frame.len() as u64;
        } else {
            c.rx_drops += 1;
        }
        if notify {
            self.wants_notify(id);
        }
        copied
    }
}

/// The response to slot `n` of the frame `batch` describes: the bytes of the frame in
/// that slot's page (or an error if the copy failed), `more_data` on all but the last.
fn response(id: u16, n: usize, batch: Journal) -> NetifRxResponse {
    let last = n + 1 == batch.count as usize;
    let bytes = (batch.len as usize)
        .saturating_sub(n * XEN_PAGE_BYTES)
        .min(XEN_PAGE_BYTES);
    NetifRxResponse {
        id,
        offset: 0,
        flags: if last { 0 } else { NETRXF_MORE_DATA },
        status: if batch.ok {
            bytes as i16
        } else {
            NETIF_RSP_ERROR
        },
    }
}

/// Restart in place: completes the batch of responses a dead instance journalled, wrote
/// (perhaps partly) and did not publish, and publishes it; the frame is already in the
/// frontend's buffers. Returns the slots answered (0: no such batch, or a journal that
/// does not fit the ring, which is ignored: its slots are taken as free buffers). The
/// responses name the slots' ids: a response keeps its request's id in place, so a slot
/// reads the same id whether or not the dead instance reached it. Call it on a ring just
/// attached.
pub fn finish_journal<M: RingMem + ?Sized>(
    ring: &mut BackRing,
    mem: &mut M,
) -> Result<u32, RingError> {
    let avail = ring.pending(mem)?;
    let Some(batch) = ring.journalled(mem) else {
        return Ok(0);
    };
    let slots = (batch.len as usize).div_ceil(XEN_PAGE_BYTES).max(1);
    if batch.len as usize > XEN_NETIF_MAX_TX_SIZE
        || batch.count as usize != slots
        || batch.count > avail
    {
        return Ok(0);
    }
    let mut slot = [0u8; RX_SLOT_BYTES];
    for n in 0..slots {
        ring.peek(mem, 0, &mut slot);
        ring.consume(1);
        let id = u16::from_le_bytes([slot[0], slot[1]]);
        ring.respond(mem, response(id, n, batch).as_bytes());
    }
    ring.push(mem);
    Ok(batch.count)
}
