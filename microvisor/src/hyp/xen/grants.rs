//! `grant_table_op`: v1 grant tables. Entry validation, pinning and the maptrack live in
//! [`crate::xen::GrantTables`]; here argument arrays are copied, and granted frames are put
//! into (and taken out of) the mapper's stage 2.

use super::bits::HostGrants;
use super::XenResult;
use crate::hyp::domain::Domain;
use crate::hyp::Hyp;
use crate::mm::pagetable::{Attrs, MemType};
use alloc::boxed::Box;
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::ids::DomainId;
use protocol::xen::structs::{
    gntst, GnttabCopy, GnttabMapGrantRef, GnttabQuerySize, GnttabSetVersion, GnttabUnmapGrantRef,
};
use protocol::xen::{GnttabOp, XenErrno};

/// Most operations one `grant_table_op` call may carry (Xen would use a continuation).
const MAX_BATCH: u64 = 256;

/// Host-physical page of guest frame `gfn` of a live domain ([`Domain::own_page`]).
fn gfn_to_pa(domains: &[Option<Box<Domain>>], dom: u16, gfn: u64) -> Option<PhysAddr> {
    let d = domains.get(usize::from(dom))?.as_deref()?;
    if d.dying {
        return None;
    }
    d.own_page(gfn.checked_mul(PAGE_SIZE)?)
}

impl Hyp {
    /// Grant-table frame `idx` of domain `id`, allocating it (and any below) if needed,
    /// charged to the domain's Xen frame budget (`ENOMEM` once that is spent).
    pub(super) fn grant_frame(&mut self, id: DomainId, idx: u32) -> Result<PhysAddr, XenErrno> {
        let d = self
            .domains
            .get_mut(usize::from(id.0))
            .and_then(|d| d.as_deref_mut())
            .ok_or(XenErrno::ESRCH)?;
        let (frames, budget) = (&mut self.frames, &mut d.xen_frames);
        self.grants
            .frame(&mut HostGrants, id.0, idx, || budget.alloc(frames, 1))
    }

    /// `grant_table_op(cmd, uop, count)`.
    pub(super) fn xen_grant_op(&mut self, id: DomainId, a: [u64; 5]) -> XenResult {
        let op = u32::try_from(a[0])
            .ok()
            .and_then(|c| GnttabOp::try_from(c).ok());
        let (uop, count) = (a[1], a[2]);
        if count > MAX_BATCH {
            return Err(XenErrno::EINVAL);
        }
        match op {
            Some(GnttabOp::QuerySize) => {
                let mut q: GnttabQuerySize = self.read_arg(id, uop)?;
                match self.grants.query_size(id.0, q.dom, id == DomainId::DOM0) {
                    Ok(s) => {
                        q.nr_frames = s.nr_frames;
                        q.max_nr_frames = s.max_frames;
                        q.status = gntst::OKAY;
                    }
                    Err(status) => q.status = status,
                }
                self.write_arg(id, uop, &q)
            }
            Some(GnttabOp::SetVersion) => {
                let mut v: GnttabSetVersion = self.read_arg(id, uop)?;
                let asked = v.version;
                v.version = 1;
                self.write_arg(id, uop, &v)?;
                // Only version 1 exists here; asking for it again is fine.
                if asked == 1 {
                    Ok(0)
                } else {
                    Err(XenErrno::EINVAL)
                }
            }
            Some(GnttabOp::MapGrantRef) => {
                for i in 0..count {
                    let va = uop + i * core::mem::size_of::<GnttabMapGrantRef>() as u64;
                    let mut m: GnttabMapGrantRef = self.read_arg(id, va)?;
                    self.map_one(id, &mut m);
                    self.write_arg(id, va, &m)?;
                }
                Ok(0)
            }
            Some(GnttabOp::UnmapGrantRef) => {
                for i in 0..count {
                    let va = uop + i * core::mem::size_of::<GnttabUnmapGrantRef>() as u64;
                    let mut u: GnttabUnmapGrantRef = self.read_arg(id, va)?;
                    u.status = match self.grants.unmap(&mut HostGrants, id.0, &u) {
                        Ok(done) => {
                            if !done.revoked {
                                self.unmap_page(id, done.host_addr.as_u64());
                            }
                            gntst::OKAY
                        }
                        Err(status) => status,
                    };
                    self.write_arg(id, va, &u)?;
                }
                Ok(0)
            }
            Some(GnttabOp::Copy) => {
                for i in 0..count {
                    let va = uop + i * core::mem::size_of::<GnttabCopy>() as u64;
                    let mut c: GnttabCopy = self.read_arg(id, va)?;
                    let domains = &self.domains;
                    c.status = self.grants.copy(&mut HostGrants, id.0, &c, |dom, gfn| {
                        gfn_to_pa(domains, dom, gfn)
                    });
                    self.write_arg(id, va, &c)?;
                }
                Ok(0)
            }
            None => Err(XenErrno::ENOSYS),
        }
    }

    /// One `GNTTABOP_map_grant_ref`: pin and validate in the core, then map in stage 2.
    fn map_one(&mut self, id: DomainId, m: &mut GnttabMapGrantRef) {
        m.dev_bus_addr = 0; // never reveal host-physical addresses
        let domains = &self.domains;
        let mapped = match self.grants.map(&mut HostGrants, id.0, m, |dom, gfn| {
            gfn_to_pa(domains, dom, gfn)
        }) {
            Ok(mapped) => mapped,
            Err(status) => {
                m.status = status;
                return;
            }
        };
        let attrs = Attrs {
            mem: MemType::Normal,
            read: true,
            write: !mapped.readonly,
            exec: false,
        };
        let gpa = mapped.host_addr.as_u64();
        let ok = self.stage2_mut(id).is_some_and(|(s2, mut tables)| {
            s2.map(&mut tables, gpa, mapped.frame_pa, PAGE_SIZE, attrs)
                .is_ok()
        });
        if ok {
            m.handle = mapped.handle;
            m.status = gntst::OKAY;
        } else {
            // The address is taken (RAM, another mapping) or out of range: undo the pin.
            let undo = GnttabUnmapGrantRef {
                host_addr: gpa,
                dev_bus_addr: 0,
                handle: mapped.handle,
                status: 0,
                _pad0: 0,
            };
            let _ = self.grants.unmap(&mut HostGrants, id.0, &undo);
            m.status = gntst::GENERAL_ERROR;
        }
    }
}
