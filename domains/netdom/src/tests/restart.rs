//! A guest restarted in place: its vif is picked up again with new rings and a new channel,
//! whatever became of the old connection, while the other vifs keep forwarding.

use super::fakes::*;
use crate::{Action, VifId, VifState};
use protocol::xen::xenbus::XenbusState as S;
use std::collections::HashMap;

const V1: VifId = VifId(0);
const V2: VifId = VifId(1);

/// The restarted guest's netfront keys: new ring grants and a new port.
fn new_keys() -> HashMap<&'static str, String> {
    [
        ("tx-ring-ref", "40"),
        ("rx-ring-ref", "41"),
        ("event-channel", "9"),
        ("request-rx-copy", "1"),
        ("feature-sg", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

/// Replaces vif 1's frontend by a fresh one (new ring pages; the old ones are gone with
/// the old guest) and runs the actions a shell would: map and connect.
fn reconnect(nb: &mut crate::Netback, io: &mut Fake, actions: &[Action]) {
    assert!(actions.contains(&Action::MapRings { tx: 40, rx: 41 }));
    assert!(actions.contains(&Action::BindEvtchn { port: 9 }));
    assert_eq!(actions.last(), Some(&Action::SetState(S::Connected)));
    io.fronts[0] = Front::new(1);
    assert!(nb.connect(V1, io));
}

/// Traffic both ways through vif 1, and vif 2 still served.
fn traffic_flows(nb: &mut crate::Netback, io: &mut Fake) {
    let out = frame(HOST, MAC1, 200);
    io.fronts[0].send(&out, 200, 0, 0);
    nb.poll_tx(V1, io, 1);
    assert_eq!(io.uplink.last(), Some(&out));
    io.fronts[0].post_rx(4);
    let back = frame(MAC1, HOST, 300);
    nb.from_uplink(&back, io, 2);
    let got = io.fronts[0].received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, back);
    let out2 = frame(HOST, MAC2, 100);
    io.fronts[1].send(&out2, 100, 0, 0);
    nb.poll_tx(V2, io, 3);
    assert_eq!(io.uplink.last(), Some(&out2));
}

#[test]
fn a_vif_written_afresh_serves_the_new_rings() {
    let (mut nb, mut io) = connected(2, true);
    traffic_flows(&mut nb, &mut io);
    let before = nb.get(V1).unwrap().counters;
    // dom0 rewrote the vif: our state reads Initialising; the new netfront is connected.
    assert!(nb.rewritten(V1, S::Initialising));
    assert!(!nb.rewritten(V2, S::Connected));
    let keys = new_keys();
    let s = nb.reincarnate(V1, S::Connected, |k| keys.get(k).cloned());
    assert_eq!(s.actions.first(), Some(&Action::Disconnect));
    assert_eq!(nb.get(V1).unwrap().state(), VifState::Disconnected);
    assert!(nb.get(V1).unwrap().tx_ring().is_none());
    reconnect(&mut nb, &mut io, &s.actions);
    assert_eq!(nb.get(V1).unwrap().state(), VifState::Connected);
    traffic_flows(&mut nb, &mut io);
    // Counters carry on across the guest's lives.
    assert!(nb.get(V1).unwrap().counters.tx_packets > before.tx_packets);
}

#[test]
fn a_halted_vif_of_a_restarted_guest_connects_again() {
    let (mut nb, mut io) = connected(2, true);
    // The old guest sent a request naming a grant it never made: halted.
    io.fronts[0].put_tx(999, 0, 0, 60);
    io.fronts[0].publish_tx();
    nb.poll_tx(V1, &mut io, 0);
    assert_eq!(nb.take_halts().len(), 1);
    assert!(matches!(nb.get(V1).unwrap().state(), VifState::Halted(_)));
    // The restarted guest's netfront starts at Initialising (seen before any rewrite).
    let s = nb.frontend_changed(V1, S::Initialising, |_| None);
    assert_eq!(s.actions.first(), Some(&Action::Disconnect));
    assert_eq!(s.actions.last(), Some(&Action::SetState(S::InitWait)));
    assert_eq!(nb.get(V1).unwrap().state(), VifState::Disconnected);
    // Our state reads InitWait now: the scan that follows does not redo it.
    assert!(!nb.rewritten(V1, S::InitWait));
    let keys = new_keys();
    let s = nb.frontend_changed(V1, S::Connected, |k| keys.get(k).cloned());
    reconnect(&mut nb, &mut io, &s.actions);
    traffic_flows(&mut nb, &mut io);
    assert!(
        nb.get(V1).unwrap().last_halt.is_some(),
        "kept for reporting"
    );
}
