//! The TX path's batches: one grant copy brings many packets in, and everything the
//! frontend and the switch see is as it was packet by packet.

use super::fakes::*;
use crate::tx::Malformed;
use crate::tx_batch::TX_BATCH;
use crate::{HaltReason, VifId, VifState};
use protocol::xen::netif::*;

const V1: VifId = VifId(0);

/// A frame from the vif's own MAC whose payload starts with `tag` (to tell them apart).
fn tagged(len: usize, tag: u8) -> Vec<u8> {
    let mut f = frame(HOST, MAC1, len);
    f[14] = tag;
    f
}

#[test]
fn packets_are_brought_in_one_copy_per_batch_and_forwarded_in_order() {
    let (mut nb, mut io) = connected(1, true);
    let n = 2 * TX_BATCH + 5;
    let mut sent = Vec::new();
    for i in 0..n {
        // 60 bytes to a page (sixteen fill the buffer); every fifth packet fragmented.
        let f = tagged(60 + i * 211 % 4000, i as u8);
        let frag = if i % 5 == 0 { 1000 } else { 4096 - 40 };
        io.fronts[0].send(&f, frag, 40, 0);
        sent.push(f);
    }
    let p = nb.poll_tx(V1, &mut io, 0);
    assert!(!p.more);
    assert_eq!(io.uplink, sent, "every frame whole and in ring order");
    assert_eq!(io.copies_in, n.div_ceil(TX_BATCH));
    let rsps = io.fronts[0].tx_responses();
    let ids: Vec<u16> = rsps.iter().map(|r| r.0).collect();
    assert_eq!(
        ids,
        (0..ids.len() as u16).collect::<Vec<_>>(),
        "answered in ring order"
    );
    assert!(rsps.iter().all(|r| r.1 == NETIF_RSP_OKAY));
    let c = nb.get(V1).unwrap().counters;
    let bytes: usize = sent.iter().map(Vec::len).sum();
    assert_eq!(
        (c.tx_packets, c.tx_bytes, c.tx_drops),
        (n as u64, bytes as u64, 0)
    );
    assert!(nb.take_halts().is_empty());
}

#[test]
fn a_packet_that_does_not_fit_behind_the_batch_starts_the_next() {
    let (mut nb, mut io) = connected(1, true);
    let big = tagged(XEN_NETIF_MAX_TX_SIZE - 100, 0xB1);
    let sent = vec![
        tagged(100, 1),
        tagged(5000, 2),
        big.clone(),
        tagged(60, 3),
        big,
    ];
    for f in &sent {
        io.fronts[0].send(f, 4096, 0, 0);
    }
    nb.poll_tx(V1, &mut io, 0);
    assert_eq!(io.uplink, sent);
    // [100, 5000], [big, 60], [big]: a big one fits only at the buffer's start.
    assert_eq!(io.copies_in, 3);
}

#[test]
fn drops_inside_a_batch_are_answered_and_counted_and_the_rest_goes_on() {
    let (mut nb, mut io) = connected(1, true);
    let fr = &mut io.fronts[0];
    fr.send(&tagged(200, 1), 4096, 0, 0);
    let g = fr.grant(vec![0; 10]);
    fr.put_tx(g, 0, 0, 10); // a runt: answered with an error
    fr.publish_tx();
    fr.send(&frame(HOST, MAC2, 60), 4096, 0, 0); // spoofed: answered, not forwarded
    fr.send(&tagged(300, 2), 4096, 0, 0);
    nb.poll_tx(V1, &mut io, 0);
    assert_eq!(io.uplink, vec![tagged(200, 1), tagged(300, 2)]);
    assert_eq!(io.copies_in, 1);
    let status: Vec<i16> = io.fronts[0].tx_responses().iter().map(|r| r.1).collect();
    assert_eq!(
        status,
        [
            NETIF_RSP_OKAY,
            NETIF_RSP_ERROR,
            NETIF_RSP_OKAY,
            NETIF_RSP_OKAY
        ]
    );
    let c = nb.get(V1).unwrap().counters;
    assert_eq!((c.tx_packets, c.tx_drops, c.tx_errors), (2, 2, 0));
}

#[test]
fn a_bad_grant_anywhere_in_a_batch_halts_the_vif_and_sends_nothing() {
    let (mut nb, mut io) = connected(1, true);
    let fr = &mut io.fronts[0];
    fr.send(&tagged(200, 1), 4096, 0, 0);
    fr.put_tx(4242, 0, 0, 60);
    fr.publish_tx();
    fr.send(&tagged(300, 2), 4096, 0, 0);
    nb.poll_tx(V1, &mut io, 0);
    assert!(io.uplink.is_empty());
    assert!(io.fronts[0].tx_responses().is_empty());
    let want = HaltReason::Malformed(Malformed::BadGrant);
    assert_eq!(nb.get(V1).unwrap().state, VifState::Halted(want));
    assert_eq!(nb.get(V1).unwrap().counters.tx_errors, 1);
    let halts = nb.take_halts();
    assert_eq!(halts.len(), 1);
    assert_eq!((halts[0].0, halts[0].1), (V1, want));
}

#[test]
fn a_malformed_packet_ends_the_batch_and_those_before_it_are_served() {
    let (mut nb, mut io) = connected(1, true);
    let fr = &mut io.fronts[0];
    fr.send(&tagged(200, 1), 4096, 0, 0);
    let g = fr.grant(vec![0; 100]);
    fr.put_tx(g, 0, NETTXF_MORE_DATA, 100); // its next fragment is never published
    fr.publish_tx();
    nb.poll_tx(V1, &mut io, 0);
    assert_eq!(io.uplink, vec![tagged(200, 1)]);
    assert_eq!(io.fronts[0].tx_responses(), vec![(0, NETIF_RSP_OKAY)]);
    assert_eq!(
        nb.get(V1).unwrap().state,
        VifState::Halted(HaltReason::Malformed(Malformed::Incomplete))
    );
}

#[test]
fn the_budget_counts_packets_across_batches() {
    let (mut nb, mut io) = connected(1, true);
    let budget = config().tx_budget as usize;
    for i in 0..budget + 3 {
        io.fronts[0].send(&tagged(80, i as u8), 4096, 0, 0);
    }
    assert!(nb.poll_tx(V1, &mut io, 0).more);
    assert_eq!(io.uplink.len(), budget);
    assert!(!nb.poll_tx(V1, &mut io, 0).more);
    assert_eq!(io.uplink.len(), budget + 3);
}
