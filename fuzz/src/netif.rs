//! The `netif` target: netdom's netback core (`domains/netdom`) serving two vifs whose
//! frontends a fuzz input scripts. Between the backend's steps a frontend writes any bytes
//! into its TX and RX ring slots, moves or overwrites any ring index, rewrites its granted
//! pages, and changes its xenbus state (which re-attaches the rings mid-stream); the uplink
//! NIC delivers frames of the input's choosing.
//!
//! Checked beyond "no panic":
//! * a step consumes no more requests than the frontend had published, and none once the
//!   vif is halted or its `req_prod` is more than a ring ahead;
//! * after a TX poll of a connected vif every consumed slot is answered and published, with
//!   a status netfront knows;
//! * every grant copy stays inside its page and fills the local buffer exactly; RX copies
//!   use whole posted pages from offset 0, at most one frame's worth;
//! * every RX response's status is an error or a byte count that fits its page;
//! * every frame put on the uplink is 14..=65535 bytes with a vif's own source MAC
//!   (anti-spoofing: a guest cannot send as someone else, uplink frames never loop back).

use crate::input::{Input, Script};
use netdom::io::{GrantError, Io, Placed, RingMem, Which};
use netdom::{Config, Netback, VifConfig, VifId, VifState};
use protocol::xen::blkif::{RING_REQ_EVENT, RING_REQ_PROD, RING_RSP_EVENT, RING_RSP_PROD};
use protocol::xen::netif::{
    rx_slot_offset, tx_slot_offset, NetifRxResponse, NetifTxRequest, NetifTxResponse,
    NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETTXF_MORE_DATA, NET_RX_RING_SIZE,
    NET_TX_RING_SIZE, RX_SLOT_BYTES, TX_SLOT_BYTES, XEN_NETIF_MAX_TX_SIZE,
};
use protocol::xen::structs::DomId;
use protocol::xen::xenbus::XenbusState;
use zerocopy::{FromBytes, IntoBytes};

/// Step opcodes (a step's first byte modulo 10); `vif` is a byte whose low bit picks the vif.
pub mod op {
    /// `vif:u8 index:u8 slot:[u8; 12]`: the frontend writes TX slot `index`.
    pub const TX_SLOT: u8 = 0;
    /// `vif:u8 index:u8 slot:[u8; 8]`: the frontend writes RX slot `index`.
    pub const RX_SLOT: u8 = 1;
    /// `vif:u8 delta:u8`: the frontend moves its TX `req_prod` by a signed delta.
    pub const TX_PROD: u8 = 2;
    /// `vif:u8 delta:u8`: the frontend moves its RX `req_prod` by a signed delta.
    pub const RX_PROD: u8 = 3;
    /// `vif:u8 which:u8 value:u32`: the frontend stores any header index (which & 1: RX
    /// ring; which >> 1 & 3: req_prod, req_event, rsp_prod, rsp_event).
    pub const INDEX: u8 = 4;
    /// `vif:u8`: the backend polls the vif's TX ring (one clock tick later).
    pub const POLL_TX: u8 = 5;
    /// `chunk`: a frame arrives on the uplink NIC (cut to the NIC's 1514 bytes).
    pub const UPLINK: u8 = 6;
    /// `vif:u8 gref:u8 offset:u16 chunk`: the frontend rewrites part of a granted page.
    pub const GRANT: u8 = 7;
    /// `vif:u8 state:u8`: the frontend's xenbus `state` changes; a reconnection maps the
    /// rings again.
    pub const STATE: u8 = 8;
    /// The uplink NIC's queue fills up or drains.
    pub const UPLINK_FULL: u8 = 9;
}

/// Vifs served; frontend `n` is domain `n + 1` with MAC `MACS[n]`.
const VIFS: usize = 2;
const MACS: [[u8; 6]; VIFS] = [[0, 0x16, 0x3e, 0, 0, 1], [0, 0x16, 0x3e, 0, 0, 2]];
/// Pages each frontend granted; other refs are bad.
const GRANTS: usize = 8;
/// Steps an input may take (bounds the time of one input).
const MAX_STEPS: usize = 512;
/// The largest frame the uplink NIC delivers (its receive buffer).
const NIC_FRAME: usize = 1514;

