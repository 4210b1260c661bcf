//! The `blkif` target: blkdom's backend core (`domains/blkdom`) serving a ring whose every
//! byte a hostile frontend chose: the slots, `req_prod` (moved between polls), the grants
//! behind the segment refs, and the xenbus keys it publishes to the handshake.
//!
//! Checked beyond "no panic": the core never asks the disk for a sector past its end or a
//! buffer that is not whole sectors, never writes a read-only vbd, never publishes more
//! responses than the frontend produced requests, and stops consuming once it halted.

use blkdom::io::{
    Dir, Disk, DiskError, DiskInfo, GrantError, GrantSeg, Grants, Placed, RingMem, Transfer,
};
use blkdom::{Config, VbdConfig, VbdState, VbdTable};
use protocol::xen::blkif::{RING_REQ_PROD, RING_RSP_PROD};
use protocol::xen::structs::DomId;
use protocol::xen::xenbus::XenbusState;

const SECTORS: u64 = 64;
const GRANTS: u32 = 8;
/// Transfers the fake disk takes in flight at once.
const DEPTH: usize = 4;
/// Its staging buffer: room for `DEPTH` requests of 32 pages.
const STAGING: usize = DEPTH * 32 * 4096;

struct Ring(Vec<u8>);

impl RingMem for Ring {
    fn load_index(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.0[off..off + 4].try_into().expect("4 bytes"))
    }
    fn store_index(&mut self, off: usize, value: u32) {
        self.0[off..off + 4].copy_from_slice(&value.to_le_bytes());
    }
    fn fence(&self) {}
    fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        dst.copy_from_slice(&self.0[off..off + dst.len()]);
    }
    fn write_bytes(&mut self, off: usize, src: &[u8]) {
        self.0[off..off + src.len()].copy_from_slice(src);
    }
}

/// Performs each transfer when it starts (the core may not touch its range before
/// `finish`, so the difference cannot show) and keeps its result for `finish`.
struct FakeDisk {
    data: Vec<u8>,
    read_only: bool,
    staging: Vec<u8>,
    in_flight: Vec<Transfer>,
    done: Vec<Result<(), DiskError>>,
}

impl FakeDisk {
    fn range(&self, sector: u64, len: usize) -> std::ops::Range<usize> {
        assert!(
            len > 0 && len.is_multiple_of(512),
            "disk buffer of {len} bytes"
        );
        let start = usize::try_from(sector).expect("sector") * 512;
        assert!(start + len <= self.data.len(), "disk access past the end");
        start..start + len
    }
}

