//! Test doubles for the grant tests: host-physical memory in a map of pages, with a hook
//! that lets the "granter" change an entry between the microvisor's read and its CAS.

use std::collections::{HashMap, VecDeque};

use protocol::addr::{GuestPhysAddr, PhysAddr, PAGE_SIZE};
use protocol::xen::structs::{
    gntmap, DomId, GnttabMapGrantRef, GnttabUnmapGrantRef, GrantEntryV1, GrantHandle, GrantRef,
};
use protocol::xen::XenErrno;

use super::{GrantMemory, GrantTables, Mapped, Unmapped};

/// What a page nobody wrote reads as, so a missing zeroing shows.
const GARBAGE: u8 = 0xAA;
/// Where the fake frame allocator hands out table frames.
const TABLE_BASE: u64 = 0x8000_0000;
/// RAM of domain `d` starts at `RAM_BASE + d * RAM_STRIDE`; each has `RAM_PAGES` pages.
const RAM_BASE: u64 = 0x1_0000_0000;
const RAM_STRIDE: u64 = 0x100_0000;
/// Pages of RAM each fake domain has (gfns `0..RAM_PAGES`).
pub(super) const RAM_PAGES: u64 = 64;

/// The host frame of `dom`'s RAM page `gfn`, or `None` outside its RAM.
pub(super) fn ram(dom: DomId, gfn: u64) -> Option<PhysAddr> {
    (gfn < RAM_PAGES)
        .then(|| PhysAddr::new(RAM_BASE + u64::from(dom) * RAM_STRIDE + gfn * PAGE_SIZE))
}

#[derive(Default)]
pub(super) struct FakeMem {
    pages: HashMap<u64, Vec<u8>>,
    /// Values the granter writes into the CAS word just before each of the next CASes.
    pub(super) interfere: VecDeque<u32>,
    /// For this many upcoming CASes, the granter flips `GTF_PWT` of the CASed word first.
    pub(super) flip_pwt: usize,
    /// CASes attempted so far.
    pub(super) cas_calls: usize,
}

