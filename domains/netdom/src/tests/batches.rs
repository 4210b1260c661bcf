//! The TX path's batches: one grant copy brings many packets in, and everything the
//! frontend and the switch see is as it was packet by packet.

use super::fakes::*;
use crate::rx::RUN_FRAMES;
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

/// Frames from the uplink laid one per page in one buffer, as the shell stages them;
/// returns the buffer and where each frame is.
fn staged(frames: &[Vec<u8>]) -> (Vec<u8>, Vec<core::ops::Range<usize>>) {
    let mut buf = vec![0u8; frames.len() * 4096];
    let mut at = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        buf[i * 4096..i * 4096 + f.len()].copy_from_slice(f);
        at.push(i * 4096..i * 4096 + f.len());
    }
    (buf, at)
}

/// Lets the switch learn where the vifs' MACs are (each sends one frame to the host).
fn learn(nb: &mut crate::Netback, io: &mut Fake, vifs: usize) {
    let macs = [MAC1, MAC2];
    for (i, mac) in macs.iter().enumerate().take(vifs) {
        io.fronts[i].send(&frame(HOST, *mac, 60), 4096, 0, 0);
        nb.poll_tx(VifId(i), io, 0);
    }
    io.uplink.clear();
}

/// A frame from the host to `dst` whose payload starts with `tag`.
fn down(dst: [u8; 6], len: usize, tag: u8) -> Vec<u8> {
    let mut f = frame(dst, HOST, len);
    f[14] = tag;
    f
}

#[test]
fn uplink_frames_for_one_vif_reach_it_by_one_copy_per_run_in_order() {
    let (mut nb, mut io) = connected(1, true);
    learn(&mut nb, &mut io, 1);
    let n = 2 * RUN_FRAMES + 3;
    io.fronts[0].post_rx(n as u32);
    let frames: Vec<Vec<u8>> = (0..n).map(|i| down(MAC1, 60 + i * 97, i as u8)).collect();
    let (buf, at) = staged(&frames);
    nb.from_uplink_batch(&buf, &at, &mut io, 0);
    let got: Vec<Vec<u8>> = io.fronts[0].received().into_iter().map(|r| r.0).collect();
    assert_eq!(got, frames, "every frame whole and in order");
    assert_eq!(io.copies_out, n.div_ceil(RUN_FRAMES));
    let c = nb.get(V1).unwrap().counters;
    assert_eq!((c.rx_packets, c.rx_drops), (n as u64, 0));
    assert_eq!(nb.uplink.rx_frames, n as u64);
}

#[test]
fn a_frame_for_another_destination_ends_the_run_and_order_holds() {
    let (mut nb, mut io) = connected(2, true);
    learn(&mut nb, &mut io, 2);
    io.fronts[0].post_rx(8);
    io.fronts[1].post_rx(8);
    let frames = vec![
        down(MAC1, 100, 1),
        down(MAC1, 100, 2),
        down(MAC2, 100, 3),
        down([0xff; 6], 100, 4), // broadcast: to both vifs, on its own
        down(MAC1, 100, 5),
        vec![0x5a; 10], // a runt: counted as received, sent nowhere
        down(MAC1, 100, 6),
    ];
    let (buf, at) = staged(&frames);
    nb.from_uplink_batch(&buf, &at, &mut io, 0);
    let one: Vec<u8> = io.fronts[0].received().iter().map(|r| r.0[14]).collect();
    let two: Vec<u8> = io.fronts[1].received().iter().map(|r| r.0[14]).collect();
    assert_eq!(one, [1, 2, 4, 5, 6]);
    assert_eq!(two, [3, 4]);
    // [1, 2], [3], flood to each (2), [5, 6]: the runt does not end a run.
    assert_eq!(io.copies_out, 5);
    assert_eq!(nb.uplink.rx_frames, 7);
}

#[test]
fn frames_without_buffers_are_dropped_and_counted_and_the_rest_delivered() {
    let (mut nb, mut io) = connected(1, true);
    learn(&mut nb, &mut io, 1);
    io.fronts[0].post_rx(3);
    let frames: Vec<Vec<u8>> = (0..5).map(|i| down(MAC1, 200, i)).collect();
    let (buf, at) = staged(&frames);
    nb.from_uplink_batch(&buf, &at, &mut io, 0);
    let got: Vec<u8> = io.fronts[0].received().iter().map(|r| r.0[14]).collect();
    assert_eq!(got, [0, 1, 2]);
    let c = nb.get(V1).unwrap().counters;
    assert_eq!((c.rx_packets, c.rx_drops), (3, 2));
}

#[test]
fn a_refused_buffer_in_a_run_fails_its_own_frame_only() {
    let (mut nb, mut io) = connected(1, true);
    learn(&mut nb, &mut io, 1);
    io.fronts[0].post_rx(4);
    // The guest revokes the third buffer's grant behind our back.
    let g = io.fronts[0].rx_ids[&2];
    io.fronts[0].pages.remove(&g);
    let frames: Vec<Vec<u8>> = (0..4).map(|i| down(MAC1, 300, i)).collect();
    let (buf, at) = staged(&frames);
    nb.from_uplink_batch(&buf, &at, &mut io, 0);
    let status: Vec<i16> = (0..4)
        .map(|i| {
            let off = rx_slot_offset(i);
            i16::from_le_bytes([io.fronts[0].rx.0[off + 6], io.fronts[0].rx.0[off + 7]])
        })
        .collect();
    assert_eq!(status, [300, 300, NETIF_RSP_ERROR, 300]);
    let c = nb.get(V1).unwrap().counters;
    assert_eq!((c.rx_packets, c.rx_drops), (3, 1));
    // One copy for the run, then one per frame to find the refused one.
    assert_eq!(io.copies_out, 1 + 4);
    assert!(nb.take_halts().is_empty());
}
