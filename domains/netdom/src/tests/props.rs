//! Property tests: ring indexes anywhere in the u32 space, and garbage TX slots.

use super::fakes::*;
use crate::{VifId, VifState};
use proptest::prelude::*;
use protocol::xen::netif::*;

proptest! {
    /// Whatever a frontend writes in its TX slots, the backend never panics, never answers
    /// more slots than were published, never forwards a frame longer than a TX request can
    /// describe, and either keeps serving or halts with one tx_error.
    #[test]
    fn garbage_tx_slots_never_escape(
        start in any::<u32>(),
        slots in proptest::collection::vec(proptest::array::uniform12(any::<u8>()), 1..40),
        grant_some in any::<bool>(),
    ) {
        let (mut nb, mut io) = connected_at(1, true, start);
        let fr = &mut io.fronts[0];
        if grant_some {
            for _ in 0..4 { fr.grant(vec![0xAB; 4096]); }
        }
        for s in &slots { fr.put_tx_slot(s); }
        fr.publish_tx();
        for t in 0..4 { nb.poll_tx(VifId(0), &mut io, t); }
        let answered = io.fronts[0].tx_responses().len();
        prop_assert!(answered <= slots.len());
        let v = nb.get(VifId(0)).unwrap();
        match v.state() {
            VifState::Halted(_) => prop_assert!(v.counters.tx_errors <= 1),
            VifState::Connected => {
                prop_assert_eq!(v.counters.tx_errors, 0);
                prop_assert_eq!(answered, slots.len());
            }
            VifState::Disconnected => prop_assert!(false, "disconnected by garbage"),
        }
        prop_assert!(nb.take_halts().len() <= 1);
        for f in &io.uplink { prop_assert!(f.len() <= XEN_NETIF_MAX_TX_SIZE && f.len() >= ETH_HLEN); }
    }

    /// Well-formed packets of any fragment layout are forwarded byte for byte, from any
    /// starting ring index.
    #[test]
    fn any_fragment_layout_forwards_the_same_bytes(
        start in any::<u32>(),
        len in 14usize..9000,
        frag in 1usize..4096,
        offset in 0u16..64,
    ) {
        let frag = frag.max(len.div_ceil(XEN_NETBK_LEGACY_SLOTS_MAX));
        let frag = frag.min(4096 - usize::from(offset));
        let (mut nb, mut io) = connected_at(1, true, start);
        let f = frame(HOST, MAC1, len);
        io.fronts[0].send(&f, frag, offset, 0);
        nb.poll_tx(VifId(0), &mut io, 0);
        prop_assert!(nb.take_halts().is_empty());
        prop_assert_eq!(&io.uplink, &vec![f]);
        prop_assert_eq!(io.fronts[0].tx_responses().len(), len.div_ceil(frag));
    }

    /// RX delivery from any ring index: frames arrive whole, or are counted as drops.
    #[test]
    fn rx_from_any_index(start in any::<u32>(), posted in 0u32..6, lens in proptest::collection::vec(14usize..9000, 1..6)) {
        let (mut nb, mut io) = connected_at(1, true, start);
        io.fronts[0].post_rx(posted);
        for (t, &l) in lens.iter().enumerate() {
            nb.from_uplink(&frame(MAC1, HOST, l), &mut io, t as u64);
        }
        let got = io.fronts[0].received();
        let c = nb.get(VifId(0)).unwrap().counters;
        prop_assert_eq!(c.rx_packets as usize, got.len());
        prop_assert_eq!(c.rx_packets + c.rx_drops, lens.len() as u64);
        let used: usize = got.iter().map(|g| g.1.len()).sum();
        prop_assert!(used <= posted as usize);
    }
}
