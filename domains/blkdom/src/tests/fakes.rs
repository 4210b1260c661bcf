//! Fakes: ring pages in a Vec, a disk over a Vec, grants over a map of pages (which the
//! disk reaches through a shared [`Bus`] when it transfers to device addresses), and a
//! frontend that produces requests and consumes responses the way blkfront does.

use crate::io::{
    Dir, Disk, DiskError, DiskInfo, DmaSeg, GrantError, Grants, Kept, Placed, RingMem, Transfer,
};
use crate::{Config, Poll, VbdConfig, VbdId, VbdTable};
use protocol::xen::blkif::*;
use protocol::xen::structs::{DomId, GrantRef};
use protocol::xen::xenbus::XenbusState;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use zerocopy::{FromBytes, IntoBytes};

pub const FRONT: DomId = 7;

/// Ring pages; panics on any access crossing a 4 KiB page (the core promises not to), and
/// on an index load that Xen's rules need fenced after an index store but that was not.
pub struct FakeRing {
    pub mem: Vec<u8>,
    unfenced: Cell<Option<usize>>,
    /// Plays a frontend that queues `template` each time a response is published, while
    /// `remaining` lasts (a concurrent producer).
    pub refill: Option<([u8; RING_SLOT_BYTES], u32)>,
    /// Simulates the backend dying: once `writes` reaches this, every later store is lost.
    pub die_after: Option<usize>,
    pub writes: usize,
}

impl FakeRing {
    pub fn new(order: u32) -> Self {
        let mut r = Self {
            mem: vec![0; XEN_PAGE_BYTES << order],
            unfenced: Cell::new(None),
            refill: None,
            die_after: None,
            writes: 0,
        };
        // SHARED_RING_INIT
        r.store_index(RING_REQ_EVENT, 1);
        r.store_index(RING_RSP_EVENT, 1);
        r
    }
    /// Counts a backend store; true once the backend is dead.
    fn dead(&mut self) -> bool {
        self.writes += 1;
        self.die_after.is_some_and(|n| self.writes > n)
    }
    fn check(off: usize, len: usize) {
        assert!(
            len == 0 || off / XEN_PAGE_BYTES == (off + len - 1) / XEN_PAGE_BYTES,
            "access {off:#x}+{len} crosses a page"
        );
    }
}

impl RingMem for FakeRing {
    fn load_index(&self, off: usize) -> u32 {
        assert!(off < 64 && off.is_multiple_of(4));
        let bad = [
            (RING_RSP_PROD, RING_RSP_EVENT),
            (RING_REQ_EVENT, RING_REQ_PROD),
        ];
        if let Some(s) = self.unfenced.get() {
            assert!(
                !bad.contains(&(s, off)),
                "load {off} after store {s} without a fence"
            );
        }
        u32::from_le_bytes(self.mem[off..off + 4].try_into().unwrap())
    }
    fn store_index(&mut self, off: usize, value: u32) {
        assert!(off < 64 && off.is_multiple_of(4));
        if self.dead() {
            return;
        }
        self.mem[off..off + 4].copy_from_slice(&value.to_le_bytes());
        self.unfenced.set(Some(off));
        if off == RING_RSP_PROD {
            if let Some((slot, left)) = self.refill.as_mut().filter(|r| r.1 > 0) {
                *left -= 1;
                let slot = *slot;
                let entries = ring_entries(0).unwrap();
                let prod = self.load_index(RING_REQ_PROD);
                let at = slot_offset(entries, prod);
                self.mem[at..at + RING_SLOT_BYTES].copy_from_slice(&slot);
                self.mem[0..4].copy_from_slice(&prod.wrapping_add(1).to_le_bytes());
            }
        }
    }
    fn fence(&self) {
        self.unfenced.set(None);
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        Self::check(off, dst.len());
        dst.copy_from_slice(&self.mem[off..off + dst.len()]);
    }
    fn write_bytes(&mut self, off: usize, src: &[u8]) {
        Self::check(off, src.len());
        if self.dead() {
            return;
        }
        self.mem[off..off + src.len()].copy_from_slice(src);
    }
}

/// A disk over a Vec, with a call log. Transfers complete in `finish` (or when the
/// staging buffer is asked for), newest first, as a device may complete them in any order.
pub struct FakeDisk {
    pub info: DiskInfo,
    pub data: Vec<u8>,
    pub log: Vec<String>,
    pub fail_io: bool,
    pub staging: Vec<u8>,
    pub depth: usize,
    pending: Vec<(Transfer, Option<Vec<DmaSeg>>)>,
    done: Vec<Result<(), DiskError>>,
    /// The most transfers ever in flight at once.
    pub max_in_flight: usize,
    /// Where direct transfers go (`None`: the disk has none).
    pub bus: Option<Rc<RefCell<Bus>>>,
    /// Segments a direct transfer may carry.
    pub direct_segments: usize,
}

