//! Two fake children over plain-memory pages: a hostile one (a console producer that
//! re-arms forever, or corrupt ring indexes) and a well-behaved one that must still be
//! served in the same pass.

use super::*;
use crate::xenstore::{Access, Perm, Quotas};
use alloc::vec;
use protocol::xen::ring::{xs_message, XsType, XsdSockmsg, XS_HEADER_LEN};

/// A ring page in plain memory. With `rearm`, the guest keeps `out_prod` one ring ahead
/// of `out_cons` on every look, as a guest spinning on another vCPU would.
struct Page {
    bytes: Vec<u8>,
    rearm: bool,
}

impl Page {
    fn new() -> Self {
        Self {
            bytes: vec![0; 4096],
            rearm: false,
        }
    }
    fn raw(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.bytes[off..off + 4].try_into().unwrap())
    }
}

impl SharedRing for Page {
    fn load_index(&self, off: usize) -> u32 {
        if self.rearm && off == CONS_OUT.prod_offset() {
            return self
                .raw(CONS_OUT.cons_offset())
                .wrapping_add(CONS_OUT.size() as u32);
        }
        self.raw(off)
    }
    fn store_index(&mut self, off: usize, value: u32) {
        self.bytes[off..off + 4].copy_from_slice(&value.to_le_bytes());
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        dst.copy_from_slice(&self.bytes[off..off + dst.len()]);
    }
    fn write_bytes(&mut self, off: usize, src: &[u8]) {
        self.bytes[off..off + src.len()].copy_from_slice(src);
    }
}

/// Records what the core asked of the hypervisor.
#[derive(Default)]
struct Host {
    written: Vec<(u16, usize)>,
    notified: Vec<(u16, Ring)>,
    /// Input typed for the children, taken by `console_read`.
    typed: Vec<u8>,
}

impl PvHost<u16> for Host {
    fn console_write(&mut self, child: &u16, bytes: &[u8]) -> bool {
        self.written.push((*child, bytes.len()));
        true
    }
    fn console_read(&mut self, _child: &u16, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.typed.len());
        buf[..n].copy_from_slice(&self.typed[..n]);
        self.typed.drain(..n);
        n
    }
    fn notify(&mut self, child: &u16, ring: Ring) {
        self.notified.push((*child, ring));
    }
}

const BAD: u16 = 3;
const GOOD: u16 = 4;

fn two_children() -> Pv<Page, u16> {
    let mut pv = Pv::new(Xenstore::new(Quotas::default()));
    for d in [BAD, GOOD] {
        pv.xs.introduce(d).unwrap();
        pv.children.push(Child::new(d, Page::new(), Page::new(), d));
    }
    pv
}

/// The guest side: puts a GET_DOMAIN_PATH into its request ring.
fn request(page: &mut Page) {
    let msg = xs_message(XsType::GetDomainPath, 1, 0, b"0\0");
    assert_eq!(XS_REQ.produce(page, &msg), Ok(msg.len()));
}

/// The guest side: the reply waiting in the response ring, if any.
fn reply(page: &mut Page) -> Option<(u32, Vec<u8>)> {
    let mut buf = [0u8; 1024];
    let n = XS_RSP.consume(page, &mut buf).unwrap();
    (n >= XS_HEADER_LEN).then(|| {
        let h = XsdSockmsg::decode(&buf[..n]).unwrap();
        (h.ty, buf[XS_HEADER_LEN..n].to_vec())
    })
}

#[test]
fn a_request_and_its_reply_in_one_pass_cost_one_notification() {
    let mut pv = two_children();
    request(&mut pv.children[1].store);
    let mut host = Host::default();
    pv.poll(&mut host, true);
    assert!(reply(&mut pv.children[1].store).is_some());
    let store = |h: &Host| {
        h.notified
            .iter()
            .filter(|&&n| n == (GOOD, Ring::Store))
            .count()
    };
    assert_eq!(store(&host), 1, "{:?}", host.notified);
    // Nothing new: no notification owed from the last pass.
    host.notified.clear();
    pv.poll(&mut host, true);
    assert_eq!(store(&host), 0, "{:?}", host.notified);
}

