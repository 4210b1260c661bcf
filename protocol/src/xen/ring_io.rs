//! Byte transfer over the xenstore and PV console rings, independent of how the page is mapped.
//!
//! Both pages ([`XenstoreDomainInterface`], [`XenconsInterface`]) hold two power-of-two byte
//! rings with free-running `u32` indexes. This module holds the index arithmetic and the copy
//! loops; the shell implements [`SharedRing`] over the mapped page (volatile byte accesses,
//! Acquire/Release index accesses) and host tests implement it over plain memory.
//!
//! Invariants: a ring is only ever touched after its index pair has been checked
//! (`prod - cons <= size`, wrapping); a corrupt pair is reported as [`RingError::Corrupt`]
//! and nothing is read, written or published. Ring offsets are always `index & (size - 1)`,
//! so no guest-written value can move an access outside the ring's bytes.

use super::ring::{
    XenconsInterface, XenstoreDomainInterface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE,
    XENSTORE_RING_SIZE,
};
use core::fmt;
use core::mem::offset_of;

/// Access to one mapped ring page, by byte offset within the page.
///
/// Every offset passed in comes from a [`ByteRing`] constant of this module: index offsets are
/// 4-byte aligned and `off + len` never exceeds the page structure, so an implementation may
/// treat anything else as a bug in dom0 (not in the guest).
pub trait SharedRing {
    /// Reads the little-endian `u32` index at `off` with **Acquire** ordering: bytes the other
    /// side wrote (producer) or finished reading (consumer) before publishing this value are
    /// settled before any later access to the ring bytes.
    fn load_index(&self, off: usize) -> u32;
    /// Writes the `u32` index at `off` with **Release** ordering: every ring byte access made
    /// before it (our copies in or out) is complete before the other side can see the value.
    fn store_index(&mut self, off: usize, value: u32);
    /// Copies `dst.len()` ring bytes starting at `off` (volatile reads; no ordering of its own).
    fn read_bytes(&self, off: usize, dst: &mut [u8]);
    /// Copies `src` into the ring starting at `off` (volatile writes; no ordering of its own).
    fn write_bytes(&mut self, off: usize, src: &[u8]);
}

/// Why a ring transfer did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RingError {
    /// the ring's producer and consumer indexes are more than the ring size apart
    Corrupt {
        /// The producer index found.
        prod: u32,
        /// The consumer index found.
        cons: u32,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupt { prod, cons } => write!(
                f,
                "ring indexes are corrupt (prod {prod:#x}, cons {cons:#x})"
            ),
        }
    }
}

/// Where one byte ring of a shared page lives: its bytes and its two indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRing {
    data: usize,
    size: u32,
    cons: usize,
    prod: usize,
}

impl ByteRing {
    /// A ring of `size` bytes at `data`, with its indexes at `cons` and `prod`.
    /// `size` must be a power of two (checked at compile time for the constants below).
    const fn new(data: usize, size: usize, cons: usize, prod: usize) -> Self {
        assert!(size.is_power_of_two() && size <= u32::MAX as usize);
        Self {
            data,
            size: size as u32,
            cons,
            prod,
        }
    }

    /// Bytes in the ring.
    pub const fn size(&self) -> usize {
        self.size as usize
    }

    /// Offset of the ring bytes within the page.
    pub const fn data_offset(&self) -> usize {
        self.data
    }

    /// Offset of the consumer index within the page.
    pub const fn cons_offset(&self) -> usize {
        self.cons
    }

    /// Offset of the producer index within the page.
    pub const fn prod_offset(&self) -> usize {
        self.prod
    }

    /// Loads both indexes and checks them; returns `(cons, prod, fill)`.
    fn indexes<R: SharedRing + ?Sized>(&self, page: &R) -> Result<(u32, u32, u32), RingError> {
        let cons = page.load_index(self.cons);
        let prod = page.load_index(self.prod);
        let fill = prod.wrapping_sub(cons);
        if fill > self.size {
            return Err(RingError::Corrupt { prod, cons });
        }
        Ok((cons, prod, fill))
    }

    /// The two ring-byte spans `[pos, pos + len)` covers, as (page offset, length) pairs.
    fn spans(&self, index: u32, len: usize) -> [(usize, usize); 2] {
        let start = (index & (self.size - 1)) as usize;
        let first = len.min(self.size() - start);
        [(self.data + start, first), (self.data, len - first)]
    }

    /// Bytes waiting to be consumed.
    pub fn fill<R: SharedRing + ?Sized>(&self, page: &R) -> Result<usize, RingError> {
        Ok(self.indexes(page)?.2 as usize)
    }

