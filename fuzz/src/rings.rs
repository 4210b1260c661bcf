//! The `rings` target: the xenstore and PV console ring consumers and producers
//! (`protocol::xen::ring_io`) over a page a hostile guest controls, with dom0's xenstore
//! behind the xenstore ring.
//!
//! The guest may set any index to any value, write any ring bytes, and change an index
//! between two of dom0's accesses (a queued "tamper" is applied at dom0's next load of that
//! index). dom0's side repeats what its PV loop (`domains/dom0/src/pv.rs`, which only builds
//! for the target) does in each pass: consume console output, produce console input up to the
//! ring's space, feed xenstore requests while the store accepts input, produce queued replies.
//! The page checks every access dom0 makes: ring bytes only inside the ring that is being
//! used, index stores only to that ring's own index, never past the page.

use crate::input::{Input, Script};
use dom0::xenstore::{Quotas, Xenstore};
use protocol::control::CONSOLE_FOR_BYTES;
use protocol::xen::ring::{xs_message, XsType};
use protocol::xen::ring_io::{ByteRing, SharedRing, CONS_IN, CONS_OUT, XS_REQ, XS_RSP};
use std::collections::VecDeque;

/// Step opcodes (a step's first byte modulo 8).
pub mod op {
    /// `ring:u8 which:u8 value:u32`: the guest stores an index (which & 1: producer).
    pub const SET_INDEX: u8 = 0;
    /// `ring:u8 which:u8 delta:u16`: the guest moves an index by a signed delta.
    pub const MOVE_INDEX: u8 = 1;
    /// `offset:u16 chunk`: the guest writes raw bytes anywhere in the page.
    pub const POKE: u8 = 2;
    /// `ring:u8 which:u8 value:u32`: at dom0's next load of that index it reads `value`.
    pub const TAMPER: u8 = 3;
    /// One pass of dom0's xenstore backend.
    pub const STORE_PASS: u8 = 4;
    /// `chunk`: one pass of dom0's console backend, with `chunk` typed for the guest.
    pub const CONSOLE_PASS: u8 = 5;
    /// `ring:u8 chunk`: the guest, well-behaved, produces `chunk` into a ring it produces.
    pub const GUEST_PRODUCE: u8 = 6;
    /// `ring:u8 max:u16`: the guest, well-behaved, consumes from a ring it consumes.
    pub const GUEST_CONSUME: u8 = 7;
}

/// The four rings, as step bytes name them (`ring & 3`).
const RINGS: [ByteRing; 4] = [XS_REQ, XS_RSP, CONS_OUT, CONS_IN];

/// One 4 KiB ring page, checking dom0's accesses against the ring it is using.
struct Page {
    bytes: Vec<u8>,
    /// The ring dom0 is operating on; `None` while the guest acts.
    active: Option<ByteRing>,
    /// Index values the guest will have written by dom0's next load: (offset, value).
    tamper: VecDeque<(usize, u32)>,
}

impl Page {
    fn word(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.bytes[off..off + 4].try_into().expect("4 bytes"))
    }

    fn set_word(&mut self, off: usize, value: u32) {
        self.bytes[off..off + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Panics unless `[off, off + len)` is inside the active ring's bytes.
    fn check_span(&self, off: usize, len: usize) {
        let Some(r) = self.active else { return };
        assert!(
            off >= r.data_offset() && off + len <= r.data_offset() + r.size(),
            "access [{off:#x}, +{len}) outside the ring at {:#x} of {} bytes",
            r.data_offset(),
            r.size()
        );
    }
}

impl SharedRing for Page {
    fn load_index(&self, off: usize) -> u32 {
        if let Some(r) = self.active {
            assert!(off == r.cons_offset() || off == r.prod_offset());
        }
        self.word(off)
    }
    fn store_index(&mut self, off: usize, value: u32) {
        if let Some(r) = self.active {
            assert!(
                off == r.cons_offset() || off == r.prod_offset(),
                "store to {off:#x}, not an index of the active ring"
            );
        }
        self.set_word(off, value);
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        self.check_span(off, dst.len());
        dst.copy_from_slice(&self.bytes[off..off + dst.len()]);
    }
    fn write_bytes(&mut self, off: usize, src: &[u8]) {
        self.check_span(off, src.len());
        self.bytes[off..off + src.len()].copy_from_slice(src);
    }
}

/// dom0's side of a ring access: applies queued tampers (the guest racing dom0), runs `f`
/// with the ring marked active, and checks the counts it returns.
fn dom0_op<T>(page: &mut Page, ring: ByteRing, f: impl FnOnce(&mut Page) -> T) -> T {
    if let Some((off, value)) = page.tamper.pop_front() {
        page.set_word(off, value);
    }
    page.active = Some(ring);
    let r = f(page);
    page.active = None;
    r
}

/// The index offset a step names.
fn index_offset(ring: u8, which: u8) -> usize {
    let r = RINGS[usize::from(ring & 3)];
    if which & 1 == 0 {
        r.cons_offset()
    } else {
        r.prod_offset()
    }
}

/// Runs one script.
pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut page = Page {
        bytes: vec![0; 4096],
        active: None,
        tamper: VecDeque::new(),
    };
    let mut xs = Xenstore::new(Quotas::default());
    xs.introduce(1).expect("a fresh store takes d1");
    while !inp.is_empty() {
        match inp.u8() & 7 {
            op::SET_INDEX => {
                let off = index_offset(inp.u8(), inp.u8());
                page.set_word(off, inp.u32());
            }
            op::MOVE_INDEX => {
                let off = index_offset(inp.u8(), inp.u8());
                let delta = i32::from(inp.u16() as i16);
                page.set_word(off, page.word(off).wrapping_add_signed(delta));
            }
            op::POKE => {
                let off = usize::from(inp.u16()) % 4096;
                let bytes = inp.chunk();
                let n = bytes.len().min(4096 - off);
                page.bytes[off..off + n].copy_from_slice(&bytes[..n]);
            }
            op::TAMPER => {
                let off = index_offset(inp.u8(), inp.u8());
                let value = inp.u32();
                page.tamper.push_back((off, value));
            }
            op::STORE_PASS => store_pass(&mut page, &mut xs),
            op::CONSOLE_PASS => {
                let typed = inp.chunk();
                console_pass(&mut page, typed);
            }
            op::GUEST_PRODUCE => {
                let ring = if inp.u8() & 1 == 0 { XS_REQ } else { CONS_OUT };
                let _ = ring.produce(&mut page, inp.chunk());
            }
            _ => {
                let ring = if inp.u8() & 1 == 0 { XS_RSP } else { CONS_IN };
                let mut buf = vec![0; usize::from(inp.u16())];
                let _ = ring.consume(&mut page, &mut buf);
            }
        }
    }
}