/// One ring page.
struct Page(Vec<u8>);

impl Page {
    fn word(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.0[off..off + 4].try_into().expect("4 bytes"))
    }
    fn set_word(&mut self, off: usize, value: u32) {
        self.0[off..off + 4].copy_from_slice(&value.to_le_bytes());
    }
}

impl RingMem for Page {
    fn load_index(&self, off: usize) -> u32 {
        assert!(off < 64 && off.is_multiple_of(4), "index load at {off}");
        self.word(off)
    }
    fn store_index(&mut self, off: usize, value: u32) {
        // Besides its own two indexes, the backend may write only the header padding
        // after the four indexes (netdom journals RX batches there for a restart in place);
        // never the frontend's `req_prod` or `rsp_event`.
        assert!(
            off == RING_RSP_PROD || off == RING_REQ_EVENT || (16..64).contains(&off),
            "the backend stored the frontend's index at {off}"
        );
        self.set_word(off, value);
    }
    fn fence(&self) {}
    fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        assert!(off >= 64 && off + dst.len() <= 4096, "slot read at {off}");
        dst.copy_from_slice(&self.0[off..off + dst.len()]);
    }
    fn write_bytes(&mut self, off: usize, src: &[u8]) {
        assert!(off >= 64 && off + src.len() <= 4096, "slot write at {off}");
        self.0[off..off + src.len()].copy_from_slice(src);
    }
}

/// A frontend: its two rings and granted pages.
struct Front {
    tx: Page,
    rx: Page,
    pages: Vec<Vec<u8>>,
}

/// The shell, faked, checking every copy and uplink frame.
struct Fake {
    fronts: Vec<Front>,
    uplink_full: bool,
}

impl Fake {
    fn pages(&mut self, domid: DomId) -> Result<&mut Vec<Vec<u8>>, GrantError> {
        let n = usize::from(domid)
            .checked_sub(1)
            .ok_or(GrantError::BadDomain)?;
        self.fronts
            .get_mut(n)
            .map(|f| &mut f.pages)
            .ok_or(GrantError::BadDomain)
    }
}

/// Checks the pieces of a copy into a local buffer of `len` bytes: each inside its page
/// and inside the buffer, none overlapping another (a TX batch lays its packets apart).
fn check_placed(pieces: &[Placed], len: usize) {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for p in pieces {
        let s = p.seg;
        assert!(
            usize::from(s.offset) + usize::from(s.len) <= 4096,
            "a segment crosses its page: {s:?}"
        );
        let end = p.at + usize::from(s.len);
        assert!(
            end <= len,
            "a piece ends at {end}, past the {len}-byte buffer"
        );
        spans.push((p.at, end));
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "pieces overlap in the buffer: {w:?}");
    }
}

impl Io for Fake {
    fn ring(&mut self, id: VifId, which: Which) -> Option<&mut dyn RingMem> {
        let f = self.fronts.get_mut(id.0)?;
        Some(match which {
            Which::Tx => &mut f.tx,
            Which::Rx => &mut f.rx,
        })
    }
    fn copy_in(
        &mut self,
        domid: DomId,
        pieces: &[Placed],
        dst: &mut [u8],
    ) -> Result<(), GrantError> {
        check_placed(pieces, dst.len());
        let pages = self.pages(domid)?;
        for p in pieces {
            let s = p.seg;
            let page = pages.get(s.gref as usize).ok_or(GrantError::BadRef)?;
            let (o, n) = (usize::from(s.offset), usize::from(s.len));
            dst[p.at..p.at + n].copy_from_slice(&page[o..o + n]);
        }
        Ok(())
    }
    fn copy_out(&mut self, domid: DomId, pieces: &[Placed], src: &[u8]) -> Result<(), GrantError> {
        check_placed(pieces, src.len());
        for p in pieces {
            assert_eq!(
                p.seg.offset, 0,
                "an RX buffer used from offset {}",
                p.seg.offset
            );
        }
        let pages = self.pages(domid)?;
        for p in pieces {
            let page = pages
                .get_mut(p.seg.gref as usize)
                .ok_or(GrantError::BadRef)?;
            let n = usize::from(p.seg.len);
            page[..n].copy_from_slice(&src[p.at..p.at + n]);
        }
        Ok(())
    }
    fn uplink_send(&mut self, frame: &[u8]) -> bool {
        assert!(
            (14..=XEN_NETIF_MAX_TX_SIZE).contains(&frame.len()),
            "an uplink frame of {} bytes",
            frame.len()
        );
        assert!(
            MACS.iter().any(|m| frame[6..12] == *m),
            "an uplink frame with a foreign source MAC {:x?}",
            &frame[6..12]
        );
        !self.uplink_full
    }
}