    /// Bytes that can be produced without overwriting unconsumed data.
    pub fn space<R: SharedRing + ?Sized>(&self, page: &R) -> Result<usize, RingError> {
        Ok((self.size - self.indexes(page)?.2) as usize)
    }

    /// Consumer side: copies up to `buf.len()` waiting bytes into `buf` (each byte is read
    /// exactly once), then publishes the advanced consumer index. Returns the count copied.
    pub fn consume<R: SharedRing + ?Sized>(
        &self,
        page: &mut R,
        buf: &mut [u8],
    ) -> Result<usize, RingError> {
        let (cons, _, fill) = self.indexes(page)?;
        let n = buf.len().min(fill as usize);
        if n == 0 {
            return Ok(0);
        }
        let [(a, a_len), (b, b_len)] = self.spans(cons, n);
        let (head, tail) = buf[..n].split_at_mut(a_len);
        page.read_bytes(a, head);
        page.read_bytes(b, &mut tail[..b_len]);
        page.store_index(self.cons, cons.wrapping_add(n as u32));
        Ok(n)
    }

    /// Producer side: copies as much of `data` as fits into the free space, then publishes the
    /// advanced producer index. Returns the count copied (0 when the ring is full).
    pub fn produce<R: SharedRing + ?Sized>(
        &self,
        page: &mut R,
        data: &[u8],
    ) -> Result<usize, RingError> {
        let (_, prod, fill) = self.indexes(page)?;
        let n = data.len().min((self.size - fill) as usize);
        if n == 0 {
            return Ok(0);
        }
        let [(a, a_len), (b, b_len)] = self.spans(prod, n);
        page.write_bytes(a, &data[..a_len]);
        page.write_bytes(b, &data[a_len..a_len + b_len]);
        page.store_index(self.prod, prod.wrapping_add(n as u32));
        Ok(n)
    }

    /// Sets both indexes to zero (the xenstore ring reset on (re)introduction or reconnect).
    pub fn reset<R: SharedRing + ?Sized>(&self, page: &mut R) {
        page.store_index(self.cons, 0);
        page.store_index(self.prod, 0);
    }
}

/// The two rings of one page as seen by dom0: it consumes `inbound` and produces `outbound`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The ring the guest produces and dom0 consumes.
    pub inbound: ByteRing,
    /// The ring dom0 produces and the guest consumes.
    pub outbound: ByteRing,
}

impl Endpoint {
    /// Consumes waiting bytes from the inbound ring (see [`ByteRing::consume`]).
    pub fn consume<R: SharedRing + ?Sized>(
        &self,
        page: &mut R,
        buf: &mut [u8],
    ) -> Result<usize, RingError> {
        self.inbound.consume(page, buf)
    }

    /// Produces bytes into the outbound ring (see [`ByteRing::produce`]).
    pub fn produce<R: SharedRing + ?Sized>(
        &self,
        page: &mut R,
        data: &[u8],
    ) -> Result<usize, RingError> {
        self.outbound.produce(page, data)
    }
}

/// xenstore `req`: the guest's requests, consumed by the server.
pub const XS_REQ: ByteRing = ByteRing::new(
    offset_of!(XenstoreDomainInterface, req),
    XENSTORE_RING_SIZE,
    offset_of!(XenstoreDomainInterface, req_cons),
    offset_of!(XenstoreDomainInterface, req_prod),
);

/// xenstore `rsp`: replies and watch events, produced by the server.
pub const XS_RSP: ByteRing = ByteRing::new(
    offset_of!(XenstoreDomainInterface, rsp),
    XENSTORE_RING_SIZE,
    offset_of!(XenstoreDomainInterface, rsp_cons),
    offset_of!(XenstoreDomainInterface, rsp_prod),
);

/// Console `out`: the guest's output, consumed by the backend.
pub const CONS_OUT: ByteRing = ByteRing::new(
    offset_of!(XenconsInterface, output),
    XENCONS_OUT_SIZE,
    offset_of!(XenconsInterface, out_cons),
    offset_of!(XenconsInterface, out_prod),
);

/// Console `in`: input for the guest, produced by the backend.
pub const CONS_IN: ByteRing = ByteRing::new(
    offset_of!(XenconsInterface, input),
    XENCONS_IN_SIZE,
    offset_of!(XenconsInterface, in_cons),
    offset_of!(XenconsInterface, in_prod),
);

