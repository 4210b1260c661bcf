//! TX and RX paths and the switch, end to end over the fakes.

use super::fakes::*;
use crate::tx::Malformed;
use crate::{HaltReason, VifId, VifState};
use protocol::xen::blkif::RING_REQ_PROD;
use protocol::xen::netif::*;
use protocol::xen::xenbus::XenbusState;
use zerocopy::IntoBytes;

const V1: VifId = VifId(0);
const V2: VifId = VifId(1);

#[test]
fn a_fragmented_packet_reaches_the_uplink_whole_and_every_slot_is_answered() {
    let (mut nb, mut io) = connected(1, true);
    let f = frame(HOST, MAC1, 3000);
    io.fronts[0].send(&f, 1000, 96, 0);
    let p = nb.poll_tx(V1, &mut io, 0);
    assert!(!p.more);
    assert_eq!(io.uplink, vec![f.clone()]);
    let rsps = io.fronts[0].tx_responses();
    assert_eq!(
        rsps,
        vec![
            (0, NETIF_RSP_OKAY),
            (1, NETIF_RSP_OKAY),
            (2, NETIF_RSP_OKAY)
        ]
    );
    let c = nb.get(V1).unwrap().counters;
    assert_eq!((c.tx_packets, c.tx_bytes, c.tx_drops), (1, 3000, 0));
    assert!(nb.take_halts().is_empty());
    // The frontend asked for an event at its next response (rsp_event = 1).
    assert_eq!(nb.take_notify(), vec![V1]);
}

#[test]
fn extra_info_slots_are_answered_null_and_gso_is_refused() {
    let (mut nb, mut io) = connected(1, true);
    let f = frame(HOST, MAC1, 60);
    let fr = &mut io.fronts[0];
    let g = fr.grant(f.clone());
    fr.put_tx(g, 0, NETTXF_EXTRA_INFO, 60);
    let mcast = NetifExtraInfo {
        type_: XEN_NETIF_EXTRA_TYPE_MCAST_ADD,
        flags: 0,
        u: [1, 0, 0x5e, 0, 0, 1],
    };
    let mut slot = [0u8; TX_SLOT_BYTES];
    slot[..8].copy_from_slice(mcast.as_bytes());
    fr.put_tx_slot(&slot);
    fr.publish_tx();
    nb.poll_tx(V1, &mut io, 0);
    let rsps = io.fronts[0].tx_responses();
    assert_eq!(rsps.len(), 2);
    assert_eq!((rsps[0].1, rsps[1].1), (NETIF_RSP_OKAY, NETIF_RSP_NULL));
    assert_eq!(io.uplink.len(), 1);

    let fr = &mut io.fronts[0];
    let g = fr.grant(f);
    fr.put_tx(g, 0, NETTXF_EXTRA_INFO, 60);
    slot[0] = XEN_NETIF_EXTRA_TYPE_GSO;
    fr.put_tx_slot(&slot);
    fr.publish_tx();
    nb.poll_tx(V1, &mut io, 0);
    let halts = nb.take_halts();
    assert_eq!(halts.len(), 1);
    assert_eq!(halts[0].1, HaltReason::Malformed(Malformed::GsoNotOffered));
}