/// The frontend keys of a well-behaved netfront (`sg` from the input).
fn keys(sg: bool) -> impl FnMut(&str) -> Option<String> {
    move |k| {
        Some(
            match k {
                "tx-ring-ref" => "8",
                "rx-ring-ref" => "9",
                "event-channel" => "5",
                "request-rx-copy" => "1",
                "feature-sg" if sg => "1",
                "feature-sg" => "0",
                _ => return None,
            }
            .to_string(),
        )
    }
}

/// The frontend changed state: what the shell does with the step (maps rings on
/// `MapRings`, which `connect` follows).
fn change_state(nb: &mut Netback, io: &mut Fake, id: VifId, fe: XenbusState, sg: bool) {
    let step = nb.frontend_changed(id, fe, keys(sg));
    if step
        .actions
        .iter()
        .any(|a| matches!(a, netdom::Action::MapRings { .. }))
    {
        assert!(nb.connect(id, io), "the fake always maps");
    }
}

/// What one ring looked like before a step.
#[derive(Clone, Copy)]
struct Before {
    req_prod: u32,
    req_cons: Option<u32>,
    rsp_pvt: Option<u32>,
    rsp_prod: u32,
    halted: bool,
}

fn before(nb: &Netback, io: &Fake, id: VifId, which: Which) -> Before {
    let v = nb.get(id).expect("vif");
    let (page, ring) = match which {
        Which::Tx => (&io.fronts[id.0].tx, v.tx_ring()),
        Which::Rx => (&io.fronts[id.0].rx, v.rx_ring()),
    };
    Before {
        req_prod: page.word(RING_REQ_PROD),
        req_cons: ring.map(|r| r.req_cons()),
        rsp_pvt: ring.map(|r| r.rsp_prod_pvt()),
        rsp_prod: page.word(RING_RSP_PROD),
        halted: matches!(v.state(), VifState::Halted(_)),
    }
}

