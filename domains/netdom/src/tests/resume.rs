//! netdom restarted in place: a new instance takes up the rings a dead one served. TX
//! requests left unanswered are answered (dropped, never sent); RX buffers left unused are
//! used again and a frame never reaches the guest twice; a frame whose responses were
//! written but not published is completed from the journal.

use super::fakes::*;
use crate::{Action, Netback, Resumed, VifConfig, VifId, VifState};
use protocol::xen::blkif::RING_RSP_PROD;
use protocol::xen::netif::{
    rx_slot_offset, NETIF_RSP_DROPPED, NETIF_RSP_NULL, NETTXF_EXTRA_INFO, RX_SLOT_BYTES,
    TX_SLOT_BYTES,
};
use protocol::xen::xenbus::XenbusState as S;
use std::collections::HashMap;

const V1: VifId = VifId(0);

/// The netfront keys the fakes' frontends wrote when they connected.
fn keys() -> HashMap<&'static str, String> {
    [
        ("tx-ring-ref", "8"),
        ("rx-ring-ref", "9"),
        ("event-channel", "5"),
        ("request-rx-copy", "1"),
        ("feature-sg", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

/// A new netdom instance: every vif of `io` found Connected at both ends in xenstore,
/// resumed without writing anything and its rings taken up.
fn new_instance(io: &mut Fake) -> Netback {
    let mut nb = Netback::new(config());
    let keys = keys();
    for i in 0..io.fronts.len() {
        let mut mac = MAC1;
        mac[5] = (i + 1) as u8;
        let id = nb.add(VifConfig {
            frontend: io.fronts[i].domid,
            devid: 0,
            mac,
        });
        let s = nb.resume(id, S::Connected, S::Connected, |k| keys.get(k).cloned());
        assert_eq!(
            s.actions,
            [
                Action::MapRings { tx: 8, rx: 9 },
                Action::BindEvtchn { port: 5 }
            ],
            "nothing written"
        );
        assert!(nb.connect(id, io));
    }
    nb
}

/// The published RX `rsp_prod` set back to `to`, as if the instance died before pushing.
fn unpublish_rx(io: &mut Fake, to: u32) {
    io.fronts[0].rx.set_index(RING_RSP_PROD, to);
}

#[test]
fn unanswered_tx_packets_are_dropped_never_sent() {
    let (_dead, mut io) = connected_at(1, true, 250);
    // Two packets the dead instance never looked at: one in two fragments, one whole,
    // across the ring's wrap.
    let f = &mut io.fronts[0];
    f.send(&frame(HOST, MAC1, 3000), 2000, 0, 0);
    f.send(&frame(HOST, MAC1, 100), 100, 0, 0);
    let mut nb = new_instance(&mut io);
    assert!(io.uplink.is_empty(), "nothing of the window is sent");
    assert_eq!(
        io.fronts[0].tx_responses(),
        [
            (0, NETIF_RSP_DROPPED),
            (1, NETIF_RSP_DROPPED),
            (2, NETIF_RSP_DROPPED)
        ]
    );
    assert_eq!(
        nb.take_resumed(V1),
        Some(Resumed {
            tx_at: 253,
            rx_at: 250,
            tx_dropped: 2,
            rx_completed: 0,
        })
    );
    assert_eq!(nb.take_resumed(V1), None, "told once");
    assert_eq!(
        nb.take_notify(),
        [V1],
        "its events to the dead instance were lost"
    );
    assert_eq!(nb.get(V1).unwrap().counters.tx_drops, 2);
    // Traffic goes on from there.
    let out = frame(HOST, MAC1, 200);
    io.fronts[0].send(&out, 200, 0, 0);
    nb.poll_tx(V1, &mut io, 1);
    assert_eq!(io.uplink, [out]);
    assert_eq!(io.fronts[0].tx_responses(), [(3, 0)]);
}

#[test]
fn a_tx_answer_written_but_not_published_is_answered_again_with_its_id() {
    let (mut dead, mut io) = connected(1, true);
    io.fronts[0].send(&frame(HOST, MAC1, 5000), 2500, 0, 0);
    dead.poll_tx(V1, &mut io, 0);
    // It died after writing both answers but before publishing them: the slots hold
    // responses over the requests' grant refs.
    io.fronts[0].tx.set_index(RING_RSP_PROD, 0);
    let _ = io.fronts[0].tx_responses();
    io.fronts[0].tx_rsp_seen = 0;
    let mut nb = new_instance(&mut io);
    assert_eq!(
        io.fronts[0].tx_responses(),
        [(0, NETIF_RSP_DROPPED), (1, NETIF_RSP_DROPPED)]
    );
    assert_eq!(nb.take_resumed(V1).unwrap().tx_dropped, 1);
}

#[test]
fn an_extra_info_slot_in_the_tx_window_is_answered_null() {
    let (_dead, mut io) = connected(1, true);
    let f = &mut io.fronts[0];
    let g = f.grant(frame(HOST, MAC1, 60));
    f.put_tx(g, 0, NETTXF_EXTRA_INFO, 60);
    // A multicast extra (type 2), no more extras.
    let mut extra = [0u8; TX_SLOT_BYTES];
    extra[0] = 2;
    f.put_tx_slot(&extra);
    f.put_tx(g, 0, 0, 60);
    f.publish_tx();
    let mut nb = new_instance(&mut io);
    let got = io.fronts[0].tx_responses();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], (0, NETIF_RSP_DROPPED));
    assert_eq!(got[1].1, NETIF_RSP_NULL);
    assert_eq!(got[2], (1, NETIF_RSP_DROPPED));
    assert_eq!(nb.take_resumed(V1).unwrap().tx_dropped, 2);
}