/// Each malformed packet halts its vif, counts one tx_error, is reported once, and asks
/// the frontend to close; the other vif keeps forwarding.
#[test]
fn malformed_packets_halt_only_their_own_vif() {
    type Build = fn(&mut Front);
    let cases: Vec<(Build, Malformed)> = vec![
        (
            |f| {
                let g = f.grant(vec![0; 100]);
                f.put_tx(g, 4000, 0, 100);
                f.publish_tx();
            },
            Malformed::CrossesPage {
                offset: 4000,
                size: 100,
            },
        ),
        (
            |f| {
                let g = f.grant(vec![0; 100]);
                f.put_tx(g, 0, NETTXF_MORE_DATA, 100);
                f.put_tx(g, 0, 0, 200);
                f.publish_tx();
            },
            Malformed::FragmentsExceedPacket {
                packet: 100,
                fragments: 200,
            },
        ),
        (
            |f| {
                let g = f.grant(vec![0; 100]);
                f.put_tx(g, 0, NETTXF_MORE_DATA, 100);
                f.publish_tx();
            },
            Malformed::Incomplete,
        ),
        (
            |f| {
                let g = f.grant(vec![0; 100]);
                for _ in 0..XEN_NETBK_LEGACY_SLOTS_MAX {
                    f.put_tx(g, 0, NETTXF_MORE_DATA, 1);
                }
                f.put_tx(g, 0, 0, 1);
                f.publish_tx();
            },
            Malformed::TooManySlots,
        ),
        (
            |f| {
                f.put_tx(4242, 0, 0, 60);
                f.publish_tx();
            },
            Malformed::BadGrant,
        ),
        (
            |f| {
                let g = f.grant(vec![0; 100]);
                f.put_tx(g, 0, NETTXF_EXTRA_INFO, 60);
                f.put_tx_slot(&[9; TX_SLOT_BYTES]);
                f.publish_tx();
            },
            Malformed::BadExtra(9),
        ),
    ];
    for (build, want) in cases {
        let (mut nb, mut io) = connected(2, true);
        build(&mut io.fronts[0]);
        nb.poll_tx(V1, &mut io, 0);
        let halts = nb.take_halts();
        assert_eq!(halts.len(), 1, "{want:?}");
        assert_eq!(halts[0].0, V1);
        assert_eq!(halts[0].1, HaltReason::Malformed(want));
        assert!(halts[0]
            .2
            .actions
            .contains(&crate::Action::SetState(XenbusState::Closing)));
        assert_eq!(nb.get(V1).unwrap().counters.tx_errors, 1);
        assert!(io.uplink.is_empty());
        // Reported once: more polls do nothing.
        nb.poll_tx(V1, &mut io, 1);
        assert!(nb.take_halts().is_empty());
        assert!(matches!(nb.get(V1).unwrap().state(), VifState::Halted(_)));
        // The neighbour is untouched.
        let f = frame(HOST, MAC2, 80);
        io.fronts[1].send(&f, 4096, 0, 0);
        nb.poll_tx(V2, &mut io, 2);
        assert_eq!(io.uplink, vec![f]);
        // And frames for the halted vif are not delivered.
        io.fronts[0].post_rx(4);
        nb.from_uplink(&frame(MAC1, HOST, 60), &mut io, 3);
        assert!(io.fronts[0].received().is_empty());
    }
}

#[test]
fn corrupt_ring_indexes_halt_the_vif() {
    let (mut nb, mut io) = connected(1, true);
    io.fronts[0].tx.set_index(RING_REQ_PROD, 1000);
    nb.poll_tx(V1, &mut io, 0);
    let halts = nb.take_halts();
    assert!(matches!(halts[0].1, HaltReason::Ring(_)));
    assert_eq!(nb.get(V1).unwrap().counters.tx_errors, 0);
}

#[test]
fn runts_and_spoofed_sources_are_dropped_and_counted() {
    let (mut nb, mut io) = connected(1, true);
    let fr = &mut io.fronts[0];
    let g = fr.grant(vec![0; 10]);
    fr.put_tx(g, 0, 0, 10);
    fr.publish_tx();
    fr.send(&frame(HOST, MAC2, 60), 4096, 0, 0);
    nb.poll_tx(V1, &mut io, 0);
    let rsps = io.fronts[0].tx_responses();
    assert_eq!(rsps, vec![(0, NETIF_RSP_ERROR), (1, NETIF_RSP_OKAY)]);
    assert!(io.uplink.is_empty());
    let c = nb.get(V1).unwrap().counters;
    assert_eq!((c.tx_drops, c.tx_packets, c.tx_errors), (2, 0, 0));
    assert!(nb.take_halts().is_empty());
}

#[test]
fn blank_checksums_are_completed_before_forwarding() {
    let (mut nb, mut io) = connected(1, true);
    let mut f = frame(HOST, MAC1, 14 + 20 + 8 + 5);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[20..22].copy_from_slice(&[0, 0]);
    f[16..18].copy_from_slice(&33u16.to_be_bytes());
    f[23] = 17;
    f[38..40].copy_from_slice(&13u16.to_be_bytes());
    f[40..42].copy_from_slice(&[0x12, 0x34]);
    io.fronts[0].send(&f, 30, 0, NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED);
    nb.poll_tx(V1, &mut io, 0);
    assert!(crate::checksum::verify_ipv4(&io.uplink[0]));
}

