//! The shell's side of the core's three traits: a blkif ring mapped by grant, the virtio-blk
//! disk, and grant copies and device maps through the microvisor.

use alloc::vec::Vec;
use blkdom::io::{
    copy_pieces, CopyPiece, Dir, DiscardInfo, Disk, DiskError, DiskInfo, DmaSeg, GrantError,
    Grants, Kept, Placed, RingMem, Transfer,
};
use bulkhead_runtime::arch::virtio::{self, Block};
use bulkhead_runtime::xen::{self, MappedPage};
use protocol::xen::structs::{
    gntcopy, gntmap, gntst, DomId, GnttabCopy, GnttabCopyPtr, GnttabMapGrantRef,
    GnttabUnmapGrantRef, GrantRef, DOMID_SELF,
};

const PAGE: usize = 4096;

/// The pages of one ring, mapped by grant at consecutive grant-map slots.
pub struct MappedRing {
    /// The pages in ring order, with their unmap handles.
    pub pages: Vec<(MappedPage, u32)>,
}

impl MappedRing {
    fn page(&self, off: usize) -> (&MappedPage, usize) {
        (&self.pages[off / PAGE].0, off % PAGE)
    }

    /// Unmaps every page.
    pub fn unmap(self) {
        for (page, handle) in self.pages {
            let _ = xen::grant_unmap(page, handle);
        }
    }
}

impl RingMem for MappedRing {
    fn load_index(&self, off: usize) -> u32 {
        let (p, o) = self.page(off);
        p.load_u32(o)
    }

    fn store_index(&mut self, off: usize, value: u32) {
        let (p, o) = self.page(off);
        p.store_u32(o, value)
    }

    fn fence(&self) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    }

    fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        let (p, o) = self.page(off);
        for (i, b) in dst.iter_mut().enumerate() {
            *b = p.read_u8(o + i);
        }
    }

    fn write_bytes(&mut self, off: usize, src: &[u8]) {
        let (p, o) = self.page(off);
        for (i, b) in src.iter().enumerate() {
            p.write_u8(o + i, *b);
        }
    }
}

/// A virtio-blk disk as the core sees it.
pub struct VirtioDisk {
    pub dev: Block,
    pub read_only: bool,
    /// The runtime's results, before they become the core's.
    results: Vec<Result<(), virtio::DeviceError>>,
    /// One direct transfer's segments, in the runtime's type.
    segs: Vec<virtio::DmaSeg>,
}

impl VirtioDisk {
    pub fn new(dev: Block, read_only: bool) -> Self {
        Self {
            dev,
            read_only,
            results: Vec::new(),
            segs: Vec::new(),
        }
    }
}

impl Disk for VirtioDisk {
    fn info(&self) -> DiskInfo {
        DiskInfo {
            sectors: self.dev.capacity(),
            sector_size: 512,
            physical_sector_size: 512,
            read_only: self.read_only || self.dev.readonly(),
            flush: true,
            discard: self.dev.discard_limits().map(|l| DiscardInfo {
                granularity: l.alignment_sectors.saturating_mul(512),
                alignment: 0,
                secure: false,
            }),
        }
    }

    fn direct_segments(&self) -> usize {
        self.dev.direct_segments()
    }

    fn start_direct(&mut self, write: bool, sector: u64, segs: &[DmaSeg]) -> Result<(), DiskError> {
        self.segs.clear();
        self.segs.extend(segs.iter().map(|s| virtio::DmaSeg {
            addr: s.addr,
            len: s.len,
        }));
        self.dev
            .start_direct(write, sector, &self.segs)
            .map_err(|_| DiskError::Io)
    }

    fn discard(&mut self, sector: u64, count: u64, secure: bool) -> Result<(), DiskError> {
        if secure {
            // We never advertise discard-secure; a frontend that asks anyway is refused.
            return Err(DiskError::Unsupported);
        }
        self.dev.discard(sector, count).map_err(|_| DiskError::Io)
    }

    fn depth(&self) -> usize {
        virtio::BLOCK_DEPTH
    }

    fn staging(&mut self) -> &mut [u8] {
        self.dev.staging()
    }

    fn start(&mut self, t: Transfer) -> Result<(), DiskError> {
        self.dev
            .start(t.write, t.sector, t.at, t.len)
            .map_err(|_| DiskError::Io)
    }

    fn finish(&mut self, results: &mut Vec<Result<(), DiskError>>) {
        self.results.clear();
        self.dev.finish(&mut self.results);
        results.extend(self.results.drain(..).map(|r| r.map_err(|_| DiskError::Io)));
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        self.dev.flush().map_err(|_| DiskError::Io)
    }
}

/// Grant copies between frontends' pages and our buffers (`GNTTABOP_copy`, one batch per
/// call), and device maps of frontends' pages (`GNTTABOP_map_grant_ref` with
/// `GNTMAP_device_map` only: the microvisor gives the frame's device address, pins the
/// grant, and maps nothing into our address space).
#[derive(Default)]
pub struct GrantCopier {
    pieces: Vec<CopyPiece>,
    ops: Vec<GnttabCopy>,
    maps: Vec<GnttabMapGrantRef>,
    /// A device map was ever granted (said once, so a log shows which path data takes).
    granted: bool,
    /// Device maps made since the last unmap: (handle, device address).
    held: Vec<(u32, u64)>,
    unmaps: Vec<GnttabUnmapGrantRef>,
}

