//! `grant_table_op`: v1 grant tables. Entry validation, pinning and the maptrack live in
//! [`crate::xen::GrantTables`]; here argument arrays are copied, and granted frames are put
//! into (and taken out of) the mapper's stage 2.
//!
//! Batches (`map_grant_ref`, `unmap_grant_ref`, `copy` with `count` > 1) are served
//! [`GRANT_CHUNK`] operations per entry; the rest continues by re-executing the guest's
//! HVC with the array advanced and `count` reduced (Xen's `hypercall_create_continuation`),
//! so one guest's long batch holds the microvisor for a bounded time. Only unmaps need TLB
//! maintenance: one VMID-scoped invalidation per chunk, after every page of it is out of
//! stage 2 and before any granter's pin drops (see [`crate::xen::Stage2Batch`]). A map
//! fills an empty stage-2 slot, and entries that fault are never held in a TLB, so it
//! needs none; a copy does not touch stage 2.
//!
//! Device maps (`GNTMAP_device_map`) are granted only to a domain that may program DMA
//! already ([`Hyp::may_device_map`]): it gets the frame's host-physical address as
//! `dev_bus_addr` (no IOMMU) and, without `GNTMAP_host_map`, no stage-2 page. The pin
//! holds until it unmaps; a dead granter's memory waits for that (see
//! [`Hyp::free_if_unloaded`] and [`crate::xen::GrantTables::device_mapped`]).

use super::bits::HostGrants;
use super::grant_state::{copy_ops, with_grants};
use super::guest::Loaded;
use super::XenResult;
use crate::guestcopy;
use crate::hyp::tables::{stage2_of, ChargedTables};
use crate::hyp::Hyp;
use crate::mm::pagetable::{Attrs, MapError, MemType, PageTable, TableMemory};
use crate::xen::{split, GrantMemory, Stage2Batch, GRANT_CHUNK};
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::ids::DomainId;
use protocol::xen::structs::{
    gntst, GnttabCopy, GnttabMapGrantRef, GnttabQuerySize, GnttabSetVersion, GnttabUnmapGrantRef,
    GrantEntryV1,
};
use protocol::xen::{GnttabOp, XenErrno};
use zerocopy::{FromZeros, IntoBytes};

/// What one entry of `grant_table_op` leaves for the guest.
pub(super) enum GrantCall {
    /// The call is over: this goes to `x0`.
    Done(XenResult),
    /// Operations remain: the guest's HVC runs again with `x1 = uop`, `x2 = count` (and
    /// `x0`, the command, as it was).
    Continue {
        /// The first operation not yet served.
        uop: u64,
        /// How many remain.
        count: u64,
    },
}

/// The caller's stage 2 and grant memory, as an unmap batch edits them.
struct HostBatch<'a> {
    stage2: &'a mut PageTable,
    tables: ChargedTables<'a>,
    grants: HostGrants,
}

impl GrantMemory for HostBatch<'_> {
    fn read_entry(&self, frame: PhysAddr, index: usize) -> GrantEntryV1 {
        self.grants.read_entry(frame, index)
    }
    fn cas_flags_domid(&mut self, frame: PhysAddr, index: usize, old: u32, new: u32) -> u32 {
        self.grants.cas_flags_domid(frame, index, old, new)
    }
    fn clear_flags(&mut self, frame: PhysAddr, index: usize, bits: u16) {
        self.grants.clear_flags(frame, index, bits)
    }
    fn write_entry(&mut self, frame: PhysAddr, index: usize, entry: GrantEntryV1) {
        self.grants.write_entry(frame, index, entry)
    }
    fn copy(&mut self, src: PhysAddr, dst: PhysAddr, len: usize) {
        self.grants.copy(src, dst, len)
    }
}

