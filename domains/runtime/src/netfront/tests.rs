//! NetCore against a model backend working on the same pages, including a hostile one.

use super::{Buffer, NetCore, SendError, MAX_FRAME};
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use protocol::xen::netif::{
    rx_slot_offset, tx_slot_offset, NetifRxRequest, NetifRxResponse, NetifTxRequest,
    NetifTxResponse, NETIF_RSP_ERROR, NETIF_RSP_OKAY, NETRXF_MORE_DATA,
};
use protocol::xen::ring_io::{RingError, SharedRing};
use zerocopy::{FromBytes, IntoBytes};

/// A page both sides see (the test is single-threaded, so no ordering is needed).
#[derive(Clone)]
struct Page(Rc<RefCell<Vec<u8>>>);

impl Page {
    fn new() -> Self {
        Self(Rc::new(RefCell::new(vec![0; 4096])))
    }
}

impl SharedRing for Page {
    fn load_index(&self, off: usize) -> u32 {
        let p = self.0.borrow();
        u32::from_le_bytes([p[off], p[off + 1], p[off + 2], p[off + 3]])
    }
    fn store_index(&mut self, off: usize, value: u32) {
        self.0.borrow_mut()[off..off + 4].copy_from_slice(&value.to_le_bytes());
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        dst.copy_from_slice(&self.0.borrow()[off..off + dst.len()]);
    }
    fn write_bytes(&mut self, off: usize, src: &[u8]) {
        self.0.borrow_mut()[off..off + src.len()].copy_from_slice(src);
    }
}

/// The backend's view: the two rings, its consumer indexes, and every granted page by ref.
struct Backend {
    tx: Page,
    rx: Page,
    tx_cons: u32,
    rx_cons: u32,
    rsp_tx: u32,
    rsp_rx: u32,
    pages: Vec<(u32, Page)>,
}

impl Backend {
    fn page(&self, gref: u32) -> Page {
        self.pages
            .iter()
            .find(|(g, _)| *g == gref)
            .expect("granted")
            .1
            .clone()
    }

    /// Takes every TX request and answers each with `status`; returns the frames.
    fn drain_tx(&mut self, status: i16) -> Vec<Vec<u8>> {
        let prod = self.tx.load_index(0);
        let mut frames = Vec::new();
        while self.tx_cons != prod {
            let mut slot = [0u8; 12];
            self.tx.read_bytes(tx_slot_offset(self.tx_cons), &mut slot);
            let req = NetifTxRequest::read_from_bytes(&slot).expect("12 bytes");
            let mut frame = vec![0u8; usize::from(req.size)];
            self.page(req.gref)
                .read_bytes(usize::from(req.offset), &mut frame);
            frames.push(frame);
            let rsp = NetifTxResponse { id: req.id, status };
            self.tx
                .write_bytes(tx_slot_offset(self.rsp_tx), rsp.as_bytes());
            self.rsp_tx += 1;
            self.tx_cons += 1;
        }
        self.tx.store_index(8, self.rsp_tx);
        frames
    }

    /// Delivers `frame` into the next posted RX buffer with `flags`; false if none posted.
    fn deliver(&mut self, frame: &[u8], flags: u16, id_override: Option<u16>) -> bool {
        if self.rx.load_index(0) == self.rx_cons {
            return false;
        }
        let mut slot = [0u8; 8];
        self.rx.read_bytes(rx_slot_offset(self.rx_cons), &mut slot);
        let req = NetifRxRequest::read_from_bytes(&slot).expect("8 bytes");
        self.rx_cons += 1;
        self.page(req.gref).write_bytes(0, frame);
        let rsp = NetifRxResponse {
            id: id_override.unwrap_or(req.id),
            offset: 0,
            flags,
            status: frame.len() as i16,
        };
        self.rx
            .write_bytes(rx_slot_offset(self.rsp_rx), rsp.as_bytes());
        self.rsp_rx += 1;
        self.rx.store_index(8, self.rsp_rx);
        true
    }
}

