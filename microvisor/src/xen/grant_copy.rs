//! `GNTTABOP_copy` (v1): copy bytes between two pages, each named by a grant reference or
//! by a frame of the caller's own RAM, with both grants pinned only for the copy.
#![forbid(unsafe_code)]

use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::xen::structs::{
    gntcopy, gntst, DomId, GnttabCopy, GnttabCopyPtr, GrantRef, DOMID_SELF,
};

use super::pin::PinReq;
use super::{resolve, GrantMemory, GrantTables};

/// One side of a copy, resolved.
#[derive(Clone, Copy, Debug)]
enum Side {
    /// Entry `gref` of `dom`'s table, granted to the caller.
    Grant { dom: DomId, gref: GrantRef },
    /// A frame of the caller's own RAM.
    Frame { gfn: u64 },
}

impl GrantTables {
    /// Performs every `GNTTABOP_copy` element of `ops` for `caller`, in order, setting each
    /// one's `status` as [`GrantTables::copy`] does (one failing does not stop the rest).
    /// The glue hands a whole chunk here once it is copied in, so the array is read and
    /// written back once rather than per element.
    pub fn copy_batch(
        &mut self,
        mem: &mut impl GrantMemory,
        caller: DomId,
        ops: &mut [GnttabCopy],
        gfn_to_pa: impl Fn(DomId, u64) -> Option<PhysAddr>,
    ) {
        for op in ops {
            op.status = self.copy(mem, caller, op, &gfn_to_pa);
        }
    }

    /// Performs one `GNTTABOP_copy` element for `caller` and returns its status. A grant
    /// side is pinned like a map (source read-only: `GTF_reading`; destination writable:
    /// `GTF_reading | GTF_writing`, refused on a read-only grant) and unpinned before
    /// returning, so flags the copy set are cleared again unless a mapping also holds them.
    /// `gfn_to_pa` is as for [`GrantTables::map`].
    ///
    /// Statuses, in Xen's order of checks (`len == 0` succeeds at once, as in Xen):
    /// - `GNTST_permission_denied`: a frame side whose `domid` is not `DOMID_SELF` (only the
    ///   caller's own frames may be named directly, and only that way);
    /// - `GNTST_bad_domain`: a grant side's domain is not open;
    /// - the statuses of [`GrantTables::map`] from `GNTST_bad_gntref` on, for each grant
    ///   side (source first); `GNTST_bad_page` for a frame side that is not the caller's RAM;
    /// - `GNTST_bad_copy_arg`: `offset + len` beyond the page on either side.
    pub fn copy(
        &mut self,
        mem: &mut impl GrantMemory,
        caller: DomId,
        op: &GnttabCopy,
        gfn_to_pa: impl Fn(DomId, u64) -> Option<PhysAddr>,
    ) -> i16 {
        if op.len == 0 {
            return gntst::OKAY;
        }
        let sides = self.side(caller, &op.source, op.flags & gntcopy::SOURCE_GREF != 0);
        let sides = sides.and_then(|src| {
            let dst = self.side(caller, &op.dest, op.flags & gntcopy::DEST_GREF != 0)?;
            Ok((src, dst))
        });
        let (src, dst) = match sides {
            Ok(s) => s,
            Err(status) => return status,
        };
        let (src_pa, src_rec) = match self.claim(mem, caller, src, true, &gfn_to_pa) {
            Ok(c) => c,
            Err(status) => return status,
        };
        let (dst_pa, dst_rec) = match self.claim(mem, caller, dst, false, &gfn_to_pa) {
            Ok(c) => c,
            Err(status) => {
                self.release(mem, src, true, src_rec);
                return status;
            }
        };
        let status = copy_bytes(mem, op, src_pa, dst_pa);
        self.release(mem, dst, false, dst_rec);
        self.release(mem, src, true, src_rec);
        status
    }

    fn side(&self, caller: DomId, ptr: &GnttabCopyPtr, is_gref: bool) -> Result<Side, i16> {
        if !is_gref {
            // Xen insists on the literal DOMID_SELF here, even for the caller's own id.
            if ptr.domid != DOMID_SELF {
                return Err(gntst::PERMISSION_DENIED);
            }
            return Ok(Side::Frame { gfn: ptr.u });
        }
        let dom = resolve(caller, ptr.domid);
        if self.table(dom).is_none() {
            return Err(gntst::BAD_DOMAIN);
        }
        Ok(Side::Grant {
            dom,
            gref: ptr.gref(),
        })
    }

    /// The frame behind `side`, pinning it if it is a grant (see [`Table::pin_copy`]), and
    /// whether the pin is recorded.
    fn claim(
        &mut self,
        mem: &mut impl GrantMemory,
        caller: DomId,
        side: Side,
        readonly: bool,
        gfn_to_pa: &impl Fn(DomId, u64) -> Option<PhysAddr>,
    ) -> Result<(PhysAddr, bool), i16> {
        match side {
            Side::Frame { gfn } => gfn_to_pa(caller, gfn)
                .map(|pa| (pa, false))
                .ok_or(gntst::BAD_PAGE),
            Side::Grant { dom, gref } => {
                let req = PinReq {
                    gref,
                    pinner: caller,
                    readonly,
                    map: false,
                };
                self.table_mut(dom)
                    .ok_or(gntst::BAD_DOMAIN)?
                    .pin_copy(mem, req, gfn_to_pa)
            }
        }
    }

    fn release(&mut self, mem: &mut impl GrantMemory, side: Side, readonly: bool, recorded: bool) {
        if let Side::Grant { dom, gref } = side {
            if let Some(t) = self.table_mut(dom) {
                t.unpin_copy(mem, gref, readonly, recorded);
            }
        }
    }
}

/// Bounds-checks and copies.
fn copy_bytes(mem: &mut impl GrantMemory, op: &GnttabCopy, src: PhysAddr, dst: PhysAddr) -> i16 {
    let len = u64::from(op.len);
    let src_off = u64::from(op.source.offset);
    let dst_off = u64::from(op.dest.offset);
    if src_off + len > PAGE_SIZE || dst_off + len > PAGE_SIZE {
        return gntst::BAD_COPY_ARG;
    }
    let (Some(s), Some(d)) = (src.checked_add(src_off), dst.checked_add(dst_off)) else {
        return gntst::GENERAL_ERROR;
    };
    mem.copy(s, d, usize::from(op.len));
    gntst::OKAY
}