#[test]
fn posted_rx_buffers_are_used_again_and_no_frame_arrives_twice() {
    let (mut dead, mut io) = connected(1, true);
    io.fronts[0].post_rx(8);
    let a = frame(MAC1, HOST, 300);
    dead.from_uplink(&a, &mut io, 0);
    let mut nb = new_instance(&mut io);
    let r = nb.take_resumed(V1).unwrap();
    assert_eq!((r.rx_at, r.rx_completed), (1, 0));
    let b = frame(MAC1, HOST, 400);
    nb.from_uplink(&b, &mut io, 1);
    let got: Vec<Vec<u8>> = io.fronts[0].received().into_iter().map(|f| f.0).collect();
    assert_eq!(got, [a, b]);
    // Every buffer left is still there to use.
    let ring = nb.get(V1).unwrap().rx_ring().copied().unwrap();
    assert_eq!(ring.pending(&io.fronts[0].rx), Ok(6));
}

/// A frame of `len` bytes copied by a dead instance that wrote its responses (the first
/// `written` of them, the slots after holding the requests still) and died before
/// publishing them.
fn died_before_publishing(len: usize, written: usize) -> (Fake, Vec<u8>) {
    let (mut dead, mut io) = connected_at(1, true, 254);
    io.fronts[0].post_rx(4);
    let saved: Vec<Vec<u8>> = (0..4u32)
        .map(|k| {
            let off = rx_slot_offset(254 + k);
            io.fronts[0].rx.0[off..off + RX_SLOT_BYTES].to_vec()
        })
        .collect();
    let f = frame(MAC1, HOST, len);
    dead.from_uplink(&f, &mut io, 0);
    assert_eq!(dead.get(V1).unwrap().counters.rx_packets, 1);
    unpublish_rx(&mut io, 254);
    for (k, bytes) in saved.iter().enumerate().skip(written) {
        let off = rx_slot_offset(254 + k as u32);
        io.fronts[0].rx.0[off..off + RX_SLOT_BYTES].copy_from_slice(bytes);
    }
    (io, f)
}

#[test]
fn a_frame_copied_but_not_published_is_completed_once() {
    for written in [0, 1, 2] {
        let (mut io, f) = died_before_publishing(5000, written);
        let mut nb = new_instance(&mut io);
        let r = nb.take_resumed(V1).unwrap();
        assert_eq!((r.rx_at, r.rx_completed), (256, 2), "{written} written");
        let got = io.fronts[0].received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, f, "{written} written");
        // The next frame takes the next buffer.
        let g = frame(MAC1, HOST, 100);
        nb.from_uplink(&g, &mut io, 1);
        assert_eq!(io.fronts[0].received()[0].0, g);
    }
}

#[test]
fn a_stale_or_lying_journal_is_not_completed() {
    // Published already: the journal names an index before rsp_prod.
    let (mut dead, mut io) = connected(1, true);
    io.fronts[0].post_rx(4);
    dead.from_uplink(&frame(MAC1, HOST, 100), &mut io, 0);
    let _ = io.fronts[0].received();
    let mut nb = new_instance(&mut io);
    assert_eq!(nb.take_resumed(V1).unwrap().rx_completed, 0);
    assert!(io.fronts[0].received().is_empty());
    // A journal that claims more slots than a frame of its length takes, or more than
    // are posted: the slots are free buffers again.
    for (count_off, value) in [(24, 3u32), (28, 70_000)] {
        let (mut io, _) = died_before_publishing(5000, 0);
        io.fronts[0].rx.set_index(count_off, value);
        let mut nb = new_instance(&mut io);
        let r = nb.take_resumed(V1).unwrap();
        assert_eq!((r.rx_at, r.rx_completed), (254, 0));
        assert!(io.fronts[0].received().is_empty());
    }
}

#[test]
fn a_corrupt_window_halts_the_vif() {
    let (_dead, mut io) = connected(1, true);
    io.fronts[0]
        .tx
        .set_index(protocol::xen::blkif::RING_REQ_PROD, 300);
    let mut nb = new_instance(&mut io);
    assert_eq!(nb.take_resumed(V1), None);
    assert!(matches!(nb.get(V1).unwrap().state(), VifState::Halted(_)));
    let halts = nb.take_halts();
    assert_eq!(halts.len(), 1);
    assert_eq!(halts[0].2.actions, [Action::SetState(S::Closing)]);
}

#[test]
fn a_vif_that_was_not_connected_at_both_ends_starts_over() {
    let (_dead, mut io) = connected(1, true);
    io.fronts[0].send(&frame(HOST, MAC1, 100), 100, 0, 0);
    let mut nb = Netback::new(config());
    let id = nb.add(VifConfig {
        frontend: 1,
        devid: 0,
        mac: MAC1,
    });
    let keys = keys();
    // The frontend was closing when the old instance died.
    let s = nb.resume(id, S::Connected, S::Closing, |k| keys.get(k).cloned());
    assert!(!s
        .actions
        .iter()
        .any(|a| matches!(a, Action::MapRings { .. })));
    // Later it comes back through the handshake: a fresh connect takes requests as they
    // are, nothing is dropped.
    let s = nb.frontend_changed(id, S::Closed, |_| None);
    assert_eq!(s.actions.last(), Some(&Action::SetState(S::Closed)));
    nb.frontend_changed(id, S::Initialising, |_| None);
    let s = nb.frontend_changed(id, S::Connected, |k| keys.get(k).cloned());
    assert_eq!(s.actions.last(), Some(&Action::SetState(S::Connected)));
    assert!(nb.connect(id, &mut io));
    assert_eq!(nb.take_resumed(id), None);
    nb.poll_tx(id, &mut io, 0);
    assert_eq!(io.uplink.len(), 1);
}