#[test]
fn frames_are_delivered_into_posted_buffers_or_dropped_when_none() {
    let (mut nb, mut io) = connected(1, false);
    let f = frame(MAC1, HOST, 1514);
    nb.from_uplink(&f, &mut io, 0);
    assert_eq!(nb.get(V1).unwrap().counters.rx_drops, 1);
    io.fronts[0].post_rx(2);
    nb.from_uplink(&f, &mut io, 1);
    let got = io.fronts[0].received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, f);
    assert_eq!(got[0].1[0].status, 1514);
    let c = nb.get(V1).unwrap().counters;
    assert_eq!((c.rx_packets, c.rx_bytes, c.rx_drops), (1, 1514, 1));
    assert_eq!(nb.take_notify(), vec![V1]);
    // Without feature-sg a frame needing two pages is dropped.
    io.fronts[1 - 1].post_rx(2);
    nb.from_uplink(&frame(MAC1, HOST, 5000), &mut io, 2);
    assert_eq!(nb.get(V1).unwrap().counters.rx_drops, 2);
}

#[test]
fn guest_to_guest_through_the_switch_with_sg_and_no_hairpin() {
    let (mut nb, mut io) = connected(2, true);
    io.fronts[1].post_rx(8);
    io.fronts[0].post_rx(8);
    // A broadcast from vif 1 floods to the uplink and vif 2, not back to vif 1.
    let b = frame([0xFF; 6], MAC1, 60);
    io.fronts[0].send(&b, 4096, 0, 0);
    nb.poll_tx(V1, &mut io, 0);
    assert_eq!(io.uplink, vec![b.clone()]);
    assert_eq!(io.fronts[1].received()[0].0, b);
    assert!(io.fronts[0].received().is_empty());
    // vif 2 answers with a large unicast: only vif 1 gets it, split over two slots.
    let big = frame(MAC1, MAC2, 6000);
    io.fronts[1].send(&big, 2000, 0, 0);
    nb.poll_tx(V2, &mut io, 1);
    assert_eq!(io.uplink.len(), 1);
    let got = io.fronts[0].received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, big);
    let flags: Vec<u16> = got[0].1.iter().map(|r| r.flags).collect();
    assert_eq!(flags, vec![NETRXF_MORE_DATA, 0]);
    let sizes: Vec<i16> = got[0].1.iter().map(|r| r.status).collect();
    assert_eq!(sizes, vec![4096, 6000 - 4096]);
    // A full destination drops and counts; the sender counts a drop too (nobody took it).
    let c2 = nb.get(V2).unwrap().counters;
    io.fronts[1].send(&frame(MAC1, MAC2, 60), 4096, 0, 0);
    for _ in 0..6 {
        io.fronts[1].send(&frame(MAC1, MAC2, 60), 4096, 0, 0);
    }
    nb.poll_tx(V2, &mut io, 2);
    let c1 = nb.get(V1).unwrap().counters;
    assert_eq!(c1.rx_packets, 1 + 6);
    assert_eq!(c1.rx_drops, 1);
    assert_eq!(nb.get(V2).unwrap().counters.tx_drops, c2.tx_drops + 1);
}

#[test]
fn the_ring_wraps_and_the_budget_yields() {
    let (mut nb, mut io) = connected_at(1, true, u32::MAX - 100);
    let mut sent = 0;
    for round in 0..8 {
        for _ in 0..100 {
            io.fronts[0].send(&frame(HOST, MAC1, 60), 4096, 0, 0);
        }
        let mut polls = 0;
        while nb.poll_tx(V1, &mut io, round).more {
            polls += 1;
        }
        assert!(polls >= 1);
        sent += 100;
        assert_eq!(io.fronts[0].tx_responses().len(), 100);
    }
    assert_eq!(io.uplink.len(), sent);
    assert_eq!(nb.get(V1).unwrap().counters.tx_packets, sent as u64);
}

