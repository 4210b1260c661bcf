//! The shell's side of the core's three traits: a blkif ring mapped by grant, the virtio-blk
//! disk, and grant copies through the microvisor.

use alloc::vec::Vec;
use blkdom::io::{
    copy_pieces, CopyPiece, Dir, Disk, DiskError, DiskInfo, GrantError, Grants, Placed, RingMem,
    Transfer,
};
use bulkhead_runtime::arch::virtio::{self, Block};
use bulkhead_runtime::xen::{self, MappedPage};
use protocol::xen::structs::{gntcopy, DomId, GnttabCopy, GnttabCopyPtr, DOMID_SELF};

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
}

impl VirtioDisk {
    pub fn new(dev: Block, read_only: bool) -> Self {
        Self {
            dev,
            read_only,
            results: Vec::new(),
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
            discard: None,
        }
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
/// call).
#[derive(Default)]
pub struct GrantCopier {
    pieces: Vec<CopyPiece>,
    ops: Vec<GnttabCopy>,
}

impl Grants for GrantCopier {
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