impl Stage2Batch for HostBatch<'_> {
    fn remove(&mut self, gpa: u64) -> bool {
        // A grant is mapped as one 4 KiB page, so this never splits a block and cannot
        // fail for want of table memory; if it somehow did, invalidating is the safe side.
        // Freeing a table whose last entry went invalidates at once inside `unmap`: the
        // page may be reused, so no walk may still go through it.
        !matches!(
            self.stage2.unmap(&mut self.tables, gpa, PAGE_SIZE),
            Err(MapError::NotMapped)
        )
    }

    fn invalidate(&mut self) {
        // `tlb_flush_guest`: TLBI VMALLS12E1IS for this domain's VMID only (why that and not
        // per-IPA invalidation is explained there), completed on every CPU (DSB ISH).
        self.tables.flush_tlb();
    }
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
        with_grants(|g| {
            g.tables.frame(&mut HostGrants::default(), id.0, idx, || {
                budget.alloc(frames, 1)
            })
        })
        .unwrap_or(Err(XenErrno::ENOMEM))
    }

    /// `grant_table_op(cmd, uop, count)`: one entry of it (see the module docs).
    pub(super) fn xen_grant_op(&mut self, cpu: usize, id: DomainId, a: [u64; 5]) -> GrantCall {
        let op = u32::try_from(a[0])
            .ok()
            .and_then(|c| GnttabOp::try_from(c).ok());
        let (uop, count) = (a[1], a[2]);
        // Xen refuses a count its `(int)count` sees as negative; any other is served.
        if count > i32::MAX as u64 {
            return GrantCall::Done(Err(XenErrno::EINVAL));
        }
        let size = match op {
            Some(GnttabOp::MapGrantRef) => size_of::<GnttabMapGrantRef>(),
            Some(GnttabOp::UnmapGrantRef) => size_of::<GnttabUnmapGrantRef>(),
            Some(GnttabOp::Copy) => size_of::<GnttabCopy>(),
            Some(GnttabOp::QuerySize) => return GrantCall::Done(self.grant_query_size(id, uop)),
            Some(GnttabOp::SetVersion) => return GrantCall::Done(self.grant_set_version(id, uop)),
            None => return GrantCall::Done(Err(XenErrno::ENOSYS)),
        } as u64;
        let Some(s) = split(uop, count, size) else {
            return GrantCall::Done(Err(XenErrno::EFAULT));
        };
        let served = match op {
            Some(GnttabOp::UnmapGrantRef) => self.unmap_chunk(cpu, id, uop, s.now),
            Some(GnttabOp::Copy) => self.copy_chunk(id, uop, s.now),
            _ => self.map_chunk(id, uop, s.now),
        };
        match (served, s.rest) {
            (Err(e), _) => GrantCall::Done(Err(e)),
            (Ok(()), Some((uop, count))) => GrantCall::Continue { uop, count },
            (Ok(()), None) => GrantCall::Done(Ok(0)),
        }
    }

    /// `GNTTABOP_query_size`.
    fn grant_query_size(&mut self, id: DomainId, uop: u64) -> XenResult {
        let mut q: GnttabQuerySize = self.read_arg(id, uop)?;
        let size = with_grants(|g| g.tables.query_size(id.0, q.dom, id == DomainId::DOM0));
        match size.unwrap_or(Err(gntst::GENERAL_ERROR)) {
            Ok(s) => {
                q.nr_frames = s.nr_frames;
                q.max_nr_frames = s.max_frames;
                q.status = gntst::OKAY;
            }
            Err(status) => q.status = status,
        }
        self.write_arg(id, uop, &q)
    }

    /// `GNTTABOP_set_version`.
    fn grant_set_version(&mut self, id: DomainId, uop: u64) -> XenResult {
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

    /// `n` (at most [`GRANT_CHUNK`]) `GNTTABOP_map_grant_ref`s at `uop`. As for copies
    /// ([`Hyp::copy_chunk`]), the chunk is read in and written back whole (one guest
    /// translation per page, not two per operation), with the same differences only the
    /// caller can see; an array that does not translate that way is served one operation
    /// at a time, so a fault part-way ends the call with `EFAULT` after the operations
    /// before it, as in Xen.
    fn map_chunk(&mut self, id: DomainId, uop: u64, n: u64) -> Result<(), XenErrno> {
        let mut buf = [GnttabMapGrantRef::new_zeroed(); GRANT_CHUNK];
        let dma = self.may_device_map(id);
        let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
        let mut whole = usize::try_from(n).ok().and_then(|n| buf.get_mut(..n));
        if let Some(ops) = whole.as_deref_mut() {
            if guestcopy::read_for_update(&mut Loaded(d), uop, ops.as_mut_bytes()).is_err() {
                whole = None;
            }
        }
        let Some(ops) = whole else {
            for i in 0..n {
                let va = uop + i * size_of::<GnttabMapGrantRef>() as u64;
                let mut m: GnttabMapGrantRef = self.read_arg(id, va)?;
                self.map_one(id, &mut m, dma);
                self.write_arg(id, va, &m)?;
            }
            return Ok(());
        };
        for m in ops.iter_mut() {
            self.map_one(id, m, dma);
        }
        let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
        guestcopy::write(&mut Loaded(d), uop, ops.as_bytes()).map_err(|_| XenErrno::EFAULT)
    }

    /// `n` (at most [`GRANT_CHUNK`]) `GNTTABOP_copy`s at `uop`. The chunk is copied in with
    /// one guest translation per page (checked writable, so the statuses can go back), served
    /// with the granters' and the caller's frame translations memoised for the chunk, and
    /// copied back whole: per operation only the grant checks, pins and bytes remain. An
    /// array that does not translate that way is served one operation at a time, so a
    /// fault part-way ends the call with `EFAULT` after the operations before it, as in Xen.
    /// Differences only the caller can see: the operations are served from one snapshot of
    /// the chunk (a copy into the array itself does not change later operations, and the
    /// write-back replaces what it wrote there), and if the guest unmaps the array while the
    /// chunk is served, the call ends in `EFAULT` with every operation of the chunk done.
    fn copy_chunk(&mut self, id: DomainId, uop: u64, n: u64) -> Result<(), XenErrno> {
        let served = copy_ops(n, |ops| {
            let d = self.domain(id)?;
            guestcopy::read_for_update(&mut Loaded(d), uop, ops.as_mut_bytes()).ok()?;
            with_grants(|g| g.copy_batch(id.0, ops));
            let d = self.domain(id)?;
            Some(
                guestcopy::write(&mut Loaded(d), uop, ops.as_bytes()).map_err(|_| XenErrno::EFAULT),
            )
        });
        served
            .flatten()
            .unwrap_or_else(|| self.copy_each(id, uop, n))
    }

    /// `n` `GNTTABOP_copy`s at `uop`, each read, served and written back on its own.
    fn copy_each(&mut self, id: DomainId, uop: u64, n: u64) -> Result<(), XenErrno> {
        for i in 0..n {
            let va = uop + i * size_of::<GnttabCopy>() as u64;
            let mut c: GnttabCopy = self.read_arg(id, va)?;
            c.status = with_grants(|g| {
                let (tables, frame) = g.split();
                tables.copy(&mut HostGrants::default(), id.0, &c, frame)
            })
            .unwrap_or(gntst::GENERAL_ERROR);
            self.write_arg(id, va, &c)?;
        }
        Ok(())
    }

    /// `n` (at most [`GRANT_CHUNK`]) `GNTTABOP_unmap_grant_ref`s at `uop`, with one TLB
    /// invalidation for all of them. An operation whose argument cannot be read ends the
    /// call with `EFAULT` after those before it are done, as in Xen.
    fn unmap_chunk(&mut self, cpu: usize, id: DomainId, uop: u64, n: u64) -> Result<(), XenErrno> {
        const SIZE: u64 = size_of::<GnttabUnmapGrantRef>() as u64;
        let mut ops = [GnttabUnmapGrantRef::new_zeroed(); GRANT_CHUNK];
        let mut read = 0;
        let mut fault = Ok(());
        // The whole chunk in one read when it translates that way (see `map_chunk`).
        let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
        let whole = usize::try_from(n)
            .ok()
            .and_then(|n| ops.get_mut(..n))
            .is_some_and(|o| {
                guestcopy::read_for_update(&mut Loaded(d), uop, o.as_mut_bytes()).is_ok()
            });
        if whole {
            read = n as usize;
        } else {
            for (i, op) in (0..n).zip(ops.iter_mut()) {
                match self.read_arg(id, uop + i * SIZE) {
                    Ok(u) => *op = u,
                    Err(e) => {
                        fault = Err(e);
                        break;
                    }
                }
                read += 1;
            }
        }
        let ops = &mut ops[..read];
        let (stage2, tables) =
            stage2_of(&mut self.domains, &mut self.frames, id).ok_or(XenErrno::ESRCH)?;
        with_grants(|g| {
            let mut batch = HostBatch {
                stage2,
                tables,
                grants: HostGrants::default(),
            };
            g.tables.unmap_batch(&mut batch, id.0, ops);
        });
        // A dead granter may have been waiting for these device maps to go.
        self.free_dma_waiters(cpu);
        if whole {
            let d = self.domain(id).ok_or(XenErrno::ESRCH)?;
            return guestcopy::write(&mut Loaded(d), uop, ops.as_bytes())
                .map_err(|_| XenErrno::EFAULT);
        }
        for (i, u) in (0..).zip(ops.iter()) {
            self.write_arg(id, uop + i * SIZE, u)?;
        }
        fault
    }

    /// One `GNTTABOP_map_grant_ref`: pin and validate in the core, then map in stage 2
    /// (unless it is a device-only map). `dma`: [`Hyp::may_device_map`] for the caller.
    fn map_one(&mut self, id: DomainId, m: &mut GnttabMapGrantRef, dma: bool) {
        // Host-physical addresses go only to a domain that could DMA anywhere anyway.
        m.dev_bus_addr = 0;
        let mapped = with_grants(|g| {
            let (tables, frame) = g.split();
            tables.map_dma(&mut HostGrants::default(), id.0, m, dma, frame)
        });
        let mapped = match mapped.unwrap_or(Err(gntst::GENERAL_ERROR)) {
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
        // RAM is never a grant's host address, even a block not mapped yet because it is
        // scrubbed on first touch (`super::super::lazy`).
        let in_ram = self.domain(id).is_none_or(|d| d.in_ram(gpa));
        let ok = !mapped.host
            || !in_ram
                && self.stage2_mut(id).is_some_and(|(s2, mut tables)| {
                    s2.map(&mut tables, gpa, mapped.frame_pa, PAGE_SIZE, attrs)
                        .is_ok()
                });
        if ok {
            m.handle = mapped.handle;
            m.status = gntst::OKAY;
            if mapped.device {
                m.dev_bus_addr = mapped.frame_pa.as_u64();
            }
        } else {
            // The address is taken (RAM, another mapping) or out of range: undo the pin.
            let undo = GnttabUnmapGrantRef {
                host_addr: gpa,
                dev_bus_addr: 0,
                handle: mapped.handle,
                status: 0,
                _pad0: 0,
            };
            with_grants(|g| {
                let _ = g.tables.unmap(&mut HostGrants::default(), id.0, &undo);
            });
            m.status = gntst::GENERAL_ERROR;
        }
    }
}