/// Checks what a backend step (not a reconnection) did to one ring.
fn check_step(nb: &Netback, io: &Fake, id: VifId, which: Which, was: Before, polled: bool) {
    let v = nb.get(id).expect("vif");
    let (page, ring, entries) = match which {
        Which::Tx => (&io.fronts[id.0].tx, v.tx_ring(), NET_TX_RING_SIZE),
        Which::Rx => (&io.fronts[id.0].rx, v.rx_ring(), NET_RX_RING_SIZE),
    };
    let (Some(old), Some(old_rsp), Some(ring)) = (was.req_cons, was.rsp_pvt, ring) else {
        return;
    };
    let taken = ring.req_cons().wrapping_sub(old);
    if was.halted {
        assert_eq!(taken, 0, "a halted vif's {which:?} ring was consumed");
    }
    let published = was.req_prod.wrapping_sub(old);
    assert!(
        taken == 0 || (published <= entries && taken <= published),
        "{which:?}: consumed {taken} with {published} published"
    );
    assert!(
        ring.req_cons().wrapping_sub(ring.rsp_prod_pvt()) <= entries,
        "{which:?}: responses ahead of requests"
    );
    // The responses written by this step: a status netfront understands.
    let new_rsp = page.word(RING_RSP_PROD);
    if new_rsp != was.rsp_prod {
        assert_eq!(new_rsp, ring.rsp_prod_pvt(), "{which:?}: rsp_prod not ours");
    }
    let mut i = old_rsp;
    assert!(
        ring.rsp_prod_pvt().wrapping_sub(i) <= entries,
        "{which:?}: more than a ring of responses"
    );
    while i != ring.rsp_prod_pvt() {
        match which {
            Which::Tx => {
                let off = tx_slot_offset(i);
                let r = NetifTxResponse::read_from_bytes(&page.0[off..off + 4]).expect("4 bytes");
                assert!(
                    [NETIF_RSP_OKAY, NETIF_RSP_ERROR, NETIF_RSP_NULL].contains(&r.status),
                    "TX status {}",
                    r.status
                );
            }
            Which::Rx => {
                let off = rx_slot_offset(i);
                let r = NetifRxResponse::read_from_bytes(&page.0[off..off + RX_SLOT_BYTES])
                    .expect("8 bytes");
                assert!(
                    r.status == NETIF_RSP_ERROR
                        || (r.status > 0 && usize::from(r.offset) + r.status as usize <= 4096),
                    "RX response {r:?}"
                );
            }
        }
        i = i.wrapping_add(1);
    }
    // A TX poll of a vif still connected answered and published every slot it consumed
    // (`rsp_prod` is the frontend's to scribble on until the next responses go out).
    if polled && which == Which::Tx && v.state() == VifState::Connected {
        assert_eq!(ring.rsp_prod_pvt(), ring.req_cons(), "TX slots unanswered");
        if ring.rsp_prod_pvt() != old_rsp {
            assert_eq!(new_rsp, ring.rsp_prod_pvt(), "TX responses unpublished");
        }
    }
}

/// A granted page: a broadcast frame header from the frontend's own MAC, then `fill`.
fn page(mac: [u8; 6], fill: u8) -> Vec<u8> {
    let mut p = vec![fill; 4096];
    p[..6].fill(0xff);
    p[6..12].copy_from_slice(&mac);
    p[12..14].copy_from_slice(&[0x88, 0xb5]);
    p
}

/// Runs one input: `flags:u8 start:u32` (flags bit n: vif n offers `feature-sg`; bit 2:
/// the uplink starts full; both rings of both vifs start at index `start`), then steps
/// ([`op`]).
pub fn run(data: &[u8]) {
    exec(data);
}

