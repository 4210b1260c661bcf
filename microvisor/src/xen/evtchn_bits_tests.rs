//! Host tests for 2-level delivery: the raise and unmask truth tables on fake event bits.

use super::*;

/// Event bits in plain memory, as one domain's shared_info and vcpu_infos would hold them.
struct FakeBits {
    pending: [u64; 64],
    mask: [u64; 64],
    sel: Vec<u64>,
    upcall: Vec<bool>,
}

impl FakeBits {
    fn new(nvcpus: usize) -> Self {
        Self {
            pending: [0; 64],
            mask: [0; 64],
            sel: vec![0; nvcpus],
            upcall: vec![false; nvcpus],
        }
    }
}

fn word_bit(port: EvtchnPort) -> (usize, u64) {
    ((port / 64) as usize, 1u64 << (port % 64))
}

impl EventBits for FakeBits {
    fn pending_test_and_set(&mut self, port: EvtchnPort) -> bool {
        let (w, b) = word_bit(port);
        let old = self.pending[w] & b != 0;
        self.pending[w] |= b;
        old
    }
    fn pending_test(&self, port: EvtchnPort) -> bool {
        let (w, b) = word_bit(port);
        self.pending[w] & b != 0
    }
    fn pending_clear(&mut self, port: EvtchnPort) {
        let (w, b) = word_bit(port);
        self.pending[w] &= !b;
    }
    fn mask_test(&self, port: EvtchnPort) -> bool {
        let (w, b) = word_bit(port);
        self.mask[w] & b != 0
    }
    fn mask_test_and_clear(&mut self, port: EvtchnPort) -> bool {
        let (w, b) = word_bit(port);
        let old = self.mask[w] & b != 0;
        self.mask[w] &= !b;
        old
    }
    fn sel_test_and_set(&mut self, vcpu: u32, word: u32) -> bool {
        let sel = &mut self.sel[vcpu as usize];
        let old = *sel & (1 << word) != 0;
        *sel |= 1 << word;
        old
    }
    fn upcall_test_and_set(&mut self, vcpu: u32) -> bool {
        core::mem::replace(&mut self.upcall[vcpu as usize], true)
    }
    fn upcall_pending(&self, vcpu: u32) -> bool {
        self.upcall[vcpu as usize]
    }
}

const PORT: EvtchnPort = 70; // word 1, bit 6
const VCPU: u32 = 1;

/// Bits with `PORT`'s pending and mask bits and `VCPU`'s selector word 1 and upcall flag
/// preset as given.
fn preset(pending: bool, masked: bool, sel: bool, upcall: bool) -> FakeBits {
    let mut b = FakeBits::new(2);
    if pending {
        b.pending_test_and_set(PORT);
    }
    if masked {
        b.mask[1] |= 1 << 6;
    }
    if sel {
        b.sel[VCPU as usize] = 1 << 1;
    }
    b.upcall[VCPU as usize] = upcall;
    b
}

fn bools4() -> impl Iterator<Item = (bool, bool, bool, bool)> {
    (0..16u8).map(|i| (i & 1 != 0, i & 2 != 0, i & 4 != 0, i & 8 != 0))
}

#[test]
fn raise_truth_table() {
    for (pending, masked, sel, upcall) in bools4() {
        let mut b = preset(pending, masked, sel, upcall);
        let r = raise(&mut b, PORT, VCPU);
        let case = (pending, masked, sel, upcall);
        // Only a newly pending, unmasked port with a clear selector reaches the upcall flag.
        let propagates = !pending && !masked;
        let reaches_upcall = propagates && !sel;
        assert!(b.pending_test(PORT), "{case:?}");
        assert_eq!(r.newly_pending, !pending, "{case:?}");
        assert_eq!(r.inject, reaches_upcall && !upcall, "{case:?}");
        assert_eq!(b.sel[VCPU as usize] != 0, sel || propagates, "{case:?}");
        assert_eq!(
            b.upcall[VCPU as usize],
            upcall || reaches_upcall,
            "{case:?}"
        );
        // The other vCPU is never touched.
        assert_eq!((b.sel[0], b.upcall[0]), (0, false), "{case:?}");
    }
}

#[test]
fn unmask_truth_table() {
    for (pending, masked, sel, upcall) in bools4() {
        let mut b = preset(pending, masked, sel, upcall);
        let inject = unmask(&mut b, PORT, VCPU);
        let case = (pending, masked, sel, upcall);
        let propagates = masked && pending;
        let reaches_upcall = propagates && !sel;
        assert!(!b.mask_test(PORT), "{case:?}");
        assert_eq!(b.pending_test(PORT), pending, "{case:?}");
        assert_eq!(inject, reaches_upcall && !upcall, "{case:?}");
        assert_eq!(b.sel[VCPU as usize] != 0, sel || propagates, "{case:?}");
        assert_eq!(
            b.upcall[VCPU as usize],
            upcall || reaches_upcall,
            "{case:?}"
        );
    }
}

#[test]
fn masked_event_is_delivered_by_unmask() {
    let mut b = FakeBits::new(1);
    b.mask[0] = 1 << 5;
    let r = raise(&mut b, 5, 0);
    assert_eq!((r.newly_pending, r.inject), (true, false));
    assert!(!b.upcall_pending(0));
    assert!(unmask(&mut b, 5, 0));
    assert!(b.upcall_pending(0));
    assert_eq!(b.sel[0], 1);
    // A second unmask finds the mask already clear: nothing to do.
    b.upcall[0] = false;
    b.sel[0] = 0;
    assert!(!unmask(&mut b, 5, 0));
}

#[test]
fn selector_word_follows_the_port() {
    let mut b = FakeBits::new(1);
    assert!(raise(&mut b, 4095, 0).inject);
    assert_eq!(b.sel[0], 1 << 63);
    assert!(!raise(&mut b, 64, 0).inject, "upcall already pending");
    assert_eq!(b.sel[0], (1 << 63) | (1 << 1));
}

#[test]
fn ports_beyond_the_bitmap_are_ignored() {
    let mut b = FakeBits::new(1);
    let r = raise(&mut b, EVTCHN_2L_NR_CHANNELS as u32, 0);
    assert_eq!((r.newly_pending, r.inject), (false, false));
    assert!(!unmask(&mut b, u32::MAX, 0));
    assert_eq!(b.sel[0], 0);
}

#[test]
fn cleared_pending_bit_can_be_raised_again() {
    let mut b = FakeBits::new(1);
    assert!(raise(&mut b, 3, 0).inject);
    // The guest consumes: clears upcall, selector and pending, as Linux's handler does.
    b.upcall[0] = false;
    b.sel[0] = 0;
    b.pending_clear(3);
    assert!(raise(&mut b, 3, 0).inject);
}
