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
//! Frames from the uplink come in runs ([`Netback::from_uplink_batch`]): consecutive frames
//! for one vif are copied into its buffers by one grant copy, then answered frame by frame.
//!
//! Each frame's responses are journalled before they are written ([`BackRing::journal`]);
//! after a restart in place [`finish_journal`] completes a batch the dead instance wrote
//! but did not publish.

use crate::io::{GrantSeg, Io, Placed, RingMem, Which};
use crate::netback::Netback;
use crate::ring::{BackRing, Journal, RingError};
use crate::switch::{Port, Route, UPLINK};
use crate::vif::{HaltReason, VifId, VifState};
use alloc::vec::Vec;
use core::ops::Range;
use protocol::xen::blkif::XEN_PAGE_BYTES;
use protocol::xen::netif::{
    NetifRxRequest, NetifRxResponse, NETIF_RSP_ERROR, NETRXF_MORE_DATA, RX_SLOT_BYTES,
    XEN_NETIF_MAX_TX_SIZE,
};
use protocol::xen::structs::DomId;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Most uplink frames for one vif brought into its buffers by one grant copy.
pub const RUN_FRAMES: usize = 16;

impl Netback {
    pub(crate) fn send_to<I: Io + ?Sized>(&mut self, port: Port, frame: &[u8], io: &mut I) -> bool {
        match VifId::of_port(port) {
            None => {
                let ok = io.uplink_send(frame);
                if ok {
                    self.uplink.tx_frames += 1;
                } else {
                    self.uplink.tx_drops += 1;
                }
                ok
            }
            Some(id) => self.deliver(id, frame, io),
        }
    }

    /// Frames that arrived on the uplink NIC, at `frames` in `buf`, in arrival order: each
    /// goes where the switch says, as [`Netback::from_uplink`] sends one, but a run of
    /// consecutive frames for the same vif (up to [`RUN_FRAMES`]) reaches its buffers by one
    /// grant copy. Every grant copy is a hypercall (an exit), and a download arrives as
    /// bursts of frames for one guest.
    pub fn from_uplink_batch<I: Io + ?Sized>(
        &mut self,
        buf: &[u8],
        frames: &[Range<usize>],
        io: &mut I,
        now: u64,
    ) {
        let mut run = core::mem::take(&mut self.run);
        run.clear();
        let mut to = None;
        for f in frames {
            self.uplink.rx_frames += 1;
            let Some(frame) = buf.get(f.clone()).filter(|fr| fr.len() >= 14) else {
                continue;
            };
            let route = self.learn_route(UPLINK, frame, now);
            let vif = match route {
                Route::One(p) => VifId::of_port(p),
                _ => None,
            };
            // A frame for another destination, or a full run, sends the run first: frames
            // leave in the order they came.
            if let Some(id) = to.filter(|&t| vif != Some(t) || run.len() == RUN_FRAMES) {
                self.deliver_run(id, buf, &run, io);
                run.clear();
            }
            to = vif;
            match vif {
                Some(_) => run.push(f.clone()),
                None => {
                    self.send_routed(UPLINK, route, frame, io);
                }
            }
        }
        if let Some(id) = to {
            self.deliver_run(id, buf, &run, io);
        }
        self.run = run;
    }

    /// Copies `frame` into vif `id`'s posted RX buffers; false (and counted) if it could
    /// not be delivered.
    fn deliver<I: Io + ?Sized>(&mut self, id: VifId, frame: &[u8], io: &mut I) -> bool {
        let whole = 0..frame.len();
        self.deliver_run(id, frame, core::slice::from_ref(&whole), io) == 1
    }

    /// Copies the frames at `frames` in `buf` (in order, all for vif `id`) into its posted
    /// RX buffers with one grant copy, then answers them frame by frame; returns how many
    /// were delivered (the rest are counted as drops). A frame is journalled, answered and
    /// published before the next one is, as when each had its own copy, so a restart in
    /// place finds at most one frame half answered ([`finish_journal`]). If the copy fails,
    /// each frame is copied again on its own to find the ones the frontend's grants refuse
    /// (copies are idempotent).
    pub(crate) fn deliver_run<I: Io + ?Sized>(
        &mut self,
        id: VifId,
        buf: &[u8],
        frames: &[Range<usize>],
        io: &mut I,
    ) -> usize {
        let mut plan = core::mem::take(&mut self.rx_plan);
        plan.clear();
        let delivered = self
            .plan_run(id, buf, frames, io, &mut plan)
            .map_or(0, |frontend| self.answer_run(id, buf, frontend, &plan, io));
        self.rx_plan = plan;
        delivered
    }