#[test]
fn replies_left_at_the_per_pass_bound_ask_for_another_pass_and_a_full_ring_does_not() {
    let mut pv = two_children();
    let watch = xs_message(XsType::Watch, 1, 0, b"/a\0tok\0");
    assert_eq!(
        XS_REQ.produce(&mut pv.children[1].store, &watch),
        Ok(watch.len())
    );
    let mut host = Host::default();
    pv.poll(&mut host, true);
    assert!(!pv.output_left(), "the watch's answer fits");
    while reply(&mut pv.children[1].store).is_some() {}
    // Enough watch events for two rings' worth, on nodes the watcher may read (events for
    // others are not sent).
    let readable = [Perm::new(0, Access::None), Perm::new(GOOD, Access::Read)];
    for i in 0..64 {
        pv.xs
            .set_node(&alloc::format!("/a/node{i}"), b"x", &readable)
            .unwrap();
    }
    pv.poll(&mut host, true);
    assert!(pv.output_left(), "one ring's worth written, more to come");
    // The guest has not read: the next pass finds the ring full and writes nothing, so it
    // waits for the guest's word that it made room.
    pv.poll(&mut host, true);
    assert!(!pv.output_left());
    while reply(&mut pv.children[1].store).is_some() {}
    pv.poll(&mut host, true);
    assert!(
        reply(&mut pv.children[1].store).is_some(),
        "the guest read: the rest flows"
    );
    assert!(!pv.output_left(), "and it all fit");
}

#[test]
fn a_producer_that_never_stops_gets_one_ring_per_pass_and_the_others_are_served() {
    let mut pv = two_children();
    pv.children[0].console.rearm = true;
    request(&mut pv.children[1].store);
    let mut host = Host::default();
    let events = pv.poll(&mut host, true);
    assert_eq!(events, vec![]);
    let taken: usize = host
        .written
        .iter()
        .filter(|(d, _)| *d == BAD)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        taken, CONSOLE_OUT_PER_PASS,
        "one ring's worth, then move on"
    );
    let (ty, _) = reply(&mut pv.children[1].store).expect("the other child's reply");
    assert_eq!(ty, XsType::GetDomainPath as u32);
    assert!(host.notified.contains(&(GOOD, Ring::Store)));
    // The next pass takes the same bound again: still never stuck.
    host.written.clear();
    pv.poll(&mut host, true);
    let taken: usize = host.written.iter().map(|(_, n)| n).sum();
    assert_eq!(taken, CONSOLE_OUT_PER_PASS);
}

#[test]
fn a_corrupt_response_ring_stops_that_child_only() {
    let mut pv = two_children();
    // The hostile child has a reply queued, then corrupts its response ring.
    request(&mut pv.children[0].store);
    let rsp_cons = XS_RSP.cons_offset();
    pv.children[0].store.store_index(XS_RSP.prod_offset(), 5000);
    pv.children[0].store.store_index(rsp_cons, 0);
    request(&mut pv.children[1].store);
    let mut host = Host::default();
    let events = pv.poll(&mut host, true);
    assert_eq!(
        events,
        vec![Event::Failed {
            domid: BAD,
            ring: Ring::Store,
            error: RingError::Corrupt {
                prod: 5000,
                cons: 0
            },
        }]
    );
    assert!(
        reply(&mut pv.children[1].store).is_some(),
        "the other child is served"
    );
    let error_at = offset_of!(XenstoreDomainInterface, error);
    assert_eq!(pv.children[0].store.raw(error_at), XENSTORE_ERROR_RINGIDX);
    assert!(!pv.xs.accepts_input(BAD), "its connection is shut down");
    // Reported once; later passes skip it and keep serving the other.
    request(&mut pv.children[1].store);
    assert_eq!(pv.poll(&mut host, true), vec![]);
    assert!(reply(&mut pv.children[1].store).is_some());
}

#[test]
fn a_corrupt_console_ring_stops_that_child_only() {
    let mut pv = two_children();
    let c = &mut pv.children[0].console;
    c.store_index(CONS_OUT.prod_offset(), 9999);
    request(&mut pv.children[0].store);
    request(&mut pv.children[1].store);
    let mut host = Host::default();
    let events = pv.poll(&mut host, true);
    assert!(matches!(
        events.as_slice(),
        [Event::Failed {
            domid: BAD,
            ring: Ring::Console,
            ..
        }]
    ));
    assert!(
        reply(&mut pv.children[0].store).is_none(),
        "not served any more"
    );
    assert!(reply(&mut pv.children[1].store).is_some());
}