impl FakeMem {
    pub(super) fn read(&self, pa: PhysAddr, len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| {
                let a = pa.as_u64() + i;
                let page = self.pages.get(&(a & !(PAGE_SIZE - 1)));
                page.map_or(GARBAGE, |p| p[(a % PAGE_SIZE) as usize])
            })
            .collect()
    }

    pub(super) fn write(&mut self, pa: PhysAddr, bytes: &[u8]) {
        for (i, b) in (0u64..).zip(bytes) {
            let a = pa.as_u64() + i;
            let page = self
                .pages
                .entry(a & !(PAGE_SIZE - 1))
                .or_insert_with(|| vec![GARBAGE; PAGE_SIZE as usize]);
            page[(a % PAGE_SIZE) as usize] = *b;
        }
    }

    fn entry_pa(frame: PhysAddr, index: usize) -> PhysAddr {
        assert!(index < 512, "entry index {index} out of frame");
        PhysAddr::new(frame.as_u64() + index as u64 * 8)
    }

    fn word(&self, frame: PhysAddr, index: usize) -> u32 {
        let b = self.read(Self::entry_pa(frame, index), 4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn set_word(&mut self, frame: PhysAddr, index: usize, w: u32) {
        self.write(Self::entry_pa(frame, index), &w.to_le_bytes());
    }
}

impl GrantMemory for FakeMem {
    fn read_entry(&self, frame: PhysAddr, index: usize) -> GrantEntryV1 {
        let b = self.read(Self::entry_pa(frame, index), 8);
        GrantEntryV1 {
            flags: u16::from_le_bytes([b[0], b[1]]),
            domid: u16::from_le_bytes([b[2], b[3]]),
            frame: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    fn cas_flags_domid(&mut self, frame: PhysAddr, index: usize, old: u32, new: u32) -> u32 {
        self.cas_calls += 1;
        if let Some(v) = self.interfere.pop_front() {
            self.set_word(frame, index, v);
        } else if self.flip_pwt > 0 {
            self.flip_pwt -= 1;
            let w = self.word(frame, index);
            self.set_word(frame, index, w ^ u32::from(super::gtf::PWT));
        }
        let found = self.word(frame, index);
        if found == old {
            self.set_word(frame, index, new);
        }
        found
    }

    fn clear_flags(&mut self, frame: PhysAddr, index: usize, bits: u16) {
        let w = self.word(frame, index);
        self.set_word(frame, index, w & !u32::from(bits));
    }

    fn write_entry(&mut self, frame: PhysAddr, index: usize, e: GrantEntryV1) {
        let mut b = Vec::with_capacity(8);
        b.extend_from_slice(&e.flags.to_le_bytes());
        b.extend_from_slice(&e.domid.to_le_bytes());
        b.extend_from_slice(&e.frame.to_le_bytes());
        self.write(Self::entry_pa(frame, index), &b);
    }

    fn copy(&mut self, src: PhysAddr, dst: PhysAddr, len: usize) {
        assert!(
            src.page_offset() + len as u64 <= PAGE_SIZE,
            "source crosses a page"
        );
        assert!(
            dst.page_offset() + len as u64 <= PAGE_SIZE,
            "dest crosses a page"
        );
        let bytes = self.read(src, len);
        self.write(dst, &bytes);
    }
}

/// Grant tables plus fake memory, with guest-side helpers.
pub(super) struct Env {
    pub(super) gt: GrantTables,
    pub(super) mem: FakeMem,
    next_frame: u64,
}

impl Env {
    /// Domains `doms` open with up to 4 table frames (frame 0 present) and 8 maptrack
    /// handles each.
    pub(super) fn new(doms: &[DomId]) -> Self {
        let mut env = Self {
            gt: GrantTables::new(8),
            mem: FakeMem::default(),
            next_frame: TABLE_BASE,
        };
        for &d in doms {
            env.gt.open_domain(d, 4, 8).unwrap();
            env.grow(d, 0).unwrap();
        }
        env
    }

    pub(super) fn grow(&mut self, dom: DomId, idx: u32) -> Result<PhysAddr, XenErrno> {
        let next = &mut self.next_frame;
        self.gt.frame(&mut self.mem, dom, idx, || {
            let pa = PhysAddr::new(*next);
            *next += PAGE_SIZE;
            Some(pa)
        })
    }

    fn locate(&self, dom: DomId, gref: GrantRef) -> (PhysAddr, usize) {
        self.gt.table(dom).unwrap().locate(gref).unwrap()
    }

    /// The granting guest writes entry `gref` (as Linux does: whole entry, flags last).
    pub(super) fn set(&mut self, granter: DomId, gref: GrantRef, e: GrantEntryV1) {
        let (f, i) = self.locate(granter, gref);
        self.mem.write_entry(f, i, e);
    }

    /// The granter grants `gfn` to `grantee`.
    pub(super) fn grant(
        &mut self,
        granter: DomId,
        gref: GrantRef,
        grantee: DomId,
        gfn: u32,
        ro: bool,
    ) {
        let ro = if ro { super::gtf::READONLY } else { 0 };
        let e = GrantEntryV1 {
            flags: super::gtf::PERMIT_ACCESS | ro,
            domid: grantee,
            frame: gfn,
        };
        self.set(granter, gref, e);
    }

    pub(super) fn entry(&self, granter: DomId, gref: GrantRef) -> GrantEntryV1 {
        let (f, i) = self.locate(granter, gref);
        self.mem.read_entry(f, i)
    }

    pub(super) fn flags(&self, granter: DomId, gref: GrantRef) -> u16 {
        self.entry(granter, gref).flags
    }

    /// The granter writes its CAS word (`flags | domid << 16`) between our read and CAS.
    pub(super) fn word(flags: u16, domid: DomId) -> u32 {
        u32::from(flags) | (u32::from(domid) << 16)
    }

    pub(super) fn map_flags(
        &mut self,
        mapper: DomId,
        granter: DomId,
        gref: GrantRef,
        flags: u32,
        host: u64,
    ) -> Result<Mapped, i16> {
        let op = GnttabMapGrantRef {
            host_addr: host,
            flags,
            gref,
            dom: granter,
            status: 0,
            handle: 0,
            dev_bus_addr: 0,
        };
        self.gt.map(&mut self.mem, mapper, &op, ram)
    }

    pub(super) fn map(
        &mut self,
        mapper: DomId,
        granter: DomId,
        gref: GrantRef,
        ro: bool,
        host: u64,
    ) -> Result<Mapped, i16> {
        let ro = if ro { gntmap::READONLY } else { 0 };
        self.map_flags(mapper, granter, gref, gntmap::HOST_MAP | ro, host)
    }

    pub(super) fn unmap(
        &mut self,
        mapper: DomId,
        handle: GrantHandle,
        host: u64,
    ) -> Result<Unmapped, i16> {
        let op = GnttabUnmapGrantRef {
            host_addr: host,
            dev_bus_addr: 0,
            handle,
            status: 0,
            _pad0: 0,
        };
        self.gt.unmap(&mut self.mem, mapper, &op)
    }
}

/// The page address a test maps at.
pub(super) fn host(n: u64) -> GuestPhysAddr {
    GuestPhysAddr::new(0x3800_0000 + n * PAGE_SIZE)
}