impl FakeDisk {
    pub fn new(sectors: u64) -> Self {
        let data = (0..sectors as usize * 512)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        Self {
            info: DiskInfo {
                sectors,
                sector_size: 512,
                physical_sector_size: 512,
                read_only: false,
                flush: true,
                discard: None,
            },
            data,
            log: Vec::new(),
            fail_io: false,
            // Room for 16 requests of the default table's largest size (`Rig` sizes it
            // for its own table).
            staging: vec![0; 16 * 32 * 4096],
            depth: 16,
            pending: Vec::new(),
            done: Vec::new(),
            max_in_flight: 0,
            bus: None,
            direct_segments: 32,
        }
    }
    fn range(&self, sector: u64, len: usize) -> std::ops::Range<usize> {
        assert_eq!(len % 512, 0);
        let start = sector as usize * 512;
        assert!(start + len <= self.data.len(), "disk access past the end");
        start..start + len
    }
    /// Completes every pending transfer, the newest first; results stay in start order.
    fn complete(&mut self) {
        let n = self.pending.len();
        let mut results = vec![Ok(()); n];
        for (k, (t, direct)) in self.pending.clone().into_iter().enumerate().rev() {
            if self.fail_io {
                results[k] = Err(DiskError::Io);
                continue;
            }
            let r = self.range(t.sector, t.len);
            if let Some(segs) = direct {
                let bus = self.bus.as_ref().expect("direct transfer without a bus");
                let mut at = r.start;
                for s in segs {
                    bus.borrow_mut()
                        .dma(s, t.write, &mut self.data[at..at + s.len as usize]);
                    at += s.len as usize;
                }
            } else if t.write {
                self.data[r].copy_from_slice(&self.staging[t.at..t.at + t.len]);
            } else {
                self.staging[t.at..t.at + t.len].copy_from_slice(&self.data[r]);
            }
        }
        self.pending.clear();
        self.done.extend(results);
    }
}

impl Disk for FakeDisk {
    fn info(&self) -> DiskInfo {
        self.info
    }
    fn depth(&self) -> usize {
        self.depth
    }
    fn staging(&mut self) -> &mut [u8] {
        self.complete();
        &mut self.staging
    }
    fn start(&mut self, t: Transfer) -> Result<(), DiskError> {
        assert!(t.len > 0 && t.at + t.len <= self.staging.len());
        assert!(self.pending.len() < self.depth, "more than depth in flight");
        for (p, direct) in &self.pending {
            assert!(
                direct.is_some() || t.at + t.len <= p.at || p.at + p.len <= t.at,
                "overlapping transfers in flight"
            );
        }
        assert!(
            !(t.write && self.info.read_only),
            "write to a read-only disk"
        );
        let verb = if t.write { "write" } else { "read" };
        self.log
            .push(format!("{verb} {} {}", t.sector, t.len / 512));
        self.range(t.sector, t.len);
        self.pending.push((t, None));
        self.max_in_flight = self.max_in_flight.max(self.pending.len());
        Ok(())
    }
    fn direct_segments(&self) -> usize {
        if self.bus.is_some() {
            self.direct_segments
        } else {
            0
        }
    }
    fn start_direct(&mut self, write: bool, sector: u64, segs: &[DmaSeg]) -> Result<(), DiskError> {
        assert!(self.bus.is_some(), "direct transfer on a disk without one");
        assert!(!segs.is_empty() && segs.len() <= self.direct_segments);
        assert!(self.pending.len() < self.depth, "more than depth in flight");
        assert!(!(write && self.info.read_only), "write to a read-only disk");
        let len: usize = segs.iter().map(|s| s.len as usize).sum();
        let verb = if write { "direct write" } else { "direct read" };
        self.log.push(format!("{verb} {sector} {}", len / 512));
        self.range(sector, len);
        let t = Transfer {
            write,
            sector,
            at: 0,
            len,
        };
        self.pending.push((t, Some(segs.to_vec())));
        self.max_in_flight = self.max_in_flight.max(self.pending.len());
        Ok(())
    }
    fn finish(&mut self, results: &mut Vec<Result<(), DiskError>>) {
        self.complete();
        results.append(&mut self.done);
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        assert!(self.pending.is_empty(), "flush with transfers in flight");
        self.log.push("flush".into());
        Ok(())
    }
    fn discard(&mut self, sector: u64, count: u64, secure: bool) -> Result<(), DiskError> {
        assert!(self.pending.is_empty(), "discard with transfers in flight");
        self.log.push(format!("discard {sector} {count} {secure}"));
        if self.info.discard.is_none() {
            return Err(DiskError::Unsupported);
        }
        let r = self.range(sector, count as usize * 512);
        self.data[r].fill(0);
        Ok(())
    }
}