/// dom0's xenstore pass (as `Backends::store_step`): requests in while accepted, replies out.
fn store_pass(page: &mut Page, xs: &mut Xenstore) {
    let mut buf = [0u8; 1024];
    while xs.accepts_input(1) {
        let cons_at = XS_REQ.cons_offset();
        let consumed = dom0_op(page, XS_REQ, |p| {
            let cons = p.word(cons_at);
            (cons, XS_REQ.consume(p, &mut buf))
        });
        match consumed {
            (_, Ok(0)) => break,
            (cons, Ok(n)) => {
                assert!(n <= buf.len());
                // Exactly what was copied out is published as consumed.
                assert_eq!(page.word(cons_at), cons.wrapping_add(n as u32));
                if xs.feed(1, &buf[..n]).is_err() {
                    break;
                }
            }
            (_, Err(e)) => {
                let _ = e.to_string();
                xs.shut_down(1);
                return;
            }
        }
    }
    let out = xs.output(1).to_vec();
    if out.is_empty() {
        return;
    }
    match dom0_op(page, XS_RSP, |p| XS_RSP.produce(p, &out)) {
        Ok(n) => {
            assert!(n <= out.len());
            xs.advance_output(1, n);
        }
        Err(_) => xs.shut_down(1),
    }
}

/// dom0's console pass (as `Backends::console_step`): output drained, `typed` put in as the
/// ring has room.
fn console_pass(page: &mut Page, typed: &[u8]) {
    let mut buf = [0u8; CONSOLE_FOR_BYTES];
    loop {
        match dom0_op(page, CONS_OUT, |p| CONS_OUT.consume(p, &mut buf)) {
            Ok(0) | Err(_) => break,
            Ok(n) => assert!(n <= buf.len()),
        }
    }
    let Ok(room) = dom0_op(page, CONS_IN, |p| CONS_IN.space(p)) else {
        return;
    };
    assert!(room <= CONS_IN.size());
    let want = typed.len().min(room);
    if let Ok(n) = dom0_op(page, CONS_IN, |p| CONS_IN.produce(p, &typed[..want])) {
        assert!(n <= want);
    }
}

/// Seed inputs: a guest's xenstore request and console line through well-behaved rings, and
/// the same near the `u32` wrap of the indexes.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut s = Script::new();
    let req = xs_message(
        XsType::Write,
        1,
        0,
        b"/local/domain/1/console/tty\0/dev/pts/0\0",
    );
    s.u8(op::GUEST_PRODUCE).u8(0).chunk(&req);
    s.u8(op::STORE_PASS);
    s.u8(op::GUEST_CONSUME).u8(0).u16(1024);
    s.u8(op::GUEST_PRODUCE)
        .u8(1)
        .chunk(b"[    0.000000] Booting Linux\r\n");
    s.u8(op::CONSOLE_PASS).chunk(b"ls\n");
    s.u8(op::GUEST_CONSUME).u8(1).u16(64);
    out.push(("exchange", s.take()));

    // Every index just below the wrap, then traffic across it.
    for ring in 0..4u8 {
        for which in 0..2u8 {
            s.u8(op::SET_INDEX).u8(ring).u8(which).u32(u32::MAX - 9);
        }
    }
    let read = xs_message(XsType::Read, 2, 0, b"/local/domain/1/console/tty\0");
    s.u8(op::GUEST_PRODUCE).u8(0).chunk(&read);
    s.u8(op::STORE_PASS);
    s.u8(op::GUEST_CONSUME).u8(0).u16(1024);
    s.u8(op::GUEST_PRODUCE).u8(1).chunk(&[b'x'; 100]);
    s.u8(op::CONSOLE_PASS).chunk(&[b'y'; 40]);
    out.push(("wrap", s.take()));

    // A producer index raced past the ring size between dom0's loads.
    s.u8(op::GUEST_PRODUCE).u8(0).chunk(&read);
    s.u8(op::TAMPER).u8(0).u8(1).u32(5000);
    s.u8(op::STORE_PASS);
    s.u8(op::MOVE_INDEX).u8(2).u8(1).u16(2000);
    s.u8(op::CONSOLE_PASS).chunk(b"");
    out.push(("race", s.take()));
    out
}
