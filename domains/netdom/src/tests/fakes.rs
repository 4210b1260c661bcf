//! Fakes: ring pages in Vecs, grants over a map of pages, an uplink that records frames,
//! and a frontend that posts TX packets and RX buffers the way netfront does.

use crate::io::{GrantError, Io, Placed, RingMem, Which};
use crate::{Config, Netback, VifConfig, VifId};
use protocol::xen::blkif::{RING_REQ_EVENT, RING_REQ_PROD, RING_RSP_EVENT, RING_RSP_PROD};
use protocol::xen::netif::*;
use protocol::xen::structs::{DomId, GrantRef};
use std::collections::HashMap;
use zerocopy::{FromBytes, IntoBytes};

/// One ring page.
pub struct Page(pub Vec<u8>);

impl Page {
    pub fn new() -> Self {
        let mut p = Self(vec![0; 4096]);
        // SHARED_RING_INIT
        p.store_index(RING_REQ_EVENT, 1);
        p.store_index(RING_RSP_EVENT, 1);
        p
    }
    pub fn index(&self, off: usize) -> u32 {
        self.load_index(off)
    }
    pub fn set_index(&mut self, off: usize, v: u32) {
        self.store_index(off, v)
    }
}

impl RingMem for Page {
    fn load_index(&self, off: usize) -> u32 {
        assert!(off < 64 && off.is_multiple_of(4));
        u32::from_le_bytes(self.0[off..off + 4].try_into().unwrap())
    }
    fn store_index(&mut self, off: usize, value: u32) {
        assert!(off < 64 && off.is_multiple_of(4));
        self.0[off..off + 4].copy_from_slice(&value.to_le_bytes());
    }
    fn fence(&self) {}
    fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        assert!(off + dst.len() <= 4096, "read past the page");
        dst.copy_from_slice(&self.0[off..off + dst.len()]);
    }
    fn write_bytes(&mut self, off: usize, src: &[u8]) {
        assert!(off + src.len() <= 4096, "write past the page");
        self.0[off..off + src.len()].copy_from_slice(src);
    }
}

/// A frontend's two rings and its granted pages.
pub struct Front {
    pub domid: DomId,
    pub tx: Page,
    pub rx: Page,
    pub pages: HashMap<GrantRef, Vec<u8>>,
    pub tx_prod: u32,
    pub tx_rsp_seen: u32,
    pub rx_prod: u32,
    pub rx_rsp_seen: u32,
    pub rx_ids: HashMap<u16, GrantRef>,
    next_gref: GrantRef,
    next_id: u16,
}

impl Front {
    pub fn new(domid: DomId) -> Self {
        Self {
            domid,
            tx: Page::new(),
            rx: Page::new(),
            pages: HashMap::new(),
            tx_prod: 0,
            tx_rsp_seen: 0,
            rx_prod: 0,
            rx_rsp_seen: 0,
            rx_ids: HashMap::new(),
            next_gref: 100,
            next_id: 0,
        }
    }

    /// Starts both rings at `start` (as if `start` requests had come and gone).
    pub fn start_at(&mut self, start: u32) {
        for p in [&mut self.tx, &mut self.rx] {
            p.set_index(RING_REQ_PROD, start);
            p.set_index(RING_RSP_PROD, start);
            p.set_index(RING_REQ_EVENT, start.wrapping_add(1));
            p.set_index(RING_RSP_EVENT, start.wrapping_add(1));
        }
        self.tx_prod = start;
        self.tx_rsp_seen = start;
        self.rx_prod = start;
        self.rx_rsp_seen = start;
    }

    pub fn grant(&mut self, data: Vec<u8>) -> GrantRef {
        let g = self.next_gref;
        self.next_gref += 1;
        let mut page = data;
        page.resize(4096, 0);
        self.pages.insert(g, page);
        g
    }