/// The frontend's granted pages, and the device maps of them: what a disk's direct
/// transfers reach. Device address of map `n`: `BUS_BASE + n * 4096`.
#[derive(Default)]
pub struct Bus {
    /// (domid, gref) -> (page, read-only grant).
    pub pages: HashMap<(DomId, GrantRef), (Vec<u8>, bool)>,
    /// Live device maps: page address -> (domid, gref, mapped read-only).
    pub mapped: HashMap<u64, (DomId, GrantRef, bool)>,
    next: u64,
    /// Refs whose device maps are refused (as the microvisor refuses a bad grant).
    pub refuse: HashSet<GrantRef>,
    /// Map and unmap batches issued.
    pub map_calls: usize,
    pub unmap_calls: usize,
    /// Most device maps live at once.
    pub most_mapped: usize,
    /// Kept (persistent) maps: handle -> page address; batches mapping and unmapping them.
    pub kept: HashMap<u32, u64>,
    pub keep_calls: usize,
    pub keep_refs: usize,
    pub unkeep_calls: usize,
}

pub const BUS_BASE: u64 = 0x8_0000_0000;

impl Bus {
    /// The device reads (`write`) or fills `disk` through segment `s`.
    fn dma(&mut self, s: DmaSeg, write: bool, disk: &mut [u8]) {
        let page = s.addr & !4095;
        let off = (s.addr - page) as usize;
        let &(d, g, ro) = self
            .mapped
            .get(&page)
            .expect("device access to an address that is not mapped");
        assert!(off + s.len as usize <= 4096);
        assert!(write || !ro, "device write through a read-only map");
        let p = &mut self.pages.get_mut(&(d, g)).unwrap().0;
        if write {
            disk.copy_from_slice(&p[off..off + s.len as usize]);
        } else {
            p[off..off + s.len as usize].copy_from_slice(disk);
        }
    }
}

/// A frontend's grant table over a [`Bus`].
#[derive(Default)]
pub struct FakeGrants {
    pub bus: Rc<RefCell<Bus>>,
    pub calls: usize,
    /// Device maps are given (else refused like the default `Grants` does).
    pub device_maps: bool,
}

impl FakeGrants {
    pub fn grant(&mut self, gref: GrantRef, page: Vec<u8>, read_only: bool) {
        assert_eq!(page.len(), 4096);
        self.bus
            .borrow_mut()
            .pages
            .insert((FRONT, gref), (page, read_only));
    }
    pub fn page(&self, gref: GrantRef) -> Vec<u8> {
        self.bus.borrow().pages[&(FRONT, gref)].0.clone()
    }
}

impl Grants for FakeGrants {
    fn copy(
        &mut self,
        d: DomId,
        dir: Dir,
        pieces: &[Placed],
        buf: &mut [u8],
    ) -> Result<(), GrantError> {
        self.calls += 1;
        let mut bus = self.bus.borrow_mut();
        // Like GNTTABOP_copy: every piece is tried, the first failure is reported.
        let mut result = Ok(());
        for p in pieces {
            let (o, n, at) = (p.seg.offset as usize, p.seg.len as usize, p.at);
            assert!(n > 0 && o + n <= 4096 && at + n <= buf.len());
            let Some((page, ro)) = bus.pages.get_mut(&(d, p.seg.gref)) else {
                result = result.and(Err(GrantError::BadRef));
                continue;
            };
            match dir {
                Dir::In => buf[at..at + n].copy_from_slice(&page[o..o + n]),
                Dir::Out if *ro => result = result.and(Err(GrantError::PermissionDenied)),
                Dir::Out => page[o..o + n].copy_from_slice(&buf[at..at + n]),
            }
        }
        result
    }

    fn map_for_device(
        &mut self,
        d: DomId,
        refs: &[(GrantRef, bool)],
        addrs: &mut Vec<Option<u64>>,
    ) {
        if !self.device_maps {
            addrs.extend(refs.iter().map(|_| None));
            return;
        }
        let mut bus = self.bus.borrow_mut();
        bus.map_calls += 1;
        for &(g, ro) in refs {
            let ok = match bus.pages.get(&(d, g)) {
                Some(&(_, grant_ro)) => !bus.refuse.contains(&g) && (ro || !grant_ro),
                None => false,
            };
            if !ok {
                addrs.push(None);
                continue;
            }
            let addr = BUS_BASE + bus.next * 4096;
            bus.next += 1;
            bus.mapped.insert(addr, (d, g, ro));
            addrs.push(Some(addr));
        }
        bus.most_mapped = bus.most_mapped.max(bus.mapped.len());
    }

