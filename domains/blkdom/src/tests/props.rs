//! Property tests: ring index arithmetic from any starting point, and garbage requests.

use super::fakes::*;
use crate::io::RingMem;
use crate::request::{decode, Limits};
use crate::{Config, HaltReason};
use proptest::prelude::*;
use protocol::xen::blkif::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// From any index, any sequence of request batches is answered in order, and the
    /// private indexes always match what the frontend published.
    #[test]
    fn ring_indexes_from_any_start(
        start in any::<u32>(),
        order in 0u32..=2,
        batches in proptest::collection::vec(0u32..=64, 1..12),
    ) {
        let mut r = Rig::with(order, start, FakeDisk::new(64), false, Config::default());
        r.grants.grant(1, vec![0; 4096], false);
        let size = ring_entries(order).unwrap();
        let mut id = 0u64;
        for b in batches {
            let b = b.min(size);
            for _ in 0..b {
                r.front.queue(&mut r.ring, &rw(BlkifOp::Read, id, id % 64, &[seg(1, 0, 0)]));
                id += 1;
            }
            r.front.push(&mut r.ring);
            let p = r.poll();
            prop_assert!(p.halted.is_none() && !p.more);
            let got = r.front.responses(&mut r.ring);
            prop_assert_eq!(got.len() as u32, b);
            let ring = *r.table.get(r.id).unwrap().ring().unwrap();
            prop_assert_eq!(ring.req_cons(), r.front.req_prod_pvt);
            prop_assert_eq!(ring.rsp_prod_pvt(), r.front.req_prod_pvt);
        }
    }

    /// Any req_prod more than a ring ahead halts before touching a slot; any other is served.
    #[test]
    fn any_request_index_is_served_or_refused(
        start in any::<u32>(),
        ahead in prop_oneof![0u32..=40, any::<u32>()],
    ) {
        let mut r = Rig::with(0, start, FakeDisk::new(64), false, Config::default());
        let slot = rw(BlkifOp::FlushDiskcache, 1, 0, &[]);
        for i in 0..32 {
            let off = slot_offset(32, i);
            r.ring.mem[off..off + RING_SLOT_BYTES].copy_from_slice(&slot);
        }
        r.ring.store_index(RING_REQ_PROD, start.wrapping_add(ahead));
        let p = r.poll();
        if ahead > 32 {
            prop_assert!(matches!(p.halted, Some(HaltReason::Ring(_))));
            prop_assert!(r.disk.log.is_empty());
        } else {
            prop_assert!(p.halted.is_none());
            prop_assert_eq!(r.disk.log.len() as u32, ahead);
        }
    }

    /// Decoding garbage never panics: it is a typed request or a typed rejection, and an
    /// accepted data request's sectors lie inside the vbd.
    #[test]
    fn garbage_slots_decode_or_are_rejected(bytes in proptest::collection::vec(any::<u8>(), RING_SLOT_BYTES), ro in any::<bool>()) {
        let disk = FakeDisk::new(4096).info;
        let limits = Limits { disk, read_only: ro, max_indirect: 64 };
        let mut segs = Vec::new();
        let slot: crate::ring::Slot = bytes.as_slice().try_into().unwrap();
        if let Ok(req) = decode(&slot, &limits, &mut segs) {
            let total: u64 = segs.iter().map(|s| u64::from(s.last_sect - s.first_sect) + 1).sum();
            if let Ok(crate::Kind::Read { sector, .. } | crate::Kind::Write { sector, .. }) = req.kind {
                prop_assert!(segs.is_empty() || sector + total <= 4096);
            }
            prop_assert!(segs.len() <= BLKIF_MAX_SEGMENTS_PER_REQUEST);
        }
    }

    /// Garbage through the whole backend (including indirect pages of garbage) never
    /// panics, never touches the disk out of range (the fake disk asserts), and either
    /// answers or halts.
    #[test]
    fn garbage_requests_through_the_backend(
        slots in proptest::collection::vec(proptest::collection::vec(any::<u8>(), RING_SLOT_BYTES), 1..8),
        desc in proptest::collection::vec(any::<u8>(), 4096),
    ) {
        let mut r = Rig::new(0, FakeDisk::new(256), false);
        for g in 0..16 {
            r.grants.grant(g, desc.clone(), false);
        }
        for s in &slots {
            let mut slot = [0u8; RING_SLOT_BYTES];
            slot.copy_from_slice(s);
            // Keep grant refs small so some hit granted pages.
            for i in 0..11 { slot[24 + i * 8] &= 0x0F; slot[25 + i * 8..28 + i * 8].fill(0); }
            r.front.queue(&mut r.ring, &slot);
        }
        r.front.push(&mut r.ring);
        let p = r.poll();
        let answered = r.front.responses(&mut r.ring).len();
        if p.halted.is_none() {
            prop_assert_eq!(answered, slots.len());
        } else {
            prop_assert!(answered < slots.len());
        }
    }
}