    /// Writes a raw TX slot without publishing it.
    pub fn put_tx_slot(&mut self, bytes: &[u8; TX_SLOT_BYTES]) {
        let off = tx_slot_offset(self.tx_prod);
        self.tx.0[off..off + TX_SLOT_BYTES].copy_from_slice(bytes);
        self.tx_prod = self.tx_prod.wrapping_add(1);
    }

    pub fn put_tx(&mut self, gref: GrantRef, offset: u16, flags: u16, size: u16) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let r = NetifTxRequest {
            gref,
            offset,
            flags,
            id,
            size,
        };
        self.put_tx_slot(r.as_bytes().try_into().unwrap());
        id
    }

    pub fn publish_tx(&mut self) {
        let p = self.tx_prod;
        self.tx.set_index(RING_REQ_PROD, p);
    }

    /// Sends `frame` as one packet in fragments of at most `frag` bytes, each in its own
    /// page at offset `offset`.
    pub fn send(&mut self, frame: &[u8], frag: usize, offset: u16, flags: u16) {
        let chunks: Vec<&[u8]> = frame.chunks(frag).collect();
        for (i, c) in chunks.iter().enumerate() {
            let mut page = vec![0u8; usize::from(offset)];
            page.extend_from_slice(c);
            let g = self.grant(page);
            let more = if i + 1 < chunks.len() {
                NETTXF_MORE_DATA
            } else {
                0
            };
            let size = if i == 0 { frame.len() } else { c.len() } as u16;
            self.put_tx(g, offset, more | if i == 0 { flags } else { 0 }, size);
        }
        self.publish_tx();
    }

    /// TX responses published since last asked, as (id, status).
    pub fn tx_responses(&mut self) -> Vec<(u16, i16)> {
        let prod = self.tx.index(RING_RSP_PROD);
        let mut out = Vec::new();
        while self.tx_rsp_seen != prod {
            let off = tx_slot_offset(self.tx_rsp_seen);
            let r = NetifTxResponse::read_from_bytes(&self.tx.0[off..off + 4]).unwrap();
            out.push((r.id, r.status));
            self.tx_rsp_seen = self.tx_rsp_seen.wrapping_add(1);
        }
        out
    }

    /// Posts `n` empty RX buffers.
    pub fn post_rx(&mut self, n: u32) {
        for _ in 0..n {
            let g = self.grant(vec![0xEE; 4096]);
            let r = NetifRxRequest {
                id: (self.rx_prod % 256) as u16,
                _pad0: 0,
                gref: g,
            };
            self.rx_ids.insert(r.id, g);
            let off = rx_slot_offset(self.rx_prod);
            self.rx.0[off..off + 8].copy_from_slice(r.as_bytes());
            self.rx_prod = self.rx_prod.wrapping_add(1);
        }
        let p = self.rx_prod;
        self.rx.set_index(RING_REQ_PROD, p);
    }

    /// Frames received since last asked (slots joined while `more_data`), with the raw
    /// responses of each.
    pub fn received(&mut self) -> Vec<(Vec<u8>, Vec<NetifRxResponse>)> {
        let prod = self.rx.index(RING_RSP_PROD);
        let mut out = Vec::new();
        let mut cur = (Vec::new(), Vec::new());
        while self.rx_rsp_seen != prod {
            let off = rx_slot_offset(self.rx_rsp_seen);
            let r = NetifRxResponse::read_from_bytes(&self.rx.0[off..off + 8]).unwrap();
            let gref = self.rx_ids[&r.id];
            if r.status > 0 {
                let page = &self.pages[&gref];
                let o = usize::from(r.offset);
                cur.0.extend_from_slice(&page[o..o + r.status as usize]);
            }
            cur.1.push(r);
            self.rx_rsp_seen = self.rx_rsp_seen.wrapping_add(1);
            if r.flags & NETRXF_MORE_DATA == 0 {
                out.push(std::mem::take(&mut cur));
            }
        }
        out
    }
}

