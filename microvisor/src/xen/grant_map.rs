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
    /// Device maps are refused ([`GrantTables::map_dma`] is the call that may grant them).
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
        self.map_dma(mem, mapper, op, false, gfn_to_pa)
    }

    /// [`GrantTables::map`], where `dma` says whether `mapper` may have a device map
    /// (`GNTMAP_device_map`, alone or with `GNTMAP_host_map`): the caller decides that (a
    /// direct-mapped domain holding a DMA-capable device, which learns nothing new from a
    /// host-physical address). A device map reports the frame as [`Mapped::device`]
    /// (Xen's `dev_bus_addr`; there is no IOMMU, so it is host-physical) and, without
    /// `GNTMAP_host_map`, installs nothing in stage 2 (`host_addr` is ignored). Its pin,
    /// and so the granter's `GTF_reading`/`GTF_writing`, lasts until the unmap, as for a
    /// host map; while one exists the granter's memory must not be reused
    /// ([`GrantTables::device_mapped`]). Without `dma` a device map is
    /// `GNTST_general_error`, as before.
    pub fn map_dma(
        &mut self,
        mem: &mut impl GrantMemory,
        mapper: DomId,
        op: &GnttabMapGrantRef,
        dma: bool,
        gfn_to_pa: impl Fn(DomId, u64) -> Option<PhysAddr>,
    ) -> Result<Mapped, i16> {
        if op.flags & (gntmap::HOST_MAP | gntmap::DEVICE_MAP) == 0 {
            return Err(gntst::BAD_GNTREF);
        }
        let allowed = if dma {
            gntmap::HOST_MAP | gntmap::DEVICE_MAP | gntmap::READONLY
        } else {
            gntmap::HOST_MAP | gntmap::READONLY
        };
        if op.flags & !allowed != 0 {
            return Err(gntst::GENERAL_ERROR);
        }
        let host = op.flags & gntmap::HOST_MAP != 0;
        let device = op.flags & gntmap::DEVICE_MAP != 0;
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
        let host_addr = if host {
            GuestPhysAddr::new(op.host_addr).align_down(PAGE_SIZE)
        } else {
            GuestPhysAddr::new(0)
        };
        mt.fill(
            handle,
            Mapping {
                granter: op.dom,
                gref: op.gref,
                host_addr,
                frame_pa,
                readonly,
                host,
                device,
            },
        );
        Ok(Mapped {
            handle,
            host_addr,
            frame_pa,
            readonly,
            host,
            device,
        })
    }

    /// Unmaps `op.handle` of `mapper`, which must be mapped at `op.host_addr` (compared by
    /// page), dropping its pin. Also undoes a [`GrantTables::map`] whose stage-2 step failed
    /// (nothing was installed, so no invalidation stands between the two halves).
    ///
    /// Statuses: `GNTST_bad_handle` no such handle or nothing mapped under it;
    /// `GNTST_general_error` mapped at another page (what Xen on Arm reports when the
    /// address does not hold the mapping; nothing changes), or a device map whose non-zero
    /// `dev_bus_addr` names another frame. A device-only map ignores `host_addr`.
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
        if m.host && GuestPhysAddr::new(op.host_addr).align_down(PAGE_SIZE) != m.host_addr {
            return Err(gntst::GENERAL_ERROR);
        }
        let bus = PhysAddr::new(op.dev_bus_addr).align_down(PAGE_SIZE);
        if m.device && op.dev_bus_addr != 0 && bus != m.frame_pa {
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
            host: m.host,
            revoked,
        };
        Ok((done, unpin))
    }

    /// Whether a live device map of one of `granter`'s grants exists. While it does, a
    /// device may be writing the granter's frame, so the granter's memory must not be freed
    /// or reused, even once the granter is dead: the glue defers freeing it until this
    /// turns false (the mapper's unmap, or the mapper's own death after its devices were
    /// reset). Xen keeps the page referenced for the same reason.
    pub fn device_mapped(&self, granter: DomId) -> bool {
        self.domains
            .iter()
            .any(|t| t.maptrack.holds_device_map_of(granter))
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