impl Grants for GrantCopier {
    fn map_for_device(
        &mut self,
        domid: DomId,
        refs: &[(GrantRef, bool)],
        addrs: &mut Vec<Option<u64>>,
    ) {
        // Every batch asks: refusals cannot be told apart from a frontend's bad grants, and
        // one frontend must not be able to switch the direct path off for the others.
        self.maps.clear();
        self.maps.extend(
            refs.iter()
                .map(|&(gref, readonly)| device_map_op(domid, gref, readonly)),
        );
        if xen::grant_map_batch(&mut self.maps).is_err() {
            addrs.extend(refs.iter().map(|_| None));
            return;
        }
        for m in &self.maps {
            if m.status == gntst::OKAY && m.dev_bus_addr != 0 {
                say_granted(&mut self.granted);
                self.held.push((m.handle, m.dev_bus_addr));
                addrs.push(Some(m.dev_bus_addr));
            } else {
                if m.status == gntst::OKAY {
                    // Mapped but no address: undo it with the others.
                    self.held.push((m.handle, 0));
                }
                addrs.push(None);
            }
        }
    }
    fn unmap_for_device(&mut self) {
        self.unmaps.clear();
        self.unmaps.extend(
            self.held
                .drain(..)
                .map(|(handle, bus)| unmap_op(handle, bus)),
        );
        if xen::grant_unmap_batch(&mut self.unmaps).is_err() {
            bulkhead_runtime::println!("grant unmap batch failed");
        }
    }

    fn map_persistent(&mut self, domid: DomId, refs: &[GrantRef], kept: &mut Vec<Option<Kept>>) {
        self.maps.clear();
        self.maps
            .extend(refs.iter().map(|&gref| device_map_op(domid, gref, false)));
        if xen::grant_map_batch(&mut self.maps).is_err() {
            kept.extend(refs.iter().map(|_| None));
            return;
        }
        self.unmaps.clear();
        let mut granted = false;
        for m in &self.maps {
            match (m.status, m.dev_bus_addr) {
                (gntst::OKAY, 0) => {
                    // Mapped but no address: of no use, undone at once.
                    self.unmaps.push(unmap_op(m.handle, 0));
                    kept.push(None);
                }
                (gntst::OKAY, addr) => {
                    granted = true;
                    kept.push(Some(Kept {
                        handle: m.handle,
                        addr,
                    }));
                }
                _ => kept.push(None),
            }
        }
        if !self.unmaps.is_empty() && xen::grant_unmap_batch(&mut self.unmaps).is_err() {
            bulkhead_runtime::println!("grant unmap batch failed");
        }
        if granted {
            say_granted(&mut self.granted);
        }
    }

    fn unmap_persistent(&mut self, kept: &[Kept]) {
        self.unmaps.clear();
        self.unmaps
            .extend(kept.iter().map(|k| unmap_op(k.handle, k.addr)));
        if xen::grant_unmap_batch(&mut self.unmaps).is_err() {
            bulkhead_runtime::println!("grant unmap batch failed");
        }
    }

    /// Our RAM is identity-mapped (VA = IPA), so a local frame is `address / 4096`.
    fn copy(
        &mut self,
        domid: DomId,
        dir: Dir,
        pieces: &[Placed],
        buf: &mut [u8],
    ) -> Result<(), GrantError> {
        self.pieces.clear();
        copy_pieces(pieces, buf.as_mut_ptr() as usize, &mut self.pieces);
        self.ops.clear();
        for p in &self.pieces {
            let remote = GnttabCopyPtr {
                u: u64::from(p.gref),
                domid,
                offset: p.remote_offset,
                _pad0: 0,
            };
            let mine = GnttabCopyPtr {
                u: (p.local / PAGE) as u64,
                domid: DOMID_SELF,
                offset: (p.local % PAGE) as u16,
                _pad0: 0,
            };
            let (source, dest, flags) = match dir {
                Dir::In => (remote, mine, gntcopy::SOURCE_GREF),
                Dir::Out => (mine, remote, gntcopy::DEST_GREF),
            };
            self.ops.push(GnttabCopy {
                source,
                dest,
                len: p.len,
                flags,
                status: 0,
                _pad0: 0,
            });
        }
        xen::grant_copy(&mut self.ops).map_err(|_| GrantError::Failed)?;
        match self
            .ops
            .iter()
            .find_map(|op| GrantError::from_gntst(op.status))
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The unmap of device map `handle` of the page at device address `bus` (0: not checked).
fn unmap_op(handle: u32, bus: u64) -> GnttabUnmapGrantRef {
    GnttabUnmapGrantRef {
        host_addr: 0,
        dev_bus_addr: bus,
        handle,
        status: 0,
        _pad0: 0,
    }
}

/// Says once (per `said`) that device maps are granted, so a log shows which path data
/// takes.
fn say_granted(said: &mut bool) {
    if !*said {
        *said = true;
        bulkhead_runtime::println!("device maps granted: data moves zero-copy");
    }
}

/// A `GNTTABOP_map_grant_ref` operation asking for a device mapping (`dev_bus_addr`, for
/// the disk's DMA) of `gref` granted by `domid`, read-only if `readonly`.
fn device_map_op(domid: DomId, gref: GrantRef, readonly: bool) -> GnttabMapGrantRef {
    GnttabMapGrantRef {
        host_addr: 0,
        flags: gntmap::DEVICE_MAP | if readonly { gntmap::READONLY } else { 0 },
        gref,
        dom: domid,
        status: 0,
        handle: 0,
        dev_bus_addr: 0,
    }
}
