//! `GNTTABOP_map_grant_ref` and `GNTTABOP_unmap_grant_ref` (v1, Arm: host mappings only).
#![forbid(unsafe_code)]

use protocol::addr::{GuestPhysAddr, PhysAddr, PAGE_SIZE};
use protocol::xen::structs::{
    gntmap, gntst, DomId, GnttabMapGrantRef, GnttabUnmapGrantRef, GrantRef,
};

use super::pin::{Mapping, PinReq, Slot};
use super::{GrantMemory, GrantTables, Mapped, Unmapped};

impl GrantTables {
    /// Maps grant `op.gref` of domain `op.dom` for `mapper`: pins the entry (setting
    /// `GTF_reading`, and `GTF_writing` unless `GNTMAP_readonly`) and records the mapping
    /// under a new handle. `gfn_to_pa(dom, gfn)` gives the host frame of a RAM page of `dom`
    /// (`None` for anything else: MMIO, grant or foreign mappings, holes). The glue then
    /// installs [`Mapped`] in the mapper's stage 2.
    ///
    /// Statuses, in Xen's order of checks:
    /// - `GNTST_bad_gntref`: neither `GNTMAP_host_map` nor `GNTMAP_device_map`;
    /// - `GNTST_general_error`: device, application or PTE maps, or any flag but
    ///   `host_map | readonly` (Xen on Arm refuses them too);
    /// - `GNTST_bad_domain`: `op.dom` is not open (`DOMID_SELF` included, as in Xen);
    /// - `GNTST_no_space`: the mapper's maptrack is full;
    /// - `GNTST_bad_gntref`: `op.gref` is beyond the granter's table;
    /// - `GNTST_general_error`: the entry is not a permit-access grant to `mapper`, is
    ///   pinned by another domain, is read-only for a writable map (Xen uses this status,
    ///   not `permission_denied`), or kept changing under the compare-and-swap;
    /// - `GNTST_bad_page`: the granted frame is not RAM of the granter.
    pub fn map(
        &mut self,
        mem: &mut impl GrantMemory,
        mapper: DomId,
        op: &GnttabMapGrantRef,
        gfn_to_pa: impl Fn(DomId, u64) -> Option<PhysAddr>,
    ) -> Result<Mapped, i16> {
        if op.flags & (gntmap::HOST_MAP | gntmap::DEVICE_MAP) == 0 {
            return Err(gntst::BAD_GNTREF);
        }
        if op.flags & !(gntmap::HOST_MAP | gntmap::READONLY) != 0 {
            return Err(gntst::GENERAL_ERROR);
        }
        let readonly = op.flags & gntmap::READONLY != 0;
        if self.table(op.dom).is_none() {
            return Err(gntst::BAD_DOMAIN);
        }
        let handle = self
            .table_mut(mapper)
            .ok_or(gntst::GENERAL_ERROR)?
            .maptrack
            .take()
            .ok_or(gntst::NO_SPACE)?;
        let req = PinReq {
            gref: op.gref,
            pinner: mapper,
            readonly,
            map: true,
        };
        let pinned = match self.table_mut(op.dom) {
            Some(granter) => granter.pin(mem, req, &gfn_to_pa),
            None => Err(gntst::BAD_DOMAIN),
        };
        let Some(mt) = self.table_mut(mapper).map(|t| &mut t.maptrack) else {
            return Err(gntst::GENERAL_ERROR);
        };
        let frame_pa = match pinned {
            Ok(pa) => pa,
            Err(status) => {
                mt.put(handle);
                return Err(status);
            }
        };
        let host_addr = GuestPhysAddr::new(op.host_addr).align_down(PAGE_SIZE);
        mt.fill(
            handle,
            Mapping {
                granter: op.dom,
                gref: op.gref,
                host_addr,
                frame_pa,
                readonly,
            },
        );
        Ok(Mapped {
            handle,
            host_addr,
            frame_pa,
            readonly,
        })
    }

    /// Unmaps `op.handle` of `mapper`, which must be mapped at `op.host_addr` (compared by
    /// page), dropping its pin. Also undoes a [`GrantTables::map`] whose stage-2 step failed
    /// (nothing was installed, so no invalidation stands between the two halves).
    ///
    /// Statuses: `GNTST_bad_handle` no such handle or nothing mapped under it;
    /// `GNTST_general_error` mapped at another page (what Xen on Arm reports when the
    /// address does not hold the mapping; nothing changes).
    pub fn unmap(
        &mut self,
        mem: &mut impl GrantMemory,
        mapper: DomId,
        op: &GnttabUnmapGrantRef,
    ) -> Result<Unmapped, i16> {
        let (done, unpin) = self.unmap_keep_pin(mapper, op)?;
        if let Some(u) = unpin {
            self.release_pin(mem, u);
        }
        Ok(done)
    }

    /// The first half of [`GrantTables::unmap`]: frees the handle (a second unmap of it is
    /// `GNTST_bad_handle`) but leaves the granter's pin, and so its `GTF_reading` /
    /// `GTF_writing`, in place. The caller removes the stage-2 page, invalidates the
    /// mapper's TLBs, and only then calls [`GrantTables::release_pin`]: until the pin drops the
    /// granter must not reuse the frame, and a stale TLB entry could still reach it (Xen's
    /// `unmap_common_complete` runs after `gnttab_flush_tlb` for the same reason).
    /// `None` for a revoked mapping, whose pin went when its granter closed.
    pub fn unmap_keep_pin(
        &mut self,
        mapper: DomId,
        op: &GnttabUnmapGrantRef,
    ) -> Result<(Unmapped, Option<PendingUnpin>), i16> {
        let mt = &mut self.table_mut(mapper).ok_or(gntst::BAD_HANDLE)?.maptrack;
        let (m, revoked) = match mt.get(op.handle) {
            Slot::Free => return Err(gntst::BAD_HANDLE),
            Slot::Live(m) => (m, false),
            Slot::Revoked(m) => (m, true),
        };
        if GuestPhysAddr::new(op.host_addr).align_down(PAGE_SIZE) != m.host_addr {
            return Err(gntst::GENERAL_ERROR);
        }
        mt.put(op.handle);
        let unpin = (!revoked).then_some(PendingUnpin {
            granter: m.granter,
            gref: m.gref,
            readonly: m.readonly,
        });
        let done = Unmapped {
            host_addr: m.host_addr,
            frame_pa: m.frame_pa,
            readonly: m.readonly,
            revoked,
        };
        Ok((done, unpin))
    }

    /// Drops a pin [`GrantTables::unmap_keep_pin`] left (clearing the granter's flags with
    /// its last pin). Nothing if the granter closed meanwhile: closing dropped every pin.
    pub fn release_pin(&mut self, mem: &mut impl GrantMemory, u: PendingUnpin) {
        if let Some(granter) = self.table_mut(u.granter) {
            granter.unpin(mem, u.gref, u.readonly);
        }
    }
}

/// A pin still held after its mapping's handle went ([`GrantTables::unmap_keep_pin`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a pin that is never released keeps the granter's page busy forever"]
pub struct PendingUnpin {
    granter: DomId,
    gref: GrantRef,
    readonly: bool,
}