    fn unmap_for_device(&mut self) {
        let mut bus = self.bus.borrow_mut();
        bus.unmap_calls += 1;
        let kept: HashSet<u64> = bus.kept.values().copied().collect();
        bus.mapped.retain(|a, _| kept.contains(a));
    }

    fn map_persistent(&mut self, d: DomId, refs: &[GrantRef], out: &mut Vec<Option<Kept>>) {
        if !self.device_maps {
            out.extend(refs.iter().map(|_| None));
            return;
        }
        let mut bus = self.bus.borrow_mut();
        bus.keep_calls += 1;
        bus.keep_refs += refs.len();
        for &g in refs {
            // Kept maps are writable: a read-only grant is refused, as Xen refuses it.
            let ok =
                matches!(bus.pages.get(&(d, g)), Some(&(_, false))) && !bus.refuse.contains(&g);
            if !ok {
                out.push(None);
                continue;
            }
            let handle = bus.next as u32;
            let addr = BUS_BASE + bus.next * 4096;
            bus.next += 1;
            bus.mapped.insert(addr, (d, g, false));
            bus.kept.insert(handle, addr);
            out.push(Some(Kept { handle, addr }));
        }
        bus.most_mapped = bus.most_mapped.max(bus.mapped.len());
    }

    fn unmap_persistent(&mut self, kept: &[Kept]) {
        let mut bus = self.bus.borrow_mut();
        bus.unkeep_calls += 1;
        for k in kept {
            assert_eq!(bus.kept.remove(&k.handle), Some(k.addr), "not kept: {k:?}");
            bus.mapped.remove(&k.addr);
        }
    }
}

pub fn seg(gref: GrantRef, first: u8, last: u8) -> BlkifSegment {
    BlkifSegment {
        gref,
        first_sect: first,
        last_sect: last,
        _pad0: [0; 2],
    }
}

pub fn rw(op: BlkifOp, id: u64, sector: u64, segs: &[BlkifSegment]) -> [u8; RING_SLOT_BYTES] {
    let mut r = BlkifRequest::new_zeroed_req();
    r.operation = op as u8;
    r.nr_segments = segs.len() as u8;
    r.handle = 51712;
    r.id = id;
    r.sector_number = sector;
    r.seg[..segs.len()].copy_from_slice(segs);
    let mut b = [0u8; RING_SLOT_BYTES];
    b.copy_from_slice(r.as_bytes());
    b
}

pub fn discard(id: u64, sector: u64, count: u64, flag: u8) -> [u8; RING_SLOT_BYTES] {
    let d = BlkifRequestDiscard {
        operation: BlkifOp::Discard as u8,
        flag,
        handle: 0,
        _pad0: [0; 4],
        id,
        sector_number: sector,
        nr_sectors: count,
    };
    let mut b = [0u8; RING_SLOT_BYTES];
    b[..32].copy_from_slice(d.as_bytes());
    b
}

pub fn indirect(
    op: BlkifOp,
    id: u64,
    sector: u64,
    nsegs: u16,
    grefs: &[GrantRef],
) -> [u8; RING_SLOT_BYTES] {
    let mut r = BlkifRequestIndirect::read_from_bytes(&[0u8; 64]).unwrap();
    r.operation = BlkifOp::Indirect as u8;
    r.indirect_op = op as u8;
    r.nr_segments = nsegs;
    r.id = id;
    r.sector_number = sector;
    r.indirect_grefs[..grefs.len()].copy_from_slice(grefs);
    let mut b = [0u8; RING_SLOT_BYTES];
    b[..64].copy_from_slice(r.as_bytes());
    b
}

trait Zeroed {
    fn new_zeroed_req() -> Self;
}
impl Zeroed for BlkifRequest {
    fn new_zeroed_req() -> Self {
        BlkifRequest::read_from_bytes(&[0u8; RING_SLOT_BYTES]).unwrap()
    }
}

/// The frontend side of a ring.
pub struct Front {
    pub entries: u32,
    pub req_prod_pvt: u32,
    pub rsp_cons: u32,
}