/// [`run`], returning the backend at the end (for the seeds' tests).
fn exec(data: &[u8]) -> Netback {
    let mut inp = Input::new(data);
    let flags = inp.u8();
    let start = inp.u32();
    let sg = |n: usize| flags & (1 << n) != 0;
    let mut nb = Netback::new(Config {
        mac_capacity: 8,
        aging: 100,
        tx_budget: 4,
    });
    let mut io = Fake {
        fronts: Vec::new(),
        uplink_full: flags & 4 != 0,
    };
    for (n, mac) in MACS.iter().enumerate() {
        let mut ring = Page(vec![0; 4096]);
        for off in [RING_REQ_PROD, RING_RSP_PROD] {
            ring.set_word(off, start);
        }
        for off in [RING_REQ_EVENT, RING_RSP_EVENT] {
            ring.set_word(off, start.wrapping_add(1));
        }
        io.fronts.push(Front {
            tx: Page(ring.0.clone()),
            rx: ring,
            pages: (0..GRANTS).map(|g| page(*mac, g as u8)).collect(),
        });
        let id = nb.add(VifConfig {
            frontend: (n + 1) as DomId,
            devid: 0,
            mac: *mac,
        });
        nb.start(id);
        change_state(&mut nb, &mut io, id, XenbusState::Connected, sg(n));
    }
    let mut now = 0u64;
    for _ in 0..MAX_STEPS {
        if inp.is_empty() {
            break;
        }
        let code = inp.u8() % 10;
        let vif = usize::from(inp.u8() & 1);
        let id = VifId(vif);
        let front = &mut io.fronts[vif];
        match code {
            op::TX_SLOT => {
                let off = tx_slot_offset(u32::from(inp.u8()));
                let b = inp.bytes(TX_SLOT_BYTES);
                front.tx.0[off..off + b.len()].copy_from_slice(b);
            }
            op::RX_SLOT => {
                let off = rx_slot_offset(u32::from(inp.u8()));
                let b = inp.bytes(RX_SLOT_BYTES);
                front.rx.0[off..off + b.len()].copy_from_slice(b);
            }
            op::TX_PROD | op::RX_PROD => {
                let page = if code == op::TX_PROD {
                    &mut front.tx
                } else {
                    &mut front.rx
                };
                let delta = inp.u8() as i8;
                let p = page.word(RING_REQ_PROD).wrapping_add_signed(delta.into());
                page.set_word(RING_REQ_PROD, p);
            }
            op::INDEX => {
                let which = inp.u8();
                let page = if which & 1 == 0 {
                    &mut front.tx
                } else {
                    &mut front.rx
                };
                let off = [RING_REQ_PROD, RING_REQ_EVENT, RING_RSP_PROD, RING_RSP_EVENT]
                    [usize::from(which >> 1 & 3)];
                page.set_word(off, inp.u32());
            }
            op::GRANT => {
                let g = usize::from(inp.u8()) % GRANTS;
                let at = usize::from(inp.u16()) % 4096;
                let b = inp.chunk();
                let n = b.len().min(4096 - at);
                front.pages[g][at..at + n].copy_from_slice(&b[..n]);
            }
            op::UPLINK_FULL => io.uplink_full = !io.uplink_full,
            op::STATE => {
                let fe = XenbusState::try_from(u32::from(inp.u8() % 9)).expect("0..=8");
                change_state(&mut nb, &mut io, id, fe, sg(vif));
            }
            _ => {
                // POLL_TX and UPLINK: backend steps, checked on every ring (a frame from
                // one vif is delivered into the others' RX rings).
                let frame = (code == op::UPLINK).then(|| {
                    let b = inp.chunk();
                    b[..b.len().min(NIC_FRAME)].to_vec()
                });
                now += 1;
                let was: Vec<[Before; 2]> = (0..VIFS)
                    .map(|n| {
                        let i = VifId(n);
                        [
                            before(&nb, &io, i, Which::Tx),
                            before(&nb, &io, i, Which::Rx),
                        ]
                    })
                    .collect();
                match &frame {
                    // The frame one to three times (by its length), a page apart, as the
                    // shell stages a run: the runs' batched copies are exercised too.
                    Some(f) => {
                        let times = 1 + f.len() % 3;
                        let mut buf = vec![0u8; times * 4096];
                        let mut at = Vec::new();
                        for i in 0..times {
                            buf[i * 4096..i * 4096 + f.len()].copy_from_slice(f);
                            at.push(i * 4096..i * 4096 + f.len());
                        }
                        nb.from_uplink_batch(&buf, &at, &mut io, now);
                    }
                    None => {
                        nb.poll_tx(id, &mut io, now);
                    }
                }
                for (n, w) in was.iter().enumerate() {
                    let i = VifId(n);
                    let polled = frame.is_none() && n == vif;
                    check_step(&nb, &io, i, Which::Tx, w[0], polled);
                    check_step(&nb, &io, i, Which::Rx, w[1], false);
                }
            }
        }
        nb.take_notify();
        nb.take_halts();
    }
    nb
}

/// A TX request's bytes.
fn tx(gref: u32, offset: u16, flags: u16, id: u16, size: u16) -> Vec<u8> {
    NetifTxRequest {
        gref,
        offset,
        flags,
        id,
        size,
    }
    .as_bytes()
    .to_vec()
}

