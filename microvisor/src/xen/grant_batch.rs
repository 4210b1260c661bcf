//! Grant batches: how one `grant_table_op` entry splits a long array of operations, and a
//! chunk of `GNTTABOP_unmap_grant_ref` with one TLB invalidation at its end.
//!
//! Xen's model, which Linux's backends rely on (read as a specification,
//! `common/grant_table.c`): a call with `count` operations may stop after some of them and
//! continue with the guest's HVC re-executed on the rest (`hypercall_create_continuation`
//! with the handle advanced and `count` reduced), and an unmap batch invalidates the
//! mapper's TLBs once per internal batch (`gnttab_flush_tlb`) before dropping the pins
//! (`unmap_common_complete`). Differences: we continue after every [`GRANT_CHUNK`]
//! operations instead of when a preemption check says so, so how long one entry holds the
//! microvisor does not depend on what other CPUs do; and a chunk that removed nothing (all
//! bad handles, or revoked mappings) invalidates nothing.
#![forbid(unsafe_code)]

use protocol::xen::structs::{gntst, DomId, GnttabUnmapGrantRef};

use super::{GrantMemory, GrantTables};

/// Operations one entry of `grant_table_op` serves before the call continues (Xen's
/// `GNTTAB_UNMAP_BATCH_SIZE`): bounds the time one guest's batch holds the microvisor.
pub const GRANT_CHUNK: usize = 32;

/// How one entry of a call with `count` operations of `op_size` bytes at `uop` proceeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// Operations to serve in this entry.
    pub now: u64,
    /// If operations remain: the `(uop, count)` the re-executed HVC carries.
    pub rest: Option<(u64, u64)>,
}

/// Splits a call: at most [`GRANT_CHUNK`] operations now, the rest by continuation.
/// `None` if the array's end overflows the address space (the caller's `EFAULT`).
pub fn split(uop: u64, count: u64, op_size: u64) -> Option<Split> {
    uop.checked_add(count.checked_mul(op_size)?)?;
    let now = count.min(GRANT_CHUNK as u64);
    let rest = (count > now).then(|| (uop + now * op_size, count - now));
    Some(Split { now, rest })
}

/// The mapper's stage 2, as an unmap batch edits it.
pub trait Stage2Batch {
    /// Removes the 4 KiB page at guest-physical `gpa`. Whether a valid entry went (only
    /// then can a TLB hold a translation of it: entries that fault are never cached).
    fn remove(&mut self, gpa: u64) -> bool;
    /// Invalidates every TLB entry derived from this stage 2, on every CPU, and waits until
    /// that has completed everywhere.
    fn invalidate(&mut self);
}

impl GrantTables {
    /// Unmaps `ops` for `mapper`, setting each `status` as [`GrantTables::unmap`] would.
    /// Per chunk of [`GRANT_CHUNK`]: every page comes out of stage 2, then at most one
    /// invalidation (none if no valid entry went), then the granters' pins drop. So when
    /// this returns, no TLB holds a page it unmapped, and no granter saw its grant released
    /// while one could. Returns how many invalidations it issued.
    pub fn unmap_batch<E: GrantMemory + Stage2Batch>(
        &mut self,
        env: &mut E,
        mapper: DomId,
        ops: &mut [GnttabUnmapGrantRef],
    ) -> usize {
        let mut invalidations = 0;
        for chunk in ops.chunks_mut(GRANT_CHUNK) {
            let mut unpins = [None; GRANT_CHUNK];
            let mut removed = false;
            for (op, unpin) in chunk.iter_mut().zip(unpins.iter_mut()) {
                op.status = match self.unmap_keep_pin(mapper, op) {
                    Ok((done, pin)) => {
                        if !done.revoked && done.host {
                            removed |= env.remove(done.host_addr.as_u64());
                        }
                        *unpin = pin;
                        gntst::OKAY
                    }
                    Err(status) => status,
                };
            }
            if removed {
                env.invalidate();
                invalidations += 1;
            }
            for u in unpins.into_iter().flatten() {
                self.release_pin(env, u);
            }
        }
        invalidations
    }
}
