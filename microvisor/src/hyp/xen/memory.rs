//! `memory_op`: `XENMEM_add_to_physmap` for the shared_info page and grant-table frames,
//! and the stage-2 edits behind it.

use super::guest::Loaded;
use super::{resolve_domid, XenResult};
use crate::guestcopy;
use crate::hyp::Hyp;
use crate::mm::pagetable::{Attrs, MemType, TableMemory};
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::ids::DomainId;
use protocol::layout::GUEST_GNTTAB_BASE;
use protocol::xen::structs::XenAddToPhysmap;
use protocol::xen::{MapSpace, MemoryOp, XenErrno, XENMAPIDX_GRANT_TABLE_STATUS};

/// Size of the grant-table window (Xen's GUEST_GNTTAB_SIZE).
pub const GNTTAB_WINDOW: u64 = 0x0100_0000;
/// `memory_op`'s command lives in the low bits; the rest is a continuation start extent.
const MEMOP_CMD_MASK: u64 = 0x3f;

/// Normal memory, read-write, never executable: shared pages are data.
const DATA: Attrs = Attrs {
    mem: MemType::Normal,
    read: true,
    write: true,
    exec: false,
};

impl Hyp {
    /// `memory_op(cmd, arg)`.
    pub(super) fn xen_memory_op(&mut self, id: DomainId, a: [u64; 5]) -> XenResult {
        match MemoryOp::from_reg(a[0] & MEMOP_CMD_MASK) {
            Some(MemoryOp::AddToPhysmap) => {}
            None => return Err(XenErrno::ENOSYS),
        }
        let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
        let xatp: XenAddToPhysmap =
            guestcopy::read_struct(&mut Loaded(d), a[1]).map_err(|_| XenErrno::EFAULT)?;
        let target = resolve_domid(id, xatp.domid, false)?;
        match MapSpace::try_from(xatp.space) {
            Ok(MapSpace::SharedInfo) if xatp.idx == 0 => self.map_shared_info(target, xatp.gpfn),
            Ok(MapSpace::GrantTable) if xatp.idx & XENMAPIDX_GRANT_TABLE_STATUS == 0 => {
                let idx = u32::try_from(xatp.idx).map_err(|_| XenErrno::EINVAL)?;
                self.map_grant_frame(target, idx, xatp.gpfn)
            }
            _ => Err(XenErrno::EINVAL),
        }?;
        Ok(0)
    }

    /// Puts the domain's shared_info frame at guest frame `gfn` (inside its RAM, replacing
    /// that RAM page, as Xen does). A previous placement gets its RAM page back.
    fn map_shared_info(&mut self, id: DomainId, gfn: u64) -> Result<(), XenErrno> {
        let gpa = gfn.checked_mul(PAGE_SIZE).ok_or(XenErrno::EINVAL)?;
        let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
        d.ram_to_phys(gpa, PAGE_SIZE)
            .map_err(|_| XenErrno::EINVAL)?;
        // A block scrubbed on first touch is mapped whole first, so the page replaced
        // below is cut out of a mapped block as for any other domain.
        if !self.lazy_materialize(id, gpa) {
            return Err(XenErrno::ENOMEM);
        }
        let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
        let frame = d.xen.shared_info.ok_or(XenErrno::EINVAL)?;
        if let Some(old) = d.xen.shared_info_gfn {
            if old == gfn {
                return Ok(());
            }
            let old_gpa = old * PAGE_SIZE;
            let ram = d
                .ram_to_phys(old_gpa, PAGE_SIZE)
                .map_err(|_| XenErrno::EINVAL)?;
            self.remap_page(id, old_gpa, ram)?;
        }
        self.remap_page(id, gpa, frame)?;
        let d = self.domain_mut(id).ok_or(XenErrno::ESRCH)?;
        d.xen.shared_info_gfn = Some(gfn);
        if let Some(pages) = super::event_state::lock()
            .get()
            .and_then(|ev| ev.domain_mut(id))
        {
            pages.shared_gfn = Some(gfn);
            // vCPU 0's vcpu_info defaults to the slot inside shared_info.
            if pages.vcpu_info[0].is_none() {
                pages.vcpu_info[0] = super::vcpu_info_window(frame);
            }
        }
        if let Some(d) = self.domain(id) {
            super::grant_state::with_grants(|g| g.mirror(d));
        }
        Ok(())
    }

    /// Maps grant-table frame `idx` of domain `id` at guest frame `gfn` (inside the grant
    /// window), growing the table if needed and moving the frame if it was mapped elsewhere.
    fn map_grant_frame(&mut self, id: DomainId, idx: u32, gfn: u64) -> Result<(), XenErrno> {
        let gpa = gfn.checked_mul(PAGE_SIZE).ok_or(XenErrno::EINVAL)?;
        let base = GUEST_GNTTAB_BASE.as_u64();
        if gpa < base || gpa >= base + GNTTAB_WINDOW {
            return Err(XenErrno::EINVAL);
        }
        let frame = self.grant_frame(id, idx)?;
        let d = self.domain_mut(id).ok_or(XenErrno::ESRCH)?;
        // Whatever sat at `gfn`, and wherever `idx` sat before, goes away.
        let stale: alloc::vec::Vec<u64> = d
            .xen
            .grant_gfns
            .iter()
            .filter(|&&(i, g)| i == idx || g == gfn)
            .map(|&(_, g)| g)
            .collect();
        d.xen.grant_gfns.retain(|&(i, g)| i != idx && g != gfn);
        for g in stale {
            self.unmap_page(id, g * PAGE_SIZE);
        }
        self.remap_page(id, gpa, frame)?;
        let d = self.domain_mut(id).ok_or(XenErrno::ESRCH)?;
        d.xen.grant_gfns.push((idx, gfn));
        Ok(())
    }

    /// Maps one data page at `gpa` of domain `id`'s stage 2, replacing what was there (a
    /// 2 MiB block is split), and drops stale translations.
    pub fn remap_page(&mut self, id: DomainId, gpa: u64, pa: PhysAddr) -> Result<(), XenErrno> {
        let (stage2, mut tables) = self.stage2_mut(id).ok_or(XenErrno::ESRCH)?;
        // Unmapping a hole is fine; anything else (no table memory) fails the call.
        match stage2.unmap(&mut tables, gpa, PAGE_SIZE) {
            Ok(()) | Err(crate::mm::pagetable::MapError::NotMapped) => {}
            Err(_) => return Err(XenErrno::ENOMEM),
        }
        // Break-before-make (F15): the old entry is invalid; drop it from every TLB (this
        // domain's VMID only) before the new one goes in.
        tables.flush_tlb();
        stage2
            .map(&mut tables, gpa, pa, PAGE_SIZE, DATA)
            .map_err(|_| XenErrno::ENOMEM)?;
        tables.flush_tlb();
        Ok(())
    }

    /// Unmaps one page of domain `id`'s stage 2 (nothing if it was not mapped).
    pub fn unmap_page(&mut self, id: DomainId, gpa: u64) {
        if let Some((stage2, mut tables)) = self.stage2_mut(id) {
            let _ = stage2.unmap(&mut tables, gpa, PAGE_SIZE);
            tables.flush_tlb();
        }
    }
}