/// Seeds: traffic between the vifs and the uplink, a fragmented packet near the index
/// wrap, and a malformed packet that halts a vif before it reconnects.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut s = Script::new();
    // vif 1 posts two RX buffers (grants 6, 7); vif 0 sends a 60-byte frame, broadcast.
    s.u8(0).u32(0);
    s.u8(op::RX_SLOT)
        .u8(1)
        .u8(0)
        .0
        .extend([0, 0, 0, 0, 6, 0, 0, 0]);
    s.u8(op::RX_SLOT)
        .u8(1)
        .u8(1)
        .0
        .extend([1, 0, 0, 0, 7, 0, 0, 0]);
    s.u8(op::RX_PROD).u8(1).u8(2);
    s.u8(op::TX_SLOT).u8(0).u8(0).0.extend(tx(1, 0, 0, 1, 60));
    s.u8(op::TX_PROD).u8(0).u8(1);
    s.u8(op::POLL_TX).u8(0);
    let mut frame = page(MACS[0], 0x11)[..64].to_vec();
    frame[..6].copy_from_slice(&MACS[1]);
    s.u8(op::UPLINK).u8(0).chunk(&frame);
    out.push(("traffic", s.take()));

    // Rings just below the index wrap; vif 0 (sg) sends three fragments across it.
    s.u8(1).u32(u32::MAX - 1);
    s.u8(op::TX_SLOT)
        .u8(0)
        .u8(0xfe)
        .0
        .extend(tx(1, 0, NETTXF_MORE_DATA, 1, 3000));
    s.u8(op::TX_SLOT)
        .u8(0)
        .u8(0xff)
        .0
        .extend(tx(2, 100, NETTXF_MORE_DATA, 2, 1000));
    s.u8(op::TX_SLOT)
        .u8(0)
        .u8(0x00)
        .0
        .extend(tx(3, 4000, 0, 3, 96));
    s.u8(op::TX_PROD).u8(0).u8(3);
    s.u8(op::POLL_TX).u8(0);
    out.push(("fragments-wrap", s.take()));

    // A fragment crossing its page halts vif 1; it closes and reconnects, then sends.
    s.u8(0).u32(7);
    s.u8(op::TX_SLOT)
        .u8(1)
        .u8(7)
        .0
        .extend(tx(1, 4000, 0, 9, 200));
    s.u8(op::TX_PROD).u8(1).u8(1);
    s.u8(op::POLL_TX).u8(1);
    s.u8(op::POLL_TX).u8(1);
    for st in [XenbusState::Closing, XenbusState::Closed] {
        s.u8(op::STATE).u8(1).u8(st as u8);
    }
    // The request is rewritten while closed; the reconnection replays it from rsp_prod.
    s.u8(op::TX_SLOT).u8(1).u8(7).0.extend(tx(2, 0, 0, 10, 64));
    for st in [XenbusState::Initialising, XenbusState::Connected] {
        s.u8(op::STATE).u8(1).u8(st as u8);
    }
    s.u8(op::POLL_TX).u8(1);
    out.push(("halt-reconnect", s.take()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_move_packets() {
        let seeds = seeds();
        let counters = |n: usize| {
            let nb = exec(&seeds[n].1);
            let c: Vec<_> = (0..VIFS)
                .map(|v| nb.get(VifId(v)).unwrap().counters)
                .collect();
            (nb.uplink, c, nb.get(VifId(1)).unwrap().last_halt)
        };
        // traffic: vif 0's frame reaches vif 1 and the uplink; the uplink's frame, staged
        // twice (its length picks how many times), vif 1 once: it posted two buffers, so
        // the second copy is dropped and counted.
        let (up, c, _) = counters(0);
        assert_eq!((c[0].tx_packets, up.tx_frames, up.rx_frames), (1, 1, 2));
        assert_eq!((c[1].rx_packets, c[1].rx_drops), (2, 1));
        // fragments-wrap: one 3000-byte packet from three slots across the wrap.
        let (_, c, _) = counters(1);
        assert_eq!(
            (c[0].tx_packets, c[0].tx_bytes, c[0].tx_errors),
            (1, 3000, 0)
        );
        // halt-reconnect: halted once, then the rewritten request goes out.
        let (_, c, halt) = counters(2);
        assert!(halt.is_some());
        assert_eq!((c[1].tx_errors, c[1].tx_packets), (1, 1));
    }
}
