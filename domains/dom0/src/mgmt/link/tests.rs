//! The pump against a fake device: a client that floods without reading, one that reads
//! slowly, and an oversized frame.

use super::*;
use crate::mgmt::DomainEntry;
use alloc::vec;
use alloc::vec::Vec;
use protocol::control::{CapError, DomainInfo, DomainState};
use protocol::mgmt::{decode, encode, FrameDecoder, MgmtError, Request, Response};

/// One domain, dom0.
struct Ops;

impl DomainOps for Ops {
    fn domains(&mut self) -> Vec<DomainEntry> {
        vec![DomainEntry {
            name: "dom0".into(),
            id: 0,
            handle: None,
        }]
    }
    fn query(&mut self, id: u16) -> Result<DomainInfo, CapError> {
        Ok(DomainInfo {
            domid: id,
            name: "dom0".into(),
            state: DomainState::Running,
            vcpus: 1,
            vcpus_online: 1,
            mem_mib: 32,
            cpu_ticks: 0,
            exits: 0,
            irqs_injected: 0,
            restarts: 0,
        })
    }
    fn pause(&mut self, _: u16) -> Result<(), CapError> {
        Err(CapError::NoRights)
    }
    fn unpause(&mut self, _: u16) -> Result<(), CapError> {
        Err(CapError::NoRights)
    }
    fn destroy(&mut self, _: u16) -> Result<(), CapError> {
        Err(CapError::NoRights)
    }
    fn restart(&mut self, _: u16) -> Result<(), CapError> {
        Err(CapError::NoRights)
    }
    fn counter_hz(&mut self) -> u64 {
        62_500_000
    }
    fn free_memory(&mut self) -> (u64, u64) {
        (1000, 512)
    }
}

/// The host end: bytes waiting for dom0, and how many bytes per write the host reads.
struct Dev {
    input: VecDeque<u8>,
    /// Bytes the host accepts per `try_write` call (0: the client stopped reading).
    takes: usize,
    written: Vec<u8>,
    reads: usize,
}

impl Dev {
    fn new(input: Vec<u8>, takes: usize) -> Self {
        Self {
            input: input.into(),
            takes,
            written: Vec::new(),
            reads: 0,
        }
    }
}

impl Device for Dev {
    fn read_byte(&mut self) -> Option<u8> {
        self.reads += 1;
        self.input.pop_front()
    }
    fn try_write(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.takes);
        self.written.extend_from_slice(&bytes[..n]);
        n
    }
}

fn requests(n: usize) -> Vec<u8> {
    let one = encode(&Request::List).unwrap();
    one.repeat(n)
}

fn responses(bytes: &[u8]) -> Vec<Response> {
    FrameDecoder::new()
        .feed(bytes)
        .into_iter()
        .map(|f| decode::<Response>(&f.unwrap()).unwrap())
        .collect()
}

#[test]
fn a_client_that_never_reads_is_bounded_then_dropped() {
    let mut dev = Dev::new(requests(1000), 0);
    let mut link = Link::new();
    let mut dropped_at = None;
    for poll in 0..STALL_POLLS + 5 {
        let before = dev.reads;
        let p = link.poll(&mut dev, &mut Ops);
        assert!(p.read <= READ_PER_POLL && dev.reads - before <= READ_PER_POLL + 1);
        assert!(link.pending() <= MAX_PENDING + MAX_FRAME, "queue bounded");
        if p.dropped && dropped_at.is_none() {
            dropped_at = Some(poll);
        }
    }
    // The first poll fills the queue; each later one finds the device taking nothing.
    assert_eq!(
        dropped_at,
        Some(STALL_POLLS),
        "dropped after the stall bound"
    );
    assert_eq!(link.drops(), 1);
    assert!(dev.written.is_empty());
    // The client starts reading again: the session goes on with what it sends next.
    dev.takes = usize::MAX;
    dev.input = requests(1).into();
    let mut rounds = 0;
    while !dev.input.is_empty() || link.pending() > 0 {
        link.poll(&mut dev, &mut Ops);
        rounds += 1;
        assert!(rounds < 10_000);
    }
    assert!(!responses(&dev.written).is_empty());
}

#[test]
fn a_slow_reader_gets_every_reply_in_order() {
    let mut dev = Dev::new(requests(50), 7);
    let mut link = Link::new();
    let mut rounds = 0;
    while !dev.input.is_empty() || link.pending() > 0 {
        let p = link.poll(&mut dev, &mut Ops);
        assert!(!p.dropped);
        rounds += 1;
        assert!(rounds < 100_000, "no progress");
    }
    let got = responses(&dev.written);
    assert_eq!(got.len(), 50);
    assert!(got
        .iter()
        .all(|r| matches!(r, Response::Domains(d) if d.len() == 1)));
}

#[test]
fn an_oversized_frame_is_dropped_with_an_error_not_accumulated() {
    let mut input = vec![0x55u8; 5 * MAX_FRAME];
    input.push(0);
    input.extend(requests(1));
    let mut dev = Dev::new(input, usize::MAX);
    let mut link = Link::new();
    while !dev.input.is_empty() {
        link.poll(&mut dev, &mut Ops);
        assert!(link.server.decoder.pending() < MAX_FRAME);
    }
    let got = responses(&dev.written);
    assert_eq!(
        got[0],
        Response::Error(MgmtError::from(protocol::mgmt::FrameError::TooLarge))
    );
    assert!(matches!(got[1], Response::Domains(_)));
}