    /// Takes posted buffers for each frame that gets them (consumed from the ring) into
    /// `plan`, counting a drop for each that does not; the frontend's domain id, or `None`
    /// if the vif takes nothing.
    fn plan_run<I: Io + ?Sized>(
        &mut self,
        id: VifId,
        buf: &[u8],
        frames: &[Range<usize>],
        io: &mut I,
        plan: &mut RxPlan,
    ) -> Option<DomId> {
        let v = self.vifs.get_mut(id.0)?;
        let sg = v.handshake.sg();
        let frontend = v.config.frontend;
        let (VifState::Connected, Some(ring)) = (v.state, v.rx.as_mut()) else {
            return None;
        };
        let mem = io.ring(id, Which::Rx)?;
        let mut avail = match ring.pending(mem) {
            Ok(n) => n,
            Err(e) => {
                self.halt(id, HaltReason::Ring(e));
                return None;
            }
        };
        let mut slot = [0u8; RX_SLOT_BYTES];
        for f in frames {
            let Some(frame) = buf.get(f.clone()) else {
                continue;
            };
            let needed = frame.len().div_ceil(XEN_PAGE_BYTES).max(1);
            if (needed > 1 && !sg) || avail < needed as u32 {
                v.counters.rx_drops += 1;
                continue;
            }
            let (ids, pieces) = (plan.ids.len(), plan.pieces.len());
            for (n, chunk) in frame.chunks(XEN_PAGE_BYTES).enumerate() {
                ring.peek(mem, n as u32, &mut slot);
                // A slot is exactly one request, so the read cannot fail.
                let req = NetifRxRequest::read_from_bytes(&slot)
                    .unwrap_or_else(|_| NetifRxRequest::new_zeroed());
                plan.ids.push(req.id);
                plan.pieces.push(Placed {
                    seg: GrantSeg {
                        gref: req.gref,
                        offset: 0,
                        len: chunk.len() as u16,
                    },
                    at: f.start + n * XEN_PAGE_BYTES,
                });
            }
            ring.consume(needed as u32);
            avail -= needed as u32;
            plan.frames.push(Planned {
                len: frame.len(),
                ids: ids..plan.ids.len(),
                pieces: pieces..plan.pieces.len(),
            });
        }
        Some(frontend)
    }

    /// Copies the planned frames in and answers each; how many were delivered.
    fn answer_run<I: Io + ?Sized>(
        &mut self,
        id: VifId,
        buf: &[u8],
        frontend: DomId,
        plan: &RxPlan,
        io: &mut I,
    ) -> usize {
        let all = plan.pieces.is_empty() || io.copy_out(frontend, &plan.pieces, buf).is_ok();
        let mut delivered = 0;
        for p in &plan.frames {
            let pieces = plan.pieces.get(p.pieces.clone()).unwrap_or_default();
            let copied = all || io.copy_out(frontend, pieces, buf).is_ok();
            let (Some(ring), Some(mem)) = (self.vifs[id.0].rx.as_mut(), io.ring(id, Which::Rx))
            else {
                break;
            };
            let batch = Journal {
                count: p.ids.len() as u32,
                len: p.len as u32,
                ok: copied,
            };
            ring.journal(mem, batch);
            for (n, &rid) in plan
                .ids
                .get(p.ids.clone())
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                ring.respond(mem, response(rid, n, batch).as_bytes());
            }
            let notify = ring.push(mem);
            let c = &mut self.vifs[id.0].counters;
            if copied {
                c.rx_packets += 1;
                c.rx_bytes += p.len as u64;
                delivered += 1;
            } else {
                c.rx_drops += 1;
            }
            if notify {
                self.wants_notify(id);
            }
        }
        delivered
    }
}

/// One frame of a run, its buffers taken.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Planned {
    len: usize,
    /// Its requests' ids, in [`RxPlan::ids`].
    ids: Range<usize>,
    /// Its copies, in [`RxPlan::pieces`].
    pieces: Range<usize>,
}

/// The frames of one run and their buffers (kept by the [`Netback`] so its vectors are
/// allocated once).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RxPlan {
    frames: Vec<Planned>,
    ids: Vec<u16>,
    pieces: Vec<Placed>,
}

impl RxPlan {
    fn clear(&mut self) {
        self.frames.clear();
        self.ids.clear();
        self.pieces.clear();
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