impl Disk for FakeDisk {
    fn info(&self) -> DiskInfo {
        DiskInfo {
            sectors: SECTORS,
            sector_size: 512,
            physical_sector_size: 512,
            read_only: self.read_only,
            flush: true,
            discard: None,
        }
    }
    fn depth(&self) -> usize {
        DEPTH
    }
    fn staging(&mut self) -> &mut [u8] {
        self.in_flight.clear();
        &mut self.staging
    }
    fn start(&mut self, t: Transfer) -> Result<(), DiskError> {
        assert!(
            t.at + t.len <= self.staging.len(),
            "transfer past the staging buffer"
        );
        assert!(
            self.in_flight.len() < DEPTH,
            "more transfers in flight than the depth"
        );
        for p in &self.in_flight {
            assert!(
                t.at + t.len <= p.at || p.at + p.len <= t.at,
                "overlapping transfers in flight"
            );
        }
        let r = self.range(t.sector, t.len);
        if t.write {
            assert!(!self.read_only, "a read-only vbd was written");
            self.data[r].copy_from_slice(&self.staging[t.at..t.at + t.len]);
        } else {
            self.staging[t.at..t.at + t.len].copy_from_slice(&self.data[r]);
        }
        self.in_flight.push(t);
        self.done.push(Ok(()));
        Ok(())
    }
    fn finish(&mut self, results: &mut Vec<Result<(), DiskError>>) {
        self.in_flight.clear();
        results.append(&mut self.done);
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
}

/// Grants 0..GRANTS are pages of the fuzz input's choosing; others are bad refs.
struct FakeGrants(Vec<Vec<u8>>);

impl FakeGrants {
    fn page(&mut self, s: &GrantSeg) -> Result<&mut [u8], GrantError> {
        let end = usize::from(s.offset) + usize::from(s.len);
        assert!(end <= 4096, "a segment crosses its granted page");
        let page = self.0.get_mut(s.gref as usize).ok_or(GrantError::BadRef)?;
        Ok(&mut page[usize::from(s.offset)..end])
    }
}

impl Grants for FakeGrants {
    fn copy(
        &mut self,
        _: DomId,
        dir: Dir,
        pieces: &[Placed],
        buf: &mut [u8],
    ) -> Result<(), GrantError> {
        // Like GNTTABOP_copy: every piece is tried, the first failure is reported.
        let mut result = Ok(());
        for p in pieces {
            let (at, n) = (p.at, usize::from(p.seg.len));
            assert!(
                n > 0 && at + n <= buf.len(),
                "a piece outside the local buffer"
            );
            match self.page(&p.seg) {
                Ok(page) => match dir {
                    Dir::In => buf[at..at + n].copy_from_slice(page),
                    Dir::Out => page.copy_from_slice(&buf[at..at + n]),
                },
                Err(e) => result = result.and(Err(e)),
            }
        }
        result
    }
}

/// Runs one input: `[flags, ring page (4096), req_prod moves (4 bytes each)…]`, then the
/// rest as `key=value` lines for the handshake.
pub fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut page = vec![0u8; 4096];
    let n = rest.len().min(4096);
    page[..n].copy_from_slice(&rest[..n]);
    let rest = &rest[n..];
    let read_only = flags & 1 != 0;
    // The ring starts empty from our side: rsp_prod as the page says (a restart picks up
    // whatever was published).
    let mut ring = Ring(page);
    let mut disk = FakeDisk {
        data: vec![0; SECTORS as usize * 512],
        read_only,
        staging: vec![0; STAGING],
        in_flight: Vec::new(),
        done: Vec::new(),
    };
    let mut grants = FakeGrants((0..GRANTS).map(|g| vec![g as u8; 4096]).collect());
    let mut table = VbdTable::new(Config::default());
    let info = disk.info();
    let id = table.add(
        VbdConfig {
            frontend: 3,
            devid: 51712,
            disk: 0,
            read_only,
        },
        info,
    );
    let text = String::from_utf8_lossy(rest);
    let (moves, keys) = text.split_at(text.find('\n').unwrap_or(0));
    let key = |k: &str| {
        keys.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .map(String::from)
    };
    table.start(id);
    let step = table.frontend_changed(id, XenbusState::Initialised, key);
    let _ = step;
    if table.connect(id, 0, &mut ring).is_err() {
        return;
    }
    let start_rsp = ring.load_index(RING_RSP_PROD);
    let mut halted = false;
    for m in moves.bytes().take(16) {
        if m & 1 == 1 {
            let p = ring
                .load_index(RING_REQ_PROD)
                .wrapping_add(u32::from(m >> 1));
            ring.store_index(RING_REQ_PROD, p);
        }
        let before = ring.load_index(RING_RSP_PROD);
        let p = table.poll(id, &mut ring, &mut disk, &mut grants);
        let after = ring.load_index(RING_RSP_PROD);
        if halted {
            assert_eq!(before, after, "a halted ring was consumed");
        }
        if p.halted.is_none() && !halted {
            // Every response answers a request the frontend published.
            let produced = ring.load_index(RING_REQ_PROD).wrapping_sub(start_rsp);
            assert!(
                after.wrapping_sub(start_rsp) <= produced,
                "more responses than requests"
            );
        }
        halted |= p.halted.is_some();
        if halted {
            assert!(matches!(
                table.get(id).map(|v| v.state()),
                Some(VbdState::Halted(_))
            ));
        }
    }
}

/// Seeds: a ring with a valid read and a valid write, and one with a malformed request.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use protocol::xen::blkif::{BlkifOp, RING_HEADER_BYTES, RING_SLOT_BYTES};
    let slot = |op: BlkifOp, id: u8, sector: u8| {
        let mut s = vec![0u8; RING_SLOT_BYTES];
        s[0] = op as u8;
        s[1] = 1; // one segment
        s[8] = id;
        s[16] = sector;
        // segment 0: gref 1, sectors 0..=7
        s[24] = 1;
        s[28] = 0;
        s[29] = 7;
        s
    };
    let ring = |slots: &[Vec<u8>]| {
        let mut page = vec![0u8; 4096];
        page[RING_REQ_PROD..RING_REQ_PROD + 4].copy_from_slice(&(slots.len() as u32).to_le_bytes());
        for (i, s) in slots.iter().enumerate() {
            let at = RING_HEADER_BYTES + i * RING_SLOT_BYTES;
            page[at..at + s.len()].copy_from_slice(s);
        }
        page
    };
    let input = |flags: u8, page: Vec<u8>| {
        let mut v = vec![flags];
        v.extend(page);
        v.extend_from_slice(b"\x00\x03\x00\nring-ref=8\nevent-channel=5\nprotocol=arm-abi\n");
        v
    };
    let mut bad = slot(BlkifOp::Read, 3, 0);
    bad[0] = 200;
    vec![
        (
            "read-write",
            input(
                0,
                ring(&[slot(BlkifOp::Read, 1, 0), slot(BlkifOp::Write, 2, 8)]),
            ),
        ),
        (
            "read-only-write",
            input(1, ring(&[slot(BlkifOp::Write, 1, 0)])),
        ),
        (
            "malformed",
            input(0, ring(&[slot(BlkifOp::Read, 1, 0), bad])),
        ),
    ]
}