#[test]
fn an_oversized_request_sets_the_protocol_error_and_the_other_child_is_served() {
    let mut pv = two_children();
    let mut header = xs_message(XsType::Read, 1, 0, b"");
    header[12..16].copy_from_slice(&5000u32.to_le_bytes());
    assert_eq!(XS_REQ.produce(&mut pv.children[0].store, &header), Ok(16));
    request(&mut pv.children[1].store);
    let mut host = Host::default();
    assert_eq!(pv.poll(&mut host, true), vec![]);
    let error_at = offset_of!(XenstoreDomainInterface, error);
    assert_eq!(pv.children[0].store.raw(error_at), XENSTORE_ERROR_PROTO);
    assert!(reply(&mut pv.children[1].store).is_some());
}

#[test]
fn input_is_left_to_a_child_that_speaks_xenstore_but_never_used_its_pv_console() {
    let mut pv = two_children();
    request(&mut pv.children[0].store);
    let mut host = Host {
        typed: b"help\r".to_vec(),
        ..Host::default()
    };
    // Two passes: the first one learns it speaks xenstore.
    pv.poll(&mut host, true);
    pv.poll(&mut host, true);
    assert!(pv.children[0].frontend);
    assert_eq!(
        host.typed, b"help\r",
        "left for the child's own ConsoleRead"
    );
    // Once it writes to its PV console, its input goes there.
    assert!(CONS_OUT
        .produce(&mut pv.children[0].console, b"login: ")
        .is_ok());
    pv.poll(&mut host, true);
    assert!(host.typed.is_empty());
    let mut got = [0u8; 8];
    let n = CONS_IN
        .consume(&mut pv.children[0].console, &mut got)
        .unwrap();
    assert_eq!(&got[..n], b"help\r");
}

/// Two children, the second using its PV console (it wrote a prompt), and `typed` waiting
/// for it in the microvisor.
fn console_user(typed: Vec<u8>) -> (Pv<Page, u16>, Host) {
    let mut pv = two_children();
    assert!(CONS_OUT
        .produce(&mut pv.children[1].console, b"login: ")
        .is_ok());
    let host = Host {
        typed,
        ..Host::default()
    };
    (pv, host)
}

#[test]
fn input_is_asked_for_only_when_some_may_have_come_or_was_left_behind() {
    let (mut pv, mut host) = console_user(b"root\r".to_vec());
    // No sign of input: the microvisor is not asked (each ask is a locked call).
    pv.poll(&mut host, false);
    assert_eq!(host.typed, b"root\r");
    pv.poll(&mut host, true);
    assert!(host.typed.is_empty());
    assert!(!pv.input_left());
    let mut got = [0u8; 8];
    let n = CONS_IN
        .consume(&mut pv.children[1].console, &mut got)
        .unwrap();
    assert_eq!(&got[..n], b"root\r");
    // More than a pass's worth: the rest is read by the next passes without a new sign.
    host.typed = vec![b'x'; CONSOLE_IN_PER_PASS + 7];
    pv.poll(&mut host, true);
    assert!(pv.input_left());
    assert_eq!(host.typed.len(), 7);
    let mut drain = vec![0u8; CONSOLE_IN_PER_PASS];
    let _ = CONS_IN.consume(&mut pv.children[1].console, &mut drain);
    pv.poll(&mut host, false);
    assert!(host.typed.is_empty());
    assert!(!pv.input_left());
}

#[test]
fn a_guest_that_never_reads_its_input_does_not_keep_dom0_polling() {
    let (mut pv, mut host) = console_user(vec![b'y'; 3 * CONSOLE_IN_PER_PASS]);
    // The first pass fills the ring: more may come once there is room.
    pv.poll(&mut host, true);
    assert!(pv.input_left());
    // The ring is still full: nothing is read and nothing more is owed.
    pv.poll(&mut host, false);
    assert!(!pv.input_left());
    assert_eq!(host.typed.len(), 2 * CONSOLE_IN_PER_PASS);
}