impl Front {
    pub fn new(order: u32) -> Self {
        Self::at(order, 0)
    }
    /// A frontend whose indexes all start at `start` (for wrap tests).
    pub fn at(order: u32, start: u32) -> Self {
        Self {
            entries: ring_entries(order).unwrap(),
            req_prod_pvt: start,
            rsp_cons: start,
        }
    }
    /// Queues a request slot (not yet published).
    pub fn queue(&mut self, ring: &mut FakeRing, slot: &[u8; RING_SLOT_BYTES]) {
        let off = slot_offset(self.entries, self.req_prod_pvt);
        ring.mem[off..off + RING_SLOT_BYTES].copy_from_slice(slot);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
    }
    /// Publishes queued requests.
    pub fn push(&self, ring: &mut FakeRing) {
        ring.store_index(RING_REQ_PROD, self.req_prod_pvt);
    }
    pub fn send(&mut self, ring: &mut FakeRing, slot: &[u8; RING_SLOT_BYTES]) {
        self.queue(ring, slot);
        self.push(ring);
    }
    /// Takes published responses as (id, op, status) and re-arms rsp_event.
    pub fn responses(&mut self, ring: &mut FakeRing) -> Vec<(u64, u8, i16)> {
        let prod = ring.load_index(RING_RSP_PROD);
        let mut out = Vec::new();
        while self.rsp_cons != prod {
            let off = slot_offset(self.entries, self.rsp_cons);
            let (r, _) = BlkifResponse::read_from_prefix(&ring.mem[off..]).unwrap();
            out.push((r.id, r.operation, r.status));
            self.rsp_cons = self.rsp_cons.wrapping_add(1);
        }
        ring.store_index(RING_RSP_EVENT, self.rsp_cons.wrapping_add(1));
        out
    }
}

/// One vbd over one disk, connected to a ring of `1 << order` pages.
pub struct Rig {
    pub table: VbdTable,
    pub id: VbdId,
    pub ring: FakeRing,
    pub front: Front,
    pub disk: FakeDisk,
    pub grants: FakeGrants,
}

impl Rig {
    pub fn new(order: u32, disk: FakeDisk, read_only: bool) -> Self {
        Self::with(order, 0, disk, read_only, Config::default())
    }
    pub fn with(order: u32, start: u32, disk: FakeDisk, read_only: bool, cfg: Config) -> Self {
        let mut table = VbdTable::new(cfg);
        let id = table.add(
            VbdConfig {
                frontend: FRONT,
                devid: 51712,
                disk: 0,
                read_only,
            },
            disk.info,
        );
        let mut ring = FakeRing::new(order);
        for off in [RING_REQ_PROD, RING_RSP_PROD] {
            ring.store_index(off, start);
        }
        ring.store_index(RING_RSP_EVENT, start.wrapping_add(1));
        table.connect(id, order, &mut ring).unwrap();
        // As the shell sizes it: `depth` requests of the largest size.
        let mut disk = disk;
        disk.staging = vec![0; disk.depth * table.max_request_bytes()];
        Self {
            table,
            id,
            ring,
            front: Front::at(order, start),
            disk,
            grants: FakeGrants::default(),
        }
    }
    /// The disk transfers to device addresses and the grants give them (the shell's
    /// direct path).
    pub fn direct(mut self) -> Self {
        self.disk.bus = Some(self.grants.bus.clone());
        self.grants.device_maps = true;
        self
    }
    /// As [`Rig::direct`], with the frontend having negotiated persistent grants through
    /// the handshake.
    pub fn persistent(mut self) -> Self {
        self = self.direct();
        self.table.start(self.id);
        let keys = [
            ("ring-ref", "8"),
            ("event-channel", "5"),
            ("feature-persistent", "1"),
        ];
        let step = self
            .table
            .frontend_changed(self.id, XenbusState::Initialised, |k| {
                keys.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            });
        assert!(step.error.is_none());
        assert!(self.table.get(self.id).unwrap().handshake.persistent());
        self.table.connect(self.id, 0, &mut self.ring).unwrap();
        self
    }
    pub fn poll(&mut self) -> Poll {
        self.table
            .poll(self.id, &mut self.ring, &mut self.disk, &mut self.grants)
    }
    /// Sends one request, polls, and returns its single response status.
    pub fn one(&mut self, slot: &[u8; RING_SLOT_BYTES]) -> (Poll, Vec<(u64, u8, i16)>) {
        self.front.send(&mut self.ring, slot);
        let p = self.poll();
        let r = self.front.responses(&mut self.ring);
        (p, r)
    }
}

pub fn page(fill: u8) -> Vec<u8> {
    (0..4096)
        .map(|i| fill.wrapping_add((i / 512) as u8))
        .collect()
}