#[test]
fn a_failed_rx_copy_answers_errors_and_counts_a_drop() {
    let (mut nb, mut io) = connected(1, true);
    io.fronts[0].post_rx(2);
    // The guest revokes the first buffer's grant behind our back.
    let g = io.fronts[0].rx_ids[&0];
    io.fronts[0].pages.remove(&g);
    let f = frame(MAC1, HOST, 100);
    nb.from_uplink(&f, &mut io, 0);
    let off = rx_slot_offset(0);
    let status = i16::from_le_bytes([io.fronts[0].rx.0[off + 6], io.fronts[0].rx.0[off + 7]]);
    assert_eq!(status, NETIF_RSP_ERROR);
    let c = nb.get(V1).unwrap().counters;
    assert_eq!((c.rx_packets, c.rx_drops), (0, 1));
    assert!(nb.take_halts().is_empty());
    // The next buffer still works.
    io.fronts[0].rx_rsp_seen = 1;
    nb.from_uplink(&f, &mut io, 1);
    assert_eq!(io.fronts[0].received()[0].0, f);
}

#[test]
fn a_full_uplink_drops_and_counts() {
    let (mut nb, mut io) = connected(1, true);
    io.uplink_full = true;
    io.fronts[0].send(&frame(HOST, MAC1, 60), 4096, 0, 0);
    nb.poll_tx(V1, &mut io, 0);
    assert_eq!(nb.uplink.tx_drops, 1);
    let c = nb.get(V1).unwrap().counters;
    assert_eq!((c.tx_packets, c.tx_drops), (0, 1));
    // Every slot is still answered: a full uplink never stalls the guest's ring.
    assert_eq!(io.fronts[0].tx_responses(), vec![(0, NETIF_RSP_OKAY)]);
}

#[test]
fn a_removed_vif_is_forgotten_by_the_switch() {
    let (mut nb, mut io) = connected(2, true);
    io.fronts[0].send(&frame([0xFF; 6], MAC1, 60), 4096, 0, 0);
    nb.poll_tx(V1, &mut io, 0);
    // MAC1 is learned behind vif 1: a frame for it from vif 2 does not reach the uplink.
    io.fronts[1].send(&frame(MAC1, MAC2, 60), 4096, 0, 0);
    nb.poll_tx(V2, &mut io, 1);
    assert_eq!(io.uplink.len(), 1);
    nb.remove(V1);
    io.fronts[1].send(&frame(MAC1, MAC2, 60), 4096, 0, 0);
    nb.poll_tx(V2, &mut io, 2);
    assert_eq!(io.uplink.len(), 2, "unknown again: flooded to the uplink");
    assert_eq!(nb.get(V1).unwrap().state(), VifState::Disconnected);
}

/// Restart in place: a new instance attaches at the published responses; packets the old
/// one never answered are answered dropped (never sent: TCP retransmits), and the packets
/// after them are served as usual.
#[test]
fn a_new_instance_picks_the_rings_up_where_responses_stopped() {
    let (mut nb, mut io) = connected(1, true);
    io.fronts[0].send(&frame(HOST, MAC1, 60), 4096, 0, 0);
    nb.poll_tx(V1, &mut io, 0);
    assert_eq!(io.fronts[0].tx_responses().len(), 1);
    // Two more packets published; the old instance dies before looking at them.
    io.fronts[0].send(&frame(HOST, MAC1, 61), 4096, 0, 0);
    io.fronts[0].send(&frame(HOST, MAC1, 62), 4096, 0, 0);
    let mut fresh = crate::Netback::new(config());
    let id = fresh.add(nb.get(V1).unwrap().config);
    let keys = |k: &str| -> Option<String> {
        match k {
            "tx-ring-ref" => Some("8".into()),
            "rx-ring-ref" => Some("9".into()),
            "event-channel" => Some("5".into()),
            "request-rx-copy" | "feature-sg" => Some("1".into()),
            _ => None,
        }
    };
    let step = fresh.resume(id, XenbusState::Connected, XenbusState::Connected, keys);
    assert!(!step
        .actions
        .iter()
        .any(|a| matches!(a, crate::Action::SetState(_) | crate::Action::Write { .. })));
    assert!(fresh.connect(id, &mut io));
    fresh.poll_tx(id, &mut io, 1);
    assert_eq!(
        io.fronts[0].tx_responses(),
        vec![(1, NETIF_RSP_DROPPED), (2, NETIF_RSP_DROPPED)]
    );
    io.fronts[0].send(&frame(HOST, MAC1, 63), 4096, 0, 0);
    fresh.poll_tx(id, &mut io, 2);
    assert_eq!(io.fronts[0].tx_responses(), vec![(3, NETIF_RSP_OKAY)]);
    let lens: Vec<usize> = io.uplink.iter().map(Vec::len).collect();
    assert_eq!(lens, vec![60, 63]);
}