/// dom0 as xenstore server: consumes `req`, produces `rsp`.
pub const XENSTORE_SERVER: Endpoint = Endpoint {
    inbound: XS_REQ,
    outbound: XS_RSP,
};

/// dom0 as console backend: consumes `out`, produces `in`.
pub const CONSOLE_BACKEND: Endpoint = Endpoint {
    inbound: CONS_OUT,
    outbound: CONS_IN,
};

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// A ring page in plain memory; single-threaded, so ordering is trivially satisfied.
    #[derive(Clone, PartialEq, Eq, Debug)]
    struct Page(Vec<u8>);

    impl Page {
        fn new() -> Self {
            Self(vec![0xA5; 4096])
        }
        fn at(ring: &ByteRing, cons: u32, prod: u32) -> Self {
            let mut p = Self::new();
            p.store_index(ring.cons_offset(), cons);
            p.store_index(ring.prod_offset(), prod);
            p
        }
    }

    impl SharedRing for Page {
        fn load_index(&self, off: usize) -> u32 {
            u32::from_le_bytes(self.0[off..off + 4].try_into().unwrap())
        }
        fn store_index(&mut self, off: usize, value: u32) {
            self.0[off..off + 4].copy_from_slice(&value.to_le_bytes());
        }
        fn read_bytes(&self, off: usize, dst: &mut [u8]) {
            dst.copy_from_slice(&self.0[off..off + dst.len()]);
        }
        fn write_bytes(&mut self, off: usize, src: &[u8]) {
            self.0[off..off + src.len()].copy_from_slice(src);
        }
    }

    fn bytes(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn layout_matches_the_wire_structs() {
        assert_eq!((XS_REQ.data_offset(), XS_REQ.size()), (0, 1024));
        assert_eq!((XS_REQ.cons_offset(), XS_REQ.prod_offset()), (2048, 2052));
        assert_eq!((XS_RSP.data_offset(), XS_RSP.size()), (1024, 1024));
        assert_eq!((XS_RSP.cons_offset(), XS_RSP.prod_offset()), (2056, 2060));
        assert_eq!((CONS_IN.data_offset(), CONS_IN.size()), (0, 1024));
        assert_eq!((CONS_IN.cons_offset(), CONS_IN.prod_offset()), (3072, 3076));
        assert_eq!((CONS_OUT.data_offset(), CONS_OUT.size()), (1024, 2048));
        assert_eq!(
            (CONS_OUT.cons_offset(), CONS_OUT.prod_offset()),
            (3080, 3084)
        );
        assert_eq!(XENSTORE_SERVER.inbound, XS_REQ);
        assert_eq!(CONSOLE_BACKEND.inbound, CONS_OUT);
    }

    #[test]
    fn empty_ring_consumes_nothing_and_publishes_nothing() {
        let mut p = Page::at(&XS_REQ, 77, 77);
        let before = p.clone();
        let mut buf = [0u8; 64];
        assert_eq!(XENSTORE_SERVER.consume(&mut p, &mut buf), Ok(0));
        assert_eq!(p, before);
        assert_eq!(XS_REQ.fill(&p), Ok(0));
        assert_eq!(XS_REQ.space(&p), Ok(1024));
    }

    #[test]
    fn wraps_around_the_end_of_the_ring() {
        let mut p = Page::at(&XS_REQ, 1020, 1020);
        let msg = bytes(10, 1);
        assert_eq!(XS_REQ.produce(&mut p, &msg), Ok(10)); // the guest's side
        assert_eq!(&p.0[1020..1024], &msg[..4]);
        assert_eq!(&p.0[..6], &msg[4..]);
        let mut buf = [0u8; 16];
        assert_eq!(XENSTORE_SERVER.consume(&mut p, &mut buf), Ok(10));
        assert_eq!(&buf[..10], &msg[..]);
        assert_eq!(p.load_index(XS_REQ.cons_offset()), 1030);
    }

    #[test]
    fn full_ring_takes_no_more_and_drains_in_pieces() {
        let mut p = Page::at(&XS_RSP, 5, 5);
        let data = bytes(1100, 3);
        assert_eq!(XENSTORE_SERVER.produce(&mut p, &data), Ok(1024));
        assert_eq!(XENSTORE_SERVER.produce(&mut p, &data), Ok(0));
        assert_eq!(XS_RSP.space(&p), Ok(0));
        let mut out = Vec::new();
        let mut buf = [0u8; 300];
        loop {
            let n = XS_RSP.consume(&mut p, &mut buf).unwrap(); // the guest's side
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, &data[..1024]);
    }

    #[test]
    fn corrupt_indexes_touch_nothing() {
        for (cons, prod) in [(0, 1025), (10, 9), (u32::MAX, 1025), (0, u32::MAX)] {
            let mut p = Page::at(&XS_REQ, cons, prod);
            p.store_index(XS_RSP.cons_offset(), cons);
            p.store_index(XS_RSP.prod_offset(), prod);
            let before = p.clone();
            let err = Err(RingError::Corrupt { prod, cons });
            assert_eq!(XENSTORE_SERVER.consume(&mut p, &mut [0u8; 8]), err);
            assert_eq!(XENSTORE_SERVER.produce(&mut p, b"abc"), err);
            assert_eq!(XS_REQ.fill(&p).map_err(|_| ()), Err(()));
            assert_eq!(p, before);
        }
        let e = RingError::Corrupt {
            prod: 0x500,
            cons: 0,
        };
        assert_eq!(
            alloc::format!("{e}"),
            "ring indexes are corrupt (prod 0x500, cons 0x0)"
        );
    }

    #[test]
    fn console_flavour_moves_guest_output_and_input() {
        let mut p = Page::at(&CONS_OUT, 2040, 2040);
        p.store_index(CONS_IN.cons_offset(), 3);
        p.store_index(CONS_IN.prod_offset(), 3);
        let line = bytes(2048, 9);
        assert_eq!(CONS_OUT.produce(&mut p, &line), Ok(2048)); // the guest's side
        let mut buf = vec![0u8; 4096];
        assert_eq!(CONSOLE_BACKEND.consume(&mut p, &mut buf), Ok(2048));
        assert_eq!(&buf[..2048], &line[..]);
        assert_eq!(CONSOLE_BACKEND.produce(&mut p, &line), Ok(1024));
        assert_eq!(CONS_IN.consume(&mut p, &mut buf), Ok(1024)); // the guest's side
        assert_eq!(&buf[..1024], &line[..1024]);
        CONS_IN.reset(&mut p);
        assert_eq!(p.load_index(CONS_IN.prod_offset()), 0);
    }

    /// Streams `total` bytes through `ring` in uneven chunks from starting index `start`.
    fn stream(ring: &ByteRing, start: u32, chunk_in: usize, chunk_out: usize) {
        let mut p = Page::at(ring, start, start);
        let data = bytes(3 * ring.size() + 17, start as u8);
        let (mut sent, mut got) = (0, Vec::new());
        let mut buf = vec![0u8; chunk_out];
        while got.len() < data.len() {
            let end = (sent + chunk_in).min(data.len());
            sent += ring.produce(&mut p, &data[sent..end]).unwrap();
            let n = ring.consume(&mut p, &mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            assert!(ring.fill(&p).unwrap() <= ring.size());
        }
        assert_eq!(got, data);
        let end = start.wrapping_add(data.len() as u32);
        assert_eq!(p.load_index(ring.cons_offset()), end);
        assert_eq!(p.load_index(ring.prod_offset()), end);
    }

    #[test]
    fn streams_across_the_u32_wrap_from_many_starting_points() {
        for ring in [XS_REQ, XS_RSP, CONS_IN, CONS_OUT] {
            let size = ring.size() as u32;
            for back in (0..=2 * size + 3).step_by(37) {
                let start = 0u32.wrapping_sub(back);
                stream(&ring, start, 700, 300);
                stream(&ring, start, 5, 1024);
            }
        }
    }

    proptest! {
        #[test]
        fn matches_a_queue_model(
            start in any::<u32>(),
            ops in proptest::collection::vec((any::<bool>(), 0usize..1500), 1..60),
        ) {
            let ring = CONS_OUT;
            let mut p = Page::at(&ring, start, start);
            let mut model = VecDeque::new();
            let mut seed = 0u8;
            for (is_produce, len) in ops {
                if is_produce {
                    seed = seed.wrapping_add(1);
                    let data = bytes(len, seed);
                    let n = ring.produce(&mut p, &data).unwrap();
                    prop_assert_eq!(n, len.min(ring.size() - model.len()));
                    model.extend(&data[..n]);
                } else {
                    let mut buf = vec![0u8; len];
                    let n = ring.consume(&mut p, &mut buf).unwrap();
                    let want: Vec<u8> = model.drain(..len.min(model.len())).collect();
                    prop_assert_eq!(&buf[..n], &want[..]);
                }
                prop_assert_eq!(ring.fill(&p).unwrap(), model.len());
            }
        }
    }
}
