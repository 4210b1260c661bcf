//! The shell's side of the core's [`Io`] trait: a vif's two ring pages mapped by grant,
//! grant copies through the microvisor, and the virtio-net uplink.

use super::conn::Conn;
use alloc::vec::Vec;
use bulkhead_runtime::arch::virtio_net::Net;
use bulkhead_runtime::xen::{self, MappedPage};
use netdom::io::{copy_pieces, CopyPiece, GrantError, Io, Placed, RingMem, Which};
use netdom::VifId;
use protocol::xen::structs::{gntcopy, DomId, GnttabCopy, GnttabCopyPtr, DOMID_SELF};

const PAGE: usize = 4096;

/// One ring page mapped by grant, with the handle to unmap it.
pub struct RingPage {
    page: MappedPage,
    handle: u32,
}

impl RingPage {
    /// Maps grant `gref` of `frontend` at grant-map slot `slot`.
    pub fn map(frontend: DomId, gref: u32, slot: u32) -> Option<Self> {
        xen::grant_map(frontend, gref, slot)
            .ok()
            .map(|(page, handle)| Self { page, handle })
    }

    /// Unmaps the page.
    pub fn unmap(self) {
        let _ = xen::grant_unmap(self.page, self.handle);
    }
}

impl RingMem for RingPage {
    fn load_index(&self, off: usize) -> u32 {
        self.page.load_u32(off)
    }

    fn store_index(&mut self, off: usize, value: u32) {
        self.page.store_u32(off, value)
    }

    fn fence(&self) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    }

    fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        for (i, b) in dst.iter_mut().enumerate() {
            *b = self.page.read_u8(off + i);
        }
    }

    fn write_bytes(&mut self, off: usize, src: &[u8]) {
        for (i, b) in src.iter().enumerate() {
            self.page.write_u8(off + i, *b);
        }
    }
}

/// A vif's TX and RX ring pages.
pub struct Rings {
    pub tx: RingPage,
    pub rx: RingPage,
}

/// Grant copies between frontends' pages and our buffers (`GNTTABOP_copy`, batched).
#[derive(Default)]
pub struct GrantCopier {
    pieces: Vec<CopyPiece>,
    ops: Vec<GnttabCopy>,
}

impl GrantCopier {
    /// Copies `placed` against the local buffer of `len` bytes at `local`, each at its own
    /// offset (our RAM is identity-mapped: VA = IPA, so a local frame is `address / 4096`);
    /// a piece outside the buffer fails the call before anything is copied.
    fn copy_placed(
        &mut self,
        domid: DomId,
        placed: &[Placed],
        (local, len): (usize, usize),
        inbound: bool,
    ) -> Result<(), GrantError> {
        // Checked here because the copy goes through the address, not a slice.
        if placed.iter().any(|p| p.at + usize::from(p.seg.len) > len) {
            return Err(GrantError::Failed);
        }
        self.pieces.clear();
        copy_pieces(placed, local, &mut self.pieces);
        self.run(domid, inbound)
    }

    /// Issues the planned pieces as one `GNTTABOP_copy` batch.
    fn run(&mut self, domid: DomId, inbound: bool) -> Result<(), GrantError> {
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
            let (source, dest, flags) = if inbound {
                (remote, mine, gntcopy::SOURCE_GREF)
            } else {
                (mine, remote, gntcopy::DEST_GREF)
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

/// Everything the core may touch during one call.
pub struct ShellIo<'a> {
    pub conns: &'a mut [Conn],
    pub grants: &'a mut GrantCopier,
    pub nic: Option<&'a mut Net>,
}

impl Io for ShellIo<'_> {
    fn ring(&mut self, id: VifId, which: Which) -> Option<&mut dyn RingMem> {
        let rings = self.conns.get_mut(id.0)?.rings.as_mut()?;
        Some(match which {
            Which::Tx => &mut rings.tx,
            Which::Rx => &mut rings.rx,
        })
    }

    fn copy_in(
        &mut self,
        domid: DomId,
        pieces: &[Placed],
        dst: &mut [u8],
    ) -> Result<(), GrantError> {
        self.grants
            .copy_placed(domid, pieces, (dst.as_mut_ptr() as usize, dst.len()), true)
    }

    fn copy_out(&mut self, domid: DomId, pieces: &[Placed], src: &[u8]) -> Result<(), GrantError> {
        self.grants
            .copy_placed(domid, pieces, (src.as_ptr() as usize, src.len()), false)
    }

    fn uplink_send(&mut self, frame: &[u8]) -> bool {
        self.nic.as_mut().is_some_and(|n| n.send(frame).is_ok())
    }
}