/// The shell, faked: frontends by vif, and the uplink.
pub struct Fake {
    pub fronts: Vec<Front>,
    /// Grant copies in (one per batch of TX packets).
    pub copies_in: usize,
    /// Grant copies out (one per run of uplink frames for one vif, plus retries).
    pub copies_out: usize,
    pub uplink: Vec<Vec<u8>>,
    pub uplink_full: bool,
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
        self.copies_in += 1;
        let f = self
            .fronts
            .iter()
            .find(|f| f.domid == domid)
            .ok_or(GrantError::BadDomain)?;
        for p in pieces {
            let s = p.seg;
            assert!(usize::from(s.offset) + usize::from(s.len) <= 4096);
            let page = f.pages.get(&s.gref).ok_or(GrantError::BadRef)?;
            let (o, n) = (usize::from(s.offset), usize::from(s.len));
            dst[p.at..p.at + n].copy_from_slice(&page[o..o + n]);
        }
        Ok(())
    }
    fn copy_out(&mut self, domid: DomId, pieces: &[Placed], src: &[u8]) -> Result<(), GrantError> {
        self.copies_out += 1;
        let f = self
            .fronts
            .iter_mut()
            .find(|f| f.domid == domid)
            .ok_or(GrantError::BadDomain)?;
        for p in pieces {
            let s = p.seg;
            assert!(usize::from(s.offset) + usize::from(s.len) <= 4096);
            let page = f.pages.get_mut(&s.gref).ok_or(GrantError::BadRef)?;
            let (o, n) = (usize::from(s.offset), usize::from(s.len));
            page[o..o + n].copy_from_slice(&src[p.at..p.at + n]);
        }
        Ok(())
    }
    fn uplink_send(&mut self, frame: &[u8]) -> bool {
        if self.uplink_full {
            return false;
        }
        self.uplink.push(frame.to_vec());
        true
    }
}

pub const MAC1: [u8; 6] = [0, 0x16, 0x3e, 0, 0, 1];
pub const MAC2: [u8; 6] = [0, 0x16, 0x3e, 0, 0, 2];
pub const HOST: [u8; 6] = [0x52, 0x55, 10, 0, 2, 2];

pub fn config() -> Config {
    Config {
        mac_capacity: 64,
        aging: 1000,
        tx_budget: 64,
    }
}

/// A netback with `n` connected vifs (frontends 1.., MACs MAC1, MAC2, …) with `sg`.
pub fn connected(n: usize, sg: bool) -> (Netback, Fake) {
    connected_at(n, sg, 0)
}

/// As [`connected`], with both rings of every vif starting at index `start`.
pub fn connected_at(n: usize, sg: bool, start: u32) -> (Netback, Fake) {
    let mut nb = Netback::new(config());
    let mut io = Fake {
        fronts: Vec::new(),
        copies_in: 0,
        copies_out: 0,
        uplink: Vec::new(),
        uplink_full: false,
    };
    for i in 0..n {
        let domid = (i + 1) as DomId;
        let mut mac = MAC1;
        mac[5] = (i + 1) as u8;
        let id = nb.add(VifConfig {
            frontend: domid,
            devid: 0,
            mac,
        });
        nb.start(id);
        let mut front = Front::new(domid);
        front.start_at(start);
        io.fronts.push(front);
        let keys: HashMap<&str, String> = [
            ("tx-ring-ref", "8"),
            ("rx-ring-ref", "9"),
            ("event-channel", "5"),
            ("request-rx-copy", "1"),
            ("feature-sg", if sg { "1" } else { "0" }),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        nb.frontend_changed(id, protocol::xen::xenbus::XenbusState::Connected, |k| {
            keys.get(k).cloned()
        });
        assert!(nb.connect(id, &mut io));
    }
    (nb, io)
}

/// An Ethernet frame from `src` to `dst` of `len` bytes (payload a counting pattern).
pub fn frame(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12] = 0x88;
    f[13] = 0xB5; // a local experimental EtherType: no checksum to fill
    for (i, b) in f.iter_mut().enumerate().skip(14) {
        *b = (i * 7 % 251) as u8;
    }
    f
}