fn setup(tx_n: u32, rx_n: u32) -> (NetCore<Page>, Backend) {
    let (tx, rx) = (Page::new(), Page::new());
    let mut pages = Vec::new();
    let mut bufs = |n: u32, base: u32| {
        (0..n)
            .map(|i| {
                let p = Page::new();
                pages.push((base + i, p.clone()));
                Buffer {
                    page: p,
                    gref: base + i,
                }
            })
            .collect::<Vec<_>>()
    };
    let txb = bufs(tx_n, 100);
    let rxb = bufs(rx_n, 500);
    let core = NetCore::new(tx.clone(), rx.clone(), txb, rxb);
    let be = Backend {
        tx,
        rx,
        tx_cons: 0,
        rx_cons: 0,
        rsp_tx: 0,
        rsp_rx: 0,
        pages,
    };
    (core, be)
}

fn frame(n: usize, fill: u8) -> Vec<u8> {
    vec![fill; n]
}

#[test]
fn frames_cross_both_rings_and_buffers_come_back() {
    let (mut nf, mut be) = setup(2, 4);
    assert_eq!(be.rx.load_index(0), 4, "every RX buffer is posted at start");
    // The backend's req_event starts at 1: the first request is notified.
    assert_eq!(nf.send(&frame(60, 1)), Ok(true));
    assert_eq!(nf.send(&frame(MAX_FRAME, 2)), Ok(false));
    assert_eq!(nf.send(&frame(60, 3)), Err(SendError::Busy));
    assert_eq!(
        be.drain_tx(NETIF_RSP_OKAY),
        vec![frame(60, 1), frame(MAX_FRAME, 2)]
    );
    nf.reap_tx().unwrap();
    assert!(nf.can_send());
    // Wrap the TX ring many times with two buffers.
    for i in 0..600u32 {
        nf.send(&frame(64, i as u8)).unwrap();
        assert_eq!(be.drain_tx(NETIF_RSP_OKAY), vec![frame(64, i as u8)]);
        nf.reap_tx().unwrap();
    }
    // RX: frames arrive in order and each buffer is re-posted.
    for i in 0..600u32 {
        assert!(be.deliver(&frame(100 + (i as usize % 50), i as u8), 0, None));
        nf.poll_rx().unwrap();
        assert_eq!(nf.recv(), Some(frame(100 + (i as usize % 50), i as u8)));
    }
    assert_eq!(nf.counters.rx_packets, 600);
    assert_eq!(nf.counters.tx_packets, 602);
    assert_eq!(nf.counters.tx_errors + nf.counters.rx_errors, 0);
}

#[test]
fn bad_lengths_are_refused_before_the_ring() {
    let (mut nf, _be) = setup(1, 1);
    assert_eq!(nf.send(&frame(13, 0)), Err(SendError::BadLength(13)));
    assert_eq!(
        nf.send(&frame(MAX_FRAME + 1, 0)),
        Err(SendError::BadLength(MAX_FRAME + 1))
    );
    assert!(nf.can_send());
}

#[test]
fn a_hostile_backend_is_counted_not_followed() {
    let (mut nf, mut be) = setup(1, 2);
    nf.send(&frame(60, 1)).unwrap();
    be.drain_tx(NETIF_RSP_ERROR);
    nf.reap_tx().unwrap();
    assert_eq!(nf.counters.tx_errors, 1);
    assert!(nf.can_send(), "an error still returns the buffer");

    // An id we never posted, then a split frame (we offered no feature-sg).
    assert!(be.deliver(&frame(60, 9), 0, Some(77)));
    assert!(be.deliver(&frame(60, 9), NETRXF_MORE_DATA, None));
    nf.poll_rx().unwrap();
    assert_eq!(nf.recv(), None);
    assert_eq!(nf.counters.rx_errors, 2);
    // The continuation of the split frame is dropped too; the next whole frame arrives.
    assert!(be.deliver(&frame(60, 8), 0, None));
    nf.poll_rx().unwrap();
    assert!(be.deliver(&frame(70, 7), 0, None));
    nf.poll_rx().unwrap();
    assert_eq!(nf.recv(), Some(frame(70, 7)));
    assert_eq!(nf.counters.rx_errors, 3);

    // A response producer beyond our requests is corrupt: nothing is read.
    be.tx.store_index(8, 1000);
    assert!(matches!(
        nf.reap_tx(),
        Err(RingError::Corrupt { prod: 1000, .. })
    ));
}
